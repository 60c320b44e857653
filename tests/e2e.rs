//! End to end: Lync client endpoints behind the simulated Front End pool → the gateway → the
//! simulated PBX, over loopback sockets (mutual TLS or TCP) in one process. Each test asserts
//! what the Lync client received and what the PBX did.

use std::time::Duration;

use rcc_lab::lab::{Lab, LabOptions, User};
use rcc_protocol::csta::{
    AutoOriginate, CallEvent, CallEventKind as K, ConnectionId, ErrorCategory, Event,
    ForwardingType, Message, Request, Response,
};
use rcc_simulators::lync::{ClientProfile, Phase, expect_response};
use rcc_simulators::pbx::{Faults, Profile};

use rcc_lab::lab::WAIT;

fn call(e: &Event) -> Option<&CallEvent> {
    match e {
        Event::Call(c) => Some(c),
        _ => None,
    }
}

/// Waits for the next call event of `kind` after index `after`; returns its index and event.
async fn event(lab: &Lab, ep: usize, after: usize, kind: K) -> anyhow::Result<(usize, CallEvent)> {
    let (i, c) = lab.lync.wait_call_event(ep, after, WAIT, kind).await?;
    Ok((i + 1, c))
}

fn lci(c: &CallEvent) -> &str {
    c.local_state.as_ref().map_or("", |s| s.as_str())
}

fn call_id(c: &CallEvent) -> String {
    c.connection
        .as_ref()
        .and_then(|x| x.call_id.clone())
        .unwrap_or_default()
}

async fn csta(lab: &Lab, ep: usize, r: Request) -> anyhow::Result<Response> {
    expect_response(lab.lync.request(ep, r, WAIT).await?)
}

async fn csta_error(lab: &Lab, ep: usize, r: Request) -> anyhow::Result<(ErrorCategory, String)> {
    match lab.lync.request(ep, r, WAIT).await? {
        Ok(Message::Error(e)) => Ok((e.category, e.value)),
        other => anyhow::bail!("expected CSTAErrorCode, got {other:?}"),
    }
}

fn me(lab: &Lab, name: &str, call: &str) -> anyhow::Result<ConnectionId> {
    Ok(ConnectionId::new(call, lab.user(name)?.line()))
}

async fn no_violations(lab: &Lab, eps: &[usize]) -> anyhow::Result<()> {
    for &ep in eps {
        let v = lab.lync.violations(ep).await?;
        anyhow::ensure!(
            v.is_empty(),
            "endpoint {ep} saw the gateway break rules: {v:?}"
        );
    }
    Ok(())
}

/// alice dials `number`; returns the call ID from MakeCallResponse.
async fn dial(lab: &Lab, ep: usize, who: &str, number: &str) -> anyhow::Result<String> {
    let line = lab.user(who)?.line();
    let r = csta(
        lab,
        ep,
        Request::MakeCall {
            calling: line.clone(),
            called: number.into(),
            auto_originate: Some(AutoOriginate::DoNotPrompt),
        },
    )
    .await?;
    let Response::MakeCall { calling } = r else {
        anyhow::bail!("expected MakeCallResponse, got {r:?}");
    };
    anyhow::ensure!(
        calling.device_id.as_deref() == Some(line.as_str()),
        "MakeCallResponse must echo the LineURI verbatim, got {:?}",
        calling.device_id
    );
    calling
        .call_id
        .ok_or_else(|| anyhow::anyhow!("MakeCallResponse without a callID"))
}

/// alice calls bob (extension 1002) and bob answers at his desk phone.
async fn alice_talks_to_bob(lab: &Lab, alice: usize) -> anyhow::Result<(String, usize)> {
    let id = dial(lab, alice, "alice", "tel:+14255551002").await?;
    let (n, _) = event(lab, alice, 0, K::Delivered).await?;
    lab.pbx()?.answer("1002").await?;
    let (n, est) = event(lab, alice, n, K::Established).await?;
    anyhow::ensure!(lci(&est) == "connected");
    Ok((id, n))
}

