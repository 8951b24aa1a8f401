//! Fault cases from the outside: processes killed with SIGKILL mid-operation, SQLite under
//! concurrent writers, and a full disk under the audit log. Each test states the rule it holds
//! the product to; the helpers that drive the binaries live in tests/common/fleet.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::fleet::{self, Fleet};
use common::*;

const KEY: &str = "app/key";

const NODES: &str = "envoys:\n  - match: \"web*\"\n    roles: [web]\n";

/// The web role: one file carrying `KEY`, one whose content says which config generation it is.
fn web_module(generation: &str) -> String {
    format!(
        "resources:\n  - name: app-dir\n    type: directory\n    target_path: /etc/app\n\
         \x20 - name: app-key\n    depends_on: [app-dir]\n    type: file\n    target_path: /etc/app/key\n    content: \"secret:{KEY}\"\n    watch_secret: [\"{KEY}\"]\n\
         \x20 - name: generation\n    depends_on: [app-dir]\n    type: file\n    target_path: /etc/app/generation\n    content: \"{generation}\\n\"\n"
    )
}

/// A small xorshift generator; the seed is printed so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn new(tag: &str) -> Rng {
        let seed = std::env::var("VIGO_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        }) | 1;
        eprintln!("{tag}: VIGO_FAULT_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// A value whose length is unique to `i`: `secret.set` rows record only the byte count, so the
/// length identifies which set an audit row belongs to.
fn value(i: usize) -> String {
    format!("value-{i:03}-{}", "x".repeat(i))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn reveal(f: &Fleet, key: &str) -> String {
    let out = f.cli(&["secrets", "reveal", key], "");
    assert_code(&out, 0);
    stdout(&out).trim_end_matches('\n').to_string()
}

/// The audit rows (parsed) with this action, oldest first.
fn rows(f: &Fleet, action: &str) -> Vec<serde_json::Value> {
    f.audit_json()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == action)
        .collect()
}

/// The byte counts of every `secret.set` row for `key`, oldest first.
fn set_row_lengths(f: &Fleet, key: &str) -> Vec<usize> {
    rows(f, "secret.set")
        .iter()
        .filter(|r| r["target"] == key)
        .map(|r| {
            let detail: serde_json::Value = serde_json::from_str(r["detail"].as_str().unwrap()).unwrap();
            detail["bytes"].as_u64().unwrap() as usize
        })
        .collect()
}

fn secret_keys(f: &Fleet) -> Vec<String> {
    let out = f.cli(&["secrets", "list"], "");
    assert_code(&out, 0);
    stdout(&out).lines().map(String::from).collect()
}

fn wait_with_deadline(child: std::process::Child, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(Duration::from_secs(45))
        .unwrap_or_else(|_| {
            let _ = fleet::nix_kill(pid, "KILL");
            panic!("{what} did not finish within 45 s")
        })
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL during `vigocli secrets set`

#[test]
fn server_killed_during_secrets_set_every_set_stands_with_its_audit_row() {
    let mut f = Fleet::new("fault-set-srv");
    f.set_secret(KEY, &value(0));
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", &web_module("one"))]);
    f.start_server();
    f.enroll("web1");
    assert_code(&f.run_once("web1"), 0);
    let started = Instant::now();
    f.set_secret(KEY, &value(1));
    let full = started.elapsed().as_millis() as u64;
    let mut rng = Rng::new("server_killed_during_secrets_set");
    let mut stored = vec![value(0).len(), value(1).len()];
    for i in 2..14 {
        // The CLI writes, audits, then notifies the server; the kill lands anywhere in that.
        let child = f.spawn_cli(&["secrets", "set", "raw", KEY], &value(i));
        std::thread::sleep(Duration::from_millis(rng.below(full + 5)));
        f.kill_server();
        let out = wait_with_deadline(child, "secrets set");
        // The server is only told after the fact: losing it must not fail the set.
        assert_code(&out, 0);
        stored.push(value(i).len());
        let (agent, api) = (f.agent_addr.clone(), f.api_addr.clone());
        f.start_server_on(&agent, &api);
    }
    assert_eq!(reveal(&f, KEY), value(13), "the last successful set must be the stored value");
    // Every successful set has exactly its own secret.set row, in order.
    assert_eq!(set_row_lengths(&f, KEY), stored, "secret.set rows do not match the successful sets");
    f.audit_verify_rows();
    // The rotation notice and the agent's next run still work after all those kills.
    assert_code(&f.run_once("web1"), 0);
    let on_host = std::fs::read_to_string(f.root("web1").join("etc/app/key")).unwrap();
    assert_eq!(on_host, value(13));
}

#[test]
fn cli_killed_during_secrets_set_leaves_old_or_new_value_and_never_an_unaudited_one() {
    let mut f = Fleet::new("fault-set-cli");
    f.set_secret(KEY, &value(0));
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", &web_module("one"))]);
    let started = Instant::now();
    f.set_secret(KEY, &value(1));
    // Kills land at a random moment in a window that adapts: it shrinks after a kill that came
    // too late (the new value stood) and grows after one that came too early, so the kills
    // cluster around the write itself (staging, audit commit, rename) wherever it falls here.
    let mut window = started.elapsed().as_micros() as u64;
    f.start_server();
    let mut rng = Rng::new("cli_killed_during_secrets_set");
    let mut current = value(1);
    let (mut kept_old, mut took_new) = (0, 0);
    for i in 2..40 {
        let child = f.spawn_cli(&["secrets", "set", "raw", KEY], &value(i));
        std::thread::sleep(Duration::from_micros(rng.below(window)));
        let pid = child.id();
        let _ = fleet::nix_kill(pid, "KILL");
        let _ = wait_with_deadline(child, "killed secrets set");
        let now = reveal(&f, KEY);
        assert!(
            now == current || now == value(i),
            "after killing set #{i}, the value is neither the old nor the new one: {now:?}"
        );
        if now == current {
            kept_old += 1;
            window = window * 5 / 4;
        } else {
            took_new += 1;
            window = (window * 3 / 4).max(200);
        }
        // The value that stands must have been audited: no change without its secret.set row.
        let lengths = set_row_lengths(&f, KEY);
        assert!(
            lengths.contains(&now.len()),
            "set #{i} was killed and its value stands without a secret.set audit row (rows: {lengths:?})"
        );
        current = now;
    }
    eprintln!(
        "kills that kept the old value: {kept_old}, that left the new one: {took_new}; window {window} µs"
    );
    // Temp files of killed writes never show up as keys.
    assert_eq!(secret_keys(&f), vec![KEY.to_string()]);
    f.audit_verify_rows();
}

#[test]
fn cli_killed_during_secrets_delete_never_removes_a_value_without_its_audit_row() {
    let f = Fleet::new("fault-delete-cli");
    let mut rng = Rng::new("cli_killed_during_secrets_delete");
    let mut window = 20_000u64;
    let (mut gone, mut kept) = (0, 0);
    for i in 0..30 {
        f.set_secret(KEY, &value(i));
        let child = f.spawn_cli(&["secrets", "delete", KEY], "");
        std::thread::sleep(Duration::from_micros(rng.below(window)));
        let _ = fleet::nix_kill(child.id(), "KILL");
        let _ = wait_with_deadline(child, "killed secrets delete");
        if secret_keys(&f).contains(&KEY.to_string()) {
            kept += 1;
            assert_eq!(reveal(&f, KEY), value(i), "a killed delete damaged the value");
            window = window * 5 / 4;
        } else {
            gone += 1;
            window = (window * 3 / 4).max(200);
        }
        let rows = rows(&f, "secret.deleted").len();
        assert!(rows >= gone, "{gone} deletions stand but only {rows} secret.deleted rows exist");
    }
    eprintln!("killed deletes that removed the key: {gone}, that kept it: {kept}");
    f.audit_verify_rows();
}

// ---------------------------------------------------------------------------------------------
// 2. SIGKILL during `vigocli config publish`, and a rejected publish

/// A config large enough that publishing takes measurable time: `roles` extra roles of `per`
/// file resources each, plus the web role at `generation`.
fn big_config(generation: &str, roles: usize, per: usize) -> Vec<(String, String)> {
    let mut nodes = String::from("envoys:\n  - match: \"web*\"\n    roles: [web]\n");
    let mut files = vec![("modules/web.vgo".to_string(), web_module(generation))];
    for r in 0..roles {
        nodes.push_str(&format!("  - match: \"h{r}-*\"\n    roles: [r{r}]\n"));
        let mut m = String::from("resources:\n");
        for n in 0..per {
            m.push_str(&format!(
                "  - name: f{n}\n    type: file\n    target_path: /etc/r{r}/f{n}.conf\n    content: \"role {r} file {n} {generation}\\n\"\n"
            ));
        }
        files.push((format!("modules/r{r}.vgo"), m));
    }
    files.push(("nodes.vgo".to_string(), nodes));
    files
}

/// Replaces the whole config directory and returns its content hash (from `config validate`).
fn install_config(f: &Fleet, files: &[(String, String)]) -> String {
    let _ = std::fs::remove_dir_all(f.base().join("config"));
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    f.write_config(&refs);
    let out = f.cli(&["config", "validate"], "");
    assert_code(&out, 0);
    let t = stdout(&out);
    t.split("content sha256 ").nth(1).unwrap().trim().to_string()
}

fn config_epoch_in_db(f: &Fleet) -> u64 {
    let db = rusqlite::Connection::open(f.base().join("vigo.db")).unwrap();
    db.busy_timeout(Duration::from_secs(15)).unwrap();
    db.query_row("SELECT value FROM server_state WHERE key = 'config_epoch'", [], |r| r.get::<_, String>(0))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0)
}

fn generation_on_host(f: &Fleet, envoy: &str) -> String {
    assert_code(&f.run_once(envoy), 0);
    std::fs::read_to_string(f.root(envoy).join("etc/app/generation")).unwrap().trim().to_string()
}

#[test]
fn server_killed_during_publish_restarts_on_the_old_or_new_config_with_the_chain_intact() {
    let mut f = Fleet::new("fault-publish");
    f.set_secret(KEY, &value(0));
    let small: Vec<(String, String)> =
        vec![("nodes.vgo".into(), NODES.into()), ("modules/web.vgo".into(), web_module("gen0"))];
    install_config(&f, &small);
    f.start_server();
    f.enroll("web1");
    assert_eq!(generation_on_host(&f, "web1"), "gen0");
    // Calibrate: how long does publishing the big config take here?
    let hash = install_config(&f, &big_config("gen1", 60, 40));
    let started = Instant::now();
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    let full = started.elapsed().as_millis() as u64;
    eprintln!("publishing the big config took {full} ms");
    assert_eq!(f.health()["config_hash"], hash.as_str());
    let (mut served, mut served_gen) = (hash, "gen1".to_string());
    let mut rng = Rng::new("server_killed_during_publish");
    for round in 2..7 {
        let generation = format!("gen{round}");
        let files = if round % 2 == 0 {
            big_config(&generation, 60, 40)
        } else {
            vec![("nodes.vgo".into(), NODES.into()), ("modules/web.vgo".into(), web_module(&generation))]
        };
        let target = install_config(&f, &files);
        let (epoch_before, published_before) = (config_epoch_in_db(&f), rows(&f, "config.published").len());
        let child = f.spawn_cli(&["config", "publish"], "");
        std::thread::sleep(Duration::from_millis(rng.below(full + 5)));
        f.kill_server();
        let out = wait_with_deadline(child, "config publish");
        let answered = out.status.success();
        eprintln!("round {round}: publish {}", if answered { "answered OK" } else { "was cut off" });
        let (agent, api) = (f.agent_addr.clone(), f.api_addr.clone());
        f.start_server_on(&agent, &api);
        let now = f.health()["config_hash"].as_str().unwrap().to_string();
        assert!(
            now == served || now == target,
            "round {round}: the restarted server serves neither the old nor the new config ({now})"
        );
        // The epoch moves exactly with the config.published audit row (both or neither), plus
        // the one step every start takes.
        let (epoch_after, published_after) = (config_epoch_in_db(&f), rows(&f, "config.published").len());
        assert_eq!(
            epoch_after - epoch_before,
            (published_after - published_before) as u64 + 1,
            "round {round}: config epoch and config.published rows disagree"
        );
        assert!(published_after - published_before <= 1);
        if answered {
            assert_eq!(published_after, published_before + 1, "a publish that answered OK must be audited");
        }
        // What the agent converges to matches the config the server says it serves.
        let expect = if now == target { generation } else { served_gen.clone() };
        assert_eq!(generation_on_host(&f, "web1"), expect, "round {round}");
        (served, served_gen) = (now, expect);
        f.audit_verify_rows();
    }
}

#[test]
fn an_invalid_config_is_rejected_and_the_previous_one_keeps_serving() {
    let mut f = Fleet::new("fault-invalid");
    f.set_secret(KEY, &value(0));
    let good: Vec<(String, String)> =
        vec![("nodes.vgo".into(), NODES.into()), ("modules/web.vgo".into(), web_module("good"))];
    let hash = install_config(&f, &good);
    f.start_server();
    f.enroll("web1");
    assert_eq!(generation_on_host(&f, "web1"), "good");
    let published_before = rows(&f, "config.published").len();
    // An unknown key and a secret that is not in the vault: both must be refused.
    let bad = web_module("bad").replace("type: directory", "type: directory\n    colour: blue");
    f.write_config(&[("modules/web.vgo", &bad)]);
    let out = f.cli(&["config", "publish"], "");
    assert_code(&out, 1);
    assert!(text(&out).contains("previous config keeps serving"), "{}", text(&out));
    let missing = web_module("bad").replace(&format!("secret:{KEY}"), "secret:app/not-there");
    f.write_config(&[("modules/web.vgo", &missing)]);
    assert_code(&f.cli(&["config", "publish"], ""), 1);
    assert_eq!(f.health()["config_hash"], hash.as_str());
    // The agent converges with the old content again (clear its copy first to see it rewritten).
    std::fs::remove_file(f.root("web1").join("etc/app/generation")).unwrap();
    assert_eq!(generation_on_host(&f, "web1"), "good");
    assert_eq!(rows(&f, "config.published").len(), published_before, "a rejected publish was audited");
    f.audit_verify_rows();
}

// ---------------------------------------------------------------------------------------------
// 3. SQLite busy: the server and several CLI processes write at once

#[test]
fn concurrent_cli_writes_and_agent_check_ins_all_succeed_and_are_all_audited() {
    let mut f = Fleet::new("fault-busy");
    f.set_secret(KEY, &value(0));
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", &web_module("one"))]);
    f.start_server();
    for a in ["web1", "web2"] {
        f.enroll(a);
    }
    let before = f.audit_verify_rows();
    let resolved_before = rows(&f, "secret.epoch_resolved").len();
    const SETTERS: usize = 4;
    const SETS: usize = 8;
    const REVEALERS: usize = 2;
    const REVEALS: usize = 8;
    const RUNS: usize = 4;
    let failures: Vec<String> = std::thread::scope(|s| {
        let f = &f;
        let mut handles = Vec::new();
        for t in 0..SETTERS {
            handles.push(s.spawn(move || {
                (0..SETS)
                    .map(|i| f.cli(&["secrets", "set", "raw", &format!("busy/k{t}")], &value(i + 1)))
                    .filter(|o| !o.status.success() || !stdout(o).contains("Server notified"))
                    .map(|o| text(&o))
                    .collect::<Vec<_>>()
            }));
        }
        for _ in 0..REVEALERS {
            handles.push(s.spawn(move || {
                (0..REVEALS)
                    .map(|_| f.cli(&["secrets", "reveal", KEY], ""))
                    .filter(|o| !o.status.success() || stdout(o).trim_end() != value(0))
                    .map(|o| text(&o))
                    .collect()
            }));
        }
        for a in ["web1", "web2"] {
            handles.push(s.spawn(move || {
                (0..RUNS).map(|_| f.run_once(a)).filter(|o| !o.status.success()).map(|o| text(&o)).collect()
            }));
        }
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        failures.is_empty(),
        "{} operations failed under contention:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Exactly one row per action: a set and its rotation notice, a reveal, a secret resolution.
    let sets =
        rows(&f, "secret.set").iter().filter(|r| r["target"].as_str().unwrap().starts_with("busy/")).count();
    let rotated = rows(&f, "secret.rotated")
        .iter()
        .filter(|r| r["target"].as_str().unwrap().starts_with("busy/"))
        .count();
    let accessed = rows(&f, "secret.accessed").len();
    let resolved = rows(&f, "secret.epoch_resolved").len() - resolved_before;
    assert_eq!(sets, SETTERS * SETS);
    assert_eq!(rotated, SETTERS * SETS);
    assert_eq!(accessed, REVEALERS * REVEALS);
    // At most one per run: a run whose epoch did not move since the agent's last one uses the
    // values it keeps (steady check-ins), and rotations keep moving it here.
    assert!(
        resolved > 0 && resolved <= 2 * RUNS,
        "{resolved} secret resolutions for {} agent runs",
        2 * RUNS
    );
    let after = f.audit_verify_rows();
    assert_eq!(after - before, sets + rotated + accessed + resolved, "unexpected extra audit rows");
    for t in 0..SETTERS {
        assert_eq!(reveal(&f, &format!("busy/k{t}")), value(SETS));
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Disk full under the audit log

/// A tmpfs mounted by the test; lazily unmounted on drop, also when the test panics.
struct TmpfsMount(PathBuf);

impl TmpfsMount {
    fn new(dir: &Path, size: &str) -> TmpfsMount {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test mounts its own tmpfs and must run as root (CI does); run it with sudo"
        );
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount(8) is required (apt-get install -y mount)");
        assert!(out.status.success(), "mount -t tmpfs failed: {}", text(&out));
        TmpfsMount(dir.to_path_buf())
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `dir/filler` until the filesystem refuses with ENOSPC.
fn fill_up(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
    // Nothing more fits, not even a page.
    assert!(std::fs::write(dir.join("probe"), vec![0u8; 4096]).is_err(), "the tmpfs is not full");
    path
}

#[test]
fn with_the_disk_full_privileged_operations_fail_instead_of_running_unaudited() {
    let mut f = Fleet::new("fault-full");
    f.set_secret(KEY, "old-value");
    let small: Vec<(String, String)> =
        vec![("nodes.vgo".into(), NODES.into()), ("modules/web.vgo".into(), web_module("before"))];
    let hash = install_config(&f, &small);
    f.start_server();
    f.enroll("web1");
    assert_eq!(generation_on_host(&f, "web1"), "before");
    // Move the database (only it: secrets, config and keys keep their space) onto a 2 MiB tmpfs.
    f.stop_server();
    let fs = f.dir.join("dbfs");
    let _mount = TmpfsMount::new(&fs, "2m");
    let db = f.base().join("vigo.db");
    assert!(!f.base().join("vigo.db-wal").exists(), "the database was not closed cleanly");
    std::fs::copy(&db, fs.join("vigo.db")).unwrap();
    std::fs::remove_file(&db).unwrap();
    std::os::unix::fs::symlink(fs.join("vigo.db"), &db).unwrap();
    let (agent, api) = (f.agent_addr.clone(), f.api_addr.clone());
    f.start_server_on(&agent, &api);
    // SQLite resolves the symlink: its WAL lives on the tmpfs, next to the real file.
    assert!(fs.join("vigo.db-wal").exists() && !f.base().join("vigo.db-wal").exists());
    // Empty the WAL (a connection stays open so it is not deleted), then fill the disk: the next
    // commit has to grow the WAL and cannot.
    let holder = rusqlite::Connection::open(fs.join("vigo.db")).unwrap();
    holder.busy_timeout(Duration::from_secs(15)).unwrap();
    let busy: i64 = holder.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)).unwrap();
    assert_eq!(busy, 0, "the WAL checkpoint did not complete");
    assert_eq!(std::fs::metadata(fs.join("vigo.db-wal")).unwrap().len(), 0);
    let rows_before = f.audit_verify_rows();
    let filler = fill_up(&fs);

    let out = f.cli(&["secrets", "set", "raw", KEY], "new-value");
    assert_ne!(out.status.code(), Some(0), "set succeeded with the audit disk full: {}", text(&out));
    assert!(text(&out).contains("audit log"), "the failure must name the audit write: {}", text(&out));
    let out = f.cli(&["secrets", "set", "raw", "app/brand-new"], "fresh-value");
    assert_ne!(out.status.code(), Some(0), "set of a new key succeeded: {}", text(&out));
    assert!(text(&out).contains("audit log"), "{}", text(&out));
    let out = f.cli(&["secrets", "reveal", KEY], "");
    assert_ne!(out.status.code(), Some(0), "reveal succeeded with the audit disk full: {}", text(&out));
    assert!(!stdout(&out).contains("old-value"), "reveal printed the value unaudited");
    assert!(text(&out).contains("audit log"), "{}", text(&out));
    // The server's own audited operation: a publish that cannot be audited does not take effect.
    let new_hash = install_config(
        &f,
        &[("nodes.vgo".into(), NODES.into()), ("modules/web.vgo".into(), web_module("after"))],
    );
    assert_ne!(new_hash, hash);
    let out = f.cli(&["config", "publish"], "");
    assert_code(&out, 1);
    assert_eq!(f.health()["config_hash"], hash.as_str(), "an unaudited publish swapped the config in");

    // Space again: nothing of the above took effect, and everything works.
    std::fs::remove_file(filler).unwrap();
    drop(holder);
    assert_eq!(reveal(&f, KEY), "old-value", "the failed set changed the value");
    assert_eq!(secret_keys(&f), vec![KEY.to_string()], "the failed set created a key");
    assert_eq!(set_row_lengths(&f, KEY), vec!["old-value".len()]);
    assert_eq!(rows(&f, "config.published").len(), 0);
    // One secret.accessed row for the reveal just above, nothing for the failed attempts.
    assert_eq!(f.audit_verify_rows(), rows_before + 1);
    assert_eq!(generation_on_host(&f, "web1"), "before");
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    assert_eq!(generation_on_host(&f, "web1"), "after");
    f.stop_server();
}
