//! The typed model of a config tree: what `reader.rs` builds out of parsed YAML and what the
//! compiler turns into bundles. Every string keeps its location for error messages.

use super::glob::Glob;
use super::yaml::Path;

/// Where a value came from: file index in the tree plus its YAML path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    pub file: usize,
    pub path: Path,
}

/// A problem waiting for its line and column.
#[derive(Debug, Clone)]
pub struct Issue {
    pub loc: Loc,
    pub message: String,
}

/// A string with its location.
#[derive(Debug, Clone)]
pub struct Str {
    pub value: String,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub enum Value {
    Str(Str),
    Bool(bool),
    List(Vec<Str>),
    /// Named values (a custom executor's params), keys in file order.
    Map(Vec<(String, Str)>),
}

#[derive(Debug, Clone)]
pub struct VarDef {
    pub name: String,
    pub value: VarValue,
}

/// A var's value: a string (a number or true/false is kept as its text), or a list or mapping
/// of them, nested, for templates to `range` over.
#[derive(Debug, Clone)]
pub enum VarValue {
    Str(Str),
    List(Loc, Vec<VarValue>),
    /// Keys in file order.
    Map(Loc, Vec<(String, VarValue)>),
}

impl VarValue {
    pub fn loc(&self) -> &Loc {
        match self {
            VarValue::Str(s) => &s.loc,
            VarValue::List(loc, _) | VarValue::Map(loc, _) => loc,
        }
    }

    /// Every string in it, depth first.
    pub fn strs(&self) -> Vec<&Str> {
        match self {
            VarValue::Str(s) => vec![s],
            VarValue::List(_, items) => items.iter().flat_map(VarValue::strs).collect(),
            VarValue::Map(_, entries) => entries.iter().flat_map(|(_, v)| v.strs()).collect(),
        }
    }

    /// As written (secret refs stay refs), JSON for lists and mappings.
    pub fn display(&self) -> String {
        match self {
            VarValue::Str(s) => s.value.clone(),
            other => other.to_json(&mut |s| serde_json::Value::String(s.value.clone())).to_string(),
        }
    }

    /// As JSON, each string turned into a value by `leaf`.
    pub fn to_json(&self, leaf: &mut dyn FnMut(&Str) -> serde_json::Value) -> serde_json::Value {
        match self {
            VarValue::Str(s) => leaf(s),
            VarValue::List(_, items) => items.iter().map(|i| i.to_json(leaf)).collect(),
            VarValue::Map(_, entries) => entries
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json(leaf)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub name: Str,
    pub rtype: String,
    /// Type attributes in file order.
    pub attrs: Vec<(String, Value)>,
    pub depends_on: Vec<Str>,
    pub notify: Vec<Str>,
    pub watch_secret: Vec<Str>,
    pub when: Option<Str>,
}

#[derive(Debug, Clone)]
pub struct Module {
    pub role: String,
    pub vars: Vec<VarDef>,
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub pattern: Str,
    pub glob: Glob,
    pub roles: Vec<Str>,
    pub vars: Vec<VarDef>,
    /// The agent version envoys matching this entry should run (a published release).
    pub agent_version: Option<Str>,
    /// Traits an envoy must have reported, beside its name, for this entry to apply.
    pub traits: Vec<TraitRequirement>,
}

/// `PATH: GLOB` under an entry's `traits:`: the trait at the dotted path (`os.family`), as
/// text, must match the glob.
#[derive(Debug, Clone)]
pub struct TraitRequirement {
    pub path: Str,
    pub glob: Glob,
}

impl Entry {
    /// Whether this entry applies to the envoy `name` with the traits it reported (None: none
    /// yet, so an entry that requires traits does not apply).
    pub fn applies_to(&self, name: &str, traits: Option<&serde_json::Value>) -> bool {
        self.glob.matches(name)
            && self.traits.iter().all(|req| {
                let value = traits.and_then(|t| trait_text(t, &req.path.value));
                value.is_some_and(|v| req.glob.matches(&v))
            })
    }
}

/// The text of the trait at a dotted path: a string as it is, a number or boolean written out;
/// None for a missing trait, a list or a mapping.
pub fn trait_text(traits: &serde_json::Value, path: &str) -> Option<String> {
    let mut at = traits;
    for seg in path.split('.') {
        at = at.get(seg)?;
    }
    match at {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[derive(Debug, Clone, Default)]
pub struct Nodes {
    pub default_vars: Vec<VarDef>,
    pub default_roles: Vec<Str>,
    /// The agent version for envoys no entry with `agent_version` matches.
    pub default_agent_version: Option<Str>,
    pub entries: Vec<Entry>,
}
