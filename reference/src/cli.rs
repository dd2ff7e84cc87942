//! The launch contract: how every ClassChat program is started.
//!
//! ```text
//! <bin> server --port <PORT> [--host <HOST>]        (host defaults to 127.0.0.1)
//! <bin> client --host <HOST> --port <PORT>          (Task 4 adds --name <NAME>)
//! ```
//!
//! Each value may also come from the environment (`CLASSCHAT_HOST`, `CLASSCHAT_PORT`,
//! `CLASSCHAT_NAME`); a flag on the command line wins over the environment. The binaries put
//! these argument structs under their own `#[derive(Parser)]` so that `--help` names the
//! right program.

use clap::{Args, Subcommand};

/// Default address for both sides: loopback, so nothing is exposed to the network by accident.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// Where a server listens.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// TCP port to listen on.
    #[arg(long, env = "CLASSCHAT_PORT")]
    pub port: u16,

    /// Address (or host name) to listen on.
    #[arg(long, env = "CLASSCHAT_HOST", default_value = DEFAULT_HOST)]
    pub host: String,
}

/// Where a client connects to.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Host name or address of the server.
    #[arg(long, env = "CLASSCHAT_HOST", default_value = DEFAULT_HOST)]
    pub host: String,

    /// TCP port of the server.
    #[arg(long, env = "CLASSCHAT_PORT")]
    pub port: u16,
}

/// A Task 4 client: where to connect, and under which name to register.
#[derive(Debug, Clone, Args)]
pub struct NamedClientArgs {
    #[command(flatten)]
    pub server: ClientArgs,

    /// The name to register with the server (others send messages to this name).
    #[arg(long, env = "CLASSCHAT_NAME")]
    pub name: String,
}

/// The subcommands of the Task 1–3 binaries.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server.
    Server(ServerArgs),
    /// Run the client: lines typed on stdin go to the server, its lines come out on stdout.
    Client(ClientArgs),
}

/// The subcommands of the Task 4 binary.
#[derive(Debug, Clone, Subcommand)]
pub enum NamedCommand {
    /// Run the server.
    Server(ServerArgs),
    /// Run the client: `bob: hello` on stdin sends "hello" to bob.
    Client(NamedClientArgs),
}
