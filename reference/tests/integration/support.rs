//! Test support: running the real binaries, finding free ports, and raw connections.
//!
//! Nothing here sleeps for a fixed time. Every wait is for an event (a line, a connection,
//! a process exit) and gives up after [`DEADLINE`], which is generous on purpose: these are
//! correctness tests, not timing tests.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single expected event may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// How long to wait for a sign of life between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(25);

/// The four reference binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    One,
    Two,
    Three,
    Four,
}

impl Task {
    pub const ALL: [Task; 4] = [Task::One, Task::Two, Task::Three, Task::Four];

    pub fn binary(self) -> &'static str {
        match self {
            Task::One => env!("CARGO_BIN_EXE_classchat-task1"),
            Task::Two => env!("CARGO_BIN_EXE_classchat-task2"),
            Task::Three => env!("CARGO_BIN_EXE_classchat-task3"),
            Task::Four => env!("CARGO_BIN_EXE_classchat-task4"),
        }
    }

    /// The extra client arguments this task needs: `--name <name>` for Task 4, none otherwise.
    pub fn name_args(self, name: &'static str) -> Vec<&'static str> {
        match self {
            Task::Four => vec!["--name", name],
            _ => Vec::new(),
        }
    }
}

/// A port that was free a moment ago and that no other test in this process has been given.
///
/// Another process may still take it before our server binds it; [`Server::start`] handles
/// that by trying again with a new port. Ports come from below the kernel's ephemeral range
/// (10000..20000; the grader's own pool is 20000..32000), never from it: a connection to a
/// closed ephemeral port can connect to itself (TCP simultaneous open, when the kernel picks
/// that very port as the source), which looks like a listening server, or like a refused
/// connection that was accepted.
pub fn free_port() -> u16 {
    const FIRST: u16 = 10_000;
    const SPAN: u16 = 10_000;
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    (0..SPAN)
        .map(|i| FIRST + (start + i) % SPAN)
        .find(|port| {
            !handed_out.contains(port) && TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).is_ok()
        })
        .inspect(|port| {
            handed_out.insert(*port);
        })
        .expect("a free port in 10000..20000")
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A running reference binary with piped stdin, stdout and stderr. Killed when dropped.
pub struct Program {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    unread_stdout: VecDeque<String>,
    stderr: Receiver<String>,
    stderr_seen: Vec<String>,
    exited: Option<ExitStatus>,
}

