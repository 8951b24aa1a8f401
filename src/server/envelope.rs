//! Authenticates a signed request: CA-issued client certificate bound to the envoy, fresh
//! timestamp, valid Ed25519 signature, and a sequence number above the last one seen — stored
//! in SQLite, so a replay is refused also after a restart.
//!
//! `verify` checks everything but the sequence; `write_fresh` advances it inside the call's own
//! database write, so a call that stores something (an audit row, a run report) commits it and
//! the new sequence together, and nothing is stored for a replay.

use rusqlite::{params, OptionalExtension};
use tonic::{Request, Status};

use super::state::{EnvoyInfo, Server};
use crate::audit::Event;
use crate::crypto::{self, x509};
use crate::proto::v1::SignedRequest;
use crate::util::time::unix_now_millis;
use crate::wire;

/// A request whose certificate, timestamp and signature are good; its sequence is not yet
/// checked.
pub struct Verified {
    pub envoy: EnvoyInfo,
    pub payload: Vec<u8>,
    pub sequence: u64,
}

/// The rotation flags of the envoy row, read as the sequence advanced.
pub struct Fresh {
    pub triggered: String,
    pub force_apply: bool,
}

/// Advances an envoy's replay guard; `Send` so it can go to the writer thread.
struct ReplayGuard {
    envoy_id: String,
    sequence: i64,
}

impl ReplayGuard {
    /// `None` when the sequence is not above the last one stored: a replay or reordering.
    fn advance(&self, c: &rusqlite::Connection) -> rusqlite::Result<Option<Fresh>> {
        c.prepare_cached(
            "UPDATE envoys SET last_seq = ?1, last_seen = ?2 WHERE id = ?3 AND last_seq < ?1
             RETURNING triggered, force_apply",
        )?
        .query_row(params![self.sequence, crate::util::time::unix_now(), self.envoy_id], |r| {
            Ok(Fresh { triggered: r.get(0)?, force_apply: r.get(1)? })
        })
        .optional()
    }
}

impl Server {
    fn reject(&self, envoy_id: &str, reason: &str, status: Status) -> Status {
        let detail = serde_json::json!({ "reason": reason });
        // If even the audit write fails, the request is refused all the same.
        let target = crate::audit::clip(envoy_id);
        let _ = self.audit(&[Event::new("server", "request.rejected", &target).detail(detail)]);
        status
    }

    /// Runs `work` in one writer job right after advancing `v`'s sequence, and answers once that
    /// job has committed. A replayed or reordered request runs nothing and is refused (and
    /// audited).
    pub async fn write_fresh<R: Send + 'static>(
        &self,
        v: &Verified,
        work: impl FnOnce(&rusqlite::Connection, Fresh) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, Status> {
        let guard = ReplayGuard { envoy_id: v.envoy.id.clone(), sequence: v.sequence as i64 };
        let done = self
            .writes
            .write(move |c| match guard.advance(c)? {
                Some(fresh) => work(c, fresh).map(Some),
                None => Ok(None),
            })
            .await
            .map_err(Status::internal)?;
        done.ok_or_else(|| {
            self.reject(
                &v.envoy.id,
                "replayed sequence",
                Status::unauthenticated(format!(
                    "replayed or out-of-order request (sequence {})",
                    v.sequence
                )),
            )
        })
    }

    pub fn verify(&self, req: &Request<SignedRequest>, method: &str) -> Result<Verified, Status> {
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
        Ok(Verified { envoy, payload: env.payload.clone(), sequence: env.sequence })
    }
}
