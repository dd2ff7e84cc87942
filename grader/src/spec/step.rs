//! The step vocabulary of the scenario language: what a scenario can do (start the student's
//! program, open, feed and drop connections, run copies of a conversation in parallel) and what
//! it can expect (text, JSON, silence, text that must not arrive, EOF, exit status, CPU use).
//!
//! Each step is a TOML table whose `do` key names the step; unknown steps and unknown fields are
//! rejected when the file is loaded. Fields that hold text may use placeholders (see
//! `engine::template`). The steps are grouped in one enum per what they act on ([`Step`] is an
//! enum over them, see its documentation, "Adding a step kind"), and a `parallel` group holds
//! only [`CopyStep`]s: a step that cannot run in a copy is refused when the file is loaded.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Dur;

/// A student process a step refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Process {
    /// The student's server, started by `start_server`.
    Server,
    /// The student's client, started by `start_client`.
    Client,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Process::Server => "server",
            Process::Client => "client",
        })
    }
}

/// A stream of the student's client process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRef {
    /// What the client printed on stdout (a pseudo-terminal).
    Stdout,
    /// What the student's process printed on stderr.
    Stderr(Process),
    /// The client's stdout or its stderr, whichever holds the match (`client.output`), for
    /// messages a program may print on either.
    Output,
    /// What the server printed on stdout (`server.stdout`, a pipe): its log, in labs that ask
    /// for one.
    ServerStdout,
    /// The server's stdout or its stderr, whichever holds the match (`server.output`).
    ServerOutput,
}

/// Where an expectation looks: a named grader-side connection or a process stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A connection opened by `connect` or `accept`.
    Conn(String),
    /// A process stream.
    Stream(StreamRef),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Conn(c) => write!(f, "connection {c}"),
            Target::Stream(StreamRef::Stdout) => f.write_str("the client's stdout"),
            Target::Stream(StreamRef::Stderr(p)) => write!(f, "the {p}'s stderr"),
            Target::Stream(StreamRef::Output) => f.write_str("the client's stdout or stderr"),
            Target::Stream(StreamRef::ServerStdout) => f.write_str("the server's stdout"),
            Target::Stream(StreamRef::ServerOutput) => f.write_str("the server's stdout or stderr"),
        }
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "stdout" | "client.stdout" => Target::Stream(StreamRef::Stdout),
            "client.stderr" => Target::Stream(StreamRef::Stderr(Process::Client)),
            "server.stderr" => Target::Stream(StreamRef::Stderr(Process::Server)),
            "client.output" => Target::Stream(StreamRef::Output),
            "server.stdout" => Target::Stream(StreamRef::ServerStdout),
            "server.output" => Target::Stream(StreamRef::ServerOutput),
            "stderr" => {
                return Err(serde::de::Error::custom(
                    "say whose stderr: \"client.stderr\" or \"server.stderr\"",
                ));
            }
            _ => Target::Conn(s),
        })
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Target::Conn(c) => s.serialize_str(c),
            Target::Stream(StreamRef::Stdout) => s.serialize_str("stdout"),
            Target::Stream(StreamRef::Stderr(p)) => s.serialize_str(&format!("{p}.stderr")),
            Target::Stream(StreamRef::Output) => s.serialize_str("client.output"),
            Target::Stream(StreamRef::ServerStdout) => s.serialize_str("server.stdout"),
            Target::Stream(StreamRef::ServerOutput) => s.serialize_str("server.output"),
        }
    }
}

/// Which exit statuses an `expect_exit` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitPredicate {
    /// Exit status 0.
    Zero,
    /// Any non-zero exit status (a death by signal does not count: that is a crash).
    NonZero,
    /// Exactly this status.
    Code(i32),
    /// Any exit, even by a signal.
    Any,
}

impl ExitPredicate {
    /// Whether an exit with `code` (None: killed by a signal) satisfies the predicate.
    pub fn accepts(self, code: Option<i32>) -> bool {
        match (self, code) {
            (ExitPredicate::Any, _) => true,
            (ExitPredicate::Zero, Some(0)) => true,
            (ExitPredicate::NonZero, Some(c)) => c != 0,
            (ExitPredicate::Code(want), Some(c)) => c == want,
            _ => false,
        }
    }
}

impl fmt::Display for ExitPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitPredicate::Zero => f.write_str("exit status 0"),
            ExitPredicate::NonZero => f.write_str("a non-zero exit status"),
            ExitPredicate::Code(c) => write!(f, "exit status {c}"),
            ExitPredicate::Any => f.write_str("any exit"),
        }
    }
}

impl<'de> Deserialize<'de> for ExitPredicate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(0) => Ok(ExitPredicate::Zero),
            Raw::Int(i) => i32::try_from(i)
                .map(ExitPredicate::Code)
                .map_err(|_| serde::de::Error::custom(format!("exit code {i} is out of range"))),
            Raw::Text(t) => match t.as_str() {
                "zero" => Ok(ExitPredicate::Zero),
                "nonzero" | "non-zero" => Ok(ExitPredicate::NonZero),
                "any" => Ok(ExitPredicate::Any),
                other => Err(serde::de::Error::custom(format!(
                    "unknown exit code predicate {other:?}: use a number, \"zero\", \"nonzero\" or \"any\""
                ))),
            },
        }
    }
}

impl Serialize for ExitPredicate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ExitPredicate::Zero => s.serialize_i64(0),
            ExitPredicate::NonZero => s.serialize_str("nonzero"),
            ExitPredicate::Code(c) => s.serialize_i64(i64::from(*c)),
            ExitPredicate::Any => s.serialize_str("any"),
        }
    }
}

/// A predicate on one field of a received JSON object.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum JsonPredicate {
    /// An operator table: `{ contains = "bob" }`, `{ regex = "..." }`, `{ present = false }`.
    Op(JsonOp),
    /// A literal: equal to this value (numbers and numeric strings compare equal: `"1"` == `1`).
    Equals(serde_json::Value),
}

/// The operators of [`JsonPredicate::Op`]; exactly one must be given.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonOp {
    /// The field is a string containing this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// The field is a string matching this regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// The field is present (true) or absent (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// What an `expect` step looks for, derived from its fields by validation.
#[derive(Debug, Clone)]
pub enum Expectation {
    /// Anything at all (at least one non-blank character).
    Any,
    /// The text appears, within one message or across several writes.
    Contains(String),
    /// The regex matches the received text.
    Regex(String),
    /// A whole line equal to this text (surrounding white space ignored).
    Exact(String),
    /// A JSON object whose fields satisfy all the predicates.
    Json(BTreeMap<String, JsonPredicate>),
}

