//! `rcc-gateway`: the SIP/CSTA gateway between a Lync Server 2013 pool and a PBX.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rcc_gateway::config::{self, LogFormat};
use rcc_gateway::lync_config::{Deployment, powershell};
use rcc_gateway::server::GatewayHandle;
use tracing_subscriber::EnvFilter;

/// mimalloc: the message path allocates many small, short-lived buffers, where glibc malloc
/// cost about a quarter of the gateway's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// SIP/CSTA gateway for Lync Server 2010/2013 Remote Call Control.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file.
    #[arg(long, global = true, env = "RCC_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Runtime threads. 1 (the default): everything on one thread, the cheapest per request,
    /// since the protocol core is single-threaded anyway; more: TLS and socket work spread over
    /// that many threads.
    #[arg(long, global = true, env = "RCC_GATEWAY_THREADS", default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Report every problem in the configuration, then exit.
    CheckConfig,
    /// Print the Lync Server PowerShell that routes RCC to this gateway.
    LyncConfig {
        /// The LineServerURI users get; its domain becomes the static route's MatchUri.
        #[arg(long, default_value = "sip:rccgateway@rcc.contoso.com")]
        line_server_uri: String,
        /// Front End pool (registrar) FQDN.
        #[arg(long, default_value = "pool01.contoso.com")]
        registrar: String,
        /// Lync site.
        #[arg(long, default_value = "site1")]
        site: String,
        /// Example user for Set-CsUser.
        #[arg(long, default_value = "Katie Jordan")]
        user: String,
        /// That user's LineURI.
        #[arg(long, default_value = "tel:+14255550100;ext=100")]
        line: String,
    },
    /// Print a commented example configuration.
    ExampleConfig,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = match args.threads {
        0 => anyhow::bail!("--threads must be at least 1"),
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    runtime.block_on(start(args))
}

async fn start(args: Args) -> anyhow::Result<()> {
    let command = args.command.unwrap_or(Command::Run);
    if let Command::ExampleConfig = command {
        print!("{}", config::EXAMPLE);
        return Ok(());
    }
    let path = args.config.ok_or_else(|| {
        anyhow::anyhow!("--config FILE is required (see `rcc-gateway example-config`)")
    })?;
    let config = config::load(&path)?;
    match command {
        Command::CheckConfig => {
            println!("{}: ok", path.display());
            Ok(())
        }
        Command::LyncConfig {
            line_server_uri,
            registrar,
            site,
            user,
            line,
        } => {
            let d = Deployment {
                line_server_uri,
                registrar,
                site,
                user,
                line,
            };
            print!("{}", powershell(&config, &d)?);
            Ok(())
        }
        Command::ExampleConfig => Ok(()),
        Command::Run => run(config).await,
    }
}

async fn run(config: config::Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match config.observe.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
    let gw = GatewayHandle::start(config).await?;
    tracing::info!(tls = ?gw.sip_tls, tcp = ?gw.sip_tcp, metrics = ?gw.metrics_addr, "rcc-gateway ready");
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down: ending sessions and the PBX session");
    gw.shutdown().await?;
    Ok(())
}
