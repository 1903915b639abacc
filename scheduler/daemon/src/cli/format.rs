//! Plain-text building blocks of the client commands' output: aligned
//! tables, key/value blocks, UTC times, durations, shell-quoted command
//! lines and indented JSON. All pure.
//!
//! Text that comes from the API is shown on one line with its control
//! characters replaced ([`clean`]), so a message cannot break a table or
//! send escape sequences to the terminal.

use anyhow::Context as _;
use chrono::{DateTime, Utc};

/// Spaces between two table columns.
const COLUMN_GAP: &str = "   ";

/// What a table or block shows for a value that is absent.
pub(crate) const NONE: &str = "-";

/// `text` on one line: control characters (newlines, tabs, escapes) become
/// spaces.
pub(crate) fn clean(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A table with a header row, every column left-aligned and as wide as its
/// widest cell; the last column is not padded.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub(crate) fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|h| (*h).to_owned()).collect()] }
    }

    /// Adds a row (its cells are [`clean`]ed).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| clean(c)).collect());
    }

    /// The table, one line per row, each ending in a newline.
    pub(crate) fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| self.rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max())
            .map(Option::unwrap_or_default)
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str(COLUMN_GAP);
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `Key:   value` lines with the values aligned (values are [`clean`]ed).
pub(crate) fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let label = format!("{key}:");
        let line = format!("{label:<width$}  {}", clean(value));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An RFC 3339 time from the API, or `None` when it is absent or unreadable.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc))
}

/// A time from the API in UTC as `YYYY-MM-DD HH:MM:SS`; [`NONE`] for an
/// absent or empty one; a time that is not RFC 3339 as it was sent.
pub(crate) fn utc(text: Option<&str>) -> String {
    match text.map(str::trim) {
        None | Some("") => NONE.to_owned(),
        Some(t) => parse_time(t)
            .map_or_else(|| t.to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
    }
}

/// A duration from milliseconds: `850ms`, `4.2s`, `2m5s`, `1h2m3s`,
/// `3d4h5m`.
pub(crate) fn duration(ms: i64) -> String {
    if ms < 0 {
        return NONE.to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return format!("{}.{}s", ms / 1000, ms % 1000 / 100);
    }
    let secs = ms / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h) {
        (0, 0) => format!("{m}m{s}s"),
        (0, _) => format!("{h}h{m}m{s}s"),
        _ => format!("{d}d{h}h{m}m"),
    }
}

/// The time from `start` to `end` (RFC 3339), or [`NONE`] when either is
/// missing.
pub(crate) fn elapsed(start: Option<&str>, end: Option<&str>) -> String {
    match (start.and_then(parse_time), end.and_then(parse_time)) {
        (Some(start), Some(end)) => duration((end - start).num_milliseconds()),
        _ => NONE.to_owned(),
    }
}

/// One word as a POSIX shell would need it: as is when it is plain,
/// otherwise in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r#"'\''"#)) }
}

/// Words as a shell command line, quoted where needed.
pub(crate) fn shell_words<S: AsRef<str>>(words: &[S]) -> String {
    words.iter().map(|w| shell_word(w.as_ref())).collect::<Vec<_>>().join(" ")
}

/// `yes` or `no`.
pub(crate) fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// JSON as the API sent it (keys in its order, numbers as written),
/// indented by two spaces, ending in a newline; an error if it is not JSON.
pub(crate) fn pretty_json(raw: &[u8]) -> anyhow::Result<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(raw).context("the API's answer is not JSON")?;
    let text = std::str::from_utf8(raw).context("the API's answer is not UTF-8")?;
    let mut out = String::with_capacity(text.len() * 2);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.next_if(char::is_ascii_whitespace).is_some() {}
                // An empty object or array stays `{}` / `[]`.
                if let Some(close) = chars.next_if(|n| matches!(n, '}' | ']')) {
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn tables_align_columns_and_keep_cells_on_one_line() {
        let mut t = Table::new(&["NAME", "STATUS", "MESSAGE"]);
        t.row(vec!["a".into(), "succeeded".into(), "exited with status 0".into()]);
        t.row(vec!["longer-name".into(), "failed".into(), "line one\nline two\x1b[31m".into()]);
        t.row(vec!["c".into(), "queued".into(), String::new()]);
        expect![[r#"
            NAME          STATUS      MESSAGE
            a             succeeded   exited with status 0
            longer-name   failed      line one line two [31m
            c             queued
        "#]]
        .assert_eq(&t.render());
    }

    #[test]
    fn key_value_blocks_align_values() {
        let block = key_values(&[("Name", "etl".into()), ("Next run", "-".into())]);
        expect![[r#"
            Name:      etl
            Next run:  -
        "#]]
        .assert_eq(&block);
    }

    #[test]
    fn times_are_shown_in_utc_to_the_second() {
        assert_eq!(utc(Some("2026-08-21T03:15:00.250Z")), "2026-08-21 03:15:00");
        assert_eq!(utc(Some("2026-08-21T05:15:00+02:00")), "2026-08-21 03:15:00");
        assert_eq!(utc(Some("")), "-");
        assert_eq!(utc(None), "-");
        assert_eq!(utc(Some("yesterday")), "yesterday");
    }

    #[test]
    fn durations_are_short() {
        let got: Vec<String> =
            [0, 850, 4_250, 59_999, 125_000, 3_723_000, 273_900_000, -5].map(duration).to_vec();
        assert_eq!(got, ["0ms", "850ms", "4.2s", "59.9s", "2m5s", "1h2m3s", "3d4h5m", "-"]);
        assert_eq!(
            elapsed(Some("2026-08-21T03:15:00.000Z"), Some("2026-08-21T03:15:01.500Z")),
            "1.5s"
        );
        assert_eq!(elapsed(Some("2026-08-21T03:15:00.000Z"), None), "-");
    }

    #[test]
    fn command_lines_are_quoted_where_a_shell_needs_it() {
        let words = ["/bin/sh", "-c", r#"echo "$@" >> /tmp/out"#, "sh", "it's", ""];
        assert_eq!(shell_words(&words), r#"/bin/sh -c 'echo "$@" >> /tmp/out' sh 'it'\''s' ''"#);
    }

    #[test]
    fn json_is_indented_in_the_order_it_was_sent() {
        let raw = br#"{"z":1,"a":[],"s":"a,b:{\"c\"}","o":{},"l":[1.50,{"k":null}]}"#;
        expect![[r#"
            {
              "z": 1,
              "a": [],
              "s": "a,b:{\"c\"}",
              "o": {},
              "l": [
                1.50,
                {
                  "k": null
                }
              ]
            }
        "#]]
        .assert_eq(&pretty_json(raw).unwrap());
        assert_eq!(pretty_json(b" [ ] ").unwrap(), "[]\n");
        assert!(pretty_json(b"<html>").is_err());
    }
}
