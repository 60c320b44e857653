//! Records the capture corpus in `captures/`: each flow runs on the in-process lab with the
//! gateway's trace on, and the trace (both legs, TLS leg decrypted) becomes `captures/NAME.pcapng`
//! with a one-line `NAME.txt`. Run: `cargo run --example record_captures [NAME…]` (all of them
//! without names). `13-real-sipe` needs the pidgin-sipe and libpurple-dev packages.

use std::path::PathBuf;
use std::time::Duration;

use rcc_lab::lab::{Lab, LabOptions};
use rcc_protocol::csta::{
    AutoOriginate, CallEventKind as K, ConnectionId, ForwardingType, Request, Response,
};
use rcc_simulators::lync::{ClientProfile, expect_response};

const WAIT: Duration = Duration::from_secs(5);

async fn wait_kind(lab: &Lab, ep: usize, after: usize, kind: K) -> anyhow::Result<usize> {
    let (i, _) = lab.lync.wait_call_event(ep, after, WAIT, kind).await?;
    Ok(i + 1)
}

async fn dial(lab: &Lab, ep: usize, to: &str) -> anyhow::Result<String> {
    let line = lab.user("alice")?.line();
    let r = expect_response(
        lab.lync
            .request(
                ep,
                Request::MakeCall {
                    calling: line,
                    called: to.into(),
                    auto_originate: Some(AutoOriginate::DoNotPrompt),
                },
                WAIT,
            )
            .await?,
    )?;
    match r {
        Response::MakeCall { calling } => Ok(calling.call_id.unwrap_or_default()),
        other => anyhow::bail!("unexpected {other:?}"),
    }
}

/// Alice signs in at her desk and calls bob, who answers: her endpoint, the call, and the
/// event index after `Established`.
async fn alice_talks_to_bob(lab: &Lab) -> anyhow::Result<(usize, String, usize)> {
    let a = lab
        .signed_in("alice", "desk", ClientProfile::Lync2013)
        .await?;
    let id = dial(lab, a, "tel:+14255551002").await?;
    let n = wait_kind(lab, a, 0, K::Delivered).await?;
    lab.pbx()?.answer("1002").await?;
    let n = wait_kind(lab, a, n, K::Established).await?;
    Ok((a, id, n))
}

fn me(lab: &Lab, call: &str) -> anyhow::Result<ConnectionId> {
    Ok(ConnectionId::new(call, lab.user("alice")?.line()))
}

async fn ask(lab: &Lab, ep: usize, r: Request) -> anyhow::Result<Response> {
    expect_response(lab.lync.request(ep, r, WAIT).await?)
}

