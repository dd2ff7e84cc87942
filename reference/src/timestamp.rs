//! The timestamp lab (task 16): a threaded server that answers every line with the time of the
//! reply, and a client with a single-message mode and an interactive mode.
//!
//! ```text
//! $ timestamp server --port 5000
//! $ timestamp client --host 127.0.0.1 --port 5000 "Hello"
//! [14:03:27] Hello                         (then the client exits with status 0)
//! $ timestamp client --host 127.0.0.1 --port 5000
//! hello                                    <- typed
//! [14:03:31] hello
//! quit                                     <- typed (also exit or q, any case); status 0
//! ```
//!
//! On the wire the server says nothing until it receives a line; then it sends one line,
//! `[HH:MM:SS] <text>` (local time, read at each reply), and keeps reading. An empty line gets
//! no reply. Each connection runs in its own task ([`crate::accept`]), so one client never
//! waits for another. The client closes its connection when it is done (it sends no exit
//! word); a client whose server falls silent gives up after [`REPLY_TIMEOUT`].

use clap::{Args, Subcommand};

use crate::Error;
use crate::accept::serve_forever;
use crate::cli::{ClientArgs, ServerArgs};
use crate::clock;
use crate::console::Console;
use crate::lines::{Line, LineReader, MAX_LINE_LEN, MAX_REPLY_LEN, write_line};
use crate::net;
use crate::week1::client::relay_one_line;

/// How long the client waits for a reply (the week-1 client's timeout).
pub use crate::week1::client::REPLY_TIMEOUT;

/// The words that end the interactive client (trimmed, any case).
pub const QUIT_WORDS: [&str; 3] = ["quit", "exit", "q"];

/// A client: where to connect, and the one message to send (none: interactive).
#[derive(Debug, Clone, Args)]
pub struct MessageClientArgs {
    #[command(flatten)]
    pub server: ClientArgs,

    /// Send this one message, print the reply and exit (without it: read lines from stdin).
    pub message: Option<String>,
}

/// The subcommands of the timestamp lab's program.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server.
    Server(ServerArgs),
    /// Run the client: one message given as an argument, or lines typed on stdin.
    Client(MessageClientArgs),
}

/// The reply to one line: `[HH:MM:SS] text`; nothing for an empty line.
pub fn reply(line: &Line) -> Option<String> {
    match line {
        Line::Text(text) if text.is_empty() => None,
        Line::Text(text) => Some(format!("[{}] {text}", clock::hms())),
        Line::TooLong => Some(format!("[{}] ERROR: line too long", clock::hms())),
    }
}

/// Whether a typed line ends the interactive client.
pub fn is_quit(line: &str) -> bool {
    QUIT_WORDS
        .iter()
        .any(|w| line.trim().eq_ignore_ascii_case(w))
}

/// Runs the server until it is stopped by a signal.
pub async fn run_server(args: ServerArgs) -> Result<(), Error> {
    let listener = net::listen(&args.host, args.port).await?;
    eprintln!("timestamp server listening on {}:{}", args.host, args.port);
    serve_forever(listener, |stream, peer| async move {
        let (reader, mut writer) = stream.into_split();
        let mut lines = LineReader::new(reader, MAX_LINE_LEN);
        let outcome = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(r) = reply(&line) {
                    write_line(&mut writer, &r).await?;
                }
            }
            Ok::<(), std::io::Error>(())
        }
        .await;
        if let Err(error) = outcome {
            eprintln!("{peer}: connection lost: {error}");
        }
    })
    .await;
    Ok(())
}

/// Runs the client: one message and its reply, or an interactive session.
pub async fn run_client(args: MessageClientArgs) -> Result<(), Error> {
    let stream = net::connect(&args.server.host, args.server.port).await?;
    let (reader, mut writer) = stream.into_split();
    let mut server = LineReader::new(reader, MAX_REPLY_LEN);
    let mut console = Console::new();

    if let Some(message) = args.message {
        write_line(&mut writer, &message)
            .await
            .map_err(Error::Connection)?;
        relay_one_line(&mut server, &mut console).await?;
        return Ok(());
    }
    while let Some(line) = console.next_line().await? {
        if is_quit(&line) {
            break;
        }
        if line.is_empty() {
            continue;
        }
        write_line(&mut writer, &line)
            .await
            .map_err(Error::Connection)?;
        if !relay_one_line(&mut server, &mut console).await? {
            break;
        }
    }
    // Returning drops the socket, which closes the connection.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quit_words_and_replies() {
        assert!(is_quit(" Q ") && is_quit("QUIT") && is_quit("exit"));
        assert!(!is_quit("quit now") && !is_quit("e"));
        assert_eq!(reply(&Line::Text(String::new())), None);
        let r = reply(&Line::Text("hi".into())).unwrap();
        assert!(
            r.starts_with('[') && r.ends_with("] hi") && r.len() == 13,
            "{r}"
        );
    }
}
