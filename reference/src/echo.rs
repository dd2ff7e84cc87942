//! The Task 1 conversation: what a server says, and when.
//!
//! ```text
//! server: ACK: connected to ClassChat      (at once, before reading anything)
//! client: hello
//! server: ACK: hello                       (one reply per line, containing the line)
//! client:                                  (an empty line gets no reply)
//! client: exit                             (any case, surrounding spaces ignored)
//! server: ACK: goodbye                     (then the server closes this connection)
//! ```
//!
//! [`respond`] is the protocol as a pure function from a received line to the server's
//! answer; [`converse`] runs it over one connection. Tasks 1 and 3 use `converse` as is;
//! Task 2's server adds pushed lines around the same `respond`.

use tokio::net::TcpStream;

use crate::lines::{Line, LineReader, MAX_LINE_LEN, write_line};

/// The acknowledgment a server sends as soon as it accepts a connection.
pub const GREETING: &str = "ACK: connected to ClassChat";

/// The line a server sends before closing a connection on `exit`.
pub const GOODBYE: &str = "ACK: goodbye";

/// What the server does after receiving one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Send this line and keep reading.
    Reply(String),
    /// Send nothing and keep reading (the client sent an empty line).
    Nothing,
    /// Send [`GOODBYE`] and close the connection.
    Close,
}

/// Whether `line` is the request to end the conversation (`exit`, trimmed, any case).
pub fn is_exit(line: &str) -> bool {
    line.trim().eq_ignore_ascii_case("exit")
}

/// The Task 1 protocol: the server's response to one received line.
pub fn respond(line: &Line) -> Response {
    match line {
        Line::TooLong => Response::Reply(format!("ERROR: line longer than {MAX_LINE_LEN} bytes")),
        Line::Text(text) if text.is_empty() => Response::Nothing,
        Line::Text(text) if is_exit(text) => Response::Close,
        Line::Text(text) => Response::Reply(format!("ACK: {text}")),
    }
}

/// Runs the Task 1 conversation with one client until it says `exit` or disconnects.
///
/// Returns an error only for I/O failures (typically a client that vanished with a reset);
/// the caller logs it and carries on serving others.
pub async fn converse(stream: TcpStream) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = LineReader::new(reader, MAX_LINE_LEN);

    write_line(&mut writer, GREETING).await?;
    while let Some(line) = lines.next_line().await? {
        match respond(&line) {
            Response::Reply(reply) => write_line(&mut writer, &reply).await?,
            Response::Nothing => {}
            Response::Close => {
                write_line(&mut writer, GOODBYE).await?;
                break;
            }
        }
    }
    // Dropping both halves closes the connection.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Line {
        Line::Text(s.to_owned())
    }

    #[test]
    fn replies_contain_the_received_text() {
        assert_eq!(
            respond(&text("hi there")),
            Response::Reply("ACK: hi there".into())
        );
        assert_eq!(respond(&text("  ")), Response::Reply("ACK:   ".into()));
    }

    #[test]
    fn exit_is_trimmed_and_case_insensitive() {
        assert_eq!(respond(&text(" EXIT ")), Response::Close);
        assert_eq!(
            respond(&text("exit now")),
            Response::Reply("ACK: exit now".into())
        );
        assert_eq!(respond(&text("e")), Response::Reply("ACK: e".into()));
    }

    #[test]
    fn empty_lines_get_no_reply_and_long_lines_an_error() {
        assert_eq!(respond(&text("")), Response::Nothing);
        assert!(matches!(respond(&Line::TooLong), Response::Reply(r) if r.starts_with("ERROR")));
    }
}
