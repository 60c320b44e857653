//! `lync-sim`: a simulated Lync Server 2013 Front End pool with RCC client endpoints, to drive
//! any SIP/CSTA gateway.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rcc_simulators::lync::{LyncSim, config};
use tracing_subscriber::EnvFilter;

/// A simulated Lync Server 2013 pool with RCC client endpoints.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the pool, sign every configured endpoint in, serve the control endpoint.
    Run {
        /// Configuration file (see simulators/lync.example.toml).
        #[arg(long, env = "LYNC_SIM_CONFIG")]
        config: PathBuf,
    },
    /// Print the Lync Server PowerShell for the configured topology.
    Powershell {
        /// Configuration file.
        #[arg(long, env = "LYNC_SIM_CONFIG")]
        config: PathBuf,
        /// Registrar (Front End pool) FQDN.
        #[arg(long, default_value = "pool01.contoso.com")]
        registrar: String,
        /// Lync site.
        #[arg(long, default_value = "site1")]
        site: String,
    },
    /// Check the configuration and exit.
    Check {
        /// Configuration file.
        #[arg(long, env = "LYNC_SIM_CONFIG")]
        config: PathBuf,
    },
}

fn load(path: &PathBuf) -> anyhow::Result<config::LyncFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    config::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Check { config } => {
            load(&config)?;
            println!("{}: ok", config.display());
        }
        Command::Powershell {
            config,
            registrar,
            site,
        } => print!("{}", config::powershell(&load(&config)?, &registrar, &site)),
        Command::Run { config } => {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            tracing_subscriber::fmt().with_env_filter(filter).init();
            let f = load(&config)?;
            let sim = LyncSim::start(f.sim_config()?).await?;
            let control = match f.control {
                Some(a) => Some(rcc_simulators::lync::control::serve(sim.clone(), a).await?),
                None => None,
            };
            let mut ids = Vec::new();
            for e in f.endpoints() {
                ids.push(sim.add_endpoint(e).await?);
            }
            for id in &ids {
                sim.sign_in(*id).await?;
            }
            for id in &ids {
                match sim.wait_ready(*id, Duration::from_secs(15)).await {
                    Ok(x) => tracing::info!(endpoint = id, monitor = %x, "signed in"),
                    Err(e) => tracing::warn!(endpoint = id, error = %e, "sign-in failed"),
                }
            }
            tracing::info!(?control, endpoints = ids.len(), "lync-sim ready");
            tokio::signal::ctrl_c().await?;
            for id in &ids {
                let _ = sim.sign_out(*id).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}
