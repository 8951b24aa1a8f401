//! The README's run command, end to end, and every example config loading.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn quickstart_converges_then_reports_nothing_changed() {
    let dir = TempDir::new("qs");
    let out = Command::new(vigo_exe())
        .args(["quickstart", "--no-wait", "--dir"])
        .arg(dir.join("demo"))
        .output()
        .unwrap();
    assert_code(&out, 0);
    let t = text(&out);
    assert!(t.contains("4 changed, 0 would change, 0 failed"), "first run:\n{t}");
    assert!(t.contains("run converged: 4 resources, 4 unchanged, 0 changed"), "second run:\n{t}");
    assert!(t.contains("audit chain intact"), "{t}");
    let conf = std::fs::read_to_string(dir.join("demo/root/etc/demo/app.conf")).unwrap();
    assert!(conf.contains("api_token = demo_"), "{conf}");
    // The demo secret was printed nowhere.
    let token = conf.split("api_token = ").nth(1).unwrap().trim();
    assert!(!t.contains(token));
    // Running it again in the same place is refused rather than clobbering the first one.
    let again = Command::new(vigo_exe())
        .args(["quickstart", "--no-wait", "--dir"])
        .arg(dir.join("demo"))
        .output()
        .unwrap();
    assert_code(&again, 2);
}

fn listening(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(300)).is_ok()
}

type Stdout = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// Starts `vigo quickstart` and waits for its "Press Ctrl-C" line; returns it, its stdout (kept
/// open: it still prints when stopping) and the agent and admin addresses it printed, both
/// already listening.
fn start_quickstart(dir: &TempDir) -> (std::process::Child, Stdout, String, String) {
    let mut child = Command::new(vigo_exe())
        .args(["quickstart", "--dir"])
        .arg(dir.join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut agent, mut api) = (String::new(), String::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("agents on ").nth(1) {
            agent = rest.split(',').next().unwrap().to_string();
            api = rest.split("https://").nth(1).unwrap().trim().to_string();
        }
        if line.contains("Press Ctrl-C") || Instant::now() > deadline {
            break;
        }
    }
    assert!(listening(&agent) && listening(&api), "server not up on {agent} / {api}");
    (child, lines, agent, api)
}

#[test]
fn quickstart_stops_cleanly_on_ctrl_c_and_leaves_nothing_listening() {
    let dir = TempDir::new("qs-int");
    let (mut child, _stdout, agent, api) = start_quickstart(&dir);
    common::fleet::nix_kill(child.id(), "INT").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!listening(&agent), "agent port still open after Ctrl-C");
    assert!(!listening(&api), "admin port still open after Ctrl-C");
}

#[test]
fn quickstart_killed_with_sigkill_takes_its_server_down() {
    let dir = TempDir::new("qs-kill");
    let (mut child, _stdout, agent, api) = start_quickstart(&dir);
    child.kill().unwrap(); // SIGKILL: the quickstart cannot stop its server itself
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while (listening(&agent) || listening(&api)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!listening(&agent), "the orphaned server still listens on {agent}");
    assert!(!listening(&api), "the orphaned server still listens on {api}");
}

#[test]
fn every_example_config_validates() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let base = TempDir::new("examples");
    init_unlocked_vault(base.path(), "examples passphrase");
    for key in ["demo/api-token", "web/tls/key", "vigo/db/password", "vigo/os-users/ops"] {
        assert_code(&run_in(base.path(), "vigocli", &["secrets", "set", "raw", key], "example value"), 0);
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap().flatten() {
        if !entry.path().join("nodes.vgo").exists() {
            continue;
        }
        seen += 1;
        let out = run_in(base.path(), "vigocli", &["config", "validate", entry.path().to_str().unwrap()], "");
        assert_code(&out, 0);
        assert!(text(&out).contains("config ok"), "{}", text(&out));
    }
    assert!(seen >= 2, "expected the quickstart and fleet examples, found {seen}");
}
