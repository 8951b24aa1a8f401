//! The route table against the role table, and the order of checks, on the real router.

use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::*;
use crate::auth::Role;
use crate::server::state::test_server;

const ADMIN: &str = "vgla_test";

/// Makes an API token of each role directly in the database; returns (role, token).
fn tokens_per_role(s: &Server) -> Vec<(Role, String)> {
    Role::ALL
        .iter()
        .map(|role| {
            let token = format!("vgot_{}", role.name());
            let hash = crate::crypto::sha256(token.as_bytes());
            let row = crate::store::api_tokens::NewApiToken {
                id: role.name(),
                name: role.name(),
                role: role.name(),
                hash: &hash,
                created_at: 0,
                owner: None,
                expires_at: None,
            };
            crate::store::api_tokens::insert(&s.db(), &row).unwrap();
            (*role, token)
        })
        .collect()
}

async fn call(
    router: &Router,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method.clone()).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    // Deliberately not JSON: a caller without the right to call must not learn that either.
    let resp = router.clone().oneshot(req.body(HttpBody::from(body.to_string())).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    // The one answer that is not JSON: the Prometheus text a permitted scrape gets.
    if path.starts_with("/metrics") && status == StatusCode::OK {
        assert!(bytes.starts_with(b"# HELP "), "{bytes:?}");
        return (status, serde_json::Value::Null);
    }
    let json =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("{path}: body is not JSON: {bytes:?}"));
    (status, json)
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "someone").replace("{id}", "some-run")
}

