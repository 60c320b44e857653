//! Steps for the high-availability tier (`rcc_lab::tier`): our gateway as several processes
//! behind Kamailio. Which gateway holds a line is read where an engineer would read it: at the
//! PBX, by the address its CSTA link comes from (each gateway's link runs through its own
//! cable). Scenarios that use them are tagged `@ha`.

use std::collections::BTreeMap;
use std::time::Duration;

use cucumber::{given, then, when};
use rcc_lab::lab::{GatewayAt, Lab, WAIT};
use rcc_lab::tier::TierOptions;
use rcc_protocol::csta::{LocalConnectionState, Request, Response};

use super::steps::{endpoint, extension, ok};
use super::{RccWorld, lab};

type Step = anyhow::Result<()>;

/// What an HA scenario remembers between steps.
#[derive(Debug, Default)]
pub struct HaState {
    /// The gateway a step killed, drained or cut from the PBX, by number.
    pub affected: Option<usize>,
}

fn tier_lab(w: &mut RccWorld) -> anyhow::Result<&mut Lab> {
    w.lab
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("the lab has not started"))
}

/// The gateway a step killed, drained or cut, named in the words the scenario uses for it.
fn affected(w: &RccWorld, called: &str) -> anyhow::Result<usize> {
    anyhow::ensure!(
        ["killed", "restarted", "draining", "cut"].contains(&called),
        "no gateway is called {called:?}: the killed, restarted, draining or cut one"
    );
    w.ha.affected
        .ok_or_else(|| anyhow::anyhow!("no gateway was killed, drained or cut yet"))
}

/// Each monitored PBX device and the gateways (by number) whose CSTA links monitor it.
async fn holders(lab: &Lab) -> anyhow::Result<BTreeMap<String, Vec<usize>>> {
    let tier = lab.tier()?;
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for link in lab.pbx()?.links().await? {
        let holder = tier
            .gateways()
            .iter()
            .find(|g| g.cable().carries(&link.peer))
            .map(|g| g.number())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "a PBX link from {} that no gateway's cable carries",
                    link.peer
                )
            })?;
        for (_, device) in link.monitors {
            out.entry(device).or_default().push(holder);
        }
    }
    Ok(out)
}

/// The gateway monitoring `who`'s line (waiting for the monitor, for [`WAIT`]).
async fn holder_of(w: &mut RccWorld, who: &str) -> anyhow::Result<usize> {
    let device = extension(w, who.split('/').next().unwrap_or(who))?;
    let lab = lab(w).await?;
    lab.eventually(
        &format!("{who}'s line monitored by one gateway"),
        WAIT,
        async |lab| {
            Ok(match holders(lab).await?.get(&device).map(Vec::as_slice) {
                Some([one]) => Some(*one),
                _ => None,
            })
        },
    )
    .await
}

fn choose_tier(w: &mut RccWorld, gateways: usize, tls: bool) -> Step {
    anyhow::ensure!(
        w.lab.is_none(),
        "the tier must be chosen before the lab starts"
    );
    w.options.gateway_at = GatewayAt::Tier(TierOptions {
        gateways,
        tls,
        ..TierOptions::default()
    });
    Ok(())
}

#[given(expr = "{int} gateways stand behind Kamailio")]
async fn tier_of(w: &mut RccWorld, n: usize) -> Step {
    choose_tier(w, n, false)
}

#[given(expr = "{int} gateways stand behind Kamailio, reached over mutual TLS")]
async fn tier_over_tls(w: &mut RccWorld, n: usize) -> Step {
    choose_tier(w, n, true)
}

