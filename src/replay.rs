//! Replaying a capture against a gateway under test. The replayer plays the Front End and the
//! PBX as recorded and waits, on each leg, for the gateway to send what it sent in the capture.
//! What legitimately differs is normalized away: Via branches, CSeq numbering of the gateway's
//! own requests, invoke IDs, the gateway's tags and monitorCrossRefIDs (learned as they appear,
//! then substituted into what is played), Contact and Via hosts and ports, Content-Length and
//! timing. The first divergence is reported with both messages and the steps before it. Where
//! the capture's PBX link was lost and re-opened, the replayer closes its PBX side at the same
//! point and accepts the gateway's reconnect.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use rcc_gateway::config::{Config, PbxFraming, PbxTransport, TrustedPeer};
use rcc_protocol::csta;
use rcc_protocol::framing::{self, AnnexJDecoder, EVENT_INVOKE_ID, InvokeId};
use rcc_protocol::sip::{Limits, Message, StartLine, StreamFramer, StreamItem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::capture::{Step, ladder};

/// How long the gateway may take to send the next expected message.
const WAIT: Duration = Duration::from_secs(5);

/// Where replay and capture parted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Index of the step in the recorded ladder.
    pub step: usize,
    /// What the capture has.
    pub expected: String,
    /// What the gateway did.
    pub actual: String,
    /// The ladder steps before it.
    pub context: Vec<String>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "divergence at step {}:", self.step + 1)?;
        for c in &self.context {
            writeln!(f, "    {c}")?;
        }
        writeln!(f, "  expected:\n{}", indent(&self.expected))?;
        write!(f, "  actual:\n{}", indent(&self.actual))
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// The outcome of a replay.
#[derive(Debug)]
pub enum Outcome {
    /// Every gateway message matched.
    Matched {
        /// Steps replayed.
        steps: usize,
    },
    /// The first difference.
    Diverged(Divergence),
}

/// Whether a ladder can be replayed, and why not.
pub fn replayable(steps: &[Step]) -> Result<(), String> {
    let conns = |peer: &str| {
        let mut c: Vec<(SocketAddr, SocketAddr)> = steps
            .iter()
            .filter(|s| s.from == peer || s.to == peer)
            .map(|s| {
                if s.from == "GW" {
                    (s.conn.1, s.conn.0)
                } else {
                    s.conn
                }
            })
            .collect();
        c.sort();
        c.dedup();
        c.len()
    };
    // The PBX link may be lost and re-opened (the replayer drops it where the capture does),
    // but two PBX connections may not be in use at once.
    let mut seen: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    for key in steps.iter().filter_map(pbx_conn) {
        if seen.last() != Some(&key) {
            if seen.contains(&key) {
                return Err(
                    "the capture interleaves two PBX connections; replay plays one at a time"
                        .into(),
                );
            }
            seen.push(key);
        }
    }
    if steps
        .iter()
        .any(|s| s.from.starts_with("FE") && s.from != "FE")
    {
        return Err("several Front End peers; replay plays one".into());
    }
    if conns("FE") > 1 {
        return Err("the Front End uses several connections; replay plays one".into());
    }
    Ok(())
}

/// The PBX connection of a step, as (gateway side, PBX side), or `None` off the PBX link.
fn pbx_conn(s: &Step) -> Option<(SocketAddr, SocketAddr)> {
    match (s.from.as_str(), s.to.as_str()) {
        ("GW", "PBX") => Some(s.conn),
        ("PBX", "GW") => Some((s.conn.1, s.conn.0)),
        _ => None,
    }
}

/// What the replayer tells its PBX side.
enum PbxCmd {
    /// Write these bytes to the gateway.
    Send(Vec<u8>),
    /// Close the link (as the PBX did in the capture) and take the gateway's next connection.
    Drop,
}

fn mask_body(xml: &[u8]) -> String {
    match csta::decode(xml) {
        Ok(d) => {
            let canon = csta::encode(&d.message, csta::ED3);
            let re = regex_lite_mask(&canon, "monitorCrossRefID");
            regex_lite_mask(&re, "sysStatRegisterID")
        }
        Err(_) => String::from_utf8_lossy(xml).into_owned(),
    }
}

fn regex_lite_mask(s: &str, element: &str) -> String {
    let open = format!("<{element}>");
    let close = format!("</{element}>");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&open) {
        out.push_str(&rest[..i + open.len()]);
        out.push('*');
        rest = &rest[i + open.len()..];
        match rest.find(&close) {
            Some(j) => rest = &rest[j..],
            None => break,
        }
    }
    out.push_str(rest);
    out
}

