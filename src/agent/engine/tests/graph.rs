use std::fs;

use serde_json::json;

use super::*;

#[test]
fn dependents_of_a_failed_resource_are_skipped_and_the_rest_converges() {
    let root = TempRoot::new("skip");
    fs::create_dir_all(root.join("etc")).unwrap();
    let mut b_res = res("b", "file", json!({"target_path": "/etc/b", "content": "b"}));
    b_res.depends_on = vec!["a".into()];
    let mut c_res = res("c", "file", json!({"target_path": "/etc/c", "content": "c"}));
    c_res.depends_on = vec!["b".into()];
    let b = bundle(vec![
        res("a", "file", json!({"target_path": "/no/such/dir/a", "content": "a"})),
        b_res,
        c_res,
        res("unrelated", "file", json!({"target_path": "/etc/u", "content": "u"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(
        statuses(&r),
        [
            ("a".to_string(), "failed"),
            ("b".to_string(), "skipped"),
            ("c".to_string(), "skipped"),
            ("unrelated".to_string(), "changed")
        ]
    );
    assert_eq!(r.results[1].error, "skipped: dependency a failed");
    assert_eq!(r.results[2].error, "skipped: dependency a failed");
    assert!(!root.join("etc/b").exists() && root.join("etc/u").exists());
    assert_eq!(r.status, RunStatus::Failed);
}

#[test]
fn cycle_fails_its_members_without_hanging() {
    let root = TempRoot::new("cycle");
    fs::create_dir_all(root.join("etc")).unwrap();
    let mut x = res("x", "file", json!({"target_path": "/etc/x", "content": "x"}));
    x.depends_on = vec!["y".into()];
    let mut y = res("y", "file", json!({"target_path": "/etc/y", "content": "y"}));
    y.depends_on = vec!["x".into()];
    let b = bundle(vec![x, y, res("z", "file", json!({"target_path": "/etc/z", "content": "z"}))]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.result("x").unwrap().status, ResourceStatus::Failed);
    assert!(r.result("y").unwrap().error.contains("cycle"));
    assert_eq!(r.result("z").unwrap().status, ResourceStatus::Changed);
}

#[test]
fn a_file_listed_before_its_directory_converges_in_one_run() {
    let root = TempRoot::new("autorequire");
    let b = bundle(vec![
        res("conf", "file", json!({"target_path": "/srv/app/conf.d/app.conf", "content": "x\n"})),
        res("confd", "directory", json!({"target_path": "/srv/app/conf.d"})),
        res("app", "directory", json!({"target_path": "/srv/app"})),
        res("srv", "directory", json!({"target_path": "/srv"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&r, ResourceStatus::Changed);
    assert_eq!(
        r.results.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
        ["srv", "app", "confd", "conf"]
    );
    assert_eq!(fs::read_to_string(root.join("srv/app/conf.d/app.conf")).unwrap(), "x\n");
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
    // A directory that cannot be made skips what would go inside it.
    fs::write(root.join("blocker"), "").unwrap();
    let b = bundle(vec![
        res("inner", "file", json!({"target_path": "/blocker/f", "content": "x"})),
        res("blocker", "directory", json!({"target_path": "/blocker"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(statuses(&r), [("blocker".to_string(), "failed"), ("inner".to_string(), "skipped")]);
}
