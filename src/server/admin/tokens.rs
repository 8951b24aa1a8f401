//! Enrollment tokens and API tokens.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use rusqlite::TransactionBehavior;
use serde::Deserialize;
use serde_json::json;

use super::errors::{ApiError, ApiResult, Body, PathParam, Query};
use super::owned_tokens::{make_ownerless_or_own, revoke_any_token};
use super::Caller;
use crate::audit::{self, Event};
use crate::config::glob::Glob;
use crate::crypto;
use crate::server::state::Server;
use crate::store::{self, enroll_tokens::Binding};
use crate::util::time::unix_now;
use crate::wire::{self, EnrollToken};

type S = State<Arc<Server>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollToken {
    pub ttl_secs: u64,
    #[serde(default)]
    pub envoy_name: Option<String>,
    #[serde(default)]
    pub envoy_pattern: Option<String>,
    #[serde(default)]
    pub any_name: bool,
}

impl CreateEnrollToken {
    /// Exactly one binding: a name, a pattern, or an explicit "any name".
    fn binding(self) -> Result<Binding, ApiError> {
        match (self.envoy_name, self.envoy_pattern, self.any_name) {
            (Some(n), None, false) => {
                wire::validate_envoy_name(&n).map_err(ApiError::bad_request)?;
                Ok(Binding::Name(n))
            }
            (None, Some(p), false) => {
                Glob::new(&p).map_err(|e| ApiError::bad_request(format!("envoy pattern: {e}")))?;
                if p.len() > 253 {
                    return Err(ApiError::bad_request("envoy pattern: at most 253 characters"));
                }
                Ok(Binding::Pattern(p))
            }
            (None, None, true) => Ok(Binding::AnyName),
            _ => Err(ApiError::bad_request(
                "a token needs exactly one of an envoy name, an envoy pattern, or any_name",
            )),
        }
    }
}

pub async fn create_enroll_token(
    State(s): S,
    Extension(caller): Extension<Caller>,
    Body(req): Body<CreateEnrollToken>,
) -> ApiResult {
    mint_enroll_token(&s, &caller, req).map(Json)
}

/// Mints an enrollment token (only its hash is kept) with its audit row; the answer holds the
/// token, which is never shown again. The API and the console both mint through this.
pub fn mint_enroll_token(
    s: &Server,
    caller: &Caller,
    req: CreateEnrollToken,
) -> Result<serde_json::Value, ApiError> {
    if req.ttl_secs == 0 || req.ttl_secs > 30 * 86_400 {
        return Err(ApiError::bad_request("ttl must be between 1s and 30d"));
    }
    let ttl = req.ttl_secs as i64;
    let binding = req.binding()?;
    let token = EnrollToken::mint(s.pki().ca_pin).map_err(ApiError::internal)?;
    let id = crypto::uuid_v4().map_err(ApiError::internal)?;
    let now = unix_now();
    let hash = EnrollToken::secret_hash(&token.secret);
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row = store::enroll_tokens::NewToken {
        id: &id,
        hash: &hash,
        binding: &binding,
        created_by: &caller.actor,
        created_at: now,
        expires_at: now + ttl,
    };
    store::enroll_tokens::insert(&tx, &row)?;
    let detail = json!({ "expires_at": now + ttl, "binding": binding.describe() });
    audit::append_in(&tx, &[Event::new(&caller.actor, "token.created", &id).detail(detail)])?;
    tx.commit()?;
    Ok(json!({ "id": id, "token": token.encode(), "expires_at": now + ttl, "binding": binding.describe() }))
}

pub async fn list_enroll_tokens(State(s): S) -> ApiResult {
    let now = unix_now();
    let rows: Vec<_> = store::enroll_tokens::list(&s.db())?
        .into_iter()
        .map(|t| {
            let (name, pattern) = match &t.binding {
                Binding::Name(n) => (Some(n.clone()), None),
                Binding::Pattern(p) => (None, Some(p.clone())),
                Binding::AnyName => (None, None),
            };
            json!({
                "id": t.id, "envoy_name": name, "envoy_pattern": pattern,
                "any_name": t.binding == Binding::AnyName, "binding": t.binding.describe(),
                "created_by": t.created_by, "created_at": t.created_at, "expires_at": t.expires_at,
                "used_at": t.used_at, "used_by": t.used_by, "state": t.state(now),
            })
        })
        .collect();
    Ok(Json(json!({ "tokens": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiToken {
    name: String,
    role: String,
}

/// Mints an API token: one owned by no one for the local-admin principal, one of the caller's
/// own for anyone else (see `owned_tokens`).
pub async fn create_api_token(
    State(s): S,
    Extension(caller): Extension<Caller>,
    Body(req): Body<CreateApiToken>,
) -> ApiResult {
    make_ownerless_or_own(&s, &caller, &req.name, &req.role).map(Json)
}

/// Names, roles and dates of API tokens (never the tokens or their hashes).
pub async fn list_api_tokens(State(s): S) -> ApiResult {
    let rows: Vec<_> = store::api_tokens::list(&s.db(), None)?
        .into_iter()
        .map(|t| {
            json!({ "name": t.name, "role": t.role, "created_at": t.created_at, "revoked_at": t.revoked_at,
                    "owner": t.owner, "expires_at": t.expires_at })
        })
        .collect();
    Ok(Json(json!({ "api_tokens": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeQuery {
    /// Whose token (`local-admin` for the local-admin principal's); needed only when several
    /// owners have an active token of that name.
    #[serde(default)]
    owner: Option<String>,
}

/// Revokes the active token of that name: from the commit on, it authenticates nothing.
pub async fn revoke_api_token(
    State(s): S,
    Extension(caller): Extension<Caller>,
    PathParam(name): PathParam,
    Query(q): Query<RevokeQuery>,
) -> ApiResult {
    revoke_any_token(&s, &caller, &name, q.owner.as_deref())?;
    Ok(Json(json!({ "name": name, "owner": q.owner, "revoked": true })))
}
