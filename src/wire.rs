//! Formats both ends of the agent wire must agree on: the signed-request message, the
//! enrollment token, the AAD of sealed secret answers, and envoy name rules.

use crate::crypto;
use crate::util::text::{check_visible, excerpt};

/// gRPC method names as they appear in signed messages.
/// Named in the server's refusal of a report over its size limit: the agent tells that refusal,
/// which a retry meets again, from the hourly budget's, which passes (both RESOURCE_EXHAUSTED).
pub const REPORT_SIZE_SETTING: &str = "runs.max_report_bytes";

pub const METHOD_CHECK_IN: &str = "CheckIn";
pub const METHOD_RESOLVE: &str = "ResolveSecrets";
pub const METHOD_REPORT: &str = "ReportRun";
pub const METHOD_RENEW: &str = "RenewCertificate";
pub const METHOD_FETCH_RELEASE: &str = "FetchRelease";
pub const METHOD_WATCH: &str = "Watch";

/// How far a request's timestamp may be from the server's clock.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

const SIGNING_DOMAIN: &[u8] = b"vigo-request-v1";

/// The exact bytes an agent signs: domain, method, envoy id, time, sequence, payload hash.
pub fn signing_message(
    method: &str,
    envoy_id: &str,
    timestamp_ms: i64,
    sequence: u64,
    payload: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_DOMAIN.len() + method.len() + envoy_id.len() + 3 + 16 + 32);
    m.extend_from_slice(SIGNING_DOMAIN);
    m.push(0);
    m.extend_from_slice(method.as_bytes());
    m.push(0);
    m.extend_from_slice(envoy_id.as_bytes());
    m.push(0);
    m.extend_from_slice(&timestamp_ms.to_be_bytes());
    m.extend_from_slice(&sequence.to_be_bytes());
    m.extend_from_slice(&crypto::sha256(payload));
    m
}

const NUDGE_DOMAIN: &[u8] = b"vigo-nudge-v1";

/// The exact bytes the server signs in a nudge (see `Nudge` in agent.proto): bound to one
/// envoy, so a nudge cannot be replayed to another.
pub fn nudge_message(
    envoy_id: &str,
    reason: &str,
    timestamp_ms: i64,
    sequence: u64,
    spread_ms: u32,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(NUDGE_DOMAIN.len() + envoy_id.len() + reason.len() + 3 + 20);
    m.extend_from_slice(NUDGE_DOMAIN);
    m.push(0);
    m.extend_from_slice(envoy_id.as_bytes());
    m.push(0);
    m.extend_from_slice(reason.as_bytes());
    m.push(0);
    m.extend_from_slice(&timestamp_ms.to_be_bytes());
    m.extend_from_slice(&sequence.to_be_bytes());
    m.extend_from_slice(&spread_ms.to_be_bytes());
    m
}

/// Associated data binding a sealed ResolveSecrets answer to the request it answers.
pub fn resolve_aad(envoy_id: &str, sequence: u64) -> Vec<u8> {
    let mut aad = b"vigo-resolve-v1\0".to_vec();
    aad.extend_from_slice(envoy_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&sequence.to_be_bytes());
    aad
}

const TOKEN_PREFIX: &str = "vgoe1";

/// An enrollment token: a 256-bit secret (only its SHA-256 is stored) plus the CA pin, so
/// `vigo-agent enroll` can authenticate the server with nothing else on disk.
#[derive(Debug)]
pub struct EnrollToken {
    pub secret: String,
    pub ca_pin: [u8; 32],
}

impl EnrollToken {
    pub fn mint(ca_pin: [u8; 32]) -> Result<Self, crypto::CryptoError> {
        Ok(EnrollToken { secret: crypto::b64_encode(&crypto::random_bytes(32)?), ca_pin })
    }

    pub fn encode(&self) -> String {
        format!("{TOKEN_PREFIX}.{}.{}", self.secret, crypto::hex_encode(&self.ca_pin))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            "malformed enrollment token: expected the whole line printed by `vigocli tokens create`"
                .to_string()
        };
        let mut parts = text.trim().split('.');
        if parts.next() != Some(TOKEN_PREFIX) {
            return Err(bad());
        }
        let secret = parts.next().ok_or_else(bad)?;
        let pin_hex = parts.next().ok_or_else(bad)?;
        if parts.next().is_some() || crypto::b64_decode(secret).map(|b| b.len()).ok() != Some(32) {
            return Err(bad());
        }
        let pin: [u8; 32] =
            crypto::hex_decode(pin_hex).ok().and_then(|p| p.try_into().ok()).ok_or_else(bad)?;
        Ok(EnrollToken { secret: secret.to_string(), ca_pin: pin })
    }

    /// What the server stores and looks up: SHA-256 of the secret part.
    pub fn secret_hash(secret: &str) -> [u8; 32] {
        crypto::sha256(secret.as_bytes())
    }
}

