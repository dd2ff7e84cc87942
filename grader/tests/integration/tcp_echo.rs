//! Lab tcp-echo (task 11: a byte-exact echo server and its client): the reference scores 100%,
//! and every fixture gets exactly the verdicts its mistake explains, with failure messages and
//! hints that name the real cause (a cut echo, U+FFFD replacements, a crash, a refused
//! second client).

use grader::verdict::Status::*;

use crate::support::{
    assert_failures, check_bundled_reference, compile_c, fixture, grade, scenario,
};

const BINARY: &str = "binary bytes are echoed exactly";
const BIG: &str = "a 64 KiB payload is echoed whole";
const SEVERAL: &str = "several messages on one connection are each echoed";
const ONE_AFTER_ANOTHER: &str = "two clients one after another are both served";
const AT_ONCE: &str = "two clients at once are both served";
const VANISHING: &str = "a client vanishing does not stop the server";
const PIECES: &str = "client prints a long echo that arrives in pieces";

fn hint(g: &crate::support::Graded, name: &str) -> String {
    scenario(g, name).hint.clone().unwrap_or_default()
}

#[test]
fn reference_scores_full_marks() {
    check_bundled_reference(11);
}

#[test]
fn reference_is_chosen_by_name_too() {
    assert_eq!(grader::spec::parse_task_arg("tcp-echo"), Ok(11));
}

#[test]
fn c_poll_correct() {
    let g = grade(11, &compile_c(11, "c_poll_correct.c"), &[]);
    assert_failures(&g, &[]);
    assert_eq!(g.code(), 0, "{}", g.stdout());
}

#[test]
fn recv_once_per_connection() {
    let g = grade(11, &fixture(11, "recv_once_per_connection.py"), &[]);
    assert_failures(&g, &[(BIG, Failed), (SEVERAL, Failed)]);
    // The echo is cut after one recv(1024): the count and the single-recv() cause are named.
    let big = scenario(&g, BIG);
    assert!(
        regex::Regex::new(r"\(65536 bytes\) on connection a, but the connection was (reset|closed) after (\d+) of them")
            .unwrap()
            .captures(&big.message)
            .is_some_and(|c| c[2].parse::<usize>().is_ok_and(|n| n <= 1024)),
        "{}",
        big.message
    );
    assert!(hint(&g, BIG).contains("recv(1024)"), "{}", hint(&g, BIG));
    assert!(
        scenario(&g, SEVERAL).message.contains("after 0 of them"),
        "{}",
        scenario(&g, SEVERAL).message
    );
}

#[test]
fn decode_replace_mangles() {
    let g = grade(11, &fixture(11, "decode_replace_mangles.py"), &[]);
    assert_failures(&g, &[(BINARY, Failed), (BIG, Failed)]);
    let binary = scenario(&g, BINARY);
    assert!(
        binary.message.contains("byte 1 of the 27 expected differs")
            && binary.message.contains("got 00 ef bf bd"),
        "{}",
        binary.message
    );
    for name in [BINARY, BIG] {
        assert!(
            hint(&g, name).contains("U+FFFD"),
            "{name}: {}",
            hint(&g, name)
        );
    }
    // The transcript shows the bytes sent, not replacement characters.
    assert!(
        binary
            .transcript
            .iter()
            .any(|l| l.contains(r"→ \x00\xff\x80\xfeA")),
        "{:?}",
        binary.transcript
    );
}

#[test]
fn decode_crashes() {
    let g = grade(11, &fixture(11, "decode_crashes.py"), &[]);
    assert_failures(&g, &[(BINARY, Crashed), (BIG, Crashed)]);
    let binary = scenario(&g, BINARY);
    assert!(
        binary.message.contains("the server crashed"),
        "{}",
        binary.message
    );
    let stderr = binary.stderr_tail.as_deref().unwrap_or("");
    assert!(stderr.contains("UnicodeDecodeError"), "{stderr}");
}

#[test]
fn one_client_then_exits() {
    let g = grade(11, &fixture(11, "one_client_then_exits.py"), &[]);
    assert_failures(
        &g,
        &[
            (ONE_AFTER_ANOTHER, Failed),
            (AT_ONCE, TimedOut),
            (VANISHING, Failed),
        ],
    );
    let s = scenario(&g, ONE_AFTER_ANOTHER);
    assert!(
        s.message.contains("could not connect")
            && s.message.contains("the server had exited (exit status 0)"),
        "{}",
        s.message
    );
}

#[test]
fn dies_when_client_resets() {
    let g = grade(11, &fixture(11, "dies_when_client_resets.py"), &[]);
    assert_failures(&g, &[(VANISHING, Crashed)]);
    let stderr = scenario(&g, VANISHING).stderr_tail.as_deref().unwrap_or("");
    assert!(
        stderr.contains("ConnectionResetError") || stderr.contains("BrokenPipeError"),
        "{stderr}"
    );
}

#[test]
fn client_recv_once() {
    let g = grade(11, &fixture(11, "client_recv_once.py"), &[]);
    assert_failures(&g, &[(PIECES, TimedOut)]);
    assert!(
        hint(&g, PIECES).contains("only the first 1000 of the 2001"),
        "{}",
        hint(&g, PIECES)
    );
}
