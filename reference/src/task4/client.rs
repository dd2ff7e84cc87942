//! The Task 4 client: chat with other users by name.
//!
//! ```text
//! $ classchat-task4 client --host 127.0.0.1 --port 5000 --name alice
//! connected to ClassChat; please register
//! registered as alice
//! bob: hello there           <- typed: sends "hello there" to bob
//! bob: hi alice              <- bob's answer
//! carol: are you there?      <- typed
//! error: receiver 'carol' is not online
//! exit                       <- typed: leave
//! goodbye, alice
//! ```
//!
//! Start-up is turn-based (greeting, then registration, then its answer); a refused name
//! ends the client with a non-zero status. After that the client works like the Task 2
//! client: it waits for the keyboard and the socket at the same time.

use tokio::io::{AsyncRead, AsyncWriteExt};

use super::protocol::{Reply, Request, to_line};
use crate::Error;
use crate::cli::NamedClientArgs;
use crate::console::{Console, SERVER_CLOSED};
use crate::echo::is_exit;
use crate::lines::{Line, LineReader, MAX_REPLY_LEN, write_line};
use crate::net;
use crate::task1::client::EXIT_GRACE;

/// What the user asked for with one typed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `receiver: text`
    Send { receiver: String, text: String },
    /// `exit`
    Exit,
    /// An empty line: nothing to do.
    Nothing,
    /// Anything else.
    Unrecognized,
}

/// Interprets one typed line.
pub fn parse_command(line: &str) -> Command {
    if line.trim().is_empty() {
        return Command::Nothing;
    }
    if is_exit(line) {
        return Command::Exit;
    }
    match line.split_once(':') {
        Some((receiver, text)) if !receiver.trim().is_empty() => Command::Send {
            receiver: receiver.trim().to_owned(),
            text: text.trim_start().to_owned(),
        },
        _ => Command::Unrecognized,
    }
}

/// How a line from the server is shown to the user.
pub fn render(line: &str) -> String {
    match Reply::parse(line) {
        Some(Reply::Chat { sender, text, .. }) => format!("{sender}: {text}"),
        Some(Reply::Error { text }) => format!("error: {text}"),
        Some(Reply::Ok { text }) => text,
        // Not something we know: show it as it came.
        None => line.to_owned(),
    }
}

/// Runs the client until the user leaves or the server closes.
pub async fn run(args: NamedClientArgs) -> Result<(), Error> {
    let name = args.name;
    let stream = net::connect(&args.server.host, args.server.port).await?;
    let (reader, mut writer) = stream.into_split();
    let mut server = LineReader::new(reader, MAX_REPLY_LEN);
    let mut console = Console::new();

    // 1. The server's greeting.
    let greeting = next_text(&mut server).await?;
    console.print(&render(&greeting)).await?;

    // 2. Registration, and its answer.
    let register = Request::Register {
        sender: name.clone(),
    };
    send(&mut writer, &register).await?;
    let answer = next_text(&mut server).await?;
    console.print(&render(&answer)).await?;
    match Reply::parse(&answer) {
        Some(Reply::Ok { .. }) => {}
        Some(Reply::Error { text }) => return Err(Error::Registration { name, reason: text }),
        _ => return Err(Error::NoRegistrationReply),
    }

    // 3. Chat: keyboard and socket at the same time.
    loop {
        tokio::select! {
            received = server.next_line() => match received.map_err(Error::Connection)? {
                Some(line) => show(&mut console, &line).await?,
                None => {
                    console.print(SERVER_CLOSED).await?;
                    return Ok(());
                }
            },
            typed = console.next_line() => {
                let Some(typed) = typed? else {
                    // End of input: stop sending (the server then releases our name and
                    // closes), but show what is still on its way.
                    let _ = writer.shutdown().await;
                    return show_until_closed(&mut server, &mut console).await;
                };
                match parse_command(&typed) {
                    Command::Send { receiver, text } => {
                        let chat = Request::Chat { sender: name.clone(), receiver, text };
                        send(&mut writer, &chat).await?;
                    }
                    Command::Exit => {
                        send(&mut writer, &Request::Exit { sender: name.clone() }).await?;
                        return show_until_closed(&mut server, &mut console).await;
                    }
                    Command::Nothing => {}
                    Command::Unrecognized => {
                        eprintln!("to send a message type '<name>: <text>'; 'exit' leaves");
                    }
                }
            },
        }
    }
}

/// Sends one request as a JSON line.
async fn send<W>(writer: &mut W, request: &Request) -> Result<(), Error>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    write_line(writer, &to_line(request))
        .await
        .map_err(Error::Connection)
}

/// Waits for the next line during start-up; the server closing here is an error.
async fn next_text<R: AsyncRead + Unpin>(server: &mut LineReader<R>) -> Result<String, Error> {
    match server.next_line().await.map_err(Error::Connection)? {
        Some(Line::Text(text)) => Ok(text),
        Some(Line::TooLong) | None => Err(Error::NoRegistrationReply),
    }
}

/// Prints one line from the server in its human form.
async fn show(console: &mut Console, line: &Line) -> Result<(), Error> {
    match line {
        Line::Text(text) => console.print(&render(text)).await,
        Line::TooLong => console.print_received(line).await,
    }
}

/// After `exit`: shows what the server still says until it closes (at most [`EXIT_GRACE`]).
async fn show_until_closed<R: AsyncRead + Unpin>(
    server: &mut LineReader<R>,
    console: &mut Console,
) -> Result<(), Error> {
    let drain = async {
        while let Some(line) = server.next_line().await.map_err(Error::Connection)? {
            show(console, &line).await?;
        }
        Ok::<(), Error>(())
    };
    match tokio::time::timeout(EXIT_GRACE, drain).await {
        Ok(Err(Error::Connection(_))) | Ok(Ok(())) | Err(_) => Ok(()),
        Ok(Err(other)) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_become_commands() {
        assert_eq!(
            parse_command("bob: hello there"),
            Command::Send {
                receiver: "bob".into(),
                text: "hello there".into()
            }
        );
        assert_eq!(
            parse_command(" bob :time: 12:00"),
            Command::Send {
                receiver: "bob".into(),
                text: "time: 12:00".into()
            }
        );
        assert_eq!(parse_command("Exit "), Command::Exit);
        assert_eq!(parse_command(""), Command::Nothing);
        assert_eq!(parse_command("hello"), Command::Unrecognized);
        assert_eq!(parse_command(": hello"), Command::Unrecognized);
    }

    #[test]
    fn server_lines_are_rendered_for_humans() {
        assert_eq!(
            render(r#"{"status":"1","sender":"alice","receiver":"bob","text":"hi"}"#),
            "alice: hi"
        );
        assert_eq!(render(r#"{"status":"error","text":"nope"}"#), "error: nope");
        assert_eq!(render(r#"{"status":"ok","text":"welcome"}"#), "welcome");
        assert_eq!(render("plain text"), "plain text");
    }
}
