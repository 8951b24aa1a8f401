//! The isopass HTTP API as its public client uses it:
//! - `POST /api/auth/token` with the long-lived bearer token answers `{token, expires_at}`, a
//!   short-lived token (`expires_at` as RFC 3339 text or Unix seconds);
//! - `POST /api/client/search` with `{"names": [...]}` and the short-lived token answers the
//!   entries `{id, name, type, organization_id, organization, tags, scopes, value}`, as a list
//!   or as `{"entries": [...]}`. A value is a string, or an object of string fields for the
//!   structured types (`username_password`, `key_value_pair`, `tls_bundle`).
//!
//! The short-lived token is kept until shortly before it expires and exchanged again once when
//! a search answers 401. No answer body is ever put in an error.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroize;

use crate::crypto::{SecretBytes, SecretString};
use crate::util::https::{HttpError, HttpsClient, TrustRoots};

/// A search answer holds every requested value; a few MiB is far beyond any real fleet's.
const MAX_ANSWER: usize = 8 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(15);
/// A token this close to its expiry is exchanged again before use.
const EXPIRY_MARGIN_SECS: i64 = 30;

/// One entry's value: text, or named fields of a structured entry.
/// Debug shows the shape only: the values are `SecretBytes`.
#[derive(Clone, Debug)]
pub enum EntryValue {
    Text(SecretBytes),
    Fields(BTreeMap<String, SecretBytes>),
}

#[derive(Debug, thiserror::Error)]
pub enum IsopassError {
    #[error("isopass: {0}")]
    Http(#[from] HttpError),
    #[error("isopass refused the bearer token in {token_file} (HTTP {status}); put a valid token there and restart, or fix it in isopass")]
    TokenRefused { token_file: String, status: u16 },
    #[error("isopass refused the short-lived token twice in a row (HTTP 401)")]
    SearchRefused,
    #[error("isopass answered HTTP {status} to {what}")]
    Status { what: &'static str, status: u16 },
    #[error("isopass sent an answer to {what} that is not what its API documents: {reason}")]
    Malformed { what: &'static str, reason: String },
}

pub struct IsopassApi {
    base: url::Url,
    http: HttpsClient,
    bearer: SecretString,
    token_file: String,
    session: Option<(SecretString, i64)>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: SecretString,
    expires_at: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SearchAnswer {
    List(Vec<RawEntry>),
    Wrapped { entries: Vec<RawEntry> },
}

/// The fields Vigo reads; the others (`id`, `tags`, `scopes`…) are accepted and ignored.
#[derive(Deserialize)]
struct RawEntry {
    name: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    value: serde_json::Value,
}

impl IsopassApi {
    pub fn new(
        url: &str,
        trust: &TrustRoots,
        bearer: SecretString,
        token_file: &str,
    ) -> Result<Self, IsopassError> {
        let base = url::Url::parse(&format!("{}/", url.trim_end_matches('/')))
            .map_err(|e| HttpError::Url(format!("secrets.url: {e}")))?;
        let http = HttpsClient::new(trust, TIMEOUT, MAX_ANSWER)?;
        Ok(IsopassApi { base, http, bearer, token_file: token_file.to_string(), session: None })
    }

    /// The values of the entries named `names` (those isopass has; absent ones are missing
    /// from the map).
    pub async fn search(&mut self, names: &[String]) -> Result<BTreeMap<String, EntryValue>, IsopassError> {
        let body = serde_json::json!({ "names": names });
        let url = self.endpoint("api/client/search")?;
        let mut retried = false;
        loop {
            let token = self.session_token().await?;
            let mut answer = self.http.post_json(&url, &token, &body).await?;
            match answer.status {
                200 => {
                    let entries = parse_search(&answer.body, names);
                    answer.body.zeroize();
                    return entries;
                }
                401 if !retried => {
                    // Revoked or expired early: one fresh exchange, then give up.
                    self.session = None;
                    retried = true;
                }
                401 => return Err(IsopassError::SearchRefused),
                status => return Err(IsopassError::Status { what: "a search", status }),
            }
        }
    }

    /// Checks the bearer token by exchanging it (for `doctor` and the first start).
    pub async fn check_token(&mut self) -> Result<(), IsopassError> {
        self.session = None;
        self.session_token().await.map(drop)
    }

    async fn session_token(&mut self) -> Result<SecretString, IsopassError> {
        let now = crate::util::time::unix_now();
        if let Some((token, expires)) = &self.session {
            if *expires - EXPIRY_MARGIN_SECS > now {
                return Ok(token.clone());
            }
        }
        let url = self.endpoint("api/auth/token")?;
        let mut answer = self.http.post_json(&url, &self.bearer, &serde_json::json!({})).await?;
        match answer.status {
            200 | 201 => {}
            401 | 403 => {
                return Err(IsopassError::TokenRefused {
                    token_file: self.token_file.clone(),
                    status: answer.status,
                })
            }
            status => return Err(IsopassError::Status { what: "the token exchange", status }),
        }
        let parsed: Result<TokenAnswer, _> = serde_json::from_slice(&answer.body);
        answer.body.zeroize();
        let parsed = parsed.map_err(|e| malformed("the token exchange", e))?;
        let expires = parse_expiry(&parsed.expires_at).ok_or_else(|| IsopassError::Malformed {
            what: "the token exchange",
            reason: "expires_at is neither RFC 3339 text nor Unix seconds".into(),
        })?;
        if parsed.token.is_empty() {
            return Err(malformed("the token exchange", "an empty token"));
        }
        self.session = Some((parsed.token.clone(), expires));
        Ok(parsed.token)
    }

    fn endpoint(&self, path: &str) -> Result<url::Url, IsopassError> {
        self.base.join(path).map_err(|e| IsopassError::Http(HttpError::Url(e.to_string())))
    }
}

fn malformed(what: &'static str, reason: impl std::fmt::Display) -> IsopassError {
    IsopassError::Malformed { what, reason: reason.to_string() }
}

fn parse_expiry(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
            Some(t.unix_timestamp())
        }
        _ => None,
    }
}

/// The requested entries of a search answer. An entry named twice is an error: which of the
/// two values a config would get could change from one poll to the next.
fn parse_search(body: &[u8], names: &[String]) -> Result<BTreeMap<String, EntryValue>, IsopassError> {
    let what = "a search";
    let answer: SearchAnswer =
        serde_json::from_slice(body).map_err(|e| malformed(what, e.classify_text()))?;
    let entries = match answer {
        SearchAnswer::List(e) | SearchAnswer::Wrapped { entries: e } => e,
    };
    let mut out = BTreeMap::new();
    for mut entry in entries {
        if !names.contains(&entry.name) {
            wipe(&mut entry.value);
            continue;
        }
        let value = entry_value(&mut entry.value).map_err(|reason| {
            malformed(
                what,
                format!("entry {:?} ({}): {reason}", entry.name, entry.kind.as_deref().unwrap_or("untyped")),
            )
        });
        wipe(&mut entry.value);
        if out.insert(entry.name.clone(), value?).is_some() {
            return Err(malformed(what, format!("entry {:?} appears twice", entry.name)));
        }
    }
    Ok(out)
}

fn entry_value(v: &mut serde_json::Value) -> Result<EntryValue, &'static str> {
    let bytes = |s: &str| SecretBytes::new(s.as_bytes().to_vec());
    match v {
        serde_json::Value::String(s) => Ok(EntryValue::Text(bytes(s))),
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(s) => Ok((name.clone(), bytes(s))),
                serde_json::Value::Null => Ok((name.clone(), SecretBytes::new(Vec::new()))),
                _ => Err("a structured value's fields must be strings"),
            })
            .collect::<Result<_, _>>()
            .map(EntryValue::Fields),
        _ => Err("a value must be a string or an object of strings"),
    }
}