/// What a `send` step writes, derived from its fields by validation.
#[derive(Debug, Clone)]
pub enum SendBody {
    /// The text as it is.
    Text(String),
    /// The text followed by `\n`.
    Line(String),
    /// Raw bytes given in hex.
    Hex(String),
    /// This many random bytes (every value 0-255), derived from the grading's seed.
    Random(usize),
}

/// The longest a `parallel` group with `burst = true` keeps the server paused while its copies
/// send their connection requests (they normally all have in a few milliseconds).
pub const BURST_GATE: std::time::Duration = std::time::Duration::from_secs(1);

/// One step of a scenario. In TOML: `{ do = "connect", conn = "a" }`.
///
/// The steps are grouped by what they act on, one enum each, so that a type says where a step
/// may stand: [`ProcessStep`] (the scenario's processes and listener), [`ConnStep`] (one
/// grader-side TCP connection), [`DatagramStep`] (a grader-side UDP socket), [`GroupStep`]
/// (`parallel`, `repeat`) and [`ProtocolStep`] (expanded away when the file is loaded). A
/// `parallel` copy holds [`CopyStep`]s, which cannot be process, datagram or nested `parallel`
/// steps: such a task file is refused when it is loaded.
///
/// # Adding a step kind
/// Add the variant to the enum of what it acts on (its fields as in the task file) and its name
/// to that enum's `KINDS`; then follow the compiler, whose exhaustive matches (no `_ =>` arm over
/// step kinds anywhere) lead to every place that must handle it: `kind()` and `hint()` here,
/// [`CopyStep::try_from`] for a new enum, `spec::validate` (`check_step` and
/// `check_placeholders`, per enum), `spec::expand` (`Cx::step`), the engine
/// (`engine::scenario::steps`: `Run::step`, `Run::conn_step`, `Run::copy_step`;
/// `engine::scenario::datagrams`). Finally give it a sample in the integration test
/// `step_kinds` (which fails until every kind has one) and document it in `docs/task-files.md`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Step {
    /// A step on the scenario's processes or the grader's listener.
    Process(ProcessStep),
    /// A step on one grader-side connection.
    Conn(ConnStep),
    /// A step on a grader-side UDP socket.
    Datagram(DatagramStep),
    /// A step that runs other steps.
    Group(GroupStep),
    /// A protocol step or block (only before expansion).
    Protocol(ProtocolStep),
}

/// A step a `parallel` copy may run: a connection step, a `repeat` of such steps, or (before
/// expansion) a protocol step. Built from a [`Step`] by [`CopyStep::try_from`], which refuses
/// the others with a message saying why.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "Step")]
pub enum CopyStep {
    /// A step on the copy's own connection.
    Conn(ConnStep),
    /// `repeat` inside a copy: its steps are copy steps too.
    Repeat {
        /// Number of iterations.
        count: u32,
        /// The steps of each iteration.
        steps: Vec<CopyStep>,
    },
    /// A protocol step or block (only before expansion; what it expands to must fit a copy).
    Protocol(ProtocolStep),
}

impl From<ProcessStep> for Step {
    fn from(s: ProcessStep) -> Self {
        Step::Process(s)
    }
}

impl From<ConnStep> for Step {
    fn from(s: ConnStep) -> Self {
        Step::Conn(s)
    }
}

impl From<DatagramStep> for Step {
    fn from(s: DatagramStep) -> Self {
        Step::Datagram(s)
    }
}

impl From<GroupStep> for Step {
    fn from(s: GroupStep) -> Self {
        Step::Group(s)
    }
}

impl From<ProtocolStep> for Step {
    fn from(s: ProtocolStep) -> Self {
        Step::Protocol(s)
    }
}

impl From<CopyStep> for Step {
    fn from(s: CopyStep) -> Self {
        match s {
            CopyStep::Conn(c) => Step::Conn(c),
            CopyStep::Repeat { count, steps } => Step::Group(GroupStep::Repeat {
                count,
                steps: steps.into_iter().map(Step::from).collect(),
            }),
            CopyStep::Protocol(p) => Step::Protocol(p),
        }
    }
}

impl TryFrom<Step> for CopyStep {
    type Error = String;

    /// The step as a `parallel` copy's step, or why it cannot be one.
    fn try_from(step: Step) -> Result<Self, String> {
        match step {
            Step::Conn(c) => Ok(CopyStep::Conn(c)),
            Step::Protocol(p) => Ok(CopyStep::Protocol(p)),
            Step::Group(GroupStep::Repeat { count, steps }) => Ok(CopyStep::Repeat {
                count,
                steps: copy_steps_of(steps)?,
            }),
            Step::Group(GroupStep::Parallel { .. }) => Err("`parallel` cannot be nested".into()),
            Step::Process(p) => Err(format!(
                "`{}` cannot be used inside `parallel`: it acts on the student's program or the grader's listener, which all copies share (put it before or after the group; a copy runs only connection steps such as connect, send, expect on a connection, and `repeat` of them)",
                p.kind()
            )),
            Step::Datagram(d) => Err(format!(
                "`{}` cannot be used inside `parallel`: datagram steps run at the top level or in `repeat`",
                d.kind()
            )),
        }
    }
}

/// `steps` as copy steps; an error names the first that cannot be one ("inner step 2
/// (expect_exit): ...").
pub fn copy_steps_of(steps: Vec<Step>) -> Result<Vec<CopyStep>, String> {
    steps
        .into_iter()
        .enumerate()
        .map(|(k, s)| {
            let kind = s.kind();
            CopyStep::try_from(s).map_err(|m| format!("inner step {} ({kind}): {m}", k + 1))
        })
        .collect()
}

/// Deserializes a `parallel` group's `steps`: steps, each of which must fit a copy.
fn copy_steps<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CopyStep>, D::Error> {
    copy_steps_of(Vec::<Step>::deserialize(d)?).map_err(serde::de::Error::custom)
}

