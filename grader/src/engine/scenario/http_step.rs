//! The `expect_http` step: wait for one whole HTTP response on a connection (parsed by
//! [`crate::engine::http`]) and judge it: framing first (a body that does not match its
//! `Content-Length`, a missing length on a connection that stays open, a `Connection: close`
//! that is not followed by the close), then the status, the headers and the body asked for.
//!
//! Guarantees: the wait ends on the first of a whole response, the connection's end, or the
//! (load-compensated) deadline; a failure names what was wrong with the response and quotes
//! it; the transcript gets a one-line summary of every response read; only the bytes of the
//! response are consumed, so a following `expect_http` reads the next one.

use super::*;
use crate::engine::http::{self, Framing, Parsed, Response};

/// The fields of an `expect_http` step that say what to wait for.
pub(super) struct HttpExpect<'s> {
    pub on: &'s str,
    pub status: &'s Option<u16>,
    pub headers: &'s std::collections::BTreeMap<String, String>,
    pub body_contains: &'s Option<String>,
    pub head: &'s bool,
    pub within: &'s Option<crate::spec::Dur>,
}

impl<'a> Run<'a> {
    /// Runs an `expect_http` step. Returns whether the response said `Connection: close` (and
    /// the server then closed the connection).
    pub(super) async fn expect_http(
        &self,
        local: &mut Local,
        want: HttpExpect<'_>,
    ) -> Result<bool, Fail> {
        let HttpExpect {
            on,
            status,
            headers,
            body_contains,
            head,
            within,
        } = want;
        let body_text = body_contains
            .as_ref()
            .map(|t| self.expand(local, t))
            .transpose()?;
        let c = local.conn(on)?;
        let (stream, name, kept_open) = (c.stream.clone(), c.name.clone(), c.http_kept_open);
        let label = format!("connection {name}");
        let within = self.within(within);
        let patience = self.patience(within);
        let mut rx = stream.subscribe();
        let response: Response = loop {
            // The end is read before the bytes: bytes that come with it are then seen.
            let ended = stream.end().is_some();
            let parsed = stream.with_raw_unconsumed(|b, _| http::parse_response(b, ended, *head));
            match parsed {
                Parsed::Complete(r) => break *r,
                Parsed::Invalid(mut m) => {
                    if kept_open > 0 && stream.with_raw_unconsumed(|b, _| b.is_empty()) {
                        // Closing without saying so: the previous response promised more.
                        m.push_str(
                            " (the previous response on it did not say `Connection: close`, so the connection was still open for this request: a server that closes after each response must say `Connection: close`)",
                        );
                    }
                    return Err(self
                        .attribute(
                            format!("expected an HTTP response on {label}, but {m}"),
                            Status::Failed,
                        )
                        .await);
                }
                Parsed::NotYet(mut why) => {
                    if stream.raw_truncated() {
                        why.push_str(&format!(
                            " (the grader keeps the first {} MiB received on a connection)",
                            crate::stream::MATCH_CAP >> 20
                        ));
                    }
                    if patience.expired() {
                        return Err(Fail::new(
                            Status::TimedOut,
                            format!(
                                "expected an HTTP response on {label} within {:.1}s, but {why}",
                                within.as_secs_f64()
                            ),
                        ));
                    }
                    let _ = tokio::time::timeout_at(patience.deadline().into(), rx.changed()).await;
                }
            }
        };
        self.transcript.push(&name, Dir::Note, response.summary());
        let what = response.status_line();
        // Bytes after the response: the end of a body longer than its Content-Length.
        let extra = |after_close: bool| -> Option<String> {
            stream.with_raw_unconsumed(|b, _| {
                let rest = b.get(response.len..).unwrap_or_default();
                if rest.is_empty() || (!after_close && rest.starts_with(b"HTTP/")) {
                    return None;
                }
                let when = if after_close {
                    "before the server closed the connection"
                } else {
                    "right after it"
                };
                Some(match response.framing {
                    Framing::Length(n) => format!(
                        "the response ({what}) says Content-Length: {n}, but {} more bytes of body came {when} ({}): Content-Length must be the body's length in bytes (here {}), counted after encoding",
                        rest.len(),
                        http::quote_bytes(rest, 80),
                        n + rest.len() as u64
                    ),
                    _ => format!(
                        "{} bytes that are not part of the response ({what}) came {when}: {}",
                        rest.len(),
                        http::quote_bytes(rest, 80)
                    ),
                })
            })
        };
        if response.close {
            // `Connection: close` promises the close; what comes before it is not part of any
            // response.
            let mut rx = stream.subscribe();
            while stream.end().is_none() && !patience.expired() {
                let _ = tokio::time::timeout_at(patience.deadline().into(), rx.changed()).await;
            }
            if stream.end().is_none() {
                return Err(Fail::new(
                    Status::TimedOut,
                    format!(
                        "the response on {label} ({what}) says Connection: close, but the server kept the connection open for {:.1}s after it: close the socket after sending such a response",
                        within.as_secs_f64()
                    ),
                ));
            }
            if let Some(m) = extra(true) {
                return Err(Fail::new(Status::Failed, format!("on {label}: {m}")));
            }
        } else if let Some(m) = extra(false) {
            return Err(Fail::new(Status::Failed, format!("on {label}: {m}")));
        }
        stream.consume_raw(response.len);
        if stream.with_raw_unconsumed(|b, _| b.is_empty()) {
            // The text view follows: an `expect` after this step sees only later bytes.
            stream.consume_all();
        }
        let shown = || quote(&head_text(&response), 300);
        if let Some(want) = status
            && response.status != *want
        {
            return Err(Fail::new(
                Status::Failed,
                format!(
                    "expected an HTTP response with status {want} on {label}, but it was {what}"
                ),
            ));
        }
        for (hname, want) in headers {
            match response.header(hname) {
                None => {
                    return Err(Fail::new(
                        Status::Failed,
                        format!(
                            "the response on {label} ({what}) has no {hname} header (its headers: {})",
                            shown()
                        ),
                    ));
                }
                Some(v) if !v.to_lowercase().contains(&want.to_lowercase()) => {
                    return Err(Fail::new(
                        Status::Failed,
                        format!(
                            "the response on {label} ({what}) has `{hname}: {v}`, which does not contain {}",
                            quote(want, 80)
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(want) = body_text {
            let body = String::from_utf8_lossy(&response.body);
            if !body.contains(&want) {
                return Err(Fail::new(
                    Status::Failed,
                    format!(
                        "the body of the response on {label} ({what}, {} bytes) does not contain {}: it is {}",
                        response.body.len(),
                        quote(&want, 80),
                        http::quote_bytes(&response.body, 200)
                    ),
                ));
            }
        }
        if !response.close {
            local.conn(on)?.http_kept_open += 1;
        }
        Ok(response.close)
    }
}

/// The status line and headers of a response on one line, for messages.
fn head_text(r: &Response) -> String {
    let mut out = r.status_line();
    for (n, v) in &r.headers {
        out.push_str(&format!("; {n}: {v}"));
    }
    out
}
