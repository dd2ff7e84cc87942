//! Diagnoses that name the real cause of a failed wait, from evidence the kernel and the
//! conversation give, not from the scenario's usual suspect:
//! - a **small `listen()` backlog**: connections of a `parallel` group that opens many at once
//!   were not accepted in time while the server's accept queue is empty (it accepts promptly)
//!   and its backlog (read from the socket table) is below the number of clients;
//! - **buffered stdin under `select()`**: a typed line never reached the server although the
//!   client has read everything typed from its stdin pipe and every thread of it waits in
//!   select()/poll()/epoll (the rest of the lines sit in a user-space buffer such as Python's
//!   `sys.stdin`), as opposed to a client blocked in a socket read (lockstep);
//! - **slowness, not crosstalk**: an awaited reply inside `parallel` that arrives late, on the
//!   right connection, within two more deadlines: the verdict says how late.
//!
//! Guarantees: a diagnosis never changes a verdict's status, only its message and hint; it is
//! given only when its evidence was observed, otherwise the scenario's own hint stands; the
//! extra wait for a late reply is bounded by the step's own (load-compensated) deadline.

use super::*;

/// Hint of a reply that reached the right client late.
pub(super) const SLOW_HINT: &str = "the reply went to the right client, but late: something makes the server slow when several clients talk at once (slow work or a sleep while holding a lock shared by all clients, or clients served in turn); do slow work outside shared locks and answer each line at once";

/// Hint of typed lines read from stdin but not sent.
pub(super) const BUFFERED_STDIN_HINT: &str = "the client read the typed lines from stdin but sent only one per wake-up: select()/poll() watch the file descriptor, not the lines already pulled into a buffered file (Python's sys.stdin.readline(), input(), a BufferedReader); read with os.read(sys.stdin.fileno(), 4096) and send every complete line, or read the keyboard in a thread of its own";

/// Hint of a `listen()` backlog too small for the clients that connect at once.
pub(super) const BACKLOG_HINT: &str = "the listen() backlog is small: while many clients connect at once, the kernel drops connection requests beyond it and the clients retry only after 1 s, 3 s, 7 s; use listen(128) or more (or listen() with no argument in Python)";

/// How many more deadlines a late reply inside `parallel` is waited for, to tell slowness
/// from a reply that never comes.
const LATE_GRACE: u32 = 2;

/// How long a server's accept queue may take to be seen empty for it to count as accepting.
const ACCEPTING_WITHIN: Duration = Duration::from_millis(300);

/// The kernel's wait channels of a thread blocked in select(), poll() or epoll.
const MULTIPLEX_WAITS: [&str; 5] = [
    "poll_schedule_timeout",
    "do_select",
    "do_sys_poll",
    "do_epoll_wait",
    "ep_poll",
];

impl<'a> Run<'a> {
    /// Records a line typed on the client's stdin (for [`Self::stdin_diagnosis`]).
    pub(super) fn typed(&self, line: &str) {
        if let Ok(mut t) = self.typed.lock() {
            t.push(line.to_string());
        }
    }

    /// When `matcher` awaits a line that was typed on the client's stdin and `stream` (the
    /// connection it should arrive on) lacks it, although the client has read all its stdin
    /// and waits in select()/poll()/epoll: a message part and the hint.
    pub(super) async fn stdin_diagnosis(
        &self,
        matcher: &Matcher,
        stream: &Stream,
    ) -> Option<(String, String)> {
        if matcher.is_any() || self.sc.role != crate::spec::Role::Client {
            return None;
        }
        let typed: Vec<String> = self.typed.lock().ok()?.clone();
        if !typed
            .iter()
            .any(|l| matches!(matcher.find(&format!("{l}\n"), true), Outcome::Found(_)))
        {
            return None;
        }
        let client = self.client.as_ref()?;
        if client.exit_info().is_some() || client.stdin_unread().await != Some(0) {
            return None;
        }
        let waits = procfs::thread_waits(&client.member_list().pids());
        let multiplexing = !waits.is_empty()
            && waits
                .iter()
                .all(|w| MULTIPLEX_WAITS.iter().any(|m| w.contains(m)));
        if !multiplexing {
            return None;
        }
        let received = stream.all_text();
        let sent = typed
            .iter()
            .filter(|l| !l.trim().is_empty() && received.contains(l.trim()))
            .count();
        let lines = typed.iter().filter(|l| !l.trim().is_empty()).count();
        Some((
            format!(
                "; the client has read all {lines} typed lines from its stdin and waits in select()/poll(), but sent only {sent} of them"
            ),
            BUFFERED_STDIN_HINT.to_string(),
        ))
    }

    /// After an expectation on `stream` timed out at `started` + its deadline: waits up to
    /// [`LATE_GRACE`] more deadlines for the match; if it comes, a message part saying how late
    /// it was.
    pub(super) async fn late_arrival(
        &self,
        stream: &Arc<Stream>,
        label: &str,
        matcher: &Matcher,
        within: Duration,
        started: Instant,
    ) -> Option<String> {
        if matcher.is_any() {
            return None;
        }
        let grace = self.patience(within * LATE_GRACE);
        self.expect_on(&[("", stream.clone())], label, matcher, grace)
            .await
            .ok()?;
        let after = started.elapsed();
        let late = after.saturating_sub(within);
        Some(format!(
            "; it arrived {:.1}s late (after {:.1}s), on the right connection: the server is slow, not crossing replies",
            late.as_secs_f64(),
            after.as_secs_f64()
        ))
    }

    /// When a `parallel` group that opens connections failed and the server's listener has a
    /// backlog below the number of copies while it accepts promptly (its accept queue is seen
    /// empty within [`ACCEPTING_WITHIN`]; a server that stopped accepting keeps it full): the
    /// message and hint that name the backlog. `accepted` copies passed.
    pub(super) async fn backlog_diagnosis(
        &self,
        steps: &[CopyStep],
        count: u32,
        accepted: u32,
    ) -> Option<(String, String)> {
        if !steps
            .iter()
            .any(|s| matches!(s, CopyStep::Conn(ConnStep::Connect { .. })))
        {
            return None;
        }
        let port = self.server_addr?.port();
        let listener = || {
            self.net
                .listeners()
                .into_iter()
                .find(|l| l.addr.port() == port)
        };
        let backlog = listener()?.backlog?;
        if backlog >= count {
            return None;
        }
        let until = Instant::now() + ACCEPTING_WITHIN;
        let mut drained = || listener().is_some_and(|l| l.queued == 0);
        if !process::poll_until(until, &mut drained).await {
            return None;
        }
        Some((
            format!(
                "only {accepted} of {count} connections were accepted in time: the server's listen() backlog is {backlog} and it accepts promptly (its accept queue empties), so the kernel dropped the connection requests that found the queue full"
            ),
            BACKLOG_HINT.to_string(),
        ))
    }
}
