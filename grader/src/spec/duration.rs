//! Durations in task files: `"2s"`, `"500ms"`, `"1.5s"` or a bare number of seconds.
//!
//! Guarantees: every accepted value is finite, non-negative and at most one hour, so deadlines
//! built from it can never overflow an `Instant`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read from a task file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else if ms >= 1000 {
            write!(f, "{:.1}s", self.0.as_secs_f64())
        } else {
            write!(f, "{ms}ms")
        }
    }
}

const MAX: Duration = Duration::from_secs(3600);

fn checked(d: Duration) -> Result<Dur, String> {
    if d > MAX {
        Err(format!(
            "duration {d:?} is longer than the maximum of one hour"
        ))
    } else {
        Ok(Dur(d))
    }
}

/// Parses `"2s"`, `"250ms"`, `"1.5s"`.
pub fn parse_duration(text: &str) -> Result<Dur, String> {
    let t = text.trim();
    if let Some(secs) = t.strip_suffix('s').filter(|s| !s.ends_with('m'))
        && let Ok(v) = secs.trim().parse::<f64>()
    {
        return from_secs(v);
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration {text:?}: {e} (write e.g. \"2s\" or \"500ms\")"))
        .and_then(checked)
}

fn from_secs(v: f64) -> Result<Dur, String> {
    if !v.is_finite() || v < 0.0 {
        return Err(format!(
            "invalid duration {v}: must be a non-negative number of seconds"
        ));
    }
    checked(Duration::from_secs_f64(v.min(MAX.as_secs_f64() + 1.0)))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Float(f64),
            Text(String),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Int(i) => from_secs(i as f64),
            Raw::Float(f) => from_secs(f),
            Raw::Text(s) => parse_duration(&s),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("2s").unwrap().0, Duration::from_secs(2));
        assert_eq!(
            parse_duration("500ms").unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("1.5s").unwrap().0,
            Duration::from_millis(1500)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("2h").is_err());
    }
}
