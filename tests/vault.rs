//! `vigocli secrets` end to end, through the `vigocli` name, in a temp base dir.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;

const PASS: &str = "correct horse battery";

#[test]
fn init_unlock_set_reveal_list_delete() {
    let base = TempDir::new("vault-flow");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let key_file = base.join("secrets/.master.key");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim().len(), 64);
    assert_eq!(std::fs::metadata(base.join("secrets")).unwrap().permissions().mode() & 0o777, 0o700);

    let out = run_in(b, "vigocli", &["secrets", "set", "raw", "vigo/db/dsn"], "postgres://u:p@h/db\n");
    assert_code(&out, 0);
    assert!(text(&out).contains("stored"));
    let f = std::env::temp_dir().join(format!("vigo-from-file-{}", std::process::id()));
    std::fs::write(&f, "from-file-value").unwrap();
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "set", "raw", "vigo/api/key", "--from-file", f.to_str().unwrap()],
        "",
    );
    assert_code(&out, 0);
    std::fs::remove_file(&f).unwrap();

    let out = run_in(b, "vigocli", &["secrets", "list"], "");
    assert_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "vigo/api/key\nvigo/db/dsn\n");
    let out = run_in(b, "vigocli", &["secrets", "reveal", "vigo/db/dsn"], "");
    assert_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "postgres://u:p@h/db\n");
    // Written exactly as stored when stdout is not a terminal: the pipe's value kept its
    // newline, the file's had none (tests/binary_secrets.rs has the rule in full).
    let out = run_in(b, "vigocli", &["secrets", "reveal", "vigo/api/key"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-file-value");

    let out = run_in(b, "vigocli", &["secrets", "delete", "vigo/api/key"], "");
    assert_code(&out, 0);
    let out = run_in(b, "vigocli", &["secrets", "reveal", "vigo/api/key"], "");
    assert_code(&out, 1);
    assert!(text(&out).contains("not found"));

    // Every act is in the audit log, by key name, and the chain verifies.
    let out = run_in(b, "vigocli", &["audit", "tail", "-n", "50", "--json"], "");
    assert_code(&out, 0);
    let log = String::from_utf8_lossy(&out.stdout).to_string();
    for action in ["secret.set", "secret.accessed", "secret.deleted", "vault.unlocked"] {
        assert!(log.contains(&format!("\"action\":\"{action}\"")), "missing {action} in\n{log}");
    }
    assert!(!log.contains("postgres://"));
    let out = run_in(b, "vigocli", &["audit", "verify"], "");
    assert_code(&out, 0);
    assert!(text(&out).contains("audit chain intact"));
}

#[test]
fn gated_verbs_refuse_while_locked_and_lifecycle_verbs_do_not() {
    let base = TempDir::new("vault-gate");
    let b = base.path();
    let out = run_in(b, "vigocli", &["secrets", "init"], &format!("{PASS}\n{PASS}\n"));
    assert_code(&out, 0);
    for verb in
        [&["list"][..], &["reveal", "a"], &["delete", "a"], &["set", "raw", "a"], &["set", "password", "a"]]
    {
        let mut args = vec!["secrets"];
        args.extend_from_slice(verb);
        let out = run_in(b, "vigocli", &args, "value\n");
        assert_code(&out, 3);
        assert!(text(&out).contains("vault is locked"), "{verb:?}: {}", text(&out));
    }
    let out = run_in(b, "vigocli", &["secrets", "unlock"], "wrong passphrase\n");
    assert_code(&out, 3);
    assert!(!b.join(".secrets-unlocked").exists());
    let out = run_in(b, "vigocli", &["secrets", "unlock"], &format!("{PASS}\n"));
    assert_code(&out, 0);
    assert_code(&run_in(b, "vigocli", &["secrets", "list"], ""), 0);
    // An expired sentinel refuses; a successful gated call slides the expiry forward.
    std::fs::write(b.join(".secrets-unlocked"), "1000\n").unwrap();
    let out = run_in(b, "vigocli", &["secrets", "list"], "");
    assert_code(&out, 3);
    assert!(text(&out).contains("expired"));
    let soon = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 60;
    std::fs::write(b.join(".secrets-unlocked"), format!("{soon}\n")).unwrap();
    assert_code(&run_in(b, "vigocli", &["secrets", "list"], ""), 0);
    let slid: u64 = std::fs::read_to_string(b.join(".secrets-unlocked")).unwrap().trim().parse().unwrap();
    assert!(slid > soon + 23 * 3600, "sentinel did not slide: {slid}");
    assert_code(&run_in(b, "vigocli", &["secrets", "lock"], ""), 0);
    assert_code(&run_in(b, "vigocli", &["secrets", "list"], ""), 3);
}

#[test]
fn init_is_idempotent_only_when_the_verifier_is_missing() {
    let base = TempDir::new("vault-init");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    assert_code(&run_in(b, "vigocli", &["secrets", "set", "raw", "keep/me"], "kept\n"), 0);
    let key_before = std::fs::read(b.join("secrets/.master.key")).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "init"], &format!("{PASS}\n{PASS}\n"));
    assert_code(&out, 3);
    assert!(text(&out).contains("rotate"));
    std::fs::remove_file(b.join("secrets-verifier.json")).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "init"], "new passphrase 1\nnew passphrase 1\n");
    assert_code(&out, 0);
    assert_eq!(std::fs::read(b.join("secrets/.master.key")).unwrap(), key_before);
    assert_code(&run_in(b, "vigocli", &["secrets", "unlock"], "new passphrase 1\n"), 0);
    let out = run_in(b, "vigocli", &["secrets", "reveal", "keep/me"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n");
    let out = run_in(b, "vigocli", &["secrets", "init"], "a\nb\n");
    assert_code(&out, 3);
}

#[test]
fn rotate_and_reset_change_the_passphrase_and_lock() {
    let base = TempDir::new("vault-rotate");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let out = run_in(b, "vigocli", &["secrets", "rotate"], "not it\n");
    assert_code(&out, 3);
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "rotate"],
        &format!("{PASS}\nsecond passphrase\nsecond passphrase\n"),
    );
    assert_code(&out, 0);
    assert!(!b.join(".secrets-unlocked").exists(), "rotate must clear the sentinel");
    assert_code(&run_in(b, "vigocli", &["secrets", "unlock"], &format!("{PASS}\n")), 3);
    assert_code(&run_in(b, "vigocli", &["secrets", "unlock"], "second passphrase\n"), 0);

    let out = run_in(b, "vigocli", &["secrets", "reset"], "reset\n");
    assert_code(&out, 3);
    let out = run_in(b, "vigocli", &["secrets", "reset"], "RESET\nthird passphrase\nthird passphrase\n");
    assert_code(&out, 0);
    assert!(!b.join(".secrets-unlocked").exists());
    assert_code(&run_in(b, "vigocli", &["secrets", "unlock"], "third passphrase\n"), 0);
    // Without read access to the master key, reset is refused (simulated by removing it).
    std::fs::rename(b.join("secrets/.master.key"), b.join("mk.bak")).unwrap();
    assert_code(&run_in(b, "vigocli", &["secrets", "reset"], "RESET\nx\nx\n"), 3);
}

