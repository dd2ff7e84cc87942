//! Reading one HTTP/1.1 response from the bytes a student's server sent, for the `expect_http`
//! step: the head parsed by `httparse` (a well-kept parser, not string checks), the body framed
//! as the head says (`Content-Length`, `Transfer-Encoding: chunked`, or until the connection
//! closes).
//!
//! Guarantees: [`parse_response`] is a pure function of the bytes received so far and whether
//! the stream has ended; it says either that a whole response is there (and how many bytes it
//! took), that more bytes are needed (and which part is awaited), or what is wrong, naming the
//! real cause in words a student can act on (a bare `\n` line ending, a `Content-Length` that
//! does not match the body, a missing length on a connection that stays open, an invalid
//! status line). HTTP/1.1 line endings are checked strictly (`\r\n`), which `httparse` itself
//! tolerates.

use super::matcher::quote;

/// The most header lines a response may have.
const MAX_HEADERS: usize = 64;

/// How a response's body is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// No body by definition (1xx, 204, 304, or the answer to a HEAD request).
    NoBody,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Bytes of the stream it took (head and body).
    pub len: usize,
    /// Length of the head (status line, headers and the empty line).
    pub head_len: usize,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub version: u8,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header names (as sent) and values (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    /// The body (chunked bodies decoded).
    pub body: Vec<u8>,
    /// How the body was delimited.
    pub framing: Framing,
    /// The response says `Connection: close`.
    pub close: bool,
}

impl Response {
    /// The value of the first header named `name` (any letter case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `HTTP/1.1 200 OK`.
    pub fn status_line(&self) -> String {
        format!("HTTP/1.{} {} {}", self.version, self.status, self.reason)
    }

    /// One line for the transcript: the status line, the framing and the body's size.
    pub fn summary(&self) -> String {
        let framing = match &self.framing {
            Framing::NoBody => "no body".to_string(),
            Framing::Length(n) => format!("Content-Length {n}"),
            Framing::Chunked => format!("chunked, {} bytes of body", self.body.len()),
            Framing::UntilClose => format!(
                "no Content-Length, {} bytes of body until the connection closed",
                self.body.len()
            ),
        };
        let ctype = self
            .header("content-type")
            .map(|t| format!(", Content-Type {t}"))
            .unwrap_or_default();
        let close = if self.close {
            ", Connection: close"
        } else {
            ""
        };
        format!(
            "HTTP response: {} ({framing}{ctype}{close})",
            self.status_line()
        )
    }
}

/// What the bytes received so far hold.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A whole response.
    Complete(Box<Response>),
    /// More bytes are needed; the text says which part is awaited (ends a sentence "but ...").
    NotYet(String),
    /// The bytes are not a valid response, or the stream ended before one was whole.
    Invalid(String),
}

