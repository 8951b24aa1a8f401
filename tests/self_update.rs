//! Agent self-update end to end: a release key, signed releases stamped with the next versions,
//! published on a server that runs a signed binary itself, and agents that each run their own
//! copy. Three agents roll forward; a downgrade, a tampered download and a binary that cannot
//! check in are each refused or rolled back with the old binary still running; kill -9 at any
//! moment of an update leaves a binary that runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::fleet::Fleet;
use common::*;

/// A directory with a (stripped, to keep the suite's disk use down) copy of the binary, its
/// three role links, and its `.sig` once signed.
fn install(dir: &Path, from: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    copy_executable(from, &dir.join("vigo"));
    for role in ["vigosrv", "vigocli", "vigo-agent"] {
        std::os::unix::fs::symlink("vigo", dir.join(role)).unwrap();
    }
    if from.with_extension("sig").exists() || PathBuf::from(format!("{}.sig", from.display())).exists() {
        std::fs::copy(format!("{}.sig", from.display()), dir.join("vigo.sig")).unwrap();
    }
    dir.join("vigo")
}

fn version_of(binary: &Path) -> String {
    use std::os::unix::process::CommandExt;
    // As `vigo`, whatever the file is called (the binary picks its role by that name).
    let out = Command::new(binary).arg0("vigo").arg("--version").output().unwrap();
    assert!(out.status.success(), "{} does not run: {}", binary.display(), text(&out));
    String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("vigo ").to_string()
}

struct Releases {
    f: Fleet,
    keys: PathBuf,
    config: PathBuf,
    base_version: String,
}

impl Releases {
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let out = self.f.cli(&[&["--config", self.config.to_str().unwrap()][..], args].concat(), "");
        assert_code(&out, 0);
        out
    }

    /// A copy of the base binary stamped `version`, signed (as a downgrade if asked).
    fn build(&self, version: &str, downgrade: bool) -> PathBuf {
        let dir = self.f.dir.join(&format!("build-{version}"));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("vigo");
        let stripped = self.f.dir.join("stripped/vigo");
        self.cli(&[
            "release",
            "stamp",
            stripped.to_str().unwrap(),
            "--version",
            version,
            "--out",
            out.to_str().unwrap(),
        ]);
        let key = self.keys.join("release.key");
        let mut sign = vec!["release", "sign", out.to_str().unwrap(), "--key", key.to_str().unwrap()];
        if downgrade {
            sign.push("--allow-downgrade");
        }
        self.cli(&sign);
        out
    }

    fn publish(&self, version: &str) -> PathBuf {
        let bin = self.build(version, false);
        self.cli(&["release", "publish", bin.to_str().unwrap()]);
        bin
    }

    /// nodes.vgo with a default agent version and per-envoy ones, then published.
    fn want(&self, default: &str, per_envoy: &[(&str, &str)]) {
        let mut nodes = format!("defaults:\n  agent_version: \"{default}\"\nenvoys:\n");
        for (envoy, v) in per_envoy {
            nodes.push_str(&format!("  - match: \"{envoy}\"\n    agent_version: \"{v}\"\n"));
        }
        nodes.push_str("  - match: \"*\"\n    roles: [base]\n");
        self.f.write_config(&[("nodes.vgo", &nodes)]);
        self.cli(&["config", "publish"]);
    }

    fn agent_bin(&self, name: &str) -> PathBuf {
        self.f.dir.join(&format!("agent-bin-{name}/vigo"))
    }

    fn run_agent(&self, name: &str, env: &[(&str, &str)]) -> std::process::Output {
        let root = self.f.root(name);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let link = self.agent_bin(name).with_file_name("vigo-agent");
        let env: Vec<(&str, &str)> =
            [("VIGO_CONFIG", self.config.to_str().unwrap())].into_iter().chain(env.iter().copied()).collect();
        spawn_program(
            &link,
            &self.f.agent_base(name),
            &["run", "--once", "--root", root.to_str().unwrap()],
            "",
            &env,
        )
        .wait_with_output()
        .unwrap()
    }

    fn audit(&self, action: &str) -> Vec<String> {
        self.f
            .audit_json()
            .lines()
            .filter(|l| l.contains(&format!("\"{action}\"")))
            .map(String::from)
            .collect()
    }
}

