//! The conformance summary of a run: for each capability a gateway must have (sign-in per
//! client dialect, each CSTA service, events, MPOP, authorization, the PBX link…), pass, fail
//! or not applicable with the reason and the scenarios that are its evidence; the lab's
//! topology, the rcc-lab version, date, duration and tags. Written as `conformance.json` and
//! shown at the top of `index.html`: a report a customer can hand to a gateway's vendor.
//!
//! A scenario counts towards a capability by a `@cap-<id>` tag (on the feature, the scenario
//! or an outline's examples); [`CATALOGUE`] names the capabilities.

use std::time::SystemTime;

use serde::Serialize;

use crate::lab::{GatewayAt, LabOptions, PbxAt};
use crate::report::{ScenarioReport, Status};

/// Every capability the suite checks: tag id and title.
pub const CATALOGUE: &[(&str, &str)] = &[
    (
        "sign-in-lync2013",
        "Sign-in and refresh: Lync 2013 (UPDATE)",
    ),
    ("sign-in-oc2007", "Sign-in and refresh: OC 2007 (re-INVITE)"),
    (
        "sign-in-oc2007r2",
        "Sign-in and refresh: OC 2007 R2 (UPDATE)",
    ),
    (
        "sign-in-sipe",
        "Sign-in and refresh: pidgin-sipe (CSeq restart, no answers to events)",
    ),
    (
        "real-client",
        "The real pidgin-sipe client: sign-in, click to dial and its events, PBX link loss, gateway restart",
    ),
    (
        "high-availability",
        "Several gateways behind Kamailio: one monitor per line, failover, restart, drain, PBX link loss",
    ),
    ("sign-out", "Sign-out: MonitorStop and BYE"),
    (
        "routing",
        "Front End routing: static route and trusted application",
    ),
    ("line-uri-verbatim", "LineURI echoed verbatim"),
    ("features", "GetCSTAFeatures advertises the services"),
    (
        "make-call",
        "MakeCall (click to dial): answered, busy, unanswered, invalid",
    ),
    ("clear-connection", "ClearConnection: hang up and cancel"),
    ("answer-call", "AnswerCall"),
    ("deflect-call", "DeflectCall"),
    ("hold-retrieve", "HoldCall and RetrieveCall"),
    (
        "consultation-transfer",
        "ConsultationCall, AlternateCall, ReconnectCall, TransferCall, ConferenceCall",
    ),
    ("single-step-transfer", "SingleStepTransferCall"),
    ("dtmf", "GenerateDigits (DTMF)"),
    (
        "forwarding",
        "SetForwarding, GetForwarding, do-not-disturb and their events",
    ),
    ("events", "Call events and cross-references"),
    ("mpop", "MPOP: several endpoints and users on one line"),
    (
        "authorization",
        "Authorization: only permitted lines and calls",
    ),
    (
        "pbx-link",
        "PBX link loss, resync and a PBX that stops answering",
    ),
    (
        "pbx-profiles",
        "PBX profiles (generic, OpenScape Voice, Avaya AES)",
    ),
    ("malformed", "Malformed CSTA refused, the session survives"),
    (
        "session-expiry",
        "Session timers: a client that never refreshes",
    ),
    ("gateway-restart", "Gateway restart: clients re-establish"),
];

/// Where each component of the lab stood.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// The gateway under test.
    pub gateway: String,
    /// The PBX.
    pub pbx: String,
    /// The Lync side.
    pub front_end: String,
}

/// The facts of a run that are not scenario results.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Where each component stood.
    pub topology: Topology,
    /// The tag expression, if any.
    pub tags: Option<String>,
    /// When the run started.
    pub started: SystemTime,
}

impl RunInfo {
    /// The run's facts, from the lab it ran in.
    pub fn new(lab: &LabOptions, tags: Option<String>, started: SystemTime) -> RunInfo {
        let transport = if lab.tls { "mutual TLS" } else { "TCP" };
        let gateway = match &lab.gateway_at {
            GatewayAt::InProcess => format!("rcc-gateway {} in process", env!("CARGO_PKG_VERSION")),
            GatewayAt::Tier(t) => format!(
                "{} rcc-gateway {} processes behind Kamailio",
                t.gateways,
                env!("CARGO_PKG_VERSION")
            ),
            GatewayAt::External(g) => format!(
                "external at {} over {}{}",
                g.address,
                if g.tls { "mutual TLS" } else { "TCP" },
                if g.tls {
                    format!(" ({})", g.fqdn)
                } else {
                    String::new()
                }
            ),
        };
        let pbx = match &lab.pbx_at {
            PbxAt::Simulator => format!(
                "rcc-lab PBX simulator, profile {}",
                crate::labfile::profile_name(lab.pbx_profile)
            ),
            PbxAt::External(p) => format!("external at {} ({:?})", p.address, p.profile),
        };
        RunInfo {
            topology: Topology {
                gateway,
                pbx,
                front_end: format!(
                    "rcc-lab Front End pool {} ({transport} to the gateway), simulated endpoints",
                    crate::lab::POOL_FQDN
                ),
            },
            tags,
            started,
        }
    }
}

