//! What the server keeps in memory about logins in progress: the failure throttle, isowebauth
//! challenges waiting for their signature, and OIDC logins waiting for the provider's answer.
//! All short-lived; a restart only makes a login in progress start over.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth::throttle::LoginThrottle;
use crate::crypto;

/// An isowebauth challenge: the text the operator signs, for one username, once.
pub struct Challenge {
    pub username: String,
    pub text: String,
    pub expires_at: i64,
}

/// Challenges (and OIDC logins) waiting at once; more are refused until some expire.
const MAX_PENDING: usize = 10_000;

pub struct LoginRuntime {
    pub throttle: LoginThrottle,
    pub idle_secs: i64,
    pub lifetime_secs: i64,
    pub challenge_ttl: i64,
    challenges: Mutex<HashMap<String, Challenge>>,
    /// OIDC logins sent to the provider, by the id in the browser's pre-login cookie.
    oidc_pending: Mutex<HashMap<String, (crate::auth::oidc::Pending, i64)>>,
}

/// How long an OIDC login may take at the provider.
const OIDC_PENDING_SECS: i64 = 600;

impl LoginRuntime {
    pub fn new(auth: &crate::settings::AuthSettings) -> Result<LoginRuntime, String> {
        Ok(LoginRuntime {
            throttle: LoginThrottle::new(auth.throttle_settings()?),
            idle_secs: auth.session_idle_secs()?,
            lifetime_secs: auth.session_lifetime_secs()?,
            challenge_ttl: auth.challenge_ttl_secs()?,
            challenges: Mutex::new(HashMap::new()),
            oidc_pending: Mutex::new(HashMap::new()),
        })
    }

    /// A new challenge for `username`: (id, text to sign, expiry). The text names the server's
    /// purpose, a random nonce and the expiry, so a signature over it is good for nothing else.
    pub fn new_challenge(&self, username: &str, now: i64) -> Result<(String, String, i64), String> {
        let mut map = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, c| c.expires_at > now);
        if map.len() >= MAX_PENDING {
            return Err("too many logins in progress; try again in a minute".into());
        }
        let id = crypto::b64_encode(&crypto::random_bytes(16).map_err(|e| e.to_string())?);
        let nonce = crypto::b64_encode(&crypto::random_bytes(32).map_err(|e| e.to_string())?);
        let expires_at = now + self.challenge_ttl;
        let text =
            format!("vigo isowebauth login\nuser: {username}\nnonce: {nonce}\nexpires: {expires_at}\n");
        map.insert(id.clone(), Challenge { username: username.to_string(), text: text.clone(), expires_at });
        Ok((id, text, expires_at))
    }

    /// Keeps an OIDC login until the provider sends the browser back; returns the id for the
    /// browser's pre-login cookie.
    pub fn keep_oidc_pending(&self, pending: crate::auth::oidc::Pending, now: i64) -> Result<String, String> {
        let mut map = self.oidc_pending.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, at)| now - *at < OIDC_PENDING_SECS);
        if map.len() >= MAX_PENDING {
            return Err("too many logins in progress; try again in a minute".into());
        }
        let id = crypto::b64_encode(&crypto::random_bytes(32).map_err(|e| e.to_string())?);
        map.insert(id.clone(), (pending, now));
        Ok(id)
    }

    /// The OIDC login of this pre-login cookie, once.
    pub fn take_oidc_pending(&self, id: &str, now: i64) -> Option<crate::auth::oidc::Pending> {
        let (pending, at) = self.oidc_pending.lock().unwrap_or_else(|p| p.into_inner()).remove(id)?;
        (now - at < OIDC_PENDING_SECS).then_some(pending)
    }

    /// Takes the challenge out (it can be answered once), if it exists, is for `username` and
    /// has not expired.
    pub fn take_challenge(&self, id: &str, username: &str, now: i64) -> Option<Challenge> {
        let mut map = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        let c = map.remove(id)?;
        (c.username == username && c.expires_at > now).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_answered_once_by_its_user_before_it_expires() {
        let rt = LoginRuntime::new(&crate::settings::AuthSettings::default()).unwrap();
        let (id, text, exp) = rt.new_challenge("alice", 1000).unwrap();
        assert!(text.contains("user: alice") && exp == 1000 + 120);
        assert!(rt.take_challenge(&id, "bob", 1001).is_none(), "another user");
        let (id, ..) = rt.new_challenge("alice", 1000).unwrap();
        assert!(rt.take_challenge(&id, "alice", 1001).is_some());
        assert!(rt.take_challenge(&id, "alice", 1002).is_none(), "used");
        let (id, ..) = rt.new_challenge("alice", 1000).unwrap();
        assert!(rt.take_challenge(&id, "alice", 1000 + 121).is_none(), "expired");
    }
}
