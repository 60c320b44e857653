//! JUnit XML of a run: one `<testsuite>` per feature, one `<testcase>` per scenario with
//! classname = the feature; a not-applicable scenario is `<skipped message="…">`, a failed one
//! `<failure message="…">` with the failed step and the error.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{ScenarioReport, Status, StepOutcome};

/// The JUnit document for these scenarios.
pub fn junit(run_name: &str, scenarios: &[ScenarioReport]) -> anyhow::Result<String> {
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
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
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
        let xml = junit("run", &[na, failed]).expect("junit");
        assert!(
            xml.contains(
                r#"<skipped message="not applicable: the gateway is configured for generic"/>"#
            ),
            "{xml}"
        );
        assert!(xml.contains(r#"classname="PBX link failures""#), "{xml}");
        assert!(xml.contains(r#"<failure message="no HeldEvent""#), "{xml}");
        assert!(xml.contains(r#"tests="1" failures="1""#) || xml.contains(r#"failures="1""#));
    }
}
