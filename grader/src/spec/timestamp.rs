//! Timestamps in what a program prints: the `timestamp = { format, tolerance }` qualifier of an
//! `expect` step ("a line holding the text *and* the current time as `[ACK @HH:MM:SS]`").
//!
//! The format is a `strftime` string as chrono reads it (`%H:%M:%S`, `[ACK @%H:%M:%S]`,
//! `%Y-%m-%d %H:%M:%S`, `%I:%M:%S %p`); its literal text is part of what must appear. A format
//! is turned into a regex once (chrono's own reading of the format decides what each `%` means,
//! so the regex and the parse agree), each candidate in a line is parsed by chrono, and the time
//! it names is compared with the clock.
//!
//! Guarantees:
//! - a format is checked when the task file is loaded: unknown or unsupported specifiers, a
//!   format without an hour and a minute, or a 12-hour hour without AM/PM are errors naming it;
//! - the clock is the grader machine's **local time or UTC**, whichever is closer: a student
//!   program in a sandbox without a time zone prints UTC, on a laptop it prints local time, and
//!   both are right;
//! - a format without a date compares times of day across midnight (23:59:59 is one second
//!   before 00:00:00); a format with a full date compares date and time;
//! - a timestamp stands for the whole unit it names (`12:00:05` is any moment of that second,
//!   `12:00` any moment of that minute), so a correct program's truncation never costs it: the
//!   timestamp passes when the clock lies between `tolerance` before it and its unit plus
//!   `tolerance` after it.

use std::time::Duration;

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed, StrftimeItems};
use chrono::{Local, NaiveDateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::Dur;

/// The tolerance when a task file names none.
pub const DEFAULT_TOLERANCE: Dur = Dur::from_millis(5000);

/// `timestamp = { format = "...", tolerance = "5s" }` as written in a task file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampSpec {
    /// The strftime format, literal text included.
    pub format: String,
    /// How far from the clock the timestamp may be (default 5 s).
    #[serde(default = "default_tolerance")]
    pub tolerance: Dur,
}

fn default_tolerance() -> Dur {
    DEFAULT_TOLERANCE
}

/// A format the grader cannot check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp format {format:?}: {why}")]
pub struct FormatError {
    /// The format as written.
    pub format: String,
    /// What is wrong with it.
    pub why: String,
}

/// The clock a timestamp is compared with: the machine's local time and UTC, read at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Local wall-clock time.
    pub local: NaiveDateTime,
    /// Universal time.
    pub utc: NaiveDateTime,
}

impl Clock {
    /// The clock now.
    pub fn now() -> Self {
        let utc = Utc::now();
        Self {
            local: utc.with_timezone(&Local).naive_local(),
            utc: utc.naive_utc(),
        }
    }
}

/// What a line holds, timestamp-wise.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A timestamp in the format naming the current time.
    Current,
    /// Timestamps in the format, none current: the first one's text and how far (seconds,
    /// timestamp minus clock, against the closer of local time and UTC) it is from the clock.
    Stale {
        /// The timestamp as printed.
        text: String,
        /// Timestamp minus clock, in seconds.
        off: f64,
    },
    /// Nothing in the format.
    Absent,
}

/// A compiled [`TimestampSpec`].
#[derive(Debug, Clone)]
pub struct TimestampCheck {
    format: String,
    regex: Regex,
    /// The format names a full date (year, month, day).
    dated: bool,
    /// The smallest unit the format names (a second, or a minute without seconds).
    unit: Duration,
    tolerance: Duration,
}

