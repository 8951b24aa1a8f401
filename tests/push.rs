//! Server push: agents that hold a Watch stream check in as soon as the server nudges them (a
//! task for them, the next batch of a task, a publish), long before their interval (five
//! minutes here); a foreign client checks a nudge's signature with the CA certificate alone,
//! and a captured Watch envelope cannot be replayed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::*;

/// A `vigo-agent run` in the background whose log lines are kept (the pipe never fills).
struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(f: &Fleet, name: &str) -> Daemon {
        let root = f.root(name);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let mut child = spawn_role(
            "vigo-agent",
            &f.agent_base(name),
            &["run", "--root", root.to_str().unwrap()],
            "",
            &[("RUST_LOG", "info")],
        );
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Daemon { child, log }
    }

    fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    fn text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_code(out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

const NODES: &str = "envoys:\n  - match: \"*\"\n    roles: [app]\n";

#[test]
fn nudged_agents_take_tasks_next_batches_and_publishes_at_once() {
    let mut f = Fleet::new("push");
    f.write_config(&[("nodes.vgo", NODES), ("modules/app.vgo", "resources: []\n")]);
    f.start_server();
    for name in ["web1", "web2"] {
        f.enroll(name);
        assert_code(&f.run_once(name), 0);
    }
    let daemons: Vec<Daemon> = ["web1", "web2"].iter().map(|n| Daemon::start(&f, n)).collect();
    for d in &daemons {
        wait_for("the push streams", Duration::from_secs(30), || d.logged("holding a push stream"));
    }

    // Two batches: the first is nudged when the task is made, the second when the first's
    // result arrives. The interval is five minutes: only nudges can finish this in time.
    let made = json(
        &f.cli(&["task", "run", "echo pushed", "--target", "web*", "--batch-size", "1", "-o", "json"], ""),
    );
    assert_eq!(made["nudged"], 1, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    wait_for("both batches of the task", Duration::from_secs(30), || {
        let s = json(&f.cli(&["task", "status", &id, "-o", "json"], ""));
        s["runs"].as_array().unwrap().iter().all(|r| r["state"] == "ok")
    });

    // A publish reaches every watching envoy at once.
    f.write_config(&[(
        "modules/app.vgo",
        "resources:\n  - {name: pushed, type: file, target_path: /etc/pushed, content: \"now\\n\"}\n",
    )]);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    wait_for("the published file on both hosts", Duration::from_secs(30), || {
        ["web1", "web2"].iter().all(|n| f.root(n).join("etc/pushed").exists())
    });
    for d in &daemons {
        assert!(d.logged("nudged by the server"), "{}", d.text());
    }
}

#[test]
fn a_foreign_client_verifies_a_nudge_with_the_ca_and_cannot_replay_its_watch() {
    let mut f = Fleet::new("push-foreign");
    f.write_config(&[("nodes.vgo", NODES), ("modules/app.vgo", "resources: []\n")]);
    f.start_server();
    let agent = f.enroll("web1");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/foreign/vigo_client.py");
    let mut python = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg("watch")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto"))
        .arg(&f.agent_addr)
        .arg(f.base().join("tls/ca"))
        .arg(&agent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with grpcio is required (scripts/test-all.sh installs it)");
    let mut out = BufReader::new(python.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.trim() != "open" {
        let _ = python.kill();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut python.stderr.take().unwrap(), &mut err).unwrap();
        panic!("the foreign client did not get its stream: {line}\n{err}");
    }
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    line.clear();
    out.read_line(&mut line).unwrap();
    let status = python.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut python.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "foreign client failed: {line}\n{err}");
    let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["verified"], true, "{answer}");
    assert_eq!(answer["reason"], "publish");
    assert_eq!(answer["replay"], "UNAUTHENTICATED", "a Watch envelope works once");
}
