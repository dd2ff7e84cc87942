//! Task 2: the multiplexing client, and a server that pushes its stdin lines.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::support::{Program, Server, Task};

const GREETING: &str = "ACK: connected to ClassChat";

#[test]
fn client_prints_a_pushed_line_while_the_user_types_nothing() {
    let mut server = Server::start(Task::Two);
    let mut client = server.client(Task::Two, &[]);
    client.expect_line(GREETING);

    server.program.type_line("announcement: lab starts at 10");
    client.expect_line("announcement: lab starts at 10");
}

#[test]
fn client_sends_lines_without_waiting_for_replies() {
    let server = Server::start(Task::Two);
    let mut client = server.client(Task::Two, &[]);
    // Typed before the greeting has even arrived.
    client.type_line("one");
    client.type_line("two");
    client.type_line("three");
    client.expect_line(GREETING);
    client.expect_line("ACK: one");
    client.expect_line("ACK: two");
    client.expect_line("ACK: three");

    client.type_line("EXIT");
    client.expect_line("ACK: goodbye");
    assert!(client.wait_exit().success());
}

#[test]
fn client_says_so_and_exits_when_the_server_closes() {
    let server = Server::start(Task::Two);
    let mut client = server.client(Task::Two, &[]);
    client.expect_line(GREETING);

    server.program.signal(Signal::SIGTERM);
    client.expect_line("server closed the connection");
    assert!(client.wait_exit().success());
}

#[test]
fn client_exits_at_end_of_input_after_printing_the_last_replies() {
    let server = Server::start(Task::Two);
    let mut client = server.client(Task::Two, &[]);
    client.type_line("last words");
    client.close_stdin();
    client.expect_line(GREETING);
    client.expect_line("ACK: last words");
    assert!(client.wait_exit().success());
}

#[test]
fn server_keeps_serving_after_its_stdin_ends() {
    let mut server = Server::start(Task::Two);
    server.program.close_stdin();

    let mut client = server.client(Task::Two, &[]);
    client.expect_line(GREETING);
    client.type_line("still serving?");
    client.expect_line("ACK: still serving?");
    assert!(server.program.is_running());
}

#[test]
fn pushed_lines_reach_every_client() {
    let mut server = Server::start(Task::Two);
    let mut first = server.client(Task::Two, &[]);
    let mut second = server.connect();
    first.expect_line(GREETING);
    assert_eq!(second.read_line(), GREETING);

    server.program.type_line("to everyone");
    first.expect_line("to everyone");
    assert_eq!(second.read_line(), "to everyone");
}

/// CPU time (user + system) of a process so far, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The fields after the command name, which is in parentheses and may contain spaces.
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let field = |i: usize| fields[i].parse::<u64>().expect("numeric stat field");
    field(11) + field(12)
}

#[test]
fn idle_client_does_not_burn_cpu() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return; // Not Linux: nothing to measure with.
    }
    let server = Server::start(Task::Two);
    let mut client: Program = server.client(Task::Two, &[]);
    client.expect_line(GREETING);

    let before = cpu_ticks(client.pid());
    // A second in which neither the user nor the server says anything.
    client.expect_silence_for(Duration::from_secs(1));
    let used = cpu_ticks(client.pid()) - before;
    // A busy-polling client would use most of that second (~100 ticks).
    assert!(
        used <= 20,
        "idle client used {used} ticks of CPU in one second"
    );
}
