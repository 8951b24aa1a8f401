use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde_json::json;

use super::*;

fn file_bundle(root: &TempRoot) -> CompiledBundle {
    fs::create_dir_all(root.join("etc")).unwrap();
    let mut link =
        res("link", "symlink", json!({"target_path": "/etc/app/current", "points_to": "/etc/app/app.conf"}));
    link.depends_on = vec!["conf".into()];
    bundle(vec![
        res("dir", "directory", json!({"target_path": "/etc/app", "mode": "0750"})),
        {
            let mut r = res(
                "conf",
                "file",
                json!({"target_path": "/etc/app/app.conf", "content": "a=1\nb=2\n", "mode": "0640"}),
            );
            r.depends_on = vec!["dir".into()];
            r
        },
        link,
        res("gone", "file", json!({"target_path": "/etc/old.conf", "ensure": "absent"})),
    ])
}

#[test]
fn file_directory_symlink_converge_then_are_idempotent() {
    let root = TempRoot::new("files");
    let b = file_bundle(&root);
    fs::write(root.join("etc/old.conf"), "old").unwrap();
    let first = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(first.status, RunStatus::Changed, "{first:#?}");
    assert_all(&first, ResourceStatus::Changed);
    assert_eq!(fs::read_to_string(root.join("etc/app/app.conf")).unwrap(), "a=1\nb=2\n");
    assert_eq!(fs::metadata(root.join("etc/app/app.conf")).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(fs::metadata(root.join("etc/app")).unwrap().mode() & 0o7777, 0o750);
    assert_eq!(fs::read_link(root.join("etc/app/current")).unwrap(), Path::new("/etc/app/app.conf"));
    assert!(!root.join("etc/old.conf").exists());
    let second = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&second, ResourceStatus::Unchanged);
    assert_eq!(second.status, RunStatus::Converged);
    // No temp files left beside the targets.
    let names: Vec<_> = fs::read_dir(root.join("etc/app")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn unspecified_mode_and_owner_are_kept_and_content_diff_is_shown() {
    let root = TempRoot::new("keep");
    fs::create_dir_all(root.join("etc")).unwrap();
    let p = root.join("etc/motd");
    fs::write(&p, "hello\nold line\n").unwrap();
    // Readable by everyone, so a diff shows nothing the host does not already show.
    fs::set_permissions(&p, fs::Permissions::from_mode(0o664)).unwrap();
    let b = bundle(vec![res(
        "motd",
        "file",
        json!({"target_path": "/etc/motd", "content": "hello\nnew line\n"}),
    )]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].status, ResourceStatus::Changed);
    assert!(r.results[0].diff.contains("-old line\n+new line"), "{}", r.results[0].diff);
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o664, "mode kept");
    // Mode only: changed without rewriting content.
    let b = bundle(vec![res("motd", "file", json!({"target_path": "/etc/motd", "mode": "0644"}))]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].diff, "mode 0664 -> 0644");
    assert_eq!(fs::read_to_string(&p).unwrap(), "hello\nnew line\n");
}

#[test]
fn noop_over_drifted_root_changes_no_byte_and_reports_would_change() {
    let root = TempRoot::new("noop");
    let b = file_bundle(&root);
    run(&b, &secrets(&[]), &opts(root.path()));
    // Drift every resource.
    fs::write(root.join("etc/app/app.conf"), "drifted\n").unwrap();
    fs::set_permissions(root.join("etc/app"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::remove_file(root.join("etc/app/current")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", root.join("etc/app/current")).unwrap();
    fs::write(root.join("etc/old.conf"), "back").unwrap();
    let before = snapshot(root.path());
    let mut o = opts(root.path());
    o.noop = true;
    let r = run(&b, &secrets(&[]), &o);
    assert!(r.noop);
    assert_all(&r, ResourceStatus::WouldChange);
    assert_eq!(snapshot(root.path()), before, "noop must not touch the root");
}

/// Every entry under `dir`: path, mode, link target or content.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let body = if m.file_type().is_symlink() {
                fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()
            } else if m.is_dir() {
                stack.push(p.clone());
                vec![]
            } else {
                fs::read(&p).unwrap()
            };
            out.push((p, m.mode(), body));
        }
    }
    out.sort();
    out
}

