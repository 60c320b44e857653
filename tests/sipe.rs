//! The real pidgin-sipe (Debian's `pidgin-sipe`, hosted by `tools/sipe-host`) signs in to the
//! simulated pool, opens its RCC session through our gateway over mutual TLS, and dials: the
//! PBX simulator rings the far end from the user's desk phone, and the call's events reach
//! sipe without a stall although it never answers them.
//!
//! Needs the packages pidgin-sipe, libpurple-dev, pkg-config and gcc (`tools/test` installs
//! them); `RCC_LAB_WITHOUT_SIPE=1` leaves this test out explicitly, with a message.

use std::time::Duration;

use rcc_lab::lab::{Lab, LabOptions};
use rcc_lab::sipe::{self, SipeClient};

async fn lab_and_host() -> anyhow::Result<Option<(Lab, std::path::PathBuf)>> {
    if let Some(why) = sipe::excluded() {
        eprintln!("{why}");
        return Ok(None);
    }
    let host = sipe::build(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sipe-host"))?;
    let lab = Lab::start(LabOptions::default()).await?;
    Ok(Some((lab, host)))
}

fn client_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rcc-sipe-{name}-{}", std::process::id()))
}

#[tokio::test]
async fn a_pidgin_sipe_client_signs_in_and_dials() -> anyhow::Result<()> {
    let Some((lab, host)) = lab_and_host().await? else {
        return Ok(());
    };
    let server = lab
        .lync
        .clients_addr
        .ok_or_else(|| anyhow::anyhow!("the lab's pool serves no real clients"))?;
    let dir = client_dir("dial");
    let mut alice = SipeClient::start(&host, server, "alice@contoso.lab", &dir)?;
    alice
        .wait_for("event signed-on", 0, Duration::from_secs(20))
        .await?;
    // The RCC session is up when sipe has its monitor's cross-reference ID.
    let up = alice
        .wait_for("monitor_cross_ref_id=", 0, Duration::from_secs(20))
        .await?;
    assert_eq!(lab.gateway()?.sessions().await?, 1, "one RCC session");

    alice.dial("+14255551002")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let ringing = loop {
        let calls = lab.pbx()?.calls().await?;
        if let Some(c) = calls.iter().find(|c| {
            c.parties.iter().any(|p| p.device == "1001")
                && c.parties
                    .iter()
                    .any(|p| p.device == "1002" && p.state == "alerting")
        }) {
            break c.clone();
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the PBX never rang bob's desk phone from alice's: {calls:?}\n{}",
            alice.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ringing.parties.len(), 2, "{ringing:?}");
    lab.pbx()?.answer("1002").await?;
    // Originated, Delivered, Established: each reaches sipe, unanswered, without a stall.
    for event in ["OriginatedEvent", "DeliveredEvent", "EstablishedEvent"] {
        alice.wait_for(event, up, Duration::from_secs(5)).await?;
    }
    let lines = alice.quit().await?;
    assert!(
        lines.iter().any(|l| l == "event signed-off"),
        "{}",
        lines.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
    lab.shutdown().await;
    Ok(())
}
