//! Console sessions as the browser holds them: a 256-bit random id in a `__Host-` cookie
//! (Secure, HttpOnly, SameSite=Strict, Path=/), of which the server stores only the SHA-256,
//! and a CSRF token derived from the id, so that a form can prove it came from a page of the
//! session without the server storing anything more.

use crate::crypto;

pub const COOKIE: &str = "__Host-vigo_session";

/// A fresh session id (base64url of 32 random bytes) and the hash the database keeps.
pub fn new_id() -> Result<(crypto::SecretString, [u8; 32]), crypto::CryptoError> {
    let id = crypto::b64_encode(&crypto::random_bytes(32)?);
    let hash = crypto::sha256(id.as_bytes());
    Ok((crypto::SecretString::new(id), hash))
}

pub fn id_hash(id: &str) -> [u8; 32] {
    crypto::sha256(id.as_bytes())
}

/// The session's CSRF token: HMAC-SHA256 keyed by the session id over a fixed label. It reveals
/// nothing about the id, and every page of the session can embed it.
pub fn csrf_token(session_id: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, session_id.as_bytes());
    crypto::b64_encode(ring::hmac::sign(&key, b"vigo-csrf-v1").as_ref())
}

pub fn csrf_matches(session_id: &str, given: &str) -> bool {
    crypto::ct_eq(csrf_token(session_id).as_bytes(), given.as_bytes())
}

/// The `Set-Cookie` value that installs a session for `max_age` seconds.
pub fn set_cookie(id: &str, max_age: i64) -> String {
    format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session id from a `Cookie` header, if there is one.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes_and_parsing() {
        let (id, hash) = new_id().unwrap();
        assert_eq!(id.expose().len(), 43);
        assert_eq!(hash, id_hash(id.expose()));
        let c = set_cookie(id.expose(), 3600);
        for attr in ["__Host-vigo_session=", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(!c.contains("Domain"), "a __Host- cookie has no Domain");
        let header = format!("theme=dark; {COOKIE}={}; other=1", id.expose());
        assert_eq!(from_cookie_header(&header), Some(id.expose()));
        assert_eq!(from_cookie_header("theme=dark"), None);
        assert_eq!(from_cookie_header(&format!("{COOKIE}=")), None);
    }

    #[test]
    fn csrf_token_is_per_session_and_checked_in_constant_time() {
        let a = csrf_token("session-a");
        assert_ne!(a, csrf_token("session-b"));
        assert!(csrf_matches("session-a", &a));
        assert!(!csrf_matches("session-b", &a));
        assert!(!csrf_matches("session-a", ""));
        assert!(!a.contains("session-a"));
    }
}
