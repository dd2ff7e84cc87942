//! Task 3 (a server for many clients at once; the grader plays the clients): the reference scores
//! 100%, and every fixture gets exactly the verdicts its mistake explains.

use grader::verdict::Status::*;

use crate::support::{check_bundled_reference, check_fixture};

const SILENT: &str = "silent clients never delay another client";
const TEN: &str = "10 clients talk at once and each gets only its own replies";
const RESETS: &str = "clients resetting their connection harm no one";
const HUNDRED: &str = "100 simultaneous clients are all served";

#[test]
fn reference_scores_full_marks() {
    check_bundled_reference(3);
}

#[test]
fn threaded_server_correct() {
    check_fixture(3, "threaded_server_correct.py", &[]);
}

#[test]
fn selectors_server_correct() {
    check_fixture(3, "selectors_server_correct.py", &[]);
}

#[test]
fn sequential_server() {
    check_fixture(
        3,
        "sequential_server.py",
        &[(SILENT, TimedOut), (TEN, TimedOut), (HUNDRED, TimedOut)],
    );
}

#[test]
fn fixed_pool_of_4() {
    check_fixture(
        3,
        "fixed_pool_of_4.py",
        &[(SILENT, TimedOut), (TEN, TimedOut), (HUNDRED, TimedOut)],
    );
}

#[test]
fn crosstalk_server() {
    check_fixture(
        3,
        "crosstalk_server.py",
        &[(TEN, TimedOut), (HUNDRED, TimedOut)],
    );
}

#[test]
fn dies_on_reset() {
    check_fixture(3, "dies_on_reset.py", &[(RESETS, Crashed)]);
}
