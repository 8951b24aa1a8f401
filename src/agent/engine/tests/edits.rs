//! Edits to part of a file and the file's `source`, `validate` and `backup`: each converges
//! and then stays unchanged, noop predicts a drift and the next run corrects it, mode and owner
//! are kept, and nothing goes through a symlink or past the guardrails.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use serde_json::json;

use super::*;

const SSHD: &str = "Port 22\n#PermitRootLogin yes\n";
const INI: &str = "[server]\nhost = a\n";

/// One resource of each edit type on files under /etc of a fresh root.
fn edit_bundle() -> CompiledBundle {
    bundle(vec![
        res(
            "root-login",
            "file_line",
            json!({"target_path": "/etc/sshd_config", "line": "PermitRootLogin no", "match": "^#?PermitRootLogin"}),
        ),
        res(
            "banner",
            "blockinfile",
            json!({"target_path": "/etc/motd", "block": "managed by vigo\nhands off\n"}),
        ),
        res(
            "port",
            "ini",
            json!({"target_path": "/etc/app.ini", "section": "server", "key": "port", "value": "8080"}),
        ),
        res(
            "debug",
            "json_file",
            json!({"target_path": "/etc/app.json", "path": "log.level", "value": "\"debug\""}),
        ),
        res(
            "listen",
            "replace",
            json!({"target_path": "/etc/listen.conf", "regexp": "^listen \\d+$", "replace": "listen 443"}),
        ),
    ])
}

fn seed(root: &TempRoot) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/sshd_config"), SSHD).unwrap();
    fs::write(root.join("etc/motd"), "welcome\n").unwrap();
    fs::write(root.join("etc/app.ini"), INI).unwrap();
    fs::write(root.join("etc/app.json"), "{\"name\": \"app\"}").unwrap();
    fs::write(root.join("etc/listen.conf"), "listen 80\nroot /srv\n").unwrap();
    fs::set_permissions(root.join("etc/app.ini"), fs::Permissions::from_mode(0o640)).unwrap();
}

fn read(root: &TempRoot, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap()
}

#[test]
fn every_edit_converges_keeps_mode_and_owner_then_stays_unchanged() {
    let root = TempRoot::new("edits");
    seed(&root);
    let ino_mode = fs::metadata(root.join("etc/app.ini")).unwrap();
    let b = edit_bundle();
    let first = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&first, ResourceStatus::Changed);
    assert_eq!(read(&root, "etc/sshd_config"), "Port 22\nPermitRootLogin no\n");
    assert_eq!(
        read(&root, "etc/motd"),
        "welcome\n# BEGIN VIGO MANAGED BLOCK banner\nmanaged by vigo\nhands off\n# END VIGO MANAGED BLOCK banner\n"
    );
    assert_eq!(read(&root, "etc/app.ini"), "[server]\nhost = a\nport = 8080\n");
    let v: Value = serde_json::from_str(&read(&root, "etc/app.json")).unwrap();
    assert_eq!(v, json!({"name": "app", "log": {"level": "debug"}}));
    assert_eq!(read(&root, "etc/listen.conf"), "listen 443\nroot /srv\n");
    let after = fs::metadata(root.join("etc/app.ini")).unwrap();
    assert_eq!((after.mode() & 0o7777, after.uid(), after.gid()), (0o640, ino_mode.uid(), ino_mode.gid()));
    // A world-readable file shows its diff; a private one does not.
    let diff = &first.result("root-login").unwrap().diff;
    assert!(diff.contains("-#PermitRootLogin yes") && diff.contains("+PermitRootLogin no"), "{diff}");
    assert!(first.result("port").unwrap().diff.contains("diff withheld"));

    let second = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&second, ResourceStatus::Unchanged);
    let names: Vec<_> = fs::read_dir(root.join("etc")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 5, "no temp files left: {names:?}");
}