#[test]
fn set_password_enforces_complexity_and_names_the_rule() {
    let base = TempDir::new("vault-pw");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    for (pw, rule) in [
        ("Sh0rt!", "12 characters"),
        ("nouppercase123!", "uppercase"),
        ("NOLOWERCASE123!", "lowercase"),
        ("NoDigitsAtAll!!", "digit"),
        ("NoSpecial12345", "special"),
    ] {
        let out = run_in(
            b,
            "vigocli",
            &["secrets", "set", "password", "vigo/os-users/dan"],
            &format!("{pw}\n{pw}\n"),
        );
        assert_code(&out, 1);
        assert!(text(&out).contains(rule), "{pw}: {}", text(&out));
    }
    let good = "Corr3ct-Horse-Battery";
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "set", "password", "vigo/os-users/dan"],
        &format!("{good}\nmismatch\n"),
    );
    assert_code(&out, 1);
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "set", "password", "vigo/os-users/dan"],
        &format!("{good}\n{good}\n"),
    );
    assert_code(&out, 0);
    let out = run_in(b, "vigocli", &["secrets", "reveal", "vigo/os-users/dan"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), good);
}

#[test]
fn bad_key_names_are_refused_before_any_path_is_built() {
    let base = TempDir::new("vault-names");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let long = "a".repeat(257);
    for bad in ["../x", "/abs", "a//b", "a/./b", "a/", long.as_str()] {
        let out = run_in(b, "vigocli", &["secrets", "set", "raw", bad], "v\n");
        assert_code(&out, 1);
        assert!(text(&out).contains("invalid secret key"), "{bad}: {}", text(&out));
    }
    assert!(!b.join("x").exists() && !std::path::Path::new("/abs").exists());
}

