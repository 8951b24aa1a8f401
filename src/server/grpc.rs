//! The agent-facing gRPC service: Enroll, CheckIn, ResolveSecrets, ReportRun.

use std::sync::Arc;

use prost::Message;
use rusqlite::TransactionBehavior;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::capture;
use super::metrics::Rpc;

type ReleaseStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ReleaseChunk, Status>> + Send + 'static>>;
use super::state::{EnvoyInfo, Server};
use crate::audit::{self, Event};
use crate::config::glob::Glob;
use crate::crypto::{self, x509};
use crate::proto::v1 as pb;
use crate::proto::v1::vigo_agent_server::VigoAgent;
use crate::store::{self, enroll_tokens::Binding};
use crate::util::time::unix_now;
use crate::wire::{self, EnrollToken};

/// Task results one report may carry, and the output (and a quarter of it for the error) kept
/// of each: the agent already keeps only the tail.
const MAX_TASK_RESULTS: usize = store::tasks::MAX_PER_CHECK_IN;
const MAX_TASK_OUTPUT: usize = 4096;

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

/// What every refused enrollment is told, whatever the reason: telling unknown, expired and
/// used tokens apart would help someone guessing. The audit row keeps the reason.
const ENROLL_REFUSED: &str =
    "the token is not valid, or this identity may not enroll (tokens work once and expire); ask the operator for a new token";

const ENROLL_REJECTED: &str = "enroll.rejected";

/// What a valid token's holder is told when the name cannot be enrolled, whatever the reason
/// (outside the token's binding, or held by an active envoy): naming the bound name, the
/// pattern or the envoy that holds the name would let a token holder map the fleet's names.
/// The audit row keeps the reason and the name.
const ENROLL_NAME_REFUSED: &str =
    "this token cannot enroll that name (the reason is in the server's audit log); the token is still valid: ask the operator which name it is for";

