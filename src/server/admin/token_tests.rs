//! Who may make which API token, whose it is, and what a refusal tells (`owned_tokens`), on the
//! real router.

use axum::body::Body as HttpBody;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::router;
use crate::auth::Role;
use crate::server::state::{test_server, Server};
use crate::util::time::unix_now;

const LOCAL_ADMIN: &str = "vgla_test";
const HOST: &str = "console.test:8443";

fn add_user(s: &Server, name: &str, role: Role) {
    let now = unix_now();
    let user = crate::store::users::WebUser {
        username: name.into(),
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
}

/// A token put straight into the database; returns it.
fn add_token(s: &Server, name: &str, owner: Option<&str>, role: Role, expires_at: Option<i64>) -> String {
    let token = format!("vgot_{}_{name}", owner.unwrap_or("none"));
    let hash = crate::crypto::sha256(token.as_bytes());
    let id = crate::crypto::uuid_v4().unwrap();
    let row = crate::store::api_tokens::NewApiToken {
        id: &id,
        name,
        role: role.name(),
        hash: &hash,
        created_at: unix_now(),
        owner,
        expires_at,
    };
    crate::store::api_tokens::insert(&s.db(), &row).unwrap();
    token
}

fn session(s: &Server, username: &str) -> String {
    let now = unix_now();
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

enum By<'a> {
    Token(&'a str),
    Session(&'a str),
}

async fn post(router: &Router, by: By<'_>, path: &str, body: Value) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", HOST)
        .header("content-type", "application/json");
    req = match by {
        By::Token(t) => req.header("authorization", format!("Bearer {t}")),
        By::Session(id) => req
            .header("cookie", format!("__Host-vigo_session={id}"))
            .header("origin", format!("https://{HOST}"))
            .header(super::auth::CSRF_HEADER, crate::auth::session::csrf_token(id)),
    };
    let resp = router.clone().oneshot(req.body(HttpBody::from(body.to_string())).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn get_status(router: &Router, token: &str, path: &str) -> StatusCode {
    let req = Request::get(path).header("authorization", format!("Bearer {token}")).body(HttpBody::empty());
    router.clone().oneshot(req.unwrap()).await.unwrap().status()
}

fn owner_of(s: &Server, name: &str) -> Vec<Option<String>> {
    crate::store::api_tokens::active_owners(&s.db(), name).unwrap()
}

/// H1: a token (or a session) makes tokens no broader than its caller's effective role and
/// expiring no later than itself, within the configured maximum lifetime.
#[tokio::test]
async fn a_token_makes_tokens_no_broader_and_no_longer_lived_than_itself() {
    let (dir, s) = test_server("token-escalation");
    let router = router(s.clone());
    add_user(&s, "alice", Role::Admin);
    let in_an_hour = unix_now() + 3600;
    let viewer = add_token(&s, "short", Some("alice"), Role::Viewer, Some(in_an_hour));
    let mint = |name: &str, extra: Value| {
        let mut body = json!({ "name": name });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    // Broader than the token itself, though the owner is an admin: refused.
    let (status, body) =
        post(&router, By::Token(&viewer), "/v1/auth/tokens", mint("wider", json!({ "role": "admin" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Longer-lived than the token itself: refused.
    let (status, body) = post(
        &router,
        By::Token(&viewer),
        "/v1/auth/tokens",
        mint("longer", json!({ "expires_in_secs": 7200 })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Nor through the admins' route.
    let (status, _) =
        post(&router, By::Token(&viewer), "/v1/api-tokens", json!({ "name": "wider2", "role": "admin" }))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Within both: made, as a viewer's, expiring with its maker at the latest.
    let (status, made) = post(&router, By::Token(&viewer), "/v1/auth/tokens", mint("child", json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["role"], "viewer");
    assert_eq!(made["owner"], "alice");
    assert!(made["expires_at"].as_i64().unwrap() <= in_an_hour, "{made}");
    // A session's token is capped by the user's role and always expires, within the maximum.
    let id = session(&s, "alice");
    let max = s.auth.api_token_max_lifetime_secs().unwrap();
    let (status, made) =
        post(&router, By::Session(&id), "/v1/auth/tokens", mint("from-session", json!({ "role": "admin" })))
            .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let expires = made["expires_at"].as_i64().expect("a session's token expires");
    assert!(expires <= unix_now() + max && expires > unix_now() + max - 60, "{made}");
    let too_long = json!({ "expires_in_secs": max as u64 + 1 });
    let (status, _) = post(&router, By::Session(&id), "/v1/auth/tokens", mint("forever", too_long)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A viewer's session cannot make an admin token either.
    add_user(&s, "vera", Role::Viewer);
    let vera = session(&s, "vera");
    let (status, _) =
        post(&router, By::Session(&vera), "/v1/auth/tokens", mint("up", json!({ "role": "admin" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    std::fs::remove_dir_all(dir).unwrap();
}

/// M5: a person's token is the person's, whichever route made it; only the local-admin principal
/// makes ownerless tokens; a token dies with its owner's demotion below it, disable or delete.
#[tokio::test]
async fn only_the_local_admin_makes_ownerless_tokens_and_tokens_follow_their_owner() {
    let (dir, s) = test_server("token-owners");
    let router = router(s.clone());
    add_user(&s, "alice", Role::Admin);
    let id = session(&s, "alice");
    let (status, made) =
        post(&router, By::Session(&id), "/v1/api-tokens", json!({ "name": "deploy", "role": "admin" })).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(owner_of(&s, "deploy"), [Some("alice".to_string())], "an admin's token is the admin's own");
    let alice_admin = made["token"].as_str().unwrap().to_string();
    // Made with that token: alice's too.
    let (status, _) = post(
        &router,
        By::Token(&alice_admin),
        "/v1/api-tokens",
        json!({ "name": "deploy2", "role": "viewer" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(owner_of(&s, "deploy2"), [Some("alice".to_string())]);
    // An ownerless token (of the local-admin principal) cannot make tokens at all.
    let legacy = add_token(&s, "legacy", None, Role::Admin, None);
    let (status, _) =
        post(&router, By::Token(&legacy), "/v1/api-tokens", json!({ "name": "orphan", "role": "admin" }))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(owner_of(&s, "orphan").is_empty());
    // The local-admin principal alone makes ownerless ones.
    let (status, made) =
        post(&router, By::Token(LOCAL_ADMIN), "/v1/api-tokens", json!({ "name": "svc", "role": "admin" }))
            .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(owner_of(&s, "svc"), [None]);
    // Demoted below the token's role: the admin token is revoked and refused; the viewer one lives.
    let viewer_token = add_token(&s, "reader", Some("alice"), Role::Viewer, None);
    let (status, _) =
        post(&router, By::Token(LOCAL_ADMIN), "/v1/users/alice/role", json!({ "role": "viewer" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get_status(&router, &alice_admin, "/v1/envoys").await, StatusCode::UNAUTHORIZED);
    assert!(owner_of(&s, "deploy").is_empty(), "revoked with the demotion");
    assert_eq!(get_status(&router, &viewer_token, "/v1/envoys").await, StatusCode::OK);
    // A token whose owner's role is lowered behind the server's back is refused all the same.
    let compliance = add_token(&s, "audit", Some("alice"), Role::Viewer, None);
    crate::store::users::set_role(&s.db(), "alice", "compliance", unix_now()).unwrap();
    assert_eq!(get_status(&router, &compliance, "/v1/envoys").await, StatusCode::UNAUTHORIZED);
    crate::store::users::set_role(&s.db(), "alice", "viewer", unix_now()).unwrap();
    // Disabled: refused; deleted: revoked.
    let (status, _) = post(&router, By::Token(LOCAL_ADMIN), "/v1/users/alice/disable", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get_status(&router, &viewer_token, "/v1/envoys").await, StatusCode::UNAUTHORIZED);
    let (status, _) = post(&router, By::Token(LOCAL_ADMIN), "/v1/users/alice/delete", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(owner_of(&s, "reader").is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// L5: a name another owner uses is no refusal (names are per owner), so making a token tells
/// nothing about other people's tokens; an admin revoking a shared name says whose.
#[tokio::test]
async fn a_token_name_another_owner_uses_is_not_revealed() {
    let (dir, s) = test_server("token-names");
    let router = router(s.clone());
    add_user(&s, "bob", Role::Viewer);
    add_user(&s, "vera", Role::Viewer);
    add_token(&s, "ci", Some("bob"), Role::Viewer, None);
    let vera = session(&s, "vera");
    let (status, body) = post(&router, By::Session(&vera), "/v1/auth/tokens", json!({ "name": "ci" })).await;
    assert_eq!(status, StatusCode::OK, "bob's name is no obstacle: {body}");
    let (status, body) = post(&router, By::Session(&vera), "/v1/auth/tokens", json!({ "name": "ci" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "her own name is");
    assert!(!body.to_string().contains("bob"), "{body}");
    // An admin revoking "ci" must say whose; then only that one goes.
    let (status, body) = post(&router, By::Token(LOCAL_ADMIN), "/v1/api-tokens/ci/revoke", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) =
        post(&router, By::Token(LOCAL_ADMIN), "/v1/api-tokens/ci/revoke?owner=bob", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(owner_of(&s, "ci"), [Some("vera".to_string())]);
    // A user revokes only their own.
    let (status, _) = post(&router, By::Session(&vera), "/v1/auth/tokens/ci/revoke", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(owner_of(&s, "ci").is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}
