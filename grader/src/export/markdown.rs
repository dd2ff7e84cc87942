//! Markdown for CI job summaries (`$GITHUB_STEP_SUMMARY`) and pull-request comments: for one
//! student, a table of every scenario with its points and verdict; for a class, a table of
//! students with their task scores.
//!
//! Guarantees: GitHub-flavoured Markdown tables; `|`, backticks, `<` and newlines in names and
//! messages are escaped or flattened so student output cannot break the table or inject HTML.
//! A student's table shows only what the [`Class`]'s audience may see (hidden scenarios as
//! placeholders, messages per feedback level); with `--audience instructor` the export of one
//! student's table warns when that includes anything withheld from students, since a job summary
//! is usually read by the student. The class table lists students never graded too (only an
//! error file), with dashes for scores, and ends with a status column saying why
//! ([`super::Student::status`] and the reason, flattened to one line).

use std::fmt::Write as _;

use super::{Class, ClassExporter, ExportError};
use crate::audience::Audience;
use crate::verdict::{Status, fmt_points};

/// The Markdown exporter.
pub struct Markdown;

fn cell(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    for c in one_line.chars().take(200) {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' => out.push('\''),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    if one_line.chars().count() > 200 {
        out.push('…');
    }
    out
}

impl ClassExporter for Markdown {
    fn format(&self) -> &'static str {
        "markdown"
    }
    fn default_file_name(&self) -> &'static str {
        "summary.md"
    }
    fn warnings(&self, class: &Class) -> Vec<String> {
        if class.view.audience == Audience::Instructor
            && class.students.len() == 1
            && super::classroom::withholds(class)
        {
            vec![
                "--audience instructor shows hidden scenarios and withheld feedback: do not put this table where the student reads it (a job summary)".into(),
            ]
        } else {
            Vec::new()
        }
    }
    fn render(&self, class: &Class) -> Result<Vec<u8>, ExportError> {
        let mut s = String::new();
        if let ([student], []) = (class.students.as_slice(), class.not_graded.as_slice()) {
            for r in &student.reports {
                let _ = writeln!(
                    s,
                    "### Task {}: {} — {}/{} points ({:.1}%)\n",
                    r.task,
                    cell(&r.task_title),
                    fmt_points(r.score),
                    fmt_points(r.max_score),
                    r.percent()
                );
                let _ = writeln!(s, "| | Scenario | Points | Verdict |");
                let _ = writeln!(s, "|---|---|---:|---|");
                for o in &r.scenarios {
                    let icon = if o.status == Status::Passed {
                        "✅"
                    } else {
                        "❌"
                    };
                    let verdict = if o.status == Status::Passed {
                        "passed".to_string()
                    } else {
                        format!("{}: {}", o.status.label(), cell(&o.message))
                    };
                    let _ = writeln!(
                        s,
                        "| {icon} | {} | {}/{} | {verdict} |",
                        cell(&o.name),
                        fmt_points(o.points),
                        fmt_points(o.max_points)
                    );
                }
                let _ = writeln!(
                    s,
                    "\n{} of {} scenarios passed · seed {} · grader {}\n",
                    r.passed(),
                    r.scenarios.len(),
                    r.seed,
                    r.grader_version
                );
            }
            return Ok(s.into_bytes());
        }
        let _ = writeln!(
            s,
            "### {} students{} · maximum {} points\n",
            class.students.len(),
            match class.not_graded.len() {
                0 => String::new(),
                k => format!(" · {k} not graded"),
            },
            fmt_points(class.max_total())
        );
        let mut head = "| Student | Total |".to_string();
        let mut rule = "|---|---:|".to_string();
        for t in &class.tasks {
            let _ = write!(head, " Task {} |", t.task);
            rule.push_str("---:|");
        }
        head.push_str(" Status |");
        rule.push_str("---|");
        let _ = writeln!(s, "{head}\n{rule}");
        let mut rows: Vec<&super::Student> =
            class.students.iter().chain(&class.not_graded).collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id).then(a.folder.cmp(&b.folder)));
        for st in rows {
            let total = if st.reports.is_empty() {
                "—".to_string()
            } else {
                fmt_points(st.total())
            };
            let _ = write!(s, "| {} | {total} |", cell(&st.id));
            for t in &class.tasks {
                match st.task(t.task) {
                    Some(r) => {
                        let _ = write!(s, " {}/{} |", fmt_points(r.score), fmt_points(r.max_score));
                    }
                    None => s.push_str(" — |"),
                }
            }
            let mut status = st.status(&class.tasks);
            let why: Vec<String> = st
                .not_graded
                .iter()
                .filter(|(t, _)| st.task(**t).is_none())
                .map(|(t, why)| match class.tasks.len() {
                    1 => why.clone(),
                    _ => format!("task {t}: {why}"),
                })
                .collect();
            if !why.is_empty() {
                status = format!("{status}: {}", why.join("; "));
            }
            let _ = writeln!(s, " {} |", cell(&status));
        }
        Ok(s.into_bytes())
    }
}

#[cfg(test)]
mod synthetic_tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn a_class_table_and_one_student_s_scenarios() {
        for (name, view) in synthetic::views() {
            let class = synthetic::text(Markdown.render(&synthetic::class(view)).unwrap());
            insta::assert_snapshot!(format!("class_{name}"), class);
            let one = synthetic::text(Markdown.render(&synthetic::student(view)).unwrap());
            insta::assert_snapshot!(format!("student_{name}"), one);
            if name == "student" {
                assert!(
                    !class.contains("secret") && !one.contains("secret"),
                    "{one}"
                );
            }
        }
    }
}
