//! Turning issues (a message and a YAML path) into errors with line and column. Finding a
//! position re-parses the file, so the parsing spent on positions is budgeted: a tree with
//! thousands of errors, or many large files, must not cost thousands of full parses. Past the
//! budget an error still names its file and the path of keys that leads to it.

use std::collections::{BTreeMap, HashMap};

use super::model::Issue;
use super::source::{Clock, Limits};
use super::yaml::{self, Seg};
use super::{ConfigError, ConfigTree};
use crate::util::text::excerpt;

/// Errors beyond this many per file are summarised in one line.
pub const MAX_SHOWN_PER_FILE: usize = 100;

/// The longest path of keys printed for an error without a position.
const MAX_PATH_CHARS: usize = 200;

pub struct Budget<'c> {
    bytes_left: usize,
    clock: Option<&'c Clock>,
}

impl<'c> Budget<'c> {
    /// A load's budget, which also ends when the load's time is up.
    pub fn new(limits: &Limits, clock: &'c Clock) -> Budget<'c> {
        Budget { bytes_left: limits.max_locate_bytes, clock: Some(clock) }
    }

    /// For errors found after the load (compiling a bundle): the default budget, no clock.
    fn unclocked() -> Budget<'static> {
        Budget { bytes_left: Limits::default().max_locate_bytes, clock: None }
    }

    /// Spends the cost of parsing `text` once, if there is enough left.
    fn spend(&mut self, text: &str) -> bool {
        let expired = self.clock.is_some_and(Clock::expired);
        if expired || self.bytes_left < text.len() {
            return false;
        }
        self.bytes_left -= text.len();
        true
    }
}

impl ConfigTree {
    /// Sorted, de-duplicated errors with line and column.
    pub(super) fn resolve(&self, issues: Vec<Issue>) -> Vec<ConfigError> {
        self.resolve_within(issues, &mut Budget::unclocked())
    }

    pub(super) fn resolve_within(&self, issues: Vec<Issue>, budget: &mut Budget) -> Vec<ConfigError> {
        let mut by_file: BTreeMap<usize, BTreeMap<(yaml::Path, String), ()>> = BTreeMap::new();
        for i in issues {
            by_file.entry(i.loc.file).or_default().insert((i.loc.path, i.message), ());
        }
        let mut out = Vec::new();
        for (file, items) in by_file {
            let f = &self.files[file];
            let total = items.len();
            // Several errors often share a place (all the cycles through one resource).
            let mut known: HashMap<yaml::Path, Option<(usize, usize)>> = HashMap::new();
            for ((path, message), ()) in items.into_iter().take(MAX_SHOWN_PER_FILE) {
                let found = match known.get(&path) {
                    Some(found) => *found,
                    None if budget.spend(&f.text) => {
                        let found = yaml::locate(&f.text, &path);
                        known.insert(path.clone(), found);
                        found
                    }
                    None => None,
                };
                out.push(match found {
                    Some((line, column)) => ConfigError { file: f.path.clone(), line, column, message },
                    None => ConfigError::whole(&f.path, format!("at {}: {message}", show_path(&path))),
                });
            }
            if total > MAX_SHOWN_PER_FILE {
                out.push(ConfigError::whole(
                    &f.path,
                    format!("{} more errors not shown", total - MAX_SHOWN_PER_FILE),
                ));
            }
        }
        out.sort();
        out
    }
}

/// `resources[3].target_path`, keys escaped, cut from the front when long.
fn show_path(path: &yaml::Path) -> String {
    let mut out = String::new();
    for seg in &path.segs {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(&excerpt(k)),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(&excerpt(k));
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        return "the top of the file".into();
    }
    let n = out.chars().count();
    if n > MAX_PATH_CHARS {
        out = format!("…{}", out.chars().skip(n - MAX_PATH_CHARS).collect::<String>());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_without_a_position_are_short_and_escaped() {
        let p = yaml::Path::root().key("resources").index(3).key("target_path");
        assert_eq!(show_path(&p), "resources[3].target_path");
        assert_eq!(show_path(&yaml::Path::root()), "the top of the file");
        let mut deep = yaml::Path::root();
        for _ in 0..50 {
            deep = deep.key(&format!("k\n{}", "x".repeat(100)));
        }
        let shown = show_path(&deep);
        assert!(shown.chars().count() <= MAX_PATH_CHARS + 1 && !shown.contains('\n'), "{shown}");
    }
}
