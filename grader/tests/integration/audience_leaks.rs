//! Nothing students may not see reaches them, for every policy: a task with one scenario each of
//! visibility `hidden`, `after_due`, and visible with feedback `summary` and `none`, each carrying
//! its own secret word, graded on a submission that fails them all; the secrets are grepped for in
//! every student-facing output (console in both formats with -v, the JUnit file, every export
//! format with the student audience, the Gradescope export with the instructor audience for the
//! feedback levels) and found in the instructor's record. Also `examples/gradescope/run_autograder`
//! run on a fake `/autograder` tree.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::export::export;
use crate::support::{assert_no_leftovers, copy_fixture, grader_bin, root, run_grader};

/// `hidden`: its name, description, hint and wire text carry it.
const HIDDEN: &str = "quokka";
/// `after_due` (not released): its name, description, hint and wire text carry it.
const AFTER_DUE: &str = "okapi";
/// Visible with `summary` feedback: only the wire text carries it (description and hint are
/// shown under `summary`).
const SUMMARY: &str = "narwhal";
/// Visible with `none` feedback: description, hint and wire text carry it.
const NONE: &str = "axolotl";
const SECRETS: [&str; 4] = [HIDDEN, AFTER_DUE, SUMMARY, NONE];

const SUMMARY_NAME: &str = "summary feedback scenario";
const SUMMARY_SHOWN: &str = "shown-under-summary";
const NONE_NAME: &str = "no feedback scenario";

fn scenario(name: &str, policy: &str, description: &str, hint: &str, secret: &str) -> String {
    format!(
        r#"
[[scenario]]
name = "{name}"
points = 2
role = "server"
{policy}
description = "{description}"
hint = "{hint}"
steps = [
  {{ do = "start_server" }},
  {{ do = "connect", conn = "a" }},
  {{ do = "send", conn = "a", line = "{secret}-{{nonce}}" }},
  {{ do = "expect", on = "a", contains = "{secret}-{{nonce}}-never", within = "300ms" }},
]
"#
    )
}

/// The bundled task 1 plus the four scenarios, which every submission fails.
fn tasks_with_policies(dir: &Path) {
    let mut spec = std::fs::read_to_string(root().join("tasks/task1.toml")).unwrap();
    spec.push_str(&scenario(
        &format!("{HIDDEN} hidden scenario"),
        r#"visibility = "hidden""#,
        &format!("{HIDDEN} description"),
        &format!("{HIDDEN} hint"),
        HIDDEN,
    ));
    spec.push_str(&scenario(
        &format!("{AFTER_DUE} after-due scenario"),
        r#"visibility = "after_due""#,
        &format!("{AFTER_DUE} description"),
        &format!("{AFTER_DUE} hint"),
        AFTER_DUE,
    ));
    spec.push_str(&scenario(
        SUMMARY_NAME,
        r#"feedback = "summary""#,
        &format!("{SUMMARY_SHOWN} description"),
        &format!("{SUMMARY_SHOWN} hint"),
        SUMMARY,
    ));
    spec.push_str(&scenario(
        NONE_NAME,
        r#"feedback = "none""#,
        &format!("{NONE} description"),
        &format!("{NONE} hint"),
        NONE,
    ));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("task1.toml"), spec).unwrap();
}

#[track_caller]
fn assert_no_secrets(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.to_lowercase().contains(secret),
            "{what} shows {secret:?}:\n{text}"
        );
    }
}

/// `grader run` of the fixture against the tasks, student audience (the default), -v.
fn run(tasks: &Path, sub: &Path, out: &Path, format: &str, tmp: &Path) -> String {
    let run = run_grader(
        [
            "run".as_ref(),
            "--task".as_ref(),
            "1".as_ref(),
            "--seed".as_ref(),
            "7".as_ref(),
            "--tasks-dir".as_ref(),
            tasks.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--format".as_ref(),
            format.as_ref(),
            "-v".as_ref(),
            sub.as_os_str(),
        ],
        tmp,
    );
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(run.status.code(), Some(1), "{console}");
    console
}