#[tokio::test]
async fn click_to_dial_answered_then_cleared_over_tls() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let (id, n) = alice_talks_to_bob(&lab, alice).await?;
    let events = lab.lync.events(alice).await?;
    let kinds: Vec<K> = events
        .iter()
        .filter_map(|s| call(&s.event))
        .map(|c| c.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            K::ServiceInitiated,
            K::Originated,
            K::Delivered,
            K::Established
        ]
    );
    let (_, d) = event(&lab, alice, 0, K::Delivered).await?;
    assert_eq!(
        d.subject.as_ref().and_then(|s| s.as_id()),
        Some("tel:+14255551002")
    );
    assert_eq!(lci(&d), "connected");
    let calls = lab.pbx()?.calls().await?;
    assert_eq!(calls[0].call_id, id);
    assert!(calls[0].parties.iter().all(|p| p.state == "connected"));
    csta(
        &lab,
        alice,
        Request::ClearConnection {
            connection: me(&lab, "alice", &id)?,
            reason: None,
        },
    )
    .await?;
    let (_, cc) = event(&lab, alice, n, K::ConnectionCleared).await?;
    assert_eq!(lci(&cc), "null");
    assert!(lab.pbx()?.calls().await?.is_empty());
    // The endpoint forgets the call and every connection it saw in it (bob's was never
    // reported cleared to alice's monitor): a long load run's memory stays flat.
    let left = lab
        .lync
        .wait_for(alice, WAIT, "the call forgotten", |e| {
            Some((e.calls().len(), e.remembered_connections()))
        })
        .await?;
    assert_eq!(
        left,
        (0, 0),
        "calls and connections the endpoint still holds"
    );
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn click_to_dial_over_tcp_with_osv_pbx() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        tls: false,
        pbx_profile: Profile::Osv,
        ..LabOptions::default()
    })
    .await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let (id, _) = alice_talks_to_bob(&lab, alice).await?;
    assert_eq!(id.len(), 32, "OSV call IDs pass through opaque");
    // OSV decorates device IDs (N<1002>;noa=nk); the client sees E.164.
    let (_, d) = event(&lab, alice, 0, K::Delivered).await?;
    assert_eq!(
        d.subject.as_ref().and_then(|s| s.as_id()),
        Some("tel:+14255551002")
    );
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn click_to_dial_with_aes_pbx_session() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        pbx_profile: Profile::Aes,
        ..LabOptions::default()
    })
    .await?;
    let links = lab.pbx()?.links().await?;
    assert!(
        links[0].session_id.is_some(),
        "the gateway opened an ECMA-354 session"
    );
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    alice_talks_to_bob(&lab, alice).await?;
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn busy_and_invalid_destinations() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    lab.pbx()?
        .set_external(
            "+15550000001",
            rcc_simulators::pbx::ExternalParty::unreachable(rcc_simulators::pbx::Reach::Busy),
        )
        .await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    dial(&lab, alice, "alice", "tel:+15550000001").await?;
    let (_, f) = event(&lab, alice, 0, K::Failed).await?;
    assert_eq!(f.cause.as_ref().map(|c| c.as_str()), Some("busy"));
    assert_eq!(lci(&f), "fail");
    // An undialable number is refused by the PBX and the client gets the CSTA error.
    let line = lab.user("alice")?.line();
    let (cat, value) = csta_error(
        &lab,
        alice,
        Request::MakeCall {
            calling: line,
            called: "tel:alice-at-home".into(),
            auto_originate: None,
        },
    )
    .await?;
    assert_eq!(
        (cat, value.as_str()),
        (ErrorCategory::Operation, "invalidCalledDeviceID")
    );
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn incoming_call_answered_from_lync_then_caller_hangs_up() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let id = lab.pbx()?.incoming("+14255550200", "1001").await?;
    let (n, d) = event(&lab, alice, 0, K::Delivered).await?;
    assert_eq!(lci(&d), "alerting");
    assert_eq!(
        d.calling.as_ref().and_then(|s| s.as_id()),
        Some("tel:+14255550200")
    );
    assert_eq!(call_id(&d), id);
    csta(
        &lab,
        alice,
        Request::AnswerCall {
            call: me(&lab, "alice", &id)?,
        },
    )
    .await?;
    let (n, _) = event(&lab, alice, n, K::Established).await?;
    assert_eq!(lab.pbx()?.calls().await?[0].parties[1].state, "connected");
    lab.pbx()?.hang_up("+14255550200").await?;
    let (_, cc) = event(&lab, alice, n, K::ConnectionCleared).await?;
    assert_eq!(lci(&cc), "null");
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn incoming_call_answered_at_the_desk_phone() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    lab.pbx()?.incoming("+14255550200", "1001").await?;
    let (n, _) = event(&lab, alice, 0, K::Delivered).await?;
    lab.pbx()?.answer("1001").await?;
    let (_, e) = event(&lab, alice, n, K::Established).await?;
    assert_eq!(lci(&e), "connected");
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn hold_and_retrieve() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let (id, n) = alice_talks_to_bob(&lab, alice).await?;
    csta(
        &lab,
        alice,
        Request::HoldCall {
            call: me(&lab, "alice", &id)?,
            reservation: None,
        },
    )
    .await?;
    let (n, h) = event(&lab, alice, n, K::Held).await?;
    assert_eq!(lci(&h), "hold");
    csta(
        &lab,
        alice,
        Request::RetrieveCall {
            call: me(&lab, "alice", &id)?,
        },
    )
    .await?;
    let (_, r) = event(&lab, alice, n, K::Retrieved).await?;
    assert_eq!(lci(&r), "connected");
    no_violations(&lab, &[alice]).await
}

/// alice talks to bob, then consults carol, who answers: returns (C1, C2, next index).
async fn consulting(lab: &Lab, alice: usize) -> anyhow::Result<(String, String, usize)> {
    let (c1, n) = alice_talks_to_bob(lab, alice).await?;
    let r = csta(
        lab,
        alice,
        Request::ConsultationCall {
            existing: me(lab, "alice", &c1)?,
            consulted: "tel:+14255551003".into(),
        },
    )
    .await?;
    let Response::ConsultationCall { initiated } = r else {
        anyhow::bail!("ConsultationCallResponse expected");
    };
    let c2 = initiated.call_id.unwrap_or_default();
    let (n, h) = event(lab, alice, n, K::Held).await?;
    assert_eq!(call_id(&h), c1);
    let (n, _) = event(lab, alice, n, K::Delivered).await?;
    lab.pbx()?.answer("1003").await?;
    let (n, _) = event(lab, alice, n, K::Established).await?;
    Ok((c1, c2, n))
}

