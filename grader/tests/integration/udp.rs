//! UDP labs (task 21 echo, task 22 chat): the bundled references score 100%, every fixture gets
//! exactly the verdicts its one mistake explains, a UDP server is found ready by its bound socket
//! (in a namespace and on the host network), and a TCP listener is not taken for one.

use grader::verdict::Status::{self, *};

use crate::support::{
    assert_failures, check_bundled_reference, check_fixture, fixture, grade, scenario,
};

const BINDS: &str = "server binds the assigned UDP port";
const ECHO_ONE: &str = "server echoes a datagram to its sender";
const ECHO_SEVERAL: &str = "server echoes several datagrams in order";
const ECHO_2000: &str = "a 2000-byte datagram comes back whole";
const TWO_CLIENTS: &str = "two clients each get only their own echo";
const EMPTY: &str = "an empty datagram does not stop the server";
const LOST: &str = "client reports a lost datagram";
const NO_HANG: &str = "client does not hang when the server never answers";

const REACHES: &str = "a line reaches the other members";
const NOT_SENDER: &str = "the sender does not get its own line back";
const IN_TURN: &str = "every member can speak in turn";
const LEFT: &str = "a member that left gets nothing more";
const IDLE: &str = "client prints relayed lines while idle";

fn echo(name: &str, expected: &[(&str, Status)]) {
    check_fixture(21, name, expected);
}

fn chat(name: &str, expected: &[(&str, Status)]) {
    check_fixture(22, name, expected);
}

#[test]
fn references_score_full_marks() {
    check_bundled_reference(21);
    check_bundled_reference(22);
}

#[test]
fn a_udp_server_is_ready_on_the_host_network_too() {
    let g = grade(
        21,
        &fixture(21, "correct_other_style.py"),
        &["--isolation", "host"],
    );
    assert_failures(&g, &[]);
}

#[test]
fn a_tcp_listener_is_not_a_bound_udp_socket() {
    // A Task 1 server listens on TCP: for the UDP lab it never binds its UDP port.
    let g = grade(
        21,
        &crate::support::fixture(1, "correct_other_style.py"),
        &["--role", "server"],
    );
    let never: Vec<(&str, Status)> = [BINDS, ECHO_ONE, ECHO_SEVERAL, ECHO_2000, TWO_CLIENTS, EMPTY]
        .into_iter()
        .map(|n| (n, NeverListened))
        .collect();
    assert_failures(&g, &never);
    let s = scenario(&g, ECHO_ONE);
    assert!(s.message.contains("not listening on port"), "{}", s.message);
    assert!(
        s.hint.as_deref().unwrap_or("").contains("UDP socket"),
        "{:?}",
        s.hint
    );
}

#[test]
fn echo_correct_other_style_passes_everything() {
    echo("correct_other_style.py", &[]);
}

#[test]
fn echo_reply_to_the_first_sender_reaches_the_wrong_client() {
    let g = grade(21, &fixture(21, "replies_to_first_sender.py"), &[]);
    assert_failures(&g, &[(TWO_CLIENTS, TimedOut)]);
    let s = scenario(&g, TWO_CLIENTS);
    assert!(
        s.message.contains("on socket b") && s.message.contains("it arrived on socket a instead"),
        "{}",
        s.message
    );
    assert!(
        s.hint
            .as_deref()
            .unwrap_or("")
            .contains("recvfrom() returned"),
        "{:?}",
        s.hint
    );
    // The transcript shows both echoes arriving on socket a.
    let on_a = s
        .transcript
        .iter()
        .filter(|l| l.contains(" a ") && l.contains("← [15 bytes from"))
        .count();
    assert_eq!(on_a, 2, "{:#?}", s.transcript);
}

#[test]
fn echo_recvfrom_1024_truncates_a_2000_byte_datagram() {
    let g = grade(21, &fixture(21, "truncates_at_1024.py"), &[]);
    assert_failures(&g, &[(ECHO_2000, TimedOut)]);
    let s = scenario(&g, ECHO_2000);
    assert!(
        s.message
            .contains("the 2000-byte datagram came back as its first 1024 bytes"),
        "{}",
        s.message
    );
    assert!(
        s.hint.as_deref().unwrap_or("").contains("recvfrom(65535)"),
        "{:?}",
        s.hint
    );
}

#[test]
fn echo_client_without_a_timeout_hangs_on_a_lost_datagram() {
    let g = grade(21, &fixture(21, "client_no_timeout.py"), &[]);
    assert_failures(&g, &[(LOST, TimedOut), (NO_HANG, TimedOut)]);
    let s = scenario(&g, NO_HANG);
    assert!(s.message.contains("still running"), "{}", s.message);
    // The transcript shows the datagram the grader dropped.
    assert!(
        s.transcript
            .iter()
            .any(|l| l.contains("srv") && l.contains("← [13 bytes from")),
        "{:#?}",
        s.transcript
    );
}

#[test]
fn echo_server_stopping_on_an_empty_datagram() {
    let g = grade(21, &fixture(21, "stops_on_empty_datagram.py"), &[]);
    assert_failures(&g, &[(EMPTY, Failed)]);
    let s = scenario(&g, EMPTY);
    assert!(
        s.message.contains("the server had exited (exit status 0)"),
        "{}",
        s.message
    );
}

#[test]
fn chat_correct_other_style_passes_everything() {
    chat("correct_other_style.py", &[]);
}

#[test]
fn chat_server_echoing_to_the_sender() {
    let g = grade(22, &fixture(22, "echoes_to_sender.py"), &[]);
    assert_failures(&g, &[(NOT_SENDER, Failed)]);
    let s = scenario(&g, NOT_SENDER);
    assert!(
        s.message.contains("expected no datagram on socket b")
            && s.message.contains("\"bob: hello "),
        "{}",
        s.message
    );
    assert!(
        s.hint
            .as_deref()
            .unwrap_or("")
            .contains("except the address"),
        "{:?}",
        s.hint
    );
}

#[test]
fn chat_server_forgetting_earlier_members() {
    chat(
        "forgets_earlier_members.py",
        &[
            (REACHES, TimedOut),
            (NOT_SENDER, TimedOut),
            (IN_TURN, TimedOut),
            (LEFT, TimedOut),
        ],
    );
}

#[test]
fn chat_client_blocked_on_input() {
    chat("client_blocks_on_input.py", &[(IDLE, TimedOut)]);
}
