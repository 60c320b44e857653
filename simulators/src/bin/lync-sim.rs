//! `lync-sim`: a simulated Lync Server 2013 Front End pool with RCC client endpoints, to drive
//! any SIP/CSTA gateway.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rcc_simulators::lync::{LyncSim, config};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// mimalloc: the message path allocates many small, short-lived buffers, where glibc malloc
/// cost about a quarter of the gateway's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A simulated Lync Server 2013 pool with RCC client endpoints.
#[derive(Debug, Parser)]
#[command(
    name = "lync-sim",
    version,
    after_help = "Examples:\n  lync-sim run --config lync.toml\n  lync-sim check-config --config lync.toml\n  lync-sim powershell --config lync.toml\n  lync-sim load --config lync.toml --users 1000 --json"
)]
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
        /// A folder of Lync Management Shell exports (routes.json, trusted-applications.json,
        /// users.csv; see docs/lync-sim.md): the pool routes as that real topology does, with
        /// its users.
        #[arg(long, env = "LYNC_SIM_EXPORTS")]
        exports: Option<PathBuf>,
        /// Log line format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: rcc_net::logs::LogFormat,
    },
    /// Print the Lync Server PowerShell for the configured topology.
    Powershell {
        /// Configuration file.
        #[arg(long, env = "LYNC_SIM_CONFIG")]
        config: PathBuf,
        /// A folder of Lync Management Shell exports (routes.json, trusted-applications.json,
        /// users.csv; see docs/lync-sim.md): the pool routes as that real topology does, with
        /// its users.
        #[arg(long, env = "LYNC_SIM_EXPORTS")]
        exports: Option<PathBuf>,
        /// Registrar (Front End pool) FQDN.
        #[arg(long, default_value = "pool01.contoso.com")]
        registrar: String,
        /// The Lync SiteId (the number Get-CsSite shows).
        #[arg(long, default_value = "1")]
        site: String,
    },
    /// Load mode: users × endpoints sign in at a rate, then click-to-dial calls at a rate.
    Load {
        /// Configuration file (the pool and its route to the gateway; users are generated).
        #[arg(long, env = "LYNC_SIM_CONFIG")]
        config: PathBuf,
        /// Users.
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Endpoints per user.
        #[arg(long, default_value_t = 1)]
        endpoints: usize,
        /// First extension.
        #[arg(long, default_value_t = 100000)]
        first_extension: u64,
        /// LineURI template ({ext} is replaced).
        #[arg(long, default_value = "tel:+1425{ext};ext={ext}")]
        line: String,
        /// LineServerURI.
        #[arg(long, default_value = "sip:rccgateway@rcc.contoso.com")]
        line_server: String,
        /// Sign-ins per second.
        #[arg(long, default_value_t = 2000.0)]
        signin_rate: f64,
        /// Calls per second (two CSTA requests each).
        #[arg(long, default_value_t = 100.0)]
        call_rate: f64,
        /// Seconds of calls.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Number to dial.
        #[arg(long, default_value = "tel:+15550100")]
        callee: String,
        /// What each call does: click-to-dial, hold-retrieve, transfer or snapshot (one
        /// SnapshotDevice, no call: the request path without events).
        #[arg(long, default_value = "click-to-dial")]
        pattern: String,
        /// Per-second CSV output.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Summary as JSON on stdout's last line.
        #[arg(long)]
        json: bool,
        /// Sign in again this many ms after a session is lost (a BYE, a 481), as Lync does
        /// (0: never).
        #[arg(long, default_value_t = 0)]
        reestablish_ms: u64,
    },
    /// Report every problem in the configuration, then exit.
    #[command(alias = "check")]
    CheckConfig {
        /// Configuration file.
        #[arg(long, env = "LYNC_SIM_CONFIG")]
        config: PathBuf,
        /// A folder of Lync Management Shell exports (routes.json, trusted-applications.json,
        /// users.csv; see docs/lync-sim.md): the pool routes as that real topology does, with
        /// its users.
        #[arg(long, env = "LYNC_SIM_EXPORTS")]
        exports: Option<PathBuf>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::CheckConfig { config, exports } => {
            let f = config::load(&config, exports.as_deref())?;
            println!(
                "{}: ok: pool {}, {} static route(s), {} trusted application(s), {} user(s)",
                config.display(),
                f.pool.fqdn,
                f.pool.static_routes.len(),
                f.pool.trusted_applications.len(),
                f.users.len()
            );
        }
        Command::Powershell {
            config,
            exports,
            registrar,
            site,
        } => print!(
            "{}",
            config::powershell(
                &config::load(&config, exports.as_deref())?,
                &registrar,
                &site
            )?
        ),
        Command::Load {
            config,
            users,
            endpoints,
            first_extension,
            line,
            line_server,
            signin_rate,
            call_rate,
            duration,
            callee,
            pattern,
            csv,
            json,
            reestablish_ms,
        } => {
            let pattern =
                rcc_simulators::lync::load::CallPattern::parse(&pattern).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--pattern is click-to-dial, hold-retrieve, transfer or snapshot, not {pattern:?}"
                    )
                })?;
            let f = config::load(&config, None)?;
            let sim = LyncSim::start(f.sim_config()?).await?;
            if let Some(a) = sim.clients_addr {
                tracing::info!(address = %a, "real clients (pidgin-sipe) sign in here over TCP");
            }
            let plan = rcc_simulators::lync::load::LoadPlan {
                users,
                endpoints_per_user: endpoints,
                first_extension,
                line_template: line,
                line_server,
                profile: rcc_simulators::lync::ClientProfile::Lync2013,
                signin_rate,
                call_rate,
                duration: Duration::from_secs(duration),
                callee,
                signin_timeout: Duration::from_secs(300),
                pattern,
                reestablish: (reestablish_ms > 0).then(|| Duration::from_millis(reestablish_ms)),
            };
            let summary = rcc_simulators::lync::load::run(&sim, &plan, |r| {
                eprintln!(
                    "t={:>4}s {:<7} sessions {:>7}  {:>6} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {:>7} events/s  {} failures",
                    r.t, r.phase, r.sessions, r.requests, r.p50_ms, r.p99_ms, r.events, r.failures
                );
            })
            .await?;
            if let Some(p) = csv {
                std::fs::write(&p, rcc_simulators::lync::load::csv(&summary.rows))
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
            }
            println!(
                "sessions {} established, {} failed in {:.1} s (sign-in p50 {:.1} ms, p99 {:.1} ms)",
                summary.sessions_established,
                summary.sessions_failed,
                summary.signin_seconds,
                summary.signin_ms[0],
                summary.signin_ms[2]
            );
            println!(
                "requests {} at {:.0}/s: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; {} failures; {} events; {} violations",
                summary.requests,
                summary.requests_per_second,
                summary.request_ms[0],
                summary.request_ms[1],
                summary.request_ms[2],
                summary.request_ms[3],
                summary.failures,
                summary.events,
                summary.violations
            );
            if json {
                let mut s = summary.clone();
                s.rows.clear();
                println!("{}", serde_json::to_string(&s)?);
            }
        }
        Command::Run {
            config,
            exports,
            log_format,
        } => {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            tracing_subscriber::registry()
                .with(filter)
                .with(rcc_net::logs::layer(log_format))
                .init();
            let f = config::load(&config, exports.as_deref())?;
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
            let stop = rcc_simulators::signals::until_stopped("lync-sim").await?;
            tracing::info!(signal = stop, "lync-sim signing out");
            for id in &ids {
                let _ = sim.sign_out(*id).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}
