//! Waiting for what a student program sends: an expectation on one or more streams, a
//! silence window, text that must not arrive. Every wait ends on the first of: a match, the
//! stream ending, the watched process dying, or the (load-compensated) deadline.

use super::*;

impl<'a> Run<'a> {
    /// Waits until `matcher` matches the unconsumed text of one of `streams`.
    pub(super) async fn expect_on(
        &self,
        streams: &[Watched],
        label: &str,
        matcher: &Matcher,
        patience: Patience,
    ) -> StepResult {
        let mut rxs: Vec<_> = streams.iter().map(|(_, s)| s.subscribe()).collect();
        let mut exit_rx = self.watched().map(|p| p.exit_watch());
        let mut settled = false;
        loop {
            // Which streams had ended is read before their text: bytes that arrive together with
            // the end are then already in the text the matcher sees, never lost in between.
            let ends: Vec<Option<End>> = streams.iter().map(|(_, s)| s.end()).collect();
            for (_, stream) in streams {
                if let Outcome::Found(n) =
                    stream.with_unconsumed(|t, e| matcher.find(t, e.is_some()))
                {
                    stream.consume(n);
                    return Ok(());
                }
            }
            let all_ended = ends.iter().all(Option::is_some);
            let exited = exit_rx.as_ref().is_some_and(|r| r.borrow().is_some());
            if all_ended || (exited && settled) {
                let what = match ends.as_slice() {
                    [Some(End::Reset)] => "the connection was reset",
                    [Some(_)] if label.starts_with("connection") => "the connection was closed",
                    _ if all_ended => "the output ended",
                    _ => "the program ended",
                };
                let msg = format!(
                    "expected {} on {label}, but {what} first{}",
                    matcher.describe(),
                    received(streams, matcher)
                );
                return Err(self.attribute(msg, Status::Failed).await);
            }
            if exited {
                // The process is gone: its last bytes may still be in flight; let the streams end.
                settled = true;
                let wait = if label.starts_with("connection") {
                    SETTLE
                } else {
                    SETTLE * 2
                };
                for (_, stream) in streams {
                    StudentProcess::settle_stream(stream, wait).await;
                }
                continue;
            }
            tokio::select! {
                biased;
                r = any_change(&mut rxs) => { if r.is_err() { settled = true; } }
                _ = async { match exit_rx.as_mut() { Some(r) => { let _ = r.changed().await; } None => std::future::pending::<()>().await } } => {}
                _ = patience.sleep() => {
                    // The deadline may have grown while we slept (CPU starvation), and bytes may
                    // have arrived at the last moment: look again before giving up.
                    let late = streams.iter().any(|(_, s)| s.with_unconsumed(|t, e| matcher.find(t, e.is_some())) != Outcome::NotYet);
                    if late || !patience.expired() {
                        continue;
                    }
                    let waited = patience.within().as_secs_f64();
                    let msg = format!("expected {} on {label} within {waited:.1}s{}", matcher.describe(), received(streams, matcher));
                    // A timestamp's diagnosis is in the message already (`received`); the hint
                    // stays the scenario's advice on how to print the time.
                    let diag = streams.iter().filter(|_| !matches!(matcher, Matcher::Timestamped(..))).find_map(|(_, s)| s.with_unconsumed(|t, e| matcher.diagnose(t, e.is_some())));
                    return Err(Fail::new(Status::TimedOut, msg).hint(diag.map(|d| truncation_hint(&d))));
                }
            }
        }
    }

    /// Passes if nothing but white space arrives on any of `streams` for `window`.
    pub(super) async fn silence(
        &self,
        streams: &[Watched],
        label: &str,
        window: Duration,
    ) -> StepResult {
        let mut rxs: Vec<_> = streams.iter().map(|(_, s)| s.subscribe()).collect();
        // Under CPU starvation the window grows too, so a late reply is still caught.
        let patience = self.patience(window);
        loop {
            // Read before the text, as in `expect_on`: a reply that comes with the end is seen.
            let all_ended = streams.iter().all(|(_, s)| s.end().is_some());
            for (_, stream) in streams {
                let got =
                    stream.with_unconsumed(|t, _| (!t.trim().is_empty()).then(|| t.to_string()));
                if let Some(t) = got {
                    return Err(Fail::new(
                        Status::Failed,
                        format!(
                            "expected nothing on {label} for {:.1}s, but received {}",
                            window.as_secs_f64(),
                            quote(&t, 200)
                        ),
                    ));
                }
            }
            if all_ended {
                // Nothing more can arrive; waiting out the window is pointless.
                return Ok(());
            }
            if tokio::time::timeout_at(patience.deadline().into(), any_change(&mut rxs))
                .await
                .is_err()
                && patience.expired()
                && streams
                    .iter()
                    .all(|(_, s)| s.with_unconsumed(|t, _| t.trim().is_empty()))
            {
                for (_, stream) in streams {
                    stream.consume_all();
                }
                return Ok(());
            }
        }
    }

