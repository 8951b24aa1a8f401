//! Custom executors: the example in docs/EXECUTORS.md run as written, and the rules around any
//! executor (trusted files only, a time limit that kills the whole group, scrubbed answers).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::*;

/// A trusted executors directory holding `name` with `script`.
fn executors(tag: &str, name: &str, script: &str) -> TempRoot {
    let dir = TempRoot::new(tag);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    install(&dir, name, script);
    dir
}

fn install(dir: &TempRoot, name: &str, script: &str) {
    write_executable(&dir.join(name), script);
}

/// The shell example between the markers of docs/EXECUTORS.md.
fn documented_example() -> String {
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/EXECUTORS.md")).unwrap();
    let block = doc
        .split("<!-- executor-example:begin -->")
        .nth(1)
        .unwrap()
        .split("<!-- executor-example:end -->")
        .next()
        .unwrap();
    block.trim().strip_prefix("```sh\n").unwrap().strip_suffix("```").unwrap().to_string()
}

fn with_executors(root: &Path, dir: &TempRoot) -> ApplyOptions {
    let mut o = opts(root);
    o.executors_dir = Some(dir.path().to_path_buf());
    o
}

#[test]
fn the_documented_example_converges_predicts_and_fails_cleanly() {
    let dir = executors("exec-doc", "greeting", &documented_example());
    let root = TempRoot::new("custom-root");
    fs::create_dir_all(root.join("etc")).unwrap();
    let greeting = |path: &str| {
        bundle(vec![res(
            "greeting",
            "custom",
            json!({"executor": "greeting", "params": {"path": path, "text": "Hello"}, "timeout": "30"}),
        )])
    };
    let b = greeting("/etc/greeting");
    let first = run(&b, &secrets(&[]), &with_executors(root.path(), &dir));
    let x = &first.results[0];
    assert_eq!(x.status, ResourceStatus::Changed, "{x:?}");
    assert_eq!(x.diff, "wrote /etc/greeting");
    assert!(x.output.contains("wrote 6 bytes"), "stderr is the output: {}", x.output);
    assert_eq!(fs::read_to_string(root.join("etc/greeting")).unwrap(), "Hello\n");
    assert_all(&run(&b, &secrets(&[]), &with_executors(root.path(), &dir)), ResourceStatus::Unchanged);

    fs::write(root.join("etc/greeting"), "changed by hand\n").unwrap();
    let mut noop = with_executors(root.path(), &dir);
    noop.noop = true;
    let predicted = run(&b, &secrets(&[]), &noop);
    assert_eq!(predicted.results[0].status, ResourceStatus::WouldChange);
    assert_eq!(predicted.results[0].diff, "would write /etc/greeting");
    assert_eq!(fs::read_to_string(root.join("etc/greeting")).unwrap(), "changed by hand\n");
    assert_all(&run(&b, &secrets(&[]), &with_executors(root.path(), &dir)), ResourceStatus::Changed);

    let bad = run(&greeting("relative"), &secrets(&[]), &with_executors(root.path(), &dir));
    assert_eq!(bad.results[0].status, ResourceStatus::Failed);
    assert!(bad.results[0].error.contains("greeting: path must be absolute"), "{:?}", bad.results[0]);
}

#[test]
fn private_params_reach_the_executor_and_never_the_report() {
    let script = "#!/bin/sh\ninput=$(cat)\ntoken=$(printf '%s' \"$input\" | jq -r .params.token)\necho \"stderr $token\" >&2\njq -cn --arg m \"set $token\" '{changed: true, message: $m}'\n";
    let dir = executors("exec-secret", "leaky", script);
    let root = TempRoot::new("custom-secret");
    let b = bundle(vec![res(
        "leaky",
        "custom",
        json!({"executor": "leaky", "private_params": {"token": marker("app/token")}}),
    )]);
    let r = run(&b, &secrets(&[("app/token", "EXECUTOR-CANARY")]), &with_executors(root.path(), &dir));
    assert_eq!(r.results[0].status, ResourceStatus::Changed, "{:?}", r.results[0]);
    assert!(r.results[0].diff.starts_with("set "), "{}", r.results[0].diff);
    assert_no_canary(&r, "EXECUTOR-CANARY");
}

#[test]
fn an_executor_past_its_time_is_killed_with_its_whole_process_group() {
    let pid_file = TempRoot::new("exec-slow-pid");
    let script = format!("#!/bin/sh\nsleep 300 &\necho $! > {}\nwait\n", pid_file.join("child").display());
    let dir = executors("exec-slow", "slow", &script);
    let root = TempRoot::new("custom-slow");
    let b = bundle(vec![res("slow", "custom", json!({"executor": "slow", "timeout": "1"}))]);
    let r = run(&b, &secrets(&[]), &with_executors(root.path(), &dir));
    assert!(r.results[0].error.contains("killed with its process group"), "{:?}", r.results[0]);
    let child = fs::read_to_string(pid_file.join("child")).unwrap();
    // SIGKILL went to the whole group; the kernel takes a moment to finish the child off.
    let gone = || {
        let status = fs::read_to_string(format!("/proc/{}/status", child.trim())).unwrap_or_default();
        status.is_empty() || status.contains("State:\tZ")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(gone(), "the background child of the killed executor is gone");
}

#[test]
fn only_trusted_executors_run_and_a_bad_answer_fails() {
    let dir = executors("exec-trust", "ok", "#!/bin/sh\necho '{\"changed\": false}'\n");
    install(&dir, "loose", "#!/bin/sh\necho '{\"changed\": false}'\n");
    fs::set_permissions(dir.join("loose"), fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(dir.join("ok"), dir.join("link")).unwrap();
    install(&dir, "garbage", "#!/bin/sh\necho 'not json'\n");
    install(&dir, "vague", "#!/bin/sh\necho '{\"message\": \"?\"}'\n");
    let root = TempRoot::new("custom-trust");
    let b = bundle(
        ["ok", "loose", "link", "garbage", "vague", "missing"]
            .iter()
            .map(|n| res(n, "custom", json!({"executor": n})))
            .collect(),
    );
    let r = run(&b, &secrets(&[]), &with_executors(root.path(), &dir));
    assert_eq!(r.result("ok").unwrap().status, ResourceStatus::Unchanged, "{:?}", r.result("ok"));
    for (name, why) in [
        ("loose", "writable by nobody else"),
        ("link", "no symlink"),
        ("garbage", "without a JSON object"),
        ("vague", "without \"changed\""),
        ("missing", "is not installed on this host"),
    ] {
        let x = r.result(name).unwrap();
        assert_eq!(x.status, ResourceStatus::Failed, "{name}: {x:?}");
        assert!(x.error.contains(why), "{name}: {}", x.error);
    }
    // A directory others may write to makes every executor in it untrusted.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let r = run(
        &bundle(vec![res("ok", "custom", json!({"executor": "ok"}))]),
        &secrets(&[]),
        &with_executors(root.path(), &dir),
    );
    assert!(r.results[0].error.contains("directory owned by root"), "{:?}", r.results[0]);
    // Without an executors directory (the tests' default), nothing runs.
    let r =
        run(&bundle(vec![res("ok", "custom", json!({"executor": "ok"}))]), &secrets(&[]), &opts(root.path()));
    assert!(r.results[0].error.contains("executors directory"));
}
