//! vigosrv and vigo-agent over real mTLS on 127.0.0.1: enrollment, signed requests,
//! entitlement, revocation and rotation, each checked from the outside.

mod common;

use common::fleet::Fleet;
use common::*;

const NODES: &str = r#"
envoys:
  - match: "web*"
    roles: [web]
  - match: "db*"
    roles: [db]
"#;

const WEB: &str = r#"
resources:
  - name: app-dir
    type: directory
    target_path: /etc/app
    mode: "0755"
  - name: app-config
    depends_on: [app-dir]
    type: file
    target_path: /etc/app/app.conf
    content: "api_key={{ .Vars.api_key }}\n"
    mode: "0600"
vars:
  api_key: "secret:web/api_key"
"#;

const DB: &str = r#"
resources:
  - name: db-dir
    type: directory
    target_path: /etc/db
  - name: db-password
    depends_on: [db-dir]
    type: file
    target_path: /etc/db/password
    content: "secret:db/password"
    watch_secret: ["db/password"]
  - name: reload-db
    type: exec
    command: "cat > /dev/null; echo reloaded >> /tmp/never-used"
    stdin: "secret:db/password"
    when: changed
    watch_secret: ["db/password"]
"#;

fn fleet(tag: &str) -> Fleet {
    let mut f = Fleet::new(tag);
    f.set_secret("web/api_key", "web-key-value-1");
    f.set_secret("db/password", "db-pass-value-1");
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", WEB), ("modules/db.vgo", DB)]);
    f.start_server();
    f
}

#[test]
fn enroll_check_in_resolve_and_the_secret_lands_in_the_root() {
    let f = fleet("wire-e2e");
    let agent = f.enroll("web1");
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(agent.join(p)).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode("identity.key"), 0o600);
    // The identity is a standard PKCS#8 Ed25519 key that OpenSSL reads.
    let pk = std::process::Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(agent.join("identity.key"))
        .arg("-noout")
        .arg("-text")
        .output()
        .unwrap();
    assert!(pk.status.success() && text(&pk).contains("ED25519"), "{}", text(&pk));
    let out = f.run_once("web1");
    assert_code(&out, 0);
    let written = std::fs::read_to_string(f.root("web1").join("etc/app/app.conf")).unwrap();
    assert_eq!(written, "api_key=web-key-value-1\n");
    // A second run changes nothing.
    let out = f.run_once("web1");
    assert_code(&out, 0);
    assert!(text(&out).contains("0 changed"), "{}", text(&out));
    let runs = f.cli(&["runs", "list", "--envoy", "web1"], "");
    assert_code(&runs, 0);
    assert_eq!(String::from_utf8_lossy(&runs.stdout).lines().count(), 3, "{}", text(&runs));
}

/// Base64 of 32 bytes of `b`, the shape of a token's secret.
fn base64_32(b: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([b; 32])
}

fn audit_rows(f: &Fleet, action: &str) -> Vec<serde_json::Value> {
    f.audit_json()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["action"] == action)
        .collect()
}

fn detail(row: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(row["detail"].as_str().unwrap()).unwrap()
}

#[test]
fn an_envoy_is_denied_another_envoys_key_and_the_denial_is_audited() {
    let mut f = fleet("wire-entitle");
    f.enroll("web1");
    f.enroll("db1");
    let out = f.agent("web1", &["resolve", "web/api_key"]);
    assert_code(&out, 0);
    let out = f.agent("db1", &["resolve", "web/api_key"]);
    assert_code(&out, 3);
    assert!(text(&out).contains("not entitled"), "{}", text(&out));
    // One request mixing db1's own key with web1's is refused whole, not answered in part.
    let answer = f.foreign(&["resolve", f.agent_base("db1").to_str().unwrap(), "db/password,web/api_key"]);
    assert_eq!(answer["resolve"][0], "PERMISSION_DENIED", "{answer}");
    let details = answer["resolve"][1].as_str().unwrap();
    assert!(details.contains("secret:web/api_key") && !details.contains("secret:db/password"), "{details}");
    // The first denial of the window is recorded whole, with the key names and no values ...
    let denials = audit_rows(&f, "secret.entitlement_denied");
    assert_eq!(denials.len(), 1, "{denials:#?}");
    assert!(denials[0]["detail"].as_str().unwrap().contains("web/api_key"));
    assert!(!f.audit_json().contains("web-key-value-1") && !f.audit_json().contains("db-pass-value-1"));
    // ... and the rest of the window as one summary with the count.
    f.stop_server();
    let denials = audit_rows(&f, "secret.entitlement_denied");
    assert_eq!(denials.len(), 2, "{denials:#?}");
    assert_eq!(detail(&denials[1])["count"], 1);
}

