//! Reports: they parse back, JUnit is well-formed XML with the documented shape, snapshots of the
//! terminal output and the TOML record (times, ports, paths and hashes filtered), and `--min-score`
//! decides the exit code.

use std::process::Command;

use grader::report::console::{ConsoleStyle, render};
use quick_xml::events::Event;

use crate::support::{fixture, grade, reference_bin, root};

/// Parses XML strictly and checks the JUnit shape; also runs `xmllint` when it is installed.
pub fn assert_valid_xml(xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    let (mut suites, mut cases) = (0, 0);
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.name().as_ref() {
                b"testsuite" => suites += 1,
                b"testcase" => cases += 1,
                _ => {}
            },
            Ok(Event::Text(t)) => {
                t.decode().expect("text decodes");
            }
            Ok(_) => {}
            Err(e) => panic!("invalid XML at {}: {e}\n{xml}", reader.error_position()),
        }
    }
    assert_eq!(suites, 1, "one testsuite per task");
    assert!(cases > 0);
    assert!(!xml.contains('\0'), "NUL byte in XML");
    match Command::new("xmllint").arg("--version").output() {
        Ok(_) => {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("r.xml");
            std::fs::write(&p, xml).unwrap();
            let out = Command::new("xmllint")
                .arg("--noout")
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "xmllint: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => grader::test_skips::skipped(
            "",
            "the xmllint check: xmllint is not installed (apt-get install libxml2-utils)",
        ),
    }
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\b\d+\.\d+s\b", "[TIME]"),
        (r"duration_ms = \d+", "duration_ms = [MS]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"--port \d+", "--port [PORT]"),
        (r"port \d{5}\b", "port [PORT]"),
        (r#"timestamp = "[^"]+""#, r#"timestamp = "[TIMESTAMP]""#),
        (r#"spec_hash = "[0-9a-f]+""#, r#"spec_hash = "[HASH]""#),
        (
            r#"submission_hash = "sha256:[0-9a-f]+""#,
            r#"submission_hash = "[HASH]""#,
        ),
        (
            r#"grader_version = "[^"]+""#,
            r#"grader_version = "[VERSION]""#,
        ),
        (r"grader \d+\.\d+\.\d+", "grader [VERSION]"),
        // Submissions run from a private copy in TMPDIR.
        (r"/[^\s\x22']*grader-cwd-[^/\s\x22']+/", "[COPY]/"),
        // netns where the machine allows it, host elsewhere.
        (
            r#"isolation = "(host|netns)""#,
            r#"isolation = "[ISOLATION]""#,
        ),
    ]
}

fn root_filter(text: &str) -> String {
    text.replace(&root().display().to_string(), "[ROOT]")
}

/// Graded on the host's loopback whoever runs the tests: the report says what isolation it had
/// (a namespace needs root), and the snapshot must be the same as root and as an ordinary user.
#[test]
fn no_ack_reports_snapshot() {
    let g = grade(1, &fixture(1, "no_ack.py"), &["--isolation", "host"]);
    let report = g.report();
    let human =
        anstream::adapter::strip_str(&render(report, ConsoleStyle::Human, false)).to_string();
    let toml = std::fs::read_to_string(g.out_dir.path().join("no_ack.py/task1.toml")).unwrap();
    let toml = toml.replace(&g.out_dir.path().display().to_string(), "[OUT]");
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("no_ack_human", root_filter(&human));
        insta::assert_snapshot!("no_ack_toml", root_filter(&toml));
    });
    let compact =
        anstream::adapter::strip_str(&render(report, ConsoleStyle::Compact, false)).to_string();
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("no_ack_compact", root_filter(&compact));
    });
    // What the binary itself printed (header, table, report paths, replay command) and the
    // JUnit file, with times, ports, hashes and paths filtered.
    let out = g.out_dir.path().display().to_string();
    let stdout = g.stdout().replace(&out, "[OUT]");
    let xml = std::fs::read_to_string(g.out_dir.path().join("no_ack.py/task1.junit.xml")).unwrap();
    let mut junit_filters = filters();
    junit_filters.extend([
        (r#"time="[0-9.]+""#, r#"time="[TIME]""#),
        (r#"timestamp="[^"]+""#, r#"timestamp="[TIMESTAMP]""#),
        (
            r#"name="spec_hash" value="[0-9a-f]+""#,
            r#"name="spec_hash" value="[HASH]""#,
        ),
        (
            r#"name="grader_version" value="[^"]+""#,
            r#"name="grader_version" value="[VERSION]""#,
        ),
        (
            r#"name="isolation" value="(host|netns)""#,
            r#"name="isolation" value="[ISOLATION]""#,
        ),
    ]);
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("no_ack_stdout", root_filter(&stdout));
    });
    insta::with_settings!({ filters => junit_filters }, {
        insta::assert_snapshot!("no_ack_junit", root_filter(&xml));
    });
}

