//! `grader batch` and `grader merge`: discovery of files and folders (with `classchat.toml`),
//! per-submission records, resuming without regrading, regrading a changed submission, shards
//! that merge into the unsharded result, and surviving a SIGKILL mid-batch.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use grader::report::record;
use grader::verdict::Status;

use crate::support::{assert_leftovers_vanish, assert_no_leftovers, copy_fixture, run_grader};

/// A class of 5 submissions (3 files, 2 folders) plus one folder that cannot be started.
fn make_class(dir: &Path) {
    copy_fixture(1, "correct_other_style.py", &dir.join("amy.py"));
    copy_fixture(1, "no_ack.py", &dir.join("ben.py"));
    copy_fixture(1, "ignores_exit.py", &dir.join("cat.py"));
    // A folder started through its classchat.toml (the file itself is not executable).
    copy_fixture(1, "crashes_on_empty_line.py", &dir.join("dan/chat.py"));
    std::fs::write(
        dir.join("dan/classchat.toml"),
        "server = \"python3 {dir}/chat.py server --port {port}\"\n\
         client = \"python3 {dir}/chat.py client --host {host} --port {port}\"\n",
    )
    .unwrap();
    // A folder with its only executable.
    copy_fixture(1, "single_recv_truncates.py", &dir.join("eve/main.py"));
    // A folder with nothing to start.
    std::fs::create_dir_all(dir.join("fay")).unwrap();
    std::fs::write(dir.join("fay/notes.txt"), "I forgot to hand in").unwrap();
    std::fs::write(dir.join("roster.txt"), "not a submission").unwrap();
}

/// student → (score, scenario → status)
pub(crate) type Scores = BTreeMap<String, (f64, BTreeMap<String, Status>)>;

pub(crate) fn scores(out: &Path) -> Scores {
    let (records, skipped) = record::read_dir(out).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    records
        .into_iter()
        .map(|(id, r)| {
            let verdicts = r
                .report
                .scenarios
                .iter()
                .map(|s| (s.name.clone(), s.status))
                .collect();
            (id, (r.report.score, verdicts))
        })
        .collect()
}

fn timestamps(out: &Path) -> BTreeMap<String, (String, std::time::SystemTime)> {
    record::read_dir(out)
        .unwrap()
        .0
        .into_iter()
        .map(|(id, r)| {
            let mtime = std::fs::metadata(out.join(&id).join("task1.toml"))
                .unwrap()
                .modified()
                .unwrap();
            (id, (r.report.timestamp, mtime))
        })
        .collect()
}