impl<'de> Deserialize<'de> for Step {
    /// Reads the table once, then lets the enum that owns its `do` deserialize it (with the
    /// messages serde's internally tagged enums give: unknown or missing fields, bad values).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = toml::Value::deserialize(d)?;
        let kind = value
            .get("do")
            .and_then(toml::Value::as_str)
            .map(str::to_owned);
        let owner = |kinds: &[&str]| kind.as_deref().is_some_and(|k| kinds.contains(&k));
        let err = |e: toml::de::Error| D::Error::custom(e.message());
        if owner(ProcessStep::KINDS) {
            ProcessStep::deserialize(value)
                .map(Step::Process)
                .map_err(err)
        } else if owner(ConnStep::KINDS) {
            ConnStep::deserialize(value).map(Step::Conn).map_err(err)
        } else if owner(DatagramStep::KINDS) {
            DatagramStep::deserialize(value)
                .map(Step::Datagram)
                .map_err(err)
        } else if owner(GroupStep::KINDS) {
            GroupStep::deserialize(value).map(Step::Group).map_err(err)
        } else if owner(ProtocolStep::KINDS) {
            ProtocolStep::deserialize(value)
                .map(Step::Protocol)
                .map_err(err)
        } else if let Some(kind) = kind {
            let all: Vec<String> = Step::kinds().map(|k| format!("`{k}`")).collect();
            Err(D::Error::custom(format!(
                "unknown variant `{kind}`, expected one of {}",
                all.join(", ")
            )))
        } else {
            // No `do` (or not a string, or not a table): serde's own message for it.
            ConnStep::deserialize(value).map(Step::Conn).map_err(err)
        }
    }
}

