//! `vigo-agent apply` (masterless) through the real binary: secrets only from a local vault,
//! noop, the run lock, and a `kill -9` in the middle of an apply.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn write_tree(dir: &Path, module: &str) {
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    std::fs::write(dir.join("nodes.vgo"), "envoys:\n  - match: \"*\"\n    roles: [app]\n").unwrap();
    std::fs::write(dir.join("modules/app.vgo"), module).unwrap();
}

const WITH_SECRET: &str = r#"
resources:
  - name: dir
    type: directory
    target_path: /etc/app
  - name: conf
    type: file
    target_path: /etc/app/app.conf
    content: "token={{ .Vars.token }}\n"
    depends_on: [dir]
vars:
  token: "secret:app/token"
"#;

fn apply(agent_base: &Path, config: &Path, root: &Path, extra: &[&str]) -> std::process::Output {
    let mut args =
        vec!["apply", config.to_str().unwrap(), "--envoy", "host1", "--root", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_in(agent_base, "vigo-agent", &args, "")
}

/// Starts an apply in the background (for lock and kill tests).
fn spawn_apply(agent_base: &Path, config: &Path, root: &Path) -> std::process::Child {
    Command::new(role("vigo-agent"))
        .args(["apply", config.to_str().unwrap(), "--envoy", "h", "--root", root.to_str().unwrap()])
        .env("VIGO_BASE_DIR", agent_base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn masterless_apply_resolves_secrets_only_from_a_local_vault() {
    let t = TempDir::new("masterless");
    let (config, root) = (t.join("config"), t.join("root"));
    write_tree(&config, WITH_SECRET);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    // No vault under the base dir: refused, nothing written.
    let out = apply(&t.join("empty-base"), &config, &root, &[]);
    assert_code(&out, 3);
    assert!(text(&out).contains("no vault is readable"), "{}", text(&out));
    assert!(!root.join("etc/app").exists());
    // With a vault: applied, then idempotent.
    let base = t.join("base");
    init_unlocked_vault(&base, "masterless passphrase");
    assert_code(&run_in(&base, "vigocli", &["secrets", "set", "raw", "app/token"], "tok-123"), 0);
    let out = apply(&base, &config, &root, &[]);
    assert_code(&out, 0);
    assert_eq!(std::fs::read_to_string(root.join("etc/app/app.conf")).unwrap(), "token=tok-123\n");
    assert!(!text(&out).contains("tok-123"));
    let out = apply(&base, &config, &root, &[]);
    assert_code(&out, 0);
    assert!(text(&out).contains("0 changed"), "{}", text(&out));
    // A vault that is there but unusable says why, as vigocli would.
    let key = base.join("secrets/.master.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = apply(&base, &config, &root, &[]);
    assert_code(&out, 3);
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));
}

#[test]
fn noop_over_a_drifted_root_changes_no_byte() {
    let t = TempDir::new("noop");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    let mut module =
        String::from("resources:\n  - name: dir\n    type: directory\n    target_path: /srv/site\n");
    for i in 0..20 {
        module.push_str(&format!(
            "  - name: f{i}\n    type: file\n    target_path: /srv/site/f{i}\n    content: \"file {i}\\n\"\n    mode: \"0644\"\n    depends_on: [dir]\n"
        ));
    }
    write_tree(&config, &module);
    std::fs::create_dir_all(root.join("srv")).unwrap();
    assert_code(&apply(&base, &config, &root, &[]), 0);
    for i in (0..20).step_by(3) {
        std::fs::write(root.join(format!("srv/site/f{i}")), "drifted\n").unwrap();
    }
    let snapshot: Vec<(PathBuf, Vec<u8>)> =
        files_under(&root).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
    let out = apply(&base, &config, &root, &["--noop"]);
    assert_code(&out, 0);
    assert!(
        text(&out).contains("run would change (noop): 21 resources, 14 unchanged, 0 changed, 7 would change"),
        "{}",
        text(&out)
    );
    for (p, bytes) in snapshot {
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "noop changed {}", p.display());
    }
}

/// `--root` must name an existing directory: a missing one is a usage error, not a config
/// problem about some parent directory.
#[test]
fn a_missing_or_empty_root_is_a_usage_error() {
    let t = TempDir::new("badroot");
    let (config, base) = (t.join("config"), t.join("base"));
    write_tree(&config, "resources:\n  - {name: d, type: directory, target_path: /srv/d}\n");
    let missing = t.join("no-such-root");
    for (root, says) in [("", "--root is empty"), (missing.to_str().unwrap(), "is not an existing directory")]
    {
        let args = ["apply", config.to_str().unwrap(), "--envoy", "h", "--root", root];
        let out = run_in(&base, "vigo-agent", &args, "");
        assert_code(&out, 2);
        assert!(text(&out).contains(says), "{root:?}: {}", text(&out));
    }
    assert!(!missing.exists());
    // So are a missing config directory and an envoy name no envoy could have.
    let root = t.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let absent = t.join("no-such-config");
    for (config, envoy, says) in [
        (absent.to_str().unwrap(), "h", "is not a directory"),
        (config.to_str().unwrap(), "", "invalid envoy name"),
        (config.to_str().unwrap(), "bad name/../x", "invalid envoy name"),
    ] {
        let args = ["apply", config, "--envoy", envoy, "--root", root.to_str().unwrap()];
        let out = run_in(&base, "vigo-agent", &args, "");
        assert_code(&out, 2);
        assert!(text(&out).contains(says), "{config} {envoy:?}: {}", text(&out));
    }
}

/// A typo in --envoy must not pass for "converged: 0 resources".
#[test]
fn an_envoy_name_no_entry_matches_is_an_error_that_changes_nothing() {
    let t = TempDir::new("nomatch");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    write_tree(&config, "resources:\n  - {name: d, type: directory, target_path: /srv/d}\n");
    // Only web* hosts have an entry; the test applies as host1.
    std::fs::write(config.join("nodes.vgo"), "envoys:\n  - match: \"web*\"\n    roles: [app]\n").unwrap();
    std::fs::create_dir_all(&root).unwrap();
    let out = apply(&base, &config, &root, &[]);
    assert_code(&out, 1);
    assert!(text(&out).contains("matches \"host1\"; check --envoy"), "{}", text(&out));
    assert!(files_under(&root).is_empty() && !root.join("srv").exists());
}

#[test]
fn a_second_run_is_refused_while_the_lock_is_held() {
    let t = TempDir::new("lock");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    write_tree(
        &config,
        "resources:\n  - name: slow\n    type: exec\n    command: \"sleep 8\"\n    creates: /done\n",
    );
    std::fs::create_dir_all(&root).unwrap();
    let mut first = spawn_apply(&base, &config, &root);
    // Its command runs once it holds the lock.
    wait_for("the first apply's command", Duration::from_secs(30), || has_child(first.id()));
    let second = apply(&base, &config, &root, &[]);
    assert_code(&second, 1);
    assert!(
        text(&second).contains(&first.id().to_string()),
        "lock message should name the holder: {}",
        text(&second)
    );
    assert!(first.wait().unwrap().success());
}

/// Whether some process has `pid` as its parent (/proc/PID/stat: "pid (comm) state ppid ...").
fn has_child(pid: u32) -> bool {
    let pid = pid.to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .is_some_and(|p| p == pid)
        })
    })
}

