//! The vault's guard rails around the operator: messages that point at the real problem, no
//! passphrase replaced behind the operator's back, every state change audited in the vault's
//! own database, failed unlocks throttled, and no debris left by a killed writer.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

const PASS: &str = "correct horse battery";

fn audit_actions(base: &std::path::Path) -> Vec<String> {
    let out = run_in(base, "vigocli", &["audit", "tail", "-n", "1000", "-o", "json"], "");
    assert_code(&out, 0);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].as_str().unwrap().to_string()
        })
        .collect()
}

/// `init --key-file OTHER` used to make a new key there and overwrite this base directory's
/// unlock verifier without a word.
#[test]
fn init_never_replaces_the_passphrase_already_set_for_this_base_directory() {
    let base = TempDir::new("guard-init-other-key");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let verifier_before = std::fs::read(b.join("secrets-verifier.json")).unwrap();
    let other = base.join("other.key");
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "init", "--key-file", other.to_str().unwrap()],
        "another passphrase\nanother passphrase\n",
    );
    assert_code(&out, 3);
    let t = text(&out);
    assert!(t.contains("an unlock passphrase is already set") && t.contains("rotate"), "{t}");
    assert!(!other.exists(), "no new key was made");
    assert_eq!(std::fs::read(b.join("secrets-verifier.json")).unwrap(), verifier_before);
}

/// Runs vigocli as an unprivileged user when the suite runs as root (root reads everything),
/// else as ourselves with the secrets directory closed.
fn cli_without_access(base: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(role("vigocli"));
    cmd.args(args).env("VIGO_BASE_DIR", base).stdin(Stdio::null());
    if nix::unistd::getuid().is_root() {
        cmd.uid(65534).gid(65534);
    } else {
        std::fs::set_permissions(base.join("secrets"), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::set_permissions(base.join("secrets"), std::fs::Permissions::from_mode(0o700));
    out
}

#[test]
fn a_master_key_this_user_cannot_read_is_reported_as_permission_denied() {
    let base = TempDir::new("guard-key-perm");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    // Let the unprivileged user reach the base directory, not the secrets in it.
    std::fs::set_permissions(b, std::fs::Permissions::from_mode(0o755)).unwrap();
    for args in [&["secrets", "list"][..], &["secrets", "reveal", "a/b"], &["config", "validate"]] {
        let out = cli_without_access(b, args);
        assert_code(&out, 1);
        let t = text(&out);
        assert!(t.contains("permission denied reading the master key"), "{args:?}: {t}");
        assert!(!t.contains("does not exist") && !t.contains("no vault here"), "{args:?}: {t}");
    }
}

#[test]
fn lock_is_audited_and_locks_even_when_the_audit_log_cannot_be_written() {
    let base = TempDir::new("guard-lock-audit");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    assert_code(&run_in(b, "vigocli", &["secrets", "lock"], ""), 0);
    assert_code(&run_in(b, "vigocli", &["secrets", "lock"], ""), 0);
    let locks = audit_actions(b).iter().filter(|a| *a == "vault.locked").count();
    assert_eq!(locks, 2, "both locks are recorded, also the one of a vault already locked");

    // A database that cannot be opened: the vault still locks, and the missing row is an error.
    assert_code(&run_in(b, "vigocli", &["secrets", "unlock"], &format!("{PASS}\n")), 0);
    let db = b.join("vigo.db");
    std::fs::rename(&db, b.join("vigo.db.saved")).unwrap();
    std::fs::create_dir(&db).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "lock"], "");
    assert_code(&out, 1);
    assert!(text(&out).contains("the vault is locked, but its vault.locked audit row could not be written"));
    assert!(!b.join(".secrets-unlocked").exists(), "the gate closed anyway");
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Wrong passphrases cost time: three are free, the fourth attempt right after is refused
/// without even checking (the right passphrase included), rotate counts too, a success resets.
#[test]
fn failed_unlocks_are_throttled_and_a_success_resets_the_count() {
    let base = TempDir::new("guard-throttle");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    assert_code(&run_in(b, "vigocli", &["secrets", "lock"], ""), 0);
    for n in 1..=2 {
        let out = run_in(b, "vigocli", &["secrets", "unlock"], "wrong guess 1\n");
        assert_code(&out, 3);
        assert!(
            text(&out).contains("error: wrong passphrase; the vault stays locked\n"),
            "{n}: {}",
            text(&out)
        );
    }
    let out = run_in(b, "vigocli", &["secrets", "rotate"], "wrong guess 2\n");
    assert_code(&out, 3);
    let t = text(&out);
    assert!(
        t.contains("wrong passphrase; nothing was changed (3 in a row: the next attempt waits 2 s)"),
        "{t}"
    );
    let out = run_in(b, "vigocli", &["secrets", "unlock"], &format!("{PASS}\n"));
    assert_code(&out, 3);
    assert!(
        text(&out).contains("3 wrong passphrases in a row; the next attempt is allowed in"),
        "{}",
        text(&out)
    );
    assert!(!b.join(".secrets-unlocked").exists());
    let failed = audit_actions(b).iter().filter(|a| *a == "vault.unlock_failed").count();
    assert_eq!(failed, 3, "every wrong passphrase is audited, the throttled attempt checked nothing");

    // Once the wait is over, the right passphrase opens the vault and clears the count.
    let record = b.join(".secrets-unlock-failures");
    std::fs::write(&record, format!("{{\"failures\":3,\"last_failure\":{}}}", unix_now() - 3)).unwrap();
    assert_code(&run_in(b, "vigocli", &["secrets", "unlock"], &format!("{PASS}\n")), 0);
    assert!(!record.exists());

    // Ten in a row shut the gate for a quarter of an hour after the last one.
    std::fs::write(&record, format!("{{\"failures\":10,\"last_failure\":{}}}", unix_now() - 60)).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "unlock"], &format!("{PASS}\n"));
    assert_code(&out, 3);
    assert!(
        text(&out).contains("10 wrong passphrases in a row; the next attempt is allowed in 14 min"),
        "{}",
        text(&out)
    );
}

