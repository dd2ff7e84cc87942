//! Finding the submissions in a batch folder, and how each one is started.
//!
//! The rule (docs/instructors.md, "Batch grading", repeats it):
//! - every non-hidden **subfolder** of the batch folder is one submission, and its name is the
//!   student id. It is started by, in order of preference:
//!   1. a `classchat.toml` inside it with `server = "..."` and/or `client = "..."` launch templates
//!      (run with the folder as working directory; `{dir}` is the folder); a role it leaves out
//!      uses the batch's `--server`/`--client` template, if any;
//!   2. the batch's `--server`/`--client` templates;
//!   3. the launch contract, on the executable named `submission` in the folder, else on the only
//!      executable file directly in it;
//! - a `classchat.toml` may also say `stdin_prelude = [...]`, `client_stdin = "terminal"` and
//!   `roles = ["server"]` ([`crate::launch::LaunchOptions`]), which win over the batch's
//!   `--stdin-prelude`, `--client-stdin` and `--role`; an error in it (TOML syntax, an unknown
//!   key, a template, build command or prelude line that does not parse) names the file, the
//!   line and column, and the key; a role it gives no template for, in a folder without an
//!   executable, is not an error here (that role's scenarios fail, saying so);
//! - a folder is built first when its `classchat.toml` says `build = "..."`, else when the batch
//!   has a `--build` command: the build runs in a copy of the folder (see `engine::build`), the
//!   templates or the launch contract then start what is in the copy, and the executable of the
//!   launch contract is looked for only after the build (so a folder of sources is not refused
//!   for having none yet);
//! - a folder's `classchat.toml` may also name a bundled protocol dialect (`dialect = "..."`)
//!   and set single protocol keys in a `[protocol]` table ([`submission_dialect`]); they apply
//!   on top of the batch's `--dialect`;
//! - every executable **file** directly in the batch folder is one submission too, with the file
//!   name without its extension as student id, started by the batch's templates or the launch
//!   contract; non-executable files (a README, a roster) are ignored and counted.
//!
//! Guarantees: discovery never runs student code, and of a submission's files reads only its
//! `classchat.toml`, as a regular file of at most 64 KiB (not through a symbolic link, never
//! blocking on a FIFO: see [`submission_tree::read_small_file`]); the result is sorted by
//! student id; two
//! submissions with the same id are a usage error; different ids that share a report folder
//! once made safe as folder names (`jo smith`, `jo_smith`) are all refused as launch problems
//! (none is graded, so no record is ever written under another student's folder); a submission
//! that cannot be started (no executable, two candidates, a bad `classchat.toml`) becomes an
//! entry with a launch problem, which is reported for that student without stopping the others.
//! A launch problem is a typed [`LaunchPlanError`] (a `classchat.toml` error a
//! [`LaunchFileError`]: the file, line, column and key as fields, what is wrong as its source),
//! shown through [`crate::error_chain`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::launch::{self, ClientStdin, Executables, LaunchError, LaunchOptions};
use crate::report;
use crate::spec::protocol::DialectError;
use crate::spec::{Dialect, Role};
use crate::submission_tree;

/// The per-submission launch file.
pub const LAUNCH_FILE: &str = "classchat.toml";
/// The largest launch file read, in bytes.
const LAUNCH_FILE_LIMIT: u64 = 64 * 1024;

/// One submission found in the batch folder.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Student id: folder name, or file name without extension.
    pub id: String,
    /// The folder or file.
    pub path: PathBuf,
    /// How to start it, or why it cannot be started (shared: a batch of several tasks builds
    /// one job per task from the same entry).
    pub launch: Result<LaunchPlan, Arc<LaunchPlanError>>,
}

/// How a submission is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPlan {
    /// What `check_submission` is given: the executable, or the folder for templates.
    pub target: PathBuf,
    /// Server template (None: launch contract).
    pub server: Option<String>,
    /// Client template (None: launch contract).
    pub client: Option<String>,
    /// Build command run in a copy of the folder first (None: no build).
    pub build: Option<String>,
    /// The protocol dialect its `classchat.toml` names (`dialect = "..."`), if any.
    pub dialect: Option<String>,
    /// The protocol keys its `classchat.toml` sets in a `[protocol]` table (TOML text), if any.
    pub protocol: Option<String>,
    /// Lines typed on the client's stdin before the scenario's own (None: none).
    pub stdin_prelude: Option<Vec<String>>,
    /// What the client's stdin is (None: a pipe).
    pub client_stdin: Option<ClientStdin>,
    /// The roles graded (None: every role of the task).
    pub roles: Option<Vec<Role>>,
}