#[tokio::test]
async fn consultation_then_transfer() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let (c1, c2, n) = consulting(&lab, alice).await?;
    csta(
        &lab,
        alice,
        Request::TransferCall {
            held: me(&lab, "alice", &c1)?,
            active: me(&lab, "alice", &c2)?,
        },
    )
    .await?;
    let (_, t) = event(&lab, alice, n, K::Transferred).await?;
    assert_eq!(lci(&t), "null");
    let calls = lab.pbx()?.calls().await?;
    assert_eq!(calls.len(), 1);
    let parties: Vec<_> = calls[0]
        .parties
        .iter()
        .map(|p| (p.device.as_str(), p.state.as_str()))
        .collect();
    assert_eq!(parties, vec![("1002", "connected"), ("1003", "connected")]);
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn alternate_reconnect_and_conference() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let (c1, c2, n) = consulting(&lab, alice).await?;
    csta(
        &lab,
        alice,
        Request::AlternateCall {
            held: me(&lab, "alice", &c1)?,
            active: me(&lab, "alice", &c2)?,
        },
    )
    .await?;
    let (n, h) = event(&lab, alice, n, K::Held).await?;
    assert_eq!(call_id(&h), c2);
    let (n, r) = event(&lab, alice, n, K::Retrieved).await?;
    assert_eq!(call_id(&r), c1);
    // Now C1 (bob) is active and C2 (carol) held: conference them.
    let resp = csta(
        &lab,
        alice,
        Request::ConferenceCall {
            held: me(&lab, "alice", &c2)?,
            active: me(&lab, "alice", &c1)?,
        },
    )
    .await?;
    let Response::ConferenceCall { connections, .. } = resp else {
        anyhow::bail!("ConferenceCallResponse expected");
    };
    assert_eq!(connections.len(), 3);
    let line = lab.user("alice")?.line();
    assert!(
        connections
            .iter()
            .any(|c| c.endpoint.as_deref() == Some(line.as_str())),
        "the line appears verbatim in the conference list: {connections:?}"
    );
    let (_, c) = event(&lab, alice, n, K::Conferenced).await?;
    assert_eq!(lci(&c), "connected");
    assert_eq!(lab.pbx()?.calls().await?[0].parties.len(), 3);
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn reconnect_drops_the_consultation() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let (c1, c2, n) = consulting(&lab, alice).await?;
    csta(
        &lab,
        alice,
        Request::ReconnectCall {
            active: me(&lab, "alice", &c2)?,
            held: me(&lab, "alice", &c1)?,
        },
    )
    .await?;
    let (n, cc) = event(&lab, alice, n, K::ConnectionCleared).await?;
    assert_eq!(call_id(&cc), c2);
    let (_, r) = event(&lab, alice, n, K::Retrieved).await?;
    assert_eq!(call_id(&r), c1);
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn single_step_transfer() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let carol = lab
        .signed_in("carol", "c1", ClientProfile::Lync2013)
        .await?;
    let (id, n) = alice_talks_to_bob(&lab, alice).await?;
    csta(
        &lab,
        alice,
        Request::SingleStepTransferCall {
            active: me(&lab, "alice", &id)?,
            transferred_to: "tel:+14255551003".into(),
        },
    )
    .await?;
    let (_, t) = event(&lab, alice, n, K::Transferred).await?;
    assert_eq!(lci(&t), "null");
    let (_, d) = event(&lab, carol, 0, K::Delivered).await?;
    assert_eq!(lci(&d), "alerting");
    assert_eq!(
        d.calling.as_ref().and_then(|s| s.as_id()),
        Some("tel:+14255551002")
    );
    no_violations(&lab, &[alice, carol]).await
}

