//! Traits: what `vigo-agent traits` collects agrees with the tools everyone trusts (`uname`,
//! /etc/os-release, `ip -j addr`, `nproc`), reaches the server inside the signed check-in,
//! is sent again only when it changed (or when the server lost it), and filters
//! `envoys list --where`.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::fleet::Fleet;
use common::*;

fn tool(cmd: &str, args: &[&str]) -> String {
    let out =
        Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd} is needed by this test: {e}"));
    assert!(out.status.success(), "{cmd} {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).map(|v| v.trim_matches('"').to_string())
}

#[test]
fn collected_traits_agree_with_uname_os_release_ip_and_nproc() {
    let dir = TempDir::new("traits-local");
    let out = run_in(&dir.join("agent"), "vigo-agent", &["traits"], "");
    assert_code(&out, 0);
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["errors"], serde_json::json!({}), "{t}");
    assert_eq!(t["kernel"]["release"], tool("uname", &["-r"]));
    assert_eq!(t["kernel"]["name"], tool("uname", &["-s"]));
    assert_eq!(t["arch"], tool("uname", &["-m"]));
    assert_eq!(t["hostname"], tool("uname", &["-n"]));
    assert_eq!(t["os"]["distribution"].as_str(), os_release("ID").as_deref());
    assert_eq!(t["os"]["version"].as_str(), os_release("VERSION_ID").as_deref());
    assert_eq!(t["cpu"]["count"].as_u64().unwrap().to_string(), tool("nproc", &["--all"]));
    assert_eq!(t["cpu"]["online"].as_u64().unwrap().to_string(), tool("nproc", &[]));
    // Every address `ip` knows, on the interface it names, and no other.
    let ip: serde_json::Value = serde_json::from_str(&tool("ip", &["-j", "addr"])).unwrap();
    let theirs: BTreeSet<String> = ip
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            let name = i["ifname"].as_str().unwrap().to_string();
            i["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |a| format!("{name} {}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        })
        .collect();
    let ours: BTreeSet<String> = t["network"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            let name = i["name"].as_str().unwrap().to_string();
            i["addresses"].as_array().unwrap().iter().map(move |a| format!("{name} {}", a.as_str().unwrap()))
        })
        .collect();
    assert_eq!(ours, theirs);
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    if !machine_id.trim().is_empty() {
        assert_eq!(t["machine_id"], machine_id.trim());
    }
    assert!(t["mounts"].as_array().unwrap().iter().any(|m| m["path"] == "/"), "{t}");
}

#[test]
fn traits_reach_the_server_once_and_filter_the_envoy_list() {
    let mut f = Fleet::new("traits");
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"*\"\n    roles: [web]\n"),
        ("modules/web.vgo", "resources: []\n"),
    ]);
    f.start_server();
    f.enroll("web1");
    f.enroll("web2");
    assert_code(&f.run_once("web1"), 0);
    let show = |name: &str| -> serde_json::Value {
        let out = f.cli(&["envoys", "show", name, "-o", "json"], "");
        assert_code(&out, 0);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let shown = show("web1");
    assert_eq!(shown["traits"]["kernel"]["release"], tool("uname", &["-r"]), "{shown}");
    assert!(show("web2")["traits"].is_null(), "web2 never checked in");

    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["envoys", "list", "-o", "json"];
        all.extend_from_slice(args);
        let out = f.cli(&all, "");
        assert_code(&out, 0);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    };
    let id = os_release("ID").unwrap();
    assert_eq!(names(&["--where", &format!("os.distribution={id}")]), ["web1"]);
    assert_eq!(names(&["--where", "kernel.release=*", "--where", "cpu.count=[0-9]*"]), ["web1"]);
    assert!(names(&["--where", "os.distribution=nosuchos"]).is_empty());
    let bad = f.cli(&["envoys", "list", "--where", "os..family=x"], "");
    assert_code(&bad, 2);

    // Unchanged traits are not sent again: only their digest. The agent's own RSS and
    // descriptor count may cross a rounding step between two runs, and then the traits did
    // change and go whole; so a store is allowed only with different content, and within a
    // few runs one pair must show the digest-only path.
    let mut before = shown;
    let mut digest_only = false;
    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_code(&f.run_once("web1"), 0);
        let after = show("web1");
        if after["traits_updated_at"] == before["traits_updated_at"] {
            digest_only = true;
            break;
        }
        assert_ne!(after["traits"], before["traits"], "the same traits were stored again");
        before = after;
    }
    assert!(digest_only, "every run stored its traits again");
    // A server that lost them asks, and the next check-in brings them back whole.
    let db = rusqlite::Connection::open(f.base().join("vigo.db")).unwrap();
    db.execute("DELETE FROM envoy_traits", []).unwrap();
    assert_code(&f.run_once("web1"), 0);
    // Asked for, not yet sent — unless the agent's own RSS or descriptor count crossed a
    // rounding step since the last run, when they changed and went whole anyway.
    if show("web1")["traits"].is_null() {
        assert_code(&f.run_once("web1"), 0);
    }
    assert_eq!(show("web1")["traits"]["arch"], tool("uname", &["-m"]));
}

