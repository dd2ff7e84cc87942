//! What the validator accepts, the engine runs: every primitive step kind, in every position
//! (top level, inside `repeat`, inside `parallel`, inside a `repeat` inside `parallel`), is
//! either refused when the task file is loaded — only where its type says it cannot stand, with
//! a message saying why — or graded against a bundled reference without an infrastructure error.
//! A step kind without a sample here fails the test (`samples` panics), so a new kind is covered
//! before it ships. Protocol steps are expanded at load into primitive steps; each is sampled too,
//! under the protocol of a task that uses it (Task 1's, or the JSON chat protocol of Tasks 4, 5
//! and 7, whose bundled references grade them), and `use` with blocks in Task 4's head.

use std::collections::BTreeMap;
use std::path::Path;

use grader::spec::{
    ConnStep, DatagramStep, GroupStep, ProcessStep, ProtocolStep, SpecSource, Step, parse,
};
use grader::verdict::Status;

use crate::support::run_grader;

/// Where a sample step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Top,
    Repeat,
    Parallel,
    RepeatInParallel,
}

const POSITIONS: [Position; 4] = [
    Position::Top,
    Position::Repeat,
    Position::Parallel,
    Position::RepeatInParallel,
];

/// One use of a step kind: the task whose bundled reference it is graded against, the role,
/// the top-level steps before the group, and the steps of the group (`prefix`, the step itself,
/// `suffix`), each an inline TOML table on one line.
struct Sample {
    task: u32,
    role: &'static str,
    setup: &'static [&'static str],
    prefix: &'static [&'static str],
    step: &'static str,
    suffix: &'static [&'static str],
}

const fn sample(
    task: u32,
    role: &'static str,
    setup: &'static [&'static str],
    prefix: &'static [&'static str],
    step: &'static str,
    suffix: &'static [&'static str],
) -> Sample {
    Sample {
        task,
        role,
        setup,
        prefix,
        step,
        suffix,
    }
}