#[test]
fn no_policy_leaks_to_students() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tasks = work.path().join("tasks");
    tasks_with_policies(&tasks);
    let sub = work.path().join("carl.py");
    copy_fixture(1, "correct_other_style.py", &sub);
    let out = work.path().join("out");
    let human = run(&tasks, &sub, &out, "human", tmp.path());
    let compact = run(
        &tasks,
        &sub,
        &work.path().join("out-compact"),
        "compact",
        tmp.path(),
    );
    assert_no_leftovers(tmp.path());
    for console in [&human, &compact] {
        for shown in [
            "hidden scenario 1",
            "hidden scenario 2",
            SUMMARY_NAME,
            NONE_NAME,
        ] {
            assert!(console.contains(shown), "{shown:?} missing:\n{console}");
        }
    }

    // The record keeps everything, the policies included.
    let record = std::fs::read_to_string(out.join("carl.py/task1.toml")).unwrap();
    for secret in SECRETS {
        assert!(
            record.contains(&format!("{secret}-")),
            "{secret}:\n{record}"
        );
    }
    assert!(record.contains(&format!("{NONE} description")), "{record}");

    let roster = work.path().join("canvas-export.csv");
    std::fs::write(
        &roster,
        "Student,ID,SIS User ID,SIS Login ID,Section\n    Points Possible,,,,\n\"Roe, Carl\",102,S102,carl.py,Sec 1\n",
    )
    .unwrap();
    let mut student_outputs = vec![
        ("console (human, -v)".to_string(), human),
        ("console (compact, -v)".to_string(), compact),
        (
            "junit".to_string(),
            std::fs::read_to_string(out.join("carl.py/task1.junit.xml")).unwrap(),
        ),
    ];
    for format in ["csv", "summary", "markdown", "gradescope", "classroom"] {
        student_outputs.push((format.to_string(), export(&out, &["--format", format])));
    }
    student_outputs.push((
        "canvas".to_string(),
        export(
            &out,
            &[
                "--format",
                "canvas",
                "--task",
                "1",
                "--roster",
                roster.to_str().unwrap(),
            ],
        ),
    ));
    for (what, text) in &student_outputs {
        assert_no_secrets(what, text, &SECRETS);
    }
    // `summary` still shows the scenario's description and hint.
    let gs: serde_json::Value =
        serde_json::from_str(&export(&out, &["--format", "gradescope"])).unwrap();
    let test = |gs: &serde_json::Value, name: &str| {
        gs["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no test {name:?} in {gs:#}"))
            .clone()
    };
    let brief = test(&gs, SUMMARY_NAME);
    assert!(
        brief["output"]
            .as_str()
            .unwrap()
            .contains(&format!("{SUMMARY_SHOWN} hint")),
        "{brief}"
    );
    assert_eq!(test(&gs, "hidden scenario 1")["visibility"], "visible");

    // Gradescope with the instructor audience (what run_autograder uploads): hidden and
    // after_due tests are handed over whole, with Gradescope's visibility; the feedback levels
    // still apply, since every visible test's output reaches the student.
    let text = export(
        &out,
        &["--format", "gradescope", "--audience", "instructor"],
    );
    assert_no_secrets("gradescope --audience instructor", &text, &[SUMMARY, NONE]);
    let gs: serde_json::Value = serde_json::from_str(&text).unwrap();
    let hidden = test(&gs, &format!("{HIDDEN} hidden scenario"));
    assert_eq!(hidden["visibility"], "hidden");
    assert!(
        hidden["output"].as_str().unwrap().contains(HIDDEN),
        "{hidden}"
    );
    let later = test(&gs, &format!("{AFTER_DUE} after-due scenario"));
    assert_eq!(later["visibility"], "after_due_date");
    assert_eq!(test(&gs, SUMMARY_NAME)["visibility"], "visible");
    let mute = test(&gs, NONE_NAME);
    assert_eq!(
        (mute["visibility"].as_str(), mute["score"].as_f64()),
        (Some("visible"), Some(0.0))
    );
    assert_eq!(mute["status"], "failed");

    // Student-read formats warn when exported for instructors.
    for (format, warning) in [
        (
            "classroom",
            "GitHub Classroom shows this result to the student",
        ),
        (
            "markdown",
            "do not put this table where the student reads it",
        ),
    ] {
        let o = run_grader(
            [
                "export".as_ref(),
                "--format".as_ref(),
                format.as_ref(),
                "--audience".as_ref(),
                "instructor".as_ref(),
                out.as_os_str(),
                "--out".as_ref(),
                "-".as_ref(),
            ],
            tmp.path(),
        );
        assert_eq!(o.status.code(), Some(0));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(warning), "{format}: {stderr}");
    }
}

