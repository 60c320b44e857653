//! Backpressure on a SIP connection. The gateway writes from a task of its own, so a write that
//! waits for the peer never stops it from reading; once half of `sip.send_queue` is owed (queued
//! answers and requests not yet taken up) it pauses reading (TCP holds the peer back) for 2 s at
//! most, so a Front End that reads only once its own writes get through is never deadlocked
//! against it, and one that reads late loses nothing; read on while the queue is still deep, new
//! work gets 503; full, the connection is closed and counted, while other connections keep being
//! served.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use rcc_protocol::sip::{Limits, StreamFramer, StreamItem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

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

/// An INFO in a dialog the gateway does not know: 481 while the connection is served, 503 while
/// it is congested (new work is refused before the dialog is looked up).
fn stray_info(seq: u32) -> Vec<u8> {
    format!(
        "INFO sip:rccgateway@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bKstray{seq}\r\n\
Max-Forwards: 70\r\n\
From: <sip:fe@lab>;tag=f1\r\n\
To: <sip:rccgateway@127.0.0.1>;tag=gone\r\n\
Call-ID: stray\r\n\
CSeq: {seq} INFO\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Reads 200 OKs until `n` have arrived or the connection ends; returns their CSeq numbers in
/// arrival order, and whether the connection ended.
async fn answers(
    stream: &mut (impl AsyncReadExt + Unpin),
    n: usize,
) -> anyhow::Result<(Vec<u32>, bool)> {
    answers_with(stream, n, &[200]).await
}

/// [`answers`], accepting the status codes in `statuses`.
async fn answers_with(
    stream: &mut (impl AsyncReadExt + Unpin),
    n: usize,
    statuses: &[u16],
) -> anyhow::Result<(Vec<u32>, bool)> {
    let mut framer = StreamFramer::new(Limits::default());
    let mut buf = vec![0u8; 65536];
    let mut seqs = Vec::with_capacity(n);
    while seqs.len() < n {
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await?;
        let read = match read {
            Ok(0) | Err(_) => return Ok((seqs, true)),
            Ok(r) => r,
        };
        framer.push(&buf[..read]);
        while let Some(item) = framer.next_item()? {
            if let StreamItem::Message(m) = item {
                anyhow::ensure!(
                    m.status().is_some_and(|c| statuses.contains(&c)),
                    "not one of {statuses:?}: {m}"
                );
                seqs.push(m.cseq()?.seq);
            }
        }
    }
    Ok((seqs, false))
}

async fn gateway(send_queue: usize) -> anyhow::Result<rcc_gateway::server::GatewayHandle> {
    let config = rcc_gateway::config::parse(&format!(
        r#"
[sip]
listen_tcp = "127.0.0.1:0"
host = "127.0.0.1"
trusted_peer = [{{ ip = "127.0.0.1" }}]
send_queue = {send_queue}
# No PBX here: OPTIONS are answered 200 all the same, so the answers tell the order only.
options_when_unavailable = "200"
[pbx]
address = "127.0.0.1:9"
"#
    ))?;
    rcc_gateway::server::GatewayHandle::start(config).await
}

/// A connection with small socket buffers (so that most of what is unread waits in the gateway).
async fn small_buffers(addr: std::net::SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(64 * 1024)?;
    socket.set_send_buffer_size(64 * 1024)?;
    Ok(socket.connect(addr).await?)
}

/// How many answers of `answer_len` bytes the kernel can hold between the gateway's queue and
/// the peer (the gateway's send buffer at its autotuning ceiling, the peer's receive buffer).
fn kernel_answers(answer_len: usize) -> usize {
    let wmem_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2).and_then(|v| v.parse().ok()))
        .unwrap_or(4 << 20);
    (wmem_max + 256 * 1024) / answer_len.max(1)
}

