//! The SIP listeners' resource limits on the binary, over real sockets.
//!
//! - Open files: under an open-file limit of 256 (soft and hard, so the gateway cannot raise
//!   it), peers from 49 untrusted addresses open 392 TLS connections and never handshake. The
//!   gateway takes them only up to its cap less the slots reserved for trusted addresses, so a
//!   trusted Front End connecting afterwards is still accepted and answered; the refusals are
//!   logged a few lines at a time, not one line each.
//! - A message that never completes closes its connection after `sip.message_timeout_ms`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;

mod support;
use support::{Gateway, free_port, tcp_config, wait_listening};

const OPTIONS: &str = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-limits1\r\nMax-Forwards: 70\r\nFrom: <sip:fe.lab.example>;tag=a1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: limits-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

#[test]
fn idle_tls_connections_from_untrusted_addresses_leave_room_for_a_trusted_front_end() {
    let port = free_port();
    let id = rcgen::generate_simple_self_signed(vec!["gw.test".to_owned()]).expect("cert");
    let cert_pem = id.cert.pem();
    let gw = Gateway::start(
        "files",
        &format!(
            "[sip]\nlisten_tls = \"127.0.0.1:{port}\"\nhost = \"gw.test\"\ntrusted_peer = [{{ ip = \"127.0.0.1\" }}]\n\
             tls_handshake_timeout_ms = 120000\n[sip.tls]\ncert = \"{{dir}}/gw.crt\"\nkey = \"{{dir}}/gw.key\"\nclient_cert = \"none\"\n\
             [pbx]\naddress = \"127.0.0.1:{}\"\n",
            free_port()
        ),
        Some(256),
        |dir| {
            std::fs::write(dir.join("gw.crt"), &cert_pem).expect("cert");
            std::fs::write(dir.join("gw.key"), id.signing_key.serialize_pem()).expect("key");
        },
    );
    wait_listening(port);

    // 8 idle connections from each of 127.0.0.2 … 127.0.0.50: more than the open-file limit.
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut idle = Vec::new();
    for host in 2..=50u8 {
        for _ in 0..8 {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            socket
                .bind(&SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)).into())
                .expect("bind a loopback address");
            // Refused ones are closed by the gateway; that is fine.
            if socket.connect(&target.into()).is_ok() {
                idle.push(socket);
            }
        }
    }
    // Let the gateway take up (or refuse) every one of them before the Front End comes.
    std::thread::sleep(Duration::from_millis(500));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(id.cert.der().clone())
        .expect("the gateway's certificate as a root");
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("gw.test").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(client), name).expect("client");
    let tcp = TcpStream::connect(target).expect("the trusted Front End connects");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(OPTIONS.as_bytes()).expect("send OPTIONS");
    let mut buf = [0u8; 2048];
    let n = tls.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    drop(idle);
    let log = gw.log();
    // 200, or 503 while the PBX link is down: an answer either way.
    assert!(
        answer.starts_with("SIP/2.0 200") || answer.starts_with("SIP/2.0 503"),
        "the trusted Front End was not served: {answer:?}\n{log}"
    );
    assert!(
        log.contains("refused: reserved for trusted peers"),
        "no refusal logged:\n{log}"
    );
    let lines = log.lines().filter(|l| l.contains("refused: ")).count();
    assert!(
        lines <= 21,
        "{lines} refusal lines: one per connection, not throttled"
    );
}

#[test]
fn a_message_that_never_completes_closes_its_connection() {
    let port = free_port();
    let config = tcp_config(&format!("127.0.0.1:{port}"));
    let gw = Gateway::start(
        "partial",
        &config.replace("[pbx]", "message_timeout_ms = 300\n[pbx]"),
        Some(1024),
        |_| {},
    );
    wait_listening(port);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Half a request head, then nothing.
    stream.write_all(&OPTIONS.as_bytes()[..60]).expect("send");
    let mut buf = [0u8; 64];
    let closed = matches!(stream.read(&mut buf), Ok(0));
    assert!(closed, "the connection stayed open:\n{}", gw.log());
    assert!(gw.log().contains("closed: message timeout"), "{}", gw.log());
}
