//! The agent-facing gRPC service: Enroll, CheckIn, ResolveSecrets, ReportRun.

use std::sync::Arc;

use prost::Message;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::capture;
use super::state::{EnvoyInfo, Server};
use crate::audit::{self, Event};
use crate::crypto::{self, x509};
use crate::proto::v1 as pb;
use crate::proto::v1::vigo_agent_server::VigoAgent;
use crate::util::time::unix_now;
use crate::wire::{self, EnrollToken};

/// Distinct keys one ResolveSecrets may ask for: far above any real bundle, and a bound on what
/// a signed but hostile request can make the server look up and record.
const MAX_KEYS_PER_RESOLVE: usize = 4096;

pub struct AgentService {
    pub server: Arc<Server>,
}

fn decode<M: Message + Default>(payload: &[u8]) -> Result<M, Status> {
    M::decode(payload).map_err(|_| Status::invalid_argument("payload is not a valid message for this call"))
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

enum TokenVerdict {
    Consumed { bound_name: Option<String> },
    Rejected(&'static str),
}

impl AgentService {
    fn enroll_blocking(&self, req: &Request<pb::EnrollRequest>) -> Result<pb::EnrollResponse, Status> {
        let s = &self.server;
        let certs =
            req.peer_certs().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf =
            certs.first().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let body = req.get_ref();
        if x509::ed25519_key_in_cert(leaf).map(|k| k.to_vec()) != Some(body.public_key.clone()) {
            return Err(Status::permission_denied(
                "the enrolling key must be the key of the TLS client certificate",
            ));
        }
        let token_hash = EnrollToken::secret_hash(&body.token);
        let now = unix_now();
        let mut conn = s.db();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let existing: Option<(String, bool)> = tx
            .query_row(
                "SELECT id, revoked_at IS NOT NULL FROM envoys WHERE public_key = ?1",
                [&body.public_key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(internal)?;
        let verdict = match existing {
            Some((_, true)) => {
                TokenVerdict::Rejected("this identity belongs to a revoked envoy and can never enroll again")
            }
            Some((_, false)) => TokenVerdict::Rejected("this identity is already enrolled"),
            None => consume_token(&tx, &token_hash, now).map_err(internal)?,
        };
        let bound_name = match verdict {
            TokenVerdict::Consumed { bound_name } => bound_name,
            TokenVerdict::Rejected(why) => {
                drop(tx);
                let detail = serde_json::json!({ "reason": why, "name": audit::clip(&body.name) });
                audit::append(
                    &mut conn,
                    &Event::new("server", "enroll.rejected", &crypto::hex_encode(&token_hash[..8]))
                        .detail(detail),
                )
                .map_err(internal)?;
                return Err(Status::permission_denied(why));
            }
        };
        let name = match (&bound_name, body.name.as_str()) {
            (Some(bound), "") => bound.clone(),
            (Some(bound), asked) if asked != bound => {
                return Err(Status::permission_denied(format!(
                    "this token is bound to envoy name {bound:?}, not {asked:?}"
                )))
            }
            (None, "") => body.hostname.clone(),
            (_, asked) => asked.to_string(),
        };
        wire::validate_envoy_name(&name).map_err(Status::invalid_argument)?;
        let taken: bool = tx
            .query_row(
                "SELECT COUNT(*) > 0 FROM envoys WHERE name = ?1 AND revoked_at IS NULL",
                [&name],
                |r| r.get(0),
            )
            .map_err(internal)?;
        if taken {
            return Err(Status::already_exists(format!(
                "an active envoy is already named {name:?}; revoke it first (`vigocli envoys revoke {name}`)"
            )));
        }
        let id = crypto::uuid_v4().map_err(internal)?;
        let cert_pem =
            x509::issue_client_cert(s.ca_key_pem.expose(), &body.public_key, &id, s.client_cert_days)
                .map_err(internal)?;
        tx.execute(
            "INSERT INTO envoys (id, name, public_key, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, body.public_key, now],
        )
        .map_err(internal)?;
        let detail = serde_json::json!({ "name": name, "public_key": crypto::hex_encode(&body.public_key) });
        audit::append_in(&tx, &[Event::new("server", "envoy.enrolled", &id).detail(detail)])
            .map_err(internal)?;
        tx.commit().map_err(internal)?;
        drop(conn);
        s.remember_envoy(EnvoyInfo {
            id: id.clone(),
            name: name.clone(),
            public_key: body.public_key.clone(),
            revoked: false,
        });
        tracing::info!(envoy = %name, id = %id, "envoy enrolled");
        Ok(pb::EnrollResponse {
            envoy_id: id,
            envoy_name: name,
            client_cert_pem: cert_pem,
            ca_cert_pem: s.ca_cert_pem.clone(),
            checkin_interval_secs: s.checkin_interval_secs,
        })
    }
}

/// Consumes a token in one UPDATE (N racers, one winner), or says why it cannot be used.
fn consume_token(
    tx: &rusqlite::Transaction<'_>,
    hash: &[u8; 32],
    now: i64,
) -> rusqlite::Result<TokenVerdict> {
    let won = tx.execute(
        "UPDATE enroll_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
        params![hash.as_slice(), now],
    )?;
    if won == 1 {
        let bound: Option<String> = tx.query_row(
            "SELECT envoy_name FROM enroll_tokens WHERE token_hash = ?1",
            [hash.as_slice()],
            |r| r.get(0),
        )?;
        return Ok(TokenVerdict::Consumed { bound_name: bound });
    }
    let row: Option<(Option<i64>, i64)> = tx
        .query_row(
            "SELECT used_at, expires_at FROM enroll_tokens WHERE token_hash = ?1",
            [hash.as_slice()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(TokenVerdict::Rejected(match row {
        None => "unknown token",
        Some((Some(_), _)) => "token already used",
        Some((None, _)) => "token expired",
    }))
}

#[tonic::async_trait]
impl VigoAgent for AgentService {
    async fn enroll(&self, req: Request<pb::EnrollRequest>) -> Result<Response<pb::EnrollResponse>, Status> {
        capture::record("Enroll", "request", req.get_ref());
        let answer = self.enroll_blocking(&req)?;
        capture::record("Enroll", "response", &answer);
        Ok(Response::new(answer))
    }

    async fn check_in(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::CheckInResponse>, Status> {
        let s = &self.server;
        capture::record(wire::METHOD_CHECK_IN, "request", req.get_ref());
        let v = s.verify(&req, wire::METHOD_CHECK_IN)?;
        let fresh = s.write_fresh(&v, |_, fresh| Ok(fresh)).await?;
        let _body: pb::CheckInRequest = decode(&v.payload)?;
        let bundle = s.bundle_for(&v.envoy.name).map_err(Status::failed_precondition)?;
        let mut proto = bundle.message().map_err(Status::internal)?;
        proto.triggered = serde_json::from_str(&fresh.triggered).unwrap_or_default();
        proto.force_apply = fresh.force_apply;
        proto.secrets_epoch = s.secrets_epoch();
        let answer =
            pb::CheckInResponse { bundle: Some(proto), checkin_interval_secs: s.checkin_interval_secs };
        capture::record(wire::METHOD_CHECK_IN, "response", &answer);
        Ok(Response::new(answer))
    }

    async fn resolve_secrets(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::ResolveSecretsResponse>, Status> {
        let s = &self.server;
        capture::record(wire::METHOD_RESOLVE, "request", req.get_ref());
        let auth = s.verify(&req, wire::METHOD_RESOLVE)?;
        let mut body: pb::ResolveSecretsRequest = decode(&auth.payload)?;
        // Each key is answered (and recorded) once; the agent asks for each one once anyway.
        body.keys.sort_unstable();
        body.keys.dedup();
        if body.keys.len() > MAX_KEYS_PER_RESOLVE {
            return Err(Status::invalid_argument(format!(
                "{} keys in one request; at most {MAX_KEYS_PER_RESOLVE}",
                body.keys.len()
            )));
        }
        let bundle = s.bundle_for(&auth.envoy.name).map_err(Status::failed_precondition)?;
        let denied: Vec<&String> = body.keys.iter().filter(|k| !bundle.entitled.contains(*k)).collect();
        if !denied.is_empty() {
            let recorded: Vec<String> = denied.iter().take(20).map(|k| audit::clip(k)).collect();
            let detail =
                serde_json::json!({ "envoy": auth.envoy.name, "keys": recorded, "denied": denied.len() });
            s.audit(&[Event::new(
                &format!("envoy:{}", auth.envoy.id),
                "secret.entitlement_denied",
                &auth.envoy.id,
            )
            .detail(detail)])
                .map_err(internal)?;
            return Err(Status::permission_denied(format!(
                "envoy {} is not entitled to {} (only keys referenced by its own bundle can be resolved)",
                auth.envoy.name,
                denied.iter().map(|k| format!("secret:{k}")).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut values = pb::SecretValues::default();
        for key in &body.keys {
            let v = s.provider.get(key).map_err(|e| Status::failed_precondition(e.to_string()))?;
            values.values.insert(key.clone(), v.expose().as_bytes().to_vec());
        }
        let plain = Zeroizing::new(values.encode_to_vec());
        for v in values.values.values_mut() {
            zeroize::Zeroize::zeroize(v);
        }
        let epoch = s.secrets_epoch();
        let sealed = crypto::seal_to(
            &body.reply_public_key,
            &wire::resolve_aad(&auth.envoy.id, auth.sequence),
            &plain,
        )
        .map_err(|e| Status::invalid_argument(format!("reply key: {e}")))?;
        let detail = serde_json::json!({ "keys": body.keys, "secrets_epoch": epoch });
        let id = auth.envoy.id.clone();
        // The sealed answer leaves only once the new sequence and the audit row have committed.
        // For a replay it was sealed to the reply key inside the signed request, which only the
        // original envoy holds, and is dropped unsent.
        s.write_fresh(&auth, move |c, _| {
            let actor = format!("envoy:{id}");
            audit::append_in(c, &[Event::new(&actor, "secret.epoch_resolved", &id).detail(detail)]).map(drop)
        })
        .await?;
        let answer = pb::ResolveSecretsResponse { sealed_values: sealed, secrets_epoch: epoch };
        capture::record(wire::METHOD_RESOLVE, "response", &answer);
        Ok(Response::new(answer))
    }

    async fn report_run(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::ReportRunResponse>, Status> {
        let s = &self.server;
        capture::record(wire::METHOD_REPORT, "request", req.get_ref());
        let auth = s.verify(&req, wire::METHOD_REPORT)?;
        let body: pb::ReportRunRequest = decode(&auth.payload)?;
        let report = body.report.ok_or_else(|| Status::invalid_argument("report missing"))?;
        let run_id = crypto::uuid_v4().map_err(internal)?;
        let json = super::runs::report_to_json(&report);
        let (envoy_id, envoy_name) = (auth.envoy.id.clone(), auth.envoy.name.clone());
        let answer_id = run_id.clone();
        s.write_fresh(&auth, move |c, _| {
            c.prepare_cached(
                "INSERT INTO runs (id, envoy_id, envoy_name, received_at, status, bundle_hash, report)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                run_id,
                envoy_id,
                envoy_name,
                unix_now(),
                report.status,
                report.bundle_hash,
                json
            ])?;
            if !report.noop {
                c.prepare_cached(
                    "UPDATE envoys SET triggered = '[]', force_apply = 0, last_bundle_hash = ?2 WHERE id = ?1",
                )?
                .execute(params![envoy_id, report.bundle_hash])?;
            }
            Ok(())
        })
        .await?;
        let answer = pb::ReportRunResponse { run_id: answer_id };
        capture::record(wire::METHOD_REPORT, "response", &answer);
        Ok(Response::new(answer))
    }
}