/// Traits in configs: an entry that requires a trait, a template branching on one and ranging
/// over a list var, a `when:` on one. The server compiles with the traits the same check-in
/// brought; a trait the config reads but the envoy lacks fails that envoy's run, visibly.
#[test]
fn a_config_branching_on_traits_converges_and_a_missing_trait_fails_visibly() {
    let id = os_release("ID").unwrap();
    let arch = tool("uname", &["-m"]);
    let mut f = Fleet::new("traits-cfg");
    let nodes = format!(
        "envoys:\n  - match: \"*\"\n    roles: [base]\n  - match: \"web*\"\n    traits: {{os.distribution: \"{id}\"}}\n    roles: [native]\n  - match: \"web*\"\n    traits: {{os.distribution: nosuchos}}\n    roles: [never]\n  - match: db1\n    roles: [needs]\n"
    );
    let base = format!(
        "vars:\n  users: [ann, bob]\n  limits: {{nofile: \"4096\"}}\nresources:\n  - name: motd\n    type: file\n    target_path: /etc/motd\n    content: \"{{{{ if eq .Traits.os.distribution \\\"{id}\\\" }}}}native{{{{ else }}}}foreign{{{{ end }}}} {{{{ .Traits.arch }}}}\\n{{{{ range .Vars.users }}}}user {{{{ . }}}}\\n{{{{ end }}}}nofile={{{{ .Vars.limits.nofile }}}}\\n\"\n  - name: only-here\n    type: file\n    target_path: /etc/only-here\n    content: \"x\\n\"\n    when: \"{{{{ .Traits.os.distribution }}}} == {id}\"\n"
    );
    f.write_config(&[
        ("nodes.vgo", &nodes),
        ("modules/base.vgo", &base),
        ("modules/native.vgo", "resources:\n  - {name: native, type: file, target_path: /etc/native, content: \"n\\n\"}\n"),
        ("modules/never.vgo", "resources:\n  - {name: never, type: file, target_path: /etc/never, content: \"n\\n\"}\n"),
        ("modules/needs.vgo", "resources:\n  - {name: needs, type: file, target_path: /etc/needs, content: \"{{ .Traits.nosuch.thing }}\"}\n"),
    ]);
    // Validation cannot know any envoy's traits: it checks their syntax and passes.
    let validate = f.cli(&["config", "validate", f.base().join("config").to_str().unwrap()], "");
    assert_code(&validate, 0);
    f.start_server();
    f.enroll("web1");
    f.enroll("db1");

    assert_code(&f.run_once("web1"), 0);
    let root = f.root("web1");
    let motd = std::fs::read_to_string(root.join("etc/motd")).unwrap();
    assert_eq!(motd, format!("native {arch}\nuser ann\nuser bob\nnofile=4096\n"));
    assert!(root.join("etc/only-here").exists() && root.join("etc/native").exists());
    assert!(!root.join("etc/never").exists(), "an entry whose trait does not match applies nothing");
    // Converged: the second run changes nothing.
    let again = f.run_once("web1");
    assert_code(&again, 0);
    let runs = f.cli(&["runs", "list", "--envoy", "web1", "-o", "json"], "");
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs[0]["status"], "converged", "{runs}");

    // db1's config reads a trait no host has: its run fails and says why.
    let failed = f.run_once("db1");
    assert_ne!(failed.status.code(), Some(0));
    let listed = f.cli(&["envoys", "list", "--status", "failed", "-o", "json"], "");
    assert_code(&listed, 0);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["db1"], "{listed}");
    let runs = f.cli(&["runs", "list", "--envoy", "db1", "-o", "json"], "");
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let shown = f.cli(&["runs", "show", runs[0]["id"].as_str().unwrap(), "-o", "json"], "");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("no trait `nosuch`"), "{text}");
}
