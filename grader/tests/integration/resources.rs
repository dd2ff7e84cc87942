//! Memory and CPU limits of student programs (the `memory` and `cpu` controllers of their
//! cgroups): a memory hog is killed and its verdict names the memory limit; busy loops get no
//! more CPU time than the quota, however many there are. The gradings run through the library,
//! with limits set small in the engine options (the defaults, 1 GiB and one core, would cost
//! too much to reach), and check that nothing of the fixture is left. They need root and the
//! controller (cgroup v1 or v2) and say so when they skip.

use std::path::Path;
use std::time::{Duration, Instant};

use grader::engine::GradeError;
use grader::events::NoEvents;
use grader::job::{Job, RunOptions, Settings};
use grader::net::ports::PortPool;
use grader::process::limits::Limits;
use grader::spec::{Role, SpecSource};
use grader::verdict::{GradeReport, Status};

use crate::support::hostile;

/// Whether cgroups with `controller` can be made here (root, and the controller mounted on a
/// writable v1 hierarchy or offered by a writable v2 one); prints why a test is skipped when
/// not. Decided without the grader's own cgroup code, so a broken one cannot skip its tests.
fn controller_available(test: &str, controller: &str) -> bool {
    let writable =
        |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok() && p.is_dir();
    let v1 = Path::new("/sys/fs/cgroup").join(controller);
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|t| t.split_whitespace().any(|c| c == controller));
    let available = nix::unistd::geteuid().is_root()
        && (writable(&v1) || (v2 && writable(Path::new("/sys/fs/cgroup"))));
    if !available {
        grader::test_skips::skipped(
            test,
            &format!("no writable cgroup {controller} controller here (needs root)"),
        );
    }
    available
}

/// Grades `fixture` through the library with `limits`: against the bundled Task 1, or against
/// the task file `spec`.
fn grade_with(fixture: &Path, spec: Option<&str>, limits: Limits) -> GradeReport {
    let tasks = tempfile::tempdir().unwrap();
    let task = match spec {
        None => 1,
        Some(text) => {
            let spec =
                grader::spec::parse(text, SpecSource::File("resources-test.toml".into())).unwrap();
            std::fs::write(tasks.path().join(format!("task{}.toml", spec.task)), text).unwrap();
            spec.task
        }
    };
    let tasks_dir = spec.map(|_| tasks.path().to_path_buf());
    let job = job(task, tasks_dir, fixture, None, limits);
    let report = run_grading(&job).unwrap();
    assert_nothing_left_of(fixture);
    report
}

/// A grading of `submission` for `task` (from `tasks_dir`, else bundled) with `limits`.
fn job(
    task: u32,
    tasks_dir: Option<std::path::PathBuf>,
    submission: &Path,
    build: Option<&str>,
    limits: Limits,
) -> Job {
    let out = tempfile::tempdir().unwrap();
    let mut job = Job::from_args(RunOptions {
        task,
        submission: Some(submission.to_path_buf()),
        build: build.map(String::from),
        seed: 1,
        settings: Settings {
            tasks_dir,
            out: out.path().join("reports"),
            ..Settings::default()
        },
        ..RunOptions::default()
    })
    .unwrap();
    job.set_limits(limits);
    job
}

fn run_grading(job: &Job) -> Result<GradeReport, GradeError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(job.grade(&PortPool::new(1), &NoEvents))
}

/// Fails if a live process still runs `fixture` (its command line names the file: the copy
/// the grading ran from, so by its name).
fn assert_nothing_left_of(fixture: &Path) {
    let needle = fixture.file_name().unwrap().to_str().unwrap().as_bytes();
    let left: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'));
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !zombie && cmd.windows(needle.len()).any(|w| w == needle)
        })
        .collect();
    assert!(left.is_empty(), "processes outlived the grading: {left:?}");
}