#[test]
fn junit_has_points_properties_and_transcripts() {
    let g = grade(1, &fixture(1, "no_ack.py"), &[]);
    let xml = std::fs::read_to_string(g.out_dir.path().join("no_ack.py/task1.junit.xml")).unwrap();
    assert_valid_xml(&xml);
    for needle in [
        r#"classname="task1""#,
        r#"message="[0/3 pts] expected any data on connection a"#,
        r#"<property name="score" value="27"/>"#,
        r#"<property name="max_score" value="30"/>"#,
        r#"<property name="seed" value="1"/>"#,
        r#"<property name="spec_hash""#,
        r#"<property name="grader_version""#,
        "transcript:",
    ] {
        assert!(xml.contains(needle), "JUnit lacks {needle}:\n{xml}");
    }
}

#[test]
fn reports_parse_back_with_the_documented_fields() {
    let g = grade(1, &reference_bin("classchat-task1"), &[]);
    let r = g.report();
    assert_eq!(r.schema_version, grader::verdict::SCHEMA_VERSION);
    assert_eq!(r.task, 1);
    assert_eq!(r.seed, 1);
    assert_eq!(r.spec_hash.len(), 64);
    assert_eq!(r.scenarios.len(), 16);
    assert!(r.scenarios.iter().all(|s| s.points == s.max_points));
    let xml =
        std::fs::read_to_string(g.out_dir.path().join("classchat-task1/task1.junit.xml")).unwrap();
    assert_valid_xml(&xml);
    // No temporary files are left next to the reports (they are written via rename).
    let names: Vec<String> = std::fs::read_dir(g.out_dir.path().join("classchat-task1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn min_score_gates_the_exit_code() {
    let sub = fixture(1, "no_ack.py");
    assert_eq!(grade(1, &sub, &["--min-score", "27"]).code(), 0);
    assert_eq!(grade(1, &sub, &["--min-score", "90%"]).code(), 0);
    let below = grade(1, &sub, &["--min-score", "28"]);
    assert_eq!(below.code(), 1);
    assert!(
        below.stdout().contains("Below the required score"),
        "{}",
        below.stdout()
    );
}

#[test]
fn seed_replays_the_same_payloads() {
    // What the grader sent (the `→` lines of the failed scenario's transcript, times cut off)
    // holds the seed's nonces: the same seed sends the same bytes, another seed other ones.
    let sent = |extra: &[&str]| {
        let g = grade(1, &fixture(1, "crashes_on_empty_line.py"), extra);
        let lines: Vec<String> = g
            .report()
            .scenarios
            .iter()
            .flat_map(|s| s.transcript.iter())
            .filter(|l| l.contains('→'))
            .map(|l| {
                l.split_once('s')
                    .map_or(l.as_str(), |(_, rest)| rest)
                    .to_string()
            })
            .collect();
        assert!(!lines.is_empty(), "a failed scenario has a transcript");
        (lines, g.report().seed)
    };
    let (a, seed_a) = sent(&[]);
    let (b, _) = sent(&[]);
    let (c, seed_c) = sent(&["--seed", "2"]);
    assert_eq!((seed_a, seed_c), (1, 2));
    assert_eq!(a, b, "the same seed sends the same payloads");
    assert_ne!(a, c, "another seed sends other payloads");
}

/// "The replay scored 30 where the record has 29" named no scenario: the replay names each
/// scenario whose verdict changed, with both messages, and says what such a change points at.
/// The record is of `no_ack.py`; the replay grades the same path after it was replaced by a
/// correct server, so the one failed scenario passes.
#[test]
fn replay_names_each_scenario_whose_verdict_changed() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("student.py");
    crate::support::copy_fixture(1, "no_ack.py", &sub);
    let g = grade(1, &sub, &[]);
    // no_ack.py fails exactly the acknowledgment scenario (fixtures/README.md).
    let failures = g.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let name = failures.keys().next().unwrap();
    let failed = g
        .report()
        .scenarios
        .iter()
        .find(|s| &s.name == name)
        .unwrap();
    crate::support::copy_fixture(1, "correct_other_style.py", &sub);
    let replays = dir.path().join("replays");
    let o = Command::new(crate::support::grader_bin())
        .arg("replay")
        .arg(g.out_dir.path().join("student.py/task1.toml"))
        .arg("--out")
        .arg(&replays)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("changed since this grading"), "{stderr}");
    let from = stdout
        .find("The replay scored 30 where the record has")
        .unwrap_or_else(|| panic!("{stdout}"));
    let tail = &stdout[from..];
    let first_line = failed.message.lines().next().unwrap();
    assert!(
        tail.contains(&format!("Verdicts that changed (1):\n  {name}\n")),
        "{tail}"
    );
    assert!(
        tail.contains(&format!(
            "    recorded: {}: {first_line}",
            failed.status.label()
        )),
        "{tail}"
    );
    assert!(tail.contains("    replay:   passed\n"), "{tail}");
    assert!(tail.contains("points at a race in the program"), "{tail}");
}

