//! Protocol steps and blocks, expanded into primitive steps when a task file is loaded.
//!
//! A scenario says what it tests once — `{ do = "join", conn = "alice", name = "alice" }` —
//! and the [`Protocol`] in force (the task's `[protocol]` table under a dialect) decides the
//! bytes: whether an acknowledgment is awaited, how the name is registered, the JSON field
//! names, how a forwarded message looks, the exit word, whether a reply must echo.
//! `{ do = "use", block = "...", with = { ... } }` inserts the steps of a `[block.<name>]`
//! table with its `{param}`s replaced.
//!
//! Guarantees: the result holds only primitive steps (the engine, validation and reports see
//! nothing else); under [`Protocol::default`] each protocol step becomes exactly the steps the
//! task files spelled out before protocol steps existed; for every expanded top-level step the
//! index of the step it came from is kept, so errors found later point at the step as written.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::protocol::{Ack, Errors, MessageFormat, Protocol, Register, Reply};
use super::{
    ConnStep, CopyStep, GroupStep, JsonPredicate, ProcessStep, ProtocolStep, Role, Step, Target,
    TaskSpec,
};
use crate::spec::step::{FilePart, GroupAction, JsonOp};

/// A reusable sequence of steps with parameters: `[block.<name>]` in a task file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// What the block does (documentation only).
    #[serde(default)]
    pub description: Option<String>,
    /// The names of its parameters; `{name}` in the block's text is replaced by the value
    /// `use` gives.
    #[serde(default)]
    pub params: Vec<String>,
    /// The steps, as written (expanded when used).
    pub steps: Vec<toml::Value>,
}

const ACK_HINT: &str = "send an acknowledgment line when a client connects";
/// How deep `use` may nest (a block using a block ...).
const MAX_DEPTH: usize = 8;

/// Expands every scenario of `spec` under `protocol`; returns, per scenario, the index of the
/// written step each expanded top-level step came from. An error names the scenario index, the
/// written step index and what is wrong.
pub(crate) fn expand_spec(
    spec: &mut TaskSpec,
    protocol: &Protocol,
) -> Result<Vec<Vec<usize>>, ExpandError> {
    let mut origins = Vec::with_capacity(spec.scenarios.len());
    let blocks = spec.blocks.clone();
    // Every block's steps must be steps, used or not (a parameter is any text until used).
    for (name, b) in &blocks {
        for (n, raw) in b.steps.iter().enumerate() {
            Step::deserialize(raw.clone()).map_err(|e| {
                ExpandError::Block(
                    name.clone(),
                    format!("[block.{name}], step {}: {}", n + 1, e.message()),
                )
            })?;
        }
    }
    for (i, sc) in spec.scenarios.iter_mut().enumerate() {
        let mut cx = Cx {
            p: protocol,
            blocks: &blocks,
            role: sc.role,
            names: HashMap::new(),
            client_name: None,
        };
        let mut steps = Vec::with_capacity(sc.steps.len());
        let mut origin = Vec::with_capacity(sc.steps.len());
        sc.origins.clear();
        for (j, step) in sc.steps.iter().enumerate() {
            let before = steps.len();
            cx.step(step, &mut steps, 0).map_err(|m| {
                ExpandError::Step(
                    i,
                    j,
                    format!(
                        "scenario {:?}, step {} ({}): {m}",
                        sc.name,
                        j + 1,
                        step.kind()
                    ),
                )
            })?;
            origin.extend(std::iter::repeat_n(j, steps.len() - before));
            sc.origins
                .extend(std::iter::repeat_n((j, step.kind()), steps.len() - before));
        }
        sc.steps = steps;
        origins.push(origin);
    }
    Ok(origins)
}

/// Why a spec cannot be expanded.
pub(crate) enum ExpandError {
    /// Scenario index, written step index, message.
    Step(usize, usize, String),
    /// A block (by name) whose steps are not steps.
    Block(String, String),
}