impl TimestampCheck {
    /// Compiles a spec; errors name the format and what is wrong with it.
    pub fn new(spec: &TimestampSpec) -> Result<Self, FormatError> {
        let err = |why: String| FormatError {
            format: spec.format.clone(),
            why,
        };
        let mut pattern = String::new();
        let (mut hour, mut hour12, mut ampm, mut minute, mut second) =
            (false, false, false, false, false);
        let (mut year, mut month, mut day) = (false, false, false);
        for item in StrftimeItems::new(&spec.format) {
            let two = |pad: &Pad| match pad {
                Pad::Zero => r"\d{2}",
                Pad::Space => r"[ \d]\d",
                Pad::None => r"\d{1,2}",
            };
            match &item {
                Item::Literal(s) => pattern.push_str(&regex::escape(s)),
                Item::OwnedLiteral(s) => pattern.push_str(&regex::escape(s)),
                Item::Space(_) | Item::OwnedSpace(_) => pattern.push_str(r"\s*"),
                Item::Numeric(n, pad) => match n {
                    Numeric::Hour => {
                        hour = true;
                        pattern.push_str(two(pad));
                    }
                    Numeric::Hour12 => {
                        hour12 = true;
                        pattern.push_str(two(pad));
                    }
                    Numeric::Minute => {
                        minute = true;
                        pattern.push_str(two(pad));
                    }
                    Numeric::Second => {
                        second = true;
                        pattern.push_str(two(pad));
                    }
                    Numeric::Month => {
                        month = true;
                        pattern.push_str(two(pad));
                    }
                    Numeric::Day => {
                        day = true;
                        pattern.push_str(two(pad));
                    }
                    Numeric::Year => {
                        year = true;
                        pattern.push_str(r"\d{4}");
                    }
                    Numeric::YearMod100 => {
                        year = true;
                        pattern.push_str(two(pad));
                    }
                    other => {
                        return Err(err(format!(
                            "{other:?} is not supported (use %H %I %p %M %S %Y %y %m %d %b %B %a %A %.f)"
                        )));
                    }
                },
                Item::Fixed(f) => match f {
                    Fixed::LowerAmPm | Fixed::UpperAmPm => {
                        ampm = true;
                        pattern.push_str("(?i:am|pm)");
                    }
                    Fixed::ShortMonthName => {
                        month = true;
                        pattern.push_str("[A-Za-z]{3}");
                    }
                    Fixed::LongMonthName => {
                        month = true;
                        pattern.push_str("[A-Za-z]{3,9}");
                    }
                    Fixed::ShortWeekdayName => pattern.push_str("[A-Za-z]{3}"),
                    Fixed::LongWeekdayName => pattern.push_str("[A-Za-z]{6,9}"),
                    Fixed::Nanosecond => pattern.push_str(r"(?:\.\d{1,9})?"),
                    Fixed::Nanosecond3 => pattern.push_str(r"\.\d{3}"),
                    Fixed::Nanosecond6 => pattern.push_str(r"\.\d{6}"),
                    Fixed::Nanosecond9 => pattern.push_str(r"\.\d{9}"),
                    other => {
                        return Err(err(format!(
                            "{other:?} is not supported (time zones and whole-date shorthands cannot be checked against the clock)"
                        )));
                    }
                },
                Item::Error => return Err(err("it holds an unknown % specifier".into())),
            }
        }
        if !(hour || hour12) || !minute {
            return Err(err(
                "a timestamp needs at least an hour and a minute (%H:%M)".into(),
            ));
        }
        if hour12 && !ampm {
            return Err(err(
                "a 12-hour hour (%I) needs AM/PM (%p) to name a time".into()
            ));
        }
        let regex = Regex::new(&pattern).map_err(|e| err(e.to_string()))?;
        Ok(Self {
            format: spec.format.clone(),
            regex,
            dated: year && month && day,
            unit: if second {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(60)
            },
            tolerance: spec.tolerance.0,
        })
    }

    /// The format as written.
    pub fn format(&self) -> &str {
        &self.format
    }

    /// "a timestamp "[ACK @%H:%M:%S]" within 2s of the clock (local time or UTC)".
    pub fn describe(&self) -> String {
        format!(
            "a timestamp {:?} within {} of the clock (local time or UTC)",
            self.format,
            Dur(self.tolerance)
        )
    }

    /// Looks for a timestamp in `line` and compares it with `clock`.
    pub fn read(&self, line: &str, clock: &Clock) -> Reading {
        let mut first_stale = None;
        for m in self.regex.find_iter(line) {
            let Some(off) = self.offset(m.as_str(), clock) else {
                continue;
            };
            if self.is_current(off) {
                return Reading::Current;
            }
            first_stale.get_or_insert(Reading::Stale {
                text: m.as_str().to_string(),
                off,
            });
        }
        first_stale.unwrap_or(Reading::Absent)
    }

    /// Whether a timestamp `off` seconds from the clock names the current time: the clock lies
    /// within the timestamp's unit, widened by the tolerance on both sides.
    fn is_current(&self, off: f64) -> bool {
        let tol = self.tolerance.as_secs_f64();
        let unit = self.unit.as_secs_f64();
        // off = timestamp - clock; the clock may be up to `unit` past the timestamp.
        (-(unit + tol)..=tol).contains(&off)
    }

