//! The OpenID Connect relying party, as a library: discovery, the provider's key set (cached,
//! refetched on an unknown `kid` at most once per interval), `begin` (authorization URL with
//! `state`, `nonce` and PKCE S256) and `finish` (state check, code exchange with
//! `client_secret_basic`, ID token verification by `jwt`). The server keeps a [`Pending`] per
//! login between the two, and maps the returned claims to a web user.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use url::Url;

use super::jwt::{self, Claims, Expected, Jwks, JwtError};
use crate::crypto::{self, SecretString};
use crate::util::https::{HttpError, HttpsClient, TrustRoots, DEFAULT_MAX_BODY};

const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Authorization codes are short; this bounds what a forged callback can make us send.
const MAX_CODE: usize = 2048;

/// How to reach and trust one provider, and this client's credentials there.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Exactly as the provider spells it in its discovery document and ID tokens.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub trust: TrustRoots,
    pub clock_skew: Duration,
    /// Deadline for each exchange with the provider (connect, TLS, request, answer).
    pub http_timeout: Duration,
    /// At most one key-set refetch per this interval, however many unknown `kid`s arrive.
    pub jwks_refetch_interval: Duration,
    /// How long a started login may take before `finish` refuses it.
    pub login_lifetime: Duration,
}

impl OidcSettings {
    /// Settings with the defaults: 60 s clock skew, 10 s HTTP deadline, key-set refetch at
    /// most once a minute, 10 minutes to log in.
    pub fn new(issuer: &str, client_id: &str, client_secret: SecretString, trust: TrustRoots) -> Self {
        OidcSettings {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            trust,
            clock_skew: jwt::DEFAULT_CLOCK_SKEW,
            http_timeout: Duration::from_secs(10),
            jwks_refetch_interval: Duration::from_secs(60),
            login_lifetime: Duration::from_secs(600),
        }
    }
}

/// Why a discovery or a login failed. Messages never carry a code, token, verifier or secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OidcError {
    #[error("OIDC settings: {0}")]
    Settings(String),
    #[error("the OpenID Provider: {0}")]
    Http(#[from] HttpError),
    #[error("the OpenID Provider's discovery document is unusable: {0}")]
    Discovery(String),
    #[error("the discovery document names another issuer than the configured one")]
    IssuerMismatch,
    #[error("the OpenID Provider's key set: {0}")]
    KeySet(JwtError),
    #[error("the login's state does not match (a stale, replayed or forged callback)")]
    StateMismatch,
    #[error("the login took too long; start again")]
    LoginExpired,
    #[error("the callback carries no usable authorization code")]
    BadCode,
    #[error("the token endpoint refused the code (HTTP {status}, {error})")]
    TokenRefused { status: u16, error: String },
    #[error("the token endpoint's answer is unusable: {0}")]
    TokenResponse(&'static str),
    #[error("{0}")]
    IdToken(JwtError),
    #[error("the system random generator failed")]
    Random,
}

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: Url,
    pub token: Url,
    pub jwks: Url,
}

/// What the server remembers about a login between `begin` and `finish` (in the pre-login
/// session). `pkce_verifier` is a secret: store it as such.
#[derive(Debug, Clone)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: SecretString,
    pub redirect_uri: String,
    pub created_at: SystemTime,
}

pub struct OidcClient {
    settings: OidcSettings,
    endpoints: Endpoints,
    http: HttpsClient,
    keys: Mutex<KeyCache>,
    fetches: AtomicU64,
}

struct KeyCache {
    jwks: Jwks,
    /// When an unknown `kid` last made us refetch.
    last_refetch: Option<Instant>,
}

impl KeyCache {
    fn may_refetch(&self, now: Instant, interval: Duration) -> bool {
        self.last_refetch.is_none_or(|t| now.duration_since(t) >= interval)
    }
}

