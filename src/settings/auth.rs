//! The `auth:` section: which login providers are on, how long sessions last, how failed
//! logins are slowed down, and the OIDC and isowebauth details.

use serde::Deserialize;

use super::bounds::{self, DAY, MINUTE};

/// Sessions: bounded so that `now + lifetime` can never overflow, and no session outlives a
/// year.
const MAX_SESSION_IDLE: u64 = 30 * DAY;
const MAX_SESSION_LIFETIME: u64 = 365 * DAY;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Login providers: any of `basic`, `oidc`, `isowebauth`; at least one.
    pub providers: Vec<String>,
    /// A session unused this long ends.
    pub session_idle: String,
    /// A session ends this long after login, used or not.
    pub session_lifetime: String,
    pub throttle: ThrottleConfig,
    /// The console's address as browsers reach it (`https://host:port`): the only `Origin`
    /// accepted on state changes, and the base of the OIDC redirect (required with `oidc`).
    /// Default: the request's own `Host` (state changes only).
    pub public_url: Option<String>,
    /// Where admin accounts are looked up (a person's account on this host).
    pub passwd_file: String,
    /// The longest an API token made by a web user (with a session or a token) may last; such
    /// a token always expires, no later than this after it is made.
    pub api_token_max_lifetime: String,
    pub oidc: Option<OidcSettings>,
    pub isowebauth: IsowebauthSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failures per username and per source that cost nothing.
    pub free_failures: u32,
    /// The longest wait between attempts before the lockout.
    pub max_delay: String,
    /// Failures in a row that lock a username or source.
    pub lockout_after: u32,
    pub lockout: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The provider's issuer URL (https).
    pub issuer: String,
    pub client_id: String,
    /// A `secret:<key>` ref in the file (a literal is refused at load, see `secret_refs`);
    /// the resolved value once the server has resolved it.
    pub client_secret: crate::crypto::SecretString,
    /// PEM file of the CA to trust for the provider (default: the system's trust store).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Which ID token claim names the web user: `email`, `preferred_username` or `sub`.
    #[serde(default = "default_claim")]
    pub claim: String,
    /// Extra scopes besides `openid` (default `email profile`).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

fn default_claim() -> String {
    "email".into()
}

fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IsowebauthSettings {
    /// The `ssh-keygen -Y sign -n` namespace challenges are signed under.
    pub namespace: String,
    /// How long a challenge can be answered.
    pub challenge_ttl: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            providers: vec!["basic".into()],
            session_idle: "30m".into(),
            session_lifetime: "12h".into(),
            throttle: ThrottleConfig::default(),
            public_url: None,
            passwd_file: "/etc/passwd".into(),
            api_token_max_lifetime: "366d".into(),
            oidc: None,
            isowebauth: IsowebauthSettings::default(),
        }
    }
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig { free_failures: 3, max_delay: "60s".into(), lockout_after: 10, lockout: "15m".into() }
    }
}

impl Default for IsowebauthSettings {
    fn default() -> Self {
        IsowebauthSettings { namespace: "vigo-login".into(), challenge_ttl: "2m".into() }
    }
}

/// The providers this build knows.
pub const PROVIDERS: &[&str] = &["basic", "oidc", "isowebauth"];

