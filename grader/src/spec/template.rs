//! Placeholders in the text of steps, so that a hard-coded output cannot pass and every run can
//! be replayed from its seed.
//!
//! - `{nonce}` / `{nonce:KEY}`: a random 8-character token, the same everywhere in one scenario
//!   run for the same KEY, different for different keys and scenarios; derived from the seed.
//! - `{payload:N}`: N printable ASCII characters derived from the seed (the same N gives the same
//!   text within a scenario), for long-line tests.
//! - `{base64:N}` / `{base64:N:KEY}`: N bytes of binary content written in standard base64
//!   (RFC 4648, padded, no line breaks), for file transfers: the first bytes are every byte
//!   value 0..=255 in order (so NUL bytes and invalid UTF-8 are always there), the rest random
//!   from the seed; the same N and KEY give the same bytes within a scenario. When N is a
//!   multiple of 3, `{base64:N:a}{base64:M:b}` is itself the base64 of one N+M-byte file, so a
//!   file can be sent in two writes.
//! - `{i}`: the copy's index inside `parallel`; `{j}`: the iteration inside `repeat`.
//! - `{{` and `}}`: literal braces.
//!
//! Guarantees: expansion is a pure function of (seed, scenario name, text, indices).

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// A placeholder the scenario language does not know, or a malformed one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

/// The values placeholders expand to in one scenario run.
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    /// The grading's seed.
    pub seed: u64,
    /// The scenario's name.
    pub scenario: &'a str,
    /// `{i}`, inside `parallel`.
    pub i: Option<u32>,
    /// `{j}`, inside `repeat`.
    pub j: Option<u32>,
}

const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// The longest generated payload.
pub const MAX_PAYLOAD: usize = 1 << 20;

