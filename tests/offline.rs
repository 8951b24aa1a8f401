//! Offline convergence: with the server down, an agent applies the bundle it kept from its last
//! check-in (drift is corrected, secrets included), queues the report and sends it once the
//! server is back; the kept file holds no secret in any encoding and is useless on another
//! host; a revocation wipes it.

mod common;

use common::fleet::Fleet;
use common::*;

const CANARY: &str = "offline-canary-7Hq2xV";

fn status(f: &Fleet, name: &str) -> serde_json::Value {
    let out = f.agent(name, &["status", "-o", "json"]);
    assert_code(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run_count(f: &Fleet, name: &str) -> usize {
    let out = f.cli(&["runs", "list", "--envoy", name, "-o", "json"], "");
    assert_code(&out, 0);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().len()
}

/// A plain file and a file holding a secret, for envoys named web*.
fn write_app(f: &Fleet) {
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"web*\"\n    roles: [app]\n"),
        (
            "modules/app.vgo",
            "resources:\n  - {name: plain, type: file, target_path: /etc/plain, content: \"kept\\n\"}\n  - {name: cred, type: file, target_path: /etc/cred, content: \"secret:app/pw\", mode: \"0600\"}\n",
        ),
    ]);
    f.set_secret("app/pw", CANARY);
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

#[test]
fn a_server_outage_converges_from_the_encrypted_cache_and_reports_later() {
    let mut f = Fleet::new("offline");
    write_app(&f);
    f.start_server();
    f.enroll("web1");
    f.enroll("web2");
    assert_code(&f.run_once("web1"), 0);
    let cache = f.agent_base("web1").join("offline/bundle.cache");
    let raw = std::fs::read(&cache).expect("a check-in that applied keeps the bundle");
    let mode =
        |p: &std::path::Path| std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(p).unwrap()) & 0o777;
    assert_eq!((mode(cache.parent().unwrap()), mode(&cache)), (0o700, 0o600));
    for form in [CANARY.to_string(), hex(CANARY.as_bytes()), b64(CANARY.as_bytes())] {
        assert!(!holds(&raw, &form), "the cache holds {form}");
    }
    let before = status(&f, "web1");
    assert!(before["cached_bundle"]["bundle_hash"].is_string(), "{before}");
    assert_eq!(before["queued_reports"], 0);

    f.stop_server();
    // Drift behind Vigo's back while the server is away.
    let root = f.root("web1");
    std::fs::write(root.join("etc/plain"), "changed\n").unwrap();
    std::fs::remove_file(root.join("etc/cred")).unwrap();
    let offline = f.run_once("web1");
    // Converged from the cache; a one-off run still says the server was not reached.
    assert_code(&offline, 1);
    assert!(String::from_utf8_lossy(&offline.stderr).contains("bundle kept from the last check-in"));
    assert_eq!(std::fs::read_to_string(root.join("etc/plain")).unwrap(), "kept\n");
    assert_eq!(std::fs::read_to_string(root.join("etc/cred")).unwrap(), CANARY);
    let during = status(&f, "web1");
    assert_eq!(during["queued_reports"], 1, "{during}");

    // The cache copied to another host (another identity key) is of no use there.
    std::fs::create_dir_all(f.agent_base("web2").join("offline")).unwrap();
    std::fs::copy(&cache, f.agent_base("web2").join("offline/bundle.cache")).unwrap();
    let stolen = f.run_once("web2");
    assert_ne!(stolen.status.code(), Some(0), "{}", String::from_utf8_lossy(&stolen.stderr));
    assert!(!f.root("web2").join("etc/cred").exists(), "nothing applied from a copied cache");

    f.restart_server_after_stop();
    let runs_before = run_count(&f, "web1");
    assert_code(&f.run_once("web1"), 0);
    assert_eq!(run_count(&f, "web1"), runs_before + 2, "the queued report and the new run");
    let after = status(&f, "web1");
    assert_eq!(after["queued_reports"], 0, "{after}");
    assert!(after["last_contact_secs_ago"].as_i64().unwrap() < 60, "{after}");

    // Revoked: the next contact wipes what was kept, so nothing of it is applied again.
    assert_code(&f.cli(&["envoys", "revoke", "web1"], ""), 0);
    let refused = f.run_once("web1");
    assert_eq!(refused.status.code(), Some(3), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(!cache.exists(), "a revoked envoy's cache is wiped");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn captured(f: &Fleet, method_and_direction: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(f.capture_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(&format!("-{method_and_direction}.bin")))
        .collect();
    files.sort();
    files
}

/// What a converged fleet does every interval: the check-in names the bundle the agent holds,
/// the server leaves the resources out, nothing is resolved (the values of this epoch are
/// kept), and the converged run is reported as a count. Drift is still corrected from the
/// kept resources.
#[test]
fn a_converged_agent_is_not_sent_its_bundle_again_and_resolves_nothing() {
    let mut f = Fleet::new("steady");
    write_app(&f);
    f.start_server();
    f.enroll("web1");
    assert_code(&f.run_once("web1"), 0);
    let first_answer = std::fs::metadata(captured(&f, "CheckIn-response").last().unwrap()).unwrap().len();
    assert_eq!(captured(&f, "ResolveSecrets-request").len(), 1);

    assert_code(&f.run_once("web1"), 0);
    let steady_answer = std::fs::metadata(captured(&f, "CheckIn-response").last().unwrap()).unwrap().len();
    assert!(steady_answer < first_answer / 2, "resources left out: {steady_answer} vs {first_answer} bytes");
    assert_eq!(captured(&f, "ResolveSecrets-request").len(), 1, "the kept values of this epoch were used");
    let runs = f.cli(&["runs", "list", "--envoy", "web1", "-o", "json"], "");
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let shown = f.cli(&["runs", "show", runs[0]["id"].as_str().unwrap(), "-o", "json"], "");
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        (shown["status"].as_str(), shown["unchanged_omitted"].as_u64()),
        (Some("converged"), Some(2)),
        "{shown}"
    );

    // Drift behind Vigo's back is corrected from the kept resources, secret included.
    let root = f.root("web1");
    std::fs::remove_file(root.join("etc/cred")).unwrap();
    assert_code(&f.run_once("web1"), 0);
    assert_eq!(std::fs::read_to_string(root.join("etc/cred")).unwrap(), CANARY);
    assert_eq!(captured(&f, "ResolveSecrets-request").len(), 1);
}

