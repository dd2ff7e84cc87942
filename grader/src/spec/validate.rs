//! Semantic checks a task file must pass beyond its TOML shape: unique names, sane points,
//! exactly one body per `send`, `expect` and `expect_not`, valid regexes and hex, connections
//! opened before use (connections opened inside `parallel` stay usable after it, as `name` in a
//! later `parallel` or as `name#<i>` elsewhere; a copy uses only its own), steps that fit the
//! scenario's role, no process stream read inside `parallel`. Which steps may stand inside
//! `parallel` at all is said by the types (`CopyStep`); every check matches every step kind.

use std::collections::HashSet;

use super::{
    ConnStep, CopyStep, DatagramStep, GroupStep, ProcessStep, Role, Scenario, Step, Target,
    TaskSpec,
};

/// Which value a validation error is about (resolved to a line:column by the loader).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Location {
    Task,
    ScenarioName(usize),
    ScenarioPoints(usize),
    /// Scenario index, top-level step index.
    Step(usize, usize),
}

type Invalid = (Location, String);

/// Validates `spec` (protocol steps already expanded); `origins[i][j]` is the written step the
/// expanded top-level step `j` of scenario `i` came from, where errors are located.
pub(crate) fn validate(spec: &TaskSpec, origins: &[Vec<usize>]) -> Result<(), Invalid> {
    if spec.task == 0 {
        return Err((Location::Task, "task numbers start at 1".into()));
    }
    if let Some(name) = &spec.name {
        let shape = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if name.is_empty()
            || !name.chars().all(shape)
            || name.starts_with('-')
            || name.chars().all(|c| c.is_ascii_digit())
        {
            return Err((
                Location::Task,
                format!(
                    "the task name {name:?} must be lowercase letters, digits and '-' (like \"tcp-echo\"), not a number"
                ),
            ));
        }
    }
    if spec.scenarios.is_empty() {
        return Err((Location::Task, "the task has no [[scenario]]".into()));
    }
    let mut names = HashSet::new();
    for (i, sc) in spec.scenarios.iter().enumerate() {
        if sc.name.trim().is_empty() {
            return Err((
                Location::ScenarioName(i),
                "a scenario name cannot be empty".into(),
            ));
        }
        if !names.insert(sc.name.as_str()) {
            return Err((
                Location::ScenarioName(i),
                format!(
                    "duplicate scenario name {:?}: names must be unique",
                    sc.name
                ),
            ));
        }
        if !sc.points.is_finite() || sc.points < 0.0 {
            return Err((
                Location::ScenarioPoints(i),
                format!(
                    "scenario {:?} has points = {}: points must be 0 or more",
                    sc.name, sc.points
                ),
            ));
        }
        if sc.steps.is_empty() {
            return Err((
                Location::ScenarioName(i),
                format!("scenario {:?} has no steps", sc.name),
            ));
        }
        let mut open = HashSet::new();
        let mut state = State::default();
        for (j, step) in sc.steps.iter().enumerate() {
            let j = origins.get(i).and_then(|o| o.get(j)).copied().unwrap_or(j);
            check_placeholders(step, false, false).map_err(|m| {
                (
                    Location::Step(i, j),
                    format!("scenario {:?}, step {}: {m}", sc.name, j + 1),
                )
            })?;
            check_step(sc, step, &mut open, &mut state).map_err(|m| {
                (
                    Location::Step(i, j),
                    format!("scenario {:?}, step {}: {m}", sc.name, j + 1),
                )
            })?;
        }
    }
    Ok(())
}

#[derive(Default, Clone)]
struct State {
    server: bool,
    listener: bool,
    client: bool,
    /// A grader UDP socket is open (a client scenario's client may be pointed at it).
    udp: bool,
}

