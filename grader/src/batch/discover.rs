//! Finding the submissions in a batch folder, and how each one is started.
//!
//! The rule (README "Batch grading" repeats it):
//! - every non-hidden **subfolder** of the batch folder is one submission, and its name is the
//!   student id. It is started by, in order of preference:
//!   1. a `classchat.toml` inside it with `server = "..."` and/or `client = "..."` launch templates
//!      (run with the folder as working directory; `{dir}` is the folder); a role it leaves out
//!      uses the batch's `--server`/`--client` template, if any;
//!   2. the batch's `--server`/`--client` templates;
//!   3. the launch contract, on the executable named `submission` in the folder, else on the only
//!      executable file directly in it;
//! - every executable **file** directly in the batch folder is one submission too, with the file
//!   name without its extension as student id, started by the batch's templates or the launch
//!   contract; non-executable files (a README, a roster) are ignored and counted.
//!
//! Guarantees: discovery never runs student code; the result is sorted by student id; two
//! submissions with the same id are a usage error; different ids that share a report folder
//! once made safe as folder names (`jo smith`, `jo_smith`) are all refused as launch problems
//! (none is graded, so no record is ever written under another student's folder); a submission
//! that cannot be started (no executable, two candidates, a bad `classchat.toml`) becomes an
//! entry with a launch problem, which is reported for that student without stopping the others.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::report;

/// The per-submission launch file.
pub const LAUNCH_FILE: &str = "classchat.toml";

/// One submission found in the batch folder.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Student id: folder name, or file name without extension.
    pub id: String,
    /// The folder or file.
    pub path: PathBuf,
    /// How to start it, or why it cannot be started.
    pub launch: Result<LaunchPlan, String>,
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
}

/// A batch folder that cannot be graded at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// Not a readable folder.
    #[error("cannot read the batch folder {path}: {source}")]
    Io {
        /// Which folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Two submissions map to one student id.
    #[error("two submissions have the student id {id:?}: {a} and {b}; rename one")]
    DuplicateId {
        /// The id.
        id: String,
        /// First path.
        a: String,
        /// Second path.
        b: String,
    },
}

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Found {
    /// Submissions, sorted by id.
    pub entries: Vec<Entry>,
    /// Non-executable files directly in the batch folder (not submissions).
    pub ignored: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchFile {
    server: Option<String>,
    client: Option<String>,
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds the submissions in `dir`; `server`/`client` are the batch's default templates.
pub fn discover(
    dir: &Path,
    server: Option<&str>,
    client: Option<&str>,
) -> Result<Found, DiscoverError> {
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
            let launch = folder_plan(&path, server, client);
            found.entries.push(Entry {
                id: name,
                path,
                launch,
            });
        } else if is_executable_file(&path) {
            let id = Path::new(&name)
                .file_stem()
                .map_or(name.clone(), |s| s.to_string_lossy().into_owned());
            found.entries.push(Entry {
                id,
                launch: Ok(LaunchPlan {
                    target: path.clone(),
                    server: server.map(String::from),
                    client: client.map(String::from),
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
                a: w[0].path.display().to_string(),
                b: w[1].path.display().to_string(),
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
        let ids = group
            .iter()
            .map(|&i| format!("{:?} ({})", entries[i].id, entries[i].path.display()))
            .collect::<Vec<_>>()
            .join(" and ");
        let message = format!(
            "the student ids {ids} share the report folder {folder}/ (ids are made safe as folder names), so none of them is graded: rename all but one"
        );
        for i in group {
            entries[i].launch = Err(message.clone());
        }
    }
}

fn folder_plan(
    dir: &Path,
    server: Option<&str>,
    client: Option<&str>,
) -> Result<LaunchPlan, String> {
    let file = dir.join(LAUNCH_FILE);
    if file.exists() {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let lf: LaunchFile = toml::from_str(&text).map_err(|e| {
            format!(
                "{} is not a valid launch file (expected `server = \"...\"` and/or `client = \"...\"`): {}",
                file.display(),
                e.message()
            )
        })?;
        return Ok(LaunchPlan {
            target: dir.to_path_buf(),
            server: lf.server.or(server.map(String::from)),
            client: lf.client.or(client.map(String::from)),
        });
    }
    if server.is_some() || client.is_some() {
        return Ok(LaunchPlan {
            target: dir.to_path_buf(),
            server: server.map(String::from),
            client: client.map(String::from),
        });
    }
    let named = dir.join("submission");
    if is_executable_file(&named) {
        return Ok(LaunchPlan {
            target: named,
            server: None,
            client: None,
        });
    }
    let mut exes: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
                && is_executable_file(p)
        })
        .collect();
    exes.sort();
    match exes.len() {
        1 => Ok(LaunchPlan {
            target: exes.remove(0),
            server: None,
            client: None,
        }),
        0 => Err(format!(
            "no executable in {}: add {LAUNCH_FILE} with server/client templates, or an executable named `submission`",
            dir.display()
        )),
        _ => Err(format!(
            "{} executables in {} ({}): name the one to grade `submission`, or add {LAUNCH_FILE}",
            exes.len(),
            dir.display(),
            exes.iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
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

    fn exe(p: &Path, text: &str) {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
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

        let f = discover(root, None, Some("python3 {bin} {host} {port}")).unwrap();
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

        let f = discover(root, None, None).unwrap();
        assert_eq!(
            f.entries[1].launch.as_ref().unwrap().target,
            root.join("bob/main.py")
        );
        assert!(
            f.entries[3]
                .launch
                .as_ref()
                .unwrap_err()
                .contains("2 executables")
        );
    }

    #[test]
    fn ids_sharing_a_report_folder_are_all_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for id in ["jo smith", "jo_smith", "amy"] {
            std::fs::create_dir(root.join(id)).unwrap();
            exe(&root.join(id).join("main.py"), "#!/usr/bin/env python3\n");
        }
        let f = discover(root, None, None).unwrap();
        let ids: Vec<&str> = f.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["amy", "jo smith", "jo_smith"]);
        assert!(f.entries[0].launch.is_ok());
        for e in &f.entries[1..] {
            let why = e.launch.as_ref().unwrap_err();
            assert!(
                why.contains("\"jo smith\"")
                    && why.contains("\"jo_smith\"")
                    && why.contains("jo_smith/"),
                "{why}"
            );
        }
        // The same message for both, whatever order they finish in.
        assert_eq!(f.entries[1].launch, f.entries[2].launch);
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
