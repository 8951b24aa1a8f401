//! Web users: create, list, show, change role, disable, enable, delete. Every change is
//! audited, and a change that takes something away (role, disable, delete) ends the user's
//! sessions in the same transaction; their API tokens follow the user's role at every request.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use rusqlite::TransactionBehavior;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{quoted, ApiError, ApiResult, Body, PathParam};
use super::Caller;
use crate::audit::{self, Event};
use crate::auth::{accounts, Role};
use crate::server::state::Server;
use crate::store::users::WebUser;
use crate::util::time::unix_now;

type S = State<Arc<Server>>;

fn user_json(u: &WebUser) -> Value {
    let fingerprint = u
        .ssh_key
        .as_deref()
        .and_then(|k| crate::auth::sshsig::parse_public_key(k).ok())
        .map(|k| k.fingerprint());
    json!({
        "username": u.username, "role": u.role, "display_name": u.display_name, "email": u.email,
        "ssh_key": u.ssh_key, "ssh_key_fingerprint": fingerprint, "state": if u.disabled_at.is_some() { "disabled" } else { "enabled" },
        "disabled_at": u.disabled_at, "created_at": u.created_at, "created_by": u.created_by,
        "updated_at": u.updated_at,
    })
}

fn role_of(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| ApiError::bad_request("role must be admin, viewer or compliance"))
}

/// An admin must be a person's account on this host (read from the passwd file itself).
fn check_admin_account(s: &Server, username: &str) -> Result<(), ApiError> {
    // A regular file only, of bounded size: a FIFO there would hang the request.
    let passwd = crate::util::fsutil::read_regular_text(std::path::Path::new(&s.auth.passwd_file), 64 << 20)
        .map_err(|e| ApiError::internal(format!("{}: {e}", s.auth.passwd_file)))?;
    accounts::human_account(&passwd, username)
        .map(drop)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))
}

fn text_field(what: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.chars().count() > max {
        return Err(ApiError::bad_request(format!("{what} is longer than {max} characters")));
    }
    crate::util::text::check_visible(what, v).map_err(ApiError::bad_request)
}

pub async fn list(State(s): S) -> ApiResult {
    let users: Vec<Value> = crate::store::users::list(&s.db())?.iter().map(user_json).collect();
    Ok(Json(json!({ "users": users })))
}

fn find(s: &Server, username: &str) -> Result<WebUser, ApiError> {
    crate::store::users::get(&s.db(), username)?
        .ok_or_else(|| ApiError::not_found(format!("no web user named {}", quoted(username))))
}

pub async fn show(State(s): S, PathParam(name): PathParam) -> ApiResult {
    let user = find(&s, &name)?;
    let now = unix_now();
    let sessions = crate::store::sessions::list(&s.db(), Some(&name), now)?.len();
    let tokens: Vec<Value> = crate::store::api_tokens::list(&s.db(), Some(&name))?
        .into_iter()
        .filter(|t| t.revoked_at.is_none())
        .map(|t| json!({ "name": t.name, "role": t.role, "expires_at": t.expires_at }))
        .collect();
    let mut v = user_json(&user);
    v["sessions"] = json!(sessions);
    v["api_tokens"] = json!(tokens);
    v["password_set"] = json!(s.provider.contains(&accounts::password_key(&name)).unwrap_or(false));
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    #[serde(default = "viewer")]
    pub role: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub ssh_key: Option<String>,
}

fn viewer() -> String {
    "viewer".into()
}

pub async fn create(
    State(s): S,
    Extension(caller): Extension<Caller>,
    Body(req): Body<NewUser>,
) -> ApiResult {
    create_user(&s, &caller, req).await.map(|u| Json(user_json(&u)))
}

/// Creates a web user with its audit row (an admin must be a person's account on this host).
pub async fn create_user(s: &Server, caller: &Caller, req: NewUser) -> Result<WebUser, ApiError> {
    accounts::check_username(&req.username).map_err(ApiError::bad_request)?;
    let role = role_of(&req.role)?;
    text_field("display name", &req.display_name, 128)?;
    text_field("email", &req.email, 254)?;
    if !req.email.is_empty() && !req.email.contains('@') {
        return Err(ApiError::bad_request("email must look like name@domain"));
    }
    if let Some(key) = &req.ssh_key {
        crate::auth::sshsig::parse_public_key(key).map_err(|e| {
            ApiError::bad_request(format!("ssh key: {e}; give one line of an OpenSSH .pub file"))
        })?;
    }
    if role == Role::Admin {
        check_admin_account(s, &req.username)?;
    }
    if crate::store::users::get(&s.db(), &req.username)?.is_some() {
        return Err(taken(&req.username));
    }
    refuse_leftover_password(s, &req.username).await?;
    let now = unix_now();
    let user = WebUser {
        username: req.username.clone(),
        role: role.name().into(),
        display_name: req.display_name,
        email: req.email,
        ssh_key: req.ssh_key.map(|k| k.trim().to_string()),
        disabled_at: None,
        created_at: now,
        created_by: caller.actor.clone(),
        updated_at: now,
    };
    insert_user(s, caller, &user)?;
    // A network secrets backend fetches the new user's password now rather than at login.
    let (provider, key) = (s.provider.clone(), accounts::password_key(&user.username));
    let fetched = tokio::task::spawn_blocking(move || provider.prepare(&[key].into())).await;
    if let Ok(Err(e)) = fetched {
        tracing::warn!(username = %user.username, error = %e, "could not fetch the new user's password yet");
    }
    Ok(user)
}

