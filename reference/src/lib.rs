//! Model solutions of the four ClassChat tasks and of the course-pack labs built around them.
//!
//! Each task has a small binary in `src/bin/` (`classchat-task1` … `classchat-task4`) that
//! parses its command line and calls into this library. The protocol the programs speak is
//! described for humans in `tasks/PROTOCOL.md`; this crate is its executable definition.
//!
//! # Map of the crate
//!
//! | module      | what it holds                                                       |
//! |-------------|---------------------------------------------------------------------|
//! | [`cli`]     | the launch contract: `server`/`client` arguments and env variables  |
//! | [`launch`]  | starting the async runtime, SIGINT/SIGTERM, exit status             |
//! | [`lines`]   | newline framing with a 64 KiB limit (`\r\n` accepted)               |
//! | [`net`]     | listening, connecting (with a clear error), the open-file limit     |
//! | [`console`] | a client's keyboard (stdin) and screen (stdout)                     |
//! | [`accept`]  | the concurrent accept loop shared by the multi-client servers       |
//! | [`echo`]    | the Task 1 conversation: greeting, `ACK: <text>` replies, `exit`    |
//! | [`task1`]   | Task 1: the one-client-at-a-time server and the turn-based client   |
//! | [`task2`]   | Task 2: the multiplexing client and a server that pushes lines      |
//! | [`task3`]   | Task 3: the server for many simultaneous clients                    |
//! | [`task4`]   | Task 4: JSON protocol, name registry, routing server, chat client   |
//! | [`bonus`]   | Tasks 5-7 (bonus): groups, offline messages, files in one server    |
//! | [`tcp_echo`] | lab tcp-echo (task 11): a byte-exact echo server and its client    |
//! | [`udp`]     | Tasks 21–22: UDP echo (with timeouts and retries) and a UDP chat     |
//! | [`error`]   | the error type every fallible function returns                      |
//! | [`week1`]   | tasks 12–15: the week-1 extensions (sequential, validation, client timeout, concurrent timestamped replies) |
//! | [`timestamp`] | task 16: the threaded timestamp server and its one-message client |
//! | [`clock`]   | `HH:MM:SS` for the timestamped labs                                  |
//! | [`http`]    | Lab 5 (Tasks 31, 32): the minimal HTTP/1.1 server                   |
//! | [`bundled`] | one entry point for all the tasks, for programs that embed them     |
//!
//! # Why tokio
//!
//! The tasks are about waiting on several things at once: a client waits on the keyboard
//! *and* the socket (Task 2), a server waits on hundreds of sockets (Task 3) and on messages
//! routed to it from other connections (Task 4). Threads can do this too (one thread per
//! connection plus channels), but an async runtime expresses "wait for whichever comes first"
//! directly with [`tokio::select!`], costs a few kilobytes per connection instead of a thread
//! stack (1000 clients are no effort), and sleeps in `epoll_wait` when nothing happens, so an
//! idle program uses no CPU. Every wait in this crate is such an event wait: nothing polls in
//! a loop.
//!
//! # Guarantees
//!
//! * No input from the network, the keyboard or a signal makes a program panic: every
//!   failure is an [`error::Error`] value that ends, at worst, one connection.
//! * Servers log briefly to stderr only; clients print what they receive on stdout (flushed
//!   line by line) and diagnostics on stderr.
//! * SIGINT and SIGTERM end every program promptly with exit status 0.

pub mod accept;
pub mod bonus;
pub mod bundled;
pub mod cli;
pub mod clock;
pub mod console;
pub mod echo;
pub mod error;
pub mod http;
pub mod launch;
pub mod lines;
pub mod net;
pub mod task1;
pub mod task2;
pub mod task3;
pub mod task4;
pub mod tcp_echo;
pub mod timestamp;
pub mod udp;
pub mod week1;

pub use error::Error;