impl<'de> Deserialize<'de> for CopyStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CopyStep::try_from(Step::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A step that acts on the scenario's processes or on what all of it shares: starting the
/// student's server or client, the grader's listener, the client's stdin, the processes' exit,
/// liveness and CPU use. Never inside `parallel` (its copies share these).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProcessStep {
    /// Start the student's server on a fresh port and wait until it listens there.
    StartServer {
        /// How long to wait for the listening socket (default: `defaults.listen_within`).
        #[serde(default)]
        within: Option<Dur>,
        /// This scenario is about reading the port: a server listening on another port (a
        /// hard-coded one) fails here, naming it. Without it, such a server is graded on the
        /// port its own process listens on (noted once per grading).
        #[serde(default)]
        assigned_port: bool,
        /// The server is a UDP server: it is ready once a UDP socket of its own is bound to the
        /// port (observed in the kernel's UDP table), not a TCP listening socket.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        udp: bool,
    },
    /// Open the grader's own listener, playing the server for a client scenario.
    Listen {},
    /// Start the student's client. By default it is pointed at the grader's listener;
    /// `refused = true` points it at a reserved port where nothing listens.
    StartClient {
        /// Point the client at a port that refuses connections.
        #[serde(default)]
        refused: bool,
        /// The `--name` given to the client (Task 4).
        #[serde(default)]
        name: Option<String>,
        /// Extra arguments appended to the client's command line (placeholders expanded), e.g.
        /// the message of a single-message client (`client ... "Hello"`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
    /// Accept the student's client on the grader's listener and call the connection `conn`.
    Accept {
        /// Name of the new connection.
        conn: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// This scenario is about reading the port: a client that dialled another port (and
        /// was redirected to the grader's listener) fails here, naming it. Without it, such a
        /// client is graded on the redirected connection (noted once per grading).
        #[serde(default)]
        assigned_port: bool,
    },
    /// Type a line on the client's stdin (a newline is added).
    Type {
        /// The line.
        line: String,
        /// Type `paste` lines at once, in one write, as a paste into a terminal does: the line
        /// `paste` times, `{j}` being each one's index (0, 1, ...). A program must handle several
        /// lines arriving together (a buffered `sys.stdin` under `select()` does not).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paste: Option<u32>,
    },
    /// Close the client's stdin (end of input).
    CloseStdin {},
    /// The student's process exits within the deadline with an accepted status.
    ExpectExit {
        /// Which process.
        process: Process,
        /// Accepted exit status (default: 0).
        #[serde(default = "default_exit")]
        code: ExitPredicate,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// The process is still running, or (with `allow_clean_exit`) has exited with status 0.
    ExpectRunning {
        /// Which process.
        process: Process,
        /// Also accept an exit with status 0.
        #[serde(default)]
        allow_clean_exit: bool,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// The process's stderr holds no traceback, panic or sanitizer report.
    ExpectNoTraceback {
        /// Which process.
        process: Process,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// The process tried to open a TCP connection (refused attempts count) within the deadline:
    /// a client that gives up before connecting, e.g. because it rejects its command line, does
    /// not pass a "refused connection" scenario by merely exiting non-zero. Checked on the
    /// network namespace's own counters; on the host network, whose counters the whole machine
    /// shares, the step passes unchecked.
    ExpectConnectAttempt {
        /// Which process.
        process: Process,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// If the process has exited with status 0 (within the same grace as `expect_running`), the
    /// scenario ends here and passes: the protocol lets a server exit cleanly once its client
    /// has left. An exit with another status, or by a signal, fails; a running process goes on
    /// to the next step.
    EndIfExited {
        /// Which process.
        process: Process,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Over a window, the process group uses at most `max_percent` of one core.
    ExpectCpuBelow {
        /// Which process.
        process: Process,
        /// The measuring window.
        window: Dur,
        /// Percentage of one core.
        max_percent: f64,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
}

/// A step on one grader-side TCP connection (opening, writing, closing, expectations on what
/// arrives). The only primitive steps a `parallel` copy may run. `expect`, `expect_silence` and
/// `expect_not` may also read a process stream (`stdout`, `client.stderr` ...), which only the
/// top level may do (checked by validation).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConnStep {
    /// Connect to the student's server and call the connection `conn`.
    Connect {
        /// Name of the new connection.
        conn: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
    },
    /// Write one logical message on a connection (exactly one of `text`, `line`, `hex`,
    /// `random`).
    Send {
        /// The connection.
        conn: String,
        /// Text sent as it is.
        #[serde(default)]
        text: Option<String>,
        /// Text followed by a newline.
        #[serde(default)]
        line: Option<String>,
        /// Raw bytes, in hex.
        #[serde(default)]
        hex: Option<String>,
        /// This many random bytes (every value 0-255, NUL and newlines included), derived from
        /// the grading's seed (different for each `{i}` and `{j}`).
        #[serde(default)]
        random: Option<usize>,
    },
    /// Wait until the student's program has read everything sent on `conn` so far (observed in
    /// the kernel's socket queues, not guessed with a sleep). Use it to keep two writes apart
    /// when the first has no visible effect, e.g. an empty line.
    WaitRead {
        /// The connection.
        conn: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Close a connection gracefully (FIN).
    Close {
        /// The connection.
        conn: String,
    },
    /// Reset a connection (RST, as when a program crashes or a cable is pulled).
    Abort {
        /// The connection.
        conn: String,
    },
    /// Wait until something arrives (exactly one of `any`, `contains`, `regex`, `exact`, `json`).
    Expect {
        /// A connection name, `stdout`, `client.stderr` or `server.stderr`.
        on: Target,
        /// Anything at all.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        any: bool,
        /// Text that must appear.
        #[serde(default)]
        contains: Option<String>,
        /// A regex that must match.
        #[serde(default)]
        regex: Option<String>,
        /// A whole line that must appear.
        #[serde(default)]
        exact: Option<String>,
        /// Field predicates of a JSON object that must arrive.
        #[serde(default)]
        json: Option<BTreeMap<String, JsonPredicate>>,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
        /// `contains` ignores letter case (its placeholders are still expanded).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        nocase: bool,
        /// The matching line must also hold a timestamp in this format naming the current time
        /// (see [`super::timestamp`]); alone, any line holding one matches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp: Option<super::TimestampSpec>,
        /// Waiting in vain is not a failure: the step passes at its deadline without a match
        /// (used for an acknowledgment that has its own scenario, so that other scenarios need
        /// not fail for its absence but do not take it for a reply either).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        optional: bool,
    },
    /// Nothing (but white space) arrives for a whole window.
    ExpectSilence {
        /// Where to listen.
        on: Target,
        /// The window.
        #[serde(rename = "for")]
        window: Dur,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Nothing matching (exactly one of `contains`, `regex`, `exact`, `json`) arrives during a
    /// window; text already received and not yet matched by an `expect` counts too. Other text
    /// may arrive. Nothing is consumed.
    ExpectNot {
        /// A connection name, `stdout`, `client.stderr`, `server.stderr` or `client.output`.
        on: Target,
        /// Text that must not appear.
        #[serde(default)]
        contains: Option<String>,
        /// A regex that must not match.
        #[serde(default)]
        regex: Option<String>,
        /// A whole line that must not appear.
        #[serde(default)]
        exact: Option<String>,
        /// Field predicates of a JSON object that must not arrive.
        #[serde(default)]
        json: Option<BTreeMap<String, JsonPredicate>>,
        /// The window.
        #[serde(rename = "for")]
        window: Dur,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Exact bytes arrive on a connection, compared byte for byte with no text cleaning:
    /// `hex` bytes, or with `echo = true` every byte sent on the connection that has not come
    /// back yet. Bytes are collected across reads until as many as expected arrived, a byte
    /// differs, the connection ends, or the deadline passes. Byte expectations have their own
    /// position in the stream (text expectations do not move it, nor it theirs).
    ExpectBytes {
        /// The connection.
        on: String,
        /// The expected bytes, in hex.
        #[serde(default)]
        hex: Option<String>,
        /// Expect the echo of everything sent on `on` since the last echo expectation.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        echo: bool,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// One whole HTTP response arrives on a connection (read with `httparse`, its body framed
    /// by `Content-Length`, chunked encoding or the connection's close) and matches: status,
    /// headers that must contain a text, a text in the body. A response that says
    /// `Connection: close` must be followed by the close. Reads the raw bytes (line endings
    /// kept), from where the previous `expect_http` on the connection stopped.
    ExpectHttp {
        /// The connection.
        on: String,
        /// The status code the response must have (any when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Headers the response must have, by name (any letter case), each with a text its
        /// value must contain (any letter case; `""`: only present).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// A text the body must contain (placeholders expanded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body_contains: Option<String>,
        /// The request was `HEAD`: the response has no body whatever its headers say.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        head: bool,
        /// When the response says `Connection: close` (and the server closes), the scenario
        /// ends here and passes: a server may close after each response if it says so.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        end_if_closed: bool,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// The peer closes the connection (EOF or reset) within the deadline.
    ExpectClosed {
        /// The connection.
        on: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
}

/// A step on a grader-side UDP socket. Top level (or `repeat`) only, never inside `parallel`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum DatagramStep {
    /// Open a grader-side UDP socket on 127.0.0.1 (a port the kernel picks) and call it `sock`.
    /// In a client scenario the first one plays the server: `start_client` points the student's
    /// client at it.
    UdpSocket {
        /// Name of the socket.
        sock: String,
    },
    /// Send one datagram from `sock` (exactly one of `text`, `line`, `hex`): to the student's
    /// server in a server scenario; in a client scenario to the address the last datagram
    /// `expect_datagram` took on `sock` came from (the student's client).
    SendDatagram {
        /// The grader's socket.
        sock: String,
        /// Text sent as it is.
        #[serde(default)]
        text: Option<String>,
        /// Text followed by a newline.
        #[serde(default)]
        line: Option<String>,
        /// Raw bytes, in hex.
        #[serde(default)]
        hex: Option<String>,
    },
    /// Wait until one datagram arrives on `sock` that matches (exactly one of `any`,
    /// `contains`, `regex`, `exact`: the whole datagram, white space around it ignored), sent
    /// from the student's server's address (server scenarios) or by the client (client
    /// scenarios, whose address later `send_datagram`s answer). Each datagram is matched on its
    /// own; earlier ones that do not match are passed over.
    ExpectDatagram {
        /// The grader's socket.
        on: String,
        /// Any datagram at all (even an empty one).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        any: bool,
        /// Text the datagram must contain.
        #[serde(default)]
        contains: Option<String>,
        /// A regex the datagram must match.
        #[serde(default)]
        regex: Option<String>,
        /// The whole datagram (white space around it ignored).
        #[serde(default)]
        exact: Option<String>,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// No datagram (with `contains`: none containing that text) arrives on `sock` during the
    /// window; datagrams received earlier and not taken by an `expect_datagram` count too.
    ExpectNoDatagram {
        /// The grader's socket.
        on: String,
        /// Only datagrams containing this text count.
        #[serde(default)]
        contains: Option<String>,
        /// The window.
        #[serde(rename = "for")]
        window: Dur,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
}

/// A step that runs other steps: copies in parallel, or iterations in sequence.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum GroupStep {
    /// Run `count` copies of `steps` concurrently; connection names inside get a `#<i>` suffix
    /// and `{i}` expands to the copy's index. Passes when every copy passes. Connections stay
    /// open after the group: a later `parallel` copy `i` uses its own `name#i` again (so one
    /// group can open all connections and the next talk on them), and other steps may name
    /// `name#3` directly.
    Parallel {
        /// Number of copies.
        count: u32,
        /// The steps of each copy (only what a copy may run: see [`CopyStep`]).
        #[serde(deserialize_with = "copy_steps")]
        steps: Vec<CopyStep>,
        /// Also require that no line one copy sent (and no other copy sent too) shows up on
        /// another copy's connections: replies go only to their sender.
        #[serde(default)]
        isolated: bool,
        /// Send every copy's connection request at the same moment, as far as the server can
        /// tell: the student's server is paused (SIGSTOP, which it cannot catch) until every
        /// copy's first step, a `connect`, has sent its request (or for at most
        /// [`BURST_GATE`]), then resumed. The kernel's accept queue (the `listen()` backlog)
        /// must hold them all: a small backlog drops requests whatever the machine's speed.
        #[serde(default)]
        burst: bool,
    },
    /// Run `steps` `count` times in sequence; `{j}` expands to the iteration index.
    Repeat {
        /// Number of iterations.
        count: u32,
        /// The steps of each iteration.
        steps: Vec<Step>,
    },
}

/// A protocol step or a block: replaced by primitive steps when the file is loaded, as the
/// protocol (dialect) says (see `super::expand`); the engine and validation never see one.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProtocolStep {
    /// Server role: connect, take the acknowledgment and register `name` (when given) as the
    /// protocol says, and wait until registered.
    Join {
        /// Name of the new connection.
        conn: String,
        /// The user name to register (none: only connect and take the acknowledgment).
        #[serde(default)]
        name: Option<String>,
        /// The name is already taken: expect the registration to be refused with an error.
        #[serde(default)]
        taken: bool,
        /// Deadline of each wait (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
    },
    /// Server role: send a chat message from `conn` to `to` in the protocol's form.
    Chat {
        /// The sender's connection.
        conn: String,
        /// The receiver's name.
        to: String,
        /// The text.
        text: String,
        /// The sender named in the message (default: the name `conn` joined with).
        #[serde(default)]
        from: Option<String>,
    },
    /// Server role: a chat message from `from` with `text` arrives on `on`, in the protocol's
    /// forward format.
    ExpectChat {
        /// The receiver's connection.
        on: String,
        /// The sender's name.
        from: String,
        /// The text.
        text: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Server role: an error arrives on `on` (naming `mentions`, when given).
    ExpectError {
        /// The connection.
        on: String,
        /// Text the error must contain.
        #[serde(default)]
        mentions: Option<String>,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Server role: leave as the protocol says (the exit word or message; with no exit word,
    /// close the connection).
    SayExit {
        /// The connection.
        conn: String,
    },
    /// Server role: the reply to the line `to` arrives on `on` (an echo, an echo in any case,
    /// or any text, as the protocol's `reply` says).
    ExpectReply {
        /// The connection.
        on: String,
        /// The line the reply answers.
        to: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Client role: accept the client's connection and greet it as the protocol says (the
    /// acknowledgment, or the name prompt).
    Welcome {
        /// Name of the new connection.
        conn: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
    },
    /// Client role: the client registers `name` in the protocol's form; the grader confirms.
    ExpectRegister {
        /// The connection.
        on: String,
        /// The name.
        name: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Client role: deliver a chat message from `from` in the protocol's forward format.
    Deliver {
        /// The connection.
        conn: String,
        /// The sender's name.
        from: String,
        /// The text.
        text: String,
        /// The receiver (default: the name the client registered).
        #[serde(default)]
        to: Option<String>,
    },
    /// Client role: send an error with `text` in the protocol's form.
    SendError {
        /// The connection.
        conn: String,
        /// The error's text.
        text: String,
    },
    /// Client role: the client sends a chat message to `to` with `text`.
    ExpectSentChat {
        /// The connection.
        on: String,
        /// The receiver's name.
        to: String,
        /// The text.
        text: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Client role: type the protocol's exit word (with none: close stdin).
    TypeExit {},
    /// Client role: the client says it leaves (the exit word or message; with no exit word,
    /// it closes the connection).
    ExpectSaidExit {
        /// The connection.
        on: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Server role: create, join or leave a group (ClassChat bonus, Task 5) and wait for the
    /// server's confirmation.
    Group {
        /// The member's connection.
        conn: String,
        /// `create`, `join` or `leave`.
        action: GroupAction,
        /// The group's name.
        group: String,
        /// Deadline of the confirmation (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Server role: send a message from `conn` to the group `group`.
    GroupChat {
        /// The sender's connection.
        conn: String,
        /// The group's name.
        group: String,
        /// The text.
        text: String,
    },
    /// Server role: a group message from `from` to `group` with `text` arrives on `on`.
    ExpectGroupChat {
        /// The member's connection.
        on: String,
        /// The group's name.
        group: String,
        /// The sender's name.
        from: String,
        /// The text.
        text: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// Server role: send a file (its content in base64, e.g. `{base64:N}`) from `conn` to `to`
    /// in one write; or, with `split` and `part`, one of two parts of that write: `part =
    /// "first"` sends the message up to and including `split`'s text and waits until the server
    /// has read it (`wait_read`), a later step with `part = "rest"` sends the rest, so other
    /// steps can run while a transfer is half done.
    SendFile {
        /// The sender's connection.
        conn: String,
        /// The receiver's name.
        to: String,
        /// The file's name.
        filename: String,
        /// The content in base64 (a template).
        data: String,
        /// Send in two writes, cut right after this text of `data` (e.g. the first of two
        /// `{base64:N:KEY}` placeholders).
        #[serde(default)]
        split: Option<String>,
        /// With `split`: which part this step sends.
        #[serde(default)]
        part: Option<FilePart>,
    },
    /// Server role: a file from `from` named `filename` with exactly this base64 content
    /// arrives on `on`.
    ExpectFile {
        /// The receiver's connection.
        on: String,
        /// The sender's name.
        from: String,
        /// The file's name.
        filename: String,
        /// The content in base64 (a template).
        data: String,
        /// Deadline (default: `defaults.within`).
        #[serde(default)]
        within: Option<Dur>,
        /// Shown when this step fails.
        #[serde(default)]
        hint: Option<String>,
    },
    /// The steps of the block `[block.<block>]`, its `{param}`s replaced by `with`.
    Use {
        /// The block's name.
        block: String,
        /// A value for each of the block's parameters.
        #[serde(default)]
        with: BTreeMap<String, String>,
    },
}

/// Which part of a split file message a `send_file` step sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilePart {
    /// Up to and including the `split` text, then wait until it is read.
    First,
    /// The rest, with the newline.
    Rest,
}

/// What a `group` step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupAction {
    /// Create the group (the creator becomes its first member).
    Create,
    /// Join an existing group.
    Join,
    /// Leave the group.
    Leave,
}

fn default_exit() -> ExitPredicate {
    ExitPredicate::Zero
}

impl ProcessStep {
    /// The names of its kinds as written in task files (`do = "..."`), in declaration order.
    pub const KINDS: &'static [&'static str] = &[
        "start_server",
        "listen",
        "start_client",
        "accept",
        "type",
        "close_stdin",
        "expect_exit",
        "expect_running",
        "expect_no_traceback",
        "expect_connect_attempt",
        "end_if_exited",
        "expect_cpu_below",
    ];

    /// The step's name as written in task files (`do = "..."`).
    pub fn kind(&self) -> &'static str {
        match self {
            ProcessStep::StartServer { .. } => "start_server",
            ProcessStep::Listen {} => "listen",
            ProcessStep::StartClient { .. } => "start_client",
            ProcessStep::Accept { .. } => "accept",
            ProcessStep::Type { .. } => "type",
            ProcessStep::CloseStdin {} => "close_stdin",
            ProcessStep::ExpectExit { .. } => "expect_exit",
            ProcessStep::ExpectRunning { .. } => "expect_running",
            ProcessStep::ExpectNoTraceback { .. } => "expect_no_traceback",
            ProcessStep::ExpectConnectAttempt { .. } => "expect_connect_attempt",
            ProcessStep::EndIfExited { .. } => "end_if_exited",
            ProcessStep::ExpectCpuBelow { .. } => "expect_cpu_below",
        }
    }

    /// The step's own hint, if it has one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ProcessStep::ExpectExit { hint, .. }
            | ProcessStep::ExpectRunning { hint, .. }
            | ProcessStep::ExpectNoTraceback { hint, .. }
            | ProcessStep::ExpectConnectAttempt { hint, .. }
            | ProcessStep::EndIfExited { hint, .. }
            | ProcessStep::ExpectCpuBelow { hint, .. } => hint.as_deref(),
            ProcessStep::StartServer { .. }
            | ProcessStep::Listen {}
            | ProcessStep::StartClient { .. }
            | ProcessStep::Accept { .. }
            | ProcessStep::Type { .. }
            | ProcessStep::CloseStdin {} => None,
        }
    }
}

impl ConnStep {
    /// The names of its kinds as written in task files (`do = "..."`), in declaration order.
    pub const KINDS: &'static [&'static str] = &[
        "connect",
        "send",
        "wait_read",
        "close",
        "abort",
        "expect",
        "expect_silence",
        "expect_not",
        "expect_bytes",
        "expect_http",
        "expect_closed",
    ];

    /// The step's name as written in task files (`do = "..."`).
    pub fn kind(&self) -> &'static str {
        match self {
            ConnStep::Connect { .. } => "connect",
            ConnStep::Send { .. } => "send",
            ConnStep::WaitRead { .. } => "wait_read",
            ConnStep::Close { .. } => "close",
            ConnStep::Abort { .. } => "abort",
            ConnStep::Expect { .. } => "expect",
            ConnStep::ExpectSilence { .. } => "expect_silence",
            ConnStep::ExpectNot { .. } => "expect_not",
            ConnStep::ExpectBytes { .. } => "expect_bytes",
            ConnStep::ExpectHttp { .. } => "expect_http",
            ConnStep::ExpectClosed { .. } => "expect_closed",
        }
    }

    /// The step's own hint, if it has one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ConnStep::WaitRead { hint, .. }
            | ConnStep::Expect { hint, .. }
            | ConnStep::ExpectSilence { hint, .. }
            | ConnStep::ExpectNot { hint, .. }
            | ConnStep::ExpectBytes { hint, .. }
            | ConnStep::ExpectHttp { hint, .. }
            | ConnStep::ExpectClosed { hint, .. } => hint.as_deref(),
            ConnStep::Connect { .. }
            | ConnStep::Send { .. }
            | ConnStep::Close { .. }
            | ConnStep::Abort { .. } => None,
        }
    }
}

impl DatagramStep {
    /// The names of its kinds as written in task files (`do = "..."`), in declaration order.
    pub const KINDS: &'static [&'static str] = &[
        "udp_socket",
        "send_datagram",
        "expect_datagram",
        "expect_no_datagram",
    ];

    /// The step's name as written in task files (`do = "..."`).
    pub fn kind(&self) -> &'static str {
        match self {
            DatagramStep::UdpSocket { .. } => "udp_socket",
            DatagramStep::SendDatagram { .. } => "send_datagram",
            DatagramStep::ExpectDatagram { .. } => "expect_datagram",
            DatagramStep::ExpectNoDatagram { .. } => "expect_no_datagram",
        }
    }

    /// The step's own hint, if it has one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            DatagramStep::ExpectDatagram { hint, .. }
            | DatagramStep::ExpectNoDatagram { hint, .. } => hint.as_deref(),
            DatagramStep::UdpSocket { .. } | DatagramStep::SendDatagram { .. } => None,
        }
    }
}

impl GroupStep {
    /// The names of its kinds as written in task files (`do = "..."`), in declaration order.
    pub const KINDS: &'static [&'static str] = &["parallel", "repeat"];

    /// The step's name as written in task files (`do = "..."`).
    pub fn kind(&self) -> &'static str {
        match self {
            GroupStep::Parallel { .. } => "parallel",
            GroupStep::Repeat { .. } => "repeat",
        }
    }

    /// The step's own hint, if it has one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            GroupStep::Parallel { .. } | GroupStep::Repeat { .. } => None,
        }
    }
}

impl ProtocolStep {
    /// The names of its kinds as written in task files (`do = "..."`), in declaration order.
    pub const KINDS: &'static [&'static str] = &[
        "join",
        "chat",
        "expect_chat",
        "expect_error",
        "say_exit",
        "expect_reply",
        "welcome",
        "expect_register",
        "deliver",
        "send_error",
        "expect_sent_chat",
        "type_exit",
        "expect_said_exit",
        "group",
        "group_chat",
        "expect_group_chat",
        "send_file",
        "expect_file",
        "use",
    ];

    /// The step's name as written in task files (`do = "..."`).
    pub fn kind(&self) -> &'static str {
        match self {
            ProtocolStep::Join { .. } => "join",
            ProtocolStep::Chat { .. } => "chat",
            ProtocolStep::ExpectChat { .. } => "expect_chat",
            ProtocolStep::ExpectError { .. } => "expect_error",
            ProtocolStep::SayExit { .. } => "say_exit",
            ProtocolStep::ExpectReply { .. } => "expect_reply",
            ProtocolStep::Welcome { .. } => "welcome",
            ProtocolStep::ExpectRegister { .. } => "expect_register",
            ProtocolStep::Deliver { .. } => "deliver",
            ProtocolStep::SendError { .. } => "send_error",
            ProtocolStep::ExpectSentChat { .. } => "expect_sent_chat",
            ProtocolStep::TypeExit {} => "type_exit",
            ProtocolStep::ExpectSaidExit { .. } => "expect_said_exit",
            ProtocolStep::Group { .. } => "group",
            ProtocolStep::GroupChat { .. } => "group_chat",
            ProtocolStep::ExpectGroupChat { .. } => "expect_group_chat",
            ProtocolStep::SendFile { .. } => "send_file",
            ProtocolStep::ExpectFile { .. } => "expect_file",
            ProtocolStep::Use { .. } => "use",
        }
    }

    /// The step's own hint, if it has one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ProtocolStep::ExpectChat { hint, .. }
            | ProtocolStep::ExpectError { hint, .. }
            | ProtocolStep::ExpectReply { hint, .. }
            | ProtocolStep::ExpectRegister { hint, .. }
            | ProtocolStep::ExpectSentChat { hint, .. }
            | ProtocolStep::ExpectSaidExit { hint, .. }
            | ProtocolStep::Group { hint, .. }
            | ProtocolStep::ExpectGroupChat { hint, .. }
            | ProtocolStep::ExpectFile { hint, .. } => hint.as_deref(),
            ProtocolStep::Join { .. }
            | ProtocolStep::Chat { .. }
            | ProtocolStep::SayExit { .. }
            | ProtocolStep::Welcome { .. }
            | ProtocolStep::Deliver { .. }
            | ProtocolStep::SendError { .. }
            | ProtocolStep::TypeExit {}
            | ProtocolStep::GroupChat { .. }
            | ProtocolStep::SendFile { .. }
            | ProtocolStep::Use { .. } => None,
        }
    }
}

