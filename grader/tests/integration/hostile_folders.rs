//! Submission folders that attack the grader through the file system rather than through their
//! program: names that carry terminal escapes or spreadsheet formulas, a FIFO (which hung the
//! content hash), a symbolic link leaving the folder, a sparse file far past the size limit.
//! Each is graded by the real `grader batch` (and `grader run`) under a deadline, so a hang
//! fails the test instead of stalling it.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use grader::submission_tree::MAX_SUBMISSION_BYTES;

use crate::batch::{scores, text};
use crate::support::{assert_no_leftovers, copy_fixture, grader_bin};

/// A submission that passes everything.
const CORRECT: &str = "correct_other_style.py";
/// How long a grader run may take before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs the grader with `args` (TMPDIR at `tmp`, no colours) and its output, failing if it has
/// not ended within [`DEADLINE`] (it is killed then).
fn grader_within(args: &[&std::ffi::OsStr], tmp: &Path) -> Output {
    let child = Command::new(grader_bin())
        .args(args)
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(output) => {
            waiter.join().unwrap();
            output.unwrap()
        }
        Err(_) => {
            // Our own child, by its pid; its output is then collected by the waiter.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let output = rx.recv().unwrap().unwrap();
            panic!(
                "grader {args:?} hung for {DEADLINE:?} and was killed\n{}",
                text(&output)
            );
        }
    }
}

fn batch(class: &Path, out: &Path, tmp: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "batch".as_ref(),
        "--task".as_ref(),
        "1".as_ref(),
        "--seed".as_ref(),
        "1".as_ref(),
        "--no-progress".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        class.as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let o = grader_within(&args, tmp);
    assert_no_leftovers(tmp);
    o
}