/// A step at the top level or in a top-level `repeat`.
fn check_step(
    sc: &Scenario,
    step: &Step,
    open: &mut HashSet<String>,
    state: &mut State,
) -> Result<(), String> {
    match step {
        Step::Process(s) => check_process_step(sc, s, open, state)?,
        Step::Conn(s) => check_conn_step(s, open, state, "")?,
        Step::Datagram(s) => check_datagram_step(sc, s, open, state)?,
        Step::Group(GroupStep::Parallel {
            count,
            steps,
            burst,
            ..
        }) => {
            if *count == 0 || *count > 2000 {
                return Err(format!("parallel count {count} must be between 1 and 2000"));
            }
            if *burst {
                if !state.server {
                    return Err("`burst` pauses the server: start it first".into());
                }
                if !matches!(
                    steps.first(),
                    Some(CopyStep::Conn(ConnStep::Connect { .. }))
                ) {
                    return Err("with `burst`, each copy's first step must be a `connect`".into());
                }
            }
            let mut inner = open.clone();
            for s in steps {
                check_copy_step(s, &mut inner, state)?;
            }
            // The copies' connections stay open after the group: `name#` for a later group,
            // `name#<i>` for any other step.
            let new: Vec<String> = inner.difference(open).cloned().collect();
            for name in new {
                if let Some(base) = name.strip_suffix('#') {
                    open.extend((0..*count).map(|i| format!("{base}#{i}")));
                }
                open.insert(name);
            }
        }
        Step::Group(GroupStep::Repeat { count, steps }) => {
            check_repeat_count(*count)?;
            for s in steps {
                check_step(sc, s, open, state)?;
            }
        }
        Step::Protocol(p) => {
            return Err(format!(
                "`{}` was not expanded (a grader bug: protocol steps are expanded when the file is loaded)",
                p.kind()
            ));
        }
    }
    Ok(())
}

/// A step of a `parallel` copy: connection names get the copy's `#` suffix.
fn check_copy_step(
    step: &CopyStep,
    open: &mut HashSet<String>,
    state: &State,
) -> Result<(), String> {
    match step {
        CopyStep::Conn(s) => check_conn_step(s, open, state, "#"),
        CopyStep::Repeat { count, steps } => {
            check_repeat_count(*count)?;
            steps
                .iter()
                .try_for_each(|s| check_copy_step(s, open, state))
        }
        CopyStep::Protocol(p) => Err(format!(
            "`{}` was not expanded (a grader bug: protocol steps are expanded when the file is loaded)",
            p.kind()
        )),
    }
}

fn check_repeat_count(count: u32) -> Result<(), String> {
    if count == 0 || count > 10_000 {
        return Err(format!("repeat count {count} must be between 1 and 10000"));
    }
    Ok(())
}

/// A step on the scenario's processes or the grader's listener (top level or `repeat` only).
fn check_process_step(
    sc: &Scenario,
    step: &ProcessStep,
    open: &mut HashSet<String>,
    state: &mut State,
) -> Result<(), String> {
    match step {
        ProcessStep::StartServer { .. } => {
            if sc.role != Role::Server {
                return Err("`start_server` belongs in a scenario with role = \"server\"".into());
            }
            state.server = true;
        }
        ProcessStep::Listen {} => {
            if sc.role != Role::Client {
                return Err("`listen` belongs in a scenario with role = \"client\"".into());
            }
            state.listener = true;
        }
        ProcessStep::StartClient { refused, .. } => {
            if sc.role != Role::Client {
                return Err("`start_client` belongs in a scenario with role = \"client\"".into());
            }
            if !refused && !state.listener && !state.udp {
                return Err(
                    "`start_client` needs a `listen` or `udp_socket` step before it (or refused = true)".into(),
                );
            }
            state.client = true;
        }
        ProcessStep::Accept { conn, .. } => {
            if !state.listener {
                return Err("`accept` needs a `listen` step before it".into());
            }
            open.insert(conn.clone());
        }
        ProcessStep::Type { .. } | ProcessStep::CloseStdin {} => {
            if !state.client {
                return Err(format!(
                    "`{}` needs a `start_client` step before it",
                    step.kind()
                ));
            }
        }
        ProcessStep::ExpectExit { process, .. }
        | ProcessStep::ExpectRunning { process, .. }
        | ProcessStep::ExpectNoTraceback { process, .. }
        | ProcessStep::ExpectConnectAttempt { process, .. } => check_process(*process, state)?,
        ProcessStep::ExpectCpuBelow {
            process,
            max_percent,
            window,
            ..
        } => {
            check_process(*process, state)?;
            if !(0.0..=10_000.0).contains(max_percent) {
                return Err(format!("max_percent = {max_percent} is out of range"));
            }
            if window.0.is_zero() {
                return Err("the CPU window must be longer than 0s".into());
            }
        }
        ProcessStep::EndIfExited { process, .. } => check_process(*process, state)?,
    }
    Ok(())
}

