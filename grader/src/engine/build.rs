//! The build step: compiling a submission handed in as source (`build = "make"` in its
//! `classchat.toml`, `--build "make"`) once per grading, before any scenario.
//!
//! Guarantees:
//! - the build runs in a fresh copy of the submission folder made by
//!   [`submission_copy::copy_submission`] (regular files and subfolders with their permission
//!   bits, symbolic links within the folder as links, `.git` left out) in TMPDIR, named with the
//!   grader's working-folder prefix ([`grader_id::cwd_prefix`]) so the guard removes it after a
//!   SIGKILL, and removed when the grading ends (also what the build left unwritable in it, see
//!   [`TempFolder`]). The student's own folder is only read, so its
//!   content hash stays what it was and a batch resumes as before. A folder the copy refuses (a
//!   symbolic link leaving it, a FIFO, socket or device, more than the size or file-count
//!   limit) is the submission's problem, [`GradeError::Build`], like a failed build;
//! - a build is student code (a Makefile runs anything) and is confined like a student program,
//!   through [`StudentProcess::spawn`]: its own process group, the scrubbed environment with a
//!   fresh HOME (plus where rustup keeps its toolchains: `RUSTUP_HOME`), the resource limits,
//!   a pids cgroup, a read-only file system except the copy, its HOME and `/dev/shm` (when the
//!   grader is root), no capabilities, and in `netns` isolation a network namespace of its own
//!   with nothing but a loopback interface; its stdin is closed at once;
//! - it gets [`super::EngineOptions::build_timeout`] (default [`BUILD_TIMEOUT`]) to finish; then,
//!   and in any case once it has exited, everything it started is ended (TERM, grace, KILL), so
//!   nothing survives into the scenarios or the grader's end;
//! - stdout and stderr share one pipe (in the order written, capped at the output limit); a
//!   failure quotes the last [`OUTPUT_LINES`] lines of it (its real end, also past the stream's
//!   match cap), a success prints nothing;
//! - a failed build (non-zero exit status, a signal, the deadline, an output flood, a program
//!   that cannot start, or no executable afterwards when the launch contract needs one) is the
//!   submission's problem, [`GradeError::Build`]; only what the grader itself cannot set up
//!   (the copy, the build's folders or namespace) is its own, [`GradeError::BuildSetup`];
//! - the command's patterns (`cc -o submission *.c`) are expanded in the copy, after it is made
//!   ([`BuildCommand::argv`]); one that matches nothing fails the build, naming the pattern;
//! - afterwards the submission is the copy: `{dir}` and the working folder of every scenario's
//!   processes are the copy, and `{bin}` is the executable the launch contract's rule
//!   ([`launch::find_executable`]) finds in it; where only some roles need one and the build
//!   left none, those roles have nothing to start (their scenarios fail, see `engine`) instead
//!   of the build failing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{GradeError, GradeRequest};
use crate::error_chain::Chain;
use crate::launch::{self, BuildCommand, Executables, Submission};
use crate::net::netns::{Isolation, Net};
use crate::process::temp_folder::TempFolder;
use crate::process::{self, Launch, SpawnError, StudentProcess, grader_id};
use crate::spec::Process;
use crate::submission_copy;
use crate::transcript::Transcript;

/// How long a build may take unless the engine is told otherwise.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines of the build's output a failure quotes.
pub const OUTPUT_LINES: usize = 15;
/// The longest quoted line, in characters (a minified error message can be one huge line).
const LINE_CHARS: usize = 300;
/// After the build exited, how long the last of its output may take to arrive.
const SETTLE: Duration = Duration::from_millis(500);

/// A finished build.
pub(super) struct Built {
    /// The copy it ran in (removed when dropped, so it must outlive the scenarios).
    pub _copy: TempFolder,
    /// The submission as the scenarios start it: inside the copy.
    pub submission: Submission,
    /// How long the build took (copy included).
    pub duration: Duration,
}