#[test]
fn kill_9_mid_apply_leaves_no_half_written_file_and_the_next_run_converges() {
    let t = TempDir::new("kill9");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    let body = "x".repeat(64 * 1024);
    let mut module = format!(
        "vars:\n  body: \"{body}\"\nresources:\n  - name: dir\n    type: directory\n    target_path: /data\n"
    );
    for i in 0..300 {
        module.push_str(&format!(
            "  - name: f{i}\n    type: file\n    target_path: /data/f{i}\n    content: \"{{{{ .Vars.body }}}}\"\n    depends_on: [dir]\n"
        ));
    }
    write_tree(&config, &module);
    std::fs::create_dir_all(&root).unwrap();
    // A kill that lands while written files wait in temps for their rename; its temps stay
    // for the next run to sweep.
    let mut interrupted = false;
    for delay_ms in [20u64, 40, 80, 160, 320, 640, 1280, 60, 120, 240, 2500, 5000] {
        let _ = std::fs::remove_dir_all(root.join("data"));
        let mut child = spawn_apply(&base, &config, &root);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let still_running = child.try_wait().unwrap().is_none();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Every target file present is complete: old content or new, never a prefix.
        let (temps, targets): (Vec<PathBuf>, Vec<PathBuf>) = files_under(&root.join("data"))
            .into_iter()
            .partition(|f| f.file_name().unwrap().to_string_lossy().starts_with('.'));
        for f in &targets {
            let name = f.file_name().unwrap().to_string_lossy();
            assert_eq!(std::fs::metadata(f).unwrap().len(), body.len() as u64, "{name} is half-written");
        }
        if still_running && !temps.is_empty() {
            interrupted = true;
            break;
        }
    }
    assert!(interrupted, "no kill landed in the middle of an apply; the test proved nothing");
    let out = apply(&base, &config, &root, &[]);
    assert_code(&out, 0);
    for i in 0..300 {
        assert_eq!(std::fs::metadata(root.join(format!("data/f{i}"))).unwrap().len(), body.len() as u64);
    }
    // The killed runs' temp files are gone: the converging run swept them.
    let leftovers = files_under(&root.join("data")).len() - 300;
    assert_eq!(leftovers, 0, "stray temp files survive the next run");
    let out = apply(&base, &config, &root, &[]);
    assert!(text(&out).contains("0 changed"), "{}", text(&out));
}

