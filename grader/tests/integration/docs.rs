//! The documentation stays true (issue 13): every `grader` command in a fenced shell block of
//! `README.md`, `docs/*.md`, `tasks/README.md` and `tasks/PROTOCOL.md` parses with the real
//! command line (the subcommand exists, every flag and value is accepted, nothing hidden is
//! documented), a `grader` command quoted in inline code names an existing subcommand and only
//! its options, the `grader tasks` commands that name no file of the reader's run for real, the
//! instructors' end-to-end example runs as written, every relative link between the pages points
//! at an existing file and heading, and README's quick start keeps its two commands, the ones
//! `.ci/run` runs.
//!
//! A command counts as a grader command when its first word (after `NAME=value` assignments) is
//! `grader` or a path ending in `/grader`, or it is `cargo run ... -p grader ... -- ARGS` or
//! `docker run ... classchat-grader ARGS` (the image the docs build). Placeholder paths
//! (`submissions/`, `./student-bin`, `reports/alice/task1.toml`) are fine: parsing never opens
//! them. The helpers below are tested on wrong commands and broken links, so the check can fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};

use crate::support;

/// The binary's command-line grammar, compiled here too (it only describes and parses).
#[path = "../../src/cli/args.rs"]
#[allow(dead_code)]
mod args;
use args::Cli;

/// A grader command found in a page: where, as written, and its arguments after `grader`.
#[derive(Debug)]
struct DocCommand {
    place: String,
    text: String,
    args: Vec<String>,
}

/// The pages checked: README, every `docs/*.md`, `tasks/README.md` and `tasks/PROTOCOL.md`.
fn pages() -> Vec<PathBuf> {
    let root = support::root();
    let mut pages = vec![
        root.join("README.md"),
        root.join("tasks/README.md"),
        root.join("tasks/PROTOCOL.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "docs/ holds no page");
    pages.extend(docs);
    pages
}

/// The logical lines (backslash continuations joined) of the fenced shell blocks of `text`, with
/// the line number each starts at.
fn shell_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<(String, bool)> = None; // (the fence's backticks, a shell block)
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if let Some((ticks, shell)) = &fence {
            if trimmed.starts_with(ticks.as_str()) && trimmed.trim_end() == ticks {
                fence = None;
                continue;
            }
            if !shell {
                continue;
            }
            let (start, mut line) = pending.take().unwrap_or((i + 1, String::new()));
            let body = raw.trim();
            match body.strip_suffix('\\') {
                Some(cont) => {
                    line.push_str(cont);
                    line.push(' ');
                    pending = Some((start, line));
                }
                None => {
                    line.push_str(body);
                    out.push((start, line));
                }
            }
        } else if trimmed.starts_with("```") {
            let ticks: String = trimmed.chars().take_while(|&c| c == '`').collect();
            let lang = trimmed[ticks.len()..].trim();
            let shell = matches!(lang, "sh" | "bash" | "shell" | "console");
            fence = Some((ticks, shell));
        }
    }
    out
}

/// `line` without its comment: from a `#` that starts a word outside quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev_blank) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_blank => return &line[..i],
            _ => {}
        }
        prev_blank = c.is_whitespace();
    }
    line
}

/// The grader invocations of one shell line, each as its arguments after `grader`.
fn grader_invocations(line: &str) -> Result<Vec<Vec<String>>, String> {
    let words = shell_words::split(strip_comment(line)).map_err(|e| format!("{e}"))?;
    let mut out = Vec::new();
    for command in words.split(|w| matches!(w.as_str(), "&&" | "||" | ";" | "|")) {
        // Redirections end the arguments (`--out - >> "$GITHUB_STEP_SUMMARY"`).
        let end = command
            .iter()
            .position(|w| w.starts_with('>') || w.starts_with("2>") || w.starts_with('<'))
            .unwrap_or(command.len());
        let mut command = &command[..end];
        while command
            .first()
            .is_some_and(|w| w.contains('=') && !w.starts_with('-'))
        {
            command = &command[1..];
        }
        let Some(first) = command.first() else {
            continue;
        };
        if first == "grader" || first.ends_with("/grader") {
            out.push(command[1..].to_vec());
        } else if first == "cargo" && command.get(1).is_some_and(|w| w == "run") {
            let names_grader = command.windows(2).any(|w| w[0] == "-p" && w[1] == "grader");
            if let Some(sep) = command.iter().position(|w| w == "--")
                && names_grader
            {
                out.push(command[sep + 1..].to_vec());
            }
        } else if first == "docker"
            && command.get(1).is_some_and(|w| w == "run")
            && let Some(image) = command.iter().position(|w| w == "classchat-grader")
        {
            out.push(command[image + 1..].to_vec());
        }
    }
    Ok(out)
}

