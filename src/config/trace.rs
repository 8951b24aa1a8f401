//! `vigocli config trace ENVOY`: how an envoy's bundle comes to be — which `envoys:` entries
//! of nodes.vgo match its name, which roles (and module files) that gives, and where each var's
//! value comes from (and which definitions it overrides). Values are shown as written:
//! `secret:` refs stay refs, templates stay templates.

use serde::Serialize;

use super::model::{Loc, VarDef};
use super::{compile, yaml, ConfigTree};

#[derive(Serialize)]
pub struct Trace {
    pub envoy: String,
    /// Matching entries, in file order.
    pub entries: Vec<Place>,
    pub roles: Vec<Role>,
    pub vars: Vec<Var>,
    pub agent_version: Option<String>,
}

#[derive(Serialize)]
pub struct Place {
    pub text: String,
    /// `file:line:column`.
    pub at: String,
}

#[derive(Serialize)]
pub struct Role {
    pub role: String,
    /// Where it was named (defaults or an entry).
    pub at: String,
    /// Its module file, or `None` when there is none.
    pub module: Option<String>,
    pub resources: usize,
}

#[derive(Serialize)]
pub struct Var {
    pub name: String,
    pub value: String,
    pub at: String,
    /// Earlier definitions this one overrides, lowest precedence first.
    pub overrides: Vec<String>,
}

impl ConfigTree {
    fn at(&self, loc: &Loc) -> String {
        let f = &self.files[loc.file];
        match yaml::locate(&f.text, &loc.path) {
            Some((line, column)) => format!("{}:{line}:{column}", f.rel),
            None => f.rel.clone(),
        }
    }

    pub fn trace(&self, envoy: &str, traits: Option<&serde_json::Value>) -> Trace {
        let entries: Vec<_> = self.nodes.entries.iter().filter(|e| e.applies_to(envoy, traits)).collect();
        let mut trace = Trace {
            envoy: envoy.to_string(),
            entries: entries
                .iter()
                .map(|e| Place { text: e.pattern.value.clone(), at: self.at(&e.pattern.loc) })
                .collect(),
            roles: Vec::new(),
            vars: Vec::new(),
            agent_version: self.desired_agent_version(envoy).map(String::from),
        };
        if entries.is_empty() {
            return trace;
        }
        let roles = compile::roles_for(&self.nodes, &entries);
        for r in &roles {
            let module = self.modules.get(&r.value);
            trace.roles.push(Role {
                role: r.value.clone(),
                at: self.at(&r.loc),
                module: module.map(|_| format!("modules/{}.vgo", r.value)),
                resources: module.map_or(0, |m| m.resources.len()),
            });
        }
        // The compiler's precedence, lowest first: defaults, module vars in role order,
        // matching entries in file order. The last definition of a name wins.
        let mut defs: Vec<&VarDef> = self.nodes.default_vars.iter().collect();
        defs.extend(roles.iter().filter_map(|r| self.modules.get(&r.value)).flat_map(|m| m.vars.iter()));
        defs.extend(entries.iter().flat_map(|e| e.vars.iter()));
        for d in defs {
            let at = self.at(d.value.loc());
            match trace.vars.iter_mut().find(|v| v.name == d.name) {
                Some(v) => {
                    let earlier = std::mem::replace(&mut v.at, at);
                    v.overrides.push(earlier);
                    v.value = d.value.display();
                }
                None => trace.vars.push(Var {
                    name: d.name.clone(),
                    value: d.value.display(),
                    at,
                    overrides: Vec::new(),
                }),
            }
        }
        trace.vars.sort_by(|a, b| a.name.cmp(&b.name));
        trace
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::Tree;

    #[test]
    fn a_trace_names_entries_roles_and_where_each_var_comes_from() {
        let nodes = "defaults:\n  roles: [base]\n  vars:\n    port: \"80\"\n    db: \"secret:app/db\"\nenvoys:\n  - match: \"web*\"\n    roles: [web]\n    vars:\n      port: \"8080\"\n  - match: \"db*\"\n    roles: [db]\n";
        let t = Tree::new(
            nodes,
            &[
                ("base", "vars:\n  motd: hi\nresources: []\n"),
                ("web", "resources:\n  - {name: d, type: directory, target_path: /srv}\n"),
                ("db", "resources: []\n"),
            ],
        );
        let tree = t.load().unwrap();
        let trace = tree.trace("web1", None);
        assert_eq!(trace.entries.len(), 1);
        assert_eq!(trace.entries[0].text, "web*");
        assert!(trace.entries[0].at.starts_with("nodes.vgo:7:"), "{}", trace.entries[0].at);
        let roles: Vec<(&str, Option<&str>, usize)> =
            trace.roles.iter().map(|r| (r.role.as_str(), r.module.as_deref(), r.resources)).collect();
        assert_eq!(roles, [("base", Some("modules/base.vgo"), 0), ("web", Some("modules/web.vgo"), 1)]);
        let port = trace.vars.iter().find(|v| v.name == "port").unwrap();
        assert_eq!(port.value, "8080");
        assert!(port.at.starts_with("nodes.vgo:10:"), "{}", port.at);
        assert_eq!(port.overrides.len(), 1);
        assert!(port.overrides[0].starts_with("nodes.vgo:4:"), "{:?}", port.overrides);
        let db = trace.vars.iter().find(|v| v.name == "db").unwrap();
        assert_eq!(db.value, "secret:app/db", "a ref stays a ref");
        assert!(trace.vars.iter().any(|v| v.name == "motd" && v.at.starts_with("modules/base.vgo:2:")));
        assert!(tree.trace("mail1", None).entries.is_empty());
    }
}
