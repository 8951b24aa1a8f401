//! Reads the typed model (model.rs) out of parsed YAML, with every structural check that does
//! not depend on which envoy is being compiled. Problems are collected, never thrown, so one run
//! reports all of them.

use super::glob::Glob;
use super::model::{
    Entry, Issue, Loc, Module, Nodes, Resource, Str, TraitRequirement, Value, VarDef, VarValue,
};

pub use super::schema::is_role_name;
use super::schema::{self, check_name, Kind};
use super::secrets::check_literal;
use super::template;
use super::yaml::{self, Node, Path};
use crate::util::text::{check_visible, excerpt};

/// Reads one file's tree, recording issues against that file.
pub struct Reader<'a> {
    pub file: usize,
    pub issues: &'a mut Vec<Issue>,
    /// Whether the file holds unquoted YAML 1.1 booleans (already reported, with positions, by
    /// the loader from the file's scan).
    pub has_yaml11_words: bool,
}

/// Words YAML 1.1 reads as booleans; serde_yaml (YAML 1.2) reads them as strings.
/// How deep list and mapping vars may nest.
const MAX_VAR_DEPTH: usize = 8;

const YAML11_BOOLS: &[&str] = &["yes", "no", "on", "off"];

impl Reader<'_> {
    fn issue(&mut self, path: &Path, message: impl Into<String>) {
        self.issues.push(Issue { loc: Loc { file: self.file, path: path.clone() }, message: message.into() });
    }

    /// The entries of a mapping, reporting keys not in `allowed`.
    fn map<'n>(&mut self, node: &'n Node, path: &Path, what: &str, allowed: &[&str]) -> &'n [(String, Node)] {
        match node {
            Node::Map(entries) => {
                for (k, _) in entries {
                    if !allowed.contains(&k.as_str()) {
                        let msg = format!(
                            "unknown key `{}` in {what}; allowed keys: {}",
                            excerpt(k),
                            allowed.join(", ")
                        );
                        self.issue(&path.key(k).at_key(), msg);
                    }
                }
                entries
            }
            other => {
                self.issue(path, format!("{what} must be a mapping (key: value), not {}", other.kind()));
                &[]
            }
        }
    }

    /// A string value. Integers are accepted only when `int_ok` (written in decimal).
    fn string(&mut self, node: &Node, path: &Path, what: &str, int_ok: bool) -> Option<Str> {
        let value = match node {
            Node::Str(s) => s.clone(),
            Node::Int(i) if int_ok => i.to_string(),
            Node::Int(_) | Node::Float(_) => {
                self.issue(path, format!("{what} must be a string; quote the number"));
                return None;
            }
            other => {
                self.issue(path, format!("{what} must be a string, not {}", other.kind()));
                return None;
            }
        };
        // Telling `yes` from `"yes"` here would take a re-parse per string; the file's scan has
        // listed (and the loader reported) every unquoted one. When it found any, these words are
        // left out, so an unquoted one never causes a second error at the same place.
        if self.has_yaml11_words
            && matches!(node, Node::Str(_))
            && YAML11_BOOLS.contains(&value.to_ascii_lowercase().as_str())
        {
            return None;
        }
        if let Err(msg) = check_literal(&value) {
            self.issue(path, format!("{what}: {msg}"));
            return None;
        }
        Some(Str { value, loc: Loc { file: self.file, path: path.clone() } })
    }

    fn string_list(&mut self, node: &Node, path: &Path, what: &str) -> Vec<Str> {
        match node {
            Node::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| self.string(n, &path.index(i), what, false))
                .collect(),
            other => {
                self.issue(path, format!("{what} must be a list like [a, b], not {}", other.kind()));
                Vec::new()
            }
        }
    }

    /// A mapping of names to strings (`{port: "443", host: a}`); names are letters, digits and _.
    fn string_map(&mut self, node: &Node, path: &Path, what: &str) -> Vec<(String, Str)> {
        let Node::Map(entries) = node else {
            self.issue(path, format!("{what} must be a mapping like {{name: value}}, not {}", node.kind()));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let p = path.key(k);
            if k.is_empty() || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                self.issue(&p, format!("{what} name `{}` must be 1-64 of letters, digits and _", excerpt(k)));
                continue;
            }
            if let Some(s) = self.string(v, &p, what, true) {
                out.push((k.clone(), s));
            }
        }
        out
    }

    /// A list of names (resources, secret keys): strings with nothing hidden in them.
    fn names(&mut self, node: &Node, path: &Path, what: &str) -> Vec<Str> {
        let items = self.string_list(node, path, what);
        items.into_iter().filter(|s| self.visible(what, s)).collect()
    }

    /// Whether `s` holds no control or invisible character; records the issue if it does.
    fn visible(&mut self, what: &str, s: &Str) -> bool {
        match check_visible(what, &s.value) {
            Ok(()) => true,
            Err(msg) => {
                self.issue(&s.loc.path, msg);
                false
            }
        }
    }

    /// One var's value: a string, number or true/false (kept as text), or a list or mapping of
    /// them (nested no deeper than `MAX_VAR_DEPTH`).
    fn var_value(&mut self, node: &Node, p: &Path, name: &str, depth: usize) -> Option<VarValue> {
        let loc = Loc { file: self.file, path: p.clone() };
        match node {
            Node::Bool(b) => Some(VarValue::Str(Str { value: b.to_string(), loc })),
            Node::Str(_) | Node::Int(_) => {
                self.string(node, p, &format!("var `{}`", excerpt(name)), true).map(VarValue::Str)
            }
            Node::Seq(_) | Node::Map(_) if depth >= MAX_VAR_DEPTH => {
                self.issue(p, format!("var `{}` nests deeper than {MAX_VAR_DEPTH} levels", excerpt(name)));
                None
            }
            Node::Seq(items) => {
                let values: Vec<VarValue> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.var_value(item, &p.index(i), name, depth + 1))
                    .collect();
                (values.len() == items.len()).then_some(VarValue::List(loc, values))
            }
            Node::Map(entries) => {
                let values: Vec<(String, VarValue)> = entries
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.var_value(v, &p.key(k), name, depth + 1)?)))
                    .collect();
                (values.len() == entries.len()).then_some(VarValue::Map(loc, values))
            }
            other => {
                let msg = format!(
                    "var `{}` must be a string, number, true/false, list or mapping, not {}",
                    excerpt(name),
                    other.kind()
                );
                self.issue(p, msg);
                None
            }
        }
    }

    pub fn vars(&mut self, node: &Node, path: &Path) -> Vec<VarDef> {
        let Node::Map(entries) = node else {
            self.issue(path, format!("vars must be a mapping of name: value, not {}", node.kind()));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in entries {
            let p = path.key(name);
            if !template::is_var_name(name) {
                let msg = format!("var name `{}` must be letters, digits and _", excerpt(name));
                self.issue(&p.clone().at_key(), msg);
                continue;
            }
            if let Some(value) = self.var_value(value, &p, name, 0) {
                out.push(VarDef { name: name.clone(), value });
            }
        }
        out
    }

    fn roles(&mut self, node: &Node, path: &Path) -> Vec<Str> {
        let roles = self.string_list(node, path, "a role");
        roles
            .into_iter()
            .filter(|r| {
                let ok = is_role_name(&r.value);
                if !ok {
                    let msg = format!("role `{}` must be letters, digits, _ and -", excerpt(&r.value));
                    self.issue(&r.loc.path, msg);
                }
                ok
            })
            .collect()
    }

    pub fn nodes(&mut self, root: &Node) -> Nodes {
        let top = Path::root();
        let mut out = Nodes::default();
        for (k, v) in self.map(root, &top, "nodes.vgo", &["defaults", "envoys"]) {
            let p = top.key(k);
            match k.as_str() {
                "defaults" => {
                    for (dk, dv) in self.map(v, &p, "defaults", &["vars", "roles", "agent_version"]) {
                        match dk.as_str() {
                            "vars" => out.default_vars = self.vars(dv, &p.key(dk)),
                            "roles" => out.default_roles = self.roles(dv, &p.key(dk)),
                            "agent_version" => out.default_agent_version = self.agent_version(dv, &p.key(dk)),
                            _ => {}
                        }
                    }
                }
                "envoys" => match v {
                    Node::Seq(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Some(e) = self.entry(item, &p.index(i)) {
                                out.entries.push(e);
                            }
                        }
                    }
                    Node::Null => {}
                    other => {
                        self.issue(&p, format!("envoys must be a list of entries, not {}", other.kind()))
                    }
                },
                _ => {}
            }
        }
        out
    }

    fn entry(&mut self, node: &Node, path: &Path) -> Option<Entry> {
        let (mut pattern, mut roles, mut vars, mut agent_version) = (None, Vec::new(), Vec::new(), None);
        let mut traits = Vec::new();
        let keys = ["match", "roles", "vars", "agent_version", "traits"];
        for (k, v) in self.map(node, path, "an envoys entry", &keys) {
            let p = path.key(k);
            match k.as_str() {
                "match" => pattern = self.string(v, &p, "match", false),
                "traits" => traits = self.trait_requirements(v, &p),
                "roles" => roles = self.roles(v, &p),
                "vars" => vars = self.vars(v, &p),
                "agent_version" => agent_version = self.agent_version(v, &p),
                _ => {}
            }
        }
        let Some(pattern) = pattern else {
            if matches!(node, Node::Map(_))
                && !matches!(node, Node::Map(m) if m.iter().any(|(k, _)| k == "match"))
            {
                self.issue(path, "envoys entry has no `match:`; add a glob such as match: \"web*\"");
            }
            return None;
        };
        if let Err(msg) = check_visible("match pattern", &pattern.value) {
            self.issue(&pattern.loc.path, msg);
            return None;
        }
        match Glob::new(&pattern.value) {
            Ok(_) if !traits.is_empty() && agent_version.is_some() => {
                let msg =
                    "an entry with `traits:` cannot set agent_version: releases are chosen by envoy name; \
                           set it in an entry without traits";
                self.issue(&path.key("agent_version"), msg);
                None
            }
            Ok(glob) => Some(Entry { pattern, glob, roles, vars, agent_version, traits }),
            Err(msg) => {
                self.issue(&pattern.loc.path, msg);
                None
            }
        }
    }

    /// `traits:` of an entry: a mapping of dotted trait paths to globs over their values.
    fn trait_requirements(&mut self, node: &Node, path: &Path) -> Vec<TraitRequirement> {
        let Node::Map(entries) = node else {
            self.issue(path, format!("traits must be a mapping of trait path: glob, not {}", node.kind()));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in entries {
            let p = path.key(name);
            if crate::store::traits::parse_where(&format!("{name}=x")).is_err() {
                let msg = format!(
                    "trait path `{}` must be trait names joined by dots, like os.family",
                    excerpt(name)
                );
                self.issue(&p.clone().at_key(), msg);
                continue;
            }
            let Some(glob_text) = self.string(value, &p, "a trait glob", true) else { continue };
            match Glob::new(&glob_text.value) {
                Ok(glob) => {
                    out.push(TraitRequirement { path: Str { value: name.clone(), loc: glob_text.loc }, glob })
                }
                Err(msg) => self.issue(&p, msg),
            }
        }
        out
    }

    /// A semver version (`1.4.0`), the release agents should move to.
    fn agent_version(&mut self, node: &Node, path: &Path) -> Option<Str> {
        let v = self.string(node, path, "agent_version", false)?;
        match semver::Version::parse(&v.value) {
            Ok(_) => Some(v),
            Err(e) => {
                let shown: String = v.value.chars().take(64).collect();
                self.issue(
                    path,
                    format!("agent_version {:?} is not a version such as \"1.4.0\": {e}", shown),
                );
                None
            }
        }
    }

    pub fn module(&mut self, role: &str, root: &Node) -> Module {
        let top = Path::root();
        let mut m = Module { role: role.to_string(), vars: Vec::new(), resources: Vec::new() };
        for (k, v) in self.map(root, &top, "a module", &["vars", "resources"]) {
            let p = top.key(k);
            match (k.as_str(), v) {
                ("vars", _) => m.vars = self.vars(v, &p),
                ("resources", Node::Seq(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(r) = self.resource(item, &p.index(i)) {
                            if let Some(first) = m.resources.iter().find(|x| x.name.value == r.name.value) {
                                let msg = format!(
                                    "duplicate resource name `{}` (also resource #{} in this file); names must be unique",
                                    excerpt(&r.name.value),
                                    index_of(&first.name.loc.path) + 1
                                );
                                self.issue(&r.name.loc.path, msg);
                            }
                            m.resources.push(r);
                        }
                    }
                }
                ("resources", Node::Null) => {}
                ("resources", other) => {
                    self.issue(&p, format!("resources must be a list, not {}", other.kind()))
                }
                _ => {}
            }
        }
        m
    }

    fn resource(&mut self, node: &Node, path: &Path) -> Option<Resource> {
        let Node::Map(entries) = node else {
            self.issue(path, format!("a resource must be a mapping, not {}", node.kind()));
            return None;
        };
        let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let Some(tnode) = get("type") else {
            self.issue(path, format!("resource has no `type:`; add one of {}", schema::type_names()));
            return None;
        };
        let rtype = self.string(tnode, &path.key("type"), "type", false)?.value;
        if let Err(msg) = check_visible("resource type", &rtype) {
            self.issue(&path.key("type"), msg);
            return None;
        }
        let Some(spec) = schema::attrs_of(&rtype) else {
            let msg =
                format!("unknown resource type `{}`; use one of {}", excerpt(&rtype), schema::type_names());
            self.issue(&path.key("type"), msg);
            return None;
        };
        let mut allowed: Vec<&str> = schema::COMMON.to_vec();
        allowed.extend(spec.iter().map(|a| a.name));
        self.map(node, path, &format!("a {rtype} resource"), &allowed);
        let Some(nnode) = get("name") else {
            self.issue(path, "resource has no `name:`; every resource needs a unique name");
            return None;
        };
        let name = self.string(nnode, &path.key("name"), "name", false)?;
        if let Err(msg) = check_name(&name.value) {
            self.issue(&name.loc.path, msg);
        }
        let mut r = Resource {
            name,
            rtype,
            attrs: Vec::new(),
            depends_on: vec![],
            notify: vec![],
            watch_secret: vec![],
            when: None,
        };
        for attr in spec {
            if attr.required && get(attr.name).is_none() {
                self.issue(
                    path,
                    format!("{} resource `{}` is missing `{}`", r.rtype, excerpt(&r.name.value), attr.name),
                );
            }
        }
        for (k, v) in entries {
            let p = path.key(k);
            match k.as_str() {
                "depends_on" => r.depends_on = self.names(v, &p, "depends_on"),
                "notify" => r.notify = self.names(v, &p, "notify"),
                "watch_secret" => r.watch_secret = self.names(v, &p, "watch_secret"),
                "when" => r.when = self.string(v, &p, "when", false).filter(|w| self.visible("when", w)),
                _ => {
                    if let Some(attr) = spec.iter().find(|a| a.name == k) {
                        if let Some(value) = self.attr(attr, v, &p) {
                            r.attrs.push((k.clone(), value));
                        }
                    }
                }
            }
        }
        Some(r)
    }

    fn attr(&mut self, attr: &schema::Attr, node: &Node, path: &Path) -> Option<Value> {
        let value = match (attr.kind, node) {
            (Kind::Mode, Node::Int(i)) => {
                self.issue(
                    path,
                    format!("mode {i} is an integer; modes are strings like \"0644\" (quote it)"),
                );
                return None;
            }
            (Kind::Flag, Node::Bool(b)) => return Some(Value::Bool(*b)),
            (Kind::List, _) => Value::List(self.string_list(node, path, attr.name)),
            (Kind::Map, _) => Value::Map(self.string_map(node, path, attr.name)),
            (kind, _) => Value::Str(self.string(node, path, attr.name, kind == Kind::Num)?),
        };
        let strings: Vec<&Str> = match &value {
            Value::Str(s) => vec![s],
            Value::List(items) => items.iter().collect(),
            Value::Map(entries) => entries.iter().map(|(_, v)| v).collect(),
            Value::Bool(_) => vec![],
        };
        for s in strings {
            match template::check(&s.value) {
                Err(msg) => self.issue(&s.loc.path, msg),
                // Literal values can be checked now; templated ones after rendering.
                Ok(()) if !s.value.contains("{{") && !s.value.starts_with("secret:") => {
                    if let Err(msg) = schema::check_value(attr, &s.value) {
                        self.issue(&s.loc.path, msg);
                    }
                }
                Ok(()) => {}
            }
        }
        Some(value)
    }
}

fn index_of(path: &Path) -> usize {
    path.segs
        .iter()
        .rev()
        .find_map(|s| if let yaml::Seg::Index(i) = s { Some(*i) } else { None })
        .unwrap_or(0)
}
