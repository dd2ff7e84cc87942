//! The terminal reporter: a header when grading starts and, at the end, one line per scenario
//! with its points, and for every lost point the message, hint, transcript and stderr tail.
//!
//! `human` is the default; `compact` is one line per scenario (plus the message of a failure and
//! any notes), for CI logs. Colour is used only when stdout is a terminal (anstream strips it otherwise, and
//! honours NO_COLOR / CLICOLOR_FORCE). The submission's name (a file or folder name) is printed
//! with its control characters escaped ([`crate::safe_text::terminal`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

use anstyle::{AnsiColor, Style};

/// Lines of a failure's stderr the console shows without `-v` ...
const STDERR_LINES: usize = 8;
/// ... or more, up to this many, to show a traceback from its first line.
const STDERR_TRACEBACK_LINES: usize = 20;

use crate::events::{Event, EventSink};
use crate::verdict::{GradeReport, Status, fmt_points};

/// Terminal output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsoleStyle {
    /// Detailed: every failure explained with transcript and hint.
    #[default]
    Human,
    /// One line per scenario (plus a failure's message and any notes); reads well in a CI log.
    Compact,
}

/// Prints a grading to stdout as it happens.
pub struct Console {
    format: ConsoleStyle,
    verbose: bool,
    lock: Mutex<()>,
}

impl Console {
    /// A console reporter.
    pub fn new(format: ConsoleStyle, verbose: bool) -> Self {
        Self {
            format,
            verbose,
            lock: Mutex::new(()),
        }
    }
}