impl LaunchPlan {
    /// The plan's [`LaunchOptions`] (what it leaves out is the default).
    pub fn options(&self) -> LaunchOptions {
        LaunchOptions {
            stdin_prelude: self.stdin_prelude.clone().unwrap_or_default(),
            client_stdin: self.client_stdin.unwrap_or_default(),
            roles: self.roles.clone(),
        }
    }
}

/// A batch folder that cannot be graded at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// Not a readable folder.
    #[error("cannot read the batch folder {}", .path.display())]
    Io {
        /// Which folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Two submissions map to one student id.
    #[error(
        "two submissions have the student id {id:?}: {} and {}; rename one",
        .a.display(),
        .b.display()
    )]
    DuplicateId {
        /// The id.
        id: String,
        /// First path.
        a: PathBuf,
        /// Second path.
        b: PathBuf,
    },
}

/// Why a submission cannot be started: a launch problem of that student, reported for it
/// without stopping the others (`grader run` on a folder refuses it as a usage error).
#[derive(Debug, thiserror::Error)]
pub enum LaunchPlanError {
    /// The folder holds no executable for the launch contract, and nothing says how to start it.
    #[error(
        "no executable in {}: add {LAUNCH_FILE} with server/client templates (and a build command for sources to compile), or an executable named `submission`",
        .dir.display()
    )]
    NoExecutable {
        /// The folder.
        dir: PathBuf,
    },
    /// The folder holds several executables, none named `submission`.
    #[error(
        "{} executables in {} ({}): name the one to grade `submission`, or add {LAUNCH_FILE}",
        .names.len(),
        .dir.display(),
        .names.join(", ")
    )]
    SeveralExecutables {
        /// The folder.
        dir: PathBuf,
        /// The executables' file names.
        names: Vec<String>,
    },
    /// The folder cannot be read (to look for its executable).
    #[error("cannot read {}", .dir.display())]
    UnreadableFolder {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Its `classchat.toml` cannot be read safely (a link, a FIFO, too big, ...).
    #[error(transparent)]
    UnreadableLaunchFile(submission_tree::TreeError),
    /// Its `classchat.toml` is wrong: the file, line, column and key, and what is wrong.
    #[error(transparent)]
    LaunchFile(Box<LaunchFileError>),
    /// Its `classchat.toml` names a dialect that is not bundled.
    #[error(
        "{LAUNCH_FILE} names the dialect {name:?}, which is not bundled: use one of {}, or set single keys in a [protocol] table",
        bundled_dialect_names()
    )]
    DialectNotBundled {
        /// The name it gives.
        name: String,
    },
    /// A bundled dialect it names does not load (a fault of the grader's bundled files).
    #[error(transparent)]
    BundledDialect(DialectError),
    /// The `[protocol]` table of its `classchat.toml` does not parse as protocol keys.
    #[error("{LAUNCH_FILE}")]
    ProtocolTable(#[source] DialectError),
    /// Different student ids share one report folder (see `refuse_shared_folders`).
    #[error(
        "the student ids {} share the report folder {folder}/ (ids are made safe as folder names), so none of them is graded: rename all but one",
        .ids.iter().map(|(id, path)| format!("{id:?} ({})", path.display())).collect::<Vec<_>>().join(" and ")
    )]
    SharedReportFolder {
        /// Every id of the group and its path, in the order of the batch.
        ids: Vec<(String, PathBuf)>,
        /// The report folder they share.
        folder: String,
    },
}

impl From<LaunchFileError> for LaunchPlanError {
    fn from(e: LaunchFileError) -> Self {
        LaunchPlanError::LaunchFile(Box::new(e))
    }
}

