//! What a scenario run produced, and the files written from it: the HTML report
//! ([`html`]: summary, conformance by capability, a ladder per scenario), JUnit XML ([`junit`])
//! and `conformance.json` ([`crate::conformance`]).

pub mod html;
pub mod junit;

pub use html::html;

/// One message on a ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    /// Wall-clock time, microseconds since the Unix epoch.
    pub at_us: u64,
    /// Sender lane.
    pub from: String,
    /// Receiver lane.
    pub to: String,
    /// Short label (start line, CSTA root).
    pub label: String,
    /// The whole message.
    pub text: String,
}

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    /// Every step passed.
    #[default]
    Passed,
    /// A step failed (its message).
    Failed(String),
    /// Not applicable to this lab, with the reason (for example: needs PBX-side actions and
    /// the PBX is external). Neither a pass nor a failure.
    NotApplicable(String),
    /// A step has no definition: a defect of the suite itself, counted as a failure.
    Undefined(String),
}

impl Status {
    /// A failure of the run (a failed step, or a step the suite does not define).
    pub fn is_failure(&self) -> bool {
        matches!(self, Status::Failed(_) | Status::Undefined(_))
    }

    /// One word for tables and JSON: `passed`, `failed`, `not-applicable`, `undefined`.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed(_) => "failed",
            Status::NotApplicable(_) => "not-applicable",
            Status::Undefined(_) => "undefined",
        }
    }

    /// The failure message or the reason (empty for a pass).
    pub fn detail(&self) -> &str {
        match self {
            Status::Passed => "",
            Status::Failed(s) | Status::NotApplicable(s) | Status::Undefined(s) => s,
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// It passed.
    Passed,
    /// It failed.
    Failed,
    /// It was not run (an earlier step failed, or it has no definition).
    Skipped,
}

/// One step of a scenario as it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// `Given `, `When `, `Then `, `And `…
    pub keyword: String,
    /// The step text.
    pub text: String,
    /// When it started, microseconds since the Unix epoch (0: never started).
    pub started_us: u64,
    /// How it ended.
    pub outcome: StepOutcome,
}

/// One scenario's result and ladder.
#[derive(Debug, Clone, Default)]
pub struct ScenarioReport {
    /// Feature name.
    pub feature: String,
    /// Scenario name (an outline's example values substituted).
    pub name: String,
    /// Feature file, as given to the run.
    pub file: String,
    /// Line of the scenario (of the example row for an outline).
    pub line: usize,
    /// Tags of the feature, rule, scenario and examples, without `@`.
    pub tags: Vec<String>,
    /// Outcome.
    pub status: Status,
    /// Duration in milliseconds.
    pub millis: u128,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// Messages, in time order.
    pub arrows: Vec<Arrow>,
}

impl ScenarioReport {
    /// `file:line`, the way `rcc-lab run` selects it.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The anchor of its section in `index.html`: the location with `/` and `.` as `-`,
    /// `:` as `--`, and any other character as `_` and its code (so that no two locations
    /// share one).
    pub fn anchor(&self) -> String {
        let mut a = String::from("s-");
        for c in self.location().chars() {
            match c {
                c if c.is_ascii_alphanumeric() => a.push(c),
                '/' | '.' => a.push('-'),
                ':' => a.push_str("--"),
                c => a.push_str(&format!("_{:x}", u32::from(c))),
            }
        }
        a
    }
}
