//! The gateway's pcapng trace opens in tshark: the SIP dialog (decrypted TLS leg) is dissected as
//! SIP with its CSTA bodies as XML, and with `tools/wireshark/csta.lua` the PBX link's Annex J
//! frames are dissected as CSTA. `tools/test` installs tshark; without it this test fails and says so.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rcc_lab::lab::{Lab, LabOptions};
use rcc_protocol::csta::{AutoOriginate, CallEventKind, Event, Request};
use rcc_simulators::lync::ClientProfile;

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("tshark is not installed ({e}); tools/test installs it (apt tshark)")
        });
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Alice's endpoint `id` asks for a call to `called`.
async fn alice_calls(lab: &Lab, id: usize, called: &str) -> anyhow::Result<()> {
    lab.lync
        .request(
            id,
            Request::MakeCall {
                calling: lab.user("alice")?.line(),
                called: called.to_owned(),
                auto_originate: Some(AutoOriginate::DoNotPrompt),
            },
            Duration::from_secs(5),
        )
        .await?
        .map_err(|e| anyhow::anyhow!("MakeCall failed: {e}"))?;
    Ok(())
}

/// Waits for endpoint `id`'s DeliveredEvent.
async fn delivered(lab: &Lab, id: usize) -> anyhow::Result<()> {
    lab.lync
        .wait_event(
            id,
            0,
            Duration::from_secs(5),
            "Delivered",
            |e| matches!(e, Event::Call(c) if c.kind == CallEventKind::Delivered),
        )
        .await?;
    Ok(())
}

