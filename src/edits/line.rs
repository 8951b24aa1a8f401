//! `file_line`: one line present or absent. Present: when the line is not in the file, it takes
//! the place of the first line `match` matches, or is added at the end. Absent: every line equal
//! to it, or matching `match`, goes.

use regex::Regex;

use super::lines::Lines;
use super::{compile_regex, one_line};

#[derive(Debug)]
pub struct LineEdit {
    pub line: Option<String>,
    pub matching: Option<Regex>,
    pub present: bool,
}

impl LineEdit {
    pub(super) fn parse(get: &dyn Fn(&str) -> Option<String>, present: bool) -> Result<LineEdit, String> {
        let line = get("line");
        if let Some(l) = &line {
            one_line("line", l)?;
        }
        let matching = get("match").map(|m| compile_regex("match", &m)).transpose()?;
        if present && line.is_none() {
            return Err("file_line needs `line` (the line to have in the file)".into());
        }
        if !present && line.is_none() && matching.is_none() {
            return Err("file_line with ensure: absent needs `line` or `match` (what to remove)".into());
        }
        Ok(LineEdit { line, matching, present })
    }

    pub(super) fn apply(&self, text: &str) -> String {
        let mut lines = Lines::split(text);
        let is_target = |l: &str| {
            self.line.as_deref() == Some(l) || self.matching.as_ref().is_some_and(|re| re.is_match(l))
        };
        if !self.present {
            lines.lines.retain(|l| !is_target(l));
            return lines.join();
        }
        let Some(line) = self.line.as_deref() else { return text.to_string() };
        // Present already: nothing to do, wherever it is. This is what makes one run enough.
        if lines.contains(line) {
            return text.to_string();
        }
        let first_match =
            self.matching.as_ref().and_then(|re| lines.lines.iter().position(|l| re.is_match(l)));
        match first_match {
            Some(i) => lines.lines[i] = line.to_string().into(),
            None => lines.push(line.to_string()),
        }
        lines.join()
    }
}