#[tokio::test]
async fn deflect_a_ringing_call() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let id = lab.pbx()?.incoming("+14255550200", "1001").await?;
    let (n, _) = event(&lab, alice, 0, K::Delivered).await?;
    csta(
        &lab,
        alice,
        Request::DeflectCall {
            call: me(&lab, "alice", &id)?,
            new_destination: "tel:+14255551003".into(),
        },
    )
    .await?;
    let (_, d) = event(&lab, alice, n, K::Diverted).await?;
    assert_eq!(lci(&d), "null");
    let calls = lab.pbx()?.calls().await?;
    assert_eq!(calls[0].parties[1].device, "1003");
    assert_eq!(calls[0].parties[1].state, "alerting");
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn dtmf_reaches_the_pbx() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let (id, _) = alice_talks_to_bob(&lab, alice).await?;
    csta(
        &lab,
        alice,
        Request::GenerateDigits {
            connection: me(&lab, "alice", &id)?,
            digits: "1234#".into(),
            tone_duration: None,
        },
    )
    .await?;
    assert_eq!(lab.pbx()?.calls().await?[0].digits, "1234#");
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn forwarding_set_read_back_reported_and_applied() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let carol = lab
        .signed_in("carol", "c1", ClientProfile::Lync2013)
        .await?;
    let line = lab.user("alice")?.line();
    csta(
        &lab,
        alice,
        Request::SetForwarding {
            device: line.clone(),
            forwarding_type: ForwardingType::Immediate,
            activate: true,
            forward_dn: Some("tel:+14255551003".into()),
            ring_count: None,
        },
    )
    .await?;
    let (_, fwd) = lab
        .lync
        .wait_event(alice, 0, WAIT, "ForwardingEvent", |e| {
            matches!(e, Event::Forwarding(_))
        })
        .await?;
    let Event::Forwarding(f) = fwd else {
        anyhow::bail!("ForwardingEvent expected");
    };
    assert!(f.status);
    assert_eq!(f.forward_to.as_deref(), Some("tel:+14255551003"));
    assert_eq!(f.device.as_id(), Some(line.as_str()));
    let r = csta(
        &lab,
        alice,
        Request::GetForwarding {
            device: line.clone(),
        },
    )
    .await?;
    let Response::GetForwarding { items } = r else {
        anyhow::bail!("GetForwardingResponse expected");
    };
    let cfu = items
        .iter()
        .find(|i| i.forwarding_type == ForwardingType::Immediate)
        .ok_or_else(|| anyhow::anyhow!("no forwardImmediate item"))?;
    assert!(cfu.status);
    assert_eq!(cfu.forward_dn.as_deref(), Some("tel:+14255551003"));
    lab.pbx()?.incoming("+14255550200", "1001").await?;
    let (_, d) = event(&lab, alice, 0, K::Diverted).await?;
    assert_eq!(
        d.cause.as_ref().map(|c| c.as_str()),
        Some("callForwardImmediate")
    );
    let (_, dc) = event(&lab, carol, 0, K::Delivered).await?;
    // carol sees alice's line as any other party: E.164.
    assert_eq!(
        dc.last_redirection.as_ref().and_then(|s| s.as_id()),
        Some("tel:+14255551001")
    );
    no_violations(&lab, &[alice, carol]).await
}

#[tokio::test]
async fn do_not_disturb() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let line = lab.user("alice")?.line();
    csta(
        &lab,
        alice,
        Request::SetDoNotDisturb {
            device: line,
            on: true,
        },
    )
    .await?;
    lab.lync
        .wait_event(
            alice,
            0,
            WAIT,
            "DoNotDisturbEvent",
            |e| matches!(e, Event::DoNotDisturb(d) if d.on),
        )
        .await?;
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn two_endpoints_of_one_user_share_one_pbx_monitor() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let pc = lab
        .signed_in("alice", "pc", ClientProfile::Lync2013)
        .await?;
    let laptop = lab
        .signed_in("alice", "laptop", ClientProfile::Lync2013)
        .await?;
    assert_eq!(lab.gateway()?.monitors().await?, 1);
    let pbx_monitors: usize = lab
        .pbx()?
        .links()
        .await?
        .iter()
        .map(|l| l.monitors.len())
        .sum();
    assert_eq!(pbx_monitors, 1, "one PBX monitor for the device");
    let id = lab.pbx()?.incoming("+14255550200", "1001").await?;
    let (_, a) = event(&lab, pc, 0, K::Delivered).await?;
    let (_, b) = event(&lab, laptop, 0, K::Delivered).await?;
    assert_ne!(
        a.cross_ref, b.cross_ref,
        "each endpoint has its own monitorCrossRefID"
    );
    // Answered from one endpoint, both see it.
    csta(
        &lab,
        laptop,
        Request::AnswerCall {
            call: me(&lab, "alice", &id)?,
        },
    )
    .await?;
    event(&lab, pc, 0, K::Established).await?;
    event(&lab, laptop, 0, K::Established).await?;
    // One signs out: the PBX monitor stays for the other.
    lab.lync.sign_out(laptop).await?;
    lab.until_holding(1, 1).await?;
    assert_eq!(lab.gateway()?.sessions().await?, 1);
    assert_eq!(lab.gateway()?.monitors().await?, 1);
    no_violations(&lab, &[pc, laptop]).await
}

#[tokio::test]
async fn sign_out_releases_the_pbx_monitor() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    lab.lync.sign_out(alice).await?;
    lab.until_holding(0, 0).await
}

#[tokio::test]
async fn a_user_may_not_control_another_line() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let bob_line = lab.user("bob")?.line();
    let (cat, value) = csta_error(
        &lab,
        alice,
        Request::MakeCall {
            calling: bob_line,
            called: "tel:+14255551003".into(),
            auto_originate: None,
        },
    )
    .await?;
    assert_eq!(
        (cat, value.as_str()),
        (
            ErrorCategory::Operation,
            "privilegeViolationSpecifiedDevice"
        )
    );
    assert!(
        lab.pbx()?.calls().await?.is_empty(),
        "nothing reached the PBX"
    );
    Ok(())
}

