use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

const CANARY: &str = "canary-7f3e-exec-secret";

fn exec(name: &str, attrs: Value) -> CompiledResource {
    res(name, "exec", attrs)
}

/// The first output line of a command that printed its secret_file path first.
fn printed_path(r: &ResourceResult) -> PathBuf {
    let line = r.output.lines().next().unwrap_or_else(|| panic!("no output: {r:?}"));
    assert!(line.contains("vigo-secret-"), "{line}");
    PathBuf::from(line.trim())
}

#[test]
fn exec_secret_echoed_to_stdout_and_stderr_and_by_a_failing_command_is_scrubbed_from_the_report() {
    let root = TempRoot::new("execcanary");
    let m = marker("vigo/app/token");
    let b = bundle(vec![
        exec("stdout", json!({"command": "cat", "stdin": m})),
        exec("stderr", json!({"command": "sh -c 'cat {{secret_file}} >&2'", "secret_file": m})),
        exec(
            "fails",
            json!({"command": "sh -c 'cat; echo; cat {{secret_file}}; exit 3'", "stdin": m, "secret_file": m}),
        ),
    ]);
    let r = run(&b, &secrets(&[("vigo/app/token", CANARY)]), &opts(root.path()));
    assert_eq!(statuses(&r)[..2], [("stdout".to_string(), "changed"), ("stderr".to_string(), "changed")]);
    let failed = r.result("fails").unwrap();
    assert_eq!(failed.status, ResourceStatus::Failed);
    assert!(failed.error.contains("exited with status 3"), "{}", failed.error);
    for x in &r.results {
        // The output was captured (so the scrubber had something to do) and redacted.
        assert!(x.output.contains("[REDACTED secret:vigo/app/token]"), "{}: {:?}", x.name, x.output);
    }
    assert_eq!(failed.output.matches("[REDACTED").count(), 2);
    assert_no_canary(&r, CANARY);
}

#[test]
fn exec_secret_file_is_0600_and_removed_after_success_failure_and_timeout() {
    let root = TempRoot::new("secretfile");
    let m = marker("vigo/deploy/key");
    let b = bundle(vec![
        exec(
            "ok",
            json!({"command": "sh -c 'echo {{secret_file}}; stat -c %a {{secret_file}}'", "secret_file": m}),
        ),
        exec("fail", json!({"command": "sh -c 'echo {{secret_file}}; exit 1'", "secret_file": m})),
        exec(
            "slow",
            json!({"command": "sh -c 'echo {{secret_file}}; sleep 30'", "secret_file": m, "timeout": "1"}),
        ),
    ]);
    let t = Instant::now();
    let r = run(&b, &secrets(&[("vigo/deploy/key", CANARY)]), &opts(root.path()));
    assert!(t.elapsed() < Duration::from_secs(15), "the timeout killed the child");
    assert_eq!(statuses(&r).iter().map(|s| s.1).collect::<Vec<_>>(), ["changed", "failed", "failed"]);
    assert_eq!(r.results[0].output.lines().nth(1), Some("600"));
    assert!(r.results[2].error.contains("timed out after 1s"), "{}", r.results[2].error);
    for x in &r.results {
        let p = printed_path(x);
        assert!(!p.exists(), "{}: secret file {} left behind", x.name, p.display());
    }
}