fn taken(username: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, format!("a web user is already named {}", quoted(username)))
}

/// A password still in the vault for a name no user holds was left by an earlier user of that
/// name (deleted through the API or the console, which cannot remove it: the vault is written
/// by the CLI under its unlock gate, or lives in isopass). A new user of the name would open
/// with it, so creation waits until it is gone. A backend that cannot answer refuses too.
async fn refuse_leftover_password(s: &Server, username: &str) -> Result<(), ApiError> {
    let (provider, key) = (s.provider.clone(), accounts::password_key(username));
    let k = key.clone();
    let found = tokio::task::spawn_blocking(move || {
        provider.prepare(&[k.clone()].into())?;
        provider.contains(&k)
    })
    .await
    .map_err(ApiError::internal)?;
    match found {
        Ok(false) => Ok(()),
        Ok(true) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the vault still holds a password for {username} (an earlier user of that name left it): remove it with `vigocli secrets delete {key}`, then create the user and set a new password"
            ),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("cannot check the secrets backend for a leftover password ({e}); try again"),
        )),
    }
}

fn insert_user(s: &Server, caller: &Caller, user: &WebUser) -> Result<(), ApiError> {
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !crate::store::users::insert(&tx, user)? {
        return Err(taken(&user.username));
    }
    let detail = json!({ "role": user.role, "ssh_key": user.ssh_key.is_some() });
    audit::append_in(&tx, &[Event::new(&caller.actor, "user.created", &user.username).detail(detail)])?;
    tx.commit()?;
    Ok(())
}

/// One audited change to a user that ends their sessions in the same transaction.
fn change(
    s: &Server,
    caller: &Caller,
    username: &str,
    action: &str,
    detail: Value,
    apply: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<bool>,
) -> ApiResult {
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !apply(&tx)? {
        return Err(ApiError::not_found(format!("no web user named {}", quoted(username))));
    }
    let ended = crate::store::sessions::delete_for_user(&tx, username)?;
    let mut detail = detail;
    detail["sessions_ended"] = json!(ended);
    audit::append_in(&tx, &[Event::new(&caller.actor, action, username).detail(detail.clone())])?;
    tx.commit()?;
    Ok(Json(json!({ "username": username, "done": action, "sessions_ended": ended })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    role: String,
}

pub async fn set_role(
    State(s): S,
    Extension(caller): Extension<Caller>,
    PathParam(name): PathParam,
    Body(req): Body<SetRole>,
) -> ApiResult {
    change_role(&s, &caller, &name, &req.role)
}

/// Changes a user's role (to admin only for a person's account on this host); their sessions end.
pub fn change_role(s: &Server, caller: &Caller, name: &str, role: &str) -> ApiResult {
    let role = role_of(role)?;
    let before = find(s, name)?;
    if role == Role::Admin {
        check_admin_account(s, name)?;
    }
    // Tokens above the new role are revoked with the change: a token never outlives a demotion
    // (and does not come back with a later promotion).
    let above: Vec<&str> =
        Role::ALL_BY_RANK.iter().filter(|r| r.rank() > role.rank()).map(|r| r.name()).collect();
    let detail = json!({ "from": before.role, "to": role.name() });
    change(s, caller, name, "user.role_changed", detail, |c| {
        let now = unix_now();
        if !crate::store::users::set_role(c, name, role.name(), now)? {
            return Ok(false);
        }
        crate::store::api_tokens::revoke_owned_with_roles(c, name, &above, now)?;
        Ok(true)
    })
}

pub async fn disable(
    State(s): S,
    Extension(caller): Extension<Caller>,
    PathParam(name): PathParam,
) -> ApiResult {
    set_enabled(&s, &caller, &name, false)
}

pub async fn enable(
    State(s): S,
    Extension(caller): Extension<Caller>,
    PathParam(name): PathParam,
) -> ApiResult {
    set_enabled(&s, &caller, &name, true)
}

/// Enables or disables a user; either way their sessions end.
pub fn set_enabled(s: &Server, caller: &Caller, name: &str, enabled: bool) -> ApiResult {
    let now = unix_now();
    let (action, disabled_at) = if enabled { ("user.enabled", None) } else { ("user.disabled", Some(now)) };
    change(s, caller, name, action, json!({}), |c| {
        crate::store::users::set_disabled(c, name, disabled_at, now)
    })
}

/// Deletes the user, ends their sessions and revokes their API tokens. Their password stays in
/// the vault until removed there (`vigocli webusers delete` does both); until then no new user
/// of that name can be created (`refuse_leftover_password`).
pub async fn delete(
    State(s): S,
    Extension(caller): Extension<Caller>,
    PathParam(name): PathParam,
) -> ApiResult {
    delete_user(&s, &caller, &name)
}

pub fn delete_user(s: &Server, caller: &Caller, name: &str) -> ApiResult {
    let now = unix_now();
    change(s, caller, name, "user.deleted", json!({}), move |c| {
        crate::store::api_tokens::revoke_owned_by(c, name, now)?;
        crate::store::users::delete(c, name)
    })
}