/// Past `agent.offline_max_age` since the server last answered, the cache is removed instead of
/// applied (a host cut off for good, or a revoked envoy kept from hearing so, stops applying
/// its values); the queued reports stay. Within it, the cache is applied.
#[test]
fn a_cache_older_than_offline_max_age_is_removed_not_applied() {
    let mut f = Fleet::new("offline-max-age");
    write_app(&f);
    f.start_server();
    f.enroll("web1");
    assert_code(&f.run_once("web1"), 0);
    f.stop_server();
    let config = f.dir.join("agent.yaml");
    std::fs::write(&config, "agent:\n  offline_max_age: 1h\n").unwrap();
    let config = config.display().to_string();
    let root = f.root("web1");
    let run = |f: &Fleet| {
        f.run_role(
            "vigo-agent",
            &f.agent_base("web1"),
            &["run", "--once", "--root", root.to_str().unwrap()],
            "",
            &[("VIGO_CONFIG", config.clone())],
        )
    };
    let contact = f.agent_base("web1").join("offline/last-contact");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    std::fs::write(&contact, (now - 1800).to_string()).unwrap();
    std::fs::write(root.join("etc/plain"), "drift 1\n").unwrap();
    assert_code(&run(&f), 1);
    assert_eq!(std::fs::read_to_string(root.join("etc/plain")).unwrap(), "kept\n", "applied within the age");

    std::fs::write(&contact, (now - 7200).to_string()).unwrap();
    std::fs::write(root.join("etc/plain"), "drift 2\n").unwrap();
    let out = run(&f);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent.offline_max_age"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(root.join("etc/plain")).unwrap(), "drift 2\n", "nothing applied");
    assert!(!f.agent_base("web1").join("offline/bundle.cache").exists(), "the cache is removed");
    assert_eq!(status(&f, "web1")["queued_reports"], 1, "the earlier offline report stays queued");
}

/// A RunReport as protobuf bytes with `status` and a `bundle_hash` of `hash_len` characters.
fn raw_report(status: &str, hash_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |tag: u8, bytes: &[u8]| {
        out.push(tag);
        let mut n = bytes.len();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(bytes);
    };
    field(0x0a, "h".repeat(hash_len).as_bytes()); // 1: bundle_hash
    field(0x2a, status.as_bytes()); // 5: status
    out
}

/// A queued report the server refuses for what it is (over `runs.max_report_bytes`) is dropped
/// instead of holding the reports queued behind it for ever; the ones behind it are sent.
#[test]
fn a_queued_report_refused_for_good_does_not_hold_the_queue() {
    let mut f = Fleet::new("offline-refused");
    f.use_server_settings("runs:\n  max_report_bytes: 4096\n");
    write_app(&f);
    f.start_server();
    f.enroll("web1");
    assert_code(&f.run_once("web1"), 0);
    let queue = f.agent_base("web1").join("offline/reports");
    std::fs::create_dir_all(&queue).unwrap();
    std::fs::write(queue.join("00000000000000000001.pb"), raw_report("converged", 20_000)).unwrap();
    std::fs::write(queue.join("00000000000000000002.pb"), raw_report("converged", 64)).unwrap();
    let before = run_count(&f, "web1");
    assert_code(&f.run_once("web1"), 0);
    assert_eq!(status(&f, "web1")["queued_reports"], 0, "the oversized report no longer blocks");
    assert_eq!(run_count(&f, "web1"), before + 2, "the small queued report and this run");
}
