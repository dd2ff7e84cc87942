//! The datagram steps: `udp_socket`, `send_datagram`, `expect_datagram` and
//! `expect_no_datagram`, for labs over UDP (no connection, no acknowledgment).
//!
//! Guarantees: each datagram is matched on its own, whole (never joined with the next one); in a
//! server scenario only a datagram from the student's server's address counts as its answer (a
//! matching one from elsewhere is named in the failure); a wait ends at its deadline or as soon as
//! the watched process has died and every datagram it sent has been read; a failure says what
//! did arrive: nothing, a datagram cut short (a receive buffer smaller than the datagram), a
//! datagram from another address, or the expected datagram on another of the grader's sockets
//! (an answer sent to the wrong client).

use super::*;
use crate::net::datagram::{Datagram, DatagramSocket};

/// The hint of a datagram that came back cut short.
const TRUNCATED_HINT: &str = "a datagram larger than the receive buffer is cut short and the rest is lost: receive with a buffer of 65535 bytes (recvfrom(65535)), not 1024";
/// The hint of an answer that went to another client.
const WRONG_ADDRESS_HINT: &str = "send each answer to the address recvfrom() returned with that datagram, not to an address saved earlier or a fixed one";
/// The hint of an answer sent from another socket than the one the request arrived on.
const OTHER_SOCKET_HINT: &str =
    "answer from the socket the datagram arrived on (the server's bound socket), with sendto()";

impl<'a> Run<'a> {
    /// Runs one datagram step (top level or inside `repeat`).
    pub(super) async fn datagram_step(&mut self, local: &Local, step: &DatagramStep) -> StepResult {
        let spec_err = |m: String| Fail::new(Status::InfraError, format!("spec error: {m}"));
        match step {
            DatagramStep::UdpSocket { sock } => {
                let infra = |e: std::io::Error| {
                    Fail::new(
                        Status::InfraError,
                        format!("cannot open the grader's UDP socket {sock}: {e}"),
                    )
                };
                let s = self.net.udp_bind().map_err(infra)?;
                let d =
                    DatagramSocket::new(sock.clone(), s, self.transcript.clone()).map_err(infra)?;
                if self.sc.role == crate::spec::Role::Client && self.listener_port.is_none() {
                    // The first UDP socket of a client scenario plays the server.
                    self.listener_port = Some(d.local.port());
                    self.transcript.push(
                        sock,
                        Dir::Note,
                        format!("the grader's UDP server on {}", d.local),
                    );
                } else {
                    self.transcript
                        .push(sock, Dir::Note, format!("bound to {}", d.local));
                }
                self.udp.insert(sock.clone(), d);
                Ok(())
            }
            DatagramStep::SendDatagram { sock, .. } => {
                let bytes = self.body_bytes(local, step)?;
                let d = self
                    .udp
                    .get(sock)
                    .ok_or_else(|| spec_err(format!("UDP socket {sock:?} is not open")))?;
                let to = match self.sc.role {
                    crate::spec::Role::Server => self
                        .server_addr
                        .ok_or_else(|| spec_err("`send_datagram` before `start_server`".into()))?,
                    crate::spec::Role::Client => d.peer.ok_or_else(|| {
                        spec_err(format!(
                            "`send_datagram` on {sock} before an `expect_datagram` took a datagram from the client"
                        ))
                    })?,
                };
                if let Err(e) = d.send_to(&bytes, to).await {
                    let msg = format!("could not send a datagram from {sock} to {to}: {e}");
                    return Err(self.attribute(msg, Status::Failed).await);
                }
                Ok(())
            }
            DatagramStep::ExpectDatagram { on, within, .. } => {
                let matcher = self.datagram_matcher(local, step)?;
                let within = self.within(within);
                self.expect_datagram(on, matcher.as_ref(), within).await
            }
            DatagramStep::ExpectNoDatagram {
                on,
                contains,
                window,
                ..
            } => {
                let needle = match contains {
                    Some(c) => Some(self.expand(local, c)?),
                    None => None,
                };
                self.expect_no_datagram(on, needle.as_deref(), window.0)
                    .await
            }
        }
    }

    /// The bytes of a `send_datagram` step, placeholders expanded.
    pub(super) fn body_bytes(&self, local: &Local, step: &DatagramStep) -> Result<Vec<u8>, Fail> {
        Ok(match step.send_body() {
            Some(SendBody::Text(t)) => self.expand(local, &t)?.into_bytes(),
            Some(SendBody::Line(t)) => {
                let mut b = self.expand(local, &t)?.into_bytes();
                b.push(b'\n');
                b
            }
            Some(SendBody::Hex(h)) => super::steps::decode_hex(&h)
                .ok_or_else(|| Fail::new(Status::InfraError, "spec error: bad hex"))?,
            // `random` is a `send` field only.
            Some(SendBody::Random(_)) | None => {
                return Err(Fail::new(Status::InfraError, "spec error: bad send"));
            }
        })
    }

