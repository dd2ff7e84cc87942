//! Line framing: turning a byte stream into lines, and lines back into bytes.
//!
//! TCP delivers a stream of bytes, not messages: one `read` may return half a line or three
//! lines at once. ClassChat therefore frames every message as one UTF-8 line ending in `\n`
//! (a `\r\n` ending is accepted too). [`LineReader`] reassembles those lines.
//!
//! Guarantees of [`LineReader::next_line`]:
//!
//! * **Bounded memory.** A line longer than the reader's limit is never stored whole: the
//!   reader drops its bytes as they arrive and reports [`Line::TooLong`] once the line ends.
//!   The stream stays usable; the next line is read normally.
//! * **Never fails on content.** Invalid UTF-8 is replaced with `U+FFFD` instead of being an
//!   error, so a peer cannot end the conversation by sending odd bytes.
//! * **Cancel safety.** Partial data lives in the reader, not in the future, so
//!   `next_line()` may be used as a branch of `tokio::select!` and dropped at any time
//!   without losing bytes.
//! * A last line without a final `\n` before end-of-stream is still returned.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// The longest line (in bytes, without its `\r\n`) a ClassChat program must accept: 64 KiB.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// The longest line a client accepts from a server. Replies wrap a line of up to
/// [`MAX_LINE_LEN`] bytes in a little extra text (`ACK: `, JSON fields), so clients allow
/// twice as much.
pub const MAX_REPLY_LEN: usize = 2 * MAX_LINE_LEN;

/// One framed line, as returned by [`LineReader::next_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its `\n` or `\r\n`.
    Text(String),
    /// A line longer than the reader's limit; its content was discarded.
    TooLong,
}

/// Reads newline-terminated lines of bounded length from any async byte stream.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: BufReader<R>,
    pending: Pending,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Wraps `inner`; lines longer than `limit` bytes are reported as [`Line::TooLong`].
    pub fn new(inner: R, limit: usize) -> Self {
        Self {
            inner: BufReader::new(inner),
            pending: Pending {
                bytes: Vec::new(),
                overflowed: false,
                limit,
            },
        }
    }

    /// Returns the next line, or `None` once the stream has ended.
    ///
    /// An `Err` is a real I/O failure (for example a connection reset); after it the stream
    /// should be considered dead.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            // The only await point. Nothing has been consumed yet, so cancelling here is safe.
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                return Ok(self.pending.finish_at_end_of_stream());
            }

            let newline = chunk.iter().position(|&byte| byte == b'\n');
            let (content, used) = match newline {
                Some(at) => (&chunk[..at], at + 1),
                None => (chunk, chunk.len()),
            };
            self.pending.push(content);
            self.inner.consume(used);

            if newline.is_some() {
                return Ok(Some(self.pending.finish()));
            }
        }
    }
}

/// The part of a line received so far.
#[derive(Debug)]
struct Pending {
    bytes: Vec<u8>,
    /// Set once the line outgrew the limit; its bytes are then dropped as they arrive.
    overflowed: bool,
    limit: usize,
}

impl Pending {
    fn push(&mut self, content: &[u8]) {
        if self.overflowed {
            return;
        }
        // One extra byte of room for the `\r` of a `\r\n` ending, which `finish` removes.
        if self.bytes.len() + content.len() > self.limit + 1 {
            self.overflowed = true;
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(content);
        }
    }

    fn finish(&mut self) -> Line {
        let overflowed = std::mem::take(&mut self.overflowed);
        let mut bytes = std::mem::take(&mut self.bytes);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if overflowed || bytes.len() > self.limit {
            return Line::TooLong;
        }
        match String::from_utf8(bytes) {
            Ok(text) => Line::Text(text),
            Err(invalid) => Line::Text(String::from_utf8_lossy(invalid.as_bytes()).into_owned()),
        }
    }

    fn finish_at_end_of_stream(&mut self) -> Option<Line> {
        if self.bytes.is_empty() && !self.overflowed {
            None
        } else {
            Some(self.finish())
        }
    }
}

/// Sends `text` followed by `\n` in a single write, then flushes.
///
/// `text` must not itself contain a newline (callers send single lines or serialized JSON,
/// which escapes newlines).
pub async fn write_line<W: AsyncWrite + Unpin>(writer: &mut W, text: &str) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(text.len() + 1);
    framed.extend_from_slice(text.as_bytes());
    framed.push(b'\n');
    writer.write_all(&framed).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all_lines(input: &[u8], limit: usize) -> Vec<Line> {
        let mut reader = LineReader::new(input, limit);
        let mut lines = Vec::new();
        while let Some(line) = reader
            .next_line()
            .await
            .expect("reading a slice cannot fail")
        {
            lines.push(line);
        }
        lines
    }

    fn text(s: &str) -> Line {
        Line::Text(s.to_owned())
    }

    #[tokio::test]
    async fn splits_on_newlines_and_strips_carriage_returns() {
        let lines = all_lines(b"one\r\ntwo\n\nlast", 16).await;
        assert_eq!(lines, [text("one"), text("two"), text(""), text("last")]);
    }

    #[tokio::test]
    async fn over_long_lines_are_reported_and_skipped() {
        let lines = all_lines(b"12345\n123456\r\n1234567\nok\n", 6).await;
        assert_eq!(
            lines,
            [text("12345"), text("123456"), Line::TooLong, text("ok")]
        );
    }

    #[tokio::test]
    async fn invalid_utf8_is_replaced() {
        let lines = all_lines(b"a\xffb\n", 16).await;
        assert_eq!(lines, [text("a\u{fffd}b")]);
    }
}