#[then("every signed-in line is monitored exactly once")]
async fn monitored_once(w: &mut RccWorld) -> Step {
    let mut lines: Vec<String> = w
        .endpoints
        .keys()
        .map(|k| extension(w, k.split('/').next().unwrap_or(k)))
        .collect::<anyhow::Result<_>>()?;
    lines.sort();
    lines.dedup();
    let lab = lab(w).await?;
    // A monitor being stopped or started settles within the step deadline.
    let mut last = Default::default();
    lab.eventually("every signed-in line monitored once", WAIT, async |lab| {
        let seen = holders(lab).await?;
        let once = seen.values().all(|g| g.len() == 1) && seen.keys().eq(lines.iter());
        last = seen;
        Ok(once.then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e} (device: gateways): {last:?}; signed-in lines: {lines:?}"))
}

#[then(expr = "{word}'s line and {word}'s line are on different gateways")]
async fn different_gateways(w: &mut RccWorld, a: String, b: String) -> Step {
    let (ga, gb) = (holder_of(w, &a).await?, holder_of(w, &b).await?);
    anyhow::ensure!(
        ga != gb,
        "both on gateway {ga}: the hash put them together; pick users whose lines hash apart"
    );
    Ok(())
}

#[when(expr = "the gateway holding {word}'s line dies")]
async fn holder_dies(w: &mut RccWorld, who: String) -> Step {
    let n = holder_of(w, &who).await?;
    w.ha.affected = Some(n);
    let lab = tier_lab(w)?;
    lab.tier_mut()?.gateway_mut(n)?.kill();
    let running = lab
        .tier()?
        .gateways()
        .iter()
        .filter(|g| g.running())
        .count();
    lab.eventually("the killed gateway's PBX link closed", WAIT, async |lab| {
        Ok((lab.pbx()?.links().await?.len() == running).then_some(()))
    })
    .await
}

#[when(expr = "the gateway holding {word}'s line restarts at once")]
async fn holder_restarts(w: &mut RccWorld, who: String) -> Step {
    let n = holder_of(w, &who).await?;
    w.ha.affected = Some(n);
    let lab = tier_lab(w)?;
    let g = lab.tier_mut()?.gateway_mut(n)?;
    g.kill();
    g.start().await
}

#[when("the killed gateway starts again")]
async fn killed_starts(w: &mut RccWorld) -> Step {
    let n = affected(w, "killed")?;
    let lab = tier_lab(w)?;
    lab.tier_mut()?.gateway_mut(n)?.start().await?;
    let g = lab.tier()?.gateway(n)?;
    lab.eventually("the restarted gateway's PBX link", WAIT, async |_| {
        Ok((g.metric("rcc_gateway_pbx_link_up").await? == 1.0).then_some(()))
    })
    .await?;
    probed(lab, g, 2).await
}

/// Waits until Kamailio has probed `g` `n` more times: its state in rotation follows its
/// answers to them (one answer suffices, each way).
async fn probed(lab: &Lab, g: &rcc_lab::tier::TierGateway, n: u32) -> Step {
    let options = "rcc_gateway_sip_requests_total{method=\"OPTIONS\"}";
    let before = g.metric(options).await?;
    let what = format!("Kamailio probing gateway {} {n} times", g.number());
    lab.eventually(&what, WAIT, async |_| {
        Ok((g.metric(options).await? >= before + f64::from(n)).then_some(()))
    })
    .await
}

#[when(expr = "the gateway holding {word}'s line drains")]
async fn holder_drains(w: &mut RccWorld, who: String) -> Step {
    let n = holder_of(w, &who).await?;
    w.ha.affected = Some(n);
    let lab = lab(w).await?;
    let g = lab.tier()?.gateway(n)?;
    g.drain()?;
    lab.eventually("the gateway draining", WAIT, async |_| {
        Ok((g.metric("rcc_gateway_draining").await? == 1.0).then_some(()))
    })
    .await?;
    // Out of rotation for new lines by now: it has answered probes 503.
    probed(lab, g, 2).await
}

#[when(expr = "the gateway holding {word}'s line loses its PBX link")]
async fn holder_loses_pbx(w: &mut RccWorld, who: String) -> Step {
    let n = holder_of(w, &who).await?;
    w.ha.affected = Some(n);
    let lab = lab(w).await?;
    let g = lab.tier()?.gateway(n)?;
    g.cable().cut();
    lab.eventually("its PBX link down", WAIT, async |_| {
        Ok((g.metric("rcc_gateway_pbx_link_up").await? == 0.0).then_some(()))
    })
    .await?;
    probed(lab, g, 2).await
}

#[when("every client refreshes its session")]
async fn everyone_refreshes(w: &mut RccWorld) -> Step {
    let ids: Vec<usize> = w.endpoints.values().copied().collect();
    let lab = lab(w).await?;
    let mut before = Vec::with_capacity(ids.len());
    for &id in &ids {
        let counts = lab
            .lync
            .with(move |fe, _| fe.endpoint(id).map(|e| (e.refreshes(), e.sign_ins())))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no endpoint {id}"))?;
        before.push(counts);
        lab.lync.refresh(id).await?;
    }
    // Each refresh settles: answered, or refused and the client signed in again.
    for (&id, (refreshes, sign_ins)) in ids.iter().zip(before) {
        lab.lync
            .wait_for(
                id,
                WAIT,
                "the refresh answered or a new sign-in",
                move |e| {
                    (e.refreshes() > refreshes
                        || (e.sign_ins() > sign_ins
                            && e.phase() == &rcc_simulators::lync::Phase::Ready))
                        .then_some(())
                },
            )
            .await?;
    }
    Ok(())
}

#[when(expr = "{word} signs in")]
async fn signs_in(w: &mut RccWorld, who: String) -> Step {
    match w.endpoints.get(&who).copied() {
        Some(id) => {
            let lab = lab(w).await?;
            lab.lync.sign_in(id).await?;
            lab.lync.wait_ready(id, WAIT).await.map(drop)
        }
        None => {
            let lab = lab(w).await?;
            let id = lab
                .signed_in(&who, "desk", rcc_simulators::lync::ClientProfile::Lync2013)
                .await?;
            w.endpoints.insert(who, id);
            Ok(())
        }
    }
}

#[then(expr = "{word}'s line is not on the {word} gateway")]
async fn not_on_affected(w: &mut RccWorld, who: String, called: String) -> Step {
    let n = affected(w, &called)?;
    let holder = holder_of(w, &who).await?;
    anyhow::ensure!(
        holder != n,
        "{who}'s line is on gateway {n}, the {called} one"
    );
    Ok(())
}

#[then(expr = "{word}'s line is still on the {word} gateway")]
async fn still_on_affected(w: &mut RccWorld, who: String, called: String) -> Step {
    let n = affected(w, &called)?;
    let holder = holder_of(w, &who).await?;
    anyhow::ensure!(holder == n, "{who}'s line moved to gateway {holder}");
    Ok(())
}

#[then(expr = "the {word} gateway holds {int} session(s)")]
async fn affected_holds(w: &mut RccWorld, called: String, sessions: usize) -> Step {
    let n = affected(w, &called)?;
    let lab = lab(w).await?;
    let held = lab
        .tier()?
        .gateway(n)?
        .metric("rcc_gateway_sessions")
        .await?;
    anyhow::ensure!(
        held == sessions as f64,
        "gateway {n} holds {held} sessions, expected {sessions}"
    );
    Ok(())
}

#[then(expr = "{word} signed in {int} time(s)")]
async fn signed_in_times(w: &mut RccWorld, who: String, times: u32) -> Step {
    let id = endpoint(w, &who)?;
    let n = lab(w)
        .await?
        .lync
        .with(move |fe, _| fe.endpoint(id).map(|e| e.sign_ins()))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no endpoint for {who}"))?;
    anyhow::ensure!(n == times, "{who} signed in {n} times, expected {times}");
    Ok(())
}

#[then(expr = "{word} saw every event once")]
async fn every_event_once(w: &mut RccWorld, who: String) -> Step {
    let id = endpoint(w, &who)?;
    let events = lab(w).await?.lync.events(id).await?;
    let mut seen = std::collections::HashSet::new();
    for e in &events {
        let rcc_protocol::csta::Event::Call(c) = &e.event else {
            continue;
        };
        let call = c.connection.as_ref().and_then(|x| x.call_id.clone());
        anyhow::ensure!(
            seen.insert((c.kind.root_name(), call.clone())),
            "{who} got {} for call {call:?} twice",
            c.kind.root_name()
        );
    }
    anyhow::ensure!(!seen.is_empty(), "{who} saw no call event at all");
    Ok(())
}

#[when(expr = "{word} takes a snapshot of the line")]
async fn takes_snapshot(w: &mut RccWorld, who: String) -> Step {
    let device = super::steps::line(w, &who)?;
    let r = ok(w, &who, Request::SnapshotDevice { device }).await?;
    let Response::SnapshotDevice { calls } = r else {
        anyhow::bail!("{who} got {r:?} for SnapshotDevice");
    };
    // Its connected call is the one the next steps act on (a client that signed in again
    // learns its calls this way); it must be the call in progress.
    let connected = calls
        .iter()
        .find(|c| c.states.first() == Some(&LocalConnectionState::Connected))
        .and_then(|c| c.connection.call_id.clone());
    let user = who.split('/').next().unwrap_or(&who).to_owned();
    match (connected, w.calls.get(&user)) {
        (Some(call), Some(known)) if call != *known => anyhow::bail!(
            "{who}'s snapshot shows call {call:?}, not the call in progress {known:?}"
        ),
        (Some(call), _) => {
            w.calls.insert(user, call);
            Ok(())
        }
        (None, _) => anyhow::bail!("{who}'s snapshot shows no connected call: {calls:?}"),
    }
}

#[when(expr = "{word} signs in on the {word}")]
async fn signs_in_on(w: &mut RccWorld, who: String, device: String) -> Step {
    let lab = lab(w).await?;
    let id = lab
        .signed_in(&who, &device, rcc_simulators::lync::ClientProfile::Lync2013)
        .await?;
    w.endpoints.insert(format!("{who}/{device}"), id);
    Ok(())
}

#[then(expr = "{word}'s line is also monitored by another gateway")]
async fn also_elsewhere(w: &mut RccWorld, who: String) -> Step {
    let n = affected(w, "draining")?;
    let device = extension(w, who.split('/').next().unwrap_or(&who))?;
    let lab = lab(w).await?;
    lab.eventually(
        &format!("{who}'s line monitored by gateway {n} and another"),
        WAIT,
        async |lab| {
            let gateways = holders(lab).await?.remove(&device).unwrap_or_default();
            Ok((gateways.len() == 2 && gateways.contains(&n)).then_some(()))
        },
    )
    .await
}

#[when("every gateway dies")]
async fn every_gateway_dies(w: &mut RccWorld) -> Step {
    let lab = lab(w).await?;
    let n = lab.tier()?.gateways().len();
    let lab = tier_lab(w)?;
    for g in 1..=n {
        lab.tier_mut()?.gateway_mut(g)?.kill();
    }
    lab.eventually("every gateway's PBX link closed", WAIT, async |lab| {
        Ok(lab.pbx()?.links().await?.is_empty().then_some(()))
    })
    .await
}

#[when("Kamailio restarts")]
async fn kamailio_restarts(w: &mut RccWorld) -> Step {
    lab(w).await?;
    let tier = tier_lab(w)?.tier_mut()?;
    tier.stop_kamailio();
    tier.start_kamailio().await
}

/// Kamailio answers a sign-in itself when no gateway can take it: 503 with a Retry-After,
/// never a timeout. While the probes have not noticed, the connection fails (`Retry-After:
/// 0`); once every gateway is out of rotation, `retry_after` (the client keeps retrying, as
/// Lync does after a 503).
#[then(expr = "{word}'s sign-in is answered 503 with Retry-After {int}")]
async fn answered_503(w: &mut RccWorld, who: String, retry_after: u32) -> Step {
    let lab = lab(w).await?;
    let want = retry_after.to_string();
    let mut last = Vec::new();
    lab.eventually(&format!("{who}'s sign-in answered 503 with Retry-After {want}"), WAIT, async |lab| {
        let trace = lab.lync.trace().await?;
        let finals: Vec<(String, Option<String>)> = trace
            .iter()
            .filter(|e| e.text.starts_with("SIP/2.0 ") && !e.text.starts_with("SIP/2.0 1"))
            .filter(|e| e.text.contains("CSeq: 1 INVITE"))
            .map(|e| {
                let head = e.text.lines().next().unwrap_or_default().to_owned();
                let retry = e
                    .text
                    .lines()
                    .find_map(|l| l.strip_prefix("Retry-After: "))
                    .map(|r| r.trim().to_owned());
                (head, retry)
            })
            .collect();
        for (head, retry) in &finals {
            anyhow::ensure!(
                head.starts_with("SIP/2.0 503") && retry.is_some(),
                "{who}'s sign-in got {head:?} (Retry-After {retry:?}); every answer must be a 503 with Retry-After"
            );
        }
        let done = finals.iter().any(|(_, r)| r.as_deref() == Some(&want));
        last = finals;
        Ok(done.then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {last:?}"))
}

#[then(expr = "{word} signs in again within {int} seconds")]
async fn signs_in_again_within(w: &mut RccWorld, who: String, seconds: u64) -> Step {
    let id = endpoint(w, &who)?;
    lab(w)
        .await?
        .lync
        .wait_for(id, Duration::from_secs(seconds), "a second sign-in", |e| {
            (e.sign_ins() >= 2 && e.phase() == &rcc_simulators::lync::Phase::Ready).then_some(())
        })
        .await
}

/// A sign-in sent straight to Kamailio from `from` (a loopback address that is not the Front
/// End's): the gateways trust what the tier relays, so the tier must refuse it.
#[then(expr = "Kamailio refuses a sign-in from {word} with 403")]
async fn kamailio_refuses_stranger(w: &mut RccWorld, from: String) -> Step {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let lab = lab(w).await?;
    let tier = lab.tier()?;
    anyhow::ensure!(!tier.tls, "this step speaks TCP to Kamailio");
    let held = lab.sessions_held().await?;
    let ip: std::net::IpAddr = from
        .parse()
        .map_err(|e| anyhow::anyhow!("{from:?} is not an address: {e}"))?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(ip, 0))?;
    let mut s = socket.connect(tier.front).await?;
    let body = r#"<?xml version="1.0" encoding="UTF-8"?><RequestSystemStatus xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3"><extensions><privateData><private><lcs:line xmlns:lcs="http://schemas.microsoft.com/Lcs/2005/04/RCCExtension">tel:+14255551001;ext=1001</lcs:line></private></privateData></extensions></RequestSystemStatus>"#;
    let invite = format!(
        "INVITE sip:rccgateway@rcc.lab.example SIP/2.0\r\nVia: SIP/2.0/TCP {ip}:5061;branch=z9hG4bKstranger\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@contoso.lab>;tag=s\r\nTo: <sip:rccgateway@rcc.lab.example>\r\n\
         Call-ID: stranger\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{ip}:5061;transport=tcp>\r\n\
         Content-Type: application/csta+xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(invite.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .map_err(|_| anyhow::anyhow!("Kamailio did not answer the stranger within {WAIT:?}"))??;
    let answer = String::from_utf8_lossy(&buf[..n]);
    let status = answer.lines().next().unwrap_or_default();
    anyhow::ensure!(
        status.starts_with("SIP/2.0 403"),
        "Kamailio answered a sign-in from {from} with {status:?}"
    );
    let now = lab.sessions_held().await?;
    anyhow::ensure!(
        now == held,
        "the gateways hold {now:?} sessions, {held:?} before"
    );
    Ok(())
}
