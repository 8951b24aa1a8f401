//! The isopass backend against a stand-in isopass service (tests/common/isopass.rs, HTTPS on
//! 127.0.0.1): values reach agents, the watcher rolls out a changed value within one poll, the
//! short-lived token is cached, renewed on expiry and after a 401, the server refuses to start
//! when isopass cannot answer for what it needs, and keeps serving what it has when isopass
//! goes away later. Values never land in the server's files or logs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::fleet::Fleet;
use common::isopass::StandIn;
use common::*;
use serde_json::json;

const BEARER: &str = "iso_live_7f3a9c";
const POLL_SECS: u64 = 5;

const NODES: &str = "envoys:\n  - match: \"db*\"\n    roles: [db]\n";
const DB: &str = r#"
resources:
  - name: db-dir
    type: directory
    target_path: /etc/db
  - name: db-conf
    depends_on: [db-dir]
    type: file
    target_path: /etc/db/conf
    content: "user={{ .Vars.user }} password={{ .Vars.password }} motd={{ .Vars.motd }}\n"
    watch_secret: ["vigo/db#password"]
vars:
  user: "secret:vigo/db#username"
  password: "secret:vigo/db#password"
  motd: "secret:vigo/motd"
"#;

fn isopass_with_values(pw: &str) -> StandIn {
    let iso = StandIn::start(BEARER);
    iso.set("vigo/db", "username_password", json!({ "username": "app", "password": pw }));
    iso.set("vigo/motd", "secret", json!("hello-from-isopass"));
    iso
}