/// Reads one response from the start of `buf`. `ended`: the connection has closed, so no more
/// bytes will come. `head_request`: the request was HEAD (no body follows).
pub fn parse_response(buf: &[u8], ended: bool, head_request: bool) -> Parsed {
    if buf.is_empty() {
        return if ended {
            Parsed::Invalid("the connection was closed without any response".into())
        } else {
            Parsed::NotYet("nothing arrived".into())
        };
    }
    let prefix = b"HTTP/";
    let n = buf.len().min(prefix.len());
    if buf[..n] != prefix[..n] {
        return Parsed::Invalid(format!(
            "the response does not start with a status line like `HTTP/1.1 200 OK`: it starts with {}",
            quote_bytes(first_line(buf), 80)
        ));
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            let lf_only = find(buf, b"\n\n").is_some() && find(buf, b"\r\n\r\n").is_none();
            let why = if lf_only {
                "; its lines end with \\n alone, but HTTP needs \\r\\n (the head ends with an empty line, \\r\\n\\r\\n)"
            } else {
                ""
            };
            return if ended {
                Parsed::Invalid(format!(
                    "the connection closed after {} bytes, before the end of the response's head (an empty line, \\r\\n\\r\\n){why}: {}",
                    buf.len(),
                    quote_bytes(buf, 200)
                ))
            } else {
                Parsed::NotYet(format!(
                    "the response's head never ended (no empty line \\r\\n\\r\\n after the headers){why}; received {}",
                    quote_bytes(buf, 200)
                ))
            };
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Invalid(format!(
                "the response has more than {MAX_HEADERS} header lines"
            ));
        }
        Err(e) => {
            let line = line_of_error(buf, &e);
            return Parsed::Invalid(format!(
                "the response's head is not valid HTTP ({e}) at {}",
                quote_bytes(line, 120)
            ));
        }
    };
    // httparse tolerates a bare \n; HTTP/1.1 does not.
    if let Some(k) = bare_lf_line(&buf[..head_len]) {
        let what = if k == 1 {
            "the status line".to_string()
        } else {
            format!("line {k} of the response's head")
        };
        return Parsed::Invalid(format!(
            "{what} ends with \\n alone: HTTP/1.1 ends the status line, every header line and the empty line after them with \\r\\n (head received: {})",
            quote_bytes(&buf[..head_len], 200)
        ));
    }
    let version = res.version.unwrap_or(1);
    if version != 1 {
        return Parsed::Invalid(format!(
            "the status line says HTTP/1.{version} ({}): the response must be HTTP/1.1 (`HTTP/1.1 200 OK`)",
            quote_bytes(first_line(buf), 80)
        ));
    }
    let status = res.code.unwrap_or(0);
    let reason = res.reason.unwrap_or("").to_string();
    let headers: Vec<(String, String)> = res
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let all = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let close = all("connection")
        .iter()
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    let status_line = format!("HTTP/1.{version} {status} {reason}");
    let chunked = all("transfer-encoding").last().is_some_and(|v| {
        v.rsplit(',')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
    });
    let lengths = all("content-length");
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::NoBody
    } else if chunked {
        Framing::Chunked
    } else if let Some(first) = lengths.first() {
        let Ok(n) = first.parse::<u64>() else {
            return Parsed::Invalid(format!(
                "the response ({status_line}) has `Content-Length: {first}`, which is not a number of bytes"
            ));
        };
        if let Some(other) = lengths.iter().find(|v| **v != *first) {
            return Parsed::Invalid(format!(
                "the response ({status_line}) has two different Content-Length headers, {first} and {other}"
            ));
        }
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let rest = &buf[head_len..];
    let (body, body_len) = match &framing {
        Framing::NoBody => (Vec::new(), 0),
        Framing::Length(n) => {
            let n = usize::try_from(*n).unwrap_or(usize::MAX);
            if rest.len() >= n {
                (rest[..n].to_vec(), n)
            } else if ended {
                return Parsed::Invalid(format!(
                    "the response ({status_line}) says Content-Length: {n}, but the connection closed after {} bytes of body: Content-Length must be the body's length in bytes",
                    rest.len()
                ));
            } else {
                return Parsed::NotYet(format!(
                    "the response ({status_line}) says Content-Length: {n} and only {} bytes of body arrived (is Content-Length larger than the body? It must be the body's length in bytes, after encoding)",
                    rest.len()
                ));
            }
        }
        Framing::Chunked => match dechunk(rest) {
            Ok(Some((body, used))) => (body, used),
            Ok(None) if ended => {
                return Parsed::Invalid(format!(
                    "the response ({status_line}) is chunked, but the connection closed before its last chunk (size 0)"
                ));
            }
            Ok(None) => {
                return Parsed::NotYet(format!(
                    "the response ({status_line}) is chunked and its last chunk (size 0) never came"
                ));
            }
            Err(e) => {
                return Parsed::Invalid(format!(
                    "the response ({status_line}) is chunked, but {e}"
                ));
            }
        },
        Framing::UntilClose => {
            if ended {
                (rest.to_vec(), rest.len())
            } else {
                return Parsed::NotYet(format!(
                    "the response ({status_line}) has no Content-Length (and is not chunked), so its body ends only when the server closes the connection, and the server kept it open: send a Content-Length header or close the connection after the response"
                ));
            }
        }
    };
    Parsed::Complete(Box::new(Response {
        len: head_len + body_len,
        head_len,
        version,
        status,
        reason,
        headers,
        body,
        framing,
        close,
    }))
}

/// Decodes a chunked body from the start of `buf`: `Ok(None)` when incomplete, else the body
/// and the bytes it took (trailer fields and the final empty line included).
fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (start, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete((start, size))) => (start, size),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => {
                return Err(format!(
                    "a chunk size line is not a hexadecimal number followed by \\r\\n: {}",
                    quote_bytes(first_line(&buf[at..]), 60)
                ));
            }
        };
        at += start;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(end) = find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += end + 2;
                if end == 0 {
                    return Ok(Some((body, at)));
                }
            }
        }
        let size = usize::try_from(size).map_err(|_| "a chunk size is too large".to_string())?;
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size;
        if &buf[at..at + 2] != b"\r\n" {
            return Err(format!(
                "a chunk of {size} bytes is not followed by \\r\\n (is its size wrong?)"
            ));
        }
        at += 2;
    }
}