/// `request` sent on a fresh connection: its answer's size in bytes.
async fn answer_len(addr: std::net::SocketAddr, request: &[u8]) -> anyhow::Result<usize> {
    let mut c = TcpStream::connect(addr).await?;
    c.write_all(request).await?;
    let mut buf = vec![0u8; 4096];
    let mut framer = StreamFramer::new(Limits::default());
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await??;
        anyhow::ensure!(n > 0, "the probe connection closed");
        framer.push(&buf[..n]);
        if let Some(StreamItem::Message(m)) = framer.next_item()? {
            return Ok(m.to_bytes().len());
        }
    }
}

#[tokio::test]
async fn a_peer_that_writes_everything_before_reading_is_never_deadlocked() -> anyhow::Result<()> {
    // More requests than the kernel can hold answers for plus half the queue (a gateway that
    // paused reading at half without limit would leave this peer blocked in its writes for
    // ever), fewer than the queue (nothing may overflow).
    let probe = gateway(16).await?;
    let probe_addr = probe.sip_tcp.ok_or_else(|| anyhow::anyhow!("no TCP"))?;
    let len = answer_len(probe_addr, &options(1, "probe")).await?;
    let kernel = kernel_answers(len * 9 / 10);
    let queue = 4 * kernel;
    let requests = (kernel * 16 / 5) as u32;
    let gw = gateway(queue).await?;
    let addr = gw
        .sip_tcp
        .ok_or_else(|| anyhow::anyhow!("no TCP listener"))?;

    let mut peer = small_buffers(addr).await?;
    let mut all = Vec::with_capacity(requests as usize * 300);
    for seq in 1..=requests {
        all.extend_from_slice(&options(seq, "writer"));
    }
    tokio::time::timeout(Duration::from_secs(120), peer.write_all(&all))
        .await
        .map_err(|_| anyhow::anyhow!("{requests} requests could not be written: deadlocked"))??;

    // Another connection is served meanwhile.
    let mut other = TcpStream::connect(addr).await?;
    other.write_all(&options(1, "other")).await?;
    let (got, _) = answers(&mut other, 1).await?;
    assert_eq!(got, [1], "the other connection is answered");

    let (seqs, ended) = answers(&mut peer, requests as usize).await?;
    assert!(!ended, "the connection stays open");
    assert!(
        seqs.iter().copied().eq(1..=requests),
        "answers arrive once each and in order"
    );
    assert_eq!(gw.metrics.queue_overflows.get(), 0, "no connection closed");
    // Every SIP message read was timed in the gateway's residence histogram.
    let text = gw.metrics.encode();
    let timed = text
        .lines()
        .find_map(|l| l.strip_prefix("rcc_gateway_residence_seconds_count{input=\"sip\"} "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert_eq!(
        timed,
        Some(u64::from(requests) + 1),
        "residence counted:\n{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_peer_held_back_by_the_pause_then_reading_loses_nothing() -> anyhow::Result<()> {
    // A small queue: a gateway that read on regardless would soon owe the peer more answers
    // than the queue and the kernel hold, and close the connection.
    const QUEUE: usize = 64;
    let gw = gateway(QUEUE).await?;
    let addr = gw
        .sip_tcp
        .ok_or_else(|| anyhow::anyhow!("no TCP listener"))?;

    // The peer writes requests, reading nothing, until it is told to stop.
    let (mut reader, mut writer) = small_buffers(addr).await?.into_split();
    let written = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn({
        let (written, stop) = (written.clone(), stop.clone());
        async move {
            let mut chunk = Vec::new();
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                chunk.clear();
                for _ in 0..32 {
                    seq += 1;
                    chunk.extend_from_slice(&options(seq, "writer"));
                }
                writer.write_all(&chunk).await?;
                written.store(seq, Ordering::Relaxed);
            }
            anyhow::Ok(writer)
        }
    });

    // The gateway stops taking its requests, so its writes stall. It starts reading once they
    // have made no progress for 300 ms, well within the 2 s pause.
    let (mut last, mut since) = (0, Instant::now());
    let deadline = since + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if flood.is_finished() {
            let end = flood.await?.err();
            let sent = written.load(Ordering::Relaxed);
            anyhow::bail!("nothing held the writer back; it ended after {sent} requests: {end:?}");
        }
        anyhow::ensure!(Instant::now() < deadline, "the writer never stalled");
        let now = written.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);

    // Reading lets the gateway go on: the write in progress completes, the writer stops, and
    // every request it wrote is answered 200, once and in order, on the same connection.
    let mut framer = StreamFramer::new(Limits::default());
    let mut buf = vec![0u8; 65536];
    let mut seqs = Vec::new();
    while !(flood.is_finished() && seqs.len() == written.load(Ordering::Relaxed) as usize) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "answers stopped after {}",
            seqs.len()
        );
        let read = tokio::time::timeout(Duration::from_millis(100), reader.read(&mut buf)).await;
        let Ok(read) = read else { continue };
        let n = read?;
        anyhow::ensure!(n > 0, "the connection closed after {} answers", seqs.len());
        framer.push(&buf[..n]);
        while let Some(item) = framer.next_item()? {
            if let StreamItem::Message(m) = item {
                anyhow::ensure!(m.status() == Some(200), "not a 200: {m}");
                seqs.push(m.cseq()?.seq);
            }
        }
    }
    let _writer = flood.await??;
    let total = written.load(Ordering::Relaxed);
    assert!(
        total > last,
        "the stalled write went through once the peer read"
    );
    assert!(
        seqs.iter().copied().eq(1..=total),
        "every request answered once, in order"
    );
    assert_eq!(gw.metrics.queue_overflows.get(), 0, "no connection closed");
    Ok(())
}

