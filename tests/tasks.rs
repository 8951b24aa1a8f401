//! Ad-hoc tasks end to end: a command handed to envoys at check-in batch by batch, its
//! results (exit code, scrubbed output tail) collected per envoy; a dry run creates nothing;
//! too many failures stop the next batches; the server's danger scanner refuses without
//! --force and the agents' guardrails still refuse with it; no secret rides a command line.

mod common;

use common::fleet::Fleet;
use common::*;

const CANARY: &str = "task-canary-Vb61Qs";

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_code(out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn status(f: &Fleet, id: &str) -> serde_json::Value {
    json(&f.cli(&["task", "status", id, "-o", "json"], ""))
}

fn run_of<'a>(s: &'a serde_json::Value, envoy: &str) -> &'a serde_json::Value {
    s["runs"].as_array().unwrap().iter().find(|r| r["envoy"] == envoy).unwrap()
}

#[test]
fn tasks_run_batch_by_batch_report_scrubbed_results_and_stop_on_failures() {
    let mut f = Fleet::new("tasks");
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"*\"\n    roles: [app]\n"),
        ("modules/app.vgo", "resources:\n  - {name: cred, type: file, target_path: /etc/cred, content: \"secret:app/pw\", mode: \"0600\"}\n"),
    ]);
    f.set_secret("app/pw", CANARY);
    f.start_server();
    for name in ["web1", "web2", "db1"] {
        f.enroll(name);
        assert_code(&f.run_once(name), 0);
    }

    // A dry run plans and creates nothing.
    let plan = json(&f.cli(
        &["task", "run", "true", "--target", "web*", "--batch-size", "1", "--dry-run", "-o", "json"],
        "",
    ));
    assert_eq!(plan["batches"], serde_json::json!([["web1"], ["web2"]]), "{plan}");
    assert!(plan["id"].is_null());
    assert_eq!(json(&f.cli(&["task", "list", "-o", "json"], "")).as_array().unwrap().len(), 0);

    // The output reaches the operator with every secret value the agent holds scrubbed.
    let cred = f.root("web1").join("etc/cred");
    let command = format!("sh -c 'echo on-$0; cat {}' x", cred.display());
    let made =
        json(&f.cli(&["task", "run", &command, "--target", "web*", "--batch-size", "50%", "-o", "json"], ""));
    let id = made["id"].as_str().unwrap().to_string();
    assert_code(&f.run_once("web2"), 0);
    assert_eq!(run_of(&status(&f, &id), "web2")["state"], "waiting", "batch 2 waits for batch 1");
    // A noop run takes no task: it would only report it as not run, a failure.
    let root1 = f.root("web1");
    let noop = f.agent("web1", &["run", "--once", "--noop", "--root", root1.to_str().unwrap()]);
    assert!(noop.status.success(), "{}", text(&noop));
    assert_eq!(run_of(&status(&f, &id), "web1")["state"], "waiting", "a noop run leaves its part waiting");
    assert_code(&f.run_once("web1"), 0);
    let s = status(&f, &id);
    let web1 = run_of(&s, "web1");
    assert_eq!((web1["state"].as_str(), web1["exit_code"].as_i64()), (Some("ok"), Some(0)), "{s}");
    let output = web1["output"].as_str().unwrap();
    assert!(output.contains("on-x") && !output.contains(CANARY), "{output}");
    assert_code(&f.run_once("web2"), 0);
    assert_eq!(run_of(&status(&f, &id), "web2")["state"], "ok");
    assert!(s["runs"].as_array().unwrap().iter().all(|r| r["envoy"] != "db1"), "db1 is not a target");

    // More failures than allowed stop the batches that follow.
    let failing = json(
        &f.cli(&["task", "run", "sh -c 'exit 7'", "--target", "web*", "--batch-size", "1", "-o", "json"], ""),
    );
    let fid = failing["id"].as_str().unwrap().to_string();
    assert_code(&f.run_once("web1"), 0);
    assert_code(&f.run_once("web2"), 0);
    let s = status(&f, &fid);
    assert_eq!(run_of(&s, "web1")["exit_code"], 7);
    assert_eq!(run_of(&s, "web2")["state"], "waiting", "{s}");
    assert!(s["task"]["stopped"].as_str().unwrap().contains("failed"), "{s}");

    // The danger scanner refuses without --force; forced, the agent's guardrails still refuse.
    let danger = "mkfs.ext4 /nonexistent/vigo-task-test";
    let refused = f.cli(&["task", "run", danger, "--target", "db1"], "");
    assert_code(&refused, 3);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let forced = json(&f.cli(&["task", "run", danger, "--target", "db1", "--force", "-o", "json"], ""));
    assert_code(&f.run_once("db1"), 0);
    let s = status(&f, forced["id"].as_str().unwrap());
    let db1 = run_of(&s, "db1");
    assert_eq!(db1["state"], "failed");
    assert!(db1["exit_code"].is_null() && db1["error"].as_str().unwrap().contains("guardrail"), "{s}");
    assert!(f.audit_json().contains("task.created_forced"));

    // No secret on a command line.
    let secret = f.cli(&["task", "run", "echo secret:app/pw", "--target", "db1"], "");
    assert_code(&secret, 2);
    assert_eq!(json(&f.cli(&["task", "list", "-o", "json"], "")).as_array().unwrap().len(), 3);
}
