//! The web console: server-rendered HTML on the admin listener, with no JavaScript at all.
//! Every page and action is a route of `routes()`, declared with its one permission beside the
//! API's (`admin::routes` chains them), so the same checks run first: the session (or token),
//! the Origin and CSRF token of a state change, then the permission. Templates are compiled
//! with the binary (askama, `templates/`); the one stylesheet is served from the binary.

mod api_tokens;
mod audit;
mod charts;
mod config;
mod dashboard;
mod envoys;
mod headers;
mod login;
mod page;
mod runs;
mod secrets;
mod security;
mod sessions;
mod tokens;
mod users;

use std::sync::Arc;

use axum::http::{header, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

pub use headers::{security_headers, SECURITY_HEADERS};
pub use login::{challenge_page, oidc_landing};
pub use page::refusal;

use super::admin::Route;
use super::state::Server;
use crate::auth::Permission;

type S = Arc<Server>;

/// Every console page and action with its one permission.
pub fn routes() -> Vec<(Route, MethodRouter<S>)> {
    use Permission as P;
    let r = |method: Method, path, permission| Route { method, path, permission };
    vec![
        (r(Method::GET, "/", P::HealthRead), get(dashboard::show)),
        (r(Method::GET, "/envoys", P::EnvoysRead), get(envoys::list)),
        (r(Method::GET, "/envoys/{name}", P::EnvoysRead), get(envoys::show)),
        (r(Method::POST, "/envoys/{name}/revoke", P::EnvoysRevoke), post(envoys::revoke)),
        (r(Method::GET, "/runs", P::RunsRead), get(runs::list)),
        (r(Method::GET, "/runs/{id}", P::RunsRead), get(runs::show)),
        (r(Method::GET, "/config", P::ConfigRead), get(config::show)),
        (r(Method::POST, "/config/publish", P::ConfigPublish), post(config::publish)),
        (r(Method::GET, "/secrets", P::SecretsList), get(secrets::list)),
        (r(Method::GET, "/enroll-tokens", P::TokensRead), get(tokens::list)),
        (r(Method::POST, "/enroll-tokens", P::TokensCreate), post(tokens::create)),
        (r(Method::GET, "/api-tokens", P::SelfRead), get(api_tokens::list)),
        (r(Method::POST, "/api-tokens", P::SelfManage), post(api_tokens::create)),
        (r(Method::POST, "/api-tokens/{name}/revoke", P::SelfManage), post(api_tokens::revoke)),
        (r(Method::GET, "/users", P::UsersManage), get(users::list)),
        (r(Method::POST, "/users", P::UsersManage), post(users::create)),
        (r(Method::POST, "/users/{name}/role", P::UsersManage), post(users::set_role)),
        (r(Method::POST, "/users/{name}/disable", P::UsersManage), post(users::disable)),
        (r(Method::POST, "/users/{name}/enable", P::UsersManage), post(users::enable)),
        (r(Method::POST, "/users/{name}/delete", P::UsersManage), post(users::delete)),
        (r(Method::GET, "/audit", P::AuditRead), get(audit::list)),
        (r(Method::GET, "/audit/verify", P::AuditRead), get(audit::verify)),
        (r(Method::GET, "/sessions", P::SelfRead), get(sessions::list)),
        (r(Method::POST, "/sessions/{id}/revoke", P::SelfManage), post(sessions::revoke)),
        (r(Method::GET, "/security", P::SecurityRead), get(security::show)),
    ]
}

/// The console paths anyone may fetch: the login page and the static assets it needs.
pub const PUBLIC_PATHS: &[&str] = &["/login", "/static/console.css", "/static/icon.svg"];

pub fn public_routes() -> Router<S> {
    Router::new()
        .route(PUBLIC_PATHS[0], get(login::page))
        .route(PUBLIC_PATHS[1], get(stylesheet))
        .route(PUBLIC_PATHS[2], get(icon))
}

/// Whether a path belongs to the console (HTML answers) rather than the JSON API, the login
/// endpoints and the Prometheus scrape (which a machine reads: 401, not a login page).
pub fn is_page(path: &str) -> bool {
    !path.starts_with("/v1/") && !path.starts_with("/auth/") && path != "/metrics"
}

const STYLESHEET: &str = include_str!("static/console.css");
const ICON: &str = include_str!("static/icon.svg");

/// The assets change only with the binary: a day of caching is safe.
const ASSET_CACHE: &str = "public, max-age=86400";

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, ASSET_CACHE)], STYLESHEET)
}

async fn icon() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, ASSET_CACHE)], ICON)
}

#[cfg(test)]
mod tests;
