//! The Kamailio side-by-side harness works end to end: SIPp's RCC sessions cross Kamailio and the
//! gateway, every SnapshotDevice INFO is answered, and both processes' CPU is measured. Needs
//! `kamailio` and `sipp` (`.ci/run` installs both) and the workspace binaries (built by
//! `cargo test --workspace`); without them the test fails and says what is missing. The figures
//! themselves live in BENCHMARKS.md, not here.

use rcc_lab::kamailio::{KamailioOptions, measure};

#[tokio::test]
async fn sipp_through_kamailio_and_the_gateway_measures_both() -> anyhow::Result<()> {
    let out = std::env::temp_dir().join(format!("rcc-lab-kamailio-{}", std::process::id()));
    let c = measure(&KamailioOptions {
        calls: 20,
        infos: 5,
        rate: 20.0,
        limit: 20,
        out: out.clone(),
    })
    .await?;
    assert!(
        c.sipp_ok,
        "SIPp reported failed sessions (see {})",
        out.join("sipp.log").display()
    );
    assert_eq!(c.infos, 100.0, "every INFO answered by the gateway: {c:?}");
    assert!(
        c.gateway_cpu_s > 0.0 && c.kamailio_cpu_s > 0.0,
        "CPU measured: {c:?}"
    );
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}
