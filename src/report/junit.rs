//! JUnit XML of a run: one `<testsuite>` per feature, one `<testcase>` per scenario with
//! classname = the feature; a not-applicable scenario is `<skipped message="…">`, a failed one
//! `<failure message="…">` with the failed step and the error.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{ScenarioReport, Status, StepOutcome};

/// The JUnit document for these scenarios; `suite_errors` (feature files that do not parse)
/// are failed cases of a `feature files` suite.
pub fn junit(
    run_name: &str,
    scenarios: &[ScenarioReport],
    suite_errors: &[String],
) -> anyhow::Result<String> {
    let mut by_feature: BTreeMap<&str, Vec<&ScenarioReport>> = BTreeMap::new();
    for s in scenarios {
        by_feature.entry(&s.feature).or_default().push(s);
    }
    let mut report = Report::new(run_name);
    for (feature, list) in by_feature {
        let mut suite = TestSuite::new(feature);
        for s in list {
            let mut case = TestCase::new(format!("{} ({})", s.name, s.location()), status_of(s));
            case.set_classname(feature);
            case.set_time(Duration::from_millis(
                u64::try_from(s.millis).unwrap_or(u64::MAX),
            ));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    if !suite_errors.is_empty() {
        let mut suite = TestSuite::new("feature files");
        for e in suite_errors {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(first_line(e));
            st.set_description(e.clone());
            let mut case = TestCase::new(first_line(e), st);
            case.set_classname("feature files");
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .map_err(|e| anyhow::anyhow!("JUnit report: {e}"))
}

fn status_of(s: &ScenarioReport) -> TestCaseStatus {
    match &s.status {
        Status::Passed => TestCaseStatus::success(),
        Status::NotApplicable(why) => {
            let mut st = TestCaseStatus::skipped();
            st.set_message(format!("not applicable: {why}"));
            st
        }
        Status::Failed(e) | Status::Undefined(e) => {
            // An undefined step is the suite's defect, not the gateway's.
            let kind = if matches!(s.status, Status::Undefined(_)) {
                NonSuccessKind::Error
            } else {
                NonSuccessKind::Failure
            };
            let mut st = TestCaseStatus::non_success(kind);
            st.set_message(first_line(e));
            let failed_step = s
                .steps
                .iter()
                .find(|st| st.outcome == StepOutcome::Failed)
                .map(|st| format!("{}{}\n", st.keyword, st.text))
                .unwrap_or_default();
            st.set_description(format!("{failed_step}{e}"));
            st
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_carries_its_reason_and_classname_is_the_feature() {
        let na = ScenarioReport {
            feature: "PBX link failures".into(),
            name: "The PBX ends the CTI session".into(),
            file: "features/pbx_link.feature".into(),
            line: 15,
            status: Status::NotApplicable("the gateway is configured for generic".into()),
            ..Default::default()
        };
        let failed = ScenarioReport {
            feature: "Hold".into(),
            name: "alice holds".into(),
            file: "features/hold.feature".into(),
            line: 3,
            status: Status::Failed("no HeldEvent\nwithin 5 s".into()),
            ..Default::default()
        };
        let xml = junit("run", &[na, failed], &["features/x.feature: bad".into()]).expect("junit");
        assert!(
            xml.contains(
                r#"<skipped message="not applicable: the gateway is configured for generic"/>"#
            ),
            "{xml}"
        );
        assert!(xml.contains(r#"classname="PBX link failures""#), "{xml}");
        assert!(xml.contains(r#"<failure message="no HeldEvent""#), "{xml}");
        assert!(
            xml.contains("alice holds (features/hold.feature:3)"),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<error message="features/x.feature: bad""#),
            "{xml}"
        );
    }
}