/// Every grader command in the fenced shell blocks of `text` (`name` says which page).
fn doc_commands(name: &str, text: &str) -> Result<Vec<DocCommand>, String> {
    let mut out = Vec::new();
    for (line_no, line) in shell_lines(text) {
        let place = format!("{name}:{line_no}");
        for args in grader_invocations(&line).map_err(|e| format!("{place}: {e}: {line}"))? {
            out.push(DocCommand {
                place: place.clone(),
                text: line.clone(),
                args,
            });
        }
    }
    Ok(out)
}

/// Checks `args` (after `grader`) against the real command line: it must parse, and name no
/// hidden subcommand or flag.
fn check_args(args: &[String]) -> Result<(), String> {
    if let Err(e) =
        Cli::try_parse_from(std::iter::once("grader".to_string()).chain(args.iter().cloned()))
    {
        use clap::error::ErrorKind;
        if !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            return Err(e.render().to_string().trim().to_string());
        }
    }
    let cli = Cli::command();
    let Some(sub) = args.first().and_then(|s| cli.find_subcommand(s)) else {
        return Ok(());
    };
    if sub.is_hide_set() {
        return Err(format!(
            "`grader {}` is a hidden subcommand",
            sub.get_name()
        ));
    }
    for word in &args[1..] {
        let Some(long) = word.strip_prefix("--") else {
            continue;
        };
        let long = long.split('=').next().unwrap_or_default();
        if long.is_empty() {
            break; // `--`: what follows is not the grader's
        }
        let hidden = sub.get_arguments().any(|a| {
            a.is_hide_set()
                && (a.get_long() == Some(long)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&long)))
        });
        if hidden {
            return Err(format!(
                "--{long} is a hidden option of `grader {}`",
                sub.get_name()
            ));
        }
    }
    Ok(())
}

/// The grader commands quoted in inline code in the prose of `text` (`grader tasks --dialects`),
/// outside fenced blocks: fragments, often without their required arguments.
fn inline_fragments(name: &str, text: &str) -> Vec<DocCommand> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        for span in line.split('`').skip(1).step_by(2) {
            let rest = span
                .strip_prefix("grader ")
                .or_else(|| span.strip_prefix("cargo run -p grader -- "));
            let Some(rest) = rest else { continue };
            let rest = rest.split(['|', '>']).next().unwrap_or_default();
            out.push(DocCommand {
                place: format!("{name}:{}", i + 1),
                text: span.to_string(),
                args: rest.split_whitespace().map(String::from).collect(),
            });
        }
    }
    out
}

/// Checks a fragment of a command (after `grader`): its subcommand exists and every option it
/// names (`--flag`, `--flag=value`, `-j`, also inside `[...]`) is one of that subcommand's.
/// Placeholders (`<submission>`, `NAME`, `…`) are not options and pass.
fn check_fragment(args: &[String]) -> Result<(), String> {
    let cli = Cli::command();
    let Some(name) = args.first() else {
        return Ok(());
    };
    let Some(sub) = cli.find_subcommand(name) else {
        return Err(format!("`grader {name}`: no such subcommand"));
    };
    for word in &args[1..] {
        let word = word.trim_start_matches('[').trim_end_matches(']');
        let known = if let Some(long) = word.strip_prefix("--") {
            let long = long.split('=').next().unwrap_or_default();
            long.is_empty()
                || long == "help"
                || sub.get_arguments().any(|a| {
                    a.get_long() == Some(long)
                        || a.get_all_aliases().is_some_and(|al| al.contains(&long))
                })
        } else if let Some(short) = word.strip_prefix('-') {
            short.is_empty()
                || short.starts_with(|c: char| c.is_ascii_digit())
                || short
                    .chars()
                    .all(|c| c == 'h' || sub.get_arguments().any(|a| a.get_short() == Some(c)))
        } else {
            true
        };
        if !known {
            return Err(format!("`grader {}` has no option {word}", sub.get_name()));
        }
    }
    Ok(())
}