#[test]
fn exec_child_has_clean_env_and_only_fds_0_1_2() {
    let root = TempRoot::new("cleanenv");
    std::env::set_var("VIGO_TEST_LEAKY_VAR", "should-not-be-inherited");
    // A descriptor opened without O_CLOEXEC: the engine must still not pass it on.
    let leaky =
        nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDONLY, nix::sys::stat::Mode::empty()).unwrap();
    let b = bundle(vec![
        exec("env", json!({"command": "env"})),
        // `; true` keeps sh from exec'ing ls, so ls lists the shell's descriptors, not its own.
        exec("fds", json!({"command": "sh -c 'ls /proc/$$/fd; true'"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    let _ = nix::unistd::close(leaky);
    let mut env: Vec<&str> = r.results[0].output.lines().collect();
    env.sort();
    assert_eq!(
        env,
        ["HOME=/root", "LANG=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    );
    let fds: Vec<&str> = r.results[1].output.lines().collect();
    assert_eq!(fds, ["0", "1", "2"], "leaky fd was {leaky}");
}

#[test]
fn exec_runs_without_a_shell_when_none_is_needed() {
    let root = TempRoot::new("noshell");
    let b = bundle(vec![exec("p", json!({"command": "printf %s 'a b' \"c d\" $HOME"}))]);
    // `$HOME` makes it a shell command; without it the words are passed verbatim.
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].output, "a bc d/root");
    let b = bundle(vec![exec("p", json!({"command": "printf [%s] 'a b' \"c d\""}))]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].output, "[a b][c d]", "brackets force a shell, quotes still group");
    let b = bundle(vec![exec("p", json!({"command": "printf %s- 'a b' c"}))]);
    assert_eq!(run(&b, &secrets(&[]), &opts(root.path())).results[0].output, "a b-c-");
}

#[test]
fn exec_guards_make_it_idempotent() {
    let root = TempRoot::new("guards");
    fs::create_dir_all(root.join("etc")).unwrap();
    let r_path = root.path().display().to_string();
    let b = bundle(vec![
        exec("creates", json!({"command": format!("touch {r_path}/etc/created"), "creates": "/etc/created"})),
        exec(
            "unless",
            json!({"command": format!("touch {r_path}/etc/u"), "unless": format!("test -e {r_path}/etc/u")}),
        ),
        exec(
            "onlyif",
            json!({"command": format!("touch {r_path}/etc/o"), "onlyif": format!("test ! -e {r_path}/etc/o")}),
        ),
        exec("cwd", json!({"command": "touch here", "cwd": "/etc", "creates": "/etc/here"})),
    ]);
    let first = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&first, ResourceStatus::Changed);
    assert!(root.join("etc/here").exists(), "cwd resolved inside the root");
    let second = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&second, ResourceStatus::Unchanged);
    let mut o = opts(root.path());
    o.noop = true;
    fs::remove_file(root.join("etc/created")).unwrap();
    let r = run(&b, &secrets(&[]), &o);
    assert_eq!(r.results[0].status, ResourceStatus::WouldChange);
    assert!(!root.join("etc/created").exists(), "noop does not run the command");
}

#[test]
fn exec_when_changed_runs_only_when_notified_or_triggered() {
    let root = TempRoot::new("whenchanged");
    fs::create_dir_all(root.join("etc")).unwrap();
    let log = root.join("ran.log");
    let mut reload = exec("reload", json!({"command": format!("sh -c 'echo ran >> {}'", log.display())}));
    reload.when = Some("changed".into());
    let mut conf = res("conf", "file", json!({"target_path": "/etc/app.conf", "content": "v1"}));
    conf.notify = vec!["reload".into()];
    let b = bundle(vec![reload, conf]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(statuses(&r), [("conf".to_string(), "changed"), ("reload".to_string(), "changed")]);
    assert!(r.result("reload").unwrap().diff.contains("notified by conf"));
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&r, ResourceStatus::Unchanged);
    let mut o = opts(root.path());
    o.triggered.insert("reload".into());
    let r = run(&b, &secrets(&[]), &o);
    assert_eq!(r.result("reload").unwrap().status, ResourceStatus::Changed);
    assert_eq!(fs::read_to_string(&log).unwrap(), "ran\nran\n");
}

#[test]
fn a_missing_cwd_is_named_in_the_error() {
    let root = TempRoot::new("execcwd");
    let r = run(
        &bundle(vec![exec("x", json!({"command": "true", "cwd": "/nonexist"}))]),
        &secrets(&[]),
        &opts(root.path()),
    );
    assert!(
        r.results[0].error.contains("working directory") && r.results[0].error.contains("/nonexist"),
        "{:?}",
        r.results[0]
    );
}

#[test]
fn a_cwd_that_is_a_symlink_out_of_the_root_is_refused() {
    let root = TempRoot::new("execcwdlink");
    let outside = TempRoot::new("execcwdlink-outside");
    std::os::unix::fs::symlink(outside.path(), root.join("esc")).unwrap();
    let command = format!("touch {}/ran", root.path().display());
    for cwd in ["/esc", "/esc/sub"] {
        let r = run(
            &bundle(vec![exec("x", json!({"command": command, "cwd": cwd}))]),
            &secrets(&[]),
            &opts(root.path()),
        );
        assert!(r.results[0].error.contains("refusing to follow it"), "{cwd}: {:?}", r.results[0]);
    }
    assert!(!root.join("ran").exists());
}

#[test]
fn an_overlong_timeout_is_refused_without_running_anything() {
    let root = TempRoot::new("exectimeout");
    let stamp = root.join("ran");
    let command = format!("touch {}", stamp.display());
    let attrs =
        json!({"command": command, "timeout": "9223372036854775807", "secret_file": marker("vigo/x")});
    let r = run(&bundle(vec![exec("long", attrs)]), &secrets(&[("vigo/x", CANARY)]), &opts(root.path()));
    assert_eq!(r.results[0].status, ResourceStatus::Failed);
    assert!(r.results[0].error.contains("from 1 to 86400"), "{:?}", r.results[0]);
    assert!(!stamp.exists());
}

#[test]
fn exec_dangerous_command_is_blocked_and_secret_in_command_refused() {
    let root = TempRoot::new("execguard");
    let b = bundle(vec![
        // Harmless if it ever ran, but shaped like a fork bomb.
        exec("bomb", json!({"command": "f(){ f|f& };true"})),
        exec("argv", json!({"command": format!("echo {}", marker("vigo/x"))})),
    ]);
    let r = run(&b, &secrets(&[("vigo/x", CANARY)]), &opts(root.path()));
    assert_eq!(r.results[0].status, ResourceStatus::Failed);
    assert_eq!(r.results[0].guardrail.as_deref(), Some("dangerous-command:fork-bomb"));
    assert!(r.results[1].error.contains("process list"), "{}", r.results[1].error);
    assert_no_canary(&r, CANARY);
}

#[test]
fn when_comparisons_use_resolved_values_and_always_runs() {
    let root = TempRoot::new("whencmp");
    let log = root.join("ran.log");
    let step = |name: &str, when: String| {
        let mut e = exec(name, json!({"command": format!("sh -c 'echo {name} >> {}'", log.display())}));
        e.when = Some(when);
        e
    };
    let flag = marker("vigo/flag");
    let b = bundle(vec![
        step("eq-true", format!("{flag} == on")),
        step("eq-false", format!("{flag} == off")),
        step("ne-true", format!("{flag} != off")),
        step("always", "always".into()),
        step("plain", "prod == prod".into()),
    ]);
    // A value holding the operator must not move it: the split happens before substitution.
    let r = run(&b, &secrets(&[("vigo/flag", "on")]), &opts(root.path()));
    assert_eq!(r.status, RunStatus::Changed, "{r:?}");
    assert_eq!(fs::read_to_string(&log).unwrap(), "eq-true\nne-true\nalways\nplain\n");
    let skipped = r.result("eq-false").unwrap();
    assert_eq!(skipped.status, ResourceStatus::Unchanged);
    assert!(skipped.diff.starts_with("not run: its when: "), "{skipped:?}");
    let r = run(&b, &secrets(&[("vigo/flag", "x == x")]), &opts(root.path()));
    assert_eq!(r.result("eq-true").unwrap().status, ResourceStatus::Unchanged);
    let mut bad = bundle(vec![step("odd", "sometimes".into())]);
    bad.resources[0].when = Some("sometimes".into());
    let r = run(&bad, &secrets(&[]), &opts(root.path()));
    assert!(r.results[0].error.contains("unsupported when"), "{:?}", r.results[0]);
}

/// Output is bounded twice — by what the agent captures (128 KiB) and by what a report carries
/// (64 KiB) — and a value split by either cut must not leak its beginning.
#[test]
fn a_secret_split_by_an_output_limit_leaves_no_beginning_in_the_report() {
    let root = TempRoot::new("execcut");
    let m = marker("vigo/app/token");
    let mut resources = Vec::new();
    // Filler so the secret starts a few bytes before each limit.
    for (name, before) in [("report-cut", 64 * 1024 - 7), ("capture-cut", 128 * 1024 - 7)] {
        let command = format!("sh -c 'head -c {before} /dev/zero | tr \"\\0\" x; cat; cat'");
        resources.push(exec(name, json!({"command": command, "stdin": m})));
    }
    let r = run(&bundle(resources), &secrets(&[("vigo/app/token", CANARY)]), &opts(root.path()));
    for x in &r.results {
        assert_eq!(x.status, ResourceStatus::Changed, "{x:?}");
        assert!(x.output.len() <= 64 * 1024 + 64, "{}: {} bytes", x.name, x.output.len());
        let kept = x
            .output
            .trim_end_matches("\n[truncated at 64 KiB]")
            .trim_end_matches("\n[output truncated at 128 KiB]");
        let tail = kept.trim_start_matches('x');
        assert!(!tail.contains("canary") && !tail.starts_with('c'), "{}: {tail:?}", x.name);
        assert!(x.output.ends_with("\n[truncated at 64 KiB]"), "{}", x.name);
    }
    assert_no_canary(&r, &CANARY[..7]);
}

#[test]
fn exec_user_environment_and_returns_apply_to_the_command_and_its_guards() {
    let dir = TempRoot::new("exec-user");
    let out = dir.join("who");
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let record = format!("sh -c 'echo \"$(id -u):$(id -G):$GREETING:$HOME\" > {}'", out.display());
    let b = bundle(vec![res(
        "as-nobody",
        "exec",
        json!({"command": record, "user": "nobody", "environment": ["GREETING=hi there"]}),
    )]);
    let r = run(&b, &secrets(&[]), &opts(Path::new("/")));
    assert_all(&r, ResourceStatus::Changed);
    let seen = std::fs::read_to_string(&out).unwrap();
    let nogroup = tool("id", &["-g", "nobody"], None, "coreutils").trim().to_string();
    assert_eq!(seen.trim(), format!("65534:{nogroup}:hi there:/nonexistent"), "no supplementary root group");

    // The guard runs as the same user with the same environment: it sees itself as nobody.
    let guarded = bundle(vec![res(
        "guarded",
        "exec",
        json!({"command": "false", "user": "nobody", "environment": ["MARK=1"], "unless": "sh -c 'test \"$(id -u)$MARK\" = 655341'"}),
    )]);
    assert_all(&run(&guarded, &secrets(&[]), &opts(Path::new("/"))), ResourceStatus::Unchanged);

    let codes = |code: u8| {
        bundle(vec![res(
            "codes",
            "exec",
            json!({"command": format!("sh -c 'exit {code}'"), "returns": ["0", "3"]}),
        )])
    };
    assert_all(&run(&codes(3), &secrets(&[]), &opts(Path::new("/"))), ResourceStatus::Changed);
    let r = run(&codes(4), &secrets(&[]), &opts(Path::new("/")));
    assert!(r.results[0].error.contains("exited with status 4"), "{:?}", r.results[0]);

    let ghost = bundle(vec![res("ghost", "exec", json!({"command": "true", "user": "no-such-user-here"}))]);
    assert!(run(&ghost, &secrets(&[]), &opts(Path::new("/"))).results[0].error.contains("does not exist"));
    let secret_env = bundle(vec![res(
        "leak",
        "exec",
        json!({"command": "true", "environment": [format!("PW={}", marker("app/pw"))]}),
    )]);
    let r = run(&secret_env, &secrets(&[("app/pw", "ENV-CANARY")]), &opts(Path::new("/")));
    assert!(r.results[0].error.contains("refers to a secret"), "{:?}", r.results[0]);
}