#[test]
fn a_memory_hog_is_killed_at_the_memory_limit_and_the_verdict_says_so() {
    if !controller_available(
        "a_memory_hog_is_killed_at_the_memory_limit_and_the_verdict_says_so",
        "memory",
    ) {
        return;
    }
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let t0 = Instant::now();
    let r = grade_with(&hostile("touches_96mib_at_start.py"), None, limits);
    assert!(t0.elapsed() < Duration::from_secs(90), "{:?}", t0.elapsed());
    let servers: Vec<_> = r
        .scenarios
        .iter()
        .filter(|s| s.role == Role::Server)
        .collect();
    assert!(!servers.is_empty());
    for s in &servers {
        assert_eq!(s.status, Status::Crashed, "{}: {}", s.name, s.message);
        assert_eq!(
            s.message, "the server was killed: it used more than the 64 MiB memory limit",
            "{}",
            s.name
        );
        // Killed before it got past its allocations.
        let tail = s.stderr_tail.as_deref().unwrap_or("");
        assert!(!tail.contains("survived"), "{}: {tail}", s.name);
        assert!(
            s.transcript
                .iter()
                .any(|l| l.contains("killed by signal 9 (SIGKILL)")),
            "{}: {:?}",
            s.name,
            s.transcript
        );
    }
    // The client, within the limit, passes.
    for s in r.scenarios.iter().filter(|s| s.role == Role::Client) {
        assert_eq!(s.status, Status::Passed, "{}: {}", s.name, s.message);
    }
}

/// One server scenario that measures the server's CPU use over 3 s with `expect_cpu_below`
/// and an allowance it must exceed (5% of a core), so the verdict says how much it used.
const CPU_TASK: &str = r#"
task = 1
title = "CPU limit"
description = "Busy loops of one program share its CPU quota."

[defaults]
within = "2s"
listen_within = "20s"

[[scenario]]
name = "busy loops"
points = 1
role = "server"
description = "The server's CPU use over 3 s, measured by the grader."
steps = [
  { do = "start_server" },
  { do = "expect_cpu_below", process = "server", window = "3s", max_percent = 5 },
]
"#;

#[test]
fn busy_loops_get_no_more_cpu_time_than_the_quota() {
    if !controller_available("busy_loops_get_no_more_cpu_time_than_the_quota", "cpu") {
        return;
    }
    // Half a core: 8 busy loops would take both cores of a 2-core machine without the quota,
    // and still far more than 75% of one under the load of a whole test run.
    let limits = Limits {
        cpu_percent: 50,
        ..Limits::default()
    };
    let r = grade_with(&hostile("spins_8_busy_loops.py"), Some(CPU_TASK), limits);
    let s = &r.scenarios[0];
    // The measurement is the grader's own (the CPU ticks of every member of the program's
    // cgroup, from /proc), over the window; the allowance of 5% makes the verdict say it.
    assert_eq!(s.status, Status::Failed, "{}", s.message);
    let used: f64 = regex::Regex::new(r"used (\d+)% of a CPU core")
        .unwrap()
        .captures(&s.message)
        .unwrap_or_else(|| panic!("no CPU use in {:?}", s.message))[1]
        .parse()
        .unwrap();
    eprintln!("8 busy loops used {used}% of one core (quota 50%)");
    // Above: the loops were spinning (a sleeping program uses ~0%; 10% leaves room for a
    // machine so loaded that the loops' fair share is below their quota). Below: the quota
    // with a 50% margin for the measurement's tick granularity.
    assert!(
        (10.0..=75.0).contains(&used),
        "8 busy loops used {used}% of a core with a 50% quota: {}",
        s.message
    );
}

#[test]
fn a_build_killed_at_the_memory_limit_says_so() {
    if !controller_available("a_build_killed_at_the_memory_limit_says_so", "memory") {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("grader-test-build-hog-")
        .tempdir()
        .unwrap();
    // A "build" that writes 96 MiB in 4 MiB steps, as a compiler on a huge file might.
    std::fs::write(
        dir.path().join("hog.py"),
        "kept = []\nfor _ in range(24):\n    kept.append(b'x' * (4 << 20))\nprint('survived')\n",
    )
    .unwrap();
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let job = job(1, None, dir.path(), Some("python3 hog.py"), limits);
    let err = run_grading(&job).expect_err("the build must fail");
    let text = err.to_string();
    assert!(
        matches!(err, GradeError::Build(_)) && text.contains("more than the 64 MiB memory limit"),
        "{text}"
    );
    assert!(!text.contains("survived"), "{text}");
}