#[test]
fn drift_behind_vigos_back_is_predicted_by_noop_then_corrected() {
    let root = TempRoot::new("edits-drift");
    seed(&root);
    let b = edit_bundle();
    run(&b, &secrets(&[]), &opts(root.path()));
    // Someone edits every file by hand.
    fs::write(root.join("etc/sshd_config"), "Port 22\nPermitRootLogin yes\n").unwrap();
    fs::write(root.join("etc/motd"), "welcome\n").unwrap();
    fs::write(root.join("etc/app.ini"), "[server]\nhost = a\nport = 1\n").unwrap();
    fs::write(root.join("etc/app.json"), "{\"log\": {\"level\": \"warn\"}}").unwrap();
    fs::write(root.join("etc/listen.conf"), "listen 8\n").unwrap();
    let drifted: Vec<String> = ["sshd_config", "motd", "app.ini", "app.json", "listen.conf"]
        .iter()
        .map(|f| read(&root, &format!("etc/{f}")))
        .collect();
    let mut noop = opts(root.path());
    noop.noop = true;
    let predicted = run(&b, &secrets(&[]), &noop);
    assert_all(&predicted, ResourceStatus::WouldChange);
    let unchanged: Vec<String> = ["sshd_config", "motd", "app.ini", "app.json", "listen.conf"]
        .iter()
        .map(|f| read(&root, &format!("etc/{f}")))
        .collect();
    assert_eq!(unchanged, drifted, "noop changed nothing");
    let fixed = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&fixed, ResourceStatus::Changed);
    assert_eq!(read(&root, "etc/sshd_config"), "Port 22\nPermitRootLogin no\n");
    assert_eq!(read(&root, "etc/app.ini"), "[server]\nhost = a\nport = 8080\n");
    assert_eq!(read(&root, "etc/listen.conf"), "listen 443\n");
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
}

