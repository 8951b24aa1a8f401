//! The audit chain fanned out to real receivers on 127.0.0.1: Debian's rsyslog over TLS (with
//! a stop and start in the middle of a stream of rows), an HTTPS webhook receiver that checks
//! every signature (and answers 500 for a while), and a JSON Lines file — each ending up with
//! every row, and `vigocli audit verify --export` passing on what it got.

mod common;

use std::path::Path;
use std::time::Duration;

use common::fleet::Fleet;
use common::sinks::{seqs_in, test_ca, wait_until, Rsyslog, WebhookReceiver};
use common::*;

/// Sequence number of the last audit row, from the database.
fn head(f: &Fleet) -> i64 {
    let out = run_in(&f.base(), "vigocli", &["audit", "tail", "-n", "1", "--json"], "");
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["seq"].as_i64().unwrap()
}

/// A few audited operations: enrollment tokens through the server, a secret through the CLI
/// (another process appending to the same chain).
fn make_rows(f: &Fleet, n: usize) {
    for i in 0..n {
        assert_code(&f.cli(&["tokens", "create", "--any-name"], ""), 0);
        if i % 3 == 0 {
            f.set_secret("sinks/rotating", &format!("value-{i}"));
        }
    }
}

/// Every row from 1 to `head` is in `seqs`, and nothing beyond it.
fn has_all(seqs: &[i64], head: i64) -> bool {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.len() as i64 == head && sorted.first() == Some(&1) && sorted.last() == Some(&head)
}

fn verify_export(f: &Fleet, file: &Path) -> String {
    let out = run_in(&f.base(), "vigocli", &["audit", "verify", "--export", file.to_str().unwrap()], "");
    assert_code(&out, 0);
    text(&out)
}

