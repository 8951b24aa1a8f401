//! Making and revoking API tokens, for every route that does (`/v1/auth/tokens`,
//! `/v1/api-tokens`, the console's `/api-tokens`), so the rules live in one place:
//!
//! - A token made by a person belongs to that person: a session's user, or the owner of the
//!   token used to make it. Only the local-admin principal (the boot token, root on the server
//!   host) makes tokens owned by no one, or tokens for another user.
//! - A token is no broader than what made it: its role is at most the caller's effective role
//!   (a token's role, capped by its owner's current role; a session's user's role), and it
//!   expires no later than the token that made it, and within `auth.api_token_max_lifetime`.
//!   Otherwise a leaked short-lived viewer token could mint a lasting admin one.
//! - Names are unique per owner, so a refusal never tells about other people's tokens.

use axum::http::StatusCode;
use rusqlite::TransactionBehavior;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Via;
use super::errors::{quoted, ApiError};
use super::Caller;
use crate::audit::{self, Event};
use crate::auth::Role;
use crate::server::state::Server;
use crate::util::time::unix_now;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Seconds until it expires (none: as long as the caller may make it last).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// The web user it belongs to: only the local-admin principal, which is no web user, names one.
    #[serde(default)]
    pub user: Option<String>,
    /// At most the caller's role (default: the caller's role).
    #[serde(default)]
    pub role: Option<String>,
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message)
}

fn parse_role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| ApiError::bad_request("role must be admin, viewer or compliance"))
}

/// The role of an enabled web user, or a 404 naming (quoted) the user.
fn owner_role(s: &Server, owner: &str) -> Result<Role, ApiError> {
    let user = crate::store::users::get(&s.db(), owner)?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(|| ApiError::not_found(format!("no enabled web user named {}", quoted(owner))))?;
    Role::parse(&user.role).ok_or_else(|| ApiError::internal("stored role"))
}

/// Who the new token belongs to, the broadest role it may have, and the latest it may expire
/// (None: it may last until revoked, for the local-admin principal only).
struct Limits {
    owner: String,
    role: Role,
    latest_expiry: Option<i64>,
    /// `auth.api_token_max_lifetime`: no token asked for a lifetime gets a longer one.
    max_life: i64,
}

fn limits(s: &Server, caller: &Caller, user: Option<String>, now: i64) -> Result<Limits, ApiError> {
    let max_life = s.auth.api_token_max_lifetime_secs().map_err(ApiError::internal)?;
    match (&caller.via, &caller.username, user) {
        (Via::LocalAdmin, _, Some(u)) => {
            let role = owner_role(s, &u)?;
            Ok(Limits { owner: u, role, latest_expiry: None, max_life })
        }
        (Via::LocalAdmin, _, None) => Err(ApiError::bad_request(
            "the local-admin principal is no web user: name the token's owner (--user)",
        )),
        (Via::Session { .. }, Some(me), u) if u.as_ref().is_none_or(|u| u == me) => {
            Ok(Limits { owner: me.clone(), role: caller.role, latest_expiry: Some(now + max_life), max_life })
        }
        (Via::Token { expires_at, .. }, Some(me), u) if u.as_ref().is_none_or(|u| u == me) => {
            let cap = now + max_life;
            let latest = expires_at.map_or(cap, |e| e.min(cap));
            Ok(Limits { owner: me.clone(), role: caller.role, latest_expiry: Some(latest), max_life })
        }
        (_, Some(_), Some(_)) => Err(forbidden("only the local-admin principal makes tokens for another user")),
        _ => Err(forbidden(
            "this token belongs to no web user, so it cannot make tokens; the local-admin principal makes tokens owned by no one",
        )),
    }
}

/// Makes an API token owned by a web user (see the module's rules), with its audit row; the
/// answer holds the token, which is never shown again.
pub fn make_token(s: &Server, caller: &Caller, req: NewToken) -> Result<Value, ApiError> {
    crate::wire::validate_name("token name", &req.name).map_err(ApiError::bad_request)?;
    let now = unix_now();
    let limits = limits(s, caller, req.user, now)?;
    let role = match &req.role {
        Some(r) => parse_role(r)?,
        None => limits.role,
    };
    if role.rank() > limits.role.rank() {
        return Err(forbidden(format!("a token made by this caller can be at most {}", limits.role.name())));
    }
    let expires_at = match req.expires_in_secs {
        Some(0) => return Err(ApiError::bad_request("expires_in must be at least 1s")),
        Some(secs) => {
            let latest = limits.latest_expiry.unwrap_or(i64::MAX).min(now + limits.max_life);
            match i64::try_from(secs).ok().and_then(|secs| now.checked_add(secs)) {
                Some(at) if at <= latest => Some(at),
                _ => return Err(too_long(caller)),
            }
        }
        None => limits.latest_expiry,
    };
    insert(s, caller, &req.name, role, Some(&limits.owner), expires_at)
}

