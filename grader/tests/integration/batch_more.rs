//! More of `grader batch`, `merge`, `replay` and the exports on batch folders: ids that share a
//! report folder, replaying batch records from elsewhere, the recorded student id in exports,
//! records kept although the latest attempt failed, stale error files, a closed stdout, shards
//! of not-started students, and the temporary folders and cgroups of a SIGKILLed grader.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use grader::process::grader_id::GraderId;
use grader::report::record::{self, Provenance, TomlRecord};
use grader::verdict::{GradeReport, ScenarioOutcome, Status};

use crate::batch::{batch_task1, scores, text};
use crate::support::{
    assert_leftovers_vanish, assert_no_leftovers, copy_fixture, grader_bin, leftovers, run_grader,
};

/// How often a wait with a deadline looks again where no event announces the change.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Sets a file's modification time `secs` seconds into the past.
fn age(path: &Path, secs: u64) {
    let t = std::time::SystemTime::now() - Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn batch_ids_sharing_a_report_folder_grade_neither() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    // Two students whose ids are the same once made safe as a folder name, and different
    // programs (so a mix-up would show in the score).
    copy_fixture(1, "correct_other_style.py", &class.join("jo smith/main.py"));
    copy_fixture(1, "no_ack.py", &class.join("jo_smith/main.py"));
    let out = work.path().join("out");
    // Twice: the outcome must not depend on which grading finished last.
    for run in 0..2 {
        let o = batch_task1(&class, &out, tmp.path(), &["--seed", "1", "-j", "2"]);
        assert_no_leftovers(tmp.path());
        assert_eq!(o.status.code(), Some(1), "run {run}: {}", text(&o));
        assert!(
            !out.join("jo_smith/task1.toml").exists(),
            "run {run}: a record was written to the shared folder: {}",
            text(&o)
        );
        let why = std::fs::read_to_string(out.join("jo_smith/task1.error.txt")).unwrap();
        for needle in ["\"jo smith\"", "\"jo_smith\"", "jo_smith/"] {
            assert!(why.contains(needle), "run {run}: {needle} not in {why}");
        }
        assert_eq!(stdout(&o).matches("NOT STARTED").count(), 4, "{}", text(&o));
    }
}

