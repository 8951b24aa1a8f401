//! Data care: `vigocli db stats | integrity | prune` and `backup create` / `backup restore`.
//! A backup made while the server runs, restored into a fresh base directory, brings back an
//! installation whose agent keeps checking in and resolving its secret; a tampered archive, a
//! live server, an occupied base and a missing master key are each refused with nothing left
//! behind.

mod common;

use common::fleet::{Fleet, PASS};
use common::*;

const NODES: &str = "envoys:\n  - match: \"web*\"\n    roles: [web]\n";
const WEB: &str = "vars:\n  token: \"secret:app/token\"\nresources:\n  - name: conf\n    type: file\n    target_path: /etc/app.conf\n    content: \"token={{ .Vars.token }}\"\n";

fn installation() -> Fleet {
    let mut f = Fleet::new("backup");
    f.set_secret("app/token", "BACKUP-CANARY");
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", WEB)]);
    f.start_server();
    f.enroll("web1");
    assert_code(&f.run_once("web1"), 0);
    f
}

#[test]
fn db_stats_integrity_and_prune_keep_the_audit_log_whole() {
    let f = installation();
    let stats = f.cli(&["db", "stats", "-o", "json"], "");
    assert_code(&stats, 0);
    let v: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(v["tables"]["envoys"], 1, "{v}");
    assert!(v["tables"]["audit"].as_i64().unwrap() > 3, "{v}");
    assert!(v["pages"].as_i64().unwrap() > 0 && v["bytes"].as_u64().unwrap() > 0, "{v}");
    let ok = f.cli(&["db", "integrity"], "");
    assert_code(&ok, 0);
    assert!(text(&ok).contains("ok: integrity check, foreign keys and audit chain"), "{}", text(&ok));

    let audit_before = v["tables"]["audit"].as_i64().unwrap();
    // Everything is younger than a second ago but the newest runs per envoy stay anyway.
    let pruned = f.cli(&["db", "prune", "--older-than", "0s", "--keep-per-envoy", "0"], "");
    assert_code(&pruned, 0);
    assert!(text(&pruned).contains("pruned"), "{}", text(&pruned));
    let after: serde_json::Value =
        serde_json::from_slice(&f.cli(&["db", "stats", "-o", "json"], "").stdout).unwrap();
    assert!(
        after["tables"]["audit"].as_i64().unwrap() > audit_before,
        "audit rows only grow, by the prune's own row"
    );
    assert!(f.audit_json().contains("db.pruned"));
    assert_code(&f.cli(&["audit", "verify"], ""), 0);
    let bad = f.cli(&["db", "prune", "--older-than", "soon"], "");
    assert_code(&bad, 2);
}

#[test]
fn a_backup_restored_into_a_fresh_base_brings_the_installation_back() {
    let mut f = installation();
    let archive = f.dir.join("vigo-backup.tar");
    let made = f.cli(&["backup", "create", archive.to_str().unwrap()], "");
    assert_code(&made, 0);
    assert!(text(&made).contains("the master key is not in it"), "{}", text(&made));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777, 0o600);
    let bytes = std::fs::read(&archive).unwrap();
    assert!(!bytes.windows(13).any(|w| w == b"BACKUP-CANARY"), "the vault stays encrypted in the archive");
    let key = std::fs::read(f.base().join("secrets/.master.key")).unwrap();
    assert!(!bytes.windows(key.len()).any(|w| w == key.as_slice()), "the master key stays out");
    assert_code(&f.cli(&["backup", "create", archive.to_str().unwrap()], ""), 2);

    // Over a live server, or over an installation: refused.
    let live = f.cli(&["backup", "restore", archive.to_str().unwrap()], "");
    assert_code(&live, 3);
    assert!(text(&live).contains("a server is running"), "{}", text(&live));
    f.stop_server();
    let occupied = f.cli(&["backup", "restore", archive.to_str().unwrap()], "");
    assert_code(&occupied, 3);
    assert!(text(&occupied).contains("already holds an installation"), "{}", text(&occupied));

    // Into a fresh base directory where the old one was.
    let old = f.dir.join("srv.old");
    std::fs::rename(f.base(), &old).unwrap();
    std::fs::create_dir_all(f.base()).unwrap();
    let no_key = f.cli(&["backup", "restore", archive.to_str().unwrap()], "");
    assert_code(&no_key, 2);
    assert!(text(&no_key).contains("--master-key"), "{}", text(&no_key));
    let wrong = f.dir.join("wrong.key");
    std::fs::write(&wrong, "00".repeat(32)).unwrap();
    let refused =
        f.cli(&["backup", "restore", archive.to_str().unwrap(), "--master-key", wrong.to_str().unwrap()], "");
    assert_code(&refused, 1);
    assert!(text(&refused).contains("does not open the archived vault"), "{}", text(&refused));
    let left: Vec<_> = std::fs::read_dir(f.base()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| n.to_string_lossy().ends_with(".lock")), "nothing left behind: {left:?}");

    let key_file = old.join("secrets/.master.key");
    let restored = f.cli(
        &["backup", "restore", archive.to_str().unwrap(), "--master-key", key_file.to_str().unwrap()],
        "",
    );
    assert_code(&restored, 0);
    assert_code(&f.cli(&["audit", "verify"], ""), 0);
    assert_code(&f.cli(&["secrets", "unlock"], &format!("{PASS}\n")), 0);
    f.restart_server_after_stop();
    std::fs::write(f.root("web1").join("etc/app.conf"), "drifted").unwrap();
    let out = f.run_once("web1");
    assert_code(&out, 0);
    assert_eq!(std::fs::read_to_string(f.root("web1").join("etc/app.conf")).unwrap(), "token=BACKUP-CANARY");
    assert!(f.audit_json().contains("backup.restored"));
}

#[test]
fn a_changed_or_foreign_archive_is_refused_and_leaves_nothing() {
    let f = installation();
    let archive = f.dir.join("b.tar");
    assert_code(&f.cli(&["backup", "create", archive.to_str().unwrap(), "--include-master-key"], ""), 0);
    let fresh = f.dir.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let restore = |file: &std::path::Path| {
        run_in(&fresh, "vigocli", &["backup", "restore", file.to_str().unwrap()], "")
    };
    // One byte of the database changed (the first member's data starts at 512).
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[512 + 100] ^= 0x55;
    let changed = f.dir.join("changed.tar");
    std::fs::write(&changed, &bytes).unwrap();
    let out = restore(&changed);
    assert_code(&out, 1);
    assert!(text(&out).contains("does not match its SHA-256"), "{}", text(&out));
    // A member that would land outside the base directory.
    let evil = f.dir.join("evil.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&evil).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../escaped.tx");
    header.set_cksum();
    tar.append(&header, &b"x"[..]).unwrap();
    tar.finish().unwrap();
    let out = restore(&evil);
    assert_code(&out, 1);
    assert!(text(&out).contains("refusing it"), "{}", text(&out));
    assert!(!f.dir.join("escaped.tx").exists());
    let left: Vec<_> = std::fs::read_dir(&fresh).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| n.to_string_lossy().ends_with(".lock")), "nothing left behind: {left:?}");
    // The archive with its master key restores alone.
    assert_code(&restore(&archive), 0);
    assert!(fresh.join("secrets/.master.key").exists() && fresh.join("vigo.db").exists());
}