// Task 11: a TCP echo server (no acknowledgment). Task 1: a client that prints what the server
// sends and relays typed lines. Task 21: a UDP echo server. Task 32: a threaded HTTP server.
const ECHO: u32 = 11;
const CLIENT: u32 = 1;
const UDP: u32 = 21;
const HTTP: u32 = 32;
const SERVER: &[&str] = &[r#"{ do = "start_server" }"#];
const UDP_SERVER: &[&str] = &[
    r#"{ do = "start_server", udp = true }"#,
    r#"{ do = "udp_socket", sock = "u" }"#,
];
const CLIENT_UP: &[&str] = &[
    r#"{ do = "listen" }"#,
    r#"{ do = "start_client" }"#,
    r#"{ do = "accept", conn = "s" }"#,
    r#"{ do = "send", conn = "s", line = "ACK: welcome {nonce}" }"#,
    r#"{ do = "expect", on = "stdout", contains = "welcome {nonce}" }"#,
];
const CLIENT_GREETED: &[&str] = &[
    r#"{ do = "listen" }"#,
    r#"{ do = "start_client" }"#,
    r#"{ do = "accept", conn = "s" }"#,
    r#"{ do = "send", conn = "s", line = "ACK: welcome {nonce}" }"#,
];
const CONNECTED: &[&str] = &[r#"{ do = "connect", conn = "c" }"#];
const SENT: &[&str] = &[
    r#"{ do = "connect", conn = "c" }"#,
    r#"{ do = "send", conn = "c", line = "hello {nonce}" }"#,
];

// The chat protocols (newline-delimited JSON): Task 4 (messages between clients), Task 5
// (groups) and Task 7 (files); the bundled reference of 5-7 is one server with every bonus
// feature (the client as in Task 4). A server scenario's clients join inside the group, so that
// a `parallel` copy opens (and registers) its own connections.
const CHAT: u32 = 4;
const GROUPS: u32 = 5;
const FILES: u32 = 7;
const JOIN_ALICE: &str = r#"{ do = "join", conn = "alice", name = "alice" }"#;
const JOIN_BOB: &str = r#"{ do = "join", conn = "bob", name = "bob" }"#;
const ALICE_AND_BOB: &[&str] = &[JOIN_ALICE, JOIN_BOB];
const TO_BOB: &str = r#"{ do = "chat", conn = "alice", to = "bob", text = "hello bob {nonce}" }"#;
const BOB_GOT_IT: &str =
    r#"{ do = "expect_chat", on = "bob", from = "alice", text = "hello bob {nonce}" }"#;
const CREATE: &str =
    r#"{ do = "group", conn = "alice", action = "create", group = "lab-{nonce:g}" }"#;
const BOB_JOINS: &str =
    r#"{ do = "group", conn = "bob", action = "join", group = "lab-{nonce:g}" }"#;
const IN_A_GROUP: &[&str] = &[JOIN_ALICE, JOIN_BOB, CREATE, BOB_JOINS];
const TO_THE_GROUP: &str = r#"{ do = "group_chat", conn = "alice", group = "lab-{nonce:g}", text = "hello group {nonce}" }"#;
const BOB_GOT_THE_GROUP_CHAT: &str = r#"{ do = "expect_group_chat", on = "bob", group = "lab-{nonce:g}", from = "alice", text = "hello group {nonce}" }"#;
const A_FILE: &str = r#"{ do = "send_file", conn = "alice", to = "bob", filename = "notes-{nonce}.bin", data = "{base64:1024}" }"#;
const BOB_GOT_THE_FILE: &str = r#"{ do = "expect_file", on = "bob", from = "alice", filename = "notes-{nonce}.bin", data = "{base64:1024}" }"#;
// The client side of the chat protocol: the grader accepts the client, which registers.
const START_ALICE: &str = r#"{ do = "start_client", name = "alice" }"#;
const CHAT_CLIENT: &[&str] = &[
    r#"{ do = "listen" }"#,
    START_ALICE,
    r#"{ do = "welcome", conn = "s" }"#,
];
const CHAT_CLIENT_UP: &[&str] = &[
    r#"{ do = "listen" }"#,
    START_ALICE,
    r#"{ do = "welcome", conn = "s" }"#,
    r#"{ do = "expect_register", on = "s", name = "alice" }"#,
];
const CHAT_CLIENT_TYPED: &[&str] = &[
    r#"{ do = "listen" }"#,
    START_ALICE,
    r#"{ do = "welcome", conn = "s" }"#,
    r#"{ do = "expect_register", on = "s", name = "alice" }"#,
    r#"{ do = "type", line = "bob: hello there {nonce}" }"#,
];

/// The blocks of Task 4's file (`[block.<name>]`): name, parameters, steps. `served_pair`
/// starts the server, so `use` of it cannot stand inside `parallel`.
const BLOCKS: &[(&str, &[&str], &[&str])] = &[
    ("pair", &[], ALICE_AND_BOB),
    (
        "message",
        &["text"],
        &[
            r#"{ do = "chat", conn = "alice", to = "bob", text = "{text}" }"#,
            r#"{ do = "expect_chat", on = "bob", from = "alice", text = "{text}" }"#,
        ],
    ),
    (
        "served_pair",
        &[],
        &[r#"{ do = "start_server" }"#, JOIN_ALICE, JOIN_BOB],
    ),
];

/// Samples of every step kind (a kind without one fails the test).
fn samples(kind: &str) -> Vec<Sample> {
    match kind {
        // Process steps.
        "start_server" => vec![sample(ECHO, "server", &[], &[], SERVER[0], &[])],
        "listen" => vec![sample(
            CLIENT,
            "client",
            &[],
            &[],
            r#"{ do = "listen" }"#,
            &[
                r#"{ do = "start_client" }"#,
                r#"{ do = "accept", conn = "s" }"#,
            ],
        )],
        "start_client" => vec![sample(
            CLIENT,
            "client",
            &[r#"{ do = "listen" }"#],
            &[],
            r#"{ do = "start_client" }"#,
            &[r#"{ do = "accept", conn = "s" }"#],
        )],
        "accept" => vec![sample(
            CLIENT,
            "client",
            &[r#"{ do = "listen" }"#, r#"{ do = "start_client" }"#],
            &[],
            r#"{ do = "accept", conn = "s" }"#,
            &[],
        )],
        "type" => vec![sample(
            CLIENT,
            "client",
            CLIENT_UP,
            &[],
            r#"{ do = "type", line = "typed {nonce}" }"#,
            &[r#"{ do = "expect", on = "s", contains = "typed {nonce}" }"#],
        )],
        "close_stdin" => vec![sample(
            CLIENT,
            "client",
            CLIENT_UP,
            &[],
            r#"{ do = "close_stdin" }"#,
            &[],
        )],
        "expect_exit" => vec![sample(
            CLIENT,
            "client",
            CLIENT_UP,
            &[
                r#"{ do = "type", line = "exit" }"#,
                r#"{ do = "close", conn = "s" }"#,
            ],
            r#"{ do = "expect_exit", process = "client", code = 0, within = "3s" }"#,
            &[],
        )],
        "expect_running" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "expect_running", process = "server" }"#,
            &[],
        )],
        "expect_no_traceback" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "expect_no_traceback", process = "server" }"#,
            &[],
        )],
        "expect_connect_attempt" => vec![sample(
            CLIENT,
            "client",
            &[r#"{ do = "listen" }"#, r#"{ do = "start_client" }"#],
            &[],
            r#"{ do = "expect_connect_attempt", process = "client" }"#,
            &[r#"{ do = "accept", conn = "s" }"#],
        )],
        "end_if_exited" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "end_if_exited", process = "server" }"#,
            &[],
        )],
        "expect_cpu_below" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "expect_cpu_below", process = "server", window = "300ms", max_percent = 90.0 }"#,
            &[],
        )],
        // Connection steps.
        "connect" => vec![sample(ECHO, "server", SERVER, &[], CONNECTED[0], &[])],
        "send" => vec![sample(
            ECHO,
            "server",
            SERVER,
            CONNECTED,
            r#"{ do = "send", conn = "c", line = "hello {nonce}" }"#,
            &[r#"{ do = "expect_bytes", on = "c", echo = true }"#],
        )],
        "wait_read" => vec![sample(
            ECHO,
            "server",
            SERVER,
            SENT,
            r#"{ do = "wait_read", conn = "c" }"#,
            &[],
        )],
        "close" => vec![sample(
            ECHO,
            "server",
            SERVER,
            CONNECTED,
            r#"{ do = "close", conn = "c" }"#,
            &[],
        )],
        "abort" => vec![sample(
            ECHO,
            "server",
            SERVER,
            CONNECTED,
            r#"{ do = "abort", conn = "c" }"#,
            &[],
        )],
        "expect" => vec![
            sample(
                ECHO,
                "server",
                SERVER,
                SENT,
                r#"{ do = "expect", on = "c", contains = "hello {nonce}" }"#,
                &[],
            ),
            // On a process stream: the top level (or `repeat`) only.
            sample(
                CLIENT,
                "client",
                CLIENT_GREETED,
                &[],
                r#"{ do = "expect", on = "stdout", contains = "welcome {nonce}" }"#,
                &[],
            ),
        ],
        "expect_silence" => vec![
            sample(
                ECHO,
                "server",
                SERVER,
                CONNECTED,
                r#"{ do = "expect_silence", on = "c", for = "200ms" }"#,
                &[],
            ),
            sample(
                CLIENT,
                "client",
                CLIENT_UP,
                &[],
                r#"{ do = "expect_silence", on = "client.stderr", for = "200ms" }"#,
                &[],
            ),
        ],
        "expect_not" => vec![
            sample(
                ECHO,
                "server",
                SERVER,
                SENT,
                r#"{ do = "expect_not", on = "c", contains = "never {nonce}", for = "200ms" }"#,
                &[],
            ),
            sample(
                CLIENT,
                "client",
                CLIENT_UP,
                &[],
                r#"{ do = "expect_not", on = "stdout", contains = "never {nonce}", for = "200ms" }"#,
                &[],
            ),
        ],
        "expect_bytes" => vec![sample(
            ECHO,
            "server",
            SERVER,
            SENT,
            r#"{ do = "expect_bytes", on = "c", echo = true }"#,
            &[],
        )],
        "expect_http" => vec![sample(
            HTTP,
            "server",
            SERVER,
            &[
                r#"{ do = "connect", conn = "c" }"#,
                r#"{ do = "send", conn = "c", text = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" }"#,
            ],
            r#"{ do = "expect_http", on = "c", status = 200, body_contains = "Hello, HTTP!" }"#,
            &[],
        )],
        "expect_closed" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[
                r#"{ do = "connect", conn = "c" }"#,
                r#"{ do = "close", conn = "c" }"#,
            ],
            r#"{ do = "expect_closed", on = "c" }"#,
            &[],
        )],
        // Datagram steps.
        "udp_socket" => vec![sample(
            UDP,
            "server",
            &[r#"{ do = "start_server", udp = true }"#],
            &[],
            r#"{ do = "udp_socket", sock = "u" }"#,
            &[],
        )],
        "send_datagram" => vec![sample(
            UDP,
            "server",
            UDP_SERVER,
            &[],
            r#"{ do = "send_datagram", sock = "u", text = "hello {nonce}" }"#,
            &[r#"{ do = "expect_datagram", on = "u", exact = "hello {nonce}" }"#],
        )],
        "expect_datagram" => vec![sample(
            UDP,
            "server",
            UDP_SERVER,
            &[r#"{ do = "send_datagram", sock = "u", text = "hello {nonce}" }"#],
            r#"{ do = "expect_datagram", on = "u", exact = "hello {nonce}" }"#,
            &[],
        )],
        "expect_no_datagram" => vec![sample(
            UDP,
            "server",
            UDP_SERVER,
            &[],
            r#"{ do = "expect_no_datagram", on = "u", for = "200ms" }"#,
            &[],
        )],
        // Group steps.
        "parallel" => vec![sample(
            ECHO,
            "server",
            SERVER,
            &[],
            r#"{ do = "parallel", count = 2, steps = [{ do = "connect", conn = "p" }, { do = "send", conn = "p", line = "copy {i} {nonce}" }, { do = "expect", on = "p", contains = "copy {i} {nonce}" }] }"#,
            &[],
        )],
        "repeat" => vec![sample(
            ECHO,
            "server",
            SERVER,
            CONNECTED,
            r#"{ do = "repeat", count = 2, steps = [{ do = "send", conn = "c", line = "line {j} {nonce}" }, { do = "expect", on = "c", contains = "line {j} {nonce}" }] }"#,
            &[],
        )],
        // Protocol steps (expanded at load under the task's protocol: Task 1's, and Task 4's
        // JSON protocol where it expands them otherwise).
        "join" => vec![
            sample(
                CLIENT,
                "server",
                SERVER,
                &[],
                r#"{ do = "join", conn = "a" }"#,
                &[],
            ),
            // Registers a name (a register message, confirmed).
            sample(CHAT, "server", SERVER, &[], JOIN_ALICE, &[]),
            // A name already taken is refused.
            sample(
                CHAT,
                "server",
                SERVER,
                &[JOIN_ALICE],
                r#"{ do = "join", conn = "impostor", name = "alice", taken = true }"#,
                &[],
            ),
        ],
        "expect_reply" => vec![sample(
            CLIENT,
            "server",
            SERVER,
            &[
                r#"{ do = "join", conn = "a" }"#,
                r#"{ do = "send", conn = "a", line = "hello {nonce}" }"#,
            ],
            r#"{ do = "expect_reply", on = "a", to = "hello {nonce}" }"#,
            &[],
        )],
        "say_exit" => vec![
            sample(
                CLIENT,
                "server",
                SERVER,
                &[r#"{ do = "join", conn = "a" }"#],
                r#"{ do = "say_exit", conn = "a" }"#,
                &[],
            ),
            // An exit message; the server closes the connection.
            sample(
                CHAT,
                "server",
                SERVER,
                &[JOIN_ALICE],
                r#"{ do = "say_exit", conn = "alice" }"#,
                &[
                    r#"{ do = "close", conn = "alice" }"#,
                    r#"{ do = "expect_closed", on = "alice" }"#,
                ],
            ),
        ],
        "welcome" => vec![
            sample(
                CLIENT,
                "client",
                &[r#"{ do = "listen" }"#, r#"{ do = "start_client" }"#],
                &[],
                r#"{ do = "welcome", conn = "s" }"#,
                &[],
            ),
            // The JSON greeting, after which the client registers.
            sample(
                CHAT,
                "client",
                &[r#"{ do = "listen" }"#, START_ALICE],
                &[],
                r#"{ do = "welcome", conn = "s" }"#,
                &[r#"{ do = "expect_register", on = "s", name = "alice" }"#],
            ),
        ],
        "type_exit" => vec![sample(
            CLIENT,
            "client",
            CLIENT_UP,
            &[],
            r#"{ do = "type_exit" }"#,
            &[r#"{ do = "expect_said_exit", on = "s" }"#],
        )],
        "expect_said_exit" => vec![
            sample(
                CLIENT,
                "client",
                CLIENT_UP,
                &[r#"{ do = "type_exit" }"#],
                r#"{ do = "expect_said_exit", on = "s" }"#,
                &[],
            ),
            // The JSON exit message.
            sample(
                CHAT,
                "client",
                CHAT_CLIENT_UP,
                &[r#"{ do = "type_exit" }"#],
                r#"{ do = "expect_said_exit", on = "s" }"#,
                &[],
            ),
        ],
        // Chat, group and file steps: the chat protocols of Tasks 4, 5 and 7. The server-side
        // steps run in every position (each copy joins its own clients); the client-side ones
        // (`expect_register`, `deliver`, `send_error`, `expect_sent_chat`) act on the
        // connection accepted at the top level, so `parallel` refuses them.
        "chat" => vec![sample(
            CHAT,
            "server",
            SERVER,
            ALICE_AND_BOB,
            TO_BOB,
            &[BOB_GOT_IT],
        )],
        "expect_chat" => vec![sample(
            CHAT,
            "server",
            SERVER,
            &[JOIN_ALICE, JOIN_BOB, TO_BOB],
            BOB_GOT_IT,
            &[],
        )],
        "expect_error" => vec![
            // An unknown receiver: the error names it.
            sample(
                CHAT,
                "server",
                SERVER,
                &[
                    JOIN_ALICE,
                    r#"{ do = "chat", conn = "alice", to = "ghost-{nonce}", text = "anyone?" }"#,
                ],
                r#"{ do = "expect_error", on = "alice", mentions = "ghost-{nonce}" }"#,
                &[],
            ),
            // A line that is not JSON: any error.
            sample(
                CHAT,
                "server",
                SERVER,
                &[
                    JOIN_ALICE,
                    r#"{ do = "send", conn = "alice", line = "not JSON {nonce}" }"#,
                ],
                r#"{ do = "expect_error", on = "alice" }"#,
                &[],
            ),
        ],
        "expect_register" => vec![sample(
            CHAT,
            "client",
            CHAT_CLIENT,
            &[],
            r#"{ do = "expect_register", on = "s", name = "alice" }"#,
            &[],
        )],
        "deliver" => vec![sample(
            CHAT,
            "client",
            CHAT_CLIENT_UP,
            &[],
            r#"{ do = "deliver", conn = "s", from = "bob", text = "hi alice {nonce}" }"#,
            &[r#"{ do = "expect", on = "stdout", contains = "bob: hi alice {nonce}" }"#],
        )],
        "send_error" => vec![sample(
            CHAT,
            "client",
            CHAT_CLIENT_UP,
            &[],
            r#"{ do = "send_error", conn = "s", text = "receiver carol-{nonce} is not online" }"#,
            &[
                r#"{ do = "expect", on = "client.output", contains = "receiver carol-{nonce} is not online" }"#,
            ],
        )],
        "expect_sent_chat" => vec![sample(
            CHAT,
            "client",
            CHAT_CLIENT_TYPED,
            &[],
            r#"{ do = "expect_sent_chat", on = "s", to = "bob", text = "hello there {nonce}" }"#,
            &[],
        )],
        "group" => vec![
            sample(
                GROUPS,
                "server",
                SERVER,
                ALICE_AND_BOB,
                CREATE,
                &[BOB_JOINS, TO_THE_GROUP, BOB_GOT_THE_GROUP_CHAT],
            ),
            sample(
                GROUPS,
                "server",
                SERVER,
                IN_A_GROUP,
                r#"{ do = "group", conn = "bob", action = "leave", group = "lab-{nonce:g}" }"#,
                &[
                    TO_THE_GROUP,
                    r#"{ do = "expect_not", on = "bob", contains = "hello group {nonce}", for = "200ms" }"#,
                ],
            ),
        ],
        "group_chat" => vec![sample(
            GROUPS,
            "server",
            SERVER,
            IN_A_GROUP,
            TO_THE_GROUP,
            &[BOB_GOT_THE_GROUP_CHAT],
        )],
        "expect_group_chat" => vec![sample(
            GROUPS,
            "server",
            SERVER,
            &[JOIN_ALICE, JOIN_BOB, CREATE, BOB_JOINS, TO_THE_GROUP],
            BOB_GOT_THE_GROUP_CHAT,
            &[],
        )],
        "send_file" => vec![
            sample(
                FILES,
                "server",
                SERVER,
                ALICE_AND_BOB,
                A_FILE,
                &[BOB_GOT_THE_FILE],
            ),
            // In two writes: the first part, then (once the server has read it) the rest.
            sample(
                FILES,
                "server",
                SERVER,
                ALICE_AND_BOB,
                r#"{ do = "send_file", conn = "alice", to = "bob", filename = "halves-{nonce}.bin", data = "{base64:3000:a}{base64:3000:b}", split = "{base64:3000:a}", part = "first" }"#,
                &[
                    r#"{ do = "send_file", conn = "alice", to = "bob", filename = "halves-{nonce}.bin", data = "{base64:3000:a}{base64:3000:b}", split = "{base64:3000:a}", part = "rest" }"#,
                    r#"{ do = "expect_file", on = "bob", from = "alice", filename = "halves-{nonce}.bin", data = "{base64:3000:a}{base64:3000:b}" }"#,
                ],
            ),
        ],
        "expect_file" => vec![sample(
            FILES,
            "server",
            SERVER,
            &[JOIN_ALICE, JOIN_BOB, A_FILE],
            BOB_GOT_THE_FILE,
            &[],
        )],
        // `use` inserts a block's steps (`BLOCKS`, in Task 4's head).
        "use" => vec![
            sample(
                CHAT,
                "server",
                SERVER,
                &[],
                r#"{ do = "use", block = "pair" }"#,
                &[TO_BOB, BOB_GOT_IT],
            ),
            sample(
                CHAT,
                "server",
                SERVER,
                &[r#"{ do = "use", block = "pair" }"#],
                r#"{ do = "use", block = "message", with = { text = "through a block {nonce}" } }"#,
                &[],
            ),
            // A block that starts the server: not inside `parallel`.
            sample(
                CHAT,
                "server",
                &[],
                &[],
                r#"{ do = "use", block = "served_pair" }"#,
                &[TO_BOB, BOB_GOT_IT],
            ),
        ],
        other => panic!(
            "no sample for the step kind `{other}`: add one to tests/integration/step_kinds.rs"
        ),
    }
}

/// The scenario of `s` with its step at `position` (copies and iterations: one each, so every
/// position runs the same conversation).
fn scenario(name: &str, s: &Sample, position: Position) -> String {
    let group: Vec<&str> = s
        .prefix
        .iter()
        .chain([&s.step])
        .chain(s.suffix)
        .copied()
        .collect();
    let group = group.join(", ");
    let placed = match position {
        Position::Top => group,
        Position::Repeat => format!(r#"{{ do = "repeat", count = 1, steps = [{group}] }}"#),
        Position::Parallel => {
            format!(r#"{{ do = "parallel", count = 1, steps = [{group}] }}"#)
        }
        Position::RepeatInParallel => format!(
            r#"{{ do = "parallel", count = 1, steps = [{{ do = "repeat", count = 1, steps = [{group}] }}] }}"#
        ),
    };
    let steps: Vec<String> = s
        .setup
        .iter()
        .map(|t| t.to_string())
        .chain([placed])
        .collect();
    format!(
        "[[scenario]]\nname = \"{name}\"\npoints = 1\nrole = \"{}\"\nsteps = [\n  {},\n]\n",
        s.role,
        steps.join(",\n  ")
    )
}

/// The head of task `task`'s file: its protocol (Task 1's acknowledgment is optional; Tasks 4,
/// 5 and 7 speak JSON) and, for Task 4, the blocks `use` inserts.
fn head(task: u32) -> String {
    let protocol = match task {
        CLIENT => "[protocol]\nack_required = false\n".to_string(),
        CHAT => format!("[protocol]\nformat = \"json\"\n{}", blocks()),
        GROUPS | FILES => "[protocol]\nformat = \"json\"\n".to_string(),
        _ => String::new(),
    };
    format!(
        "task = {task}\ntitle = \"step kinds\"\n[defaults]\nwithin = \"3s\"\nlisten_within = \"10s\"\n{protocol}"
    )
}

/// `[block.<name>]` tables of [`BLOCKS`].
fn blocks() -> String {
    BLOCKS
        .iter()
        .map(|(name, params, steps)| {
            let params: Vec<String> = params.iter().map(|p| format!("\"{p}\"")).collect();
            format!(
                "[block.{name}]\nparams = [{}]\nsteps = [\n  {},\n]\n",
                params.join(", "),
                steps.join(",\n  ")
            )
        })
        .collect()
}

/// The kind of a step written as an inline table (its `do`).
fn kind_of(step: &str) -> &str {
    step.split("do = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no `do` in {step}"))
}

/// Whether the sample's group may stand inside a `parallel` copy: connection steps (and groups
/// and protocol steps made of them, and `use` of a block made of them) on connections the copy
/// opens itself, which only a server scenario can (a client scenario's connection is accepted
/// at the top level).
fn fits_a_copy(kind: &str, s: &Sample) -> bool {
    let stream = s.step.contains("on = \"stdout\"") || s.step.contains("client.stderr");
    let fits = |kind: &str| {
        !ProcessStep::KINDS.contains(&kind)
            && !DatagramStep::KINDS.contains(&kind)
            && kind != "parallel"
    };
    let block_fits = kind != "use"
        || BLOCKS
            .iter()
            .find(|(name, _, _)| s.step.contains(&format!("block = \"{name}\"")))
            .unwrap_or_else(|| panic!("no such block: {}", s.step))
            .2
            .iter()
            .all(|step| fits(kind_of(step)));
    s.role == "server" && !stream && fits(kind) && block_fits
}

#[test]
fn every_step_kind_accepted_in_a_position_runs_there() {
    let kinds: Vec<&str> = Step::kinds().collect();
    for kinds_of in [
        ProcessStep::KINDS,
        ConnStep::KINDS,
        DatagramStep::KINDS,
        GroupStep::KINDS,
        ProtocolStep::KINDS,
    ] {
        assert!(kinds_of.iter().all(|k| kinds.contains(k)));
    }
    let work = tempfile::tempdir().unwrap();
    // Task → scenarios to grade, and every scenario's (kind, position) by name.
    let mut files: BTreeMap<u32, String> = BTreeMap::new();
    let mut refused = Vec::new();
    for kind in &kinds {
        for (n, s) in samples(kind).iter().enumerate() {
            let fits = fits_a_copy(kind, s);
            for position in POSITIONS {
                let in_copy = matches!(position, Position::Parallel | Position::RepeatInParallel);
                let name = format!("{kind} {n} {position:?}");
                let text = format!("{}{}", head(s.task), scenario(&name, s, position));
                let path = work.path().join(format!("{kind}-{n}-{position:?}.toml"));
                match parse(&text, SpecSource::File(path.clone())) {
                    Ok(_) => {
                        assert!(
                            !in_copy || fits,
                            "{name}: accepted inside `parallel`, which cannot run it"
                        );
                        files
                            .entry(s.task)
                            .or_insert_with(|| head(s.task))
                            .push_str(&scenario(&name, s, position));
                    }
                    Err(e) => {
                        let message = e.to_string();
                        assert!(
                            in_copy && !fits,
                            "{name}: refused where it may stand: {message}\n{text}"
                        );
                        assert!(
                            message.contains("inside `parallel`")
                                || message.contains("outside `parallel`")
                                || message.contains("cannot be nested"),
                            "{name}: the refusal says why: {message}"
                        );
                        assert!(
                            message.contains(&path.display().to_string()),
                            "{name}: the refusal names the file: {message}"
                        );
                        refused.push(name);
                    }
                }
            }
        }
    }
    assert!(!refused.is_empty());
    let tasks = work.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    for (task, text) in &files {
        std::fs::write(tasks.join(format!("task{task}.toml")), text).unwrap();
    }
    for (task, text) in &files {
        let statuses = grade(*task, &tasks, work.path());
        let expected = text.matches("[[scenario]]").count();
        assert_eq!(statuses.len(), expected, "task {task}: {statuses:?}");
        let bad: Vec<_> = statuses
            .iter()
            .filter(|(_, st)| **st != Status::Passed)
            .collect();
        assert!(
            bad.is_empty(),
            "task {task}: steps accepted by validation did not pass against the reference: {bad:?}"
        );
    }
}

/// Grades the bundled reference of `task` with the task files in `tasks`: scenario → status.
fn grade(task: u32, tasks: &Path, work: &Path) -> BTreeMap<String, Status> {
    let out = work.join(format!("out{task}"));
    let tmp = tempfile::tempdir().unwrap();
    let number = task.to_string();
    let o = run_grader(
        [
            "run".as_ref(),
            "--task".as_ref(),
            number.as_ref(),
            "--seed".as_ref(),
            "1".as_ref(),
            "--format".as_ref(),
            "compact".as_ref(),
            "--tasks-dir".as_ref(),
            tasks.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        tmp.path(),
    );
    let report = std::fs::read_to_string(out.join(format!("reference-task{task}/task{task}.toml")))
        .unwrap_or_else(|e| {
            panic!(
                "task {task}: no report ({e}): {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
    let r = grader::report::toml::parse(&report).unwrap();
    r.scenarios
        .iter()
        .map(|s| (s.name.clone(), s.status))
        .collect()
}

#[test]
fn a_process_step_inside_parallel_is_refused_when_loaded() {
    let text = format!(
        "{}[[scenario]]\nname = \"exits\"\npoints = 1\nrole = \"server\"\nsteps = [\n  {{ do = \"start_server\" }},\n  {{ do = \"parallel\", count = 2, steps = [{{ do = \"connect\", conn = \"c\" }}, {{ do = \"expect_exit\", process = \"server\" }}] }},\n]\n",
        head(ECHO)
    );
    let path = Path::new("/tasks/task11.toml");
    let e = parse(&text, SpecSource::File(path.to_path_buf()))
        .expect_err("expect_exit inside parallel")
        .to_string();
    for part in [
        "/tasks/task11.toml:12:",
        "scenario \"exits\", step 2 (parallel)",
        "inner step 2 (expect_exit)",
        "cannot be used inside `parallel`",
    ] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    // The same through the command line: `grader tasks` refuses the file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("task11.toml"), &text).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let o = run_grader(
        [
            "tasks".as_ref(),
            "--tasks-dir".as_ref(),
            dir.path().as_os_str(),
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("expect_exit") && stderr.contains("cannot be used inside `parallel`"),
        "{stderr}"
    );
}