/// `grader batch --task 1 --seed 1 <class> --out <out>` with both paths relative to `cwd`.
fn batch_in(
    cwd: &Path,
    tmp: &Path,
    class: &str,
    out: &str,
    extra: &[&str],
) -> std::process::Output {
    Command::new(grader_bin())
        .args([
            "batch", "--task", "1", "--seed", "1", "-j", "3", "--out", out, class,
        ])
        .args(extra)
        .current_dir(cwd)
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn replay_reproduces_batch_records_graded_from_a_relative_path() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    // A file, a folder graded by the launch contract on its only executable, and a folder
    // started by its classchat.toml templates.
    copy_fixture(1, "no_ack.py", &class.join("amy.py"));
    copy_fixture(1, "single_recv_truncates.py", &class.join("eve/main.py"));
    copy_fixture(1, "crashes_on_empty_line.py", &class.join("dan/chat.py"));
    std::fs::write(
        class.join("dan/classchat.toml"),
        "server = \"python3 {dir}/chat.py server --port {port}\"\n\
         client = \"python3 {dir}/chat.py client --host {host} --port {port}\"\n",
    )
    .unwrap();
    let o = batch_in(work.path(), tmp.path(), "class", "out", &[]);
    assert_no_leftovers(tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = work.path().join("out");
    let elsewhere = tempfile::tempdir().unwrap();
    let replay = |path: &Path| {
        let o = Command::new(grader_bin())
            .arg("replay")
            .arg(path)
            .args(["--format", "compact", "--out"])
            .arg(elsewhere.path().join("replays"))
            .current_dir(elsewhere.path())
            .env("TMPDIR", tmp.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_no_leftovers(tmp.path());
        o
    };
    for (id, started) in [
        ("amy", class.join("amy.py")),
        ("dan", class.join("dan")),
        ("eve", class.join("eve/main.py")),
    ] {
        let path = out.join(id).join("task1.toml");
        let rec = record::read(&path).unwrap();
        assert_eq!(
            rec.provenance.submission_abs.as_deref().map(PathBuf::from),
            Some(std::fs::canonicalize(&started).unwrap()),
            "{id}: submission_abs is what replay starts"
        );
        let replay = replay(&path);
        assert_ne!(replay.status.code(), Some(2), "{id}: {}", text(&replay));
        assert!(
            stdout(&replay).contains("The replay reproduced the recorded score."),
            "{id}: {}",
            text(&replay)
        );
        let again = record::read(&elsewhere.path().join("replays").join(id).join("task1.toml"))
            .unwrap()
            .report;
        assert_eq!(again.score, rec.report.score, "{id}");
        // Unchanged submissions, eve's included: her content hash covers her whole folder
        // (`submission_root`) while the replay starts her executable.
        assert!(
            !stderr(&replay).contains("changed since this grading"),
            "{id}: {}",
            text(&replay)
        );
    }
    // A change anywhere in eve's folder, not only in the executable replay starts, is one.
    let eve = record::read(&out.join("eve/task1.toml")).unwrap();
    assert_eq!(
        eve.provenance.submission_root.as_deref().map(PathBuf::from),
        Some(std::path::absolute(class.join("eve")).unwrap()),
        "{}",
        text(&o)
    );
    std::fs::write(class.join("eve/notes.txt"), "handed in late\n").unwrap();
    let changed = replay(&out.join("eve/task1.toml"));
    assert_ne!(changed.status.code(), Some(2), "{}", text(&changed));
    let warning = format!(
        "the submission at {} changed since this grading",
        std::path::absolute(class.join("eve")).unwrap().display()
    );
    assert!(stderr(&changed).contains(&warning), "{}", text(&changed));
}

/// Writes a record for `submission` (its report folder is the id made safe) with `score` of 3:
/// one scenario worth 3 points.
fn write_record(out: &Path, submission: &str, score: f64) {
    let scenario = ScenarioOutcome {
        name: "acknowledges".into(),
        role: grader::spec::Role::Server,
        status: if score >= 3.0 {
            Status::Passed
        } else {
            Status::Failed
        },
        points: score,
        max_points: 3.0,
        duration_ms: 1,
        description: None,
        message: String::new(),
        hint: None,
        failed_step: None,
        transcript: Vec::new(),
        stderr_tail: None,
        notes: Vec::new(),
    };
    let report = GradeReport {
        schema_version: grader::verdict::SCHEMA_VERSION,
        grader_version: "0.1.0".into(),
        submission: submission.into(),
        submission_path: format!("/class/{submission}"),
        task: 1,
        task_title: "Basic client-server".into(),
        score,
        max_score: 3.0,
        seed: 1,
        spec_hash: "ab".repeat(32),
        spec_source: "bundled:tasks/task1.toml".into(),
        dialect: None,
        isolation: "host".into(),
        accept_any_port: None,
        timestamp: "2025-01-15T10:00:00Z".into(),
        duration_ms: 900,
        scenarios: vec![scenario],
        notes: Vec::new(),
    };
    grader::report::write_all(out, &report, &[&TomlRecord(&Provenance::default())]).unwrap();
}

fn export(reports: &Path, args: &[&str]) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let mut all: Vec<String> = vec!["export".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.push(reports.display().to_string());
    all.extend(["--out".into(), "-".into()]);
    run_grader(&all, tmp.path())
}

#[test]
fn exports_use_the_recorded_student_id_not_the_folder_name() {
    let work = tempfile::tempdir().unwrap();
    let reports = work.path().join("reports");
    write_record(&reports, "alice@uni.edu", 3.0);
    write_record(&reports, "bob", 1.0);
    assert!(reports.join("alice_uni.edu/task1.toml").exists());

    let csv = export(&reports, &["--format", "csv"]);
    assert_eq!(csv.status.code(), Some(0), "{}", text(&csv));
    let rows: Vec<String> = stdout(&csv).lines().skip(1).map(String::from).collect();
    assert!(rows[0].starts_with("alice@uni.edu,3,"), "{rows:?}");
    assert!(rows[1].starts_with("bob,1,"), "{rows:?}");

    let roster = work.path().join("roster.csv");
    std::fs::write(
        &roster,
        "Student,ID,SIS User ID,SIS Login ID,Section\n    Points Possible,,,,\n\
         \"Liddell, Alice\",11,S11,alice@uni.edu,A\n\"Builder, Bob\",12,S12,bob,A\n",
    )
    .unwrap();
    let canvas = export(
        &reports,
        &["--format", "canvas", "--roster", roster.to_str().unwrap()],
    );
    assert_eq!(canvas.status.code(), Some(0), "{}", text(&canvas));
    let body = stdout(&canvas);
    assert!(
        body.lines()
            .any(|l| l.contains("alice@uni.edu") && l.ends_with(",3")),
        "{body}"
    );
    assert!(!stderr(&canvas).contains("no row"), "{}", text(&canvas));

    let summary = export(&reports, &["--format", "summary"]);
    assert!(stdout(&summary).contains(">alice@uni.edu</a>"));
}

#[test]
fn stale_records_and_never_graded_students_are_reported_and_old_error_files_go() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    copy_fixture(1, "correct_other_style.py", &class.join("amy.py"));
    copy_fixture(1, "correct_other_style.py", &class.join("ben/main.py"));
    // fay hands in nothing that can be started: she never gets a record.
    std::fs::create_dir_all(class.join("fay")).unwrap();
    let out = work.path().join("out");
    let batch = || {
        let o = batch_task1(&class, &out, tmp.path(), &["--seed", "1", "-j", "2"]);
        assert_no_leftovers(tmp.path());
        o
    };
    let first = batch();
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));

    // An error file from before amy's record (e.g. left by an older grader) is stale: a rerun
    // that finds the record up to date removes it.
    let amy_error = out.join("amy/task1.error.txt");
    std::fs::write(
        &amy_error,
        "not graded at T: an old infrastructure failure\n",
    )
    .unwrap();
    age(&amy_error, 3600);
    // ben resubmits something that cannot be started: his record stays, a newer error explains.
    copy_fixture(1, "no_ack.py", &class.join("ben/other.py"));
    let second = batch();
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        stdout(&second).contains("up to date, not regraded"),
        "{}",
        text(&second)
    );
    assert!(!amy_error.exists(), "the stale error file is still there");
    assert!(out.join("ben/task1.toml").exists());
    assert!(out.join("ben/task1.error.txt").exists());

    let summary = export(&out, &["--format", "summary"]);
    assert_eq!(summary.status.code(), Some(0), "{}", text(&summary));
    let warnings = stderr(&summary);
    assert!(
        warnings.contains("latest attempt was not graded:\n  - ben (task 1: not started"),
        "{warnings}"
    );
    assert!(
        warnings.contains("never graded") && warnings.contains("fay (task 1: not started"),
        "{warnings}"
    );
    assert!(!warnings.contains("amy"), "{warnings}");
    let html = stdout(&summary);
    assert!(html.contains("latest attempt not graded"), "{html}");
    assert!(html.contains("2 students · 1 not graded"), "{html}");
    assert!(html.contains("<td>fay</td>"), "{html}");
    // Every format warns, not only the summary.
    let csv = export(&out, &["--format", "csv"]);
    assert!(stderr(&csv).contains("ben (task 1"), "{}", text(&csv));
}