#[test]
fn secret_file_diff_names_the_key_never_the_value() {
    let root = TempRoot::new("secretdiff");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/db.conf"), "password = old-value\n").unwrap();
    let canary = "canary-Zq9-secret-value";
    let b = bundle(vec![res(
        "db",
        "file",
        json!({"target_path": "/etc/db.conf", "content": format!("password = {}\n", marker("vigo/db/password")), "mode": "0600"}),
    )]);
    let s = secrets(&[("vigo/db/password", canary)]);
    let r = run(&b, &s, &opts(root.path()));
    assert_eq!(r.results[0].status, ResourceStatus::Changed, "{:?}", r.results[0].error);
    assert!(r.results[0].diff.contains("content changed (secret:vigo/db/password)"), "{}", r.results[0].diff);
    assert!(!r.results[0].diff.contains("old-value"));
    assert_no_canary(&r, canary);
    assert_eq!(fs::read_to_string(root.join("etc/db.conf")).unwrap(), format!("password = {canary}\n"));
    assert_all(&run(&b, &s, &opts(root.path())), ResourceStatus::Unchanged);
}

#[test]
fn a_file_holding_a_secret_is_0600_unless_the_resource_names_a_mode() {
    use std::os::unix::fs::PermissionsExt;
    let root = TempRoot::new("secretmode");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/old.conf"), "x\n").unwrap();
    fs::set_permissions(root.join("etc/old.conf"), fs::Permissions::from_mode(0o644)).unwrap();
    let content = json!(format!("token = {}\n", marker("vigo/t")));
    let b = bundle(vec![
        res("new", "file", json!({"target_path": "/etc/new.conf", "content": content})),
        res("old", "file", json!({"target_path": "/etc/old.conf", "content": content})),
        res("named", "file", json!({"target_path": "/etc/named.conf", "content": content, "mode": "0640"})),
        res("plain", "file", json!({"target_path": "/etc/plain.conf", "content": "public\n"})),
    ]);
    let s = secrets(&[("vigo/t", "tok")]);
    let r = run(&b, &s, &opts(root.path()));
    assert_eq!(r.status, RunStatus::Changed, "{r:?}");
    let mode = |f: &str| fs::metadata(root.join("etc").join(f)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        [mode("new.conf"), mode("old.conf"), mode("named.conf"), mode("plain.conf")],
        [0o600, 0o600, 0o640, 0o644]
    );
    assert_all(&run(&b, &s, &opts(root.path())), ResourceStatus::Unchanged);
}