/// A step on one connection: `suffix` is `""` at the top level, `#` inside `parallel` (where a
/// connection name stands for the copy's own `name#<i>` and process streams cannot be read).
fn check_conn_step(
    step: &ConnStep,
    open: &mut HashSet<String>,
    state: &State,
    suffix: &str,
) -> Result<(), String> {
    let need_conn = |open: &HashSet<String>, c: &str| conn_is_open(open, c, suffix);
    if suffix == "#"
        && let Some(Target::Stream(_)) = step.target()
    {
        return Err(format!(
            "`{}` on a process stream cannot be used inside `parallel`: the copies share the processes' output, so only connections can be read there (put it before or after the group)",
            step.kind()
        ));
    }
    match step {
        ConnStep::Connect { conn, .. } => {
            if !state.server {
                return Err("`connect` needs a `start_server` step before it".into());
            }
            open.insert(format!("{conn}{suffix}"));
        }
        ConnStep::Send { conn, .. } => {
            need_conn(open, conn)?;
            let body = step
                .send_body()
                .ok_or("`send` needs exactly one of `text`, `line`, `hex` or `random`")?;
            if let super::SendBody::Hex(h) = &body {
                check_hex(h)?;
            }
            if let super::SendBody::Random(n) = body
                && !(1..=super::template::MAX_PAYLOAD).contains(&n)
            {
                return Err(format!(
                    "`random = {n}`: send from 1 to {} bytes",
                    super::template::MAX_PAYLOAD
                ));
            }
        }
        ConnStep::ExpectBytes { on, hex, echo, .. } => {
            need_conn(open, on)?;
            match (hex, echo) {
                (Some(h), false) => check_hex(h)?,
                (None, true) => {}
                _ => {
                    return Err(
                        "`expect_bytes` needs exactly one of `hex` and `echo = true`".into(),
                    );
                }
            }
        }
        ConnStep::Close { conn } | ConnStep::Abort { conn } | ConnStep::WaitRead { conn, .. } => {
            need_conn(open, conn)?
        }
        ConnStep::Expect { on, .. } => {
            check_target(on, open, state, suffix)?;
            check_expectation(step)?;
        }
        ConnStep::ExpectNot { on, window, .. } => {
            check_target(on, open, state, suffix)?;
            check_expectation(step)?;
            if window.0.is_zero() {
                return Err("the `expect_not` window must be longer than 0s".into());
            }
        }
        ConnStep::ExpectSilence { on, .. } => check_target(on, open, state, suffix)?,
        ConnStep::ExpectClosed { on, .. } => need_conn(open, on)?,
        ConnStep::ExpectHttp {
            on,
            status,
            end_if_closed,
            ..
        } => {
            need_conn(open, on)?;
            if let Some(s) = status
                && !(100..=599).contains(s)
            {
                return Err(format!("status = {s} is not an HTTP status code (100-599)"));
            }
            if *end_if_closed && suffix == "#" {
                return Err("`end_if_closed` cannot be used inside `parallel`".into());
            }
        }
    }
    Ok(())
}