impl OidcClient {
    /// Reads the provider's discovery document and key set.
    pub async fn discover(settings: OidcSettings) -> Result<OidcClient, OidcError> {
        let issuer = Url::parse(&settings.issuer)
            .map_err(|e| OidcError::Settings(format!("issuer is not a URL: {e}")))?;
        if issuer.scheme() != "https" || issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(OidcError::Settings(
                "issuer must be an https:// URL without query or fragment".into(),
            ));
        }
        if settings.client_id.is_empty() || settings.client_secret.is_empty() {
            return Err(OidcError::Settings("client id and client secret are required".into()));
        }
        let http = HttpsClient::new(&settings.trust, settings.http_timeout, DEFAULT_MAX_BODY)?;
        let url = Url::parse(&format!("{}{DISCOVERY_PATH}", settings.issuer.trim_end_matches('/')))
            .map_err(|e| OidcError::Settings(e.to_string()))?;
        let doc = json_object(http.get(&url).await?, OidcError::Discovery)?;
        if doc.get("issuer").and_then(Value::as_str) != Some(settings.issuer.as_str()) {
            return Err(OidcError::IssuerMismatch);
        }
        if let Some(methods) = doc.get("code_challenge_methods_supported").and_then(Value::as_array) {
            if !methods.iter().any(|m| m == "S256") {
                return Err(OidcError::Discovery("the provider does not offer PKCE with S256".into()));
            }
        }
        let endpoint = |name: &str| -> Result<Url, OidcError> {
            let text = doc
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| OidcError::Discovery(format!("no {name}")))?;
            let url = Url::parse(text).map_err(|_| OidcError::Discovery(format!("{name} is not a URL")))?;
            if url.scheme() != "https" {
                return Err(OidcError::Discovery(format!("{name} is not https")));
            }
            Ok(url)
        };
        let endpoints = Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            jwks: endpoint("jwks_uri")?,
        };
        let client = OidcClient {
            settings,
            endpoints,
            http,
            keys: Mutex::new(KeyCache { jwks: Jwks::default(), last_refetch: None }),
            fetches: AtomicU64::new(0),
        };
        let jwks = client.fetch_jwks().await?;
        client.lock_keys().jwks = jwks;
        Ok(client)
    }

    // Read by tests/oidc_flow.rs, which compiles this module by path.
    #[allow(dead_code)]
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    // Read by tests/oidc_flow.rs, which compiles this module by path.
    #[allow(dead_code)]
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// How many times the key set was fetched (discovery included).
    // Read by tests/oidc_flow.rs, which compiles this module by path.
    #[allow(dead_code)]
    pub fn jwks_fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Starts a login: the URL to send the browser to, and what `finish` needs later.
    /// `openid` is added to `scopes` when missing.
    pub fn begin(&self, redirect_uri: &str, scopes: &[&str]) -> Result<(String, Pending), OidcError> {
        let redirect =
            Url::parse(redirect_uri).map_err(|_| OidcError::Settings("redirect URI is not a URL".into()))?;
        if redirect.scheme() != "https" || redirect.fragment().is_some() {
            return Err(OidcError::Settings("redirect URI must be https:// without a fragment".into()));
        }
        let mut scope: Vec<&str> = vec!["openid"];
        scope.extend(scopes.iter().filter(|s| **s != "openid"));
        let random =
            || crypto::random_bytes(32).map(|b| crypto::b64_encode(&b)).map_err(|_| OidcError::Random);
        let pending = Pending {
            state: random()?,
            nonce: random()?,
            pkce_verifier: SecretString::new(random()?),
            redirect_uri: redirect_uri.to_string(),
            created_at: SystemTime::now(),
        };
        let challenge = crypto::b64_encode(&crypto::sha256(pending.pkce_verifier.expose().as_bytes()));
        let mut url = self.endpoints.authorization.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scope.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok((url.into(), pending))
    }

    /// Completes a login from the callback's `code` and `state`. The state and the login's age
    /// are checked before anything is sent to the provider.
    pub async fn finish(
        &self,
        code: &str,
        returned_state: &str,
        pending: &Pending,
    ) -> Result<Claims, OidcError> {
        let age = SystemTime::now().duration_since(pending.created_at).unwrap_or(Duration::MAX);
        if age > self.settings.login_lifetime {
            return Err(OidcError::LoginExpired);
        }
        if !crypto::ct_eq(returned_state.as_bytes(), pending.state.as_bytes()) {
            return Err(OidcError::StateMismatch);
        }
        if code.is_empty() || code.len() > MAX_CODE || !code.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(OidcError::BadCode);
        }
        let id_token = self.exchange(code, pending).await?;
        let expected = Expected {
            issuer: &self.settings.issuer,
            client_id: &self.settings.client_id,
            nonce: &pending.nonce,
            now: SystemTime::now(),
            clock_skew: self.settings.clock_skew,
        };
        let jwks = self.lock_keys().jwks.clone();
        match jwt::verify_id_token(id_token.expose(), &jwks, &expected) {
            Err(JwtError::UnknownKey) if self.claim_refetch() => {
                // The provider may have rotated its keys since we last looked.
                let fresh = self.fetch_jwks().await?;
                self.lock_keys().jwks = fresh.clone();
                jwt::verify_id_token(id_token.expose(), &fresh, &expected).map_err(OidcError::IdToken)
            }
            other => other.map_err(OidcError::IdToken),
        }
    }

    /// The code exchange; returns the ID token (a credential: kept as a secret).
    async fn exchange(&self, code: &str, pending: &Pending) -> Result<SecretString, OidcError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.pkce_verifier.expose()),
        ];
        let resp = self
            .http
            .post_form(&self.endpoints.token, (&self.settings.client_id, &self.settings.client_secret), &form)
            .await?;
        let status = resp.status;
        let body: Option<serde_json::Map<String, Value>> = serde_json::from_slice(&resp.body).ok();
        if status != 200 {
            let error = body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str).map(oauth_code);
            return Err(OidcError::TokenRefused {
                status,
                error: error.unwrap_or_else(|| "no error code".into()),
            });
        }
        let body = body.ok_or(OidcError::TokenResponse("not a JSON object"))?;
        if let Some(kind) = body.get("token_type").and_then(Value::as_str) {
            if !kind.eq_ignore_ascii_case("bearer") {
                return Err(OidcError::TokenResponse("token_type is not Bearer"));
            }
        }
        let token =
            body.get("id_token").and_then(Value::as_str).ok_or(OidcError::TokenResponse("no id_token"))?;
        Ok(SecretString::new(token.to_string()))
    }

    /// Claims the right to refetch the key set now, if the interval allows.
    fn claim_refetch(&self) -> bool {
        let mut keys = self.lock_keys();
        let now = Instant::now();
        if !keys.may_refetch(now, self.settings.jwks_refetch_interval) {
            return false;
        }
        keys.last_refetch = Some(now);
        true
    }

    async fn fetch_jwks(&self) -> Result<Jwks, OidcError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let resp = self.http.get(&self.endpoints.jwks).await?;
        if resp.status != 200 {
            return Err(OidcError::KeySet(JwtError::Jwks("the key set URL did not answer 200")));
        }
        let jwks = Jwks::from_json(&resp.body).map_err(OidcError::KeySet)?;
        if jwks.is_empty() {
            return Err(OidcError::KeySet(JwtError::Jwks("no RS256, ES256 or EdDSA signing key")));
        }
        Ok(jwks)
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        // A panic elsewhere while holding the lock leaves a usable cache: take it anyway.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn json_object(
    resp: crate::util::https::Response,
    err: fn(String) -> OidcError,
) -> Result<serde_json::Map<String, Value>, OidcError> {
    if resp.status != 200 {
        return Err(err(format!("HTTP {}", resp.status)));
    }
    serde_json::from_slice(&resp.body).map_err(|_| err("not a JSON object".into()))
}

/// An OAuth error code from the provider, safe to log: RFC 6749's character set, capped.
fn oauth_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_set_refetches_are_rate_limited() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(60);
        let mut cache = KeyCache { jwks: Jwks::default(), last_refetch: None };
        assert!(cache.may_refetch(t0, interval));
        cache.last_refetch = Some(t0);
        assert!(!cache.may_refetch(t0 + Duration::from_secs(59), interval));
        assert!(cache.may_refetch(t0 + interval, interval));
    }

    #[test]
    fn provider_error_codes_are_reduced_to_a_safe_token() {
        assert_eq!(oauth_code("invalid_grant"), "invalid_grant");
        assert_eq!(oauth_code("bad\n<script>x"), "badscriptx");
        assert_eq!(oauth_code(&"a".repeat(500)).len(), 64);
    }
}
