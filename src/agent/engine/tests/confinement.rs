//! `--root` confinement, one test per executor: a symlinked parent or a symlinked target
//! inside the root is refused, and nothing outside the root is read into it or changed.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use serde_json::json;

use super::*;

/// A root and a directory outside it that holds a complete, foreign `etc`.
fn root_and_outside(tag: &str) -> (TempRoot, TempRoot) {
    let root = TempRoot::new(tag);
    let outside = TempRoot::new(&format!("{tag}-outside"));
    fs::create_dir_all(outside.join("etc")).unwrap();
    fs::write(
        outside.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ndan:x:4242:4242::/home/dan:/bin/sh\n",
    )
    .unwrap();
    fs::write(outside.join("etc/group"), "root:x:0:\ndan:x:4242:\n").unwrap();
    fs::write(outside.join("etc/shadow"), "root:$6$OTHERSYSTEM$hash:19000:0:99999:7:::\n").unwrap();
    (root, outside)
}

/// Every file under `dir` with its bytes, to prove nothing there changed.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

#[track_caller]
fn assert_refused(r: &RunReport, name: &str) {
    let x = r.result(name).unwrap();
    assert_eq!(x.status, ResourceStatus::Failed, "{x:?}");
    assert!(x.error.contains("symlink"), "{name}: {}", x.error);
}

#[test]
fn user_and_group_refuse_a_symlinked_etc() {
    let (root, outside) = root_and_outside("conf-etc");
    symlink(outside.join("etc"), root.join("etc")).unwrap();
    let before = contents(outside.path());
    let b = bundle(vec![
        res("ann", "user", json!({"username": "ann", "password": marker("pw")})),
        res("ops", "group", json!({"groupname": "ops"})),
    ]);
    let r = run(&b, &secrets(&[("pw", "canary-pw-1")]), &opts(root.path()));
    assert_refused(&r, "ann");
    assert_refused(&r, "ops");
    assert_eq!(contents(outside.path()), before, "the other system's account files were edited");
    assert!(!outside.join("etc/.pwd.lock").exists());
}

#[test]
fn user_and_group_refuse_symlinked_account_files_and_lock() {
    for (link, resource) in [
        ("etc/shadow", res("ann", "user", json!({"username": "ann", "password": marker("pw")}))),
        ("etc/passwd", res("ann", "user", json!({"username": "ann"}))),
        ("etc/group", res("ops", "group", json!({"groupname": "ops"}))),
        ("etc/gshadow", res("ops", "group", json!({"groupname": "ops"}))),
        ("etc/.pwd.lock", res("ops", "group", json!({"groupname": "ops"}))),
    ] {
        let (root, outside) = root_and_outside("conf-shadow");
        fs::create_dir_all(root.join("etc")).unwrap();
        for f in ["passwd", "group", "shadow"] {
            fs::copy(outside.join(&format!("etc/{f}")), root.join(&format!("etc/{f}"))).unwrap();
        }
        fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        let _ = fs::remove_file(root.join(link));
        let target = outside.join(link);
        symlink(&target, root.join(link)).unwrap();
        let before = contents(outside.path());
        let name = resource.name.clone();
        let r = run(&bundle(vec![resource]), &secrets(&[("pw", "canary-pw-2")]), &opts(root.path()));
        assert_refused(&r, &name);
        assert_eq!(contents(outside.path()), before, "{link}: something outside the root changed");
        assert!(fs::symlink_metadata(root.join(link)).unwrap().file_type().is_symlink(), "{link}");
        // No regular file in the root holds the other system's hash (the shadow copied in).
        for e in fs::read_dir(root.join("etc")).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_file() && link == "etc/shadow" {
                let text = fs::read_to_string(&p).unwrap();
                assert!(!text.contains("OTHERSYSTEM"), "{link}: foreign hashes copied into {}", p.display());
            }
        }
    }
}