impl Step {
    /// The step's name as written in task files (`do = "..."`).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Process(s) => s.kind(),
            Step::Conn(s) => s.kind(),
            Step::Datagram(s) => s.kind(),
            Step::Group(s) => s.kind(),
            Step::Protocol(s) => s.kind(),
        }
    }

    /// Every step name a task file may use, enum by enum.
    pub fn kinds() -> impl Iterator<Item = &'static str> {
        [
            ProcessStep::KINDS,
            ConnStep::KINDS,
            DatagramStep::KINDS,
            GroupStep::KINDS,
            ProtocolStep::KINDS,
        ]
        .into_iter()
        .flatten()
        .copied()
    }

    /// The step's own hint, if it has one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Step::Process(s) => s.hint(),
            Step::Conn(s) => s.hint(),
            Step::Datagram(s) => s.hint(),
            Step::Group(s) => s.hint(),
            Step::Protocol(s) => s.hint(),
        }
    }
}

impl CopyStep {
    /// The step's name as written in task files (`do = "..."`).
    pub fn kind(&self) -> &'static str {
        match self {
            CopyStep::Conn(s) => s.kind(),
            CopyStep::Repeat { .. } => "repeat",
            CopyStep::Protocol(s) => s.kind(),
        }
    }

    /// The step's own hint, if it has one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            CopyStep::Conn(s) => s.hint(),
            CopyStep::Repeat { .. } => None,
            CopyStep::Protocol(s) => s.hint(),
        }
    }
}