fn export(reports: &Path, tmp: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["export".as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    args.extend([reports.as_os_str(), "--out".as_ref(), "-".as_ref()]);
    grader_within(&args, tmp)
}

/// A spreadsheet formula as a student id (no `/`: it is a folder name).
const FORMULA: &str = "=HYPERLINK(\"http:evil.example\",\"fix your grade\")";
/// Terminal escapes as a student id: set the window title, clear the screen.
const ESCAPES: &str = "eve\x1b]0;pwned\x07\x1b[2J";
/// A student id that would start a forged line of its own.
const NEW_LINE: &str = "mallory\r\nFAKE  30 of 30  all scenarios passed";

#[test]
fn hostile_folder_names_are_escaped_on_the_console_and_neutralised_in_spreadsheets() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    copy_fixture(1, CORRECT, &class.join(FORMULA).join("main.py"));
    copy_fixture(1, CORRECT, &class.join(ESCAPES).join("main.py"));
    // Nothing to start: NOT STARTED, with a message that quotes the folder's path.
    std::fs::create_dir_all(class.join(NEW_LINE)).unwrap();
    let out = work.path().join("out");
    let o = batch(&class, &out, tmp.path(), &["-j", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s = scores(&out);
    assert_eq!(s.len(), 2, "{}", text(&o));
    assert!(s.values().all(|(score, _)| *score == 30.0), "{}", text(&o));

    let console = |o: &Output| [o.stdout.as_slice(), o.stderr.as_slice()].concat();
    let shown = String::from_utf8_lossy(&console(&o)).into_owned();
    assert!(
        !console(&o).iter().any(|b| *b == 0x1b || *b == b'\r'),
        "a raw escape or carriage return reached the console:\n{shown:?}"
    );
    assert!(shown.contains("eve\\x1b]0;pwned\\x07\\x1b[2J"), "{shown}");
    assert!(
        shown.contains("mallory\\r\\nFAKE  30 of 30  all scenarios passed"),
        "{shown}"
    );
    assert!(
        !shown.lines().any(|l| l.starts_with("FAKE")),
        "an id started a line of its own:\n{shown}"
    );
    // The message quoting the path shows the id escaped too.
    assert!(
        shown.contains(&format!(
            "no executable in {}",
            class
                .join("mallory\\r\\nFAKE  30 of 30  all scenarios passed")
                .display()
        )),
        "{shown}"
    );

    // CSV: the formula is text, the numbers stay numbers.
    let csv = export(&out, tmp.path(), &["--format", "csv"]);
    assert_eq!(csv.status.code(), Some(0), "{}", text(&csv));
    assert!(
        !console(&csv)[csv.stdout.len()..].contains(&0x1b),
        "{}",
        text(&csv)
    );
    let mut rdr = csv::Reader::from_reader(csv.stdout.as_slice());
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let formula = rows
        .iter()
        .find(|r| r[0].contains("HYPERLINK"))
        .unwrap_or_else(|| panic!("{}", text(&csv)));
    assert_eq!(&formula[0], format!("'{FORMULA}"));
    assert_eq!(
        (&formula[1], &formula[2], &formula[3]),
        ("30", "30", "100.0")
    );
    assert!(formula.iter().skip(1).all(|c| !c.starts_with('\'')));

    // Canvas: the roster's own text cells too (a display name is the student's choice).
    let roster = work.path().join("roster.csv");
    let mut w = csv::Writer::from_path(&roster).unwrap();
    w.write_record(["Student", "ID", "SIS User ID", "SIS Login ID", "Section"])
        .unwrap();
    w.write_record(["    Points Possible", "", "", "", ""])
        .unwrap();
    w.write_record(["@SUM(1+1)", "7", "S7", FORMULA, "-A"])
        .unwrap();
    w.flush().unwrap();
    drop(w);
    let canvas = export(
        &out,
        tmp.path(),
        &["--format", "canvas", "--roster", roster.to_str().unwrap()],
    );
    assert_eq!(canvas.status.code(), Some(0), "{}", text(&canvas));
    let mut rdr = csv::Reader::from_reader(canvas.stdout.as_slice());
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let row: Vec<&str> = rows[1].iter().collect();
    assert_eq!(
        row,
        [
            "'@SUM(1+1)",
            "7",
            "S7",
            format!("'{FORMULA}").as_str(),
            "'-A",
            "30"
        ],
        "{}",
        text(&canvas)
    );
}

#[test]
fn fifos_links_leaving_the_folder_and_oversized_files_are_not_started_and_never_hang() {
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let class = work.path().join("class");
    // alice: fine, with a link that stays inside her folder (kept, graded).
    copy_fixture(1, CORRECT, &class.join("alice/main.py"));
    std::fs::write(class.join("alice/README"), "notes").unwrap();
    symlink("README", class.join("alice/README.link")).unwrap();
    // fifo: a named pipe beside a working program (hashing opened it and waited forever).
    copy_fixture(1, CORRECT, &class.join("fifo/main.py"));
    nix::unistd::mkfifo(
        &class.join("fifo/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    // linker: a link to a file outside its folder.
    copy_fixture(1, CORRECT, &class.join("linker/main.py"));
    symlink("/etc/passwd", class.join("linker/secret")).unwrap();
    // giant: a sparse file just past the size limit (no disk used; built, it was copied whole).
    copy_fixture(1, CORRECT, &class.join("giant/main.py"));
    let sparse = std::fs::File::create(class.join("giant/data.bin")).unwrap();
    sparse.set_len(MAX_SUBMISSION_BYTES + 1).unwrap();
    std::fs::write(
        class.join("giant/classchat.toml"),
        "build = \"true\"\nserver = \"python3 {dir}/main.py server --port {port}\"\nclient = \"python3 {dir}/main.py client --host {host} --port {port}\"\n",
    )
    .unwrap();

    let out = work.path().join("out");
    let o = batch(&class, &out, tmp.path(), &["-j", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(scores(&out)["alice"].0, 30.0, "{}", text(&o));
    let error = |id: &str| {
        std::fs::read_to_string(out.join(id).join("task1.error.txt"))
            .unwrap_or_else(|e| panic!("{id}: {e}\n{}", text(&o)))
    };
    let expected = [
        (
            "fifo",
            format!(
                "submission contains a FIFO (named pipe), which is not a regular file: {}",
                class.join("fifo/pipe").display()
            ),
        ),
        (
            "linker",
            format!(
                "submission contains a symbolic link leaving its folder: {} -> /etc/passwd",
                class.join("linker/secret").display()
            ),
        ),
        (
            "giant",
            format!(
                "submission {} holds more than 200 MiB of files",
                class.join("giant").display()
            ),
        ),
    ];
    let stdout = String::from_utf8_lossy(&o.stdout);
    for (id, why) in &expected {
        assert!(!out.join(id).join("task1.toml").exists(), "{id} was graded");
        let e = error(id);
        assert!(
            e.starts_with("not started at ") && e.contains(why),
            "{id}: {e}"
        );
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(id) && l.contains("NOT STARTED") && l.contains(why)),
            "{id}: {stdout}"
        );
    }

    // grader run: exit 2 with the same message, without hanging.
    for (id, why) in &expected[..2] {
        let folder = class.join(id);
        let o = grader_within(
            &[
                "run".as_ref(),
                "--task".as_ref(),
                "1".as_ref(),
                folder.as_os_str(),
                "--out".as_ref(),
                work.path().join("run-out").as_os_str(),
            ],
            tmp.path(),
        );
        assert_no_leftovers(tmp.path());
        assert_eq!(o.status.code(), Some(2), "{id}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).starts_with(&format!("error: {why}")),
            "{id}: {}",
            text(&o)
        );
    }
}
