//! Batch progress: a progress bar on a terminal (done/total, submissions below full marks and
//! errors so far, scenarios finished of those started, ETA), one plain line per finished
//! submission otherwise (CI logs, pipes). The scenario count comes from the gradings' events
//! ([`Tally`] is their sink).
//!
//! Guarantees: one line per submission in both modes, printed when it finishes (so a log shows
//! what was done before a kill); the bar is drawn on stderr only when stderr is a terminal, and
//! never mixes with the lines (they are printed above it); output errors never stop or fail the
//! batch (`grader batch | head -1`: the lines are dropped, the gradings and records go on); a
//! student id (a folder name: anything but `/` and NUL) is printed with its control characters
//! escaped visibly (`\x1b`, `\r`, `\n`), also where a message quotes it in a path, and a
//! message's other lines cannot start a line of their own ([`crate::safe_text`]), so no
//! submission can rewrite the terminal or fake another student's line.

use std::borrow::Cow;
use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Disposition;
use super::sinks::{BatchSink, SubmissionFinished};
use crate::events::{Event, EventSink};
use crate::safe_text;
use crate::verdict::fmt_points;

/// Reports a batch's progress.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: AtomicUsize,
    tally: Arc<Tally>,
    lock: Mutex<()>,
}

/// The counts shown in the bar's message; the event sink of every grading of the batch.
pub struct Tally {
    bar: Option<ProgressBar>,
    below: AtomicUsize,
    errors: AtomicUsize,
    scenarios_started: AtomicUsize,
    scenarios_done: AtomicUsize,
}

impl Tally {
    /// The bar's message: "2 below full marks, 0 errors · scenarios 40/56".
    pub fn message(&self) -> String {
        format!(
            "{} below full marks, {} errors · scenarios {}/{}",
            self.below.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
            self.scenarios_done.load(Ordering::SeqCst),
            self.scenarios_started.load(Ordering::SeqCst),
        )
    }

    fn refresh(&self) {
        if let Some(pb) = &self.bar {
            pb.set_message(self.message());
        }
    }
}

impl EventSink for Tally {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::GradingStarted { scenarios, .. } => {
                self.scenarios_started
                    .fetch_add(scenarios.len(), Ordering::SeqCst);
            }
            Event::ScenarioFinished(_) => {
                self.scenarios_done.fetch_add(1, Ordering::SeqCst);
            }
            Event::Built { .. }
            | Event::Note(_)
            | Event::ScenarioStarted { .. }
            | Event::Retry { .. }
            | Event::ScenarioNote { .. }
            | Event::GradingFinished(_) => return,
        }
        self.refresh();
    }
}

impl Progress {
    /// A reporter for `total` submissions; a bar when `bar` is true and stderr is a terminal.
    pub fn new(total: usize, bar: bool) -> Self {
        let bar = (bar && std::io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template(
                "{spinner} [{bar:30.cyan/blue}] {pos}/{len} · {msg} · {elapsed} elapsed, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            pb.set_style(style);
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        });
        let tally = Arc::new(Tally {
            bar: bar.clone(),
            below: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
            scenarios_started: AtomicUsize::new(0),
            scenarios_done: AtomicUsize::new(0),
        });
        tally.refresh();
        Self {
            bar,
            total,
            done: AtomicUsize::new(0),
            tally,
            lock: Mutex::new(()),
        }
    }

    /// The sink for the gradings' events (it counts their scenarios).
    pub fn events(&self) -> Arc<Tally> {
        self.tally.clone()
    }