fn stream_bytes(seed: u64, scenario: &str, label: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut counter = 0u64;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(scenario.as_bytes());
        h.update([0]);
        h.update(label.as_bytes());
        h.update(counter.to_le_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// `len` random bytes (every value 0-255) for a `send` with `random = len`: a pure function of
/// the seed, the scenario, the length and the copy and iteration indices, so `--seed` replays
/// them and copies in `parallel` send different bytes.
pub fn random_bytes(vars: &Vars<'_>, len: usize) -> Vec<u8> {
    let label = format!("random:{len}:{:?}:{:?}", vars.i, vars.j);
    stream_bytes(vars.seed, vars.scenario, &label, len)
}

/// Expands the placeholders of `text`.
pub fn expand(text: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    walk(text, |piece| {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Placeholder(name) => out.push_str(&value(name, vars)?),
        }
        Ok(())
    })?;
    Ok(out)
}

/// Checks that every placeholder of `text` is known and well-formed, and that `{i}` / `{j}` are
/// used only where defined (inside `parallel` / `repeat`), for validation on load.
pub fn check(text: &str, in_parallel: bool, in_repeat: bool) -> Result<(), TemplateError> {
    let vars = Vars {
        seed: 0,
        scenario: "",
        i: in_parallel.then_some(0),
        j: in_repeat.then_some(0),
    };
    walk(text, |piece| match piece {
        Piece::Placeholder(name) => value(name, &vars).map(|_| ()),
        Piece::Literal(_) => Ok(()),
    })
}

enum Piece<'a> {
    Literal(&'a str),
    Placeholder(&'a str),
}

fn walk<'a>(
    text: &'a str,
    mut f: impl FnMut(Piece<'a>) -> Result<(), TemplateError>,
) -> Result<(), TemplateError> {
    let mut rest = text;
    while let Some(pos) = rest.find(['{', '}']) {
        f(Piece::Literal(&rest[..pos]))?;
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("{{") {
            f(Piece::Literal("{"))?;
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            f(Piece::Literal("}"))?;
            rest = after;
        } else if tail.starts_with('}') {
            return Err(TemplateError(format!(
                "unmatched `}}` in {text:?} (write `}}}}` for a literal brace)"
            )));
        } else {
            let end = tail.find('}').ok_or_else(|| {
                TemplateError(format!(
                    "unclosed `{{` in {text:?} (write `{{{{` for a literal brace)"
                ))
            })?;
            f(Piece::Placeholder(&tail[1..end]))?;
            rest = &tail[end + 1..];
        }
    }
    f(Piece::Literal(rest))
}

fn value(name: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    let (head, arg) = match name.split_once(':') {
        Some((h, a)) => (h, Some(a)),
        None => (name, None),
    };
    match (head, arg) {
        ("nonce", key) => {
            let bytes = stream_bytes(
                vars.seed,
                vars.scenario,
                &format!("nonce:{}", key.unwrap_or("")),
                8,
            );
            Ok(bytes
                .iter()
                .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
                .collect())
        }
        ("payload", Some(n)) => {
            let len: usize = n
                .parse()
                .ok()
                .filter(|l| *l <= MAX_PAYLOAD)
                .ok_or_else(|| {
                    TemplateError(format!(
                        "`{{payload:{n}}}` needs a length from 0 to {MAX_PAYLOAD}"
                    ))
                })?;
            let bytes = stream_bytes(vars.seed, vars.scenario, &format!("payload:{len}"), len);
            Ok(bytes
                .iter()
                .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
                .collect())
        }
        ("base64", Some(arg)) => {
            let (n, key) = arg.split_once(':').unwrap_or((arg, ""));
            let len: usize = n
                .parse()
                .ok()
                .filter(|l| *l <= MAX_PAYLOAD)
                .ok_or_else(|| {
                    TemplateError(format!(
                        "`{{base64:{arg}}}` needs a length from 0 to {MAX_PAYLOAD} (and an optional `:KEY`)"
                    ))
                })?;
            Ok(base64::engine::general_purpose::STANDARD.encode(binary(vars, len, key)))
        }
        ("i", None) => vars
            .i
            .map(|i| i.to_string())
            .ok_or_else(|| TemplateError("`{i}` is only defined inside `parallel`".into())),
        ("j", None) => vars
            .j
            .map(|j| j.to_string())
            .ok_or_else(|| TemplateError("`{j}` is only defined inside `repeat`".into())),
        _ => Err(TemplateError(format!(
            "unknown placeholder `{{{name}}}`: known are {{nonce}}, {{nonce:KEY}}, {{payload:N}}, {{base64:N}}, {{base64:N:KEY}}, {{i}}, {{j}}"
        ))),
    }
}

/// The bytes of `{base64:LEN:KEY}`: every byte value in order, then random bytes.
pub fn binary(vars: &Vars<'_>, len: usize, key: &str) -> Vec<u8> {
    let mut out: Vec<u8> = (0..=255u8).take(len).collect();
    if len > out.len() {
        out.extend(stream_bytes(
            vars.seed,
            vars.scenario,
            &format!("base64:{len}:{key}"),
            len - out.len(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars<'static> {
        Vars {
            seed: 42,
            scenario: "s",
            i: Some(3),
            j: None,
        }
    }

    #[test]
    fn nonces_are_stable_and_distinct() {
        let a = expand("{nonce}", &vars()).unwrap();
        assert_eq!(a.len(), 8);
        assert_eq!(a, expand("{nonce}", &vars()).unwrap());
        assert_ne!(a, expand("{nonce:b}", &vars()).unwrap());
        let other = Vars { seed: 43, ..vars() };
        assert_ne!(a, expand("{nonce}", &other).unwrap());
    }

    #[test]
    fn base64_is_binary_and_splits_at_multiples_of_three() {
        use base64::engine::general_purpose::STANDARD;
        let whole = STANDARD
            .decode(expand("{base64:1000}", &vars()).unwrap())
            .unwrap();
        assert_eq!(whole.len(), 1000);
        assert_eq!(&whole[..3], &[0, 1, 2]);
        assert!(std::str::from_utf8(&whole).is_err());
        assert_eq!(
            STANDARD
                .decode(expand("{base64:2}", &vars()).unwrap())
                .unwrap(),
            [0, 1]
        );
        let joined = expand("{base64:300:a}{base64:301:b}", &vars()).unwrap();
        let bytes = STANDARD.decode(joined).unwrap();
        assert_eq!(bytes.len(), 601);
        assert_ne!(
            expand("{base64:300:a}", &vars()).unwrap(),
            expand("{base64:300:b}", &vars()).unwrap()
        );
    }

    #[test]
    fn payload_length_and_braces() {
        assert_eq!(expand("{payload:4000}", &vars()).unwrap().len(), 4000);
        assert_eq!(expand("{{x}} {i}", &vars()).unwrap(), "{x} 3");
        assert!(expand("{j}", &vars()).is_err());
        assert!(check("{bogus}", true, true).is_err());
        assert!(check("{base64:x}", true, true).is_err());
        assert!(check("{base64:9:k}", true, true).is_ok());
        assert!(check("{nonce", true, true).is_err());
        assert!(check("{i}", false, true).is_err());
        assert!(check("{i} {j}", true, true).is_ok());
    }
}