struct Cx<'a> {
    p: &'a Protocol,
    blocks: &'a BTreeMap<String, Block>,
    role: Role,
    /// Connection → the name it joined with (server role).
    names: HashMap<String, String>,
    /// The name the student's client registered (client role).
    client_name: Option<String>,
}

/// The fields of an `expect` step on a connection, built and adjusted by expansion before it
/// becomes a [`ConnStep::Expect`].
struct Exp {
    on: String,
    any: bool,
    contains: Option<String>,
    regex: Option<String>,
    exact: Option<String>,
    json: Option<BTreeMap<String, JsonPredicate>>,
    within: Option<super::Dur>,
    hint: Option<String>,
    nocase: bool,
    optional: bool,
}

impl From<Exp> for Step {
    fn from(e: Exp) -> Step {
        let Exp {
            on,
            any,
            contains,
            regex,
            exact,
            json,
            within,
            hint,
            nocase,
            optional,
        } = e;
        Step::Conn(ConnStep::Expect {
            on: Target::Conn(on),
            any,
            contains,
            regex,
            exact,
            json,
            within,
            hint,
            nocase,
            optional,
            timestamp: None,
        })
    }
}

fn expect(on: &str) -> Exp {
    Exp {
        on: on.to_string(),
        any: false,
        contains: None,
        regex: None,
        exact: None,
        json: None,
        within: None,
        hint: None,
        nocase: false,
        optional: false,
    }
}

fn with(mut e: Exp, f: impl FnOnce(&mut Exp)) -> Exp {
    f(&mut e);
    e
}

fn set_any(e: &mut Exp) {
    e.any = true;
}

fn send_line(conn: &str, line: String) -> Step {
    Step::Conn(ConnStep::Send {
        conn: conn.to_string(),
        text: None,
        line: Some(line),
        hex: None,
        random: None,
    })
}

/// A JSON object as a `line` template: the object's braces doubled, each value a template
/// (its placeholders kept), JSON-escaped. Pairs with an empty key are left out.
fn json_line(pairs: &[(&str, &str)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| {
            let key = serde_json::Value::String(k.to_string())
                .to_string()
                .replace('{', "{{")
                .replace('}', "}}");
            format!("{key}:{}", serde_json::Value::String(v.to_string()))
        })
        .collect();
    format!("{{{{{}}}}}", body.join(","))
}

fn equals(v: &str) -> JsonPredicate {
    JsonPredicate::Equals(serde_json::Value::String(v.to_string()))
}