/// The 1-based number of the first line in `head` that ends with `\n` not preceded by `\r`.
fn bare_lf_line(head: &[u8]) -> Option<usize> {
    let mut line = 1;
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' {
            if i == 0 || head[i - 1] != b'\r' {
                return Some(line);
            }
            line += 1;
        }
    }
    None
}

/// The line of the head where `httparse` found `e` (the status line for a status or version
/// error, else the first line that is not a well-formed header).
fn line_of_error<'b>(buf: &'b [u8], e: &httparse::Error) -> &'b [u8] {
    if matches!(e, httparse::Error::Status | httparse::Error::Version) {
        return first_line(buf);
    }
    let mut lines = buf.split(|&b| b == b'\n').skip(1);
    lines
        .find(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            !l.is_empty()
                && l.iter()
                    .position(|&b| b == b':')
                    .is_none_or(|c| c == 0 || l[..c].iter().any(|b| !b.is_ascii_graphic()))
        })
        .unwrap_or_else(|| first_line(buf))
}

fn first_line(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    &buf[..end]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Bytes quoted for a message (invalid UTF-8 replaced): `\r` and `\n` shown as escapes, so
/// line endings are visible.
pub fn quote_bytes(bytes: &[u8], max: usize) -> String {
    quote(&String::from_utf8_lossy(bytes), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8], ended: bool) -> Response {
        match parse_response(buf, ended, false) {
            Parsed::Complete(r) => *r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn invalid(buf: &[u8], ended: bool) -> String {
        match parse_response(buf, ended, false) {
            Parsed::Invalid(m) => m,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    fn not_yet(buf: &[u8]) -> String {
        match parse_response(buf, false, false) {
            Parsed::NotYet(m) => m,
            other => panic!("expected not yet, got {other:?}"),
        }
    }

    #[test]
    fn a_response_with_content_length_is_read_to_its_end_and_no_further() {
        let buf =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1";
        let r = complete(buf, false);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert_eq!(r.len, buf.len() - 8);
        assert_eq!(r.header("content-type"), Some("text/html"));
        assert!(!r.close);
        assert_eq!(r.framing, Framing::Length(5));
    }

    #[test]
    fn a_short_body_waits_and_a_close_names_the_mismatch() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
        assert!(not_yet(buf).contains("only 5 bytes of body arrived"));
        let m = invalid(buf, true);
        assert!(
            m.contains("Content-Length: 10") && m.contains("after 5 bytes"),
            "{m}"
        );
    }

    #[test]
    fn without_a_length_the_body_ends_at_close() {
        let buf = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope";
        assert!(not_yet(buf).contains("no Content-Length"));
        let r = complete(buf, true);
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"nope");
        assert_eq!(r.framing, Framing::UntilClose);
    }

    #[test]
    fn bare_line_feeds_are_named() {
        let m = invalid(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", true);
        assert!(m.contains("status line ends with \\n alone"), "{m}");
        let m = invalid(b"HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nhi", true);
        assert!(m.contains("line 2"), "{m}");
    }

    #[test]
    fn a_bad_status_line_is_quoted() {
        let m = invalid(b"HTTP/1.1 OK\r\n\r\n", false);
        assert!(
            m.contains("not valid HTTP") && m.contains("HTTP/1.1 OK"),
            "{m}"
        );
        let m = invalid(b"hello world\r\n", false);
        assert!(m.contains("does not start with a status line"), "{m}");
        // A prefix of the status line waits.
        assert!(not_yet(b"HTT").contains("head never ended"));
    }

    #[test]
    fn only_http_1_1_is_accepted() {
        let m = invalid(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert!(
            m.contains("must be HTTP/1.1") && m.contains("HTTP/1.0 200 OK"),
            "{m}"
        );
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let buf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = complete(buf, false);
        assert_eq!(r.body, b"hello world");
        assert_eq!(r.len, buf.len());
        assert!(not_yet(&buf[..buf.len() - 2]).contains("last chunk"));
    }

    #[test]
    fn bad_content_lengths_are_named() {
        let m = invalid(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", false);
        assert!(m.contains("not a number"), "{m}");
        let m = invalid(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
            false,
        );
        assert!(m.contains("two different"), "{m}");
    }

    #[test]
    fn connection_close_and_head_requests() {
        let r = complete(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 3\r\n\r\nabc",
            false,
        );
        assert!(r.close);
        match parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false, true) {
            Parsed::Complete(r) => assert_eq!(r.framing, Framing::NoBody),
            other => panic!("{other:?}"),
        }
        assert!(invalid(b"", true).contains("without any response"));
    }
}
