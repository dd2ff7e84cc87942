//! Shared helpers: locating fixtures and reference binaries, compiling C/Rust fixtures, running
//! the grader binary in an isolated temporary folder, and checking that nothing it started is
//! still running afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use grader::verdict::{GradeReport, Status};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fixture file, by task and file name.
pub fn fixture(task: u32, name: &str) -> PathBuf {
    let p = root()
        .join("fixtures")
        .join(format!("task{task}"))
        .join(name);
    assert!(p.exists(), "missing fixture {}", p.display());
    p
}

/// The grader binary under test.
pub fn grader_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_grader"))
}

/// A reference binary (`classchat-task1` ...), built on demand if `cargo test -p grader` ran alone.
pub fn reference_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let path = grader_bin().parent().unwrap().join(name);
    if !path.exists() {
        BUILT.get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "classchat-reference", "--bins"])
                .current_dir(root())
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building the reference binaries failed");
        });
    }
    assert!(path.exists(), "missing reference binary {}", path.display());
    path
}

/// Where compiled fixtures go: `<target>/tmp/fixture-bin/` (cargo's folder for integration
/// tests' files), kept between runs so nothing is left in /tmp; a binary is named by its source's
/// content, so an edited fixture is compiled again.
fn build_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-bin");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// Compiles `src` with `compiler` (`args` come before `-o`) into the build folder, unless a binary
/// of the same source is already there; returns the binary. The binary is written under a
/// temporary name and renamed into place, so tests compiling the same fixture at once never run
/// a half-written one.
fn compiled(src: &Path, stem: &str, compiler: &str, args: &[&str]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let text = std::fs::read(src).unwrap();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (compiler, args, &text).hash(&mut h);
    let out = build_dir().join(format!("{stem}-{:016x}", h.finish()));
    if !out.exists() {
        let part = tempfile::Builder::new()
            .prefix(&format!(".{stem}-"))
            .tempfile_in(build_dir())
            .unwrap()
            .into_temp_path();
        let st = Command::new(compiler)
            .args(args)
            .arg("-o")
            .arg(&part)
            .arg(src)
            .status()
            .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
        assert!(st.success(), "{compiler} failed for {}", src.display());
        std::fs::set_permissions(&part, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        part.persist(&out).unwrap();
    }
    out
}

/// Compiles a C fixture with `cc -O1`; returns the binary.
pub fn compile_c(task: u32, name: &str) -> PathBuf {
    compiled(
        &fixture(task, name),
        name.trim_end_matches(".c"),
        "cc",
        &["-O1"],
    )
}

/// Compiles a single-file Rust fixture with `rustc -O`; returns the binary.
pub fn compile_rust(task: u32, name: &str) -> PathBuf {
    compiled(
        &fixture(task, name),
        name.trim_end_matches(".rs"),
        "rustc",
        &["--edition", "2021", "-O"],
    )
}

/// The result of one `grader run`.
pub struct Graded {
    pub output: Output,
    pub out_dir: tempfile::TempDir,
    pub report: Option<GradeReport>,
    /// Scenario name → status.
    pub verdicts: BTreeMap<String, Status>,
}

impl Graded {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn report(&self) -> &GradeReport {
        self.report.as_ref().unwrap_or_else(|| {
            panic!(
                "no report; exit {}; stderr: {}; stdout: {}",
                self.code(),
                self.stderr(),
                self.stdout()
            )
        })
    }
    /// The scenarios that did not pass, with their status.
    pub fn failures(&self) -> BTreeMap<String, Status> {
        self.verdicts
            .iter()
            .filter(|(_, s)| **s != Status::Passed)
            .map(|(n, s)| (n.clone(), *s))
            .collect()
    }
}

/// Runs `grader run --task N <submission> --seed 1 --out <tmp> <extra...>` with TMPDIR pointing
/// at a private folder, then asserts that no process the grading started is still alive.
pub fn grade(task: u32, submission: &Path, extra: &[&str]) -> Graded {
    let out_dir = tempfile::Builder::new()
        .prefix("grader-test-out-")
        .tempdir()
        .unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("grader-test-tmp-")
        .tempdir()
        .unwrap();
    let output = Command::new(grader_bin())
        .arg("run")
        .arg("--task")
        .arg(task.to_string())
        .arg(submission)
        .args(if extra.contains(&"--seed") {
            &[][..]
        } else {
            &["--seed", "1"][..]
        })
        .args(["--format", "compact", "--out"])
        .arg(out_dir.path())
        .args(extra)
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run grader");
    assert_no_leftovers(tmp.path());
    let name = submission
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let path = out_dir.path().join(&name).join(format!("task{task}.toml"));
    let report = std::fs::read_to_string(&path)
        .ok()
        .map(|t| grader::report::toml::parse(&t).expect("report parses back"));
    let verdicts = report
        .as_ref()
        .map(|r| {
            r.scenarios
                .iter()
                .map(|s| (s.name.clone(), s.status))
                .collect()
        })
        .unwrap_or_default();
    Graded {
        output,
        out_dir,
        report,
        verdicts,
    }
}

/// Live processes with their working directory or HOME inside `tmp` (every student process of
/// a grading gets both there): pid and command line.
pub fn leftovers(tmp: &Path) -> Vec<(i32, String)> {
    let tmp = std::fs::canonicalize(tmp).unwrap();
    let home = format!("HOME={}", tmp.display());
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let in_env = environ
            .split(|b| *b == 0)
            .any(|v| v.starts_with(home.as_bytes()));
        if cwd.starts_with(&tmp) || in_env {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            left.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    left
}

/// Fails if any live process has its working directory or HOME inside `tmp`.
pub fn assert_no_leftovers(tmp: &Path) {
    let left = leftovers(tmp);
    assert!(left.is_empty(), "processes outlived the grading: {left:?}");
}

/// How often [`assert_leftovers_vanish`] looks again (bounded by its deadline).
const LEFTOVER_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// Waits (up to `within`, polling) until no process is left in `tmp`; fails otherwise, after
/// killing what is left so one failure does not leak processes into the rest of the run.
pub fn assert_leftovers_vanish(tmp: &Path, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    let mut left = leftovers(tmp);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(LEFTOVER_POLL_INTERVAL);
        left = leftovers(tmp);
    }
    for (pid, _) in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    assert!(left.is_empty(), "processes outlived the grader: {left:?}");
}

/// Asserts the exact failing scenarios (everything else must pass).
#[track_caller]
pub fn assert_failures(g: &Graded, expected: &[(&str, Status)]) {
    let report = g.report();
    let want: BTreeMap<String, Status> =
        expected.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    for name in want.keys() {
        assert!(
            report.scenarios.iter().any(|s| &s.name == name),
            "test names a scenario the spec does not have: {name:?}"
        );
    }
    assert_eq!(
        g.failures(),
        want,
        "verdicts differ; grader output:\n{}",
        g.stdout()
    );
}

/// Runs the grader binary with `args`, TMPDIR at `tmp` and colours off.
pub fn run_grader<I, S>(args: I, tmp: &Path) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(grader_bin())
        .args(args)
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .output()
        .expect("run grader")
}

