//! The Kamailio side-by-side harness works end to end: SIPp's RCC sessions cross Kamailio and the
//! gateway, every SnapshotDevice INFO is answered, and both processes' CPU is measured. Needs
//! `kamailio` and `sipp` (`tools/test` installs both) and the workspace binaries (built by
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
    // The harness read every process's CPU counters (it fails when it cannot) and they never
    // went back. The figures themselves can round to 0 at the kernel's 10 ms tick for a run
    // this short, so only BENCHMARKS.md, from long runs, reads them.
    for (what, cpu) in [("gateway", c.gateway_cpu_s), ("Kamailio", c.kamailio_cpu_s)] {
        assert!(cpu.is_finite() && cpu >= 0.0, "{what} CPU {cpu}: {c:?}");
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}