fn xml_value<'a>(s: &'a str, element: &str) -> Option<&'a str> {
    let open = format!("<{element}>");
    let i = s.find(&open)? + open.len();
    let j = s[i..].find('<')?;
    Some(&s[i..i + j])
}

fn sip_key(m: &Message) -> String {
    let body = if m.body.is_empty() {
        String::new()
    } else {
        mask_body(&m.body)
    };
    match (m.method(), m.status()) {
        (Some(me), _) => format!("{me} {body}"),
        (_, Some(c)) => format!(
            "{c} {} {body}",
            m.cseq().map(|c| c.method.to_string()).unwrap_or_default()
        ),
        _ => body,
    }
}

fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.to_bytes()).into_owned()
}

struct Substitutions(Vec<(String, String)>);

impl Substitutions {
    fn learn(&mut self, recorded: &str, live: &str) {
        if !recorded.is_empty() && recorded != live && !self.0.iter().any(|(r, _)| r == recorded) {
            self.0.push((recorded.to_owned(), live.to_owned()));
        }
    }

    fn apply(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (r, l) in &self.0 {
            out = out.replace(r.as_str(), l.as_str());
        }
        out
    }

    /// A recorded message with the learned values in its Request-URI, header values and (text)
    /// body; serialising it writes a Content-Length that fits the new body, whatever the
    /// lengths of the values swapped.
    fn apply_to(&self, recorded: &Message) -> Message {
        let mut m = recorded.clone();
        if let StartLine::Request { uri, .. } = &mut m.start {
            *uri = self.apply(uri);
        }
        for h in &mut m.headers {
            h.value = self.apply(&h.value);
        }
        if let Ok(text) = std::str::from_utf8(&m.body) {
            m.body = self.apply(text).into_bytes();
        }
        m
    }
}

/// Replays the capture's ladder against the gateway listening (TCP) at `gateway_sip`, playing
/// the PBX on `pbx_listener` (which the gateway is configured to reach).
pub async fn replay(
    steps: &[Step],
    gateway_sip: SocketAddr,
    pbx_listener: TcpListener,
) -> anyhow::Result<Outcome> {
    run(steps, gateway_sip, pbx_listener, true).await
}