#[test]
fn file_owner_and_group_are_looked_up_only_inside_the_root() {
    let (root, outside) = root_and_outside("conf-owner");
    symlink(outside.join("etc"), root.join("etc")).unwrap();
    fs::create_dir_all(root.join("srv")).unwrap();
    let b = bundle(vec![
        res("owned", "file", json!({"target_path": "/srv/f", "content": "x", "owner": "dan"})),
        res("grouped", "directory", json!({"target_path": "/srv/d", "group": "dan"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_refused(&r, "owned");
    assert_refused(&r, "grouped");
    assert!(!root.join("srv/f").exists() && !root.join("srv/d").exists());
}

#[test]
fn file_directory_and_symlink_refuse_symlinked_parents_and_targets() {
    let (root, outside) = root_and_outside("conf-files");
    fs::create_dir_all(root.join("srv")).unwrap();
    fs::create_dir_all(outside.join("dir")).unwrap();
    fs::set_permissions(outside.join("dir"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink(outside.path(), root.join("srv/parent")).unwrap();
    symlink(outside.join("dir"), root.join("srv/dirlink")).unwrap();
    symlink(outside.join("etc/passwd"), root.join("srv/filelink")).unwrap();
    let before = contents(outside.path());
    let b = bundle(vec![
        res("file-parent", "file", json!({"target_path": "/srv/parent/f", "content": "x"})),
        res("file-target", "file", json!({"target_path": "/srv/filelink", "content": "x"})),
        res("file-mode", "file", json!({"target_path": "/srv/filelink", "mode": "0600"})),
        res("dir-parent", "directory", json!({"target_path": "/srv/parent/d"})),
        res("dir-target", "directory", json!({"target_path": "/srv/dirlink", "mode": "0700"})),
        res("link-parent", "symlink", json!({"target_path": "/srv/parent/l", "points_to": "/x"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    for name in ["file-parent", "file-target", "file-mode", "dir-parent", "link-parent"] {
        assert_refused(&r, name);
    }
    let dir_target = r.result("dir-target").unwrap();
    assert_eq!(dir_target.status, ResourceStatus::Failed);
    assert!(dir_target.error.contains("not a directory"), "{}", dir_target.error);
    assert_eq!(contents(outside.path()), before);
    assert_eq!(fs::metadata(outside.join("dir")).unwrap().permissions().mode() & 0o7777, 0o755);
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 2, "nothing new outside the root");
}

#[test]
fn exec_creates_through_a_symlink_is_refused_not_taken_as_done() {
    let (root, outside) = root_and_outside("conf-exec");
    fs::write(outside.join("done"), "").unwrap();
    symlink(outside.path(), root.join("esc")).unwrap();
    let stamp = root.join("ran");
    let command = format!("touch {}", stamp.display());
    let b = bundle(vec![res("x", "exec", json!({"command": command, "creates": "/esc/done"}))]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_refused(&r, "x");
    assert!(!stamp.exists());
}

#[test]
fn package_refuses_a_symlinked_database_or_package_file() {
    let (root, outside) = root_and_outside("conf-pkg");
    fs::create_dir_all(outside.join("var/lib/dpkg")).unwrap();
    fs::write(outside.join("pkg.deb"), "not really a package").unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    symlink(outside.join("pkg.deb"), root.join("tmp/pkg.deb")).unwrap();
    let r = run(
        &bundle(vec![res("local", "package", json!({"package": "/tmp/pkg.deb"}))]),
        &secrets(&[]),
        &opts(root.path()),
    );
    assert_refused(&r, "local");
    symlink(outside.join("var"), root.join("var")).unwrap();
    let before = contents(outside.path());
    for spec in ["vigo-engine-test", "/tmp/pkg.deb"] {
        let r = run(
            &bundle(vec![res("p", "package", json!({"package": spec, "ensure": "absent"}))]),
            &secrets(&[]),
            &opts(root.path()),
        );
        assert_refused(&r, "p");
    }
    fs::remove_file(root.join("var")).unwrap();
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    let r = run(
        &bundle(vec![res("local", "package", json!({"package": "/tmp/pkg.deb"}))]),
        &secrets(&[]),
        &opts(root.path()),
    );
    assert_refused(&r, "local");
    assert_eq!(contents(outside.path()), before);
}

#[test]
fn service_refuses_a_symlinked_systemd_directory_and_odd_unit_names() {
    let (root, outside) = root_and_outside("conf-svc");
    fs::create_dir_all(outside.join("etc/systemd/system")).unwrap();
    symlink(outside.join("etc"), root.join("etc")).unwrap();
    let r = run(
        &bundle(vec![res("svc", "service", json!({"service": "nginx", "enable": true}))]),
        &secrets(&[]),
        &opts(root.path()),
    );
    assert_refused(&r, "svc");
    assert_eq!(fs::read_dir(outside.join("etc/systemd/system")).unwrap().count(), 0);
    for odd in ["../../etc/x", "-H", "a/b"] {
        let r = run(
            &bundle(vec![res("svc", "service", json!({"service": odd, "enable": true}))]),
            &secrets(&[]),
            &opts(Path::new("/")),
        );
        assert!(r.results[0].error.contains("not a systemd unit name"), "{odd}: {:?}", r.results[0]);
    }
}
