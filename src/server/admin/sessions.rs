//! The caller's own identity, sessions and API tokens, and (for admins) everyone's sessions.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use rusqlite::TransactionBehavior;
use serde_json::{json, Value};

use super::auth::Via;
use super::errors::{quoted, ApiError, ApiResult, Body, PathParam};
use super::login::session_handle;
use super::owned_tokens::{make_token, revoke_own_token, NewToken};
use super::Caller;
use crate::audit::{self, Event};
use crate::auth::Permission;
use crate::server::state::Server;
use crate::util::time::unix_now;

type S = State<Arc<Server>>;

pub async fn whoami(Extension(caller): Extension<Caller>) -> ApiResult {
    let (via, token) = match &caller.via {
        Via::LocalAdmin => ("local-admin token", None),
        Via::Token { name, .. } => ("api token", Some(name.clone())),
        Via::Session { .. } => ("session", None),
    };
    let permissions: Vec<&str> =
        Permission::ALL.iter().filter(|p| caller.role.allows(**p)).map(|p| p.name()).collect();
    Ok(Json(json!({
        "actor": caller.actor, "username": caller.username, "role": caller.role.name(), "via": via, "token": token,
        "permissions": permissions, "csrf_token": caller.csrf_token(),
    })))
}

fn session_json(s: &crate::store::sessions::Session, current: Option<&[u8]>) -> Value {
    json!({
        "id": session_handle(&s.id_hash), "username": s.username, "provider": s.provider, "source": s.source,
        "created_at": s.created_at, "last_seen": s.last_seen, "expires_at": s.expires_at,
        "current": current.is_some_and(|c| c == s.id_hash.as_slice()),
    })
}

fn current_hash(caller: &Caller) -> Option<[u8; 32]> {
    match &caller.via {
        Via::Session { id } => Some(crate::auth::session::id_hash(id.expose())),
        _ => None,
    }
}

pub async fn mine(State(s): S, Extension(caller): Extension<Caller>) -> ApiResult {
    let Some(user) = &caller.username else { return Ok(Json(json!({ "sessions": [] }))) };
    let current = current_hash(&caller);
    let rows: Vec<Value> = crate::store::sessions::list(&s.db(), Some(user), unix_now())?
        .iter()
        .map(|x| session_json(x, current.as_ref().map(|h| h.as_slice())))
        .collect();
    Ok(Json(json!({ "sessions": rows })))
}

pub async fn all(State(s): S, Extension(caller): Extension<Caller>) -> ApiResult {
    let current = current_hash(&caller);
    let rows: Vec<Value> = crate::store::sessions::list(&s.db(), None, unix_now())?
        .iter()
        .map(|x| session_json(x, current.as_ref().map(|h| h.as_slice())))
        .collect();
    Ok(Json(json!({ "sessions": rows })))
}

/// Ends a session by its handle: one of the caller's own, or anyone's for an admin.
pub async fn revoke(
    State(s): S,
    Extension(caller): Extension<Caller>,
    PathParam(handle): PathParam,
) -> ApiResult {
    let username = end_session(&s, &caller, &handle)?;
    Ok(Json(json!({ "revoked": handle, "username": username })))
}

/// Ends the session of that handle (one of the caller's own, or anyone's with
/// `sessions.manage`) with its audit row; returns whose it was.
pub fn end_session(s: &Server, caller: &Caller, handle: &str) -> Result<String, ApiError> {
    let may_end_any = caller.role.allows(Permission::SessionsManage);
    let owner = if may_end_any { None } else { caller.username.clone().or(Some(String::new())) };
    let found = crate::store::sessions::list(&s.db(), owner.as_deref(), unix_now())?
        .into_iter()
        .find(|x| session_handle(&x.id_hash) == handle)
        .ok_or_else(|| ApiError::not_found(format!("no session {} of yours", quoted(handle))))?;
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    crate::store::sessions::delete(&tx, &found.id_hash)?;
    audit::append_in(
        &tx,
        &[Event::new(&caller.actor, "session.revoked", &found.username).detail(json!({ "session": handle }))],
    )?;
    tx.commit()?;
    Ok(found.username)
}

pub async fn create_token(
    State(s): S,
    Extension(caller): Extension<Caller>,
    Body(req): Body<NewToken>,
) -> ApiResult {
    make_token(&s, &caller, req).map(Json)
}

pub async fn my_tokens(State(s): S, Extension(caller): Extension<Caller>) -> ApiResult {
    let Some(user) = &caller.username else { return Ok(Json(json!({ "api_tokens": [] }))) };
    let rows: Vec<Value> = crate::store::api_tokens::list(&s.db(), Some(user))?
        .into_iter()
        .map(|t| json!({ "name": t.name, "role": t.role, "created_at": t.created_at, "revoked_at": t.revoked_at, "expires_at": t.expires_at }))
        .collect();
    Ok(Json(json!({ "api_tokens": rows })))
}

pub async fn revoke_my_token(
    State(s): S,
    Extension(caller): Extension<Caller>,
    PathParam(name): PathParam,
) -> ApiResult {
    revoke_own_token(&s, &caller, &name)?;
    Ok(Json(json!({ "name": name, "revoked": true })))
}