/// `grader batch --task 1 --out <out> <class> <extra...>`, run in `tmp`.
pub(crate) fn batch_task1(
    class: &Path,
    out: &Path,
    tmp: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args: Vec<String> = vec!["batch".into(), "--task".into(), "1".into()];
    args.extend(["--out".into(), out.display().to_string()]);
    args.push(class.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    run_grader(&args, tmp)
}

pub(crate) fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn batch_grades_resumes_regrades_changes_and_shards_merge() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    make_class(&class);
    let out = work.path().join("out");
    let batch = |out: &Path, extra: &[&str]| {
        batch_task1(
            &class,
            out,
            tmp.path(),
            &[&["--seed", "1", "-j", "2"], extra].concat(),
        )
    };

    let first = batch(&out, &["--export", "csv"]);
    assert_no_leftovers(tmp.path());
    // fay cannot be started: exit 1, everyone else graded.
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("Ignored 1 non-executable file(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fay") && stdout.contains("NOT STARTED"),
        "{stdout}"
    );
    let s = scores(&out);
    let ids: Vec<&str> = s.keys().map(String::as_str).collect();
    assert_eq!(ids, ["amy", "ben", "cat", "dan", "eve"]);
    assert_eq!(s["amy"].0, 30.0);
    assert_eq!(s["ben"].0, 27.0);
    let failed = |id: &str| -> Vec<String> {
        s[id]
            .1
            .iter()
            .filter(|(_, st)| **st != Status::Passed)
            .map(|(n, _)| n.clone())
            .collect()
    };
    assert_eq!(failed("ben"), ["server acknowledges a new connection"]);
    assert_eq!(
        failed("dan"),
        ["an empty line does not break the connection"]
    );
    assert_eq!(failed("eve"), ["a 4000-byte line is answered whole"]);
    assert!(out.join("fay/task1.error.txt").exists());
    assert!(out.join("dan/task1.junit.xml").exists());
    // The CSV parses back: one row per student, totals match the records; fay, never graded,
    // has her row with empty scores and says so in the last column.
    let mut rdr = csv::Reader::from_path(out.join("grades.csv")).unwrap();
    let header = rdr.headers().unwrap().clone();
    assert_eq!(&header[0], "student_id");
    assert_eq!(&header[1], "total");
    assert_eq!(header.iter().next_back(), Some("status"));
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6);
    let (graded, fay): (Vec<_>, Vec<_>) = rows.iter().partition(|r| &r[0] != "fay");
    let fay = fay[0];
    assert_eq!(
        (&fay[1], &fay[3], fay.iter().next_back()),
        ("", "", Some("not graded"))
    );
    assert!(
        fay.iter().skip(4).take(fay.len() - 5).all(str::is_empty),
        "{fay:?}"
    );
    for row in graded {
        assert_eq!(row.iter().next_back(), Some("graded"));
        let total: f64 = row[1].parse().unwrap();
        assert_eq!(total, s[&row[0]].0);
        let per_scenario: f64 = row
            .iter()
            .skip(5)
            .take(row.len() - 6)
            .map(|v| v.parse::<f64>().unwrap())
            .sum();
        assert_eq!(
            per_scenario, total,
            "scenario points add up for {}",
            &row[0]
        );
    }

    // A rerun regrades nothing: every record (and its file) is untouched.
    let before = timestamps(&out);
    let second = batch(&out, &[]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert_eq!(
        String::from_utf8_lossy(&second.stdout)
            .matches("up to date, not regraded")
            .count(),
        5,
        "{}",
        text(&second)
    );
    assert_eq!(timestamps(&out), before);

    // A changed submission is regraded; the others are not.
    let eve = class.join("eve/main.py");
    let mut src = std::fs::read_to_string(&eve).unwrap();
    src.push_str("\n# resubmitted\n");
    std::fs::write(&eve, src).unwrap();
    let third = batch(&out, &[]);
    let after = timestamps(&out);
    let stdout = String::from_utf8_lossy(&third.stdout);
    assert_eq!(
        stdout.matches("up to date, not regraded").count(),
        4,
        "{stdout}"
    );
    for id in ["amy", "ben", "cat", "dan"] {
        assert_eq!(after[id], before[id], "{id} was regraded");
    }
    assert_ne!(after["eve"].1, before["eve"].1, "eve was not regraded");

    // Two shards, merged, equal the unsharded run (scores and verdicts; seeds are fixed).
    let (s1, s2, merged) = (
        work.path().join("s1"),
        work.path().join("s2"),
        work.path().join("merged"),
    );
    let one = batch(&s1, &["--shard", "1/2"]);
    let two = batch(&s2, &["--shard", "2/2"]);
    assert_no_leftovers(tmp.path());
    let (a, b) = (scores(&s1), scores(&s2));
    assert!(
        !a.is_empty() && !b.is_empty(),
        "{}\n{}",
        text(&one),
        text(&two)
    );
    assert!(a.keys().all(|k| !b.contains_key(k)), "shards overlap");
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
    assert_eq!(scores(&merged), scores(&out));
    assert!(merged.join("fay/task1.error.txt").exists());
}

