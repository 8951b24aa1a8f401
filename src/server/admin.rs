//! The admin HTTPS JSON API (behind bearer tokens), used by vigocli.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin_auth::{authenticate, Permission};
use super::state::Server;
use crate::audit::{self, Event};
use crate::crypto;
use crate::util::time::unix_now;
use crate::wire::{self, EnrollToken};

pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// Every row of `sql` as JSON, for the list endpoints.
fn json_rows(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<Value>,
) -> Result<Vec<Value>, ApiError> {
    let mut stmt = conn.prepare(sql).map_err(ApiError::internal)?;
    let rows = stmt.query_map(params, row).map_err(ApiError::internal)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(ApiError::internal)
}
type S = State<Arc<Server>>;

pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/enroll-tokens", post(create_token).get(list_tokens))
        .route("/v1/api-tokens", post(create_api_token).get(list_api_tokens))
        .route("/v1/api-tokens/{name}/revoke", post(revoke_api_token))
        .route("/v1/envoys", get(list_envoys))
        .route("/v1/envoys/{name}", get(show_envoy))
        .route("/v1/envoys/{name}/revoke", post(revoke_envoy))
        .route("/v1/config/publish", post(publish))
        .route("/v1/secrets/rotated", post(secret_rotated))
        .route("/v1/runs", get(list_runs))
        .route("/v1/runs/{id}", get(show_run))
        .route("/v1/audit", get(audit_tail))
        .with_state(server)
}

async fn health(State(s): S, headers: HeaderMap) -> ApiResult {
    authenticate(&s, &headers, Permission::Read)?;
    let p = s.current();
    Ok(Json(json!({
        "status": "ok",
        "config_epoch": p.config_epoch,
        "config_hash": p.content_hash,
        "config_from_last_good": p.from_last_good,
        "secrets_epoch": s.secrets_epoch(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    ttl_secs: u64,
    envoy_name: Option<String>,
}

async fn create_token(State(s): S, headers: HeaderMap, Json(req): Json<CreateToken>) -> ApiResult {
    let caller = authenticate(&s, &headers, Permission::Write)?;
    if req.ttl_secs == 0 || req.ttl_secs > 30 * 86_400 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "ttl must be between 1s and 30d"));
    }
    if let Some(n) = &req.envoy_name {
        wire::validate_envoy_name(n).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    }
    let token = EnrollToken::mint(s.ca_pin).map_err(ApiError::internal)?;
    let id = crypto::uuid_v4().map_err(ApiError::internal)?;
    let now = unix_now();
    let expires = now + req.ttl_secs as i64;
    let mut conn = s.db();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(ApiError::internal)?;
    tx.execute(
        "INSERT INTO enroll_tokens (id, token_hash, envoy_name, created_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            EnrollToken::secret_hash(&token.secret).as_slice(),
            req.envoy_name,
            caller.actor,
            now,
            expires
        ],
    )
    .map_err(ApiError::internal)?;
    let detail = json!({ "expires_at": expires, "envoy_name": req.envoy_name });
    audit::append_in(&tx, &[Event::new(&caller.actor, "token.created", &id).detail(detail)])
        .map_err(ApiError::internal)?;
    tx.commit().map_err(ApiError::internal)?;
    Ok(Json(json!({ "id": id, "token": token.encode(), "expires_at": expires })))
}

async fn list_tokens(State(s): S, headers: HeaderMap) -> ApiResult {
    authenticate(&s, &headers, Permission::Read)?;
    let now = unix_now();
    let sql = "SELECT id, envoy_name, created_by, created_at, expires_at, used_at, used_by FROM enroll_tokens ORDER BY created_at";
    let rows = json_rows(&s.db(), sql, [], |r| {
        let used: Option<i64> = r.get(5)?;
        let expires: i64 = r.get(4)?;
        Ok(json!({
            "id": r.get::<_, String>(0)?, "envoy_name": r.get::<_, Option<String>>(1)?,
            "created_by": r.get::<_, String>(2)?, "created_at": r.get::<_, i64>(3)?, "expires_at": expires,
            "state": if used.is_some() { "used" } else if expires <= now { "expired" } else { "valid" },
        }))
    })?;
    Ok(Json(json!({ "tokens": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiToken {
    name: String,
    role: String,
}

async fn create_api_token(State(s): S, headers: HeaderMap, Json(req): Json<CreateApiToken>) -> ApiResult {
    let caller = authenticate(&s, &headers, Permission::Write)?;
    if super::admin_auth::Role::parse(&req.role).is_none() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "role must be admin, viewer or compliance"));
    }
    wire::validate_name("token name", &req.name).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let token = crypto::random_token("vgot_").map_err(ApiError::internal)?;
    let id = crypto::uuid_v4().map_err(ApiError::internal)?;
    let mut conn = s.db();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(ApiError::internal)?;
    let taken: bool = tx
        .query_row(
            "SELECT COUNT(*) > 0 FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL",
            [&req.name],
            |r| r.get(0),
        )
        .map_err(ApiError::internal)?;
    if taken {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "an active API token is already named {:?}; revoke it first or pick another name",
                req.name
            ),
        ));
    }
    tx.execute(
        "INSERT INTO api_tokens (id, name, role, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, req.name, req.role, crypto::sha256(token.as_bytes()).as_slice(), unix_now()],
    )
    .map_err(ApiError::internal)?;
    audit::append_in(
        &tx,
        &[Event::new(&caller.actor, "api_token.created", &req.name).detail(json!({ "role": req.role }))],
    )
    .map_err(ApiError::internal)?;
    tx.commit().map_err(ApiError::internal)?;
    Ok(Json(json!({ "id": id, "token": token, "role": req.role })))
}

