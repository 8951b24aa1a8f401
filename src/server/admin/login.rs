//! Logging in to the console: the routes anyone may call (they are how one gets a session),
//! and what every provider does on success (a session) and on failure (one generic answer,
//! throttling, an audit row that cannot be spammed).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use rusqlite::TransactionBehavior;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::auth::{Caller, Via};
use super::errors::{ApiError, ApiResult};
use crate::audit::{self, Event};
use crate::auth::{accounts, basic, session, throttle::Refused};
use crate::server::state::Server;
use crate::util::time::unix_now;

type S = Arc<Server>;

/// The peer address of the connection a request came on (set by the admin listener).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

/// The login routes that take a POST (JSON from scripts, forms from the console), each checked
/// by `browser_answers` against login CSRF.
pub const LOGIN_POSTS: &[&str] = &["/auth/basic", "/auth/isowebauth/challenge", "/auth/isowebauth"];

/// The routes that need no session or token.
pub fn public_routes() -> Router<S> {
    Router::new()
        .route("/auth/providers", get(providers))
        .route(LOGIN_POSTS[0], post(basic_login))
        .route(LOGIN_POSTS[1], post(super::isowebauth::challenge))
        .route(LOGIN_POSTS[2], post(super::isowebauth::login))
        .route("/auth/oidc/start", get(super::oidc_login::start))
        .route("/auth/oidc/callback", get(super::oidc_login::callback))
}

/// Whether a login request may have come from another site's page: its `Origin` is not the
/// console's (the same rule as a session's state changes), or, with no `Origin`, the browser's
/// own `Sec-Fetch-Site` says it is cross-site or same-site (no page can set that header;
/// scripts send neither). Any method but GET and HEAD counts, so a route added later is
/// covered too.
fn foreign_login(s: &Server, request: &Request) -> bool {
    if matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD) {
        return false;
    }
    let headers = request.headers();
    if headers.contains_key(header::ORIGIN) {
        return !super::auth::from_own_origin(s, request);
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    site.is_some_and(|v| !v.eq_ignore_ascii_case("same-origin") && !v.eq_ignore_ascii_case("none"))
}

/// Every failure gets exactly this, whatever went wrong (unknown user, wrong password, disabled
/// or locked account, a bad signature, a throttled source).
pub fn login_failed() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({ "error": "login failed" }))).into_response()
}

/// A browser's login (an HTML form post, or the OIDC round trip) that failed goes back to the
/// login page, which says only that it failed: the same for every reason, like the JSON answer.
/// A login posted from another site's page is refused before it is heard, so no site can log
/// a visitor in to an account of its choosing (login CSRF; see `foreign_login`).
pub async fn browser_answers(State(s): State<S>, request: Request, next: axum::middleware::Next) -> Response {
    if foreign_login(&s, &request) {
        let refusal = json!({ "error": "refused: a login must come from the console's own origin" });
        return (StatusCode::FORBIDDEN, Json(refusal)).into_response();
    }
    let from_browser = is_form(request.headers()) || request.uri().path().starts_with("/auth/oidc/");
    let response = next.run(request).await;
    if from_browser && response.status() == StatusCode::UNAUTHORIZED {
        let mut failed = Redirect::to("/login?failed=1").into_response();
        // The pre-login cookie of an OIDC login is cleared whatever happened.
        for cookie in response.headers().get_all(header::SET_COOKIE) {
            failed.headers_mut().append(header::SET_COOKIE, cookie.clone());
        }
        return failed;
    }
    response
}

pub fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// How a successful login is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A script: JSON with the CSRF token.
    Json,
    /// A form post: 303 to the dashboard.
    Redirect,
    /// The end of the OIDC round trip: a page that moves on to the dashboard by itself. The
    /// browser got here through another site's redirects, so a redirect straight to `/` would
    /// still be cross-site and the `SameSite=Strict` cookie would not be sent with it.
    Landing,
}

async fn providers(State(s): State<S>) -> ApiResult {
    Ok(Json(json!({
        "providers": s.auth.providers,
        "isowebauth_namespace": s.auth.enabled("isowebauth").then(|| s.auth.isowebauth.namespace.clone()),
    })))
}