/// The one expectation among the fields given, if exactly one is (`timestamp_alone`: an
/// `expect` with only a `timestamp`, which expects any line holding one).
fn one_expectation(
    any: bool,
    contains: &Option<String>,
    regex: &Option<String>,
    exact: &Option<String>,
    json: &Option<BTreeMap<String, JsonPredicate>>,
    timestamp_alone: bool,
) -> Option<Expectation> {
    let mut found = Vec::new();
    if any {
        found.push(Expectation::Any);
    }
    if let Some(t) = contains {
        found.push(Expectation::Contains(t.clone()));
    }
    if let Some(t) = regex {
        found.push(Expectation::Regex(t.clone()));
    }
    if let Some(t) = exact {
        found.push(Expectation::Exact(t.clone()));
    }
    if let Some(j) = json {
        found.push(Expectation::Json(j.clone()));
    }
    if found.is_empty() && timestamp_alone {
        found.push(Expectation::Any);
    }
    if found.len() == 1 { found.pop() } else { None }
}

/// The body among the fields given, if exactly one is.
fn one_body(
    text: &Option<String>,
    line: &Option<String>,
    hex: &Option<String>,
    random: Option<usize>,
) -> Option<SendBody> {
    match (text, line, hex, random) {
        (Some(t), None, None, None) => Some(SendBody::Text(t.clone())),
        (None, Some(l), None, None) => Some(SendBody::Line(l.clone())),
        (None, None, Some(h), None) => Some(SendBody::Hex(h.clone())),
        (None, None, None, Some(n)) => Some(SendBody::Random(n)),
        _ => None,
    }
}

