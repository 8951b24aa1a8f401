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
