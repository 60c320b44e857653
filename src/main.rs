//! The `rcc-lab` command line.

use clap::{Parser, Subcommand};

/// Lab for Lync Remote Call Control: gateway, simulators, scenarios, replay.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the full lab in one process (PBX simulator, gateway, Lync pool and endpoints) through
    /// the everyday RCC flows, checking both sides of each step.
    Run {
        /// Front End to gateway over TCP instead of mutual TLS.
        #[arg(long)]
        tcp: bool,
    },
    /// Push the reference RCC exchange through the wire codecs and print the ladder.
    Reference,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run { tcp } => {
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
