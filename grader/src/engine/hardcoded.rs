//! Hard-coded ports within one grading: what its scenarios learned about a port the submission
//! uses instead of its assigned one, and, on the host network, running the scenarios that start
//! its server one at a time once it is known to hard-code a port (copies running at once would
//! fight over that port and die of "Address already in use").
//!
//! Guarantees: a submission that reads its port runs exactly as before (all scenarios at once;
//! a scenario only takes a shared guard that nothing waits on); a scenario whose server could
//! not listen because another scenario of the same grading held the hard-coded port is reported
//! as *collided* and run again, alone, never charged; the notes about a hard-coded port appear
//! once per grading, as an event when the first scenario that saw it finishes
//! ([`PortWatch::announce`]) and in the report under one scenario (see [`place_notes`]).

use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::{Notify, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::note::Note;
use crate::verdict::ScenarioOutcome;

/// The port a student program used instead of its assigned one, as one scenario saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PortSeen {
    /// The server listened on `actual`, not on `assigned`.
    Server {
        /// The port it was given.
        assigned: u16,
        /// The port its own process listened on.
        actual: u16,
        /// The scenario is about the port (`assigned_port = true`) and failed for it.
        strict: bool,
    },
    /// The client dialled `dialled` (and was redirected to the grader's listener on
    /// `assigned`).
    Client {
        /// The grader's listener, the port the client was given.
        assigned: u16,
        /// The address it dialled.
        dialled: std::net::SocketAddr,
        /// The scenario is about the port (`assigned_port = true`) and failed for it.
        strict: bool,
    },
}

impl PortSeen {
    fn is_server(&self) -> bool {
        matches!(self, PortSeen::Server { .. })
    }
    fn strict(&self) -> bool {
        match self {
            PortSeen::Server { strict, .. } | PortSeen::Client { strict, .. } => *strict,
        }
    }
    /// The note shown once per grading.
    pub(crate) fn note(&self, host: bool) -> Note {
        match self {
            PortSeen::Server {
                assigned, actual, ..
            } => Note::ServerOnOtherPort {
                assigned: *assigned,
                actual: *actual,
                one_at_a_time: host,
            },
            PortSeen::Client {
                assigned, dialled, ..
            } => Note::ClientDialledOtherPort {
                assigned: *assigned,
                dialled: dialled.to_string(),
            },
        }
    }
}

/// The state one grading shares between its scenarios.
#[derive(Debug, Default)]
pub(crate) struct PortWatch {
    state: Mutex<State>,
    changed: Notify,
    serial: RwLock<()>,
}

#[derive(Debug, Default)]
struct State {
    /// The port the submission's server was seen listening on instead of its assigned one.
    server_port: Option<u16>,
    /// Scenarios (not run alone) whose `start_server` has not decided yet.
    starting: usize,
    /// Whether a port seen by the server, by the client, was announced (see [`PortWatch::announce`]).
    announced: [bool; 2],
}

/// A scenario's hold on the server port: shared while the submission is not known to
/// hard-code it, exclusive once it is.
#[derive(Debug)]
pub(crate) enum Turn<'a> {
    /// Runs alongside other scenarios.
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    /// Runs alone among the scenarios that start the server.
    Alone(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

impl Turn<'_> {
    /// Whether the scenario runs alone.
    pub(crate) fn alone(&self) -> bool {
        matches!(self, Turn::Alone(_))
    }
}

impl PortWatch {
    /// The port the server was seen listening on instead of its assigned one, if any.
    pub(crate) fn server_port(&self) -> Option<u16> {
        self.lock().server_port
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A turn for a scenario that starts the server on the host network: alone once a
    /// hard-coded port is known (or when `alone` is asked for), else shared.
    pub(crate) async fn turn(&self, alone: bool) -> Turn<'_> {
        if alone || self.server_port().is_some() {
            Turn::Alone(self.serial.write().await)
        } else {
            Turn::Shared(self.serial.read().await)
        }
    }

    /// Records that a server listened on `port` instead of its assigned one.
    pub(crate) fn saw_server_port(&self, port: u16) {
        self.lock().server_port.get_or_insert(port);
        self.changed.notify_waiters();
    }

    /// Whether `seen` is the first of its kind (server, client) to be announced in this grading
    /// (the live note of [`crate::events::Event::ScenarioNote`]); true once per kind.
    pub(crate) fn announce(&self, seen: &PortSeen) -> bool {
        let kind = usize::from(!seen.is_server());
        !std::mem::replace(&mut self.lock().announced[kind], true)
    }