impl Cx<'_> {
    fn need_role(&self, role: Role, kind: &str) -> Result<(), String> {
        if self.role == role {
            return Ok(());
        }
        let r = match role {
            Role::Server => "server",
            Role::Client => "client",
        };
        Err(format!(
            "`{kind}` belongs in a scenario with role = \"{r}\" (the grader plays the other side)"
        ))
    }

    fn need_json(&self, kind: &str) -> Result<(), String> {
        if self.p.format == MessageFormat::Json {
            Ok(())
        } else {
            Err(format!(
                "`{kind}` sends chat messages between clients: it needs format = \"json\" in the task's [protocol]"
            ))
        }
    }

    /// A JSON predicate map from (field, predicate) pairs, leaving out fields named "".
    fn preds(&self, pairs: Vec<(&str, JsonPredicate)>) -> Option<BTreeMap<String, JsonPredicate>> {
        let map: BTreeMap<String, JsonPredicate> = pairs
            .into_iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        (!map.is_empty()).then_some(map)
    }

    /// An expectation of a JSON object with these fields (any text when none is left).
    fn expect_json(&self, on: &str, pairs: Vec<(&str, JsonPredicate)>) -> Exp {
        match self.preds(pairs) {
            Some(map) => with(expect(on), |s| {
                let Exp { json, .. } = s;
                *json = Some(map);
            }),
            None => with(expect(on), set_any),
        }
    }

    fn status_word<'w>(&self, word: &'w str) -> Vec<(&str, &'w str)> {
        vec![(self.p.fields.status.as_str(), word)]
    }

    fn step(&mut self, step: &Step, out: &mut Vec<Step>, depth: usize) -> Result<(), String> {
        let p = self.p;
        let f = &p.fields;
        let w = &p.words;
        match step {
            Step::Group(GroupStep::Repeat { count, steps }) => {
                let mut inner = Vec::new();
                for s in steps {
                    self.step(s, &mut inner, depth)?;
                }
                out.push(Step::Group(GroupStep::Repeat {
                    count: *count,
                    steps: inner,
                }));
            }
            Step::Group(GroupStep::Parallel {
                count,
                steps,
                isolated,
                burst,
            }) => {
                // Each copy step is expanded as a step; what it expands to must fit a copy.
                let mut inner = Vec::new();
                for (k, s) in steps.iter().enumerate() {
                    let mut piece = Vec::new();
                    self.step(&Step::from(s.clone()), &mut piece, depth)?;
                    for expanded in piece {
                        let copy = CopyStep::try_from(expanded).map_err(|m| {
                            format!("inner step {} ({}) expands to {m}", k + 1, s.kind())
                        })?;
                        inner.push(copy);
                    }
                }
                out.push(Step::Group(GroupStep::Parallel {
                    count: *count,
                    steps: inner,
                    isolated: *isolated,
                    burst: *burst,
                }));
            }
            Step::Protocol(ProtocolStep::Join {
                conn,
                name,
                taken,
                within,
            }) => {
                self.need_role(Role::Server, "join")?;
                out.push(Step::Conn(ConnStep::Connect {
                    conn: conn.clone(),
                    within: *within,
                }));
                let ack = |optional: bool, hint: &str| {
                    with(expect(conn), |s| {
                        let Exp {
                            any,
                            within: wi,
                            hint: h,
                            optional: o,
                            ..
                        } = s;
                        *any = true;
                        *wi = *within;
                        *h = Some(hint.to_string());
                        *o = optional;
                    })
                };
                let Some(name) = name else {
                    if p.ack == Ack::OnConnect {
                        out.push(Step::from(ack(!p.ack_required, ACK_HINT)));
                    }
                    return Ok(());
                };
                if !*taken {
                    self.names.insert(conn.clone(), name.clone());
                }
                if p.register == Register::Prompt {
                    out.push(Step::from(ack(
                        false,
                        "ask a new client for its user name (a prompt) when it connects",
                    )));
                } else if p.ack == Ack::OnConnect {
                    out.push(Step::from(ack(false, ACK_HINT)));
                }
                let confirm = |hint: String| {
                    with(expect(conn), |s| {
                        let Exp {
                            within: wi,
                            hint: h,
                            ..
                        } = s;
                        *wi = *within;
                        *h = Some(hint);
                    })
                };
                let read = Step::Conn(ConnStep::WaitRead {
                    conn: conn.clone(),
                    within: *within,
                    hint: Some("read the user name a client sends".into()),
                });
                let refused = || {
                    let step = match p.errors {
                        Errors::Json => {
                            self.expect_json(conn, vec![(f.status.as_str(), equals(&w.error))])
                        }
                        Errors::Text => with(expect(conn), set_any),
                    };
                    with(step, |s| {
                        let Exp {
                            within: wi,
                            hint: h,
                            ..
                        } = s;
                        *wi = *within;
                        *h = Some(
                                "refuse a name that is already registered with an error (PROTOCOL.md: the text says \"taken\")"
                                    .into(),
                            );
                    })
                };
                match p.register {
                    Register::Json if *taken => {
                        let mut pairs = self.status_word(&w.register);
                        pairs.push((&f.sender, name));
                        out.push(send_line(conn, json_line(&pairs)));
                        out.push(Step::from(refused()));
                    }
                    Register::NameLine | Register::Prompt if *taken => {
                        out.push(send_line(conn, name.clone()));
                        out.push(Step::from(refused()));
                    }
                    Register::Json => {
                        let mut pairs = self.status_word(&w.register);
                        pairs.push((&f.sender, name));
                        out.push(send_line(conn, json_line(&pairs)));
                        if p.ack == Ack::None {
                            out.push(read);
                        } else {
                            let ok =
                                self.expect_json(conn, vec![(f.status.as_str(), equals(&w.ok))]);
                            let hint = format!(
                                "answer a register message for a free name with {}",
                                plain(&json_line(&self.status_word(&w.ok)))
                            );
                            out.push(Step::from(with(ok, |s| {
                                let Exp {
                                    within: wi,
                                    hint: h,
                                    ..
                                } = s;
                                *wi = *within;
                                *h = Some(hint);
                            })));
                        }
                    }
                    Register::NameLine | Register::Prompt => {
                        out.push(send_line(conn, name.clone()));
                        if p.ack == Ack::AfterRegister {
                            out.push(Step::from(with(
                                confirm("greet a client once it has sent its user name".into()),
                                set_any,
                            )));
                        } else {
                            out.push(read);
                        }
                    }
                    Register::None => {}
                }
            }
            Step::Protocol(ProtocolStep::Chat {
                conn,
                to,
                text,
                from,
            }) => {
                self.need_role(Role::Server, "chat")?;
                self.need_json("chat")?;
                let sender = from
                    .clone()
                    .or_else(|| self.names.get(conn).cloned())
                    .unwrap_or_else(|| conn.clone());
                let mut pairs = self.status_word(&w.chat);
                pairs.extend([
                    (f.sender.as_str(), sender.as_str()),
                    (f.receiver.as_str(), to.as_str()),
                    (f.text.as_str(), text.as_str()),
                ]);
                out.push(send_line(conn, json_line(&pairs)));
            }
            Step::Protocol(ProtocolStep::ExpectChat {
                on,
                from,
                text,
                within,
                hint,
            }) => {
                self.need_role(Role::Server, "expect_chat")?;
                let receiver = self.names.get(on).cloned().unwrap_or_else(|| on.clone());
                let step = if p.forward == "json" {
                    self.expect_json(
                        on,
                        vec![
                            (f.sender.as_str(), equals(from)),
                            (f.text.as_str(), equals(text)),
                        ],
                    )
                } else {
                    let line = fill(&p.forward, from, &receiver, text);
                    with(expect(on), |s| {
                        let Exp { contains, .. } = s;
                        *contains = Some(line);
                    })
                };
                out.push(Step::from(with(step, |s| {
                    let Exp {
                        within: wi,
                        hint: h,
                        ..
                    } = s;
                    *wi = *within;
                    *h = hint.clone();
                })));
            }
            Step::Protocol(ProtocolStep::ExpectError {
                on,
                mentions,
                within,
                hint,
            }) => {
                self.need_role(Role::Server, "expect_error")?;
                let step = match p.errors {
                    Errors::Json => {
                        let mut pairs = vec![(f.status.as_str(), equals(&w.error))];
                        if let Some(m) = mentions {
                            pairs.push((
                                f.text.as_str(),
                                JsonPredicate::Op(JsonOp {
                                    contains: Some(m.clone()),
                                    ..JsonOp::default()
                                }),
                            ));
                        }
                        self.expect_json(on, pairs)
                    }
                    Errors::Text => with(expect(on), |s| {
                        let Exp { any, contains, .. } = s;
                        match mentions {
                            Some(m) => *contains = Some(m.clone()),
                            None => *any = true,
                        }
                    }),
                };
                out.push(Step::from(with(step, |s| {
                    let Exp {
                        within: wi,
                        hint: h,
                        ..
                    } = s;
                    *wi = *within;
                    *h = hint.clone();
                })));
            }
            Step::Protocol(ProtocolStep::SayExit { conn }) => {
                self.need_role(Role::Server, "say_exit")?;
                match p.exit_word() {
                    None => out.push(Step::Conn(ConnStep::Close { conn: conn.clone() })),
                    Some(word) if p.format == MessageFormat::Json && !f.status.is_empty() => {
                        let sender = self
                            .names
                            .get(conn)
                            .cloned()
                            .unwrap_or_else(|| conn.clone());
                        let pairs = [(f.status.as_str(), word), (f.sender.as_str(), &sender)];
                        out.push(send_line(conn, json_line(&pairs)));
                    }
                    Some(word) => out.push(send_line(conn, word.to_string())),
                }
            }
            Step::Protocol(ProtocolStep::ExpectReply {
                on,
                to,
                within,
                hint,
            }) => {
                self.need_role(Role::Server, "expect_reply")?;
                out.push(Step::from(with(expect(on), |s| {
                    let Exp {
                        any,
                        contains,
                        nocase,
                        within: wi,
                        hint: h,
                        ..
                    } = s;
                    match p.reply {
                        Reply::Echo => *contains = Some(to.clone()),
                        Reply::EchoAnyCase => {
                            *contains = Some(to.clone());
                            *nocase = true;
                        }
                        Reply::Any => *any = true,
                    }
                    *wi = *within;
                    *h = hint.clone();
                })));
            }
            Step::Protocol(ProtocolStep::Welcome { conn, within }) => {
                self.need_role(Role::Client, "welcome")?;
                out.push(Step::Process(ProcessStep::Accept {
                    conn: conn.clone(),
                    within: *within,
                    assigned_port: false,
                }));
                if p.register == Register::Prompt {
                    out.push(send_line(conn, "Enter your name:".into()));
                } else if p.ack == Ack::OnConnect {
                    out.push(send_line(
                        conn,
                        self.greeting("connected to ClassChat; please register"),
                    ));
                }
            }
            Step::Protocol(ProtocolStep::ExpectRegister {
                on,
                name,
                within,
                hint,
            }) => {
                self.need_role(Role::Client, "expect_register")?;
                self.client_name = Some(name.clone());
                let step = match p.register {
                    Register::Json => {
                        let mut pairs = vec![(f.status.as_str(), equals(&w.register))];
                        pairs.push((f.sender.as_str(), equals(name)));
                        Some(self.expect_json(on, pairs))
                    }
                    Register::NameLine | Register::Prompt => Some(with(expect(on), |s| {
                        let Exp { exact, .. } = s;
                        *exact = Some(name.clone());
                    })),
                    Register::None => None,
                };
                let generated = match p.register {
                    Register::Json => {
                        let mut pairs = self.status_word(&w.register);
                        pairs.push((&f.sender, "NAME"));
                        format!(
                            "right after connecting send {} with the --name given",
                            plain(&json_line(&pairs))
                        )
                    }
                    _ => "send the --name given, alone on a line, as the first thing after connecting".into(),
                };
                if let Some(step) = step {
                    out.push(Step::from(with(step, |s| {
                        let Exp {
                            within: wi,
                            hint: h,
                            ..
                        } = s;
                        *wi = *within;
                        *h = hint.clone().or(Some(generated));
                    })));
                }
                let confirmed = match p.register {
                    Register::Json => p.ack != Ack::None,
                    _ => p.ack == Ack::AfterRegister,
                };
                if confirmed {
                    out.push(send_line(
                        on,
                        self.greeting(&format!("registered as {name}")),
                    ));
                }
            }
            Step::Protocol(ProtocolStep::Deliver {
                conn,
                from,
                text,
                to,
            }) => {
                self.need_role(Role::Client, "deliver")?;
                let receiver = to
                    .clone()
                    .or_else(|| self.client_name.clone())
                    .unwrap_or_default();
                let line = if p.forward == "json" {
                    let mut pairs = self.status_word(&w.chat);
                    pairs.extend([
                        (f.sender.as_str(), from.as_str()),
                        (f.receiver.as_str(), receiver.as_str()),
                        (f.text.as_str(), text.as_str()),
                    ]);
                    json_line(&pairs)
                } else {
                    fill(&p.forward, from, &receiver, text)
                };
                out.push(send_line(conn, line));
            }
            Step::Protocol(ProtocolStep::SendError { conn, text }) => {
                self.need_role(Role::Client, "send_error")?;
                let line = match p.errors {
                    Errors::Json => {
                        let mut pairs = self.status_word(&w.error);
                        pairs.push((&f.text, text));
                        json_line(&pairs)
                    }
                    Errors::Text => text.clone(),
                };
                out.push(send_line(conn, line));
            }
            Step::Protocol(ProtocolStep::ExpectSentChat {
                on,
                to,
                text,
                within,
                hint,
            }) => {
                self.need_role(Role::Client, "expect_sent_chat")?;
                self.need_json("expect_sent_chat")?;
                let mut pairs = vec![(f.status.as_str(), equals(&w.chat))];
                if let Some(name) = &self.client_name {
                    pairs.push((f.sender.as_str(), equals(name)));
                }
                pairs.extend([
                    (f.receiver.as_str(), equals(to)),
                    (f.text.as_str(), equals(text)),
                ]);
                let step = self.expect_json(on, pairs);
                let mut example = self.status_word(&w.chat);
                example.extend([
                    (f.sender.as_str(), "NAME"),
                    (f.receiver.as_str(), "RECEIVER"),
                    (f.text.as_str(), "TEXT"),
                ]);
                let generated = format!(
                    "turn a typed `receiver: text` into {} (text without the leading space)",
                    plain(&json_line(&example))
                );
                out.push(Step::from(with(step, |s| {
                    let Exp {
                        within: wi,
                        hint: h,
                        ..
                    } = s;
                    *wi = *within;
                    *h = hint.clone().or(Some(generated));
                })));
            }
            Step::Protocol(ProtocolStep::TypeExit {}) => {
                self.need_role(Role::Client, "type_exit")?;
                out.push(match p.exit_word() {
                    Some(word) => Step::Process(ProcessStep::Type {
                        line: word.to_string(),
                        paste: None,
                    }),
                    None => Step::Process(ProcessStep::CloseStdin {}),
                });
            }
            Step::Protocol(ProtocolStep::ExpectSaidExit { on, within, hint }) => {
                self.need_role(Role::Client, "expect_said_exit")?;
                let step = match p.exit_word() {
                    None => Step::Conn(ConnStep::ExpectClosed {
                        on: on.clone(),
                        within: *within,
                        hint: hint.clone(),
                    }),
                    Some(word) => {
                        let step = if p.format == MessageFormat::Json && !f.status.is_empty() {
                            self.expect_json(on, vec![(f.status.as_str(), equals(word))])
                        } else {
                            with(expect(on), |s| {
                                let Exp { contains, .. } = s;
                                *contains = Some(word.to_string());
                            })
                        };
                        Step::from(with(step, |s| {
                            let Exp {
                                within: wi,
                                hint: h,
                                ..
                            } = s;
                            *wi = *within;
                            *h = hint.clone();
                        }))
                    }
                };
                out.push(step);
            }
            Step::Protocol(ProtocolStep::Group {
                conn,
                action,
                group,
                within,
                hint,
            }) => {
                self.need_role(Role::Server, "group")?;
                self.need_json("group")?;
                let word = match action {
                    GroupAction::Create => &w.group_create,
                    GroupAction::Join => &w.group_join,
                    GroupAction::Leave => &w.group_leave,
                };
                let sender = self.sender(conn);
                let mut pairs = self.status_word(word);
                pairs.extend([
                    (f.sender.as_str(), sender.as_str()),
                    (f.group.as_str(), group.as_str()),
                ]);
                out.push(send_line(conn, json_line(&pairs)));
                let ok = self.expect_json(conn, vec![(f.status.as_str(), equals(&w.ok))]);
                let generated = format!(
                    "answer {} with {} once it is done",
                    plain(&json_line(&pairs)),
                    plain(&json_line(&self.status_word(&w.ok)))
                );
                out.push(Step::from(with(ok, |s| {
                    let Exp {
                        within: wi,
                        hint: h,
                        ..
                    } = s;
                    *wi = *within;
                    *h = hint.clone().or(Some(generated));
                })));
            }
            Step::Protocol(ProtocolStep::GroupChat { conn, group, text }) => {
                self.need_role(Role::Server, "group_chat")?;
                self.need_json("group_chat")?;
                let sender = self.sender(conn);
                let mut pairs = self.status_word(&w.group_message);
                pairs.extend([
                    (f.sender.as_str(), sender.as_str()),
                    (f.group.as_str(), group.as_str()),
                    (f.text.as_str(), text.as_str()),
                ]);
                out.push(send_line(conn, json_line(&pairs)));
            }
            Step::Protocol(ProtocolStep::ExpectGroupChat {
                on,
                group,
                from,
                text,
                within,
                hint,
            }) => {
                self.need_role(Role::Server, "expect_group_chat")?;
                let step = if p.forward == "json" {
                    self.expect_json(
                        on,
                        vec![
                            (f.sender.as_str(), equals(from)),
                            (f.group.as_str(), equals(group)),
                            (f.text.as_str(), equals(text)),
                        ],
                    )
                } else {
                    // A plain-text forward names the group where it names the receiver.
                    let line = fill(&p.forward, from, group, text);
                    with(expect(on), |s| {
                        let Exp { contains, .. } = s;
                        *contains = Some(line);
                    })
                };
                out.push(Step::from(with(step, |s| {
                    let Exp {
                        within: wi,
                        hint: h,
                        ..
                    } = s;
                    *wi = *within;
                    *h = hint.clone();
                })));
            }
            Step::Protocol(ProtocolStep::SendFile {
                conn,
                to,
                filename,
                data,
                split,
                part,
            }) => {
                self.need_role(Role::Server, "send_file")?;
                self.need_json("send_file")?;
                let sender = self.sender(conn);
                let mut pairs = self.status_word(&w.file);
                pairs.extend([
                    (f.sender.as_str(), sender.as_str()),
                    (f.receiver.as_str(), to.as_str()),
                    (f.filename.as_str(), filename.as_str()),
                    (f.data.as_str(), data.as_str()),
                ]);
                let line = json_line(&pairs);
                match (split, part) {
                    (None, None) => out.push(send_line(conn, line)),
                    (Some(cut), Some(part)) => {
                        let at = (!cut.is_empty() && data.contains(cut.as_str()))
                            .then(|| line.find(cut.as_str()))
                            .flatten()
                            .map(|i| i + cut.len())
                            .ok_or_else(|| {
                                format!("`split` = {cut:?} is not a part of `data` = {data:?}")
                            })?;
                        match part {
                            FilePart::First => {
                                out.push(Step::Conn(ConnStep::Send {
                                    conn: conn.clone(),
                                    text: Some(line[..at].to_string()),
                                    line: None,
                                    hex: None,
                                    random: None,
                                }));
                                out.push(Step::Conn(ConnStep::WaitRead {
                                    conn: conn.clone(),
                                    within: None,
                                    hint: Some(
                                        "read what a client sends even before its message is complete"
                                            .into(),
                                    ),
                                }));
                            }
                            FilePart::Rest => out.push(send_line(conn, line[at..].to_string())),
                        }
                    }
                    (Some(_), None) => {
                        return Err("`split` needs `part = \"first\"` or `part = \"rest\"`".into());
                    }
                    (None, Some(_)) => {
                        return Err("`part` needs `split` (where the message is cut)".into());
                    }
                }
            }
            Step::Protocol(ProtocolStep::ExpectFile {
                on,
                from,
                filename,
                data,
                within,
                hint,
            }) => {
                self.need_role(Role::Server, "expect_file")?;
                self.need_json("expect_file")?;
                let step = self.expect_json(
                    on,
                    vec![
                        (f.sender.as_str(), equals(from)),
                        (f.filename.as_str(), equals(filename)),
                        (f.data.as_str(), equals(data)),
                    ],
                );
                out.push(Step::from(with(step, |s| {
                    let Exp {
                        within: wi,
                        hint: h,
                        ..
                    } = s;
                    *wi = *within;
                    *h = hint.clone();
                })));
            }
            Step::Protocol(ProtocolStep::Use { block, with: args }) => {
                if depth >= MAX_DEPTH {
                    return Err(format!(
                        "blocks nest more than {MAX_DEPTH} deep (does block {block:?} use itself?)"
                    ));
                }
                let b = self.blocks.get(block).ok_or_else(|| {
                    let known: Vec<&str> = self.blocks.keys().map(String::as_str).collect();
                    format!(
                        "there is no [block.{block}]{}",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" (blocks: {})", known.join(", "))
                        }
                    )
                })?;
                for k in args.keys() {
                    if !b.params.contains(k) {
                        return Err(format!(
                            "block {block:?} has no parameter {k:?} (its params: {:?})",
                            b.params
                        ));
                    }
                }
                for k in &b.params {
                    if !args.contains_key(k) {
                        return Err(format!(
                            "block {block:?} needs a value for {k:?}: with = {{ {k} = \"...\" }}"
                        ));
                    }
                }
                for (n, raw) in b.steps.iter().enumerate() {
                    let raw = substitute(raw, args);
                    let s = Step::deserialize(raw)
                        .map_err(|e| format!("block {block:?}, step {}: {}", n + 1, e.message()))?;
                    self.step(&s, out, depth + 1)
                        .map_err(|e| format!("block {block:?}, step {}: {e}", n + 1))?;
                }
            }
            Step::Process(_) | Step::Conn(_) | Step::Datagram(_) => out.push(step.clone()),
        }
        Ok(())
    }

    /// The name a connection joined with (its own name when it joined with none).
    fn sender(&self, conn: &str) -> String {
        self.names
            .get(conn)
            .cloned()
            .unwrap_or_else(|| conn.to_string())
    }

    /// A greeting or confirmation from the grader playing the server.
    fn greeting(&self, text: &str) -> String {
        if self.p.format == MessageFormat::Json {
            let mut pairs = self.status_word(&self.p.words.ok);
            pairs.push((&self.p.fields.text, text));
            json_line(&pairs)
        } else {
            format!("ACK: {text}")
        }
    }
}

