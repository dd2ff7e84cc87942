//! Protocol parameters ("dialects"): the choices the ClassChat brief leaves open (when the
//! acknowledgment comes, how a client registers, JSON field names and status words, how a
//! message is forwarded, the exit word, whether a reply echoes), as data.
//!
//! A task file's `[protocol]` table sets the task's own values; a dialect (a bundled one by
//! name, or a file) overrides single keys of it, per class (`--dialect`) and per submission
//! (`dialect = "..."` and an inline `[protocol]` table in its `classchat.toml`). The protocol
//! steps of the scenario language (`join`, `chat`, `expect_chat` ...) are expanded into
//! primitive steps by what [`Protocol`] says when the file is loaded (see `super::expand`).
//!
//! Guarantees: [`Protocol::default`] is exactly the protocol of `tasks/PROTOCOL.md`, so the
//! bundled task files graded under no dialect behave as they did before dialects existed;
//! unknown keys and values are refused with the key named; a [`Dialect`] is plain data (a label
//! and a table) that a report records and `grader replay` reapplies; a dialect that cannot be
//! used is a typed [`DialectError`] (which dialect, and what is wrong with it).

use serde::{Deserialize, Serialize};

/// The dialects compiled into the grader: (name, file text).
pub const BUNDLED_DIALECTS: &[(&str, &str)] = &[
    (
        "classchat",
        include_str!("../../../tasks/dialects/classchat.toml"),
    ),
    (
        "name-line",
        include_str!("../../../tasks/dialects/name-line.toml"),
    ),
    (
        "name-prompt",
        include_str!("../../../tasks/dialects/name-prompt.toml"),
    ),
    (
        "plain-forward",
        include_str!("../../../tasks/dialects/plain-forward.toml"),
    ),
    (
        "any-reply",
        include_str!("../../../tasks/dialects/any-reply.toml"),
    ),
    (
        "echo-any-case",
        include_str!("../../../tasks/dialects/echo-any-case.toml"),
    ),
    (
        "slash-quit",
        include_str!("../../../tasks/dialects/slash-quit.toml"),
    ),
    (
        "no-exit-word",
        include_str!("../../../tasks/dialects/no-exit-word.toml"),
    ),
];

/// How messages are written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageFormat {
    /// One line of text per message (Tasks 1–3).
    Lines,
    /// One JSON object per message (Task 4).
    Json,
}

/// When the server sends its acknowledgment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ack {
    /// At once, before reading anything.
    OnConnect,
    /// Only once the client has registered (its greeting confirms the name).
    AfterRegister,
    /// Never.
    None,
}

/// How a client registers its user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Register {
    /// A JSON register message (`{"status":"register","sender":NAME}`), confirmed with "ok".
    Json,
    /// The name alone on the first line.
    NameLine,
    /// The server asks with a prompt; the client answers with the name on a line.
    Prompt,
    /// No registration.
    None,
}

/// What a reply to a line must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The line's text.
    Echo,
    /// The line's text, in any letter case.
    EchoAnyCase,
    /// Anything (e.g. a fixed "Message received").
    Any,
}

/// How errors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Errors {
    /// A JSON object with the error status word.
    Json,
    /// A line of text.
    Text,
}

/// JSON field names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fields {
    /// What a message is (register, chat, exit, ok, error); "" if messages have no such field.
    pub status: String,
    /// The sender's name.
    pub sender: String,
    /// The receiver's name.
    pub receiver: String,
    /// The text.
    pub text: String,
    /// A group's name (group chat, Task 5).
    pub group: String,
    /// A transferred file's name (file transfer, Task 7).
    pub filename: String,
    /// A transferred file's content, in base64 (file transfer, Task 7).
    pub data: String,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            status: "status".into(),
            sender: "sender".into(),
            receiver: "receiver".into(),
            text: "text".into(),
            group: "group".into(),
            filename: "filename".into(),
            data: "data".into(),
        }
    }
}

/// Status words.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Words {
    /// A register message.
    pub register: String,
    /// A confirmation.
    pub ok: String,
    /// An error.
    pub error: String,
    /// A chat message.
    pub chat: String,
    /// Create a group (and join it).
    pub group_create: String,
    /// Join a group.
    pub group_join: String,
    /// Leave a group.
    pub group_leave: String,
    /// A message to a group, and its copy forwarded to each member.
    pub group_message: String,
    /// A file sent to a user, and its forwarded copy.
    pub file: String,
}

