//! The `oidc` login of the console against a real, independent OpenID Provider (npm
//! `oidc-provider`, started on 127.0.0.1 by the test), the browser played by curl with a cookie
//! jar: a good login gives a session; a token for another audience, an expired or badly signed
//! one, `alg: none`, a wrong nonce, a replayed code, a wrong state and an unknown user are each
//! refused with the one generic answer, and audited.

mod common;

use std::process::Command;

use common::fleet::Fleet;
use common::oidc::{ProviderOptions, TestProvider};
use common::*;

/// A port free on 127.0.0.1 now (the server is started on it; the provider must know the
/// redirect URI before either starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Setup {
    fleet: Fleet,
    provider: TestProvider,
    jar: std::path::PathBuf,
}

fn setup(tag: &str, misbehave: Option<&'static str>, login_as: &str) -> Setup {
    let api_port = free_port();
    let options = ProviderOptions {
        redirect_uri: format!("https://127.0.0.1:{api_port}/auth/oidc/callback"),
        misbehave,
        auto_login: Some(login_as.to_string()),
        ..Default::default()
    };
    let provider = TestProvider::start(options);
    let mut f = Fleet::new(tag);
    f.set_secret("vigo/oidc/client", &provider.options.client_secret);
    f.use_server_settings(&format!(
        "auth:\n  providers: [basic, oidc]\n  public_url: https://127.0.0.1:{api_port}\n  oidc:\n    issuer: {}\n    client_id: {}\n    client_secret: \"secret:vigo/oidc/client\"\n    ca_file: {}\n    claim: email\n",
        provider.issuer,
        provider.options.client_id,
        provider.ca_path().display()
    ));
    f.start_server_on("127.0.0.1:0", &format!("127.0.0.1:{api_port}"));
    assert_code(&f.cli(&["webusers", "create", "alice", "--email", "alice@example.org"], ""), 0);
    let jar = f.dir.join("browser-cookies");
    Setup { fleet: f, provider, jar }
}

/// curl as the browser, with its cookie jar: (status, Location, body, Set-Cookie lines).
/// What a browser gets for any refused callback: back to the login page, which says only that
/// the login failed (the reason is in the audit log).
const REFUSED: (u16, &str) = (303, "/login?failed=1");

fn refused(s: &Setup, url: &str) -> bool {
    let (status, location, _, _) = browse(s, url);
    (status, location.as_str()) == REFUSED
}

fn browse(s: &Setup, url: &str) -> (u16, String, String, Vec<String>) {
    let headers = s.fleet.dir.join("browse-headers");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(s.fleet.base().join("tls/ca"))
        .arg("-b")
        .arg(&s.jar)
        .arg("-c")
        .arg(&s.jar)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "\n%{http_code}"])
        .arg(url)
        .output()
        .expect("curl is required");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (body, code) = stdout.rsplit_once('\n').unwrap();
    let head = std::fs::read_to_string(&headers).unwrap_or_default();
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
        .unwrap_or_default()
        .trim()
        .to_string();
    let cookies = head
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .map(|c| c.trim().to_string())
        .collect();
    (code.trim().parse().unwrap(), location, body.to_string(), cookies)
}

/// Starts a login at the console, goes through the provider, and returns the callback URL the
/// provider sent the browser back to.
fn through_the_provider(s: &Setup) -> String {
    let (status, location, _, cookies) = browse(s, &format!("https://{}/auth/oidc/start", s.fleet.api_addr));
    assert_eq!(status, 303, "start redirects to the provider");
    assert!(
        cookies.iter().any(|c| c.starts_with("__Host-vigo_oidc=") && c.contains("SameSite=Lax")),
        "{cookies:?}"
    );
    assert!(location.starts_with(&s.provider.issuer), "{location}");
    let cb = s.provider.authorize(&location, None).expect("the provider sends the browser back");
    format!("{}?code={}&state={}", s.provider.options.redirect_uri, cb.code, cb.state)
}

