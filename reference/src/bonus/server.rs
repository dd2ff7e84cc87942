//! The bonus server (tasks 5-7): the Task 4 server's conversation loop with the bonus
//! messages. Each connection runs in its own task and waits for a request line or a message
//! routed to its outbox; `Session::handle` turns one line into the lines to write back.

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::directory::{Directory, OUTBOX_CAPACITY, Outbox, Registration, Sent};
use super::protocol::{FileForward, GroupForward, Reply, Request, to_line};
use crate::Error;
use crate::accept::serve_forever;
use crate::cli::ServerArgs;
use crate::lines::{Line, LineReader, write_line};
use crate::net;
use crate::task4::protocol::validate_name;
use crate::task4::server::GREETING;

/// The longest line the bonus server accepts: 4 MiB, room for a file of about 3 MiB in base64.
pub const MAX_BONUS_LINE: usize = 4 << 20;

/// Runs the server until it is stopped by a signal.
pub async fn run(args: ServerArgs) -> Result<(), Error> {
    if let Err(error) = net::raise_open_file_limit() {
        eprintln!("could not raise the open-file limit: {error}");
    }
    let listener = net::listen(&args.host, args.port).await?;
    eprintln!(
        "bonus server (groups, offline messages, files) listening on {}:{}",
        args.host, args.port
    );
    let directory = Directory::default();
    serve_forever(listener, move |stream, peer| {
        let directory = directory.clone();
        async move {
            if let Err(error) = converse(stream, directory).await {
                eprintln!("{peer}: connection lost: {error}");
            }
        }
    })
    .await;
    Ok(())
}

async fn converse(stream: TcpStream, directory: Directory) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut requests = LineReader::new(reader, MAX_BONUS_LINE);
    let (outbox, mut inbox) = mpsc::channel(OUTBOX_CAPACITY);
    let mut session = Session {
        directory,
        outbox,
        me: None,
    };
    write_line(&mut writer, &to_line(&Reply::ok(GREETING))).await?;
    loop {
        tokio::select! {
            received = requests.next_line() => {
                let Some(line) = received? else { return Ok(()) };
                let (lines, close) = session.handle(&line);
                // The reply first, then (after a registration) the stored messages in order,
                // before anything routed to this connection later.
                for out in lines {
                    write_line(&mut writer, &out).await?;
                }
                if close {
                    return Ok(());
                }
            }
            Some(forwarded) = inbox.recv() => write_line(&mut writer, &forwarded).await?,
        }
    }
}

struct Session {
    directory: Directory,
    outbox: Outbox,
    me: Option<Registration>,
}

impl Session {
    /// One received line → the lines to write back, and whether to close afterwards.
    fn handle(&mut self, line: &Line) -> (Vec<String>, bool) {
        let one = |reply: Reply| (vec![to_line(&reply)], false);
        let text = match line {
            Line::TooLong => {
                return one(Reply::error(format!(
                    "malformed message: line longer than {MAX_BONUS_LINE} bytes"
                )));
            }
            Line::Text(text) if text.trim().is_empty() => return (Vec::new(), false),
            Line::Text(text) => text,
        };
        let request = match Request::parse(text) {
            Ok(r) => r,
            Err(malformed) => return one(Reply::error(malformed.to_string())),
        };
        if let Request::Register { sender } = &request {
            return self.register(sender);
        }
        if let Request::Exit {} = request {
            let goodbye = match self.me.take() {
                Some(me) => format!("goodbye, {}", me.name()),
                None => "goodbye".to_owned(),
            };
            return (vec![to_line(&Reply::ok(goodbye))], true);
        }
        let Some(me) = &self.me else {
            return one(Reply::error("register before sending messages"));
        };
        let name = me.name();
        let d = &self.directory;
        let reply = match request {
            Request::Register { .. } | Request::Exit {} => return (Vec::new(), false),
            Request::Chat { receiver, text } => {
                let forwarded = Reply::Chat {
                    sender: name.to_owned(),
                    receiver: receiver.clone(),
                    text,
                };
                stored_or_error(d.send(&receiver, to_line(&forwarded)), &receiver)
            }
            Request::File {
                receiver,
                filename,
                data,
            } => {
                if filename.is_empty() || filename.contains(['/', '\n']) {
                    Some(Reply::error(
                        "malformed message: a file needs a filename without '/'",
                    ))
                } else {
                    let forwarded = FileForward {
                        status: "file",
                        sender: name,
                        receiver: &receiver,
                        filename: &filename,
                        data: &data,
                    };
                    stored_or_error(d.send(&receiver, to_line(&forwarded)), &receiver)
                }
            }
            Request::GroupCreate { group } => Some(
                check_group(&group)
                    .and_then(|()| d.create_group(&group, name))
                    .map_or_else(Reply::error, |()| {
                        Reply::ok(format!("created the group '{group}'"))
                    }),
            ),
            Request::GroupJoin { group } => {
                Some(d.join_group(&group, name).map_or_else(Reply::error, |()| {
                    Reply::ok(format!("joined the group '{group}'"))
                }))
            }
            Request::GroupLeave { group } => {
                Some(d.leave_group(&group, name).map_or_else(Reply::error, |()| {
                    Reply::ok(format!("left the group '{group}'"))
                }))
            }
            Request::GroupMessage { group, text } => {
                let forwarded = GroupForward {
                    status: "group_message",
                    sender: name,
                    group: &group,
                    text: &text,
                };
                // Success needs no reply, as for a chat message.
                d.group_send(&group, name, &to_line(&forwarded))
                    .err()
                    .map(Reply::error)
            }
        };
        (reply.iter().map(to_line).collect(), false)
    }

