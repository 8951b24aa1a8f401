//! The console on the real router: every page and action behind its route's permission, with
//! HTML answers (a login redirect, a refusal page); the security headers on every answer; forged
//! state changes refused; what a viewer is shown.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

use crate::auth::Role;
use crate::server::admin::{route_table, router, Route};
use crate::server::state::{test_server, Server};

/// A web user of `role` with a live session; returns the session id.
fn session_for(s: &Server, username: &str, role: Role) -> String {
    let now = crate::util::time::unix_now();
    let user = crate::store::users::WebUser {
        username: username.into(),
        role: role.name().into(),
        display_name: String::new(),
        email: String::new(),
        ssh_key: None,
        disabled_at: None,
        created_at: now,
        created_by: "test".into(),
        updated_at: now,
    };
    crate::store::users::insert(&s.db(), &user).unwrap();
    let (id, hash) = crate::auth::session::new_id().unwrap();
    let row = crate::store::sessions::Session {
        id_hash: hash.to_vec(),
        username: username.into(),
        provider: "basic".into(),
        source: "127.0.0.1".into(),
        created_at: now,
        last_seen: now,
        expires_at: now + 3600,
    };
    crate::store::sessions::insert(&s.db(), &row).unwrap();
    id.expose().to_string()
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(router: &Router, req: Request<Body>) -> Answer {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap();
    Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

const HOST: &str = "console.test:8443";

/// A request as a browser of this session would send it: Host, own Origin on a POST, and the
/// session's CSRF token in the form.
fn browser(method: &Method, path: &str, session: Option<&str>, form: &str) -> Request<Body> {
    let mut req = Request::builder().method(method.clone()).uri(path).header("host", HOST);
    if let Some(id) = session {
        req = req.header("cookie", format!("__Host-vigo_session={id}"));
        if *method == Method::POST {
            let csrf = crate::auth::session::csrf_token(id);
            req = req
                .header("origin", format!("https://{HOST}"))
                .header("content-type", "application/x-www-form-urlencoded");
            let body = format!(
                "csrf={}&{form}",
                form_urlencoded::byte_serialize(csrf.as_bytes()).collect::<String>()
            );
            return req.body(Body::from(body)).unwrap();
        }
    }
    req.body(Body::from(form.to_string())).unwrap()
}

fn console_routes() -> Vec<Route> {
    route_table().into_iter().filter(|r| super::is_page(r.path)).collect()
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "someone").replace("{id}", "0011223344556677")
}

/// Every console route: without a session a page load goes to the login page and an action is
/// refused; a role without the route's permission gets a 403 page naming it, before the form is
/// read; a role with it is never refused. Every answer is HTML.
#[tokio::test]
async fn every_console_route_checks_the_session_then_its_permission() {
    let (dir, s) = test_server("web-routes");
    let router = router(s.clone());
    let sessions: Vec<(Role, String)> =
        Role::ALL.iter().map(|r| (*r, session_for(&s, &format!("u{}", r.name()), *r))).collect();
    let routes = console_routes();
    assert!(routes.len() >= 20, "{routes:?}");
    for route in &routes {
        let path = concrete(route.path);
        let anonymous = send(&router, browser(&route.method, &path, None, "x=1")).await;
        if route.method == Method::GET {
            assert_eq!(anonymous.status, StatusCode::SEE_OTHER, "{path}");
            assert_eq!(anonymous.headers["location"], "/login", "{path}");
        } else {
            assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
            assert!(anonymous.body.contains("<!doctype html>"), "{path}: {}", anonymous.body);
        }
        for (role, id) in &sessions {
            let a = send(&router, browser(&route.method, &path, Some(id), "bogus=1")).await;
            let html = a.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
            if role.allows(route.permission) {
                assert!(
                    a.status != StatusCode::FORBIDDEN && a.status != StatusCode::UNAUTHORIZED,
                    "{} {path} as {role:?}: {} {}",
                    route.method,
                    a.status,
                    a.body
                );
            } else {
                assert_eq!(a.status, StatusCode::FORBIDDEN, "{} {path} as {role:?}", route.method);
                assert!(a.body.contains(route.permission.name()), "{path}: {}", a.body);
            }
            assert!(
                a.status.is_redirection() || html.starts_with("text/html"),
                "{} {path} as {role:?}: {html} {}",
                route.method,
                a.status
            );
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The public console paths are exactly the login page and its assets, and none of them is in
/// the route table (where every route has a permission).
#[tokio::test]
async fn only_the_login_page_and_its_assets_are_public() {
    let (dir, s) = test_server("web-public");
    let router = router(s);
    for path in super::PUBLIC_PATHS {
        let a = send(&router, browser(&Method::GET, path, None, "")).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert!(route_table().iter().all(|r| r.path != *path), "{path} is public and in the table");
    }
    let login = send(&router, browser(&Method::GET, "/login", None, "")).await;
    assert!(login.body.contains("action=\"/auth/basic\""), "{}", login.body);
    assert!(!login.body.contains("/auth/oidc/start"), "oidc is not enabled");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The exact security headers on pages, refusals, redirects, assets, API JSON and unknown paths;
/// `no-store` on all but the assets.
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (dir, s) = test_server("web-headers");
    let id = session_for(&s, "alice", Role::Viewer);
    let router = router(s);
    let cases = [
        (browser(&Method::GET, "/", Some(&id), ""), true),
        (browser(&Method::GET, "/users", Some(&id), ""), true),
        (browser(&Method::GET, "/", None, ""), true),
        (browser(&Method::GET, "/login", None, ""), true),
        (browser(&Method::GET, "/nothing", Some(&id), ""), true),
        (browser(&Method::GET, "/v1/health", Some(&id), ""), true),
        (browser(&Method::GET, "/v1/health", None, ""), true),
        (browser(&Method::POST, "/auth/basic", None, "username=a&password=b"), true),
        (browser(&Method::GET, "/static/console.css", None, ""), false),
    ];
    for (req, no_store) in cases {
        let path = req.uri().to_string();
        let a = send(&router, req).await;
        for (name, value) in super::headers::SECURITY_HEADERS {
            assert_eq!(a.headers.get(*name).map(|v| v.to_str().unwrap()), Some(*value), "{name} on {path}");
        }
        assert_eq!(a.headers["content-security-policy"], "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
        assert_eq!(
            a.headers["cache-control"] == "no-store",
            no_store,
            "{path}: {:?}",
            a.headers["cache-control"]
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn add_envoy(s: &Server, id: &str, name: &str) {
    let cert = crate::store::envoys::IssuedCert { not_after: 4_000_000_000, ca_pin: "00".into() };
    let e =
        crate::store::envoys::NewEnvoy { id, name, public_key: id.as_bytes(), enrolled_at: 1, cert: &cert };
    crate::store::envoys::insert(&s.db(), &e).unwrap();
}

/// A viewer sees no revoke button, and a POST forged by hand is refused anyway; so is an
/// admin's without the CSRF token or from another origin. Only the admin's own form revokes.
#[tokio::test]
async fn revoke_is_offered_and_allowed_to_admins_only_and_never_forged() {
    let (dir, s) = test_server("web-revoke");
    add_envoy(&s, "8e6f3a7c-0000-4000-8000-000000000001", "web1.example.com");
    let viewer = session_for(&s, "victor", Role::Viewer);
    let admin = session_for(&s, "alice", Role::Admin);
    let router = router(s.clone());
    let page = send(&router, browser(&Method::GET, "/envoys/web1.example.com", Some(&viewer), "")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/revoke"), "a viewer is offered no revoke: {}", page.body);
    let as_admin = send(&router, browser(&Method::GET, "/envoys/web1.example.com", Some(&admin), "")).await;
    assert!(as_admin.body.contains("/revoke\""), "{}", as_admin.body);
    let action = "/envoys/web1.example.com/revoke";
    let forged = send(&router, browser(&Method::POST, action, Some(&viewer), "")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "the viewer's own valid form");
    // The admin's session, without the token, with another session's, or from another origin.
    let no_token = Request::post(action)
        .header("host", HOST)
        .header("origin", format!("https://{HOST}"))
        .header("cookie", format!("__Host-vigo_session={admin}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("x=1"))
        .unwrap();
    assert_eq!(send(&router, no_token).await.status, StatusCode::FORBIDDEN);
    let other = crate::auth::session::csrf_token(&viewer);
    let wrong_token = Request::post(action)
        .header("host", HOST)
        .header("origin", format!("https://{HOST}"))
        .header("cookie", format!("__Host-vigo_session={admin}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "csrf={}",
            form_urlencoded::byte_serialize(other.as_bytes()).collect::<String>()
        )))
        .unwrap();
    assert_eq!(send(&router, wrong_token).await.status, StatusCode::FORBIDDEN);
    let mut cross = browser(&Method::POST, action, Some(&admin), "");
    cross.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(send(&router, cross).await.status, StatusCode::FORBIDDEN);
    // A page elsewhere that sends `Origin: null` on purpose: the browser says it is not ours.
    for site in [None, Some("cross-site"), Some("same-site")] {
        let mut null = browser(&Method::POST, action, Some(&admin), "");
        null.headers_mut().insert("origin", "null".parse().unwrap());
        if let Some(v) = site {
            null.headers_mut().insert("sec-fetch-site", v.parse().unwrap());
        }
        assert_eq!(send(&router, null).await.status, StatusCode::FORBIDDEN, "{site:?}");
    }
    assert!(crate::store::envoys::find(&s.db(), "web1.example.com").unwrap().unwrap().revoked_at.is_none());
    // The console's own form, as a browser sends it from a no-referrer page.
    let mut own = browser(&Method::POST, action, Some(&admin), "");
    own.headers_mut().insert("origin", "null".parse().unwrap());
    own.headers_mut().insert("sec-fetch-site", "same-origin".parse().unwrap());
    let done = send(&router, own).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(crate::store::envoys::find(&s.db(), "web1.example.com").unwrap().unwrap().revoked_at.is_some());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Compliance is refused the audit log, and sees no link to it.
#[tokio::test]
async fn compliance_gets_no_audit_log() {
    let (dir, s) = test_server("web-compliance");
    let id = session_for(&s, "carol", Role::Compliance);
    let router = router(s);
    let home = send(&router, browser(&Method::GET, "/", Some(&id), "")).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(!home.body.contains("href=\"/audit"), "{}", home.body);
    let audit = send(&router, browser(&Method::GET, "/audit", Some(&id), "")).await;
    assert_eq!(audit.status, StatusCode::FORBIDDEN);
    assert!(audit.body.contains("audit.read"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A login posted from another site is refused before it is heard (login CSRF); one from the
/// console's own page, or a script sending no Origin, is heard (and here fails as usual).
#[tokio::test]
async fn a_login_from_another_origin_is_refused() {
    let (dir, s) = test_server("web-login-origin");
    let router = router(s);
    let post = |origin: Option<&str>| {
        let mut req = Request::post("/auth/basic")
            .extension(crate::server::admin::Peer(std::net::Ipv4Addr::LOCALHOST.into()))
            .header("host", HOST)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.body(Body::from("username=alice&password=nope")).unwrap()
    };
    assert_eq!(send(&router, post(Some("https://evil.example"))).await.status, StatusCode::FORBIDDEN);
    let own = send(&router, post(Some(&format!("https://{HOST}")))).await;
    assert_eq!(own.status, StatusCode::SEE_OTHER, "a failed form login goes back to the login page");
    assert_eq!(own.headers["location"], "/login?failed=1");
    assert_eq!(send(&router, post(None)).await.status, StatusCode::SEE_OTHER);
    // `Origin: null` (what a browser sends from a no-referrer page) counts only with
    // `Sec-Fetch-Site: same-origin`.
    let mut null_same = post(Some("null"));
    null_same.headers_mut().insert("sec-fetch-site", "same-origin".parse().unwrap());
    assert_eq!(send(&router, null_same).await.status, StatusCode::SEE_OTHER);
    assert_eq!(send(&router, post(Some("null"))).await.status, StatusCode::FORBIDDEN);
    let mut null_cross = post(Some("null"));
    null_cross.headers_mut().insert("sec-fetch-site", "same-site".parse().unwrap());
    assert_eq!(send(&router, null_cross).await.status, StatusCode::FORBIDDEN);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every login route that takes a POST, as JSON and as a form: another site's Origin, `null`
/// without `Sec-Fetch-Site: same-origin`, and no Origin but a cross-site or same-site
/// `Sec-Fetch-Site` are refused before the login is heard; the console's own pages and scripts
/// (no Origin, no Sec-Fetch-Site) are heard.
#[tokio::test]
async fn every_login_route_refuses_another_sites_post_as_json_and_as_form() {
    let auth = crate::settings::AuthSettings {
        providers: vec!["basic".into(), "isowebauth".into()],
        ..Default::default()
    };
    let (dir, s) = crate::server::state::test_server_with(
        "web-login-csrf-all",
        crate::secrets::MemoryProvider::new(),
        auth,
    );
    let router = router(s);
    let own = format!("https://{HOST}");
    let foreign: &[&[(&str, &str)]] = &[
        &[("origin", "https://evil.example")],
        &[("origin", "https://console.test:9999")],
        &[("origin", "null")],
        &[("origin", "null"), ("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
    ];
    let heard: &[&[(&str, &str)]] = &[
        &[],
        &[("origin", &own)],
        &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        &[("sec-fetch-site", "same-origin")],
    ];
    let bodies = [
        ("application/json", r#"{"username":"alice","password":"nope","challenge_id":"x","signature":"y"}"#),
        ("application/x-www-form-urlencoded", "username=alice&password=nope&challenge_id=x&signature=y"),
    ];
    for path in crate::server::admin::login::LOGIN_POSTS {
        for (content_type, body) in bodies {
            let post = |headers: &[(&str, &str)]| {
                let mut req = Request::post(*path)
                    .extension(crate::server::admin::Peer(std::net::Ipv4Addr::LOCALHOST.into()))
                    .header("host", HOST)
                    .header("content-type", content_type);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.body(Body::from(body)).unwrap()
            };
            for headers in foreign {
                let answer = send(&router, post(headers)).await;
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path} {content_type} {headers:?}");
            }
            for headers in heard {
                let answer = send(&router, post(headers)).await;
                assert_ne!(answer.status, StatusCode::FORBIDDEN, "{path} {content_type} {headers:?}");
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The route table in docs/CONSOLE.md is the code's: every console route once, with its method
/// and permission.
#[test]
fn the_documented_console_routes_are_the_code() {
    let docs = include_str!("../../../docs/CONSOLE.md");
    let section = docs.split("## Pages, routes and permissions").nth(1).expect("the section exists");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut documented: Vec<(String, String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| GET ") || l.starts_with("| POST "))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].to_string(),
                cells[2].trim_matches('`').to_string(),
                cells[3].trim_matches('`').to_string(),
            )
        })
        .collect();
    let mut code: Vec<(String, String, String)> = console_routes()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string(), r.permission.name().to_string()))
        .collect();
    documented.sort();
    code.sort();
    assert_eq!(documented, code);
}

/// The notice after an action is chosen by a code from a fixed list: nothing in the address is
/// ever shown back.
#[tokio::test]
async fn a_notice_is_one_of_the_fixed_sentences() {
    let (dir, s) = test_server("web-notice");
    let id = session_for(&s, "alice", Role::Viewer);
    let router = router(s);
    let known = send(&router, browser(&Method::GET, "/?ok=published", Some(&id), "")).await;
    assert!(known.body.contains("class=\"notice\""), "{}", known.body);
    let made_up =
        send(&router, browser(&Method::GET, "/?ok=Send%20your%20password%20to%20evil", Some(&id), "")).await;
    assert_eq!(made_up.status, StatusCode::OK);
    assert!(!made_up.body.contains("class=\"notice\"") && !made_up.body.contains("evil"), "{}", made_up.body);
    std::fs::remove_dir_all(dir).unwrap();
}
