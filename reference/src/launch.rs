//! Running a program: the async runtime, SIGINT/SIGTERM, and a clean exit.
//!
//! [`run`] is what every binary's `main` calls. It guarantees that
//!
//! * the signal handlers are installed *before* the program does anything (so a server that
//!   is already listening can always be stopped gracefully);
//! * SIGINT or SIGTERM ends the program at once with `Ok(())`, i.e. exit status 0;
//! * the program never hangs on the way out. Tokio reads stdin with a blocking read on a
//!   helper thread that cannot be interrupted; a normal runtime shutdown would wait for that
//!   read (until the user presses Enter). We therefore shut the runtime down in the
//!   background: the process exits and the operating system reclaims everything.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

use crate::Error;

/// Runs `program` to completion, or until SIGINT/SIGTERM arrives.
///
/// The error type only needs to accept our [`Error`], so binaries can use `anyhow::Error`.
pub fn run<E>(program: impl Future<Output = Result<(), E>>) -> Result<(), E>
where
    E: From<Error>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Startup)?;

    let outcome = runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::Startup)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(Error::Startup)?;
        tokio::select! {
            result = program => result,
            _ = interrupt.recv() => Ok(()),
            _ = terminate.recv() => Ok(()),
        }
    });

    runtime.shutdown_background();
    outcome
}
