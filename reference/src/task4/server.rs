//! The Task 4 server: registers names and routes chat messages between clients.
//!
//! Each connection runs in its own task ([`crate::accept`]) and waits for two things at once:
//! a request line from its client, or a forwarded message arriving in its outbox
//! ([`super::registry`]). All the decisions live in `Session::handle`, a plain function
//! from one received line to one reply, which keeps the rules easy to read and to test:
//!
//! * the first `register` claims a name; a name already taken gets an error and the
//!   connection is closed;
//! * a chat message is forwarded to its receiver with `sender` set to the *registered* name
//!   (a forged `sender` field is ignored); an unknown or offline receiver gets the sender
//!   an error naming that receiver;
//! * anything malformed (not JSON, missing fields, over-long) gets an error and changes
//!   nothing; the connection stays open;
//! * `exit`, or simply closing the connection, releases the name.

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::protocol::{Reply, Request, to_line, validate_name};
use super::registry::{OUTBOX_CAPACITY, Outbox, Registration, Registry};
use crate::Error;
use crate::accept::serve_forever;
use crate::cli::ServerArgs;
use crate::lines::{Line, LineReader, MAX_LINE_LEN, write_line};
use crate::net;

/// The acknowledgment sent to every new connection.
pub const GREETING: &str = "connected to ClassChat; please register";

/// Runs the server until it is stopped by a signal.
pub async fn run(args: ServerArgs) -> Result<(), Error> {
    if let Err(error) = net::raise_open_file_limit() {
        eprintln!("could not raise the open-file limit: {error}");
    }
    let listener = net::listen(&args.host, args.port).await?;
    eprintln!("task 4 server listening on {}:{}", args.host, args.port);

    let registry = Registry::default();
    serve_forever(listener, move |stream, peer| {
        let registry = registry.clone();
        async move {
            if let Err(error) = converse(stream, registry).await {
                eprintln!("{peer}: connection lost: {error}");
            }
        }
    })
    .await;
    Ok(())
}

/// Serves one client until it leaves, is refused, or disconnects.
///
/// However it ends, returning drops `session` (which releases the name) and the socket.
async fn converse(stream: TcpStream, registry: Registry) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut requests = LineReader::new(reader, MAX_LINE_LEN);
    let (outbox, mut inbox) = mpsc::channel(OUTBOX_CAPACITY);
    let mut session = Session::new(registry, outbox);

    write_line(&mut writer, &to_line(&Reply::ok(GREETING))).await?;
    loop {
        tokio::select! {
            received = requests.next_line() => {
                let Some(line) = received? else { return Ok(()) };
                let (reply, after) = session.handle(&line);
                if let Some(reply) = reply {
                    write_line(&mut writer, &to_line(&reply)).await?;
                }
                if after == After::Close {
                    return Ok(());
                }
            }
            // `session` holds a sender of this channel, so it never runs dry.
            Some(forwarded) = inbox.recv() => write_line(&mut writer, &forwarded).await?,
        }
    }
}

/// What the connection does after replying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepOpen,
    Close,
}

/// The state of one connection: the directory, its own outbox, and its name once registered.
#[derive(Debug)]
struct Session {
    registry: Registry,
    outbox: Outbox,
    me: Option<Registration>,
}

impl Session {
    fn new(registry: Registry, outbox: Outbox) -> Self {
        Self {
            registry,
            outbox,
            me: None,
        }
    }

    /// Applies one received line; returns the reply for this client (if any).
    fn handle(&mut self, line: &Line) -> (Option<Reply>, After) {
        let text = match line {
            Line::TooLong => {
                let reason = format!("malformed message: line longer than {MAX_LINE_LEN} bytes");
                return (Some(Reply::error(reason)), After::KeepOpen);
            }
            // Blank lines are harmless; ignore them rather than complain.
            Line::Text(text) if text.trim().is_empty() => return (None, After::KeepOpen),
            Line::Text(text) => text,
        };

        match Request::parse(text) {
            Err(malformed) => (Some(Reply::error(malformed.to_string())), After::KeepOpen),
            Ok(Request::Register { sender }) => self.register(&sender),
            Ok(Request::Chat { receiver, text, .. }) => {
                (self.chat(receiver, text), After::KeepOpen)
            }
            Ok(Request::Exit { .. }) => {
                // Release the name before saying goodbye, so that once the client sees the
                // connection close, messages to its name already get the "not online" error.
                let goodbye = match self.me.take() {
                    Some(me) => {
                        eprintln!("{} left", me.name());
                        format!("goodbye, {}", me.name())
                    }
                    None => "goodbye".to_owned(),
                };
                (Some(Reply::ok(goodbye)), After::Close)
            }
        }
    }

