//! People at the console: web users, the basic and isowebauth logins, sessions (cookie, CSRF,
//! Origin), throttling, and API tokens that follow their owner. Driven from the outside with
//! `curl` and `ssh-keygen`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::fleet::Fleet;
use common::*;

const PASSWORD: &str = "Correct-Horse-42-Battery";

/// A server with the given `auth:` section, and a passwd file in which alice is a person.
fn installation(tag: &str, auth: &str) -> Fleet {
    let mut f = Fleet::new(tag);
    let passwd = f.dir.join("passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\nsvc:x:999:999::/srv:/usr/sbin/nologin\n",
    )
    .unwrap();
    f.use_server_settings(&format!("auth:\n  passwd_file: {}\n{auth}", passwd.display()));
    f.start_server();
    f
}

fn add_user(f: &Fleet, name: &str, role: &str, extra: &[&str]) {
    let out = f.cli(&[&["webusers", "create", name, "--role", role][..], extra].concat(), "");
    assert_code(&out, 0);
    let key = format!("vigo/web/auth/{name}");
    assert_code(&f.cli(&["secrets", "set", "password", &key], &format!("{PASSWORD}\n{PASSWORD}\n")), 0);
}

/// One HTTPS request with curl: (status, response headers, body).
struct Http {
    status: u16,
    headers: String,
    body: String,
}

impl Http {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn set_cookie(&self) -> Option<String> {
        self.headers
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
            .map(|v| v.trim().to_string())
    }
}

fn curl(f: &Fleet, method: &str, path: &str, extra: &[&str]) -> Http {
    let headers_file = f.dir.join(&format!("headers-{}", std::process::id()));
    let out = Command::new("curl")
        .args(["-sS", "-X", method, "--cacert"])
        .arg(f.base().join("tls/ca"))
        .arg("-D")
        .arg(&headers_file)
        .args(["-w", "\n%{http_code}"])
        .args(extra)
        .arg(format!("https://{}{path}", f.api_addr))
        .output()
        .expect("curl is required");
    assert!(out.status.success(), "curl failed: {}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (body, code) = stdout.rsplit_once('\n').unwrap();
    Http {
        status: code.trim().parse().unwrap(),
        headers: std::fs::read_to_string(&headers_file).unwrap_or_default(),
        body: body.to_string(),
    }
}

fn login(f: &Fleet, user: &str, password: &str) -> Http {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    curl(f, "POST", "/auth/basic", &["-H", "content-type: application/json", "--data", &body])
}

/// The session id from a login's Set-Cookie.
fn session_of(h: &Http) -> String {
    let c = h.set_cookie().expect("a session cookie");
    c.split(';').next().unwrap().trim_start_matches("__Host-vigo_session=").to_string()
}

fn cookie(id: &str) -> String {
    format!("cookie: __Host-vigo_session={id}")
}

fn origin(f: &Fleet) -> String {
    format!("origin: https://{}", f.api_addr)
}

fn audit_rows(f: &Fleet, action: &str) -> Vec<serde_json::Value> {
    f.audit_json()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["action"] == action)
        .collect()
}

/// Every file of the installation (database and WAL included) and the server log.
fn everywhere(f: &Fleet, needle: &str) -> Vec<PathBuf> {
    let mut found = files_containing(&f.base(), needle.as_bytes());
    found.extend(files_containing(&f.dir.join("capture"), needle.as_bytes()));
    if std::fs::read_to_string(f.server_log()).unwrap_or_default().contains(needle) {
        found.push(f.server_log());
    }
    found
}

