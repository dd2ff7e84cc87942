//! The wall clock as the week-1 and timestamp labs print it: `HH:MM:SS`, 24-hour, local time
//! (UTC where the machine has no time zone, as in the grader's sandbox).

/// The current local time of day as `HH:MM:SS`, read at every call (never cached: a reply's
/// timestamp is the moment of the reply).
pub fn hms() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hms_is_two_digits_three_times() {
        let t = super::hms();
        let parts: Vec<&str> = t.split(':').collect();
        assert_eq!(parts.len(), 3, "{t}");
        assert!(
            parts
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_digit()))
        );
    }
}
