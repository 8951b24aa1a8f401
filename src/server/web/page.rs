//! What every page shares: the layout (navigation by permission, who is logged in, the CSRF
//! token for forms, a notice after an action), rendering, errors as HTML pages, and the
//! extractors whose rejections are HTML too.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use crate::auth::Permission;
use crate::server::admin::{ApiError, Caller};

/// The pages of the navigation bar, each shown only to callers holding its permission.
const NAV: &[(&str, &str, Permission)] = &[
    ("/", "Dashboard", Permission::HealthRead),
    ("/envoys", "Envoys", Permission::EnvoysRead),
    ("/runs", "Runs", Permission::RunsRead),
    ("/config", "Config", Permission::ConfigRead),
    ("/secrets", "Secrets", Permission::SecretsList),
    ("/enroll-tokens", "Enrollment", Permission::TokensRead),
    ("/api-tokens", "API tokens", Permission::SelfRead),
    ("/users", "Users", Permission::UsersManage),
    ("/audit", "Audit log", Permission::AuditRead),
    ("/sessions", "Sessions", Permission::SelfRead),
    ("/security", "Security", Permission::SecurityRead),
];

/// What an action redirects back with (`?ok=CODE`): fixed sentences, so nothing a request
/// carries is ever shown back.
const NOTICES: &[(&str, &str)] = &[
    ("revoked", "The envoy was revoked; it can never check in or enroll again."),
    ("published", "The config was published."),
    ("session-ended", "The session was ended."),
    ("token-revoked", "The API token was revoked."),
    ("user-created", "The web user was created. Set their password with `vigocli secrets set password vigo/web/auth/NAME`."),
    ("user-changed", "The web user was changed; their sessions were ended."),
    ("user-deleted", "The web user was deleted; their sessions were ended and their API tokens revoked."),
];

pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The frame of every page after login.
pub struct Layout {
    pub title: String,
    pub actor: String,
    pub role: &'static str,
    /// The session's CSRF token for forms (empty for a bearer token, which needs none).
    pub csrf: String,
    pub nav: Vec<NavLink>,
    pub notice: Option<&'static str>,
    pub version: &'static str,
}

/// The caller of a page, and the notice its URL asks for.
pub struct Ctx {
    pub caller: Caller,
    notice: Option<&'static str>,
}

impl Ctx {
    pub fn can(&self, p: Permission) -> bool {
        self.caller.role.allows(p)
    }

    /// The layout of a page in `section` (the href of its navigation entry).
    pub fn layout(&self, section: &str, title: impl Into<String>) -> Layout {
        Layout {
            title: title.into(),
            actor: self.caller.username.clone().unwrap_or_else(|| self.caller.actor.clone()),
            role: self.caller.role.name(),
            csrf: self.caller.csrf_token().unwrap_or_default(),
            nav: NAV
                .iter()
                .filter(|(_, _, p)| self.can(*p))
                .map(|(href, label, _)| NavLink { href, label, current: *href == section })
                .collect(),
            notice: self.notice,
            version: crate::release::version(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| PageError::new(StatusCode::UNAUTHORIZED, "log in first"))?;
        let notice = parts.uri.query().and_then(|q| {
            let code = form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "ok").map(|(_, v)| v)?;
            NOTICES.iter().find(|(c, _)| *c == code).map(|(_, text)| *text)
        });
        Ok(Ctx { caller, notice })
    }
}

/// A page that could not be shown: an HTML page with the status and a sentence.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError { status, message: message.into() }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, what)
    }
    pub fn bad_request(what: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, what)
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "console internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log")
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::new(e.status(), e.message())
    }
}

impl From<rusqlite::Error> for PageError {
    fn from(e: rusqlite::Error) -> Self {
        PageError::internal(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
    login: bool,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            status: self.status.as_u16(),
            reason: self.status.canonical_reason().unwrap_or("Error"),
            message: &self.message,
            login: self.status == StatusCode::UNAUTHORIZED,
        };
        match page.render() {
            Ok(body) => (self.status, Html(body)).into_response(),
            Err(_) => (self.status, self.message).into_response(),
        }
    }
}