/// Plays the capture; with `compare` false the gateway's messages are accepted as they come
/// (for `--update`, which records the new behaviour).
async fn run(
    steps: &[Step],
    gateway_sip: SocketAddr,
    pbx_listener: TcpListener,
    compare: bool,
) -> anyhow::Result<Outcome> {
    replayable(steps).map_err(|e| anyhow!("not replayable: {e}"))?;
    // The PBX side: the gateway connects to us.
    let (pbx_in_tx, mut pbx_in) = mpsc::unbounded_channel::<(Option<InvokeId>, Vec<u8>)>();
    let (pbx_out, mut pbx_out_rx) = mpsc::unbounded_channel::<PbxCmd>();
    tokio::spawn(async move {
        // One connection at a time: a Drop closes it and the gateway's reconnect is accepted.
        while let Ok((mut s, _)) = pbx_listener.accept().await {
            let mut d = AnnexJDecoder::new();
            let mut buf = vec![0u8; 65536];
            loop {
                tokio::select! {
                    r = s.read(&mut buf) => match r {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            d.push(&buf[..n]);
                            while let Ok(Some(f)) = d.next_frame() {
                                let _ = pbx_in_tx.send((f.invoke_id, f.xml));
                            }
                        }
                    },
                    o = pbx_out_rx.recv() => match o {
                        Some(PbxCmd::Send(b)) => { if s.write_all(&b).await.is_err() { break; } }
                        Some(PbxCmd::Drop) => break,
                        None => return,
                    },
                }
            }
        }
    });
    // The Front End side: we connect to the gateway.
    let fe = TcpStream::connect(gateway_sip)
        .await
        .with_context(|| format!("connecting to the gateway at {gateway_sip}"))?;
    let (mut fe_r, mut fe_w) = fe.into_split();
    let (fe_in_tx, mut fe_in) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        let mut f = StreamFramer::new(Limits::default());
        let mut buf = vec![0u8; 65536];
        loop {
            match fe_r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    f.push(&buf[..n]);
                    while let Ok(Some(item)) = f.next_item() {
                        if let StreamItem::Message(m) = item {
                            let _ = fe_in_tx.send(m);
                        }
                    }
                }
            }
        }
    });

    let mut subs = Substitutions(Vec::new());
    let mut invokes: HashMap<u16, u16> = HashMap::new();
    let mut live_requests: HashMap<String, Message> = HashMap::new();
    let mut fe_queue: VecDeque<Message> = VecDeque::new();
    let mut pbx_queue: VecDeque<(Option<InvokeId>, Vec<u8>)> = VecDeque::new();
    let diverged = |i: usize, expected: String, actual: String| {
        let context = steps[i.saturating_sub(5)..i]
            .iter()
            .map(|s| format!("{:>3} -> {:<3} {}", s.from, s.to, s.label))
            .collect();
        Ok(Outcome::Diverged(Divergence {
            step: i,
            expected,
            actual,
            context,
        }))
    };
    let mut pbx_link: Option<(SocketAddr, SocketAddr)> = None;
    for (i, step) in steps.iter().enumerate() {
        if let Some(key) = pbx_conn(step) {
            if pbx_link.is_some_and(|current| current != key) {
                // The capture's PBX link was lost here: drop ours; what the old link still
                // carried no longer counts.
                pbx_out
                    .send(PbxCmd::Drop)
                    .map_err(|_| anyhow!("the PBX side of the replay stopped"))?;
                pbx_queue.clear();
            }
            pbx_link = Some(key);
        }
        match (step.from.as_str(), step.to.as_str()) {
            ("GW", "PBX") => {
                let Some((rec_invoke, rec_xml)) = &step.frame else {
                    continue;
                };
                let live = match pbx_queue.pop_front() {
                    Some(l) => Some(l),
                    None => tokio::time::timeout(WAIT, pbx_in.recv())
                        .await
                        .ok()
                        .flatten(),
                };
                let Some((live_invoke, live_xml)) = live else {
                    return diverged(
                        i,
                        format!("{}\n{}", step.label, String::from_utf8_lossy(rec_xml)),
                        "nothing within 5 s".into(),
                    );
                };
                if compare && mask_body(rec_xml) != mask_body(&live_xml) {
                    return diverged(
                        i,
                        String::from_utf8_lossy(rec_xml).into_owned(),
                        String::from_utf8_lossy(&live_xml).into_owned(),
                    );
                }
                if let (Some(InvokeId::Id(r)), Some(InvokeId::Id(l))) = (rec_invoke, live_invoke) {
                    invokes.insert(*r, l);
                }
            }
            ("PBX", "GW") => {
                let Some((rec_invoke, rec_xml)) = &step.frame else {
                    continue;
                };
                let invoke = match rec_invoke {
                    Some(InvokeId::Id(EVENT_INVOKE_ID)) => EVENT_INVOKE_ID,
                    Some(InvokeId::Id(r)) => invokes.get(r).copied().unwrap_or(*r),
                    _ => 0,
                };
                let bytes = framing::encode_annex_j(invoke, rec_xml).map_err(|e| anyhow!("{e}"))?;
                pbx_out
                    .send(PbxCmd::Send(bytes))
                    .map_err(|_| anyhow!("the gateway left the PBX link"))?;
            }
            ("GW", _) => {
                let Some(rec) = &step.sip else {
                    continue;
                };
                let live = match fe_queue.pop_front() {
                    Some(l) => Some(l),
                    None => tokio::time::timeout(WAIT, fe_in.recv())
                        .await
                        .ok()
                        .flatten(),
                };
                let Some(live) = live else {
                    return diverged(i, text(rec), "nothing within 5 s".into());
                };
                if compare && sip_key(rec) != sip_key(&live) {
                    return diverged(i, text(rec), text(&live));
                }
                // Learn what the gateway chose differently.
                if let (Ok(r), Ok(l)) = (rec.to_header(), live.to_header())
                    && let (Some(rt), Some(lt)) = (r.tag(), l.tag())
                {
                    subs.learn(rt, lt);
                }
                if rec.is_request() {
                    if let (Ok(r), Ok(l)) = (rec.from_header(), live.from_header())
                        && let (Some(rt), Some(lt)) = (r.tag(), l.tag())
                    {
                        subs.learn(rt, lt);
                    }
                    if let Some(b) = rec
                        .top_via()
                        .ok()
                        .and_then(|v| v.branch().map(str::to_owned))
                    {
                        live_requests.insert(b, live.clone());
                    }
                }
                let (rb, lb) = (
                    String::from_utf8_lossy(&rec.body).into_owned(),
                    String::from_utf8_lossy(&live.body).into_owned(),
                );
                if let (Some(r), Some(l)) = (
                    xml_value(&rb, "monitorCrossRefID"),
                    xml_value(&lb, "monitorCrossRefID"),
                ) {
                    subs.learn(r, l);
                }
            }
            (_, "GW") => {
                let Some(rec) = &step.sip else {
                    continue;
                };
                let out = if rec.is_request() {
                    subs.apply_to(rec)
                } else {
                    // A response to one of the gateway's requests: answer the live request.
                    let branch = rec
                        .top_via()
                        .ok()
                        .and_then(|v| v.branch().map(str::to_owned))
                        .unwrap_or_default();
                    let Some(live_req) = live_requests.get(&branch) else {
                        return diverged(
                            i,
                            text(rec),
                            "no live request for this recorded response".into(),
                        );
                    };
                    let tag = rec
                        .to_header()
                        .ok()
                        .and_then(|t| t.tag().map(str::to_owned))
                        .unwrap_or_default();
                    let mut r =
                        Message::response_to(live_req, rec.status().unwrap_or(200), "OK", &tag);
                    if !rec.body.is_empty() {
                        r = r.with_body(
                            rec.header("Content-Type").unwrap_or("application/csta+xml"),
                            None,
                            rec.body.clone(),
                        );
                    }
                    r
                };
                fe_w.write_all(&out.to_bytes())
                    .await
                    .context("writing to the gateway")?;
            }
            _ => {}
        }
        // Pick up anything the gateway sent meanwhile, in order per leg.
        while let Ok(m) = fe_in.try_recv() {
            fe_queue.push_back(m);
        }
        while let Ok(f) = pbx_in.try_recv() {
            pbx_queue.push_back(f);
        }
    }
    Ok(Outcome::Matched { steps: steps.len() })
}

