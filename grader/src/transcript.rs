//! The wire transcript of one scenario: a timestamped record of what crossed each connection and
//! the client's terminal (→ sent, ← received, ✕ closed), used to explain every lost point.
//!
//! Guarantees: bounded (at most [`MAX_ENTRIES`] entries, each at most [`MAX_TEXT`] characters;
//! what is dropped is counted and said), printable (control characters escaped), and safe to
//! append from many tasks at once.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept per scenario.
pub const MAX_ENTRIES: usize = 400;
/// Characters kept per entry.
pub const MAX_TEXT: usize = 160;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The grader sent bytes (or typed a line).
    Sent,
    /// The grader received bytes (or the client printed them).
    Received,
    /// A connection or stream was closed.
    Closed,
    /// Something else worth knowing (a process started or exited).
    Note,
}

impl Dir {
    fn symbol(self) -> &'static str {
        match self {
            Dir::Sent => "→",
            Dir::Received => "←",
            Dir::Closed => "✕",
            Dir::Note => "·",
        }
    }
}

/// One line of the transcript.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Time since the scenario started.
    pub at: Duration,
    /// Who: a connection name, `stdin`, `stdout`, `server`, `client`.
    pub who: String,
    /// Direction or kind.
    pub dir: Dir,
    /// Printable text.
    pub text: String,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>7.3}s {:<8} {} {}",
            self.at.as_secs_f64(),
            self.who,
            self.dir.symbol(),
            self.text
        )
    }
}

/// A scenario's transcript.
pub struct Transcript {
    start: Instant,
    entries: Mutex<(Vec<Entry>, usize)>,
}

impl Transcript {
    /// An empty transcript starting now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            entries: Mutex::new((Vec::new(), 0)),
        }
    }

    /// Records raw bytes, escaped and shortened.
    pub fn bytes(&self, who: &str, dir: Dir, bytes: &[u8]) {
        self.push(who, dir, printable(bytes));
    }

    /// Records a line of text.
    pub fn push(&self, who: &str, dir: Dir, text: impl Into<String>) {
        let entry = Entry {
            at: self.start.elapsed(),
            who: who.to_string(),
            dir,
            text: text.into(),
        };
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if guard.0.len() < MAX_ENTRIES {
            guard.0.push(entry);
        } else {
            guard.1 += 1;
        }
    }

    /// The last `n` entries as lines, with a note of anything left out.
    pub fn excerpt(&self, n: usize) -> Vec<String> {
        let guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, dropped) = (&guard.0, guard.1);
        let skip = entries.len().saturating_sub(n);
        let mut out = Vec::new();
        if skip > 0 {
            out.push(format!("… {skip} earlier entries not shown"));
        }
        out.extend(entries[skip..].iter().map(ToString::to_string));
        if dropped > 0 {
            out.push(format!("… {dropped} later entries not recorded"));
        }
        out
    }
}

impl Default for Transcript {
    fn default() -> Self {
        Self::new()
    }
}

/// Escapes control characters and bytes that are not UTF-8 (`\xff`), and shortens long text,
/// saying how long it was: binary data shows as the bytes that were sent.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut count = 0;
    for chunk in bytes.utf8_chunks() {
        let invalid = chunk.invalid().iter().map(|b| format!("\\x{b:02x}"));
        let valid = chunk.valid().chars().map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("\\x{:02x}", c as u32),
            c => c.to_string(),
        });
        for piece in valid.chain(invalid) {
            if count >= MAX_TEXT {
                out.push_str(&format!("… ({} bytes)", bytes.len()));
                return out;
            }
            out.push_str(&piece);
            count += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_and_shortens() {
        assert_eq!(printable(b"a\nb\x00"), "a\\nb\\x00");
        assert_eq!(printable(b"\xffok\xc3\xa9\xc3"), "\\xffok\u{e9}\\xc3");
        let long = vec![b'x'; 1000];
        assert!(printable(&long).ends_with("… (1000 bytes)"));
    }
}