#[tokio::test]
async fn a_peer_that_never_reads_gets_503_then_is_closed_and_counted() -> anyhow::Result<()> {
    const QUEUE: usize = 256;
    let gw = gateway(QUEUE).await?;
    let addr = gw
        .sip_tcp
        .ok_or_else(|| anyhow::anyhow!("no TCP listener"))?;
    // The 481, shorter than the 503 with its Retry-After.
    let len = answer_len(addr, &stray_info(1)).await?;
    // Enough to fill the kernel's buffers and the queue however large the kernel lets them be.
    let requests = (kernel_answers(len * 9 / 10) + 4 * QUEUE) as u32;

    let stalled = small_buffers(addr).await?;
    let (mut reader, mut writer) = stalled.into_split();
    let _flood = tokio::spawn(async move {
        for seq in 1..=requests {
            // The gateway closes the connection part way: a write error ends the flood. (What
            // the gateway's receive buffer holds may also let it finish before the close.)
            if writer.write_all(&stray_info(seq)).await.is_err() {
                break;
            }
        }
        writer
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while gw.metrics.queue_overflows.get() == 0 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the gateway took all {requests} requests without closing the connection"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        gw.metrics.queue_overflows.get(),
        1,
        "the overflow is counted"
    );
    // Past half the queue, reading paused (2 s at most); read on while the queue stayed deep,
    // the requests were refused as new work on a congested connection.
    let text = gw.metrics.encode();
    let congested = text
        .lines()
        .find_map(|l| l.strip_prefix("rcc_gateway_refused_total{reason=\"congested\"} "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(
        congested.is_some_and(|n| n > 0),
        "503s on the congested connection are counted:\n{text}"
    );

    // Whatever was written before the close is in order and ends with the connection.
    let (seqs, ended) = answers_with(&mut reader, requests as usize, &[481, 503]).await?;
    assert!(ended, "the connection is closed");
    assert!(
        seqs.iter().copied().eq(1..=seqs.len() as u32),
        "the answers that arrived are the first ones, in order"
    );

    // The gateway still serves everyone else.
    let mut other = TcpStream::connect(addr).await?;
    other.write_all(&options(1, "other")).await?;
    let (got, _) = answers(&mut other, 1).await?;
    assert_eq!(got, [1], "another connection is served after the overflow");
    Ok(())
}