impl AuthSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.providers.is_empty() {
            return Err(
                "auth.providers: at least one login provider must be on (basic, oidc, isowebauth)".into()
            );
        }
        if let Some(p) = self.providers.iter().find(|p| !PROVIDERS.contains(&p.as_str())) {
            return Err(format!("auth.providers: unknown provider {p:?}; use basic, oidc or isowebauth"));
        }
        if self.providers.iter().any(|p| p == "oidc") != self.oidc.is_some() {
            return Err("auth: the oidc provider and the auth.oidc section go together".into());
        }
        if let Some(o) = &self.oidc {
            // The OIDC redirect is built from this, never from a request's Host header, which
            // the client chooses: a forged Host would send the provider's code elsewhere.
            if self.public_url.is_none() {
                return Err("auth.public_url is required when the oidc provider is on: the OIDC redirect (<public_url>/auth/oidc/callback) is built from it; set it to the console's address as browsers reach it, e.g. https://vigo.example.com:8443".into());
            }
            if !o.issuer.starts_with("https://") {
                return Err("auth.oidc.issuer must be an https:// URL".into());
            }
            if !matches!(o.claim.as_str(), "email" | "preferred_username" | "sub") {
                return Err("auth.oidc.claim must be email, preferred_username or sub".into());
            }
        }
        if let Some(u) = &self.public_url {
            if !u.starts_with("https://") || u.trim_end_matches('/') != u {
                return Err("auth.public_url must be https://HOST[:PORT] with no path".into());
            }
        }
        let idle = self.session_idle_secs()?;
        let life = self.session_lifetime_secs()?;
        if life < idle {
            return Err("auth: session_lifetime must be at least session_idle".into());
        }
        bounds::absolute_path("auth.passwd_file", &self.passwd_file)?;
        bounds::namespace("auth.isowebauth.namespace", &self.isowebauth.namespace)?;
        self.throttle_settings().map(drop)?;
        self.api_token_max_lifetime_secs().map(drop)?;
        self.challenge_ttl_secs().map(drop)
    }

    pub fn api_token_max_lifetime_secs(&self) -> Result<i64, String> {
        bounds::duration("auth.api_token_max_lifetime", &self.api_token_max_lifetime, 3600, 3660 * DAY)
            .map(|s| s as i64)
    }

    pub fn enabled(&self, provider: &str) -> bool {
        self.providers.iter().any(|p| p == provider)
    }

    pub fn session_idle_secs(&self) -> Result<i64, String> {
        bounds::duration("auth.session_idle", &self.session_idle, MINUTE, MAX_SESSION_IDLE).map(|s| s as i64)
    }

    pub fn session_lifetime_secs(&self) -> Result<i64, String> {
        bounds::duration("auth.session_lifetime", &self.session_lifetime, MINUTE, MAX_SESSION_LIFETIME)
            .map(|s| s as i64)
    }

    pub fn challenge_ttl_secs(&self) -> Result<i64, String> {
        bounds::duration("auth.isowebauth.challenge_ttl", &self.isowebauth.challenge_ttl, 10, 15 * MINUTE)
            .map(|s| s as i64)
    }

    pub fn throttle_settings(&self) -> Result<crate::auth::throttle::ThrottleSettings, String> {
        let t = &self.throttle;
        let secs = |what: &str, v: &str, max: u64| {
            bounds::duration(&format!("auth.throttle.{what}"), v, 1, max).map(std::time::Duration::from_secs)
        };
        if t.lockout_after == 0 || t.free_failures >= t.lockout_after {
            return Err("auth.throttle: free_failures must be below lockout_after (at least 1)".into());
        }
        Ok(crate::auth::throttle::ThrottleSettings {
            free_failures: t.free_failures,
            max_delay: secs("max_delay", &t.max_delay, DAY)?,
            lockout_after: t.lockout_after,
            lockout: secs("lockout", &t.lockout, 7 * DAY)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensible_defaults_and_refusals() {
        let d = AuthSettings::default();
        d.check().unwrap();
        assert_eq!(d.session_idle_secs().unwrap(), 1800);
        let bad = |yaml: &str| serde_yaml::from_str::<AuthSettings>(yaml).unwrap().check().unwrap_err();
        assert!(bad("providers: []").contains("at least one"));
        assert!(bad("providers: [kerberos]").contains("unknown provider"));
        assert!(bad("providers: [oidc]").contains("go together"));
        let oidc = "providers: [oidc]\noidc: {issuer: https://id.test, client_id: v, client_secret: x}";
        let refused = bad(oidc);
        assert!(refused.contains("auth.public_url is required when the oidc provider is on"), "{refused}");
        let with_url = format!("{oidc}\npublic_url: https://vigo.test:8443");
        serde_yaml::from_str::<AuthSettings>(&with_url).unwrap().check().unwrap();
        assert!(bad("session_idle: 10s").contains("from 1m to 30d"));
        assert!(bad("throttle: {free_failures: 5, lockout_after: 5}").contains("below lockout_after"));
    }

    /// A session duration that would overflow `now + lifetime` at login is refused at load,
    /// with the range; so is one that is merely absurd.
    #[test]
    fn session_durations_are_bounded_at_load() {
        let bad = |yaml: &str| serde_yaml::from_str::<AuthSettings>(yaml).unwrap().check().unwrap_err();
        for huge in ["9223372036854775807s", "106751991167300d", "18446744073709551615s", "366d"] {
            let e = bad(&format!("session_lifetime: {huge}"));
            assert!(e.contains("auth.session_lifetime must be from 1m to 365d"), "{huge}: {e}");
            let e = bad(&format!("session_idle: {huge}\nsession_lifetime: 365d"));
            assert!(e.contains("auth.session_idle must be from 1m to 30d"), "{huge}: {e}");
        }
        assert!(bad("session_idle: 2h\nsession_lifetime: 1h").contains("at least session_idle"));
        assert!(bad("throttle: {lockout: 9999999999999s}")
            .contains("auth.throttle.lockout must be from 1s to 7d"));
        let ok: AuthSettings = serde_yaml::from_str("session_idle: 30d\nsession_lifetime: 365d").unwrap();
        ok.check().unwrap();
        let life = ok.session_lifetime_secs().unwrap();
        assert!(crate::util::time::unix_now().checked_add(life).is_some());
    }

    #[test]
    fn namespace_and_passwd_file_are_checked() {
        let bad = |yaml: &str| serde_yaml::from_str::<AuthSettings>(yaml).unwrap().check().unwrap_err();
        assert!(bad("passwd_file: etc/passwd").contains("auth.passwd_file must be an absolute path"));
        assert!(bad("passwd_file: \"/etc/pass\\nwd\"").contains("auth.passwd_file"));
        assert!(bad("passwd_file: /etc/../etc/passwd").contains(". or .."));
        assert!(bad("isowebauth: {namespace: \"\"}").contains("auth.isowebauth.namespace must be 1 to 64"));
        assert!(bad("isowebauth: {namespace: \"x; rm -rf ~\"}").contains("auth.isowebauth.namespace"));
        let long = format!("isowebauth: {{namespace: {}}}", "n".repeat(65));
        assert!(bad(&long).contains("auth.isowebauth.namespace"));
    }
}