#[test]
fn batch_survives_a_closed_stdout() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    copy_fixture(1, "correct_other_style.py", &class.join("amy.py"));
    copy_fixture(1, "no_ack.py", &class.join("ben.py"));
    let out = work.path().join("out");
    // `grader batch ... | head -1`: read the first line, then close the pipe.
    let mut child = Command::new(grader_bin())
        .args(["batch", "--task", "1", "--seed", "1", "-j", "1", "--out"])
        .arg(&out)
        .arg(&class)
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("Batch:"), "{first}");
    let o = child.wait_with_output().unwrap();
    assert_no_leftovers(tmp.path());
    assert!(!stderr(&o).contains("panicked"), "{}", text(&o));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = scores(&out);
    assert_eq!(s.keys().collect::<Vec<_>>(), ["amy", "ben"]);
}

#[test]
fn merge_takes_a_shard_of_not_started_students() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    // Sorted ids amy, bob: shard 1/2 is amy (graded), shard 2/2 is bob (cannot be started).
    copy_fixture(1, "no_ack.py", &class.join("amy.py"));
    std::fs::create_dir_all(class.join("bob")).unwrap();
    std::fs::write(class.join("bob/notes.txt"), "nothing to run").unwrap();
    let (s1, s2, merged) = (
        work.path().join("s1"),
        work.path().join("s2"),
        work.path().join("merged"),
    );
    let one = batch_task1(&class, &s1, tmp.path(), &["--seed", "1", "--shard", "1/2"]);
    let two = batch_task1(&class, &s2, tmp.path(), &["--seed", "1", "--shard", "2/2"]);
    assert_no_leftovers(tmp.path());
    assert_eq!(one.status.code(), Some(0), "{}", text(&one));
    assert_eq!(two.status.code(), Some(1), "{}", text(&two));
    let m = run_grader(
        [
            "merge".as_ref(),
            s1.as_os_str(),
            s2.as_os_str(),
            "--out".as_ref(),
            merged.as_os_str(),
        ],
        tmp.path(),
    );
    assert_eq!(m.status.code(), Some(0), "{}", text(&m));
    assert!(
        stderr(&m).contains("holds no grading records, only the error files"),
        "{}",
        text(&m)
    );
    assert!(merged.join("bob/task1.error.txt").exists());
    assert_eq!(scores(&merged), scores(&s1));
    // A folder with nothing at all is still refused.
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let m = run_grader(
        [
            "merge".as_ref(),
            s1.as_os_str(),
            empty.as_os_str(),
            "--out".as_ref(),
            work.path().join("m2").as_os_str(),
        ],
        tmp.path(),
    );
    assert_eq!(m.status.code(), Some(2), "{}", text(&m));
}

