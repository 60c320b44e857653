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
use cucumber::tag::Ext as _;
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

/// The lab every scenario of a run starts from (set by [`run`]).
static BASE: std::sync::OnceLock<Mutex<LabOptions>> = std::sync::OnceLock::new();

impl RccWorld {
    fn new() -> Self {
        let options = BASE
            .get()
            .and_then(|m| m.lock().ok().map(|o| o.clone()))
            .unwrap_or_default();
        RccWorld {
            options,
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
    /// Which component stands in each position.
    pub lab: LabOptions,
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Scenarios passed.
    pub passed: usize,
    /// Scenarios failed (or whose steps were missing).
    pub failed: usize,
    /// Scenarios with a step that has no definition (a failure of the suite itself).
    pub skipped: usize,
    /// Scenarios not applicable to this lab (listed by name in the output and the report).
    pub not_applicable: usize,
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
    let base = BASE.get_or_init(|| Mutex::new(LabOptions::default()));
    if let Ok(mut b) = base.lock() {
        *b = opts.lab.clone();
    }
    let not_applicable = rcc_lab::labfile::inapplicable(&opts.lab);
    let skipped: Arc<Mutex<Vec<ScenarioReport>>> = Arc::new(Mutex::new(Vec::new()));
    let skipped_sink = skipped.clone();
    let tags = match &opts.tags {
        Some(t) => Some(
            t.parse::<cucumber::gherkin::tagexpr::TagOperation>()
                .map_err(|e| anyhow::anyhow!("tag expression {t:?}: {e}"))?,
        ),
        None => None,
    };
    let cli = cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default();
    let filter = move |feature: &cucumber::gherkin::Feature,
                       rule: Option<&cucumber::gherkin::Rule>,
                       scenario: &cucumber::gherkin::Scenario| {
        let all: Vec<&String> = feature
            .tags
            .iter()
            .chain(rule.iter().flat_map(|r| &r.tags))
            .chain(scenario.tags.iter())
            .collect();
        if let Some(t) = &tags
            && !t.eval(all.iter().copied())
        {
            return false;
        }
        if let Some((_, why)) = not_applicable
            .iter()
            .find(|(tag, _)| all.iter().any(|t| t.as_str() == *tag))
        {
            if let Ok(mut v) = skipped_sink.lock() {
                v.push(ScenarioReport {
                    feature: feature.name.clone(),
                    name: scenario.name.clone(),
                    status: Status::Skipped(format!("not applicable: {why}")),
                    millis: 0,
                    arrows: Vec::new(),
                });
            }
            return false;
        }
        true
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
                        // Leave nothing behind in a gateway that outlives the scenario.
                        for id in w.endpoints.values() {
                            let _ = lab.lync.sign_out(*id).await;
                        }
                        if !w.endpoints.is_empty() {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    }
                    if let Some(lab) = w.lab.take() {
                        lab.shutdown().await;
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
        // Last: changing the writer or hooks resets the CLI, which would then parse argv.
        .with_cli(cli)
        .filter_run(&opts.features, filter)
        .await;
    let mut reports = collected.lock().map(|v| v.clone()).unwrap_or_default();
    let not_run = skipped.lock().map(|v| v.clone()).unwrap_or_default();
    for r in &not_run {
        if let Status::Skipped(why) = &r.status {
            println!("{} — {}: {why}", r.feature, r.name);
        }
    }
    reports.extend(not_run);
    let count = |f: fn(&Status) -> bool| reports.iter().filter(|r| f(&r.status)).count();
    let reported_failures = count(|s| matches!(s, Status::Failed(_)));
    // Parse errors and hook errors fail the run even though no scenario report carries them.
    let extra = result.parsing_errors() + result.hook_errors();
    let totals = Totals {
        passed: count(|s| *s == Status::Passed),
        failed: reported_failures + extra,
        skipped: count(|s| matches!(s, Status::Skipped(r) if !r.starts_with("not applicable"))),
        not_applicable: count(
            |s| matches!(s, Status::Skipped(r) if r.starts_with("not applicable")),
        ),
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
