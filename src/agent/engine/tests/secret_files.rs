//! Values the run no longer knows — rotated away, or removed from a file's content — never
//! reach a report: the agent remembers which files held secrets.

use std::fs;

use serde_json::json;

use super::*;

const OLD: &str = "old-Canary-9x1";
const NEW: &str = "new-Canary-4k7";

/// An exec that prints the file before the file resource replaces it, then the file.
fn peek_then_file(root: &TempRoot, content: String, mode: &str) -> CompiledBundle {
    let peek = res(
        "peek",
        "exec",
        json!({"command": format!("sh -c 'cat {}; true'", root.join("etc/app.conf").display())}),
    );
    let mut file =
        res("conf", "file", json!({"target_path": "/etc/app.conf", "content": content, "mode": mode}));
    file.depends_on = vec!["peek".into()];
    bundle(vec![peek, file])
}

fn with_record(root: &TempRoot, record: &SecretFiles) -> ApplyOptions {
    let mut o = opts(root.path());
    o.secret_files = record.clone();
    o
}

#[test]
fn a_rotated_value_and_a_removed_ref_never_reach_the_report() {
    let root = TempRoot::new("secretfiles");
    fs::create_dir_all(root.join("etc")).unwrap();
    let template = format!("user=app\npassword={}\n", marker("app/pw"));
    let b = peek_then_file(&root, template, "0644");
    let first = run(&b, &secrets(&[("app/pw", OLD)]), &opts(root.path()));
    assert_eq!(first.status, RunStatus::Changed, "{first:?}");
    let host_path = root.join("etc/app.conf").display().to_string();
    assert_eq!(first.secret_files.paths(), [host_path.as_str()]);

    // Rotation: the scrubber knows only NEW, the file (and the command printing it) has OLD.
    let rotated = run(&b, &secrets(&[("app/pw", NEW)]), &with_record(&root, &first.secret_files));
    assert_eq!(rotated.result("conf").unwrap().diff, "content changed (secret:app/pw)");
    let peek = &rotated.result("peek").unwrap().output;
    assert_eq!(peek, "user=app\npassword=[REDACTED secret:app/pw]\n", "the old value is named by its key");
    assert_no_canary(&rotated, OLD);
    assert_no_canary(&rotated, NEW);

    // Removal: the content no longer refers to the secret, and no value is resolved at all.
    let plain = peek_then_file(&root, "user=app\npassword=set-by-hand\n".into(), "0644");
    let removed = run(&plain, &secrets(&[]), &with_record(&root, &rotated.secret_files));
    let conf = removed.result("conf").unwrap();
    assert_eq!(conf.status, ResourceStatus::Changed);
    assert_eq!(conf.diff, "content changed (secret-bearing file, diff withheld)");
    assert!(removed.result("peek").unwrap().output.contains("[REDACTED secret:app/pw]"));
    assert_no_canary(&removed, NEW);
    assert!(removed.secret_files.is_empty(), "the file holds no secret any more");

    // From now on it is an ordinary file: its diffs are shown again.
    let edited = peek_then_file(&root, "user=app\npassword=changed-again\n".into(), "0644");
    let r = run(&edited, &secrets(&[]), &with_record(&root, &removed.secret_files));
    assert!(r.result("conf").unwrap().diff.contains("+password=changed-again"), "{r:?}");
}

#[test]
fn without_a_usable_record_no_file_is_diffed_and_private_files_never_are() {
    let root = TempRoot::new("secretfiles-unknown");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/app.conf"), format!("password={OLD}\n")).unwrap();
    let b = peek_then_file(&root, "password=plain\n".into(), "0644");
    // The record was lost or damaged: every file counts as having held a secret, and its old
    // lines are scrubbed from every output.
    let r = run(&b, &secrets(&[]), &with_record(&root, &SecretFiles::unknown()));
    assert_eq!(r.result("conf").unwrap().diff, "content changed (secret-bearing file, diff withheld)");
    assert_no_canary(&r, OLD);
    assert!(!r.secret_files.unknown && r.secret_files.is_empty(), "a real run rebuilds the record");

    // A file other users cannot read is never diffed, record or not.
    let private = root.join("etc/private.conf");
    fs::write(&private, format!("token={OLD}\n")).unwrap();
    fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let b =
        bundle(vec![res("p", "file", json!({"target_path": "/etc/private.conf", "content": "token=x\n"}))]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].diff, "content changed (not readable by other users, diff withheld)");
    assert_no_canary(&r, OLD);
}

#[test]
fn a_noop_run_reads_the_record_but_never_changes_it() {
    let root = TempRoot::new("secretfiles-noop");
    fs::create_dir_all(root.join("etc")).unwrap();
    let b = peek_then_file(&root, format!("pw={}\n", marker("k")), "0644");
    let mut noop = opts(root.path());
    noop.noop = true;
    let r = run(&b, &secrets(&[("k", OLD)]), &noop);
    assert!(r.secret_files.is_empty(), "noop wrote nothing, so nothing holds a secret yet");
    let real = run(&b, &secrets(&[("k", OLD)]), &opts(root.path()));
    let plain = peek_then_file(&root, "pw=plain\n".into(), "0644");
    let mut noop = with_record(&root, &real.secret_files);
    noop.noop = true;
    let r = run(&plain, &secrets(&[]), &noop);
    assert_eq!(r.result("conf").unwrap().status, ResourceStatus::WouldChange);
    assert_eq!(r.result("conf").unwrap().diff, "content changed (secret-bearing file, diff withheld)");
    assert_eq!(r.secret_files, real.secret_files);
    assert_no_canary(&r, OLD);
}
