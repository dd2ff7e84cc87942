//! Grading a real class: clients that ask questions on stdin first (`stdin_prelude`), clients
//! that need a terminal on stdin (`client_stdin = "terminal"`), a submission that hands in only
//! a server (`roles`), templates without `{port}`, build commands with patterns (`*.c`), and
//! `classchat.toml` errors that name the file, line and key.

use std::path::Path;

use grader::report::record;
use grader::verdict::Status::*;

use crate::batch::{scores, text};
use crate::support::{assert_failures, copy_fixture, fixture, grade, root, run_grader};

const TASK2: [&str; 7] = [
    "a pushed line appears while the user types nothing",
    "typed lines are sent without waiting for replies",
    "an idle client uses no CPU",
    "the client notices when the server closes",
    "20 pushed and 20 typed lines interleave",
    "client exits cleanly on exit",
    "client connects to the port it is given",
];

const TASK1_CLIENT: [&str; 5] = [
    "client prints the acknowledgment",
    "client relays lines and prints replies",
    "client exits cleanly on exit",
    "client reports a refused connection",
    "client connects to the port it is given",
];

const PROMPTS: &str = "asks_host_and_name_on_stdin.py";
const TERMINAL: &str = "needs_a_terminal_on_stdin.py";

/// A copy of a fixture folder (`fixtures/task<N>/<name>/`) at `dest`.
fn copy_folder(task: u32, name: &str, dest: &Path) {
    let src = root().join(format!("fixtures/task{task}/{name}"));
    std::fs::create_dir_all(dest).unwrap();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        std::fs::copy(e.path(), dest.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_client_that_asks_for_host_and_name_gets_full_marks_with_a_prelude() {
    let g = grade(
        2,
        &fixture(2, PROMPTS),
        &["--stdin-prelude", "{host}", "--stdin-prelude", "{name}"],
    );
    assert_failures(&g, &[]);
    assert_eq!(g.report().score, 20.0);
    assert_eq!(g.code(), 0, "{}", g.stderr());
    // Recorded, so that a replay types the same lines.
    let path = g.out_dir.path().join(format!("{PROMPTS}/task2.toml"));
    let rec = record::read(&path).unwrap();
    assert_eq!(rec.provenance.stdin_prelude, ["{host}", "{name}"]);
    let tmp = tempfile::tempdir().unwrap();
    let again = tempfile::tempdir().unwrap();
    let replay = run_grader(
        [
            "replay".as_ref(),
            path.as_os_str(),
            "--out".as_ref(),
            again.path().as_os_str(),
        ],
        tmp.path(),
    );
    assert_eq!(replay.status.code(), Some(0), "{}", text(&replay));
    assert!(
        text(&replay).contains("The replay reproduced the recorded score."),
        "{}",
        text(&replay)
    );
}

#[test]
fn a_client_that_asks_without_a_prelude_times_out_with_a_hint() {
    let g = grade(2, &fixture(2, PROMPTS), &[]);
    let all: Vec<(&str, grader::verdict::Status)> = TASK2.iter().map(|n| (*n, TimedOut)).collect();
    assert_failures(&g, &all);
    assert_eq!(g.report().score, 0.0);
    for s in &g.report().scenarios {
        let hint = s.hint.as_deref().unwrap_or_default();
        assert!(
            hint.starts_with(
                "the client printed \"Server host:\" and is waiting for a line on stdin"
            ) && hint.contains("stdin_prelude = [\"{host}\", \"{name}\"]"),
            "{}: {hint}",
            s.name
        );
    }
}

#[test]
fn a_client_that_needs_a_terminal_runs_with_client_stdin_terminal() {
    let g = grade(2, &fixture(2, TERMINAL), &["--client-stdin", "terminal"]);
    assert_failures(&g, &[]);
    assert_eq!(g.report().score, 20.0);
    let path = g.out_dir.path().join(format!("{TERMINAL}/task2.toml"));
    assert_eq!(
        record::read(&path).unwrap().provenance.client_stdin,
        Some(grader::launch::ClientStdin::Terminal)
    );
    // On a pipe it refuses to start.
    let g = grade(2, &fixture(2, TERMINAL), &[]);
    let all: Vec<(&str, grader::verdict::Status)> = TASK2.iter().map(|n| (*n, Crashed)).collect();
    assert_failures(&g, &all);
    for s in &g.report().scenarios {
        assert!(
            s.stderr_tail
                .as_deref()
                .is_some_and(|e| e.contains("no console"))
                && s.hint
                    .as_deref()
                    .is_some_and(|h| h.contains("client_stdin = \"terminal\"")),
            "{s:?}"
        );
    }
}

#[test]
fn a_server_only_submission_loses_the_client_points_or_is_graded_as_a_server() {
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("server_only");
    copy_folder(1, "server_only", &folder);
    // Handed in without a client: the client scenarios fail, saying so; no usage error.
    let g = grade(1, &folder, &[]);
    let client_failed: Vec<(&str, grader::verdict::Status)> =
        TASK1_CLIENT.iter().map(|n| (*n, Failed)).collect();
    assert_failures(&g, &client_failed);
    assert_eq!((g.report().score, g.report().max_score), (20.0, 30.0));
    assert_eq!(g.code(), 1);
    for s in g.report().scenarios.iter().filter(|s| s.status == Failed) {
        assert_eq!(
            s.message,
            "no client to start: the submission is a folder and no `client` template (in its classchat.toml, or --client) says how to start its client"
        );
        assert!(
            s.hint
                .as_deref()
                .unwrap_or_default()
                .contains("roles = [\"server\"]")
        );
    }
    assert!(!g.stdout().contains("is a directory") && !g.stderr().contains("is a directory"));
    // Graded as a server: the client scenarios are not run nor counted, and the report says so.
    let g = grade(1, &folder, &["--role", "server"]);
    assert_failures(&g, &[]);
    let r = g.report();
    assert_eq!((r.score, r.max_score, r.scenarios.len()), (20.0, 20.0, 11));
    assert_eq!(
        r.notes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "graded for the server role only (roles = [\"server\"]): the 5 client scenario(s) (10 points) were not graded and are not part of the maximum"
        ]
    );
    assert_eq!(g.code(), 0);
    // Recorded, so that a replay grades the server alone again.
    let path = g.out_dir.path().join("server_only/task1.toml");
    assert_eq!(
        record::read(&path).unwrap().provenance.roles,
        Some(vec![grader::spec::Role::Server])
    );
    let tmp = tempfile::tempdir().unwrap();
    let again = tempfile::tempdir().unwrap();
    let replay = run_grader(
        [
            "replay".as_ref(),
            path.as_os_str(),
            "--out".as_ref(),
            again.path().as_os_str(),
        ],
        tmp.path(),
    );
    assert_eq!(replay.status.code(), Some(0), "{}", text(&replay));
    assert!(text(&replay).contains("The replay reproduced the recorded score."));
    // A role the task does not have leaves nothing to grade.
    let g = grade(3, &folder, &["--role", "client"]);
    assert_eq!(g.code(), 2);
    assert!(
        g.stderr()
            .contains("task 3 has no scenario for the role(s) client"),
        "{}",
        g.stderr()
    );
}

#[test]
fn a_batch_applies_prelude_and_terminal_per_submission_and_by_default() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    // ann: a prompting client; the batch's --stdin-prelude answers it.
    copy_fixture(2, PROMPTS, &class.join("ann.py"));
    // bo: a terminal client whose classchat.toml asks for a terminal.
    copy_fixture(2, TERMINAL, &class.join("bo/client.py"));
    std::fs::write(
        class.join("bo/classchat.toml"),
        "client = \"python3 {dir}/client.py client --host {host} --port {port}\"\nclient_stdin = \"terminal\"\n",
    )
    .unwrap();
    // cy: the prompting client, but its own classchat.toml answers with a wrong number of
    // lines (one): its prelude wins over the batch's, and it is stuck at the second question.
    copy_fixture(2, PROMPTS, &class.join("cy/client.py"));
    std::fs::write(
        class.join("cy/classchat.toml"),
        "client = \"python3 {dir}/client.py client --port {port}\"\nstdin_prelude = [\"{host}\"]\n",
    )
    .unwrap();
    let out = work.path().join("out");
    let o = run_grader(
        [
            "batch",
            "--task",
            "2",
            "--out",
            &out.display().to_string(),
            &class.display().to_string(),
            "--seed",
            "1",
            "-j",
            "2",
            "--no-progress",
            "--stdin-prelude",
            "{host}",
            "--stdin-prelude",
            "{name}",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = scores(&out);
    assert_eq!(s["ann"].0, 20.0, "{}", text(&o));
    assert_eq!(s["bo"].0, 20.0, "{}", text(&o));
    assert_eq!(s["cy"].0, 0.0, "{}", text(&o));
    let cy = record::read(&out.join("cy/task2.toml")).unwrap();
    assert_eq!(cy.provenance.stdin_prelude, ["{host}"]);
    assert!(
        cy.report.scenarios[0].hint.as_deref().is_some_and(
            |h| h.contains("Your name:\"") && h.contains("the 1 line(s) of its stdin_prelude")
        ),
        "{:?}",
        cy.report.scenarios[0].hint
    );
}

#[test]
fn a_batch_grades_roles_by_default_or_per_folder_and_regrades_when_they_change() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    // srv: no roles of its own; sam: its classchat.toml says roles = ["server"].
    copy_folder(1, "server_only", &class.join("srv"));
    copy_folder(1, "server_only", &class.join("sam"));
    let toml = class.join("sam/classchat.toml");
    let written = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{written}roles = [\"server\"]\n")).unwrap();
    let out = work.path().join("out");
    let batch = |extra: &[&str]| {
        let mut args = vec!["--seed", "1", "-j", "2", "--no-progress"];
        args.extend_from_slice(extra);
        crate::batch::batch_task1(&class, &out, tmp.path(), &args)
    };
    let max = |id: &str| {
        record::read(&out.join(id).join("task1.toml"))
            .unwrap()
            .report
            .max_score
    };
    let first = batch(&[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let s = scores(&out);
    assert_eq!((s["srv"].0, max("srv")), (20.0, 30.0), "{}", text(&first));
    assert_eq!((s["sam"].0, max("sam")), (20.0, 20.0), "{}", text(&first));
    // --role server applies to srv (no roles of its own): regraded; sam is up to date.
    let second = batch(&["--role", "server"]);
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("1 graded, 1 up to date"),
        "{}",
        text(&second)
    );
    assert_eq!(max("srv"), 20.0);
}

#[test]
fn a_c_submission_built_with_a_pattern_scores_full_marks() {
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("c_built_with_glob");
    copy_folder(1, "c_built_with_glob", &folder);
    let g = grade(1, &folder, &[]);
    assert_failures(&g, &[]);
    assert_eq!(g.report().score, 30.0);
    // A pattern that matches nothing fails the build, naming the pattern.
    let g = grade(1, &folder, &["--build", "cc -O1 -o submission *.cpp"]);
    assert_eq!(g.code(), 2);
    assert!(
        g.stderr()
            .contains("the pattern \"*.cpp\" matches no file in the submission folder"),
        "{}",
        g.stderr()
    );
    // One that could look outside the folder is refused before anything runs.
    let g = grade(1, &folder, &["--build", "cc -o submission ../*.c"]);
    assert_eq!(g.code(), 2);
    assert!(
        g.stderr().contains("leaves the submission folder"),
        "{}",
        g.stderr()
    );
}

#[test]
fn a_template_without_port_is_accepted_with_one_note() {
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("server_only");
    copy_folder(1, "server_only", &folder);
    // The program hard-codes its port (here: told by a literal in the template).
    let g = grade(
        1,
        &folder,
        &[
            "--role",
            "server",
            "--server",
            "python3 {dir}/server.py server --port 12399",
        ],
    );
    assert_ne!(g.code(), 2, "{}", g.stderr());
    let notes: Vec<String> = g
        .report()
        .notes
        .iter()
        .map(ToString::to_string)
        .filter(|n| n.contains("has no {port}"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", g.report().notes);
    assert!(notes[0].starts_with(
        "the server template \"python3 {dir}/server.py server --port 12399\" has no {port}"
    ));
}

/// `grader run` on a folder whose classchat.toml is `text`: (exit code, stderr, file path).
fn run_with_launch_file(text: &str) -> (i32, String, String) {
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("sub");
    copy_fixture(1, "correct_other_style.py", &folder.join("chat.py"));
    std::fs::write(folder.join("classchat.toml"), text).unwrap();
    let g = grade(1, &folder, &[]);
    let file = std::fs::canonicalize(&folder)
        .unwrap()
        .join("classchat.toml")
        .display()
        .to_string();
    let given = folder.join("classchat.toml").display().to_string();
    let err = g.stderr().replace(&given, &file);
    (g.code(), err, file)
}

#[test]
fn classchat_toml_errors_name_the_file_line_and_key() {
    // A TOML syntax error (an unclosed string on line 2).
    let (code, err, file) = run_with_launch_file(
        "server = \"python3 {dir}/chat.py server --port {port}\"\nclient = \"python3 {dir}/chat.py client\n",
    );
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{file}:2:")), "{err}");
    // A placeholder typo: an error of that file, line and key, not of a --server template.
    let (code, err, file) = run_with_launch_file(
        "client = \"python3 {dir}/chat.py client --host {host} --port {port}\"\nserver = \"python3 {dir}/chat.py server --port {prot}\"\n",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{file}:2:10: key `server`: template \"python3 {{dir}}/chat.py server --port {{prot}}\" uses unknown placeholder {{prot}}")),
        "{err}"
    );
    assert!(!err.contains("--server template"), "{err}");
    // An unknown key.
    let (code, err, file) = run_with_launch_file("sever = \"x {port}\"\n");
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{file}:1:1: unknown field `sever`")),
        "{err}"
    );
}