#[tokio::test]
async fn authorization_table_refuses_an_unlisted_line_and_allows_a_shared_one() -> anyhow::Result<()>
{
    let lab = Lab::start(LabOptions {
        gateway_tweak: Some(|c| {
            c.authorization.users = vec![
                rcc_gateway::config::UserLines {
                    uri: "sip:alice@contoso.lab".into(),
                    lines: vec!["tel:+14255551001;ext=1001".into()],
                },
                rcc_gateway::config::UserLines {
                    uri: "sip:bob@contoso.lab".into(),
                    lines: vec![
                        "tel:+14255551002;ext=1002".into(),
                        "tel:+14255551001;ext=1001".into(),
                    ],
                },
            ];
        }),
        ..LabOptions::default()
    })
    .await?;
    // carol is not in the table.
    let carol = lab.endpoint("carol", "c1", ClientProfile::Lync2013).await?;
    lab.lync.sign_in(carol).await?;
    let phase = lab
        .lync
        .wait_for(carol, WAIT, "refusal", |e| match e.phase() {
            Phase::Failed(w) => Some(w.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(phase, "INVITE answered 403");
    // bob may sign in on alice's line too: two users on one line.
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let bob_on_alice = lab
        .endpoint_on_line(
            "sip:bob@contoso.lab",
            &User::new("alice", "1001").line(),
            "b1",
            ClientProfile::Lync2013,
        )
        .await?;
    lab.lync.sign_in(bob_on_alice).await?;
    lab.lync.wait_ready(bob_on_alice, WAIT).await?;
    lab.pbx()?.incoming("+14255550200", "1001").await?;
    event(&lab, alice, 0, K::Delivered).await?;
    event(&lab, bob_on_alice, 0, K::Delivered).await?;
    no_violations(&lab, &[alice, bob_on_alice]).await
}

#[tokio::test]
async fn static_route_mismatch_gives_404_from_the_pool() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        match_uri: "elsewhere.example".into(),
        ..LabOptions::default()
    })
    .await?;
    let alice = lab.endpoint("alice", "a1", ClientProfile::Lync2013).await?;
    lab.lync.sign_in(alice).await?;
    let phase = lab
        .lync
        .wait_for(alice, WAIT, "404", |e| match e.phase() {
            Phase::Failed(w) => Some(w.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(phase, "INVITE answered 404");
    assert_eq!(lab.lync.stats().await?.no_route, 1);
    assert_eq!(lab.gateway()?.sessions().await?, 0);
    Ok(())
}

#[tokio::test]
async fn route_to_an_untrusted_gateway_is_not_applied() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        gateway_trusted: false,
        ..LabOptions::default()
    })
    .await?;
    let alice = lab.endpoint("alice", "a1", ClientProfile::Lync2013).await?;
    lab.lync.sign_in(alice).await?;
    let phase = lab
        .lync
        .wait_for(alice, WAIT, "404", |e| match e.phase() {
            Phase::Failed(w) => Some(w.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(phase, "INVITE answered 404");
    Ok(())
}

#[tokio::test]
async fn malformed_csta_body_gets_400_and_the_session_survives() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let r = lab
        .lync
        .raw_info(
            alice,
            "application/csta+xml",
            b"<MakeCall><callingDevice>".to_vec(),
            WAIT,
        )
        .await?;
    assert_eq!(r, Err("SIP 400".to_owned()));
    let r = lab
        .lync
        .raw_info(alice, "text/plain", b"hello".to_vec(), WAIT)
        .await?;
    assert_eq!(r, Err("SIP 415".to_owned()));
    alice_talks_to_bob(&lab, alice).await?;
    Ok(())
}

#[tokio::test]
async fn pbx_link_lost_and_restored_mid_call() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let (id, n) = alice_talks_to_bob(&lab, alice).await?;
    lab.pbx()?.drop_links(true).await?;
    // While down, requests get a CSTA error, not a hung INFO.
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The gateway reconnects, re-creates the monitor and keeps the session.
    lab.eventually(
        "the monitor re-created after the link came back",
        WAIT,
        async |lab| Ok((lab.pbx_monitors().await? == 1).then_some(())),
    )
    .await?;
    assert_eq!(lab.gateway()?.sessions().await?, 1);
    // The call survived on the PBX; events flow again.
    lab.pbx()?.hang_up("1002").await?;
    let (_, cc) = event(&lab, alice, n, K::ConnectionCleared).await?;
    assert_eq!(call_id(&cc), id);
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn pbx_link_down_answers_requests_and_new_sessions() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        gateway_tweak: Some(|c| {
            c.pbx.reconnect_min_ms = 60_000;
            c.pbx.reconnect_max_ms = 60_000;
        }),
        ..LabOptions::default()
    })
    .await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    lab.pbx()?.drop_links(false).await?;
    lab.eventually("the gateway sees the link down", WAIT, async |lab| {
        Ok((!lab.gateway()?.pbx_serving().await?).then_some(()))
    })
    .await?;
    let line = lab.user("alice")?.line();
    let (cat, value) = csta_error(
        &lab,
        alice,
        Request::MakeCall {
            calling: line,
            called: "tel:+14255551002".into(),
            auto_originate: None,
        },
    )
    .await?;
    assert_eq!(
        (cat, value.as_str()),
        (
            ErrorCategory::SystemResourceAvailability,
            "resourceOutOfService"
        )
    );
    let bob = lab.endpoint("bob", "b1", ClientProfile::Lync2013).await?;
    lab.lync.sign_in(bob).await?;
    // 503 makes the client retry; it stays out until the link returns.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_ne!(lab.lync.phase(bob).await?, Phase::Ready);
    assert_eq!(
        lab.gateway()?.sessions().await?,
        1,
        "alice's session survives"
    );
    Ok(())
}