#[test]
fn batch_killed_mid_run_resumes_without_regrading() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    // Each server this submission starts leaves a daemon that ignores SIGTERM and closed pipes:
    // nothing but a kill ends it.
    std::fs::create_dir_all(&class).unwrap();
    for i in 0..5 {
        std::fs::copy(
            crate::support::hostile("double_fork_daemon.py"),
            class.join(format!("s{i}.py")),
        )
        .unwrap();
    }
    let out = work.path().join("out");
    let mut child = std::process::Command::new(crate::support::grader_bin())
        .args(["batch", "--task", "1", "-j", "1", "--out"])
        .arg(&out)
        .arg(&class)
        .env("TMPDIR", tmp.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (polling, no fixed sleep) until at least one record exists and a daemon is running
    // (more submissions are to come at -j 1), then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(120);
    let count = || record::read_dir(&out).map(|(r, _)| r.len()).unwrap_or(0);
    let daemon = || {
        crate::support::leftovers(tmp.path())
            .iter()
            .any(|(_, cmd)| cmd.contains("grader-hostile-daemon"))
    };
    while count() == 0 || !daemon() {
        assert!(Instant::now() < deadline, "no record after 120 s");
        assert!(child.try_wait().unwrap().is_none(), "batch ended early");
        // Polling the report folder: no event tells us another process wrote a file.
        std::thread::sleep(REPORT_POLL_INTERVAL);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // SIGKILL gives the grader no chance to end its student programs: its guard process does.
    assert_leftovers_vanish(tmp.path(), Duration::from_secs(10));
    let done = timestamps(&out);
    assert!(!done.is_empty() && done.len() < 5, "{done:?}");

    let rerun = run_grader(
        [
            "batch".as_ref(),
            "--task".as_ref(),
            "1".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            class.as_os_str(),
        ],
        tmp.path(),
    );
    assert_no_leftovers(tmp.path());
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert_eq!(
        stdout.matches("up to date, not regraded").count(),
        done.len(),
        "{stdout}"
    );
    let after = timestamps(&out);
    assert_eq!(after.len(), 5);
    for (id, t) in &done {
        assert_eq!(&after[id], t, "{id} was regraded after the kill");
    }
}

/// How often the kill-and-resume test looks for the first report (bounded by a deadline).
const REPORT_POLL_INTERVAL: Duration = Duration::from_millis(20);

#[test]
fn batch_isolation_is_recorded_and_a_change_regrades() {
    if !crate::support::netns_available("batch_isolation_is_recorded_and_a_change_regrades") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    copy_fixture(1, "hardcoded_port.py", &class.join("hal.py"));
    let out = work.path().join("out");
    let batch = |extra: &[&str]| {
        let o = batch_task1(
            &class,
            &out,
            tmp.path(),
            &[&["--seed", "3"], extra].concat(),
        );
        assert_no_leftovers(tmp.path());
        let regraded = !String::from_utf8_lossy(&o.stdout).contains("up to date, not regraded");
        let r = record::read(&out.join("hal").join("task1.toml"))
            .unwrap()
            .report;
        (regraded, r)
    };
    // The hard-coded port is followed (with a note) by default: only the port scenario fails.
    let (regraded, r) = batch(&["--isolation", "netns"]);
    assert!(regraded);
    assert_eq!(
        (r.isolation.as_str(), r.accept_any_port),
        ("netns", Some(true))
    );
    assert_eq!(r.score, r.max_score - 1.0);
    assert!(
        !batch(&["--isolation", "netns"]).0,
        "same isolation: up to date"
    );
    // Refusing other ports is another grading: regraded, and the server scenarios fail.
    let (regraded, strict) = batch(&["--isolation", "netns", "--accept-any-port", "false"]);
    assert!(regraded);
    assert_eq!(strict.accept_any_port, Some(false));
    assert!(strict.score < r.score);
    // So is the host's loopback, where the hard-coded port costs the same.
    let _fixed = crate::support::host_fixed_ports();
    let (regraded, host) = batch(&["--isolation", "host"]);
    assert!(regraded);
    assert_eq!(
        (host.isolation.as_str(), host.accept_any_port),
        ("host", Some(true))
    );
    let statuses = |r: &grader::verdict::GradeReport| {
        r.scenarios
            .iter()
            .map(|s| format!("{}: {:?} {}", s.name, s.status, s.message))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        host.score,
        r.score,
        "host: {:#?}\nnetns: {:#?}",
        statuses(&host),
        statuses(&r)
    );
}