    /// Marks a `start_server` as undecided until the returned guard is dropped.
    pub(crate) fn starting(&self) -> Starting<'_> {
        self.lock().starting += 1;
        Starting(self)
    }

    /// After a server failed to listen: waits (at most until `deadline`) until either another
    /// scenario has seen the hard-coded port, or no other `start_server` is still undecided;
    /// returns the port if it is known then.
    pub(crate) async fn settle(&self, deadline: Instant) -> Option<u16> {
        loop {
            let wake = self.changed.notified();
            {
                let s = self.lock();
                if s.server_port.is_some() || s.starting == 0 {
                    return s.server_port;
                }
            }
            if tokio::time::timeout_at(deadline.into(), wake)
                .await
                .is_err()
            {
                return self.server_port();
            }
        }
    }
}

/// An undecided `start_server` (see [`PortWatch::starting`]).
#[derive(Debug)]
pub(crate) struct Starting<'a>(&'a PortWatch);

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        {
            let mut s = self.0.lock();
            s.starting = s.starting.saturating_sub(1);
        }
        self.0.changed.notify_waiters();
    }
}

/// Puts each kind of port note (server, client) under one scenario of the grading: the first,
/// in spec order, that is about the port and failed for it, else the first that saw it.
pub(crate) fn place_notes(outcomes: &mut [ScenarioOutcome], seen: &[Vec<PortSeen>], host: bool) {
    for server in [true, false] {
        let of_kind = |i: usize| seen[i].iter().find(|s| s.is_server() == server);
        let at = (0..seen.len())
            .find(|&i| of_kind(i).is_some_and(PortSeen::strict))
            .or_else(|| (0..seen.len()).find(|&i| of_kind(i).is_some()));
        if let Some(i) = at
            && let Some(s) = of_kind(i)
        {
            outcomes[i].notes.insert(0, s.note(host));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Role;
    use crate::verdict::Status;
    use std::time::Duration;

    fn outcome(name: &str) -> ScenarioOutcome {
        ScenarioOutcome {
            name: name.into(),
            role: Role::Server,
            status: Status::Passed,
            points: 1.0,
            max_points: 1.0,
            duration_ms: 0,
            description: None,
            message: String::new(),
            hint: None,
            failed_step: None,
            transcript: Vec::new(),
            stderr_tail: None,
            notes: vec![Note::text("other")],
        }
    }

    #[test]
    fn one_note_per_kind_under_the_scenario_about_the_port() {
        let server = |strict| PortSeen::Server {
            assigned: 40000,
            actual: 12345,
            strict,
        };
        let client = PortSeen::Client {
            assigned: 40001,
            dialled: "127.0.0.1:5000".parse().unwrap(),
            strict: false,
        };
        let mut outcomes: Vec<_> = ["a", "b", "c", "d"].map(outcome).into();
        let seen = vec![
            vec![],
            vec![server(false), client.clone()],
            vec![server(true)],
            vec![client],
        ];
        place_notes(&mut outcomes, &seen, true);
        let notes: Vec<usize> = outcomes.iter().map(|o| o.notes.len() - 1).collect();
        // The server note goes under the scenario about the port, the client note (no such
        // scenario) under the first that saw it.
        assert_eq!(notes, [0, 1, 1, 0]);
        let text = |i: usize, j: usize| outcomes[i].notes[j].to_string();
        assert!(text(2, 0).contains("port 12345, not the assigned port 40000"));
        assert!(text(2, 0).contains("one scenario at a time"));
        assert!(text(1, 0).starts_with("the client dialled 127.0.0.1:5000"));
        assert_eq!(outcomes[1].notes[1], Note::text("other"));
    }

    #[tokio::test]
    async fn a_failed_copy_waits_for_the_others_to_decide() {
        let watch = PortWatch::default();
        // Nobody else is starting: nothing to wait for, no hard-coded port.
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(watch.settle(soon).await, None);
        // Another copy is still starting; it then sees the port.
        let other = watch.starting();
        let decide = async {
            tokio::task::yield_now().await;
            watch.saw_server_port(12345);
            drop(other);
        };
        let (seen, ()) = tokio::join!(watch.settle(soon), decide);
        assert_eq!(seen, Some(12345));
        // Once the port is known, turns are taken one at a time.
        assert!(watch.turn(false).await.alone());
    }
}
