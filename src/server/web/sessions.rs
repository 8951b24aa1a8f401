//! `/sessions`: the caller's own console sessions (where from, since when, until when) with a
//! button to end each; admins also see and end everyone's.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;

use super::page::{self, done, Ctx, Layout, PageResult, P};
use crate::auth::Permission;
use crate::server::admin::auth::Via;
use crate::server::admin::login::session_handle;
use crate::server::admin::sessions::end_session;
use crate::server::state::Server;
use crate::store::sessions::Session;

pub struct SessionView {
    handle: String,
    username: String,
    provider: String,
    source: String,
    created: String,
    last_seen: String,
    expires: String,
    current: bool,
    end_action: String,
}

fn view(x: &Session, current: Option<&[u8; 32]>) -> SessionView {
    let handle = session_handle(&x.id_hash);
    SessionView {
        end_action: format!("/sessions/{handle}/revoke"),
        handle,
        username: x.username.clone(),
        provider: x.provider.clone(),
        source: x.source.clone(),
        created: page::when(Some(x.created_at)),
        last_seen: page::when(Some(x.last_seen)),
        expires: page::when(Some(x.expires_at)),
        current: current.is_some_and(|c| c.as_slice() == x.id_hash.as_slice()),
    }
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct ListPage {
    layout: Layout,
    mine: Vec<SessionView>,
    all: Option<Vec<SessionView>>,
}

pub async fn list(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    let now = crate::util::time::unix_now();
    let current = match &ctx.caller.via {
        Via::Session { id } => Some(crate::auth::session::id_hash(id.expose())),
        _ => None,
    };
    let (mine, all) = {
        let conn = s.db();
        let mine = match &ctx.caller.username {
            Some(u) => crate::store::sessions::list(&conn, Some(u), now)?,
            None => Vec::new(),
        };
        let all = if ctx.can(Permission::SessionsManage) {
            Some(crate::store::sessions::list(&conn, None, now)?)
        } else {
            None
        };
        (mine, all)
    };
    let listing = ListPage {
        layout: ctx.layout("/sessions", "Sessions"),
        mine: mine.iter().map(|x| view(x, current.as_ref())).collect(),
        all: all.map(|a| a.iter().map(|x| view(x, current.as_ref())).collect()),
    };
    page::render(&listing)
}

/// Ends a session (the caller's own, or anyone's for an admin). Ending the current one logs
/// the caller out: the next page asks for a login.
pub async fn revoke(State(s): State<Arc<Server>>, ctx: Ctx, P(handle): P) -> PageResult {
    end_session(&s, &ctx.caller, &handle)?;
    done("/sessions", "session-ended")
}
