//! The bonus messages on the wire: the Task 4 requests plus groups and files, one JSON object
//! per line, told apart by `"status"`.
//!
//! Parsing never panics: a line that is none of these is a [`MalformedRequest`].

use serde::{Deserialize, Serialize};

pub use crate::task4::protocol::{MalformedRequest, Reply, to_line};

/// A message from a client to the bonus server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "status")]
pub enum Request {
    /// Claim a name.
    #[serde(rename = "register")]
    Register { sender: String },
    /// Send `text` to `receiver` (stored if `receiver` is registered but offline).
    #[serde(rename = "1")]
    Chat { receiver: String, text: String },
    /// Leave the chat.
    #[serde(rename = "exit")]
    Exit {},
    /// Create a group and become its first member.
    #[serde(rename = "group_create")]
    GroupCreate { group: String },
    /// Join an existing group.
    #[serde(rename = "group_join")]
    GroupJoin { group: String },
    /// Leave a group.
    #[serde(rename = "group_leave")]
    GroupLeave { group: String },
    /// Send `text` to every other member of `group`.
    #[serde(rename = "group_message")]
    GroupMessage { group: String, text: String },
    /// Send a file (base64 `data`) to `receiver`.
    #[serde(rename = "file")]
    File {
        receiver: String,
        filename: String,
        data: String,
    },
}

impl Request {
    /// Parses one received line.
    pub fn parse(line: &str) -> Result<Self, MalformedRequest> {
        serde_json::from_str(line).map_err(|error| MalformedRequest::new(error.to_string()))
    }
}

/// A group message as forwarded to each member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupForward<'a> {
    pub status: &'static str,
    pub sender: &'a str,
    pub group: &'a str,
    pub text: &'a str,
}

/// A file as forwarded to its receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileForward<'a> {
    pub status: &'static str,
    pub sender: &'a str,
    pub receiver: &'a str,
    pub filename: &'a str,
    pub data: &'a str,
}
