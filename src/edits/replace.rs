//! `replace`: every match of a regex (multi-line: `^` and `$` match at each line) replaced,
//! with `$1` / `${name}` for groups. An edit whose output the same pattern would change again
//! never converges: refused at compile time where the replacement is literal, and on every run.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::{Regex, RegexBuilder};

use crate::util::text::excerpt;

/// Bounds the compiled program, so a pathological pattern is an error, not an agent out of
/// memory. The regex crate guarantees linear-time matching on top.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiled patterns by their text: a bundle often repeats one, and the compiler checks each
/// before the agent uses it. A `Regex` is immutable and cheap to clone; the cache is emptied
/// when it holds `REGEX_CACHE_MAX` of them.
static REGEX_CACHE: LazyLock<Mutex<HashMap<String, Regex>>> = LazyLock::new(Default::default);
const REGEX_CACHE_MAX: usize = 4096;

pub fn compile_regex(attr: &str, pattern: &str) -> Result<Regex, String> {
    let mut cache = REGEX_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(re) = cache.get(pattern) {
        return Ok(re.clone());
    }
    let re =
        RegexBuilder::new(pattern).multi_line(true).size_limit(REGEX_SIZE_LIMIT).build().map_err(|e| {
            format!("`{attr}` \"{}\" is not a valid regular expression: {e}", excerpt(pattern))
        })?;
    if cache.len() >= REGEX_CACHE_MAX {
        cache.clear();
    }
    cache.insert(pattern.to_string(), re.clone());
    Ok(re)
}

#[derive(Debug)]
pub struct ReplaceEdit {
    regex: Regex,
    with: String,
}

impl ReplaceEdit {
    pub(super) fn parse(get: &dyn Fn(&str) -> Option<String>) -> Result<ReplaceEdit, String> {
        let regex = compile_regex("regexp", &get("regexp").unwrap_or_default())?;
        let with = get("replace").unwrap_or_default();
        let edit = ReplaceEdit { regex, with };
        if !edit.with.contains('$') {
            // A literal replacement the pattern matches (and changes) again would grow the
            // file on every run.
            edit.converges_on(&edit.with)?;
        }
        Ok(edit)
    }

    fn converges_on(&self, text: &str) -> Result<String, String> {
        let once = self.regex.replace_all(text, self.with.as_str());
        let twice = self.regex.replace_all(&once, self.with.as_str());
        if twice != once {
            return Err(format!(
                "this replace never converges: the pattern \"{}\" matches its own result again, so every \
                 run would change the file; anchor the pattern or make it exclude the replacement",
                excerpt(self.regex.as_str())
            ));
        }
        Ok(once.into_owned())
    }

    pub(super) fn apply(&self, text: &str) -> Result<String, String> {
        self.converges_on(text)
    }
}
