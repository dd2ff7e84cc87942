//! `expect_bytes`: exact bytes on a connection, compared byte for byte with what arrived (no text
//! cleaning: NUL, `\r`, escape sequences and bytes that are not UTF-8 count like any other).
//!
//! Guarantees: bytes are collected across the program's writes (however its `send()` calls cut
//! them) until as many as expected arrived; the wait ends early, and fails, as soon as a byte
//! differs or the connection ends short. A failure names the first differing byte with the
//! bytes around it in hex, or how many of the expected bytes arrived, and names the usual cause
//! when the evidence shows it: a `U+FFFD` replacement (bytes decoded as UTF-8 with
//! `errors="replace"` and encoded again), Latin-1 bytes encoded as UTF-8, a dropped byte, an
//! echo cut after one `recv()`.

use super::*;

/// How many bytes a failure shows in hex on each side of the first difference.
const SHOWN: usize = 12;

/// How the bytes that arrived compare with the expected ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Compared {
    /// All expected bytes arrived, in order (more may follow).
    Whole,
    /// What arrived is a proper prefix of the expected bytes.
    Partial,
    /// Byte `at` differs.
    Differs(usize),
}

/// Compares what arrived (`got`) with `expected`.
pub(super) fn compare(expected: &[u8], got: &[u8]) -> Compared {
    let common = expected.len().min(got.len());
    match expected[..common]
        .iter()
        .zip(&got[..common])
        .position(|(a, b)| a != b)
    {
        Some(at) => Compared::Differs(at),
        None if got.len() >= expected.len() => Compared::Whole,
        None => Compared::Partial,
    }
}

/// Bytes as space-separated hex, at most [`SHOWN`] of them, `…` when more follow.
pub(super) fn hex_excerpt(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes
        .iter()
        .take(SHOWN)
        .map(|b| format!("{b:02x}"))
        .collect();
    let more = if bytes.len() > SHOWN { " …" } else { "" };
    if shown.is_empty() {
        "(nothing)".to_string()
    } else {
        format!("{}{more}", shown.join(" "))
    }
}

/// Describes the first difference at `at`, with the usual cause when the bytes show it.
pub(super) fn describe_difference(
    expected: &[u8],
    got: &[u8],
    at: usize,
) -> (String, Option<String>) {
    let start = at.saturating_sub(4);
    let message = format!(
        "byte {at} of the {} expected differs: expected {} but got {} (from byte {start})",
        expected.len(),
        hex_excerpt(&expected[start..]),
        hex_excerpt(&got[start..]),
    );
    let (want, rest) = (expected[at], &got[at..]);
    let cause = if rest.starts_with(&[0xef, 0xbf, 0xbd]) && want >= 0x80 {
        Some(format!(
            "byte 0x{want:02x} (not UTF-8 text) came back as ef bf bd, the UTF-8 of U+FFFD: the program decoded the bytes as text (errors=\"replace\") and encoded them again; echo the bytes as they are, without decode()/encode()"
        ))
    } else if want >= 0x80
        && rest.len() >= 2
        && rest[0] == 0xc0 | (want >> 6)
        && rest[1] == 0x80 | (want & 0x3f)
    {
        Some(format!(
            "byte 0x{want:02x} came back as {:02x} {:02x}, its UTF-8 encoding as a Latin-1 character: the program decoded the bytes as Latin-1 and encoded them as UTF-8; echo the bytes as they are, without decode()/encode()",
            rest[0], rest[1]
        ))
    } else if expected.get(at + 1..).is_some_and(|after| {
        let n = after.len().min(rest.len()).min(SHOWN);
        n > 0 && after[..n] == rest[..n]
    }) {
        Some(format!(
            "byte {at} (0x{want:02x}) is missing and the bytes after it came: the program dropped or stripped it (strip(), a text-mode conversion, a C string ending at a NUL byte?); echo every byte as it is"
        ))
    } else {
        None
    };
    (message, cause)
}

/// The usual cause of an echo that stopped short after `got` of `expected` bytes.
pub(super) fn short_cause(got: usize, expected: usize) -> Option<String> {
    (got > 0 && got < expected).then(|| {
        format!(
            "only the first {got} of the {expected} bytes came back: one recv() returns whatever has arrived, at most its buffer size (recv(1024): 1024 bytes), never a whole message; loop: recv() until it returns b'' and send each piece with sendall()"
        )
    })
}