/// A login form, posted as JSON (scripts) or as an HTML form (the console); a form is answered
/// with a redirect, JSON with JSON.
pub struct LoginBody<T> {
    pub value: T,
    pub from_form: bool,
}

impl<St: Send + Sync, T: DeserializeOwned + Send> FromRequest<St> for LoginBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &St) -> Result<Self, Self::Rejection> {
        if is_form(req.headers()) {
            let axum::Form(value) =
                axum::Form::<T>::from_request(req, state).await.map_err(|_| login_failed())?;
            Ok(LoginBody { value, from_form: true })
        } else {
            let Json(value) = Json::<T>::from_request(req, state).await.map_err(|_| login_failed())?;
            Ok(LoginBody { value, from_form: false })
        }
    }
}

/// The throttle keys of an attempt: the source, and the username when there is one. An OIDC
/// attempt names none: it counts against its source only, never against one key shared by
/// everybody (which anyone could lock).
fn keys(username: &str, source: IpAddr) -> Vec<String> {
    let mut keys = vec![format!("src:{}", crate::server::conn_limits::source_key(source))];
    if !username.is_empty() {
        keys.push(format!("user:{username}"));
    }
    keys
}

fn as_strs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

/// Whether an attempt may be heard now; a refusal is recorded like any failure (but counts no
/// further failure). Every public login route asks this before anything else, so a source
/// that is turned away adds nothing to the throttle's table.
pub fn may_try(s: &Server, provider: &'static str, username: &str, source: IpAddr) -> bool {
    let k = keys(username, source);
    match s.logins.throttle.check(&as_strs(&k)) {
        Ok(()) => true,
        Err(why) => {
            let kind = match why {
                Refused::Wait(_) => "throttled",
                Refused::Locked(_) => "locked",
            };
            record_failure(s, provider, kind, username, source);
            false
        }
    }
}

/// Records a failed login (the first of a minute per source in full, the rest summarised;
/// never the username itself, only its length) and counts it against the username and the
/// source; a count that reaches the lockout is recorded as `auth.locked`.
pub fn failed(
    s: &Server,
    provider: &'static str,
    kind: &'static str,
    username: &str,
    source: IpAddr,
) -> Response {
    record_failure(s, provider, kind, username, source);
    let k = keys(username, source);
    for locked in s.logins.throttle.failed(&as_strs(&k)) {
        s.metrics.lockouts.inc();
        let what = if locked.starts_with("user:") { "username" } else { "source" };
        let target = crate::server::conn_limits::source_key(source).to_string();
        if s.refusals.note(
            "auth.locked",
            &target,
            if what == "username" { "username locked" } else { "source locked" },
        ) {
            let detail = json!({ "locked": what, "username_len": username.len(), "source": target,
                "for_secs": s.logins.throttle.settings().lockout.as_secs() });
            let _ = s.audit(&[Event::new("server", "auth.locked", &target).detail(detail)]);
        }
    }
    login_failed()
}

fn record_failure(s: &Server, provider: &'static str, kind: &'static str, username: &str, source: IpAddr) {
    s.metrics.login_failures.inc();
    let target = crate::server::conn_limits::source_key(source).to_string();
    if s.refusals.note("auth.login_failed", &target, kind) {
        let detail =
            json!({ "provider": provider, "kind": kind, "username_len": username.len(), "source": target });
        if let Err(e) = s.audit(&[Event::new("server", "auth.login_failed", &target).detail(detail)]) {
            tracing::warn!(error = %e, "could not record a failed login");
        }
    }
}