#[test]
fn a_token_works_once_and_an_expired_token_not_at_all() {
    let mut f = fleet("wire-token");
    let token = f.token(None);
    assert_code(&f.enroll_with("web1", &token), 0);
    let used = f.enroll_with("web2", &token);
    assert_code(&used, 3);
    let out = f.cli(&["tokens", "create", "--ttl", "1s", "--any-name"], "");
    assert_code(&out, 0);
    let short = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let expired = f.enroll_with("web3", &short);
    assert_code(&expired, 3);
    // A well-formed token the server never minted (same CA pin, another secret).
    let parts: Vec<&str> = token.split('.').collect();
    let made_up = format!("{}.{}.{}", parts[0], base64_32(7), parts[2]);
    let unknown = f.enroll_with("web4", &made_up);
    assert_code(&unknown, 3);
    // A used, an expired and a made-up token get the same answer; the reason is audited.
    let answer = |o: &std::process::Output| {
        text(o).lines().find(|l| l.contains("enrollment refused")).map(String::from)
    };
    assert!(answer(&used).is_some(), "{}", text(&used));
    assert_eq!(answer(&used), answer(&expired));
    assert_eq!(answer(&used), answer(&unknown));
    assert!(!text(&used).contains("already used") && !text(&expired).contains("expired"), "{}", text(&used));
    f.stop_server();
    let rows = audit_rows(&f, "enroll.rejected");
    assert_eq!(detail(&rows[0])["reason"], "token already used", "{rows:#?}");
    let reasons = detail(rows.last().unwrap())["reasons"].clone();
    assert_eq!(reasons["token expired"], 1, "{rows:#?}");
    // Tokens are stored hashed: the token text is nowhere in the database.
    let secret_part = token.split('.').nth(1).unwrap();
    assert!(files_containing(&f.base(), secret_part.as_bytes()).is_empty());
}

#[test]
fn twenty_parallel_enrollments_with_one_token_exactly_one_wins() {
    let f = fleet("wire-race");
    let token = f.token(None);
    let outs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (f, token) = (&f, &token);
                s.spawn(move || f.enroll_with(&format!("web{i}"), token))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners = outs.iter().filter(|o| o.status.code() == Some(0)).count();
    let refused = outs.iter().filter(|o| o.status.code() == Some(3)).count();
    assert_eq!((winners, refused), (1, 19), "{:?}", outs.iter().map(text).collect::<Vec<_>>());
}

#[test]
fn replayed_envelope_is_rejected_also_after_a_restart() {
    let mut f = fleet("wire-replay");
    let agent = f.enroll("web1");
    let saved = f.dir.join("envelope.bin");
    let answer = f.foreign(&["replay", agent.to_str().unwrap(), saved.to_str().unwrap()]);
    assert_eq!(answer["first"], "OK", "{answer}");
    assert_eq!(answer["replay"], "UNAUTHENTICATED", "{answer}");
    for method in ["ResolveSecrets", "ReportRun"] {
        assert_eq!(answer[method], serde_json::json!(["OK", "UNAUTHENTICATED"]), "{method}: {answer}");
    }
    // The replays stored nothing: one resolution audited, one run kept.
    assert_eq!(f.audit_json().matches("secret.epoch_resolved").count(), 1);
    let runs = f.cli(&["runs", "list"], "");
    assert_eq!(String::from_utf8_lossy(&runs.stdout).matches("converged").count(), 1, "{}", text(&runs));
    f.restart_server();
    let answer = f.foreign(&["send", agent.to_str().unwrap(), saved.to_str().unwrap()]);
    assert_eq!(answer["again"][0], "UNAUTHENTICATED", "{answer}");
    assert!(answer["again"][1].as_str().unwrap().contains("replayed"), "{answer}");
    // The real agent still works after the restart.
    assert_code(&f.run_once("web1"), 0);
}

