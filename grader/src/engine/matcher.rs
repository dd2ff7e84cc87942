//! Matching what arrived against an expectation, tolerant of how real programs frame messages:
//! `contains` and `regex` look across write boundaries and need no newline; `exact` compares
//! whole lines; `json` reads a stream of JSON values whether separated by newlines or written
//! back to back, skipping non-JSON lines (an acknowledgment, a prompt) on the way.
//!
//! A `timestamp` qualifier ([`Matcher::Timestamped`]) narrows any of them to one line that also
//! holds the current time in a format (see [`crate::spec::timestamp`]).
//!
//! Guarantees: a match reports how much of the text it used, so the next expectation starts
//! after it (order is checked); a failure can describe what arrived instead.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use crate::spec::JsonPredicate;
use crate::spec::timestamp::{Clock, Reading, TimestampCheck};

/// A compiled expectation (placeholders already expanded).
#[derive(Debug, Clone)]
pub enum Matcher {
    /// At least one non-blank character.
    Any,
    /// The text appears.
    Contains(String),
    /// The regex matches.
    Regex(Regex),
    /// A whole line equals this (white space around it ignored).
    Exact(String),
    /// A JSON object satisfying the predicates.
    Json(BTreeMap<String, JsonPredicate>),
    /// One line that the inner matcher matches and that holds a timestamp naming the current
    /// time (read from the clock when the line is looked at, i.e. when it arrives). A complete
    /// line without one is passed over; an incomplete last line waits for the rest.
    Timestamped(Box<Matcher>, TimestampCheck),
}

/// The result of looking at the text received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Matched; consume this many bytes.
    Found(usize),
    /// Not (yet) there.
    NotYet,
}

