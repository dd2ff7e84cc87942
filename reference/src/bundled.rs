//! One entry point for all the model solutions (ClassChat Tasks 1–4, the bonus tasks 5–7 and
//! the course pack's labs 11–16 and 21–22): the `classchat-taskN` binaries call [`main`],
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
use crate::week1::Rules;
use crate::{bonus, http, launch, task1, task2, task3, task4, tcp_echo, timestamp, udp, week1};

#[derive(Debug, Parser)]
struct Plain {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Parser)]
struct Stamped {
    #[command(subcommand)]
    command: timestamp::Command,
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
        5..=7 => {
            "ClassChat bonus tasks 5-7: groups, offline messages and file transfer in one server (client as in Task 4)."
        }
        11 => "Lab tcp-echo: a server that echoes every byte back unchanged, and its client.",
        12 => "Week-1 lab A: an acknowledging server that serves one client after another.",
        13 => {
            "Week-1 lab B: as A, refusing empty and over-long (over 100 characters) messages and closing."
        }
        14 => "Week-1 lab C: as A, with a client that gives up on a silent server after 5 s.",
        15 => {
            "Week-1 lab D: a concurrent server replying `[ACK @HH:MM:SS] text`, logging timestamped lines on stdout."
        }
        16 => {
            "Timestamp lab: a threaded server replying `[HH:MM:SS] text`; a client for one message or interactive use."
        }
        21 => {
            "UDP echo (task 21): a server that echoes each datagram to its sender, and a client that retries lost datagrams."
        }
        22 => {
            "UDP chat (task 22): JOIN name, lines relayed as `name: text` to every other member, LEAVE."
        }
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
        4..=7 => {
            let cli: Named = parse(task, args);
            launch::run(async move {
                match cli.command {
                    NamedCommand::Server(a) if task == 4 => task4::server::run(a).await,
                    // Tasks 5-7 (bonus) share one server; their client is the Task 4 client.
                    NamedCommand::Server(a) => bonus::server::run(a).await,
                    NamedCommand::Client(a) => task4::client::run(a).await,
                }
            })
        }
        11 => {
            let cli: Plain = parse(task, args);
            launch::run(async move {
                match cli.command {
                    Command::Server(a) => tcp_echo::server(a).await,
                    Command::Client(a) => tcp_echo::client(a).await,
                }
            })
        }
        12..=15 => {
            let cli: Plain = parse(task, args);
            let rules = Rules {
                validate: task == 13,
                timestamps: task == 15,
            };
            launch::run(async move {
                match cli.command {
                    Command::Server(a) if task == 15 => {
                        week1::server::run_concurrent(a, rules).await
                    }
                    Command::Server(a) => week1::server::run_sequential(a, rules).await,
                    Command::Client(a) => week1::client::run(a).await,
                }
            })
        }
        16 => {
            let cli: Stamped = parse(task, args);
            launch::run(async move {
                match cli.command {
                    timestamp::Command::Server(a) => timestamp::run_server(a).await,
                    timestamp::Command::Client(a) => timestamp::run_client(a).await,
                }
            })
        }
        21 => {
            let cli: Plain = parse(task, args);
            launch::run(async move {
                match cli.command {
                    Command::Server(a) => udp::echo::server(a).await,
                    Command::Client(a) => udp::echo::client(a).await,
                }
            })
        }
        22 => {
            let cli: Named = parse(task, args);
            launch::run(async move {
                match cli.command {
                    NamedCommand::Server(a) => udp::chat::server(a).await,
                    NamedCommand::Client(a) => udp::chat::client(a).await,
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
            eprintln!(
                "there is no reference solution for task {other} (tasks 1-7, 11-16, 21-22, 31-32)"
            );
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
