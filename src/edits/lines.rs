//! A text as lines, and back, keeping whether it ended with a line feed.

pub(super) struct Lines<'a> {
    pub lines: Vec<std::borrow::Cow<'a, str>>,
    /// The text ended with a line feed (or was empty: a new line added to it ends with one).
    pub final_newline: bool,
}

impl<'a> Lines<'a> {
    pub fn split(text: &'a str) -> Lines<'a> {
        if text.is_empty() {
            return Lines { lines: Vec::new(), final_newline: true };
        }
        let final_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        Lines { lines: body.split('\n').map(Into::into).collect(), final_newline }
    }

    pub fn join(&self) -> String {
        if self.lines.is_empty() {
            return String::new();
        }
        let mut out = self.lines.join("\n");
        if self.final_newline {
            out.push('\n');
        }
        out
    }

    /// Adds a line at the end; a file whose last line had no line feed gets one before it.
    pub fn push(&mut self, line: String) {
        self.lines.push(line.into());
        self.final_newline = true;
    }

    pub fn contains(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }
}

/// Text to add as lines: one trailing line feed is not an extra empty line.
pub(super) fn text_lines(text: &str) -> Vec<String> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Vec::new();
    }
    body.split('\n').map(String::from).collect()
}
