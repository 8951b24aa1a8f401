//! Fleet status through a real server and agent: one envoy is walked through every status —
//! never checked in, changed, converged, drifting (its file changed back behind Vigo's back
//! three runs in a row), failed (a failing resource), stale (silent past 2.5 check-in
//! intervals) and revoked — and another that only ran noop is pending. `vigocli fleet status`
//! and `envoys list --status` show each, in tables and in JSON.

mod common;

use common::fleet::Fleet;
use common::*;

const NODES: &str = "envoys:\n  - match: \"*\"\n    roles: [web]\n";
const MOTD: &str =
    "resources:\n  - name: motd\n    type: file\n    target_path: /etc/motd\n    content: \"managed\\n\"\n";

fn status_json(f: &Fleet) -> serde_json::Value {
    let out = f.cli(&["fleet", "status", "-o", "json"], "");
    assert_code(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The status of one envoy, as `envoys list --status` finds it (and only there).
fn status_of(f: &Fleet, name: &str) -> String {
    let out = f.cli(&["envoys", "list", "-o", "json"], "");
    assert_code(&out, 0);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = list.as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string();
    let filtered = f.cli(&["envoys", "list", "--status", &status, "-o", "json"], "");
    let filtered: serde_json::Value = serde_json::from_slice(&filtered.stdout).unwrap();
    assert!(filtered.as_array().unwrap().iter().all(|e| e["status"] == status.as_str()), "{filtered}");
    assert!(filtered.as_array().unwrap().iter().any(|e| e["name"] == name), "{filtered}");
    status
}

#[test]
fn an_envoy_walks_through_every_status() {
    let mut f = Fleet::new("fleet-status");
    f.use_server_settings("checkin_interval: 4s\n");
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", MOTD)]);
    f.start_server();
    f.enroll("web1");
    assert_eq!(status_of(&f, "web1"), "never");
    let attention = status_json(&f)["attention"].clone();
    assert_eq!(attention[0]["name"], "web1", "{attention}");

    assert_code(&f.run_once("web1"), 0);
    assert_eq!(status_of(&f, "web1"), "changed");
    assert_code(&f.run_once("web1"), 0);
    assert_eq!(status_of(&f, "web1"), "converged");

    // Someone keeps changing the file back by hand: each run corrects it again.
    let motd = f.root("web1").join("etc/motd");
    for n in 1..=3 {
        std::fs::write(&motd, format!("hand edit {n}\n")).unwrap();
        assert_code(&f.run_once("web1"), 0);
        let want = if n < 3 { "changed" } else { "drifting" };
        assert_eq!(status_of(&f, "web1"), want, "after hand edit {n}");
    }
    let table = f.cli(&["fleet", "status"], "");
    assert_code(&table, 0);
    assert!(
        text(&table).contains("drifting") && text(&table).contains("needing attention (1)"),
        "{}",
        text(&table)
    );

    // A resource that fails.
    f.write_config(&[(
        "modules/web.vgo",
        &format!("{MOTD}  - name: broken\n    type: exec\n    command: \"false\"\n"),
    )]);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    assert_code(&f.run_once("web1"), 1);
    assert_eq!(status_of(&f, "web1"), "failed");

    // Another envoy that only looked.
    f.enroll("web2");
    let root = f.root("web2");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    assert_code(&f.agent("web2", &["run", "--once", "--noop", "--root", root.to_str().unwrap()]), 0);
    assert_eq!(status_of(&f, "web2"), "pending");

    // Silent for more than 2.5 intervals (10 s): stale, whatever its last run said. (A short
    // interval keeps the test short; 10 s leaves a loaded machine time for the checks above.)
    std::thread::sleep(std::time::Duration::from_millis(12_000));
    assert_eq!(status_of(&f, "web1"), "stale");
    let v = status_json(&f);
    assert_eq!(v["counts"]["stale"], 2, "{v}");
    assert_eq!(v["rules"]["stale_after_secs"], 10, "{v}");
    assert_eq!(v["rules"]["drift_runs"], 3, "{v}");

    assert_code(&f.cli(&["envoys", "revoke", "web1"], ""), 0);
    assert_eq!(status_of(&f, "web1"), "revoked");
    let v = status_json(&f);
    let counts = v["counts"].as_object().unwrap();
    assert_eq!(counts.len(), 8, "every status is counted, zeros included: {v}");
    assert_eq!((counts["revoked"].as_u64(), counts["stale"].as_u64()), (Some(1), Some(1)), "{v}");

    let bad = f.cli(&["envoys", "list", "--status", "sleepy"], "");
    assert_code(&bad, 2);
    assert!(text(&bad).contains("not one of converged, changed, drifting"), "{}", text(&bad));
}