/// A vault is gated and audited by its own installation: reaching it from another base
/// directory with --secrets-dir/--key-file is refused, and no row lands elsewhere.
#[test]
fn a_vault_refuses_verbs_run_from_another_base_directory() {
    let home = TempDir::new("guard-home-a");
    let other = TempDir::new("guard-home-b");
    init_unlocked_vault(home.path(), PASS);
    assert_code(&run_in(home.path(), "vigocli", &["secrets", "set", "raw", "app/x"], "home-value\n"), 0);
    init_unlocked_vault(other.path(), "another passphrase");
    let secrets = home.join("secrets");
    let key = home.join("secrets/.master.key");
    let foreign = ["--secrets-dir", secrets.to_str().unwrap(), "--key-file", key.to_str().unwrap()];
    for verb in
        [&["secrets", "reveal", "app/x"][..], &["secrets", "list"], &["secrets", "set", "raw", "app/y"]]
    {
        let args: Vec<&str> = foreign.iter().copied().chain(verb.iter().copied()).collect();
        let out = run_in(other.path(), "vigocli", &args, "v\n");
        assert_code(&out, 3);
        let t = text(&out);
        assert!(t.contains("belongs to the installation at") && !t.contains("home-value"), "{verb:?}: {t}");
    }
    let rows =
        |b: &std::path::Path| audit_actions(b).into_iter().filter(|a| a.starts_with("secret.")).count();
    assert_eq!(rows(other.path()), 0, "no vault row in the other installation's log");
    assert_eq!(rows(home.path()), 1, "only the set made from home");
    // From home, the same flags are fine.
    let args: Vec<&str> = foreign.iter().copied().chain(["secrets", "reveal", "app/x"]).collect();
    let out = run_in(home.path(), "vigocli", &args, "");
    assert_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "home-value\n");
}