fn session_cookie(cookies: &[String]) -> Option<String> {
    cookies
        .iter()
        .find(|c| c.starts_with("__Host-vigo_session=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
}

fn failures(f: &Fleet) -> usize {
    f.audit_json().lines().filter(|l| l.contains("\"auth.login_failed\"")).count()
}

#[test]
fn a_good_oidc_login_gives_a_session_for_the_matching_web_user() {
    let s = setup("oidc-good", None, "alice");
    let callback = through_the_provider(&s);
    let (status, _, body, cookies) = browse(&s, &callback);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("http-equiv=\"refresh\""),
        "the landing page moves on without a cross-site redirect: {body}"
    );
    let cookie = session_cookie(&cookies).expect("a session cookie");
    let me = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(s.fleet.base().join("tls/ca"))
        .args(["-H", &format!("cookie: {cookie}")])
        .arg(format!("https://{}/v1/auth/whoami", s.fleet.api_addr))
        .output()
        .unwrap();
    let me: serde_json::Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(me["username"], "alice", "{me}");
    // The same callback again: the code is spent and the pending login gone.
    let (status, location, _, cookies) = browse(&s, &callback);
    assert_eq!((status, location.as_str()), REFUSED);
    assert!(session_cookie(&cookies).is_none());
    // No token, code or client secret reached the database, the logs or the audit log.
    let code = callback.split("code=").nth(1).unwrap().split('&').next().unwrap();
    for needle in [code, s.provider.options.client_secret.as_str()] {
        let mut found = files_containing(&s.fleet.base(), needle.as_bytes());
        found.retain(|p| !p.starts_with(s.fleet.base().join("secrets")));
        assert!(found.is_empty(), "{needle} in {found:?}");
        assert!(!std::fs::read_to_string(s.fleet.server_log()).unwrap().contains(needle));
    }
}

#[test]
fn a_wrong_state_another_browser_and_an_unknown_user_are_refused() {
    let s = setup("oidc-refusals", None, "alice");
    let before = failures(&s.fleet);
    // A state that is not the one this browser's login sent.
    let callback = through_the_provider(&s);
    let forged = callback.replace("state=", "state=x");
    assert!(refused(&s, &forged));
    // A callback without the browser's pre-login cookie (another browser).
    let callback = through_the_provider(&s);
    std::fs::remove_file(&s.jar).unwrap();
    assert!(refused(&s, &callback), "another browser cannot finish this login");
    assert!(failures(&s.fleet) > before, "refusals are audited");
    // bob is known to the provider but is no web user: nobody is created by logging in.
    let s = setup("oidc-unknown", None, "bob");
    let callback = through_the_provider(&s);
    let (status, location, _, cookies) = browse(&s, &callback);
    assert_eq!((status, location.as_str()), REFUSED);
    assert!(session_cookie(&cookies).is_none());
    let users = s.fleet.cli(&["webusers", "list", "-o", "json"], "");
    assert!(!String::from_utf8_lossy(&users.stdout).contains("bob"));
}

#[test]
fn tampered_id_tokens_are_refused_each_with_the_generic_answer() {
    for misbehave in ["wrong_aud", "expired", "bad_signature", "alg_none", "wrong_nonce", "hs256_public_key"]
    {
        let s = setup(&format!("oidc-{misbehave}"), Some(misbehave), "alice");
        let callback = through_the_provider(&s);
        let (status, location, _, cookies) = browse(&s, &callback);
        assert_eq!((status, location.as_str()), REFUSED, "{misbehave}");
        assert!(session_cookie(&cookies).is_none(), "{misbehave}");
        let mut f = s.fleet;
        f.stop_server();
        let audit = f.audit_json();
        assert!(
            audit.contains("\"auth.login_failed\"") && audit.contains("token or code refused"),
            "{misbehave}: {audit}"
        );
        assert!(!audit.contains("\"auth.login\""), "{misbehave}");
    }
}