impl EventSink for Console {
    fn event(&self, event: &Event<'_>) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let text = match event {
            Event::GradingStarted {
                task,
                title,
                submission,
                seed,
                scenarios,
            } => format!(
                "{}Grading{} {} · task {task} ({title}) · {} scenarios · seed {seed}\n",
                BOLD.render(),
                BOLD.render_reset(),
                crate::safe_text::terminal(submission),
                scenarios.len()
            ),
            Event::Built { command, duration } => {
                format!("built with `{command}` in {:.1}s\n", duration.as_secs_f64())
            }
            // The console shows the scenarios at the end, in spec order (remarks are in the
            // report too).
            Event::Note(_)
            | Event::ScenarioStarted { .. }
            | Event::Retry { .. }
            | Event::ScenarioNote { .. }
            | Event::ScenarioFinished(_) => return,
            Event::GradingFinished(report) => render(report, self.format, self.verbose),
        };
        let mut out = anstream::stdout();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

const BOLD: Style = Style::new().bold();
const GREEN: Style = AnsiColor::Green.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const DIM: Style = Style::new().dimmed();

fn write_notes(s: &mut String, o: &crate::verdict::ScenarioOutcome) {
    for n in &o.notes {
        let _ = writeln!(s, "       note: {n}");
    }
}

/// Renders a finished grading (with ANSI styles; the caller's stream strips them if needed).
pub fn render(report: &GradeReport, format: ConsoleStyle, verbose: bool) -> String {
    let mut s = String::new();
    let width = report
        .scenarios
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(10)
        .min(60);
    for o in &report.scenarios {
        let (style, tag) = if o.status == Status::Passed {
            (GREEN, "PASS")
        } else {
            (RED, "FAIL")
        };
        let pts = format!("{}/{}", fmt_points(o.points), fmt_points(o.max_points));
        let _ = write!(
            s,
            "  {}{tag}{} {:<width$}  {pts:>7}",
            style.render(),
            style.render_reset(),
            o.name
        );
        if o.status != Status::Passed {
            let _ = write!(s, "  {}", o.status.label());
        }
        s.push('\n');
        if o.status == Status::Passed {
            // A pass can still carry something the student should know (graded on another
            // port than the assigned one; an attempt retried for the grader's own reasons).
            write_notes(&mut s, o);
            continue;
        }
        let _ = writeln!(s, "       {}", o.message);
        if format == ConsoleStyle::Compact {
            write_notes(&mut s, o);
            continue;
        }
        if let Some(h) = &o.hint {
            let _ = writeln!(
                s,
                "       {}hint:{} {h}",
                YELLOW.render(),
                YELLOW.render_reset()
            );
        }
        if let Some(step) = &o.failed_step {
            let _ = writeln!(
                s,
                "       {}failed at step {step}{}",
                DIM.render(),
                DIM.render_reset()
            );
        }
        let lines: Vec<&String> = if verbose {
            o.transcript.iter().collect()
        } else {
            o.transcript.iter().rev().take(12).rev().collect()
        };
        if !lines.is_empty() {
            let _ = writeln!(s, "       transcript:");
            if lines.len() < o.transcript.len() {
                let _ = writeln!(s, "         … (-v shows all {} lines)", o.transcript.len());
            }
            for l in lines {
                let _ = writeln!(s, "         {}{l}{}", DIM.render(), DIM.render_reset());
            }
        }
        if let Some(err) = &o.stderr_tail {
            let all: Vec<&str> = err.lines().collect();
            // The last lines, reaching back to where a traceback among the last 20 starts.
            let traceback = all
                .iter()
                .rposition(|l| l.starts_with("Traceback (most recent call last)"))
                .map(|i| all.len() - i)
                .filter(|&n| n <= STDERR_TRACEBACK_LINES);
            let keep = if verbose {
                all.len()
            } else {
                traceback.unwrap_or(0).max(STDERR_LINES)
            };
            let _ = writeln!(s, "       stderr (last lines):");
            for l in &all[all.len().saturating_sub(keep)..] {
                let _ = writeln!(s, "         {}", crate::transcript::printable(l.as_bytes()));
            }
        }
        write_notes(&mut s, o);
    }
    // Remarks on the whole grading, once (roles not graded, a template without {port}).
    for n in &report.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    let failed = report.scenarios.len() - report.passed();
    let style = if failed == 0 { GREEN } else { RED };
    let _ = writeln!(
        s,
        "{}Score {}/{} ({:.1}%){} · {} of {} scenarios passed · {:.2}s",
        style.render(),
        fmt_points(report.score),
        fmt_points(report.max_score),
        report.percent(),
        style.render_reset(),
        report.passed(),
        report.scenarios.len(),
        report.duration_ms as f64 / 1000.0
    );
    if let Some(d) = &report.dialect {
        let _ = writeln!(s, "Protocol dialect: {}", crate::safe_text::terminal(d));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::{View, redact};
    use crate::synthetic;

    fn plain(report: &GradeReport, style: ConsoleStyle, verbose: bool) -> String {
        anstream::adapter::strip_str(&render(report, style, verbose)).to_string()
    }

    #[test]
    fn human_explains_every_lost_point_and_shows_notes() {
        let text = plain(&synthetic::mixed("bob"), ConsoleStyle::Human, false);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn compact_is_one_line_per_scenario_plus_message_and_notes() {
        let text = plain(&synthetic::mixed("bob"), ConsoleStyle::Compact, false);
        insta::assert_snapshot!(text);
        assert!(
            !text.contains("hint:") && !text.contains("transcript"),
            "{text}"
        );
    }

    #[test]
    fn students_see_the_redacted_report() {
        let shown = redact(
            &synthetic::mixed("bob"),
            &synthetic::policies(),
            View::default(),
        );
        let text = plain(&shown, ConsoleStyle::Human, false);
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("hidden scenario 1"), "{text}");
        assert!(text.contains(crate::note::RETRIED_NOTE), "{text}");
    }

    #[test]
    fn the_console_sink_ignores_per_scenario_events() {
        // Nothing but the header and the final render is printed: the per-scenario events of
        // a grading must not reach the terminal (they would interleave across scenarios).
        let console = Console::new(ConsoleStyle::Compact, false);
        let o = synthetic::passed("acknowledges", 1.0);
        let note = crate::note::Note::text("n");
        for e in [
            Event::ScenarioStarted {
                scenario: "acknowledges",
            },
            Event::Retry {
                scenario: "acknowledges",
                attempt: 1,
                message: "m",
            },
            Event::Note(&note),
            Event::ScenarioFinished(&o),
        ] {
            // Would print on stdout (captured by the test harness); must simply not panic.
            console.event(&e);
        }
    }
}