/// Copies the submission, runs `command` in the copy and resolves what the scenarios start.
/// `needs_bin`: some template the task needs uses `{bin}` (the launch contract does), so the
/// copy should hold the executable to start; `bin_required`: every role needs it, so a build
/// that leaves none failed (otherwise only the roles that need it have nothing to start).
pub(super) async fn build(
    req: &GradeRequest,
    command: &BuildCommand,
    isolation: Isolation,
    needs_bin: bool,
    bin_required: bool,
) -> Result<Built, GradeError> {
    let started = Instant::now();
    let sub = &req.submission;
    let setup =
        |step: &'static str, e: Box<dyn std::error::Error + Send + Sync>| GradeError::BuildSetup {
            step,
            submission: sub.given.clone(),
            source: e,
        };
    let copy = grader_id::cwd_prefix()
        .and_then(|p| TempFolder::new(&p))
        .map_err(|e| setup("cannot create the build folder", e.into()))?;
    match submission_copy::copy_submission(&sub.path, copy.path()) {
        Ok(_) => {}
        Err(e) if e.is_submissions_fault() => {
            return Err(GradeError::Build(format!(
                "{} (the build copies {} first)",
                Chain(&e),
                sub.given
            )));
        }
        Err(e) => return Err(setup("cannot copy the submission to build it", e.into())),
    }
    let dir = std::fs::canonicalize(copy.path())
        .map_err(|e| setup("cannot find the build folder", e.into()))?;
    if let Some(who) = req.options.run_as {
        process::sandbox::user::give(&dir, who)
            .map_err(|e| setup("cannot hand the build folder to the build's user", e.into()))?;
    }
    let toolchain = toolchain_env();
    let home = grader_id::home_prefix()
        .and_then(|p| tempfile::Builder::new().prefix(&p).tempdir())
        .map_err(|e| setup("cannot create the build's home folder", e.into()))?;
    // Kept until the build has ended: its descriptor must stay open until the build started.
    let net = Net::new(isolation)
        .map_err(|e| setup("cannot create the build's network namespace", e.into()))?;
    // Patterns (`*.c`) are expanded in the copy; one that matches nothing is the submission's
    // problem, like a failed build.
    let argv = command
        .argv(&dir)
        .map_err(|e| GradeError::Build(format!("{} (in a copy of {})", Chain(&e), sub.given)))?;
    let launch = Launch {
        argv,
        env: process::env::scrubbed(home.path(), &toolchain),
        cwd: Some(dir.clone()),
        stdout_pty: false,
        stdin_pty: false,
        stderr_to_stdout: true,
        output_limit: req.options.output_limit,
        limits: req.options.limits,
        netns: net.ns_fd(),
        confine: req.options.confine,
        cgroup: true,
        hidden: req.options.hidden.clone(),
        // The toolchain rustup's proxies need (RUSTUP_HOME) is shown read-only.
        read_only: toolchain
            .iter()
            .filter(|(k, _)| *k == "RUSTUP_HOME")
            .map(|(_, v)| std::path::PathBuf::from(v))
            .collect(),
        run_as: req.options.run_as,
        conceal_grader: true,
    };
    let says = |how: &str| {
        format!(
            "the build command {:?} {how} in a copy of {}",
            command.text(),
            sub.given
        )
    };
    // Started like a server: its stdout is a plain pipe and part of no transcript.
    let p = match StudentProcess::spawn(Process::Server, &launch, home, Arc::new(Transcript::new()))
    {
        Ok(p) => p,
        Err(e @ (SpawnError::Start { .. } | SpawnError::EmptyCommand)) => {
            return Err(GradeError::Build(format!(
                "{}: {} (is it installed on the grading machine, and on PATH?)",
                says("cannot start"),
                Chain(&e)
            )));
        }
        Err(e) => return Err(setup("cannot start the build", e.into())),
    };
    p.close_stdin().await;
    let exit = p
        .wait_exit(Instant::now() + req.options.build_timeout)
        .await;
    if exit.is_some() {
        StudentProcess::settle_stream(&p.stdout, SETTLE).await;
    }
    p.terminate(req.options.grace).await;
    drop(net);
    let failure = if p.output_exceeded() {
        Some(format!(
            "was stopped (it printed more than {} bytes)",
            req.options.output_limit
        ))
    } else {
        match exit {
            None => Some(format!(
                "timed out (stopped after {})",
                humantime::format_duration(req.options.build_timeout)
            )),
            Some(e) if !e.success() && p.memory_exceeded() => Some(format!(
                "was killed ({e}): it used more than the {} memory limit",
                process::limits::human_bytes(req.options.limits.memory_bytes)
            )),
            Some(e) if !e.success() => Some(format!("failed ({e})")),
            Some(_) => None,
        }
    };
    if let Some(how) = failure {
        // The real end of the output (where a compiler's error is), also past the match cap.
        let truncated = p.stdout.truncated();
        let mut output = p.stdout.tail(usize::MAX);
        if truncated {
            // The tail may start inside a line: leave that piece out, unless it is all there is.
            if let Some(cut) = output
                .find('\n')
                .filter(|&i| !output[i..].trim().is_empty())
            {
                output.drain(..=cut);
            }
        }
        return Err(GradeError::Build(format!(
            "{}{}",
            says(&how),
            last_lines(&output, truncated)
        )));
    }
    drop(p);
    let found = if needs_bin {
        Some(launch::find_executable(&dir))
    } else {
        None
    };
    let mut in_copy = if let Some(found) = found
        && (bin_required || !matches!(found, Ok(Executables::None)))
    {
        let exe = match found {
            Ok(Executables::One(exe)) => exe,
            Ok(Executables::None) => {
                return Err(GradeError::Build(format!(
                    "{}, but left no executable for the launch contract to start: have it build a program named `submission`, or say how to start the submission with server/client templates",
                    says("succeeded")
                )));
            }
            Ok(Executables::Several(names)) => {
                return Err(GradeError::Build(format!(
                    "{}, but left {} executables ({}) and none named `submission`: name the one to grade `submission`, or say how to start the submission with server/client templates",
                    says("succeeded"),
                    names.len(),
                    names.join(", ")
                )));
            }
            Err(e) => return Err(setup("cannot read the build folder", e.into())),
        };
        launch::check_submission(&exe.display().to_string()).map_err(|e| {
            GradeError::Build(format!(
                "{}, but the program it left cannot start: {}",
                says("succeeded"),
                Chain(&e)
            ))
        })?
    } else {
        launch::check_submission(&dir.display().to_string())?
    };
    in_copy.given = sub.given.clone();
    in_copy.name = sub.name.clone();
    in_copy.dir = dir.clone();
    in_copy.work_dir = Some(dir);
    Ok(Built {
        _copy: copy,
        submission: in_copy,
        duration: started.elapsed(),
    })
}