/// The temporary HOME and working folders of the grader `id` in `tmp` (real folders named with
/// its full prefixes).
fn grader_temp_folders(tmp: &Path, id: &GraderId) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&id.home_prefix()) || n.starts_with(&id.cwd_prefix()))
        .collect()
}

/// The names in `tmp`, for failure messages.
fn listing(tmp: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The cgroup folders named with `grader`'s identity, in every hierarchy under
/// `/sys/fs/cgroup` (pids, memory, cpu on v1; the v2 one), searched a few levels deep.
fn cgroup_folders_of(grader: &GraderId) -> Vec<PathBuf> {
    let prefix = format!("grader-{}-", grader.tag());
    let mut found = Vec::new();
    let mut todo = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = todo.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            // Real folders only: `cpu` may be a link to `cpu,cpuacct`, which is walked itself.
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(e.path());
            } else if depth < 8 {
                todo.push((e.path(), depth + 1));
            }
        }
    }
    found
}

/// The guard process the grader `grader` forked (a child named `grader-guard`).
fn guard_of(grader: u32) -> Option<GraderId> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1));
            stat.contains("(grader-guard)") && ppid == Some(grader.to_string().as_str())
        })
        .and_then(GraderId::of)
}

/// Folders and links in a SIGKILLed grader's TMPDIR that are not its own and must survive its
/// guard: named like the older pid-only scheme, with a pid that starts with the grader's, with
/// its pid but another start time (a reused pid) or another PID namespace, and symbolic links
/// named with its pid or even its full prefix, to a folder outside.
struct Decoys {
    dirs: Vec<PathBuf>,
    links: Vec<PathBuf>,
    target: PathBuf,
}

