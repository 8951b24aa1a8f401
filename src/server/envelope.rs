//! Authenticates a signed request: CA-issued client certificate bound to the envoy, fresh
//! timestamp, valid Ed25519 signature, and a sequence number above the last one seen — stored
//! in SQLite, so a replay is refused also after a restart.
//!
//! `verify` checks everything but the sequence; `write_fresh` advances it inside the call's own
//! database write, so a call that stores something (an audit row, a run report) commits it and
//! the new sequence together, and nothing is stored for a replay.

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

pub use crate::store::envoys::Fresh;

/// Advances an envoy's replay guard; `Send` so it can go to the writer thread.
struct ReplayGuard {
    envoy_id: String,
    sequence: i64,
}

impl ReplayGuard {
    /// `None` when the sequence is not above the last one stored: a replay or reordering.
    fn advance(&self, c: &rusqlite::Connection) -> rusqlite::Result<Option<Fresh>> {
        crate::store::envoys::advance_sequence(
            c,
            &self.envoy_id,
            self.sequence,
            crate::util::time::unix_now(),
        )
    }
}

/// How far a sequence may run ahead of the microseconds of the request's allowed clock
/// window. Agents number requests by the clock in microseconds (`AgentState::next_sequence`),
/// so a sequence far beyond it can only come from whoever holds the key trying to lock the
/// real agent out; this bounds that lock-out to the clock window.
const SEQUENCE_SLACK: u64 = 10_000_000;

/// The highest sequence accepted now.
fn max_sequence() -> u64 {
    let ms = unix_now_millis().saturating_add(wire::MAX_CLOCK_SKEW_MS).max(0) as u64;
    ms.saturating_mul(1000).saturating_add(SEQUENCE_SLACK)
}

/// What a caller is told when its envelope names an envoy it cannot prove to be: the same for
/// an unknown id and for a certificate of another envoy, so ids reveal nothing.
const NOT_THIS_ENVOY: &str = "unknown envoy, or a client certificate that does not belong to it";

pub const REQUEST_REJECTED: &str = "request.rejected";

impl Server {
    /// Records a refused request (the first per envoy id in a window at once, the rest as one
    /// summary row) and answers `status`.
    fn reject(&self, envoy_id: &str, reason: &'static str, status: Status) -> Status {
        let target = crate::audit::clip(envoy_id);
        if self.refusals.note(REQUEST_REJECTED, &target, reason) {
            let detail = serde_json::json!({ "reason": reason });
            // If even the audit write fails, the request is refused all the same.
            let _ = self.audit(&[Event::new("server", REQUEST_REJECTED, &target).detail(detail)]);
        }
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
            .map_err(super::writer::status)?;
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
        self.verify_from(leaf, req.get_ref(), method)
    }

    /// As `verify`, for an envelope that came over a connection whose client certificate is
    /// `leaf` (the push channel, which is not gRPC).
    pub fn verify_from(
        &self,
        leaf: &rustls::pki_types::CertificateDer<'_>,
        env: &SignedRequest,
        method: &str,
    ) -> Result<Verified, Status> {
        if !self.verifier.is_ca_issued(leaf) {
            return Err(Status::permission_denied(
                "this call needs the certificate issued at enrollment; a self-signed certificate may only call Enroll",
            ));
        }
        // The certificate must be this envoy's before anything about the envoy is said.
        let envoy = self
            .envoy(&env.envoy_id)
            .filter(|e| x509::ed25519_key_in_cert(leaf).is_some_and(|k| crypto::ct_eq(&k, &e.public_key)));
        let Some(envoy) = envoy else {
            return Err(self.reject(
                &env.envoy_id,
                "unknown envoy or certificate of another envoy",
                Status::unauthenticated(NOT_THIS_ENVOY),
            ));
        };
        if envoy.revoked {
            return Err(Status::permission_denied(format!(
                "envoy {} ({}) has been revoked; this identity can never check in or enroll again",
                envoy.name, envoy.id
            )));
        }
        if env.timestamp_ms.abs_diff(unix_now_millis()) > wire::MAX_CLOCK_SKEW_MS.unsigned_abs() {
            return Err(self.reject(
                &envoy.id,
                "stale timestamp",
                Status::unauthenticated(
                    "request time is more than 5 minutes off the server clock; fix the host clock",
                ),
            ));
        }
        if env.sequence > max_sequence() {
            return Err(self.reject(
                &envoy.id,
                "sequence ahead of the clock",
                Status::unauthenticated("request sequence is ahead of the server clock; fix the host clock"),
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