impl Matcher {
    /// Whether it matches any text at all (with or without a timestamp): such a match says
    /// nothing about which connection a reply belongs to.
    pub fn is_any(&self) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Timestamped(base, _) => base.is_any(),
            _ => false,
        }
    }

    /// Looks for a match in `text`; `ended` says no more text will come.
    pub fn find(&self, text: &str, ended: bool) -> Outcome {
        match self {
            Matcher::Timestamped(base, ts) => {
                let clock = Clock::now();
                let mut offset = 0;
                for line in text.split_inclusive('\n') {
                    offset += line.len();
                    let complete = line.ends_with('\n') || ended;
                    let body = line.trim_end_matches('\n');
                    if matches!(base.find(body, complete), Outcome::Found(_))
                        && ts.read(body, &clock) == Reading::Current
                    {
                        return Outcome::Found(offset);
                    }
                    if !complete {
                        break;
                    }
                }
                Outcome::NotYet
            }
            Matcher::Any => {
                if text.trim().is_empty() {
                    Outcome::NotYet
                } else {
                    Outcome::Found(text.len())
                }
            }
            Matcher::Contains(needle) => text
                .find(needle.as_str())
                .map_or(Outcome::NotYet, |i| Outcome::Found(i + needle.len())),
            Matcher::Regex(re) => re
                .find(text)
                .map_or(Outcome::NotYet, |m| Outcome::Found(m.end())),
            Matcher::Exact(want) => {
                let mut offset = 0;
                for line in text.split_inclusive('\n') {
                    offset += line.len();
                    let complete = line.ends_with('\n') || ended;
                    if complete && line.trim() == want.trim() {
                        return Outcome::Found(offset);
                    }
                }
                Outcome::NotYet
            }
            Matcher::Json(preds) => {
                for item in json_items(text, ended) {
                    if let Item::Json(value, end) = item
                        && json_matches(&value, preds)
                    {
                        return Outcome::Found(end);
                    }
                }
                Outcome::NotYet
            }
        }
    }

    /// Describes what is expected, for messages.
    pub fn describe(&self) -> String {
        match self {
            Matcher::Any => "any data".to_string(),
            Matcher::Contains(t) => format!("text containing {}", quote(t, 80)),
            Matcher::Regex(r) => format!("text matching /{}/", r.as_str()),
            Matcher::Exact(t) => format!("the line {}", quote(t, 80)),
            Matcher::Json(p) => format!("a JSON object with {}", describe_preds(p)),
            Matcher::Timestamped(base, ts) if base.is_any() => {
                format!("a line holding {}", ts.describe())
            }
            Matcher::Timestamped(base, ts) => {
                format!("a line of {} holding {}", base.describe(), ts.describe())
            }
        }
    }

    /// For a JSON expectation with a long string value (a file's content): how the value of
    /// each arrived object with that field differs (lengths, first difference), not quoted.
    pub fn differences(&self, text: &str, ended: bool) -> Vec<String> {
        match self {
            Matcher::Json(preds) => long_field_differences(&json_items(text, ended), preds),
            _ => Vec::new(),
        }
    }

    /// Explains a failure given what arrived (`text`, not consumed), or `None` if nothing helps.
    pub fn diagnose(&self, text: &str, ended: bool) -> Option<String> {
        match self {
            Matcher::Timestamped(base, ts) => {
                let clock = Clock::now();
                let mut notes = Vec::new();
                for line in text.split_inclusive('\n') {
                    let complete = line.ends_with('\n') || ended;
                    let body = line.trim_end_matches('\n');
                    if !matches!(base.find(body, complete), Outcome::Found(_)) {
                        continue;
                    }
                    notes.push(match ts.read(body, &clock) {
                        Reading::Current => continue,
                        Reading::Absent => format!(
                            "the line {} has no timestamp in the format {:?}",
                            quote(body.trim(), 100),
                            ts.format()
                        ),
                        Reading::Stale { text, off } => format!(
                            "the timestamp {} in the line {} is {:.0}s {} the clock as read now (local {}, UTC {})",
                            quote(&text, 40),
                            quote(body.trim(), 100),
                            off.abs(),
                            if off < 0.0 { "behind" } else { "ahead of" },
                            clock.local.format("%H:%M:%S"),
                            clock.utc.format("%H:%M:%S"),
                        ),
                    });
                    if notes.len() == 2 {
                        break;
                    }
                }
                (!notes.is_empty()).then(|| notes.join("; "))
            }
            Matcher::Contains(needle) if needle.len() >= 64 => {
                let got = longest_prefix_present(text, needle);
                (got > 0 && got < needle.len()).then(|| {
                    format!(
                        "only the first {got} of the {} expected characters arrived together",
                        needle.len()
                    )
                })
            }
            Matcher::Json(_) => {
                let items = json_items(text, ended);
                let non_json: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        Item::NotJson(t) => Some(quote(t, 100)),
                        _ => None,
                    })
                    .collect();
                let objects: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Json(v, _) => Some(quote(&v.to_string(), 160)),
                        _ => None,
                    })
                    .collect();
                let mut parts = Vec::new();
                if !objects.is_empty() {
                    parts.push(format!("JSON that arrived: {}", objects.join(", ")));
                }
                if !non_json.is_empty() {
                    parts.push(format!("not JSON: {}", non_json.join(", ")));
                }
                (!parts.is_empty()).then(|| parts.join("; "))
            }
            _ => None,
        }
    }
}

/// A long expected string value (a file's content) is compared and summarised rather than
/// quoted: for each arrived object holding that field with another value, its length and
/// where it first differs.
fn long_field_differences(items: &[Item], preds: &BTreeMap<String, JsonPredicate>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, pred) in preds {
        let JsonPredicate::Equals(Value::String(want)) = pred else {
            continue;
        };
        if want.len() <= LONG_VALUE {
            continue;
        }
        for item in items {
            let Item::Json(Value::Object(map), _) = item else {
                continue;
            };
            let Some(Value::String(got)) = map.get(key) else {
                continue;
            };
            if got == want {
                continue;
            }
            let at = want
                .bytes()
                .zip(got.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| want.len().min(got.len()));
            out.push(format!(
                "\"{key}\" arrived with {} characters where {} were expected, first different at character {at}",
                got.len(),
                want.len()
            ));
        }
    }
    out
}

