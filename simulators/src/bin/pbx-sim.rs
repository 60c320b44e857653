//! `pbx-sim`: a simulated PBX serving CSTA (ECMA-323 XML over TCP/TLS) to a SIP/CSTA gateway.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rcc_net::logs::LogFormat;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// mimalloc: the message path allocates many small, short-lived buffers, where glibc malloc
/// cost about a quarter of the gateway's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A simulated PBX CSTA server with an ECMA-269 call model, vendor profiles and fault injection.
#[derive(Debug, Parser)]
#[command(
    name = "pbx-sim",
    version,
    after_help = "Examples:\n  pbx-sim --config pbx.toml\n  pbx-sim check-config --config pbx.toml\n  pbx-sim --config pbx.toml --log-format json"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (see simulators/pbx.example.toml).
    #[arg(long, global = true, env = "PBX_SIM_CONFIG")]
    config: Option<PathBuf>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Old spelling of `check-config`.
    #[arg(long, hide = true)]
    check: bool,
    /// Old spelling of `--log-format json`.
    #[arg(long, hide = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve CSTA (the default).
    Run,
    /// Report every problem in the configuration, then exit.
    CheckConfig,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,csta=debug"));
    let format = if args.json {
        LogFormat::Json
    } else {
        args.log_format
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(rcc_net::logs::layer(format))
        .init();
    let path = args.config.ok_or_else(|| {
        anyhow::anyhow!("--config FILE is required (see simulators/pbx.example.toml)")
    })?;
    let loaded = rcc_simulators::pbx::config::load(&path)?;
    if args.check || matches!(args.command, Some(Command::CheckConfig)) {
        println!("{}: ok", path.display());
        return Ok(());
    }
    let launched = loaded.launch().await?;
    tracing::info!(
        profile = loaded.config.profile.name(),
        tcp = launched.sim.tcp_addr().map(tracing::field::display),
        tls = launched.sim.tls_addr().map(tracing::field::display),
        control = launched.control.map(tracing::field::display),
        devices = loaded.file.devices.len(),
        "pbx-sim ready"
    );
    let stop = rcc_simulators::signals::until_stopped("pbx-sim").await?;
    tracing::info!(signal = stop, "pbx-sim stopping");
    Ok(())
}
