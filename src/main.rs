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
    /// Run the lab. Today: the reference RCC exchange through the wire codecs, as a ladder.
    Run,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run => {
            let ladder = rcc_lab::reference::run()?;
            println!("{:<8}    {:<8}  message", "from", "to");
            for step in &ladder {
                println!("{:<8} -> {:<8}  {}", step.from, step.to, step.summary);
            }
            println!(
                "{} messages framed, parsed, validated and decoded; gateway and simulators are not built yet (issues 3-5).",
                ladder.len()
            );
        }
    }
    Ok(())
}