    fn register(&mut self, name: &str) -> (Option<Reply>, After) {
        if let Some(me) = &self.me {
            let reason = format!("already registered as '{}'", me.name());
            return (Some(Reply::error(reason)), After::KeepOpen);
        }
        if let Err(reason) = validate_name(name) {
            return (Some(Reply::error(reason)), After::KeepOpen);
        }
        match self.registry.register(name, self.outbox.clone()) {
            Ok(me) => {
                eprintln!("{name} registered");
                self.me = Some(me);
                (
                    Some(Reply::ok(format!("registered as {name}"))),
                    After::KeepOpen,
                )
            }
            // The protocol says: refuse, then close, so the client can reconnect with
            // another name.
            Err(taken) => (Some(Reply::error(taken.to_string())), After::Close),
        }
    }

    fn chat(&self, receiver: String, text: String) -> Option<Reply> {
        let Some(me) = &self.me else {
            return Some(Reply::error("register before sending messages"));
        };
        let forwarded = Reply::Chat {
            // Always the registered name: whatever `sender` the request claimed is ignored.
            sender: me.name().to_owned(),
            receiver: receiver.clone(),
            text,
        };
        match self.registry.deliver(&receiver, to_line(&forwarded)) {
            // Success needs no reply; the receiver's client shows the message.
            Ok(()) => None,
            Err(undeliverable) => Some(Reply::error(undeliverable.to_string())),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(me) = &self.me {
            eprintln!("{} left", me.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(registry: &Registry) -> (Session, mpsc::Receiver<String>) {
        let (outbox, inbox) = mpsc::channel(OUTBOX_CAPACITY);
        (Session::new(registry.clone(), outbox), inbox)
    }

    fn line(text: &str) -> Line {
        Line::Text(text.to_owned())
    }

    fn error_text(reply: Option<Reply>) -> String {
        match reply {
            Some(Reply::Error { text }) => text,
            other => panic!("expected an error reply, got {other:?}"),
        }
    }

    #[test]
    fn forged_senders_are_replaced_by_the_registered_name() {
        let registry = Registry::default();
        let (mut mallory, _) = session(&registry);
        let (mut bob, mut bob_inbox) = session(&registry);
        mallory.handle(&line(r#"{"status":"register","sender":"mallory"}"#));
        bob.handle(&line(r#"{"status":"register","sender":"bob"}"#));

        let (reply, _) = mallory.handle(&line(
            r#"{"status":"1","sender":"alice","receiver":"bob","text":"trust me"}"#,
        ));
        assert_eq!(reply, None);
        let forwarded = bob_inbox.try_recv().expect("bob got the message");
        assert_eq!(
            Reply::parse(&forwarded),
            Some(Reply::Chat {
                sender: "mallory".into(),
                receiver: "bob".into(),
                text: "trust me".into()
            })
        );
    }

    #[test]
    fn errors_keep_the_connection_open_except_for_a_taken_name() {
        let registry = Registry::default();
        let (mut alice, _) = session(&registry);
        let (mut impostor, _) = session(&registry);

        let (reply, after) = alice.handle(&line(r#"{"status":"1","receiver":"bob","text":"x"}"#));
        assert!(error_text(reply).contains("register"));
        assert_eq!(after, After::KeepOpen);

        alice.handle(&line(r#"{"status":"register","sender":"alice"}"#));
        let (reply, after) = alice.handle(&line(r#"{"status":"1","receiver":"bob","text":"x"}"#));
        assert!(error_text(reply).contains("bob"));
        assert_eq!(after, After::KeepOpen);

        let (reply, after) = alice.handle(&line("not json"));
        assert!(error_text(reply).starts_with("malformed"));
        assert_eq!(after, After::KeepOpen);

        let (reply, after) = impostor.handle(&line(r#"{"status":"register","sender":"alice"}"#));
        assert!(error_text(reply).contains("taken"));
        assert_eq!(after, After::Close);
    }

    #[test]
    fn exit_releases_the_name() {
        let registry = Registry::default();
        let (mut alice, _) = session(&registry);
        alice.handle(&line(r#"{"status":"register","sender":"alice"}"#));
        let (_, after) = alice.handle(&line(r#"{"status":"exit","sender":"alice"}"#));
        assert_eq!(after, After::Close);

        let (mut again, _) = session(&registry);
        let (reply, _) = again.handle(&line(r#"{"status":"register","sender":"alice"}"#));
        assert!(matches!(reply, Some(Reply::Ok { .. })));
    }
}