#[test]
fn rsyslog_over_tls_gets_every_row_across_its_restart_and_the_export_verifies() {
    let mut f = Fleet::new("sink-rsyslog");
    let ca = test_ca(&f.dir.join("ca"));
    let mut rsyslog = Rsyslog::new(&f.dir.join("rsyslog"), &ca);
    rsyslog.start();
    f.use_server_settings(
        &format!(
            "integrations:\n  retry_max: 2s\n  warn_after: 10s\n  syslog:\n    - name: siem\n      address: '{}'\n      transport: tls\n      ca_file: {}\n      facility: local4\n",
            rsyslog.address(),
            ca.join("ca.pem").display()
        ),
    );
    f.start_server();
    make_rows(&f, 6);
    let received_path = rsyslog.received();
    let received = || std::fs::read_to_string(&received_path).unwrap_or_default();
    let h = head(&f);
    wait_until(30, "rsyslog to get every row", || has_all(&seqs_in(&received()), h), received);

    // Stop it while rows keep coming, write more while it is down, start it again.
    let writer = {
        let (base, api) = (f.base(), f.api_addr.clone());
        std::thread::spawn(move || {
            for _ in 0..12 {
                let out = spawn_role(
                    "vigocli",
                    &base,
                    &["tokens", "create", "--any-name"],
                    "",
                    &[("VIGO_SERVER", &format!("https://{api}"))],
                )
                .wait_with_output()
                .unwrap();
                assert_code(&out, 0);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    rsyslog.stop();
    writer.join().unwrap();
    make_rows(&f, 3);
    // Down for longer than warn_after: health, doctor and metrics say so.
    wait_until(
        40,
        "the failing sink to show in /v1/health",
        || {
            f.health()["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_str().unwrap().contains("audit sink siem"))
        },
        || f.health().to_string(),
    );
    let health = f.health();
    let sink = &health["audit_sinks"][0];
    assert_eq!(sink["name"], "siem");
    assert_eq!(sink["warning"], true);
    assert!(sink["backlog"].as_i64().unwrap() > 0, "{health}");
    let doctor = text(&f.cli(&["doctor"], ""));
    assert!(doctor.contains("audit sink siem") && doctor.contains("failing"), "{doctor}");

    rsyslog.start();
    let h = head(&f);
    wait_until(
        40,
        "rsyslog to get every row after its restart",
        || has_all(&seqs_in(&received()), h),
        received,
    );
    let verified = verify_export(&f, &received_path);
    assert!(verified.contains(&format!("to {h} ")), "{verified}");
    // The export's head is the database's.
    let db = text(&run_in(&f.base(), "vigocli", &["audit", "verify"], ""));
    let db_head = db.split("head ").nth(1).unwrap().trim();
    assert!(verified.contains(db_head), "{verified} vs {db}");

    // A server restart resumes from the cursor: nothing is sent from the start again.
    let before = seqs_in(&received()).len();
    f.restart_server();
    make_rows(&f, 2);
    let h2 = head(&f);
    wait_until(
        40,
        "the rows written after a server restart",
        || has_all(&seqs_in(&received()), h2),
        received,
    );
    let resent = seqs_in(&received()).len() - before - (h2 - h) as usize;
    assert!(resent < 20, "{resent} rows sent again after a restart");
    verify_export(&f, &received_path);
    // The server's health is clean again.
    wait_until(
        20,
        "the sink to be healthy",
        || f.health()["problems"].as_array().unwrap().is_empty(),
        || f.health().to_string(),
    );
}

#[test]
fn a_webhook_receiver_checks_every_signature_and_gets_everything_after_answering_500() {
    let mut f = Fleet::new("sink-webhook");
    let ca = test_ca(&f.dir.join("ca"));
    let key = "webhook-signing-key-for-the-test";
    f.set_secret("vigo/hooks/soc", key);
    let receiver = WebhookReceiver::start(&ca, key.as_bytes());
    let file = f.dir.join("audit.jsonl");
    f.use_server_settings(
        &format!(
            "integrations:\n  retry_max: 2s\n  warn_after: 10s\n  webhook:\n    - name: soc\n      url: '{}'\n      key: 'secret:vigo/hooks/soc'\n      ca_file: {}\n      batch: 5\n  file:\n    - name: shipper\n      path: {}\n",
            receiver.url(),
            ca.join("ca.pem").display(),
            file.display()
        ),
    );
    f.start_server();
    make_rows(&f, 4);
    let h = head(&f);
    wait_until(
        30,
        "the webhook to get every row",
        || has_all(&receiver.seqs(), h),
        || format!("{:?}", receiver.seqs()),
    );

    receiver.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    make_rows(&f, 6);
    wait_until(
        30,
        "the receiver to refuse a few batches",
        || receiver.seen.lock().unwrap().answered_500 >= 3,
        String::new,
    );
    let sink =
        f.health()["audit_sinks"].as_array().unwrap().iter().find(|s| s["name"] == "soc").cloned().unwrap();
    assert!(!sink["failing_since"].is_null(), "{sink}");
    assert!(sink["last_error"].as_str().unwrap().contains("HTTP 500"), "{sink}");
    // The error names the receiver's origin, never the URL's path (a token may sit there).
    assert!(!sink.to_string().contains("/hooks/vigo"), "{sink}");
    receiver.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let h = head(&f);
    wait_until(
        30,
        "the webhook to catch up",
        || has_all(&receiver.seqs(), h),
        || format!("{:?}", receiver.seqs()),
    );

    let seen = receiver.seen.lock().unwrap();
    assert!(seen.bodies.iter().all(|(_, good)| *good), "every body carries a valid signature");
    for (body, _) in &seen.bodies {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["sink"], "soc");
        let seqs: Vec<i64> =
            v["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert!(!seqs.is_empty() && seqs.len() <= 5 && seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }
    drop(seen);
    // In order overall: each batch starts at or before where the previous one ended + 1.
    let all = receiver.seqs();
    assert!(all.windows(2).all(|w| w[1] <= w[0] + 1), "{all:?}");

    // The file sink has every row once, owner-only, and verifies.
    let f_text = std::fs::read_to_string(&file).unwrap();
    wait_until(
        20,
        "the file sink",
        || has_all(&seqs_in(&std::fs::read_to_string(&file).unwrap()), h),
        || f_text.clone(),
    );
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o600);
    let verified = verify_export(&f, &file);
    assert!(
        verified.contains("export intact: rows 1 to ") && !verified.contains("more than once"),
        "{verified}"
    );

    // Tampering with a copy is named: an edit, a removed row, two rows swapped.
    let lines: Vec<String> = std::fs::read_to_string(&file).unwrap().lines().map(String::from).collect();
    let check = |name: &str, lines: &[String], expect: &str| {
        let p = f.dir.join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let out = run_in(&f.base(), "vigocli", &["audit", "verify", "--export", p.to_str().unwrap()], "");
        assert_code(&out, 1);
        assert!(text(&out).contains(expect), "{name}: {}", text(&out));
    };
    let mut edited = lines.clone();
    edited[4] = edited[4].replace("\"actor\":\"", "\"actor\":\"x");
    check(
        "edited.jsonl",
        &edited,
        "export broken at line 5 (row 5): row content does not match its hash (edited)",
    );
    let mut gap = lines.clone();
    gap.remove(6);
    check("gap.jsonl", &gap, "row 7 is missing");
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    check("swapped.jsonl", &swapped, "export broken at line 3");
}

#[test]
fn a_literal_webhook_key_stops_the_start_without_being_echoed() {
    let mut f = Fleet::new("sink-literal");
    f.use_server_settings(
        "integrations:\n  webhook:\n    - name: soc\n      url: 'https://127.0.0.1:9/x'\n      key: 'hunter2-literal'\n",
    );
    let out = std::process::Command::new(role("vigosrv"))
        .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--config"])
        .arg(f.server_config.as_ref().unwrap())
        .env("VIGO_BASE_DIR", f.base())
        .output()
        .unwrap();
    assert_code(&out, 1);
    let t = text(&out);
    assert!(t.contains("integrations.webhook[0].key must be a secret:<key> ref"), "{t}");
    assert!(!t.contains("hunter2"), "{t}");
}

#[test]
fn a_file_sink_in_a_missing_directory_stops_the_start_naming_it() {
    let mut f = Fleet::new("sink-nodir");
    let missing = f.dir.join("no-such-dir/audit.jsonl");
    f.use_server_settings(&format!(
        "integrations:\n  file:\n    - name: shipper\n      path: {}\n",
        missing.display()
    ));
    let out = std::process::Command::new(role("vigosrv"))
        .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--config"])
        .arg(f.server_config.as_ref().unwrap())
        .env("VIGO_BASE_DIR", f.base())
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(text(&out).contains("integrations.file shipper: the directory"), "{}", text(&out));
}
