//! Who is calling the admin API: a bearer token (the boot-minted local-admin token, or a
//! `vgot_` API token, which is dead once its owner's role is below its own), or a console
//! session cookie. A
//! session's state changes must also carry its CSRF token and come from the console's own
//! origin. Source addresses grant nothing. Then the route's one permission is checked.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use crate::auth::{session, Permission, Role};
use crate::crypto::{self, SecretString};
use crate::server::state::Server;
use crate::util::time::unix_now;

/// How the caller proved who it is.
#[derive(Clone, Debug)]
pub enum Via {
    LocalAdmin,
    Token {
        name: String,
        /// When the token expires: a token it makes may last no longer.
        expires_at: Option<i64>,
    },
    /// The session id itself, to derive its CSRF token for pages and to end it at logout.
    Session {
        id: SecretString,
    },
}

/// Who is calling, as the audit log names them.
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: String,
    pub role: Role,
    /// The web user, when there is one (not for the local-admin principal or legacy tokens).
    pub username: Option<String>,
    pub via: Via,
}

impl Caller {
    /// The CSRF token a page of this session embeds in its forms.
    pub fn csrf_token(&self) -> Option<String> {
        match &self.via {
            Via::Session { id } => Some(session::csrf_token(id.expose())),
            _ => None,
        }
    }
}

/// The header a script using a session sends its CSRF token in (forms send a `csrf` field).
pub const CSRF_HEADER: &str = "x-vigo-csrf";

fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid bearer token or session")
}

fn forbidden(why: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, why.to_string())
}

/// An enabled web user's role, or why they may not act.
fn user_role(server: &Server, username: &str) -> Result<Role, ApiError> {
    let user = crate::store::users::get(&server.db(), username)?.ok_or_else(unauthorized)?;
    if user.disabled_at.is_some() {
        return Err(unauthorized());
    }
    Role::parse(&user.role).ok_or_else(unauthorized)
}

fn by_token(server: &Server, token: &str) -> Result<Caller, ApiError> {
    let hash = crypto::sha256(token.as_bytes());
    if crypto::ct_eq(&hash, &server.admin_token_hash) {
        return Ok(Caller {
            actor: "local-admin".into(),
            role: Role::Admin,
            username: None,
            via: Via::LocalAdmin,
        });
    }
    if !token.starts_with("vgot_") {
        return Err(unauthorized());
    }
    let found =
        crate::store::api_tokens::find_active(&server.db(), &hash, unix_now())?.ok_or_else(unauthorized)?;
    let token_role = Role::parse(&found.role).ok_or_else(unauthorized)?;
    let via = Via::Token { name: found.name.clone(), expires_at: found.expires_at };
    match found.owner {
        // A token follows its owner: a disabled or deleted account ends it, and so does a role
        // lowered below the token's (the role change also revokes it; this covers the rest).
        Some(owner) => {
            let owner_role = user_role(server, &owner)?;
            if owner_role.rank() < token_role.rank() {
                return Err(unauthorized());
            }
            let role = token_role.min(owner_role);
            Ok(Caller {
                actor: format!("user:{owner}/api-token:{}", found.name),
                role,
                username: Some(owner),
                via,
            })
        }
        None => {
            Ok(Caller { actor: format!("api-token:{}", found.name), role: token_role, username: None, via })
        }
    }
}

fn by_session(server: &Server, id: &str) -> Result<Caller, ApiError> {
    let now = unix_now();
    let found =
        crate::store::sessions::touch(&server.db(), &session::id_hash(id), now, server.logins.idle_secs)?
            .ok_or_else(unauthorized)?;
    let role = user_role(server, &found.username)?;
    Ok(Caller {
        actor: format!("user:{}", found.username),
        role,
        username: Some(found.username),
        via: Via::Session { id: SecretString::new(id.to_string()) },
    })
}

fn identify(server: &Server, request: &Request) -> Result<Caller, ApiError> {
    let headers = request.headers();
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(unauthorized)?;
        return by_token(server, token);
    }
    let id = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::from_cookie_header)
        .ok_or_else(unauthorized)?;
    by_session(server, id)
}

/// The one origin a session's state changes may come from: the configured public URL, else
/// the address the request itself was sent to.
pub fn own_origin(server: &Server, request: &Request) -> Option<String> {
    if let Some(u) = &server.auth.public_url {
        return Some(u.clone());
    }
    let host = request.headers().get(header::HOST)?.to_str().ok()?;
    Some(format!("https://{host}"))
}

/// Whether a request comes from the console's own pages, by its `Origin`. The console's pages
/// are served with `Referrer-Policy: no-referrer`, under which browsers send `Origin: null` on
/// their form posts; so `null` counts only together with `Sec-Fetch-Site: same-origin`, a header
/// no page can set and which a post from any other origin (another port of the same host
/// included) carries as `same-site` or `cross-site`. A page elsewhere that sends `null` on
/// purpose is refused, as is a request with no `Origin` at all.
pub fn from_own_origin(server: &Server, request: &Request) -> bool {
    let headers = request.headers();
    let get = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    match get(header::ORIGIN) {
        Some("null") => get(axum::http::HeaderName::from_static("sec-fetch-site")) == Some("same-origin"),
        Some(origin) => own_origin(server, request).is_some_and(|own| own.eq_ignore_ascii_case(origin)),
        None => false,
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Largest form read to find a CSRF field.
const MAX_FORM: usize = 1024 * 1024;

/// For a session's state change: the `Origin` must be the console's own, and the CSRF token
/// (header or `csrf` form field) the session's. Returns the request with its body intact.
async fn check_state_change(server: &Server, caller: &Caller, request: Request) -> Result<Request, ApiError> {
    let Via::Session { id } = &caller.via else { return Ok(request) };
    if is_safe(request.method()) {
        return Ok(request);
    }
    if !from_own_origin(server, &request) {
        return Err(forbidden(
            "refused: a state change from a session must come from the console's own origin",
        ));
    }
    if let Some(token) = request.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if session::csrf_matches(id.expose(), token) {
            Ok(request)
        } else {
            Err(forbidden("refused: the CSRF token does not match the session"))
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(forbidden("refused: a state change from a session needs its CSRF token"));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| ApiError::bad_request("the form is too large"))?;
    let token = form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
    match token {
        Some(t) if session::csrf_matches(id.expose(), &t) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(forbidden("refused: the CSRF token is missing or does not match the session")),
    }
}

/// A refusal as the caller can read it: a console page for a console path, JSON otherwise.
fn refuse(method: &Method, path: &str, e: ApiError) -> Response {
    if crate::server::web::is_page(path) {
        return crate::server::web::refusal(method, e.status(), e.message().to_string());
    }
    e.into_response()
}

/// Runs before routing and extractors: an unauthenticated request learns nothing else.
pub async fn authenticate(State(server): State<Arc<Server>>, mut request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let caller = match identify(&server, &request) {
        Ok(c) => c,
        Err(e) => return refuse(&method, &path, e),
    };
    request = match check_state_change(&server, &caller, request).await {
        Ok(r) => r,
        Err(e) => return refuse(&method, &path, e),
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The route's permission, checked before its extractors run.
pub async fn require(permission: Permission, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>() else {
        return refuse(request.method(), request.uri().path(), unauthorized());
    };
    if !caller.role.allows(permission) {
        let e = ApiError::new(
            StatusCode::FORBIDDEN,
            format!("role {} lacks the permission {}", caller.role.name(), permission.name()),
        );
        return refuse(request.method(), request.uri().path(), e);
    }
    next.run(request).await
}
