//! Certificates over time: agents renew their client certificates before they expire, the
//! server certificate is renewed under the same CA, and the CA itself is replaced in three
//! steps without cutting any agent off. Certificates are read with `openssl`.

mod common;

use std::path::Path;
use std::process::Command;

use common::fleet::Fleet;
use common::*;

fn installation(tag: &str) -> Fleet {
    let f = Fleet::new(tag);
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"*\"\n    roles: [base]\n"),
        ("modules/base.vgo", "resources:\n  - name: motd\n    type: file\n    target_path: /etc/motd\n    content: \"hello\\n\"\n"),
    ]);
    f
}

/// `openssl x509` on a PEM file: one field (`-enddate`, `-issuer`, `-ext subjectAltName`...).
fn x509_field(pem: &Path, field: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout"])
        .args(field.split(' '))
        .arg("-in")
        .arg(pem)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Days until a certificate expires, by `openssl x509 -checkend`.
fn valid_for_more_than_days(pem: &Path, days: u64) -> bool {
    Command::new("openssl")
        .args(["x509", "-noout", "-checkend", &(days * 86_400).to_string(), "-in"])
        .arg(pem)
        .status()
        .unwrap()
        .success()
}

fn audit_actions(f: &Fleet) -> Vec<String> {
    f.audit_json()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A client certificate near its end is renewed at the next check-in, over the signed channel,
/// for the same key; a fresh one is left alone.
#[test]
fn agents_renew_their_client_certificate_before_it_expires() {
    let mut f = installation("pki-renew");
    let config = f.use_server_settings("client_cert_days: 1\n");
    f.start_server();
    let agent = f.enroll("web1");
    let cert = agent.join("client.crt");
    assert!(!valid_for_more_than_days(&cert, 2), "issued for one day");
    let key_before = x509_field(&cert, "-pubkey");
    // The operator lengthens certificates and renews those with under 10 days left.
    std::fs::write(&config, "client_cert_days: 30\nclient_cert_renew_days: 10\n").unwrap();
    f.restart_server();
    assert_code(&f.run_once("web1"), 0);
    assert!(valid_for_more_than_days(&cert, 25), "renewed for 30 days: {}", x509_field(&cert, "-enddate"));
    assert_eq!(x509_field(&cert, "-pubkey"), key_before, "the identity key never changes");
    let renewed = std::fs::read(&cert).unwrap();
    assert_code(&f.run_once("web1"), 0);
    assert_eq!(std::fs::read(&cert).unwrap(), renewed, "a fresh certificate is not renewed again");
    assert_eq!(audit_actions(&f).iter().filter(|a| *a == "envoy.cert_renewed").count(), 1);
}

/// The server certificate is reissued under the same CA for the same names; a running server
/// takes it without a restart, and agents go on checking in.
#[test]
fn the_server_certificate_is_renewed_under_the_same_ca() {
    let mut f = installation("pki-server");
    f.start_server();
    f.enroll("web1");
    let cert = f.base().join("tls/cert");
    let before = std::fs::read(&cert).unwrap();
    let names = x509_field(&cert, "-ext subjectAltName");
    let out = f.cli(&["tls", "renew-server-cert", "--days", "90"], "");
    assert_code(&out, 0);
    assert!(text(&out).contains("now uses it"), "{}", text(&out));
    assert_ne!(std::fs::read(&cert).unwrap(), before);
    assert_eq!(x509_field(&cert, "-ext subjectAltName"), names, "same names");
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(f.base().join("tls/ca"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    // The running server presents the new certificate to the next connection.
    let served = Command::new("openssl")
        .args(["s_client", "-connect", &f.api_addr, "-tls1_3"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let fingerprint = x509_field(&cert, "-serial");
    let shown =
        std::fs::write(f.dir.join("served.txt"), &served.stdout).map(|_| f.dir.join("served.txt")).unwrap();
    assert_eq!(x509_field(&shown, "-serial"), fingerprint);
    assert_code(&f.run_once("web1"), 0);
    assert!(audit_actions(&f).contains(&"tls.server_cert_renewed".to_string()));
    assert!(audit_actions(&f).contains(&"tls.reloaded".to_string()));
}

/// start: agents learn to trust a new CA; switch: it signs the server certificate and the
/// agents' renewed certificates; finish: the old CA is trusted no more. No agent is cut off,
/// each step refuses while an agent lags, and a certificate of the old CA stops working.
#[test]
fn the_ca_is_rolled_over_without_cutting_agents_off() {
    let mut f = installation("pki-rollover");
    f.start_server();
    f.enroll("web1");
    f.enroll("web2");
    let old_ca = f.base().join("tls/ca");
    let old_issuer = x509_field(&old_ca, "-subject").replacen("subject=", "issuer=", 1);
    let saved_old_cert = f.dir.join("web1-old.crt");
    std::fs::copy(f.agent_base("web1").join("client.crt"), &saved_old_cert).unwrap();

    assert_code(&f.cli(&["tls", "ca-rollover", "switch"], ""), 3);
    assert_code(&f.cli(&["tls", "ca-rollover", "start"], ""), 0);
    assert_code(&f.cli(&["tls", "ca-rollover", "start"], ""), 3);
    // web2 has not checked in since: the switch waits for it, naming it.
    assert_code(&f.run_once("web1"), 0);
    let early = f.cli(&["tls", "ca-rollover", "switch"], "");
    assert_code(&early, 3);
    assert!(text(&early).contains("web2") && !text(&early).contains("web1,"), "{}", text(&early));
    assert_code(&f.run_once("web2"), 0);
    for agent in ["web1", "web2"] {
        let bundle = std::fs::read_to_string(f.agent_base(agent).join("ca.crt")).unwrap();
        assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "{agent} trusts both CAs");
    }
    let status = f.cli(&["tls", "status", "-o", "json"], "");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["envoys"]["trusting_current_bundle"], 2, "{status}");

    let switched = f.cli(&["tls", "ca-rollover", "switch"], "");
    assert_code(&switched, 0);
    assert!(text(&switched).contains("now uses it"), "{}", text(&switched));
    let new_issuer = x509_field(&f.base().join("tls/ca"), "-subject").replacen("subject=", "issuer=", 1);
    assert_ne!(new_issuer, old_issuer);
    assert_eq!(x509_field(&f.base().join("tls/cert"), "-issuer"), new_issuer);
    // Finishing now would strand both agents: refused.
    assert_code(&f.cli(&["tls", "ca-rollover", "finish"], ""), 3);
    for agent in ["web1", "web2"] {
        let out = f.run_once(agent);
        assert_code(&out, 0);
        let cert = f.agent_base(agent).join("client.crt");
        assert_eq!(
            x509_field(&cert, "-issuer"),
            new_issuer,
            "{agent} renewed under the new CA: {}",
            text(&out)
        );
    }
    assert_code(&f.cli(&["tls", "ca-rollover", "finish"], ""), 0);
    for agent in ["web1", "web2"] {
        assert_code(&f.run_once(agent), 0);
    }
    // A certificate from the old CA is refused at the handshake now.
    let answer = f.foreign(&[
        "other-ca",
        saved_old_cert.to_str().unwrap(),
        f.agent_base("web1").join("identity.key").to_str().unwrap(),
    ]);
    assert_eq!(answer["CheckIn"], "UNAVAILABLE", "{answer}");
    // Tokens minted now pin the new CA and enroll.
    f.enroll("web3");
    assert_code(&f.run_once("web3"), 0);
    // And the server restarts on the new set.
    f.restart_server();
    assert_code(&f.run_once("web1"), 0);
    let actions = audit_actions(&f);
    for a in ["tls.ca_rollover_started", "tls.ca_rollover_switched", "tls.ca_rollover_finished"] {
        assert!(actions.contains(&a.to_string()), "{a}");
    }
}

/// Every file of a directory, by name.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn staging_left(base: &Path) -> Vec<String> {
    std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".staging-"))
        .collect()
}

/// A TLS change is staged, its audit row committed, and only then put in place: when the row
/// cannot commit, the certificates in force stay exactly as they were and no staging copy is
/// left. (The database is made to fail every TLS row at COMMIT, after the operation ran inside
/// the transaction: a deferred foreign key that the row's trigger leaves violated.)
#[test]
fn a_tls_change_whose_audit_row_cannot_commit_changes_no_certificate() {
    let f = installation("pki-unaudited");
    assert_code(&f.cli(&["audit", "verify"], ""), 0);
    let db = rusqlite::Connection::open(f.base().join("vigo.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE commit_gate_parent (id INTEGER PRIMARY KEY);
         CREATE TABLE commit_gate (p INTEGER REFERENCES commit_gate_parent(id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TRIGGER tls_rows_never_commit AFTER INSERT ON audit WHEN NEW.action LIKE 'tls.%'
             BEGIN INSERT INTO commit_gate VALUES (1); END;",
    )
    .unwrap();
    let tls = f.base().join("tls");
    let before = snapshot(&tls);
    let tls_rows = |f: &Fleet| audit_actions(f).iter().filter(|a| a.starts_with("tls.")).count();
    let rows_before = tls_rows(&f);
    let changes: [&[&str]; 3] = [
        &["tls", "renew-server-cert"],
        &["tls", "ca-rollover", "start"],
        &["secrets", "generate-certs", "--force"],
    ];
    for args in changes {
        let out = f.cli(args, "");
        assert_code(&out, 1);
        assert!(text(&out).contains("audit log commit failed"), "{args:?}: {}", text(&out));
        assert!(snapshot(&tls) == before, "{args:?} changed the certificates without its audit row");
        assert!(staging_left(&f.base()).is_empty(), "{:?}", staging_left(&f.base()));
    }
    assert_eq!(tls_rows(&f), rows_before, "no row committed");
    // Once rows commit again, the same change goes through, with its row.
    db.execute_batch("DROP TRIGGER tls_rows_never_commit;").unwrap();
    assert_code(&f.cli(&["tls", "renew-server-cert"], ""), 0);
    assert!(snapshot(&tls)["cert"] != before["cert"]);
    assert!(audit_actions(&f).iter().any(|a| a == "tls.server_cert_renewed"));
}