/// Names, roles and dates of API tokens (never the tokens or their hashes); admins only, as
/// the list says who can do what.
async fn list_api_tokens(State(s): S, headers: HeaderMap) -> ApiResult {
    authenticate(&s, &headers, Permission::Write)?;
    let sql = "SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY created_at, name";
    let rows = json_rows(&s.db(), sql, [], |r| {
        Ok(json!({
            "name": r.get::<_, String>(0)?, "role": r.get::<_, String>(1)?,
            "created_at": r.get::<_, i64>(2)?, "revoked_at": r.get::<_, Option<i64>>(3)?,
        }))
    })?;
    Ok(Json(json!({ "api_tokens": rows })))
}

/// Revokes the active token of that name: from the commit on, it authenticates nothing.
async fn revoke_api_token(State(s): S, headers: HeaderMap, Path(name): Path<String>) -> ApiResult {
    let caller = authenticate(&s, &headers, Permission::Write)?;
    let mut conn = s.db();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(ApiError::internal)?;
    let revoked = tx
        .execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, unix_now()],
        )
        .map_err(ApiError::internal)?;
    if revoked == 0 {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no active API token is named {name:?}")));
    }
    audit::append_in(&tx, &[Event::new(&caller.actor, "api_token.revoked", &name)])
        .map_err(ApiError::internal)?;
    tx.commit().map_err(ApiError::internal)?;
    Ok(Json(json!({ "name": name, "revoked": true })))
}

fn envoy_json(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    Ok(json!({
        "id": r.get::<_, String>(0)?, "name": r.get::<_, String>(1)?,
        "enrolled_at": r.get::<_, i64>(2)?, "last_seen": r.get::<_, Option<i64>>(3)?,
        "revoked_at": r.get::<_, Option<i64>>(4)?, "last_bundle_hash": r.get::<_, Option<String>>(5)?,
        "triggered": serde_json::from_str::<Value>(&r.get::<_, String>(6)?).unwrap_or(Value::Null),
        "force_apply": r.get::<_, bool>(7)?,
    }))
}

const ENVOY_COLUMNS: &str =
    "id, name, enrolled_at, last_seen, revoked_at, last_bundle_hash, triggered, force_apply";

async fn list_envoys(State(s): S, headers: HeaderMap) -> ApiResult {
    authenticate(&s, &headers, Permission::Read)?;
    let sql = format!("SELECT {ENVOY_COLUMNS} FROM envoys ORDER BY name, enrolled_at");
    let rows = json_rows(&s.db(), &sql, [], envoy_json)?;
    Ok(Json(json!({ "envoys": rows })))
}

fn find_envoy(conn: &rusqlite::Connection, name: &str) -> Result<Value, ApiError> {
    conn.query_row(
        &format!("SELECT {ENVOY_COLUMNS} FROM envoys WHERE name = ?1 OR id = ?1 ORDER BY revoked_at IS NOT NULL, enrolled_at DESC LIMIT 1"),
        [name],
        envoy_json,
    )
    .optional()
    .map_err(ApiError::internal)?
    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no envoy named {name:?}")))
}

async fn show_envoy(State(s): S, headers: HeaderMap, Path(name): Path<String>) -> ApiResult {
    authenticate(&s, &headers, Permission::Read)?;
    let envoy = find_envoy(&s.db(), &name)?;
    let bundle = s.bundle_for(envoy["name"].as_str().unwrap_or_default()).ok();
    Ok(Json(json!({
        "envoy": envoy,
        "bundle_hash": bundle.as_ref().map(|b| b.bundle_hash.clone()),
        "resources": bundle.as_ref().map(|b| b.resource_count),
        "entitled_keys": bundle.as_ref().map(|b| b.entitled.iter().cloned().collect::<Vec<_>>()),
    })))
}

async fn revoke_envoy(State(s): S, headers: HeaderMap, Path(name): Path<String>) -> ApiResult {
    let caller = authenticate(&s, &headers, Permission::Write)?;
    let mut conn = s.db();
    let envoy = find_envoy(&conn, &name)?;
    let id = envoy["id"].as_str().unwrap_or_default().to_string();
    if !envoy["revoked_at"].is_null() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("envoy {name:?} is already revoked")));
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(ApiError::internal)?;
    tx.execute("UPDATE envoys SET revoked_at = ?2 WHERE id = ?1", params![id, unix_now()])
        .map_err(ApiError::internal)?;
    audit::append_in(
        &tx,
        &[Event::new(&caller.actor, "envoy.revoked", &id).detail(json!({ "name": envoy["name"] }))],
    )
    .map_err(ApiError::internal)?;
    tx.commit().map_err(ApiError::internal)?;
    drop(conn);
    if let Some(mut info) = s.envoy(&id) {
        info.revoked = true;
        s.remember_envoy(info);
    }
    Ok(Json(json!({ "revoked": id, "name": envoy["name"] })))
}

