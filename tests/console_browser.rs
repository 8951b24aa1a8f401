//! The web console in a real browser: Debian's Chromium, headless, driven by playwright-core
//! (tests/console/walk.mjs) against a whole installation on 127.0.0.1: a server with the basic,
//! isowebauth and OIDC logins on (the OIDC one through the real test OpenID Provider), web users
//! of each role, an enrolled agent that has run, imported RustSec advisories, and a secret canary
//! the config uses. The script logs in through each provider's form, walks every page as admin,
//! viewer and compliance at 1440 and 360 px (screenshots under target/console-screenshots/),
//! and fails on any console error or CSP violation, any browser storage or script-visible
//! cookie, the canary in anything the browser received, or a forged or cross-origin POST that
//! is not refused. This test then checks what the server recorded.
//!
//! Needs node and npm (tests/console/install.sh caches playwright-core under target/) and
//! /usr/bin/chromium (scripts/test-all.sh installs both); without them it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::fleet::Fleet;
use common::oidc::{ProviderOptions, TestCa, TestProvider};
use common::*;

const CANARY: &str = "Cn7-console-canary-Zq4Xw9Hv2Lp8Rt";
const PASSWORD: &str = "Correct-Horse-42-Battery";
const CHROMIUM: &str = "/usr/bin/chromium";

const NODES: &str = r#"
envoys:
  - match: "web*"
    roles: [web]
    vars:
      motto: "secret:console/canary"
"#;

const WEB: &str = r#"
resources:
  - name: app-dir
    type: directory
    target_path: /etc/app
  - name: app-secret
    type: file
    target_path: /etc/app/secret.conf
    content: "secret:console/canary"
    mode: "0600"
    depends_on: [app-dir]
  - name: app-motto
    type: file
    target_path: /etc/app/motto
    content: "motto={{ .Vars.motto }}\n"
    depends_on: [app-dir]
  - name: show-motto
    type: exec
    command: "cat ROOT/etc/app/motto; echo shown"
    depends_on: [app-motto]
  - name: always-fails
    type: exec
    command: "echo this step fails on purpose >&2; exit 3"
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory (`target/`, or `$CARGO_TARGET_DIR`): where scripts/test-all.sh
/// caches the npm modules and where the screenshots go.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"))
}

/// playwright-core from npm, cached under target/ (tests/console/install.sh).
fn install_driver() {
    let out = Command::new("bash")
        .arg(repo().join("tests/console/install.sh"))
        .arg(target_dir())
        .output()
        .expect("bash must be installed");
    assert!(
        out.status.success(),
        "tests/console/install.sh failed (the browser tests need node and npm; scripts/test-all.sh installs them):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the browser tests need Debian's chromium (scripts/test-all.sh installs it)"
    );
}

/// A port that is free now, for a server whose address must be known before it starts (the
/// OpenID Provider is told the console's callback URL when it starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn add_user(f: &Fleet, name: &str, role: &str, extra: &[&str]) {
    assert_code(&f.cli(&[&["webusers", "create", name, "--role", role][..], extra].concat(), ""), 0);
    let key = format!("vigo/web/auth/{name}");
    assert_code(&f.cli(&["secrets", "set", "password", &key], &format!("{PASSWORD}\n{PASSWORD}\n")), 0);
}

