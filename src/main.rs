//! The `rcc-lab` command line.

mod scenarios;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc: the message path allocates many small, short-lived buffers, where glibc malloc
/// cost about a quarter of the gateway's CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lab for Lync Remote Call Control: gateway, simulators, scenarios, replay.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Gherkin conformance suite against the full lab in one process (PBX simulator,
    /// gateway, Lync pool and endpoints); print the results, write JUnit and an HTML report.
    Run {
        /// Feature files or `file:line` of a scenario (its Scenario line, a step, an Examples
        /// line or an example row); default: every feature in --features.
        locations: Vec<rcc_lab::selection::Location>,
        /// Folder of .feature files.
        #[arg(long, default_value = "features")]
        features: PathBuf,
        /// Tag expression, e.g. "@profile-osv and not @slow".
        #[arg(long)]
        tags: Option<String>,
        /// Only scenarios whose name matches this regular expression (repeatable).
        #[arg(long = "name")]
        names: Vec<regex::Regex>,
        /// Report folder (index.html with the conformance summary and a ladder per scenario,
        /// junit.xml, conformance.json).
        #[arg(long, default_value = "target/rcc-lab-report")]
        report: PathBuf,
        /// Scenarios run at once when the lab owns every component (with an external gateway
        /// or PBX they run one after another).
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Stop after the first failed scenario.
        #[arg(long)]
        fail_fast: bool,
        /// List the selected scenarios and the step vocabulary, run nothing.
        #[arg(long)]
        list: bool,
        /// Which component stands in each position (default: all ours, in process).
        #[arg(long)]
        lab: Option<PathBuf>,
    },
    /// Print what an external gateway must be configured with for `run --lab`: its static
    /// route and trusted application as the simulated pool sees them, the certificates, the
    /// PBX address and profile, the users' lines and numbers; and a ready gateway.toml for
    /// rcc-gateway. Generates the lab's CA and certificates when absent.
    LabConfig {
        /// The lab file.
        #[arg(long)]
        lab: PathBuf,
        /// Write the ready gateway.toml here too (for rcc-gateway in the external position).
        #[arg(long)]
        gateway_toml: Option<PathBuf>,
    },
    /// Walk the everyday flows through the lab without Gherkin (a quick smoke check).
    Tour {
        /// Front End to gateway over TCP instead of mutual TLS.
        #[arg(long)]
        tcp: bool,
    },
    /// Load: the gateway, the PBX simulator and the Lync load generator as separate processes;
    /// prints the figures, writes CSVs and an SVG plot. Build first: cargo build --release --workspace.
    Load {
        /// Users (one line each).
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Endpoints per user.
        #[arg(long, default_value_t = 1)]
        endpoints: usize,
        /// Sign-ins per second.
        #[arg(long, default_value_t = 2000.0)]
        signin_rate: f64,
        /// Calls per second (two CSTA requests each).
        #[arg(long, default_value_t = 500.0)]
        call_rate: f64,
        /// Seconds of calls.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Output folder.
        #[arg(long, default_value = "target/rcc-lab-load")]
        out: PathBuf,
        /// What each call does: click-to-dial, hold-retrieve, transfer or snapshot (one
        /// SnapshotDevice, no call: the request path without events).
        #[arg(long, default_value = "click-to-dial")]
        pattern: String,
        /// Give the gateway CPU 0 to itself and the simulators the other CPUs (taskset), as
        /// if the Front End pool and the PBX were other machines.
        #[arg(long)]
        pin: bool,
        /// Front End to gateway: tcp, tls (mutual TLS, the production transport) or both (TCP
        /// then TLS in one run, with the ratio of the gateway's CPU per request).
        #[arg(long, default_value = "tcp", value_parser = ["tcp", "tls", "both"])]
        transport: String,
        /// The gateway's runtime threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// A PBX that accepts this many requests per second (the simulator refuses beyond
        /// 1.1 × it) and a gateway paced to it; without: an unlimited PBX, an unpaced gateway.
        #[arg(long)]
        pbx_rate: Option<f64>,
    },
    /// Failover: N gateway processes behind Kamailio (the printed configuration), the PBX
    /// simulator and the Lync load generator; every user signs in, the busiest gateway is
    /// killed with SIGKILL, and the time until each of its users has RCC again is measured,
    /// with Kamailio's CPU per request. Needs kamailio; build first: cargo build --release
    /// --workspace.
    Failover(rcc_lab::failover::FailoverOptions),
    /// CPU per RCC request side by side with Kamailio's per relayed INFO: SIPp sends RCC sessions
    /// (SnapshotDevice INFOs) through Kamailio to the gateway and the PBX simulator, all in one
    /// run. Needs kamailio and sipp (apt-get install kamailio sip-tester).
    Kamailio {
        /// RCC sessions.
        #[arg(long, default_value_t = 2000)]
        calls: usize,
        /// SnapshotDevice INFOs per session.
        #[arg(long, default_value_t = 20)]
        infos: usize,
        /// Sessions started per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Sessions open at once at most.
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Output folder.
        #[arg(long, default_value = "target/rcc-lab-kamailio")]
        out: PathBuf,
    },
    /// Read a pcap or pcapng capture of RCC traffic.
    Replay {
        /// The capture.
        file: PathBuf,
        /// Only print the normalized ladder of the capture.
        #[arg(long)]
        ladder: bool,
        /// Record what the gateway does now as the expected behaviour (rewrites the capture and
        /// its ladder snapshot).
        #[arg(long, conflicts_with = "ladder")]
        update: bool,
        /// Replay against a gateway running elsewhere: its SIP TCP address (default: a fresh
        /// in-process gateway).
        #[arg(long, conflicts_with_all = ["ladder", "update"])]
        gateway: Option<std::net::SocketAddr>,
        /// Configure the in-process gateway with this gateway.toml (a site's numbering,
        /// authorization, PBX profile, timers, limits) instead of the lab's; its listeners, TLS,
        /// PBX address, metrics and traces are replaced to run here. Works with --update.
        #[arg(long, conflicts_with_all = ["ladder", "gateway", "gateway_config"])]
        config: Option<PathBuf>,
        /// With --gateway: where we play the PBX; that gateway's `pbx.address` must point here.
        #[arg(long, default_value = "127.0.0.1:1040")]
        pbx_listen: std::net::SocketAddr,
        /// Print the gateway configuration the captures were recorded with (for --gateway and
        /// --pbx-listen) and stop.
        #[arg(long)]
        gateway_config: bool,
    },
    /// Push the reference RCC exchange through the wire codecs and print the ladder.
    Reference,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            locations,
            features,
            tags,
            names,
            report,
            concurrency,
            fail_fast,
            list,
            lab,
        } => {
            let mut selection = rcc_lab::selection::Selection::with_tags(tags.as_deref())?;
            selection.names = names;
            selection.locations = locations;
            rcc_lab::selection::check_locations(&features, &selection)?;
            let lab = match &lab {
                Some(p) => rcc_lab::labfile::LabFile::load(p)?.options()?,
                None => rcc_lab::lab::LabOptions::default(),
            };
            if list {
                for s in rcc_lab::selection::list(&features, &selection)? {
                    let tags: Vec<String> = s.tags.iter().map(|t| format!("@{t}")).collect();
                    let na = rcc_lab::labfile::not_applicable(&lab, &s.tags)
                        .map(|why| format!("  (not applicable: {why})"))
                        .unwrap_or_default();
                    println!(
                        "{}  {} — {}  {}{na}",
                        s.location,
                        s.feature,
                        s.name,
                        tags.join(" ")
                    );
                }
                println!("\nsteps:");
                for step in rcc_lab::selection::vocabulary() {
                    println!("  {step}");
                }
                return Ok(());
            }
            let opts = scenarios::RunOptions {
                lab,
                features,
                selection,
                report: report.clone(),
                concurrency,
                fail_fast,
            };
            let outcome = scenarios::run(&opts).await?;
            for c in outcome.conformance.failing() {
                println!("capability failed: {} — {}", c.title, c.reason);
            }
            println!(
                "{}; report: {}",
                outcome.totals(),
                report.join("index.html").display()
            );
            if outcome.failed() > 0 {
                std::process::exit(1);
            }
        }
        Command::LabConfig { lab, gateway_toml } => {
            let file = rcc_lab::labfile::LabFile::load(&lab)?;
            let plan = rcc_lab::labconfig::LabConfig::prepare(&file, &lab)?;
            print!("{}", plan.text());
            if let Some(path) = gateway_toml {
                std::fs::write(&path, plan.gateway_toml())
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                println!("# wrote {}", path.display());
            }
        }
        Command::Tour { tcp } => {
            let steps = rcc_lab::tour::run(!tcp).await?;
            let mut failed = 0;
            for s in &steps {
                match &s.outcome {
                    Ok(()) => {
                        println!("  ok    {:>6.1} ms  {}", s.took.as_secs_f64() * 1e3, s.name)
                    }
                    Err(e) => {
                        failed += 1;
                        println!(
                            "  FAIL  {:>6.1} ms  {}\n        {e}",
                            s.took.as_secs_f64() * 1e3,
                            s.name
                        );
                    }
                }
            }
            println!("{} passed, {} failed", steps.len() - failed, failed);
            if failed > 0 {
                std::process::exit(1);
            }
        }
        Command::Load {
            users,
            endpoints,
            signin_rate,
            call_rate,
            duration,
            out,
            pattern,
            pin,
            transport,
            threads,
            pbx_rate,
        } => {
            let options = rcc_lab::load::LoadOptions {
                pattern,
                pin,
                users,
                endpoints,
                signin_rate,
                call_rate,
                duration,
                out,
                tls: transport == "tls",
                threads,
                pbx_rate,
            };
            if transport == "both" {
                print!("{}", rcc_lab::load::run_both(&options).await?);
            } else {
                print!("{}", rcc_lab::load::run(&options).await?.text);
            }
        }
        Command::Failover(options) => {
            print!("{}", rcc_lab::failover::run(&options).await?.text);
        }
        Command::Kamailio {
            calls,
            infos,
            rate,
            limit,
            out,
        } => {
            let report = rcc_lab::kamailio::run(&rcc_lab::kamailio::KamailioOptions {
                calls,
                infos,
                rate,
                limit,
                out,
            })
            .await?;
            print!("{report}");
        }
        Command::Replay {
            file,
            ladder,
            update,
            gateway,
            config,
            pbx_listen,
            gateway_config,
        } => {
            if gateway_config {
                let sip = gateway.unwrap_or_else(|| ([127, 0, 0, 1], 5066).into());
                print!("{}", rcc_lab::replay::lab_gateway_toml(sip, pbx_listen));
                return Ok(());
            }
            if let Some(sip) = gateway {
                match rcc_lab::replay::replay_external(&file, sip, pbx_listen).await? {
                    rcc_lab::replay::Outcome::Matched { steps } => {
                        println!(
                            "{}: {steps} steps replayed against {sip}, no divergence",
                            file.display()
                        );
                    }
                    rcc_lab::replay::Outcome::Diverged(d) => {
                        println!("{}: {d}", file.display());
                        std::process::exit(1);
                    }
                }
            } else if update {
                let text = rcc_lab::replay::update_file(&file, config.as_deref()).await?;
                print!("{text}");
                println!("{}: recorded as the expected behaviour", file.display());
            } else if ladder {
                let cap = rcc_lab::capture::read(&file)?;
                let (steps, notes) = rcc_lab::capture::ladder(&cap);
                print!("{}", rcc_lab::capture::ladder_text(&steps, &notes));
            } else {
                match rcc_lab::replay::replay_file(&file, config.as_deref()).await? {
                    rcc_lab::replay::Outcome::Matched { steps } => {
                        println!("{}: {steps} steps replayed, no divergence", file.display());
                    }
                    rcc_lab::replay::Outcome::Diverged(d) => {
                        println!("{}: {d}", file.display());
                        std::process::exit(1);
                    }
                }
            }
        }
        Command::Reference => {
            let ladder = rcc_lab::reference::run()?;
            println!("{:<8}    {:<8}  message", "from", "to");
            for step in &ladder {
                println!("{:<8} -> {:<8}  {}", step.from, step.to, step.summary);
            }
            println!(
                "{} messages framed, parsed, validated and decoded",
                ladder.len()
            );
        }
    }
    Ok(())
}