/// Envoy names: 1-253 characters of `[A-Za-z0-9._-]`, starting with a letter or digit, and
/// not shaped like an envoy id (a decoy named after another envoy's id would catch the
/// `envoys revoke <id>` meant for that envoy).
pub fn validate_envoy_name(name: &str) -> Result<(), String> {
    validate_name("envoy name", name)?;
    if looks_like_envoy_id(name) {
        return Err(format!(
            "invalid envoy name {name:?}: it has the shape of an envoy id (a UUID); pick a name that does not"
        ));
    }
    Ok(())
}

/// Whether `s` has the shape of an envoy id: a UUID, 8-4-4-4-12 hex digits.
pub fn looks_like_envoy_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The name grammar envoys and API tokens share; `what` names the thing in the error. A name
/// is printed in reports and lists, so the error never echoes it raw: a control or invisible
/// character is named by its code point, and the rest is quoted short and escaped.
pub fn validate_name(what: &str, name: &str) -> Result<(), String> {
    let rule = "use 1-253 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit";
    if let Err(msg) = check_visible(what, name) {
        return Err(format!("invalid {msg}; {rule}"));
    }
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid {what} \"{}\": {rule}", excerpt(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::text::is_hidden;

    #[test]
    fn token_round_trip_and_rejections() {
        let t = EnrollToken::mint([7u8; 32]).unwrap();
        let parsed = EnrollToken::parse(&format!("  {}\n", t.encode())).unwrap();
        assert_eq!(parsed.secret, t.secret);
        assert_eq!(parsed.ca_pin, [7u8; 32]);
        for bad in ["", "vgoe1", "vgoe1.abc.00", "other.x.y", &format!("{}.extra", t.encode())] {
            assert!(EnrollToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signing_message_binds_every_field() {
        let base = signing_message("CheckIn", "e1", 5, 6, b"p");
        assert_ne!(base, signing_message("ReportRun", "e1", 5, 6, b"p"));
        assert_ne!(base, signing_message("CheckIn", "e2", 5, 6, b"p"));
        assert_ne!(base, signing_message("CheckIn", "e1", 4, 6, b"p"));
        assert_ne!(base, signing_message("CheckIn", "e1", 5, 7, b"p"));
        assert_ne!(base, signing_message("CheckIn", "e1", 5, 6, b"q"));
    }

    #[test]
    fn envoy_names() {
        assert!(validate_envoy_name("web-1.example.com").is_ok());
        for bad in ["", "-x", "a b", "a/b", &"a".repeat(254), "0a1b2c3d-0000-4000-8000-00000000abcd"] {
            assert!(validate_envoy_name(bad).is_err(), "{bad}");
        }
        assert!(looks_like_envoy_id(&crate::crypto::uuid_v4().unwrap()));
        assert!(!looks_like_envoy_id("0a1b2c3d-0000-4000-8000-00000000abc"));
    }

    /// Names show in `envoys list`, run reports and audit rows: a hidden character in one could
    /// fake or hide a line. The error names the code point and never carries it.
    #[test]
    fn names_with_control_or_invisible_characters_are_refused_without_echoing_them() {
        for (name, code) in [
            ("web1\u{202e}gpj.exe", "U+202E"),
            ("web\u{200b}1", "U+200B"),
            ("\u{feff}web1", "U+FEFF"),
            ("web1\nenvoy web2 revoked", "U+000A"),
            ("web1\t", "U+0009"),
            ("web1\u{1b}[2K", "U+001B"),
            ("web\u{85}1", "U+0085"),
            ("web\u{2066}1\u{2069}", "U+2066"),
        ] {
            for check in [validate_envoy_name(name), validate_name("token name", name)] {
                let e = check.unwrap_err();
                assert!(e.contains(code), "{name:?}: {e}");
                assert!(e.starts_with("invalid "), "{e}");
                assert!(!e.chars().any(is_hidden), "the error echoes a hidden character: {e:?}");
            }
        }
        assert!(validate_name("token name", "ci-deploy_2").is_ok());
        // A long name is quoted short.
        let e = validate_envoy_name(&format!("{}!", "a".repeat(10_000))).unwrap_err();
        assert!(e.len() < 300, "{}", e.len());
    }
}
