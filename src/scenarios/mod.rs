//! The Gherkin conformance suite: the World a scenario runs in, and the runner used by both
//! `tests/features.rs` (cargo test) and `rcc-lab run`. Step definitions are in `steps.rs`.
//!
//! This module is compiled into each of those binaries (not the library) so that cucumber's
//! step registry sees the step definitions.

mod console;
mod ha_steps;
mod sipe_steps;
mod steps;
mod virtual_lab;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cucumber::World;
use cucumber::event::ScenarioFinished;
use futures::FutureExt as _;
use rcc_lab::conformance::{Conformance, RunInfo};
use rcc_lab::lab::{Lab, LabOptions};
use rcc_lab::report::{ScenarioReport, Status};
use rcc_lab::selection::Selection;

use console::RunLog;

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
    /// The PBX simulator's monitor count before a link fault (what must come back).
    monitors_before_fault: Option<usize>,
    /// The scenario runs on the in-memory lab in virtual time (`virtual_lab.rs`).
    virtual_time: bool,
    memlab: Option<rcc_testkit::MemLab>,
    /// Real pidgin-sipe clients by user, and how many were started.
    sipe: HashMap<String, sipe_steps::RealClient>,
    sipe_runs: usize,
    /// The high-availability tier's state (`ha_steps.rs`).
    ha: ha_steps::HaState,
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
    /// Which scenarios (tags, names, locations).
    pub selection: Selection,
    /// Report folder: `index.html`, `junit.xml`, `conformance.json`.
    pub report: PathBuf,
    /// Scenarios run at once when the lab owns every component (one at a time otherwise).
    pub concurrency: usize,
    /// Stop after the first failed scenario.
    pub fail_fast: bool,
    /// Which component stands in each position.
    pub lab: LabOptions,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Every scenario, selected and run or not applicable, in file and line order.
    pub scenarios: Vec<ScenarioReport>,
    /// Feature files that did not parse, and hooks that failed.
    pub suite_errors: Vec<String>,
    /// The conformance summary written beside the report.
    pub conformance: Conformance,
}

impl RunOutcome {
    /// Scenarios that passed.
    pub fn passed(&self) -> usize {
        self.conformance.totals.passed
    }

    /// Scenarios that failed (or have an undefined step), plus suite errors.
    pub fn failed(&self) -> usize {
        self.conformance.totals.failed
    }

    /// Scenarios not applicable to this lab.
    pub fn not_applicable(&self) -> usize {
        self.conformance.totals.not_applicable
    }

    /// `N passed, N failed, N not applicable`.
    pub fn totals(&self) -> String {
        format!(
            "{} passed, {} failed, {} not applicable",
            self.passed(),
            self.failed(),
            self.not_applicable()
        )
    }
}

/// Runs the suite; writes the HTML report, JUnit and `conformance.json`.
pub async fn run(opts: &RunOptions) -> anyhow::Result<RunOutcome> {
    std::fs::create_dir_all(&opts.report)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", opts.report.display()))?;
    let base = BASE.get_or_init(|| Mutex::new(LabOptions::default()));
    if let Ok(mut b) = base.lock() {
        *b = opts.lab.clone();
    }
    // Side by side only when each scenario has its own PBX simulator, gateway and pool on fresh
    // ports: an external gateway has one address and one PBX link to our simulator, an
    // external PBX one set of devices.
    let concurrency = if opts.lab.owns_everything() {
        opts.concurrency.max(1)
    } else {
        println!(
            "the lab does not own every component: scenarios run one after another \
             (they share the external component's address and state)"
        );
        1
    };
    let started = std::time::SystemTime::now();
    let log: Arc<Mutex<RunLog>> = Arc::new(Mutex::new(RunLog::default()));
    let collected: Arc<Mutex<Vec<ScenarioReport>>> = Arc::new(Mutex::new(Vec::new()));
    let not_run: Arc<Mutex<Vec<ScenarioReport>>> = Arc::new(Mutex::new(Vec::new()));

    let filter = {
        let selection = opts.selection.clone();
        let lab = opts.lab.clone();
        let not_run = not_run.clone();
        let log = log.clone();
        move |feature: &cucumber::gherkin::Feature,
              rule: Option<&cucumber::gherkin::Rule>,
              scenario: &cucumber::gherkin::Scenario| {
            if !selection.selects(feature, rule, scenario) {
                return false;
            }
            let tags = rcc_lab::selection::tags_of(feature, rule, scenario);
            if let Some(why) = rcc_lab::labfile::not_applicable(&lab, &tags) {
                if let Ok(mut v) = not_run.lock() {
                    let (file, line) = console::key(feature, scenario);
                    v.push(ScenarioReport {
                        feature: feature.name.clone(),
                        name: scenario.name.clone(),
                        file,
                        line,
                        tags,
                        status: Status::NotApplicable(why),
                        ..Default::default()
                    });
                }
                return false;
            }
            if let Ok(mut l) = log.lock() {
                l.selected += 1;
            }
            true
        }
    };
    let after = after_hook(collected.clone(), log.clone());
    let cucumber = RccWorld::cucumber()
        .max_concurrent_scenarios(concurrency)
        .with_writer(console::Console::new(log.clone()))
        .after(after);
    let cucumber = if opts.fail_fast {
        cucumber.fail_fast()
    } else {
        cucumber
    };
    // Last: changing the writer or hooks resets the CLI, which would then parse argv.
    let cli = cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default();
    cucumber
        .with_cli(cli)
        .filter_run(&opts.features, filter)
        .await;

    let mut scenarios = collected.lock().map(|v| v.clone()).unwrap_or_default();
    let not_run = not_run.lock().map(|v| v.clone()).unwrap_or_default();
    for r in &not_run {
        println!(
            "n/a {} — {}  ({}): {}",
            r.feature,
            r.name,
            r.location(),
            r.status.detail()
        );
    }
    scenarios.extend(not_run);
    let suite_errors = match log.lock() {
        Ok(mut l) => {
            for s in &mut scenarios {
                if let Some(steps) = l.steps.remove(&(s.file.clone(), s.line)) {
                    s.steps = steps;
                }
            }
            l.parse_errors.clone()
        }
        Err(_) => vec!["the run's log was poisoned".to_owned()],
    };
    scenarios.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    let run = RunInfo::new(&opts.lab, opts.selection.tags_text.clone(), started);
    let conformance = Conformance::summarize(&run, &scenarios, &suite_errors);
    let outcome = RunOutcome {
        scenarios,
        suite_errors,
        conformance,
    };
    write_report(&opts.report, &outcome)?;
    Ok(outcome)
}