impl Decoys {
    fn create(tmp: &Path, outside: &Path, grader: &GraderId) -> Self {
        let tag = grader.tag();
        let [pid, start, scope]: [&str; 3] = tag.split('-').collect::<Vec<_>>().try_into().unwrap();
        let later = start.parse::<u64>().unwrap() + 1;
        let other_scope = format!("{:08x}", u32::from_str_radix(scope, 16).unwrap() ^ 1);
        let dirs: Vec<PathBuf> = [
            format!("grader-cwd-{pid}-mine"),
            format!("grader-home-{pid}-mine"),
            format!("grader-cwd-{pid}0-decoy"),
            format!("grader-cwd-{pid}0-{start}-{scope}-decoy"),
            format!("grader-home-{pid}0-{start}-{scope}-decoy"),
            format!("grader-cwd-{pid}-{later}-{scope}-decoy"),
            format!("grader-home-{pid}-{start}-{other_scope}-decoy"),
        ]
        .iter()
        .map(|n| tmp.join(n))
        .collect();
        for d in &dirs {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("work"), "a live grader's").unwrap();
        }
        let target = outside.join("precious");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("file"), "must survive").unwrap();
        let links: Vec<PathBuf> = [
            format!("grader-cwd-{pid}-link"),
            format!("grader-home-{pid}-link"),
            format!("{}link", grader.cwd_prefix()),
            format!("{}link", grader.home_prefix()),
        ]
        .iter()
        .map(|n| tmp.join(n))
        .collect();
        for l in &links {
            std::os::unix::fs::symlink(&target, l).unwrap();
        }
        Decoys {
            dirs,
            links,
            target,
        }
    }

    #[track_caller]
    fn assert_intact(&self, tmp: &Path) {
        for d in &self.dirs {
            assert!(
                d.join("work").is_file(),
                "the guard removed {}: {:?}",
                d.display(),
                listing(tmp)
            );
        }
        for l in &self.links {
            assert!(
                std::fs::symlink_metadata(l).is_ok_and(|m| m.file_type().is_symlink()),
                "the guard removed the link {}: {:?}",
                l.display(),
                listing(tmp)
            );
        }
        assert_eq!(
            std::fs::read_to_string(self.target.join("file"))
                .ok()
                .as_deref(),
            Some("must survive"),
            "the guard followed a link"
        );
    }
}

