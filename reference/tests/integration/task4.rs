//! Task 4: registration and routing of JSON chat messages.

use serde_json::{Value, json};

use crate::support::{Conn, DEADLINE, Program, Server, Task};

const GREETING: &str = "connected to ClassChat; please register";

/// Starts a Task 4 client named `name` and waits until it is registered.
fn chat_client(server: &Server, name: &'static str) -> Program {
    let mut client = server.client(Task::Four, &["--name", name]);
    client.expect_line(GREETING);
    client.expect_line(&format!("registered as {name}"));
    client
}

/// Opens a raw connection and registers `name` on it.
fn registered(server: &Server, name: &str) -> Conn {
    let mut conn = server.connect();
    assert_eq!(conn.read_json()["status"], "ok");
    conn.send_line(&json!({"status": "register", "sender": name}).to_string());
    let reply = conn.read_json();
    assert_eq!(reply["status"], "ok", "registering {name}: {reply}");
    conn
}

fn chat(sender: &str, receiver: &str, text: &str) -> String {
    json!({"status": "1", "sender": sender, "receiver": receiver, "text": text}).to_string()
}

fn assert_error_mentioning(reply: &Value, word: &str) {
    assert_eq!(reply["status"], "error", "{reply}");
    let text = reply["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(word),
        "error text should mention {word:?}: {reply}"
    );
}

#[test]
fn clients_chat_through_the_server() {
    let server = Server::start(Task::Four);
    let mut alice = chat_client(&server, "alice");
    let mut bob = chat_client(&server, "bob");
    let mut carol = chat_client(&server, "carol");

    alice.type_line("bob: hello there");
    bob.expect_line("alice: hello there");
    bob.type_line("alice: hi alice");
    alice.expect_line("bob: hi alice");

    // Carol's first message is bob's, so alice's message to bob did not reach her.
    bob.type_line("carol: just you");
    carol.expect_line("bob: just you");

    alice.type_line("exit");
    alice.expect_line("goodbye, alice");
    assert!(alice.wait_exit().success());
}

#[test]
fn unknown_receiver_gets_an_error_naming_it_and_the_connection_stays_open() {
    let server = Server::start(Task::Four);
    let mut alice = chat_client(&server, "alice");
    let mut bob = chat_client(&server, "bob");

    alice.type_line("nobody: are you there?");
    alice.expect_line("error: receiver 'nobody' is not online");
    alice.type_line("bob: still connected");
    bob.expect_line("alice: still connected");

    // The same, on the wire.
    let mut raw = registered(&server, "dave");
    raw.send_line(&chat("dave", "nobody", "hi"));
    assert_error_mentioning(&raw.read_json(), "nobody");
    raw.send_line(&chat("dave", "bob", "hi bob"));
    bob.expect_line("dave: hi bob");
}

#[test]
fn a_taken_name_is_refused_and_that_connection_closed() {
    let server = Server::start(Task::Four);
    let _alice = registered(&server, "alice");

    let mut impostor = server.connect();
    impostor.read_json();
    impostor.send_line(&json!({"status": "register", "sender": "alice"}).to_string());
    assert_error_mentioning(&impostor.read_json(), "taken");
    impostor.expect_closed();

    // The reference client reports it and fails.
    let mut client = server.client(Task::Four, &["--name", "alice"]);
    client.expect_line(GREETING);
    client.expect_line("error: the name 'alice' is taken");
    assert!(!client.wait_exit().success());
}

#[test]
fn a_forged_sender_is_replaced_by_the_registered_name() {
    let server = Server::start(Task::Four);
    let mut mallory = registered(&server, "mallory");
    let mut bob = registered(&server, "bob");

    mallory.send_line(&chat("alice", "bob", "it's me, alice"));
    let forwarded = bob.read_json();
    assert_eq!(forwarded["sender"], "mallory", "{forwarded}");
    assert_eq!(forwarded["text"], "it's me, alice", "{forwarded}");
}

#[test]
fn malformed_lines_get_errors_and_nothing_breaks() {
    let server = Server::start(Task::Four);
    let mut conn = server.connect();
    conn.read_json();

    let over_long = format!(
        r#"{{"status":"register","sender":"{}"}}"#,
        "x".repeat(70_000)
    );
    for bad in [
        "not json at all",
        "[1, 2, 3]",
        "{}",
        r#"{"status":"1","receiver":"bob"}"#,
        r#"{"status":"teleport"}"#,
        r#"{"status":"register","sender":"two words"}"#,
        r#"{"status":"1","sender":"x","receiver":"bob","text":"before registering"}"#,
        &over_long,
    ] {
        conn.send_line(bad);
        let reply = conn.read_json();
        assert_eq!(reply["status"], "error", "for {bad:.40}: {reply}");
    }
    conn.send_raw(b"\xff\xfe\n");
    assert_eq!(conn.read_json()["status"], "error");

    // Still the same, working connection.
    conn.send_line(&json!({"status": "register", "sender": "survivor"}).to_string());
    assert_eq!(conn.read_json()["status"], "ok");
}

#[test]
fn leaving_releases_the_name() {
    let server = Server::start(Task::Four);
    let mut bob = registered(&server, "bob");

    // Leaving with an exit message.
    let mut alice = registered(&server, "alice");
    alice.send_line(&json!({"status": "exit", "sender": "alice"}).to_string());
    assert_eq!(alice.read_json()["status"], "ok");
    alice.expect_closed();
    bob.send_line(&chat("bob", "alice", "are you gone?"));
    assert_error_mentioning(&bob.read_json(), "alice");

    // Leaving by closing the connection: the name becomes free again.
    drop(registered(&server, "alice"));
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let mut again = server.connect();
        again.read_json();
        again.send_line(&json!({"status": "register", "sender": "alice"}).to_string());
        if again.read_json()["status"] == "ok" {
            break;
        }
        // The server has not noticed the close yet; the refused attempt costs a round trip.
        assert!(std::time::Instant::now() < deadline, "name never released");
    }
}