/// A fake `/autograder` tree: `source/tasks` (the policies task), `submission`, `results`.
fn autograder_root(dir: &Path, submission: Option<&str>) -> PathBuf {
    let root_dir = dir.join("autograder");
    for sub in ["source", "submission", "results"] {
        std::fs::create_dir_all(root_dir.join(sub)).unwrap();
    }
    tasks_with_policies(&root_dir.join("source/tasks"));
    if let Some(name) = submission {
        let dest = root_dir.join("submission/chat.py");
        copy_fixture(1, name, &dest);
        // As from a zip upload: no executable bit.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
    } else {
        std::fs::write(root_dir.join("submission/README.txt"), "no code here\n").unwrap();
    }
    root_dir
}

fn run_autograder(autograder: &Path, tmp: &Path) -> (String, serde_json::Value) {
    let out = Command::new("bash")
        .arg(root().join("examples/gradescope/run_autograder"))
        .current_dir(autograder)
        .env("AUTOGRADER_ROOT", autograder)
        .env("GRADER", grader_bin())
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .output()
        .expect("run bash");
    let stdout = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let results = std::fs::read_to_string(autograder.join("results/results.json"))
        .unwrap_or_else(|e| panic!("no results.json ({e}):\n{stdout}"));
    (stdout, serde_json::from_str(&results).unwrap())
}

#[test]
fn gradescope_run_autograder_on_a_fake_autograder_tree() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let autograder = autograder_root(work.path(), Some("correct_other_style.py"));
    let (stdout, gs) = run_autograder(&autograder, tmp.path());
    assert_no_leftovers(tmp.path());
    // Gradescope's fields; the task folder from the zip was used (16 bundled + 4 scenarios).
    for key in [
        "score",
        "execution_time",
        "output",
        "stdout_visibility",
        "tests",
    ] {
        assert!(gs.get(key).is_some(), "results.json lacks {key}: {gs:#}");
    }
    assert_eq!(gs["stdout_visibility"], "hidden");
    let tests = gs["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 20, "{gs:#}");
    let sum: f64 = tests.iter().map(|t| t["score"].as_f64().unwrap()).sum();
    assert_eq!(gs["score"].as_f64(), Some(sum));
    assert_eq!(sum, 30.0, "the fixture passes every bundled scenario");
    for t in tests {
        for key in [
            "name",
            "score",
            "max_score",
            "status",
            "output",
            "visibility",
        ] {
            assert!(t.get(key).is_some(), "test lacks {key}: {t}");
        }
        let hides = t["name"].as_str().unwrap().contains(HIDDEN)
            || t["name"].as_str().unwrap().contains(AFTER_DUE);
        assert_eq!(t["visibility"] != "visible", hides, "{t}");
    }
    // What the student may read of it: the visible tests and the top-level output.
    let visible: Vec<&serde_json::Value> = tests
        .iter()
        .filter(|t| t["visibility"] == "visible")
        .collect();
    assert_no_secrets(
        "results.json (visible tests)",
        &serde_json::to_string(&visible).unwrap(),
        &SECRETS,
    );
    assert_no_secrets(
        "results.json output",
        gs["output"].as_str().unwrap(),
        &SECRETS,
    );
    // Instructors get the whole record in the autograder's output.
    assert!(stdout.contains(&format!("{NONE} description")), "{stdout}");

    // A submission that cannot be started: the student is told why, without the grader's paths.
    let work = tempfile::tempdir().unwrap();
    let autograder = autograder_root(work.path(), None);
    let (_, gs) = run_autograder(&autograder, tmp.path());
    let output = gs["output"].as_str().unwrap();
    assert!(output.contains("could not be started"), "{gs:#}");
    assert!(
        output.contains("no executable in your submission"),
        "{gs:#}"
    );
    assert!(
        !output.contains(&tmp.path().display().to_string()),
        "{gs:#}"
    );
    assert_eq!(gs["tests"].as_array().map(Vec::len), Some(0));

    // An entry point with a helper module next to it (both without mode bits, as from a zip):
    // only the entry point is made executable, so the launch contract has one program to start.
    let work = tempfile::tempdir().unwrap();
    let autograder = autograder_root(work.path(), Some("correct_other_style.py"));
    let sub = autograder.join("submission");
    std::fs::rename(sub.join("chat.py"), sub.join("classchat.py")).unwrap();
    std::fs::write(sub.join("helpers.py"), "ANSWER = 42\n").unwrap();
    let (stdout, gs) = run_autograder(&autograder, tmp.path());
    assert!(
        gs["tests"].as_array().is_some_and(|t| !t.is_empty()),
        "{stdout}\n{gs:#}"
    );
}