#[tokio::test]
async fn pbx_session_terminated_is_restarted() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        pbx_profile: Profile::Aes,
        ..LabOptions::default()
    })
    .await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let before = lab.pbx()?.links().await?[0].session_id.clone();
    lab.pbx()?.terminate_sessions().await?;
    lab.eventually(
        "a new CTI session with the monitor re-created",
        WAIT,
        async |lab| {
            let links = lab.pbx()?.links().await?;
            Ok(links.first().and_then(|l| {
                (l.session_id.is_some() && l.session_id != before && l.monitors.len() == 1)
                    .then_some(())
            }))
        },
    )
    .await?;
    lab.pbx()?.incoming("+14255550200", "1001").await?;
    event(&lab, alice, 0, K::Delivered).await?;
    Ok(())
}

#[tokio::test]
async fn events_before_the_response_are_held_back() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab.signed_in("alice", "a1", ClientProfile::Sipe).await?;
    lab.pbx()?
        .set_faults(Faults {
            events_before_response: true,
            ..Faults::default()
        })
        .await?;
    dial(&lab, alice, "alice", "tel:+14255551002").await?;
    event(&lab, alice, 0, K::Delivered).await?;
    // The endpoint flags any ServiceInitiated/Originated seen before MakeCallResponse.
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn pbx_answers_too_slowly() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    lab.pbx()?
        .set_faults(Faults {
            drop_responses: true,
            ..Faults::default()
        })
        .await?;
    let line = lab.user("alice")?.line();
    let (cat, value) = csta_error(
        &lab,
        alice,
        Request::MakeCall {
            calling: line,
            called: "tel:+14255551002".into(),
            auto_originate: None,
        },
    )
    .await?;
    assert_eq!(
        (cat, value.as_str()),
        (ErrorCategory::SystemResourceAvailability, "resourceBusy")
    );
    Ok(())
}

/// Thirty clients sign in at once against a PBX that accepts 25 requests a second: the
/// gateway paces its MonitorStarts (`pbx.pace_per_s = 10`, a burst of 5), so every one is
/// granted and the PBX refuses none. (Unpaced, the thirty arrive within a second and the PBX
/// answers several with resourceBusy.)
#[tokio::test]
async fn a_sign_in_storm_is_paced_to_what_the_pbx_accepts() -> anyhow::Result<()> {
    let users: Vec<User> = (0..30)
        .map(|i| User::new(&format!("u{i}"), &format!("{}", 2000 + i)))
        .collect();
    let lab = Lab::start(LabOptions {
        users: users.clone(),
        gateway_tweak: Some(|c| {
            c.pbx.pace_per_s = 10.0;
            c.pbx.pace_burst = 5;
        }),
        pbx_tweak: Some(|p| p.requests_per_s = Some(25)),
        ..LabOptions::default()
    })
    .await?;
    let mut endpoints = Vec::new();
    for u in &users {
        let id = lab.endpoint(&u.name, "e1", ClientProfile::Lync2013).await?;
        lab.lync.sign_in(id).await?;
        endpoints.push(id);
    }
    for id in endpoints {
        lab.lync.wait_ready(id, WAIT).await?;
    }
    let refused = lab
        .pbx()?
        .with(|p, _| p.errors().get("request over the rate limit").copied())
        .await?;
    assert_eq!(refused, None, "the PBX refused requests over its rate");
    assert_eq!(lab.gateway()?.monitors().await?, 30);
    Ok(())
}

/// The PBX ends alice's device monitor on its own (a switch-initiated MonitorStop): the
/// gateway acknowledges it and starts the monitor again, and alice's events keep coming under
/// the cross-reference ID she already has.
#[tokio::test]
async fn a_monitor_the_pbx_ends_is_started_again() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let pbx = lab.pbx()?;
    let monitors = || async {
        anyhow::Ok(
            pbx.links()
                .await?
                .into_iter()
                .flat_map(|l| l.monitors)
                .filter(|(_, device)| device == "1001")
                .map(|(xref, _)| xref)
                .collect::<Vec<_>>(),
        )
    };
    let first = monitors().await?;
    anyhow::ensure!(first.len() == 1, "one monitor on alice's phone: {first:?}");
    anyhow::ensure!(pbx.end_monitor(&first[0]).await?, "the PBX ended it");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = monitors().await?;
        if now.len() == 1 && now != first {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the monitor was not started again: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dial(&lab, alice, "alice", "tel:+14255551002").await?;
    event(&lab, alice, 0, K::Delivered).await?;
    no_violations(&lab, &[alice]).await
}

