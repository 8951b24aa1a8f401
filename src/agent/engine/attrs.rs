//! Typed access to a resource's attributes with secret markers substituted on the way out.
//! Values that may carry secrets come back as `SecretString` (text) or `SecretBytes` so they
//! are zeroized on drop.
//!
//! Secret values are bytes and may be binary (not UTF-8). A binary value is used only whole:
//! as the entire value of an attribute that takes bytes (`bytes`: file `content`, exec `stdin`
//! and `secret_file`) written as exactly one `secret:` ref. Spliced into text — a template
//! around it, a password, a path, a `when:` condition — it is an error naming the key and the
//! attribute.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::bundle::CompiledResource;
use crate::crypto::{SecretBytes, SecretString};
use crate::placeholder;

pub(crate) struct Attrs<'a> {
    res: &'a CompiledResource,
    secrets: &'a BTreeMap<String, SecretBytes>,
}

impl<'a> Attrs<'a> {
    /// Fails when an attribute holds a marker whose value was not resolved, so no executor ever
    /// sees (or writes) a marker.
    pub fn new(
        res: &'a CompiledResource,
        secrets: &'a BTreeMap<String, SecretBytes>,
    ) -> Result<Self, String> {
        let keys = res.secret_keys().map_err(|e| format!("resource {:?}: {e}", res.name))?;
        if let Some(missing) = keys.iter().find(|k| !secrets.contains_key(*k)) {
            return Err(unresolved(missing));
        }
        Ok(Attrs { res, secrets })
    }

    /// An attribute as the bundle holds it (markers in place), any JSON type.
    pub fn raw_value(&self, name: &str) -> Option<&'a Value> {
        self.raw(name)
    }

    fn raw(&self, name: &str) -> Option<&'a Value> {
        self.res.attributes.get(name).filter(|v| !v.is_null())
    }

    fn subst(&self, name: &str, text: &str) -> Result<String, String> {
        substitute_text(&format!("attribute {name:?}"), text, self.secrets)
    }

    /// An attribute as text; numbers and booleans are accepted as their JSON spelling.
    pub fn secret(&self, name: &str) -> Result<Option<SecretString>, String> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(SecretString::new(self.subst(name, s)?))),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(SecretString::new(v.to_string()))),
            Some(_) => Err(format!("attribute {name:?} must be a string")),
        }
    }

    /// An attribute that takes bytes (file content, exec stdin, secret_file): exactly one
    /// `secret:` ref is its value as stored, binary or not; anything else is text, in which a
    /// binary value is refused (see the module comment).
    pub fn bytes(&self, name: &str) -> Result<Option<SecretBytes>, String> {
        if let Some(key) = self.template(name).and_then(placeholder::whole_marker) {
            let value = self.secrets.get(&key).ok_or_else(|| unresolved(&key))?;
            return Ok(Some(value.clone()));
        }
        Ok(self.secret(name)?.map(SecretBytes::from))
    }

    /// A non-secret text attribute (paths, modes, names).
    pub fn string(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.secret(name)?.map(|s| s.expose().to_string()))
    }

    pub fn required(&self, name: &str) -> Result<String, String> {
        self.string(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{} resource needs the attribute {name:?}", self.res.rtype))
    }

    /// Text attribute that must not carry a marker (it would reach a command line).
    pub fn no_secret(&self, name: &str) -> Result<Option<String>, String> {
        if let Some(Value::String(s)) = self.raw(name) {
            if placeholder::contains_marker(s) {
                return Err(format!(
                    "attribute {name:?} refers to a secret; it would be visible in the process list \
                     (use stdin or secret_file instead)"
                ));
            }
        }
        self.string(name)
    }

    /// A text attribute as the bundle holds it: secret markers in place, never values.
    pub fn template(&self, name: &str) -> Option<&'a str> {
        self.raw(name).and_then(Value::as_str)
    }

    /// Secret keys referenced by one attribute (for "content changed (secret:<key>)").
    pub fn keys_in(&self, name: &str) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        if let Some(v) = self.raw(name) {
            let _ = placeholder::collect_keys(v, &mut keys);
        }
        keys
    }

    /// A boolean: JSON bool or "true"/"false"/"yes"/"no".
    pub fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.as_str() {
                "true" | "yes" => Ok(Some(true)),
                "false" | "no" => Ok(Some(false)),
                other => Err(format!("attribute {name:?} must be true or false, not {other:?}")),
            },
            Some(_) => Err(format!("attribute {name:?} must be true or false")),
        }
    }

    /// Named strings (a JSON object), markers substituted; values held as `SecretString`.
    pub fn map(&self, name: &str) -> Result<Vec<(String, SecretString)>, String> {
        match self.raw(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(o)) => o
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), SecretString::new(self.subst(name, s)?))),
                    _ => Err(format!("attribute {name:?} must map names to strings")),
                })
                .collect(),
            Some(_) => Err(format!("attribute {name:?} must be a mapping of names to strings")),
        }
    }

    /// A list of strings: a JSON array, or one comma-separated string.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => self.subst(name, s),
                    _ => Err(format!("attribute {name:?} must be a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::String(s)) => Ok(Some(
                self.subst(name, s)?
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect(),
            )),
            Some(_) => Err(format!("attribute {name:?} must be a list of strings")),
        }
    }

    /// `ensure`: true for present (the default), false for absent.
    pub fn ensure_present(&self, present: &[&str], absent: &[&str]) -> Result<bool, String> {
        match self.string("ensure")? {
            None => Ok(true),
            Some(e) if present.contains(&e.as_str()) => Ok(true),
            Some(e) if absent.contains(&e.as_str()) => Ok(false),
            Some(e) => Err(format!(
                "ensure must be one of {}, not {e:?}",
                present.iter().chain(absent).copied().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

fn unresolved(key: &str) -> String {
    format!(
        "secret:{key} was not resolved for this run; the resource was not applied so its marker \
         cannot land on disk"
    )
}

/// `text` with its markers replaced by their values, which must be text: `what` (an attribute,
/// `when:`) names where, in the error for a binary value.
pub(crate) fn substitute_text(
    what: &str,
    text: &str,
    secrets: &BTreeMap<String, SecretBytes>,
) -> Result<String, String> {
    for found in placeholder::find_markers(text).map_err(|e| e.to_string())? {
        if secrets.get(&found.key).is_some_and(|v| v.as_text().is_none()) {
            return Err(binary_in_text(what, &found.key));
        }
    }
    placeholder::substitute(text, |k| secrets.get(k).and_then(SecretBytes::as_text))
        .map_err(|e| e.to_string())
}

/// The error for a binary value where text is needed, with the two ways out.
pub(crate) fn binary_in_text(what: &str, key: &str) -> String {
    format!(
        "secret:{key} is binary (not UTF-8 text) and {what} needs text; a binary value can only be \
         used whole, as the entire file content, stdin or secret_file (`content: \"secret:{key}\"`), \
         or store a text encoding of it (e.g. base64) under another key"
    )
}
