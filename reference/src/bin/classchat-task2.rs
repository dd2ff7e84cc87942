//! `classchat-task2`: ClassChat Task 2: a client that sends and receives at the same time (server pushes its stdin lines).
//!
//! Usage: `classchat-task2 server --port <PORT> [--host <HOST>]` or
//! `classchat-task2 client --host <HOST> --port <PORT>`; see `--help`.

use std::process::ExitCode;

use clap::Parser;
use classchat_reference::cli::Command;
use classchat_reference::{launch, task2};

#[derive(Debug, Parser)]
#[command(
    name = "classchat-task2",
    version,
    about = "ClassChat Task 2: a client that sends and receives at the same time (server pushes its stdin lines)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = launch::run(async move {
        match cli.command {
            Command::Server(args) => task2::server::run(args).await?,
            Command::Client(args) => task2::client::run(args).await?,
        }
        anyhow::Ok(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