/// The address a request came from, as refusals are counted (see `conn_limits::source_key`).
fn source_of<T>(req: &Request<T>) -> String {
    req.remote_addr()
        .map(|a| super::conn_limits::source_key(a.ip()).to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl AgentService {
    /// Records a refused enrollment (the first from a source in a window at once, the rest as
    /// one summary row) and answers `status`.
    fn refuse_enroll(&self, source: &str, reason: &'static str, name: &str, status: Status) -> Status {
        let s = &self.server;
        if s.refusals.note(ENROLL_REJECTED, source, reason) {
            let detail = serde_json::json!({ "reason": reason, "name": audit::clip(name), "source": source });
            if let Err(e) = s.audit(&[Event::new("server", ENROLL_REJECTED, source).detail(detail)]) {
                tracing::warn!(error = %e, "could not record a refused enrollment");
            }
        }
        status
    }

    fn enroll_blocking(&self, req: &Request<pb::EnrollRequest>) -> Result<pb::EnrollResponse, Status> {
        let s = &self.server;
        let source = source_of(req);
        let body = req.get_ref();
        let generic = || Status::permission_denied(ENROLL_REFUSED);
        // A source that keeps failing is turned away before any database work.
        if s.refusals.count(ENROLL_REJECTED, &source) >= s.limits.enroll_failures_per_minute {
            s.refusals.note(ENROLL_REJECTED, &source, "too many refusals from this source");
            return Err(Status::resource_exhausted(
                "too many refused enrollments from this address; wait a minute before trying again",
            ));
        }
        let certs =
            req.peer_certs().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf =
            certs.first().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        if x509::ed25519_key_in_cert(leaf).map(|k| k.to_vec()) != Some(body.public_key.clone()) {
            return Err(self.refuse_enroll(
                &source,
                "key differs from the client certificate",
                &body.name,
                Status::permission_denied("the enrolling key must be the key of the TLS client certificate"),
            ));
        }
        let token_hash = EnrollToken::secret_hash(&body.token);
        let now = unix_now();
        // Read-only checks first: a refusal queues no write and takes no write lock.
        let precheck = {
            let conn = s.db();
            let identity = store::envoys::by_public_key(&conn, &body.public_key).map_err(internal)?;
            match identity {
                Some((_, true)) => Err("identity of a revoked envoy"),
                Some((_, false)) => Err("identity already enrolled"),
                None => store::enroll_tokens::check(&conn, &token_hash, now)
                    .map_err(internal)?
                    .map_err(|u| u.as_str()),
            }
        };
        if let Err(reason) = precheck {
            return Err(self.refuse_enroll(&source, reason, &body.name, generic()));
        }
        let id = crypto::uuid_v4().map_err(internal)?;
        let mut conn = s.db();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
        let binding = match store::enroll_tokens::consume(&tx, &token_hash, now, &id).map_err(internal)? {
            Ok(b) => b,
            Err(lost) => {
                drop(tx);
                drop(conn);
                return Err(self.refuse_enroll(&source, lost.as_str(), &body.name, generic()));
            }
        };
        let name = match choose_name(&binding, &body.name, &body.hostname) {
            Ok(n) => n,
            Err((reason, status)) => {
                drop(tx);
                drop(conn);
                return Err(self.refuse_enroll(&source, reason, &body.name, status));
            }
        };
        if store::envoys::active_name_taken(&tx, &name).map_err(internal)? {
            drop(tx);
            drop(conn);
            return Err(self.refuse_enroll(
                &source,
                "name held by an active envoy",
                &name,
                Status::permission_denied(ENROLL_NAME_REFUSED),
            ));
        }
        let (cert_pem, cert) = s.issue_client_cert(&body.public_key, &id).map_err(internal)?;
        store::envoys::insert(
            &tx,
            &store::envoys::NewEnvoy {
                id: &id,
                name: &name,
                public_key: &body.public_key,
                enrolled_at: now,
                cert: &cert,
            },
        )
        .map_err(internal)?;
        let detail = serde_json::json!({
            "name": name,
            "public_key": crypto::hex_encode(&body.public_key),
            "token": binding.describe(),
            "source": source,
        });
        audit::append_in(&tx, &[Event::new("server", "envoy.enrolled", &id).detail(detail)])
            .map_err(internal)?;
        tx.commit().map_err(internal)?;
        drop(conn);
        s.remember_envoy(EnvoyInfo {
            id: id.clone(),
            name: name.clone(),
            public_key: body.public_key.clone(),
            revoked: false,
            cert: Some(cert),
        });
        tracing::info!(envoy = %name, id = %id, "envoy enrolled");
        Ok(pb::EnrollResponse {
            envoy_id: id,
            envoy_name: name,
            client_cert_pem: cert_pem,
            ca_cert_pem: s.pki().bundle_pem.clone(),
            checkin_interval_secs: s.checkin_interval_secs,
        })
    }
}

/// How many denied keys an error message names; the rest are counted.
const DENIED_KEYS_SHOWN: usize = 10;

impl AgentService {
    /// Refuses a ResolveSecrets that asked for keys outside the envoy's bundle. The request's
    /// sequence is spent first, so a replay of it is refused as a replay and records nothing
    /// more; the denial is recorded in the same commit (the first of a window in full, the
    /// rest of the window as one summary row).
    async fn deny_keys(&self, auth: &super::envelope::Verified, denied: Vec<String>) -> Status {
        let s = &self.server;
        let recorded: Vec<String> = denied.iter().take(20).map(|k| audit::clip(k)).collect();
        let detail =
            serde_json::json!({ "envoy": auth.envoy.name, "keys": recorded, "denied": denied.len() });
        let target = auth.envoy.id.clone();
        let server = s.clone();
        let written = s
            .write_fresh(auth, move |c, _| {
                // Counted only here, once the sequence is spent: a replay never gets this far.
                if server.refusals.note(ENTITLEMENT_DENIED, &target, "key outside the envoy's bundle") {
                    let actor = format!("envoy:{target}");
                    audit::append_in(c, &[Event::new(&actor, ENTITLEMENT_DENIED, &target).detail(detail)])?;
                }
                Ok(())
            })
            .await;
        if let Err(status) = written {
            return status;
        }
        s.metrics.entitlement_denials.inc();
        let mut named: Vec<String> =
            denied.iter().take(DENIED_KEYS_SHOWN).map(|k| format!("secret:{}", audit::clip(k))).collect();
        if denied.len() > DENIED_KEYS_SHOWN {
            named.push(format!("and {} more", denied.len() - DENIED_KEYS_SHOWN));
        }
        Status::permission_denied(format!(
            "envoy {} is not entitled to {} (only keys referenced by its own bundle can be resolved)",
            auth.envoy.name,
            named.join(", ")
        ))
    }
}

pub const ENTITLEMENT_DENIED: &str = "secret.entitlement_denied";

/// The name an enrollment gets: the one asked for (else the host name), within what the
/// token allows. The error is (audit reason, answer).
fn choose_name(binding: &Binding, asked: &str, hostname: &str) -> Result<String, (&'static str, Status)> {
    let name = match (binding, asked) {
        (Binding::Name(bound), "") => bound.clone(),
        (_, "") => hostname.to_string(),
        (_, asked) => asked.to_string(),
    };
    wire::validate_envoy_name(&name).map_err(|e| ("invalid name", Status::invalid_argument(e)))?;
    match binding {
        Binding::Name(bound) if *bound != name => {
            Err(("name differs from the token's", Status::permission_denied(ENROLL_NAME_REFUSED)))
        }
        Binding::Pattern(p) if !Glob::new(p).is_ok_and(|g| g.matches(&name)) => {
            Err(("name outside the token's pattern", Status::permission_denied(ENROLL_NAME_REFUSED)))
        }
        _ => Ok(name),
    }
}

/// The RPCs themselves; the trait implementation below times each one for `/metrics`.
impl AgentService {
    async fn enroll_rpc(
        &self,
        req: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        capture::record("Enroll", "request", req.get_ref());
        let answer = self.enroll_blocking(&req)?;
        capture::record("Enroll", "response", &answer);
        Ok(Response::new(answer))
    }

    /// A check-in, from a gRPC call or carried on the push channel; `leaf` is the client
    /// certificate of the connection it came on (as for the calls below).
    async fn check_in_call(
        &self,
        leaf: &Leaf<'_>,
        env: &pb::SignedRequest,
    ) -> Result<pb::CheckInResponse, Status> {
        let s = &self.server;
        capture::record(wire::METHOD_CHECK_IN, "request", env);
        let v = s.verify_from(leaf, env, wire::METHOD_CHECK_IN)?;
        let mut body: pb::CheckInRequest = decode(&v.payload)?;
        check_traits(&body)?;
        // Traits are taken with the sequence number: a replayed check-in changes nothing.
        let (envoy_id, traits_json, digest) =
            (v.envoy.id.clone(), std::mem::take(&mut body.traits_json), body.traits_digest.clone());
        // A check-in that will run no task (a noop run, a repeated check-in) is handed none.
        let no_tasks = body.no_tasks;
        let (fresh, send_traits, tasks_waiting) = s
            .write_fresh(&v, move |c, fresh| {
                let send = if !traits_json.is_empty() {
                    store::traits::put(c, &envoy_id, &traits_json, &digest, unix_now())?;
                    false
                } else {
                    !digest.is_empty()
                        && store::traits::digest(c, &envoy_id)?.as_deref() != Some(digest.as_str())
                };
                let tasks_waiting = !no_tasks && store::tasks::any_waiting(c, &envoy_id)?;
                Ok((fresh, send, tasks_waiting))
            })
            .await?;
        s.status.note_checkin(crate::util::time::unix_now());
        let bundle = s.bundle_for(&v.envoy.id, &v.envoy.name).map_err(Status::failed_precondition)?;
        // Ad-hoc tasks this envoy may start now, marked sent only once the answer is certain.
        let tasks = match tasks_waiting {
            true => {
                let envoy_id = v.envoy.id.clone();
                let grace = store::tasks::grace_secs(s.checkin_interval_secs);
                s.writes
                    .write(move |c| {
                        store::tasks::expire(c, unix_now(), grace)?;
                        store::tasks::hand_out(c, &envoy_id, unix_now())
                    })
                    .await
                    .map_err(super::writer::status)?
            }
            false => Vec::new(),
        };
        // An envoy that holds this bundle already is not sent its resources again.
        let mut proto = if !body.last_bundle_hash.is_empty() && body.last_bundle_hash == bundle.bundle_hash {
            bundle.message_without_resources()
        } else {
            bundle.message().map_err(Status::internal)?
        };
        proto.triggered = serde_json::from_str(&fresh.triggered).unwrap_or_default();
        proto.force_apply = fresh.force_apply;
        proto.secrets_epoch = s.secrets_epoch();
        let pki = s.pki();
        s.note_trusted_bundle(&v.envoy.id, &body.ca_bundle_sha256);
        let new =
            s.hardening.note_agent(&v.envoy.id, &body.agent_version, &body.binary_status, &body.hardening);
        super::hardening::audit_agent_signals(s, &v.envoy.id, new);
        super::updates::record_events(s, &v.envoy, &body.update_events);
        let release = super::updates::wanted(s, &v.envoy, &body.agent_version, &body.target)
            .map(|r| super::updates::offer(s, &v.envoy, &r));
        let answer = pb::CheckInResponse {
            bundle: Some(proto),
            checkin_interval_secs: s.checkin_interval_secs,
            renew_certificate: s.needs_renewal(&v.envoy, &pki),
            // Sent only when the agent trusts another set of CAs than the server's.
            ca_bundle_pem: if body.ca_bundle_sha256 == pki.bundle_sha256 {
                String::new()
            } else {
                pki.bundle_pem.clone()
            },
            release,
            send_traits,
            tasks: tasks
                .into_iter()
                .map(|(id, command, timeout_secs)| pb::Task { id, command, timeout_secs })
                .collect(),
        };
        capture::record(wire::METHOD_CHECK_IN, "response", &answer);
        Ok(answer)
    }

    async fn resolve_secrets_call(
        &self,
        leaf: &Leaf<'_>,
        env: &pb::SignedRequest,
    ) -> Result<pb::ResolveSecretsResponse, Status> {
        let s = &self.server;
        capture::record(wire::METHOD_RESOLVE, "request", env);
        let auth = s.verify_from(leaf, env, wire::METHOD_RESOLVE)?;
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
        let bundle = s.bundle_for(&auth.envoy.id, &auth.envoy.name).map_err(Status::failed_precondition)?;
        let denied: Vec<String> =
            body.keys.iter().filter(|k| !bundle.entitled.contains(*k)).cloned().collect();
        if !denied.is_empty() {
            return Err(self.deny_keys(&auth, denied).await);
        }
        let mut values = pb::SecretValues::default();
        for key in &body.keys {
            let v = s.provider.get(key).map_err(|e| Status::failed_precondition(e.to_string()))?;
            values.values.insert(key.clone(), v.expose().to_vec());
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
        s.metrics.keys_resolved.add(body.keys.len() as u64);
        let answer = pb::ResolveSecretsResponse { sealed_values: sealed, secrets_epoch: epoch };
        capture::record(wire::METHOD_RESOLVE, "response", &answer);
        Ok(answer)
    }

    async fn report_run_call(
        &self,
        leaf: &Leaf<'_>,
        env: &pb::SignedRequest,
    ) -> Result<pb::ReportRunResponse, Status> {
        let s = &self.server;
        capture::record(wire::METHOD_REPORT, "request", env);
        let auth = s.verify_from(leaf, env, wire::METHOD_REPORT)?;
        let body: pb::ReportRunRequest = decode(&auth.payload)?;
        let report = body.report.ok_or_else(|| Status::invalid_argument("report missing"))?;
        if !body.ca_bundle_sha256.is_empty() {
            s.note_trusted_bundle(&auth.envoy.id, &body.ca_bundle_sha256);
        }
        if !matches!(report.status.as_str(), "converged" | "changed" | "failed") {
            return Err(Status::invalid_argument("report status must be converged, changed or failed"));
        }
        let json = super::runs::report_to_json(&report);
        let max = s.run_settings.max_report_bytes;
        if json.len() > max {
            return Err(Status::resource_exhausted(format!(
                "run report of {} bytes is over this server's limit of {max} ({})",
                json.len(),
                wire::REPORT_SIZE_SETTING
            )));
        }
        if let Err(wait) = s.report_rate.take(&auth.envoy.id) {
            return Err(Status::resource_exhausted(format!(
                "too many run reports from this envoy (at most {} an hour); the next is accepted in {wait}s",
                s.run_settings.reports_per_hour
            )));
        }
        if report.task_results.len() > MAX_TASK_RESULTS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_TASK_RESULTS} task results in one report"
            )));
        }
        let run_id = crypto::uuid_v4().map_err(internal)?;
        let (envoy_id, envoy_name) = (auth.envoy.id.clone(), auth.envoy.name.clone());
        let answer_id = run_id.clone();
        let outcome = report.status.clone();
        let task_ids: Vec<String> = report.task_results.iter().map(|t| t.task_id.clone()).collect();
        s.write_fresh(&auth, move |c, _| {
            let run = store::runs::NewRun {
                id: &run_id,
                envoy_id: &envoy_id,
                envoy_name: &envoy_name,
                received_at: unix_now(),
                status: &report.status,
                bundle_hash: &report.bundle_hash,
                report_json: &json,
                noop: report.noop,
            };
            store::runs::insert(c, &run)?;
            if !report.noop {
                store::envoys::mark_applied(c, &envoy_id, &report.bundle_hash)?;
            }
            for t in &report.task_results {
                let outcome = store::tasks::Outcome {
                    exit_code: t.exited.then_some(i64::from(t.exit_code)),
                    output: crate::util::text::tail(&t.output, MAX_TASK_OUTPUT),
                    error: crate::util::text::tail(&t.error, MAX_TASK_OUTPUT / 4),
                    duration_ms: i64::try_from(t.duration_ms).unwrap_or(i64::MAX),
                };
                store::tasks::record(c, &t.task_id, &envoy_id, &outcome, unix_now())?;
            }
            Ok(())
        })
        .await?;
        nudge_next_batches(s, &s.db(), task_ids.iter().map(String::as_str));
        s.metrics.run_reported(&outcome);
        let answer = pb::ReportRunResponse { run_id: answer_id };
        capture::record(wire::METHOD_REPORT, "response", &answer);
        Ok(answer)
    }

    /// A new certificate for the envoy's own key (the key cannot change: it is the identity),
    /// recorded and audited before it is handed out.
    async fn fetch_release_rpc(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<ReleaseStream>, Status> {
        let s = self.server.clone();
        let auth = s.verify(&req, wire::METHOD_FETCH_RELEASE)?;
        s.write_fresh(&auth, |_, _| Ok(())).await?;
        let body: pb::FetchReleaseRequest = decode(&auth.payload)?;
        let envoy = auth.envoy.clone();
        let mut file = tokio::task::spawn_blocking(move || {
            super::updates::open_for(&s, &envoy, &body.sha256, body.offset, &body.target)
        })
        .await
        .map_err(internal)?
        .map_err(Status::permission_denied)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || loop {
            let chunk = super::updates::next_chunk(&mut file).map_err(|e| Status::internal(e.to_string()));
            let done = matches!(&chunk, Ok(c) if c.is_empty()) || chunk.is_err();
            if let Ok(c) = &chunk {
                if c.is_empty() {
                    break;
                }
            }
            if tx.blocking_send(chunk.map(|data| pb::ReleaseChunk { data })).is_err() || done {
                break;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn renew_certificate_rpc(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::RenewCertificateResponse>, Status> {
        let s = &self.server;
        capture::record(wire::METHOD_RENEW, "request", req.get_ref());
        let auth = s.verify(&req, wire::METHOD_RENEW)?;
        let _body: pb::RenewCertificateRequest = decode(&auth.payload)?;
        let (cert_pem, cert) =
            s.issue_client_cert(&auth.envoy.public_key, &auth.envoy.id).map_err(internal)?;
        let (id, record) = (auth.envoy.id.clone(), cert.clone());
        s.write_fresh(&auth, move |c, _| {
            store::envoys::record_certificate(c, &id, &record)?;
            let detail = serde_json::json!({ "not_after": record.not_after, "ca": record.ca_pin });
            audit::append_in(
                c,
                &[Event::new(&format!("envoy:{id}"), "envoy.cert_renewed", &id).detail(detail)],
            )
            .map(drop)
        })
        .await?;
        let mut info = auth.envoy.clone();
        info.cert = Some(cert);
        s.remember_envoy(info);
        let answer = pb::RenewCertificateResponse {
            client_cert_pem: cert_pem,
            ca_bundle_pem: s.pki().bundle_pem.clone(),
        };
        capture::record(wire::METHOD_RENEW, "response", &answer);
        Ok(Response::new(answer))
    }
}

#[tonic::async_trait]
impl VigoAgent for AgentService {
    async fn enroll(&self, req: Request<pb::EnrollRequest>) -> Result<Response<pb::EnrollResponse>, Status> {
        let started = std::time::Instant::now();
        let result = self.enroll_rpc(req).await;
        self.server.metrics.rpc(Rpc::Enroll, started, &result);
        result
    }

    async fn check_in(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::CheckInResponse>, Status> {
        let started = std::time::Instant::now();
        let result = match peer_leaf(&req) {
            Ok(leaf) => self.check_in_call(&leaf, req.get_ref()).await,
            Err(refused) => Err(refused),
        };
        self.server.metrics.rpc(Rpc::CheckIn, started, &result);
        result.map(Response::new)
    }

    async fn resolve_secrets(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::ResolveSecretsResponse>, Status> {
        let started = std::time::Instant::now();
        let result = match peer_leaf(&req) {
            Ok(leaf) => self.resolve_secrets_call(&leaf, req.get_ref()).await,
            Err(refused) => Err(refused),
        };
        self.server.metrics.rpc(Rpc::ResolveSecrets, started, &result);
        result.map(Response::new)
    }

    async fn report_run(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::ReportRunResponse>, Status> {
        let started = std::time::Instant::now();
        let result = match peer_leaf(&req) {
            Ok(leaf) => self.report_run_call(&leaf, req.get_ref()).await,
            Err(refused) => Err(refused),
        };
        self.server.metrics.rpc(Rpc::ReportRun, started, &result);
        result.map(Response::new)
    }

    async fn renew_certificate(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::RenewCertificateResponse>, Status> {
        let started = std::time::Instant::now();
        let result = self.renew_certificate_rpc(req).await;
        self.server.metrics.rpc(Rpc::RenewCertificate, started, &result);
        result
    }

    type FetchReleaseStream = ReleaseStream;

    /// Timed until the stream starts (the transfer itself is the agent's pace).
    async fn fetch_release(
        &self,
        req: Request<pb::SignedRequest>,
    ) -> Result<Response<Self::FetchReleaseStream>, Status> {
        let started = std::time::Instant::now();
        let result = self.fetch_release_rpc(req).await;
        self.server.metrics.rpc(Rpc::FetchRelease, started, &result);
        result
    }
}

/// A client certificate, as the TLS handshake gave it.
type Leaf<'a> = rustls::pki_types::CertificateDer<'a>;

/// The client certificate a gRPC call came with.
fn peer_leaf<T>(req: &Request<T>) -> Result<Leaf<'static>, Status> {
    req.peer_certs()
        .and_then(|certs| certs.first().cloned())
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))
}

impl AgentService {
    /// Answers a call carried on the push channel (`server::push`) as its gRPC twin would be
    /// answered: the same checks, the same sequence numbers, the same metrics.
    pub async fn carried(&self, leaf: &Leaf<'_>, call: pb::PushCall) -> pb::PushAnswer {
        let started = std::time::Instant::now();
        let Some(env) = call.request else {
            return push_answer(Err(Status::invalid_argument("a carried call without its signed request")));
        };
        let (rpc, result) = match call.method.as_str() {
            wire::METHOD_CHECK_IN => (Rpc::CheckIn, encoded(self.check_in_call(leaf, &env).await)),
            wire::METHOD_RESOLVE => {
                (Rpc::ResolveSecrets, encoded(self.resolve_secrets_call(leaf, &env).await))
            }
            wire::METHOD_REPORT => (Rpc::ReportRun, encoded(self.report_run_call(leaf, &env).await)),
            other => {
                return push_answer(Err(Status::unimplemented(format!(
                    "{:?} is not carried on the push channel; call it over gRPC",
                    audit::clip(other)
                ))))
            }
        };
        self.server.metrics.rpc(rpc, started, &result);
        self.server.metrics.push_calls.inc();
        push_answer(result)
    }
}

fn encoded<M: Message>(result: Result<M, Status>) -> Result<Vec<u8>, Status> {
    result.map(|m| m.encode_to_vec())
}

fn push_answer(result: Result<Vec<u8>, Status>) -> pb::PushAnswer {
    match result {
        Ok(payload) => pb::PushAnswer { code: 0, message: String::new(), payload },
        Err(s) => {
            pb::PushAnswer { code: s.code() as i32, message: s.message().to_string(), payload: Vec::new() }
        }
    }
}

/// Results that finished a task's batch let its next batch start: nudge those envoys now.
pub(super) fn nudge_next_batches<'a>(
    s: &Server,
    conn: &rusqlite::Connection,
    task_ids: impl Iterator<Item = &'a str>,
) {
    let ids: std::collections::BTreeSet<&str> = task_ids.collect();
    if ids.is_empty() || s.nudges.watching() == 0 {
        return;
    }
    for id in ids {
        match store::tasks::startable_envoys(conn, id) {
            Ok(envoys) => {
                s.nudges.nudge(envoys.iter().map(String::as_str), super::nudges::Reason::Task);
            }
            Err(e) => tracing::warn!(task = id, error = %e, "cannot find the envoys a task may start on"),
        }
    }
}

/// Traits arrive as a JSON object of bounded size whose digest is the one sent with it.
fn check_traits(body: &pb::CheckInRequest) -> Result<(), Status> {
    if body.traits_json.is_empty() {
        return Ok(());
    }
    if body.traits_json.len() > crate::agent::traits::MAX_BYTES {
        return Err(Status::invalid_argument(format!(
            "traits of {} bytes; at most {}",
            body.traits_json.len(),
            crate::agent::traits::MAX_BYTES
        )));
    }
    if !matches!(
        serde_json::from_str::<serde_json::Value>(&body.traits_json),
        Ok(serde_json::Value::Object(_))
    ) {
        return Err(Status::invalid_argument("traits must be a JSON object"));
    }
    if crypto::sha256_hex(body.traits_json.as_bytes()) != body.traits_digest {
        return Err(Status::invalid_argument("the traits do not match their digest"));
    }
    Ok(())
}