/// What runs after each scenario: its report (status, ladder) into `collected`, its closing
/// line into the log, and the lab taken down.
#[allow(clippy::type_complexity)]
fn after_hook(
    collected: Arc<Mutex<Vec<ScenarioReport>>>,
    log: Arc<Mutex<RunLog>>,
) -> impl for<'a> Fn(
    &'a cucumber::gherkin::Feature,
    Option<&'a cucumber::gherkin::Rule>,
    &'a cucumber::gherkin::Scenario,
    &'a ScenarioFinished,
    Option<&'a mut RccWorld>,
) -> futures::future::LocalBoxFuture<'a, ()> {
    move |feature: &cucumber::gherkin::Feature,
          rule: Option<&cucumber::gherkin::Rule>,
          scenario: &cucumber::gherkin::Scenario,
          finished: &ScenarioFinished,
          world: Option<&mut RccWorld>| {
        let collected = collected.clone();
        let log = log.clone();
        let status = match finished {
            ScenarioFinished::StepPassed => Status::Passed,
            ScenarioFinished::StepSkipped => Status::Undefined(
                "a step has no definition (rcc-lab run --list shows the vocabulary)".into(),
            ),
            ScenarioFinished::StepFailed(_, _, e) => {
                let text = console::error_text(e);
                match text.strip_prefix("not applicable: ") {
                    Some(why) => Status::NotApplicable(why.to_owned()),
                    None => Status::Failed(text),
                }
            }
            ScenarioFinished::BeforeHookFailed(_) => {
                Status::Failed("the scenario's set-up failed".into())
            }
        };
        let (file, line) = console::key(feature, scenario);
        let tags = rcc_lab::selection::tags_of(feature, rule, scenario);
        let report = ScenarioReport {
            feature: feature.name.clone(),
            name: scenario.name.clone(),
            file,
            line,
            tags,
            status,
            ..Default::default()
        };
        async move {
            let mut report = report;
            if let Some(w) = world {
                if let Some(lab) = &w.lab {
                    report.arrows = lab.ladder().await.unwrap_or_default();
                    // Leave nothing behind in a gateway that outlives the scenario: sign out,
                    // then wait (boundedly) until the lab sees no session and no monitor.
                    for id in w.endpoints.values() {
                        let _ = lab.lync.sign_out(*id).await;
                    }
                    // Real clients sign off too (MonitorStop, BYE), not just vanish.
                    let real_clients = !w.sipe.is_empty();
                    for (_, c) in w.sipe.drain() {
                        let _ = c.quit().await;
                    }
                    if !w.endpoints.is_empty() || real_clients {
                        let _ = lab.until_holding(0, 0).await;
                    }
                }
                if let Some(lab) = w.lab.take() {
                    lab.shutdown().await;
                }
                report.millis = w.started.map_or(0, |s| s.elapsed().as_millis());
            }
            if let Ok(mut l) = log.lock() {
                let (verdict, detail) = match &report.status {
                    Status::Passed => ("ok".to_owned(), String::new()),
                    Status::Failed(e) | Status::Undefined(e) => ("FAILED".to_owned(), e.clone()),
                    Status::NotApplicable(why) => {
                        ("n/a".to_owned(), format!("not applicable: {why}"))
                    }
                };
                l.closing.insert(
                    (report.file.clone(), report.line),
                    console::Closing {
                        verdict,
                        detail,
                        millis: report.millis,
                    },
                );
            }
            if let Ok(mut v) = collected.lock() {
                v.push(report);
            }
        }
        .boxed_local()
    }
}

fn write_report(dir: &Path, outcome: &RunOutcome) -> anyhow::Result<()> {
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    };
    write(
        "index.html",
        &rcc_lab::report::html(
            "rcc-lab conformance run",
            &outcome.scenarios,
            Some(&outcome.conformance),
        ),
    )?;
    write(
        "junit.xml",
        &rcc_lab::report::junit::junit("rcc-lab", &outcome.scenarios, &outcome.suite_errors)?,
    )?;
    write("conformance.json", &outcome.conformance.to_json()?)?;
    Ok(())
}

/// Starts the lab once the Given steps have chosen its options.
pub async fn lab(w: &mut RccWorld) -> anyhow::Result<&Lab> {
    anyhow::ensure!(
        !w.virtual_time,
        "this step does not run in virtual time (src/scenarios/virtual_lab.rs has those that do)"
    );
    if w.lab.is_none() {
        w.lab = Some(Lab::start(w.options.clone()).await?);
    }
    w.lab
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the lab did not start"))
}
