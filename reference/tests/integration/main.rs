//! Integration tests: the real reference binaries, talking to each other over loopback.
//!
//! One test binary (this file and its modules) so that cargo links it once. Each test starts
//! its own servers on ports of its own, so the tests run in parallel safely.

mod support;
mod task1;
mod task2;
mod task3;
mod task4;

use nix::sys::signal::Signal;
use support::{Program, Server, Task, free_port};

#[test]
fn every_client_reports_a_refused_connection_on_one_line() {
    for task in Task::ALL {
        // Nothing listens on a port that was free a moment ago and was never handed out.
        let port = free_port();
        let mut client = Program::client(task, port, &task.name_args("alice"));
        let status = client.wait_exit();
        assert!(!status.success(), "{task:?} client must fail, got {status}");
        let stderr = client.stderr_lines();
        assert_eq!(
            stderr.len(),
            1,
            "{task:?}: one line on stderr, got {stderr:?}"
        );
        assert!(
            stderr[0].starts_with(&format!("could not connect to 127.0.0.1:{port}: ")),
            "{task:?}: {stderr:?}"
        );
        assert!(!stderr[0].contains("panicked"), "{stderr:?}");
    }
}

#[test]
fn every_server_exits_cleanly_on_sigint_and_sigterm() {
    for task in Task::ALL {
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            let mut server = Server::start(task);
            // A connected client must not keep the server from stopping.
            let _conn = server.connect();
            server.program.signal(signal);
            let status = server.program.wait_exit();
            assert!(status.success(), "{task:?} server on {signal}: {status}");
        }
    }
}

#[test]
fn every_client_exits_cleanly_on_sigterm() {
    for task in Task::ALL {
        let server = Server::start(task);
        let mut client = server.client(task, &task.name_args("alice"));
        // Once the client has printed its first line it is connected and idle.
        client.next_line();
        client.signal(Signal::SIGTERM);
        let status = client.wait_exit();
        assert!(status.success(), "{task:?} client on SIGTERM: {status}");
    }
}
