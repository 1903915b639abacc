//! Helpers shared by Drover's fuzz targets (`fuzz_targets/*.rs`).
//!
//! Targets whose input has several parts read it as text, one part a line,
//! so that seeds and crashing inputs are readable and can be written by
//! hand; a part that is missing or malformed takes a default instead of
//! wasting the input.

/// The lines of an input, read one part at a time.
pub struct Parts<'a> {
    lines: std::str::Split<'a, char>,
}

impl<'a> Parts<'a> {
    /// The input as UTF-8 text; `None` when it is not.
    pub fn new(data: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(data).ok()?;
        Some(Parts { lines: text.split('\n') })
    }

    /// The next line, if any.
    pub fn line(&mut self) -> Option<&'a str> {
        self.lines.next()
    }

    /// The next line as a number, or `default` when it is missing or not one.
    pub fn number<T: std::str::FromStr>(&mut self, default: T) -> T {
        self.line().and_then(|l| l.trim().parse().ok()).unwrap_or(default)
    }

    /// Every line not read yet, joined again.
    pub fn rest(self) -> String {
        self.lines.collect::<Vec<_>>().join("\n")
    }

    /// Every line not read yet.
    pub fn remaining(self) -> impl Iterator<Item = &'a str> {
        self.lines
    }
}
