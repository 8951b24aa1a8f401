//! Orders a bundle's resources: `depends_on` and `notify` (a notified resource runs after its
//! notifier) are edges; among resources that are ready together, bundle order wins, so the
//! order is deterministic. A cycle (the loader rejects them, but an engine must not loop) or
//! a reference to an unknown resource is reported, never followed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
}
