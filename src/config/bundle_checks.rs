//! Checks on a compiled bundle as a whole: every reference names a resource, the ordering graph
//! has no cycle, and nothing on the host is managed by two resources.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value as Json;

use super::compile::Compiler;
use super::model::{Loc, Resource};
use crate::bundle::CompiledResource;
use crate::util::text::excerpt;

/// A cycle longer than this is shown with its middle left out.
const MAX_CYCLE_SHOWN: usize = 12;

enum Visit {
    /// On the depth-first stack, at this position.
    OnStack(usize),
    Done,
}

impl Compiler<'_, '_> {
    /// One path, package, service, user or group per bundle: two resources managing the same
    /// thing would undo each other on every run (Puppet's "duplicate declaration").
    pub(super) fn check_one_owner(
        &mut self,
        resources: &[CompiledResource],
        defined: &HashMap<String, (&Loc, &str)>,
    ) {
        let mut owners: HashMap<String, &str> = HashMap::new();
        for r in resources {
            for thing in managed_things(r) {
                match owners.get(&thing) {
                    Some(first) => {
                        let msg = format!(
                            "resource `{}` manages {}, which resource `{}` already manages; keep one of them",
                            excerpt(&r.name),
                            excerpt(&thing),
                            excerpt(first)
                        );
                        if let Some((loc, _)) = defined.get(&r.name) {
                            let loc = (*loc).clone();
                            self.issue(&loc, msg);
                        }
                    }
                    None => {
                        owners.insert(thing, &r.name);
                    }
                }
            }
        }
        // A whole-file `content` and an edit of part of that file undo each other every run.
        let writes_content = |r: &CompiledResource| {
            r.rtype == "file" && (r.attributes.contains_key("content") || r.attributes.contains_key("source"))
        };
        let whole: HashMap<String, &str> = resources
            .iter()
            .filter(|r| writes_content(r))
            .filter_map(|r| Some((normal_path(r.attributes.get("target_path")?.as_str()?), r.name.as_str())))
            .collect();
        for r in resources.iter().filter(|r| crate::edits::TYPES.contains(&r.rtype.as_str())) {
            let Some(path) = r.attributes.get("target_path").and_then(Json::as_str).map(normal_path) else {
                continue;
            };
            if let (Some(owner), Some((loc, _))) = (whole.get(&path), defined.get(&r.name)) {
                let msg = format!(
                    "resource `{}` edits {}, whose whole content resource `{}` writes; they would undo each other on every run: put the change in that file's content, or drop its content",
                    excerpt(&r.name),
                    excerpt(&path),
                    excerpt(owner)
                );
                let loc = (*loc).clone();
                self.issue(&loc, msg);
            }
        }
    }

    /// Every depends_on / notify target exists; the graph has no cycle. An edge `a -> b` means
    /// "a runs after b": `a depends_on b`, or `b notify a`.
    pub(super) fn check_graph(&mut self, all: &[&Resource], defined: &HashMap<String, (&Loc, &str)>) {
        let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        for r in all {
            if defined.get(&r.name.value).is_some_and(|(loc, _)| **loc == r.name.loc) {
                order.push(&r.name.value);
            }
            for (list, what) in [(&r.depends_on, "depends_on"), (&r.notify, "notify")] {
                for target in list {
                    if !defined.contains_key(&target.value) {
                        let msg = format!(
                            "{what} names `{}`, which is not a resource in this envoy's bundle",
                            excerpt(&target.value)
                        );
                        self.issue(&target.loc, msg);
                    } else if what == "depends_on" {
                        edges.entry(&r.name.value).or_default().push(&target.value);
                    } else {
                        edges.entry(&target.value).or_default().push(&r.name.value);
                    }
                }
            }
        }
        // A node on the stack keeps its position there, so a cycle is found without a search.
        let mut state: HashMap<&str, Visit> = HashMap::new();
        for start in order {
            let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
            while let Some(&(node, next)) = stack.last() {
                if next == 0 {
                    if state.contains_key(node) {
                        stack.pop();
                        continue;
                    }
                    state.insert(node, Visit::OnStack(stack.len() - 1));
                }
                let outs = edges.get(node).map(Vec::as_slice).unwrap_or(&[]);
                if let Some(&to) = outs.get(next) {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    match state.get(to) {
                        Some(Visit::OnStack(at)) => self.report_cycle(&stack[*at..], to, defined),
                        Some(Visit::Done) => {}
                        None => stack.push((to, 0)),
                    }
                } else {
                    state.insert(node, Visit::Done);
                    stack.pop();
                }
            }
        }
    }

    /// `cycle` runs from `to` to the node whose edge leads back to `to`. Only the names shown
    /// are formatted: a graph can hold many long cycles.
    fn report_cycle(&mut self, cycle: &[(&str, usize)], to: &str, defined: &HashMap<String, (&Loc, &str)>) {
        let total = cycle.len() + 1;
        let head = if total > MAX_CYCLE_SHOWN { MAX_CYCLE_SHOWN - 1 } else { cycle.len() };
        let mut names: Vec<String> = cycle[..head].iter().map(|(n, _)| excerpt(n).into_owned()).collect();
        if total > MAX_CYCLE_SHOWN {
            names.push(format!("… ({} more)", total - MAX_CYCLE_SHOWN));
        }
        names.push(excerpt(to).into_owned());
        if let Some((loc, _)) = defined.get(to) {
            let msg = format!(
                "dependency cycle: {} (`->` means depends on / is notified by); remove one of these links",
                names.join(" -> ")
            );
            self.issue(loc, msg);
        }
    }
}

/// What a resource takes charge of on the host, spelled for error messages: one thing, a
/// package per name of `packages`, or nothing for an exec (running a command twice is a
/// choice, not a conflict).
fn managed_things(r: &CompiledResource) -> Vec<String> {
    if let (Some(Json::Array(names)), "package") = (r.attributes.get("packages"), r.rtype.as_str()) {
        return names.iter().filter_map(Json::as_str).map(|n| format!("package `{n}`")).collect();
    }
    managed_thing(r).into_iter().collect()
}

fn managed_thing(r: &CompiledResource) -> Option<String> {
    let attr = |name: &str| r.attributes.get(name).and_then(Json::as_str);
    Some(match r.rtype.as_str() {
        "file" | "directory" | "symlink" => format!("the path {}", normal_path(attr("target_path")?)),
        "package" => format!("package `{}`", attr("package")?),
        "service" => format!("service `{}`", attr("service")?.trim_end_matches(".service")),
        "user" => format!("user `{}`", attr("username")?),
        "group" => format!("group `{}`", attr("groupname")?),
        // A cron job is its file, so a file resource on the same path is caught too.
        "cron" => format!("the path /etc/cron.d/{}", attr("job")?),
        "systemd_unit" => format!("the path /etc/systemd/system/{}", attr("unit")?),
        "repository" => format!("the repository `{}`", attr("repo")?),
        "mount" => format!("the mount point {}", normal_path(attr("path")?)),
        "sysctl" => format!("the kernel parameter `{}`", attr("key")?.replace('/', ".")),
        "host" => format!("the /etc/hosts entry of `{}`", attr("hostname")?),
        _ => return None,
    })
}

/// `//etc/app/` and `/etc/app` are one path.
fn normal_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    format!("/{}", parts.join("/"))
}
