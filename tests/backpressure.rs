//! Backpressure on a SIP connection: a Front End that stops reading is neither queued for
//! without end nor silently short-changed. While its answers cannot be written the gateway reads
//! no more of its requests (TCP then holds the peer back), other connections keep being served,
//! and once the peer reads again every request has its answer, once and in order, with no
//! connection closed for overflow. (Overflow itself comes from what the gateway sends on its own,
//! event INFOs and 2xx retransmissions; it closes the connection and counts it.)

use std::time::Duration;

use rcc_protocol::sip::{Limits, StreamFramer, StreamItem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const REQUESTS: u32 = 30_000;

fn options(seq: u32, call: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:rccgateway@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bK{call}{seq}\r\n\
Max-Forwards: 70\r\n\
From: <sip:fe@lab>;tag=f{call}\r\n\
To: <sip:rccgateway@127.0.0.1>\r\n\
Call-ID: {call}\r\n\
CSeq: {seq} OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Reads answers until `n` have arrived; returns their CSeq numbers in arrival order.
async fn answers(stream: &mut (impl AsyncReadExt + Unpin), n: usize) -> anyhow::Result<Vec<u32>> {
    let mut framer = StreamFramer::new(Limits::default());
    let mut buf = vec![0u8; 65536];
    let mut seqs = Vec::with_capacity(n);
    while seqs.len() < n {
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await??;
        anyhow::ensure!(
            read > 0,
            "the gateway closed the connection after {} answers",
            seqs.len()
        );
        framer.push(&buf[..read]);
        while let Some(item) = framer.next_item()? {
            if let StreamItem::Message(m) = item {
                anyhow::ensure!(m.status() == Some(200), "not a 200: {m}");
                seqs.push(m.cseq()?.seq);
            }
        }
    }
    Ok(seqs)
}

#[tokio::test]
async fn a_peer_that_stops_reading_loses_nothing_and_stalls_no_one_else() -> anyhow::Result<()> {
    let config = rcc_gateway::config::parse(
        r#"
[sip]
listen_tcp = "127.0.0.1:0"
host = "127.0.0.1"
trusted_peer = [{ ip = "127.0.0.1" }]
[pbx]
address = "127.0.0.1:9"
"#,
    )?;
    let gw = rcc_gateway::server::GatewayHandle::start(config).await?;
    let addr = gw
        .sip_tcp
        .ok_or_else(|| anyhow::anyhow!("no TCP listener"))?;

    // A Front End with small socket buffers that writes many requests and reads nothing yet.
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(64 * 1024)?;
    socket.set_send_buffer_size(64 * 1024)?;
    let stalled = socket.connect(addr).await?;
    let (mut reader, mut writer) = stalled.into_split();
    let flood = tokio::spawn(async move {
        for seq in 1..=REQUESTS {
            writer.write_all(&options(seq, "stalled")).await?;
        }
        anyhow::Ok(writer)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Meanwhile another connection is served promptly.
    let mut other = TcpStream::connect(addr).await?;
    other.write_all(&options(1, "other")).await?;
    let got = tokio::time::timeout(Duration::from_secs(2), answers(&mut other, 1)).await??;
    assert_eq!(
        got,
        [1],
        "the other connection is answered while one peer is stalled"
    );

    // The stalled peer reads again: every request answered, in order.
    let seqs = answers(&mut reader, REQUESTS as usize).await?;
    let _writer = flood.await??;
    assert!(
        seqs.iter().copied().eq(1..=REQUESTS),
        "answers arrive once each and in order"
    );
    assert_eq!(
        gw.metrics.queue_overflows.get(),
        0,
        "backpressure, not a closed connection"
    );
    // Every SIP message read was timed in the gateway's residence histogram.
    let text = gw.metrics.encode();
    let timed = text
        .lines()
        .find_map(|l| l.strip_prefix("rcc_gateway_residence_seconds_count{input=\"sip\"} "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert_eq!(
        timed,
        Some(u64::from(REQUESTS) + 1),
        "residence counted:\n{text}"
    );
    Ok(())
}