/// Records a trace of a sign-in and a MakeCall up to its DeliveredEvent; returns the trace file
/// and the gateway's SIP TLS port.
async fn record(name: &str, options: LabOptions) -> anyhow::Result<(PathBuf, u16)> {
    let dir = std::env::temp_dir().join(format!("rcc-lab-trace-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("gateway.pcapng");
    let lab = Lab::start(LabOptions {
        trace: Some(file.clone()),
        ..options
    })
    .await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    alice_calls(&lab, alice, "tel:+14255551002").await?;
    delivered(&lab, alice).await?;
    let sip_port = lab.gateway()?.sip_tls.map(|a| a.port()).unwrap_or_default();
    lab.shutdown().await;
    Ok((file, sip_port))
}

fn lua_script() -> String {
    let lua = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/wireshark/csta.lua");
    format!("lua_script:{}", lua.display())
}

/// The CSTA documents the Lua dissector finds on the PBX leg: (invoke, root, kind, framing).
fn pbx_frames(path: &str) -> (Vec<[String; 4]>, String) {
    // Several documents can share a TCP segment: tshark lists their fields comma-separated.
    let pbx = tshark(&[
        "-X",
        &lua_script(),
        "-r",
        path,
        "-Y",
        "csta",
        "-T",
        "fields",
        "-e",
        "csta.invoke",
        "-e",
        "csta.root",
        "-e",
        "csta.kind",
        "-e",
        "csta.framing",
    ]);
    let frames = pbx
        .lines()
        .flat_map(|l| {
            let cols: Vec<Vec<String>> = l
                .split('\t')
                .map(|c| c.split(',').map(str::to_owned).collect())
                .collect();
            let n = cols.get(1).map_or(0, Vec::len);
            (0..n)
                .map(|i| {
                    std::array::from_fn(|c| {
                        cols.get(c)
                            .and_then(|v| v.get(i))
                            .cloned()
                            .unwrap_or_default()
                    })
                })
                .collect::<Vec<[String; 4]>>()
        })
        .collect();
    (frames, pbx)
}

fn has(frames: &[[String; 4]], invoke: Option<&str>, root: &str, kind: &str) -> bool {
    frames
        .iter()
        .any(|[i, r, k, _]| invoke.is_none_or(|x| x == i) && r == root && k == kind)
}

#[tokio::test]
async fn trace_of_both_legs_opens_in_tshark() -> anyhow::Result<()> {
    let (file, sip_port) = record("annex-j", LabOptions::default()).await?;
    let path = file.to_string_lossy().into_owned();
    let decode = format!("tcp.port=={sip_port},sip");
    let sip = tshark(&[
        "-r",
        &path,
        "-d",
        &decode,
        "-Y",
        "sip",
        "-T",
        "fields",
        "-e",
        "sip.CSeq.method",
        "-e",
        "sip.Status-Code",
    ]);
    for needle in ["INVITE", "ACK", "INFO"] {
        assert!(sip.contains(needle), "no SIP {needle} in the trace:\n{sip}");
    }
    assert!(sip.contains("200"), "no 200 OK in the trace:\n{sip}");
    let script = lua_script();
    // The script registers application/csta+xml bodies with the XML dissector.
    let bodies = tshark(&[
        "-X",
        &script,
        "-r",
        &path,
        "-d",
        &decode,
        "-Y",
        "sip && xml",
        "-T",
        "fields",
        "-e",
        "xml.tag",
    ]);
    assert!(
        bodies.contains("MakeCall"),
        "CSTA bodies in SIP are not dissected as XML:\n{bodies}"
    );
    let (frames, pbx) = pbx_frames(&path);
    assert!(
        frames.iter().all(|f| f[3] == "Annex J"),
        "every document is Annex J framed:\n{pbx}"
    );
    assert!(
        has(&frames, None, "MakeCall", "request"),
        "no CSTA MakeCall request on the PBX leg:\n{pbx}"
    );
    assert!(
        has(&frames, None, "MakeCallResponse", "response"),
        "no MakeCallResponse:\n{pbx}"
    );
    assert!(
        has(&frames, Some("9999"), "DeliveredEvent", "event"),
        "no DeliveredEvent with invoke 9999:\n{pbx}"
    );
    if let Some(dir) = file.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

#[tokio::test]
async fn nul_framed_pbx_link_opens_in_tshark() -> anyhow::Result<()> {
    let (file, _) = record(
        "nul",
        LabOptions {
            pbx_tweak: Some(|c| c.framing = rcc_simulators::pbx::Framing::Nul),
            gateway_tweak: Some(|c| c.pbx.framing = rcc_gateway::config::PbxFraming::Nul),
            ..LabOptions::default()
        },
    )
    .await?;
    let (frames, pbx) = pbx_frames(&file.to_string_lossy());
    assert!(
        frames.iter().all(|f| f[3] == "NUL-terminated"),
        "every document is NUL-terminated:\n{pbx}"
    );
    assert!(
        has(&frames, None, "MakeCall", "request"),
        "no CSTA MakeCall request on the NUL-framed PBX leg:\n{pbx}"
    );
    assert!(
        has(&frames, None, "MakeCallResponse", "response"),
        "no MakeCallResponse:\n{pbx}"
    );
    assert!(
        has(&frames, None, "DeliveredEvent", "event"),
        "no DeliveredEvent:\n{pbx}"
    );
    if let Some(dir) = file.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// Per-session traces: alice calls bob with both signed in; each gets a file with only its own
/// dialog and the PBX frames of its own line, which tshark dissects and our capture reader
/// rebuilds into a ladder.
#[tokio::test]
async fn per_session_traces_hold_only_their_sessions_traffic() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("rcc-lab-session-traces-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let lab = Lab::start(LabOptions {
        session_traces: Some(rcc_gateway::config::SessionTraceConfig {
            dir: dir.clone(),
            users: Vec::new(),
            max_open: 16,
        }),
        // One MonitorStart per 5 s: bob's waits in the pacer's queue and must still be in
        // his trace when it leaves.
        gateway_tweak: Some(|c| {
            c.pbx.pace_per_s = 0.2;
            c.pbx.pace_burst = 1;
        }),
        ..LabOptions::default()
    })
    .await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let bob = lab.signed_in("bob", "b1", ClientProfile::Lync2013).await?;
    let bob_number = format!("tel:{}", lab.user("bob")?.e164());
    alice_calls(&lab, alice, &bob_number).await?;
    for (who, id) in [("alice", alice), ("bob", bob)] {
        delivered(&lab, id)
            .await
            .map_err(|e| anyhow::anyhow!("{who}: {e}"))?;
    }
    for id in [alice, bob] {
        lab.lync.sign_out(id).await?;
    }
    let gw = lab.gateway()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gw.metrics.sessions.get() > 0 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "sessions still open after sign-out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sip_port = gw.sip_tls.map(|a| a.port()).unwrap_or_default();
    lab.shutdown().await;

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names.len(), 2, "one file per signed-in session: {names:?}");
    assert!(names[0].starts_with("alice@contoso.lab-"), "{names:?}");
    assert!(names[1].starts_with("bob@contoso.lab-"), "{names:?}");

    let mut call_ids = Vec::new();
    let mut xrefs = Vec::new();
    for (user, file) in ["alice", "bob"].into_iter().zip(&files) {
        let path = file.to_string_lossy().into_owned();
        // Wireshark's view: SIP of this user's dialog only, CSTA dissected by the script.
        let sip = tshark(&[
            "-r",
            &path,
            "-d",
            &format!("tcp.port=={sip_port},sip"),
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.Call-ID",
            "-e",
            "sip.from.user",
            "-e",
            "sip.to.user",
            "-e",
            "sip.CSeq.method",
        ]);
        let rows: Vec<Vec<&str>> = sip.lines().map(|l| l.split('\t').collect()).collect();
        assert!(rows.len() >= 4, "{user}: SIP rows:\n{sip}");
        for r in &rows {
            assert!(
                r.get(1) == Some(&user) || r.get(2) == Some(&user),
                "{user}'s trace holds another user's SIP: {r:?}"
            );
        }
        for method in ["INVITE", "ACK", "INFO", "BYE"] {
            assert!(
                rows.iter().any(|r| r.get(3) == Some(&method)),
                "{user}: no {method}:\n{sip}"
            );
        }
        let mut ids: Vec<&str> = rows.iter().filter_map(|r| r.first().copied()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 1, "{user}: one dialog, got {ids:?}");
        call_ids.push(ids[0].to_owned());
        let (frames, pbx) = pbx_frames(&path);
        assert!(
            has(&frames, None, "MonitorStart", "request")
                && has(&frames, None, "MonitorStartResponse", "response"),
            "{user}: its line's monitor:\n{pbx}"
        );
        assert!(
            has(&frames, Some("9999"), "DeliveredEvent", "event"),
            "{user}: its DeliveredEvent:\n{pbx}"
        );
        assert!(
            has(&frames, None, "MonitorStop", "request"),
            "{user}: the monitor released when the session left:\n{pbx}"
        );
        for other in [
            "GetCSTAFeatures",
            "SystemRegister",
            "StartApplicationSession",
        ] {
            assert!(
                !frames.iter().any(|f| f[1] == other),
                "{user}: the link's own {other} is in a session trace:\n{pbx}"
            );
        }
        assert_eq!(
            has(&frames, None, "MakeCall", "request"),
            user == "alice",
            "{user}: only the caller's trace has the MakeCall:\n{pbx}"
        );

        // Our reader's view: every PBX event in the file is for one monitor.
        let cap = rcc_lab::capture::read(file)?;
        let (steps, _) = rcc_lab::capture::ladder(&cap);
        let mut refs: Vec<String> = steps
            .iter()
            .filter_map(|s| s.frame.as_ref())
            .filter_map(|(_, xml)| rcc_protocol::csta::decode(xml).ok())
            .filter_map(|d| match d.message {
                rcc_protocol::csta::Message::Event(e) => Some(e.cross_ref().to_owned()),
                _ => None,
            })
            .collect();
        refs.sort();
        refs.dedup();
        assert_eq!(refs.len(), 1, "{user}: events of one monitor, got {refs:?}");
        xrefs.push(refs[0].clone());
    }
    assert_ne!(call_ids[0], call_ids[1], "two dialogs");
    assert_ne!(xrefs[0], xrefs[1], "two monitors");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