impl Default for Words {
    fn default() -> Self {
        Self {
            register: "register".into(),
            ok: "ok".into(),
            error: "error".into(),
            chat: "1".into(),
            group_create: "group_create".into(),
            group_join: "group_join".into(),
            group_leave: "group_leave".into(),
            group_message: "group_message".into(),
            file: "file".into(),
        }
    }
}

/// The protocol parameters (see the module comment); the default is `tasks/PROTOCOL.md`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocol {
    /// Lines or JSON objects (set by the task file).
    pub format: MessageFormat,
    /// When the acknowledgment comes.
    pub ack: Ack,
    /// Whether `join` without a name fails when no acknowledgment arrives (true), or waits for
    /// it without failing (false: the acknowledgment has its own scenario).
    pub ack_required: bool,
    /// How a client registers.
    pub register: Register,
    /// JSON field names.
    pub fields: Fields,
    /// Status words.
    pub words: Words,
    /// How a forwarded chat message looks: "json", or a text template with `{sender}`,
    /// `{receiver}` and `{text}`, such as "{sender}: {text}".
    pub forward: String,
    /// How errors look.
    pub errors: Errors,
    /// The words a client says to leave (the first is used); empty: it just closes.
    pub exit: Vec<String>,
    /// What a reply to a line contains.
    pub reply: Reply,
}

impl Default for Protocol {
    fn default() -> Self {
        Self {
            format: MessageFormat::Lines,
            ack: Ack::OnConnect,
            ack_required: true,
            register: Register::Json,
            fields: Fields::default(),
            words: Words::default(),
            forward: "json".into(),
            errors: Errors::Json,
            exit: vec!["exit".into()],
            reply: Reply::Echo,
        }
    }
}

impl Protocol {
    /// The protocol a task's own `[protocol]` table and then `dialect` make.
    pub fn resolve(task: &toml::Table, dialect: &Dialect) -> Result<Self, String> {
        let mut table = task.clone();
        merge(&mut table, &dialect.table);
        Protocol::deserialize(toml::Value::Table(table)).map_err(|e| e.message().to_string())
    }

    /// The exit word clients say, if any.
    pub fn exit_word(&self) -> Option<&str> {
        self.exit.first().map(String::as_str)
    }
}

/// Overrides of protocol keys, with a label saying where they came from ("classchat",
/// "name-line + plain-forward", a file path ...). An empty table is the task's own protocol.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dialect {
    /// What to call it in reports (empty: none given).
    pub label: String,
    /// The keys it sets (a `[protocol]` table).
    pub table: toml::Table,
}

/// A dialect file: a description and the `[protocol]` keys it sets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DialectFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    protocol: toml::Table,
}

/// A dialect that cannot be used: which one, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum DialectError {
    /// Neither a bundled dialect nor a file.
    #[error(
        "no dialect {name:?}: the bundled dialects are {}; or give the path of a dialect file",
        BUNDLED_DIALECTS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    )]
    Unknown {
        /// The name or path given.
        name: String,
    },
    /// The dialect file cannot be read.
    #[error("cannot read dialect file {path}")]
    Unreadable {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The dialect file is not TOML, or holds other keys than `description` and `[protocol]`.
    #[error("dialect {label}: {message}")]
    File {
        /// The dialect's name or path.
        label: String,
        /// The TOML parser's message.
        message: String,
    },
    /// Inline protocol keys (a record's, a `classchat.toml`'s) that are not a TOML table.
    #[error("{label}: {message}")]
    Inline {
        /// Whose keys they are.
        label: String,
        /// What is wrong (the TOML parser's message).
        message: String,
    },
    /// A key or value no protocol has.
    #[error("dialect {label}: {message}")]
    Keys {
        /// The dialect's label.
        label: String,
        /// What is wrong (names the key or value).
        message: String,
    },
}

impl Dialect {
    /// True when it sets nothing (the task's own protocol).
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// A bundled dialect by name, or else a dialect file at `name_or_path`.
    pub fn named(name_or_path: &str) -> Result<Self, DialectError> {
        let (label, text) = match BUNDLED_DIALECTS.iter().find(|(n, _)| *n == name_or_path) {
            Some((n, t)) => (n.to_string(), t.to_string()),
            None => {
                let path = std::path::Path::new(name_or_path);
                if !path.is_file() {
                    return Err(DialectError::Unknown {
                        name: name_or_path.to_string(),
                    });
                }
                let text =
                    std::fs::read_to_string(path).map_err(|source| DialectError::Unreadable {
                        path: name_or_path.to_string(),
                        source,
                    })?;
                (name_or_path.to_string(), text)
            }
        };
        let file: DialectFile = toml::from_str(&text).map_err(|e| DialectError::File {
            label: label.clone(),
            message: e.message().to_string(),
        })?;
        let d = Dialect {
            label,
            table: file.protocol,
        };
        d.check()?;
        Ok(d)
    }