/// Expected string values longer than this are summarised, not quoted whole.
const LONG_VALUE: usize = 100;

fn longest_prefix_present(text: &str, needle: &str) -> usize {
    // Binary search on prefix length: if a prefix is present, so is every shorter one.
    let (mut lo, mut hi) = (0usize, needle.len());
    while lo < hi {
        let mid = needle.floor_char_boundary((lo + hi).div_ceil(2));
        if mid <= lo {
            break;
        }
        if text.contains(&needle[..mid]) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Something found in a received stream when JSON is expected.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A JSON value and the offset just after it.
    Json(Value, usize),
    /// A line (or unterminated text, once the stream ended) that is not JSON.
    NotJson(String),
}

/// Splits received text into JSON values and non-JSON lines. Incomplete JSON at the end is left
/// for later (unless `ended`).
pub fn json_items(text: &str, ended: bool) -> Vec<Item> {
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        let start = pos + (rest.len() - trimmed.len());
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let mut de = serde_json::Deserializer::from_str(trimmed).into_iter::<Value>();
            match de.next() {
                Some(Ok(v)) => {
                    let end = start + de.byte_offset();
                    items.push(Item::Json(v, end));
                    pos = end;
                    continue;
                }
                Some(Err(e)) if e.is_eof() && !ended => break,
                _ => {}
            }
        }
        // Not JSON: take the rest of the line, if the line is complete.
        match trimmed.find('\n') {
            Some(nl) => {
                items.push(Item::NotJson(trimmed[..nl].to_string()));
                pos = start + nl + 1;
            }
            None => {
                if ended {
                    items.push(Item::NotJson(trimmed.to_string()));
                } else if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
                    // Possibly a line still being written; report it as not JSON for diagnosis
                    // only (it does not advance anything).
                    items.push(Item::NotJson(trimmed.to_string()));
                }
                break;
            }
        }
    }
    items
}

/// Whether a JSON value is an object satisfying every predicate.
pub fn json_matches(value: &Value, preds: &BTreeMap<String, JsonPredicate>) -> bool {
    let Value::Object(map) = value else {
        return false;
    };
    preds.iter().all(|(field, pred)| {
        let v = map.get(field);
        match pred {
            JsonPredicate::Equals(want) => v.is_some_and(|got| loose_eq(got, want)),
            JsonPredicate::Op(op) => {
                if let Some(p) = op.present {
                    return v.is_some() == p;
                }
                let Some(Value::String(s)) = v else {
                    return false;
                };
                if let Some(c) = &op.contains {
                    return s.contains(c.as_str());
                }
                if let Some(r) = &op.regex {
                    return Regex::new(r).is_ok_and(|re| re.is_match(s));
                }
                false
            }
        }
    })
}

/// Equality where a number and its decimal string are equal (`"1"` == `1`), since student
/// protocols differ on that.
fn loose_eq(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::String(a), Value::Number(b)) | (Value::Number(b), Value::String(a)) => {
            a.trim() == b.to_string()
        }
        _ => got == want,
    }
}

