//! Task 1: the reference scores 100%, and every fixture gets exactly the verdicts its one
//! mistake explains.

use grader::verdict::Status::{self, *};

use crate::support::{
    assert_failures, check_fixture, compile_c, compile_rust, fixture, grade, reference_bin,
    scenario,
};

const ACK: &str = "server acknowledges a new connection";
const SEVERAL: &str = "server answers several messages on one connection";
const EXIT: &str = "exit closes the connection gracefully";
const LONG: &str = "a 4000-byte line is answered whole";
const EMPTY: &str = "an empty line does not break the connection";
const MIDLINE: &str = "a client leaving mid-line does not crash the server";
const RESET_NOW: &str = "a connection reset right away does not crash the server";
const RESET_MID: &str = "a connection reset mid-session does not crash the server";
const REFUSED: &str = "client reports a refused connection";
const PRINTS_ACK: &str = "client prints the acknowledgment";
const RELAYS: &str = "client relays lines and prints replies";
const CLIENT_EXIT: &str = "client exits cleanly on exit";
const PORT_GIVEN: &str = "client connects to the port it is given";

fn py(name: &str, expected: &[(&str, Status)]) {
    check_fixture(1, name, expected);
}

#[test]
fn reference_scores_full_marks() {
    let g = grade(1, &reference_bin("classchat-task1"), &[]);
    assert_failures(&g, &[]);
    let r = g.report();
    assert_eq!((r.score, r.max_score), (30.0, 30.0));
    assert_eq!(g.code(), 0);
}

#[test]
fn correct_other_style_passes_everything() {
    py("correct_other_style.py", &[]);
}

#[test]
fn rust_correct_passes_everything() {
    let g = grade(1, &compile_rust(1, "rust_correct.rs"), &[]);
    assert_failures(&g, &[]);
}

#[test]
fn c_client_that_never_flushes_still_passes_on_a_pty() {
    let g = grade(1, &compile_c(1, "c_client_never_flushes.c"), &[]);
    assert_failures(&g, &[]);
}

#[test]
fn no_ack() {
    py("no_ack.py", &[(ACK, TimedOut)]);
}

#[test]
fn single_recv_truncates_long_lines() {
    let g = grade(1, &fixture(1, "single_recv_truncates.py"), &[]);
    assert_failures(&g, &[(LONG, TimedOut)]);
    let long = g
        .report()
        .scenarios
        .iter()
        .find(|s| s.name == LONG)
        .unwrap();
    assert!(
        long.message.contains("only the first 1024 of the 4000"),
        "{}",
        long.message
    );
    assert!(
        long.hint.as_deref().unwrap_or("").contains("recv()"),
        "{:?}",
        long.hint
    );
}

#[test]
fn ignores_exit() {
    py("ignores_exit.py", &[(EXIT, TimedOut)]);
}

#[test]
fn server_exits_after_first_message() {
    let g = grade(1, &fixture(1, "server_exits_after_first_message.py"), &[]);
    // It exits with status 0 once its one client has left, which the protocol allows: the
    // vanishing-client scenarios pass (they end when it exits cleanly).
    assert_failures(&g, &[(SEVERAL, Failed), (EMPTY, Failed)]);
    // The failing step is nested in `repeat`: its own hint is shown.
    let s = scenario(&g, SEVERAL);
    assert_eq!(
        s.hint.as_deref(),
        Some(
            "keep serving the same connection in a loop until the client says exit or disconnects"
        ),
        "{s:?}"
    );
}

#[test]
fn spins_on_empty_recv() {
    let g = grade(1, &fixture(1, "spins_on_empty_recv.py"), &[]);
    assert_failures(&g, &[(MIDLINE, Failed)]);
    let s = scenario(&g, MIDLINE);
    assert!(
        s.message.contains("the server used") && s.message.contains("% of a CPU core"),
        "{}",
        s.message
    );
    assert!(
        s.hint
            .as_deref()
            .unwrap_or("")
            .starts_with("recv() returning b'' means the client left"),
        "{:?}",
        s.hint
    );
}

#[test]
fn crashes_on_empty_line() {
    let g = grade(1, &fixture(1, "crashes_on_empty_line.py"), &[]);
    assert_failures(&g, &[(EMPTY, Crashed)]);
    let s = g
        .report()
        .scenarios
        .iter()
        .find(|s| s.name == EMPTY)
        .unwrap();
    assert!(s.message.contains("exit status 1"), "{}", s.message);
    assert!(
        s.stderr_tail
            .as_deref()
            .unwrap_or("")
            .contains("IndexError"),
        "{:?}",
        s.stderr_tail
    );
    assert!(!s.transcript.is_empty());
}