/// Copies a fixture to `dest` (keeping it executable).
pub fn copy_fixture(task: u32, name: &str, dest: &Path) {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::copy(fixture(task, name), dest).unwrap();
}

/// Grades a fixture (by task and file name) and asserts its exact failing scenarios and the
/// matching exit code (0 when everything passes, 1 otherwise).
#[track_caller]
pub fn check_fixture(task: u32, name: &str, expected: &[(&str, Status)]) {
    let g = grade(task, &fixture(task, name), &[]);
    assert_failures(&g, expected);
    assert_eq!(
        g.code(),
        if expected.is_empty() { 0 } else { 1 },
        "exit code; stderr: {}",
        g.stderr()
    );
}

/// Grades the reference solution bundled into the grader and asserts full marks.
#[track_caller]
pub fn check_bundled_reference(task: u32) {
    check_bundled_reference_with(task, &[]);
}

/// [`check_bundled_reference`] with extra options (e.g. a `--dialect`).
#[track_caller]
pub fn check_bundled_reference_with(task: u32, extra: &[&str]) {
    let out = tempfile::Builder::new()
        .prefix("grader-test-out-")
        .tempdir()
        .unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("grader-test-tmp-")
        .tempdir()
        .unwrap();
    let o = Command::new(grader_bin())
        .args([
            "run",
            "--task",
            &task.to_string(),
            "--seed",
            "1",
            "--format",
            "compact",
            "--out",
        ])
        .arg(out.path())
        .args(extra)
        .env("TMPDIR", tmp.path())
        .output()
        .expect("run grader");
    assert_no_leftovers(tmp.path());
    let text = std::fs::read_to_string(
        out.path()
            .join(format!("reference-task{task}/task{task}.toml")),
    )
    .unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stdout: {}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    let r = grader::report::toml::parse(&text).unwrap();
    assert_eq!(
        r.score,
        r.max_score,
        "reference of task {task}:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(o.status.code(), Some(0));
}

/// A fixture of `fixtures/hostile/`.
pub fn hostile(name: &str) -> PathBuf {
    let p = root().join("fixtures").join("hostile").join(name);
    assert!(p.exists(), "missing fixture {}", p.display());
    p
}

/// Whether network namespaces can be created here; prints why a test is skipped when not.
pub fn netns_available(test: &str) -> bool {
    match grader::net::netns::probe() {
        Ok(()) => true,
        Err(e) => {
            grader::test_skips::skipped(test, &e.to_string());
            false
        }
    }
}

/// Live (non-zombie) processes whose argv[0] is `marker` (the hostile fixtures name their
/// helpers so).
pub fn processes_named(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmd.split(|b| *b == 0).next() == Some(marker.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// How to run a command as an unprivileged user: nothing when the tests already run as one,
/// `setpriv` or `runuser` (as `nobody`) when they run as root; `None` (and a printed reason)
/// when neither works.
pub fn unprivileged(test: &str) -> Option<Vec<String>> {
    if !nix::unistd::geteuid().is_root() {
        return Some(Vec::new());
    }
    let candidates: [&[&str]; 2] = [
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
        &["runuser", "-u", "nobody", "--"],
    ];
    for prefix in candidates {
        let works = Command::new(prefix[0])
            .args(&prefix[1..])
            .arg("true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return Some(prefix.iter().map(|s| s.to_string()).collect());
        }
    }
    grader::test_skips::skipped(
        test,
        "running as root, and neither setpriv nor runuser can drop to uid 65534",
    );
    None
}

/// A temporary folder anyone may write (for a grader run as another user).
pub fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    dir
}

/// The grader with `args`, as the user `prefix` runs commands as, TMPDIR at `tmp`.
pub fn grader_as(prefix: &[String], tmp: &Path, args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new(prefix.first().map_or("env", String::as_str));
    if !prefix.is_empty() {
        cmd.args(&prefix[1..]).arg("env");
    }
    cmd.arg(format!("TMPDIR={}", tmp.display()))
        .arg("NO_COLOR=1")
        .arg(grader_bin())
        .args(args);
    cmd
}

/// Live (non-zombie) guard processes (named `grader-guard`) whose parent is the grader `grader`.
pub fn live_guards_of(grader: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some((name, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next());
        if name.ends_with("(grader-guard")
            && !matches!(state, Some("Z" | "X"))
            && ppid == Some(grader.to_string().as_str())
        {
            found.push(pid);
        }
    }
    found
}

/// Runs `cmd` with stdout and stderr captured and returns its output; if it has not ended within
/// `within`, SIGKILLs it (by its pid) and fails, so a regression that hangs fails in bounded time.
pub fn output_within(cmd: &mut Command, within: std::time::Duration) -> Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the grader");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(output) => output.expect("wait for the grader"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let output = rx.recv().ok().and_then(Result::ok);
            panic!(
                "still running after {within:?} (killed); stdout: {}",
                output.map_or_else(String::new, |o| String::from_utf8_lossy(&o.stdout).into())
            );
        }
    }
}

/// Held by a test while it grades, on the host network, a fixture with a fixed port (12345,
/// 8080, ...): two such gradings at once would meet on that port (a client of one reaching the
/// server of another), which no grading can prevent on a shared network.
pub fn host_fixed_ports() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The outcome of scenario `name` in a grading's report.
#[track_caller]
pub fn scenario<'a>(g: &'a Graded, name: &str) -> &'a grader::verdict::ScenarioOutcome {
    g.report()
        .scenarios
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name:?} in the report"))
}
