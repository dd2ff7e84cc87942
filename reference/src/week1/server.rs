//! The week-1 servers: one client at a time (tasks 12–14) or all at once (task 15).
//!
//! Both run the same conversation ([`converse`]): the acknowledgment at once, then one
//! [`super::respond`] per line until the client says `exit`, breaks a validation rule, or
//! leaves. A client's failure (a reset, garbage) ends only its own conversation.
//!
//! With `log = true` (task 15) every connection, message and departure is logged on stdout
//! as `[HH:MM:SS] ...`, flushed line by line; otherwise the log goes to stderr, untimed.

use std::io::Write;
use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::{GREETING, Response, Rules, respond};
use crate::Error;
use crate::accept::serve_forever;
use crate::cli::ServerArgs;
use crate::clock;
use crate::lines::{LineReader, MAX_LINE_LEN, write_line};
use crate::net;

/// Where log lines go.
#[derive(Debug, Clone, Copy)]
struct Log {
    timestamped: bool,
}

impl Log {
    fn line(self, text: &str) {
        if self.timestamped {
            let mut out = std::io::stdout().lock();
            // A log line that cannot be written (stdout closed) is not worth failing for.
            let _ = writeln!(out, "[{}] {text}", clock::hms());
            let _ = out.flush();
        } else {
            eprintln!("{text}");
        }
    }
}

/// Serves one client after another, forever (tasks 12–14).
pub async fn run_sequential(args: ServerArgs, rules: Rules) -> Result<(), Error> {
    let listener = net::listen(&args.host, args.port).await?;
    let log = Log { timestamped: false };
    log.line(&format!("listening on {}:{}", args.host, args.port));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                log.line(&format!("accept failed: {error}"));
                continue;
            }
        };
        serve(stream, peer, rules, log).await;
    }
}

/// Serves every client at once, each in its own task, logging with timestamps (task 15).
pub async fn run_concurrent(args: ServerArgs, rules: Rules) -> Result<(), Error> {
    let listener = net::listen(&args.host, args.port).await?;
    let log = Log { timestamped: true };
    log.line(&format!("listening on {}:{}", args.host, args.port));
    serve_forever(listener, move |stream, peer| {
        serve(stream, peer, rules, log)
    })
    .await;
    Ok(())
}

async fn serve(stream: TcpStream, peer: SocketAddr, rules: Rules, log: Log) {
    log.line(&format!("{peer} connected"));
    match converse(stream, peer, rules, log).await {
        Ok(()) => log.line(&format!("{peer} disconnected")),
        Err(error) => log.line(&format!("{peer} connection lost: {error}")),
    }
}

/// One client's conversation, until `exit`, a refused message, or the client leaving.
async fn converse(
    stream: TcpStream,
    peer: SocketAddr,
    rules: Rules,
    log: Log,
) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = LineReader::new(reader, MAX_LINE_LEN);
    write_line(&mut writer, GREETING).await?;
    while let Some(line) = lines.next_line().await? {
        let response = respond(&line, rules);
        if let crate::lines::Line::Text(text) = &line {
            log.line(&format!("{peer} says {text:?}"));
        }
        match response {
            Response::Reply(reply) => write_line(&mut writer, &reply).await?,
            Response::Nothing => {}
            Response::CloseWith(last) => {
                write_line(&mut writer, &last).await?;
                break;
            }
        }
    }
    Ok(())
}