#[test]
fn a_basic_login_gives_a_strict_host_only_session_of_which_only_the_hash_is_kept() {
    let f = installation("login-basic", "");
    add_user(&f, "alice", "viewer", &[]);
    let ok = login(&f, "alice", PASSWORD);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cookie_line = ok.set_cookie().unwrap();
    for attr in ["__Host-vigo_session=", "Path=/", "Secure", "HttpOnly", "SameSite=Strict", "Max-Age=43200"] {
        assert!(cookie_line.contains(attr), "{cookie_line}");
    }
    assert!(!cookie_line.contains("Domain="), "{cookie_line}");
    assert!(ok.headers.to_ascii_lowercase().contains("cache-control: no-store"), "{}", ok.headers);
    let id = session_of(&ok);
    let me = curl(&f, "GET", "/v1/auth/whoami", &["-H", &cookie(&id)]);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["username"], "alice");
    assert_eq!(me.json()["role"], "viewer");
    // Wrong password, unknown user and a disabled account get the very same answer.
    let wrong = login(&f, "alice", "Correct-Horse-42-Batterx");
    let unknown = login(&f, "mallory", PASSWORD);
    assert_code(&f.cli(&["webusers", "create", "bob"], ""), 0);
    assert_code(
        &f.cli(&["secrets", "set", "password", "vigo/web/auth/bob"], &format!("{PASSWORD}\n{PASSWORD}\n")),
        0,
    );
    assert_code(&f.cli(&["webusers", "disable", "bob"], ""), 0);
    let disabled = login(&f, "bob", PASSWORD);
    for h in [&wrong, &unknown, &disabled] {
        assert_eq!((h.status, h.body.as_str()), (401, r#"{"error":"login failed"}"#));
        assert!(h.set_cookie().is_none());
    }
    // The database (and its WAL), the logs and the captures hold neither the session id nor a
    // password; the hash of the id is what the database keeps.
    assert!(everywhere(&f, &id).is_empty(), "session id found in {:?}", everywhere(&f, &id));
    assert!(
        everywhere(&f, PASSWORD).iter().all(|p| p.starts_with(f.base().join("secrets"))),
        "{:?}",
        everywhere(&f, PASSWORD)
    );
    let digest = sha256_hex(&id);
    let db = std::fs::read(f.base().join("vigo.db")).unwrap_or_default();
    let wal = std::fs::read(f.base().join("vigo.db-wal")).unwrap_or_default();
    let raw = hex_bytes(&digest);
    assert!(
        db.windows(32).any(|w| w == raw) || wal.windows(32).any(|w| w == raw),
        "the hash of the id is stored"
    );
    // Failures are audited with the length of the name, never the name.
    let failed = audit_rows(&f, "auth.login_failed");
    assert!(!failed.is_empty());
    assert!(!f.audit_json().contains("mallory"), "a username typed at a failed login is not recorded");
    assert_eq!(audit_rows(&f, "auth.login").len(), 1);
}

fn sha256_hex(s: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut out = out;
    out.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let o = out.wait_with_output().unwrap();
    String::from_utf8(o.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
}

/// A session's state change needs its CSRF token and the console's own Origin; a form may carry
/// the token as a field; logout ends the session.
#[test]
fn a_state_change_from_a_session_needs_its_csrf_token_and_the_own_origin() {
    let f = installation("login-csrf", "");
    add_user(&f, "alice", "viewer", &[]);
    let ok = login(&f, "alice", PASSWORD);
    let (id, csrf) = (session_of(&ok), ok.json()["csrf_token"].as_str().unwrap().to_string());
    let list = curl(&f, "GET", "/v1/sessions", &["-H", &cookie(&id)]);
    let handle = list.json()["sessions"][0]["id"].as_str().unwrap().to_string();
    let revoke = format!("/v1/sessions/{handle}/revoke");
    let no_token = curl(&f, "POST", &revoke, &["-H", &cookie(&id), "-H", &origin(&f)]);
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    let foreign = curl(
        &f,
        "POST",
        &revoke,
        &["-H", &cookie(&id), "-H", "origin: https://evil.example", "-H", &format!("x-vigo-csrf: {csrf}")],
    );
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let no_origin = curl(&f, "POST", &revoke, &["-H", &cookie(&id), "-H", &format!("x-vigo-csrf: {csrf}")]);
    assert_eq!(no_origin.status, 403, "{}", no_origin.body);
    let other_session = login(&f, "alice", PASSWORD);
    let wrong_token = other_session.json()["csrf_token"].as_str().unwrap().to_string();
    let wrong = curl(
        &f,
        "POST",
        &revoke,
        &["-H", &cookie(&id), "-H", &origin(&f), "-H", &format!("x-vigo-csrf: {wrong_token}")],
    );
    assert_eq!(wrong.status, 403, "another session's token: {}", wrong.body);
    // A form post carries the token as a field: logout through a form (the console's button),
    // which goes back to the login page.
    let form = curl(
        &f,
        "POST",
        "/auth/logout",
        &["-H", &cookie(&id), "-H", &origin(&f), "--data-urlencode", &format!("csrf={csrf}")],
    );
    assert_eq!(form.status, 303, "{}", form.body);
    assert!(form.headers.to_ascii_lowercase().contains("location: /login"), "{}", form.headers);
    assert!(form.set_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(curl(&f, "GET", "/v1/auth/whoami", &["-H", &cookie(&id)]).status, 401, "the session is gone");
    assert!(audit_rows(&f, "auth.logout").len() == 1);
}

/// Failures slow a username (and a source) down, then lock it for a window that lifts by itself.
#[test]
fn failed_logins_are_throttled_then_locked_then_the_window_lifts() {
    let f = installation(
        "login-throttle",
        "  throttle:\n    free_failures: 2\n    max_delay: 1s\n    lockout_after: 4\n    lockout: 4s\n",
    );
    add_user(&f, "alice", "viewer", &[]);
    // Two failures are free; after them the next attempt waits a second: even the right
    // password is refused until then.
    assert_eq!(login(&f, "alice", "nope").status, 401);
    assert_eq!(login(&f, "alice", "nope").status, 401);
    assert_eq!(login(&f, "alice", PASSWORD).status, 401, "throttled");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(login(&f, "alice", "nope").status, 401, "the third failure");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(login(&f, "alice", "nope").status, 401, "the fourth failure locks");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(login(&f, "alice", PASSWORD).status, 401, "locked");
    assert!(!audit_rows(&f, "auth.locked").is_empty(), "the lock is audited");
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(login(&f, "alice", PASSWORD).status, 200, "the window lifted");
}

/// A role change or a disable ends the user's sessions at once; an API token never exceeds its
/// owner's role and follows it; only a person's account can be an admin.
#[test]
fn sessions_and_tokens_follow_their_user() {
    let f = installation("login-follow", "");
    add_user(&f, "alice", "viewer", &[]);
    let out = f.cli(&["webusers", "create", "svc", "--role", "admin"], "");
    assert_code(&out, 1);
    assert!(text(&out).contains("uid 1000"), "{}", text(&out));
    let out = f.cli(&["auth", "create-token", "--name", "alice-ci", "--user", "alice"], "");
    assert_code(&out, 0);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let bearer = format!("authorization: Bearer {token}");
    assert_eq!(curl(&f, "GET", "/v1/audit", &["-H", &bearer]).status, 200, "a viewer reads the audit log");
    // A token cannot be made above its owner's role.
    let out =
        f.cli(&["auth", "create-token", "--name", "too-much", "--user", "alice", "--role", "admin"], "");
    assert_code(&out, 3);
    // A second token, made as a compliance one, outlives the demotion below.
    let out = f.cli(
        &["auth", "create-token", "--name", "alice-report", "--user", "alice", "--role", "compliance"],
        "",
    );
    assert_code(&out, 0);
    let report = format!("authorization: Bearer {}", String::from_utf8(out.stdout).unwrap().trim());
    assert_code(&f.cli(&["webusers", "disable", "alice"], ""), 0);
    assert_eq!(
        curl(&f, "GET", "/v1/envoys", &["-H", &bearer]).status,
        401,
        "a disabled owner's token is dead"
    );
    assert_code(&f.cli(&["webusers", "enable", "alice"], ""), 0);
    assert_eq!(curl(&f, "GET", "/v1/audit", &["-H", &bearer]).status, 200, "and works again once enabled");
    let id = session_of(&login(&f, "alice", PASSWORD));
    assert_code(&f.cli(&["webusers", "set-role", "alice", "compliance"], ""), 0);
    assert_eq!(curl(&f, "GET", "/v1/auth/whoami", &["-H", &cookie(&id)]).status, 401, "the session ended");
    // Demoted below a token's role: that token is revoked; one within the new role lives on.
    assert_eq!(curl(&f, "GET", "/v1/envoys", &["-H", &bearer]).status, 401, "the viewer token is revoked");
    assert_eq!(curl(&f, "GET", "/v1/envoys", &["-H", &report]).status, 200);
    assert_code(&f.cli(&["webusers", "set-role", "alice", "admin"], ""), 0);
    assert_eq!(curl(&f, "GET", "/v1/envoys", &["-H", &bearer]).status, 401, "a promotion does not revive it");
    // A token keeps the role it was made with: the owner's promotion does not widen it.
    assert_eq!(curl(&f, "GET", "/v1/audit", &["-H", &report]).status, 403, "made as a compliance token");
    // A new password ends the sessions too.
    let id = session_of(&login(&f, "alice", PASSWORD));
    let new = "Another-Horse-43-Battery";
    assert_code(
        &f.cli(&["secrets", "set", "password", "vigo/web/auth/alice"], &format!("{new}\n{new}\n")),
        0,
    );
    assert_eq!(curl(&f, "GET", "/v1/auth/whoami", &["-H", &cookie(&id)]).status, 401);
    // Deleting the user revokes the token and removes the password from the vault.
    assert_code(&f.cli(&["webusers", "delete", "alice"], ""), 0);
    assert_eq!(curl(&f, "GET", "/v1/envoys", &["-H", &report]).status, 401);
    assert!(!f.base().join("secrets/vigo/web/auth/alice").exists());
    let actions: Vec<String> = f
        .audit_json()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect();
    for a in [
        "user.created",
        "user.role_changed",
        "user.disabled",
        "user.enabled",
        "user.password_changed",
        "user.deleted",
        "api_token.created",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} is audited");
    }
    // The lists scripts read.
    let list = f.cli(&["webusers", "list", "-o", "json"], "");
    assert_code(&list, 0);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&list.stdout).unwrap().as_array().unwrap().len(),
        0
    );
}

