//! The admin HTTPS listener: the JSON API used by vigocli, and the web console's pages
//! (`server::web`), which declare their routes beside the API's.
//!
//! Order of checks on every request: the bearer token or session first (401), a session's
//! Origin and CSRF token on a state change (403), then the route's one permission (403), and
//! only then is the body or query parsed; so nothing about a call is revealed, and no input is
//! parsed, for a caller who may not make it. API errors are JSON; console errors are pages.

pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod envoys;
mod errors;
mod history;
mod isowebauth;
pub(crate) mod login;
mod oidc_login;
pub(crate) mod owned_tokens;
mod runs;
pub(crate) mod sessions;
pub(crate) mod tasks;
mod tls;
pub(crate) mod tokens;
pub(crate) mod users;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

pub use auth::Caller;
pub use errors::ApiError;
pub use login::Peer;

use super::state::Server;
use crate::auth::Permission;

/// Largest request body read; no admin call needs more.
const MAX_BODY: usize = 1024 * 1024;

/// One route of the API: method, path and the one permission it needs.
#[derive(Clone, Debug)]
pub struct Route {
    /// Read by the test that walks every route.
    #[cfg_attr(not(test), allow(dead_code))]
    pub method: Method,
    pub path: &'static str,
    pub permission: Permission,
}

type S = Arc<Server>;

/// Every route with its handler, the API's and the console's. A route exists only with a
/// permission: this table is the one place routes are declared, and the tests walk it.
fn routes() -> Vec<(Route, MethodRouter<S>)> {
    let mut all = api_routes();
    all.extend(crate::server::web::routes());
    all
}

fn api_routes() -> Vec<(Route, MethodRouter<S>)> {
    use Permission as P;
    let r = |method: Method, path, permission| Route { method, path, permission };
    vec![
        (r(Method::GET, "/v1/health", P::HealthRead), get(config::health)),
        (r(Method::POST, "/v1/enroll-tokens", P::TokensCreate), post(tokens::create_enroll_token)),
        (r(Method::GET, "/v1/enroll-tokens", P::TokensRead), get(tokens::list_enroll_tokens)),
        (r(Method::POST, "/v1/api-tokens", P::ApiTokensManage), post(tokens::create_api_token)),
        (r(Method::GET, "/v1/api-tokens", P::ApiTokensManage), get(tokens::list_api_tokens)),
        (r(Method::POST, "/v1/api-tokens/{name}/revoke", P::ApiTokensManage), post(tokens::revoke_api_token)),
        (r(Method::GET, "/v1/envoys", P::EnvoysRead), get(envoys::list)),
        (r(Method::GET, "/v1/fleet/status", P::EnvoysRead), get(envoys::fleet_status)),
        (r(Method::GET, "/v1/envoys/{name}", P::EnvoysRead), get(envoys::show)),
        (r(Method::POST, "/v1/envoys/{name}/revoke", P::EnvoysRevoke), post(envoys::revoke)),
        (r(Method::POST, "/v1/config/publish", P::ConfigPublish), post(config::publish)),
        (r(Method::GET, "/v1/config/history", P::ConfigRead), get(history::history)),
        (r(Method::GET, "/v1/config/revisions/{rev}", P::ConfigRead), get(history::revision)),
        (r(Method::GET, "/v1/config/trace/{envoy}", P::ConfigRead), get(history::trace)),
        (r(Method::POST, "/v1/config/freeze", P::ConfigPublish), post(history::freeze)),
        (r(Method::POST, "/v1/config/unfreeze", P::ConfigPublish), post(history::unfreeze)),
        (r(Method::POST, "/v1/secrets/rotated", P::SecretsRotate), post(config::secret_rotated)),
        (r(Method::POST, "/v1/tasks", P::TasksRun), post(tasks::create)),
        (r(Method::GET, "/v1/tasks", P::RunsRead), get(tasks::list)),
        (r(Method::GET, "/v1/tasks/{id}", P::RunsRead), get(tasks::show)),
        (r(Method::GET, "/v1/runs", P::RunsRead), get(runs::list)),
        (r(Method::GET, "/v1/runs/{id}", P::RunsRead), get(runs::show)),
        (r(Method::GET, "/v1/audit", P::AuditRead), get(runs::audit_tail)),
        (r(Method::GET, "/v1/tls", P::TlsManage), get(tls::status)),
        (r(Method::POST, "/v1/tls/reload", P::TlsManage), post(tls::reload)),
        (r(Method::GET, "/v1/users", P::UsersManage), get(users::list)),
        (r(Method::POST, "/v1/users", P::UsersManage), post(users::create)),
        (r(Method::GET, "/v1/users/{name}", P::UsersManage), get(users::show)),
        (r(Method::POST, "/v1/users/{name}/role", P::UsersManage), post(users::set_role)),
        (r(Method::POST, "/v1/users/{name}/disable", P::UsersManage), post(users::disable)),
        (r(Method::POST, "/v1/users/{name}/enable", P::UsersManage), post(users::enable)),
        (r(Method::POST, "/v1/users/{name}/delete", P::UsersManage), post(users::delete)),
        (r(Method::GET, "/v1/auth/whoami", P::SelfRead), get(sessions::whoami)),
        (r(Method::GET, "/v1/auth/tokens", P::SelfRead), get(sessions::my_tokens)),
        (r(Method::POST, "/v1/auth/tokens", P::SelfManage), post(sessions::create_token)),
        (r(Method::POST, "/v1/auth/tokens/{name}/revoke", P::SelfManage), post(sessions::revoke_my_token)),
        (r(Method::GET, "/v1/sessions", P::SelfRead), get(sessions::mine)),
        (r(Method::GET, "/v1/sessions/all", P::SessionsManage), get(sessions::all)),
        (r(Method::POST, "/v1/sessions/{id}/revoke", P::SelfManage), post(sessions::revoke)),
        (r(Method::POST, "/auth/logout", P::SelfManage), post(login::logout)),
        (r(Method::GET, "/metrics", P::MetricsRead), get(crate::server::metrics::scrape)),
    ]
}

/// The routes alone, for tests.
#[cfg(test)]
pub fn route_table() -> Vec<Route> {
    routes().into_iter().map(|(r, _)| r).collect()
}

pub fn router(server: Arc<Server>) -> Router {
    let mut protected = Router::new();
    for (route, handler) in routes() {
        let permission = route.permission;
        protected = protected.route(
            route.path,
            handler.route_layer(axum::middleware::from_fn(move |req, next| {
                auth::require(permission, req, next)
            })),
        );
    }
    let protected = protected
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        // Outermost first: the token or session is checked before routing, limits or extractors.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(server.clone(), auth::authenticate));
    // The login routes and the login page are how one gets a session: they are the only ones
    // without a caller.
    let public = login::public_routes()
        .method_not_allowed_fallback(errors::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(server.clone(), login::browser_answers))
        .merge(crate::server::web::public_routes())
        .merge(crate::server::bootstrap::public_routes())
        .layer(DefaultBodyLimit::max(16 * 1024));
    public
        .merge(protected)
        // Outermost: a body that arrives too slowly fails, whatever route reads it ...
        .layer(axum::middleware::from_fn(crate::server::request_deadline::enforce))
        // ... and every answer, that one too, carries the security headers.
        .layer(axum::middleware::from_fn(crate::server::web::security_headers))
        .with_state(server)
}

#[cfg(test)]
mod flood_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod token_tests;
#[cfg(test)]
mod user_tests;