    /// The matcher of an `expect_datagram` (`None`: any datagram, even an empty one).
    fn datagram_matcher(
        &self,
        local: &Local,
        step: &DatagramStep,
    ) -> Result<Option<Matcher>, Fail> {
        let spec_err = |m: String| Fail::new(Status::InfraError, format!("spec error: {m}"));
        Ok(match step.expectation() {
            Some(Expectation::Any) => None,
            Some(Expectation::Contains(t)) => Some(Matcher::Contains(self.expand(local, &t)?)),
            Some(Expectation::Exact(t)) => Some(Matcher::Exact(self.expand(local, &t)?)),
            Some(Expectation::Regex(r)) => Some(Matcher::Regex(
                Regex::new(&r).map_err(|e| spec_err(e.to_string()))?,
            )),
            Some(Expectation::Json(_)) | None => {
                return Err(spec_err("bad expect_datagram".into()));
            }
        })
    }

    /// Whether `d` came from where an answer must come from: the student's server in a server
    /// scenario (its port, on loopback), anyone in a client scenario.
    fn sent_by_expected(&self, d: &Datagram) -> bool {
        match (self.sc.role, self.server_addr) {
            (crate::spec::Role::Server, Some(addr)) => {
                d.from.port() == addr.port()
                    && (d.from.ip().is_loopback() || d.from.ip() == addr.ip())
            }
            _ => true,
        }
    }

    /// Waits for a datagram on `on` matching `matcher` from the expected address.
    async fn expect_datagram(
        &mut self,
        on: &str,
        matcher: Option<&Matcher>,
        within: Duration,
    ) -> StepResult {
        let (inbox, local_addr) = match self.udp.get(on) {
            Some(d) => (d.inbox.clone(), d.local),
            None => {
                return Err(Fail::new(
                    Status::InfraError,
                    format!("spec error: UDP socket {on:?} is not open"),
                ));
            }
        };
        let mut rx = inbox.subscribe();
        let mut exit_rx = self.watched().map(|p| p.exit_watch());
        let patience = self.patience(within);
        let mut settled = false;
        loop {
            let cursor = self.udp.get(on).map_or(0, |d| d.cursor);
            let found = inbox
                .since(cursor)
                .into_iter()
                .enumerate()
                .find(|(_, d)| self.sent_by_expected(d) && datagram_matches(matcher, d));
            if let Some((k, d)) = found {
                if let Some(s) = self.udp.get_mut(on) {
                    s.cursor = cursor + k + 1;
                    s.peer = Some(d.from);
                }
                return Ok(());
            }
            let exited = exit_rx.as_ref().is_some_and(|r| r.borrow().is_some());
            if exited && settled {
                let (msg, hint) = self.no_datagram(on, matcher, None);
                let fail = self.attribute(msg, Status::Failed).await;
                return Err(fail.hint(hint));
            }
            if exited {
                // What it sent before it died is in our socket's receive queue: wait until our
                // reader has taken all of it.
                settled = true;
                let net = &self.net;
                let drained = || {
                    !net.udp_sockets()
                        .iter()
                        .any(|s| s.addr == local_addr && s.queued > 0)
                };
                process::poll_until(Instant::now() + SETTLE, drained).await;
                continue;
            }
            tokio::select! {
                biased;
                _ = rx.changed() => {}
                _ = async { match exit_rx.as_mut() { Some(r) => { let _ = r.changed().await; } None => std::future::pending::<()>().await } } => {}
                _ = patience.sleep() => {
                    if !patience.expired() {
                        continue;
                    }
                    let (msg, hint) = self.no_datagram(on, matcher, Some(patience.within()));
                    // A last look: a datagram may have come at the very end.
                    let cursor = self.udp.get(on).map_or(0, |d| d.cursor);
                    let late = inbox.since(cursor).iter().any(|d| self.sent_by_expected(d) && datagram_matches(matcher, d));
                    if late {
                        continue;
                    }
                    return Err(Fail::new(Status::TimedOut, msg).hint(hint));
                }
            }
        }
    }