/// A step on a grader-side UDP socket (top level or `repeat` only).
fn check_datagram_step(
    sc: &Scenario,
    step: &DatagramStep,
    open: &mut HashSet<String>,
    state: &mut State,
) -> Result<(), String> {
    match step {
        DatagramStep::UdpSocket { sock } => {
            if sc.role == Role::Client && state.client && !state.udp {
                return Err(
                    "in a client scenario the first `udp_socket` (the server the client is pointed at) must come before `start_client`".into(),
                );
            }
            state.udp = true;
            open.insert(format!("udp:{sock}"));
        }
        DatagramStep::SendDatagram { sock, .. } => {
            udp_is_open(open, sock)?;
            if sc.role == Role::Server && !state.server {
                return Err("`send_datagram` needs a `start_server` step before it".into());
            }
            let body = step
                .send_body()
                .ok_or("`send_datagram` needs exactly one of `text`, `line` or `hex`")?;
            if let super::SendBody::Hex(h) = body {
                let clean: String = h.split_whitespace().collect();
                if !clean.len().is_multiple_of(2) || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!("`hex = {h:?}` is not an even number of hex digits"));
                }
            }
        }
        DatagramStep::ExpectDatagram { on, .. } => {
            udp_is_open(open, on)?;
            match step.expectation() {
                Some(super::Expectation::Regex(r)) => {
                    regex::Regex::new(&r).map_err(|e| format!("invalid regex {r:?}: {e}"))?;
                }
                Some(_) => {}
                None => {
                    return Err("`expect_datagram` needs exactly one of `any = true`, `contains`, `regex` or `exact`".into());
                }
            }
        }
        DatagramStep::ExpectNoDatagram { on, window, .. } => {
            udp_is_open(open, on)?;
            if window.0.is_zero() {
                return Err("the `expect_no_datagram` window must be longer than 0s".into());
            }
        }
    }
    Ok(())
}

/// Checks the placeholders of every text field of a step (and of the steps inside it).
fn check_placeholders(step: &Step, in_parallel: bool, in_repeat: bool) -> Result<(), String> {
    match step {
        Step::Process(s) => process_placeholders(s, in_parallel, in_repeat),
        Step::Conn(s) => conn_placeholders(s, in_parallel, in_repeat),
        Step::Datagram(s) => datagram_placeholders(s, in_parallel, in_repeat),
        Step::Group(GroupStep::Parallel { steps, .. }) => steps
            .iter()
            .try_for_each(|s| copy_placeholders(s, true, in_repeat)),
        Step::Group(GroupStep::Repeat { steps, .. }) => steps
            .iter()
            .try_for_each(|s| check_placeholders(s, in_parallel, true)),
        // Expanded before validation (`check_step` reports one that was not).
        Step::Protocol(_) => Ok(()),
    }
}

/// [`check_placeholders`] for a step of a `parallel` copy.
fn copy_placeholders(step: &CopyStep, in_parallel: bool, in_repeat: bool) -> Result<(), String> {
    match step {
        CopyStep::Conn(s) => conn_placeholders(s, in_parallel, in_repeat),
        CopyStep::Repeat { steps, .. } => steps
            .iter()
            .try_for_each(|s| copy_placeholders(s, in_parallel, true)),
        CopyStep::Protocol(_) => Ok(()),
    }
}

/// Checks one template text where `{i}` (in a copy) and `{j}` (in a repeat) may be used.
fn placeholder_check(in_parallel: bool, in_repeat: bool) -> impl Fn(&str) -> Result<(), String> {
    move |t| super::template::check(t, in_parallel, in_repeat).map_err(|e| e.to_string())
}

fn process_placeholders(
    step: &ProcessStep,
    in_parallel: bool,
    in_repeat: bool,
) -> Result<(), String> {
    let check = placeholder_check(in_parallel, in_repeat);
    match step {
        ProcessStep::StartClient { args, .. } => args.iter().try_for_each(|a| check(a)),
        ProcessStep::Type { line, paste } => {
            // In a paste, `{j}` numbers the pasted lines.
            placeholder_check(in_parallel, in_repeat || paste.is_some())(line)?;
            if let Some(n) = paste
                && !(1..=1000).contains(n)
            {
                return Err(format!(
                    "`paste = {n}`: type between 1 and 1000 lines at once"
                ));
            }
            Ok(())
        }
        ProcessStep::StartServer { .. }
        | ProcessStep::Listen {}
        | ProcessStep::Accept { .. }
        | ProcessStep::CloseStdin {}
        | ProcessStep::ExpectExit { .. }
        | ProcessStep::ExpectRunning { .. }
        | ProcessStep::ExpectNoTraceback { .. }
        | ProcessStep::ExpectConnectAttempt { .. }
        | ProcessStep::EndIfExited { .. }
        | ProcessStep::ExpectCpuBelow { .. } => Ok(()),
    }
}

