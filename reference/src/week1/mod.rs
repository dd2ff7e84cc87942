//! The week-1 extensions of the acknowledgment lab (tasks 12–15): the Task 1 conversation
//! (acknowledge the connection, answer every line, `exit` closes) grown one step at a time.
//!
//! | task | extension | server | client |
//! |------|-----------|--------|--------|
//! | 12 | A: sequential clients | one client at a time, then the next, forever | Task 1 style |
//! | 13 | B: validation | as A, plus `ERROR: Empty message` / `ERROR: Message too long` (over 100 characters), then closing that connection | as A |
//! | 14 | C: client timeout | as A | gives up on a silent server after [`client::REPLY_TIMEOUT`] |
//! | 15 | D: concurrent, timestamped | every client at once, replies `[ACK @HH:MM:SS] text`, log lines `[HH:MM:SS] ...` on stdout | as C |
//!
//! The conversation is one function ([`respond`]) of the [`Rules`] a task adds; the servers
//! differ only in whether they accept one client at a time ([`server::run_sequential`]) or
//! all at once ([`server::run_concurrent`]). One client ([`client::run`]) serves every task:
//! the timeout of C costs a correct server nothing.
//!
//! Guarantees: as the other model solutions (no input panics, a client's failure ends only its
//! own conversation, SIGINT/SIGTERM end the program with status 0); a timestamp is read from
//! the clock for every reply and log line, never cached.

pub mod client;
pub mod server;

use crate::clock;
use crate::echo::is_exit;
use crate::lines::Line;

/// The acknowledgment sent on every new connection.
pub const GREETING: &str = "ACK: connected to the server";
/// The line sent before closing on `exit`.
pub const GOODBYE: &str = "ACK: goodbye";
/// The error for an empty message (task 13).
pub const EMPTY: &str = "ERROR: Empty message";
/// The error for a message over [`MAX_CHARS`] characters (task 13).
pub const TOO_LONG: &str = "ERROR: Message too long";
/// The longest message accepted under validation, in characters (exactly 100 is fine).
pub const MAX_CHARS: usize = 100;

/// What a task adds to the conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// Refuse empty and over-long messages, then close (B).
    pub validate: bool,
    /// Reply `[ACK @HH:MM:SS] text` (D).
    pub timestamps: bool,
}

/// What the server does with one received line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Send this line and keep reading.
    Reply(String),
    /// Send nothing and keep reading.
    Nothing,
    /// Send this line, then close the connection.
    CloseWith(String),
}

/// The server's response to one line under `rules`.
pub fn respond(line: &Line, rules: Rules) -> Response {
    let text = match line {
        Line::TooLong if rules.validate => return Response::CloseWith(TOO_LONG.into()),
        Line::TooLong => return Response::Reply("ERROR: line too long".into()),
        Line::Text(text) => text,
    };
    if rules.validate {
        if text.is_empty() {
            return Response::CloseWith(EMPTY.into());
        }
        if text.chars().count() > MAX_CHARS {
            return Response::CloseWith(TOO_LONG.into());
        }
    } else if text.is_empty() {
        return Response::Nothing;
    }
    if is_exit(text) {
        return Response::CloseWith(GOODBYE.into());
    }
    if rules.timestamps {
        Response::Reply(format!("[ACK @{}] {text}", clock::hms()))
    } else {
        Response::Reply(format!("ACK: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Line {
        Line::Text(s.into())
    }

    #[test]
    fn validation_refuses_empty_and_over_100_characters() {
        let b = Rules {
            validate: true,
            timestamps: false,
        };
        assert_eq!(respond(&text(""), b), Response::CloseWith(EMPTY.into()));
        let hundred = "é".repeat(100);
        assert_eq!(
            respond(&text(&hundred), b),
            Response::Reply(format!("ACK: {hundred}"))
        );
        assert_eq!(
            respond(&text(&"x".repeat(101)), b),
            Response::CloseWith(TOO_LONG.into())
        );
        assert_eq!(respond(&text(""), Rules::default()), Response::Nothing);
        assert_eq!(
            respond(&text("EXIT"), b),
            Response::CloseWith(GOODBYE.into())
        );
    }

    #[test]
    fn timestamped_replies() {
        let d = Rules {
            validate: false,
            timestamps: true,
        };
        let Response::Reply(r) = respond(&text("hi"), d) else {
            panic!()
        };
        assert!(r.starts_with("[ACK @") && r.ends_with("] hi"), "{r}");
    }
}