/// The bundled dialects' names, as an error message lists them.
fn bundled_dialect_names() -> String {
    crate::spec::BUNDLED_DIALECTS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An error in a `classchat.toml`: its message is where (`file:line:column`, and the key when
/// known), its source what is wrong there.
#[derive(Debug, thiserror::Error)]
#[error("{}{}{}", .file.display(), .at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default(), .key.as_ref().map(|k| format!(": key `{k}`")).unwrap_or_default())]
pub struct LaunchFileError {
    /// The file.
    pub file: PathBuf,
    /// Line and column (1-based) of the error, when known.
    pub at: Option<(usize, usize)>,
    /// The key whose value is wrong, when known (and not named by the problem already).
    pub key: Option<String>,
    /// What is wrong.
    #[source]
    pub problem: LaunchFileProblem,
}

/// What is wrong in a `classchat.toml`.
#[derive(Debug, thiserror::Error)]
pub enum LaunchFileProblem {
    /// Not TOML, an unknown key, or a value of the wrong type (the TOML parser's message).
    #[error("{message} (a launch file holds {LAUNCH_KEYS})")]
    Toml {
        /// The parser's message.
        message: String,
    },
    /// A template, build command or stdin prelude line that does not parse.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// `roles = []`.
    #[error(
        "an empty list grades nothing: write roles = [\"server\"], [\"client\"], or leave the key out for both"
    )]
    NoRoles,
}

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Found {
    /// Submissions, sorted by id.
    pub entries: Vec<Entry>,
    /// Non-executable files directly in the batch folder (not submissions).
    pub ignored: Vec<PathBuf>,
}

/// A `classchat.toml` as written; every value keeps where it is in the file, so that an error
/// names the file, line and key. New keys go here (unknown ones are refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchFile {
    server: Option<Spanned<String>>,
    client: Option<Spanned<String>>,
    build: Option<Spanned<String>>,
    stdin_prelude: Option<Vec<Spanned<String>>>,
    client_stdin: Option<ClientStdin>,
    roles: Option<Spanned<Vec<Role>>>,
    dialect: Option<String>,
    protocol: Option<toml::Table>,
}

/// The keys a launch file may hold, as an error message lists them.
const LAUNCH_KEYS: &str = "`server = \"...\"`, `client = \"...\"`, `build = \"...\"`, `stdin_prelude = [\"{host}\", \"{name}\"]`, `client_stdin = \"terminal\"`, `roles = [\"server\"]`, `dialect = \"...\"`, a `[protocol]` table";

/// The batch's defaults: `--server`/`--client` templates, `--build` command, and the other
/// options a `classchat.toml` can set per submission.
#[derive(Debug, Clone, Copy, Default)]
pub struct Defaults<'a> {
    /// Server template.
    pub server: Option<&'a str>,
    /// Client template.
    pub client: Option<&'a str>,
    /// Build command of folders whose `classchat.toml` names none.
    pub build: Option<&'a str>,
    /// `--stdin-prelude` lines of submissions whose `classchat.toml` names none.
    pub stdin_prelude: Option<&'a [String]>,
    /// `--client-stdin` of submissions whose `classchat.toml` names none.
    pub client_stdin: Option<ClientStdin>,
    /// `--role` of submissions whose `classchat.toml` names none.
    pub roles: Option<&'a [Role]>,
}

/// Finds the submissions in `dir` under the batch's defaults.
pub fn discover(dir: &Path, defaults: Defaults<'_>) -> Result<Found, DiscoverError> {
    let Defaults { server, client, .. } = defaults;
    let rd = std::fs::read_dir(dir).map_err(|source| DiscoverError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut found = Found::default();
    let mut paths: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            let launch = folder_plan(&path, defaults).map_err(Arc::new);
            found.entries.push(Entry {
                id: name,
                path,
                launch,
            });
        } else if launch::is_executable(&path) {
            let id = Path::new(&name)
                .file_stem()
                .map_or(name.clone(), |s| s.to_string_lossy().into_owned());
            found.entries.push(Entry {
                id,
                launch: Ok(LaunchPlan {
                    target: path.clone(),
                    server: server.map(String::from),
                    client: client.map(String::from),
                    build: None,
                    ..LaunchPlan::defaults(defaults)
                }),
                path,
            });
        } else {
            found.ignored.push(path);
        }
    }
    found.entries.sort_by(|a, b| a.id.cmp(&b.id));
    for w in found.entries.windows(2) {
        if w[0].id == w[1].id {
            return Err(DiscoverError::DuplicateId {
                id: w[0].id.clone(),
                a: w[0].path.clone(),
                b: w[1].path.clone(),
            });
        }
    }
    refuse_shared_folders(&mut found.entries);
    Ok(found)
}

