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