    /// Records one finished submission.
    pub fn finished(&self, id: &str, outcome: &Disposition) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        match outcome {
            Disposition::NotStarted(_) | Disposition::Infrastructure(_) => {
                self.tally.errors.fetch_add(1, Ordering::SeqCst);
            }
            o if o.lost_points() => {
                self.tally.below.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        let width = self.total.to_string().len();
        let line = format!("[{done:>width$}/{}] {}", self.total, line(id, outcome));
        match &self.bar {
            Some(pb) => {
                pb.println(line);
                pb.inc(1);
                self.tally.refresh();
            }
            None => print_line(&line),
        }
    }

    /// Prints a line for the person running the batch (above the bar, if there is one).
    pub fn note(&self, text: &str) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match &self.bar {
            Some(pb) => pb.println(text),
            None => print_line(text),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

/// One line per submission, and for an infrastructure error redacted for students, its full
/// text below it (for whoever runs the batch).
impl BatchSink for Progress {
    fn submission_finished(&self, f: &SubmissionFinished<'_>) {
        self.finished(f.label, f.disposition);
        if let Some(full) = f.withheld {
            self.note(&format!(
                "    in full: {} (the error file, meant for students, names hidden scenarios only by number)",
                message(f.label, full)
            ));
        }
    }
}

/// Prints one line on stdout, dropping a write error: a closed stdout (`grader batch | head
/// -1`) must never stop the gradings in flight or their records, which are what counts.
pub fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// A message about the submission `id` for the console: the id, wherever the message quotes
/// it (in a path), escaped like the id itself, and the rest through
/// [`safe_text::terminal_lines`].
pub fn message(id: &str, text: &str) -> String {
    let escaped = safe_text::terminal(id);
    let text = if escaped != id && !id.is_empty() {
        Cow::Owned(text.replace(id, &escaped))
    } else {
        Cow::Borrowed(text)
    };
    safe_text::terminal_lines(&text)
}

/// The plain line for one submission (the id and message made safe for a terminal).
pub fn line(id: &str, outcome: &Disposition) -> String {
    let (id, shown) = (safe_text::terminal(id), id);
    let message = |m: &str| message(shown, m);
    match outcome {
        Disposition::Graded {
            score,
            max,
            failed,
            duration_ms,
        } => format!(
            "{id:<20} {:>7}  {}  {:.1}s",
            format!("{}/{}", fmt_points(*score), fmt_points(*max)),
            if *failed == 0 {
                "all scenarios passed".to_string()
            } else {
                format!("{failed} scenario(s) lost points")
            },
            *duration_ms as f64 / 1000.0
        ),
        Disposition::UpToDate { score, max } => format!(
            "{id:<20} {:>7}  up to date, not regraded",
            format!("{}/{}", fmt_points(*score), fmt_points(*max))
        ),
        Disposition::NotStarted(m) => format!("{id:<20} NOT STARTED  {}", message(m)),
        Disposition::Infrastructure(m) => {
            format!(
                "{id:<20} NOT GRADED   infrastructure problem (not charged; rerun to retry): {}",
                message(m)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Note;
    use crate::synthetic;

    #[test]
    fn the_tally_counts_scenarios_from_the_events() {
        let progress = Progress::new(2, false);
        let tally = progress.events();
        assert_eq!(
            tally.message(),
            "0 below full marks, 0 errors · scenarios 0/0"
        );
        let report = synthetic::mixed("bob");
        let note = Note::text("n");
        let names: Vec<String> = report.scenarios.iter().map(|o| o.name.clone()).collect();
        tally.event(&Event::GradingStarted {
            task: 1,
            title: "Task 1",
            submission: "bob",
            seed: 1,
            scenarios: &names,
        });
        tally.event(&Event::Note(&note));
        for o in &report.scenarios[..3] {
            tally.event(&Event::ScenarioStarted { scenario: &o.name });
            tally.event(&Event::Retry {
                scenario: &o.name,
                attempt: 1,
                message: "m",
            });
            tally.event(&Event::ScenarioFinished(o));
        }
        assert_eq!(
            tally.message(),
            "0 below full marks, 0 errors · scenarios 3/4"
        );
        tally.event(&Event::GradingFinished(&report));
        progress.finished(
            "bob",
            &Disposition::Graded {
                score: report.score,
                max: report.max_score,
                failed: 2,
                duration_ms: report.duration_ms,
            },
        );
        progress.finished("cy", &Disposition::NotStarted("no executable".into()));
        assert_eq!(
            tally.message(),
            "1 below full marks, 1 errors · scenarios 3/4"
        );
    }

    #[test]
    fn lines_say_what_happened_to_each_submission() {
        let lines = [
            line(
                "bob",
                &Disposition::Graded {
                    score: 3.0,
                    max: 10.0,
                    failed: 2,
                    duration_ms: 2345,
                },
            ),
            line(
                "amy",
                &Disposition::Graded {
                    score: 10.0,
                    max: 10.0,
                    failed: 0,
                    duration_ms: 900,
                },
            ),
            line(
                "cy",
                &Disposition::UpToDate {
                    score: 1.0,
                    max: 2.0,
                },
            ),
            line(
                "dee",
                &Disposition::NotStarted("no executable in dee".into()),
            ),
            line(
                "eve\x1b[2J",
                &Disposition::Infrastructure("port taken\nfake line".into()),
            ),
        ];
        insta::assert_snapshot!(lines.join("\n"));
    }
}
