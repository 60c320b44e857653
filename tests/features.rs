//! The Gherkin conformance suite (`features/`) against the in-process lab, as part of
//! `cargo test`. Writes JUnit XML to `target/cucumber/junit.xml` and the HTML report to
//! `target/cucumber/report/`; exits non-zero on any failure.

#[path = "../src/scenarios/mod.rs"]
mod scenarios;

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("cucumber");
    let opts = scenarios::RunOptions {
        features: root.join("features"),
        tags: std::env::var("RCC_LAB_TAGS").ok(),
        junit: target.join("junit.xml"),
        report: Some(target.join("report")),
        concurrency: 4,
    };
    match scenarios::run(&opts).await {
        Ok(t) => {
            println!("{} passed, {} failed", t.passed, t.failed + t.skipped);
            if t.failed + t.skipped > 0 {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("the scenario run did not complete: {e:#}");
            std::process::exit(2);
        }
    }
}
