//! The run's own cucumber writer: it records each scenario's steps as they run (with their
//! start times, which mark the ladder in the report), prints a scenario's block the moment it
//! ends (never interleaved, whatever the concurrency), and keeps a progress line on a terminal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use cucumber::event::{Cucumber, Feature, Rule, Scenario, Step, StepError};
use cucumber::{Event, Writer, cli, gherkin, parser};
use indicatif::{ProgressBar, ProgressStyle};
use rcc_lab::report::{StepOutcome, StepReport};

/// A scenario's identity across cucumber's events and the after hook.
pub type Key = (String, usize);

/// The key of a scenario in a feature.
pub fn key(feature: &gherkin::Feature, scenario: &gherkin::Scenario) -> Key {
    (file_of(feature), scenario.position.line)
}

/// The feature's file as the run was given it (or its name when it has none).
pub fn file_of(feature: &gherkin::Feature) -> String {
    feature.path.as_ref().map_or_else(
        || feature.name.clone(),
        |p| {
            let cwd = std::env::current_dir().unwrap_or_default();
            p.strip_prefix(&cwd).unwrap_or(p).display().to_string()
        },
    )
}

/// What the after hook hands the writer for a scenario's closing line.
#[derive(Debug, Clone)]
pub struct Closing {
    /// `ok`, `FAILED`, `n/a` (with the reason) …
    pub verdict: String,
    /// The failure text or the reason, printed under the block.
    pub detail: String,
    /// Whole milliseconds the scenario took.
    pub millis: u128,
}

/// Everything the writer saw, shared with the runner.
#[derive(Debug, Default)]
pub struct RunLog {
    /// Steps per scenario, in the order they ran.
    pub steps: HashMap<Key, Vec<StepReport>>,
    /// The closing line per scenario, set by the after hook before cucumber's Finished event.
    pub closing: HashMap<Key, Closing>,
    /// Feature files that did not parse, with the reason.
    pub parse_errors: Vec<String>,
    /// Scenarios the filter selected (the progress bar's length).
    pub selected: usize,
    /// Steps of the scenario itself (not of its Background) started so far.
    scenario_steps_started: HashMap<Key, usize>,
    /// Names of the scenarios running now.
    running: Vec<String>,
    finished: usize,
}

/// The writer.
pub struct Console {
    log: Arc<Mutex<RunLog>>,
    bar: ProgressBar,
    started: Instant,
    /// Prints what is running every so often when no progress bar shows (CI logs).
    ticker: Option<tokio::task::JoinHandle<()>>,
}

/// How often the running scenarios are named when stderr is not a terminal.
const TICK: std::time::Duration = std::time::Duration::from_secs(15);

impl Console {
    /// A writer that records into `log`; the progress line shows on stderr when it is a
    /// terminal (indicatif hides it otherwise).
    pub fn new(log: Arc<Mutex<RunLog>>) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("[{pos}/{len}] {elapsed} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let started = Instant::now();
        let ticker = (!std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let log = log.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(TICK).await;
                    let line = match log.lock() {
                        Ok(l) if !l.running.is_empty() => format!(
                            "[{}/{} {:.0} s] running: {}",
                            l.finished,
                            l.selected,
                            started.elapsed().as_secs_f64(),
                            l.running.join(" | ")
                        ),
                        _ => continue,
                    };
                    println!("{line}");
                }
            })
        });
        Console {
            log,
            bar,
            started,
            ticker,
        }
    }

    fn scenario(
        &mut self,
        feature: &gherkin::Feature,
        scenario: &gherkin::Scenario,
        ev: Scenario<super::RccWorld>,
        at: SystemTime,
    ) {
        let k = key(feature, scenario);
        let Ok(mut log) = self.log.lock() else {
            return;
        };
        match ev {
            Scenario::Started => {
                log.steps.insert(k, Vec::new());
                log.running.push(scenario.name.clone());
                self.bar.set_length(log.selected as u64);
                self.bar.set_message(log.running.join(" | "));
            }
            Scenario::Step(step, ev) => record_step(&mut log, k, &step, ev, at, false),
            Scenario::Background(step, ev) => record_step(&mut log, k, &step, ev, at, true),
            Scenario::Finished => {
                let started = log.scenario_steps_started.remove(&k).unwrap_or(0);
                let steps = log.steps.entry(k.clone()).or_default();
                // Steps after a failure never start: list them as not run.
                for s in scenario.steps.iter().skip(started) {
                    steps.push(StepReport {
                        keyword: s.keyword.clone(),
                        text: s.value.clone(),
                        started_us: 0,
                        outcome: StepOutcome::Skipped,
                    });
                }
                let steps = steps.clone();
                let block = block(feature, scenario, &steps, log.closing.get(&k));
                log.finished += 1;
                if let Some(i) = log.running.iter().position(|n| *n == scenario.name) {
                    log.running.remove(i);
                }
                let (done, len) = (log.finished, log.selected);
                self.bar.set_position(done as u64);
                self.bar.set_message(log.running.join(" | "));
                drop(log);
                let head = format!(
                    "[{done}/{len} {:.0} s] ",
                    self.started.elapsed().as_secs_f64()
                );
                self.bar.suspend(|| println!("{head}{block}"));
            }
            Scenario::Hook(..) | Scenario::Log(_) => {}
        }
    }
}