/// `--expect-head` takes a whole hash (a typo is a usage error, not "tampering"), and an
/// emptied database is reported, not silently rebuilt into an empty "intact" log.
#[test]
fn audit_verify_checks_its_input_and_never_rebuilds_an_emptied_database() {
    let base = TempDir::new("vault-audit");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let out = run_in(b, "vigocli", &["audit", "verify"], "");
    assert_code(&out, 0);
    let head = text(&out).trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(head.len(), 64, "{}", text(&out));
    assert_code(&run_in(b, "vigocli", &["audit", "verify", "--expect-head", &head], ""), 0);
    for bad in ["zz", "", &head[..8]] {
        let out = run_in(b, "vigocli", &["audit", "verify", "--expect-head", bad], "");
        assert_code(&out, 2);
        assert!(text(&out).contains("64 hex characters"), "{bad:?}: {}", text(&out));
    }
    for side in ["vigo.db-wal", "vigo.db-shm"] {
        let _ = std::fs::remove_file(b.join(side));
    }
    std::fs::write(b.join("vigo.db"), b"").unwrap();
    let out = run_in(b, "vigocli", &["audit", "verify"], "");
    assert_code(&out, 1);
    assert!(text(&out).contains("is empty"), "{}", text(&out));
    assert_eq!(std::fs::metadata(b.join("vigo.db")).unwrap().len(), 0);
}

/// Before `secrets init` the gated verbs say to create the vault, not to unlock it.
#[test]
fn gated_verbs_without_a_vault_say_to_init_it() {
    let base = TempDir::new("vault-none");
    let b = base.path();
    for verb in [&["list"][..], &["reveal", "a/b"][..], &["set", "raw", "a/b"][..]] {
        let out = run_in(b, "vigocli", &[&["secrets"][..], verb].concat(), "v\n");
        assert_code(&out, 1);
        assert!(text(&out).contains("there is no vault here"), "{verb:?}: {}", text(&out));
        assert!(text(&out).contains("vigocli secrets init"), "{verb:?}: {}", text(&out));
    }
}

/// A value is read only up to its limit: an endless source fails at once and stores nothing.
/// (Binary values are fine: tests/binary_secrets.rs.)
#[test]
fn oversized_values_are_refused_without_reading_them_whole() {
    let base = TempDir::new("vault-big");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let set = |extra: &[&str], stdin: &str| {
        run_in(b, "vigocli", &[&["secrets", "set", "raw", "big"][..], extra].concat(), stdin)
    };
    let out = set(&["--from-file", "/dev/zero"], "");
    assert_code(&out, 1);
    assert!(text(&out).contains("/dev/zero: the file holds more than 1024 KiB"), "{}", text(&out));
    let out = set(&[], &"x".repeat((1 << 20) + 1));
    assert_code(&out, 1);
    assert!(text(&out).contains("standard input holds more than 1024 KiB"), "{}", text(&out));
    assert!(!b.join("secrets/big").exists());
    // Exactly at the limit is fine.
    assert_code(&set(&[], &"y".repeat(1 << 20)), 0);
}

/// A secret the config still uses cannot be deleted by accident: the server would refuse that
/// config at its next start. `--force` is the way to mean it.
#[test]
fn delete_refuses_a_secret_the_config_uses_unless_forced() {
    let base = TempDir::new("vault-delete-used");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    for key in ["app/db", "app/spare"] {
        assert_code(&run_in(b, "vigocli", &["secrets", "set", "raw", key], "v\n"), 0);
    }
    std::fs::create_dir_all(b.join("config/modules")).unwrap();
    std::fs::write(b.join("config/nodes.vgo"), "envoys:\n  - match: \"*\"\n    roles: [app]\n").unwrap();
    std::fs::write(
        b.join("config/modules/app.vgo"),
        "vars:\n  pw: \"secret:app/db\"\nresources:\n  - {name: f, type: file, target_path: /f, content: \"secret:app/db\"}\n",
    )
    .unwrap();
    let out = run_in(b, "vigocli", &["secrets", "delete", "app/db"], "");
    assert_code(&out, 1);
    for want in [
        "secret:app/db is still used",
        "modules/app.vgo:2:7: uses secret:app/db",
        "modules/app.vgo:4:",
        "--force",
    ] {
        assert!(text(&out).contains(want), "{want}: {}", text(&out));
    }
    assert!(b.join("secrets/app/db").exists());
    assert_code(&run_in(b, "vigocli", &["secrets", "delete", "app/spare"], ""), 0);
    assert_code(&run_in(b, "vigocli", &["secrets", "delete", "app/db", "--force"], ""), 0);
    assert!(!b.join("secrets/app/db").exists());
}

