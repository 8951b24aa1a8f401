//! The .vgo configuration language: `nodes.vgo` maps envoy-name globs to roles and vars,
//! `modules/<role>.vgo` holds each role's vars and resources. `load_tree` reads and checks a
//! tree; `ConfigTree::compile` produces one envoy's bundle with every `secret:` ref checked
//! against the provider and replaced by its marker. Errors carry file:line:column and are all
//! collected, so an operator fixes a tree in one pass. The language is described for operators in
//! docs/CONFIG.md.
//!
//! When several `envoys:` entries match a name, they combine like this:
//! - roles: `defaults.roles`, then each matching entry's roles in file order; a role listed
//!   twice is applied once, at its first position;
//! - vars, lowest precedence first: `defaults.vars`, then the `vars:` of each applied module in
//!   role order, then the `vars:` of each matching entry in file order. A later definition
//!   replaces an earlier one, so the most specific entry belongs further down the file.
//!
//! An envoy that matches no entry gets an empty bundle: no defaults apply to it.

mod bundle_checks;
mod compile;
pub mod glob;
mod locate;
mod model;
mod reader;
mod report;
mod scan;
pub(crate) mod schema;
mod secrets;
mod source;
mod template;
pub mod trace;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::bundle::CompiledBundle;
use crate::secrets::Provider;
use crate::util::text::{escape_control, excerpt};
use model::{Issue, Loc, Module, Nodes, Value};
use reader::Reader;
use secrets::Resolver;
pub use source::Limits;

/// One problem in a config tree. `line` and `column` are 1-based; 0 means "the whole file".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Messages quote config text in excerpts, so they stay short; this is the backstop.
const MAX_MESSAGE_CHARS: usize = 2000;

impl fmt::Display for ConfigError {
    /// Messages quote config text only escaped; the escaping here also covers file names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display().to_string();
        let (file, mut message) = (escape_control(&file), escape_control(&self.message));
        if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
            message = format!("{}…", &message[..cut]).into();
        }
        if self.line == 0 {
            write!(f, "{file}: {message}")
        } else {
            write!(f, "{file}:{}:{}: {message}", self.line, self.column)
        }
    }
}

impl ConfigError {
    fn whole(file: &Path, message: impl Into<String>) -> Self {
        ConfigError { file: file.to_path_buf(), line: 0, column: 0, message: message.into() }
    }
}

struct SourceFile {
    /// Name inside the tree (`nodes.vgo`, `modules/web.vgo`): what the content hash covers.
    rel: String,
    path: PathBuf,
    text: String,
}

/// A parsed and structurally validated config tree.
pub struct ConfigTree {
    files: Vec<SourceFile>,
    nodes: Nodes,
    modules: BTreeMap<String, Module>,
    limits: Limits,
    /// Whether any bundle depends on the envoy's traits (see `uses_traits`).
    uses_traits: bool,
}

/// Reads `dir/nodes.vgo` and `dir/modules/*.vgo` within the default `Limits`. Returns every
/// error found, not just the first. A plain blocking function: it reads files and parses, so an
/// async caller runs it on a blocking thread.
pub fn load_tree(dir: &Path) -> Result<ConfigTree, Vec<ConfigError>> {
    load_tree_with(dir, &Limits::default())
}

