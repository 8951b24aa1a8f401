//! An outside scanner (sslscan) against a running vigosrv: both the agent port (mutual TLS)
//! and the admin port offer TLS 1.3 only, only AEAD cipher suites, and an ECDSA P-256
//! certificate. The assertions parse sslscan's own report, so a server that also offered
//! TLS 1.2 (or a CBC suite, or an RSA key) fails here.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::fleet::Fleet;

/// What sslscan 2.x reports for one port.
struct Scan {
    raw: String,
    /// protocol name -> "enabled" / "disabled" (the "SSL/TLS Protocols:" section)
    protocols: BTreeMap<String, String>,
    /// every "Preferred"/"Accepted" line of the "Supported Server Cipher(s):" section
    ciphers: Vec<String>,
}

fn sslscan(addr: &str) -> Scan {
    let out = Command::new("sslscan")
        .args(["--no-colour", addr])
        .output()
        .unwrap_or_else(|e| panic!("sslscan is required for this test ({e}): apt-get install -y sslscan"));
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "sslscan {addr} failed:\n{raw}{}", String::from_utf8_lossy(&out.stderr));
    assert!(raw.contains("Testing SSL server"), "sslscan did not reach {addr}:\n{raw}");
    let mut protocols = BTreeMap::new();
    let mut ciphers = Vec::new();
    let mut section = "";
    for line in raw.lines() {
        let t = line.trim();
        if t.ends_with(':') && line.starts_with("  ") {
            section = t;
            continue;
        }
        match section {
            "SSL/TLS Protocols:" => {
                let mut it = t.split_whitespace();
                if let (Some(p), Some(state)) = (it.next(), it.next()) {
                    protocols.insert(p.to_string(), state.to_string());
                }
            }
            "Supported Server Cipher(s):" if t.starts_with("Preferred") || t.starts_with("Accepted") => {
                ciphers.push(t.to_string())
            }
            _ => {}
        }
    }
    Scan { raw, protocols, ciphers }
}

/// Every assertion for one listener; `what` names it in failures.
fn assert_tls13_only(what: &str, scan: &Scan) {
    let raw = &scan.raw;
    let expected = [
        ("SSLv2", "disabled"),
        ("SSLv3", "disabled"),
        ("TLSv1.0", "disabled"),
        ("TLSv1.1", "disabled"),
        ("TLSv1.2", "disabled"),
        ("TLSv1.3", "enabled"),
    ];
    for (proto, state) in expected {
        assert_eq!(
            scan.protocols.get(proto).map(String::as_str),
            Some(state),
            "{what}: sslscan reports {proto} as {:?}, want {state}:\n{raw}",
            scan.protocols.get(proto)
        );
    }
    assert!(!scan.ciphers.is_empty(), "{what}: sslscan listed no accepted cipher suite:\n{raw}");
    // The three TLS 1.3 suites rustls offers; anything else is a regression.
    let allowed = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];
    let weak = ["RC4", "DES", "3DES", "NULL", "EXPORT", "EXP-", "ANON", "ADH", "AECDH", "CBC", "MD5"];
    for line in &scan.ciphers {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.get(1), Some(&"TLSv1.3"), "{what}: a suite on another protocol: {line}\n{raw}");
        let suite = fields.get(4).copied().unwrap_or_default();
        assert!(allowed.contains(&suite), "{what}: unexpected cipher suite {suite:?} in {line:?}\n{raw}");
        let upper = line.to_uppercase();
        assert!(!weak.iter().any(|w| upper.contains(w)), "{what}: weak cipher accepted: {line}\n{raw}");
    }
    // The certificate section: ECDSA with SHA-256 over the P-256 curve.
    assert!(
        raw.lines().any(|l| l.starts_with("Signature Algorithm:") && l.contains("ecdsa-with-SHA256")),
        "{what}: certificate is not signed with ecdsa-with-SHA256:\n{raw}"
    );
    assert!(
        raw.lines().any(|l| l.starts_with("ECC Curve Name:") && l.trim_end().ends_with("prime256v1")),
        "{what}: certificate key is not ECDSA P-256 (prime256v1):\n{raw}"
    );
    assert!(!raw.contains("RSA Key Strength"), "{what}: an RSA certificate key:\n{raw}");
}

#[test]
fn agent_and_admin_ports_offer_only_tls13_with_aead_suites_and_a_p256_certificate() {
    let mut f = Fleet::new("tls-scan");
    f.start_server();
    // The agent port asks for a client certificate, but sslscan's probes complete enough of the
    // handshake (ServerHello, certificate) to enumerate protocols, suites and the key.
    let agent = sslscan(&f.agent_addr);
    assert_tls13_only("agent port", &agent);
    let admin = sslscan(&f.api_addr);
    assert_tls13_only("admin port", &admin);
    // The parser really read both sections (a format change would otherwise pass vacuously).
    assert_eq!(agent.protocols.len(), 6, "{}", agent.raw);
    assert_eq!(admin.protocols.len(), 6, "{}", admin.raw);
}
