//! Task 1: the turn-based client and the one-client-at-a-time server.

use crate::support::{Server, Task};

const GREETING: &str = "ACK: connected to ClassChat";
const MAX_LINE: usize = 64 * 1024;

#[test]
fn client_and_server_talk_in_turns() {
    let server = Server::start(Task::One);
    let mut client = server.client(Task::One, &[]);

    client.expect_line(GREETING);
    client.type_line("hello");
    client.expect_line("ACK: hello");
    client.type_line("");
    client.type_line("héllo wörld");
    client.expect_line("ACK: héllo wörld");
    client.type_line("exit");
    client.expect_line("ACK: goodbye");
    assert!(client.wait_exit().success());
}

#[test]
fn client_exits_at_end_of_input() {
    let server = Server::start(Task::One);
    let mut client = server.client(Task::One, &[]);
    client.expect_line(GREETING);
    client.close_stdin();
    assert!(client.wait_exit().success());
}

#[test]
fn server_greets_first_and_replies_to_every_line() {
    let server = Server::start(Task::One);
    let mut conn = server.connect();

    // The greeting arrives before we send anything.
    assert_eq!(conn.read_line(), GREETING);
    conn.send_line("hello");
    assert_eq!(conn.read_line(), "ACK: hello");
    conn.send_raw(b"windows\r\n");
    assert_eq!(conn.read_line(), "ACK: windows");
    // An empty line gets no reply, and the connection stays usable.
    conn.send_line("");
    conn.send_line("after empty");
    assert_eq!(conn.read_line(), "ACK: after empty");
    // Two lines in one write get two replies.
    conn.send_raw(b"one\ntwo\n");
    assert_eq!(conn.read_line(), "ACK: one");
    assert_eq!(conn.read_line(), "ACK: two");
}

#[test]
fn server_handles_lines_up_to_64_kib_whole() {
    let server = Server::start(Task::One);
    let mut conn = server.connect();
    assert_eq!(conn.read_line(), GREETING);

    let longest = "x".repeat(MAX_LINE);
    conn.send_line(&longest);
    assert_eq!(conn.read_line(), format!("ACK: {longest}"));

    // One byte more is refused with an error, and the connection carries on.
    conn.send_line(&"y".repeat(MAX_LINE + 1));
    assert!(conn.read_line().starts_with("ERROR"));
    conn.send_line("still here");
    assert_eq!(conn.read_line(), "ACK: still here");
}

#[test]
fn exit_closes_only_that_connection() {
    let server = Server::start(Task::One);
    let mut conn = server.connect();
    assert_eq!(conn.read_line(), GREETING);
    conn.send_line("  ExIt ");
    assert_eq!(conn.read_line(), "ACK: goodbye");
    conn.expect_closed();

    // The server goes on to the next client.
    let mut next = server.connect();
    assert_eq!(next.read_line(), GREETING);
    next.send_line("exit is over");
    assert_eq!(next.read_line(), "ACK: exit is over");
}

#[test]
fn server_survives_abrupt_disconnects() {
    let mut server = Server::start(Task::One);

    // Half a line, then an orderly close.
    let mut conn = server.connect();
    assert_eq!(conn.read_line(), GREETING);
    conn.send_raw(b"half a li");
    drop(conn);

    // A reset before reading anything.
    server.connect().reset();

    // Half a line, then a reset.
    let mut conn = server.connect();
    conn.send_raw(b"half a li");
    conn.reset();

    // A line whose reply can no longer be delivered.
    let mut conn = server.connect();
    conn.send_line("reply to nobody");
    conn.reset();

    let mut conn = server.connect();
    assert_eq!(conn.read_line(), GREETING);
    conn.send_line("anyone there?");
    assert_eq!(conn.read_line(), "ACK: anyone there?");
    assert!(server.program.is_running());
}
