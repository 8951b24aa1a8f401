//! `/api-tokens`: the caller's own API tokens (for scripts; never above their role) with a form
//! to make one, shown once, and to revoke one; admins also see every token.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use serde::Deserialize;

use super::envoys::urlencode;
use super::page::{self, done, Ctx, Layout, PageError, PageResult, F, P, Q};
use super::tokens::CreatedPage;
use crate::auth::{Permission, Role};
use crate::server::admin::owned_tokens::{make_token, revoke_any_token, revoke_own_token, NewToken};
use crate::server::state::Server;
use crate::store::api_tokens::ApiTokenRow;

/// Lifetimes the form offers (seconds); those past `auth.api_token_max_lifetime` are left out.
/// A token made at the console always expires (see `owned_tokens`).
const LIFETIMES: &[(u64, &str)] =
    &[(30 * 86_400, "30 days"), (90 * 86_400, "90 days"), (365 * 86_400, "1 year")];

fn lifetimes(s: &Server) -> Vec<(u64, &'static str)> {
    let max = s.auth.api_token_max_lifetime_secs().unwrap_or(0);
    LIFETIMES.iter().copied().filter(|(t, _)| *t as i64 <= max).collect()
}

pub struct TokenView {
    name: String,
    role: String,
    owner: String,
    created: String,
    expires: String,
    state: &'static str,
    revoke_action: Option<String>,
}

/// `whose`: the revoke action names the owner (the list of everyone's tokens, where names
/// repeat across owners); the caller's own list needs no owner.
fn view(t: ApiTokenRow, now: i64, whose: bool) -> TokenView {
    let state = if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    let owner_of = t.owner.clone().unwrap_or_else(|| "local-admin".into());
    TokenView {
        owner: t.owner.unwrap_or_else(|| "local-admin".into()),
        revoke_action: (state == "active").then(|| {
            let path = format!("/api-tokens/{}/revoke", urlencode(&t.name));
            if whose {
                format!("{path}?owner={}", urlencode(&owner_of))
            } else {
                path
            }
        }),
        created: page::when(Some(t.created_at)),
        expires: t.expires_at.map_or("never".into(), |e| page::when(Some(e))),
        name: t.name,
        role: t.role,
        state,
    }
}

#[derive(Template)]
#[template(path = "api_tokens.html")]
struct ListPage {
    layout: Layout,
    mine: Vec<TokenView>,
    all: Option<Vec<TokenView>>,
    can_create: bool,
    roles: Vec<&'static str>,
    lifetimes: Vec<(u64, &'static str)>,
}

pub async fn list(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    let now = crate::util::time::unix_now();
    let manage_all = ctx.can(Permission::ApiTokensManage);
    let (mine, all) = {
        let conn = s.db();
        let mine = match &ctx.caller.username {
            Some(u) => crate::store::api_tokens::list(&conn, Some(u))?,
            None => Vec::new(),
        };
        let all = if manage_all { Some(crate::store::api_tokens::list(&conn, None)?) } else { None };
        (mine, all)
    };
    let roles =
        Role::ALL_BY_RANK.iter().filter(|r| r.rank() <= ctx.caller.role.rank()).map(|r| r.name()).collect();
    let listing = ListPage {
        layout: ctx.layout("/api-tokens", "API tokens"),
        mine: mine.into_iter().rev().map(|t| view(t, now, false)).collect(),
        all: all.map(|a| a.into_iter().rev().map(|t| view(t, now, true)).collect()),
        can_create: ctx.caller.username.is_some(),
        roles,
        lifetimes: lifetimes(&s),
    };
    page::render(&listing)
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    role: String,
    expires_in_secs: u64,
}

pub async fn create(State(s): State<Arc<Server>>, ctx: Ctx, F(form): F<CreateForm>) -> PageResult {
    if !lifetimes(&s).iter().any(|(t, _)| *t == form.expires_in_secs) {
        return Err(PageError::bad_request("choose one of the offered lifetimes"));
    }
    let req = NewToken {
        name: form.name.trim().to_string(),
        expires_in_secs: Some(form.expires_in_secs),
        user: None,
        role: Some(form.role),
    };
    let made = make_token(&s, &ctx.caller, req)?;
    let text = |k: &str| made[k].as_str().unwrap_or_default().to_string();
    let created = CreatedPage {
        layout: ctx.layout("/api-tokens", "New API token"),
        what: "API token",
        token: text("token"),
        facts: vec![
            ("Name", text("name")),
            ("Owner", text("owner")),
            ("Role", text("role")),
            ("Expires", made["expires_at"].as_i64().map_or("never".into(), |e| page::when(Some(e)))),
        ],
        back: "/api-tokens",
        usage: "vigocli auth set-token   # then paste it; or send it as Authorization: Bearer …".into(),
    };
    page::render(&created)
}

#[derive(Deserialize, Default)]
pub struct RevokeQuery {
    #[serde(default)]
    owner: Option<String>,
}

/// Revokes one of the caller's tokens; an admin may revoke anyone's, named by its owner (names
/// repeat across owners).
pub async fn revoke(State(s): State<Arc<Server>>, ctx: Ctx, P(name): P, Q(q): Q<RevokeQuery>) -> PageResult {
    let mine = q.owner.is_none() || q.owner == ctx.caller.username;
    if mine {
        revoke_own_token(&s, &ctx.caller, &name)?;
    } else if ctx.can(Permission::ApiTokensManage) {
        revoke_any_token(&s, &ctx.caller, &name, q.owner.as_deref())?;
    } else {
        return Err(PageError::new(
            axum::http::StatusCode::FORBIDDEN,
            "only an admin revokes another user's token",
        ));
    }
    done("/api-tokens", "token-revoked")
}