#[test]
fn a_sigkilled_graders_temporary_folders_are_removed() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    for id in ["amy", "ben"] {
        copy_fixture(1, "correct_other_style.py", &class.join(format!("{id}.py")));
    }
    let mut child = Command::new(grader_bin())
        .args(["batch", "--task", "1", "-j", "1", "--out"])
        .arg(work.path().join("out"))
        .arg(&class)
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Same PID namespace and boot as this test, so its identity can be read here.
    let grader = GraderId::of(child.id()).expect("the grader's /proc/<pid>/stat");
    // Kill once a student program runs in its temporary folders, named with the grader's full
    // prefixes, and in its cgroups where the grader may make them (root), and its guard is up
    // (polling: no event says so).
    let cgroups = nix::unistd::geteuid().is_root()
        && nix::unistd::access("/sys/fs/cgroup", nix::unistd::AccessFlags::W_OK).is_ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut guard = None;
    while leftovers(tmp.path()).is_empty()
        || grader_temp_folders(tmp.path(), &grader).is_empty()
        || (cgroups && cgroup_folders_of(&grader).is_empty())
        || guard.is_none()
    {
        assert!(
            Instant::now() < deadline,
            "no student program in {:?}-named folders after 60 s (guard {guard:?}): {:?}",
            grader.home_prefix(),
            listing(tmp.path())
        );
        assert!(child.try_wait().unwrap().is_none(), "batch ended early");
        guard = guard.or_else(|| guard_of(grader.pid()));
        std::thread::sleep(POLL_INTERVAL);
    }
    let guard = guard.unwrap();
    let decoys = Decoys::create(tmp.path(), work.path(), &grader);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_leftovers_vanish(tmp.path(), Duration::from_secs(10));
    // The guard's end says its cleanup is over.
    let deadline = Instant::now() + Duration::from_secs(15);
    while guard.is_alive() == Some(true) {
        assert!(Instant::now() < deadline, "the guard outlived the grader");
        std::thread::sleep(POLL_INTERVAL);
    }
    let left = grader_temp_folders(tmp.path(), &grader);
    assert!(
        left.is_empty(),
        "temporary folders outlived the grader: {left:?}"
    );
    // Its cgroups too, in every hierarchy (pids, memory, cpu).
    let left = cgroup_folders_of(&grader);
    assert!(left.is_empty(), "cgroups outlived the grader: {left:?}");
    decoys.assert_intact(tmp.path());
}

