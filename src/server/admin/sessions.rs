//! The caller's own identity, sessions and API tokens, and (for admins) everyone's sessions.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use rusqlite::TransactionBehavior;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Via;
use super::errors::{quoted, ApiError, ApiResult, Body, PathParam};
use super::login::session_handle;
use super::Caller;
use crate::audit::{self, Event};
use crate::auth::{Permission, Role};
use crate::server::state::Server;
use crate::util::time::unix_now;

type S = State<Arc<Server>>;

pub async fn whoami(Extension(caller): Extension<Caller>) -> ApiResult {
    let (via, token) = match &caller.via {
        Via::LocalAdmin => ("local-admin token", None),
        Via::Token { name } => ("api token", Some(name.clone())),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Seconds until it expires (none: until revoked).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// The web user it belongs to: only the local-admin principal, which is no web user, names one.
    #[serde(default)]
    pub user: Option<String>,
    /// At most the owner's role (default: the owner's role, followed as it changes).
    #[serde(default)]
    pub role: Option<String>,
}

/// Longest a token may be made for: a year.
const MAX_TOKEN_LIFE: u64 = 366 * 86_400;

pub async fn create_token(
    State(s): S,
    Extension(caller): Extension<Caller>,
    Body(req): Body<NewToken>,
) -> ApiResult {
    make_token(&s, &caller, req).map(Json)
}

/// Makes an API token owned by a web user, never above that user's role, with its audit
/// row; the answer holds the token, which is never shown again.
pub fn make_token(s: &Server, caller: &Caller, req: NewToken) -> Result<Value, ApiError> {
    let owner = match (&caller.via, &caller.username, req.user) {
        (Via::LocalAdmin, _, Some(u)) => u,
        (Via::LocalAdmin, _, None) => {
            return Err(ApiError::bad_request(
                "the local-admin principal is no web user: name the token's owner (--user)",
            ))
        }
        (_, Some(me), None) => me.clone(),
        (_, Some(me), Some(u)) if *me == u => u,
        _ => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "only the local-admin principal makes tokens for another user",
            ))
        }
    };
    crate::wire::validate_name("token name", &req.name).map_err(ApiError::bad_request)?;
    let user = crate::store::users::get(&s.db(), &owner)?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(|| ApiError::not_found(format!("no enabled web user named {}", quoted(&owner))))?;
    let owner_role = Role::parse(&user.role).ok_or_else(|| ApiError::internal("stored role"))?;
    let role = match &req.role {
        Some(r) => {
            Role::parse(r).ok_or_else(|| ApiError::bad_request("role must be admin, viewer or compliance"))?
        }
        None => owner_role,
    };
    if role.rank() > owner_role.rank() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("a token of {owner} can be at most {}", owner_role.name()),
        ));
    }
    let now = unix_now();
    let expires_at = match req.expires_in_secs {
        Some(0) => return Err(ApiError::bad_request("expires_in must be at least 1s")),
        Some(secs) if secs > MAX_TOKEN_LIFE => {
            return Err(ApiError::bad_request("a token lasts at most a year"))
        }
        Some(secs) => Some(now + secs as i64),
        None => None,
    };
    let token = crate::crypto::random_token("vgot_").map_err(ApiError::internal)?;
    let id = crate::crypto::uuid_v4().map_err(ApiError::internal)?;
    let hash = crate::crypto::sha256(token.as_bytes());
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if crate::store::api_tokens::active_name_taken(&tx, &req.name)? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("an active API token is already named {:?}", req.name),
        ));
    }
    let row = crate::store::api_tokens::NewApiToken {
        id: &id,
        name: &req.name,
        role: role.name(),
        hash: &hash,
        created_at: now,
        owner: Some(&owner),
        expires_at,
    };
    crate::store::api_tokens::insert(&tx, &row)?;
    let detail = json!({ "owner": owner, "role": role.name(), "expires_at": expires_at });
    audit::append_in(&tx, &[Event::new(&caller.actor, "api_token.created", &req.name).detail(detail)])?;
    tx.commit()?;
    Ok(
        json!({ "name": req.name, "token": token, "owner": owner, "role": role.name(), "expires_at": expires_at }),
    )
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

/// Revokes one of the caller's own active API tokens, with its audit row.
pub fn revoke_own_token(s: &Server, caller: &Caller, name: &str) -> Result<(), ApiError> {
    let owner = crate::store::api_tokens::active_owner(&s.db(), name)?;
    let mine = matches!((&owner, &caller.username), (Some(Some(o)), Some(me)) if o == me);
    if !mine {
        return Err(ApiError::not_found(format!("you hold no active API token named {}", quoted(name))));
    }
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    crate::store::api_tokens::revoke(&tx, name, unix_now())?;
    audit::append_in(&tx, &[Event::new(&caller.actor, "api_token.revoked", name)])?;
    tx.commit()?;
    Ok(())
}