    /// An inline `[protocol]` table (of a submission's `classchat.toml`).
    pub fn inline(label: &str, table: toml::Table) -> Result<Self, DialectError> {
        let d = Dialect {
            label: label.to_string(),
            table,
        };
        d.check()?;
        Ok(d)
    }

    /// A dialect from the text [`Dialect::to_inline`] wrote (a TOML inline table).
    pub fn from_inline(label: &str, text: &str) -> Result<Self, DialectError> {
        let value: toml::Table =
            toml::from_str(&format!("protocol = {text}")).map_err(|e| DialectError::Inline {
                label: label.to_string(),
                message: e.message().to_string(),
            })?;
        match value.get("protocol") {
            Some(toml::Value::Table(t)) => Dialect::inline(label, t.clone()),
            _ => Err(DialectError::Inline {
                label: label.to_string(),
                message: format!("not a table: {text}"),
            }),
        }
    }

    /// Several dialects applied in order (later keys win), under one label.
    pub fn combine<'a>(parts: impl IntoIterator<Item = &'a Dialect>) -> Self {
        let mut out = Dialect::default();
        for d in parts {
            if d.label.is_empty() && d.table.is_empty() {
                continue;
            }
            merge(&mut out.table, &d.table);
            if !d.label.is_empty() {
                if !out.label.is_empty() {
                    out.label.push_str(" + ");
                }
                out.label.push_str(&d.label);
            }
        }
        out
    }

    /// The keys as one TOML inline table (for reports and the spec hash).
    pub fn to_inline(&self) -> String {
        toml::Value::Table(self.table.clone()).to_string()
    }

    /// Refuses keys and values no protocol has.
    fn check(&self) -> Result<(), DialectError> {
        Protocol::resolve(&toml::Table::new(), self)
            .map(|_| ())
            .map_err(|message| DialectError::Keys {
                label: self.label.clone(),
                message,
            })
    }
}

/// Copies `over` into `base`: tables are merged key by key, other values replaced.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_dialect_loads() {
        for (name, _) in BUNDLED_DIALECTS {
            let d = Dialect::named(name).unwrap();
            Protocol::resolve(&toml::Table::new(), &d).unwrap();
        }
        assert!(Dialect::named("classchat").unwrap().is_empty());
    }

    #[test]
    fn keys_override_one_by_one() {
        let task: toml::Table = toml::from_str("format = \"json\"").unwrap();
        let d = Dialect::combine(&[
            Dialect::named("name-line").unwrap(),
            Dialect::inline("x", toml::from_str("fields = { text = \"msg\" }").unwrap()).unwrap(),
        ]);
        let p = Protocol::resolve(&task, &d).unwrap();
        assert_eq!(p.format, MessageFormat::Json);
        assert_eq!(p.register, Register::NameLine);
        assert_eq!(p.fields.text, "msg");
        assert_eq!(p.fields.sender, "sender");
        assert_eq!(d.label, "name-line + x");
        let back = Dialect::from_inline(&d.label, &d.to_inline()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn unknown_keys_and_values_are_refused() {
        let bad = |t: &str| {
            Dialect::inline("t", toml::from_str(t).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad("acknowledge = \"none\"").contains("acknowledge"),
            "{}",
            bad("acknowledge = \"none\"")
        );
        assert!(bad("ack = \"sometimes\"").contains("sometimes"));
        let e = Dialect::named("no-such-dialect").unwrap_err();
        assert!(e.to_string().contains("name-line"), "{e}");
        assert!(
            matches!(&e, DialectError::Unknown { name } if name == "no-such-dialect"),
            "{e:?}"
        );
        let e = Dialect::inline("t", toml::from_str("ack = \"sometimes\"").unwrap()).unwrap_err();
        assert!(
            matches!(&e, DialectError::Keys { label, .. } if label == "t"),
            "{e:?}"
        );
        let e = Dialect::from_inline("rec", "5").unwrap_err();
        assert_eq!(e.to_string(), "rec: not a table: 5");
    }
}
