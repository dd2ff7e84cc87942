//! The Task 1 server: one client at a time, then the next.
//!
//! This is the classic socket sequence — bind, listen, then in a loop: accept, send the
//! acknowledgment, receive and reply until the client leaves. A second client is accepted by
//! the kernel (it waits in the listen queue) but is served only when the first one is done.
//! Serving several clients at once is Task 3.
//!
//! Whatever a client does — say `exit`, close, reset the connection, send garbage — only its
//! own conversation ends; the server goes back to `accept`.

use crate::Error;
use crate::cli::ServerArgs;
use crate::echo;
use crate::net;

/// Runs the server until it is stopped by a signal.
pub async fn run(args: ServerArgs) -> Result<(), Error> {
    let listener = net::listen(&args.host, args.port).await?;
    eprintln!("task 1 server listening on {}:{}", args.host, args.port);

    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // A client that gave up while queued; nothing to do but accept the next one.
                eprintln!("accept failed: {error}");
                continue;
            }
        };
        eprintln!("{peer}: connected");
        match echo::converse(stream).await {
            Ok(()) => eprintln!("{peer}: disconnected"),
            Err(error) => eprintln!("{peer}: connection lost: {error}"),
        }
    }
}
