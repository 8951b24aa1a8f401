//! `/enroll-tokens`: the enrollment tokens (bindings, dates, state; never the tokens), and a
//! form for those who may mint one. A new token is shown once, on the answer to the form.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use serde::Deserialize;

use super::page::{self, Ctx, Layout, PageError, PageResult, F};
use crate::auth::Permission;
use crate::server::admin::tokens::{mint_enroll_token, CreateEnrollToken};
use crate::server::state::Server;
use crate::util::time::unix_now;

/// The lifetimes offered by the form, in seconds, with their labels.
pub const TTLS: &[(u64, &str)] = &[(3600, "1 hour"), (86_400, "24 hours"), (7 * 86_400, "7 days")];

pub struct TokenRow {
    id: String,
    binding: String,
    created_by: String,
    created: String,
    expires: String,
    state: String,
    used_by: String,
}

#[derive(Template)]
#[template(path = "enroll_tokens.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<TokenRow>,
    can_create: bool,
    ttls: &'static [(u64, &'static str)],
}

pub async fn list(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    let now = unix_now();
    let rows = crate::store::enroll_tokens::list(&s.db())?
        .into_iter()
        .rev()
        .map(|t| TokenRow {
            binding: t.binding.describe(),
            created_by: t.created_by.clone(),
            created: page::when(Some(t.created_at)),
            expires: page::when(Some(t.expires_at)),
            state: t.state(now).to_string(),
            used_by: t.used_by.clone().unwrap_or_default(),
            id: t.id,
        })
        .collect();
    let listing = ListPage {
        layout: ctx.layout("/enroll-tokens", "Enrollment tokens"),
        rows,
        can_create: ctx.can(Permission::TokensCreate),
        ttls: TTLS,
    };
    page::render(&listing)
}

#[derive(Deserialize)]
pub struct CreateForm {
    ttl_secs: u64,
    /// `name`, `pattern` or `any`.
    binding: String,
    #[serde(default)]
    value: String,
}

/// The page that shows a new token (or API token) once.
#[derive(Template)]
#[template(path = "token_created.html")]
pub struct CreatedPage {
    pub layout: Layout,
    pub what: &'static str,
    pub token: String,
    pub facts: Vec<(&'static str, String)>,
    pub back: &'static str,
    pub usage: String,
}

pub async fn create(State(s): State<Arc<Server>>, ctx: Ctx, F(form): F<CreateForm>) -> PageResult {
    if !TTLS.iter().any(|(t, _)| *t == form.ttl_secs) {
        return Err(PageError::bad_request("choose one of the offered lifetimes"));
    }
    let value = form.value.trim().to_string();
    let req = match form.binding.as_str() {
        "name" => CreateEnrollToken {
            ttl_secs: form.ttl_secs,
            envoy_name: Some(value),
            envoy_pattern: None,
            any_name: false,
        },
        "pattern" => CreateEnrollToken {
            ttl_secs: form.ttl_secs,
            envoy_name: None,
            envoy_pattern: Some(value),
            any_name: false,
        },
        "any" => CreateEnrollToken {
            ttl_secs: form.ttl_secs,
            envoy_name: None,
            envoy_pattern: None,
            any_name: true,
        },
        _ => return Err(PageError::bad_request("choose what the token is bound to")),
    };
    let made = mint_enroll_token(&s, &ctx.caller, req)?;
    let text = |k: &str| made[k].as_str().unwrap_or_default().to_string();
    let admin =
        s.status.listeners().map(|(agent, _)| agent.to_string()).unwrap_or_else(|| "HOST:PORT".into());
    let created = CreatedPage {
        layout: ctx.layout("/enroll-tokens", "New enrollment token"),
        what: "enrollment token",
        token: text("token"),
        facts: vec![
            ("Bound to", text("binding")),
            ("Expires", page::when(made["expires_at"].as_i64())),
            ("Id", text("id")),
        ],
        back: "/enroll-tokens",
        usage: format!("vigo-agent enroll --server {admin} --token-file FILE   # the token in FILE, or on stdin with --token-file -"),
    };
    page::render(&created)
}
