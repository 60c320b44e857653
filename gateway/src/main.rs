//! `rcc-gateway`: the SIP/CSTA gateway between a Lync Server 2013 pool and a PBX.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use rcc_gateway::config::{self, LogFormat};
use rcc_gateway::core::Policy;
use rcc_gateway::lync_config::{Deployment, powershell};
use rcc_gateway::server::GatewayHandle;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

/// mimalloc: the message path allocates many small, short-lived buffers, where glibc malloc
/// cost about a quarter of the gateway's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// SIP/CSTA gateway for Lync Server 2010/2013 Remote Call Control.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  rcc-gateway example-config > /etc/rcc-gateway/gateway.toml\n  rcc-gateway check-config --config /etc/rcc-gateway/gateway.toml\n  rcc-gateway --config /etc/rcc-gateway/gateway.toml --log-format json\n  rcc-gateway lync-config --config /etc/rcc-gateway/gateway.toml\nSignals: SIGTERM/SIGINT end gracefully, SIGHUP reloads, SIGUSR1/SIGUSR2 start/end draining."
)]
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
    /// Log line format; overrides `observe.log_format`.
    #[arg(long, global = true, value_enum, env = "RCC_GATEWAY_LOG_FORMAT")]
    log_format: Option<rcc_net::logs::LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Report every problem in the configuration, then exit.
    CheckConfig,
    /// Print the Lync Server PowerShell that routes RCC to this gateway (works before the
    /// certificate files exist: the admin needs it, and the FQDN, to request them).
    LyncConfig(Deployment),
    /// Check the real Lync configuration (exports from the Management Shell: routes.json,
    /// trusted-applications.json, users.csv; see docs) against this gateway; exits non-zero on
    /// an error.
    LyncCheck {
        /// The folder of exports.
        #[arg(long)]
        exports: PathBuf,
    },
    /// Show what numbers become towards the PBX and towards Lync, rule by rule (LineURIs,
    /// dialled numbers, PBX numbers); numbers no rule maps are flagged.
    Numbering {
        /// LineURIs (`tel:+14255550100;ext=100`), dialled numbers or PBX numbers.
        #[arg(required = true)]
        numbers: Vec<String>,
    },
    /// Print a Kamailio proxy tier for this gateway and others (`--gateway FILE`, repeatable):
    /// per-line affinity, OPTIONS probing, failover. Writes kamailio.cfg and the dispatcher
    /// list into `--out`, or prints both.
    KamailioConfig {
        #[command(flatten)]
        tier: rcc_gateway::kamailio_config::Tier,
        /// Folder to write kamailio.cfg and rcc-dispatcher.list into.
        #[arg(long)]
        out: Option<PathBuf>,
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
    if let Command::LyncConfig(d) = &command {
        let (config, file_problems) = config::load_for_printing(&path)?;
        for p in file_problems {
            eprintln!("warning: {p} (the PowerShell does not need it)");
        }
        print!("{}", powershell(&config, d)?);
        return Ok(());
    }
    if let Command::KamailioConfig { tier, out } = &command {
        use rcc_gateway::kamailio_config as k;
        let mut configs = Vec::new();
        for p in std::iter::once(&path).chain(&tier.gateways) {
            let (c, _) = config::load_for_printing(p)
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", p.display()))?;
            configs.push(c);
        }
        k::check(tier)?;
        let (members, line) = k::members(&configs)?;
        let (cfg, list) = (
            k::kamailio_cfg(tier, &members, line),
            k::dispatcher_list(&members),
        );
        let tls = k::tls_cfg(tier);
        match out {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let mut files = vec![("kamailio.cfg", &cfg), ("rcc-dispatcher.list", &list)];
                if let Some(t) = &tls {
                    files.push(("rcc-tls.cfg", t));
                }
                for (name, text) in files {
                    let p = dir.join(name);
                    std::fs::write(&p, text)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
                    println!("wrote {}", p.display());
                }
            }
            None => {
                print!("{cfg}\n# ---- {} ----\n{list}", tier.dispatcher_list);
                if let Some(t) = &tls {
                    print!("\n# ---- {} ----\n{t}", tier.tls_config);
                }
            }
        }
        return Ok(());
    }
    if let Command::LyncCheck { exports } = &command {
        let (config, file_problems) = config::load_for_printing(&path)?;
        for p in file_problems {
            eprintln!("warning: {p}");
        }
        let e = rcc_lync_topology::exports::Exports::read(exports)?;
        let names = rcc_gateway::lync_check::certificate_names(&config);
        let findings = rcc_gateway::lync_check::check(
            &e,
            &config,
            names.as_deref(),
            &rcc_gateway::lync_check::system_resolver,
        );
        for f in &findings {
            println!("{f}");
        }
        let errors = findings
            .iter()
            .filter(|f| f.severity == rcc_gateway::lync_check::Severity::Error)
            .count();
        println!(
            "{} route(s), {} trusted application(s), {} user(s) checked: {errors} error(s), {} warning(s)",
            e.routes.len(),
            e.apps.len(),
            e.users.len(),
            findings.len() - errors
        );
        if errors > 0 {
            std::process::exit(1);
        }
        return Ok(());
    }
    if let Command::Numbering { numbers } = &command {
        let (config, _) = config::load_for_printing(&path)?;
        let text = rcc_gateway::core::explain_numbering(&config, numbers)
            .map_err(|p| anyhow::anyhow!("{}: {}", path.display(), p.join("; ")))?;
        println!("{text}");
        return Ok(());
    }
    let config = config::load(&path)?;
    match command {
        Command::CheckConfig => {
            for w in config::warnings(&config) {
                println!("warning: {w}");
            }
            println!("{}: ok", path.display());
            Ok(())
        }
        Command::LyncConfig(_)
        | Command::LyncCheck { .. }
        | Command::Numbering { .. }
        | Command::KamailioConfig { .. } => Ok(()),
        Command::ExampleConfig => Ok(()),
        Command::Run => run(&path, config, args.log_format).await,
    }
}