/// Different student ids whose report folder ([`report::sanitize`]) is the same (`jo smith` and
/// `jo_smith`) would overwrite each other's records. None of them is graded: each becomes a
/// launch problem naming every id of the group and the shared folder, so no record can ever end
/// up under another student's folder, and the outcome does not depend on which finished last.
fn refuse_shared_folders(entries: &mut [Entry]) {
    let mut by_folder: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        by_folder
            .entry(report::sanitize(&e.id))
            .or_default()
            .push(i);
    }
    for (folder, group) in by_folder.into_iter().filter(|(_, g)| g.len() > 1) {
        let ids: Vec<(String, PathBuf)> = group
            .iter()
            .map(|&i| (entries[i].id.clone(), entries[i].path.clone()))
            .collect();
        let why = Arc::new(LaunchPlanError::SharedReportFolder { ids, folder });
        for i in group {
            entries[i].launch = Err(Arc::clone(&why));
        }
    }
}

/// Line and column (1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before, |i| &before[i + 1..])
        .chars()
        .count()
        + 1;
    (line, col)
}

/// The key whose value holds byte `offset`: the nearest `key = ...` line at or before it (a
/// value may span lines, as an array does). `None` before the first key, or when the line at
/// `offset` is itself no key's (a table header).
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let lines = text[..line_end].lines().rev();
    for line in lines {
        let line = line.trim_start();
        if line.starts_with('[') {
            return None;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Some(key);
            }
        }
    }
    None
}

/// Reads and checks a `classchat.toml`: TOML syntax, known keys, and every template, build
/// command and prelude line in it. Every error names the file, line and column, and the key.
fn read_launch_file(file: &Path) -> Result<LaunchPlan, LaunchPlanError> {
    // Student data: never through a link, never blocking on a FIFO, never huge.
    let text = submission_tree::read_small_file(file, LAUNCH_FILE_LIMIT)
        .map_err(LaunchPlanError::UnreadableLaunchFile)?;
    let lf: LaunchFile = toml::from_str(&text).map_err(|e| {
        let (at, key) = match e.span() {
            Some(span) => (
                Some(line_col(&text, span.start)),
                key_before(&text, span.start)
                    // An unknown key's message names it already.
                    .filter(|k| !e.message().contains(&format!("`{k}`")))
                    .map(String::from),
            ),
            None => (None, None),
        };
        LaunchFileError {
            file: file.to_path_buf(),
            at,
            key,
            problem: LaunchFileProblem::Toml {
                message: e.message().trim_end().to_string(),
            },
        }
    })?;
    let at = |span: std::ops::Range<usize>, key: &str| {
        let (at, key) = (Some(line_col(&text, span.start)), Some(key.to_string()));
        let file = file.to_path_buf();
        move |problem: LaunchFileProblem| LaunchFileError {
            file,
            at,
            key,
            problem,
        }
    };
    for (role, value, key) in [
        (Role::Server, &lf.server, "server"),
        (Role::Client, &lf.client, "client"),
    ] {
        if let Some(t) = value {
            launch::CommandTemplate::parse_as(role, t.get_ref(), "template".into())
                .map_err(|e| at(t.span(), key)(e.into()))?;
        }
    }
    if let Some(b) = &lf.build {
        launch::BuildCommand::parse(b.get_ref()).map_err(|e| at(b.span(), "build")(e.into()))?;
    }
    for line in lf.stdin_prelude.iter().flatten() {
        launch::check_prelude_line(line.get_ref(), "line")
            .map_err(|e| at(line.span(), "stdin_prelude")(e.into()))?;
    }
    if let Some(roles) = &lf.roles
        && roles.get_ref().is_empty()
    {
        return Err(at(roles.span(), "roles")(LaunchFileProblem::NoRoles).into());
    }
    Ok(LaunchPlan {
        target: PathBuf::new(),
        server: lf.server.map(Spanned::into_inner),
        client: lf.client.map(Spanned::into_inner),
        build: lf.build.map(Spanned::into_inner),
        stdin_prelude: lf
            .stdin_prelude
            .map(|lines| lines.into_iter().map(Spanned::into_inner).collect()),
        client_stdin: lf.client_stdin,
        roles: lf.roles.map(Spanned::into_inner),
        dialect: lf.dialect,
        protocol: lf.protocol.map(|t| toml::Value::Table(t).to_string()),
    })
}

