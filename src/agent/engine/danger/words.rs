//! Words as the shell would expand them for the scan: the variables a script has set (the
//! command starts with a clean environment, so an unset variable is empty), the working
//! directory `cd` moved to, and which parts are another command's output.

use std::collections::HashMap;

use super::shell::{Part, Word};

/// Candidate values kept per word (a loop variable times another).
pub(super) const MAX_CANDIDATES: usize = 32;

#[derive(Clone, Debug)]
pub(super) enum Value {
    Known(Vec<String>),
    /// Set from a substitution or `read`: treated as possibly empty.
    Unknown,
}

#[derive(Clone, Debug)]
pub(super) struct Env {
    pub vars: HashMap<String, Value>,
    /// `None` once a `cd` went somewhere the scan cannot know.
    pub cwd: Option<String>,
}

/// A word after expansion: the texts it can become, and whether part of it is the output
/// of a command (which the scan cannot know).
#[derive(Clone, Debug, Default)]
pub(super) struct Expanded {
    pub texts: Vec<String>,
    /// Part of it is the output of a command.
    pub opaque: bool,
    /// Part of it is a variable set from a command's output or input (`X=$(…)`, `read X`).
    pub unknown: bool,
    pub substs: Vec<String>,
}

impl Expanded {
    /// The one text of a word that expands to a single known value.
    pub fn single(&self) -> Option<&str> {
        (!self.opaque && !self.unknown && self.texts.len() == 1).then(|| self.texts[0].as_str())
    }

    /// Code or a command name taken from here would be unknown to the scan.
    pub fn hidden(&self) -> bool {
        self.opaque || self.unknown
    }
}

impl Env {
    fn lookup(&self, name: &str) -> Vec<String> {
        match self.vars.get(name) {
            Some(Value::Known(v)) => v.clone(),
            Some(Value::Unknown) => vec![String::new()],
            None => match name {
                "HOME" => vec!["/root".into()],
                "PATH" => vec![crate::agent::engine::process::SAFE_PATH.into()],
                "LANG" => vec!["C".into()],
                "PWD" => vec![self.cwd.clone().unwrap_or_default()],
                _ => vec![String::new()],
            },
        }
    }

    pub fn expand(&self, word: &Word) -> Expanded {
        let mut out = Expanded { texts: vec![String::new()], ..Expanded::default() };
        for part in &word.0 {
            let options: Vec<String> = match part {
                Part::Lit(s) => vec![s.clone()],
                Part::Glob(c) => vec![c.to_string()],
                Part::Subst(inner) => {
                    out.opaque = true;
                    out.substs.push(inner.clone());
                    vec![String::new()]
                }
                Part::Var(name, default) => {
                    out.unknown |= matches!(self.vars.get(name), Some(Value::Unknown));
                    let mut values = self.lookup(name);
                    if let Some(d) = default {
                        let d = self.expand(d);
                        out.opaque |= d.opaque;
                        out.unknown |= d.unknown;
                        out.substs.extend(d.substs);
                        if values.iter().any(String::is_empty) {
                            values.retain(|v| !v.is_empty());
                            values.extend(d.texts);
                        }
                    }
                    values
                }
            };
            out.texts = out
                .texts
                .iter()
                .flat_map(|t| options.iter().map(move |o| format!("{t}{o}")))
                .take(MAX_CANDIDATES)
                .collect();
        }
        out
    }

    /// `text` as an absolute path (relative to the working directory), if it can be known.
    pub(super) fn absolute(&self, text: &str) -> Option<String> {
        if text.starts_with('/') {
            return Some(text.to_string());
        }
        self.cwd.as_ref().map(|cwd| format!("{}/{text}", cwd.trim_end_matches('/')))
    }

    pub fn assign(&mut self, name: &str, value: &Expanded) {
        let v = if value.opaque { Value::Unknown } else { Value::Known(value.texts.clone()) };
        self.vars.insert(name.to_string(), v);
    }
}

/// `NAME=value` at the start of a word: the name and the word for the value.
pub(super) fn assignment(word: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit(first)) = word.0.first() else { return None };
    let (name, rest) = first.split_once('=')?;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return None;
    }
    let mut value = vec![Part::Lit(rest.to_string())];
    value.extend(word.0[1..].iter().cloned());
    Some((name.to_string(), Word(value)))
}