impl ConnStep {
    /// The expectation of an `expect` or `expect_not` step (validated to be exactly one);
    /// None for other steps.
    pub fn expectation(&self) -> Option<Expectation> {
        match self {
            ConnStep::Expect {
                any,
                contains,
                regex,
                exact,
                json,
                timestamp,
                ..
            } => one_expectation(*any, contains, regex, exact, json, timestamp.is_some()),
            ConnStep::ExpectNot {
                contains,
                regex,
                exact,
                json,
                ..
            } => one_expectation(false, contains, regex, exact, json, false),
            ConnStep::Connect { .. }
            | ConnStep::Send { .. }
            | ConnStep::WaitRead { .. }
            | ConnStep::Close { .. }
            | ConnStep::Abort { .. }
            | ConnStep::ExpectSilence { .. }
            | ConnStep::ExpectBytes { .. }
            | ConnStep::ExpectHttp { .. }
            | ConnStep::ExpectClosed { .. } => None,
        }
    }

    /// The `timestamp` qualifier of an `expect` step.
    pub fn timestamp(&self) -> Option<&super::TimestampSpec> {
        match self {
            ConnStep::Expect { timestamp, .. } => timestamp.as_ref(),
            ConnStep::Connect { .. }
            | ConnStep::Send { .. }
            | ConnStep::WaitRead { .. }
            | ConnStep::Close { .. }
            | ConnStep::Abort { .. }
            | ConnStep::ExpectSilence { .. }
            | ConnStep::ExpectNot { .. }
            | ConnStep::ExpectBytes { .. }
            | ConnStep::ExpectHttp { .. }
            | ConnStep::ExpectClosed { .. } => None,
        }
    }

    /// Where an `expect`, `expect_silence` or `expect_not` looks; None for other steps.
    pub fn target(&self) -> Option<&Target> {
        match self {
            ConnStep::Expect { on, .. }
            | ConnStep::ExpectSilence { on, .. }
            | ConnStep::ExpectNot { on, .. } => Some(on),
            ConnStep::Connect { .. }
            | ConnStep::Send { .. }
            | ConnStep::WaitRead { .. }
            | ConnStep::Close { .. }
            | ConnStep::Abort { .. }
            | ConnStep::ExpectBytes { .. }
            | ConnStep::ExpectHttp { .. }
            | ConnStep::ExpectClosed { .. } => None,
        }
    }