fn too_long(caller: &Caller) -> ApiError {
    let why = match caller.via {
        Via::Token { expires_at: Some(_), .. } => {
            "a token expires no later than the token that makes it, and within auth.api_token_max_lifetime"
        }
        _ => "a token lasts at most auth.api_token_max_lifetime",
    };
    forbidden(why)
}

/// Makes a token owned by no one: the local-admin principal's alone. Anyone else making a
/// token on this route gets one of their own, under the rules of `make_token`.
pub fn make_ownerless_or_own(s: &Server, caller: &Caller, name: &str, role: &str) -> Result<Value, ApiError> {
    let role = parse_role(role)?;
    if !matches!(caller.via, Via::LocalAdmin) {
        let req = NewToken {
            name: name.to_string(),
            expires_in_secs: None,
            user: None,
            role: Some(role.name().into()),
        };
        return make_token(s, caller, req);
    }
    crate::wire::validate_name("token name", name).map_err(ApiError::bad_request)?;
    insert(s, caller, name, role, None, None)
}

fn insert(
    s: &Server,
    caller: &Caller,
    name: &str,
    role: Role,
    owner: Option<&str>,
    expires_at: Option<i64>,
) -> Result<Value, ApiError> {
    let token = crate::crypto::random_token("vgot_").map_err(ApiError::internal)?;
    let id = crate::crypto::uuid_v4().map_err(ApiError::internal)?;
    let hash = crate::crypto::sha256(token.as_bytes());
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Only the owner's own names are compared: the answer says nothing about anyone else's.
    if crate::store::api_tokens::active_name_taken(&tx, owner, name)? {
        let whose = owner.map_or("the local-admin principal".to_string(), |o| format!("web user {o}"));
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{whose} already has an active API token named {}; revoke it first or pick another name",
                quoted(name)
            ),
        ));
    }
    let row = crate::store::api_tokens::NewApiToken {
        id: &id,
        name,
        role: role.name(),
        hash: &hash,
        created_at: unix_now(),
        owner,
        expires_at,
    };
    crate::store::api_tokens::insert(&tx, &row)?;
    let detail = json!({ "owner": owner, "role": role.name(), "expires_at": expires_at });
    audit::append_in(&tx, &[Event::new(&caller.actor, "api_token.created", name).detail(detail)])?;
    tx.commit()?;
    Ok(
        json!({ "id": id, "name": name, "token": token, "owner": owner, "role": role.name(), "expires_at": expires_at }),
    )
}

/// Revokes one of the caller's own active API tokens, with its audit row.
pub fn revoke_own_token(s: &Server, caller: &Caller, name: &str) -> Result<(), ApiError> {
    let not_held = || ApiError::not_found(format!("you hold no active API token named {}", quoted(name)));
    let Some(me) = caller.username.as_deref() else { return Err(not_held()) };
    revoke(s, caller, Some(me), name)?.then_some(()).ok_or_else(not_held)
}

/// Revokes the active API token of that name, whoever holds it, with its audit row. `owner`
/// says whose (`local-admin` for the local-admin principal's); it is needed only when several
/// owners have an active token of that name.
pub fn revoke_any_token(
    s: &Server,
    caller: &Caller,
    name: &str,
    owner: Option<&str>,
) -> Result<(), ApiError> {
    let missing = || ApiError::not_found(format!("no active API token is named {}", quoted(name)));
    let owner: Option<String> = match owner {
        Some("local-admin") => None,
        Some(o) => Some(o.to_string()),
        None => {
            let mut owners = crate::store::api_tokens::active_owners(&s.db(), name)?;
            if owners.len() > 1 {
                let names: Vec<String> =
                    owners.iter().map(|o| o.clone().unwrap_or_else(|| "local-admin".into())).collect();
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "{} active API tokens are named {} (owners: {}); say whose with ?owner=NAME (`--owner`)",
                        owners.len(),
                        quoted(name),
                        names.join(", ")
                    ),
                ));
            }
            owners.pop().ok_or_else(missing)?
        }
    };
    revoke(s, caller, owner.as_deref(), name)?.then_some(()).ok_or_else(missing)
}

fn revoke(s: &Server, caller: &Caller, owner: Option<&str>, name: &str) -> Result<bool, ApiError> {
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !crate::store::api_tokens::revoke(&tx, owner, name, unix_now())? {
        return Ok(false);
    }
    let detail = json!({ "owner": owner });
    audit::append_in(&tx, &[Event::new(&caller.actor, "api_token.revoked", name).detail(detail)])?;
    tx.commit()?;
    Ok(true)
}
