//! Web users on the real router: what creating one checks first.

use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::router;
use crate::server::state::test_server_with;

async fn create(router: &axum::Router, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/v1/users")
        .header("authorization", "Bearer vgla_test")
        .header("content-type", "application/json")
        .body(HttpBody::from(body.to_string()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// L6: a user deleted through the API keeps their password in the vault; a new user of the
/// same name is refused until it is gone, so nobody inherits it.
#[tokio::test]
async fn a_new_user_never_inherits_a_password_left_in_the_vault() {
    let mut vault = crate::secrets::MemoryProvider::new();
    vault.insert("vigo/web/auth/carol", "the-old-users-password");
    let (dir, s) = test_server_with("user-leftover-password", vault, Default::default());
    let router = router(s.clone());
    let (status, body) = create(&router, json!({ "username": "carol" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("vigocli secrets delete vigo/web/auth/carol"), "{message}");
    assert!(crate::store::users::get(&s.db(), "carol").unwrap().is_none());
    let (status, body) = create(&router, json!({ "username": "dave" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    std::fs::remove_dir_all(dir).unwrap();
}
