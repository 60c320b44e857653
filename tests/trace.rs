//! The gateway's pcapng trace opens in tshark: the SIP dialog (decrypted TLS leg) is dissected as
//! SIP with its CSTA bodies as XML, and with `tools/wireshark/csta.lua` the PBX link's Annex J
//! frames are dissected as CSTA. `.ci/run` installs tshark; without it this test fails and says so.

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
            panic!("tshark is not installed ({e}); .ci/run installs it (apt tshark)")
        });
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn trace_of_both_legs_opens_in_tshark() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("rcc-lab-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("gateway.pcapng");
    let lab = Lab::start(LabOptions {
        trace: Some(file.clone()),
        ..LabOptions::default()
    })
    .await?;
    let alice = lab
        .signed_in("alice", "a1", ClientProfile::Lync2013)
        .await?;
    let line = lab.user("alice")?.line();
    lab.lync
        .request(
            alice,
            Request::MakeCall {
                calling: line,
                called: "tel:+14255551002".into(),
                auto_originate: Some(AutoOriginate::DoNotPrompt),
            },
            Duration::from_secs(5),
        )
        .await?
        .map_err(|e| anyhow::anyhow!("MakeCall failed: {e}"))?;
    lab.lync
        .wait_event(
            alice,
            0,
            Duration::from_secs(5),
            "Delivered",
            |e| matches!(e, Event::Call(c) if c.kind == CallEventKind::Delivered),
        )
        .await?;
    let sip_port = lab.gateway()?.sip_tls.map(|a| a.port()).unwrap_or_default();
    lab.shutdown().await;
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
    let lua = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/wireshark/csta.lua");
    let script = format!("lua_script:{}", lua.display());
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
    // Several frames can share a TCP segment: tshark lists their fields comma-separated.
    let pbx = tshark(&[
        "-X",
        &script,
        "-r",
        &path,
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
    ]);
    let frames: Vec<(String, String, String)> = pbx
        .lines()
        .flat_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let split = |i: usize| {
                cols.get(i)
                    .map(|c| c.split(',').map(str::to_owned).collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            let (a, b, c) = (split(0), split(1), split(2));
            a.into_iter()
                .zip(b)
                .zip(c)
                .map(|((a, b), c)| (a, b, c))
                .collect::<Vec<_>>()
        })
        .collect();
    let has = |invoke: Option<&str>, root: &str, kind: &str| {
        frames
            .iter()
            .any(|(i, r, k)| invoke.is_none_or(|x| x == i) && r == root && k == kind)
    };
    assert!(
        has(None, "MakeCall", "request"),
        "no CSTA MakeCall request on the PBX leg:\n{pbx}"
    );
    assert!(
        has(None, "MakeCallResponse", "response"),
        "no MakeCallResponse:\n{pbx}"
    );
    assert!(
        has(Some("9999"), "DeliveredEvent", "event"),
        "no DeliveredEvent with invoke 9999:\n{pbx}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