#[test]
fn crashes_on_disconnect() {
    py(
        "crashes_on_disconnect.py",
        &[
            (MIDLINE, Crashed),
            (RESET_NOW, Crashed),
            (RESET_MID, Crashed),
        ],
    );
}

#[test]
fn client_traceback_on_refused() {
    py("client_traceback_on_refused.py", &[(REFUSED, Failed)]);
}

#[test]
fn client_gives_up_before_connecting() {
    // Its client rejects the launch contract's command line and exits 2 with a usage message:
    // that must not pass "refused connection" (non-zero, no traceback, a message on stderr).
    let g = grade(1, &fixture(1, "client_gives_up_before_connecting.py"), &[]);
    let crashed = [PRINTS_ACK, RELAYS, CLIENT_EXIT, PORT_GIVEN].map(|s| (s, Crashed));
    // In a namespace of its own (as root, or a user namespace as an ordinary user) the attempt
    // is observed.
    if g.report().isolation != "host" {
        let mut expected = crashed.to_vec();
        expected.push((REFUSED, Failed));
        assert_failures(&g, &expected);
        let refused = g
            .report()
            .scenarios
            .iter()
            .find(|s| s.name == REFUSED)
            .unwrap();
        assert!(
            refused.message.contains("without trying"),
            "{}",
            refused.message
        );
    } else {
        // On the host network the attempt cannot be observed (shared counters).
        assert_failures(&g, &crashed);
    }
}

#[test]
fn client_exit0_on_refused() {
    py("client_exit0_on_refused.py", &[(REFUSED, Failed)]);
}

#[test]
fn hostile_output_keeps_reports_valid() {
    let g = grade(1, &fixture(1, "hostile_output_bytes.py"), &[]);
    assert_failures(&g, &[(EMPTY, Crashed)]);
    let xml = std::fs::read_to_string(
        g.out_dir
            .path()
            .join("hostile_output_bytes.py/task1.junit.xml"),
    )
    .unwrap();
    crate::reports::assert_valid_xml(&xml);
    assert!(
        xml.contains("bad-utf8"),
        "the hostile text should be kept, escaped"
    );
}

#[test]
fn bundled_reference_client_names_the_cause_of_a_refused_connection() {
    // The reference built into the grader prints errors like the `classchat-task1` binary:
    // with their cause.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for program in [
        crate::support::grader_bin(),
        reference_bin("classchat-task1"),
    ] {
        let mut cmd = std::process::Command::new(&program);
        if program == crate::support::grader_bin() {
            cmd.args(["reference", "--task", "1"]);
        }
        let out = cmd
            .args(["client", "--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {stderr}",
            program.display()
        );
        assert!(
            stderr.contains(&format!(
                "could not connect to 127.0.0.1:{port}: Connection refused"
            )),
            "{}: {stderr}",
            program.display()
        );
    }
}

/// Each test run left a 4.4 MB `/tmp/grader-fixture-bin-*` behind: compiled fixtures now live in
/// cargo's folder for integration tests' files, named by their source, and are reused.
#[test]
fn compiled_fixtures_stay_in_the_target_dir_and_are_reused() {
    let bin = compile_c(1, "c_client_never_flushes.c");
    assert!(
        bin.starts_with(env!("CARGO_TARGET_TMPDIR")),
        "{}",
        bin.display()
    );
    let built = std::fs::metadata(&bin).unwrap().modified().unwrap();
    assert_eq!(compile_c(1, "c_client_never_flushes.c"), bin);
    assert_eq!(
        std::fs::metadata(&bin).unwrap().modified().unwrap(),
        built,
        "compiled again"
    );
}

#[test]
fn long_traceback_on_empty_line() {
    let g = grade(1, &fixture(1, "long_traceback_on_empty_line.py"), &[]);
    assert_failures(&g, &[(EMPTY, Crashed)]);
    let err = scenario(&g, EMPTY).stderr_tail.clone().unwrap_or_default();
    // The first lines, a marker where the middle was left out, the chained traceback from the
    // first exception's start, and its last line.
    assert!(err.starts_with("ClassChat server starting on "), "{err}");
    let marker = err.find(" bytes left out …]\n").expect("a cut marker");
    let traceback = err
        .find("Traceback (most recent call last):")
        .expect("the traceback's first line");
    assert!(marker < traceback, "{err}");
    assert!(err.contains("IndexError: list index out of range"), "{err}");
    assert!(
        err.trim_end()
            .ends_with("RuntimeError: could not parse message b'' from the client"),
        "{err}"
    );
}