/// What a build gets beyond the allow-list of [`process::env::scrubbed`]: where rustup keeps its
/// toolchains (`RUSTUP_HOME`, by default under the grader's HOME, which the build's fresh HOME
/// hides; `cargo` and `rustc` on PATH are rustup's proxies and fail without it) and the
/// toolchain the grader was told to use. Paths and names only, never a secret.
fn toolchain_env() -> Vec<(&'static str, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let rustup_home = var("RUSTUP_HOME").or_else(|| {
        let dir = Path::new(&var("HOME")?).join(".rustup");
        dir.is_dir().then(|| dir.display().to_string())
    });
    let mut env = Vec::new();
    if let Some(home) = rustup_home {
        env.push(("RUSTUP_HOME", home));
        if let Some(toolchain) = var("RUSTUP_TOOLCHAIN") {
            env.push(("RUSTUP_TOOLCHAIN", toolchain));
        }
    }
    env
}

/// `; its last output lines:` and up to [`OUTPUT_LINES`] indented lines, or `, printing
/// nothing`. `truncated`: the grader kept only the end of the output (it says so).
fn last_lines(output: &str, truncated: bool) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return ", printing nothing".into();
    }
    let shown = &lines[lines.len().saturating_sub(OUTPUT_LINES)..];
    let mut text = if truncated {
        format!(
            "; its output passed {} KiB (the grader kept its end), its last lines:",
            crate::stream::MATCH_CAP >> 10
        )
    } else {
        "; its last output lines:".to_string()
    };
    for line in shown {
        text.push_str("\n    ");
        match line.char_indices().nth(LINE_CHARS) {
            Some((cut, _)) => {
                text.push_str(&line[..cut]);
                text.push_str(" …");
            }
            None => text.push_str(line),
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_quotes_the_last_lines_indented() {
        let output: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let text = last_lines(&output, false);
        assert!(
            text.starts_with("; its last output lines:\n    line 26\n"),
            "{text}"
        );
        assert!(text.ends_with("\n    line 40"), "{text}");
        assert_eq!(text.lines().count(), 1 + OUTPUT_LINES);
        assert_eq!(last_lines("\n \n", false), ", printing nothing");
        let long = "x".repeat(1000);
        assert!(last_lines(&long, false).ends_with(" …"));
        assert!(last_lines("a\n", true).contains("(the grader kept its end), its last lines:"));
    }
}
