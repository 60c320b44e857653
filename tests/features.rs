//! The Gherkin conformance suite (`features/`) as part of `cargo test`:
//!
//! 1. every scenario against the in-process lab (our gateway, both simulators);
//! 2. the `@smoke` scenarios with the gateway in the *external* position — our gateway started
//!    on its own, reached only through its sockets, as a vendor's would be — where scenarios that
//!    need our gateway in process are listed as not applicable.
//!
//! Writes JUnit XML and the HTML report under `target/cucumber/`; prints `N passed, N failed`;
//! exits non-zero on any failure.

#[path = "../src/scenarios/mod.rs"]
mod scenarios;

use std::net::SocketAddr;
use std::path::PathBuf;

use rcc_lab::lab::{ExternalGateway, GatewayAt, LabOptions};
use rcc_lab::selection::Selection;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Our gateway as an outside component: its own config, its own sockets.
async fn external_gateway(
    pbx: SocketAddr,
) -> anyhow::Result<(rcc_gateway::server::GatewayHandle, SocketAddr)> {
    let sip = SocketAddr::from(([127, 0, 0, 1], free_port()));
    // The lab's numbering over TCP, as `rcc-lab replay --gateway-config` prints it.
    let toml = rcc_lab::replay::lab_gateway_toml(sip, pbx);
    let config = rcc_gateway::config::parse(&toml)?;
    let gw = rcc_gateway::server::GatewayHandle::start(config).await?;
    Ok((gw, sip))
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("cucumber");
    let mut failures = 0;

    let embedded = scenarios::RunOptions {
        features: root.join("features"),
        selection: Selection::with_tags(std::env::var("RCC_LAB_TAGS").ok().as_deref())
            .expect("RCC_LAB_TAGS"),
        report: target.join("report"),
        concurrency: 4,
        fail_fast: false,
        lab: LabOptions::default(),
    };
    match scenarios::run(&embedded).await {
        Ok(t) => {
            println!("in-process lab: {}", t.totals());
            failures += t.failed();
            if t.not_applicable() > 0 {
                println!(
                    "in-process lab: {} scenarios not applicable (nothing should be)",
                    t.not_applicable()
                );
                failures += t.not_applicable();
            }
        }
        Err(e) => {
            eprintln!("the in-process run did not complete: {e:#}");
            std::process::exit(2);
        }
    }

    let pbx_listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (gateway, sip) = match external_gateway(pbx_listen).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cannot start the stand-alone gateway: {e:#}");
            std::process::exit(2);
        }
    };
    let external = scenarios::RunOptions {
        features: root.join("features"),
        selection: Selection::with_tags(Some(
            &std::env::var("RCC_LAB_EXTERNAL_TAGS").unwrap_or_else(|_| "@smoke".to_owned()),
        ))
        .expect("RCC_LAB_EXTERNAL_TAGS"),
        report: target.join("report-external-gateway"),
        concurrency: 4,
        fail_fast: false,
        lab: LabOptions {
            tls: false,
            gateway_at: GatewayAt::External(ExternalGateway {
                address: sip,
                tls: false,
                fqdn: String::new(),
                ca: None,
                pool_identity: None,
                pbx_listen,
            }),
            ..LabOptions::default()
        },
    };
    match scenarios::run(&external).await {
        Ok(t) => {
            println!("external gateway: {}", t.totals());
            failures += t.failed();
            if t.not_applicable() == 0 {
                println!(
                    "external gateway: the gateway-restart scenario should have been listed as not applicable"
                );
                failures += 1;
            }
        }
        Err(e) => {
            eprintln!("the external-gateway run did not complete: {e:#}");
            std::process::exit(2);
        }
    }
    drop(gateway);
    println!("{} failed", failures);
    if failures > 0 {
        std::process::exit(1);
    }
}