async fn publish(State(s): S, headers: HeaderMap) -> ApiResult {
    let caller = authenticate(&s, &headers, Permission::Write)?;
    let tree = crate::config::load_tree(&s.config_dir).map_err(config_errors)?;
    let patterns = tree.validate_all(s.provider.as_ref()).map_err(config_errors)?;
    let mut conn = s.db();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(ApiError::internal)?;
    let hash = tree.content_hash();
    let detail = json!({ "content_hash": hash, "dir": s.config_dir.display().to_string() });
    audit::append_in(&tx, &[Event::new(&caller.actor, "config.published", &hash).detail(detail)])
        .map_err(ApiError::internal)?;
    let config_epoch = s.next_config_epoch(&tx).map_err(ApiError::internal)?;
    let secrets_epoch = s.next_secrets_epoch(&tx).map_err(ApiError::internal)?;
    // The new config serves only once its audit row is committed; a failed commit keeps the old.
    tx.commit().map_err(ApiError::internal)?;
    if let Err(e) = super::last_good::save(&s.paths.base, &tree) {
        tracing::warn!(error = %e, "could not record the published config as the last good one");
    }
    s.install(tree, config_epoch);
    s.secrets_epoch_committed(secrets_epoch);
    tracing::info!(config_epoch, content_hash = %hash, "config published");
    let patterns: Vec<Value> =
        patterns.into_iter().map(|(p, n)| json!({ "pattern": p, "resources": n })).collect();
    Ok(Json(
        json!({ "config_epoch": config_epoch, "secrets_epoch": secrets_epoch, "content_hash": hash, "envoys": patterns }),
    ))
}

fn config_errors(errs: Vec<crate::config::ConfigError>) -> ApiError {
    let list: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("config rejected; the previous config keeps serving:\n{}", list.join("\n")),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotated {
    key: String,
}

async fn secret_rotated(State(s): S, headers: HeaderMap, Json(req): Json<Rotated>) -> ApiResult {
    let caller = authenticate(&s, &headers, Permission::Write)?;
    crate::placeholder::validate_key(&req.key)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    if !s.provider.contains(&req.key).map_err(ApiError::internal)? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("the vault holds no secret {:?}; store it first (`vigocli secrets set`)", req.key),
        ));
    }
    let affected = super::rotation::rotate(&s, &caller.actor, &req.key).map_err(ApiError::internal)?;
    Ok(Json(json!({ "key": req.key, "affected_envoys": affected, "secrets_epoch": s.secrets_epoch() })))
}

#[derive(Deserialize)]
struct RunsQuery {
    envoy: Option<String>,
    limit: Option<u32>,
}

async fn list_runs(State(s): S, headers: HeaderMap, Query(q): Query<RunsQuery>) -> ApiResult {
    authenticate(&s, &headers, Permission::Read)?;
    let sql = "SELECT id, envoy_name, received_at, status, bundle_hash FROM runs
               WHERE ?1 IS NULL OR envoy_name = ?1 ORDER BY received_at DESC, rowid DESC LIMIT ?2";
    let rows = json_rows(&s.db(), sql, params![q.envoy, q.limit.unwrap_or(50)], |r| {
        Ok(json!({
            "id": r.get::<_, String>(0)?, "envoy": r.get::<_, String>(1)?, "received_at": r.get::<_, i64>(2)?,
            "status": r.get::<_, String>(3)?, "bundle_hash": r.get::<_, String>(4)?,
        }))
    })?;
    Ok(Json(json!({ "runs": rows })))
}

async fn show_run(State(s): S, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    authenticate(&s, &headers, Permission::Read)?;
    let row: Option<(String, String, i64, String)> = s
        .db()
        .query_row("SELECT envoy_name, report, received_at, id FROM runs WHERE id = ?1", [&id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()
        .map_err(ApiError::internal)?;
    let (envoy, report, received, id) =
        row.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such run"))?;
    let report: Value = serde_json::from_str(&report).map_err(ApiError::internal)?;
    Ok(Json(json!({ "id": id, "envoy": envoy, "received_at": received, "report": report })))
}

#[derive(Deserialize)]
struct AuditQuery {
    n: Option<u32>,
}

async fn audit_tail(State(s): S, headers: HeaderMap, Query(q): Query<AuditQuery>) -> ApiResult {
    authenticate(&s, &headers, Permission::AuditRead)?;
    let rows = audit::tail(&s.db(), q.n.unwrap_or(50)).map_err(ApiError::internal)?;
    Ok(Json(json!({ "rows": rows })))
}