/// The gateway configuration the lab's captures were recorded with, over TCP.
pub fn lab_gateway_toml(sip: SocketAddr, pbx: SocketAddr) -> String {
    format!(
        r#"[sip]
listen_tcp = "{sip}"
host = "127.0.0.1"
trusted_peer = [{{ ip = "127.0.0.1" }}]
[pbx]
address = "{pbx}"
reconnect_min_ms = 50
reconnect_max_ms = 200
{numbering}"#,
        numbering = rcc_simulators::lync::LAB_NUMBERING
    )
}

/// A site's gateway.toml placed in this process: read, placed by [`in_process`], then
/// checked, so that what only the site has (its certificate files, its PBX address) does not
/// stop the replay; every remaining problem is listed with the file's name.
fn site_config(
    file: &Path,
    sip_port: u16,
    pbx: SocketAddr,
    trace: Option<&Path>,
) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        anyhow!(
            "{}: 1 problem(s):\n  - cannot read {}: {e}",
            file.display(),
            file.display()
        )
    })?;
    let site = rcc_gateway::config::parse_unchecked(&text)
        .map_err(|e| anyhow!("{}: 1 problem(s):\n  - {e}", file.display()))?;
    let mut config = in_process(site, sip_port, pbx, trace.map(Path::to_path_buf));
    let problems = rcc_gateway::config::check(&mut config);
    anyhow::ensure!(
        problems.is_empty(),
        "{}: {} problem(s):\n  - {}",
        file.display(),
        problems.len(),
        problems.join("\n  - ")
    );
    Ok(config)
}

/// Replays a capture file against a fresh in-process gateway configured like the lab, or, with
/// `config`, like that `gateway.toml` (placed in this process by [`in_process`]).
pub async fn replay_file(path: &Path, config: Option<&Path>) -> anyhow::Result<Outcome> {
    replay_with(path, config, None).await
}