/// A scenario as evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// Feature name.
    pub feature: String,
    /// Scenario name.
    pub scenario: String,
    /// `file:line`.
    pub location: String,
    /// `passed`, `failed`, `not-applicable`, `undefined`.
    pub status: &'static str,
    /// The failure text or the reason.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Its section of the HTML report (ladder, messages, steps).
    pub report: String,
}

/// How a capability fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every applicable scenario passed.
    Pass,
    /// At least one scenario failed.
    Fail,
    /// No scenario of it could run in this lab.
    NotApplicable,
    /// None of its scenarios were selected (tags, names, locations).
    NotRun,
}

impl Verdict {
    /// The word shown in the report.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NotApplicable => "not applicable",
            Verdict::NotRun => "not run",
        }
    }
}

/// One capability's result.
#[derive(Debug, Clone, Serialize)]
pub struct Capability {
    /// Tag id (`@cap-<id>`).
    pub id: &'static str,
    /// What it is.
    pub title: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it failed or does not apply (the first failure, or the reasons).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The scenarios behind the verdict.
    pub evidence: Vec<Evidence>,
}

/// Counts of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Totals {
    /// Scenarios passed.
    pub passed: usize,
    /// Scenarios failed (or with an undefined step).
    pub failed: usize,
    /// Scenarios not applicable to this lab.
    pub not_applicable: usize,
}

/// The whole summary.
#[derive(Debug, Clone, Serialize)]
pub struct Conformance {
    /// rcc-lab's version.
    pub rcc_lab_version: &'static str,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// How long it took, seconds.
    pub duration_s: f64,
    /// The tag expression, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    /// Where each component stood.
    pub topology: Topology,
    /// Scenario counts.
    pub totals: Totals,
    /// Failures of the suite itself (a feature file that does not parse): each fails the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suite_errors: Vec<String>,
    /// Per capability, in catalogue order.
    pub capabilities: Vec<Capability>,
}

fn evidence(s: &ScenarioReport) -> Evidence {
    Evidence {
        feature: s.feature.clone(),
        scenario: s.name.clone(),
        location: s.location(),
        status: s.status.word(),
        detail: s.status.detail().to_owned(),
        report: format!("index.html#{}", s.anchor()),
    }
}

impl Conformance {
    /// Summarizes the scenarios of a run by capability.
    pub fn summarize(
        run: &RunInfo,
        scenarios: &[ScenarioReport],
        suite_errors: &[String],
    ) -> Conformance {
        let capabilities = CATALOGUE
            .iter()
            .map(|&(id, title)| {
                let tag = format!("cap-{id}");
                let mine: Vec<&ScenarioReport> =
                    scenarios.iter().filter(|s| s.tags.contains(&tag)).collect();
                let failed: Vec<&&ScenarioReport> =
                    mine.iter().filter(|s| s.status.is_failure()).collect();
                let passed = mine.iter().any(|s| s.status == Status::Passed);
                let mut reasons: Vec<&str> = mine
                    .iter()
                    .filter(|s| matches!(s.status, Status::NotApplicable(_)))
                    .map(|s| s.status.detail())
                    .collect();
                reasons.sort_unstable();
                reasons.dedup();
                let not_applicable = mine
                    .iter()
                    .filter(|s| matches!(s.status, Status::NotApplicable(_)))
                    .count();
                let (verdict, reason) = if let Some(first) = failed.first() {
                    (
                        Verdict::Fail,
                        format!("{}: {}", first.name, first.status.detail()),
                    )
                } else if passed && not_applicable == 0 {
                    (Verdict::Pass, String::new())
                } else if passed {
                    // A pass on part of the evidence says so.
                    (
                        Verdict::Pass,
                        format!(
                            "{not_applicable} of {} scenarios not applicable: {}",
                            mine.len(),
                            reasons.join("; ")
                        ),
                    )
                } else if mine.is_empty() {
                    (Verdict::NotRun, "no scenario of it was selected".to_owned())
                } else {
                    (Verdict::NotApplicable, reasons.join("; "))
                };
                Capability {
                    id,
                    title,
                    verdict,
                    reason,
                    evidence: mine.into_iter().map(evidence).collect(),
                }
            })
            .collect();
        let count = |f: &dyn Fn(&Status) -> bool| scenarios.iter().filter(|s| f(&s.status)).count();
        Conformance {
            rcc_lab_version: env!("CARGO_PKG_VERSION"),
            date: humantime::format_rfc3339_seconds(run.started).to_string(),
            duration_s: run.started.elapsed().map_or(0.0, |d| d.as_secs_f64()),
            tags: run.tags.clone(),
            topology: run.topology.clone(),
            totals: Totals {
                passed: count(&|s| *s == Status::Passed),
                failed: count(&Status::is_failure) + suite_errors.len(),
                not_applicable: count(&|s| matches!(s, Status::NotApplicable(_))),
            },
            suite_errors: suite_errors.to_vec(),
            capabilities,
        }
    }

