//! `vigo-agent run` against a server: a run aborted before any resource ran still reaches
//! the server's `runs` table, as a failed run that says why.

mod common;

use common::fleet::Fleet;
use common::*;

const NODES: &str = "envoys:\n  - match: \"web*\"\n    roles: [web]\n";
const WEB: &str = r#"
resources:
  - name: conf
    type: file
    target_path: /etc/app.conf
    content: "secret:app/token"
"#;

/// The run ids of `vigocli runs list`, newest first, with their status.
fn runs(f: &Fleet) -> Vec<(String, String)> {
    let out = f.cli(&["runs", "list", "-n", "20"], "");
    assert_code(&out, 0);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((cols.first()?.to_string(), cols.get(2)?.to_string()))
        })
        .collect()
}

#[test]
fn a_run_aborted_before_any_resource_ran_is_reported_as_failed_with_its_reason() {
    let mut f = Fleet::new("aborted");
    f.set_secret("app/token", "tok-Aborted-1");
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", WEB)]);
    f.start_server();
    let agent_base = f.enroll("web1");

    // 1. A secret the bundle needs is gone from the vault: the server cannot serve the bundle
    //    (it says why at check-in), nothing runs.
    assert_code(&f.cli(&["secrets", "delete", "app/token", "--force"], ""), 0);
    let out = f.run_once("web1");
    assert_code(&out, 1);
    assert!(!f.root("web1").join("etc/app.conf").exists());
    let listed = runs(&f);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].1, "failed");
    let shown = text(&f.cli(&["runs", "show", "-o", "json", &listed[0].0], ""));
    assert!(shown.contains("run aborted: check-in refused"), "{shown}");
    assert!(shown.contains("app/token"), "the reason names the key: {shown}");
    assert!(shown.contains("\"noop\": true"), "nothing was applied: {shown}");

    // 2. A bundle the agent refuses to run (here: its guardrails cannot be read).
    f.set_secret("app/token", "tok-Aborted-2");
    std::fs::write(agent_base.join("guardrails.yaml"), "protected_path: [/srv]\n").unwrap();
    let out = f.run_once("web1");
    assert_code(&out, 1);
    let listed = runs(&f);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let shown = text(&f.cli(&["runs", "show", "-o", "json", &listed[0].0], ""));
    assert!(shown.contains("run aborted") && shown.contains("unknown field"), "{shown}");
    assert!(!shown.contains("tok-Aborted"), "{shown}");

    // Fixed, the next run converges and is reported as usual.
    std::fs::remove_file(agent_base.join("guardrails.yaml")).unwrap();
    assert_code(&f.run_once("web1"), 0);
    assert_eq!(runs(&f)[0].1, "changed");
}

/// A refusal that can pass (here: the server's budget of run reports) does not end the agent's
/// run loop: it warns and tries again at the next interval. Only revocation ends it.
#[test]
fn the_run_loop_outlives_a_refusal_and_stops_on_revocation() {
    let mut f = Fleet::new("loop-refusal");
    f.use_server_settings("checkin_interval: 1s\nruns:\n  reports_per_hour: 1\n");
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", "resources: []\n")]);
    f.start_server();
    let base = f.enroll("web1");
    let root = f.root("web1");
    std::fs::create_dir_all(&root).unwrap();
    let mut agent = spawn_role("vigo-agent", &base, &["run", "--root", root.to_str().unwrap()], "", &[]);
    let mut log = StderrLog::follow(&mut agent);
    // Ten reports are the burst; the eleventh is refused. Wait for the refusal, then for one
    // more cycle after it.
    let limit = std::time::Duration::from_secs(90);
    wait_for("ten reported runs", limit, || runs(&f).len() >= 10);
    let refusals = || log.count("too many run reports");
    wait_for("a refused report and a cycle after it", limit, || refusals() >= 2);
    assert!(agent.try_wait().unwrap().is_none(), "the loop ended on a refusal it should have outlived");
    // Revocation is final: the loop ends with exit 3.
    assert_code(&f.cli(&["envoys", "revoke", "web1"], ""), 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while agent.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = agent.wait_with_output().unwrap();
    log.finish();
    assert_eq!(out.status.code(), Some(3), "{}", log.text());
    assert!(log.contains("revoked"), "{}", log.text());
}
