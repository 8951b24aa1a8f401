//! `vigo-agent doctor` on an enrolled host and on broken ones: identity key, client
//! certificate, pinned CA, clock and server each named, with the fix, and the exit status.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::fleet::Fleet;
use common::*;

fn doctor(f: &Fleet, name: &str) -> (std::process::Output, serde_json::Value) {
    let out = f.agent(name, &["doctor", "-o", "json"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out, json)
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

#[test]
fn an_enrolled_host_passes_and_each_break_is_named_with_its_fix() {
    let mut f = Fleet::new("agent-doctor");
    f.start_server();
    f.enroll("web1");
    f.enroll("web2");
    let (out, report) = doctor(&f, "web1");
    assert_code(&out, 0);
    for name in [
        "enrollment",
        "identity key",
        "pinned CA",
        "client certificate",
        "client certificate expiry",
        "server",
        "clock",
    ] {
        assert_eq!(check(&report, name)["status"], "ok", "{name}: {report:#}");
    }
    assert!(
        check(&report, "clock")["detail"].as_str().unwrap().contains("from the server's clock"),
        "{report:#}"
    );
    let table = f.agent("web1", &["doctor"]);
    assert_code(&table, 0);
    assert!(text(&table).contains("nothing failed"), "{}", text(&table));

    // Another host's certificate next to this host's key.
    let base = f.agent_base("web1");
    let own = std::fs::read(base.join("client.crt")).unwrap();
    std::fs::copy(f.agent_base("web2").join("client.crt"), base.join("client.crt")).unwrap();
    let (out, report) = doctor(&f, "web1");
    assert_code(&out, 1);
    let cert = check(&report, "client certificate");
    assert_eq!(cert["status"], "fail", "{report:#}");
    assert!(cert["detail"].as_str().unwrap().contains("identity key"), "{cert}");
    std::fs::write(base.join("client.crt"), &own).unwrap();

    // A pinned CA that did not issue the certificate.
    let pinned = std::fs::read(base.join("ca.crt")).unwrap();
    let other = f.dir.join("other-ca");
    std::fs::create_dir_all(&other).unwrap();
    assert_code(&run_in(&other, "vigocli", &["secrets", "generate-certs"], ""), 0);
    std::fs::copy(other.join("tls/ca"), base.join("ca.crt")).unwrap();
    let (out, report) = doctor(&f, "web1");
    assert_code(&out, 1);
    assert!(
        check(&report, "client certificate")["detail"].as_str().unwrap().contains("not issued by a CA"),
        "{report:#}"
    );
    std::fs::write(base.join("ca.crt"), &pinned).unwrap();

    // An identity key others can read: refused with the chmod, and the server is not tried.
    std::fs::set_permissions(base.join("identity.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (out, report) = doctor(&f, "web1");
    assert_code(&out, 1);
    assert!(check(&report, "identity key")["detail"].as_str().unwrap().contains("chmod 600"), "{report:#}");
    std::fs::set_permissions(base.join("identity.key"), std::fs::Permissions::from_mode(0o600)).unwrap();

    // A revoked envoy: the server's refusal, with enrolling again as the fix.
    assert_code(&f.cli(&["envoys", "revoke", "web2"], ""), 0);
    let (out, report) = doctor(&f, "web2");
    assert_code(&out, 1);
    assert!(check(&report, "server")["fix"].as_str().unwrap().contains("enroll"), "{report:#}");

    // The server down.
    f.stop_server();
    let (out, report) = doctor(&f, "web1");
    assert_code(&out, 1);
    assert_eq!(check(&report, "server")["status"], "fail", "{report:#}");
    assert_eq!(check(&report, "identity key")["status"], "ok", "{report:#}");

    // Never enrolled.
    let (out, report) = doctor(&f, "nobody");
    assert_code(&out, 1);
    assert!(
        check(&report, "enrollment")["fix"].as_str().unwrap().contains("vigo-agent enroll"),
        "{report:#}"
    );
}
