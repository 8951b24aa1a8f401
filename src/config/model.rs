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
    pub value: Str,
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
}

#[derive(Debug, Clone, Default)]
pub struct Nodes {
    pub default_vars: Vec<VarDef>,
    pub default_roles: Vec<Str>,
    /// The agent version for envoys no entry with `agent_version` matches.
    pub default_agent_version: Option<Str>,
    pub entries: Vec<Entry>,
}
