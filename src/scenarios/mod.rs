//! The Gherkin conformance suite: the World a scenario runs in, and the runner used by both
//! `tests/features.rs` (cargo test) and `rcc-lab run`. Step definitions are in `steps.rs`.
//!
//! This module is compiled into each of those binaries (not the library) so that cucumber's
//! step registry sees the step definitions.

mod steps;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cucumber::WriterExt as _;
use cucumber::event::ScenarioFinished;
use cucumber::writer::Stats as _;
use cucumber::{World, writer, writer::Verbosity};
use futures::FutureExt as _;
use rcc_lab::lab::{Lab, LabOptions};
use rcc_lab::report::{ScenarioReport, Status};

/// The state of one scenario: the lab options gathered by the Given steps, then the lab.
#[derive(World, Default)]
#[world(init = Self::new)]
pub struct RccWorld {
    options: LabOptions,
    lab: Option<Lab>,
    /// `alice` or `alice/laptop` → endpoint.
    endpoints: HashMap<String, usize>,
    /// Events already consumed per endpoint.
    seen: HashMap<usize, usize>,
    /// Latest CSTA answer per user.
    answers: HashMap<String, rcc_simulators::lync::ActionResult>,
    /// Call IDs per user: the latest call and the one put on hold for consultation.
    calls: HashMap<String, String>,
    held: HashMap<String, String>,
    started: Option<Instant>,
}

impl std::fmt::Debug for RccWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RccWorld")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl RccWorld {
    fn new() -> Self {
        RccWorld {
            started: Some(Instant::now()),
            ..Default::default()
        }
    }
}

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Folder of `.feature` files.
    pub features: PathBuf,
    /// Tag expression (`@profile-osv and not @slow`).
    pub tags: Option<String>,
    /// JUnit XML output.
    pub junit: PathBuf,
    /// HTML report folder.
    pub report: Option<PathBuf>,
    /// Scenarios run at once.
    pub concurrency: usize,
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Scenarios passed.
    pub passed: usize,
    /// Scenarios failed (or whose steps were missing).
    pub failed: usize,
    /// Scenarios not run, each listed by name with its reason.
    pub skipped: usize,
}

/// Runs the suite; writes JUnit and, when asked, the HTML report.
pub async fn run(opts: &RunOptions) -> anyhow::Result<Totals> {
    if let Some(dir) = opts.junit.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let junit = std::fs::File::create(&opts.junit)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", opts.junit.display()))?;
    let collected: Arc<Mutex<Vec<ScenarioReport>>> = Arc::new(Mutex::new(Vec::new()));
    let sink = collected.clone();
    let tags = match &opts.tags {
        Some(t) => Some(
            t.parse::<cucumber::gherkin::tagexpr::TagOperation>()
                .map_err(|e| anyhow::anyhow!("tag expression {t:?}: {e}"))?,
        ),
        None => None,
    };
    let cli = cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty> {
        tags_filter: tags,
        ..Default::default()
    };
    let writer = writer::Basic::raw(
        std::io::stdout(),
        writer::Coloring::Never,
        Verbosity::Default,
    )
    .summarized()
    .tee::<RccWorld, _>(writer::JUnit::for_tee(junit, 0))
    .normalized();
    let result = RccWorld::cucumber()
        .max_concurrent_scenarios(opts.concurrency)
        .with_cli(cli)
        .with_writer(writer)
        .after(move |feature, _rule, scenario, finished, world| {
            let sink = sink.clone();
            async move {
                let status = match finished {
                    ScenarioFinished::StepPassed => Status::Passed,
                    ScenarioFinished::StepSkipped => {
                        Status::Skipped("a step has no definition".to_owned())
                    }
                    ScenarioFinished::StepFailed(_, _, e) => Status::Failed(format!("{e}")),
                    ScenarioFinished::BeforeHookFailed(e) => {
                        Status::Failed(format!("before hook: {e:?}"))
                    }
                };
                let mut arrows = Vec::new();
                let mut millis = 0;
                if let Some(w) = world {
                    if let Some(lab) = &w.lab {
                        arrows = lab.ladder().await.unwrap_or_default();
                    }
                    millis = w.started.map_or(0, |s| s.elapsed().as_millis());
                }
                if let Ok(mut v) = sink.lock() {
                    v.push(ScenarioReport {
                        feature: feature.name.clone(),
                        name: scenario.name.clone(),
                        status,
                        millis,
                        arrows,
                    });
                }
            }
            .boxed_local()
        })
        .run(&opts.features)
        .await;
    let reports = collected.lock().map(|v| v.clone()).unwrap_or_default();
    let count = |f: fn(&Status) -> bool| reports.iter().filter(|r| f(&r.status)).count();
    let reported_failures = count(|s| matches!(s, Status::Failed(_)));
    // Parse errors and hook errors fail the run even though no scenario report carries them.
    let extra = result.parsing_errors() + result.hook_errors();
    let totals = Totals {
        passed: count(|s| *s == Status::Passed),
        failed: reported_failures + extra,
        skipped: count(|s| matches!(s, Status::Skipped(_))),
    };
    anyhow::ensure!(
        !result.execution_has_failed() || totals.failed + totals.skipped > 0,
        "cucumber reports a failure the scenario reports do not show"
    );
    if let Some(dir) = &opts.report {
        write_report(dir, &reports)?;
    }
    Ok(totals)
}

fn write_report(dir: &Path, reports: &[ScenarioReport]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut sorted = reports.to_vec();
    sorted.sort_by(|a, b| (&a.feature, &a.name).cmp(&(&b.feature, &b.name)));
    let page = rcc_lab::report::html("rcc-lab conformance run", &sorted);
    let path = dir.join("index.html");
    std::fs::write(&path, page)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// Starts the lab once the Given steps have chosen its options.
pub async fn lab(w: &mut RccWorld) -> anyhow::Result<&Lab> {
    if w.lab.is_none() {
        w.lab = Some(Lab::start(w.options.clone()).await?);
    }
    w.lab
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the lab did not start"))
}
