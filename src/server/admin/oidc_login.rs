//! The `oidc` login: the authorization-code flow with PKCE, `state` and `nonce` (the flow itself
//! is `auth::oidc`). The browser carries a short-lived pre-login cookie naming its pending login,
//! so a callback only completes the login that browser started. The claim the server is told to
//! use names an existing web user; nobody is created by logging in.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;

use super::login::{enabled_user, failed, login_failed, may_try, succeeded, Answer, Peer};
use crate::auth::oidc::OidcClient;
use crate::server::state::Server;

const PROVIDER: &str = "oidc";
/// Names the pending login of this browser. `SameSite=Lax`, not `Strict`: the provider sends
/// the browser back with a cross-site navigation, which a `Strict` cookie would not follow.
const PENDING_COOKIE: &str = "__Host-vigo_oidc";

fn pending_cookie(id: &str, max_age: i64) -> String {
    format!("{PENDING_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

/// Where the provider sends the browser back to: always under the configured `public_url`
/// (required with `oidc`, see `AuthSettings::check`), never under the request's Host header,
/// which the client chooses.
fn redirect_uri(s: &Server) -> Option<String> {
    Some(format!("{}/auth/oidc/callback", s.auth.public_url.as_ref()?))
}

/// The provider's client, discovered at the first login (a provider that is down when the
/// server starts does not stop the server; the login says so and the next one tries again).
async fn client(s: &Server) -> Option<Arc<OidcClient>> {
    let settings = s.oidc_settings.clone()?;
    let mut slot = s.oidc_client.lock().await;
    if let Some(c) = slot.as_ref() {
        return Some(c.clone());
    }
    match OidcClient::discover(settings).await {
        Ok(c) => {
            let c = Arc::new(c);
            *slot = Some(c.clone());
            Some(c)
        }
        Err(e) => {
            tracing::warn!(error = %e, "OIDC discovery failed");
            None
        }
    }
}

pub async fn start(State(s): State<Arc<Server>>, Extension(Peer(source)): Extension<Peer>) -> Response {
    if !may_try(&s, PROVIDER, "", source) {
        return login_failed();
    }
    if !s.auth.enabled(PROVIDER) {
        return failed(&s, PROVIDER, "provider not enabled", "", source);
    }
    let (Some(client), Some(redirect)) = (client(&s).await, redirect_uri(&s)) else {
        return failed(&s, PROVIDER, "provider unreachable", "", source);
    };
    let scopes: Vec<&str> =
        s.auth.oidc.as_ref().map(|o| o.scopes.iter().map(String::as_str).collect()).unwrap_or_default();
    let Ok((url, pending)) = client.begin(&redirect, &scopes) else { return login_failed() };
    let Ok(id) = s.logins.keep_oidc_pending(pending, source, crate::util::time::unix_now()) else {
        return login_failed();
    };
    let mut response = Redirect::to(&url).into_response();
    if let Ok(v) = HeaderValue::from_str(&pending_cookie(&id, 600)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize, Default)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
}

pub async fn callback(
    State(s): State<Arc<Server>>,
    Extension(Peer(source)): Extension<Peer>,
    query: Result<Query<Callback>, QueryRejection>,
    request: Request,
) -> Response {
    if !may_try(&s, PROVIDER, "", source) {
        return clear(login_failed());
    }
    // A query that does not parse is a callback without a code: the generic failure, not
    // axum's plain-text 400.
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let cookie = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';').map(str::trim))
        .find_map(|c| c.strip_prefix(PENDING_COOKIE)?.strip_prefix('='))
        .map(str::to_string);
    let pending = cookie.and_then(|id| s.logins.take_oidc_pending(&id, crate::util::time::unix_now()));
    let (Some(pending), Some(code), Some(state)) = (pending, q.code, q.state) else {
        return clear(failed(&s, PROVIDER, "no login in progress for this browser", "", source));
    };
    let Some(client) = client(&s).await else {
        return clear(failed(&s, PROVIDER, "provider unreachable", "", source));
    };
    let claims = match client.finish(&code, &state, &pending).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "OIDC login refused");
            return clear(failed(&s, PROVIDER, oidc_kind(&e), "", source));
        }
    };
    let claim = s.auth.oidc.as_ref().map(|o| o.claim.as_str()).unwrap_or("email");
    let value = claims.get(claim).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let user = match claim {
        "email" => crate::store::users::find_by_email(&s.db(), &value)
            .ok()
            .flatten()
            .filter(|u| u.disabled_at.is_none()),
        _ => enabled_user(&s, &value),
    };
    match user {
        Some(u) => clear(succeeded(&s, PROVIDER, &u.username, source, Answer::Landing)),
        None => clear(failed(&s, PROVIDER, "no web user for the claim", &value, source)),
    }
}

/// The pre-login cookie has done its job, whatever happened.
fn clear(mut response: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&pending_cookie("", 0)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The kind of refusal for the audit row (never the token or code).
fn oidc_kind(e: &crate::auth::oidc::OidcError) -> &'static str {
    use crate::auth::oidc::OidcError as E;
    match e {
        E::StateMismatch => "state mismatch",
        E::LoginExpired => "login expired",
        _ => "token or code refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L7: the redirect is the configured public URL's, and there is none without one.
    #[test]
    fn the_redirect_comes_from_public_url_only() {
        let auth = crate::settings::AuthSettings {
            public_url: Some("https://vigo.example:8443".into()),
            ..Default::default()
        };
        let (dir, s) = crate::server::state::test_server_with(
            "oidc-redirect",
            crate::secrets::MemoryProvider::new(),
            auth,
        );
        assert_eq!(redirect_uri(&s).as_deref(), Some("https://vigo.example:8443/auth/oidc/callback"));
        std::fs::remove_dir_all(dir).unwrap();
        let (dir, s) = crate::server::state::test_server("oidc-no-redirect");
        assert_eq!(redirect_uri(&s), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
