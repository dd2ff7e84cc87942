//! The class summary: one self-contained HTML page (inline CSS and SVG, no scripts, no network)
//! with the score distribution, every scenario's pass rate (the one the class fails most first),
//! a table of students and, for each student, every lost point with its message, hint,
//! transcript and stderr (linked from the table).
//!
//! Guarantees: every piece of text from a record (student output included) is HTML-escaped; the
//! page references nothing outside itself; it is deterministic for the same records (its date is
//! the newest record's timestamp, not the clock); it shows only what the export's audience may
//! see, because the [`Class`] it renders is already redacted; a student whose latest attempt
//! was not graded is marked (the points are from the last good record), and students that were
//! never graded are listed and counted as "not graded", not as zeros.

use std::fmt::Write as _;

use super::{Class, ClassExporter, ExportError, Student};
use crate::verdict::{Status, fmt_points};

/// The HTML summary exporter.
pub struct Summary;

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn anchor(index: usize, id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("s{index}-{clean}")
}

fn percent(score: f64, max: f64) -> f64 {
    if max > 0.0 {
        100.0 * score / max
    } else {
        100.0
    }
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:4px 0 10px}
.sub{color:#5a6474;margin:0 0 18px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:22px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 18px;margin-top:16px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceef2;vertical-align:top}
th{font-weight:600;color:#3b4452;background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.worst td{background:#fff4f2}
.pass{color:#1a7f37}.fail{color:#c9362b}
pre{background:#1d2430;color:#e6e9ef;padding:8px 10px;border-radius:6px;overflow-x:auto;font-size:12.5px;white-space:pre-wrap;word-break:break-all}
details{margin:4px 0 8px}summary{cursor:pointer}
.tag{display:inline-block;font-size:12px;padding:0 6px;border-radius:10px;background:#eef0f4;color:#3b4452}
.student{border-top:1px solid #eceef2;padding-top:8px;margin-top:12px}
";

impl ClassExporter for Summary {
    fn format(&self) -> &'static str {
        "summary"
    }
    fn default_file_name(&self) -> &'static str {
        "summary.html"
    }
    fn render(&self, class: &Class) -> Result<Vec<u8>, ExportError> {
        let mut h = String::new();
        let max_total = class.max_total();
        let totals: Vec<f64> = class
            .students
            .iter()
            .map(|s| percent(s.total(), max_total))
            .collect();
        let n = class.students.len();
        let mean = if n > 0 {
            totals.iter().sum::<f64>() / n as f64
        } else {
            0.0
        };
        let mut sorted = totals.clone();
        sorted.sort_by(f64::total_cmp);
        let median = match n {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        let full = totals.iter().filter(|p| **p >= 100.0 - 1e-9).count();
        let newest = class
            .students
            .iter()
            .flat_map(|s| s.reports.iter().map(|r| r.timestamp.as_str()))
            .max()
            .unwrap_or("");
        let titles = class
            .tasks
            .iter()
            .map(|t| format!("Task {}: {}", t.task, esc(&t.title)))
            .collect::<Vec<_>>()
            .join(" · ");
        let audience = match class.view.audience {
            crate::audience::Audience::Student => "student view (hidden scenarios redacted)",
            crate::audience::Audience::Instructor => "instructor view (everything)",
        };
        let _ = writeln!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Grading summary</title><style>{STYLE}</style></head><body><main>\n\
             <h1>Grading summary</h1><p class=\"sub\">{titles} · {n} students{} · {audience} · graded up to {}</p>",
            match class.not_graded.len() {
                0 => String::new(),
                k => format!(" · {k} not graded"),
            },
            esc(newest)
        );
        let _ = writeln!(
            h,
            "<div class=\"cards\"><div class=\"card\">students<b>{n}</b></div>\
             <div class=\"card\">mean<b>{mean:.1}%</b></div>\
             <div class=\"card\">median<b>{median:.1}%</b></div>\
             <div class=\"card\">full marks<b>{full}</b></div>\
             <div class=\"card\">maximum<b>{} pts</b></div>{}</div>",
            fmt_points(max_total),
            match class.not_graded.len() {
                0 => String::new(),
                k => format!("<div class=\"card\">not graded<b class=\"fail\">{k}</b></div>"),
            }
        );

        // Score distribution: 10 bins of 10 %, the last one including 100 %.
        let mut bins = [0usize; 10];
        for p in &totals {
            bins[((p / 10.0).floor() as usize).min(9)] += 1;
        }
        let top = bins.iter().copied().max().unwrap_or(0).max(1);
        let (w, bh) = (640.0, 160.0);
        let bw = w / 10.0;
        let _ = write!(
            h,
            "<section><h2>Score distribution</h2>\
             <svg role=\"img\" aria-label=\"score distribution\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" xmlns=\"http://www.w3.org/2000/svg\">",
            w + 40.0,
            bh + 50.0,
            w + 40.0,
            bh + 50.0
        );
        for (i, count) in bins.iter().enumerate() {
            let hgt = bh * (*count as f64) / (top as f64);
            let x = 20.0 + i as f64 * bw;
            let y = 20.0 + bh - hgt;
            let _ = write!(
                h,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{hgt:.1}\" fill=\"#4c78c8\"><title>{}–{}%: {count}</title></rect>",
                x + 3.0,
                bw - 6.0,
                i * 10,
                i * 10 + 10
            );
            if *count > 0 {
                let _ = write!(
                    h,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{count}</text>",
                    x + bw / 2.0,
                    y - 3.0
                );
            }
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#5a6474\" text-anchor=\"middle\">{}{}</text>",
                x + bw / 2.0,
                bh + 36.0,
                i * 10,
                if i == 9 { "–100%" } else { "%" }
            );
        }
        let _ = writeln!(
            h,
            "<line x1=\"20\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#8a93a3\"/></svg></section>",
            20.0 + bh,
            20.0 + w
        );

        // Pass rate per scenario, worst first.
        let mut rates = Vec::new();
        for t in &class.tasks {
            for (name, max) in &t.scenarios {
                let (mut graded, mut passed) = (0usize, 0usize);
                for s in &class.students {
                    if let Some(o) = s
                        .task(t.task)
                        .and_then(|r| r.scenarios.iter().find(|o| &o.name == name))
                    {
                        graded += 1;
                        passed += usize::from(o.status == Status::Passed);
                    }
                }
                if graded > 0 {
                    rates.push((
                        passed as f64 / graded as f64,
                        t.task,
                        name,
                        *max,
                        passed,
                        graded,
                    ));
                }
            }
        }
        rates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let _ = writeln!(
            h,
            "<section><h2>Pass rate per scenario</h2><table><tr><th>Task</th><th>Scenario</th>\
             <th class=\"num\">Points</th><th>Pass rate</th><th class=\"num\">Passed</th></tr>"
        );
        for (i, (rate, task, name, max, passed, graded)) in rates.iter().enumerate() {
            let worst = i == 0 && *rate < 1.0;
            let color = if *rate >= 0.8 {
                "#2f9e58"
            } else if *rate >= 0.5 {
                "#d9a21b"
            } else {
                "#d2493b"
            };
            let _ = writeln!(
                h,
                "<tr{}><td>{task}</td><td>{}{}</td><td class=\"num\">{}</td>\
                 <td><svg width=\"200\" height=\"14\" xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"200\" height=\"14\" rx=\"3\" fill=\"#eceef2\"/>\
                 <rect width=\"{:.1}\" height=\"14\" rx=\"3\" fill=\"{color}\"/></svg> {:.0}%</td><td class=\"num\">{passed}/{graded}</td></tr>",
                if worst { " class=\"worst\"" } else { "" },
                esc(name),
                if worst {
                    " <span class=\"tag\">failed most</span>"
                } else {
                    ""
                },
                fmt_points(*max),
                200.0 * rate,
                100.0 * rate
            );
        }
        h.push_str("</table></section>\n");

        // Students.
        let _ = write!(h, "<section><h2>Students</h2><table><tr><th>Student</th>");
        for t in &class.tasks {
            let _ = write!(h, "<th class=\"num\">Task {}</th>", t.task);
        }
        h.push_str(
            "<th class=\"num\">Total</th><th class=\"num\">%</th><th>Lost points in</th></tr>\n",
        );
        for (i, s) in class.students.iter().enumerate() {
            let lost: Vec<String> = s
                .reports
                .iter()
                .flat_map(|r| r.scenarios.iter())
                .filter(|o| o.status != Status::Passed)
                .map(|o| esc(&o.name))
                .collect();
            let _ = write!(
                h,
                "<tr><td><a href=\"#{}\">{}</a></td>",
                anchor(i, &s.id),
                esc(&s.id)
            );
            task_cells(&mut h, class, s);
            let _ = writeln!(
                h,
                "<td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td>{}{}</td></tr>",
                fmt_points(s.total()),
                percent(s.total(), max_total),
                if lost.is_empty() {
                    "<span class=\"pass\">nothing</span>".to_string()
                } else {
                    lost.join(", ")
                },
                attempt_tags(s)
            );
        }
        // Students with no record at all: listed, never counted as zeros.
        for s in &class.not_graded {
            let _ = write!(h, "<tr><td>{}</td>", esc(&s.id));
            task_cells(&mut h, class, s);
            let _ = writeln!(
                h,
                "<td class=\"num\">—</td><td class=\"num\">—</td><td><span class=\"fail\">not graded</span>: {}</td></tr>",
                s.not_graded
                    .iter()
                    .map(|(t, why)| format!("task {t}: {}", reason(why)))
                    .collect::<Vec<_>>()
                    .join("")
            );
        }
        h.push_str("</table></section>\n<section><h2>Transcripts of lost points</h2>\n");
        for (i, s) in class.students.iter().enumerate() {
            student_section(&mut h, i, s);
        }
        h.push_str("</section>\n</main></body></html>\n");
        Ok(h.into_bytes())
    }
}

/// Why a task was not graded, whole: its first line, and the lines after it (a failed build's
/// last output lines) in a `<pre>` block, so that nothing ends at "its last output lines:".
fn reason(why: &str) -> String {
    let why = why.trim_end();
    match why.split_once('\n') {
        None => esc(why),
        Some((first, rest)) => format!("{}<pre>{}</pre>", esc(first), esc(rest)),
    }
}

/// A student's per-task cells: points, "not graded" (with why, as a tooltip), or a dash.
fn task_cells(h: &mut String, class: &Class, s: &Student) {
    for t in &class.tasks {
        match (s.task(t.task), s.not_graded.get(&t.task)) {
            (Some(r), _) => {
                let _ = write!(
                    h,
                    "<td class=\"num\">{}/{}{}</td>",
                    fmt_points(r.score),
                    fmt_points(r.max_score),
                    if s.failed_attempts.contains_key(&t.task) {
                        "*"
                    } else {
                        ""
                    }
                );
            }
            (None, Some(why)) => {
                let _ = write!(
                    h,
                    "<td class=\"num\"><span class=\"tag fail\" title=\"{}\">not graded</span></td>",
                    esc(why)
                );
            }
            (None, None) => h.push_str("<td class=\"num\">—</td>"),
        }
    }
}

/// Tags for a student whose latest attempt at some task was not graded (its older record is
/// what the page shows).
fn attempt_tags(s: &Student) -> String {
    s.failed_attempts
        .iter()
        .map(|(t, why)| {
            format!(
                " <span class=\"tag fail\" title=\"{}\">* task {t}: latest attempt not graded: {}</span>",
                esc(why),
                esc(super::first_line(why))
            )
        })
        .collect()
}

fn student_section(h: &mut String, i: usize, s: &Student) {
    let _ = write!(
        h,
        "<div class=\"student\" id=\"{}\"><h3>{} — {} points</h3>",
        anchor(i, &s.id),
        esc(&s.id),
        fmt_points(s.total())
    );
    for (t, why) in &s.failed_attempts {
        let _ = write!(
            h,
            "<div class=\"fail\">The latest attempt at task {t} was not graded, so the points shown are from the last good grading: {}</div>",
            reason(why)
        );
    }
    let mut any = false;
    for r in &s.reports {
        for o in r.scenarios.iter().filter(|o| o.status != Status::Passed) {
            any = true;
            let _ = write!(
                h,
                "<details><summary><span class=\"fail\">{}/{}</span> task {} · {} · <span class=\"tag\">{}</span></summary><p>{}</p>",
                fmt_points(o.points),
                fmt_points(o.max_points),
                r.task,
                esc(&o.name),
                esc(o.status.label()),
                esc(&o.message)
            );
            if let Some(hint) = &o.hint {
                let _ = write!(h, "<p><b>hint:</b> {}</p>", esc(hint));
            }
            if let Some(step) = &o.failed_step {
                let _ = write!(h, "<p>failed at step {}</p>", esc(step));
            }
            if !o.transcript.is_empty() {
                let _ = write!(h, "<pre>{}</pre>", esc(&o.transcript.join("\n")));
            }
            if let Some(err) = &o.stderr_tail {
                let _ = write!(
                    h,
                    "<p>stderr (last lines):</p><pre>{}</pre>",
                    esc(&err
                        .lines()
                        .map(|l| crate::transcript::printable(l.as_bytes()))
                        .collect::<Vec<_>>()
                        .join("\n"))
                );
            }
            h.push_str("</details>");
        }
    }
    if !any {
        h.push_str("<p class=\"pass\">Every scenario passed.</p>");
    }
    h.push_str("</div>\n");
}

#[cfg(test)]
mod synthetic_tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn a_self_contained_page_of_the_class() {
        for (name, view) in synthetic::views() {
            let html = synthetic::text(Summary.render(&synthetic::class(view)).unwrap());
            insta::assert_snapshot!(name, html);
            assert!(
                !html.contains("<script src") && !html.contains("<link"),
                "{html}"
            );
            assert_eq!(
                html.contains("secret-nonce"),
                name == "instructor",
                "{name}"
            );
        }
    }
}
