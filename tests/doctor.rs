//! `vigocli doctor` on a healthy installation and on broken ones: each problem is one line that
//! says what is wrong and what to do, and the exit status says whether anything failed.

mod common;

use common::fleet::Fleet;
use common::*;

fn doctor(f: &Fleet, args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let out = f.cli(&[&["doctor", "-o", "json"][..], args].concat(), "");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out, json)
}

fn status_of<'a>(report: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    report
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} in {report:#}"))
}

#[test]
fn a_healthy_installation_passes_and_each_break_is_named_with_its_fix() {
    let mut f = Fleet::new("doctor");
    f.set_secret("app/key", "doctor-value");
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"*\"\n    roles: [app]\n"),
        (
            "modules/app.vgo",
            "resources:\n  - {name: f, type: file, target_path: /etc/f, content: \"secret:app/key\"}\n",
        ),
    ]);
    f.start_server();
    f.enroll("web1");
    let (out, report) = doctor(&f, &[]);
    assert_code(&out, 0);
    for check in
        ["master key", "server key", "config tree", "database", "audit chain", "disk", "server", "envoys"]
    {
        assert_eq!(status_of(&report, check)["status"], "ok", "{check}: {report:#}");
    }
    let table = f.cli(&["doctor", "--quick"], "");
    assert_code(&table, 0);
    assert!(text(&table).contains("the last 10,000 rows holds"), "{}", text(&table));

    // A secret the config uses goes missing: the config check fails, naming it.
    assert_code(&f.cli(&["secrets", "delete", "app/key", "--force"], ""), 0);
    let (out, report) = doctor(&f, &[]);
    assert_code(&out, 1);
    let c = status_of(&report, "config tree");
    assert_eq!(c["status"], "fail");
    assert!(c["detail"].as_str().unwrap().contains("app/key") && c["fix"].is_string(), "{c}");
    f.set_secret("app/key", "doctor-value-2");

    // A loose master key is refused, with the chmod that fixes it.
    let key = f.base().join("secrets/.master.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (out, report) = doctor(&f, &[]);
    assert_code(&out, 1);
    assert!(status_of(&report, "master key")["detail"].as_str().unwrap().contains("chmod"), "{report:#}");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    // A server certificate near its end is a warning; a server that is down is a failure.
    f.stop_server();
    assert_code(&f.cli(&["secrets", "generate-certs", "--force", "--server-days", "10"], ""), 0);
    let (out, report) = doctor(&f, &[]);
    assert_code(&out, 1);
    assert_eq!(status_of(&report, "server certificate expiry")["status"], "warn", "{report:#}");
    assert_eq!(status_of(&report, "server")["status"], "fail", "{report:#}");
}

#[test]
fn a_foreign_server_certificate_and_tls_leftovers_are_named_with_their_fix() {
    let f = Fleet::new("doctor-tls");
    let tls = f.base().join("tls");
    let (_, report) = doctor(&f, &[]);
    assert_eq!(status_of(&report, "server certificate chain")["status"], "ok", "{report:#}");

    // What an interrupted change leaves: a staging directory, a next CA without its key.
    std::fs::create_dir(f.base().join(".tls.staging-4242")).unwrap();
    std::fs::copy(tls.join("ca"), tls.join("ca.next")).unwrap();
    let (_, report) = doctor(&f, &[]);
    let staging = status_of(&report, "TLS staging");
    assert_eq!(staging["status"], "warn", "{report:#}");
    assert!(staging["detail"].as_str().unwrap().contains(".tls.staging-4242"), "{staging}");
    assert_eq!(status_of(&report, "CA rollover")["status"], "warn", "{report:#}");

    // A certificate and key from another installation's CA: they match each other, but no
    // agent pinning this CA would accept them.
    let other = f.dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    assert_code(&run_in(&other, "vigocli", &["secrets", "generate-certs"], ""), 0);
    for file in ["cert", "key"] {
        std::fs::copy(other.join("tls").join(file), tls.join(file)).unwrap();
    }
    let (out, report) = doctor(&f, &[]);
    assert_code(&out, 1);
    assert_eq!(status_of(&report, "server key")["status"], "ok", "{report:#}");
    let chain = status_of(&report, "server certificate chain");
    assert_eq!(chain["status"], "fail", "{report:#}");
    assert!(chain["fix"].as_str().unwrap().contains("renew-server-cert"), "{chain}");

    // A key others can read: the fix is the chmod, not new certificates.
    std::fs::set_permissions(tls.join("key"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (_, report) = doctor(&f, &[]);
    let files = status_of(&report, "TLS files");
    assert!(files["detail"].as_str().unwrap().contains("chmod 600"), "{files}");
    assert!(!files["fix"].as_str().unwrap().contains("generate-certs"), "{files}");
}