/// A fleet whose server reads its secrets from `iso`.
fn fleet_on(tag: &str, iso: &StandIn, extra: &str) -> Fleet {
    let mut f = Fleet::new(tag);
    let token = f.dir.join("isopass-token");
    std::fs::write(&token, format!("{BEARER}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ca = f.dir.join("isopass-ca.pem");
    std::fs::write(&ca, &iso.ca_pem).unwrap();
    f.use_server_settings(&format!(
        "checkin_interval: 1s\nsecrets:\n  backend: isopass\n  url: {}\n  token_file: {}\n  ca_file: {}\n  watcher:\n    poll_interval: {POLL_SECS}s\n{extra}",
        iso.url(),
        token.display(),
        ca.display()
    ));
    f.write_config(&[("nodes.vgo", NODES), ("modules/db.vgo", DB)]);
    f
}

fn conf(f: &Fleet) -> String {
    std::fs::read_to_string(f.root("db1").join("etc/db/conf")).unwrap_or_default()
}

#[test]
fn values_reach_the_agent_and_a_rotation_arrives_within_one_poll() {
    let iso = isopass_with_values("canary-pw-one-4d1e");
    let mut f = fleet_on("iso-rotate", &iso, "");
    f.start_server();
    f.enroll("db1");
    let out = f.run_once("db1");
    assert_code(&out, 0);
    assert_eq!(conf(&f), "user=app password=canary-pw-one-4d1e motd=hello-from-isopass\n");
    // One exchange served every search so far: the short-lived token is kept.
    assert_eq!(iso.with(|s| s.exchanges), 1, "token exchanged once at start");

    iso.set("vigo/db", "username_password", json!({ "username": "app", "password": "canary-pw-two-8b2c" }));
    let changed_at = time::OffsetDateTime::now_utc();
    wait_for("the watcher's rotation", Duration::from_secs(POLL_SECS * 2 + 5), || {
        f.audit_json().lines().any(|l| l.contains("\"secret.rotated\"") && l.contains("isopass watcher"))
    });
    let rotated = f.audit_json();
    let row = rotated.lines().find(|l| l.contains("isopass watcher")).unwrap();
    assert!(row.contains("vigo/db#password") && row.contains("db1"), "{row}");
    // Timed by the audit row itself, not by this test's polling of the audit log.
    let row: serde_json::Value = serde_json::from_str(row).unwrap();
    let noticed_at = time::OffsetDateTime::parse(
        row["ts"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let took = noticed_at - changed_at;
    assert!(took <= time::Duration::seconds(POLL_SECS as i64 + 2), "within one poll: {took}");
    assert_code(&f.run_once("db1"), 0);
    assert_eq!(conf(&f), "user=app password=canary-pw-two-8b2c motd=hello-from-isopass\n");

    // Canary sweep: neither value is in any file of the server's base dir or its log.
    f.stop_server();
    for canary in ["canary-pw-one-4d1e", "canary-pw-two-8b2c", BEARER] {
        assert_eq!(
            files_containing(&f.base(), canary.as_bytes()),
            Vec::<std::path::PathBuf>::new(),
            "{canary}"
        );
        let log = std::fs::read_to_string(f.server_log()).unwrap();
        assert!(!log.contains(canary), "{canary} in the server log");
    }
}

#[test]
fn an_expired_or_revoked_token_is_exchanged_again() {
    let iso = isopass_with_values("pw-1");
    // 31 s tokens: with the 30 s margin, each is used for about a second.
    iso.with(|s| {
        s.token_ttl = 31;
        s.numeric_expiry = true;
    });
    let mut f = fleet_on("iso-token", &iso, "");
    f.start_server();
    f.enroll("db1");
    std::thread::sleep(Duration::from_secs(2));
    wait_for("a poll after the token aged", Duration::from_secs(POLL_SECS * 2 + 5), || {
        iso.with(|s| s.searches) >= 3
    });
    assert!(iso.with(|s| s.exchanges) >= 2, "an aged token is exchanged before use");
    assert_eq!(iso.with(|s| s.refused), 0, "an aged token is never sent");

    // Revoked mid-run: the search gets 401, the server exchanges once and searches again.
    // First a long-lived token, which the server keeps…
    iso.with(|s| s.token_ttl = 3600);
    let searches = iso.with(|s| s.searches);
    wait_for("a poll with a long-lived token", Duration::from_secs(POLL_SECS * 2 + 5), || {
        iso.with(|s| s.searches) > searches
    });
    // …then isopass forgets it.
    iso.with(|s| s.sessions.clear());
    let before = iso.with(|s| (s.exchanges, s.searches));
    wait_for("a poll after the revocation", Duration::from_secs(POLL_SECS * 2 + 5), || {
        iso.with(|s| s.searches) > before.1
    });
    assert_eq!(iso.with(|s| s.refused), 1, "one refused search");
    assert_eq!(iso.with(|s| s.exchanges), before.0 + 1, "one new exchange");
    assert_eq!(f.health()["status"], "ok", "{}", f.health());
    assert_code(&f.run_once("db1"), 0);
    assert!(conf(&f).contains("password=pw-1"));
}

#[test]
fn unreachable_later_keeps_the_values_and_shows_in_health() {
    let iso = isopass_with_values("pw-kept");
    let mut f = fleet_on("iso-down", &iso, "");
    f.start_server();
    f.enroll("db1");
    iso.with(|s| s.down = true);
    wait_for("health to show isopass down", Duration::from_secs(POLL_SECS * 2 + 5), || {
        f.health()["problems"].to_string().contains("isopass unreachable")
    });
    assert_eq!(f.health()["status"], "degraded");
    // Values already validated are still served.
    assert_code(&f.run_once("db1"), 0);
    assert!(conf(&f).contains("password=pw-kept"));
    let doctor = f.cli(&["doctor", "-o", "json"], "");
    assert!(text(&doctor).contains("isopass unreachable"), "{}", text(&doctor));
    // Back: the backoff (5 s first) notices soon.
    iso.with(|s| s.down = false);
    wait_for("health to recover", Duration::from_secs(15), || f.health()["status"] == "ok");
}

/// Starts vigosrv against `config` and returns its exit code and stderr; it must not start.
fn refused_start(f: &Fleet) -> String {
    let out = std::process::Command::new(role("vigosrv"))
        .env_remove("LD_LIBRARY_PATH")
        .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--config"])
        .arg(f.server_config.as_ref().unwrap())
        .env("VIGO_BASE_DIR", f.base())
        .output()
        .unwrap();
    assert_code(&out, 1);
    text(&out)
}

#[test]
fn the_server_refuses_to_start_without_what_it_needs_from_isopass() {
    let iso = isopass_with_values("pw");
    // A missing entry named by the config tree.
    iso.with(|s| s.entries.remove("vigo/motd"));
    let f = fleet_on("iso-refuse", &iso, "");
    let e = refused_start(&f);
    assert!(e.contains("vigo/motd"), "{e}");
    // A token isopass refuses.
    iso.set("vigo/motd", "secret", json!("m"));
    iso.with(|s| s.bearer = "another".into());
    let e = refused_start(&f);
    assert!(e.contains("refused the bearer token") && !e.contains(BEARER), "{e}");
    iso.with(|s| s.bearer = BEARER.into());
    // A token file others can read.
    let token = f.dir.join("isopass-token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = refused_start(&f);
    assert!(e.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A server-config ref isopass lacks names the key and the setting.
    let with_ref = fleet_on("iso-refuse-ref", &iso, "auth:\n  public_url: \"secret:vigo/console-url\"\n");
    let e = refused_start(&with_ref);
    assert!(e.contains("auth.public_url") && e.contains("vigo/console-url"), "{e}");
    // Unreachable at start.
    iso.with(|s| s.down = true);
    let e = refused_start(&f);
    assert!(e.contains("isopass"), "{e}");
}

#[test]
fn the_cli_reads_through_isopass_and_refuses_local_vault_verbs() {
    let iso = isopass_with_values("pw-cli-5e7a");
    let f = fleet_on("iso-cli", &iso, "");
    let config = f.server_config.clone().unwrap();
    let cli = |args: &[&str]| f.cli(&[&["--config", config.to_str().unwrap()][..], args].concat(), "");

    // config validate resolves the tree's refs through isopass; a missing entry is named.
    let ok = cli(&["config", "validate"]);
    assert_code(&ok, 0);
    assert!(text(&ok).contains("config ok") && !text(&ok).contains("pw-cli-5e7a"), "{}", text(&ok));
    iso.with(|s| s.entries.remove("vigo/motd"));
    let missing = cli(&["config", "validate"]);
    assert_code(&missing, 1);
    assert!(text(&missing).contains("vigo/motd"), "{}", text(&missing));
    iso.set("vigo/motd", "secret", json!("m"));

    // Values live in isopass: the local vault's verbs say so instead of making a vault.
    for verb in [&["secrets", "set", "raw", "vigo/x"][..], &["secrets", "list"], &["secrets", "init"]] {
        let out = cli(verb);
        assert_code(&out, 3);
        assert!(text(&out).contains("isopass") && text(&out).contains("secrets notify"), "{}", text(&out));
    }

    // doctor checks the token file and the service instead of a master key.
    let status = |report: &serde_json::Value, check: &str| {
        report.as_array().unwrap().iter().find(|c| c["check"] == check).map(|c| c["status"].clone())
    };
    let report: serde_json::Value = serde_json::from_slice(&cli(&["doctor", "-o", "json"]).stdout).unwrap();
    assert_eq!(status(&report, "isopass token file"), Some(json!("ok")), "{report:#}");
    assert_eq!(status(&report, "secrets backend"), Some(json!("ok")), "{report:#}");
    assert_eq!(status(&report, "config tree"), Some(json!("ok")), "{report:#}");
    assert_eq!(status(&report, "master key"), None, "{report:#}");
    let token = f.dir.join("isopass-token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = cli(&["doctor", "-o", "json"]);
    assert_code(&out, 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status(&report, "isopass token file"), Some(json!("fail")), "{report:#}");
    assert!(report.to_string().contains("chmod 600"), "{report:#}");
}
