//! The Task 2 server: the Task 1 protocol, plus lines pushed from the server's stdin.
//!
//! A reader task turns each line typed on the server's stdin into a message on a broadcast
//! channel; every connection subscribes to it and forwards what arrives to its client. The
//! connection task therefore waits for two things at once — a line from its client, or a
//! line to push — just like the Task 2 client does.
//!
//! When stdin ends (Ctrl-D, or started with `< /dev/null`), pushing stops but the server
//! keeps serving: losing the keyboard is no reason to drop the clients.

use tokio::net::TcpStream;
use tokio::sync::broadcast;

use crate::Error;
use crate::accept::serve_forever;
use crate::cli::ServerArgs;
use crate::echo::{GOODBYE, GREETING, Response, respond};
use crate::lines::{Line, LineReader, MAX_LINE_LEN, write_line};
use crate::net;

/// How many pushed lines may wait for a slow client before it misses some.
const PUSH_BACKLOG: usize = 256;

/// Runs the server until it is stopped by a signal.
pub async fn run(args: ServerArgs) -> Result<(), Error> {
    let listener = net::listen(&args.host, args.port).await?;
    eprintln!("task 2 server listening on {}:{}", args.host, args.port);

    let (pushes, _) = broadcast::channel(PUSH_BACKLOG);
    tokio::spawn(read_pushes_from_stdin(pushes.clone()));

    serve_forever(listener, move |stream, peer| {
        let subscription = pushes.subscribe();
        async move {
            if let Err(error) = converse(stream, subscription).await {
                eprintln!("{peer}: connection lost: {error}");
            }
        }
    })
    .await;
    Ok(())
}

/// Broadcasts every line typed on stdin to all connected clients.
async fn read_pushes_from_stdin(pushes: broadcast::Sender<String>) {
    let mut stdin = LineReader::new(tokio::io::stdin(), MAX_LINE_LEN);
    loop {
        match stdin.next_line().await {
            Ok(Some(Line::Text(line))) => {
                // `send` fails only when nobody is connected; then there is nobody to tell.
                let _ = pushes.send(line);
            }
            Ok(Some(Line::TooLong)) => eprintln!("stdin line too long; not pushed"),
            Ok(None) => {
                eprintln!("stdin closed; no more pushed lines, still serving clients");
                return;
            }
            Err(error) => {
                eprintln!("cannot read stdin ({error}); no more pushed lines");
                return;
            }
        }
    }
}

/// The Task 1 conversation with one client, interleaved with pushed lines.
async fn converse(
    stream: TcpStream,
    mut pushes: broadcast::Receiver<String>,
) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = LineReader::new(reader, MAX_LINE_LEN);

    write_line(&mut writer, GREETING).await?;
    let mut pushing = true;
    loop {
        tokio::select! {
            received = lines.next_line() => {
                let Some(line) = received? else { return Ok(()) };
                match respond(&line) {
                    Response::Reply(reply) => write_line(&mut writer, &reply).await?,
                    Response::Nothing => {}
                    Response::Close => return write_line(&mut writer, GOODBYE).await,
                }
            }
            pushed = pushes.recv(), if pushing => match pushed {
                Ok(line) => write_line(&mut writer, &line).await?,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    eprintln!("a slow client missed {missed} pushed lines");
                }
                // Nothing can be pushed any more; keep answering the client.
                Err(broadcast::error::RecvError::Closed) => pushing = false,
            },
        }
    }
}
