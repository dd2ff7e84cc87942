//! Byte streams the grader watches: what arrives on a grader-side connection or on a student
//! process's stdout/stderr.
//!
//! A [`Stream`] is fed by one reader task and read by the scenario steps. It keeps a *clean text*
//! view for matching: ANSI escape sequences and carriage returns removed, UTF-8 decoded
//! incrementally (an incomplete trailing sequence waits for its next bytes, invalid bytes become
//! U+FFFD). Matching consumes the clean text from the front, so successive expectations see what
//! arrived after the previous match, in order. Guarantees: memory is capped ([`MATCH_CAP`]
//! bytes of clean text are kept for matching, plus the last [`TAIL_CAP`] bytes of it for
//! [`Stream::tail`], which go on past the match cap; the byte count goes on), a long stream
//! is shown with both ends and a marker where its middle was left out
//! ([`Stream::head_and_tail`]), every change wakes
//! the waiters, and the clean text only ever grows at its end, so offsets into it stay valid.
//!
//! Beside the clean text, a stream keeps the *raw bytes* exactly as they arrived (up to
//! [`MATCH_CAP`] bytes), with a read position of their own, for expectations on exact bytes
//! (`expect_bytes`): text and byte expectations do not move each other's position.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

/// Clean text kept per stream for matching; later bytes are counted but not kept.
pub const MATCH_CAP: usize = 1 << 20;
/// The end of the clean text kept per stream for [`Stream::tail`], also past [`MATCH_CAP`].
pub const TAIL_CAP: usize = 64 << 10;

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Orderly end of stream (FIN, or the writer closed its end).
    Eof,
    /// The connection was reset by the peer.
    Reset,
    /// Some other error, described.
    Error(String),
}