/// GitHub's anchor of a heading: lower case, letters, digits, `-` and `_` kept, spaces become
/// `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings (outside code fences), with GitHub's `-1`, `-2` for repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(heading);
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// The broken relative links of the page `page` (whose text is `text`): a missing file, or an
/// anchor that no heading of the target page has. Links inside code are not links.
fn broken_links(page: &Path, text: &str) -> Vec<String> {
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    let mut in_fence = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Drop inline code spans (`[x](y)` there is an example, not a link).
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for cap in link.captures_iter(&prose) {
            let target = &cap[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target, None),
            };
            let file = if path.is_empty() {
                page.to_path_buf()
            } else {
                page.parent().unwrap().join(path)
            };
            let place = format!("{}:{}", page.display(), i + 1);
            if !file.exists() {
                broken.push(format!("{place}: {target}: no file {}", file.display()));
                continue;
            }
            if let Some(anchor) = anchor
                && file.extension().is_some_and(|e| e == "md")
            {
                let target_text = if path.is_empty() {
                    text.to_string()
                } else {
                    std::fs::read_to_string(&file).unwrap_or_default()
                };
                if !anchors(&target_text).contains(anchor) {
                    broken.push(format!(
                        "{place}: {target}: {} has no heading #{anchor}",
                        file.display()
                    ));
                }
            }
        }
    }
    broken
}

