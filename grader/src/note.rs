//! Typed remarks on a scenario or a whole grading: things that do not change a verdict but that
//! a reader should know (an attempt retried for the grader's own reasons, a program graded on
//! another port than its assigned one, a check the host's isolation cannot make, roles left out).
//!
//! Guarantees: a [`Note`]'s `Display` text is the sentence reports show (console, JUnit, exports),
//! the same text the engine wrote before notes were typed; the record stores each note as a
//! table tagged by its `kind` (see [`deserialize_notes`]), so a reader of a record knows a
//! retry note ([`Note::is_retry`]) from its kind, never from its text. Records written before
//! notes were typed (`schema_version = 1`) hold plain strings: they load as [`Note::Text`], and
//! only for those [`Note::is_retry`] recognises the retry sentence the engine then wrote, so
//! their retry notes are withheld from students exactly as before.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::spec::Role;

/// The note that replaces the notes of infrastructure retries where students may not see the
/// scenario's messages (`summary` and `none` feedback, hidden scenarios).
pub const RETRIED_NOTE: &str = "an attempt was retried for the grader's own reasons (not charged)";

/// A remark on a scenario ([`crate::verdict::ScenarioOutcome::notes`]) or on a whole grading
/// ([`crate::verdict::GradeReport::notes`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// An attempt failed for the grader's own reasons (`message`) and the scenario was run
    /// again, not charged. The message may quote the spec's expected values: students see it
    /// only where they see the scenario's messages (see [`crate::audience`]).
    Retried {
        /// Which attempt failed (1-based).
        attempt: u32,
        /// The infrastructure error's message.
        message: String,
    },
    /// What students see of retry notes where they may not see the messages ([`RETRIED_NOTE`]).
    RetriedWithheld,
    /// The server listened on another port than its assigned one and was graded there.
    ServerOnOtherPort {
        /// The port it was given.
        assigned: u16,
        /// The port it listened on.
        actual: u16,
        /// On the host: its scenarios took turns so that copies could not collide.
        one_at_a_time: bool,
    },
    /// The client dialled another port than its assigned one and was redirected.
    ClientDialledOtherPort {
        /// The grader's listener, the port the client was given.
        assigned: u16,
        /// The address it dialled.
        dialled: String,
    },
    /// A process was killed at the memory limit without failing a step.
    MemoryLimit {
        /// Which role's process (as the console names it).
        role: String,
        /// The limit, human-readable.
        limit: String,
    },
    /// An HTTP server closed the connection after `Connection: close`; the rest was skipped.
    HttpConnectionClosed,
    /// A process exited with status 0 once its client had left; the rest was skipped.
    ExitedAfterClient {
        /// Which process.
        process: String,
    },
    /// A connection attempt was not checked: the host's isolation cannot count them.
    ConnectAttemptNotChecked {
        /// Which process.
        process: String,
    },
    /// Only some roles were graded (`roles`, `--role`): the others' scenarios were left out.
    RolesNotGraded {
        /// The roles graded.
        graded: Vec<Role>,
        /// The roles left out.
        left_out: Vec<Role>,
        /// How many scenarios were left out.
        scenarios: usize,
        /// Their points.
        points: f64,
    },
    /// A role's launch template has no `{port}`: the program must choose its port itself.
    TemplateWithoutPort {
        /// Which role.
        role: Role,
        /// The template as written.
        template: String,
    },
    /// Free text: a note of a record written before notes were typed.
    Text {
        /// The note as written.
        text: String,
    },
}

impl Note {
    /// Whether this is the record of a retried infrastructure error (its message is withheld
    /// wherever the scenario's messages are). For an untyped note of an old record, whether it
    /// reads as the retry sentence the engine wrote then.
    pub fn is_retry(&self) -> bool {
        match self {
            Note::Retried { .. } => true,
            Note::Text { text } => legacy_retry_text(text),
            _ => false,
        }
    }

    /// A free-text note.
    pub fn text(text: impl Into<String>) -> Self {
        Note::Text { text: text.into() }
    }
}

/// Whether an untyped note of an old record is the retry sentence the engine wrote before notes
/// were typed (`attempt N: infrastructure error: ... (retried, not charged)`).
fn legacy_retry_text(note: &str) -> bool {
    note.strip_prefix("attempt ")
        .and_then(|rest| rest.split_once(": "))
        .is_some_and(|(n, rest)| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && rest.starts_with("infrastructure error")
        })
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Retried { attempt, message } => write!(
                f,
                "attempt {attempt}: infrastructure error: {message} (retried, not charged)"
            ),
            Note::RetriedWithheld => f.write_str(RETRIED_NOTE),
            Note::ServerOnOtherPort {
                assigned,
                actual,
                one_at_a_time,
            } => {
                let serial = if *one_at_a_time {
                    ", one scenario at a time so that copies of the server could not collide"
                } else {
                    ""
                };
                write!(
                    f,
                    "the server listens on port {actual}, not the assigned port {assigned}; the other server scenarios graded it on port {actual}{serial} (--accept-any-port). Read the port from --port (or CLASSCHAT_PORT) instead of hard-coding it"
                )
            }
            Note::ClientDialledOtherPort { assigned, dialled } => write!(
                f,
                "the client dialled {dialled}, not the assigned port {assigned}; redirected so the other scenarios grade its behaviour (--accept-any-port). Connect to --host/--port (or CLASSCHAT_HOST/CLASSCHAT_PORT) instead of a hard-coded port"
            ),
            Note::MemoryLimit { role, limit } => write!(
                f,
                "a process of the {role} was killed for using more than the {limit} memory limit"
            ),
            Note::HttpConnectionClosed => f.write_str(
                "the server closed the connection after a response that said Connection: close, which HTTP allows: the rest of this scenario was skipped",
            ),
            Note::ExitedAfterClient { process } => write!(
                f,
                "the {process} exited with status 0 once its client had left, which the protocol allows: the rest of this scenario was skipped"
            ),
            Note::ConnectAttemptNotChecked { process } => write!(
                f,
                "not checked that the {process} tried to connect: that needs a network namespace of its own (--isolation netns, as root)"
            ),
            Note::RolesNotGraded {
                graded,
                left_out,
                scenarios,
                points,
            } => {
                let graded: Vec<&str> = graded.iter().map(|r| role_word(*r)).collect();
                let left: Vec<&str> = left_out.iter().map(|r| role_word(*r)).collect();
                write!(
                    f,
                    "graded for the {} role only (roles = [{}]): the {scenarios} {} scenario(s) ({} points) were not graded and are not part of the maximum",
                    graded.join(" and "),
                    graded
                        .iter()
                        .map(|r| format!("\"{r}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    left.join("/"),
                    crate::verdict::fmt_points(*points),
                )
            }
            Note::TemplateWithoutPort { role, template } => {
                let role = role_word(*role);
                write!(
                    f,
                    "the {role} template {template:?} has no {{port}}: the {role} is not told its port and must use one it chose itself (a hard-coded port)"
                )
            }
            Note::Text { text } => f.write_str(text),
        }
    }
}

