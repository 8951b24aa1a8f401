//! The first start of a new installation: vigosrv in an empty base directory makes the master
//! key and the certificates itself, audits it, and says what to do next; `vigocli secrets init`
//! then keeps that key. Never beside sealed secrets or certificates that are already there.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Starts vigosrv on `base`, stops it once it listens; returns its stderr and whether it
/// started.
fn start_and_stop(base: &std::path::Path) -> (String, bool) {
    let mut child = Command::new(role("vigosrv"))
        .env_remove("LD_LIBRARY_PATH")
        .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
        .env("VIGO_BASE_DIR", base)
        .env("VIGO_CONFIG", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let (mut log, mut started) = (String::new(), false);
    // Ends when the server exits (its stderr closes) or says nothing for 30 s.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        if !started && line.contains("listening agent=") {
            started = true;
            let _ = common::fleet::nix_kill(child.id(), "TERM");
        }
        log.push_str(&line);
        log.push('\n');
    }
    let _ = child.kill();
    let _ = child.wait();
    (log, started)
}

#[test]
fn an_empty_base_directory_gets_a_key_and_certificates_once() {
    let dir = TempDir::new("first-start");
    let base = dir.join("srv");
    let (log, started) = start_and_stop(&base);
    assert!(started, "{log}");
    assert!(
        log.contains("first start: created the master key") && log.contains("vigocli secrets init"),
        "{log}"
    );
    assert!(log.contains("first start: created a private CA"), "{log}");
    let key_file = base.join("secrets/.master.key");
    let key = std::fs::read(&key_file).unwrap();
    // The certificates are real: openssl checks the server certificate against the CA.
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(base.join("tls/ca"))
        .arg(base.join("tls/cert"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    let audit = run_in(&base, "vigocli", &["audit", "tail", "--json"], "");
    assert_code(&audit, 0);
    assert_eq!(text(&audit).matches("server.first_start").count(), 1, "{}", text(&audit));

    // init sets the passphrase and keeps the key the server made.
    let out = run_in(&base, "vigocli", &["secrets", "init"], "first pass phrase\nfirst pass phrase\n");
    assert_code(&out, 0);
    assert_eq!(std::fs::read(&key_file).unwrap(), key, "init keeps the existing key");
    let out = run_in(&base, "vigocli", &["secrets", "unlock"], "first pass phrase\n");
    assert_code(&out, 0);
    let out = run_in(&base, "vigocli", &["secrets", "set", "raw", "vigo/x"], "v");
    assert_code(&out, 0);

    // A second start makes nothing.
    let (log, started) = start_and_stop(&base);
    assert!(started && !log.contains("first start"), "{log}");
    let audit = run_in(&base, "vigocli", &["audit", "tail", "--json"], "");
    assert_eq!(text(&audit).matches("server.first_start").count(), 1);
    assert_code(&run_in(&base, "vigocli", &["audit", "verify"], ""), 0);
}

#[test]
fn never_beside_sealed_secrets_whose_key_is_missing() {
    let dir = TempDir::new("first-start-sealed");
    let base = dir.join("srv");
    init_unlocked_vault(&base, "a pass phrase");
    assert_code(&run_in(&base, "vigocli", &["secrets", "set", "raw", "vigo/db"], "v"), 0);
    std::fs::remove_file(base.join("secrets/.master.key")).unwrap();
    let (log, started) = start_and_stop(&base);
    assert!(!started, "{log}");
    assert!(log.contains(".master.key"), "{log}");
    assert!(!base.join("secrets/.master.key").exists(), "no new key beside sealed secrets");
    assert!(!base.join("tls").exists(), "nothing else made either");
}
