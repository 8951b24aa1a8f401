//! The login page (one form per enabled provider), the isowebauth page that shows a challenge
//! to sign, and the page that ends an OIDC login. Public: they are how one gets a session.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::page::{self, PageResult, Q};
use crate::server::state::Server;

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    failed: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    failed: bool,
    basic: bool,
    isowebauth: bool,
    oidc: bool,
    oidc_issuer: String,
    namespace: String,
}

pub async fn page(State(s): State<Arc<Server>>, Q(q): Q<LoginQuery>) -> PageResult {
    let login = LoginPage {
        failed: q.failed.is_some(),
        basic: s.auth.enabled("basic"),
        isowebauth: s.auth.enabled("isowebauth"),
        oidc: s.auth.enabled("oidc"),
        oidc_issuer: s.auth.oidc.as_ref().map(|o| o.issuer.clone()).unwrap_or_default(),
        namespace: s.auth.isowebauth.namespace.clone(),
    };
    page::render(&login)
}

#[derive(Template)]
#[template(path = "challenge.html")]
struct ChallengePage<'a> {
    username: &'a str,
    challenge_id: &'a str,
    text: &'a str,
    command: String,
    expires: String,
}

/// The answer to the isowebauth form: the challenge, the command that signs it, and a form to
/// paste the signature into.
pub fn challenge_page(username: &str, id: &str, text: &str, namespace: &str, expires_at: i64) -> Response {
    // The text is `[a-z0-9 :._/+=-]` and newlines: safe inside single quotes for printf.
    let printf = text.replace('\n', "\\n");
    let page = ChallengePage {
        username,
        challenge_id: id,
        text,
        command: format!("printf '{printf}' | ssh-keygen -Y sign -n {namespace} -f ~/.ssh/id_ed25519"),
        expires: page::when(Some(expires_at)),
    };
    match page::render(&page) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing;

/// The last step of an OIDC login: the provider sent the browser here through its redirects,
/// so this page asks the browser to load the dashboard itself (a same-site navigation, which
/// carries the `SameSite=Strict` session cookie). A meta refresh, not a script.
pub fn oidc_landing() -> Response {
    match Landing.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => page::PageError::internal(e).into_response(),
    }
}