/// `load_tree` with other limits (tests use small ones).
pub fn load_tree_with(dir: &Path, limits: &Limits) -> Result<ConfigTree, Vec<ConfigError>> {
    let clock = source::Clock::start(limits);
    let source::Read { files: raw, mut errors, modules_listed } = source::read_tree(dir, limits, &clock);
    let mut files = Vec::new();
    let mut parsed = Vec::new();
    let mut broken = Vec::new();
    for source::RawFile { rel, path, content } in raw {
        let parsed_file = match content {
            source::Content::Read(b) => yaml::parse(&b).map(|doc| (doc, b)),
            source::Content::Failed(message) => Err(yaml::ParseError { line: 0, column: 0, message }),
            source::Content::Skipped => Err(yaml::ParseError { line: 0, column: 0, message: String::new() }),
        };
        match parsed_file {
            Ok((doc, bytes)) => {
                for (line, column, word) in &doc.yaml11_words {
                    let message = format!(
                        "`{word}` is a boolean in YAML 1.1 but a string here; quote it (\"{word}\") \
                         if you mean the word, or write true/false"
                    );
                    errors.push(ConfigError { file: path.clone(), line: *line, column: *column, message });
                }
                let text = String::from_utf8(bytes).unwrap_or_default();
                parsed.push(doc);
                files.push(SourceFile { rel, path, text });
            }
            Err(e) => {
                // The role exists; don't also report it as missing.
                if let Some(role) = rel.strip_prefix("modules/").and_then(|n| n.strip_suffix(".vgo")) {
                    broken.push(role.to_string());
                }
                if !e.message.is_empty() {
                    errors.push(ConfigError {
                        file: path,
                        line: e.line,
                        column: e.column,
                        message: e.message,
                    })
                }
            }
        }
    }
    let mut issues = Vec::new();
    let mut nodes = Nodes::default();
    let mut modules = BTreeMap::new();
    for (i, (file, doc)) in files.iter().zip(&parsed).enumerate() {
        let words = !doc.yaml11_words.is_empty();
        let mut reader = Reader { file: i, issues: &mut issues, has_yaml11_words: words };
        match file.rel.strip_prefix("modules/").and_then(|n| n.strip_suffix(".vgo")) {
            None => nodes = reader.nodes(&doc.root),
            Some(role) if reader::is_role_name(role) => {
                modules.insert(role.to_string(), reader.module(role, &doc.root));
            }
            Some(role) => errors.push(ConfigError::whole(
                &file.path,
                format!(
                    "module file name `{}` is not a role name (letters, digits, _ and -); rename it",
                    excerpt(role)
                ),
            )),
        }
    }
    for role in broken {
        modules.insert(role.clone(), Module { role, vars: Vec::new(), resources: Vec::new() });
    }
    // Conservative: a comment naming .Traits only costs a lookup of the envoy's traits.
    let uses_traits = files.iter().any(|f| f.text.contains(".Traits"))
        || nodes.entries.iter().any(|e| !e.traits.is_empty());
    let tree = ConfigTree { files, nodes, modules, limits: limits.clone(), uses_traits };
    tree.check_roles_and_refs(&mut issues, modules_listed);
    let mut budget = report::Budget::new(limits, &clock);
    errors.extend(tree.resolve_within(issues, &mut budget));
    if let Err(e) = clock.check(dir) {
        errors.push(e);
    }
    errors.sort();
    if errors.is_empty() {
        Ok(tree)
    } else {
        Err(errors)
    }
}

/// Whether `rel` is a name a tree's file can have: `nodes.vgo`, or `modules/ROLE.vgo` (one
/// level, not hidden). What is written back from a snapshot or a revision is held to it, so a
/// doctored one cannot write elsewhere.
pub fn is_tree_file(rel: &str) -> bool {
    rel == "nodes.vgo"
        || rel.strip_prefix("modules/").is_some_and(|n| {
            n.ends_with(".vgo") && !n.contains('/') && !n.starts_with('.') && n.len() > ".vgo".len()
        })
}

impl ConfigTree {
    /// SHA-256 (hex) over every file: sorted names and their bytes, each length-prefixed.
    pub fn content_hash(&self) -> String {
        let mut files: Vec<&SourceFile> = self.files.iter().collect();
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        let mut buf = Vec::new();
        for f in files {
            for part in [f.rel.as_bytes(), f.text.as_bytes()] {
                buf.extend_from_slice(&(part.len() as u64).to_be_bytes());
                buf.extend_from_slice(part);
            }
        }
        crate::crypto::sha256_hex(&buf)
    }