/// Overwrites every string of a parsed answer before it is freed.
fn wipe(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        serde_json::Value::Object(m) => m.values_mut().for_each(wipe),
        _ => {}
    }
}

/// serde_json's message for a syntax error names a position, never the text at it.
trait ClassifyText {
    fn classify_text(&self) -> String;
}

impl ClassifyText for serde_json::Error {
    fn classify_text(&self) -> String {
        match self.classify() {
            serde_json::error::Category::Data => "entries of the wrong shape".into(),
            _ => format!("not JSON (line {}, column {})", self.line(), self.column()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_in_both_shapes_with_text_and_structured_values() {
        let body = br#"[{"id":"1","name":"vigo/db","type":"username_password","organization_id":"o","organization":"Ops","tags":[],"scopes":["read"],"value":{"username":"app","password":"pw-1"}},
                        {"id":"2","name":"vigo/api","type":"secret","value":"tok"},
                        {"id":"3","name":"other","type":"secret","value":"not asked for"}]"#;
        let got = parse_search(body, &names(&["vigo/db", "vigo/api"])).unwrap();
        assert_eq!(got.len(), 2);
        match &got["vigo/db"] {
            EntryValue::Fields(f) => assert_eq!(f["password"].expose(), b"pw-1"),
            EntryValue::Text(_) => panic!("structured"),
        }
        let wrapped = br#"{"entries":[{"name":"vigo/api","value":"tok"}]}"#;
        assert!(
            matches!(&parse_search(wrapped, &names(&["vigo/api"])).unwrap()["vigo/api"], EntryValue::Text(t) if t.expose() == b"tok")
        );
    }

    #[test]
    fn malformed_answers_are_refused_without_their_text() {
        let twice = br#"[{"name":"a","value":"x"},{"name":"a","value":"y"}]"#;
        assert!(parse_search(twice, &names(&["a"])).unwrap_err().to_string().contains("twice"));
        let nested = br#"[{"name":"a","value":{"k":{"deep":"canary-nested"}}}]"#;
        let e = parse_search(nested, &names(&["a"])).unwrap_err().to_string();
        assert!(e.contains("fields must be strings") && !e.contains("canary"), "{e}");
        let e = parse_search(b"{\"entries\": \"canary-text\"}", &names(&["a"])).unwrap_err().to_string();
        assert!(!e.contains("canary"), "{e}");
        let e = parse_search(b"canary-garbage", &names(&["a"])).unwrap_err().to_string();
        assert!(e.contains("not JSON") && !e.contains("canary"), "{e}");
    }

    #[test]
    fn expiry_in_either_form() {
        assert_eq!(parse_expiry(&serde_json::json!(1_800_000_000)), Some(1_800_000_000));
        assert_eq!(parse_expiry(&serde_json::json!("2027-01-15T08:00:00Z")), Some(1_800_000_000));
        assert_eq!(parse_expiry(&serde_json::json!("2027-01-15T09:00:00+01:00")), Some(1_800_000_000));
        assert_eq!(parse_expiry(&serde_json::json!("tomorrow")), None);
    }
}
