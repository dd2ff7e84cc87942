//! The task files compiled into the grader, so an installed `grader` works from any folder.
//! They are the files in the repository's `tasks/` folder at build time. A bundled task is chosen
//! by its number or by the `name` its file gives it (`--task 11` or `--task tcp-echo`).

/// (task number, file name, text) of every bundled task.
pub const BUNDLED_TASKS: &[(u32, &str, &str)] = &[
    (1, "task1.toml", include_str!("../../../tasks/task1.toml")),
    (2, "task2.toml", include_str!("../../../tasks/task2.toml")),
    (3, "task3.toml", include_str!("../../../tasks/task3.toml")),
    (4, "task4.toml", include_str!("../../../tasks/task4.toml")),
    (5, "task5.toml", include_str!("../../../tasks/task5.toml")),
    (6, "task6.toml", include_str!("../../../tasks/task6.toml")),
    (7, "task7.toml", include_str!("../../../tasks/task7.toml")),
    (
        11,
        "task11.toml",
        include_str!("../../../tasks/task11.toml"),
    ),
    (
        12,
        "task12.toml",
        include_str!("../../../tasks/task12.toml"),
    ),
    (
        13,
        "task13.toml",
        include_str!("../../../tasks/task13.toml"),
    ),
    (
        14,
        "task14.toml",
        include_str!("../../../tasks/task14.toml"),
    ),
    (
        15,
        "task15.toml",
        include_str!("../../../tasks/task15.toml"),
    ),
    (
        16,
        "task16.toml",
        include_str!("../../../tasks/task16.toml"),
    ),
    (
        21,
        "task21.toml",
        include_str!("../../../tasks/task21.toml"),
    ),
    (
        22,
        "task22.toml",
        include_str!("../../../tasks/task22.toml"),
    ),
    (
        31,
        "task31.toml",
        include_str!("../../../tasks/task31.toml"),
    ),
    (
        32,
        "task32.toml",
        include_str!("../../../tasks/task32.toml"),
    ),
];

/// The bundled spec of a task: (file name, text).
pub fn bundled_task(task: u32) -> Option<(&'static str, &'static str)> {
    BUNDLED_TASKS
        .iter()
        .find(|(n, _, _)| *n == task)
        .map(|(_, name, text)| (*name, *text))
}

/// The `name` a task file gives its task, read without loading the whole file.
fn declared_name(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct NameOnly {
        name: Option<String>,
    }
    toml::from_str::<NameOnly>(text).ok()?.name
}

/// The number of the bundled task named `name`.
pub fn bundled_task_named(name: &str) -> Option<u32> {
    BUNDLED_TASKS
        .iter()
        .find(|(_, _, text)| declared_name(text).as_deref() == Some(name))
        .map(|(n, _, _)| *n)
}

/// Every bundled task as (number, name if it has one).
pub fn bundled_task_names() -> Vec<(u32, Option<String>)> {
    BUNDLED_TASKS
        .iter()
        .map(|(n, _, text)| (*n, declared_name(text)))
        .collect()
}

/// Reads a `--task` value: a task number, or the name of a bundled task (task files in a
/// `--tasks-dir` are chosen by number).
pub fn parse_task_arg(value: &str) -> Result<u32, String> {
    if let Ok(n) = value.trim().parse::<u32>() {
        return Ok(n);
    }
    bundled_task_named(value.trim()).ok_or_else(|| {
        let known: Vec<String> = bundled_task_names()
            .into_iter()
            .map(|(n, name)| match name {
                Some(name) => format!("{n} ({name})"),
                None => n.to_string(),
            })
            .collect();
        format!(
            "no bundled task is named {value:?}: give a task number or one of the names: {}",
            known.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_chosen_by_number_or_by_its_files_name() {
        assert_eq!(parse_task_arg("3"), Ok(3));
        for (n, name) in bundled_task_names() {
            if let Some(name) = name {
                assert_eq!(parse_task_arg(&name), Ok(n), "{name}");
            }
        }
        let err = parse_task_arg("no-such-lab").unwrap_err();
        assert!(err.contains("give a task number"), "{err}");
    }

    #[test]
    fn bundled_names_are_unique() {
        let mut names: Vec<String> = bundled_task_names()
            .into_iter()
            .filter_map(|(_, n)| n)
            .collect();
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all);
    }
}
