//! `/users` (admins): the web users, a form to add one, and per user a role change, disable or
//! enable, and delete. Every change is audited and ends the user's sessions.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use serde::Deserialize;

use super::envoys::urlencode;
use super::page::{self, done, Ctx, Layout, PageResult, F, P};
use crate::auth::Role;
use crate::server::admin::users::{change_role, create_user, delete_user, set_enabled, NewUser};
use crate::server::state::Server;

pub struct UserView {
    username: String,
    display_name: String,
    email: String,
    role: String,
    enabled: bool,
    ssh_key: String,
    created: String,
    sessions: usize,
    base: String,
    other_roles: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct ListPage {
    layout: Layout,
    users: Vec<UserView>,
    roles: Vec<&'static str>,
}

pub async fn list(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    let now = crate::util::time::unix_now();
    let (users, sessions) = {
        let conn = s.db();
        (crate::store::users::list(&conn)?, crate::store::sessions::list(&conn, None, now)?)
    };
    let users = users
        .into_iter()
        .map(|u| UserView {
            sessions: sessions.iter().filter(|x| x.username == u.username).count(),
            base: format!("/users/{}", urlencode(&u.username)),
            other_roles: Role::ALL_BY_RANK.iter().map(|r| r.name()).filter(|r| *r != u.role).collect(),
            ssh_key: u
                .ssh_key
                .as_deref()
                .and_then(|k| crate::auth::sshsig::parse_public_key(k).ok())
                .map(|k| k.fingerprint())
                .unwrap_or_default(),
            enabled: u.disabled_at.is_none(),
            created: page::when(Some(u.created_at)),
            username: u.username,
            display_name: u.display_name,
            email: u.email,
            role: u.role,
        })
        .collect();
    let listing = ListPage {
        layout: ctx.layout("/users", "Web users"),
        users,
        roles: Role::ALL_BY_RANK.iter().rev().map(|r| r.name()).collect(),
    };
    page::render(&listing)
}

#[derive(Deserialize)]
pub struct CreateForm {
    username: String,
    role: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    ssh_key: String,
}

pub async fn create(State(s): State<Arc<Server>>, ctx: Ctx, F(form): F<CreateForm>) -> PageResult {
    let key = form.ssh_key.trim();
    let req = NewUser {
        username: form.username.trim().to_string(),
        role: form.role,
        display_name: form.display_name.trim().to_string(),
        email: form.email.trim().to_string(),
        ssh_key: (!key.is_empty()).then(|| key.to_string()),
    };
    create_user(&s, &ctx.caller, req).await?;
    done("/users", "user-created")
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn set_role(
    State(s): State<Arc<Server>>,
    ctx: Ctx,
    P(name): P,
    F(form): F<RoleForm>,
) -> PageResult {
    let _ = change_role(&s, &ctx.caller, &name, &form.role)?;
    done("/users", "user-changed")
}

pub async fn disable(State(s): State<Arc<Server>>, ctx: Ctx, P(name): P) -> PageResult {
    let _ = set_enabled(&s, &ctx.caller, &name, false)?;
    done("/users", "user-changed")
}

pub async fn enable(State(s): State<Arc<Server>>, ctx: Ctx, P(name): P) -> PageResult {
    let _ = set_enabled(&s, &ctx.caller, &name, true)?;
    done("/users", "user-changed")
}

pub async fn delete(State(s): State<Arc<Server>>, ctx: Ctx, P(name): P) -> PageResult {
    let _ = delete_user(&s, &ctx.caller, &name)?;
    done("/users", "user-deleted")
}