/// Replays a capture and records what the gateway does now as the expected behaviour: the
/// capture is replaced by the gateway's trace of the replay, and its ladder snapshot
/// (`NAME.snap` beside it) is rewritten. `config` as for [`replay_file`]. Returns the new ladder.
pub async fn update_file(path: &Path, config: Option<&Path>) -> anyhow::Result<String> {
    let trace = path.with_extension("replay.pcapng");
    match replay_with(path, config, Some(&trace)).await? {
        Outcome::Matched { .. } => {}
        Outcome::Diverged(d) => anyhow::bail!("the replay could not complete: {d}"),
    }
    let cap = crate::capture::read(&trace)?;
    let (steps, notes) = ladder(&cap);
    anyhow::ensure!(notes.is_empty(), "the new trace has problems: {notes:?}");
    std::fs::rename(&trace, path).with_context(|| format!("replacing {}", path.display()))?;
    let text = crate::capture::ladder_text(&steps, &notes);
    let snap = path.with_extension("snap");
    std::fs::write(&snap, format!("---\nsource: tests/replay.rs\n---\n{text}"))
        .with_context(|| format!("writing {}", snap.display()))?;
    Ok(text)
}

/// A gateway configuration (a site's `gateway.toml`) placed in the replay's process. Kept:
/// everything that shapes behaviour (numbering, authorization, the PBX profile, login,
/// application ID, namespace and session duration, `sip.host`, session timers, limits, reconnect
/// delays). Replaced: SIP listens on loopback TCP `sip_port` only (no TLS) and trusts 127.0.0.1
/// by IP, advertising that listener; the PBX link goes to `pbx` over plain TCP with Annex J
/// framing (what the replayer plays), no secondary; `trace` is the only file written: no
/// metrics listener, no per-session traces.
pub fn in_process(
    mut config: Config,
    sip_port: u16,
    pbx: SocketAddr,
    trace: Option<PathBuf>,
) -> Config {
    let sip = &mut config.sip;
    sip.listen_tcp = Some((Ipv4Addr::LOCALHOST, sip_port).into());
    sip.listen_tls = None;
    sip.tls = None;
    sip.port = None;
    sip.trusted_peers = vec![TrustedPeer {
        name: None,
        ip: Some(Ipv4Addr::LOCALHOST.into()),
        net: None,
    }];
    let link = &mut config.pbx;
    link.address = pbx.to_string();
    link.secondary = None;
    link.transport = PbxTransport::Tcp;
    link.tls_ca = None;
    link.tls_name = None;
    link.framing = PbxFraming::AnnexJ;
    let observe = &mut config.observe;
    observe.http = None;
    observe.session_traces = None;
    observe.trace = trace;
    config
}

/// Replays a capture against a gateway running elsewhere (another process or host): we play
/// the Front End by connecting to its SIP TCP listener at `gateway_sip`, and the PBX by listening
/// on `pbx_listen`, where that gateway must be configured to connect (see [`lab_gateway_toml`]
/// for the numbering the lab's captures were recorded with). The gateway must be fresh (no
/// session from an earlier run) and reconnects to the PBX on its own.
pub async fn replay_external(
    path: &Path,
    gateway_sip: SocketAddr,
    pbx_listen: SocketAddr,
) -> anyhow::Result<Outcome> {
    let cap = crate::capture::read(path)?;
    let (steps, notes) = ladder(&cap);
    anyhow::ensure!(notes.is_empty(), "{}: {notes:?}", path.display());
    replayable(&steps).map_err(|e| anyhow!("{}: not replayable: {e}", path.display()))?;
    let pbx = TcpListener::bind(pbx_listen)
        .await
        .with_context(|| format!("listening for the gateway's PBX link on {pbx_listen}"))?;
    replay(&steps, gateway_sip, pbx).await
}

