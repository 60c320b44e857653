//! The binary under systemd's `Type=notify`: it says READY=1 on the notification socket once its
//! listeners are up, and STOPPING=1 when SIGTERM starts the graceful end (then exits 0).

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;
use support::free_port;

fn next_notification(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification within 10 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_and_stopping_reach_the_notify_socket() {
    let dir = std::env::temp_dir().join(format!("rcc-gw-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let sip = free_port();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_tcp = \"127.0.0.1:{sip}\"\nhost = \"127.0.0.1\"\ntrusted_peer = [{{ ip = \"127.0.0.1\" }}]\n[pbx]\naddress = \"127.0.0.1:{}\"\n",
            free_port()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rcc-gateway"))
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("the gateway starts");
    let ready = next_notification(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // Ready means listening.
    std::net::TcpStream::connect(("127.0.0.1", sip)).expect("the SIP listener is up when READY");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let stopping = next_notification(&socket);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let exit = child.wait().expect("exit");
    assert!(exit.success(), "{exit}");
    let _ = std::fs::remove_dir_all(&dir);
}
