//! Task 1: a basic TCP server and client.
//!
//! The server greets each client, answers every line with `ACK: <line>` and closes the
//! connection on `exit` (see [`crate::echo`] for the exact conversation). The client is
//! strictly turn-based: it sends one line, waits for the reply, prints it, and only then
//! reads the next line from the keyboard. Task 2 removes that limitation.

pub mod client;
pub mod server;
