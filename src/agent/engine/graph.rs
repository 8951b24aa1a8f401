//! Orders a bundle's resources: `depends_on` and `notify` (a notified resource runs after its
//! notifier) are edges; so is the automatic one from a directory resource to whatever lives
//! under it (see `autorequire`). Among resources that are ready together, bundle order wins,
//! so the order is deterministic. A cycle (the loader rejects them, but an engine must not
//! loop) or a reference to an unknown resource is reported, never followed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use crate::bundle::CompiledResource;

pub(crate) struct Plan {
    /// Indices into the bundle, in the order to apply them.
    pub order: Vec<usize>,
    /// Resources that cannot run, with the reason (cycle, unknown reference).
    pub broken: BTreeMap<usize, String>,
    /// For each resource, the resources it `depends_on` (indices).
    pub deps: Vec<Vec<usize>>,
    /// For each resource, the resources it notifies (indices).
    pub notifies: Vec<Vec<usize>>,
}

pub(crate) fn plan(resources: &[CompiledResource]) -> Plan {
    let index: HashMap<&str, usize> =
        resources.iter().enumerate().rev().map(|(i, r)| (r.name.as_str(), i)).collect();
    let n = resources.len();
    let mut broken = BTreeMap::new();
    let mut deps = vec![Vec::new(); n];
    let mut notifies = vec![Vec::new(); n];
    let mut after: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n]; // i runs before each of after[i]
    for (i, r) in resources.iter().enumerate() {
        if index[r.name.as_str()] != i {
            broken.insert(i, format!("another resource is already named {:?}", r.name));
        }
        for (list, is_dep) in [(&r.depends_on, true), (&r.notify, false)] {
            for name in list {
                match index.get(name.as_str()) {
                    Some(&j) if is_dep => {
                        deps[i].push(j);
                        after[j].insert(i);
                    }
                    Some(&j) => {
                        notifies[i].push(j);
                        after[i].insert(j);
                    }
                    None => {
                        let what = if is_dep { "depends on" } else { "notifies" };
                        broken.insert(i, format!("{what} the unknown resource {name:?}"));
                    }
                }
            }
        }
    }
    autorequire(resources, &mut deps, &mut after);
    let mut indegree = vec![0usize; n];
    for set in &after {
        for &j in set {
            indegree[j] += 1;
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &after[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.insert(j);
            }
        }
    }
    let stuck: Vec<usize> = (0..n).filter(|&i| indegree[i] > 0).collect();
    let names: Vec<&str> = stuck.iter().map(|&i| resources[i].name.as_str()).collect();
    for &i in &stuck {
        broken.insert(i, format!("dependency cycle among: {}", names.join(", ")));
        order.push(i); // still reported, in bundle order, as failed
    }
    Plan { order, broken, deps, notifies }
}

