//! Compiling one envoy's bundle: merge vars, render templates, turn `secret:` refs into markers,
//! then check the bundle as a whole (unique names and watch_secret here; references, cycles and
//! one owner per managed thing in bundle_checks.rs).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value as Json};

use super::model::{Entry, Issue, Loc, Module, Nodes, Resource, Str, Value};
use super::schema::{self, COMMAND_LINES};
use super::secrets::{self, Resolver, When};
use super::template::{self, RenderError};
use crate::bundle::{CompiledBundle, CompiledResource};
use crate::placeholder;
use crate::util::text::{check_visible, excerpt};

pub struct Compiler<'a, 'p> {
    pub nodes: &'a Nodes,
    pub modules: &'a BTreeMap<String, Module>,
    pub resolver: &'a mut Resolver<'p>,
    pub issues: Vec<Issue>,
    /// Bytes of attribute text this bundle may still render (see `Limits::max_bundle_text`).
    pub text_left: usize,
    text_limit: usize,
    too_large_reported: bool,
    /// Validating a tree, not compiling for an envoy: no traits exist to render with, so a
    /// value that reads `.Traits` is left unrendered (its syntax was checked when read).
    pub traits_unknown: bool,
}

/// Roles for a set of matching entries: defaults first, then each entry's, first-seen order.
pub fn roles_for<'n>(nodes: &'n Nodes, entries: &[&'n Entry]) -> Vec<&'n Str> {
    let mut seen = BTreeSet::new();
    let all = nodes.default_roles.iter().chain(entries.iter().flat_map(|e| e.roles.iter()));
    all.filter(|r| seen.insert(r.value.as_str())).collect()
}

impl<'a, 'p> Compiler<'a, 'p> {
    pub fn new(
        nodes: &'a Nodes,
        modules: &'a BTreeMap<String, Module>,
        resolver: &'a mut Resolver<'p>,
        text_limit: usize,
    ) -> Self {
        Compiler {
            nodes,
            modules,
            resolver,
            issues: Vec::new(),
            text_left: text_limit,
            text_limit,
            too_large_reported: false,
            traits_unknown: false,
        }
    }

    /// Whether rendering stopped at the text limit.
    pub fn went_over(&self) -> bool {
        self.too_large_reported
    }

    pub(super) fn issue(&mut self, loc: &Loc, message: impl Into<String>) {
        self.issues.push(Issue { loc: loc.clone(), message: message.into() });
    }

    /// `traits`: what the envoy reported (None: nothing yet, and a template reading them fails).
    pub fn compile(&mut self, envoy: &str, entries: &[&Entry], traits: Option<&Json>) -> CompiledBundle {
        let mut bundle = CompiledBundle { envoy_name: envoy.to_string(), resources: Vec::new() };
        if entries.is_empty() {
            return bundle;
        }
        let roles = roles_for(self.nodes, entries);
        let modules: Vec<&Module> = roles.iter().filter_map(|r| self.modules.get(&r.value)).collect();
        // Precedence, lowest first: defaults, module vars in role order, matching entries in file order.
        let mut defs = self.nodes.default_vars.iter().collect::<Vec<_>>();
        defs.extend(modules.iter().flat_map(|m| m.vars.iter()));
        defs.extend(entries.iter().flat_map(|e| e.vars.iter()));
        let mut vars: BTreeMap<String, Json> = BTreeMap::new();
        for d in defs {
            let value = d.value.to_json(&mut |s| {
                Json::String(match secrets::as_ref(&s.value) {
                    Some(key) => self.marker(key, &s.loc),
                    None => s.value.clone(),
                })
            });
            vars.insert(d.name.clone(), value);
        }
        let data = template::Data::new(&vars, envoy, traits);
        let mut defined: HashMap<String, (&Loc, &str)> = HashMap::new();
        for m in &modules {
            for r in &m.resources {
                if let Some((_, role)) = defined.get(&r.name.value) {
                    let msg = format!(
                        "resource name `{}` is also used by role `{role}`; names must be unique in an envoy's bundle",
                        excerpt(&r.name.value)
                    );
                    if *role != m.role {
                        self.issue(&r.name.loc, msg);
                    }
                    continue;
                }
                defined.insert(r.name.value.clone(), (&r.name.loc, &m.role));
                if let Some(c) = self.resource(r, &data) {
                    bundle.resources.push(c);
                }
            }
        }
        let all: Vec<&Resource> = modules.iter().flat_map(|m| m.resources.iter()).collect();
        self.check_graph(&all, &defined);
        self.check_one_owner(&bundle.resources, &defined);
        bundle
    }

    /// The marker for a ref. A missing key is reported here, and its marker is still used, so the
    /// checks that follow (watch_secret, command lines) do not report the same ref again.
    fn marker(&mut self, key: &str, loc: &Loc) -> String {
        self.resolver.marker(key).unwrap_or_else(|msg| {
            self.issue(loc, msg);
            placeholder::marker(key).unwrap_or_default()
        })
    }

    /// Renders one string: a whole-value `secret:` ref becomes a marker, anything else a template.
    fn render(&mut self, s: &Str, data: &template::Data, in_command: bool) -> Option<String> {
        if let Some(key) = secrets::as_ref(&s.value) {
            return Some(self.marker(key, &s.loc));
        }
        if self.traits_unknown && s.value.contains(".Traits") {
            return None;
        }
        match template::render(&s.value, data, in_command, self.text_left) {
            Ok(text) => {
                self.text_left -= text.len();
                Some(text)
            }
            Err(RenderError::Invalid(msg)) => {
                self.issue(&s.loc, msg);
                None
            }
            Err(RenderError::TooLarge) => {
                // Reported once, where the bundle went over; what follows would only repeat it.
                if !self.too_large_reported {
                    self.too_large_reported = true;
                    let msg = format!(
                        "rendering this value takes the bundle past {} bytes of text, the most one \
                         envoy's bundle may hold; use smaller vars, or fewer large values per envoy",
                        self.text_limit
                    );
                    self.issue(&s.loc, msg);
                }
                None
            }
        }
    }

    fn resource(&mut self, r: &Resource, data: &template::Data) -> Option<CompiledResource> {
        let spec = schema::attrs_of(&r.rtype)?;
        let mut attributes = Map::new();
        let mut ok = true;
        for (name, value) in &r.attrs {
            let attr = spec.iter().find(|a| a.name == name)?;
            let json = match value {
                Value::Bool(b) => Json::Bool(*b),
                Value::Str(s) => {
                    let Some(text) = self.render(s, data, name == "command") else {
                        ok = false;
                        continue;
                    };
                    if s.value.contains("{{") {
                        if let Err(msg) = schema::check_value(attr, &text) {
                            self.issue(&s.loc, msg);
                        }
                    }
                    if COMMAND_LINES.contains(&name.as_str()) {
                        ok &= self.check_command_line(r, name, s, &text);
                    } else {
                        ok &= self.check_secret_allowed(r, name, s, &text);
                    }
                    Json::String(text)
                }
                Value::List(items) => {
                    let mut rendered = Vec::with_capacity(items.len());
                    for s in items {
                        let Some(text) = self.render(s, data, false) else { continue };
                        ok &= self.check_secret_allowed(r, name, s, &text);
                        rendered.push(Json::String(text));
                    }
                    ok &= rendered.len() == items.len();
                    Json::Array(rendered)
                }
                Value::Map(entries) => {
                    let mut rendered = Map::new();
                    for (key, s) in entries {
                        let Some(text) = self.render(s, data, false) else {
                            ok = false;
                            continue;
                        };
                        ok &= self.check_secret_allowed(r, name, s, &text);
                        rendered.insert(key.clone(), Json::String(text));
                    }
                    Json::Object(rendered)
                }
            };
            attributes.insert(name.clone(), json);
        }
        if ok {
            if let Err(msg) = schema::check_resource(&r.rtype, &r.name.value, &attributes) {
                self.issue(&r.name.loc, msg);
            }
        }
        let when = r.when.as_ref().and_then(|w| self.when(w, data));
        let compiled = CompiledResource {
            name: r.name.value.clone(),
            rtype: r.rtype.clone(),
            attributes,
            depends_on: r.depends_on.iter().map(|s| s.value.clone()).collect(),
            notify: r.notify.iter().map(|s| s.value.clone()).collect(),
            watch_secret: r.watch_secret.iter().map(|s| s.value.clone()).collect(),
            when,
        };
        let used = compiled.secret_keys().unwrap_or_default();
        for w in &r.watch_secret {
            if let Err(msg) = secrets::check_key(&w.value) {
                self.issue(&w.loc, msg);
            } else if ok && !used.contains(&w.value) {
                let msg = format!(
                    "watch_secret names `{}`, which this resource does not use; reference secret:{} in it or remove it from watch_secret",
                    excerpt(&w.value),
                    excerpt(&w.value)
                );
                self.issue(&w.loc, msg);
            }
        }
        Some(compiled)
    }

    /// A secret may reach only the attributes of `schema::SECRET_ATTRS`.
    fn check_secret_allowed(&mut self, r: &Resource, name: &str, s: &Str, text: &str) -> bool {
        if schema::may_hold_secret(&r.rtype, name) {
            return true;
        }
        let keys: Vec<String> =
            placeholder::find_markers(text).unwrap_or_default().into_iter().map(|f| f.key).collect();
        if keys.is_empty() {
            return true;
        }
        let allowed: Vec<String> = schema::SECRET_ATTRS.iter().map(|(t, a)| format!("{t} `{a}`")).collect();
        self.issue(
            &s.loc,
            format!(
                "{} `{name}` contains secret:{}; it would be visible on the host and outlive a rotation there. Secrets may go only in {}",
                r.rtype,
                keys.join(", secret:"),
                allowed.join(", ")
            ),
        );
        false
    }

    /// Command lines show in `ps`: no secrets in them, and `{{secret_file}}` needs `secret_file`.
    fn check_command_line(&mut self, r: &Resource, name: &str, s: &Str, text: &str) -> bool {
        let keys: Vec<String> =
            placeholder::find_markers(text).unwrap_or_default().into_iter().map(|f| f.key).collect();
        let direct = secrets::as_ref(&s.value).is_some();
        if direct || !keys.is_empty() {
            let what = if keys.is_empty() {
                excerpt(&s.value).into_owned()
            } else {
                format!("secret:{}", keys.join(", secret:"))
            };
            self.issue(
                &s.loc,
                format!(
                    "{} `{name}` contains {what}; a command line shows in `ps`: use stdin or secret_file to pass secrets",
                    r.rtype
                ),
            );
            return false;
        }
        if text.contains(template::SECRET_FILE) && !r.attrs.iter().any(|(k, _)| k == "secret_file") {
            self.issue(&s.loc, "{{secret_file}} is used but this exec has no `secret_file:`; add one");
            return false;
        }
        // The agent splits the line the same way; an unclosed quote would fail on every envoy.
        if let Err(msg) = crate::agent::engine::cmdline::argv(text) {
            // The splitter's message quotes the whole command; ours quotes an excerpt.
            let msg = if msg.ends_with("has an unclosed quote") {
                format!("command \"{}\" has an unclosed quote; close it", excerpt(text))
            } else {
                msg
            };
            self.issue(&s.loc, format!("{} `{name}`: {msg}", r.rtype));
            return false;
        }
        true
    }

    fn when(&mut self, w: &Str, data: &template::Data) -> Option<String> {
        let form = match secrets::parse_when(&w.value) {
            Ok(f) => f,
            Err(msg) => {
                let msg = if w.value.contains(secrets::PREFIX) {
                    format!(
                        "a secret may appear in `when:` only as a comparison operand; use {}",
                        secrets::WHEN_FORMS
                    )
                } else {
                    msg
                };
                self.issue(&w.loc, msg);
                return None;
            }
        };
        match form {
            When::Keyword(k) => Some(k.to_string()),
            When::Compare { lhs, op, rhs } => {
                let mut side = |text: &str| {
                    let out =
                        self.render(&Str { value: text.to_string(), loc: w.loc.clone() }, data, false)?;
                    if out.contains("==") || out.contains("!=") {
                        self.issue(
                            &w.loc,
                            format!(
                                "`when:` operand renders to \"{}\", which holds a comparison operator",
                                excerpt(&out)
                            ),
                        );
                        return None;
                    }
                    Some(out)
                };
                let (l, r) = (side(lhs), side(rhs));
                let rendered = format!("{} {op} {}", l?, r?);
                // The condition is printed in run reports; a var must not hide characters in it.
                if let Err(msg) = check_visible("`when:` once rendered", &rendered) {
                    self.issue(&w.loc, msg);
                    return None;
                }
                Some(rendered)
            }
        }
    }
}

/// Envoy names come from enrollment; they must not smuggle markers or templates into bundles.
pub fn check_envoy_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("envoy names are 1 to 253 bytes".into());
    }
    check_visible("envoy name", name)?;
    if placeholder::contains_marker(name) || name.contains("{{") {
        return Err(format!(
            "envoy name \"{}\" contains characters not allowed in envoy names",
            excerpt(name)
        ));
    }
    Ok(())
}