fn setup(tag: &str, agents: &[&str]) -> Releases {
    let f = Fleet::new(tag);
    // One stripped copy of the built binary is the base every install and release starts from.
    let stripped = f.dir.join("stripped/vigo");
    std::fs::create_dir_all(stripped.parent().unwrap()).unwrap();
    let strip = Command::new("strip").arg("-o").arg(&stripped).arg(vigo_exe()).output().unwrap();
    assert!(strip.status.success(), "{}", text(&strip));
    let keys = f.dir.join("keys");
    let config = f.dir.join("vigo.yaml");
    std::fs::write(&config, format!("release:\n  public_key_file: {}\n", keys.join("release.pub").display()))
        .unwrap();
    let base_version = version_of(&stripped);
    let r = Releases { f, keys, config, base_version };
    r.cli(&["release", "keygen", "--out", r.keys.to_str().unwrap()]);
    let key = r.keys.join("release.key");
    r.cli(&["release", "sign", stripped.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    // The server runs a signed copy: with a release key installed its startup gate is closed.
    let server_bin = install(&r.f.dir.join("server-bin"), &stripped);
    let mut r = r;
    r.f.bin_dir = Some(server_bin.parent().unwrap().to_path_buf());
    r.f.server_config = Some(r.config.clone());
    r.f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"*\"\n    roles: [base]\n"),
        (
            "modules/base.vgo",
            "resources:\n  - {name: motd, type: file, target_path: /etc/motd, content: \"managed\\n\"}\n",
        ),
    ]);
    r.f.start_server();
    for name in agents {
        r.f.enroll(name);
        install(&r.f.dir.join(&format!("agent-bin-{name}")), &stripped);
    }
    r
}

#[test]
fn agents_roll_forward_and_every_bad_update_leaves_the_old_binary_running() {
    let r = setup("self-update", &["a1", "a2", "a3"]);
    let base = r.base_version.clone();
    let next = bump(&base, 1);
    r.publish(&next);
    r.want(&next, &[]);

    // Three agents move to the next version: each run updates, re-executes and checks in again.
    for name in ["a1", "a2", "a3"] {
        let out = r.run_agent(name, &[]);
        assert_code(&out, 0);
        assert_eq!(version_of(&r.agent_bin(name)), next, "{name}: {}", text(&out));
        assert_eq!(
            version_of(&r.agent_bin(name).with_file_name("vigo.prev")),
            base,
            "the old binary is kept"
        );
        assert!(std::fs::read_to_string(r.f.root(name).join("etc/motd")).unwrap() == "managed\n");
    }
    assert_eq!(r.audit("release.offered").len(), 3, "{}", r.f.audit_json());
    let updated = r.audit("release.updated");
    assert_eq!(updated.len(), 3, "{}", r.f.audit_json());
    assert!(updated[0].contains(&next) && updated[0].contains(&base), "{}", updated[0]);
    let shown = r.cli(&["envoys", "show", "a1", "-o", "json"]);
    assert!(text(&shown).contains(&format!("signed {next}")), "{}", text(&shown));

    // A lower version not signed as a downgrade is refused; the agent stays where it is.
    // A pre-release of the base version sorts below it, and below `next`.
    let older_version = format!("{base}-rc.1");
    r.publish(&older_version);
    r.want(&next, &[("a1", &older_version)]);
    assert_code(&r.run_agent("a1", &[]), 0);
    assert_eq!(version_of(&r.agent_bin("a1")), next);
    // The refusal reaches the server with the next check-in.
    assert_code(&r.run_agent("a1", &[]), 0);
    let refused = r.audit("release.refused");
    assert!(refused.iter().any(|l| l.contains("not signed as a downgrade")), "{}", r.f.audit_json());

    // A download that does not match its signed manifest (the server's stored copy altered
    // after it checked it, as a compromised mirror would) is refused; a2 keeps running.
    let tampered = bump(&base, 2);
    r.publish(&tampered);
    r.want(&next, &[("a3", &tampered)]);
    assert_code(&r.run_agent("a3", &[]), 0);
    assert_eq!(version_of(&r.agent_bin("a3")), tampered, "the server checked the release once");
    let list: serde_json::Value =
        serde_json::from_slice(&r.cli(&["release", "list", "-o", "json"]).stdout).unwrap();
    let sha = list.as_array().unwrap().iter().find(|x| x["version"] == tampered.as_str()).unwrap()["sha256"]
        .clone();
    let stored = r.f.base().join("releases").join(sha.as_str().unwrap());
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
    r.want(&next, &[("a2", &tampered), ("a3", &tampered)]);
    assert_code(&r.run_agent("a2", &[]), 0);
    assert_eq!(version_of(&r.agent_bin("a2")), next, "a2 keeps its binary");
    assert_code(&r.run_agent("a2", &[]), 0);
    assert!(r.audit("release.refused").iter().any(|l| l.contains("SHA-256 differs")), "{}", r.f.audit_json());

    // A new binary that cannot check in is rolled back, and the previous one runs.
    let broken = bump(&base, 3);
    r.publish(&broken);
    r.want(&next, &[("a1", &broken)]);
    let out = r.run_agent("a1", &[("VIGO_TEST_CHECKIN_FAILS_FOR", &broken)]);
    assert_code(&out, 0);
    assert_eq!(version_of(&r.agent_bin("a1")), next, "{}", text(&out));
    assert!(r.audit("release.rolled_back").iter().any(|l| l.contains(&broken)), "{}", r.f.audit_json());
    // And it is not tried again.
    assert_code(&r.run_agent("a1", &[("VIGO_TEST_CHECKIN_FAILS_FOR", &broken)]), 0);
    assert_eq!(r.audit("release.rolled_back").len(), 1);
}

fn bump(version: &str, patch_add: u64) -> String {
    let v = semver_parts(version);
    format!("{}.{}.{}", v.0, v.1, v.2 + patch_add)
}

