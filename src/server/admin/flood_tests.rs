//! The public login routes under floods, and the shape of the errors a malformed request
//! gets, on the real router.

use std::net::IpAddr;

use axum::body::Body as HttpBody;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

use super::*;
use crate::server::state::test_server_with;

fn with_isowebauth() -> crate::settings::AuthSettings {
    crate::settings::AuthSettings {
        providers: vec!["basic".into(), "isowebauth".into()],
        ..Default::default()
    }
}

async fn post_json(
    router: &Router,
    path: &str,
    from: IpAddr,
    body: String,
) -> (StatusCode, serde_json::Value) {
    let req = Request::post(path)
        .extension(Peer(from))
        .header("content-type", "application/json")
        .body(HttpBody::from(body))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Challenges asked for thousands of made-up (and long) names from one source: once the
/// source has failed enough to be turned away, nothing more enters the throttle's table.
#[tokio::test]
async fn a_flood_of_challenges_for_new_names_does_not_grow_the_throttle() {
    let (dir, s) =
        test_server_with("flood-challenge", crate::secrets::MemoryProvider::new(), with_isowebauth());
    let router = router(s.clone());
    let attacker: IpAddr = "203.0.113.9".parse().unwrap();
    let long = "Q".repeat(2000);
    for i in 0..2000 {
        // Not valid usernames: each is refused, and was counted under its own name.
        let body = serde_json::json!({ "username": format!("{long}{i}") }).to_string();
        let (status, _) = post_json(&router, "/auth/isowebauth/challenge", attacker, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let lockout_after = s.logins.throttle.settings().lockout_after as usize;
    let tracked = s.logins.throttle.tracked_keys();
    assert!(tracked <= lockout_after + 1, "{tracked} keys tracked after 2000 names");
    std::fs::remove_dir_all(dir).unwrap();
}

/// One source asks for challenges until it holds its share; another source still gets one.
#[tokio::test]
async fn one_source_holding_its_challenges_leaves_others_theirs() {
    let (dir, s) = test_server_with("flood-share", crate::secrets::MemoryProvider::new(), with_isowebauth());
    let router = router(s);
    let flood: IpAddr = "203.0.113.10".parse().unwrap();
    let other: IpAddr = "198.51.100.10".parse().unwrap();
    let body = || serde_json::json!({ "username": "alice" }).to_string();
    let mut granted = 0;
    for _ in 0..200 {
        let (status, answer) = post_json(&router, "/auth/isowebauth/challenge", flood, body()).await;
        if status == StatusCode::OK {
            assert!(answer["challenge_id"].is_string(), "{answer}");
            granted += 1;
        }
    }
    assert!((1..200).contains(&granted), "the flooding source got {granted} of 200");
    let (status, answer) = post_json(&router, "/auth/isowebauth/challenge", other, body()).await;
    assert_eq!(status, StatusCode::OK, "another source still gets a challenge: {answer}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A method a route does not take is a JSON 405, on the public login routes as on the rest of
/// the API; a callback whose query does not parse gets the generic failure, not axum's text.
#[tokio::test]
async fn wrong_methods_and_bad_queries_get_json_not_text() {
    let (dir, s) = test_server_with("flood-405", crate::secrets::MemoryProvider::new(), with_isowebauth());
    let router = router(s);
    for (method, path) in [(Method::GET, "/auth/basic"), (Method::PUT, "/auth/isowebauth/challenge")] {
        let req = Request::builder()
            .method(method.clone())
            .uri(path)
            .extension(Peer([127, 0, 0, 1].into()))
            .body(HttpBody::empty())
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{method} {path}");
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(json["error"].is_string(), "{json}");
    }
    let req = Request::get("/auth/oidc/callback?code=a&code=b&state=%ZZ")
        .extension(Peer([127, 0, 0, 1].into()))
        .body(HttpBody::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_ne!(resp.status(), StatusCode::BAD_REQUEST, "not axum's plain-text rejection");
    assert_eq!(resp.headers()["location"], "/login?failed=1", "the browser goes back to the login page");
    std::fs::remove_dir_all(dir).unwrap();
}