/// A step event; Background steps come first and are not among the scenario's own steps.
fn record_step(
    log: &mut RunLog,
    k: Key,
    step: &gherkin::Step,
    ev: Step<super::RccWorld>,
    at: SystemTime,
    background: bool,
) {
    if !background && matches!(ev, Step::Started) {
        *log.scenario_steps_started.entry(k.clone()).or_default() += 1;
    }
    let steps = log.steps.entry(k).or_default();
    match ev {
        Step::Started => steps.push(StepReport {
            keyword: step.keyword.clone(),
            text: step.value.clone(),
            started_us: micros(at),
            outcome: StepOutcome::Skipped,
        }),
        Step::Passed(..) => set_last(steps, StepOutcome::Passed),
        Step::Failed(..) => set_last(steps, StepOutcome::Failed),
        Step::Skipped => set_last(steps, StepOutcome::Skipped),
    }
}

fn set_last(steps: &mut [StepReport], outcome: StepOutcome) {
    if let Some(s) = steps.last_mut() {
        s.outcome = outcome;
    }
}

fn micros(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A scenario's printed block: its head line, each step marked, then the failure or reason.
fn block(
    feature: &gherkin::Feature,
    scenario: &gherkin::Scenario,
    steps: &[StepReport],
    closing: Option<&Closing>,
) -> String {
    let (verdict, detail, millis) = closing.map_or(("?", "", 0), |c| {
        (c.verdict.as_str(), c.detail.as_str(), c.millis)
    });
    let mut out = format!(
        "{verdict} {} — {}  ({}:{}, {millis} ms)\n",
        feature.name,
        scenario.name,
        file_of(feature),
        scenario.position.line
    );
    for s in steps {
        let mark = match s.outcome {
            StepOutcome::Passed => "✔",
            StepOutcome::Failed => "✘",
            StepOutcome::Skipped => "-",
        };
        out.push_str(&format!("    {mark} {}{}\n", s.keyword, s.text));
    }
    for line in detail.lines() {
        out.push_str(&format!("      {line}\n"));
    }
    out.pop();
    out
}

/// The text of a step's failure (a step's `Err` reaches cucumber as a panic with its message).
pub fn error_text(e: &StepError) -> String {
    match e {
        StepError::Panic(info) => info
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the step panicked".to_owned()),
        other => other.to_string(),
    }
}

impl Writer<super::RccWorld> for Console {
    type Cli = cli::Empty;

    async fn handle_event(
        &mut self,
        event: parser::Result<Event<Cucumber<super::RccWorld>>>,
        _: &Self::Cli,
    ) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                let text = format!("feature file error: {e}");
                self.bar.suspend(|| println!("{text}"));
                if let Ok(mut log) = self.log.lock() {
                    log.parse_errors.push(text);
                }
                return;
            }
        };
        let at = event.at;
        match event.value {
            Cucumber::Feature(f, Feature::Scenario(s, ev))
            | Cucumber::Feature(f, Feature::Rule(_, Rule::Scenario(s, ev))) => {
                self.scenario(&f, &s, ev.event, at);
            }
            Cucumber::Finished => {
                self.bar.finish_and_clear();
                if let Some(t) = self.ticker.take() {
                    t.abort();
                }
            }
            Cucumber::Started
            | Cucumber::ParsingFinished { .. }
            | Cucumber::Feature(_, Feature::Started | Feature::Finished)
            | Cucumber::Feature(_, Feature::Rule(_, Rule::Started | Rule::Finished)) => {}
        }
    }
}

/// The writer takes events in the order they happen: it keys everything by scenario and
/// prints a scenario only once it has finished, so it needs no reordering.
impl cucumber::writer::Normalized for Console {}
