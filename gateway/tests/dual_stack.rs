//! A dual-stack listener (`listen_tcp = "[::]:…"`): an IPv4 Front End shows as
//! `::ffff:a.b.c.d` there, and must still match its `trusted_peer = { ip = "a.b.c.d" }`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{Killed, free_port};

#[test]
fn an_ipv4_front_end_on_a_dual_stack_listener_is_trusted_by_its_ip() {
    let dir = std::env::temp_dir().join(format!("rcc-gw-dual-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_tcp = \"[::]:{port}\"\nhost = \"127.0.0.1\"\ntrusted_peer = [{{ ip = \"127.0.0.1\" }}]\n[pbx]\naddress = \"127.0.0.1:{}\"\n",
            free_port()
        ),
    )
    .expect("config");
    let _gw = Killed(
        Command::new(env!("CARGO_BIN_EXE_rcc-gateway"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the gateway starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the gateway does not listen: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let options = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK-dual1\r\nMax-Forwards: 70\r\nFrom: <sip:fe.lab.example>;tag=a1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: dual-stack-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    stream.write_all(options.as_bytes()).expect("send");
    let mut buf = [0u8; 2048];
    let n = stream.read(&mut buf).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    let answer = String::from_utf8_lossy(&buf[..n]);
    // 200, or 503 while the PBX link is down: an answer either way, where an untrusted peer's
    // connection is closed unanswered.
    assert!(
        answer.starts_with("SIP/2.0 200") || answer.starts_with("SIP/2.0 503"),
        "the IPv4 peer was not trusted on the dual-stack listener: {answer:?}"
    );
}