#[test]
fn mode_and_owner_are_not_changed_through_a_second_hard_link() {
    use std::os::unix::fs::PermissionsExt;
    let root = TempRoot::new("hardlink");
    let outside = TempRoot::new("hardlink-outside");
    fs::write(outside.join("victim"), "x\n").unwrap();
    fs::set_permissions(outside.join("victim"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::hard_link(outside.join("victim"), root.join("hl")).unwrap();
    let b = bundle(vec![res("hl", "file", json!({"target_path": "/hl", "mode": "0666"}))]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].status, ResourceStatus::Failed);
    assert!(r.results[0].error.contains("2 hard links"), "{:?}", r.results[0]);
    assert_eq!(fs::metadata(outside.join("victim")).unwrap().permissions().mode() & 0o7777, 0o600);
    // New content replaces the file (a new inode), so that is fine and leaves the other name be.
    let b =
        bundle(vec![res("hl", "file", json!({"target_path": "/hl", "mode": "0640", "content": "new\n"}))]);
    assert_eq!(run(&b, &secrets(&[]), &opts(root.path())).results[0].status, ResourceStatus::Changed);
    assert_eq!(fs::read_to_string(outside.join("victim")).unwrap(), "x\n");
    assert_eq!(fs::metadata(outside.join("victim")).unwrap().permissions().mode() & 0o7777, 0o600);
}

#[test]
fn noop_predicts_the_failures_of_the_real_run() {
    let root = TempRoot::new("nooppredict");
    fs::create_dir_all(root.join("full")).unwrap();
    fs::write(root.join("full/keep"), "x").unwrap();
    let mut inner = res("inner", "file", json!({"target_path": "/newdir/inner", "content": "x"}));
    inner.depends_on = vec!["newdir".into()];
    let b = bundle(vec![
        res("orphan", "file", json!({"target_path": "/nodir/x", "content": "x"})),
        res("link", "symlink", json!({"target_path": "/nodir/l", "points_to": "/x"})),
        res("full", "directory", json!({"target_path": "/full", "ensure": "absent"})),
        res("newdir", "directory", json!({"target_path": "/newdir"})),
        inner,
    ]);
    let mut noop = opts(root.path());
    noop.noop = true;
    let predicted = statuses(&run(&b, &secrets(&[]), &noop));
    let real = statuses(&run(&b, &secrets(&[]), &opts(root.path())));
    let as_real = |s: &'static str| if s == "would-change" { "changed" } else { s };
    let predicted: Vec<_> = predicted.iter().map(|(n, s)| (n.clone(), as_real(s))).collect();
    assert_eq!(predicted, real);
    assert_eq!(
        real,
        [
            ("orphan".to_string(), "failed"),
            ("link".to_string(), "failed"),
            ("full".to_string(), "failed"),
            ("newdir".to_string(), "changed"),
            ("inner".to_string(), "changed"),
        ]
    );
}

#[test]
fn unresolved_marker_fails_the_resource_and_never_lands_on_disk() {
    let root = TempRoot::new("unresolved");
    fs::create_dir_all(root.join("etc")).unwrap();
    let b = bundle(vec![
        res("db", "file", json!({"target_path": "/etc/db.conf", "content": marker("vigo/missing")})),
        res("other", "file", json!({"target_path": "/etc/other.conf", "content": "x"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(statuses(&r), [("db".to_string(), "failed"), ("other".to_string(), "changed")]);
    assert!(r.results[0].error.contains("secret:vigo/missing was not resolved"), "{}", r.results[0].error);
    assert!(!root.join("etc/db.conf").exists());
}

#[test]
fn root_escape_via_dotdot_and_via_symlink_is_refused() {
    let root = TempRoot::new("escape");
    let outside = TempRoot::new("outside");
    fs::create_dir_all(root.join("etc")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("etc/sneaky")).unwrap();
    let up = format!("/../../../../../..{}/x", outside.path().display());
    let b = bundle(vec![
        res("dotdot", "file", json!({"target_path": up, "content": "x"})),
        res("link", "file", json!({"target_path": "/etc/sneaky/pwned", "content": "x"})),
        res("dir", "directory", json!({"target_path": "/etc/sneaky/d"})),
        res("inside", "file", json!({"target_path": "/etc/fine", "content": "x"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].status, ResourceStatus::Failed);
    assert!(r.results[0].error.contains("escapes the target root"), "{}", r.results[0].error);
    assert_eq!(r.results[1].status, ResourceStatus::Failed);
    assert!(r.results[1].error.contains("symlink"), "{}", r.results[1].error);
    assert_eq!(r.results[2].status, ResourceStatus::Failed);
    assert_eq!(r.results[3].status, ResourceStatus::Changed);
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "nothing was written outside the root");
}

#[test]
fn protected_path_is_blocked_by_guardrail() {
    let root = TempRoot::new("guardpath");
    let b = bundle(vec![res("grub", "file", json!({"target_path": "/boot/grub/grub.cfg", "content": "x"}))]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].status, ResourceStatus::Failed);
    assert_eq!(r.results[0].guardrail.as_deref(), Some("protected-path:/boot"));
    assert!(r.results[0].error.contains("protected-path:/boot"));
}

#[test]
fn a_batch_of_staged_files_is_in_place_before_a_command_that_depends_on_it() {
    let root = TempRoot::new("batchexec");
    fs::create_dir_all(root.join("etc")).unwrap();
    // More files than the one-by-one flush handles, so the batch goes through syncfs.
    let mut resources: Vec<CompiledResource> = (0..20)
        .map(|i| {
            res(
                &format!("f{i}"),
                "file",
                json!({"target_path": format!("/etc/f{i}"), "content": format!("v{i}")}),
            )
        })
        .collect();
    let copy = format!("cp {} {}", root.join("etc/f19").display(), root.join("etc/copy").display());
    let mut cp = res("copy", "exec", json!({"command": copy}));
    cp.depends_on = vec!["f19".into()];
    resources.push(cp);
    let r = run(&bundle(resources), &secrets(&[]), &opts(root.path()));
    assert_all(&r, ResourceStatus::Changed);
    assert_eq!(fs::read_to_string(root.join("etc/copy")).unwrap(), "v19");
    let names: Vec<String> = fs::read_dir(root.join("etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert_eq!(names.len(), 21, "temp files left behind: {names:?}");
}