/// Losing the master key must not be papered over by a fresh one that can open nothing.
#[test]
fn init_refuses_a_new_key_beside_secrets_sealed_by_a_lost_one() {
    let base = TempDir::new("vault-lost-key");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    assert_code(&run_in(b, "vigocli", &["secrets", "set", "raw", "app/db"], "v\n"), 0);
    std::fs::remove_file(b.join("secrets/.master.key")).unwrap();
    let verifier = std::fs::read(b.join("secrets-verifier.json")).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "init"], &format!("{PASS}\n{PASS}\n"));
    assert_code(&out, 3);
    assert!(text(&out).contains("holds 1 sealed secret(s) (e.g. app/db)"), "{}", text(&out));
    assert!(text(&out).contains("restore the key from your backup"), "{}", text(&out));
    assert!(!b.join("secrets/.master.key").exists());
    assert_eq!(std::fs::read(b.join("secrets-verifier.json")).unwrap(), verifier);
}

/// The vault's own files sit beside the secrets under dot names; no key may reach them.
#[test]
fn the_master_key_cannot_be_overwritten_or_deleted_as_a_secret() {
    let base = TempDir::new("vault-dotnames");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let master = std::fs::read(b.join("secrets/.master.key")).unwrap();
    for verb in [&["set", "raw"][..], &["delete"][..], &["reveal"][..]] {
        for key in [".master.key", "app/.hidden"] {
            let args = [&["secrets"][..], verb, &[key]].concat();
            let out = run_in(b, "vigocli", &args, "v\n");
            assert_code(&out, 1);
            assert!(text(&out).contains("must not start with '.'"), "{args:?}: {}", text(&out));
        }
    }
    assert_eq!(std::fs::read(b.join("secrets/.master.key")).unwrap(), master);
    assert!(!b.join("secrets/app").exists());
}

#[test]
fn copied_secret_file_reports_tampering() {
    let base = TempDir::new("vault-tamper");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    assert_code(&run_in(b, "vigocli", &["secrets", "set", "raw", "app/one"], "1\n"), 0);
    assert_code(&run_in(b, "vigocli", &["secrets", "set", "raw", "app/two"], "2\n"), 0);
    std::fs::copy(b.join("secrets/app/one"), b.join("secrets/app/two")).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "reveal", "app/two"], "");
    assert_code(&out, 1);
    assert!(text(&out).contains("tampered"), "{}", text(&out));
    // Fresh nonce per write: the same value twice gives different ciphertexts.
    let before = std::fs::read(b.join("secrets/app/one")).unwrap();
    assert_code(&run_in(b, "vigocli", &["secrets", "set", "raw", "app/one"], "1\n"), 0);
    assert_ne!(before, std::fs::read(b.join("secrets/app/one")).unwrap());
}

#[test]
fn symlink_in_the_secrets_dir_is_never_followed() {
    let base = TempDir::new("vault-symlink");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, b.join("secrets/evil")).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "set", "raw", "evil/x"], "v\n");
    assert_code(&out, 1);
    assert!(text(&out).contains("symlink"), "{}", text(&out));
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
}

#[test]
fn loose_or_short_master_key_is_refused_with_a_fix() {
    let base = TempDir::new("vault-mk");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let mk = b.join("secrets/.master.key");
    std::fs::set_permissions(&mk, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "list"], "");
    assert_code(&out, 1);
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));
    std::fs::write(&mk, "abcd").unwrap();
    std::fs::set_permissions(&mk, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "list"], "");
    assert_code(&out, 1);
    assert!(text(&out).contains("64 hex"), "{}", text(&out));
}

#[test]
fn canary_never_lands_in_plaintext_under_the_base_dir_or_in_logs() {
    let base = TempDir::new("vault-canary");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let canary = format!("CANARY-{}-{}", std::process::id(), "q9Zx7");
    let out = run_in(
        b,
        "vigocli",
        &["--log-format", "json", "secrets", "set", "raw", "app/canary"],
        &format!("{canary}\n"),
    );
    assert_code(&out, 0);
    assert!(!text(&out).contains(&canary));
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "set", "password", "app/pw"],
        &format!("{canary}Aa1!\n{canary}Aa1!\n"),
    );
    assert_code(&out, 0);
    assert!(!text(&out).contains(&canary));
    let hits = files_containing(b, canary.as_bytes());
    assert!(hits.is_empty(), "canary found in plaintext in {hits:?}");
    // It is really stored (the sweep above is not vacuous).
    let out = run_in(b, "vigocli", &["secrets", "reveal", "app/canary"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), canary);
}

