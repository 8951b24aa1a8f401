//! OpenID Connect ID token verification (JWS compact form) against the provider's JWKS.
//!
//! Why not the `jsonwebtoken` crate: 9.3 is the last line backed by ring; 10 and later need
//! aws-lc-rs (banned here) or RustCrypto's `rsa` (RUSTSEC-2023-0071), or a hand-written
//! provider. And the checks that matter for an ID token — the algorithm allow-list that refuses
//! `none` and HMAC whatever the key set holds, `kid` selection, `azp`, `nonce`, `iat`, and a clock
//! the tests can set — would be ours either way. What is left (base64url, JSON, a JWK's
//! parts) is small, and the signature is checked by ring through `crate::crypto`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::crypto::{self, PublicKeyParts, SignatureScheme};

/// The verified claims of an ID token.
pub type Claims = Map<String, Value>;

/// How far the provider's clock may be from ours.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Real ID tokens are 1–2 KiB; this bounds the work done on a hostile one.
const MAX_TOKEN: usize = 16 * 1024;
/// Providers publish a handful of keys; more is a key set to refuse, not to search.
const MAX_KEYS: usize = 64;

/// Why an ID token (or a key set) was refused. Messages never quote the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the ID token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the ID token is too large")]
    TooLarge,
    #[error("the ID token is unsigned (alg none), which is never accepted")]
    AlgNone,
    #[error("the ID token is signed with a shared-secret (HMAC) algorithm, which is never accepted")]
    Hmac,
    #[error("unsupported ID token algorithm {0:?} (RS256, ES256 or EdDSA only)")]
    Algorithm(String),
    #[error("the ID token has critical header extensions this client does not understand")]
    Critical,
    #[error("the provider's key set has no key with the ID token's key id")]
    UnknownKey,
    #[error("the provider's key set has several keys and the ID token names none of them")]
    AmbiguousKey,
    #[error("the key the ID token names is not a key for its algorithm")]
    KeyMismatch,
    #[error("the ID token's signature does not verify")]
    BadSignature,
    #[error("the ID token was issued by another issuer")]
    Issuer,
    #[error("the ID token is not meant for this client (aud)")]
    Audience,
    #[error("the ID token was issued to another party (azp)")]
    AuthorizedParty,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet (nbf); check both clocks")]
    NotYetValid,
    #[error("the ID token says it was issued in the future (iat); check both clocks")]
    IssuedInFuture,
    #[error("the ID token lacks a valid {0} claim")]
    MissingClaim(&'static str),
    #[error("the ID token's nonce does not belong to this login")]
    Nonce,
    #[error("the provider's key set is unusable: {0}")]
    Jwks(&'static str),
}

/// The provider's signing keys, as far as they are usable here.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    /// The key's own `alg`, when the provider pins one.
    alg: Option<String>,
    key: PublicKeyParts,
}

/// The members of a JWK that matter here; a provider's others (x5c, key_ops…) are ignored,
/// as RFC 7517 asks.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl Jwks {
    /// Parses a JWK Set document. Keys that cannot verify an RS256/ES256/EdDSA signature
    /// (symmetric `oct` keys, encryption keys, unknown types) are left out, never an error.
    pub fn from_json(bytes: &[u8]) -> Result<Jwks, JwtError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|_| JwtError::Jwks("not JSON"))?;
        let keys = doc.get("keys").and_then(Value::as_array).ok_or(JwtError::Jwks("no \"keys\" array"))?;
        if keys.len() > MAX_KEYS {
            return Err(JwtError::Jwks("more than 64 keys"));
        }
        let keys = keys
            .iter()
            .filter_map(|k| RawJwk::deserialize(k).ok())
            .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let key = key_parts(&k)?;
                Some(Jwk { kid: k.kid, alg: k.alg, key })
            })
            .collect();
        Ok(Jwks { keys })
    }

    // Read by tests (unit tests, and tests/oidc_flow.rs, which compiles this module by path).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn key_parts(k: &RawJwk) -> Option<PublicKeyParts> {
    let part = |v: &Option<String>| v.as_deref().and_then(|s| crypto::b64_decode(s).ok());
    match (k.kty.as_str(), k.crv.as_deref()) {
        ("RSA", _) => {
            let (n, e) = (part(&k.n)?, part(&k.e)?);
            // ring wants minimal big-endian integers.
            let trim = |v: Vec<u8>| v.iter().position(|&b| b != 0).map(|i| v[i..].to_vec());
            Some(PublicKeyParts::Rsa { n: trim(n)?, e: trim(e)? })
        }
        ("EC", Some("P-256")) => {
            let (x, y) = (part(&k.x)?, part(&k.y)?);
            (x.len() == 32 && y.len() == 32).then(|| PublicKeyParts::EcdsaP256([&[4u8][..], &x, &y].concat()))
        }
        ("OKP", Some("Ed25519")) => part(&k.x).filter(|x| x.len() == 32).map(PublicKeyParts::Ed25519),
        _ => None,
    }
}

/// What this login expects of its ID token.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: SystemTime,
    pub clock_skew: Duration,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Verifies `token` and returns its claims: signature (RS256, ES256, EdDSA) by a key of `jwks`,