async fn replay_with(
    path: &Path,
    config: Option<&Path>,
    trace: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let cap = crate::capture::read(path)?;
    let (steps, notes) = ladder(&cap);
    anyhow::ensure!(notes.is_empty(), "{}: {notes:?}", path.display());
    replayable(&steps).map_err(|e| anyhow!("{}: not replayable: {e}", path.display()))?;
    let pbx = TcpListener::bind("127.0.0.1:0").await?;
    let pbx_addr = pbx.local_addr()?;
    let sip = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = match config {
        Some(file) => site_config(file, sip.port(), pbx_addr, trace)?,
        None => in_process(
            rcc_gateway::config::parse(&lab_gateway_toml(sip, pbx_addr))?,
            sip.port(),
            pbx_addr,
            trace.map(Path::to_path_buf),
        ),
    };
    let gw = rcc_gateway::server::GatewayHandle::start(config).await?;
    let out = run(&steps, sip, pbx, trace.is_none()).await;
    // Let the last messages reach the trace before the gateway goes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(gw);
    tokio::time::sleep(Duration::from_millis(50)).await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_keeps_the_behaviour_and_replaces_the_placement() {
        let pbx: SocketAddr = ([127, 0, 0, 1], 4100).into();
        let site = rcc_gateway::config::parse_unchecked(
            r#"[sip]
listen_tls = "0.0.0.0:5065"
listen_tcp = "0.0.0.0:5066"
host = "rccgw01.contoso.com"
port = 5061
session_expires_s = 600
max_sessions = 42
trusted_peer = [{ name = "fe01.contoso.com" }, { ip = "10.0.0.11" }]
[sip.tls]
cert = "/etc/rcc-gateway/gw.crt"
key = "/etc/rcc-gateway/gw.key"
[pbx]
profile = "osv"
address = "10.0.0.20:1040"
secondary = "10.0.0.21:1040"
transport = "tls"
tls_ca = "/etc/rcc-gateway/pbx-ca.pem"
tls_name = "pbx.contoso.com"
framing = "nul"
application_id = "site-app"
[numbering]
line = "digits"
[[numbering.to_pbx]]
pattern = '\+1425555(\d{4})'
replace = "9$1"
[observe]
http = "0.0.0.0:9090"
trace = "/var/log/rcc-gateway/trace.pcapng"
[observe.session_traces]
dir = "/var/log/rcc-gateway/sessions"
"#,
        )
        .expect("the site's configuration parses");
        let c = in_process(site, 5070, pbx, None);
        assert_eq!(c.sip.listen_tcp, Some(([127, 0, 0, 1], 5070).into()));
        assert!(c.sip.listen_tls.is_none() && c.sip.tls.is_none());
        assert_eq!(c.sip.advertised_port(), 5070);
        let peers: Vec<_> = c
            .sip
            .trusted_peers
            .iter()
            .map(|p| (&p.name, p.ip))
            .collect();
        assert_eq!(peers, [(&None, Some(Ipv4Addr::LOCALHOST.into()))]);
        assert_eq!(c.pbx.address, "127.0.0.1:4100");
        assert!(c.pbx.secondary.is_none() && c.pbx.tls_ca.is_none() && c.pbx.tls_name.is_none());
        assert_eq!(c.pbx.transport, PbxTransport::Tcp);
        assert_eq!(c.pbx.framing, PbxFraming::AnnexJ);
        assert!(c.observe.http.is_none() && c.observe.session_traces.is_none());
        assert!(c.observe.trace.is_none());
        // What shapes behaviour is the site's.
        assert_eq!(c.sip.host, "rccgw01.contoso.com");
        assert_eq!((c.sip.session_expires_s, c.sip.max_sessions), (600, 42));
        assert_eq!(c.pbx.profile, rcc_gateway::config::PbxProfile::Osv);
        assert_eq!(c.pbx.application_id, "site-app");
        assert_eq!(c.numbering.line, rcc_gateway::config::LinePart::Digits);
        assert_eq!(c.numbering.to_pbx.len(), 1);
        assert_eq!(c.numbering.to_pbx[0].replace, "9$1");
        let problems = rcc_gateway::core::setup::check(&c);
        assert!(
            problems.is_empty(),
            "the placed configuration checks: {problems:?}"
        );
        let traced = in_process(c, 5070, pbx, Some("replay.pcapng".into()));
        assert_eq!(traced.observe.trace, Some("replay.pcapng".into()));
    }

    #[test]
    fn substitutions_of_other_lengths_keep_the_message_well_formed() {
        let body = "<MonitorStop><monitorCrossRefID>7a1</monitorCrossRefID></MonitorStop>";
        let text = format!(
            "INFO sip:gw SIP/2.0\r\nVia: SIP/2.0/TCP fe;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=x\r\n\
             To: <sip:gw>;tag=gw7a1\r\nCall-ID: c\r\nCSeq: 2 INFO\r\nMax-Forwards: 70\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let recorded = Message::parse(text.as_bytes()).expect("recorded message parses");
        let mut subs = Substitutions(Vec::new());
        subs.learn("7a1", "3c9d0e1f2");
        let live = subs.apply_to(&recorded);
        let wire = live.to_bytes();
        let again = Message::parse(&wire).expect("the substituted message parses");
        assert!(String::from_utf8_lossy(&again.body).contains(">3c9d0e1f2<"));
        assert_eq!(again.header("To"), Some("<sip:gw>;tag=gw3c9d0e1f2"));
        assert_eq!(
            again.content_length().expect("length"),
            Some(again.body.len())
        );
    }
}
