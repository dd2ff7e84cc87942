//! The client's stdin before the scenario's own steps: the submission's `stdin_prelude` lines,
//! typed right after the client starts (clients that ask for a host or a name first), and the
//! hint for a client that waits on such a question when no prelude answers it, or that gave up
//! for want of a terminal on stdin.
//!
//! Guarantees: prelude lines are typed in order, with `{host}`, `{port}` (the port the client
//! is pointed at: the grader's listener or the refusing port) and `{name}` (the scenario's
//! name for the client, else [`launch::DEFAULT_CLIENT_NAME`]) substituted, and appear in the
//! transcript as typed lines; a client that ends before reading them is not failed for that
//! here (the scenario's next steps see it end). The hint is given only when the client printed
//! something and one of its threads is blocked reading stdin (fd 0) at the moment the wait for
//! its connection failed.

use super::*;
use crate::launch;

impl Run<'_> {
    /// Types the submission's `stdin_prelude` on the client's stdin (nothing without one).
    pub(super) async fn type_prelude(&mut self, name: Option<&str>) -> StepResult {
        if self.req.launch.stdin_prelude.is_empty() {
            return Ok(());
        }
        let port = match &self.refused {
            Some(r) => r.port,
            None => self.listener_port.unwrap_or(0),
        };
        let client = self.process(Process::Client)?;
        for line in &self.req.launch.stdin_prelude {
            let line = launch::prelude_line(line, HOST, port, name);
            self.transcript.push(
                "stdin",
                Dir::Sent,
                crate::transcript::printable(line.as_bytes()),
            );
            if let Err(e) = client.type_line(&line).await {
                self.transcript.push(
                    "grader",
                    Dir::Note,
                    format!("could not type the stdin prelude ({e})"),
                );
                break;
            }
        }
        Ok(())
    }

    /// A hint for a client that did not connect because it waits for an answer on stdin: it
    /// printed a prompt and is reading stdin now. `None` otherwise.
    pub(super) fn stdin_prompt_hint(&self) -> Option<String> {
        let client = self.client.as_ref()?;
        if client.exit_info().is_some() || !client.reads_stdin() {
            return None;
        }
        let out = client.stdout.all_text();
        let prompt = out.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
        let answered = if self.req.launch.stdin_prelude.is_empty() {
            "nothing answered it".to_string()
        } else {
            format!(
                "the {} line(s) of its stdin_prelude did not satisfy it",
                self.req.launch.stdin_prelude.len()
            )
        };
        Some(format!(
            "the client printed {} and is waiting for a line on stdin instead of connecting ({answered}): a client that asks for its host, name or port first needs the answers typed; the instructor gives them with stdin_prelude = [\"{{host}}\", \"{{name}}\"] in its classchat.toml (or --stdin-prelude), one line per question, in the order it asks",
            quote(prompt, 60)
        ))
    }

    /// A hint for a client that ended without connecting and said something about a console
    /// or terminal (Java's `System.console()` is null on a pipe; `isatty` checks): it may need
    /// `client_stdin = "terminal"`. `None` when its stdin already was one.
    pub(super) fn terminal_hint(&self) -> Option<String> {
        if self.req.launch.client_stdin == launch::ClientStdin::Terminal {
            return None;
        }
        let client = self.client.as_ref()?;
        let said =
            format!("{}\n{}", client.stderr.all_text(), client.stdout.all_text()).to_lowercase();
        ["console", "terminal", "isatty", " tty", "a tty"]
            .iter()
            .any(|w| said.contains(w))
            .then(|| {
                "the client ended before connecting and mentions a console or terminal: its stdin was a pipe; a client that needs a terminal (Java's System.console() is null on a pipe, a check of isatty()) runs with client_stdin = \"terminal\" in its classchat.toml (or --client-stdin terminal)".to_string()
            })
    }
}
