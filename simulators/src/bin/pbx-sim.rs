//! `pbx-sim`: a simulated PBX serving CSTA (ECMA-323 XML over TCP/TLS) to a SIP/CSTA gateway.

use std::path::PathBuf;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc: the message path allocates many small, short-lived buffers, where glibc malloc
/// cost about a quarter of the gateway's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A simulated PBX CSTA server with an ECMA-269 call model, vendor profiles and fault injection.
#[derive(Debug, Parser)]
#[command(name = "pbx-sim", version)]
struct Args {
    /// Configuration file (see simulators/pbx.example.toml).
    #[arg(long, env = "PBX_SIM_CONFIG")]
    config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,csta=debug"));
    if args.json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let loaded = rcc_simulators::pbx::config::load(&args.config)?;
    if args.check {
        println!("{}: ok", args.config.display());
        return Ok(());
    }
    let launched = loaded.launch().await?;
    tracing::info!(
        profile = loaded.config.profile.name(),
        tcp = ?launched.sim.tcp_addr(),
        tls = ?launched.sim.tls_addr(),
        control = ?launched.control,
        devices = loaded.file.devices.len(),
        "pbx-sim ready"
    );
    let stop = rcc_simulators::signals::until_stopped("pbx-sim").await?;
    tracing::info!(signal = stop, "pbx-sim stopping");
    Ok(())
}
