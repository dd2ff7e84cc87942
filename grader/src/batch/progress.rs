//! Batch progress: a progress bar on a terminal (done/total, submissions below full marks and
//! errors so far, ETA), one plain line per finished submission otherwise (CI logs, pipes).
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
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Outcome;
use crate::safe_text;
use crate::verdict::fmt_points;

/// Reports a batch's progress.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: AtomicUsize,
    below: AtomicUsize,
    errors: AtomicUsize,
    lock: Mutex<()>,
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
            pb.set_message("0 below full marks, 0 errors");
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        });
        Self {
            bar,
            total,
            done: AtomicUsize::new(0),
            below: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
            lock: Mutex::new(()),
        }
    }

    /// Records one finished submission.
    pub fn finished(&self, id: &str, outcome: &Outcome) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        match outcome {
            Outcome::NotStarted(_) | Outcome::Infrastructure(_) => {
                self.errors.fetch_add(1, Ordering::SeqCst);
            }
            o if o.lost_points() => {
                self.below.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        let width = self.total.to_string().len();
        let line = format!("[{done:>width$}/{}] {}", self.total, line(id, outcome));
        match &self.bar {
            Some(pb) => {
                pb.println(line);
                pb.inc(1);
                pb.set_message(format!(
                    "{} below full marks, {} errors",
                    self.below.load(Ordering::SeqCst),
                    self.errors.load(Ordering::SeqCst)
                ));
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
pub fn line(id: &str, outcome: &Outcome) -> String {
    let (id, shown) = (safe_text::terminal(id), id);
    let message = |m: &str| message(shown, m);
    match outcome {
        Outcome::Graded {
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
        Outcome::UpToDate { score, max } => format!(
            "{id:<20} {:>7}  up to date, not regraded",
            format!("{}/{}", fmt_points(*score), fmt_points(*max))
        ),
        Outcome::NotStarted(m) => format!("{id:<20} NOT STARTED  {}", message(m)),
        Outcome::Infrastructure(m) => {
            format!(
                "{id:<20} NOT GRADED   infrastructure problem (not charged; rerun to retry): {}",
                message(m)
            )
        }
    }
}
