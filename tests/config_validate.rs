//! `vigo cli config validate` driven as a real process: exit codes and exact output for golden
//! fixtures under tests/fixtures/config/.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// An empty base dir per test, removed on drop.
struct Base(PathBuf);

impl Base {
    fn new() -> Base {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigo-config-validate-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Base(dir)
    }

    /// A master key with no secrets stored: a vault that exists but is empty.
    fn with_empty_vault(self) -> Base {
        let secrets = self.0.join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
        let key = secrets.join(".master.key");
        std::fs::write(&key, "ab".repeat(32)).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        self
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

fn validate(base: &Base, args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_vigo"))
        .args(["cli", "config", "validate"])
        .args(args)
        .current_dir(fixtures())
        .env("VIGO_BASE_DIR", &base.0)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap().replace(&base.0.display().to_string(), "BASE");
    (out.status.code().unwrap(), text(out.stdout), text(out.stderr))
}

#[test]
fn config_validate_plain_tree_lists_patterns() {
    let (code, out, err) = validate(&Base::new(), &["plain"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["web*: 3 resources", "*: 1 resource"]);
    assert!(lines[2].starts_with("config ok: 2 envoy patterns, content sha256 "), "{out}");
}

#[test]
fn config_validate_default_dir_is_base_config() {
    let base = Base::new();
    let (code, _, err) = validate(&base, &[]);
    assert_eq!(code, 1);
    assert_eq!(err, "BASE/config: no such config directory; check the path or --base-dir\nerror: 1 error in BASE/config\n");
}

#[test]
fn config_validate_load_errors_are_all_printed() {
    let (code, out, err) = validate(&Base::new(), &["bad-load"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "bad-load/modules/app.vgo:7:11: mode 644 is an integer; modes are strings like \"0644\" (quote it)\n\
         bad-load/modules/app.vgo:14:13: `yes` is a boolean in YAML 1.1 but a string here; quote it (\"yes\") if you mean the word, or write true/false\n\
         bad-load/nodes.vgo:4:5: unknown key `colour` in an envoys entry; allowed keys: match, roles, vars, agent_version, traits\n\
         error: 3 errors in bad-load\n"
    );
}

#[test]
fn config_validate_compile_errors_without_a_vault() {
    let (code, _, err) = validate(&Base::new(), &["bad-compile"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "bad-compile/modules/app.vgo:2:10: secret `app/api/token` could not be checked: no vault was found under --base-dir BASE (run `vigocli secrets init`, or point --base-dir at the server's state)\n\
         bad-compile/modules/app.vgo:6:14: exec `command` contains secret:app/api/token; a command line shows in `ps`: use stdin or secret_file to pass secrets\n\
         bad-compile/modules/app.vgo:10:18: depends_on names `missing`, which is not a resource in this envoy's bundle\n\
         bad-compile/modules/app.vgo:11:11: unknown var `stage`; define it under `vars:` in nodes.vgo or in the module\n\
         error: 4 errors in bad-compile\n"
    );
}

#[test]
fn config_validate_seed_against_an_empty_vault_names_each_missing_key() {
    let (code, _, err) = validate(&Base::new().with_empty_vault(), &["seed"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        "seed/modules/database.vgo:19:12: secret `vigo/grafana/admin_password` does not exist in the vault; store it with `vigocli secrets set raw vigo/grafana/admin_password` or fix the name\n\
         seed/modules/database.vgo:26:18: secret `vigo/deploy/key` does not exist in the vault; store it with `vigocli secrets set raw vigo/deploy/key` or fix the name\n\
         seed/nodes.vgo:6:20: secret `vigo/db/password` does not exist in the vault; store it with `vigocli secrets set raw vigo/db/password` or fix the name\n\
         error: 3 errors in seed\n"
    );
}

#[test]
fn config_validate_envoy_prints_the_bundle() {
    let (code, out, err) = validate(&Base::new(), &["plain", "--envoy", "web1"]);
    assert_eq!(code, 0, "{err}");
    let bundle: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(bundle["envoy_name"], "web1");
    let names: Vec<&str> =
        bundle["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["nginx", "site", "nginx-service", "motd"]);
    assert_eq!(bundle["resources"][1]["attributes"]["content"], "listen 8080;\n");
    let (code, out, _) = validate(&Base::new(), &["plain", "--envoy", "mail1"]);
    assert_eq!(code, 0);
    let bundle: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(bundle["resources"].as_array().unwrap().len(), 1, "only the catch-all entry matches");
}

#[test]
fn config_validate_usage_error_exits_2() {
    let (code, _, _) = validate(&Base::new(), &["--bogus"]);
    assert_eq!(code, 2);
}

/// A tree built at run time under the test's base dir: links and FIFOs cannot live in git.
fn tree_in(base: &Base, nodes: &str, modules: &[(&str, &str)]) -> PathBuf {
    let dir = base.0.join("tree");
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    std::fs::write(dir.join("nodes.vgo"), nodes).unwrap();
    for (name, text) in modules {
        std::fs::write(dir.join("modules").join(format!("{name}.vgo")), text).unwrap();
    }
    dir
}

/// `validate` with a deadline: a loader that blocks fails the test instead of hanging it.
fn validate_within(base: &Base, dir: &Path, secs: u64) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigo"))
        .args(["cli", "config", "validate"])
        .arg(dir)
        .env("VIGO_BASE_DIR", &base.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("config validate did not return within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status.code().unwrap(), err.replace(&dir.display().to_string(), "TREE"))
}

const NODES: &str = "envoys:\n  - match: \"*\"\n    roles: [web]\n";
const WEB: &str = "resources:\n  - {name: nginx, type: package, package: nginx}\n";

#[test]
fn config_validate_never_reads_a_file_through_a_symlink() {
    let base = Base::new();
    // Read as YAML, the canary's first line would be named in an "unknown key" error.
    let canary = base.0.join("outside.vgo");
    std::fs::write(&canary, "CANARY-b41d-db-password: hunter2\n").unwrap();
    let dir = tree_in(&base, NODES, &[("web", WEB)]);
    std::os::unix::fs::symlink(&canary, dir.join("modules/db.vgo")).unwrap();
    let (code, err) = validate_within(&base, &dir, 20);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "TREE/modules/db.vgo: is a symbolic link; Vigo reads only plain files inside the config tree, never what a link points to: replace db.vgo with a copy of the file\nerror: 1 error in TREE\n"
    );
    assert!(!err.contains("CANARY") && !err.contains("hunter2"));
}

#[test]
fn config_validate_returns_at_once_when_modules_holds_a_fifo() {
    let base = Base::new();
    let dir = tree_in(&base, NODES, &[("web", WEB)]);
    nix::unistd::mkfifo(&dir.join("modules/queue.vgo"), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .unwrap();
    let start = std::time::Instant::now();
    let (code, err) = validate_within(&base, &dir, 20);
    assert!(start.elapsed() < std::time::Duration::from_secs(15), "{:?}", start.elapsed());
    assert_eq!(code, 1);
    assert!(err.starts_with("TREE/modules/queue.vgo: is a FIFO (named pipe), not a regular file"), "{err}");
}

#[test]
fn config_validate_refuses_deep_nesting_within_a_second_or_two() {
    let base = Base::new();
    let dir = tree_in(&base, NODES, &[("web", &format!("vars:\n  x: {}", "[".repeat(1_000_000)))]);
    let start = std::time::Instant::now();
    let (code, err) = validate_within(&base, &dir, 30);
    assert!(start.elapsed() < std::time::Duration::from_secs(15), "{:?}", start.elapsed());
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "TREE/modules/web.vgo:2:132: nesting is deeper than 128 levels; flatten the structure\nerror: 1 error in TREE\n"
    );
}

#[test]
fn config_validate_names_a_secret_ref_written_inside_a_command() {
    let base = Base::new().with_empty_vault();
    let web = "resources:\n  - name: reset\n    type: exec\n    command: \"tool --password secret:vigo/db/password\"\n";
    let dir = tree_in(&base, NODES, &[("web", web)]);
    let (code, err) = validate_within(&base, &dir, 20);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "TREE/modules/web.vgo:4:14: exec `command` contains `secret:vigo/db/password` inside its text; only a whole value `secret:<key>` is a reference, and a secret may never go on a command line (it shows in `ps`): pass it with `stdin:`, or with `secret_file:` and `{{secret_file}}` in the command\nerror: 1 error in TREE\n"
    );
}