/// A password set with the CLI while the server is down ends the user's sessions when the
/// server, starting, applies the rotation it recorded.
#[test]
fn a_password_set_while_the_server_is_down_ends_the_sessions_at_its_start() {
    let mut f = installation("login-offline-password", "");
    add_user(&f, "alice", "viewer", &[]);
    let id = session_of(&login(&f, "alice", PASSWORD));
    assert_eq!(curl(&f, "GET", "/v1/auth/whoami", &["-H", &cookie(&id)]).status, 200);
    f.stop_server();
    let new = "Offline-Horse-44-Battery";
    let out = f.cli(&["secrets", "set", "password", "vigo/web/auth/alice"], &format!("{new}\n{new}\n"));
    assert_code(&out, 0);
    assert!(text(&out).contains("No server notified"), "{}", text(&out));
    f.restart_server_after_stop();
    assert_eq!(
        curl(&f, "GET", "/v1/auth/whoami", &["-H", &cookie(&id)]).status,
        401,
        "the old session is over"
    );
    assert_eq!(login(&f, "alice", new).status, 200, "the new password works");
    let ended = audit_rows(&f, "user.password_changed");
    assert!(ended.iter().any(|r| r["target"] == "alice"), "{ended:?}");
}

fn ssh_keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen is required");
    assert!(out.status.success(), "{}", text(&out));
    key
}

