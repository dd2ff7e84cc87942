//! `grader batch`: a class graded in one run, one folder per task or several folders of one
//! task (see [`grader::batch`]); per-submission reports, a summary, and exports at the end.

use std::collections::BTreeMap;

use grader::audience::View;
use grader::batch::{self, Class, Disposition};
use grader::engine;
use grader::export;
use grader::job::{ClassTask, Settings};
use grader::launch;
use grader::net::ports::PortPool;
use grader::report;
use grader::safe_text;
use grader::spec::Role;

use super::args::BatchArgs;
use super::export::read_records;
use super::{
    CliError, EXIT_BELOW, EXIT_ERROR, EXIT_PASS, interrupted, random_seed, resolve_isolation,
};

/// Runs `grader batch`.
pub(super) fn run(args: BatchArgs) -> Result<u8, CliError> {
    let dialect = args.grading.dialect.dialect().map_err(CliError::Usage)?;
    // A grading runs all its scenarios at once: the batch admits gradings by the room on the
    // CPU (see batch::admission), and waiting scenarios cost none.
    let settings = args.grading.settings(&args.out, None);
    let launch_args = &args.launch;
    // Each task loaded once (a task named twice, for two folders, too).
    let mut tasks: BTreeMap<u32, ClassTask> = BTreeMap::new();
    for (task, _) in &args.classes {
        if !tasks.contains_key(task) {
            tasks.insert(*task, ClassTask::load(&settings, *task, dialect.clone())?);
        }
    }
    for (role, t) in [
        (Role::Server, &launch_args.server),
        (Role::Client, &launch_args.client),
    ] {
        if let Some(t) = t {
            launch::CommandTemplate::parse(role, t)?;
        }
    }
    if let Some(b) = &launch_args.build {
        launch::BuildCommand::parse(b)?;
    }
    for line in &launch_args.stdin_prelude {
        launch::check_prelude_line(line, "--stdin-prelude line")?;
    }
    if !launch_args.roles.is_empty() {
        for t in tasks.values() {
            launch::only_roles(&t.spec, Some(&launch_args.roles))?;
        }
    }
    // Exporters first: a missing Canvas roster is a usage error before any grading, not after.
    let export_options = args.canvas.options("student_id".into());
    let exporters = args
        .export
        .iter()
        .map(|f| export::exporter((*f).into(), &export_options))
        .collect::<Result<Vec<_>, _>>()?;
    let defaults = batch::discover::Defaults {
        server: launch_args.server.as_deref(),
        client: launch_args.client.as_deref(),
        build: launch_args.build.as_deref(),
        stdin_prelude: (!launch_args.stdin_prelude.is_empty())
            .then_some(&launch_args.stdin_prelude[..]),
        client_stdin: launch_args.client_stdin.map(Into::into),
        roles: (!launch_args.roles.is_empty()).then_some(&launch_args.roles[..]),
    };
    let mut classes: Vec<Class> = Vec::new();
    let (mut all, mut count) = (0, 0);
    for (task, dir) in &args.classes {
        let found = batch::discover(dir, defaults)?;
        // One student id once per task, across folders.
        let class_task = &tasks[task];
        for entry in &found.entries {
            if let Some(other) = classes
                .iter()
                .filter(|c| c.task.spec.task == *task)
                .flat_map(|c| &c.entries)
                .find(|e| e.id == entry.id)
            {
                return Err(CliError::Usage(format!(
                    "two submissions for task {task} have the student id {:?}: {} and {}; rename one",
                    entry.id,
                    other.path.display(),
                    entry.path.display()
                )));
            }
        }
        let mut entries = found.entries;
        all += entries.len();
        if let Some(shard) = args.shard {
            entries = shard.select(entries);
        }
        count += entries.len();
        if !found.ignored.is_empty() {
            say!(
                "Ignored {} non-executable file(s) in {} (not submissions): {}",
                found.ignored.len(),
                dir.display(),
                found
                    .ignored
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| safe_text::terminal(&n.to_string_lossy()).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        classes.push(Class {
            task: class_task.clone(),
            entries,
        });
    }
    report::check_writable(&args.out)?;
    let jobs = args
        .jobs
        .unwrap_or_else(batch::admission::default_bound)
        .max(1);
    let what = match &tasks.values().collect::<Vec<_>>()[..] {
        [one] => format!("task {} ({})", one.spec.task, one.spec.title),
        several => format!(
            "tasks {}",
            several
                .iter()
                .map(|t| t.spec.task.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    say!(
        "Batch: {what} · {count} submission(s){} · up to {jobs} at once, started as the CPU has room · reports in {}",
        match args.shard {
            Some(s) => format!(" (shard {}/{} of {all})", s.index, s.count),
            None => String::new(),
        },
        args.out.display()
    );
    let view = View {
        audience: args.audience.into(),
        after_due: args.after_due,
    };
    let settings = Settings {
        isolation: resolve_isolation(args.grading.isolation.into())?,
        ..settings
    };
    let config = batch::Config {
        settings,
        jobs,
        force: args.force,
        seed: args.seed,
        view,
        // The engine ends a grading by its limit plus its wind-down; this is the batch's last
        // resort should the grader itself hang (an infrastructure error, retried).
        timeout: args
            .grading
            .time_limit
            .saturating_add(2 * engine::WIND_DOWN),
    };
    let progress = batch::progress::Progress::new(count, !args.no_progress);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let pool = PortPool::new(random_seed());
    let started = std::time::Instant::now();
    let summary = rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            biased;
            sig = stop => Err(CliError::BatchInterrupted(sig)),
            s = batch::run(&config, classes, &pool, &progress, random_seed) => Ok(s),
        }
    });
    progress.finish();
    let summary = summary?;
    let graded = summary.count(|o| matches!(o, Disposition::Graded { .. }));
    let skipped = summary.count(|o| matches!(o, Disposition::UpToDate { .. }));
    let not_started = summary.count(|o| matches!(o, Disposition::NotStarted(_)));
    let infra = summary.count(|o| matches!(o, Disposition::Infrastructure(_)));
    let full = summary.count(|o| o.has_score() && !o.lost_points());
    say!(
        "Done in {:.1}s: {graded} graded, {skipped} up to date (skipped), {not_started} not started, {infra} infrastructure failures · {full} with full marks",
        started.elapsed().as_secs_f64()
    );
    for (id, o) in &summary.results {
        if matches!(
            o,
            Disposition::NotStarted(_) | Disposition::Infrastructure(_)
        ) {
            say!("  {}", batch::progress::line(id, o));
        }
    }
    // The class's warnings (never-graded students, ...) are every format's: said once.
    let mut warned: Vec<String> = Vec::new();
    for exporter in &exporters {
        let records = read_records(&args.out, &args.task, None)?;
        let class = export::Class::with_student_filter(records, view, false);
        for w in exporter.warnings(&class) {
            if !warned.contains(&w) {
                say_err!("warning: {}", safe_text::terminal_lines(&w));
                warned.push(w);
            }
        }
        if exporter.per_student() {
            let mut paths = Vec::new();
            for student in &class.students {
                let one = export::Class {
                    students: vec![student.clone()],
                    not_graded: Vec::new(),
                    ..class.clone()
                };
                let path = args
                    .out
                    .join(&student.folder)
                    .join(exporter.default_file_name());
                report::write_atomic(&path, &exporter.render(&one)?)?;
                paths.push(path.display().to_string());
            }
            const SHOWN: usize = 3;
            say!(
                "Exported {} ({}): {}{}",
                exporter.format(),
                exporter.covers(&class),
                paths
                    .iter()
                    .take(SHOWN)
                    .map(|p| safe_text::terminal(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
                match paths.len().saturating_sub(SHOWN) {
                    0 => String::new(),
                    more => format!(" and {more} more in {}", args.out.display()),
                }
            );
        } else {
            let path = args.out.join(exporter.default_file_name());
            report::write_atomic(&path, &exporter.render(&class)?)?;
            say!(
                "Exported {} ({}): {}",
                exporter.format(),
                exporter.covers(&class),
                path.display()
            );
        }
    }
    Ok(if infra > 0 {
        EXIT_ERROR
    } else if not_started > 0 {
        EXIT_BELOW
    } else {
        EXIT_PASS
    })
}
