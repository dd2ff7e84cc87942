//! Task 2: an advanced client that sends and receives at the same time.
//!
//! The Task 1 client can only do one thing at a time: while it waits for the keyboard it
//! cannot notice a message from the server. The Task 2 client waits for *both* at once and
//! reacts to whichever is ready first, sleeping (at 0% CPU) while neither is.
//!
//! The Task 2 server speaks the Task 1 protocol and can also push lines on its own: whatever
//! is typed on the server's stdin goes to every connected client. That makes the client's
//! new ability visible.

pub mod client;
pub mod server;