/// `grader run` on a folder starts it as `grader batch` would: by its `classchat.toml`, or by the
/// launch contract on its only executable; the report is named after the folder.
#[test]
fn run_starts_a_folder_like_batch_does() {
    let d = tempfile::tempdir().unwrap();
    let by_file = d.path().join("by-file");
    copy_fixture(1, "no_ack.py", &by_file.join("chat.py"));
    std::fs::set_permissions(
        by_file.join("chat.py"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(
        by_file.join("classchat.toml"),
        "server = \"python3 {dir}/chat.py server --port {port}\"\n\
         client = \"python3 {dir}/chat.py client --host {host} --port {port}\"\n",
    )
    .unwrap();
    let by_contract = d.path().join("by-contract");
    copy_fixture(1, "no_ack.py", &by_contract.join("main.py"));
    for folder in [&by_file, &by_contract] {
        let out = d.path().join("reports");
        let o = Command::new(grader_bin())
            .args(["run", "--task", "1", "--seed", "3", "--out"])
            .arg(&out)
            .arg(folder)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
        let name = folder.file_name().unwrap();
        let r = record::read(&out.join(name).join("task1.toml")).unwrap();
        // no_ack loses exactly the acknowledgment's 3 points, whichever way it was started.
        assert_eq!(r.report.score, 27.0, "{}", folder.display());
    }
}

/// The rough edges of `batch --export` (issue 13): a student never graded has a row in the CSV
/// and the Markdown (empty score, a status saying why), the never-graded warning is said once
/// however many formats are exported, one item a line, and the per-student formats name the
/// files they wrote (not the literal `<out>/<student>/results.json`).
#[test]
fn batch_exports_list_never_graded_students_and_say_things_once() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    copy_fixture(1, "correct_other_style.py", &class.join("amy.py"));
    // fay hands in a folder with nothing that can be started.
    std::fs::create_dir_all(class.join("fay")).unwrap();
    let out = work.path().join("out");
    let o = batch_task1(
        &class,
        &out,
        tmp.path(),
        &[
            "--seed",
            "1",
            "--no-progress",
            "--export",
            "gradescope",
            "--export",
            "csv",
            "--export",
            "markdown",
        ],
    );
    assert_no_leftovers(tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let (out_text, err_text) = (stdout(&o), stderr(&o));
    assert_eq!(
        err_text.matches("never graded").count(),
        1,
        "said once: {}",
        text(&o)
    );
    assert!(
        err_text.contains("never graded (only an error file, no record; listed with an empty score):\n  - fay (task 1: "),
        "{err_text}"
    );
    let amy = out.join("amy/results.json");
    assert!(amy.exists());
    assert!(
        out_text.contains(&format!(
            "Exported gradescope (1 student(s)): {}\n",
            amy.display()
        )),
        "{out_text}"
    );
    assert!(!out_text.contains("<out>"), "{out_text}");

    let csv = std::fs::read_to_string(out.join("grades.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(rdr.headers().unwrap().iter().next_back(), Some("status"));
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids, ["amy", "fay"], "{csv}");
    assert_eq!(
        (&rows[0][1], rows[0].iter().next_back()),
        ("30", Some("graded"))
    );
    assert_eq!(
        (&rows[1][1], rows[1].iter().next_back()),
        ("", Some("not graded"))
    );

    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("1 students · 1 not graded"), "{md}");
    assert!(
        md.contains("| fay | — | — | not graded: not started"),
        "{md}"
    );
}

/// A class's tasks in one run: `--task 1 t1/ --task 4 t4/` grades each folder for the task
/// given before it (one admission queue for both), writes `<id>/task<N>.toml` per task, labels
/// its lines with the task, exports every task graded, and a rerun finds all of them up to
/// date. A folder before any task, or a task without a folder, is a usage error.
#[test]
fn a_class_of_several_tasks_is_graded_in_one_run() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (t1, t4, out) = (
        work.path().join("t1"),
        work.path().join("t4"),
        work.path().join("out"),
    );
    copy_fixture(1, "correct_other_style.py", &t1.join("amy.py"));
    copy_fixture(1, "no_ack.py", &t1.join("ben.py"));
    copy_fixture(4, "correct_pair.py", &t4.join("amy.py"));
    copy_fixture(4, "drops_unknown_receiver.py", &t4.join("ben.py"));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["batch", "--seed", "1", "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(out.display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (d1, d4) = (t1.display().to_string(), t4.display().to_string());
    let first = run_grader(
        args(&["--task", "1", &d1, "--task", "4", &d4, "--export", "csv"]),
        tmp.path(),
    );
    // Every submission graded; ben loses points in both tasks.
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let so = stdout(&first);
    assert!(so.contains("Batch: tasks 1, 4 · 4 submission(s)"), "{so}");
    for label in [
        "amy · task 1",
        "amy · task 4",
        "ben · task 1",
        "ben · task 4",
    ] {
        assert!(so.contains(label), "no line for {label}:\n{so}");
    }
    let (records, skipped) = record::read_dir(&out).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let mut graded: Vec<(String, u32, bool)> = records
        .iter()
        .map(|(id, r)| {
            (
                id.clone(),
                r.report.task,
                r.report.score + 1e-9 >= r.report.max_score,
            )
        })
        .collect();
    graded.sort();
    assert_eq!(
        graded,
        [
            ("amy".to_string(), 1, true),
            ("amy".to_string(), 4, true),
            ("ben".to_string(), 1, false),
            ("ben".to_string(), 4, false),
        ]
    );
    let csv = std::fs::read_to_string(out.join("grades.csv")).unwrap();
    assert!(
        csv.lines().count() >= 3 && csv.contains("amy") && csv.contains("ben"),
        "{csv}"
    );

    // A rerun: nothing changed, nothing regraded.
    let again = run_grader(args(&["--task", "1", &d1, "--task", "4", &d4]), tmp.path());
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        stdout(&again).contains("0 graded, 4 up to date"),
        "{}",
        text(&again)
    );

    // Usage errors: said before anything is graded.
    let before = run_grader(args(&[&d1, "--task", "1", "--task", "4", &d4]), tmp.path());
    assert_eq!(before.status.code(), Some(2), "{}", text(&before));
    assert!(
        stderr(&before).contains("comes before any --task"),
        "{}",
        text(&before)
    );
    let missing = run_grader(args(&["--task", "1", "--task", "4", &d4]), tmp.path());
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        stderr(&missing).contains("--task 1 has no folder after it"),
        "{}",
        text(&missing)
    );
}
