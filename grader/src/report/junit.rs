//! The JUnit XML report, for CI systems: one testsuite per task, one testcase per scenario
//! (classname = task), failure messages that begin with the points (`[0/4 pts] ...`), the
//! transcript and the scenario's notes in system-out, and suite properties with score, max_score, task, grader version,
//! spec hash and seed.
//!
//! Guarantees: valid XML whatever the student printed. quick-junit escapes text and strips ANSI
//! escapes and control characters; NUL bytes and invalid UTF-8 never reach it because the
//! transcript is already made printable.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{ReportError, ReportRenderer};
use crate::verdict::{GradeReport, Status, fmt_points};

/// Writes `task<N>.junit.xml`.
pub struct JunitReport;

impl ReportRenderer for JunitReport {
    fn file_name(&self, report: &GradeReport) -> String {
        format!("task{}.junit.xml", report.task)
    }

    fn render(&self, report: &GradeReport) -> Result<Vec<u8>, ReportError> {
        let classname = format!("task{}", report.task);
        let mut suite = TestSuite::new(format!(
            "{} task {}: {}",
            report.submission, report.task, report.task_title
        ));
        suite.set_time(Duration::from_millis(report.duration_ms));
        suite.add_properties([
            Property::new("score", fmt_points(report.score)),
            Property::new("max_score", fmt_points(report.max_score)),
            Property::new("task", report.task.to_string()),
            Property::new("submission", report.submission.clone()),
            Property::new("grader_version", report.grader_version.clone()),
            Property::new("spec_hash", report.spec_hash.clone()),
            Property::new("seed", report.seed.to_string()),
            Property::new("isolation", report.isolation.clone()),
        ]);
        if let Some(d) = &report.dialect {
            suite.add_property(Property::new("dialect", d.clone()));
        }
        // Remarks on the whole grading (roles not graded, a template without {port}).
        suite.add_properties(
            report
                .notes
                .iter()
                .map(|n| Property::new("note", n.to_string())),
        );
        for s in &report.scenarios {
            let pts = format!(
                "[{}/{} pts]",
                fmt_points(s.points),
                fmt_points(s.max_points)
            );
            let status = match s.status {
                Status::Passed => TestCaseStatus::success(),
                other => {
                    let kind = if other == Status::InfraError {
                        NonSuccessKind::Error
                    } else {
                        NonSuccessKind::Failure
                    };
                    let mut st = TestCaseStatus::non_success(kind);
                    st.set_message(format!("{pts} {}", s.message));
                    st.set_type(other.label());
                    let mut desc = format!("{pts} {}: {}", other.label(), s.message);
                    if let Some(h) = &s.hint {
                        desc.push_str(&format!("\nhint: {h}"));
                    }
                    st.set_description(desc);
                    st
                }
            };
            let mut case = TestCase::new(s.name.clone(), status);
            case.set_classname(classname.clone());
            case.set_time(Duration::from_millis(s.duration_ms));
            case.add_property(Property::new("points", fmt_points(s.points)));
            case.add_property(Property::new("max_points", fmt_points(s.max_points)));
            let mut out = String::new();
            if let Some(d) = &s.description {
                out.push_str(&format!("{d}\n"));
            }
            for n in &s.notes {
                out.push_str(&format!("note: {n}\n"));
            }
            if !s.transcript.is_empty() {
                out.push_str("transcript:\n");
                for l in &s.transcript {
                    out.push_str(&format!("  {l}\n"));
                }
            }
            if !out.is_empty() {
                case.set_system_out(out);
            }
            if let Some(err) = &s.stderr_tail {
                case.set_system_err(err.clone());
            }
            suite.add_test_case(case);
        }
        let mut junit = Report::new(format!("grader: {}", report.submission));
        junit.add_test_suite(suite);
        junit
            .to_string()
            .map(String::into_bytes)
            .map_err(|e| ReportError::Render {
                format: "JUnit",
                source: e.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    fn xml(report: &GradeReport) -> String {
        String::from_utf8(JunitReport.render(report).unwrap()).unwrap()
    }

    #[test]
    fn one_testcase_per_scenario_with_points_notes_and_transcript() {
        let text = xml(&synthetic::mixed("bob"));
        insta::assert_snapshot!(text);
        assert_eq!(
            JunitReport.file_name(&synthetic::mixed("bob")),
            "task1.junit.xml"
        );
    }

    #[test]
    fn student_output_cannot_break_the_xml() {
        let mut o = synthetic::failed("hostile", 1.0, Status::Crashed);
        o.message = "got \"</failure><x>\" & more".into();
        o.stderr_tail = Some("]]><evil/>".into());
        let text = xml(&synthetic::report("eve <x>", 1, vec![o]));
        assert!(!text.contains("<evil/>") && !text.contains("<x>"), "{text}");
        assert!(text.contains("&lt;/failure&gt;"), "{text}");
    }
}
