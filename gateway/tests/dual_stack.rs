//! A dual-stack listener (`listen_tcp = "[::]:…"`): an IPv4 Front End shows as
//! `::ffff:a.b.c.d` there, and must still match its `trusted_peer = { ip = "a.b.c.d" }`.

use std::io::{Read, Write};
use std::time::Duration;

mod support;
use support::{Gateway, free_port, tcp_config, wait_listening};

#[test]
fn an_ipv4_front_end_on_a_dual_stack_listener_is_trusted_by_its_ip() {
    let port = free_port();
    let _gw = Gateway::start("dual", &tcp_config(&format!("[::]:{port}")), None, |_| {});
    wait_listening(port);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let options = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK-dual1\r\nMax-Forwards: 70\r\nFrom: <sip:fe.lab.example>;tag=a1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: dual-stack-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    stream.write_all(options.as_bytes()).expect("send");
    let mut buf = [0u8; 2048];
    let n = stream.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    // 200, or 503 while the PBX link is down: an answer either way, where an untrusted peer's
    // connection is closed unanswered.
    assert!(
        answer.starts_with("SIP/2.0 200") || answer.starts_with("SIP/2.0 503"),
        "the IPv4 peer was not trusted on the dual-stack listener: {answer:?}"
    );
}