/// The log filter: `RUST_LOG` when set, else `observe.log_level`, else `info`.
fn log_filter(config: &config::Config) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = config.observe.log_level.as_deref().unwrap_or("info");
        EnvFilter::try_new(level).unwrap_or_else(|e| {
            eprintln!("observe.log_level {level:?}: {e}; logging at info");
            EnvFilter::new("info")
        })
    })
}

/// Runs until SIGTERM or SIGINT (the same graceful end: BYE to every session, MonitorStop,
/// StopApplicationSession); SIGHUP reloads the configuration file; SIGUSR1 starts draining
/// (no new session, existing ones served) and SIGUSR2 ends it.
async fn run(
    path: &Path,
    config: config::Config,
    log_format: Option<rcc_net::logs::LogFormat>,
) -> anyhow::Result<()> {
    let (filter, filter_handle) = reload::Layer::new(log_filter(&config));
    let format = log_format.unwrap_or(match config.observe.log_format {
        LogFormat::Json => rcc_net::logs::LogFormat::Json,
        LogFormat::Text => rcc_net::logs::LogFormat::Text,
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(rcc_net::logs::layer(format))
        .init();
    // Handlers first: a signal during start-up must not take the default action (end).
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut drain = signal(SignalKind::user_defined1())?;
    let mut undrain = signal(SignalKind::user_defined2())?;
    for w in config::warnings(&config) {
        tracing::warn!("{w}");
    }
    // Connections are capped by what the open-file limit allows: take all the hard limit gives
    // (systemd's default soft limit is 1,024).
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => tracing::info!(open_file_limit = files, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let gw = GatewayHandle::start(config).await?;
    // systemd (Type=notify) starts what depends on the gateway only now; without
    // NOTIFY_SOCKET this does nothing.
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell systemd the gateway is ready");
    }
    tracing::info!(
        tls = gw.sip_tls.map(tracing::field::display),
        tcp = gw.sip_tcp.map(tracing::field::display),
        metrics = gw.metrics_addr.map(tracing::field::display),
        max_connections = gw.connection_limit(),
        "rcc-gateway ready"
    );
    let stop = loop {
        tokio::select! {
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = hangup.recv() => reload_config(path, &gw, &filter_handle).await,
            _ = drain.recv() => set_draining(&gw, true).await,
            _ = undrain.recv() => set_draining(&gw, false).await,
        }
    };
    tracing::info!(
        signal = stop,
        "shutting down: ending sessions and the PBX session"
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    gw.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGUSR1 / SIGUSR2: drain mode on or off.
async fn set_draining(gw: &GatewayHandle, on: bool) {
    match gw.with(move |g, _| g.set_draining(on)).await {
        Ok(()) => {
            tracing::info!(
                draining = on,
                sessions = gw.sessions().await.ok(),
                "drain mode set"
            )
        }
        Err(e) => tracing::error!(error = %e, "drain mode not set"),
    }
}

/// SIGHUP: the authorization table (inline or CSV), the numbering plan and the log level from
/// the file again. A file with problems changes nothing; every problem is logged.
async fn reload_config<S>(path: &Path, gw: &GatewayHandle, filter: &reload::Handle<EnvFilter, S>) {
    let config = match config::read(path) {
        Ok(c) => c,
        Err(problems) => {
            for problem in problems {
                tracing::error!(file = %path.display(), %problem, "reload refused: the running configuration stays");
            }
            return;
        }
    };
    let auth = &config.authorization;
    let rows = auth.users.len() + auth.file_rows.as_ref().map_or(0, Vec::len);
    if auth.file.is_some() && rows == 0 {
        // Most likely a file caught while being rewritten: applying it would end every session.
        tracing::error!(file = %path.display(), "reload refused: the authorization table is empty; the running configuration stays (restart to apply an empty table)");
        return;
    }
    let policy = match Policy::build(&config) {
        Ok(p) => p,
        Err(problems) => {
            for problem in problems {
                tracing::error!(file = %path.display(), %problem, "reload refused: the running configuration stays");
            }
            return;
        }
    };
    // Certificates first: a policy applied with a TLS identity that does not load would be
    // half a reload.
    match gw.reload_transport(&config) {
        Ok(not_after) => tracing::info!(
            certificate_not_after = not_after,
            trusted_peers = config.sip.trusted_peers.len(),
            "TLS identity and trusted peers reloaded"
        ),
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "reload refused: the running configuration stays");
            return;
        }
    }
    if let Err(e) = filter.reload(log_filter(&config)) {
        tracing::warn!(error = %e, "log level not reloaded");
    }
    match gw.with(move |g, now| g.set_policy(policy, now)).await {
        Ok(ended) => tracing::info!(
            file = %path.display(),
            sessions_ended = ended,
            "configuration reloaded (authorization, numbering, log level, trusted peers, TLS identity)"
        ),
        Err(e) => tracing::error!(error = %e, "reload not applied"),
    }
}
