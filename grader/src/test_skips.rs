//! Test support shared by the unit tests and the integration tests: a test that cannot run here
//! (no root, no network namespaces, no Chromium, ...) calls [`skipped`] before returning, so a
//! skip never passes for a pass in silence.
//!
//! Guarantees: each skip prints one `SKIPPED <test>: <reason>` line straight to the process's
//! standard error (libtest does not capture it, so it shows among the `ok` lines), and appends
//! the same line to the skip log: the file `GRADER_TEST_SKIP_LOG` names, else
//! `<target>/<profile>/grader-test-skips.log` (beside the test binaries' `deps/` folder). A run
//! that empties the log first can list every skip at its end (`scripts/test.sh` and `.ci/run`
//! do). Failing to write the log never fails the test: the printed line still says it.

use std::io::Write as _;
use std::path::PathBuf;

/// The environment variable naming the skip log.
pub const SKIP_LOG_ENV: &str = "GRADER_TEST_SKIP_LOG";

/// The skip log: `GRADER_TEST_SKIP_LOG`, else `grader-test-skips.log` in the profile folder of
/// the running test binary (`target/debug/deps/<binary>` → `target/debug/`).
pub fn skip_log() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(SKIP_LOG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let profile = exe.parent()?.parent()?;
    Some(profile.join("grader-test-skips.log"))
}

/// Records that the running test skipped its check, and why (say what to install or how to run
/// it to get the check). The test is named by its thread (libtest names each test's thread after
/// it), else by `test`.
pub fn skipped(test: &str, reason: &str) {
    let thread = std::thread::current();
    let name = match thread.name() {
        Some(n) if n != "main" => n,
        _ => test,
    };
    let line = format!("SKIPPED {name}: {}\n", reason.replace('\n', " "));
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = skip_log() {
        // One write of one short line to a file opened for appending: lines of tests running at
        // once do not interleave.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_appended_to_the_log_with_the_test_name() {
        // The log location comes from the environment only in this process's children, so
        // check the pieces: the default location, and the line format through a private file.
        let default = skip_log().unwrap();
        assert!(
            std::env::var_os(SKIP_LOG_ENV).is_some() || default.ends_with("grader-test-skips.log"),
            "{}",
            default.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips.log");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "test_skips::tests::helper_process_skips",
                "--include-ignored",
                "--test-threads=2",
            ])
            .env(SKIP_LOG_ENV, &log)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text,
            "SKIPPED test_skips::tests::helper_process_skips: needs a unicorn (apt-get install unicorn)\n"
        );
        assert!(String::from_utf8_lossy(&status.stderr).contains("SKIPPED test_skips::"));
    }

    /// Run by the test above in a child process, with the log pointed at a private file.
    #[test]
    #[ignore = "run by a_skip_is_appended_to_the_log_with_the_test_name"]
    fn helper_process_skips() {
        skipped("fallback", "needs a unicorn\n(apt-get install unicorn)");
    }
}
