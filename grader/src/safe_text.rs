//! Untrusted text made safe where it is shown: student ids (submission folder names), file names
//! from a submission and messages quoting them, on a terminal; and the same ids and names in the
//! cells of CSV files that are opened in spreadsheets.
//!
//! Guarantees:
//! - [`terminal`] leaves no control character (C0, DEL, C1: ESC sequences, `\r`, `\n`, `\t`,
//!   the 8-bit CSI) and no Unicode bidirectional control (which reorders what a terminal shows)
//!   in its result: each is written visibly as an escape (`\x1b`, `\r`, `\n`, `\u{202e}`), so an
//!   id can neither move the cursor, recolour or retitle the terminal, nor start a line of its
//!   own that looks like the grader's;
//! - [`terminal_lines`] does the same line by line for multi-line messages (a failed build's
//!   last output lines), keeping their line breaks, and indents every line after the first that
//!   the text did not indent itself, so no part of a message starts a console line;
//! - [`spreadsheet_cell`] follows the OWASP rule against CSV (formula) injection: a cell that
//!   begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so Excel,
//!   LibreOffice and Google Sheets show it as text instead of evaluating it; a cell that is a
//!   plain decimal number (`-3`, `+2.5`) is no formula and is left alone, and callers never pass
//!   scores through it (a score column holds numbers only).

use std::borrow::Cow;

/// Unicode bidirectional controls: they reorder the text around them on a terminal or page.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character and bidirectional control escaped visibly (see the
/// module's guarantees): for ids and other one-line untrusted text printed to a terminal.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_bidi_control(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// How [`terminal_lines`] indents a continuation line that is not indented.
const CONTINUATION: &str = "    ";

/// A multi-line message for a terminal: every line through [`terminal`], the line breaks kept,
/// and each line after the first indented by at least [`CONTINUATION`] unless it starts with a
/// space already (the grader's own continuation lines do).
pub fn terminal_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() && !line.starts_with(' ') {
                out.push_str(CONTINUATION);
            }
        }
        out.push_str(&terminal(line));
    }
    out
}

/// A text cell for a CSV file that a spreadsheet may open: prefixed with `'` when it begins with
/// a formula character (`=`, `+`, `-`, `@`, tab, carriage return) and is not a plain number.
pub fn spreadsheet_cell(text: &str) -> Cow<'_, str> {
    let formula_start = text
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    // A sign, then digits and at most a decimal point: what a spreadsheet reads as a number.
    let plain_number = || {
        text.parse::<f64>().is_ok_and(f64::is_finite)
            && text.chars().skip(1).all(|c| c.is_ascii_digit() || c == '.')
    };
    if formula_start && !plain_number() {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_every_control_visibly() {
        assert_eq!(terminal("alice"), "alice");
        assert_eq!(
            terminal("a\x1b[2J\x1b]0;pwned\x07b\rc\nd\te\u{9b}f\u{202e}g"),
            "a\\x1b[2J\\x1b]0;pwned\\x07b\\rc\\nd\\te\\x9bf\\u{202e}g"
        );
    }

    #[test]
    fn terminal_lines_keep_breaks_but_never_start_a_line() {
        assert_eq!(
            terminal_lines(
                "failed; its last output lines:\n    cc: error\x1b[0m\n[2/2] bob  30/30"
            ),
            "failed; its last output lines:\n    cc: error\\x1b[0m\n    [2/2] bob  30/30"
        );
    }

    #[test]
    fn spreadsheet_cells_starting_a_formula_are_quoted_but_numbers_are_not() {
        for formula in [
            "=HYPERLINK(\"http://x\")",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "-inf",
            "-",
        ] {
            assert_eq!(
                spreadsheet_cell(formula),
                format!("'{formula}"),
                "{formula:?}"
            );
        }
        for plain in ["alice", "", "3", "-3", "+2.5", "-0.25", "a=b", " =1"] {
            assert_eq!(spreadsheet_cell(plain), plain, "{plain:?}");
        }
    }
}