impl LaunchPlan {
    /// A plan of the batch's defaults alone, for `target`'s fields to be filled in.
    fn defaults(defaults: Defaults<'_>) -> Self {
        let owned = |t: Option<&str>| t.map(String::from);
        LaunchPlan {
            target: PathBuf::new(),
            server: owned(defaults.server),
            client: owned(defaults.client),
            build: owned(defaults.build),
            stdin_prelude: defaults.stdin_prelude.map(<[String]>::to_vec),
            client_stdin: defaults.client_stdin,
            roles: defaults.roles.map(<[Role]>::to_vec),
            dialect: None,
            protocol: None,
        }
    }
}

/// How the submission folder `dir` is started (the rule in this module's comment), with
/// `defaults` for what its `classchat.toml` leaves out; `Err` says why it cannot be started.
/// `grader run` on a folder uses the same rule.
pub fn folder_plan(dir: &Path, defaults: Defaults<'_>) -> Result<LaunchPlan, LaunchPlanError> {
    let file = dir.join(LAUNCH_FILE);
    let base = LaunchPlan::defaults(defaults);
    if file.symlink_metadata().is_ok() {
        let lf = read_launch_file(&file)?;
        return Ok(LaunchPlan {
            target: dir.to_path_buf(),
            server: lf.server.or(base.server),
            client: lf.client.or(base.client),
            build: lf.build.or(base.build),
            stdin_prelude: lf.stdin_prelude.or(base.stdin_prelude),
            client_stdin: lf.client_stdin.or(base.client_stdin),
            roles: lf.roles.or(base.roles),
            dialect: lf.dialect,
            protocol: lf.protocol,
        });
    }
    if defaults.server.is_some() || defaults.client.is_some() || defaults.build.is_some() {
        // With a build, the launch contract's executable is looked for in the built copy.
        return Ok(LaunchPlan {
            target: dir.to_path_buf(),
            ..base
        });
    }
    let found =
        launch::find_executable(dir).map_err(|source| LaunchPlanError::UnreadableFolder {
            dir: dir.to_path_buf(),
            source,
        })?;
    match found {
        Executables::One(target) => Ok(LaunchPlan {
            target,
            server: None,
            client: None,
            build: None,
            ..base
        }),
        Executables::None => Err(LaunchPlanError::NoExecutable {
            dir: dir.to_path_buf(),
        }),
        Executables::Several(names) => Err(LaunchPlanError::SeveralExecutables {
            dir: dir.to_path_buf(),
            names,
        }),
    }
}

/// The protocol dialect a submission's `classchat.toml` asks for: a bundled dialect named by
/// `dialect = "..."` (only bundled ones: a submission never makes the grader read another
/// file), then the keys of its `[protocol]` table. Empty when it asks for none.
pub fn submission_dialect(plan: &LaunchPlan) -> Result<Dialect, LaunchPlanError> {
    let named = match &plan.dialect {
        Some(name) if crate::spec::BUNDLED_DIALECTS.iter().any(|(n, _)| n == name) => {
            Dialect::named(name).map_err(LaunchPlanError::BundledDialect)?
        }
        Some(name) => {
            return Err(LaunchPlanError::DialectNotBundled { name: name.clone() });
        }
        None => Dialect::default(),
    };
    let inline = match &plan.protocol {
        Some(text) => Dialect::from_inline(&format!("{LAUNCH_FILE} [protocol]"), text)
            .map_err(LaunchPlanError::ProtocolTable)?,
        None => Dialect::default(),
    };
    Ok(Dialect::combine([&named, &inline]))
}