#[test]
fn every_grader_command_in_the_docs_parses() {
    let root = support::root();
    let mut checked = 0;
    let mut wrong = Vec::new();
    let mut tasks_commands = Vec::new();
    for page in pages() {
        let name = page.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&page).unwrap();
        for cmd in doc_commands(&name, &text).unwrap_or_else(|e| panic!("{e}")) {
            checked += 1;
            if let Err(e) = check_args(&cmd.args) {
                wrong.push(format!("{}: `{}`:\n{e}", cmd.place, cmd.text));
            } else if cmd.args.first().is_some_and(|s| s == "tasks") {
                tasks_commands.push(cmd);
            }
        }
    }
    let mut fragments = 0;
    for page in pages() {
        let name = page.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&page).unwrap();
        for cmd in inline_fragments(&name, &text) {
            fragments += 1;
            if let Err(e) = check_fragment(&cmd.args) {
                wrong.push(format!("{}: `{}` (inline):\n{e}", cmd.place, cmd.text));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "commands in the docs the grader refuses:\n\n{}",
        wrong.join("\n\n")
    );
    // The docs have dozens of commands; a change that stopped finding them must not pass.
    assert!(
        checked >= 40,
        "only {checked} grader commands found in the docs"
    );
    assert!(
        fragments >= 10,
        "only {fragments} inline grader commands found in the docs"
    );

    // `grader tasks` reads nothing of the reader's unless it names a file: run those for real.
    let tmp = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for cmd in &tasks_commands {
        let names_a_file = cmd
            .args
            .iter()
            .any(|a| a == "--tasks-dir" || a.ends_with(".toml"));
        if names_a_file {
            continue;
        }
        let out = support::run_grader(&cmd.args, tmp.path());
        assert!(
            out.status.success(),
            "{}: `{}` failed: {}",
            cmd.place,
            cmd.text,
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 2, "only {ran} `grader tasks` commands ran");
}

#[test]
fn every_relative_link_between_the_docs_resolves() {
    let mut broken = Vec::new();
    let mut pages = pages();
    pages.push(support::root().join("examples/gradescope/README.md"));
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        broken.extend(broken_links(&page, &text));
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// README's quick start is exactly two commands, the ones `.ci/run` runs.
#[test]
fn the_quick_start_is_two_commands_that_ci_runs() {
    let root = support::root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Quick start\n"))
        .expect("README has a \"## Quick start\" section");
    let first_block: Vec<String> = shell_lines(section)
        .into_iter()
        .map(|(_, l)| strip_comment(&l).trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    // `shell_lines` takes every shell block of the section: there must be only the one.
    assert_eq!(
        first_block,
        [
            "cargo run -p grader -- run --task 1",
            "cargo test --workspace"
        ],
        "README's quick start must be the two commands for a fresh machine"
    );
    assert_eq!(
        grader_invocations(&first_block[0]).unwrap(),
        [["run", "--task", "1"].map(String::from).to_vec()]
    );

    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let ci_lines: Vec<Vec<String>> = ci
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| shell_words::split(strip_comment(l)).ok())
        .collect();
    // The test command itself: `cargo test --workspace` (with --locked at most added).
    assert!(
        ci_lines
            .iter()
            .any(|w| w.len() >= 3 && w[0] == "cargo" && w[1] == "test" && w[2] == "--workspace"),
        ".ci/run no longer runs README's test command (cargo test --workspace)"
    );
    // The grading command, with only --locked, -q and its own --out/--format added.
    let readme_run: Vec<&str> = first_block[0].split(' ').collect();
    let ci_run = ci_lines
        .iter()
        .find(|w| w.len() > 2 && w[0] == "cargo" && w[1] == "run")
        .expect(".ci/run runs `cargo run`");
    let ci_run: Vec<&str> = ci_run
        .iter()
        .map(String::as_str)
        .filter(|w| !matches!(*w, "--locked" | "-q"))
        .collect();
    assert!(
        ci_run.starts_with(&readme_run),
        ".ci/run's `{}` is not README's `{}`",
        ci_run.join(" "),
        first_block[0]
    );
}

/// The end-to-end example of docs/instructors.md, run as written on a class of two (a folder
/// started by its `classchat.toml`, and an executable `submission`) and a Canvas gradebook
/// export: every command of the section succeeds and leaves the files the page names.
#[test]
fn the_instructors_end_to_end_example_runs_as_written() {
    let root = support::root();
    let page = std::fs::read_to_string(root.join("docs/instructors.md")).unwrap();
    let section = page
        .split("\n## ")
        .find(|s| s.starts_with("An end-to-end example\n"))
        .expect("docs/instructors.md has \"## An end-to-end example\"");
    let commands = doc_commands("docs/instructors.md", section).unwrap();
    assert!(commands.len() >= 6, "{commands:#?}");

    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    support::copy_fixture(
        1,
        "correct_other_style.py",
        &work.join("submissions/alice/chat.py"),
    );
    std::fs::write(
        work.join("submissions/alice/classchat.toml"),
        "server = \"python3 {dir}/chat.py server --port {port}\"\n\
         client = \"python3 {dir}/chat.py client --host {host} --port {port}\"\n",
    )
    .unwrap();
    support::copy_fixture(
        1,
        "correct_other_style.py",
        &work.join("submissions/carol/submission"),
    );
    std::fs::write(
        work.join("canvas-gradebook.csv"),
        "Student,ID,SIS User ID,SIS Login ID,Section\n    Points Possible,,,,\n\
         \"Doe, Alice\",101,S101,alice,Sec 1\n\"Roe, Carol\",102,S102,carol,Sec 1\n",
    )
    .unwrap();

    for cmd in &commands {
        let out = std::process::Command::new(support::grader_bin())
            .args(&cmd.args)
            .current_dir(&work)
            .env("TMPDIR", tmp.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: `{}` exited {:?}:\n{}{}",
            cmd.place,
            cmd.text,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for file in [
        "reports/alice/task1.toml",
        "reports/alice/task1.junit.xml",
        "reports/carol/task1.toml",
        "summary.html",
        "grades.csv",
        "canvas-import.csv",
        "results.json",
        "reports/summary.html",
        "reports/grades.csv",
        "reports/canvas-import.csv",
    ] {
        assert!(work.join(file).is_file(), "the example leaves no {file}");
    }
    // Nothing a grading started (nor a guard) outlives the example.
    support::assert_leftovers_vanish(tmp.path(), std::time::Duration::from_secs(10));
    let canvas = std::fs::read_to_string(work.join("canvas-import.csv")).unwrap();
    assert!(
        canvas.contains("\"Doe, Alice\",101,S101,alice,Sec 1,30"),
        "{canvas}"
    );
    assert!(
        canvas.contains("\"Roe, Carol\",102,S102,carol,Sec 1,30"),
        "{canvas}"
    );
}

// The check itself must be able to fail: wrong commands and broken links are caught.

#[test]
fn the_command_check_refuses_wrong_commands() {
    let args = |s: &str| shell_words::split(s).unwrap();
    assert!(check_args(&args("run --task 1 ./student-bin --min-score 80%")).is_ok());
    assert!(check_args(&args("batch --task 1 submissions/ --out reports/")).is_ok());
    assert!(check_args(&args("run --task 1 ./student-bin --no-such-flag")).is_err());
    assert!(
        check_args(&args("grade --task 1 ./student-bin")).is_err(),
        "unknown subcommand"
    );
    assert!(
        check_args(&args("run --task 1 --min-score 0.8")).is_err(),
        "refused value"
    );
    assert!(
        check_args(&args("export --format xlsx reports/")).is_err(),
        "unknown format"
    );
    assert!(check_args(&args("guard")).is_err(), "hidden subcommand");

    let page = "text\n\n```sh\ngrader run --task 1 ./student-bin --bogus   # a comment\n\
                cargo run -p grader -- batch --task 1 submissions/ \\\n    --shard 1/2\n\
                docker run --rm -v \"$PWD\":/work classchat-grader run --tsk 1 /work\n\
                GRADER_TASK=1 bash .github/action/grade.sh\n```\n\n```toml\n# grader run --nope\n```\n";
    let cmds = doc_commands("page.md", page).unwrap();
    let found: Vec<(&str, bool)> = cmds
        .iter()
        .map(|c| (c.place.as_str(), check_args(&c.args).is_ok()))
        .collect();
    assert_eq!(
        found,
        [
            ("page.md:4", false),
            ("page.md:5", true),
            ("page.md:7", false)
        ],
        "{cmds:#?}"
    );
    assert_eq!(cmds[1].args.last().map(String::as_str), Some("1/2"));
}

#[test]
fn the_fragment_check_refuses_unknown_options() {
    let page = "Use `grader tasks --steps [--dialect NAME]`, `grader batch -j 1`, `grader replay`\n\
                and `grader batch … | head -1`; not `grader batch --no-such`, `grader frobnicate`,\n\
                `grader run -q`. `cargo build -p grader` is not a grader command.\n";
    let found: Vec<(String, bool)> = inline_fragments("page.md", page)
        .into_iter()
        .map(|c| (c.text.clone(), check_fragment(&c.args).is_ok()))
        .collect();
    let expected = [
        ("grader tasks --steps [--dialect NAME]", true),
        ("grader batch -j 1", true),
        ("grader replay", true),
        ("grader batch … | head -1", true),
        ("grader batch --no-such", false),
        ("grader frobnicate", false),
        ("grader run -q", false),
    ];
    assert_eq!(
        found,
        expected.map(|(s, ok)| (s.to_string(), ok)).to_vec(),
        "{found:#?}"
    );
}

#[test]
fn the_link_check_finds_broken_links() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(
        docs.join("a.md"),
        "# A page\n\n## Hard-coded ports\n\n```sh\n# not a heading\n```\n",
    )
    .unwrap();
    let page = docs.join("b.md");
    let text = "# B\n\n## Prompts, terminals and templates\n\n\
                [ok](a.md#hard-coded-ports) [ok](#prompts-terminals-and-templates) [ok](a.md)\n\
                [bad](a.md#hardcoded-ports) [bad](c.md) [bad](#not-a-heading) `[code](x.md)`\n\
                [web](https://example.com/x.md#y)\n";
    std::fs::write(&page, text).unwrap();
    let broken = broken_links(&page, text);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("a.md#hardcoded-ports"), "{broken:#?}");
    assert!(broken[1].contains("c.md"), "{broken:#?}");
    assert!(broken[2].contains("#not-a-heading"), "{broken:#?}");
}
