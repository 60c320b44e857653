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