    /// The timestamp `text` minus the clock, in seconds, against whichever of local time and
    /// UTC is closer; `None` when chrono cannot read it (e.g. an hour of 25).
    fn offset(&self, text: &str, clock: &Clock) -> Option<f64> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, StrftimeItems::new(&self.format)).ok()?;
        let time = parsed.to_naive_time().ok()?;
        let date = if self.dated {
            Some(parsed.to_naive_date().ok()?)
        } else {
            None
        };
        let against = |now: NaiveDateTime| -> f64 {
            match date {
                Some(d) => (d.and_time(time) - now).as_seconds_f64(),
                None => {
                    let day = 86_400.0;
                    let mut off = (time - now.time()).as_seconds_f64() % day;
                    // Times of day wrap at midnight: the nearest distance, in (-12 h, 12 h].
                    if off > day / 2.0 {
                        off -= day;
                    } else if off <= -day / 2.0 {
                        off += day;
                    }
                    off
                }
            }
        };
        let (local, utc) = (against(clock.local), against(clock.utc));
        // The closer one, measured from the accepted window's middle (-unit/2).
        let mid = -self.unit.as_secs_f64() / 2.0;
        Some(if (local - mid).abs() <= (utc - mid).abs() {
            local
        } else {
            utc
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn check(format: &str, tolerance_ms: u64) -> TimestampCheck {
        TimestampCheck::new(&TimestampSpec {
            format: format.into(),
            tolerance: Dur::from_millis(tolerance_ms),
        })
        .unwrap()
    }

    fn at(h: u32, m: u32, s: u32, ms: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 6)
            .unwrap()
            .and_hms_milli_opt(h, m, s, ms)
            .unwrap()
    }

    fn clock(local: NaiveDateTime, utc: NaiveDateTime) -> Clock {
        Clock { local, utc }
    }

    #[test]
    fn the_current_second_passes_and_an_old_one_does_not() {
        let c = check("[ACK @%H:%M:%S]", 2000);
        let now = clock(at(13, 45, 10, 900), at(12, 45, 10, 900));
        assert_eq!(c.read("[ACK @13:45:10] hello", &now), Reading::Current);
        // UTC is as good as local time.
        assert_eq!(c.read("[ACK @12:45:10] hello", &now), Reading::Current);
        // Within the tolerance either way.
        assert_eq!(c.read("[ACK @13:45:08] hello", &now), Reading::Current);
        assert_eq!(c.read("[ACK @13:45:12] hello", &now), Reading::Current);
        match c.read("[ACK @13:45:05] hello", &now) {
            Reading::Stale { text, off } => {
                assert_eq!(text, "[ACK @13:45:05]");
                assert!((off + 5.9).abs() < 1e-6, "{off}");
            }
            other => panic!("{other:?}"),
        }
        // The literal text is part of the format.
        assert_eq!(c.read("13:45:10 hello", &now), Reading::Absent);
    }

    #[test]
    fn midnight_wraps() {
        let c = check("%H:%M:%S", 2000);
        let now = clock(at(0, 0, 0, 500), at(0, 0, 0, 500));
        assert_eq!(c.read("at 23:59:59 ok", &now), Reading::Current);
        let now = clock(at(23, 59, 59, 500), at(23, 59, 59, 500));
        assert_eq!(c.read("at 00:00:01 ok", &now), Reading::Current);
        assert!(matches!(
            c.read("at 12:00:00", &now),
            Reading::Stale { off, .. } if (off + 43_199.5).abs() < 1e-6
        ));
    }

    #[test]
    fn twelve_hour_dates_and_minutes() {
        let now = clock(at(13, 5, 9, 0), at(13, 5, 9, 0));
        let c = check("%I:%M:%S %p", 2000);
        assert_eq!(c.read("01:05:09 PM hi", &now), Reading::Current);
        assert!(matches!(
            c.read("01:05:09 AM hi", &now),
            Reading::Stale { .. }
        ));
        let d = check("%Y-%m-%d %H:%M:%S", 2000);
        assert_eq!(d.read("[2026-12-06 13:05:09] hi", &now), Reading::Current);
        assert!(matches!(
            d.read("[2026-12-05 13:05:09] hi", &now),
            Reading::Stale { .. }
        ));
        let y = check("%D %T", 2000);
        assert_eq!(y.read("12/06/26 13:05:09 hi", &now), Reading::Current);
        let b = check("%d %b %Y %l:%M:%S %P", 2000);
        assert_eq!(b.read("06 Dec 2026  1:05:09 pm", &now), Reading::Current);
        // A minute stands for all its seconds.
        let m = check("%H:%M", 0);
        assert_eq!(m.read("13:05 hi", &now), Reading::Current);
        // An impossible hour is no timestamp.
        assert_eq!(
            check("%H:%M:%S", 2000).read("99:05:09", &now),
            Reading::Absent
        );
    }

    #[test]
    fn a_12_hour_clock_without_seconds_is_not_hh_mm_ss() {
        let now = clock(at(13, 5, 9, 0), at(13, 5, 9, 0));
        let c = check("[ACK @%H:%M:%S]", 5000);
        assert_eq!(c.read("[ACK @01:05 PM] hi", &now), Reading::Absent);
    }

    #[test]
    fn bad_formats_are_refused() {
        let bad = |f: &str| {
            TimestampCheck::new(&TimestampSpec {
                format: f.into(),
                tolerance: DEFAULT_TOLERANCE,
            })
            .unwrap_err()
            .to_string()
        };
        assert!(bad("%Q").contains("unknown"), "{}", bad("%Q"));
        assert!(bad("%S").contains("hour and a minute"));
        assert!(bad("%I:%M").contains("AM/PM"));
        assert!(bad("%H:%M %z").contains("not supported"));
    }
}