#[test]
fn forged_tampered_or_misaddressed_envelopes_are_rejected() {
    let f = fleet("wire-forged");
    let agent = f.enroll("web1");
    let answer = f.foreign(&["forged", agent.to_str().unwrap()]);
    for case in ["wrong-key", "tampered-payload", "unknown-envoy", "wrong-method"] {
        assert_eq!(answer[case], "UNAUTHENTICATED", "{case}: {answer}");
    }
}

#[test]
fn revoked_envoy_is_refused_and_its_identity_can_never_enroll_again() {
    let f = fleet("wire-revoke");
    let agent = f.enroll("web1");
    assert_code(&f.run_once("web1"), 0);
    assert_code(&f.cli(&["envoys", "revoke", "web1"], ""), 0);
    let out = f.run_once("web1");
    assert_code(&out, 3);
    assert!(text(&out).contains("revoked"), "{}", text(&out));
    let answer = f.foreign(&["enroll-existing", agent.to_str().unwrap(), &f.token(None)]);
    assert_eq!(answer["enroll"][0], "PERMISSION_DENIED", "{answer}");
    let rows = audit_rows(&f, "enroll.rejected");
    assert_eq!(detail(rows.last().unwrap())["reason"], "identity of a revoked envoy", "{rows:#?}");
    let list = f.cli(&["envoys", "list"], "");
    assert!(String::from_utf8_lossy(&list.stdout).contains("revoked"));
}

#[test]
fn missing_or_foreign_client_certificates_fail_on_the_first_rpc() {
    let f = fleet("wire-mtls");
    let answer = f.foreign(&["no-cert"]);
    for rpc in ["Enroll", "CheckIn", "ResolveSecrets", "ReportRun"] {
        assert_eq!(answer[rpc], "UNAVAILABLE", "{rpc}: {answer}");
    }
    let answer = f.foreign(&["self-signed"]);
    for rpc in ["CheckIn", "ResolveSecrets", "ReportRun"] {
        assert_eq!(answer[rpc], "PERMISSION_DENIED", "{rpc}: {answer}");
    }
    assert_eq!(answer["Enroll-bad-token"], "PERMISSION_DENIED", "{answer}");
    // A certificate from another CA (a second, unrelated Vigo installation).
    let other = TempDir::new("other-ca");
    assert_code(&run_in(other.path(), "vigocli", &["secrets", "generate-certs"], ""), 0);
    let answer = f.foreign(&[
        "other-ca",
        other.join("tls/cert").to_str().unwrap(),
        other.join("tls/key").to_str().unwrap(),
    ]);
    assert_eq!(answer["CheckIn"], "UNAVAILABLE", "{answer}");
}

#[test]
fn openssl_s_client_cannot_negotiate_tls_1_2() {
    let f = fleet("wire-tls12");
    for addr in [&f.agent_addr, &f.api_addr] {
        let run = |v: &str| {
            std::process::Command::new("openssl")
                .args(["s_client", v, "-connect", addr, "-CAfile"])
                .arg(f.base().join("tls/ca"))
                .stdin(std::process::Stdio::null())
                .output()
                .expect("openssl is required (apt-get install -y openssl)")
        };
        let old = run("-tls1_2");
        assert!(
            !old.status.success() || !text(&old).contains("Cipher is"),
            "TLS 1.2 accepted on {addr}:\n{}",
            text(&old)
        );
        let new = run("-tls1_3");
        assert!(text(&new).contains("TLSv1.3"), "TLS 1.3 refused on {addr}:\n{}", text(&new));
    }
}

