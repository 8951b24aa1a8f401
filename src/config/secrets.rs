//! `secret:<key>` references: recognising them, checking them against the provider, and turning
//! them into markers. The provider is asked whether a key exists, never for its value.

use std::collections::HashMap;

use crate::placeholder;
use crate::secrets::{Provider, SecretsError};
use crate::util::text::excerpt;

pub const PREFIX: &str = "secret:";

/// The key when the whole string is a secret reference.
pub fn as_ref(s: &str) -> Option<&str> {
    s.strip_prefix(PREFIX)
}

/// Checks every string read from a .vgo file: no NUL (e.g. from a "\0" escape), and no
/// hand-written markers, which would grant a key without the provider check.
pub fn check_literal(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err("contains a NUL character; remove it".into());
    }
    if placeholder::contains_marker(s) {
        return Err(format!(
            "contains a secret marker ({}...); write secret:<key> instead",
            placeholder::MARKER_START
        ));
    }
    Ok(())
}

/// The grammar check alone, with a message that says what a key looks like.
pub fn check_key(key: &str) -> Result<(), String> {
    placeholder::validate_key(key).map_err(|e| match e {
        placeholder::PlaceholderError::InvalidKey { key, reason } => format!(
            "secret:{} is not a valid secret key: {} (keys look like app/db/password)",
            excerpt(&key),
            reason
        ),
        _ => format!("secret:{} is not a valid secret key (keys look like app/db/password)", excerpt(key)),
    })
}

/// Text that looks like a reference inside a longer string: `secret:` followed by a character
/// a key can start with, anywhere (also inside a word such as `mysecret:x`, which cannot be told
/// from a reference with a typo in front). Returns `secret:` and the key-like text after it.
pub fn embedded_ref(value: &str) -> Option<&str> {
    let key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '#');
    value.match_indices(PREFIX).find_map(|(at, _)| {
        let rest = &value[at + PREFIX.len()..];
        let len = rest.find(|c: char| !key_char(c)).unwrap_or(rest.len());
        let starts_key =
            rest.starts_with(|c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        starts_key.then(|| &value[at..at + PREFIX.len() + len])
    })
}

/// Resolves keys to markers, asking the provider once per key.
pub struct Resolver<'p> {
    provider: &'p dyn Provider,
    seen: HashMap<String, Result<(), String>>,
}

impl<'p> Resolver<'p> {
    pub fn new(provider: &'p dyn Provider) -> Self {
        Resolver { provider, seen: HashMap::new() }
    }

    /// The marker for `key`, or why it cannot be used.
    pub fn marker(&mut self, key: &str) -> Result<String, String> {
        check_key(key)?;
        let provider = self.provider;
        let found = self.seen.entry(key.to_string()).or_insert_with(|| match provider.contains(key) {
            Ok(true) => Ok(()),
            Ok(false) | Err(SecretsError::NotFound { .. }) => Err(format!(
                "secret `{key}` does not exist in the vault; store it with `vigocli secrets set raw {key}` or fix the name"
            )),
            Err(e) => Err(format!("secret `{key}` could not be checked: {e}")),
        });
        found.clone()?;
        placeholder::marker(key).map_err(|e| e.to_string())
    }
}

/// The forms `when:` may take. Operands are compared as rendered, trimmed strings.
#[derive(Debug, Clone, PartialEq)]
pub enum When<'a> {
    Keyword(&'a str),
    Compare { lhs: &'a str, op: &'static str, rhs: &'a str },
}

pub const WHEN_FORMS: &str = "`changed`, `always`, or a comparison `A == B` / `A != B`";

pub fn parse_when(s: &str) -> Result<When<'_>, String> {
    let t = s.trim();
    if t == "changed" || t == "always" {
        return Ok(When::Keyword(t));
    }
    let ops: Vec<(usize, &'static str)> = t
        .match_indices("==")
        .map(|(i, _)| (i, "=="))
        .chain(t.match_indices("!=").map(|(i, _)| (i, "!=")))
        .collect();
    match ops.as_slice() {
        [(at, op)] => Ok(When::Compare { lhs: t[..*at].trim(), op, rhs: t[at + 2..].trim() }),
        [] => Err(format!("`when: {}` is not an allowed form; use {WHEN_FORMS}", excerpt(t))),
        _ => {
            Err(format!("`when: {}` has more than one comparison; use exactly one `==` or `!=`", excerpt(t)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryProvider;

    #[test]
    fn resolver_checks_existence_and_grammar() {
        let mut p = MemoryProvider::new();
        p.insert("app/db/pw", "hunter2");
        let mut r = Resolver::new(&p);
        assert_eq!(r.marker("app/db/pw").unwrap(), placeholder::marker("app/db/pw").unwrap());
        assert!(r.marker("app/missing").unwrap_err().contains("does not exist"));
        assert!(r.marker("../etc/passwd").unwrap_err().contains("not a valid secret key"));
    }

    #[test]
    fn when_forms() {
        assert_eq!(parse_when(" changed ").unwrap(), When::Keyword("changed"));
        assert_eq!(parse_when("a == b").unwrap(), When::Compare { lhs: "a", op: "==", rhs: "b" });
        assert_eq!(parse_when("x!=\"\"").unwrap(), When::Compare { lhs: "x", op: "!=", rhs: "\"\"" });
        assert!(parse_when("true").is_err());
        assert!(parse_when("a == b == c").is_err());
        assert!(check_literal("a\0b").is_err());
        assert!(check_literal("__VIGO_SECRET__k__END_VIGO_SECRET__").is_err());
    }
}