pub type PageResult = Result<Response, PageError>;

/// A rendered page.
pub fn render(page: &impl Template) -> PageResult {
    page.render().map(|body| Html(body).into_response()).map_err(PageError::internal)
}

/// After an action: back to `to` with a notice code (see `NOTICES`).
pub fn done(to: &str, notice: &str) -> PageResult {
    Ok(Redirect::to(&format!("{to}?ok={notice}")).into_response())
}

/// The answer to a request refused before any page handler ran (no or a bad session, a
/// missing permission, a failed CSRF or Origin check): a page load without a session goes to
/// the login page; everything else is an HTML page naming the refusal.
pub fn refusal(method: &Method, status: StatusCode, message: String) -> Response {
    if status == StatusCode::UNAUTHORIZED && matches!(*method, Method::GET | Method::HEAD) {
        let mut r = Redirect::to("/login").into_response();
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return r;
    }
    PageError::new(status, message).into_response()
}

/// A query string; a value that does not parse is an HTML 400. Unknown parameters are ignored
/// (they are navigation state, such as the `ok` notice).
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Q(q.0)).map_err(|_| {
            PageError::bad_request("the address has a parameter with a value this page cannot use")
        })
    }
}

/// A submitted form; one that does not parse is an HTML 400 that does not echo it.
pub struct F<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for F<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Form::<T>::from_request(req, state).await.map(|f| F(f.0)).map_err(|_| {
            PageError::bad_request("the form is missing a field or has a value that is not allowed")
        })
    }
}

/// The one path parameter of a page; a rejection is an HTML 400.
pub struct P(pub String);

impl<S: Send + Sync> FromRequestParts<S> for P {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| P(p.0))
            .map_err(|_| PageError::bad_request("bad address"))
    }
}

/// `2026-01-02 03:04:05` (UTC) for a Unix time; `—` for none.
pub fn when(t: Option<i64>) -> String {
    match t {
        Some(t) => crate::util::time::rfc3339_millis(t * 1000)[..19].replace('T', " "),
        None => "—".into(),
    }
}

pub use crate::util::time::ago;

/// Whole days from `now` to `t` (negative once past).
pub fn days_left(t: i64, now: i64) -> i64 {
    (t - now).div_euclid(86_400)
}

/// A JSON text (audit detail, resource attributes) pretty-printed for a `<pre>`, with any
/// secret marker shown as `secret:<key>`.
pub fn show_json(text: &str) -> String {
    let pretty = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string());
    markers_as_refs(&pretty)
}

/// Every `__VIGO_SECRET__<key>__END_VIGO_SECRET__` marker as `secret:<key>`: what the config
/// said, and never a value (the server holds none in bundles).
pub fn markers_as_refs(text: &str) -> String {
    use crate::placeholder::{MARKER_END, MARKER_START};
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MARKER_START) {
        let after = &rest[start + MARKER_START.len()..];
        let Some(end) = after.find(MARKER_END) else { break };
        out.push_str(&rest[..start]);
        out.push_str("secret:");
        out.push_str(&after[..end]);
        rest = &after[end + MARKER_END.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_read_as_the_refs_the_config_wrote() {
        let m = crate::placeholder::marker("vigo/db/password").unwrap();
        let text = format!("{{\"dsn\": \"postgres://app:{m}@db\"}} and {m}");
        assert_eq!(
            markers_as_refs(&text),
            "{\"dsn\": \"postgres://app:secret:vigo/db/password@db\"} and secret:vigo/db/password"
        );
        assert_eq!(markers_as_refs("no markers __VIGO_SECRET__open"), "no markers __VIGO_SECRET__open");
    }

    #[test]
    fn times_read_plainly() {
        assert_eq!(when(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(when(None), "—");
        assert_eq!(ago(Some(100), 130), "30 s ago");
        assert_eq!(ago(Some(0), 7200), "2 h ago");
        assert_eq!(ago(None, 1), "never");
        assert_eq!(days_left(86_400 * 10 + 5, 0), 10);
    }
}
