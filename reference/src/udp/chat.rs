//! Task 22: a chat over UDP.
//!
//! ```text
//! client → server   JOIN alice          server → client   WELCOME alice
//! client → server   hello everyone      server → others   alice: hello everyone
//! client → server   LEAVE               server → client   BYE alice
//! ```
//!
//! The server knows its members by address: `JOIN <name>` adds (or renames) the sender, any
//! other datagram from a member is relayed as `<name>: <text>` to every *other* member, `LEAVE`
//! removes the sender. A datagram from an address that has not joined is answered with
//! `ERROR: send JOIN <name> first`. The client sends `JOIN <name>` at start, each non-empty
//! line it reads as one datagram, prints every datagram it receives as a line (while waiting
//! for the keyboard too), and at end of input sends `LEAVE` and exits with status 0.

use std::net::SocketAddr;

use super::{MAX_DATAGRAM, bind, client_socket};
use crate::Error;
use crate::cli::{NamedClientArgs, ServerArgs};
use crate::console::Console;

/// Runs the chat server until it is stopped.
pub async fn server(args: ServerArgs) -> Result<(), Error> {
    let socket = bind(&args.host, args.port).await?;
    if let Ok(addr) = socket.local_addr() {
        eprintln!("UDP chat server on {addr}");
    }
    // In joining order, so relays go out in a stable order.
    let mut members: Vec<(SocketAddr, String)> = Vec::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                eprintln!("receive error: {e}");
                continue;
            }
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        let text = text.trim_end_matches(['\r', '\n']);
        let mut answers: Vec<(String, SocketAddr)> = Vec::new();
        let known = members.iter().position(|(a, _)| *a == from);
        if let Some(name) = text.strip_prefix("JOIN ").map(str::trim) {
            if name.is_empty() {
                answers.push(("ERROR: JOIN needs a name".into(), from));
            } else {
                match known {
                    Some(i) => members[i].1 = name.to_string(),
                    None => members.push((from, name.to_string())),
                }
                eprintln!("{from} joined as {name}");
                answers.push((format!("WELCOME {name}"), from));
            }
        } else if text.trim() == "LEAVE" {
            if let Some(i) = known {
                let (_, name) = members.remove(i);
                eprintln!("{name} ({from}) left");
                answers.push((format!("BYE {name}"), from));
            }
        } else {
            match known {
                Some(i) => {
                    let line = format!("{}: {text}", members[i].1);
                    for (addr, _) in members.iter().filter(|(a, _)| *a != from) {
                        answers.push((line.clone(), *addr));
                    }
                }
                None => answers.push(("ERROR: send JOIN <name> first".into(), from)),
            }
        }
        for (text, to) in answers {
            if let Err(e) = socket.send_to(text.as_bytes(), to).await {
                eprintln!("could not send to {to}: {e}");
            }
        }
    }
}

/// Runs the chat client until end of input.
pub async fn client(args: NamedClientArgs) -> Result<(), Error> {
    let (socket, server) = client_socket(&args.server.host, args.server.port).await?;
    let send = |text: String| {
        let socket = &socket;
        async move {
            socket
                .send_to(text.as_bytes(), server)
                .await
                .map(drop)
                .map_err(Error::Connection)
        }
    };
    send(format!("JOIN {}", args.name)).await?;
    let mut console = Console::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            line = console.next_line() => match line? {
                Some(line) if line.is_empty() => {}
                Some(line) => send(line).await?,
                None => {
                    send("LEAVE".into()).await?;
                    return Ok(());
                }
            },
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, _)) => console.print(&String::from_utf8_lossy(&buf[..n])).await?,
                Err(e) => eprintln!("receive error: {e}"),
            },
        }
    }
}