    fn register(&mut self, name: &str) -> (Vec<String>, bool) {
        if let Some(me) = &self.me {
            let reason = format!("already registered as '{}'", me.name());
            return (vec![to_line(&Reply::error(reason))], false);
        }
        if let Err(reason) = validate_name(name) {
            return (vec![to_line(&Reply::error(reason))], false);
        }
        match self.directory.register(name, self.outbox.clone()) {
            Ok((me, stored)) => {
                eprintln!("{name} registered ({} stored messages)", stored.len());
                self.me = Some(me);
                let mut lines = vec![to_line(&Reply::ok(format!("registered as {name}")))];
                lines.extend(stored);
                (lines, false)
            }
            Err(taken) => (vec![to_line(&Reply::error(taken.to_string()))], true),
        }
    }
}

/// The sender's reply to a message for one user: none when delivered, "stored" when kept for
/// an offline user, or the error.
fn stored_or_error(sent: Result<Sent, String>, receiver: &str) -> Option<Reply> {
    match sent {
        Ok(Sent::Delivered) => None,
        Ok(Sent::Stored) => Some(Reply::ok(format!(
            "{receiver} is offline; the message is stored and will be delivered when {receiver} registers"
        ))),
        Err(reason) => Some(Reply::error(reason)),
    }
}

fn check_group(group: &str) -> Result<(), String> {
    validate_name(group).map_err(|e| e.replace("name", "group name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(directory: &Directory) -> (Session, mpsc::Receiver<String>) {
        let (outbox, inbox) = mpsc::channel(OUTBOX_CAPACITY);
        let s = Session {
            directory: directory.clone(),
            outbox,
            me: None,
        };
        (s, inbox)
    }

    fn say(s: &mut Session, line: &str) -> Vec<String> {
        s.handle(&Line::Text(line.to_owned())).0
    }

    #[test]
    fn files_pass_unchanged_and_offline_messages_follow_the_confirmation() {
        let d = Directory::default();
        let (mut alice, _) = session(&d);
        let (mut bob, mut bob_in) = session(&d);
        say(&mut alice, r#"{"status":"register","sender":"alice"}"#);
        say(&mut bob, r#"{"status":"register","sender":"bob"}"#);
        let out = say(
            &mut alice,
            r#"{"status":"file","sender":"x","receiver":"bob","filename":"a.bin","data":"AAE="}"#,
        );
        assert!(out.is_empty(), "{out:?}");
        let got = bob_in.try_recv().unwrap();
        assert!(got.contains(r#""sender":"alice""#) && got.contains(r#""data":"AAE=""#));

        say(&mut bob, r#"{"status":"exit"}"#);
        let out = say(
            &mut alice,
            r#"{"status":"1","receiver":"bob","text":"later"}"#,
        );
        assert!(out[0].contains("stored"), "{out:?}");
        let (mut bob2, _) = session(&d);
        let out = say(&mut bob2, r#"{"status":"register","sender":"bob"}"#);
        assert_eq!(out.len(), 2);
        assert!(out[0].contains("registered as bob") && out[1].contains("later"));
    }
}