/// A successful login: a new session (only its hash stored) and its audit row in one
/// transaction, the throttle cleared, the cookie set.
pub fn succeeded(
    s: &Server,
    provider: &'static str,
    username: &str,
    source: IpAddr,
    answer: Answer,
) -> Response {
    match start_session(s, provider, username, source) {
        Ok((id, expires_at)) => {
            let k = keys(username, source);
            s.logins.throttle.succeeded(&as_strs(&k));
            let cookie = session::set_cookie(id.expose(), s.logins.lifetime_secs);
            let mut response = match answer {
                Answer::Redirect => Redirect::to("/").into_response(),
                Answer::Landing => crate::server::web::oidc_landing(),
                Answer::Json => Json(
                    json!({ "username": username, "csrf_token": session::csrf_token(id.expose()), "expires_at": expires_at }),
                )
                .into_response(),
            };
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

fn start_session(
    s: &Server,
    provider: &str,
    username: &str,
    source: IpAddr,
) -> Result<(crate::crypto::SecretString, i64), ApiError> {
    let (id, hash) = session::new_id().map_err(ApiError::internal)?;
    let now = unix_now();
    let expires_at = now + s.logins.lifetime_secs;
    let row = crate::store::sessions::Session {
        id_hash: hash.to_vec(),
        username: username.to_string(),
        provider: provider.to_string(),
        source: source.to_string(),
        created_at: now,
        last_seen: now,
        expires_at,
    };
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    crate::store::sessions::insert(&tx, &row)?;
    let detail =
        json!({ "provider": provider, "source": source.to_string(), "session": session_handle(&hash) });
    audit::append_in(&tx, &[Event::new(&format!("user:{username}"), "auth.login", username).detail(detail)])?;
    tx.commit()?;
    Ok((id, expires_at))
}

/// How a session is named in lists and audit rows: the first 8 bytes of its id's hash, in hex.
/// It reveals nothing about the id.
pub fn session_handle(id_hash: &[u8]) -> String {
    crate::crypto::hex_encode(&id_hash[..8.min(id_hash.len())])
}

/// The web user an attempt names, if they may log in at all (exists, enabled).
pub fn enabled_user(s: &Server, username: &str) -> Option<crate::store::users::WebUser> {
    accounts::check_username(username).ok()?;
    crate::store::users::get(&s.db(), username).ok().flatten().filter(|u| u.disabled_at.is_none())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicForm {
    username: String,
    password: String,
}

async fn basic_login(
    State(s): State<S>,
    Extension(Peer(source)): Extension<Peer>,
    body: LoginBody<BasicForm>,
) -> Response {
    let LoginBody { value: form, from_form } = body;
    let password = crate::crypto::SecretString::new(form.password);
    if !may_try(&s, "basic", &form.username, source) {
        return login_failed();
    }
    if !s.auth.enabled("basic") {
        return failed(&s, "basic", "provider not enabled", &form.username, source);
    }
    let user = enabled_user(&s, &form.username);
    // The comparison runs whatever the user: a dummy one when there is no such user, after the
    // same vault work (another user's password, read and thrown away).
    let decoy = if user.is_none() { crate::store::users::any_username(&s.db()).ok().flatten() } else { None };
    let ok = basic::password_matches(
        s.provider.as_ref(),
        &form.username,
        user.is_some(),
        decoy.as_deref(),
        password.expose().as_bytes(),
    );
    match (ok, user) {
        (true, Some(u)) => succeeded(&s, "basic", &u.username, source, Answer::of_form(from_form)),
        (_, None) => failed(&s, "basic", "unknown or disabled user", &form.username, source),
        (false, Some(_)) => failed(&s, "basic", "wrong password", &form.username, source),
    }
}

impl Answer {
    pub fn of_form(from_form: bool) -> Answer {
        if from_form {
            Answer::Redirect
        } else {
            Answer::Json
        }
    }
}

/// Ends the caller's own session: the row is deleted and the cookie cleared. A form (the
/// console's logout button) goes back to the login page.
pub async fn logout(
    State(s): State<S>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let Via::Session { id } = &caller.via else {
        return Err(ApiError::bad_request("logout ends a console session; an API token is revoked instead"));
    };
    let hash = session::id_hash(id.expose());
    {
        let mut conn = s.db();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        crate::store::sessions::delete(&tx, &hash)?;
        audit::append_in(
            &tx,
            &[Event::new(&caller.actor, "auth.logout", caller.username.as_deref().unwrap_or_default())
                .detail(json!({ "session": session_handle(&hash) }))],
        )?;
        tx.commit()?;
    }
    let mut response = if is_form(&headers) {
        Redirect::to("/login").into_response()
    } else {
        Json(json!({ "logged_out": true })).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}