/// The path a resource lives at, for ordering: `target_path` (file, directory, symlink) or an
/// exec's `cwd`, normalised lexically.
fn managed_path(r: &CompiledResource) -> Option<PathBuf> {
    let key = if r.rtype == "exec" { "cwd" } else { "target_path" };
    let text = r.attributes.get(key)?.as_str()?;
    if !text.starts_with('/') {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Some(out)
}

/// Puppet's autorequire: a resource under a directory that a directory resource manages (an
/// exec whose `cwd` it is, too) runs after it — or, when that directory is `ensure: absent`,
/// before it (emptied, then removed) — and is skipped if it fails. Only the nearest managed ancestor is linked; the chain of
/// directories links the rest. An edge that would close a cycle is left out: an explicit
/// dependency the other way wins.
fn autorequire(resources: &[CompiledResource], deps: &mut [Vec<usize>], after: &mut [BTreeSet<usize>]) {
    let mut dirs: HashMap<PathBuf, usize> = HashMap::new();
    for (i, r) in resources.iter().enumerate().rev() {
        if r.rtype == "directory" {
            if let Some(p) = managed_path(r) {
                dirs.insert(p, i);
            }
        }
    }
    if dirs.is_empty() {
        return;
    }
    for (i, r) in resources.iter().enumerate() {
        let Some(path) = managed_path(r) else { continue };
        // An exec runs in its cwd: that directory itself counts; anything else lives under it.
        let own = usize::from(r.rtype != "exec");
        let Some(&d) = path.ancestors().skip(own).find_map(|a| dirs.get(a)) else { continue };
        let absent = resources[d].attributes.get("ensure").and_then(|v| v.as_str()) == Some("absent");
        let (first, then) = if absent { (i, d) } else { (d, i) };
        if after[first].contains(&then) || reaches(after, then, first) {
            continue;
        }
        after[first].insert(then);
        deps[then].push(first);
    }
}

/// Whether `to` can be reached from `from` along `after` edges.
fn reaches(after: &[BTreeSet<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; after.len()];
    let mut stack = vec![from];
    while let Some(i) = stack.pop() {
        if i == to {
            return true;
        }
        if !std::mem::replace(&mut seen[i], true) {
            stack.extend(after[i].iter().copied());
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, deps: &[&str], notify: &[&str]) -> CompiledResource {
        CompiledResource {
            name: name.into(),
            rtype: "file".into(),
            attributes: Default::default(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            notify: notify.iter().map(|s| s.to_string()).collect(),
            watch_secret: vec![],
            when: None,
        }
    }

    #[test]
    fn orders_by_dependency_and_keeps_bundle_order_on_ties() {
        let rs = [r("svc", &[], &[]), r("a", &[], &["svc"]), r("b", &["c"], &[]), r("c", &[], &[])];
        let p = plan(&rs);
        let names: Vec<_> = p.order.iter().map(|&i| rs[i].name.as_str()).collect();
        assert_eq!(names, ["a", "svc", "c", "b"]);
        assert!(p.broken.is_empty());
    }

    #[test]
    fn cycles_and_unknown_references_are_broken_not_looped() {
        let rs = [r("x", &["y"], &[]), r("y", &["x"], &[]), r("z", &["nope"], &[]), r("ok", &[], &[])];
        let p = plan(&rs);
        assert_eq!(p.order.len(), 4);
        assert!(p.broken[&0].contains("cycle"));
        assert!(p.broken[&1].contains("cycle"));
        assert!(p.broken[&2].contains("unknown resource \"nope\""));
        assert!(!p.broken.contains_key(&3));
    }

    fn at(name: &str, rtype: &str, path: &str, deps: &[&str]) -> CompiledResource {
        let mut x = r(name, deps, &[]);
        x.rtype = rtype.into();
        let key = if rtype == "exec" { "cwd" } else { "target_path" };
        x.attributes.insert(key.into(), serde_json::json!(path));
        x
    }

    fn order(rs: &[CompiledResource]) -> Vec<&str> {
        let p = plan(rs);
        assert!(p.broken.is_empty(), "{:?}", p.broken);
        p.order.iter().map(|&i| rs[i].name.as_str()).collect()
    }

    #[test]
    fn what_lives_under_a_managed_directory_runs_after_it() {
        let rs = [
            at("conf", "file", "/etc/app/conf.d/x.conf", &[]),
            at("link", "symlink", "/etc/app/current", &[]),
            at("build", "exec", "/etc/app/conf.d", &[]),
            at("confd", "directory", "/etc/app/conf.d/", &[]),
            at("other", "file", "/etc/other", &[]),
            at("app", "directory", "/etc/app", &[]),
        ];
        assert_eq!(order(&rs), ["other", "app", "link", "confd", "conf", "build"]);
        let p = plan(&rs);
        assert!(p.deps[0].contains(&3) && p.deps[3].contains(&5), "a failed directory skips its contents");
    }

    #[test]
    fn an_absent_directory_is_emptied_first_and_an_explicit_opposite_dependency_wins() {
        let mut dir = at("old", "directory", "/srv/old", &[]);
        dir.attributes.insert("ensure".into(), serde_json::json!("absent"));
        let rs = [dir, at("f", "file", "/srv/old/f", &[])];
        assert_eq!(order(&rs), ["f", "old"]);
        // The author says the file comes first: no automatic edge, so no cycle.
        let rs = [at("f", "file", "/srv/app/f", &[]), at("app", "directory", "/srv/app", &["f"])];
        assert_eq!(order(&rs), ["f", "app"]);
        let rs = [
            at("f", "file", "/srv/a/b/f", &["x"]),
            at("x", "exec", "/srv/a/b", &["a"]),
            at("a", "directory", "/srv/a", &["f"]),
        ];
        let p = plan(&rs);
        assert!(
            p.broken.values().all(|why| why.contains("cycle")),
            "only the author's own cycle: {:?}",
            p.broken
        );
    }
}