/// A `line` template as the text it stands for (for hints, which are not expanded).
fn plain(template: &str) -> String {
    template.replace("{{", "{").replace("}}", "}")
}

/// The forward template with `{sender}`, `{receiver}` and `{text}` filled in; the result is a
/// step template (the text's own placeholders are kept).
fn fill(template: &str, sender: &str, receiver: &str, text: &str) -> String {
    template
        .replace("{sender}", sender)
        .replace("{receiver}", receiver)
        .replace("{text}", text)
}

/// `{param}` replaced by its value in every string of a raw step.
fn substitute(raw: &toml::Value, args: &BTreeMap<String, String>) -> toml::Value {
    match raw {
        toml::Value::String(s) => {
            let mut s = s.clone();
            for (k, v) in args {
                s = s.replace(&format!("{{{k}}}"), v);
            }
            toml::Value::String(s)
        }
        toml::Value::Array(a) => {
            toml::Value::Array(a.iter().map(|v| substitute(v, args)).collect())
        }
        toml::Value::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, v)| (k.clone(), substitute(v, args)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_templates_of_objects() {
        assert_eq!(
            json_line(&[("status", "1"), ("", "x"), ("text", "hi \"{nonce}\"")]),
            r#"{{"status":"1","text":"hi \"{nonce}\""}}"#
        );
    }
}
