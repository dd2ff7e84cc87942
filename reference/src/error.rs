//! The one error type of the library.
//!
//! Every variant says *what the program was doing* when something failed; the underlying
//! cause, when there is one, is attached as the error's `source`. Printed with its chain
//! (as the binaries do, using `{:#}` from `anyhow`), an error reads like
//! `could not connect to 127.0.0.1:5000: Connection refused (os error 111)`.

use std::io;

/// Everything that can go wrong in a ClassChat program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client could not reach the server.
    #[error("could not connect to {addr}")]
    Connect {
        /// `HOST:PORT` as given on the command line.
        addr: String,
        #[source]
        source: io::Error,
    },

    /// The server could not listen on the requested address (port in use, bad host, …).
    #[error("could not listen on {addr}")]
    Listen {
        /// `HOST:PORT` as given on the command line.
        addr: String,
        #[source]
        source: io::Error,
    },

    /// Reading from or writing to the other side of the connection failed.
    #[error("connection to the server failed")]
    Connection(#[source] io::Error),

    /// Reading the user's lines from standard input failed.
    #[error("could not read standard input")]
    Stdin(#[source] io::Error),

    /// Printing to standard output failed (for example, the reader went away).
    #[error("could not write to standard output")]
    Stdout(#[source] io::Error),

    /// Task 4: the server refused to register the client's name.
    #[error("could not register as '{name}': {reason}")]
    Registration {
        /// The name the client asked for.
        name: String,
        /// The server's explanation.
        reason: String,
    },

    /// Task 4: the server answered the registration with something unexpected or closed.
    #[error("the server did not confirm the registration")]
    NoRegistrationReply,

    /// The server accepted the connection but did not answer in time (week-1 lab, task 14).
    #[error("the server did not respond within {seconds} s")]
    NoResponse {
        /// How long the client waited.
        seconds: u64,
    },

    /// Signal handlers or the async runtime could not be set up.
    #[error("could not start up")]
    Startup(#[source] io::Error),
}