#[test]
fn missing_files_need_create_and_edits_of_one_file_see_each_other() {
    let root = TempRoot::new("edits-create");
    fs::create_dir_all(root.join("etc")).unwrap();
    let b = bundle(vec![
        res("needs-file", "file_line", json!({"target_path": "/etc/none", "line": "x"})),
        res(
            "gone-anyway",
            "file_line",
            json!({"target_path": "/etc/none2", "line": "x", "ensure": "absent"}),
        ),
        res("a", "file_line", json!({"target_path": "/etc/new.conf", "line": "a = 1", "create": true})),
        res("b", "file_line", json!({"target_path": "/etc/new.conf", "line": "b = 2"})),
        res("c", "ini", json!({"target_path": "/etc/new.conf", "key": "c", "value": "3"})),
        res(
            "no-dir",
            "json_file",
            json!({"target_path": "/etc/missing/x.json", "path": "a", "value": "1", "create": true}),
        ),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    let needs = r.result("needs-file").unwrap();
    assert_eq!(needs.status, ResourceStatus::Failed);
    assert!(
        needs.error.contains("does not exist") && needs.error.contains("create: true"),
        "{}",
        needs.error
    );
    assert_eq!(r.result("gone-anyway").unwrap().status, ResourceStatus::Unchanged);
    assert!(!root.join("etc/none2").exists());
    assert!(r.result("no-dir").unwrap().error.contains("parent directory"), "{:?}", r.result("no-dir"));
    assert_eq!(read(&root, "etc/new.conf"), "a = 1\nb = 2\nc = 3\n");
    assert_eq!(fs::metadata(root.join("etc/new.conf")).unwrap().mode() & 0o7777, 0o644);
}

#[test]
fn a_file_edits_cannot_work_on_is_refused_and_left_alone() {
    let root = TempRoot::new("edits-refuse");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/bin.dat"), [0xff, 0xfe, 0x00]).unwrap();
    fs::write(root.join("etc/grow"), "a\n").unwrap();
    fs::write(root.join("etc/list.json"), "[1, 2]").unwrap();
    fs::write(root.join("etc/half"), "# BEGIN VIGO MANAGED BLOCK blk\nx\n").unwrap();
    let b = bundle(vec![
        res("binary", "file_line", json!({"target_path": "/etc/bin.dat", "line": "x"})),
        res("grows", "replace", json!({"target_path": "/etc/grow", "regexp": "(a)", "replace": "${1}a"})),
        res("not-object", "json_file", json!({"target_path": "/etc/list.json", "path": "a", "value": "1"})),
        res("blk", "blockinfile", json!({"target_path": "/etc/half", "block": "y"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    for (name, why) in [
        ("binary", "not UTF-8"),
        ("grows", "never converges"),
        ("not-object", "not an object"),
        ("blk", "one without the other"),
    ] {
        let x = r.result(name).unwrap();
        assert_eq!(x.status, ResourceStatus::Failed, "{name}: {x:?}");
        assert!(x.error.contains(why), "{name}: {}", x.error);
    }
    assert_eq!(fs::read(root.join("etc/bin.dat")).unwrap(), [0xff, 0xfe, 0x00]);
    assert_eq!(read(&root, "etc/grow"), "a\n");
    assert_eq!(read(&root, "etc/list.json"), "[1, 2]");
}

#[test]
fn edits_and_sources_never_go_through_a_symlink_or_out_of_the_root() {
    let root = TempRoot::new("edits-link");
    let outside = TempRoot::new("edits-link-outside");
    fs::write(outside.join("victim.conf"), "keep = 1\n").unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    symlink(outside.path(), root.join("etc/parent")).unwrap();
    symlink(outside.join("victim.conf"), root.join("etc/link.conf")).unwrap();
    let mut b = Vec::new();
    for (i, path) in ["/etc/parent/victim.conf", "/etc/link.conf"].iter().enumerate() {
        b.push(res(&format!("line{i}"), "file_line", json!({"target_path": path, "line": "x"})));
        b.push(res(&format!("block{i}"), "blockinfile", json!({"target_path": path, "block": "x"})));
        b.push(res(&format!("ini{i}"), "ini", json!({"target_path": path, "key": "keep", "value": "2"})));
        b.push(res(
            &format!("json{i}"),
            "json_file",
            json!({"target_path": path, "path": "a", "value": "1"}),
        ));
        b.push(res(
            &format!("replace{i}"),
            "replace",
            json!({"target_path": path, "regexp": "keep", "replace": "lost"}),
        ));
        b.push(res(
            &format!("source{i}"),
            "file",
            json!({"target_path": format!("/etc/copy{i}"), "source": path}),
        ));
    }
    let r = run(&bundle(b), &secrets(&[]), &opts(root.path()));
    for x in &r.results {
        assert_eq!(x.status, ResourceStatus::Failed, "{x:?}");
        assert!(x.error.contains("symlink"), "{}: {}", x.name, x.error);
    }
    assert_eq!(fs::read_to_string(outside.join("victim.conf")).unwrap(), "keep = 1\n");
    assert!(!root.join("etc/copy0").exists() && !root.join("etc/copy1").exists());
}

#[test]
fn edits_and_sources_stay_behind_the_guardrails() {
    let host = TempRoot::new("edits-guard");
    let base = host.join("var/lib/vigo");
    fs::create_dir_all(&base).unwrap();
    fs::write(base.join("guardrails.yaml"), "protected_services: []\n").unwrap();
    fs::write(base.join("identity.key"), "IDENTITY-CANARY").unwrap();
    let mut o = opts(Path::new("/"));
    o.guardrails = Guardrails::load(&base.join("guardrails.yaml"), &base).unwrap();
    let at = |rel: &str| format!("{}/{rel}", host.path().display());
    let b = bundle(vec![
        res(
            "edit",
            "file_line",
            json!({"target_path": at("var/lib/vigo/guardrails.yaml"), "line": "allow_rules: [protected-path]"}),
        ),
        res(
            "copy-out",
            "file",
            json!({"target_path": at("stolen"), "source": at("var/lib/vigo/identity.key")}),
        ),
        res(
            "validate",
            "file",
            json!({"target_path": at("v.conf"), "content": "x", "validate": "rm -rf / %"}),
        ),
    ]);
    let r = run(&b, &secrets(&[]), &o);
    for name in ["edit", "copy-out", "validate"] {
        let x = r.result(name).unwrap();
        assert_eq!(x.status, ResourceStatus::Failed, "{name}: {x:?}");
        assert!(x.guardrail.is_some(), "{name}: {x:?}");
    }
    assert_eq!(fs::read_to_string(base.join("guardrails.yaml")).unwrap(), "protected_services: []\n");
    assert!(!host.join("stolen").exists() && !host.join("v.conf").exists());
}

#[test]
fn validate_refuses_bad_content_in_noop_and_real_runs_and_leaves_no_temp_file() {
    let root = TempRoot::new("validate");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/run.sh"), "echo old\n").unwrap();
    let log = root.join("validate.log");
    // The check records the temp file it was given (with its mode), then checks the syntax
    // with the real shell.
    let check = format!("sh -c 'ls -l % > {}; sh -n %'", log.display());
    let with = |content: &str| {
        bundle(vec![res(
            "script",
            "file",
            json!({"target_path": "/etc/run.sh", "content": content, "validate": check.clone()}),
        )])
    };
    let mut noop = opts(root.path());
    noop.noop = true;
    for o in [&noop, &opts(root.path())] {
        let r = run(&with("if then fi (\n"), &secrets(&[]), o);
        let x = r.result("script").unwrap();
        assert_eq!(x.status, ResourceStatus::Failed, "{x:?}");
        assert!(x.error.contains("was refused and the file left as it was"), "{}", x.error);
        assert!(x.output.to_lowercase().contains("syntax error"), "{}", x.output);
        assert_eq!(read(&root, "etc/run.sh"), "echo old\n");
    }
    let seen = fs::read_to_string(&log).unwrap();
    assert!(seen.starts_with("-rw-------"), "the temp file is private: {seen}");
    let temp = seen.split_whitespace().last().unwrap();
    assert!(!Path::new(temp).exists(), "{temp} was removed");

    let good = run(&with("echo new\n"), &secrets(&[]), &opts(root.path()));
    assert_eq!(good.result("script").unwrap().status, ResourceStatus::Changed, "{good:?}");
    assert_eq!(read(&root, "etc/run.sh"), "echo new\n");
    // Unchanged content is not validated again.
    fs::remove_file(&log).unwrap();
    assert_all(&run(&with("echo new\n"), &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
    assert!(!log.exists());
}

#[test]
fn validate_sees_a_secret_only_in_its_private_temp_file() {
    let root = TempRoot::new("validate-secret");
    fs::create_dir_all(root.join("etc")).unwrap();
    let content = format!("password={}\n", marker("app/pw"));
    let b = bundle(vec![res(
        "conf",
        "file",
        json!({"target_path": "/etc/app.conf", "content": content, "validate": "grep -q VALIDATE-CANARY %"}),
    )]);
    let r = run(&b, &secrets(&[("app/pw", "VALIDATE-CANARY")]), &opts(root.path()));
    assert_eq!(r.result("conf").unwrap().status, ResourceStatus::Changed, "{r:?}");
    assert_eq!(read(&root, "etc/app.conf"), "password=VALIDATE-CANARY\n");
    assert_no_canary(&r, "VALIDATE-CANARY");
    // A failing check's output is scrubbed like any command's.
    let b = bundle(vec![res(
        "conf",
        "file",
        json!({"target_path": "/etc/app.conf", "content": format!("{content}more\n"), "validate": "sh -c 'cat %; exit 1'"}),
    )]);
    let r = run(&b, &secrets(&[("app/pw", "VALIDATE-CANARY")]), &opts(root.path()));
    assert_eq!(r.result("conf").unwrap().status, ResourceStatus::Failed);
    assert_no_canary(&r, "VALIDATE-CANARY");
    assert_eq!(read(&root, "etc/app.conf"), "password=VALIDATE-CANARY\n");
}

#[test]
fn source_copies_a_host_file_and_withholds_a_private_ones_diff() {
    let root = TempRoot::new("source");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/public.conf"), "shared = 1\n").unwrap();
    fs::set_permissions(root.join("etc/public.conf"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(root.join("etc/private.key"), "PRIVATE-SOURCE\n").unwrap();
    fs::set_permissions(root.join("etc/private.key"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("etc/copy.conf"), "old\n").unwrap();
    fs::write(root.join("etc/copy.key"), "old\n").unwrap();
    let b = bundle(vec![
        res("pub", "file", json!({"target_path": "/etc/copy.conf", "source": "/etc/public.conf"})),
        res(
            "key",
            "file",
            json!({"target_path": "/etc/copy.key", "source": "/etc/private.key", "mode": "0600"}),
        ),
        res("missing", "file", json!({"target_path": "/etc/x", "source": "/etc/nope"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(read(&root, "etc/copy.conf"), "shared = 1\n");
    assert_eq!(read(&root, "etc/copy.key"), "PRIVATE-SOURCE\n");
    assert!(r.result("pub").unwrap().diff.contains("+shared = 1"));
    let key = r.result("key").unwrap();
    assert!(key.diff.contains("diff withheld"), "{}", key.diff);
    assert_no_canary(&r, "PRIVATE-SOURCE");
    assert!(r.result("missing").unwrap().error.contains("does not exist"));
    let again = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(again.result("pub").unwrap().status, ResourceStatus::Unchanged);
    assert_eq!(again.result("key").unwrap().status, ResourceStatus::Unchanged);
}

#[test]
fn backup_keeps_a_bounded_history_of_earlier_contents_but_never_a_secret() {
    let root = TempRoot::new("backup");
    let kept = TempRoot::new("backup-dir");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/app.conf"), "v0\n").unwrap();
    let host_path = root.join("etc/app.conf").to_string_lossy().into_owned();
    let mut o = opts(root.path());
    o.backup_dir = Some(kept.path().to_path_buf());
    let with = |content: &str| {
        bundle(vec![res(
            "conf",
            "file",
            json!({"target_path": "/etc/app.conf", "content": content, "backup": true}),
        )])
    };
    let mut noop = opts(root.path());
    noop.noop = true;
    noop.backup_dir = o.backup_dir.clone();
    let predicted = run(&with("v1\n"), &secrets(&[]), &noop);
    assert!(predicted.result("conf").unwrap().diff.contains("earlier content kept"), "{predicted:?}");
    assert!(backup::list(kept.path(), &host_path).unwrap().is_empty(), "noop keeps nothing");
    for n in 1..=7 {
        let r = run(&with(&format!("v{n}\n")), &secrets(&[]), &o);
        assert_eq!(r.result("conf").unwrap().status, ResourceStatus::Changed, "{r:?}");
    }
    let list = backup::list(kept.path(), &host_path).unwrap();
    assert_eq!(list.len(), backup::KEEP);
    let contents: Vec<String> = list.iter().map(|k| fs::read_to_string(&k.file).unwrap()).collect();
    assert_eq!(contents, ["v6\n", "v5\n", "v4\n", "v3\n", "v2\n"]);
    assert!(list.iter().all(|k| fs::metadata(&k.file).unwrap().mode() & 0o7777 == 0o600));
    // An unchanged run keeps nothing new.
    run(&with("v7\n"), &secrets(&[]), &o);
    assert_eq!(backup::list(kept.path(), &host_path).unwrap()[0].taken_ms, list[0].taken_ms);

    // Content that held a secret is not kept when it is replaced.
    let secret = bundle(vec![res(
        "conf",
        "file",
        json!({"target_path": "/etc/app.conf", "content": format!("pw={}\n", marker("app/pw"))}),
    )]);
    let r = run(&secret, &secrets(&[("app/pw", "BACKUP-CANARY")]), &o);
    let record = r.secret_files.clone();
    o.secret_files = record;
    let r = run(&with("plain\n"), &secrets(&[]), &o);
    let x = r.result("conf").unwrap();
    assert_eq!(x.status, ResourceStatus::Changed, "{x:?}");
    assert!(x.diff.contains("no backup kept: the earlier content held a secret"), "{}", x.diff);
    for k in backup::list(kept.path(), &host_path).unwrap() {
        assert!(!fs::read_to_string(&k.file).unwrap().contains("BACKUP-CANARY"));
    }
    // Without a state directory the resource fails instead of silently keeping nothing.
    let r = run(&with("again\n"), &secrets(&[]), &opts(root.path()));
    assert!(r.result("conf").unwrap().error.contains("state directory"));
}