fn semver_parts(v: &str) -> (u64, u64, u64) {
    let core = v.split(['-', '+']).next().unwrap();
    let p: Vec<u64> = core.split('.').map(|x| x.parse().unwrap()).collect();
    (p[0], p[1], p[2])
}

#[test]
fn kill_9_at_any_moment_of_an_update_leaves_a_binary_that_runs() {
    let r = setup("update-kill", &["k1"]);
    let base = r.base_version.clone();
    let next = bump(&base, 1);
    r.publish(&next);
    r.want(&next, &[]);
    let root = r.f.root("k1");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let link = r.agent_bin("k1").with_file_name("vigo-agent");
    // Kill the update at growing delays until one run gets through; after every kill the
    // binary in place runs, as the old or the new version, and nothing else.
    let mut delay = Duration::from_millis(50);
    let mut kills = 0;
    loop {
        let mut child = spawn_program(
            &link,
            &r.f.agent_base("k1"),
            &["run", "--once", "--root", root.to_str().unwrap()],
            "",
            &[("VIGO_CONFIG", r.config.to_str().unwrap())],
        );
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            let _ = child.kill();
            kills += 1;
        }
        let _ = child.wait();
        let v = version_of(&r.agent_bin("k1"));
        assert!(v == base || v == next, "after a kill at {delay:?}: {v}");
        if finished || v == next {
            break;
        }
        delay += Duration::from_millis(150);
        assert!(delay < Duration::from_secs(60), "the update never completed");
    }
    assert!(kills > 0, "no run was killed; the test proved nothing");
    // Whatever was cut, the next run completes the update and converges.
    let out = r.run_agent("k1", &[]);
    assert_code(&out, 0);
    assert_eq!(version_of(&r.agent_bin("k1")), next, "{}", text(&out));
}

#[test]
fn the_bootstrap_script_installs_enrolls_and_the_agent_converges() {
    let r = setup("bootstrap", &[]);
    let next = bump(&r.base_version, 1);
    r.publish(&next);
    r.want(&next, &[]);
    let fetched = Command::new("curl")
        .args(["-fsS", "--cacert"])
        .arg(r.f.base().join("tls/ca"))
        .arg(format!("https://{}/bootstrap", r.f.api_addr))
        .output()
        .expect("curl is required");
    assert!(fetched.status.success(), "{}", text(&fetched));
    let script = String::from_utf8(fetched.stdout).unwrap();
    assert!(script.starts_with("#!/bin/sh") && script.contains(&next), "{script}");
    let token = r.f.dir.join("token");
    std::fs::write(&token, format!("{}\n", r.f.token(None))).unwrap();
    let root = r.f.dir.join("new-host");
    let sh = |script: &str, name: &str| {
        let file = r.f.dir.join(&format!("{name}.sh"));
        std::fs::write(&file, script).unwrap();
        Command::new("sh")
            .arg(&file)
            .args(["--root", root.to_str().unwrap(), "--token-file", token.to_str().unwrap(), "--name", name])
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .unwrap()
    };

    // A binary that is not the one whose SHA-256 the script carries (the server's copy altered
    // after it was published, as a compromised mirror would serve it) is refused, and nothing
    // is installed.
    let sha = script.split("SHA256='").nth(1).unwrap().split('\'').next().unwrap().to_string();
    let stored = r.f.base().join("releases").join(&sha);
    let good = std::fs::read(&stored).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&stored, &bad).unwrap();
    let out = sh(&script, "boot0");
    assert!(!out.status.success() && text(&out).contains("refusing it"), "{}", text(&out));
    assert!(!root.join("usr/local/bin/vigo").exists());
    std::fs::write(&stored, &good).unwrap();

    let out = sh(&script, "boot1");
    assert!(out.status.success(), "{}", text(&out));
    let installed = root.join("usr/local/bin/vigo");
    assert_eq!(version_of(&installed), next);
    assert!(root.join("etc/vigo/release.pub").exists() && root.join("usr/local/bin/vigo.sig").exists());
    // The installed agent, trusting the installed key, checks in and converges.
    let config = r.f.dir.join("new-host.yaml");
    std::fs::write(
        &config,
        format!("release:\n  public_key_file: {}\n", root.join("etc/vigo/release.pub").display()),
    )
    .unwrap();
    let apply_root = r.f.dir.join("new-host-fs");
    std::fs::create_dir_all(apply_root.join("etc")).unwrap();
    let run = spawn_program(
        &root.join("usr/local/bin/vigo-agent"),
        &root.join("var/lib/vigo"),
        &["run", "--once", "--root", apply_root.to_str().unwrap()],
        "",
        &[("VIGO_CONFIG", config.to_str().unwrap())],
    )
    .wait_with_output()
    .unwrap();
    assert_code(&run, 0);
    assert_eq!(std::fs::read_to_string(apply_root.join("etc/motd")).unwrap(), "managed\n");
    let shown = r.cli(&["envoys", "show", "boot1", "-o", "json"]);
    assert!(text(&shown).contains(&format!("signed {next}")), "{}", text(&shown));
}