#[test]
fn canary_is_absent_from_db_logs_agent_dir_and_captured_payloads() {
    let mut f = Fleet::new("wire-canary");
    let canary = format!("CANARY{}Zq", std::process::id());
    f.set_secret("web/api_key", &canary);
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"web*\"\n    roles: [web]\n"),
        ("modules/web.vgo", WEB),
    ]);
    f.extra_env.push(("VIGO_LOG".into(), "debug".into()));
    f.start_server();
    f.enroll("web1");
    let out = f.run_once("web1");
    assert_code(&out, 0);
    assert!(!text(&out).contains(&canary), "agent output holds the canary");
    let on_disk = std::fs::read_to_string(f.root("web1").join("etc/app/app.conf")).unwrap();
    assert!(on_disk.contains(&canary), "the test is vacuous: the value never arrived");
    f.stop_server();
    let needle = canary.as_bytes();
    let mut hits = files_containing(&f.base(), needle);
    hits.retain(|p| !p.starts_with(f.base().join("secrets")));
    hits.extend(files_containing(&f.agent_base("web1"), needle));
    hits.extend(files_containing(&f.capture_dir(), needle));
    assert!(std::fs::read_dir(f.capture_dir()).unwrap().count() >= 6, "no payloads were captured");
    if std::fs::read_to_string(f.server_log()).unwrap().contains(&canary) {
        hits.push(f.server_log());
    }
    assert!(hits.is_empty(), "canary found in {hits:?}");
}

#[test]
fn rotating_a_watched_key_reruns_exactly_the_watching_resource() {
    let f = fleet("wire-rotate");
    f.enroll("db1");
    f.enroll("web1");
    let counter = f.root("db1").join("reloads");
    // The exec appends a line to a file under the root; it must not run until rotation.
    let db = DB.replace("/tmp/never-used", counter.to_str().unwrap());
    f.write_config(&[("modules/db.vgo", &db)]);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    assert_code(&f.run_once("db1"), 0);
    assert_code(&f.run_once("web1"), 0);
    assert!(!counter.exists(), "when: changed ran without a change");
    let web_before = std::fs::metadata(f.root("web1").join("etc/app/app.conf")).unwrap().modified().unwrap();

    let out = f.set_secret("db/password", "db-pass-value-2");
    assert!(text(&out).contains("1 envoy(s)"), "{}", text(&out));
    let out = f.run_once("db1");
    assert_code(&out, 0);
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "reloaded\n", "{}", text(&out));
    assert_eq!(std::fs::read_to_string(f.root("db1").join("etc/db/password")).unwrap(), "db-pass-value-2");
    // Not again on the next run, and the other envoy was untouched.
    assert_code(&f.run_once("db1"), 0);
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "reloaded\n");
    assert_code(&f.run_once("web1"), 0);
    let web_after = std::fs::metadata(f.root("web1").join("etc/app/app.conf")).unwrap().modified().unwrap();
    assert_eq!(web_before, web_after);
}

#[test]
fn a_running_agent_reconnects_every_interval_and_keeps_converging() {
    let mut f = Fleet::new("wire-daemon");
    f.set_secret("web/api_key", "daemon-value");
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"web*\"\n    roles: [web]\n"),
        ("modules/web.vgo", WEB),
    ]);
    f.use_server_settings("checkin_interval: 1s\n");
    f.start_server();
    let agent = f.enroll("web1");
    let root = f.root("web1");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    // `vigo-agent run` (not --once): each cycle opens a fresh connection, resuming TLS.
    let daemon = std::process::Command::new(role("vigo-agent"))
        .env_remove("LD_LIBRARY_PATH")
        .args(["run", "--root", root.to_str().unwrap()])
        .env("VIGO_BASE_DIR", &agent)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run_rows = || {
        let runs = f.cli(&["runs", "list", "--envoy", "web1", "-n", "100"], "");
        String::from_utf8_lossy(&runs.stdout).lines().count()
    };
    let limit = std::time::Duration::from_secs(60);
    wait_for("several cycles", limit, || run_rows() >= 5);
    let app_conf = root.join("etc/app/app.conf");
    std::fs::write(&app_conf, "drifted\n").unwrap();
    // The drift made after a few cycles is corrected by a later one.
    wait_for("the drift corrected", limit, || {
        std::fs::read_to_string(&app_conf).is_ok_and(|c| c == "api_key=daemon-value\n")
    });
    // systemd stops a service with SIGTERM: the loop ends cleanly, exit 0.
    common::fleet::nix_kill(daemon.id(), "TERM").unwrap();
    let out = daemon.wait_with_output().unwrap();
    assert_code(&out, 0);
    let t = text(&out);
    assert!(!t.contains("run failed") && !t.contains("error"), "{t}");
    assert!(t.matches("run converged").count() >= 2, "expected several quiet cycles:\n{t}");
}

