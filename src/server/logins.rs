//! What the server keeps in memory about logins in progress: the failure throttle, isowebauth
//! challenges waiting for their signature, and OIDC logins waiting for the provider's answer.
//! All short-lived; a restart only makes a login in progress start over.

use std::net::IpAddr;
use std::sync::Mutex;

use super::pending::PendingTable;
use crate::auth::throttle::LoginThrottle;
use crate::crypto;

/// An isowebauth challenge: the text the operator signs, for one username, once.
pub struct Challenge {
    pub username: String,
    pub text: String,
}

/// Challenges (and, apart, OIDC logins) waiting at once; more are refused until some expire.
const MAX_PENDING: usize = 10_000;
/// Of those, what one source may hold: a person logs in once at a time, an office behind one
/// address a few dozen; a flood from one address leaves the rest to everybody else.
const PENDING_PER_SOURCE: usize = 32;

pub struct LoginRuntime {
    pub throttle: LoginThrottle,
    pub idle_secs: i64,
    pub lifetime_secs: i64,
    pub challenge_ttl: i64,
    challenges: Mutex<PendingTable<Challenge>>,
    /// OIDC logins sent to the provider, by the id in the browser's pre-login cookie.
    oidc_pending: Mutex<PendingTable<crate::auth::oidc::Pending>>,
}

/// How long an OIDC login may take at the provider.
const OIDC_PENDING_SECS: i64 = 600;

const BUSY: &str = "too many logins in progress; try again in a minute";

impl LoginRuntime {
    pub fn new(auth: &crate::settings::AuthSettings) -> Result<LoginRuntime, String> {
        Ok(LoginRuntime {
            throttle: LoginThrottle::new(auth.throttle_settings()?),
            idle_secs: auth.session_idle_secs()?,
            lifetime_secs: auth.session_lifetime_secs()?,
            challenge_ttl: auth.challenge_ttl_secs()?,
            challenges: Mutex::new(PendingTable::new(MAX_PENDING, PENDING_PER_SOURCE)),
            oidc_pending: Mutex::new(PendingTable::new(MAX_PENDING, PENDING_PER_SOURCE)),
        })
    }

    /// A new challenge for `username`, asked for from `source`: (id, text to sign, expiry). The
    /// text names the server's purpose, a random nonce and the expiry, so a signature over it
    /// is good for nothing else.
    pub fn new_challenge(
        &self,
        username: &str,
        source: IpAddr,
        now: i64,
    ) -> Result<(String, String, i64), String> {
        let id = crypto::b64_encode(&crypto::random_bytes(16).map_err(|e| e.to_string())?);
        let nonce = crypto::b64_encode(&crypto::random_bytes(32).map_err(|e| e.to_string())?);
        let expires_at = now + self.challenge_ttl;
        let text =
            format!("vigo isowebauth login\nuser: {username}\nnonce: {nonce}\nexpires: {expires_at}\n");
        let challenge = Challenge { username: username.to_string(), text: text.clone() };
        let mut table = self.challenges.lock().unwrap_or_else(|p| p.into_inner());
        table.insert(id.clone(), challenge, source, expires_at, now).map_err(|_| BUSY.to_string())?;
        Ok((id, text, expires_at))
    }

    /// Keeps an OIDC login, started from `source`, until the provider sends the browser back;
    /// returns the id for the browser's pre-login cookie.
    pub fn keep_oidc_pending(
        &self,
        pending: crate::auth::oidc::Pending,
        source: IpAddr,
        now: i64,
    ) -> Result<String, String> {
        let id = crypto::b64_encode(&crypto::random_bytes(32).map_err(|e| e.to_string())?);
        let mut table = self.oidc_pending.lock().unwrap_or_else(|p| p.into_inner());
        table
            .insert(id.clone(), pending, source, now + OIDC_PENDING_SECS, now)
            .map_err(|_| BUSY.to_string())?;
        Ok(id)
    }

    /// The OIDC login of this pre-login cookie, once.
    pub fn take_oidc_pending(&self, id: &str, now: i64) -> Option<crate::auth::oidc::Pending> {
        self.oidc_pending.lock().unwrap_or_else(|p| p.into_inner()).take(id, now)
    }

    /// Takes the challenge out (it can be answered once), if it exists, is for `username` and
    /// has not expired.
    pub fn take_challenge(&self, id: &str, username: &str, now: i64) -> Option<Challenge> {
        let c = self.challenges.lock().unwrap_or_else(|p| p.into_inner()).take(id, now)?;
        (c.username == username).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn a_challenge_is_answered_once_by_its_user_before_it_expires() {
        let rt = LoginRuntime::new(&crate::settings::AuthSettings::default()).unwrap();
        let (id, text, exp) = rt.new_challenge("alice", HERE, 1000).unwrap();
        assert!(text.contains("user: alice") && exp == 1000 + 120);
        assert!(rt.take_challenge(&id, "bob", 1001).is_none(), "another user");
        let (id, ..) = rt.new_challenge("alice", HERE, 1000).unwrap();
        assert!(rt.take_challenge(&id, "alice", 1001).is_some());
        assert!(rt.take_challenge(&id, "alice", 1002).is_none(), "used");
        let (id, ..) = rt.new_challenge("alice", HERE, 1000).unwrap();
        assert!(rt.take_challenge(&id, "alice", 1000 + 121).is_none(), "expired");
    }

    fn pending() -> crate::auth::oidc::Pending {
        crate::auth::oidc::Pending {
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: crate::crypto::SecretString::new("v".into()),
            redirect_uri: "https://vigo.example/auth/oidc/callback".into(),
            created_at: std::time::SystemTime::now(),
        }
    }

    /// One source that fills its share of challenges and of OIDC logins is refused more, and
    /// another source still gets a challenge and starts an OIDC login.
    #[test]
    fn one_source_cannot_take_the_logins_in_progress_of_everybody() {
        let rt = LoginRuntime::new(&crate::settings::AuthSettings::default()).unwrap();
        let flood: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let mut got = 0;
        for i in 0..MAX_PENDING {
            if rt.new_challenge(&format!("user{i}"), flood, 1000).is_ok() {
                got += 1;
            }
        }
        assert_eq!(got, PENDING_PER_SOURCE, "one source holds its share and no more");
        assert!(rt.new_challenge("alice", other, 1000).is_ok(), "another source still gets a challenge");
        let kept = (0..MAX_PENDING).filter(|_| rt.keep_oidc_pending(pending(), flood, 1000).is_ok()).count();
        assert_eq!(kept, PENDING_PER_SOURCE);
        let id = rt.keep_oidc_pending(pending(), other, 1000).expect("another source starts an OIDC login");
        assert!(rt.take_oidc_pending(&id, 1001).is_some());
    }
}
