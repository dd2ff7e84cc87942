//! `classchat-task4`: ClassChat Task 4, clients messaging each other through the server.
//!
//! Usage: `classchat-task4 server --port <PORT> [--host <HOST>]` or
//! `classchat-task4 client --host <HOST> --port <PORT> --name <NAME>`; see `--help`.

fn main() -> std::process::ExitCode {
    classchat_reference::bundled::main(4)
}