/// A damaged identity key is named with what to do, not a parser's error code.
#[test]
fn a_damaged_identity_key_says_how_to_recover() {
    let mut f = Fleet::new("wire-damaged-key");
    f.start_server();
    let agent = f.enroll("web1");
    std::fs::write(agent.join("identity.key"), "-----BEGIN PRIVATE KEY-----\nnot base64\n").unwrap();
    let out = f.run_once("web1");
    assert_code(&out, 1);
    assert!(text(&out).contains("identity.key is damaged"), "{}", text(&out));
    assert!(text(&out).contains("vigo-agent enroll --force"), "{}", text(&out));
    assert!(!text(&out).contains("NoItemsFound"), "{}", text(&out));
    f.stop_server();
}

/// The audit log can never be trimmed, so nothing a caller sends may make a row large: a
/// megabyte name on a refused enrollment, a megabyte envoy id, a key asked for 50,000 times,
/// 50,000 keys the envoy is not entitled to.
#[test]
fn oversized_request_fields_never_make_a_large_audit_row() {
    let f = fleet("wire-bloat");
    let agent = f.enroll("web1");
    let answer = f.foreign(&["bloat", agent.to_str().unwrap(), "web/api_key"]);
    assert_eq!(answer["enroll"], "PERMISSION_DENIED", "{answer}");
    assert_eq!(answer["long-id"], "UNAUTHENTICATED", "{answer}");
    assert_eq!(answer["repeated"], "OK", "{answer}");
    assert_eq!(answer["unentitled"], "INVALID_ARGUMENT", "{answer}");
    let audit = f.audit_json();
    for action in ["enroll.rejected", "request.rejected", "secret.epoch_resolved"] {
        assert!(audit.contains(action), "no {action} row:\n{audit}");
    }
    let longest = audit.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4096, "an audit row of {longest} bytes");
    assert!(audit.contains("[1000000 bytes]"), "the clipped name keeps its length");
}

/// An envoy naming another envoy's id in its envelope (signed with its own key, over its own
/// certificate) gets exactly the answer an unknown id gets: no name, no revocation state.
#[test]
fn an_envoy_learns_nothing_about_another_envoy_from_its_id() {
    let f = fleet("wire-probe");
    let web = f.enroll("web1");
    let db = f.enroll("db1");
    for revoked in [false, true] {
        if revoked {
            assert_code(&f.cli(&["envoys", "revoke", "db1"], ""), 0);
        }
        let answer = f.foreign(&["probe-other", web.to_str().unwrap(), db.to_str().unwrap()]);
        assert_eq!(answer["other"], answer["unknown"], "revoked={revoked}: {answer}");
        assert_eq!(answer["other"][0], "UNAUTHENTICATED", "{answer}");
        let said = answer["other"][1].as_str().unwrap();
        assert!(!said.contains("db1") && !said.contains("revoked"), "{said}");
    }
}

/// Whoever holds an envoy's key cannot lock the real agent out with a sequence number far
/// ahead of the clock (or one that would wrap when stored): each is refused, and the agent
/// goes on checking in.
#[test]
fn a_sequence_far_ahead_of_the_clock_is_refused_and_cannot_lock_the_agent_out() {
    let f = fleet("wire-sequence");
    let agent = f.enroll("web1");
    let answer = f.foreign(&["far-sequence", agent.to_str().unwrap()]);
    for case in ["max", "i64-max", "wraps-negative", "hour-ahead"] {
        assert_eq!(answer[case][0], "UNAUTHENTICATED", "{case}: {answer}");
        assert!(answer[case][1].as_str().unwrap().contains("ahead"), "{case}: {answer}");
    }
    assert_code(&f.run_once("web1"), 0);
}

/// Request times at the ends of the i64 range (one of them chosen so that a naive
/// subtraction from now wraps to i64::MIN) are refused as off the clock, not accepted and
/// not a crash.
#[test]
fn request_times_at_the_ends_of_the_range_are_refused() {
    let f = fleet("wire-far-time");
    let agent = f.enroll("web1");
    let answer = f.foreign(&["far-time", agent.to_str().unwrap()]);
    for case in ["min", "max", "wraps"] {
        assert_eq!(answer[case][0], "UNAUTHENTICATED", "{case}: {answer}");
        assert!(answer[case][1].as_str().unwrap().contains("off the server clock"), "{case}: {answer}");
    }
    assert_code(&f.run_once("web1"), 0);
}