    /// `conformance.json`.
    pub fn to_json(&self) -> anyhow::Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| anyhow::anyhow!("conformance.json: {e}"))
    }

    /// The capabilities that failed.
    pub fn failing(&self) -> impl Iterator<Item = &Capability> {
        self.capabilities
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, tags: &[&str], status: Status) -> ScenarioReport {
        ScenarioReport {
            feature: "F".into(),
            name: name.into(),
            file: "features/f.feature".into(),
            line: 3,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn a_capability_fails_with_its_first_failure_and_links_the_evidence() {
        let run = RunInfo::new(&LabOptions::default(), None, SystemTime::now());
        let c = Conformance::summarize(
            &run,
            &[
                scenario("holds", &["cap-hold-retrieve"], Status::Passed),
                scenario(
                    "waits",
                    &["cap-hold-retrieve"],
                    Status::Failed("no HeldEvent".into()),
                ),
                scenario(
                    "restart",
                    &["cap-gateway-restart"],
                    Status::NotApplicable("external".into()),
                ),
                scenario("dials", &["cap-make-call"], Status::Passed),
                scenario("mpop", &["cap-mpop"], Status::Passed),
                scenario(
                    "assistant",
                    &["cap-mpop"],
                    Status::NotApplicable("external".into()),
                ),
            ],
            &["features/x.feature: bad".to_owned()],
        );
        let by = |id: &str| {
            c.capabilities
                .iter()
                .find(|x| x.id == id)
                .expect("capability")
        };
        assert_eq!(by("hold-retrieve").verdict, Verdict::Fail);
        assert_eq!(by("hold-retrieve").reason, "waits: no HeldEvent");
        assert_eq!(
            by("hold-retrieve").evidence[1].report,
            "index.html#s-features-f-feature--3"
        );
        assert_eq!(by("make-call").verdict, Verdict::Pass);
        assert_eq!(by("gateway-restart").verdict, Verdict::NotApplicable);
        assert_eq!(by("gateway-restart").reason, "external");
        assert_eq!(by("dtmf").verdict, Verdict::NotRun);
        assert_eq!(by("mpop").verdict, Verdict::Pass);
        assert_eq!(
            by("mpop").reason,
            "1 of 2 scenarios not applicable: external"
        );
        assert_eq!(
            c.totals.failed, 2,
            "the failed scenario and the suite error"
        );
        assert_eq!(c.failing().count(), 1);
        let json: serde_json::Value =
            serde_json::from_str(&c.to_json().expect("json")).expect("parse");
        assert_eq!(json["capabilities"][0]["id"], "sign-in-lync2013");
        assert_eq!(json["totals"]["failed"], 2);
        assert_eq!(json["suite_errors"][0], "features/x.feature: bad");
    }

    #[test]
    fn every_capability_has_a_scenario_and_every_cap_tag_is_catalogued() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("features");
        let all = crate::selection::list(&dir, &Default::default()).expect("features");
        for (id, _) in CATALOGUE {
            let tag = format!("cap-{id}");
            assert!(
                all.iter().any(|s| s.tags.contains(&tag)),
                "no scenario has @{tag}"
            );
        }
        for s in &all {
            for t in s.tags.iter().filter_map(|t| t.strip_prefix("cap-")) {
                assert!(
                    CATALOGUE.iter().any(|(id, _)| *id == t),
                    "{}: @cap-{t} is not in the catalogue",
                    s.location
                );
            }
            assert!(
                s.tags.iter().any(|t| t.starts_with("cap-")),
                "{} ({}) belongs to no capability",
                s.name,
                s.location
            );
        }
    }
}