/// Every route: no token is 401, a role without the route's permission is 403, both before the
/// (malformed) body or query is looked at; and every answer is JSON (but a granted scrape).
#[tokio::test]
async fn every_route_checks_token_then_its_permission_before_parsing_input() {
    let (dir, s) = test_server("routes");
    let router = router(s.clone());
    let tokens = tokens_per_role(&s);
    // The API's routes (the console's answer pages: src/server/web/tests.rs walks those).
    let table: Vec<Route> =
        route_table().into_iter().filter(|r| !crate::server::web::is_page(r.path)).collect();
    assert!(table.len() >= 14, "the table lists every route");
    for route in &table {
        let path = format!("{}?bogus=1", concrete(route.path));
        let (status, body) = call(&router, &route.method, &path, None, "not json").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {}: {body}", route.method, route.path);
        let (status, _) = call(&router, &route.method, &path, Some("vgot_nonsense"), "not json").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {}", route.method, route.path);
        for (role, token) in &tokens {
            let (status, body) = call(&router, &route.method, &path, Some(token), "not json").await;
            if role.allows(route.permission) {
                assert_ne!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {} as {role:?}: {body}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {} as {role:?}: {body}",
                    route.method,
                    route.path
                );
                assert!(body["error"].as_str().unwrap().contains(route.permission.name()));
            }
        }
    }
    // Unknown paths need a token too, and answer JSON.
    let (status, _) = call(&router, &Method::GET, "/v1/nothing", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&router, &Method::GET, "/v1/nothing", Some(ADMIN), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A malformed body or query from an authorised caller is a JSON 4xx that does not echo it.
#[tokio::test]
async fn malformed_input_gets_a_json_error_that_does_not_echo_it() {
    let (dir, s) = test_server("malformed");
    let router = router(s);
    let canary = "ECHO-CANARY-".repeat(1000);
    let cases = [
        (Method::POST, "/v1/api-tokens".to_string(), canary.clone()),
        (Method::POST, "/v1/enroll-tokens".to_string(), format!("{{\"ttl_secs\": \"{canary}\"}}")),
        (Method::GET, format!("/v1/runs?limit={canary}"), String::new()),
        (Method::POST, format!("/v1/envoys/{}/revoke", &canary[..300]), String::new()),
    ];
    for (method, path, body) in cases {
        let (status, json) = call(&router, &method, &path, Some(ADMIN), &body).await;
        assert!(status.is_client_error(), "{path}: {status}");
        let text = json.to_string();
        assert!(
            !text.contains("ECHO-CANARY-ECHO-CANARY-ECHO-CANARY-ECHO-CANARY-ECHO-CANARY-ECHO-CANARY"),
            "{path}: {text}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// L3: every answer that repeats a name, key or id from the request repeats it short and with
/// control and invisible characters escaped, whatever route and wherever the input came from.
#[tokio::test]
async fn echoed_input_is_short_and_escaped_on_every_route_that_repeats_it() {
    let (dir, s) = test_server("echo-escaped");
    let router = router(s);
    // Long (capped before its hidden characters) and short (all of it shown, escaped).
    for nasty in [
        format!("{}\u{1b}[31mred\u{202e}kcab\u{200b}\r\nX-Injected: 1", "N".repeat(300)),
        "x\u{1b}[31mred\u{202e}kcab\u{200b}\r\nX".to_string(),
    ] {
        echo_cases(&router, &nasty).await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

async fn echo_cases(router: &Router, nasty: &str) {
    let path: String =
        form_urlencoded::byte_serialize(nasty.as_bytes()).collect::<String>().replace('+', "%20");
    let body = |field: &str| serde_json::json!({ field: nasty }).to_string();
    let cases = [
        (Method::GET, format!("/v1/users/{path}"), String::new()),
        (Method::POST, format!("/v1/users/{path}/role"), r#"{"role":"viewer"}"#.to_string()),
        (Method::POST, format!("/v1/users/{path}/disable"), "{}".to_string()),
        (Method::POST, format!("/v1/users/{path}/delete"), "{}".to_string()),
        (Method::GET, format!("/v1/envoys/{path}"), String::new()),
        (Method::POST, format!("/v1/envoys/{path}/revoke"), "{}".to_string()),
        (Method::POST, format!("/v1/api-tokens/{path}/revoke"), "{}".to_string()),
        (Method::POST, format!("/v1/api-tokens/{path}/revoke?owner={path}"), "{}".to_string()),
        (Method::POST, format!("/v1/auth/tokens/{path}/revoke"), "{}".to_string()),
        (Method::POST, format!("/v1/sessions/{path}/revoke"), "{}".to_string()),
        (Method::POST, "/v1/secrets/rotated".to_string(), body("key")),
        (Method::POST, "/v1/users".to_string(), body("username")),
        (
            Method::POST,
            "/v1/api-tokens".to_string(),
            format!(r#"{{"name":{},"role":"viewer"}}"#, serde_json::json!(nasty)),
        ),
        (
            Method::POST,
            "/v1/auth/tokens".to_string(),
            format!(r#"{{"name":"ok","user":{}}}"#, serde_json::json!(nasty)),
        ),
        (
            Method::POST,
            "/v1/auth/tokens".to_string(),
            format!(r#"{{"name":{},"user":"nobody"}}"#, serde_json::json!(nasty)),
        ),
        (
            Method::POST,
            "/v1/enroll-tokens".to_string(),
            format!(r#"{{"ttl_secs":60,"envoy_name":{}}}"#, serde_json::json!(nasty)),
        ),
        (
            Method::POST,
            "/v1/enroll-tokens".to_string(),
            format!(r#"{{"ttl_secs":60,"envoy_pattern":{}}}"#, serde_json::json!(nasty)),
        ),
    ];
    for (method, uri, body) in cases {
        let req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(HttpBody::from(body))
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let message = json["error"].as_str().unwrap_or_else(|| panic!("{method} {uri}: {status} {json}"));
        assert!(status.is_client_error(), "{method} {uri}: {status} {message}");
        assert!(message.chars().count() < 400, "{method} {uri}: {} characters: {message}", message.len());
        assert!(!message.contains(&"N".repeat(100)), "{method} {uri}: {message}");
        let hidden: Vec<char> = message.chars().filter(|c| crate::util::text::is_hidden(*c)).collect();
        assert!(hidden.is_empty(), "{method} {uri}: {hidden:?} in {message:?}");
    }
}
