//! The `isowebauth` login: the server hands out a random, single-use, short-lived challenge;
//! the operator signs it with `ssh-keygen -Y sign -n <namespace>` and sends the signature back;
//! the server checks it against the SSH key stored for that web user. A challenge is issued
//! for any name, so asking for one says nothing about which users exist.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::login::{enabled_user, failed, login_failed, may_try, succeeded, Answer, LoginBody, Peer};
use crate::server::state::Server;
use crate::util::time::unix_now;

const PROVIDER: &str = "isowebauth";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    username: String,
}

pub async fn challenge(
    State(s): State<Arc<Server>>,
    Extension(Peer(source)): Extension<Peer>,
    body: LoginBody<ChallengeRequest>,
) -> Response {
    let (username, from_form) = (body.value.username, body.from_form);
    // Asked first: a source that is turned away adds no entry to any table.
    if !may_try(&s, PROVIDER, &username, source) {
        return login_failed();
    }
    if !s.auth.enabled(PROVIDER) || crate::auth::accounts::check_username(&username).is_err() {
        return failed(&s, PROVIDER, "no challenge for this request", &username, source);
    }
    let namespace = &s.auth.isowebauth.namespace;
    match s.logins.new_challenge(&username, source, unix_now()) {
        // The console's form: a page to sign the challenge on and paste the signature into.
        Ok((id, text, expires_at)) if from_form => {
            crate::server::web::challenge_page(&username, &id, &text, namespace, expires_at)
        }
        Ok((id, text, expires_at)) => Json(json!({
            "challenge_id": id,
            "challenge": text,
            "namespace": namespace,
            "expires_at": expires_at,
            "sign_with": format!("ssh-keygen -Y sign -n {namespace} -f ~/.ssh/id_ed25519 < challenge.txt"),
        }))
        .into_response(),
        Err(_) => login_failed(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedChallenge {
    username: String,
    challenge_id: String,
    signature: String,
}

pub async fn login(
    State(s): State<Arc<Server>>,
    Extension(Peer(source)): Extension<Peer>,
    body: LoginBody<SignedChallenge>,
) -> Response {
    let LoginBody { value: form, from_form } = body;
    if !may_try(&s, PROVIDER, &form.username, source) {
        return login_failed();
    }
    if !s.auth.enabled(PROVIDER) {
        return failed(&s, PROVIDER, "provider not enabled", &form.username, source);
    }
    // Taken first: a challenge is spent by any answer, right or wrong.
    let Some(challenge) = s.logins.take_challenge(&form.challenge_id, &form.username, unix_now()) else {
        return failed(&s, PROVIDER, "unknown, used or expired challenge", &form.username, source);
    };
    let Some(user) = enabled_user(&s, &form.username) else {
        return failed(&s, PROVIDER, "unknown or disabled user", &form.username, source);
    };
    let Some(key) = user.ssh_key.as_deref() else {
        return failed(&s, PROVIDER, "user has no SSH key", &form.username, source);
    };
    match crate::auth::sshsig::verify(
        &form.signature,
        challenge.text.as_bytes(),
        &s.auth.isowebauth.namespace,
        key,
    ) {
        Ok(()) => succeeded(&s, PROVIDER, &user.username, source, Answer::of_form(from_form)),
        Err(e) => {
            tracing::info!(error = %e, "isowebauth signature refused");
            failed(&s, PROVIDER, "bad signature", &form.username, source)
        }
    }
}
