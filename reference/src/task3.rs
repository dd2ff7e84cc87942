//! Task 3: a server that serves many clients at the same time.
//!
//! The conversation is exactly Task 1's ([`crate::echo::converse`]); what changes is that
//! every accepted connection runs in its own tokio task ([`crate::accept`]), so
//!
//! * a client that connects and says nothing never delays anyone else;
//! * each reply goes to the client that sent the line, in the order its lines arrived —
//!   connections share no state at all, so there is nothing to mix up;
//! * a client that vanishes (close or reset, at any moment) ends only its own task.
//!
//! Scale: a connection costs one small task and one file descriptor. The server raises its
//! soft open-file limit to the hard limit at start-up, so it can hold 1000 (and usually many
//! more) simultaneous clients.
//!
//! The Task 3 binary's `client` is the Task 2 client: a multi-client server is best enjoyed
//! with a client that also shows what arrives while you are not typing.

use crate::Error;
use crate::accept::serve_forever;
use crate::cli::ServerArgs;
use crate::echo;
use crate::net;

/// Runs the server until it is stopped by a signal.
pub async fn run(args: ServerArgs) -> Result<(), Error> {
    match net::raise_open_file_limit() {
        Ok(limit) => eprintln!("open-file limit: {limit}"),
        Err(error) => eprintln!("could not raise the open-file limit: {error}"),
    }
    let listener = net::listen(&args.host, args.port).await?;
    eprintln!("task 3 server listening on {}:{}", args.host, args.port);

    serve_forever(listener, |stream, peer| async move {
        if let Err(error) = echo::converse(stream).await {
            eprintln!("{peer}: connection lost: {error}");
        }
    })
    .await;
    Ok(())
}