/// then `iss`, `aud`/`azp`, `exp`, `iat`, `nbf` and `nonce`.
pub fn verify_id_token(token: &str, jwks: &Jwks, expected: &Expected) -> Result<Claims, JwtError> {
    if token.len() > MAX_TOKEN {
        return Err(JwtError::TooLarge);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, sig_b64] = parts[..] else {
        return Err(JwtError::Malformed(if parts.len() == 5 {
            "it is encrypted (JWE), which this client does not accept"
        } else {
            "it is not three dot-separated parts"
        }));
    };
    let header: Header = decode_json(header_b64, "header")?;
    let scheme = scheme_for(&header.alg)?;
    if header.crit.is_some() {
        return Err(JwtError::Critical);
    }
    let key = select_key(jwks, header.kid.as_deref(), &header.alg, scheme)?;
    let sig = crypto::b64_decode(sig_b64).map_err(|_| JwtError::Malformed("signature is not base64url"))?;
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    crypto::verify_signature(key, scheme, signed.as_bytes(), &sig).map_err(|_| JwtError::BadSignature)?;
    let claims: Claims = decode_json(payload_b64, "payload")?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str, what: &'static str) -> Result<T, JwtError> {
    let bytes = crypto::b64_decode(part).map_err(|_| {
        JwtError::Malformed(if what == "header" {
            "header is not base64url"
        } else {
            "payload is not base64url"
        })
    })?;
    serde_json::from_slice(&bytes).map_err(|_| {
        JwtError::Malformed(if what == "header" {
            "header is not a JSON object"
        } else {
            "payload is not a JSON object"
        })
    })
}

/// The allow-list, decided by the token's header before any key is looked at.
fn scheme_for(alg: &str) -> Result<SignatureScheme, JwtError> {
    match alg {
        "RS256" => Ok(SignatureScheme::RsaPkcs1Sha256),
        "ES256" => Ok(SignatureScheme::EcdsaP256Sha256),
        // RFC 9864 names the Ed25519 variant of EdDSA "Ed25519".
        "EdDSA" | "Ed25519" => Ok(SignatureScheme::Ed25519),
        a if a.eq_ignore_ascii_case("none") => Err(JwtError::AlgNone),
        a if a.len() >= 2 && a[..2].eq_ignore_ascii_case("HS") => Err(JwtError::Hmac),
        a => Err(JwtError::Algorithm(a.chars().take(16).filter(char::is_ascii_graphic).collect())),
    }
}

/// The key the header names (or the only key fit for its algorithm, when it names none).
fn select_key<'a>(
    jwks: &'a Jwks,
    kid: Option<&str>,
    alg: &str,
    scheme: SignatureScheme,
) -> Result<&'a PublicKeyParts, JwtError> {
    let fits = |k: &&Jwk| scheme.fits(&k.key) && k.alg.as_deref().is_none_or(|a| a == alg);
    match kid {
        Some(kid) => {
            let named: Vec<&Jwk> = jwks.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect();
            if named.is_empty() {
                return Err(JwtError::UnknownKey);
            }
            named.into_iter().find(fits).map(|k| &k.key).ok_or(JwtError::KeyMismatch)
        }
        None => {
            let fit: Vec<&Jwk> = jwks.keys.iter().filter(fits).collect();
            match fit[..] {
                [one] => Ok(&one.key),
                [] => Err(JwtError::UnknownKey),
                _ => Err(JwtError::AmbiguousKey),
            }
        }
    }
}

fn check_claims(claims: &Claims, expected: &Expected) -> Result<(), JwtError> {
    let text =
        |name: &'static str| claims.get(name).and_then(Value::as_str).ok_or(JwtError::MissingClaim(name));
    if text("iss")? != expected.issuer {
        return Err(JwtError::Issuer);
    }
    if text("sub")?.is_empty() {
        return Err(JwtError::MissingClaim("sub"));
    }
    check_audience(claims, expected.client_id)?;

    let now = expected.now.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let skew = expected.clock_skew.as_secs() as i64;
    let time = |name: &'static str| -> Result<Option<i64>, JwtError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| Some(f as i64))
                .ok_or(JwtError::MissingClaim(name)),
        }
    };
    let exp = time("exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    if now >= exp.saturating_add(skew) {
        return Err(JwtError::Expired);
    }
    let iat = time("iat")?.ok_or(JwtError::MissingClaim("iat"))?;
    if iat > now.saturating_add(skew) {
        return Err(JwtError::IssuedInFuture);
    }
    if let Some(nbf) = time("nbf")? {
        if nbf > now.saturating_add(skew) {
            return Err(JwtError::NotYetValid);
        }
    }
    let nonce = text("nonce")?;
    if !crypto::ct_eq(nonce.as_bytes(), expected.nonce.as_bytes()) {
        return Err(JwtError::Nonce);
    }
    Ok(())
}

/// `aud` must hold this client; with several audiences `azp` must name it (OpenID Connect
/// Core 3.1.3.7), and an `azp` naming another party is refused in any case.
fn check_audience(claims: &Claims, client_id: &str) -> Result<(), JwtError> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => {
            list.iter().map(|v| v.as_str().ok_or(JwtError::MissingClaim("aud"))).collect::<Result<_, _>>()?
        }
        _ => return Err(JwtError::MissingClaim("aud")),
    };
    if !audiences.contains(&client_id) {
        return Err(JwtError::Audience);
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == client_id => Ok(()),
        Some(_) => Err(JwtError::AuthorizedParty),
        None if audiences.len() > 1 => Err(JwtError::AuthorizedParty),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