fn describe_preds(p: &BTreeMap<String, JsonPredicate>) -> String {
    p.iter()
        .map(|(k, v)| match v {
            JsonPredicate::Equals(Value::String(x)) if x.len() > LONG_VALUE => {
                format!("\"{k}\": {}", quote(x, 60))
            }
            JsonPredicate::Equals(x) => format!("\"{k}\": {x}"),
            JsonPredicate::Op(op) => {
                if let Some(c) = &op.contains {
                    format!("\"{k}\" containing {}", quote(c, 60))
                } else if let Some(r) = &op.regex {
                    format!("\"{k}\" matching /{r}/")
                } else if op.present == Some(false) {
                    format!("no \"{k}\"")
                } else {
                    format!("a \"{k}\" field")
                }
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Quotes text for a message, shortened to `max` characters.
pub fn quote(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        format!("{text:?}")
    } else {
        let short: String = text.chars().take(max).collect();
        format!("{short:?}… ({count} characters)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_spans_writes_and_needs_no_newline() {
        let m = Matcher::Contains("hello".into());
        assert_eq!(m.find("ACK: hel", false), Outcome::NotYet);
        assert_eq!(m.find("ACK: hello", false), Outcome::Found(10));
    }

    #[test]
    fn exact_needs_a_whole_line() {
        let m = Matcher::Exact("ok".into());
        assert_eq!(m.find("ok", false), Outcome::NotYet);
        assert_eq!(m.find("ok", true), Outcome::Found(2));
        assert_eq!(m.find("x\n ok \n", false), Outcome::Found(7));
    }

    #[test]
    fn json_back_to_back_and_after_a_text_line() {
        let mut p = BTreeMap::new();
        p.insert("status".to_string(), JsonPredicate::Equals(Value::from(1)));
        let m = Matcher::Json(p);
        let text = "Welcome!\n{\"status\":\"ok\"}{\"status\":\"1\",\"text\":\"hi\"}";
        assert!(matches!(m.find(text, false), Outcome::Found(n) if n == text.len()));
        assert_eq!(m.find("{\"status\":\"1\"", false), Outcome::NotYet);
    }

    #[test]
    fn timestamped_lines_skip_stale_ones_and_wait_for_a_line_end() {
        use crate::spec::{Dur, TimestampCheck, TimestampSpec};
        let check = TimestampCheck::new(&TimestampSpec {
            format: "[ACK @%H:%M:%S]".into(),
            tolerance: Dur::from_millis(2000),
        })
        .unwrap();
        let m = Matcher::Timestamped(Box::new(Matcher::Contains("hi".into())), check);
        // UTC is always accepted, so the test does not depend on the machine's time zone.
        let now = chrono::Utc::now().format("%H:%M:%S").to_string();
        let old = (chrono::Utc::now() - chrono::TimeDelta::seconds(30))
            .format("%H:%M:%S")
            .to_string();
        let stale = format!("[ACK @{old}] hi\n");
        let fresh = format!("[ACK @{now}] hi\n");
        let text = format!("welcome\n{stale}{fresh}");
        assert_eq!(m.find(&text, false), Outcome::Found(text.len()));
        assert_eq!(m.find(&stale, false), Outcome::NotYet);
        let d = m.diagnose(&stale, false).unwrap();
        assert!(d.contains("behind the clock"), "{d}");
        assert_eq!(
            m.diagnose("[ACK @1:05 PM] hi\n", false).unwrap(),
            "the line \"[ACK @1:05 PM] hi\" has no timestamp in the format \"[ACK @%H:%M:%S]\""
        );
        // A stale line not yet ended may still be followed by a current timestamp on it.
        assert_eq!(m.find(&format!("[ACK @{old}] hi"), false), Outcome::NotYet);
        // Without a newline, a line holding both counts once it is there.
        let open = format!("[ACK @{now}] hi");
        assert_eq!(m.find(&open, false), Outcome::Found(open.len()));
        assert!(m.describe().contains("within 2s of the clock"));
    }

    #[test]
    fn diagnoses_truncation_and_non_json() {
        let long = "x".repeat(100);
        let m = Matcher::Contains(long.clone());
        let d = m.diagnose(&format!("ACK: {}", &long[..30]), false).unwrap();
        assert!(d.contains("first 30 of the 100"), "{d}");
        let j = Matcher::Json(BTreeMap::new());
        assert!(j.diagnose("hello\n", false).unwrap().contains("not JSON"));
    }
}
