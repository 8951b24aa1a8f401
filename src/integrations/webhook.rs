//! The webhook sink: HTTPS POSTs of `{"sink": NAME, "events": [row, …]}` (rows as
//! `audit::to_line` writes them), with `X-Vigo-Signature: sha256=<hex HMAC-SHA-256 of the body>`
//! under the configured key. A 2xx answer delivers the batch; anything else is retried, so a
//! receiver may get a batch twice and should keep rows by `seq`.

use std::time::Duration;

use crate::audit::Row;
use crate::crypto::SecretString;
use crate::settings::WebhookSink;
use crate::util::https::{HttpError, HttpsClient, TrustRoots};

/// A batch body stops growing past this (a batch always holds at least one row).
const MAX_BODY: usize = 4 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);
/// The receiver's answer is not used; it is read up to this and dropped.
const MAX_ANSWER: usize = 64 * 1024;

pub const SIGNATURE_HEADER: &str = "x-vigo-signature";

pub struct Webhook {
    name: String,
    url: url::Url,
    key: SecretString,
    client: HttpsClient,
    pub batch: usize,
}

/// The body for `rows`, cut to `MAX_BODY` (at least one row); with the rows it holds.
pub fn body(sink: &str, rows: &[Row]) -> (Vec<u8>, usize) {
    let mut out = format!("{{\"sink\":{},\"events\":[", serde_json::Value::from(sink)).into_bytes();
    let mut taken = 0;
    for row in rows {
        let line = crate::audit::to_line(row);
        if taken > 0 && out.len() + line.len() + 2 > MAX_BODY {
            break;
        }
        if taken > 0 {
            out.push(b',');
        }
        out.extend_from_slice(line.as_bytes());
        taken += 1;
    }
    out.extend_from_slice(b"]}");
    (out, taken)
}

/// `sha256=<hex>`: what a receiver recomputes over the raw body with the shared key.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    format!("sha256={}", crate::crypto::hex_encode(&crate::crypto::hmac_sha256(key, body)))
}

impl Webhook {
    pub fn new(w: &WebhookSink) -> Result<Webhook, String> {
        let trust = match &w.ca_file {
            Some(f) => TrustRoots::Pem(std::fs::read_to_string(f).map_err(|e| format!("ca_file {f}: {e}"))?),
            None => TrustRoots::Bundle(crate::util::https::SYSTEM_CA_BUNDLE.into()),
        };
        let client = HttpsClient::new(&trust, TIMEOUT, MAX_ANSWER).map_err(|e| e.to_string())?;
        let url = url::Url::parse(&w.url).map_err(|e| format!("url: {e}"))?;
        if w.key.is_empty() {
            return Err("the signing key is empty".into());
        }
        Ok(Webhook { name: w.name.clone(), url, key: w.key.clone(), client, batch: w.batch })
    }

    /// POSTs one batch of `rows` (or fewer, see `MAX_BODY`); returns the last row delivered.
    pub async fn send(&self, rows: &[Row]) -> Result<Option<i64>, String> {
        let (body, taken) = body(&self.name, &rows[..rows.len().min(self.batch)]);
        let sig = signature(self.key.expose().as_bytes(), &body);
        let answer = self
            .client
            .post_bytes(&self.url, "application/json", &[(SIGNATURE_HEADER, sig)], body)
            .await
            .map_err(|e| self.describe(e))?;
        if !(200..300).contains(&answer.status) {
            return Err(format!("{} answered HTTP {}", self.shown(), answer.status));
        }
        Ok(rows.get(taken.wrapping_sub(1)).map(|r| r.seq))
    }

    /// The receiver as errors name it: its origin, never the path (which may hold a token).
    fn shown(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The client's error without the URL's path.
    fn describe(&self, e: HttpError) -> String {
        let shown = self.shown();
        match e {
            HttpError::Connect(why) => format!("cannot reach {why}"),
            HttpError::Tls { host, reason } => format!("TLS with {host} failed: {reason}"),
            HttpError::Timeout(_, secs) => format!("{shown} did not answer within {secs} s"),
            HttpError::TooLarge(_, max) => format!("the answer from {shown} is larger than {max} bytes"),
            HttpError::Redirect(_, code) => {
                format!("{shown} answered with a redirect (HTTP {code}), which is not followed")
            }
            HttpError::Protocol(_, why) => format!("HTTP exchange with {shown} failed: {why}"),
            HttpError::Url(_) | HttpError::Trust(_) => format!("{shown}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, detail_len: usize) -> Row {
        Row {
            seq,
            ts: "2026-01-01T00:00:00Z".into(),
            actor: "a".into(),
            action: "b".into(),
            target: "c".into(),
            detail: "x".repeat(detail_len),
            prev_hash: vec![0; 32],
            hash: vec![0; 32],
        }
    }

    #[test]
    fn bodies_are_json_batches_cut_by_size() {
        let (b, n) = body("soc", &[row(1, 1), row(2, 1)]);
        assert_eq!(n, 2);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["sink"], "soc");
        assert_eq!(v["events"][1]["seq"], 2);
        let big = [row(1, MAX_BODY / 2), row(2, MAX_BODY / 2), row(3, 10)];
        assert_eq!(body("soc", &big).1, 1);
        assert_eq!(body("soc", &[row(1, MAX_BODY * 2)]).1, 1, "a batch always carries one row");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2, as a receiver would compute it.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