#[test]
fn the_console_in_a_real_browser() {
    install_driver();
    let port = free_port();
    let console = format!("https://127.0.0.1:{port}");
    let provider = TestProvider::start(ProviderOptions {
        redirect_uri: format!("{console}/auth/oidc/callback"),
        auto_login: Some("alice".into()),
        lifetime: Duration::from_secs(600),
        ..Default::default()
    });
    let mut f = Fleet::new("console-browser");
    f.set_secret("console/canary", CANARY);
    f.set_secret("vigo/oidc/client_secret", &provider.options.client_secret);
    let root = f.root("web1");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    f.write_config(&[
        ("nodes.vgo", NODES),
        ("modules/web.vgo", &WEB.replace("ROOT", root.to_str().unwrap())),
    ]);
    let passwd = f.dir.join("passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n",
    )
    .unwrap();
    f.use_server_settings(&format!(
        "auth:\n  passwd_file: {}\n  providers: [basic, isowebauth, oidc]\n  public_url: {console}\n  oidc:\n    issuer: {}\n    client_id: {}\n    client_secret: \"secret:vigo/oidc/client_secret\"\n    ca_file: {}\n    claim: email\n",
        passwd.display(),
        provider.issuer,
        provider.options.client_id,
        provider.ca_path().display()
    ));
    f.start_server_on("127.0.0.1:0", &format!("127.0.0.1:{port}"));

    // People: an admin with an SSH key (isowebauth) and the OIDC provider's email, a viewer and
    // a compliance officer with passwords.
    let keys = f.dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = keys.join("alice");
    let out =
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "ssh-keygen is required: {}", text(&out));
    let pub_key = format!("{}.pub", key.display());
    add_user(&f, "alice", "admin", &["--ssh-key", &pub_key, "--email", "alice@example.org"]);
    add_user(&f, "victor", "viewer", &[]);
    add_user(&f, "carol", "compliance", &[]);

    // A fleet with history: web1 ran (one resource fails on purpose), web2 never ran.
    f.enroll("web1");
    f.enroll("web2");
    let run = f.run_once("web1");
    assert!(!text(&run).contains(CANARY), "the agent's own output is scrubbed");
    let out =
        f.cli(&["advisories", "import", repo().join("tests/fixtures/advisories").to_str().unwrap()], "");
    assert_code(&out, 0);
    assert!(text(&out).contains("2 affect"), "{}", text(&out));
    let envoy_id = f.cli(&["envoys", "show", "web2", "-o", "json"], "").stdout.clone();
    let envoy_id =
        serde_json::from_slice::<serde_json::Value>(&envoy_id).unwrap()["id"].as_str().unwrap().to_string();

    // Another origin on the same host (so the same site: the Strict cookie goes along) for the
    // cross-origin form post.
    let attacker = TestCa::new();
    std::fs::write(f.dir.join("attacker-cert.pem"), &attacker.cert_pem).unwrap();
    std::fs::write(f.dir.join("attacker-key.pem"), &attacker.key_pem).unwrap();

    let shots = target_dir().join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let setup = serde_json::json!({
        "console": console,
        "chromium": CHROMIUM,
        "shots": shots,
        "canary": CANARY,
        "password": PASSWORD,
        "iso_key": key,
        "iso_namespace": "vigo-login",
        "envoy": "web1",
        "revoke_envoy_id": envoy_id,
        "attacker_cert": f.dir.join("attacker-cert.pem"),
        "attacker_key": f.dir.join("attacker-key.pem"),
        "profiles": f.dir.join("profiles"),
    });
    let setup_file = f.dir.join("setup.json");
    std::fs::write(&setup_file, setup.to_string()).unwrap();
    let out = Command::new("timeout")
        .args(["600", "node"])
        .arg(repo().join("tests/console/walk.mjs"))
        .arg(&setup_file)
        .output()
        .expect("node is required");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the browser walk failed:\n{report}\n{}\nserver log:\n{}\nprovider log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(f.server_log()).unwrap_or_default(),
        provider.log()
    );
    eprintln!("{report}");

    // What the server recorded: each provider's login, the admin's actions, and not the
    // cross-origin revoke (web2 was revoked by the admin's own form only at the end).
    let audit = f.audit_json();
    let logins: Vec<serde_json::Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["action"] == "auth.login")
        .collect();
    for provider_name in ["basic", "isowebauth", "oidc"] {
        assert!(
            logins.iter().any(|r| r["detail"].as_str().unwrap_or_default().contains(provider_name)),
            "a {provider_name} login is recorded: {logins:?}"
        );
    }
    let revoked: Vec<&str> = audit.lines().filter(|l| l.contains("\"envoy.revoked\"")).collect();
    assert_eq!(revoked.len(), 1, "one revoke, by the admin's own form: {revoked:?}");
    for action in ["token.created", "api_token.created", "config.published", "api_token.revoked"] {
        assert!(audit.contains(&format!("\"{action}\"")), "{action} is recorded");
    }
    // Screenshots of every page at both widths.
    let pngs = files_under(&shots).into_iter().filter(|p| p.extension().is_some_and(|e| e == "png")).count();
    assert!(pngs >= 2 * 14 * 3, "{pngs} screenshots under {}", shots.display());
    // The canary never reached the server's log or the database in plain text either.
    assert!(!std::fs::read_to_string(f.server_log()).unwrap_or_default().contains(CANARY));
    assert!(files_containing(&f.base(), CANARY.as_bytes()).is_empty());
}