/// A PBX that stops answering (its TCP connection stays open) is noticed after
/// `pbx.timeouts_before_drop` requests in a row time out: the gateway drops the link,
/// reconnects, and serves again once the PBX answers.
#[tokio::test]
async fn a_pbx_that_stops_answering_is_dropped_and_reconnected() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        gateway_tweak: Some(|c| {
            c.pbx.timeouts_before_drop = 2;
            c.pbx.request_timeout_ms = 500;
        }),
        ..LabOptions::default()
    })
    .await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let pbx = lab.pbx()?;
    let first: Vec<_> = pbx.links().await?.iter().map(|l| l.link).collect();
    anyhow::ensure!(first.len() == 1, "one link at first: {first:?}");
    pbx.set_faults(Faults {
        drop_responses: true,
        ..Faults::default()
    })
    .await?;
    let device = lab.user("alice")?.line();
    let snapshot = || Request::SnapshotDevice {
        device: device.clone(),
    };
    let (a, b) = tokio::join!(
        csta_error(&lab, alice, snapshot()),
        csta_error(&lab, alice, snapshot())
    );
    a?;
    b?;
    pbx.set_faults(Faults::default()).await?;
    // A new link replaces the silent one.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now: Vec<_> = pbx.links().await?.iter().map(|l| l.link).collect();
        if now.len() == 1 && now != first {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the silent link was not replaced: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lab.wait_pbx_link().await?;
    let r = csta(&lab, alice, snapshot()).await?;
    anyhow::ensure!(
        matches!(r, Response::SnapshotDevice { .. }),
        "served again: {r:?}"
    );
    Ok(())
}

#[rstest::rstest]
#[case::lync2013(ClientProfile::Lync2013, "UPDATE")]
#[case::oc2007r2(ClientProfile::Oc2007r2, "UPDATE")]
#[case::oc2007(ClientProfile::Oc2007, "INVITE")]
#[case::sipe(ClientProfile::Sipe, "INVITE")]
#[tokio::test]
async fn each_client_profile_refreshes_and_keeps_working(
    #[case] profile: ClientProfile,
    #[case] method: &str,
) -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let alice = lab.signed_in("alice", "a1", profile).await?;
    lab.lync.refresh(alice).await?;
    lab.lync
        .wait_for(alice, WAIT, "refresh answered", |e| {
            (e.refreshes() == 1).then_some(())
        })
        .await?;
    let text = lab.gateway()?.metrics.encode();
    assert!(
        text.contains(&format!(
            "rcc_gateway_sip_requests_total{{method=\"{method}\"}}"
        )),
        "the gateway saw {method}: {text}"
    );
    // After the refresh (and, for sipe, CSeq back to 1), requests still work.
    alice_talks_to_bob(&lab, alice).await?;
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn gateway_restart_clients_re_establish() -> anyhow::Result<()> {
    let mut lab = Lab::start(LabOptions::default()).await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    lab.restart_gateway().await?;
    assert_eq!(lab.gateway()?.sessions().await?, 0);
    // The client's next refresh meets a gateway that does not know the dialog: 481, then a
    // new INVITE.
    lab.lync.refresh(alice).await?;
    lab.lync
        .wait_for(alice, WAIT, "second sign-in", |e| {
            (e.sign_ins() == 2 && e.phase() == &Phase::Ready).then_some(())
        })
        .await?;
    assert_eq!(lab.gateway()?.sessions().await?, 1);
    lab.pbx()?.incoming("+14255550200", "1001").await?;
    let n = lab.lync.events(alice).await?.len();
    event(&lab, alice, n.saturating_sub(1), K::Delivered).await?;
    Ok(())
}

/// A TLS client with a certificate for `name` from the lab's CA... or from a CA of its own.
async fn tls_hello(
    addr: std::net::SocketAddr,
    ca: &rcc_simulators::tls::LabCa,
    name: &str,
    trusted_ca: bool,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let other = rcc_simulators::tls::LabCa::new("rogue CA").expect("CA");
    let id = if trusted_ca {
        ca.issue(&[name])
    } else {
        other.issue(&[name])
    }
    .expect("cert");
    // Trust anything on the server side for this probe: we test the gateway's decision.
    let config = rcc_simulators::tls::client_config(ca.roots(), Some(&id)).expect("client config");
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let sn = tokio_rustls::rustls::pki_types::ServerName::try_from(rcc_lab::lab::GATEWAY_FQDN)
        .expect("name");
    let Ok(mut tls) = tokio_rustls::TlsConnector::from(config)
        .connect(sn, tcp)
        .await
    else {
        return false;
    };
    let options = "OPTIONS sip:gw.lab.example SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKprobe\r\nMax-Forwards: 70\r\nFrom: <sip:probe@lab>;tag=p\r\nTo: <sip:gw.lab.example>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    if tls.write_all(options.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(Duration::from_secs(3), tls.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"),
        _ => false,
    }
}

#[tokio::test]
async fn gateway_refuses_peers_that_are_not_trusted() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions::default()).await?;
    let addr = lab
        .gateway()?
        .sip_tls
        .ok_or_else(|| anyhow::anyhow!("TLS listener"))?;
    // The Front End's name is trusted: OPTIONS answered.
    assert!(
        tls_hello(addr, &lab.ca, "fe.lab.example", true).await,
        "trusted peer refused"
    );
    // A valid certificate from the same CA, but for a name that is not a trusted peer.
    assert!(
        !tls_hello(addr, &lab.ca, "rogue.lab.example", true).await,
        "untrusted name accepted"
    );
    // A certificate from a CA the gateway does not trust fails the handshake.
    assert!(
        !tls_hello(addr, &lab.ca, "fe.lab.example", false).await,
        "unknown CA accepted"
    );
    let counted = lab
        .eventually(
            "both refusals counted",
            Duration::from_secs(2),
            async |lab| Ok((lab.gateway()?.metrics.refused_peers.get() >= 2).then_some(())),
        )
        .await;
    anyhow::ensure!(
        counted.is_ok(),
        "refusals not counted: {}",
        lab.gateway()?.metrics.refused_peers.get()
    );
    Ok(())
}