/// A ResolveSecrets for a key outside the bundle, replayed: the replay is refused as a replay
/// and leaves no second denial row.
#[test]
fn a_replayed_denied_request_adds_no_audit_row() {
    let mut f = fleet("wire-replay-denied");
    let agent = f.enroll("db1");
    let answer = f.foreign(&["replay-denied", agent.to_str().unwrap(), "web/api_key"]);
    assert_eq!(answer["first"][0], "PERMISSION_DENIED", "{answer}");
    assert_eq!(answer["replay"][0], "UNAUTHENTICATED", "{answer}");
    assert!(answer["replay"][1].as_str().unwrap().contains("replayed"), "{answer}");
    f.stop_server();
    assert_eq!(audit_rows(&f, "secret.entitlement_denied").len(), 1, "one denial, no summary of a replay");
}

/// One envoy cannot fill the server's disk with run reports: a report over the size cap is
/// refused with a reason, and so is one over the hourly budget.
#[test]
fn run_reports_over_the_size_cap_or_the_hourly_budget_are_refused() {
    let mut f = Fleet::new("wire-reports");
    f.use_server_settings("runs:\n  max_report_bytes: 65536\n  reports_per_hour: 1\n");
    f.start_server();
    let agent = f.enroll("web1");
    let answer = f.foreign(&["reports", agent.to_str().unwrap(), "1", "200000"]);
    assert_eq!(answer["codes"][0], "RESOURCE_EXHAUSTED", "{answer}");
    assert!(answer["last_details"].as_str().unwrap().contains("max_report_bytes"), "{answer}");
    // The burst is ten reports; the eleventh within the hour is refused.
    let answer = f.foreign(&["reports", agent.to_str().unwrap(), "11", "10"]);
    let codes: Vec<&str> = answer["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(codes[..10], ["OK"; 10], "{answer}");
    assert_eq!(codes[10], "RESOURCE_EXHAUSTED", "{answer}");
    assert!(answer["last_details"].as_str().unwrap().contains("at most 1 an hour"), "{answer}");
    let runs = f.cli(&["runs", "list", "-n", "100"], "");
    assert_eq!(String::from_utf8_lossy(&runs.stdout).matches("changed").count(), 10, "{}", text(&runs));
}

/// The CA pin a token carries stops the agent at the TLS handshake with a server of another
/// CA: the impostor never receives the token.
#[test]
fn an_impostor_server_never_sees_the_token() {
    let real = fleet("wire-pin-real");
    let mut impostor = Fleet::new("wire-pin-impostor");
    impostor.start_server();
    let token = real.token(Some("web1"));
    let base = real.agent_base("web1");
    let out = real.run_role(
        "vigo-agent",
        &base,
        &["enroll", "--server", &impostor.agent_addr, "--token-file", "-", "--name", "web1"],
        &format!("{token}\n"),
        &[],
    );
    assert_code(&out, 1);
    assert!(text(&out).contains("pin"), "{}", text(&out));
    let secret = token.split('.').nth(1).unwrap();
    assert!(
        files_containing(&impostor.capture_dir(), secret.as_bytes()).is_empty(),
        "the impostor saw the token"
    );
    let enrolls = std::fs::read_dir(impostor.capture_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("Enroll"))
        .count();
    assert_eq!(enrolls, 0, "no Enroll reached the impostor");
    // The same token still works against the real server.
    assert_code(&real.enroll_with("web1", &token), 0);
    impostor.stop_server();
}

/// Tokens say which names they enroll: one name, a pattern, or (asked for explicitly) any
/// name. A name shaped like an envoy id is refused, so `envoys revoke <id>` always hits the
/// envoy with that id; a name already taken is refused, audited, and leaves the token valid.
#[test]
fn tokens_enroll_only_the_names_they_are_bound_to_and_ids_are_unambiguous() {
    let mut f = fleet("wire-bindings");
    let out = f.cli(&["tokens", "create", "--envoy-pattern", "web-*"], "");
    assert_code(&out, 0);
    let pattern = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(text(&out).contains("pattern web-*"), "{}", text(&out));
    let refused = f.enroll_with("db-1", &pattern);
    assert_code(&refused, 3);
    // The answer names neither the token's pattern nor the name asked for.
    let outside = text(&refused);
    assert!(outside.contains("this token cannot enroll that name"), "{outside}");
    assert!(!outside.contains("web-") && !outside.contains("db-1"), "{outside}");
    assert_code(&f.enroll_with("web-1", &pattern), 0);
    // An unbound token must be asked for by name.
    let out = f.cli(&["tokens", "create"], "");
    assert_code(&out, 2);
    assert!(text(&out).contains("--any-name"), "{}", text(&out));
    // web-1's id as another envoy's name: refused, so revoking by that id is unambiguous.
    let list = f.cli(&["envoys", "list", "-o", "json"], "");
    let envoys: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let web1_id = envoys[0]["id"].as_str().unwrap().to_string();
    let decoy = f.enroll_with(&web1_id, &f.token(None));
    assert_code(&decoy, 2);
    assert!(text(&decoy).contains("shape of an envoy id"), "{}", text(&decoy));
    // A taken name: refused, audited, and the token still works for another name.
    let token = f.token(None);
    let taken = f.run_role(
        "vigo-agent",
        &f.agent_base("second-host"),
        &["enroll", "--server", &f.agent_addr, "--token-file", "-", "--name", "web-1"],
        &format!("{token}\n"),
        &[],
    );
    assert_code(&taken, 3);
    // Refused exactly as a name outside the token's binding: nothing tells that web-1 exists.
    let held = text(&taken);
    assert!(!held.contains("web-1") && !held.contains("already"), "{held}");
    let answer = |t: &str| t.lines().find(|l| l.contains("cannot enroll")).unwrap_or_default().to_string();
    assert_eq!(answer(&held), answer(&outside), "one answer for every name refusal");
    assert_code(&f.enroll_with("web-2", &token), 0);
    assert_code(&f.cli(&["envoys", "revoke", &web1_id], ""), 0);
    let list = f.cli(&["envoys", "list", "-o", "json"], "");
    let envoys: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let state =
        |name: &str| envoys.as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()["state"].clone();
    assert_eq!(state("web-1"), "revoked");
    assert_eq!(state("web-2"), "active");
    f.stop_server();
    let rows = audit_rows(&f, "enroll.rejected");
    let reasons: Vec<String> = rows.iter().map(|r| detail(r).to_string()).collect();
    assert!(reasons.iter().any(|r| r.contains("outside the token's pattern")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("name held by an active envoy")), "{reasons:?}");
}

/// A rotation made while the server is down is recorded with its audit row and applied when the
/// server starts: the watching resource runs at the next check-in, once.
#[test]
fn a_rotation_made_while_the_server_is_down_reaches_the_watching_resource() {
    let mut f = fleet("wire-rotate-offline");
    f.enroll("db1");
    let counter = f.root("db1").join("reloads");
    let db = DB.replace("/tmp/never-used", counter.to_str().unwrap());
    f.write_config(&[("modules/db.vgo", &db)]);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    assert_code(&f.run_once("db1"), 0);
    assert!(!counter.exists());
    f.stop_server();
    let out = f.set_secret("db/password", "db-pass-value-offline");
    assert!(text(&out).contains("No server notified"), "{}", text(&out));
    f.restart_server_after_stop();
    let out = f.run_once("db1");
    assert_code(&out, 0);
    assert_eq!(std::fs::read_to_string(&counter).unwrap_or_default(), "reloaded\n", "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(f.root("db1").join("etc/db/password")).unwrap(),
        "db-pass-value-offline"
    );
    assert_code(&f.run_once("db1"), 0);
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "reloaded\n", "once");
    let rotated: Vec<String> =
        f.audit_json().lines().filter(|l| l.contains("\"secret.rotated\"")).map(String::from).collect();
    assert!(rotated.iter().any(|l| l.contains("recorded while the server was away")), "{rotated:?}");
    // `secrets notify` sends a notice by hand.
    let out = f.cli(&["secrets", "notify", "db/password"], "");
    assert_code(&out, 0);
    assert!(text(&out).contains("1 envoy(s)"), "{}", text(&out));
}
