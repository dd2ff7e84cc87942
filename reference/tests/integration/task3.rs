//! Task 3: many clients at once.

use crate::support::{Conn, Server, Task};

const GREETING: &str = "ACK: connected to ClassChat";
const CLIENTS: usize = 1000;

#[test]
fn serves_a_thousand_simultaneous_clients() {
    // Our side of the 1000 connections needs descriptors too.
    let _ = classchat_reference::net::raise_open_file_limit();
    let server = Server::start(Task::Three);

    let mut conns: Vec<Conn> = (0..CLIENTS)
        .map(|_| {
            let mut conn = server.connect();
            assert_eq!(conn.read_line(), GREETING);
            conn
        })
        .collect();
    // All 1000 are connected now. Each says something of its own...
    for (i, conn) in conns.iter_mut().enumerate() {
        conn.send_line(&format!("client {i}"));
    }
    // ...and gets exactly its own reply.
    for (i, conn) in conns.iter_mut().enumerate() {
        assert_eq!(conn.read_line(), format!("ACK: client {i}"));
    }
}

#[test]
fn a_silent_client_does_not_delay_others() {
    let server = Server::start(Task::Three);
    let _silent = server.connect();
    let _half_a_line = {
        let mut conn = server.connect();
        conn.send_raw(b"never finished");
        conn
    };

    let mut client = server.client(Task::Three, &[]);
    client.expect_line(GREETING);
    client.type_line("not delayed");
    client.expect_line("ACK: not delayed");
    client.type_line("exit");
    client.expect_line("ACK: goodbye");
    assert!(client.wait_exit().success());
}

#[test]
fn replies_go_only_to_their_sender_in_order() {
    let server = Server::start(Task::Three);
    let mut alice = server.connect();
    let mut bob = server.connect();
    assert_eq!(alice.read_line(), GREETING);
    assert_eq!(bob.read_line(), GREETING);

    alice.send_line("a1");
    bob.send_line("b1");
    alice.send_line("a2");
    bob.send_line("b2");
    alice.send_line("exit");
    bob.send_line("exit");

    // Each sees exactly its own replies, in order, and nothing else before the close.
    for (conn, name) in [(&mut alice, "a"), (&mut bob, "b")] {
        assert_eq!(conn.read_line(), format!("ACK: {name}1"));
        assert_eq!(conn.read_line(), format!("ACK: {name}2"));
        assert_eq!(conn.read_line(), "ACK: goodbye");
        conn.expect_closed();
    }
}

#[test]
fn survives_resets_at_any_point() {
    let mut server = Server::start(Task::Three);
    for round in 0..50 {
        // Before the greeting is read.
        server.connect().reset();
        // In the middle of a line.
        let mut conn = server.connect();
        conn.send_raw(b"half");
        conn.reset();
        // After a line, before its reply is read.
        let mut conn = server.connect();
        conn.send_line(&format!("round {round}"));
        conn.reset();
        // After a normal exchange.
        let mut conn = server.connect();
        assert_eq!(conn.read_line(), GREETING);
        conn.send_line("ok");
        assert_eq!(conn.read_line(), "ACK: ok");
        conn.reset();
    }

    let mut conn = server.connect();
    assert_eq!(conn.read_line(), GREETING);
    conn.send_line("still up");
    assert_eq!(conn.read_line(), "ACK: still up");
    assert!(server.program.is_running());
}