async fn record(
    name: &str,
    what: &str,
    flow: impl AsyncFnOnce(&Lab) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let only: Vec<String> = std::env::args().skip(1).collect();
    if !only.is_empty() && !only.iter().any(|n| n == name) {
        return Ok(());
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("{name}.pcapng"));
    let lab = Lab::start(LabOptions {
        trace: Some(file.clone()),
        ..LabOptions::default()
    })
    .await?;
    flow(&lab).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    lab.shutdown().await;
    std::fs::write(dir.join(format!("{name}.txt")), format!("{what}\n"))?;
    println!("{name}: {what}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    record(
        "01-sign-in",
        "alice signs in (Lync 2013): INVITE, GetCSTAFeatures, MonitorStart",
        async |lab| {
            lab.signed_in("alice", "desk", ClientProfile::Lync2013)
                .await
                .map(drop)
        },
    )
    .await?;
    record(
        "02-click-to-dial",
        "alice dials bob, bob answers at his desk phone, alice hangs up",
        async |lab| {
            let (a, id, n) = alice_talks_to_bob(lab).await?;
            ask(
                lab,
                a,
                Request::ClearConnection {
                    connection: me(lab, &id)?,
                    reason: None,
                },
            )
            .await?;
            wait_kind(lab, a, n, K::ConnectionCleared).await.map(drop)
        },
    )
    .await?;
    record(
        "03-incoming",
        "an outside caller rings alice, she answers from Lync, the caller hangs up",
        async |lab| {
            let a = lab
                .signed_in("alice", "desk", ClientProfile::Lync2013)
                .await?;
            let id = lab.pbx()?.incoming("+14255550200", "1001").await?;
            let n = wait_kind(lab, a, 0, K::Delivered).await?;
            ask(
                lab,
                a,
                Request::AnswerCall {
                    call: me(lab, &id)?,
                },
            )
            .await?;
            let n = wait_kind(lab, a, n, K::Established).await?;
            lab.pbx()?.hang_up("+14255550200").await?;
            wait_kind(lab, a, n, K::ConnectionCleared).await.map(drop)
        },
    )
    .await?;
    record(
        "04-hold-retrieve",
        "alice holds and retrieves a call with bob",
        async |lab| {
            let (a, id, n) = alice_talks_to_bob(lab).await?;
            ask(
                lab,
                a,
                Request::HoldCall {
                    call: me(lab, &id)?,
                    reservation: None,
                },
            )
            .await?;
            let n = wait_kind(lab, a, n, K::Held).await?;
            ask(
                lab,
                a,
                Request::RetrieveCall {
                    call: me(lab, &id)?,
                },
            )
            .await?;
            wait_kind(lab, a, n, K::Retrieved).await.map(drop)
        },
    )
    .await?;
    record(
        "05-consult-transfer",
        "alice consults carol, then transfers bob to her",
        async |lab| {
            let (a, c1, n) = alice_talks_to_bob(lab).await?;
            let Response::ConsultationCall { initiated } = ask(
                lab,
                a,
                Request::ConsultationCall {
                    existing: me(lab, &c1)?,
                    consulted: "tel:+14255551003".into(),
                },
            )
            .await?
            else {
                anyhow::bail!("no ConsultationCallResponse");
            };
            let c2 = initiated.call_id.unwrap_or_default();
            let n = wait_kind(lab, a, n, K::Delivered).await?;
            lab.pbx()?.answer("1003").await?;
            let n = wait_kind(lab, a, n, K::Established).await?;
            ask(
                lab,
                a,
                Request::TransferCall {
                    held: me(lab, &c1)?,
                    active: me(lab, &c2)?,
                },
            )
            .await?;
            wait_kind(lab, a, n, K::Transferred).await.map(drop)
        },
    )
    .await?;
    record(
        "06-single-step-transfer",
        "alice hands bob over to carol in one step",
        async |lab| {
            let (a, id, n) = alice_talks_to_bob(lab).await?;
            ask(
                lab,
                a,
                Request::SingleStepTransferCall {
                    active: me(lab, &id)?,
                    transferred_to: "tel:+14255551003".into(),
                },
            )
            .await?;
            wait_kind(lab, a, n, K::Transferred).await.map(drop)
        },
    )
    .await?;
    record(
        "07-forwarding",
        "alice forwards to carol, reads it back, an outside call is forwarded",
        async |lab| {
            let a = lab
                .signed_in("alice", "desk", ClientProfile::Lync2013)
                .await?;
            let line = lab.user("alice")?.line();
            ask(
                lab,
                a,
                Request::SetForwarding {
                    device: line.clone(),
                    forwarding_type: ForwardingType::Immediate,
                    activate: true,
                    forward_dn: Some("tel:+14255551003".into()),
                    ring_count: None,
                },
            )
            .await?;
            ask(lab, a, Request::GetForwarding { device: line }).await?;
            lab.pbx()?.incoming("+14255550200", "1001").await?;
            wait_kind(lab, a, 0, K::Diverted).await.map(drop)
        },
    )
    .await?;
    record(
        "08-mpop",
        "alice on two endpoints; an incoming call reaches both, the laptop answers",
        async |lab| {
            let a = lab
                .signed_in("alice", "desk", ClientProfile::Lync2013)
                .await?;
            let b = lab
                .signed_in("alice", "laptop", ClientProfile::Lync2013)
                .await?;
            let id = lab.pbx()?.incoming("+14255550200", "1001").await?;
            wait_kind(lab, a, 0, K::Delivered).await?;
            wait_kind(lab, b, 0, K::Delivered).await?;
            ask(
                lab,
                b,
                Request::AnswerCall {
                    call: me(lab, &id)?,
                },
            )
            .await?;
            wait_kind(lab, a, 0, K::Established).await.map(drop)
        },
    )
    .await?;
    record(
        "09-pbx-link-loss",
        "the PBX link drops mid-call; the gateway reconnects and re-creates the monitor",
        async |lab| {
            let (a, _, n) = alice_talks_to_bob(lab).await?;
            lab.pbx()?.drop_links(true).await?;
            for _ in 0..300 {
                if lab
                    .pbx()?
                    .links()
                    .await?
                    .iter()
                    .map(|l| l.monitors.len())
                    .sum::<usize>()
                    == 1
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            lab.pbx()?.hang_up("1002").await?;
            wait_kind(lab, a, n, K::ConnectionCleared).await.map(drop)
        },
    )
    .await?;
    record(
        "10-malformed",
        "alice sends a broken CSTA body (400), then a valid request",
        async |lab| {
            let a = lab
                .signed_in("alice", "desk", ClientProfile::Lync2013)
                .await?;
            let r = lab
                .lync
                .raw_info(
                    a,
                    "application/csta+xml",
                    b"<MakeCall><callingDevice>".to_vec(),
                    WAIT,
                )
                .await?;
            anyhow::ensure!(r == Err("SIP 400".to_owned()), "{r:?}");
            dial(lab, a, "tel:+14255551002").await.map(drop)
        },
    )
    .await?;
    record(
        "11-sipe-refresh",
        "pidgin-sipe signs in, refreshes by re-INVITE (CSeq back to 1), dials",
        async |lab| {
            let a = lab.signed_in("alice", "sipe", ClientProfile::Sipe).await?;
            lab.lync.refresh(a).await?;
            lab.lync
                .wait_for(a, WAIT, "refresh", |e| (e.refreshes() == 1).then_some(()))
                .await?;
            dial(lab, a, "tel:+14255551002").await.map(drop)
        },
    )
    .await?;
    record(
        "12-sign-out",
        "alice signs out: MonitorStop and BYE; the PBX monitor is stopped",
        async |lab| {
            let a = lab
                .signed_in("alice", "desk", ClientProfile::Lync2013)
                .await?;
            lab.lync.sign_out(a).await?;
            for _ in 0..300 {
                if lab.gateway()?.sessions().await? == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(())
        },
    )
    .await?;
    record(
        "13-real-sipe",
        "the real pidgin-sipe signs in at the pool's client port, dials bob, who answers and hangs up; sipe signs out",
        async |lab| {
            let server = lab
                .lync
                .clients_addr
                .ok_or_else(|| anyhow::anyhow!("the lab's pool serves no real clients"))?;
            let dir = std::env::temp_dir().join(format!("rcc-record-sipe-{}", std::process::id()));
            let mut sipe =
                rcc_lab::sipe::SipeClient::start(&rcc_lab::sipe::host()?, server, "alice@contoso.lab", &dir)?;
            let up = sipe.wait_for("monitor_cross_ref_id=", 0, WAIT).await?;
            sipe.dial("+14255551002")?;
            let rang = sipe.wait_for("<DeliveredEvent ", up, WAIT).await?;
            lab.pbx()?.answer("1002").await?;
            let talked = sipe.wait_for("<EstablishedEvent ", rang, WAIT).await?;
            lab.pbx()?.hang_up("1002").await?;
            sipe.wait_for("<ConnectionClearedEvent ", talked, WAIT).await?;
            sipe.quit().await?;
            for _ in 0..300 {
                if lab.gateway()?.sessions().await? == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        },
    )
    .await?;
    Ok(())
}