fn conn_placeholders(step: &ConnStep, in_parallel: bool, in_repeat: bool) -> Result<(), String> {
    let check = placeholder_check(in_parallel, in_repeat);
    let json_strings = |j: &Option<std::collections::BTreeMap<String, super::JsonPredicate>>| {
        j.iter()
            .flat_map(|m| m.values())
            .filter_map(|p| match p {
                super::JsonPredicate::Equals(serde_json::Value::String(s)) => Some(s.clone()),
                super::JsonPredicate::Op(op) => op.contains.clone(),
                super::JsonPredicate::Equals(_) => None,
            })
            .collect::<Vec<_>>()
    };
    match step {
        ConnStep::Send { text, line, .. } => text.iter().chain(line).try_for_each(|t| check(t)),
        ConnStep::Expect {
            contains,
            exact,
            json,
            ..
        }
        | ConnStep::ExpectNot {
            contains,
            exact,
            json,
            ..
        } => contains
            .iter()
            .chain(exact)
            .cloned()
            .chain(json_strings(json))
            .try_for_each(|t| check(&t)),
        ConnStep::ExpectHttp { body_contains, .. } => {
            body_contains.iter().try_for_each(|t| check(t))
        }
        ConnStep::Connect { .. }
        | ConnStep::WaitRead { .. }
        | ConnStep::Close { .. }
        | ConnStep::Abort { .. }
        | ConnStep::ExpectSilence { .. }
        | ConnStep::ExpectBytes { .. }
        | ConnStep::ExpectClosed { .. } => Ok(()),
    }
}

fn datagram_placeholders(
    step: &DatagramStep,
    in_parallel: bool,
    in_repeat: bool,
) -> Result<(), String> {
    let check = placeholder_check(in_parallel, in_repeat);
    match step {
        DatagramStep::SendDatagram { text, line, .. } => {
            text.iter().chain(line).try_for_each(|t| check(t))
        }
        DatagramStep::ExpectDatagram {
            contains, exact, ..
        } => contains.iter().chain(exact).try_for_each(|t| check(t)),
        DatagramStep::ExpectNoDatagram { contains, .. } => {
            contains.iter().try_for_each(|t| check(t))
        }
        DatagramStep::UdpSocket { .. } => Ok(()),
    }
}

/// A `hex` field: an even number of hex digits (white space between them allowed).
fn check_hex(h: &str) -> Result<(), String> {
    let clean: String = h.split_whitespace().collect();
    if !clean.len().is_multiple_of(2) || !clean.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("`hex = {h:?}` is not an even number of hex digits"));
    }
    Ok(())
}

fn check_target(
    on: &Target,
    open: &HashSet<String>,
    state: &State,
    suffix: &str,
) -> Result<(), String> {
    match on {
        Target::Conn(c) => conn_is_open(open, c, suffix),
        Target::Stream(super::StreamRef::Stdout) if !state.client => {
            Err("`stdout` refers to the client, but no `start_client` came before".into())
        }
        Target::Stream(super::StreamRef::Output) if !state.client => {
            Err("`client.output` refers to the client, but no `start_client` came before".into())
        }
        Target::Stream(super::StreamRef::Stderr(p)) => check_process(*p, state),
        Target::Stream(super::StreamRef::ServerStdout | super::StreamRef::ServerOutput) => {
            check_process(super::Process::Server, state)
        }
        Target::Stream(_) => Ok(()),
    }
}

fn udp_is_open(open: &HashSet<String>, sock: &str) -> Result<(), String> {
    if open.contains(&format!("udp:{sock}")) {
        Ok(())
    } else {
        Err(format!(
            "UDP socket {sock:?} is used before a `udp_socket` step opened it"
        ))
    }
}

