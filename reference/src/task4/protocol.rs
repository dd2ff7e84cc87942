//! The Task 4 wire format: one JSON object per line, told apart by its `"status"` field.
//!
//! Client → server ([`Request`]):
//!
//! | status       | fields                        | meaning                                   |
//! |--------------|-------------------------------|-------------------------------------------|
//! | `"register"` | `sender`                      | take this name                            |
//! | `"1"`        | `sender`, `receiver`, `text`  | deliver `text` to `receiver`              |
//! | `"exit"`     | `sender`                      | leave; the server releases the name       |
//!
//! Server → client ([`Reply`]):
//!
//! | status    | fields                        | meaning                                      |
//! |-----------|-------------------------------|----------------------------------------------|
//! | `"ok"`    | `text`                        | greeting, registration done, goodbye         |
//! | `"error"` | `text`                        | something was refused; `text` says why       |
//! | `"1"`     | `sender`, `receiver`, `text`  | a chat message for you                       |
//!
//! Unknown extra fields are ignored. The `sender` of a chat or exit request is optional and
//! never trusted: the server always uses the name the connection registered.
//!
//! Parsing never panics: anything that is not one of the requests above becomes a
//! [`MalformedRequest`] whose message the server sends back as an error.

use serde::{Deserialize, Serialize};

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum Request {
    /// Claim a name.
    #[serde(rename = "register")]
    Register { sender: String },

    /// Send `text` to the client registered as `receiver`.
    #[serde(rename = "1")]
    Chat {
        #[serde(default)]
        sender: String,
        receiver: String,
        text: String,
    },

    /// Leave the chat.
    #[serde(rename = "exit")]
    Exit {
        #[serde(default)]
        sender: String,
    },
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum Reply {
    /// Success or information.
    #[serde(rename = "ok")]
    Ok { text: String },

    /// A refused request; `text` explains it.
    #[serde(rename = "error")]
    Error { text: String },

    /// A chat message forwarded from `sender`.
    #[serde(rename = "1")]
    Chat {
        sender: String,
        receiver: String,
        text: String,
    },
}

/// A line that is not a valid [`Request`]; the message says what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct MalformedRequest(String);

impl MalformedRequest {
    /// A malformed-request error with this reason (for servers that extend the protocol).
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

impl Request {
    /// Parses one received line.
    pub fn parse(line: &str) -> Result<Self, MalformedRequest> {
        serde_json::from_str(line).map_err(|error| MalformedRequest(error.to_string()))
    }
}

impl Reply {
    /// An `ok` reply.
    pub fn ok(text: impl Into<String>) -> Self {
        Self::Ok { text: text.into() }
    }

    /// An `error` reply.
    pub fn error(text: impl Into<String>) -> Self {
        Self::Error { text: text.into() }
    }

    /// Parses one line received from the server.
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

/// Serializes a message as one JSON line (without the newline).
pub fn to_line<T: Serialize>(message: &T) -> String {
    // Serializing these plain structs of strings cannot fail; fall back to an empty object
    // rather than panic, to keep the "no panics" guarantee visibly true.
    serde_json::to_string(message).unwrap_or_else(|_| String::from("{}"))
}

/// Checks that `name` can be registered: 1–32 characters, no whitespace, no `:` (the client
/// uses `name: text` to address a message) and no control characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    const MAX_NAME_CHARS: usize = 32;
    if name.is_empty() {
        return Err("the name must not be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "the name must be at most {MAX_NAME_CHARS} characters"
        ));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ':')
    {
        return Err(format!(
            "the name '{name}' may not contain spaces, control characters or ':'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_requests() {
        assert_eq!(
            Request::parse(r#"{"status":"register","sender":"alice"}"#).unwrap(),
            Request::Register {
                sender: "alice".into()
            }
        );
        assert_eq!(
            Request::parse(r#"{"status":"1","sender":"a","receiver":"b","text":"hi","x":0}"#)
                .unwrap(),
            Request::Chat {
                sender: "a".into(),
                receiver: "b".into(),
                text: "hi".into()
            }
        );
        assert_eq!(
            Request::parse(r#"{"status":"exit"}"#).unwrap(),
            Request::Exit {
                sender: String::new()
            }
        );
    }

    #[test]
    fn rejects_malformed_lines_with_a_reason() {
        for line in [
            "hello",
            "[]",
            "{}",
            r#"{"status":"1","sender":"a"}"#,
            r#"{"status":"?"}"#,
        ] {
            let error = Request::parse(line).unwrap_err().to_string();
            assert!(error.starts_with("malformed message: "), "{error}");
        }
    }

    #[test]
    fn replies_round_trip() {
        let chat = Reply::Chat {
            sender: "alice".into(),
            receiver: "bob".into(),
            text: "hi \"there\"\n".into(),
        };
        assert_eq!(Reply::parse(&to_line(&chat)), Some(chat));
        assert_eq!(
            to_line(&Reply::error("no")),
            r#"{"status":"error","text":"no"}"#
        );
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("alice").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("a:b").is_err());
        assert!(validate_name(&"x".repeat(33)).is_err());
    }
}