/// A `set` killed after sealing its temp file left it behind for good; the next vault verb
/// removes it, and never the temp of a writer that is still running.
#[test]
fn the_temp_files_of_a_killed_set_are_swept_by_the_next_vault_verb() {
    let base = TempDir::new("guard-sweep");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    assert_code(&run_in(b, "vigocli", &["secrets", "set", "raw", "app/key"], "v\n"), 0);
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = b.join(format!("secrets/app/.key.tmp-{dead}-00112233aabb"));
    std::fs::write(&stale, b"VGS1 sealed bytes").unwrap();
    // This test process stands for a concurrent writer: alive, so its temp stays.
    let live = b.join(format!("secrets/app/.key.tmp-{}-00112233aabb", std::process::id()));
    std::fs::write(&live, b"VGS1 sealed bytes").unwrap();
    let out = run_in(b, "vigocli", &["secrets", "list"], "");
    assert_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app/key\n");
    assert!(!stale.exists(), "a dead writer's temp is removed");
    assert!(live.exists(), "a live writer's temp is kept");
}

/// A key segment as long as the name and its temp file allow is stored; one byte more is
/// refused before any path is built (it used to pass and fail with "File name too long").
#[test]
fn key_segments_are_limited_to_what_the_vault_can_name() {
    let base = TempDir::new("guard-segment");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let longest = format!("app/{}", "s".repeat(229));
    assert_code(&run_in(b, "vigocli", &["secrets", "set", "raw", &longest], "v\n"), 0);
    let out = run_in(b, "vigocli", &["secrets", "reveal", &longest], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v\n");
    let too_long = format!("app/{}", "s".repeat(230));
    let out = run_in(b, "vigocli", &["secrets", "set", "raw", &too_long], "v\n");
    assert_code(&out, 1);
    let t = text(&out);
    assert!(t.contains("a segment is longer than 229 bytes") && !t.contains("File name too long"), "{t}");
}

/// A new passphrase (rotate) is staged, its audit row committed, and only then put in place:
/// when the row cannot commit, the old passphrase still unlocks and no temp file is left. (The
/// database fails every passphrase row at COMMIT, after the operation ran inside the
/// transaction: a deferred foreign key that the row's trigger leaves violated.)
#[test]
fn a_passphrase_change_whose_audit_row_cannot_commit_changes_nothing() {
    let base = TempDir::new("guard-rotate-unaudited");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let db = rusqlite::Connection::open(b.join("vigo.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE commit_gate_parent (id INTEGER PRIMARY KEY);
         CREATE TABLE commit_gate (p INTEGER REFERENCES commit_gate_parent(id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TRIGGER passphrase_rows_never_commit AFTER INSERT ON audit
             WHEN NEW.action = 'vault.passphrase_rotated'
             BEGIN INSERT INTO commit_gate VALUES (1); END;",
    )
    .unwrap();
    let before = std::fs::read(b.join("secrets-verifier.json")).unwrap();
    let new = "a brand new passphrase";
    let out = run_in(b, "vigocli", &["secrets", "rotate"], &format!("{PASS}\n{new}\n{new}\n"));
    assert_code(&out, 1);
    assert!(text(&out).contains("audit log commit failed"), "{}", text(&out));
    assert_eq!(std::fs::read(b.join("secrets-verifier.json")).unwrap(), before, "the passphrase changed");
    let temps: Vec<String> = std::fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    assert_code(&run_in(b, "vigocli", &["secrets", "lock"], ""), 0);
    assert_code(&run_in(b, "vigocli", &["secrets", "unlock"], &format!("{PASS}\n")), 0);
    // Once rows commit again, the rotation goes through.
    db.execute_batch("DROP TRIGGER passphrase_rows_never_commit;").unwrap();
    let out = run_in(b, "vigocli", &["secrets", "rotate"], &format!("{PASS}\n{new}\n{new}\n"));
    assert_code(&out, 0);
    assert_code(&run_in(b, "vigocli", &["secrets", "unlock"], &format!("{new}\n")), 0);
}