fn conn_is_open(open: &HashSet<String>, c: &str, suffix: &str) -> Result<(), String> {
    if open.contains(&format!("{c}{suffix}")) {
        Ok(())
    } else if suffix.is_empty() || !open.contains(c) {
        Err(format!(
            "connection {c:?} is used before a `connect` or `accept` opened it"
        ))
    } else {
        // The engine hands a copy only its own connections (`name#<i>`).
        Err(format!(
            "connection {c:?} was opened outside `parallel`: a copy can use only the connections it opens itself (or that the same copy of an earlier `parallel` opened)"
        ))
    }
}

/// The body of an `expect` or `expect_not`: exactly one kind, compilable regexes, well-formed
/// JSON predicates.
fn check_expectation(step: &ConnStep) -> Result<(), String> {
    let kinds = if matches!(step, ConnStep::ExpectNot { .. }) {
        "`expect_not` needs exactly one of `contains`, `regex`, `exact` or `json`"
    } else {
        "`expect` needs exactly one of `any = true`, `contains`, `regex`, `exact` or `json` (or only `timestamp`)"
    };
    if let Some(ts) = step.timestamp() {
        if matches!(step.expectation(), Some(super::Expectation::Json(_))) {
            return Err("`timestamp` qualifies a line: use it with `contains`, `regex`, `exact`, `any` or alone, not with `json`".into());
        }
        super::TimestampCheck::new(ts).map_err(|e| e.to_string())?;
    }
    match step.expectation().ok_or(kinds)? {
        super::Expectation::Regex(r) => {
            regex::Regex::new(&r).map_err(|e| format!("invalid regex {r:?}: {e}"))?;
        }
        super::Expectation::Json(preds) => {
            for (field, p) in &preds {
                if let super::JsonPredicate::Op(op) = p {
                    let n = [
                        op.contains.is_some(),
                        op.regex.is_some(),
                        op.present.is_some(),
                    ]
                    .iter()
                    .filter(|b| **b)
                    .count();
                    if n != 1 {
                        return Err(format!(
                            "json predicate for {field:?} needs exactly one of contains, regex, present"
                        ));
                    }
                    if let Some(r) = &op.regex {
                        regex::Regex::new(r).map_err(|e| format!("invalid regex {r:?}: {e}"))?;
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_process(p: super::Process, state: &State) -> Result<(), String> {
    let ok = match p {
        super::Process::Server => state.server,
        super::Process::Client => state.client,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("the {p} is referred to before it was started"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SpecError, SpecSource, parse};

    fn check(steps: &str, role: &str) -> Result<(), String> {
        let text = format!(
            "task = 9\ntitle = \"t\"\n[[scenario]]\nname = \"s\"\npoints = 1\nrole = \"{role}\"\nsteps = [\n{steps}\n]\n"
        );
        match parse(&text, SpecSource::Bundled("t.toml")) {
            Ok(_) => Ok(()),
            Err(SpecError::Invalid { message, .. }) => Err(message),
            Err(e) => Err(crate::error_chain::chain(&e)),
        }
    }

    #[test]
    fn expect_http_is_checked() {
        let open = r#"{ do = "start_server" }, { do = "connect", conn = "a" },"#;
        check(
            &format!("{open}\n{{ do = \"expect_http\", on = \"a\", status = 200, headers = {{ \"Content-Type\" = \"text/html\" }}, body_contains = \"hi {{nonce}}\", end_if_closed = true }}"),
            "server",
        )
        .unwrap();
        let e = check(
            &format!("{open}\n{{ do = \"expect_http\", on = \"a\", status = 99 }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("not an HTTP status code"), "{e}");
        let e = check(
            r#"{ do = "start_server" }, { do = "parallel", count = 2, steps = [{ do = "connect", conn = "c" }, { do = "expect_http", on = "c", end_if_closed = true }] }"#,
            "server",
        )
        .unwrap_err();
        assert!(e.contains("inside `parallel`"), "{e}");
        let e = check(
            r#"{ do = "start_server" }, { do = "expect_http", on = "b" }"#,
            "server",
        )
        .unwrap_err();
        assert!(e.contains("before a `connect`"), "{e}");
        let e = check(
            &format!("{open}\n{{ do = \"expect_http\", on = \"a\", body_contains = \"{{i}}\" }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("{i}"), "{e}");
        let e = check(
            &format!("{open}\n{{ do = \"expect_http\", on = \"a\", status = 200, bogus = 1 }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn a_task_name_is_a_word_not_a_number() {
        let with = |name: &str| {
            let text = format!(
                "task = 9\nname = \"{name}\"\ntitle = \"t\"\n[[scenario]]\nname = \"s\"\npoints = 1\nrole = \"server\"\nsteps = [{{ do = \"start_server\" }}]\n"
            );
            parse(&text, SpecSource::Bundled("t.toml")).map(|s| s.name)
        };
        assert_eq!(with("tcp-echo").unwrap().as_deref(), Some("tcp-echo"));
        for bad in ["12", "TCP", "-x", "", "a b"] {
            assert!(with(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn parallel_connections_stay_open_after_the_group() {
        let group = r#"{ do = "start_server" },
            { do = "parallel", count = 3, steps = [{ do = "connect", conn = "c" }] },"#;
        check(&format!("{group}\n{{ do = \"parallel\", count = 3, steps = [{{ do = \"send\", conn = \"c\", line = \"x\" }}] }}"), "server").unwrap();
        check(
            &format!("{group}\n{{ do = \"close\", conn = \"c#2\" }}"),
            "server",
        )
        .unwrap();
        let e = check(
            &format!("{group}\n{{ do = \"close\", conn = \"c#3\" }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("before a `connect`"), "{e}");
        assert!(
            check(
                &format!("{group}\n{{ do = \"close\", conn = \"c\" }}"),
                "server"
            )
            .is_err()
        );
    }

    #[test]
    fn expect_not_needs_one_body_and_a_window() {
        let start = r#"{ do = "start_server" }, { do = "connect", conn = "a" },"#;
        check(
            &format!(
                "{start} {{ do = \"expect_not\", on = \"a\", contains = \"x\", for = \"1s\" }}"
            ),
            "server",
        )
        .unwrap();
        let e = check(
            &format!("{start} {{ do = \"expect_not\", on = \"a\", for = \"1s\" }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("exactly one of `contains`"), "{e}");
        let e = check(
            &format!("{start} {{ do = \"expect_not\", on = \"a\", regex = \"(\", for = \"1s\" }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("invalid regex"), "{e}");
        let e = check(
            &format!(
                "{start} {{ do = \"expect_not\", on = \"a\", contains = \"x\", for = \"0s\" }}"
            ),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("longer than 0s"), "{e}");
    }

    #[test]
    fn client_output_needs_a_client() {
        let ok = r#"{ do = "listen" }, { do = "start_client" }, { do = "expect", on = "client.output", any = true }"#;
        check(ok, "client").unwrap();
        let e = check(
            r#"{ do = "listen" }, { do = "expect", on = "client.output", any = true }"#,
            "client",
        )
        .unwrap_err();
        assert!(e.contains("client.output"), "{e}");
    }

    #[test]
    fn timestamps_are_checked_when_the_file_is_loaded() {
        let start = r#"{ do = "start_server" }, { do = "connect", conn = "a" },"#;
        for ok in [
            r#"contains = "hi", timestamp = { format = "[ACK @%H:%M:%S]", tolerance = "2s" }"#,
            r#"timestamp = { format = "%Y-%m-%d %H:%M:%S" }"#,
            r#"regex = "h.", timestamp = { format = "%I:%M %p" }"#,
        ] {
            check(
                &format!("{start} {{ do = \"expect\", on = \"a\", {ok} }}"),
                "server",
            )
            .unwrap();
        }
        for (bad, why) in [
            (r#"timestamp = { format = "%S" }"#, "hour and a minute"),
            (r#"timestamp = { format = "%H:%M %Z" }"#, "not supported"),
            (r#"timestamp = { format = "%H:%Q" }"#, "unknown % specifier"),
            (
                r#"json = { a = 1 }, timestamp = { format = "%H:%M" }"#,
                "not with `json`",
            ),
            (
                r#"any = true, contains = "x", timestamp = { format = "%H:%M" }"#,
                "exactly one",
            ),
        ] {
            let e = check(
                &format!("{start} {{ do = \"expect\", on = \"a\", {bad} }}"),
                "server",
            )
            .unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = check(
            &format!("{start} {{ do = \"expect\", on = \"a\", timestamp = {{ format = \"%H:%M\", within = \"1s\" }} }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn server_output_needs_a_server_and_client_args_their_placeholders() {
        check(
            r#"{ do = "start_server" }, { do = "expect", on = "server.stdout", any = true }, { do = "expect", on = "server.output", any = true }"#,
            "server",
        )
        .unwrap();
        let e = check(
            r#"{ do = "listen" }, { do = "start_client" }, { do = "expect", on = "server.output", any = true }"#,
            "client",
        )
        .unwrap_err();
        assert!(e.contains("server is referred to before"), "{e}");
        check(
            r#"{ do = "listen" }, { do = "start_client", args = ["hello {nonce}", "x"] }"#,
            "client",
        )
        .unwrap();
        let e = check(
            r#"{ do = "listen" }, { do = "start_client", args = ["{i}"] }"#,
            "client",
        )
        .unwrap_err();
        assert!(e.contains("{i}"), "{e}");
    }

    #[test]
    fn a_paste_numbers_its_lines_and_has_a_bounded_count() {
        let start = r#"{ do = "listen" }, { do = "start_client" },"#;
        check(
            &format!("{start} {{ do = \"type\", line = \"l {{j}}\", paste = 20 }}"),
            "client",
        )
        .unwrap();
        // Without a paste, {j} is still only defined inside `repeat`.
        let e = check(
            &format!("{start} {{ do = \"type\", line = \"l {{j}}\" }}"),
            "client",
        )
        .unwrap_err();
        assert!(e.contains("{j}"), "{e}");
        let e = check(
            &format!("{start} {{ do = \"type\", line = \"l\", paste = 0 }}"),
            "client",
        )
        .unwrap_err();
        assert!(e.contains("between 1 and 1000"), "{e}");
    }

    #[test]
    fn datagram_steps_need_an_open_socket_and_stay_out_of_parallel() {
        let start = r#"{ do = "start_server", udp = true }, { do = "udp_socket", sock = "a" },"#;
        check(
            &format!(
                "{start} {{ do = \"send_datagram\", sock = \"a\", text = \"x {{nonce}}\" }}, {{ do = \"expect_datagram\", on = \"a\", exact = \"x {{nonce}}\" }}, {{ do = \"expect_no_datagram\", on = \"a\", for = \"100ms\" }}"
            ),
            "server",
        )
        .unwrap();
        let e = check(
            r#"{ do = "start_server", udp = true }, { do = "send_datagram", sock = "b", text = "x" }"#,
            "server",
        )
        .unwrap_err();
        assert!(e.contains("before a `udp_socket`"), "{e}");
        let e = check(
            &format!("{start} {{ do = \"expect_datagram\", on = \"a\" }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("exactly one of `any = true`"), "{e}");
        let e = check(
            &format!("{start} {{ do = \"expect_datagram\", on = \"a\", regex = \"(\" }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("invalid regex"), "{e}");
        let e = check(
            &format!("{start} {{ do = \"expect_no_datagram\", on = \"a\", for = \"0s\" }}"),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("longer than 0s"), "{e}");
        let e = check(
            &format!(
                "{start} {{ do = \"parallel\", count = 2, steps = [{{ do = \"send_datagram\", sock = \"a\", text = \"x\" }}] }}"
            ),
            "server",
        )
        .unwrap_err();
        assert!(e.contains("inside `parallel`"), "{e}");
    }

    #[test]
    fn a_client_can_be_pointed_at_a_udp_socket_opened_before_it() {
        check(
            r#"{ do = "udp_socket", sock = "srv" }, { do = "start_client" }, { do = "expect_datagram", on = "srv", any = true }"#,
            "client",
        )
        .unwrap();
        let e = check(r#"{ do = "start_client" }"#, "client").unwrap_err();
        assert!(e.contains("`listen` or `udp_socket`"), "{e}");
    }
}