/// Out-of-range validities and malformed names are usage errors that write nothing (a huge
/// validity used to overflow the date arithmetic and abort).
#[test]
fn generate_certs_refuses_bad_validity_and_names_before_writing() {
    let base = TempDir::new("vault-certs-bad");
    let b = base.path();
    let cases: [(&[&str], &str); 6] = [
        (&["--ca-days", "99999999"], "at most 36500 days"),
        (&["--server-days", "3000000"], "at most 36500 days"),
        (&["--ca-days", "10", "--server-days", "5000"], "cannot outlive the CA"),
        (&["--ca-days", "0"], "at least one day"),
        (&["--san", "bad name!"], "neither an IP address nor a DNS name"),
        (&["--san", ""], "neither an IP address nor a DNS name"),
    ];
    for (args, says) in cases {
        let out = run_in(b, "vigocli", &[&["secrets", "generate-certs"][..], args].concat(), "");
        assert_code(&out, 2);
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{args:?}: {}", text(&out));
        assert!(!b.join("tls").exists(), "{args:?} wrote certificates");
    }
}

#[test]
fn generate_certs_refuses_overwrite_and_openssl_verifies_them() {
    let base = TempDir::new("vault-certs");
    let b = base.path();
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "generate-certs", "--san", "vigo.example.com", "--san", "10.0.1.5"],
        "",
    );
    assert_code(&out, 0);
    for (f, mode) in [("ca", 0o644), ("ca_key", 0o600), ("cert", 0o644), ("key", 0o600)] {
        let m = std::fs::metadata(b.join("tls").join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, mode, "tls/{f}");
    }
    let v = std::process::Command::new("openssl")
        .args(["verify", "-CAfile", "tls/ca", "tls/cert"])
        .current_dir(b)
        .output()
        .expect("openssl must be installed (apt-get install -y openssl)");
    assert!(v.status.success(), "openssl verify: {}", text(&v));
    let show = std::process::Command::new("openssl")
        .args(["x509", "-in", "tls/cert", "-noout", "-text"])
        .current_dir(b)
        .output()
        .unwrap();
    let t = text(&show);
    for san in ["DNS:localhost", "IP Address:127.0.0.1", "DNS:vigo.example.com", "IP Address:10.0.1.5"] {
        assert!(t.contains(san), "missing SAN {san} in\n{t}");
    }
    assert!(t.contains("prime256v1") || t.contains("P-256"), "not P-256:\n{t}");
    let ca = std::process::Command::new("openssl")
        .args(["x509", "-in", "tls/ca", "-noout", "-enddate", "-startdate"])
        .current_dir(b)
        .output()
        .unwrap();
    assert!(ca.status.success());
    let before = std::fs::read(b.join("tls/ca")).unwrap();
    let out = run_in(b, "vigocli", &["secrets", "generate-certs"], "");
    assert_code(&out, 3);
    assert!(text(&out).contains("--force"));
    assert_eq!(std::fs::read(b.join("tls/ca")).unwrap(), before);
    assert_code(&run_in(b, "vigocli", &["secrets", "generate-certs", "--force"], ""), 0);
    assert_ne!(std::fs::read(b.join("tls/ca")).unwrap(), before);
}

#[test]
fn verifier_phc_string_verifies_with_an_independent_argon2() {
    let base = TempDir::new("vault-argon2");
    let b = base.path();
    init_unlocked_vault(b, PASS);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("secrets-verifier.json")).unwrap()).unwrap();
    let phc = v["phc"].as_str().unwrap();
    assert!(phc.starts_with("$argon2id$"));
    let script = "import sys\nfrom argon2 import PasswordHasher\nfrom argon2.exceptions import VerifyMismatchError\nph=PasswordHasher()\ntry:\n    ph.verify(sys.argv[1], sys.argv[2]); print('match')\nexcept VerifyMismatchError:\n    print('mismatch')\n";
    let check = |pw: &str| {
        let out = std::process::Command::new("/usr/bin/python3")
            .args(["-c", script, phc, pw])
            .output()
            .expect("python3 must be installed");
        assert!(
            out.status.success(),
            "python argon2 failed (apt-get install -y python3-argon2): {}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(check(PASS), "match");
    assert_eq!(check("not the passphrase"), "mismatch");
}