    /// The body of a `send` step (validated to be exactly one).
    pub fn send_body(&self) -> Option<SendBody> {
        match self {
            ConnStep::Send {
                text,
                line,
                hex,
                random,
                ..
            } => one_body(text, line, hex, *random),
            ConnStep::Connect { .. }
            | ConnStep::WaitRead { .. }
            | ConnStep::Close { .. }
            | ConnStep::Abort { .. }
            | ConnStep::Expect { .. }
            | ConnStep::ExpectSilence { .. }
            | ConnStep::ExpectNot { .. }
            | ConnStep::ExpectBytes { .. }
            | ConnStep::ExpectHttp { .. }
            | ConnStep::ExpectClosed { .. } => None,
        }
    }
}

impl DatagramStep {
    /// The expectation of an `expect_datagram` step (validated to be exactly one).
    pub fn expectation(&self) -> Option<Expectation> {
        match self {
            DatagramStep::ExpectDatagram {
                any,
                contains,
                regex,
                exact,
                ..
            } => one_expectation(*any, contains, regex, exact, &None, false),
            DatagramStep::UdpSocket { .. }
            | DatagramStep::SendDatagram { .. }
            | DatagramStep::ExpectNoDatagram { .. } => None,
        }
    }

    /// The body of a `send_datagram` step (validated to be exactly one).
    pub fn send_body(&self) -> Option<SendBody> {
        match self {
            DatagramStep::SendDatagram {
                text, line, hex, ..
            } => one_body(text, line, hex, None),
            DatagramStep::UdpSocket { .. }
            | DatagramStep::ExpectDatagram { .. }
            | DatagramStep::ExpectNoDatagram { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds serde knows for one enum, read from its "unknown variant" message (which lists
    /// them all, from the enum's variants).
    fn serde_kinds<T: for<'de> Deserialize<'de> + fmt::Debug>() -> Vec<String> {
        let value: toml::Value = toml::from_str("do = \"no-such-step\"").expect("toml");
        let e = T::deserialize(value).expect_err("unknown kind");
        let message = e.message().to_string();
        let list = message.split("expected ").nth(1).expect(&message);
        let list = list.trim_start_matches("one of ").replace(" or ", ", ");
        list.split(", ")
            .map(|k| k.trim_matches('`').to_string())
            .collect()
    }

    #[test]
    fn each_enums_kinds_are_exactly_its_variants() {
        let pairs: [(Vec<String>, &[&str]); 5] = [
            (serde_kinds::<ProcessStep>(), ProcessStep::KINDS),
            (serde_kinds::<ConnStep>(), ConnStep::KINDS),
            (serde_kinds::<DatagramStep>(), DatagramStep::KINDS),
            (serde_kinds::<GroupStep>(), GroupStep::KINDS),
            (serde_kinds::<ProtocolStep>(), ProtocolStep::KINDS),
        ];
        for (serde, kinds) in pairs {
            assert_eq!(serde, kinds);
        }
        let all: Vec<&str> = Step::kinds().collect();
        let unique: std::collections::BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len(), "a kind in two enums: {all:?}");
    }

    fn step(text: &str) -> Result<Step, String> {
        toml::from_str::<Step>(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn a_step_is_read_into_the_enum_of_what_it_acts_on() {
        assert!(matches!(
            step("do = \"connect\"\nconn = \"a\""),
            Ok(Step::Conn(ConnStep::Connect { .. }))
        ));
        assert!(matches!(
            step("do = \"expect_exit\"\nprocess = \"client\""),
            Ok(Step::Process(ProcessStep::ExpectExit { .. }))
        ));
        assert!(matches!(
            step("do = \"udp_socket\"\nsock = \"u\""),
            Ok(Step::Datagram(DatagramStep::UdpSocket { .. }))
        ));
        assert!(matches!(
            step("do = \"use\"\nblock = \"b\""),
            Ok(Step::Protocol(ProtocolStep::Use { .. }))
        ));
        let e = step("do = \"teleport\"").unwrap_err();
        assert!(
            e.starts_with("unknown variant `teleport`, expected one of `start_server`, "),
            "{e}"
        );
        assert_eq!(step("conn = \"a\"").unwrap_err(), "missing field `do`");
        let e = step("do = \"connect\"\nconn = \"a\"\nbogus = 1").unwrap_err();
        assert!(e.starts_with("unknown field `bogus`, expected"), "{e}");
    }

    #[test]
    fn parallel_holds_only_what_a_copy_may_run() {
        let ok = step(
            "do = \"parallel\"\ncount = 2\nsteps = [{ do = \"connect\", conn = \"c\" }, { do = \"repeat\", count = 2, steps = [{ do = \"close\", conn = \"c\" }] }, { do = \"join\", conn = \"d\" }]",
        );
        assert!(
            matches!(ok, Ok(Step::Group(GroupStep::Parallel { .. }))),
            "{ok:?}"
        );
        for (inner, why) in [
            (
                "{ do = \"expect_exit\", process = \"server\" }",
                "inner step 2 (expect_exit): `expect_exit` cannot be used inside `parallel`",
            ),
            (
                "{ do = \"udp_socket\", sock = \"u\" }",
                "inner step 2 (udp_socket): `udp_socket` cannot be used inside `parallel`",
            ),
            (
                "{ do = \"parallel\", count = 1, steps = [] }",
                "inner step 2 (parallel): `parallel` cannot be nested",
            ),
            (
                "{ do = \"repeat\", count = 1, steps = [{ do = \"type\", line = \"x\" }] }",
                "inner step 2 (repeat): inner step 1 (type): `type` cannot be used inside `parallel`",
            ),
        ] {
            let e = step(&format!(
                "do = \"parallel\"\ncount = 2\nsteps = [{{ do = \"connect\", conn = \"c\" }}, {inner}]"
            ))
            .unwrap_err();
            assert!(e.starts_with(why), "{e}");
        }
    }

    #[test]
    fn a_step_reads_back_as_written() {
        let text = "do = \"parallel\"\ncount = 2\nsteps = [{ do = \"connect\", conn = \"c\" }, { do = \"repeat\", count = 2, steps = [{ do = \"close\", conn = \"c\" }] }]";
        let s = step(text).unwrap();
        let again = toml::to_string(&s).unwrap();
        let back = step(&again).unwrap();
        assert_eq!(format!("{s:?}"), format!("{back:?}"));
        assert!(again.contains("do = \"repeat\""), "{again}");
    }
}