/// `grader tasks` listed names and points only: it shows each task's and scenario's description.
#[test]
fn tasks_lists_what_each_scenario_checks() {
    let o = Command::new(crate::support::grader_bin())
        .arg("tasks")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for task in 1..=4 {
        let (spec, _) = grader::spec::load(None, task).unwrap();
        // This task's lines: from its heading to the next task's.
        let from = stdout
            .find(&format!("task {task} · "))
            .unwrap_or_else(|| panic!("no task {task}: {stdout}"));
        let section = &stdout[from..];
        let section = &section[..section[1..]
            .find("\ntask ")
            .map_or(section.len(), |e| e + 1)];
        let lines: Vec<&str> = section.lines().collect();
        let d = spec
            .description
            .as_deref()
            .expect("bundled tasks say what they are");
        assert_eq!(lines[1].trim(), d.trim(), "task {task}");
        for s in &spec.scenarios {
            let Some(d) = s.description.as_deref() else {
                continue;
            };
            let at = lines
                .iter()
                .position(|l| {
                    l.ends_with(&format!(" pts  {}", s.name))
                        || l.contains(&format!(" pts  {} (", s.name))
                })
                .unwrap_or_else(|| panic!("task {task}: no line for {:?}: {section}", s.name));
            assert_eq!(lines[at + 1].trim(), d.trim(), "task {task}: {}", s.name);
        }
    }
}

/// `run --help` said a folder needs --server/--client; a folder is started by its classchat.toml
/// or the launch contract too (`grader/src/launch.rs`, `batch::discover::folder_plan`).
#[test]
fn run_help_says_how_a_folder_is_started() {
    let o = Command::new(crate::support::grader_bin())
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("or a folder, started as `grader batch` starts one: its classchat.toml (which the options below override), else the launch contract on its executable named `submission` or its only one"),
        "{help}"
    );
    assert!(
        help.contains("A fraction below 1 (\"0.8\") is refused"),
        "{help}"
    );
}