fn sign(key: &Path, namespace: &str, text_to_sign: &str, dir: &Path) -> String {
    let msg = dir.join("challenge.txt");
    std::fs::write(&msg, text_to_sign).unwrap();
    // ssh-keygen keeps an existing .sig rather than replace it.
    let _ = std::fs::remove_file(dir.join("challenge.txt.sig"));
    let out = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(&msg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::read_to_string(dir.join("challenge.txt.sig")).unwrap()
}

fn challenge(f: &Fleet, user: &str) -> serde_json::Value {
    let body = serde_json::json!({ "username": user }).to_string();
    let h = curl(
        f,
        "POST",
        "/auth/isowebauth/challenge",
        &["-H", "content-type: application/json", "--data", &body],
    );
    assert_eq!(h.status, 200, "{}", h.body);
    h.json()
}

fn answer(f: &Fleet, user: &str, c: &serde_json::Value, signature: &str) -> Http {
    let body =
        serde_json::json!({ "username": user, "challenge_id": c["challenge_id"], "signature": signature })
            .to_string();
    curl(f, "POST", "/auth/isowebauth", &["-H", "content-type: application/json", "--data", &body])
}

/// isowebauth with the real `ssh-keygen -Y sign`: the user's own key under the server's
/// namespace logs in; another key, another namespace, a used or an expired challenge do not.
#[test]
fn isowebauth_accepts_only_a_fresh_challenge_signed_by_the_users_key_in_the_namespace() {
    // Failures are expected here: throttling starts late so that it does not get in the way.
    let f = installation(
        "login-iso",
        "  providers: [basic, isowebauth]\n  isowebauth:\n    challenge_ttl: 10s\n  throttle:\n    free_failures: 9\n",
    );
    let keys = f.dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let alice_key = ssh_keygen(&keys, "alice");
    let other_key = ssh_keygen(&keys, "other");
    let pub_file = format!("{}.pub", alice_key.display());
    add_user(&f, "alice", "viewer", &["--ssh-key", &pub_file]);
    let ns = "vigo-login";

    let c = challenge(&f, "alice");
    assert_eq!(c["namespace"], ns);
    let by_other = answer(&f, "alice", &c, &sign(&other_key, ns, c["challenge"].as_str().unwrap(), &keys));
    assert_eq!(by_other.status, 401, "another key");
    assert_eq!(
        answer(&f, "alice", &c, &sign(&alice_key, ns, c["challenge"].as_str().unwrap(), &keys)).status,
        401,
        "a challenge answered once is spent"
    );
    let c = challenge(&f, "alice");
    let other_ns = answer(&f, "alice", &c, &sign(&alice_key, "git", c["challenge"].as_str().unwrap(), &keys));
    assert_eq!(other_ns.status, 401, "another namespace");
    let c = challenge(&f, "alice");
    let good = answer(&f, "alice", &c, &sign(&alice_key, ns, c["challenge"].as_str().unwrap(), &keys));
    assert_eq!(good.status, 200, "{}", good.body);
    assert!(good.set_cookie().unwrap().contains("__Host-vigo_session="));
    // An unknown user gets a challenge too (nothing is revealed), and cannot answer it.
    let c = challenge(&f, "mallory");
    assert_eq!(
        answer(&f, "mallory", &c, &sign(&alice_key, ns, c["challenge"].as_str().unwrap(), &keys)).status,
        401
    );
    let c = challenge(&f, "alice");
    std::thread::sleep(std::time::Duration::from_millis(10_500));
    let late = answer(&f, "alice", &c, &sign(&alice_key, ns, c["challenge"].as_str().unwrap(), &keys));
    assert_eq!(late.status, 401, "expired");
}
