//! One trusted connection pipelines tens of thousands of INVITEs, each answered with a final
//! response the server-transaction table would keep for retransmissions (503: no PBX link).
//! The table is capped (`sip.max_transactions`): the gateway's resident memory stays bounded
//! however long the flood. Before, every answer was kept 32–64 s, at about half a KiB each.
//! `RCC_FLOOD_MAX_TRANSACTIONS=10000000` runs it with a table that never fills, to see the
//! difference: 31 MiB of growth against none with the cap of 2,048 (debug build), measured
//! after a first round of 500 so that start-up growth is not counted.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

mod support;
use support::{Gateway, free_port, tcp_config, wait_listening};

const FLOOD: usize = 60_000;

fn invite(i: usize) -> String {
    let body = format!(
        "<?xml version=\"1.0\"?><RequestSystemStatus xmlns=\"http://www.ecma-international.org/standards/ecma-323/csta/ed3\">\
         <extensions><privateData><private><lcs:line xmlns:lcs=\"http://schemas.microsoft.com/Lcs/2005/04/RCCExtension\">\
         tel:+1425555{:04};ext={:04}</lcs:line></private></privateData></extensions></RequestSystemStatus>",
        i % 10_000,
        i % 10_000
    );
    format!(
        "INVITE sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-flood{i}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:user{i}@lab.example>;tag=f{i}\r\nTo: <sip:gw@127.0.0.1>\r\n\
         Call-ID: flood-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:user{i}@127.0.0.1:5060;transport=tcp>\r\n\
         Content-Type: application/csta+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends the flood on one connection while reading its answers; the answers' status codes.
fn flood(port: u16, count: usize) -> Vec<String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let mut batch = String::new();
        for i in 0..count {
            batch.push_str(&invite(i));
            if batch.len() > 64 * 1024 {
                writer.write_all(batch.as_bytes()).expect("send");
                batch.clear();
            }
        }
        writer.write_all(batch.as_bytes()).expect("send");
    });
    let mut codes = Vec::with_capacity(count);
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while codes.len() < count {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
                    codes.push(rest.trim_end().to_owned());
                }
            }
        }
    }
    sender.join().expect("sender");
    codes
}

#[test]
fn a_pipelined_invite_flood_leaves_the_gateways_memory_bounded() {
    let port = free_port();
    let cap = std::env::var("RCC_FLOOD_MAX_TRANSACTIONS").unwrap_or_else(|_| "2048".to_owned());
    let config = tcp_config(&format!("127.0.0.1:{port}"))
        .replace("[pbx]", &format!("max_transactions = {cap}\n[pbx]"));
    let gw = Gateway::start("flood", &config, None, |_| {});
    wait_listening(port);
    // A first small round, so that start-up growth (buffers, the allocator's first arenas) is
    // not counted as the flood's.
    assert_eq!(flood(port, 500).len(), 500, "{}", gw.log());
    let before = gw.status_kib("VmRSS");
    let codes = flood(port, FLOOD);
    let peak = gw.status_kib("VmHWM");
    assert_eq!(codes.len(), FLOOD, "every INVITE answered:\n{}", gw.log());
    assert!(
        codes.iter().all(|c| c.starts_with("503")),
        "503 while the PBX link is down: {:?}",
        codes.iter().find(|c| !c.starts_with("503"))
    );
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!("resident memory: {before} KiB before, peak {peak} KiB");
    assert!(
        grown_mib < 16,
        "the gateway grew by {grown_mib} MiB for {FLOOD} answered INVITEs"
    );
}