/// A note as a record stores it: a table tagged by `kind` (`schema_version` 2 on), or the plain
/// string of a record written before notes were typed.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Plain(String),
    Typed(Note),
}

/// A note as a record writes it: its table, plus the sentence reports show (`text`, for a
/// person reading the record; ignored when read back, the kind and fields are the note).
#[derive(Serialize)]
struct Written<'a> {
    #[serde(flatten)]
    note: &'a Note,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

/// Writes the notes of a record (see [`Written`]).
pub fn serialize_notes<S: Serializer>(notes: &[Note], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(notes.iter().map(|note| Written {
        note,
        // A text note's own field already is its sentence.
        text: (!matches!(note, Note::Text { .. })).then(|| note.to_string()),
    }))
}

/// Reads the notes of a record, typed or (older records) plain strings (see the module comment).
pub fn deserialize_notes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Note>, D::Error> {
    let stored = Vec::<Stored>::deserialize(d)?;
    Ok(stored
        .into_iter()
        .map(|s| match s {
            Stored::Plain(text) => Note::Text { text },
            Stored::Typed(n) => n,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(
            serialize_with = "serialize_notes",
            deserialize_with = "deserialize_notes"
        )]
        notes: Vec<Note>,
    }

    fn every_kind() -> Vec<Note> {
        vec![
            Note::Retried {
                attempt: 2,
                message: "our port was taken".into(),
            },
            Note::RetriedWithheld,
            Note::ServerOnOtherPort {
                assigned: 40000,
                actual: 12345,
                one_at_a_time: true,
            },
            Note::ClientDialledOtherPort {
                assigned: 40000,
                dialled: "127.0.0.1:5000".into(),
            },
            Note::MemoryLimit {
                role: "server".into(),
                limit: "256 MiB".into(),
            },
            Note::HttpConnectionClosed,
            Note::ExitedAfterClient {
                process: "server".into(),
            },
            Note::ConnectAttemptNotChecked {
                process: "client".into(),
            },
            Note::RolesNotGraded {
                graded: vec![Role::Server],
                left_out: vec![Role::Client],
                scenarios: 3,
                points: 4.5,
            },
            Note::TemplateWithoutPort {
                role: Role::Server,
                template: "python3 {dir}/s.py".into(),
            },
            Note::text("free text"),
        ]
    }

    #[test]
    fn every_kind_round_trips_through_a_record() {
        let h = Holder {
            notes: every_kind(),
        };
        let text = toml::to_string(&h).unwrap();
        assert_eq!(toml::from_str::<Holder>(&text).unwrap(), h);
        assert!(text.contains("kind = \"retried\""), "{text}");
    }

    #[test]
    fn old_records_load_plain_strings_as_text_and_keep_their_retry_rule() {
        let old = "notes = [\"attempt 1: infrastructure error: x (retried, not charged)\", \"graded on port 12345\"]\n";
        let h: Holder = toml::from_str(old).unwrap();
        assert_eq!(
            h.notes[1],
            Note::text("graded on port 12345"),
            "{:?}",
            h.notes
        );
        assert!(h.notes[0].is_retry() && !h.notes[1].is_retry());
        assert!(Note::text("attempt 12: infrastructure error: x").is_retry());
        assert!(!Note::text("attempt one: infrastructure error: x").is_retry());
    }

    #[test]
    fn retry_notes_are_known_by_kind_not_by_text() {
        // A typed note that reads like a retry is not one; a retry is one whatever it says.
        let port = Note::ServerOnOtherPort {
            assigned: 1,
            actual: 2,
            one_at_a_time: false,
        };
        assert!(!port.is_retry());
        let retried = Note::Retried {
            attempt: 1,
            message: "anything".into(),
        };
        assert!(retried.is_retry());
        assert_eq!(
            retried.to_string(),
            "attempt 1: infrastructure error: anything (retried, not charged)"
        );
    }

    #[test]
    fn texts_read_as_before() {
        let texts: Vec<String> = every_kind().iter().map(ToString::to_string).collect();
        insta::assert_snapshot!(texts.join("\n"));
    }
}