    /// Every source file as (name inside the tree, text): what the content hash covers.
    pub fn sources(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|f| (f.rel.as_str(), f.text.as_str()))
    }

    /// The `match:` globs of `envoys:`, in file order.
    #[cfg(test)]
    pub fn patterns(&self) -> Vec<String> {
        self.nodes.entries.iter().map(|e| e.pattern.value.clone()).collect()
    }

    /// Whether any `envoys:` entry matches `envoy_name` (an envoy nothing matches gets an
    /// empty bundle).
    pub fn matches_envoy(&self, envoy_name: &str) -> bool {
        self.nodes.entries.iter().any(|e| e.glob.matches(envoy_name))
    }

    /// The bundle for one envoy: its matching entries combined (see the module docs).
    pub fn compile(
        &self,
        envoy_name: &str,
        provider: &dyn Provider,
    ) -> Result<CompiledBundle, Vec<ConfigError>> {
        self.compile_with_traits(envoy_name, None, provider)
    }

    /// `compile` for an envoy that reported `traits`: they select entries that require traits
    /// and are what templates read as `.Traits`.
    pub fn compile_with_traits(
        &self,
        envoy_name: &str,
        traits: Option<&serde_json::Value>,
        provider: &dyn Provider,
    ) -> Result<CompiledBundle, Vec<ConfigError>> {
        if let Err(msg) = compile::check_envoy_name(envoy_name) {
            return Err(vec![self.tree_error(msg)]);
        }
        let entries: Vec<_> =
            self.nodes.entries.iter().filter(|e| e.applies_to(envoy_name, traits)).collect();
        let mut resolver = Resolver::new(provider);
        let mut c =
            compile::Compiler::new(&self.nodes, &self.modules, &mut resolver, self.limits.max_bundle_text);
        let bundle = c.compile(envoy_name, &entries, traits);
        let issues = c.issues;
        if issues.is_empty() {
            Ok(bundle)
        } else {
            Err(self.resolve(issues))
        }
    }

    /// Whether an envoy's bundle can depend on its traits: a template reads `.Traits` or an
    /// entry requires traits. The server looks traits up only for such a tree.
    pub fn uses_traits(&self) -> bool {
        self.uses_traits
    }

    /// The agent version `envoy_name` should run: the last matching entry that names one (later
    /// entries win, as for vars), else the default (None: leave agents on whatever they run).
    pub fn desired_agent_version(&self, envoy_name: &str) -> Option<&str> {
        self.nodes
            .entries
            .iter()
            .rev()
            .filter(|e| e.glob.matches(envoy_name))
            .find_map(|e| e.agent_version.as_ref())
            .or(self.nodes.default_agent_version.as_ref())
            .map(|v| v.value.as_str())
    }

    /// Compiles every entry as if an envoy matched it alone (its pattern stands in for the name)
    /// and checks every secret ref anywhere in the tree, used by an entry or not.
    /// The work is bounded: see `Limits::max_validate_resources` and `max_validate_text`.
    /// Blocking: a network backend fetches the tree's secrets first (`Provider::prepare`).
    pub fn validate_all(&self, provider: &dyn Provider) -> Result<Vec<(String, usize)>, Vec<ConfigError>> {
        self.check_validation_size()?;
        provider
            .prepare(&self.secret_keys())
            .map_err(|e| vec![self.tree_error(format!("reading the tree's secrets: {e}"))])?;
        let mut resolver = Resolver::new(provider);
        let mut issues = Vec::new();
        let mut counts = Vec::new();
        let mut text_left = self.limits.max_validate_text;
        let started = std::time::Instant::now();
        for entry in &self.nodes.entries {
            if started.elapsed() > self.limits.max_duration {
                return Err(vec![self.tree_error(format!(
                    "validating the tree took longer than {} s and was stopped; use fewer envoys \
                     entries (one glob for hosts that share roles) or fewer resources per role",
                    self.limits.max_duration.as_secs()
                ))]);
            }
            // Near the end of the tree's budget, the bundle's own limit is the rest of it.
            let tree_bound = text_left < self.limits.max_bundle_text;
            let limit = text_left.min(self.limits.max_bundle_text);
            let mut c = compile::Compiler::new(&self.nodes, &self.modules, &mut resolver, limit);
            c.traits_unknown = true;
            let bundle = c.compile(&entry.pattern.value, &[entry], None);
            if tree_bound && c.went_over() {
                return Err(vec![self.tree_error(format!(
                    "validating renders more than {} bytes of text across the envoys entries; \
                     use fewer entries (one glob for hosts that share roles) or smaller vars",
                    self.limits.max_validate_text
                ))]);
            }
            text_left -= limit - c.text_left;
            issues.extend(c.issues);
            counts.push((entry.pattern.value.clone(), bundle.resources.len()));
        }
        for (key, loc) in self.literal_refs() {
            if let Err(msg) = resolver.marker(key) {
                issues.push(Issue { loc: loc.clone(), message: msg });
            }
        }
        if issues.is_empty() {
            Ok(counts)
        } else {
            Err(self.resolve(issues))
        }
    }

    /// Refuses a tree whose validation would compile more resources than the limit, before
    /// compiling any: each entry is compiled with every module its roles name.
    fn check_validation_size(&self) -> Result<(), Vec<ConfigError>> {
        let mut total = 0usize;
        for entry in &self.nodes.entries {
            let roles = compile::roles_for(&self.nodes, &[entry]);
            total += roles
                .iter()
                .filter_map(|r| self.modules.get(&r.value))
                .map(|m| m.resources.len())
                .sum::<usize>();
        }
        if total <= self.limits.max_validate_resources {
            return Ok(());
        }
        Err(vec![self.tree_error(format!(
            "validating compiles each of the {} envoys entries with all of its roles' resources, {total} in \
             all, more than the limit of {}; give hosts that share roles one entry with a glob",
            self.nodes.entries.len(),
            self.limits.max_validate_resources
        ))])
    }

    /// An error about the tree as a whole, reported against nodes.vgo.
    fn tree_error(&self, message: String) -> ConfigError {
        let file = self.files.first().map_or_else(|| PathBuf::from("nodes.vgo"), |f| f.path.clone());
        ConfigError::whole(&file, message)
    }

    /// Every secret key referenced anywhere in the tree (vars, attributes, `when:` operands).
    pub fn secret_keys(&self) -> BTreeSet<String> {
        self.literal_refs().into_iter().map(|(k, _)| k.to_string()).collect()
    }

    /// Where the tree refers to `key`, one "file:line:col: uses secret:KEY" each.
    pub fn uses_of_secret(&self, key: &str) -> Vec<ConfigError> {
        let issues = self
            .literal_refs()
            .into_iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, loc)| Issue { loc: loc.clone(), message: format!("uses secret:{key}") })
            .collect();
        self.resolve(issues)
    }

    /// Each whole-value `secret:` ref with its location.
    fn literal_refs(&self) -> Vec<(&str, &Loc)> {
        let mut out = Vec::new();
        let mut strs: Vec<&model::Str> = Vec::new();
        let n = &self.nodes;
        let entry_vars = n.entries.iter().flat_map(|e| e.vars.iter());
        strs.extend(n.default_vars.iter().chain(entry_vars).flat_map(|v| v.value.strs()));
        for m in self.modules.values() {
            strs.extend(m.vars.iter().flat_map(|v| v.value.strs()));
            for r in &m.resources {
                for (_, v) in &r.attrs {
                    match v {
                        Value::Str(s) => strs.push(s),
                        Value::List(items) => strs.extend(items),
                        Value::Map(entries) => strs.extend(entries.iter().map(|(_, v)| v)),
                        Value::Bool(_) => {}
                    }
                }
                if let Some(w) = &r.when {
                    if let Ok(secrets::When::Compare { lhs, rhs, .. }) = secrets::parse_when(&w.value) {
                        out.extend([lhs, rhs].into_iter().filter_map(secrets::as_ref).map(|k| (k, &w.loc)));
                    }
                }
            }
        }
        out.extend(strs.into_iter().filter_map(|s| secrets::as_ref(&s.value).map(|k| (k, &s.loc))));
        out
    }

    /// Load-time checks that need the whole tree: roles name existing modules (when modules/
    /// could be listed at all), secret keys are well-formed, and no exec command line is itself
    /// a secret ref.
    fn check_roles_and_refs(&self, issues: &mut Vec<Issue>, modules_listed: bool) {
        let n = &self.nodes;
        for role in n.default_roles.iter().chain(n.entries.iter().flat_map(|e| e.roles.iter())) {
            if modules_listed && !self.modules.contains_key(&role.value) {
                let name = excerpt(&role.value);
                let msg = format!("role `{name}` has no module; create modules/{name}.vgo");
                issues.push(Issue { loc: role.loc.clone(), message: msg });
            }
        }
        for (key, loc) in self.literal_refs() {
            if let Err(msg) = secrets::check_key(key) {
                issues.push(Issue { loc: loc.clone(), message: msg });
            }
        }
        for r in self.modules.values().flat_map(|m| m.resources.iter()) {
            for (name, v) in &r.attrs {
                if let (true, Value::Str(s)) = (schema::COMMAND_LINES.contains(&name.as_str()), v) {
                    if secrets::as_ref(&s.value).is_some() {
                        let msg = format!(
                            "{} `{name}` is a secret; a command line shows in `ps`: use stdin or secret_file to pass secrets",
                            r.rtype
                        );
                        issues.push(Issue { loc: s.loc.clone(), message: msg });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
