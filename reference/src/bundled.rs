//! One entry point for all four model solutions: the `classchat-taskN` binaries call [`main`],
//! and another program (the grader) carries them inside its own binary and starts them as
//! `<program> reference --task N server|client ...` through [`run`].
//!
//! Guarantees: the same behaviour whichever way a solution is started (same arguments, same
//! environment variables, same messages, same exit statuses: 0 success, 1 failure, 2 usage
//! error); an unknown task number is a usage error.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Command, NamedCommand};
use crate::{http, launch, task1, task2, task3, task4};

#[derive(Debug, Parser)]
struct Plain {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Parser)]
struct Named {
    #[command(subcommand)]
    command: NamedCommand,
}

/// What each task's program is, for `--help`.
fn about(task: u32) -> &'static str {
    match task {
        1 => "ClassChat Task 1: a basic TCP server and a turn-based client.",
        2 => {
            "ClassChat Task 2: a client that sends and receives at the same time (server pushes its stdin lines)."
        }
        3 => "ClassChat Task 3: a server for many simultaneous clients (client as in Task 2).",
        31 => "Lab 5 (http-server): a minimal HTTP/1.1 server on a raw socket (server only).",
        32 => {
            "Lab 5 (http-threaded): the minimal HTTP/1.1 server, serving connections concurrently (server only)."
        }
        _ => "ClassChat Task 4: clients send each other messages through the server (JSON lines).",
    }
}

/// Parses `args` (`args[0]` names the program in help and errors); exits on a usage error.
fn parse<P: Parser>(task: u32, args: Vec<OsString>) -> P {
    let matches = P::command()
        .about(about(task))
        .version(env!("CARGO_PKG_VERSION"))
        .get_matches_from(args);
    P::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs the model solution of `task` with `args` (`args[0]` is the program name used in help and
/// error messages). Returns the process exit status (0 success, 1 failure, 2 usage error).
pub fn run(task: u32, args: Vec<OsString>) -> u8 {
    let outcome = match task {
        1..=3 => {
            let cli: Plain = parse(task, args);
            launch::run(async move {
                match (task, cli.command) {
                    (1, Command::Server(a)) => task1::server::run(a).await,
                    (1, Command::Client(a)) => task1::client::run(a).await,
                    (2, Command::Server(a)) => task2::server::run(a).await,
                    (3, Command::Server(a)) => task3::run(a).await,
                    // The Task 3 client is the Task 2 client.
                    (_, Command::Client(a)) => task2::client::run(a).await,
                    (_, Command::Server(a)) => task2::server::run(a).await,
                }
            })
        }
        4 => {
            let cli: Named = parse(task, args);
            launch::run(async move {
                match cli.command {
                    NamedCommand::Server(a) => task4::server::run(a).await,
                    NamedCommand::Client(a) => task4::client::run(a).await,
                }
            })
        }
        31 | 32 => {
            let cli: Plain = parse(task, args);
            match cli.command {
                Command::Server(a) => launch::run(http::run(task, a)),
                Command::Client(_) => {
                    eprintln!(
                        "task {task} has no client: its programs are HTTP servers (use `server --port P`)"
                    );
                    return 2;
                }
            }
        }
        other => {
            eprintln!("there is no reference solution for task {other} (tasks 1-4, 31, 32)");
            return 2;
        }
    };
    match outcome {
        Ok(()) => 0,
        Err(error) => {
            // With its causes: `could not connect to 127.0.0.1:5000: Connection refused ...`.
            eprintln!("{:#}", anyhow::Error::from(error));
            1
        }
    }
}

/// The `main` of the `classchat-task<task>` binary: [`run`] with the process's arguments.
pub fn main(task: u32) -> ExitCode {
    ExitCode::from(run(task, std::env::args_os().collect()))
}