#[derive(Default)]
struct State {
    clean: String,
    /// The last [`TAIL_CAP`] (up to twice that, between trims) bytes of the clean text, also
    /// of what arrived past the match cap.
    tail: String,
    /// Bytes of clean text not kept in `clean` (past the match cap).
    dropped: u64,
    consumed: usize,
    total: u64,
    end: Option<End>,
    ansi: Ansi,
    pending: Vec<u8>,
    /// The bytes exactly as they arrived (up to [`MATCH_CAP`]), for protocols whose framing
    /// the clean text hides (HTTP's `\r\n`); read and consumed apart from the clean text.
    raw: Vec<u8>,
    /// Bytes of `raw` consumed by raw readers.
    raw_consumed: usize,
    /// Whether `raw` is kept at all (grader-side connections; not process output).
    keep_raw: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Ansi {
    #[default]
    Normal,
    Esc,
    Csi,
    Osc,
    OscEsc,
}

/// A watched byte stream. Cheap to share behind an `Arc`.
pub struct Stream {
    state: Mutex<State>,
    version: watch::Sender<u64>,
}

impl Default for Stream {
    fn default() -> Self {
        Self::new()
    }
}

impl Stream {
    /// An empty, open stream.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            version: watch::Sender::new(0),
        }
    }

    /// An empty, open stream that also keeps the raw bytes as they arrived (see
    /// [`with_raw_unconsumed`](Self::with_raw_unconsumed)).
    pub fn keeping_raw() -> Self {
        let s = Self::new();
        s.lock().keep_raw = true;
        s
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent in a way that
        // matters for matching, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Appends bytes as they arrived.
    pub fn push(&self, bytes: &[u8]) {
        {
            let mut st = self.lock();
            st.total += bytes.len() as u64;
            if st.keep_raw {
                let room = MATCH_CAP.saturating_sub(st.raw.len());
                st.raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            {
                let mut cleaned = std::mem::take(&mut st.pending);
                for &b in bytes {
                    st.ansi = match (st.ansi, b) {
                        (Ansi::Normal, 0x1b) => Ansi::Esc,
                        (Ansi::Normal, b'\r') => Ansi::Normal,
                        (Ansi::Normal, b) => {
                            cleaned.push(b);
                            Ansi::Normal
                        }
                        (Ansi::Esc, b'[') => Ansi::Csi,
                        (Ansi::Esc, b']') => Ansi::Osc,
                        (Ansi::Esc, _) => Ansi::Normal,
                        (Ansi::Csi, 0x40..=0x7e) => Ansi::Normal,
                        (Ansi::Csi, _) => Ansi::Csi,
                        (Ansi::Osc, 0x07) => Ansi::Normal,
                        (Ansi::Osc, 0x1b) => Ansi::OscEsc,
                        (Ansi::Osc, _) => Ansi::Osc,
                        (Ansi::OscEsc, _) => Ansi::Normal,
                    };
                }
                let (text, rest) = decode_utf8_prefix(&cleaned);
                st.pending = rest.to_vec();
                st.append(&text);
            }
        }
        self.bump();
    }

    /// Marks the end of the stream; later calls keep the first reason.
    pub fn finish(&self, end: End) {
        {
            let mut st = self.lock();
            if st.end.is_some() {
                return;
            }
            if !st.pending.is_empty() {
                let pending = std::mem::take(&mut st.pending);
                let text = String::from_utf8_lossy(&pending).into_owned();
                st.append(&text);
            }
            st.end = Some(end);
        }
        self.bump();
    }

    /// A receiver that changes whenever the stream does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Runs `f` on the unconsumed clean text and the end state.
    pub fn with_unconsumed<R>(&self, f: impl FnOnce(&str, Option<&End>) -> R) -> R {
        let st = self.lock();
        f(&st.clean[st.consumed..], st.end.as_ref())
    }

    /// Marks `n` more bytes of the unconsumed clean text as consumed.
    pub fn consume(&self, n: usize) {
        let mut st = self.lock();
        let target = (st.consumed + n).min(st.clean.len());
        st.consumed = st.clean.floor_char_boundary(target);
    }

    /// Runs `f` on the raw bytes not yet consumed by [`consume_raw`](Self::consume_raw) (up to
    /// [`MATCH_CAP`] bytes in all), and the end state. The raw position is independent of the
    /// clean text's.
    pub fn with_raw_unconsumed<R>(&self, f: impl FnOnce(&[u8], Option<&End>) -> R) -> R {
        let st = self.lock();
        f(&st.raw[st.raw_consumed..], st.end.as_ref())
    }

    /// Marks `n` more raw bytes as consumed.
    pub fn consume_raw(&self, n: usize) {
        let mut st = self.lock();
        st.raw_consumed = (st.raw_consumed + n).min(st.raw.len());
    }

    /// Whether more raw bytes arrived than [`MATCH_CAP`] keeps.
    pub fn raw_truncated(&self) -> bool {
        let st = self.lock();
        st.total > st.raw.len() as u64
    }

    /// Consumes everything received so far.
    pub fn consume_all(&self) {
        let mut st = self.lock();
        st.consumed = st.clean.len();
    }

    /// All clean text received (consumed or not).
    pub fn all_text(&self) -> String {
        self.lock().clean.clone()
    }

    /// Bytes received in total, including those past the cap.
    pub fn total_bytes(&self) -> u64 {
        self.lock().total
    }

    /// How the stream ended, if it has.
    pub fn end(&self) -> Option<End> {
        self.lock().end.clone()
    }

    /// Whether some clean text arrived past [`MATCH_CAP`], so [`all_text`](Self::all_text)
    /// lacks its end (and [`tail`](Self::tail) holds at most [`TAIL_CAP`] bytes).
    pub fn truncated(&self) -> bool {
        self.lock().dropped > 0
    }

    /// The last `max` bytes (rounded to whole characters) of the clean text, the very end of
    /// what arrived also past [`MATCH_CAP`]; then at most [`TAIL_CAP`] bytes.
    pub fn tail(&self, max: usize) -> String {
        let st = self.lock();
        let (text, max) = if st.dropped > 0 {
            (&st.tail, max.min(TAIL_CAP))
        } else {
            (&st.clean, max)
        };
        let start = text.len().saturating_sub(max);
        text[text.ceil_char_boundary(start)..].to_string()
    }

    /// What to show of a long stream such as stderr: all of it when it is at most
    /// `head + tail` bytes; else its first whole lines up to `head` bytes, a marker line saying
    /// how many bytes were left out, and its last whole lines up to `tail` bytes. When a Python
    /// traceback starts in the left-out middle, the end part starts at the first traceback line
    /// at most [`TRACEBACK_REACH`] bytes from the end (the first of a chain of exceptions), so
    /// an exception is shown from its start.
    pub fn head_and_tail(&self, head: usize, tail: usize) -> String {
        let st = self.lock();
        let total = st.clean.len() as u64 + st.dropped;
        if total <= (head + tail) as u64 {
            return st.clean.clone();
        }
        // The end of the text, with room to reach back to a traceback's start.
        let end_text: &str = if st.dropped > 0 { &st.tail } else { &st.clean };
        let reach = TRACEBACK_REACH.max(tail).min(end_text.len());
        let window = &end_text[end_text.ceil_char_boundary(end_text.len() - reach)..];
        let mut end_start = window.len().saturating_sub(tail);
        if let Some(tb) = window.find(TRACEBACK_START) {
            let line_start = window[..tb].rfind('\n').map_or(0, |k| k + 1);
            end_start = end_start.min(line_start);
        }
        let mut end_part = &window[window.ceil_char_boundary(end_start)..];
        if end_start > 0 && !window[..end_start].ends_with('\n') {
            // Start at a whole line when one begins in the part.
            if let Some(k) = end_part.find('\n').filter(|k| k + 1 < end_part.len()) {
                end_part = &end_part[k + 1..];
            }
        }
        let head_limit = head.min(st.clean.len());
        let mut head_part = &st.clean[..st.clean.floor_char_boundary(head_limit)];
        if let Some(k) = head_part.rfind('\n') {
            head_part = &head_part[..=k];
        }
        if st.dropped == 0 && st.clean.len() - end_part.len() <= head_part.len() {
            // The end part reaches into the head (a traceback near the start): all of it.
            return st.clean.clone();
        }
        let left_out = total.saturating_sub((head_part.len() + end_part.len()) as u64);
        let newline = if head_part.ends_with('\n') { "" } else { "\n" };
        format!("{head_part}{newline}[… {left_out} bytes left out …]\n{end_part}")
    }
}

/// How far from the end [`Stream::head_and_tail`] reaches back for a traceback's first line.
pub const TRACEBACK_REACH: usize = 6000;
/// The first line of a Python traceback.
const TRACEBACK_START: &str = "Traceback (most recent call last)";

impl State {
    /// Appends clean text: to the matching text while under the cap, always to the tail.
    fn append(&mut self, text: &str) {
        if self.clean.len() < MATCH_CAP {
            self.clean.push_str(text);
        } else {
            self.dropped += text.len() as u64;
        }
        self.tail.push_str(text);
        if self.tail.len() > 2 * TAIL_CAP {
            let cut = self.tail.ceil_char_boundary(self.tail.len() - TAIL_CAP);
            self.tail.drain(..cut);
        }
    }
}

/// Decodes the longest prefix that is complete UTF-8 (invalid bytes become U+FFFD) and returns
/// the incomplete tail (at most 3 bytes) separately.
fn decode_utf8_prefix(bytes: &[u8]) -> (String, &[u8]) {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return (out, &[]);
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // SAFETY-free: `valid` was just checked.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    Some(len) => {
                        out.push('\u{FFFD}');
                        rest = &after[len..];
                    }
                    None => return (out, after),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ansi_and_cr_across_chunks() {
        let s = Stream::new();
        s.push(b"\x1b[3");
        s.push(b"1mred\x1b[0m\r\n");
        s.with_unconsumed(|t, _| assert_eq!(t, "red\n"));
    }

    #[test]
    fn utf8_split_across_chunks_is_joined() {
        let s = Stream::new();
        let bytes = "héllo".as_bytes();
        s.push(&bytes[..2]);
        s.push(&bytes[2..]);
        s.with_unconsumed(|t, _| assert_eq!(t, "héllo"));
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let s = Stream::new();
        s.push(b"a\xffb");
        s.finish(End::Eof);
        s.with_unconsumed(|t, e| {
            assert_eq!(t, "a\u{FFFD}b");
            assert_eq!(e, Some(&End::Eof));
        });
    }

    #[test]
    fn the_tail_is_the_real_end_also_past_the_match_cap() {
        let s = Stream::new();
        s.push(b"error: x\r\n\x1b[31mred\x1b[0m\r\n");
        assert!(!s.truncated());
        assert_eq!(s.tail(usize::MAX), "error: x\nred\n");
        let filler = "filler line\n".repeat(10_000);
        while s.total_bytes() < (MATCH_CAP + MATCH_CAP / 10) as u64 {
            s.push(filler.as_bytes());
        }
        s.push(b"FINAL-\xc3");
        s.push(b"\xa9RROR-LINE\r\n");
        s.finish(End::Eof);
        assert!(s.truncated());
        assert!(!s.all_text().contains("FINAL"));
        assert_eq!(s.tail(18), "FINAL-\u{e9}RROR-LINE\n");
        assert_eq!(s.tail(usize::MAX).len(), TAIL_CAP);
        assert!(
            s.tail(usize::MAX)
                .ends_with("filler line\nFINAL-\u{e9}RROR-LINE\n")
        );
    }

    #[test]
    fn head_and_tail_keeps_both_ends_and_marks_the_cut() {
        let s = Stream::new();
        s.push(b"short\n");
        assert_eq!(s.head_and_tail(10, 10), "short\n");
        let s = Stream::new();
        s.push(b"listening on 127.0.0.1:4000\n");
        for i in 0..200 {
            s.push(format!("log line {i}\n").as_bytes());
        }
        s.push(b"last words\n");
        let shown = s.head_and_tail(40, 30);
        assert!(
            shown.starts_with("listening on 127.0.0.1:4000\n"),
            "{shown}"
        );
        assert!(shown.ends_with("log line 199\nlast words\n"), "{shown}");
        let marker = shown
            .lines()
            .find(|l| l.contains("bytes left out"))
            .unwrap();
        let left_out: usize = marker
            .trim_start_matches("[… ")
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let marker_len = marker.len() + 1;
        assert_eq!(
            shown.len() - marker_len + left_out,
            s.total_bytes() as usize
        );
        // A traceback that starts in the middle is shown from its first line.
        let s = Stream::new();
        s.push(b"started\n");
        s.push("noise\n".repeat(100).as_bytes());
        s.push(b"Traceback (most recent call last):\n");
        s.push(
            "  File \"server.py\", line 3, in handle\n"
                .repeat(40)
                .as_bytes(),
        );
        s.push(b"ConnectionResetError: [Errno 104] Connection reset by peer\n");
        let shown = s.head_and_tail(10, 200);
        assert!(shown.starts_with("started\n[… "), "{shown}");
        assert!(
            shown.contains("]\nTraceback (most recent call last):\n"),
            "{shown}"
        );
        assert!(shown.ends_with("Connection reset by peer\n"), "{shown}");
    }

    #[test]
    fn raw_bytes_are_kept_exactly_with_their_own_position() {
        let s = Stream::keeping_raw();
        s.push(b"a\r\n\x1b[31m\x00");
        s.push(b"\xff\xfe");
        s.with_raw_unconsumed(|b, _| assert_eq!(b, b"a\r\n\x1b[31m\x00\xff\xfe"));
        s.consume_raw(3);
        s.with_raw_unconsumed(|b, _| assert_eq!(b, b"\x1b[31m\x00\xff\xfe"));
        // The clean text's position is its own.
        s.with_unconsumed(|t, _| assert_eq!(t, "a\n\0\u{FFFD}\u{FFFD}"));
    }

    #[test]
    fn raw_bytes_keep_carriage_returns_and_their_own_position() {
        let s = Stream::keeping_raw();
        s.push(b"HTTP/1.1 200 OK\r\n");
        s.push(b"\r\nbody");
        s.with_raw_unconsumed(|b, _| assert_eq!(b, b"HTTP/1.1 200 OK\r\n\r\nbody"));
        s.consume_raw(19);
        s.with_raw_unconsumed(|b, _| assert_eq!(b, b"body"));
        s.with_unconsumed(|t, _| assert_eq!(t, "HTTP/1.1 200 OK\n\nbody"));
        assert!(!s.raw_truncated());
    }

    #[test]
    fn consume_moves_the_window() {
        let s = Stream::new();
        s.push(b"one two");
        s.consume(4);
        s.with_unconsumed(|t, _| assert_eq!(t, "two"));
    }
}
