//! `classchat-task4`: ClassChat Task 4, clients messaging each other through the server.
//!
//! Usage: `classchat-task4 server --port <PORT> [--host <HOST>]` or
//! `classchat-task4 client --host <HOST> --port <PORT> --name <NAME>`; see `--help`.

use std::process::ExitCode;

use clap::Parser;
use classchat_reference::cli::NamedCommand;
use classchat_reference::{launch, task4};

#[derive(Debug, Parser)]
#[command(
    name = "classchat-task4",
    version,
    about = "ClassChat Task 4: clients send each other messages through the server (JSON lines)."
)]
struct Cli {
    #[command(subcommand)]
    command: NamedCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = launch::run(async move {
        match cli.command {
            NamedCommand::Server(args) => task4::server::run(args).await?,
            NamedCommand::Client(args) => task4::client::run(args).await?,
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
