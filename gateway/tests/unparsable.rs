//! Requests whose head does not parse, over TCP to the binary (RFC 4475 vectors, read from
//! `../shared/vectors/rfc4475`): `SIP/7.0` gets 505 and a start line with extra spaces 400,
//! each with its transaction's headers copied, and the connection goes on: the next request on
//! it is answered.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

mod support;
use support::{Gateway, free_port, tcp_config, wait_listening};

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors/rfc4475")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

const OPTIONS: &str = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK-after1\r\nMax-Forwards: 70\r\nFrom: <sip:fe.lab.example>;tag=a1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: after-the-bad-one\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

/// Reads until `n` responses (status lines) have arrived, 10 s at most.
fn responses(stream: &mut TcpStream, n: usize) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while text.matches("SIP/2.0 ").count() < n {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => text.push_str(&String::from_utf8_lossy(&buf[..k])),
        }
    }
    text
}

#[test]
fn unparsable_requests_get_400_or_505_and_the_connection_goes_on() {
    let port = free_port();
    let _gw = Gateway::start(
        "unparsable",
        &tcp_config(&format!("127.0.0.1:{port}")),
        None,
        |_| {},
    );
    wait_listening(port);
    for (vector_name, status, call_id) in [
        (
            "badvers.dat",
            "SIP/2.0 505 Version Not Supported",
            "badvers.31417@c.example.com",
        ),
        (
            "lwsstart.dat",
            "SIP/2.0 400 Bad Request",
            "lwsstart.dfknq234oi243099adsdfnawe3@example.com",
        ),
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(&vector(vector_name)).expect("send");
        stream.write_all(OPTIONS.as_bytes()).expect("send");
        let text = responses(&mut stream, 2);
        let first = text.split("\r\n\r\n").next().unwrap_or_default();
        assert!(first.starts_with(status), "{vector_name}: {text:?}");
        assert!(
            first.contains(&format!("\r\nCall-ID: {call_id}\r\n")),
            "{text:?}"
        );
        assert!(
            text.contains("\r\nCall-ID: after-the-bad-one\r\n"),
            "{vector_name}: the request after it was not answered: {text:?}"
        );
    }
}