/// systemd stops the agent with SIGTERM, Ctrl-C sends SIGINT: either stops the command that is
/// running (and removes its secret_file), skips what has not started, and reports the run.
#[test]
fn a_stop_signal_stops_the_running_command_removes_its_secret_file_and_skips_the_rest() {
    let t = TempDir::new("sigterm");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    std::fs::create_dir_all(&root).unwrap();
    let module = r#"
resources:
  - name: slow
    type: exec
    command: "echo {{secret_file}} > ROOT/secret-path; echo $$ > ROOT/pid.tmp; mv ROOT/pid.tmp ROOT/pid; exec sleep 60"
    secret_file: "secret:app/token"
  - name: later
    type: file
    target_path: /later
    content: "x\n"
    depends_on: [slow]
  - name: unrelated
    type: file
    target_path: /unrelated
    content: "y\n"
"#;
    write_tree(&config, &module.replace("ROOT", root.to_str().unwrap()));
    init_unlocked_vault(&base, "signal passphrase");
    assert_code(&run_in(&base, "vigocli", &["secrets", "set", "raw", "app/token"], "tok-sig"), 0);
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let _ = std::fs::remove_file(root.join("pid"));
        let args = ["apply", config.to_str().unwrap(), "--envoy", "h", "--root", root.to_str().unwrap()];
        let child = spawn_role("vigo-agent", &base, &args, "", &[]);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !root.join("pid").exists() {
            assert!(std::time::Instant::now() < deadline, "the exec never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let secret_file = PathBuf::from(std::fs::read_to_string(root.join("secret-path")).unwrap().trim());
        let sleeper = std::fs::read_to_string(root.join("pid")).unwrap().trim().to_string();
        assert!(secret_file.exists(), "{}", secret_file.display());
        let kill = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
        assert!(kill.unwrap().success());
        let out = child.wait_with_output().unwrap();
        assert_code(&out, code);
        let shown = text(&out);
        assert!(shown.contains(&format!("stopped: the agent received SIG{signal}")), "{shown}");
        assert!(shown.contains(&format!("not run: the agent received SIG{signal}")), "{shown}");
        assert!(!secret_file.exists(), "the secret_file outlived the {signal}");
        assert!(!Path::new(&format!("/proc/{sleeper}")).exists(), "the command outlived the {signal}");
        assert!(!root.join("later").exists());
    }
}

/// The report printed by apply carries what the operator needs at the terminal: every changed
/// attribute, the diff lines, and the end of a failed command's output.
#[test]
fn the_printed_report_shows_every_change_and_a_failed_commands_output() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("printed");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    let module = r#"
resources:
  - name: motd
    type: file
    target_path: /etc/motd
    content: "new words\n"
    mode: "0600"
  - name: migrate
    type: exec
    command: "printf 'step one\nstep two\n'; echo 'boom: table missing' >&2; exit 3"
"#;
    write_tree(&config, module);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), "old words\n").unwrap();
    std::fs::set_permissions(root.join("etc/motd"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = apply(&base, &config, &root, &[]);
    assert_code(&out, 1);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    for expected in [
        "-old words",
        "+new words",
        "mode 0644 -> 0600",
        "exited with status 3",
        "output:",
        "boom: table missing",
    ] {
        assert!(shown.contains(expected), "{expected:?} missing from:\n{shown}");
    }
    assert!(shown.contains("2 resources, 0 unchanged, 1 changed, 0 would change, 1 failed"), "{shown}");
}

/// Rotation is tracked by the server; masterless, `watch_secret` + `when: changed` can only
/// fire when notified, and apply says so instead of silently never running it.
#[test]
fn masterless_apply_warns_that_watch_secret_with_when_changed_cannot_fire_on_rotation() {
    let t = TempDir::new("watchwarn");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    let module = r#"
resources:
  - name: reload
    type: exec
    command: "cat"
    stdin: "secret:app/token"
    watch_secret: ["app/token"]
    when: changed
  - name: plain
    type: exec
    command: "true"
    when: changed
"#;
    write_tree(&config, module);
    std::fs::create_dir_all(&root).unwrap();
    init_unlocked_vault(&base, "watch passphrase");
    assert_code(&run_in(&base, "vigocli", &["secrets", "set", "raw", "app/token"], "tok-w"), 0);
    let out = apply(&base, &config, &root, &[]);
    assert_code(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: exec[reload] watches secret:app/token with `when: changed`, but masterless apply does not track secret rotation"),
        "{stderr}"
    );
    assert!(!stderr.contains("exec[plain]"), "only watchers are named: {stderr}");
}

/// A target root inside the agent's own directory would let user, package and service
/// resources write there: refused before anything runs.
#[test]
fn a_root_inside_the_agent_state_directory_is_refused() {
    let t = TempDir::new("rootinbase");
    let (config, base) = (t.join("config"), t.join("base"));
    write_tree(&config, "resources:\n  - {name: g, type: group, groupname: ops}\n");
    let root = base.join("images/one");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let out = apply(&base, &config, &root, &[]);
    assert_code(&out, 3);
    assert!(text(&out).contains("protected-path:"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(root.join("etc/group")).unwrap(), "root:x:0:\n");
}

/// `backup: true` through the real binary, and `vigo-agent restore` putting an earlier content
/// back (keeping the replaced one, so the restore itself can be undone) with an audit row.
#[test]
fn restore_puts_back_an_earlier_content_kept_by_backup() {
    let t = TempDir::new("restore");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/app.conf"), "hand-written\n").unwrap();
    let module = |content: &str| {
        format!(
            "resources:\n  - name: conf\n    type: file\n    target_path: /etc/app.conf\n    content: \"{content}\\n\"\n    backup: true\n    mode: \"0640\"\n"
        )
    };
    write_tree(&config, &module("managed"));
    let out = apply(&base, &config, &root, &[]);
    assert_code(&out, 0);
    assert!(text(&out).contains("earlier content kept"), "{}", text(&out));
    let file = root.join("etc/app.conf");
    let path = file.to_str().unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "managed\n");

    let list = run_in(&base, "vigo-agent", &["restore", path, "--list"], "");
    assert_code(&list, 0);
    assert!(text(&list).contains("  1  ") && text(&list).contains("13 bytes"), "{}", text(&list));
    let out = run_in(&base, "vigo-agent", &["restore", path, "--version", "9"], "");
    assert_code(&out, 2);
    assert!(text(&out).contains("versions 1 (newest) to 1"), "{}", text(&out));

    let out = run_in(&base, "vigo-agent", &["restore", path], "");
    assert_code(&out, 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hand-written\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o640, "mode kept");
    // The managed content it replaced is now the newest kept version: undo the restore.
    let out = run_in(&base, "vigo-agent", &["restore", path, "--version", "1"], "");
    assert_code(&out, 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "managed\n");
    let nothing = run_in(&base, "vigo-agent", &["restore", root.join("etc/other").to_str().unwrap()], "");
    assert_code(&nothing, 1);
    assert!(text(&nothing).contains("backup: true"), "{}", text(&nothing));

    let audit = rusqlite::Connection::open(base.join("agent.db")).unwrap();
    let restored: i64 = audit
        .query_row("SELECT count(*) FROM audit WHERE action = 'file.restored'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(restored, 2);
}

/// A sysctl in a network namespace the test makes (`unshare --net`), so the host's own value
/// is never touched: the file lands in the root, the live value in the namespace's kernel
/// state, a second run changes nothing, and the host outside keeps its value.
#[test]
fn sysctl_sets_the_file_and_the_live_value_in_a_private_network_namespace() {
    let t = TempDir::new("sysctl");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    std::fs::create_dir_all(root.join("etc/sysctl.d")).unwrap();
    write_tree(
        &config,
        "resources:\n  - name: ttl\n    type: sysctl\n    key: net.ipv4.ip_default_ttl\n    value: 77\n",
    );
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap();
    let agent = role("vigo-agent");
    let script = format!(
        "cat /proc/sys/net/ipv4/ip_default_ttl; for i in 1 2; do {agent} apply {config} --envoy h --root {root} || exit 9; done; cat /proc/sys/net/ipv4/ip_default_ttl",
        agent = agent.display(),
        config = config.display(),
        root = root.display()
    );
    let out = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .env("VIGO_BASE_DIR", &base)
        .output()
        .expect("unshare (util-linux) is needed by this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"64"), "a fresh namespace starts at the default: {stdout}");
    assert_eq!(lines.last(), Some(&"77"), "{stdout}");
    assert!(stdout.contains("live net.ipv4.ip_default_ttl: 64 -> 77"), "{stdout}");
    assert!(stdout.contains("converged"), "the second run changed nothing: {stdout}");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/sysctl.d/60-vigo-net.ipv4.ip_default_ttl.conf")).unwrap(),
        "# Managed by Vigo (resource ttl).\nnet.ipv4.ip_default_ttl = 77\n"
    );
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl").unwrap(), host_before);
}

/// A unit file applied on `/` inside a mount namespace whose /etc/systemd/system is a fresh
/// tmpfs (so the host's units are never touched), with a stand-in systemctl first on PATH: the
/// unit is written, systemd is reloaded once when it changed and not when it did not, and a
/// service depending on it is started after the reload.
#[test]
fn a_changed_unit_file_is_followed_by_a_daemon_reload_before_its_service_starts() {
    let t = TempDir::new("unit-reload");
    let (config, base, bin) = (t.join("config"), t.join("base"), t.join("bin"));
    std::fs::create_dir_all(&bin).unwrap();
    let log = t.join("systemctl.log");
    write_executable(
        &bin.join("systemctl"),
        format!(
            "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$1\" in is-active|is-enabled) exit 3;; esac\n[ \"$1\" = start ] && {{ test -e /etc/systemd/system/$2 || exit 5; }}\nexit 0\n",
            log = log.display()
        )
        .as_bytes(),
    );
    write_tree(
        &config,
        "resources:\n  - name: unit\n    type: systemd_unit\n    unit: vigo-demo.service\n    content: \"[Service]\\nExecStart=/bin/true\\n\"\n  - name: svc\n    type: service\n    service: vigo-demo.service\n    ensure: running\n    depends_on: [unit]\n",
    );
    let agent = role("vigo-agent");
    let script = format!(
        "mount -t tmpfs tmpfs /etc/systemd/system || exit 8; for i in 1 2; do {agent} apply {config} --envoy h || exit 9; done; cat /etc/systemd/system/vigo-demo.service",
        agent = agent.display(),
        config = config.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .env("VIGO_BASE_DIR", &base)
        .env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()))
        .output()
        .expect("unshare (util-linux) is needed by this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.ends_with("[Service]\nExecStart=/bin/true\n"), "{stdout}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let acts: Vec<&str> = calls.lines().filter(|l| !l.starts_with("is-")).collect();
    // One reload, then the start; the second run only asks (the stand-in says inactive, so it
    // starts again, but never reloads again).
    assert_eq!(acts, ["daemon-reload", "start vigo-demo.service", "start vigo-demo.service"], "{calls}");
    assert!(
        !std::path::Path::new("/etc/systemd/system/vigo-demo.service").exists(),
        "the host's units are untouched"
    );
}

/// A tmpfs mount applied on `/` inside a mount namespace whose /etc is a private copy (so the
/// host's fstab and mounts are never touched): the fstab line and the mount appear, a second
/// run changes nothing, `unmounted` unmounts and keeps the line, `absent` removes it.
#[test]
fn a_mount_is_an_fstab_line_and_a_mounted_tmpfs_in_a_private_mount_namespace() {
    let t = TempDir::new("mount");
    let (base, etc, point) = (t.join("base"), t.join("etc-copy"), t.join("mnt"));
    std::fs::create_dir_all(&point).unwrap();
    let host_fstab = std::fs::read("/etc/fstab").unwrap_or_default();
    let module = |ensure: &str| {
        format!(
            "resources:\n  - name: scratch\n    type: mount\n    path: {}\n    device: tmpfs\n    fstype: tmpfs\n    options: size=1m,mode=0755\n    ensure: {ensure}\n",
            point.display()
        )
    };
    let agent = role("vigo-agent");
    let mut script = format!(
        "mkdir -p {etc} && cp -a /etc/. {etc}/ && mount --bind {etc} /etc || exit 8\n",
        etc = etc.display()
    );
    for (i, ensure) in ["mounted", "mounted", "unmounted", "absent"].iter().enumerate() {
        let dir = t.join(&format!("config{i}"));
        write_tree(&dir, &module(ensure));
        script += &format!(
            "echo '== {ensure}'; {agent} apply {dir} --envoy h || exit 9; grep -c ' {point} ' /proc/self/mountinfo || true; grep -c '{point}' /etc/fstab || true\n",
            agent = agent.display(),
            dir = dir.display(),
            point = point.display()
        );
    }
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .env("VIGO_BASE_DIR", &base)
        .output()
        .expect("unshare (util-linux) is needed by this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<&str> = stdout.split("== ").skip(1).collect();
    fn counts(step: &str) -> Vec<&str> {
        step.lines().rev().take(2).collect()
    }
    assert!(steps[0].contains(&format!("mounted {}", point.display())), "{}", steps[0]);
    assert_eq!(counts(steps[0]), ["1", "1"], "mounted, and one fstab line: {}", steps[0]);
    assert!(steps[1].contains("converged"), "{}", steps[1]);
    assert_eq!(counts(steps[1]), ["1", "1"]);
    assert!(steps[2].contains(&format!("unmounted {}", point.display())), "{}", steps[2]);
    assert_eq!(counts(steps[2]), ["1", "0"], "unmounted, the line kept: {}", steps[2]);
    assert_eq!(counts(steps[3]), ["0", "0"], "the line removed: {}", steps[3]);
    let fstab = std::fs::read_to_string(etc.join("fstab")).unwrap();
    assert!(!fstab.contains(&point.display().to_string()), "{fstab}");
    assert_eq!(std::fs::read("/etc/fstab").unwrap_or_default(), host_fstab, "the host's fstab is untouched");
}
