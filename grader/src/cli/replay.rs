//! `grader replay`: the grading a record describes, run again ([`grader::job::Job::from_record`]:
//! same task file, dialect, submission, templates, seed and isolation), with what changed since
//! (task file, grader version, submission content) and which verdicts differ.

use grader::audience::{self, View};
use grader::job::{Job, Settings};
use grader::report::console::Console;
use grader::report::record::{self, RecordError};
use grader::safe_text;
use grader::verdict::{GradeReport, fmt_points};

use super::CliError;
use super::args::ReplayArgs;

/// Runs `grader replay`.
pub(super) fn run(args: ReplayArgs) -> Result<u8, CliError> {
    // A refused record (its numbers disagree) still says how to regrade: the replay's score is
    // the one to believe.
    let rec = match record::read(&args.report) {
        Ok(rec) => rec,
        Err(e @ RecordError::Refused { .. }) => {
            say_err!(
                "warning: {}",
                safe_text::terminal_lines(&grader::error_chain::chain(&e))
            );
            e.into_refused().map(|(_, rec)| rec)?
        }
        Err(e) => return Err(e.into()),
    };
    let (r, p) = (&rec.report, &rec.provenance);
    let job = Job::from_record(&rec, Settings::recorded(&rec, args.out.clone()))?;
    let now = job.spec_hash();
    if now != r.spec_hash {
        say_err!(
            "warning: the task spec changed since this grading (recorded spec hash {}…, now {}…): the replay uses today's spec, so scores may differ",
            &r.spec_hash.get(..12).unwrap_or(&r.spec_hash),
            &now[..12]
        );
    }
    if r.grader_version != env!("CARGO_PKG_VERSION") {
        say_err!(
            "warning: recorded by grader {}, replayed by grader {}",
            r.grader_version,
            env!("CARGO_PKG_VERSION")
        );
    }
    if let (Some(then), Some(now)) = (&p.submission_hash, &job.provenance().submission_hash)
        && then != now
    {
        let path = p
            .submission_root
            .as_deref()
            .or(p.submission_abs.as_deref())
            .unwrap_or(&r.submission_path);
        say_err!(
            "warning: the submission at {path} changed since this grading (content hash differs)"
        );
    }
    say!(
        "Replaying {} task {} with seed {} (recorded score {}/{})",
        r.submission,
        r.task,
        r.seed,
        fmt_points(r.score),
        fmt_points(r.max_score)
    );
    let recorded = r.score;
    let view = View {
        audience: args.audience.into(),
        after_due: false,
    };
    let console = Console::new(args.format.into(), args.verbose);
    let (code, new) = super::run::grade(job, &args.out, &console, view, None)?;
    let changed = changed_verdicts(
        &audience::redact(r, &p.policies, view),
        &audience::redact(&new, &p.policies, view),
    );
    if (new.score - recorded).abs() > 1e-9 {
        say!(
            "The replay scored {} where the record has {}.",
            fmt_points(new.score),
            fmt_points(recorded)
        );
    } else {
        say!("The replay reproduced the recorded score.");
    }
    if !changed.is_empty() {
        say!("Verdicts that changed ({}):", changed.len());
        for lines in &changed {
            say!("{lines}");
        }
        say!(
            "Same program, same seed, another verdict: unless the submission or the task changed \
             (see the warnings above), a verdict that differs between runs points at a race in \
             the program (e.g. a reply sent before the state it reports was updated, or a \
             message split across two reads); replay it a few times to see how often."
        );
    }
    Ok(code)
}

/// Each scenario whose status differs between the recorded and the replayed report (both as the
/// reader may see them), with both messages: one text (of three lines) per scenario.
fn changed_verdicts(recorded: &GradeReport, replayed: &GradeReport) -> Vec<String> {
    let describe = |o: Option<&grader::verdict::ScenarioOutcome>| match o {
        None => "not run".to_string(),
        Some(o) if o.message.is_empty() => o.status.label().to_string(),
        Some(o) => format!(
            "{}: {}",
            o.status.label(),
            safe_text::terminal_lines(&o.message).replace('\n', "\n      ")
        ),
    };
    let find = |r: &GradeReport, name: &str| r.scenarios.iter().find(|o| o.name == name).cloned();
    let mut names: Vec<&str> = recorded.scenarios.iter().map(|o| o.name.as_str()).collect();
    for o in &replayed.scenarios {
        if !names.contains(&o.name.as_str()) {
            names.push(&o.name);
        }
    }
    let mut lines = Vec::new();
    for name in names {
        let (before, after) = (find(recorded, name), find(replayed, name));
        if before.as_ref().map(|o| o.status) == after.as_ref().map(|o| o.status) {
            continue;
        }
        lines.push(format!(
            "  {}\n    recorded: {}\n    replay:   {}",
            safe_text::terminal(name),
            describe(before.as_ref()),
            describe(after.as_ref())
        ));
    }
    lines
}