    /// The failure of an `expect_datagram` that found nothing: what was expected and what
    /// arrived instead, with a hint when the cause is clear. `waited`: the deadline (None: the
    /// program ended).
    fn no_datagram(
        &self,
        on: &str,
        matcher: Option<&Matcher>,
        waited: Option<Duration>,
    ) -> (String, Option<String>) {
        let what = match matcher {
            None => "a datagram".to_string(),
            Some(Matcher::Exact(t)) => format!("the datagram {}", quote(t, 80)),
            Some(Matcher::Contains(t)) => format!("a datagram containing {}", quote(t, 80)),
            Some(Matcher::Regex(r)) => format!("a datagram matching /{}/", r.as_str()),
            Some(m) => format!("a datagram with {}", m.describe()),
        };
        let source = match (self.sc.role, self.server_addr) {
            (crate::spec::Role::Server, Some(a)) => format!(" from the server at {a}"),
            _ => String::new(),
        };
        let when = match waited {
            Some(w) => format!(" within {:.1}s", w.as_secs_f64()),
            None => String::new(),
        };
        let mut msg = format!("expected {what} on socket {on}{source}{when}");
        let mut hint = None;
        let Some(sock) = self.udp.get(on) else {
            return (msg, hint);
        };
        let pending = sock.inbox.since(sock.cursor);
        let (ours, others): (Vec<&Datagram>, Vec<&Datagram>) =
            pending.iter().partition(|d| self.sent_by_expected(d));
        if let Some(d) = others.iter().find(|d| datagram_matches(matcher, d)) {
            msg.push_str(&format!(
                ", but it came from {}, not from the server's address",
                d.from
            ));
            hint = Some(OTHER_SOCKET_HINT.to_string());
        } else if let Some(d) = ours.last() {
            let n = ours.len();
            msg.push_str(&format!(
                "; {} that did not match arrived, the last: [{} bytes] {}",
                if n == 1 {
                    "one datagram".to_string()
                } else {
                    format!("{n} datagrams")
                },
                d.bytes.len(),
                quote(&d.text(), 120)
            ));
            if let Some(Matcher::Exact(want) | Matcher::Contains(want)) = matcher {
                let want = want.trim();
                if want.len() >= 64
                    && let Some(cut) = ours.iter().find(|d| {
                        let t = d.text();
                        let t = t.trim();
                        !t.is_empty() && t.len() < want.len() && want.starts_with(t)
                    })
                {
                    msg.push_str(&format!(
                        ": the {}-byte datagram came back as its first {} bytes",
                        want.len(),
                        cut.bytes.len()
                    ));
                    hint = Some(TRUNCATED_HINT.to_string());
                }
            }
        } else {
            msg.push_str(", but nothing arrived");
        }
        // The answer went to another of the grader's sockets (another client).
        let elsewhere: Vec<&str> = self
            .udp
            .iter()
            .filter(|(name, _)| name.as_str() != on)
            .filter(|(_, s)| {
                s.inbox
                    .since(0)
                    .iter()
                    .any(|d| self.sent_by_expected(d) && datagram_matches(matcher, d))
            })
            .map(|(name, _)| name.as_str())
            .collect();
        if let Some(first) = elsewhere.first() {
            msg.push_str(&format!("; it arrived on socket {first} instead"));
            hint = Some(WRONG_ADDRESS_HINT.to_string());
        }
        (msg, hint)
    }

    /// Passes if no datagram (containing `needle`, when given) is waiting on `on` or arrives
    /// during `window`. Takes nothing.
    async fn expect_no_datagram(
        &self,
        on: &str,
        needle: Option<&str>,
        window: Duration,
    ) -> StepResult {
        let Some(sock) = self.udp.get(on) else {
            return Err(Fail::new(
                Status::InfraError,
                format!("spec error: UDP socket {on:?} is not open"),
            ));
        };
        let mut rx = sock.inbox.subscribe();
        // Under CPU starvation the window grows too, so a late datagram is still caught.
        let patience = self.patience(window);
        loop {
            let hit = sock
                .inbox
                .since(sock.cursor)
                .into_iter()
                .find(|d| needle.is_none_or(|n| d.text().contains(n)));
            if let Some(d) = hit {
                let what = match needle {
                    Some(n) => format!("no datagram containing {}", quote(n, 80)),
                    None => "no datagram".to_string(),
                };
                return Err(Fail::new(
                    Status::Failed,
                    format!(
                        "expected {what} on socket {on} for {:.1}s, but received [{} bytes from {}] {}",
                        window.as_secs_f64(),
                        d.bytes.len(),
                        d.from,
                        quote(&d.text(), 160)
                    ),
                ));
            }
            if tokio::time::timeout_at(patience.deadline().into(), rx.changed())
                .await
                .is_err()
                && patience.expired()
            {
                let late = sock
                    .inbox
                    .since(sock.cursor)
                    .iter()
                    .any(|d| needle.is_none_or(|n| d.text().contains(n)));
                if !late {
                    return Ok(());
                }
            }
        }
    }
}

/// Whether one datagram, on its own, satisfies the expectation (`None`: any datagram).
fn datagram_matches(matcher: Option<&Matcher>, d: &Datagram) -> bool {
    let text = d.text();
    match matcher {
        None => true,
        // The whole datagram, not a line of it.
        Some(Matcher::Exact(want)) => text.trim() == want.trim(),
        Some(m) => matches!(m.find(&text, true), Outcome::Found(_)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dgram(text: &str) -> Datagram {
        Datagram {
            from: "127.0.0.1:5000".parse().unwrap(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_datagram_is_matched_whole_and_on_its_own() {
        let exact = Matcher::Exact("hello".into());
        assert!(datagram_matches(Some(&exact), &dgram("hello\n")));
        assert!(!datagram_matches(Some(&exact), &dgram("x\nhello")));
        assert!(!datagram_matches(Some(&exact), &dgram("hell")));
        let contains = Matcher::Contains("bob: hi".into());
        assert!(datagram_matches(Some(&contains), &dgram("bob: hi there")));
        assert!(datagram_matches(None, &dgram("")));
    }
}
