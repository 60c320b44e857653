//! Per-session traces: the user filter and the wire bytes of both legs.

use super::*;

#[test]
fn per_session_traces_follow_the_user_filter_and_carry_the_wire_bytes() {
    let (dir, toml) = traced("users = [\"SIP:Alice@Contoso.lab\"]");
    let mut h = Harness::new(&toml);
    // Bob's session is not traced.
    let bob = invite_as("bob", "1002", "c2", "z9hG4bKbob", "");
    assert_eq!(h.one(bob).status(), Some(200));
    assert!(
        h.traces.is_empty(),
        "bob is not in the filter: {:?}",
        h.traces
    );

    let ok = h.signed_in("c1");
    let SessionNote::Start { session, user } = &h.traces[0] else {
        panic!("a Start note first, got {:?}", h.traces);
    };
    let alice = *session;
    assert_eq!(user, "sip:alice@contoso.lab");
    let sip_notes: Vec<(Way, Message)> = h.traces[1..]
        .iter()
        .map(|n| match n {
            SessionNote::Data {
                session,
                leg: Leg::Sip(FlowId(1)),
                way,
                bytes,
            } if *session == alice => (*way, Message::parse(bytes).expect("traced SIP parses")),
            other => panic!("alice's SIP on flow 1, got {other:?}"),
        })
        .collect();
    let seen: Vec<(Way, String)> = sip_notes
        .iter()
        .map(|(w, m)| {
            let what = m.method().map_or_else(
                || m.status().unwrap_or_default().to_string(),
                |x| x.as_str().to_owned(),
            );
            (*w, what)
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (Way::In, "INVITE".to_owned()),
            (Way::Out, "200".to_owned()),
            (Way::In, "ACK".to_owned()),
        ]
    );
    assert_eq!(
        sip_notes[1].1.to_bytes(),
        ok.to_bytes(),
        "the 200 OK as sent"
    );

    // The PBX leg: the MonitorStart frame as sent and its answer as received.
    h.traces.clear();
    let answer = h.monitor_started(&ok, "px1");
    let pbx: Vec<(Way, &Vec<u8>)> = h
        .traces
        .iter()
        .filter_map(|n| match n {
            SessionNote::Data {
                leg: Leg::Pbx,
                way,
                bytes,
                ..
            } => Some((*way, bytes)),
            _ => None,
        })
        .collect();
    let sent = &h.pbx.last().expect("MonitorStart frame").bytes;
    assert_eq!(pbx, vec![(Way::Out, sent), (Way::In, &answer)]);

    // The client's BYE ends the trace after the 200 OK.
    h.traces.clear();
    let bye = h.in_dialog(&ok, Method::Bye, 3, "z9hG4bKbye", None, b"");
    assert_eq!(h.one(bye).status(), Some(200));
    let kinds: Vec<&str> = h
        .traces
        .iter()
        .map(|n| match n {
            SessionNote::Start { .. } => "start",
            SessionNote::Data { leg: Leg::Pbx, .. } => "pbx",
            SessionNote::Data {
                leg: Leg::Sip(_), ..
            } => "sip",
            SessionNote::End { .. } => "end",
        })
        .collect();
    // BYE in, 200 OK out, the monitor released on the PBX as the session ends, end.
    assert_eq!(kinds, vec!["sip", "sip", "pbx", "end"], "{:?}", h.traces);
    let _ = std::fs::remove_dir_all(&dir);
}
