//! Authenticates a signed request: CA-issued client certificate bound to the envoy, fresh
//! timestamp, valid Ed25519 signature, and a sequence number above the last one seen — stored
//! in SQLite, so a replay is refused also after a restart.

use rusqlite::{params, OptionalExtension};
use tonic::{Request, Status};

use super::state::{EnvoyInfo, Server};
use crate::audit::Event;
use crate::crypto::{self, x509};
use crate::proto::v1::SignedRequest;
use crate::util::time::unix_now_millis;
use crate::wire;

pub struct Authenticated {
    pub envoy: EnvoyInfo,
    pub payload: Vec<u8>,
    pub sequence: u64,
    /// The envoy row's rotation flags, read as the request was accepted.
    pub triggered: String,
    pub force_apply: bool,
}

impl Server {
    fn reject(&self, envoy_id: &str, reason: &str, status: Status) -> Status {
        let detail = serde_json::json!({ "reason": reason });
        // If even the audit write fails, the request is refused all the same.
        let _ = self.audit(&[Event::new("server", "request.rejected", envoy_id).detail(detail)]);
        status
    }

    pub async fn authenticate(
        &self,
        req: &Request<SignedRequest>,
        method: &str,
    ) -> Result<Authenticated, Status> {
        let certs =
            req.peer_certs().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf =
            certs.first().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        if !self.verifier.is_ca_issued(leaf) {
            return Err(Status::permission_denied(
                "this call needs the certificate issued at enrollment; a self-signed certificate may only call Enroll",
            ));
        }
        let env = req.get_ref();
        let Some(envoy) = self.envoy(&env.envoy_id) else {
            return Err(self.reject(
                &env.envoy_id,
                "unknown envoy",
                Status::unauthenticated("unknown envoy id"),
            ));
        };
        if envoy.revoked {
            return Err(Status::permission_denied(format!(
                "envoy {} ({}) has been revoked; this identity can never check in or enroll again",
                envoy.name, envoy.id
            )));
        }
        if x509::ed25519_key_in_cert(leaf).map(|k| k.to_vec()) != Some(envoy.public_key.clone()) {
            return Err(self.reject(
                &envoy.id,
                "certificate does not belong to the signing envoy",
                Status::permission_denied("the client certificate belongs to a different envoy"),
            ));
        }
        if (env.timestamp_ms - unix_now_millis()).abs() > wire::MAX_CLOCK_SKEW_MS {
            return Err(self.reject(
                &envoy.id,
                "stale timestamp",
                Status::unauthenticated(
                    "request time is more than 5 minutes off the server clock; fix the host clock",
                ),
            ));
        }
        let message = wire::signing_message(method, &envoy.id, env.timestamp_ms, env.sequence, &env.payload);
        if !crypto::verify_ed25519(&envoy.public_key, &message, &env.signature) {
            return Err(self.reject(
                &envoy.id,
                "bad signature",
                Status::unauthenticated("request signature is invalid"),
            ));
        }
        // One statement advances the replay guard and reads what CheckIn needs from the row.
        let (seq, id) = (env.sequence as i64, envoy.id.clone());
        let fresh: Option<(String, bool)> = self
            .writes
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE envoys SET last_seq = ?1, last_seen = ?2 WHERE id = ?3 AND last_seq < ?1
                     RETURNING triggered, force_apply",
                )?
                .query_row(params![seq, crate::util::time::unix_now(), id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
            })
            .await
            .map_err(Status::internal)?;
        let Some((triggered, force_apply)) = fresh else {
            return Err(self.reject(
                &envoy.id,
                "replayed sequence",
                Status::unauthenticated(format!(
                    "replayed or out-of-order request (sequence {})",
                    env.sequence
                )),
            ));
        };
        Ok(Authenticated {
            envoy,
            payload: env.payload.clone(),
            sequence: env.sequence,
            triggered,
            force_apply,
        })
    }
}