/// A `--shard K/N`: the K-th of N deterministic slices (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, 1..=count.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a shard: write K/N with 1 <= K <= N, e.g. 1/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Keeps this shard's entries: the sorted list is dealt round-robin, so every shard gets
    /// about the same number and the slices depend only on the set of student ids.
    pub fn select<T>(self, sorted: Vec<T>) -> Vec<T> {
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index - 1)
            .map(|(_, e)| e)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_chain::chain;

    fn exe(p: &Path, text: &str) {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }

    #[test]
    fn discovery_rule() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        exe(&root.join("carol.py"), "#!/usr/bin/env python3\n");
        std::fs::write(root.join("README.md"), "roster").unwrap();
        std::fs::create_dir(root.join("alice")).unwrap();
        std::fs::write(
            root.join("alice").join(LAUNCH_FILE),
            "server = \"python3 {dir}/s.py --port {port}\"\n",
        )
        .unwrap();
        std::fs::create_dir(root.join("bob")).unwrap();
        exe(&root.join("bob/main.py"), "#!/usr/bin/env python3\n");
        std::fs::write(root.join("bob/notes.txt"), "x").unwrap();
        std::fs::create_dir(root.join("dave")).unwrap();
        exe(&root.join("dave/a"), "#!/bin/sh\n");
        exe(&root.join("dave/b"), "#!/bin/sh\n");
        std::fs::create_dir(root.join(".git")).unwrap();

        let f = discover(
            root,
            Defaults {
                client: Some("python3 {bin} {host} {port}"),
                ..Defaults::default()
            },
        )
        .unwrap();
        let ids: Vec<&str> = f.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["alice", "bob", "carol", "dave"]);
        let alice = f.entries[0].launch.as_ref().unwrap();
        assert_eq!(alice.target, root.join("alice"));
        assert_eq!(
            alice.server.as_deref(),
            Some("python3 {dir}/s.py --port {port}")
        );
        assert_eq!(alice.client.as_deref(), Some("python3 {bin} {host} {port}"));
        // bob: batch templates given, so the folder is the target.
        assert_eq!(
            f.entries[1].launch.as_ref().unwrap().target,
            root.join("bob")
        );
        assert_eq!(f.ignored, [root.join("README.md")]);

        let f = discover(root, Defaults::default()).unwrap();
        assert_eq!(
            f.entries[1].launch.as_ref().unwrap().target,
            root.join("bob/main.py")
        );
        let dave = f.entries[3].launch.as_ref().unwrap_err();
        assert!(dave.to_string().contains("2 executables"), "{dave}");
        assert!(
            matches!(&**dave, LaunchPlanError::SeveralExecutables { names, .. } if names == &["a", "b"]),
            "{dave:?}"
        );
    }

    #[test]
    fn folders_with_a_build_are_not_asked_for_an_executable_yet() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        // Sources only, built by its own classchat.toml and started by the launch contract.
        std::fs::create_dir(root.join("cara")).unwrap();
        std::fs::write(root.join("cara/chat.c"), "int main;").unwrap();
        std::fs::write(root.join("cara").join(LAUNCH_FILE), "build = \"make\"\n").unwrap();
        // Sources only, no classchat.toml: the batch's --build applies.
        std::fs::create_dir(root.join("dov")).unwrap();
        std::fs::write(root.join("dov/chat.c"), "int main;").unwrap();
        // A launch file with an unknown key.
        std::fs::create_dir(root.join("eli")).unwrap();
        std::fs::write(root.join("eli").join(LAUNCH_FILE), "biuld = \"make\"\n").unwrap();
        let with_build = Defaults {
            build: Some("cc -o submission chat.c"),
            ..Defaults::default()
        };
        let f = discover(root, with_build).unwrap();
        let plan = |i: usize| f.entries[i].launch.clone().map_err(|e| chain(&*e));
        let cara = plan(0).unwrap();
        assert_eq!(
            (cara.target, cara.build.as_deref(), cara.server),
            (root.join("cara"), Some("make"), None)
        );
        let dov = plan(1).unwrap();
        assert_eq!(
            (dov.target, dov.build.as_deref()),
            (root.join("dov"), Some("cc -o submission chat.c"))
        );
        assert!(plan(2).unwrap_err().contains("`build = \"...\"`"));
        // Without the batch's --build, dov has nothing to start.
        let f = discover(root, Defaults::default()).unwrap();
        assert!(f.entries[0].launch.is_ok());
        let dov = f.entries[1].launch.as_ref().unwrap_err();
        assert!(dov.to_string().contains("no executable"), "{dov}");
        assert!(
            matches!(&**dov, LaunchPlanError::NoExecutable { dir } if dir == &root.join("dov"))
        );
    }

    /// The error `folder_plan` gives for a folder whose classchat.toml is `text`.
    fn launch_file_error(text: &str) -> (String, String) {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join(LAUNCH_FILE);
        std::fs::write(&file, text).unwrap();
        let why = folder_plan(d.path(), Defaults::default()).unwrap_err();
        (chain(&why), file.display().to_string())
    }

    #[test]
    fn launch_file_errors_name_the_file_line_column_and_key() {
        // A TOML syntax error: file:line:column.
        let (why, file) = launch_file_error(
            "server = \"python3 s.py --port {port}\"\nclient = \"python3 c.py {host} {port}\n",
        );
        assert!(why.starts_with(&format!("{file}:2:")), "{why}");
        // An unknown key.
        let (why, file) = launch_file_error("build = \"make\"\nclinet = \"x {port}\"\n");
        assert!(
            why.starts_with(&format!("{file}:2:1: unknown field `clinet`")),
            "{why}"
        );
        // A placeholder typo: this file, its line and key, not a --server template.
        let (why, file) =
            launch_file_error("# the server\nserver = \"python3 s.py --port {prot}\"\n");
        assert_eq!(
            why,
            format!(
                "{file}:2:10: key `server`: template \"python3 s.py --port {{prot}}\" uses unknown placeholder {{prot}}: known are {{bin}}, {{dir}}, {{host}}, {{port}}, {{name}}"
            )
        );
        assert!(!why.contains("--server"));
        let (why, file) = launch_file_error("stdin_prelude = [\"{host}\", \"{nmae}\"]\n");
        assert!(
            why.starts_with(&format!("{file}:1:28: key `stdin_prelude`: line \"{{nmae}}\" uses unknown placeholder {{nmae}}")),
            "{why}"
        );
        let (why, file) = launch_file_error("build = \"make {bin}\"\n");
        assert!(
            why.starts_with(&format!("{file}:1:9: key `build`: build command")),
            "{why}"
        );
        let (why, file) = launch_file_error("\nclient_stdin = \"tty\"\n");
        assert!(
            why.starts_with(&format!(
                "{file}:2:16: key `client_stdin`: unknown variant `tty`"
            )),
            "{why}"
        );
        // A value of the wrong type names its key too, also inside a multi-line array.
        let (why, file) = launch_file_error("server = 5\n");
        assert!(
            why.starts_with(&format!(
                "{file}:1:10: key `server`: invalid type: integer `5`"
            )),
            "{why}"
        );
        let (why, file) = launch_file_error("stdin_prelude = [\n  \"{host}\",\n  7,\n]\n");
        assert!(
            why.starts_with(&format!("{file}:3:3: key `stdin_prelude`: ")),
            "{why}"
        );
        let (why, file) = launch_file_error("roles = []\n");
        assert!(
            why.starts_with(&format!("{file}:1:9: key `roles`: an empty list")),
            "{why}"
        );
    }

    #[test]
    fn launch_file_errors_keep_their_fields() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join(LAUNCH_FILE);
        std::fs::write(&file, "# the server\nserver = \"s --port {prot}\"\n").unwrap();
        let why = folder_plan(d.path(), Defaults::default()).unwrap_err();
        let LaunchPlanError::LaunchFile(e) = &why else {
            panic!("{why:?}");
        };
        assert_eq!(
            (&e.file, e.at, e.key.as_deref()),
            (&file, Some((2, 10)), Some("server"))
        );
        assert!(
            matches!(
                &e.problem,
                LaunchFileProblem::Launch(LaunchError::UnknownPlaceholder { placeholder, .. })
                    if placeholder == "{prot}"
            ),
            "{:?}",
            e.problem
        );
        // The message is where; the problem is its source, written once.
        assert_eq!(
            e.to_string(),
            format!("{}:2:10: key `server`", file.display())
        );
        assert_eq!(chain(&why).matches("unknown placeholder").count(), 1);
        // An unknown key names no key of its own (the parser's message names it).
        std::fs::write(&file, "clinet = \"x\"\n").unwrap();
        let why = folder_plan(d.path(), Defaults::default()).unwrap_err();
        assert!(
            matches!(
                &why,
                LaunchPlanError::LaunchFile(e) if matches!(**e, LaunchFileError {
                    at: Some((1, 1)),
                    key: None,
                    problem: LaunchFileProblem::Toml { .. },
                    ..
                })
            ),
            "{why:?}"
        );
        // A dialect that is not bundled, and a [protocol] table that does not parse.
        let plan = |dialect: Option<&str>, protocol: Option<&str>| LaunchPlan {
            dialect: dialect.map(String::from),
            protocol: protocol.map(String::from),
            ..LaunchPlan::defaults(Defaults::default())
        };
        let why = submission_dialect(&plan(Some("klingon"), None)).unwrap_err();
        assert!(
            matches!(&why, LaunchPlanError::DialectNotBundled { name } if name == "klingon"),
            "{why:?}"
        );
        assert!(why.to_string().contains("which is not bundled"), "{why}");
        let why = submission_dialect(&plan(None, Some("{ nonsense_key = 1 }"))).unwrap_err();
        assert!(
            matches!(
                &why,
                LaunchPlanError::ProtocolTable(DialectError::Keys { .. })
            ),
            "{why:?}"
        );
        assert!(chain(&why).starts_with("classchat.toml: dialect "), "{why}");
    }

    #[test]
    fn a_launch_file_sets_prelude_terminal_and_roles_over_the_batch_defaults() {
        let d = tempfile::tempdir().unwrap();
        // No `client` line: a plan without a client template (its scenarios say so), not an
        // error about a directory.
        std::fs::write(
            d.path().join(LAUNCH_FILE),
            "server = \"python3 s.py\"\nstdin_prelude = [\"{host}\", \"{name}\"]\nclient_stdin = \"terminal\"\nroles = [\"server\"]\n",
        )
        .unwrap();
        let prelude = ["x".to_string()];
        let plan = folder_plan(
            d.path(),
            Defaults {
                stdin_prelude: Some(&prelude),
                client_stdin: Some(ClientStdin::Pipe),
                ..Defaults::default()
            },
        )
        .unwrap();
        assert_eq!(plan.client, None);
        let options = plan.options();
        assert_eq!(options.stdin_prelude, ["{host}", "{name}"]);
        assert_eq!(options.client_stdin, ClientStdin::Terminal);
        assert_eq!(options.roles, Some(vec![Role::Server]));
        // What the file leaves out comes from the batch.
        std::fs::write(d.path().join(LAUNCH_FILE), "server = \"s {port}\"\n").unwrap();
        let plan = folder_plan(
            d.path(),
            Defaults {
                stdin_prelude: Some(&prelude),
                ..Defaults::default()
            },
        )
        .unwrap();
        assert_eq!(plan.options().stdin_prelude, ["x"]);
        assert_eq!(plan.options().client_stdin, ClientStdin::Pipe);
    }

    #[test]
    fn ids_sharing_a_report_folder_are_all_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for id in ["jo smith", "jo_smith", "amy"] {
            std::fs::create_dir(root.join(id)).unwrap();
            exe(&root.join(id).join("main.py"), "#!/usr/bin/env python3\n");
        }
        let f = discover(root, Defaults::default()).unwrap();
        let ids: Vec<&str> = f.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["amy", "jo smith", "jo_smith"]);
        assert!(f.entries[0].launch.is_ok());
        for e in &f.entries[1..] {
            let why = e.launch.as_ref().unwrap_err().to_string();
            assert!(
                why.contains("\"jo smith\"")
                    && why.contains("\"jo_smith\"")
                    && why.contains("jo_smith/"),
                "{why}"
            );
        }
        // The same message for both, whatever order they finish in.
        let message = |i: usize| f.entries[i].launch.as_ref().unwrap_err().to_string();
        assert_eq!(message(1), message(2));
    }

    #[test]
    fn shards_partition() {
        let all: Vec<u32> = (0..11).collect();
        let mut union: Vec<u32> = (1..=3)
            .flat_map(|k| Shard { index: k, count: 3 }.select(all.clone()))
            .collect();
        union.sort();
        assert_eq!(union, all);
        assert!("0/2".parse::<Shard>().is_err());
        assert!("3/2".parse::<Shard>().is_err());
        assert_eq!("2/2".parse::<Shard>(), Ok(Shard { index: 2, count: 2 }));
    }
}