impl<'a> Run<'a> {
    /// Waits until `expected` arrives on `stream` (raw bytes, after what earlier byte
    /// expectations consumed), then consumes it.
    pub(super) async fn expect_raw(
        &self,
        stream: &Arc<Stream>,
        label: &str,
        what: &str,
        expected: &[u8],
        within: Duration,
    ) -> StepResult {
        let mut rx = stream.subscribe();
        let mut exit_rx = self.watched().map(|p| p.exit_watch());
        let mut settled = false;
        let patience = self.patience(within);
        loop {
            // The end is read before the bytes, as in `expect_on`: bytes that arrive together
            // with the end are already there.
            let end = stream.end();
            let (compared, got) = stream.with_raw_unconsumed(|b, _| {
                let n = b.len().min(expected.len() + SHOWN);
                (compare(expected, b), b[..n].to_vec())
            });
            match compared {
                Compared::Whole => {
                    stream.consume_raw(expected.len());
                    return Ok(());
                }
                Compared::Differs(at) => {
                    let (msg, cause) = describe_difference(expected, &got, at);
                    let f = self
                        .attribute(format!("expected {what} on {label}: {msg}"), Status::Failed)
                        .await;
                    return Err(f.hint(cause));
                }
                Compared::Partial => {}
            }
            let arrived = got.len();
            let exited = self.watched().is_some_and(|p| p.exit_info().is_some());
            if end.is_some() || (exited && settled) {
                let how = match end {
                    Some(End::Reset) => "the connection was reset",
                    Some(_) => "the connection was closed",
                    None => "the program ended",
                };
                let msg = format!(
                    "expected {what} ({} bytes) on {label}, but {how} after {arrived} of them",
                    expected.len()
                );
                let f = self.attribute(msg, Status::Failed).await;
                return Err(f.hint(short_cause(arrived, expected.len())));
            }
            if exited {
                settled = true;
                StudentProcess::settle_stream(stream, SETTLE).await;
                continue;
            }
            tokio::select! {
                biased;
                r = rx.changed() => { if r.is_err() { settled = true; } }
                _ = async { match exit_rx.as_mut() { Some(r) => { let _ = r.changed().await; } None => std::future::pending::<()>().await } } => {}
                _ = patience.sleep() => {
                    let now = stream.with_raw_unconsumed(|b, _| b.len());
                    if now != arrived || !patience.expired() {
                        continue;
                    }
                    let msg = format!(
                        "expected {what} ({} bytes) on {label} within {:.1}s, but only {arrived} arrived{}",
                        expected.len(),
                        patience.within().as_secs_f64(),
                        if arrived > 0 { format!(", ending {}", hex_excerpt(&got[arrived.saturating_sub(SHOWN)..])) } else { String::new() },
                    );
                    return Err(Fail::new(Status::TimedOut, msg).hint(short_cause(arrived, expected.len())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_finds_the_first_difference_or_a_prefix() {
        assert_eq!(compare(b"abc", b"abc"), Compared::Whole);
        assert_eq!(compare(b"abc", b"abcd"), Compared::Whole);
        assert_eq!(compare(b"abc", b"ab"), Compared::Partial);
        assert_eq!(compare(b"abc", b""), Compared::Partial);
        assert_eq!(compare(b"abc", b"aXc"), Compared::Differs(1));
        assert_eq!(compare(b"", b"x"), Compared::Whole);
    }

    #[test]
    fn causes_are_named_from_the_bytes() {
        let expected = b"ab\xff\x00cd";
        let (msg, cause) = describe_difference(expected, b"ab\xef\xbf\xbd\x00cd", 2);
        assert!(msg.contains("byte 2 of the 6 expected differs"), "{msg}");
        assert!(
            msg.contains("expected 61 62 ff 00 63 64 but got 61 62 ef bf bd"),
            "{msg}"
        );
        assert!(cause.unwrap().contains("U+FFFD"));
        let (_, cause) = describe_difference(expected, b"ab\xc3\xbf\x00cd", 2);
        assert!(cause.unwrap().contains("Latin-1"));
        let (_, cause) = describe_difference(b"ab\x00cd", b"abcd", 2);
        assert!(cause.unwrap().contains("is missing"));
        let (_, cause) = describe_difference(b"abcd", b"abXd", 2);
        assert_eq!(cause, None);
        assert!(short_cause(1024, 65536).unwrap().contains("recv(1024)"));
        assert_eq!(short_cause(0, 10), None);
        assert_eq!(hex_excerpt(&[0u8; 20]).matches("00").count(), SHOWN);
    }
}