    /// Passes if nothing matching `matcher` is among the unconsumed text of `streams` or arrives
    /// during `window`. Consumes nothing.
    pub(super) async fn expect_not(
        &self,
        streams: &[Watched],
        label: &str,
        matcher: &Matcher,
        window: Duration,
    ) -> StepResult {
        let mut rxs: Vec<_> = streams.iter().map(|(_, s)| s.subscribe()).collect();
        let patience = self.patience(window);
        loop {
            // Read before the text, as in `expect_on`.
            let all_ended = streams.iter().all(|(_, s)| s.end().is_some());
            for (_, stream) in streams {
                let hit = stream.with_unconsumed(|t, e| match matcher.find(t, e.is_some()) {
                    Outcome::Found(n) => Some(matched_line(t, n).to_string()),
                    Outcome::NotYet => None,
                });
                if let Some(t) = hit {
                    return Err(Fail::new(
                        Status::Failed,
                        format!(
                            "expected no {} on {label}, but received {}",
                            matcher.describe(),
                            quote(t.trim(), 200)
                        ),
                    ));
                }
            }
            if all_ended {
                return Ok(());
            }
            let quiet = tokio::time::timeout_at(patience.deadline().into(), any_change(&mut rxs))
                .await
                .is_err();
            let seen = streams.iter().any(|(_, s)| {
                s.with_unconsumed(|t, e| matcher.find(t, e.is_some())) != Outcome::NotYet
            });
            if quiet && patience.expired() && !seen {
                return Ok(());
            }
        }
    }
}

/// A stream a step watches, with a short name ("stdout", "stderr"; empty for a connection).
pub(super) type Watched = (&'static str, Arc<Stream>);

/// Resolves when any of the receivers sees a change; an error when one's sender is gone.
pub(super) async fn any_change(
    rxs: &mut [tokio::sync::watch::Receiver<u64>],
) -> Result<(), tokio::sync::watch::error::RecvError> {
    if rxs.is_empty() {
        return std::future::pending().await;
    }
    let changes = rxs.iter_mut().map(|r| Box::pin(r.changed()));
    futures_util::future::select_all(changes).await.0
}

/// "; received …" describing the unconsumed text of `streams` (naming each stream when there
/// are several).
pub(super) fn received(streams: &[Watched], matcher: &Matcher) -> String {
    let mut parts = Vec::new();
    let mut diags = Vec::new();
    for (name, stream) in streams {
        stream.with_unconsumed(|t, e| {
            if !t.trim().is_empty() {
                let on = if streams.len() > 1 {
                    format!(" on {name}")
                } else {
                    String::new()
                };
                parts.push(format!("{}{on}", quote(t, 200)));
            }
            diags.extend(matcher.differences(t, e.is_some()));
            if let Some(d) = matcher.diagnose(t, e.is_some()) {
                diags.push(d);
            }
        });
        // Matching text among what an earlier expectation already passed over: it came, but
        // out of order. Only for specific expectations (a one-field JSON object such as
        // `status = "ok"` matches any earlier confirmation).
        let specific = match matcher {
            Matcher::Contains(_) | Matcher::Exact(_) => true,
            Matcher::Json(preds) => preds.len() >= 2,
            // A timestamp is judged against the clock when its line arrives: an earlier line
            // is not judged again.
            Matcher::Any | Matcher::Regex(_) | Matcher::Timestamped(..) => false,
        };
        if specific {
            let all = stream.all_text();
            let unconsumed = stream.with_unconsumed(|t, _| t.len());
            let earlier = &all[..all.floor_char_boundary(all.len().saturating_sub(unconsumed))];
            if matcher.find(earlier, true) != Outcome::NotYet {
                diags.push(
                    "a matching message had arrived earlier, before what the previous expectation on this stream matched: out of order (or expected twice and sent once)"
                        .to_string(),
                );
            }
        }
    }
    let mut s = if parts.is_empty() {
        "; nothing arrived".to_string()
    } else {
        format!("; received {}", parts.join(" and "))
    };
    if !diags.is_empty() {
        s.push_str(&format!(" ({})", diags.join("; ")));
    }
    s
}

/// The line of `text` in which a match ending at byte `end` ends (at most its last 200 bytes,
/// on a character boundary).
pub(super) fn matched_line(text: &str, end: usize) -> &str {
    let line_end = text[end..].find('\n').map_or(text.len(), |k| end + k);
    let line_start = text[..end]
        .trim_end_matches('\n')
        .rfind('\n')
        .map_or(0, |k| k + 1);
    let start = line_start.max(line_end.saturating_sub(200));
    text[text.ceil_char_boundary(start)..line_end].trim_end_matches('\n')
}

pub(super) fn truncation_hint(diag: &str) -> String {
    if diag.starts_with("only the first") {
        format!(
            "{diag}: a single recv() call does not read a whole message; keep reading until the newline"
        )
    } else {
        diag.to_string()
    }
}