impl Program {
    pub fn spawn(task: Task, args: &[&str]) -> Self {
        let label = format!("{task:?} {}", args.join(" "));
        let mut child = Command::new(task.binary())
            .args(args)
            .env_remove("CLASSCHAT_HOST")
            .env_remove("CLASSCHAT_PORT")
            .env_remove("CLASSCHAT_NAME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {label}: {e}"));
        let stdin = child.stdin.take();
        let stdout = forward_lines(child.stdout.take().expect("piped stdout"));
        let stderr = forward_lines(child.stderr.take().expect("piped stderr"));
        Self {
            label,
            child,
            stdin,
            stdout,
            unread_stdout: VecDeque::new(),
            stderr,
            stderr_seen: Vec::new(),
            exited: None,
        }
    }

    /// Runs a client of `task` against `port` on loopback.
    pub fn client(task: Task, port: u16, extra: &[&str]) -> Self {
        let port = port.to_string();
        let mut args = vec!["client", "--host", "127.0.0.1", "--port", &port];
        args.extend_from_slice(extra);
        Self::spawn(task, &args)
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// Types one line on the program's stdin.
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: write stdin: {e}", self.label));
    }

    /// Closes the program's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next line the program prints on stdout.
    pub fn next_line(&mut self) -> String {
        if let Some(line) = self.unread_stdout.pop_front() {
            return line;
        }
        match self.stdout.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => self.fail("no stdout line within the deadline"),
            Err(RecvTimeoutError::Disconnected) => self.fail("stdout ended"),
        }
    }

    /// Asserts that the next stdout line is exactly `expected`.
    pub fn expect_line(&mut self, expected: &str) {
        let line = self.next_line();
        if line != expected {
            self.fail(&format!("expected stdout line {expected:?}, got {line:?}"));
        }
    }

    /// Asserts that nothing appears on stdout for `quiet`, which is all the time the test waits.
    pub fn expect_silence_for(&mut self, quiet: Duration) {
        match self.stdout.recv_timeout(quiet) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(line) => self.fail(&format!("unexpected stdout line {line:?}")),
            Err(RecvTimeoutError::Disconnected) => self.fail("exited while expected to idle"),
        }
    }

    /// Waits until the program exits; its remaining stdout stays readable.
    pub fn wait_exit(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        // The program's stdout closes when it exits: collect lines until then.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => self.unread_stdout.push_back(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("did not exit within the deadline"),
            }
        }
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("{}: wait: {e}", self.label));
        self.exited = Some(status);
        // Its stderr is closed too, but the thread forwarding it may still hold the last lines:
        // collect until that thread is done, so `stderr_lines` is complete.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.stderr_seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("kept its stderr open after exiting"),
            }
        }
        status
    }

    /// Everything printed on stderr so far (complete after [`Program::wait_exit`]).
    pub fn stderr_lines(&mut self) -> Vec<String> {
        self.stderr_seen.extend(self.stderr.try_iter());
        self.stderr_seen.clone()
    }

    /// Sends a signal to the program.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal)
            .unwrap_or_else(|e| panic!("{}: kill -{signal}: {e}", self.label));
    }

    /// Whether the program is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Fails the test with the program's stderr attached.
    #[track_caller]
    pub fn fail(&mut self, what: &str) -> ! {
        let stderr = self.stderr_lines().join("\n  ");
        panic!("{}: {what}\n stderr:\n  {stderr}", self.label)
    }

    /// Waits until the program, a server on `port`, accepts connections.
    ///
    /// Returns `false` if it exited instead (typically: the port was taken).
    fn wait_until_listening(&mut self, port: u16) -> bool {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            // A probe of a port in the ephemeral range can connect to itself (TCP simultaneous
            // open, when the kernel picks the same port as its source): that is not the server.
            if TcpStream::connect_timeout(&loopback(port), DEADLINE)
                .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok())
            {
                return true;
            }
            if !self.is_running() {
                return false;
            }
            // Not ready yet: wait for the server to say something (it announces that it
            // is listening), or for a short interval, before probing again.
            match self.stderr.recv_timeout(PROBE_INTERVAL) {
                Ok(line) => self.stderr_seen.push(line),
                Err(RecvTimeoutError::Timeout) => {}
                // stderr closed: the process is exiting.
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    return false;
                }
            }
        }
        self.fail("did not start listening within the deadline")
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Forwards each line of `pipe` into a channel; the channel closes at end of stream.
fn forward_lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// A reference server listening on a loopback port of its own.
pub struct Server {
    pub port: u16,
    pub program: Program,
}

impl Server {
    pub fn start(task: Task) -> Self {
        for _attempt in 0..20 {
            let port = free_port();
            let mut program = Program::spawn(task, &["server", "--port", &port.to_string()]);
            if program.wait_until_listening(port) {
                return Self { port, program };
            }
            // Someone else took the port between our check and the server's bind: retry.
        }
        panic!("could not start a {task:?} server on any port");
    }

    /// A raw connection to this server.
    pub fn connect(&self) -> Conn {
        Conn::open(self.port)
    }

    /// A reference client of `task` connected to this server.
    pub fn client(&self, task: Task, extra: &[&str]) -> Program {
        Program::client(task, self.port, extra)
    }
}

/// A raw TCP connection, for speaking the protocol directly.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(port: u16) -> Self {
        let stream = TcpStream::connect_timeout(&loopback(port), DEADLINE)
            .unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
        stream
            .set_read_timeout(Some(DEADLINE))
            .expect("set timeout");
        stream.set_nodelay(true).expect("set nodelay");
        Self {
            reader: BufReader::new(stream),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Sends one line (adds the `\n`).
    pub fn send_line(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Reads one line, without its line ending. Panics on end of stream or timeout.
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("connection closed while a line was expected"),
            Ok(_) => line.trim_end_matches(['\r', '\n']).to_owned(),
            Err(e) => panic!("read a line: {e}"),
        }
    }

    /// Reads one line and parses it as JSON.
    pub fn read_json(&mut self) -> serde_json::Value {
        let line = self.read_line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }

    /// Asserts that the server closes the connection without sending anything more.
    pub fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(
                rest.is_empty(),
                "unexpected data before close: {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("waiting for close: {e}"),
        }
    }

    /// Ends the connection with a TCP reset instead of an orderly close.
    pub fn reset(self) {
        let stream = self.reader.into_inner();
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .expect("set SO_LINGER 0");
        drop(stream);
    }
}
