//! End to end: the Lync simulator (pool + endpoints) → the gateway → the PBX simulator, over
//! loopback sockets, in one process.

use std::time::Duration;

use rcc_lab::lab::{Lab, LabOptions};
use rcc_protocol::csta::{AutoOriginate, CallEventKind as K, Event, Request, Response};
use rcc_simulators::lync::{ClientProfile, expect_response};

const WAIT: Duration = Duration::from_secs(10);

fn kind(e: &Event) -> Option<K> {
    match e {
        Event::Call(c) => Some(c.kind),
        _ => None,
    }
}

#[tokio::test]
async fn click_to_dial_over_tls() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let line = lab.user("alice")?.line();
    let r = lab
        .lync
        .request(
            alice,
            Request::MakeCall {
                calling: line.clone(),
                called: "tel:+14255551002".into(),
                auto_originate: Some(AutoOriginate::DoNotPrompt),
            },
            WAIT,
        )
        .await?;
    let Response::MakeCall { calling } = expect_response(r)? else {
        anyhow::bail!("expected MakeCallResponse");
    };
    assert_eq!(
        calling.device_id.as_deref(),
        Some(line.as_str()),
        "line echoed verbatim"
    );
    let (_, delivered) = lab
        .lync
        .wait_event(alice, 0, WAIT, "DeliveredEvent", |e| {
            kind(e) == Some(K::Delivered)
        })
        .await?;
    let Event::Call(d) = delivered else {
        anyhow::bail!("call event expected");
    };
    assert_eq!(
        d.subject.as_ref().and_then(|s| s.as_id()),
        Some("tel:+14255551002"),
        "the far end in E.164"
    );
    lab.pbx.answer("1002").await?;
    lab.lync
        .wait_event(alice, 0, WAIT, "EstablishedEvent", |e| {
            kind(e) == Some(K::Established)
        })
        .await?;
    let v = lab.lync.violations(alice).await?;
    assert!(v.is_empty(), "{v:?}");
    Ok(())
}