#[tokio::test]
async fn gateway_refuses_tcp_peers_with_an_unpinned_address() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        tls: false,
        gateway_tweak: Some(|c| {
            c.sip.trusted_peers = vec![rcc_gateway::config::TrustedPeer {
                name: None,
                ip: Some("10.9.9.9".parse().expect("ip")),
                net: None,
            }];
        }),
        ..LabOptions::default()
    })
    .await?;
    let alice = lab.endpoint("alice", "a1", ClientProfile::Lync2013).await?;
    lab.lync.sign_in(alice).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_ne!(lab.lync.phase(alice).await?, Phase::Ready);
    assert_eq!(lab.gateway()?.sessions().await?, 0);
    assert!(lab.gateway()?.metrics.refused_peers.get() >= 1);
    Ok(())
}

#[tokio::test]
async fn graceful_shutdown_says_bye_and_stops_the_pbx_session() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        pbx_profile: Profile::Aes,
        ..LabOptions::default()
    })
    .await?;
    lab.signed_in("alice", "a1", ClientProfile::Sipe).await?;
    lab.gateway()?.shutdown().await?;
    let trace = lab.lync.trace().await?;
    assert!(
        trace
            .iter()
            .any(|t| t.from == "gateway" && t.label == "BYE"),
        "the client got a BYE"
    );
    let log = lab.pbx()?.log_since(0).await?;
    assert!(
        log.iter().any(|e| e.root == "StopApplicationSession"),
        "the PBX session was stopped"
    );
    Ok(())
}

#[tokio::test]
async fn pbx_heartbeat_is_answered_and_session_timer_reset_in_time() -> anyhow::Result<()> {
    // OpenScape Voice polls with SystemStatus; the gateway must answer every one.
    let lab = Lab::start(LabOptions {
        pbx_profile: Profile::Osv,
        pbx_tweak: Some(|c| {
            if let Some(h) = c.heartbeat.as_mut() {
                h.interval = Duration::from_millis(100);
                h.max_misses = 2;
            }
        }),
        ..LabOptions::default()
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let links = lab.pbx()?.links().await?;
    assert_eq!(links.len(), 1, "the link survived the heartbeats");
    assert_eq!(links[0].heartbeat_misses, 0);
    // Avaya AES: a 2-second session must be reset at half its duration, not later.
    let lab = Lab::start(LabOptions {
        pbx_profile: Profile::Aes,
        pbx_tweak: Some(|c| c.session.max_duration = Duration::from_secs(2)),
        ..LabOptions::default()
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let links = lab.pbx()?.links().await?;
    assert_eq!(links.len(), 1, "the session did not expire");
    assert!(links[0].resets >= 2, "resets: {}", links[0].resets);
    assert_eq!(links[0].late_resets, 0);
    Ok(())
}

#[tokio::test]
async fn pbx_link_with_nul_framing() -> anyhow::Result<()> {
    let lab = Lab::start(LabOptions {
        pbx_tweak: Some(|c| c.framing = rcc_simulators::pbx::Framing::Nul),
        gateway_tweak: Some(|c| c.pbx.framing = rcc_gateway::config::PbxFraming::Nul),
        ..LabOptions::default()
    })
    .await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    alice_talks_to_bob(&lab, alice).await?;
    no_violations(&lab, &[alice]).await
}

#[tokio::test]
async fn pbx_link_over_tls_via_the_secondary_address() -> anyhow::Result<()> {
    let ca = rcc_simulators::tls::LabCa::new("pbx CA")?;
    let id = ca.issue(&["pbx.lab.example"])?;
    let listen = rcc_simulators::pbx::Listen {
        tcp: None,
        tls: Some((
            "127.0.0.1:0".parse()?,
            rcc_simulators::tls::server_config(&id, rcc_simulators::tls::ClientAuth::None)?,
        )),
    };
    let pbx = rcc_simulators::pbx::PbxSim::start(
        rcc_simulators::pbx::PbxConfig::for_profile(Profile::Generic),
        vec![rcc_simulators::pbx::DeviceConfig::new("1001", None)],
        listen,
    )
    .await?;
    let dir = std::env::temp_dir().join(format!("rcc-lab-pbxtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca_path = dir.join("pbx-ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem)?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let toml = format!(
        r#"
[sip]
listen_tcp = "127.0.0.1:0"
host = "127.0.0.1"
trusted_peer = [{{ ip = "127.0.0.1" }}]
[pbx]
address = "{dead}"
secondary = "{secondary}"
transport = "tls"
tls_ca = "{ca}"
tls_name = "pbx.lab.example"
reconnect_min_ms = 50
reconnect_max_ms = 100
"#,
        secondary = pbx.tls_addr().ok_or_else(|| anyhow::anyhow!("tls"))?,
        ca = ca_path.display()
    );
    let gw = rcc_gateway::server::GatewayHandle::start(rcc_gateway::config::parse(&toml)?).await?;
    let mut up = false;
    for _ in 0..300 {
        if gw.pbx_serving().await? {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        up,
        "the gateway did not reach the PBX over TLS on the secondary address"
    );
    assert_eq!(pbx.links().await?.len(), 1);
    Ok(())
}
