//! One entry point for all four model solutions, so another program (the grader) can carry them
//! inside its own binary and start them as `<program> reference --task N server|client ...`.
//!
//! Guarantees: the same behaviour as the `classchat-taskN` binaries (same arguments, same
//! environment variables, same exit statuses); an unknown task number is a usage error (exit 2).

use clap::Parser;

use crate::cli::{Command, NamedCommand};
use crate::{launch, task1, task2, task3, task4};

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

/// Runs the model solution of `task` with `args` (`args[0]` is the program name used in help and
/// error messages). Returns the process exit status (0 success, 1 failure, 2 usage error).
pub fn run(task: u32, args: Vec<String>) -> u8 {
    let outcome = match task {
        1..=3 => {
            let cli = Plain::parse_from(args);
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
            let cli = Named::parse_from(args);
            launch::run(async move {
                match cli.command {
                    NamedCommand::Server(a) => task4::server::run(a).await,
                    NamedCommand::Client(a) => task4::client::run(a).await,
                }
            })
        }
        other => {
            eprintln!("there is no reference solution for task {other} (tasks 1-4)");
            return 2;
        }
    };
    match outcome {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("{error}");
            1
        }
    }
}
