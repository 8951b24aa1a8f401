//! The agent's client: TLS 1.3 with the agent's certificate, every call a signed envelope,
//! over gRPC or, while the agent holds its push channel, carried on it (`carrier`).

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tonic::transport::{Channel, Endpoint};

use super::carrier::{Carrier, PushConnection, Unanswered};
use super::state::AgentState;
use crate::crypto::Ed25519Identity;
use crate::exit::Failure;
use crate::paths::AgentPaths;
use crate::proto::v1 as pb;
use crate::proto::v1::vigo_agent_client::VigoAgentClient;
use crate::wire;

/// Where `server` (HOST:PORT) is, and the name its certificate must carry.
fn target(server: &str) -> Result<(std::net::SocketAddr, rustls::pki_types::ServerName<'static>), Failure> {
    let addr = crate::util::hosts::resolve(server).map_err(Failure::usage)?;
    let host = server
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(|c| c == '[' || c == ']'))
        .unwrap_or(server)
        .to_string();
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|_| Failure::usage(format!("bad server host {host:?}")))?;
    Ok((addr, name))
}

/// Opens a channel to `server` (HOST:PORT) over our own rustls configuration. Reusing one
/// `Arc<ClientConfig>` lets later connections resume their TLS session.
pub async fn connect(server: &str, tls: Arc<rustls::ClientConfig>) -> Result<Channel, Failure> {
    let (addr, name) = target(server)?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Failure::usage(e.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60));
    endpoint
        .connect_with_connector(tower::service_fn(move |_uri| {
            let connector = connector.clone();
            let name = name.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
        .map_err(|e| Failure::failed(format!("{UNREACHABLE} at {server}: {}", error_chain(&e))))
}

/// An error with its causes, outermost first ("transport error" alone says nothing).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// How every failure starts that means no answer came at all (no connection, or a call that
/// timed out or lost it), as opposed to an answer that refused: only the former lets the
/// agent run from its offline cache (`is_unreachable`).
const UNREACHABLE: &str = "cannot reach the server";

/// Whether the server could not be reached, rather than answered.
pub fn is_unreachable(f: &Failure) -> bool {
    f.message.starts_with(UNREACHABLE)
}

/// Maps a gRPC status to the agent's exit codes: denials are "refused" (3), and so is an
/// enrollment under a name an active envoy holds.
pub fn status_failure(what: &str, s: tonic::Status) -> Failure {
    let msg = format!("{what}: {}", s.message());
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
            Failure::failed(format!("{UNREACHABLE} ({what}): {}", s.message()))
        }
        // A throttled caller is refused too: trying again at once will not help.
        tonic::Code::PermissionDenied
        | tonic::Code::Unauthenticated
        | tonic::Code::AlreadyExists
        | tonic::Code::ResourceExhausted => Failure::refused(msg),
        _ => Failure::failed(msg),
    }
}

/// Whether the server does not know this envoy (or its certificate belongs to another).
pub fn is_unknown_envoy(f: &Failure) -> bool {
    f.code == crate::exit::EXIT_REFUSED && f.message.contains("unknown envoy")
}

/// Whether the server said this envoy is revoked: the one refusal that never passes.
pub fn is_revocation(f: &Failure) -> bool {
    f.code == crate::exit::EXIT_REFUSED && f.message.contains("has been revoked")
}

fn server_date(header: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(header).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// What became of a call offered to the push channel.
enum Carried<M> {
    /// The server's answer, or the error it answered with (or "unavailable", for a lost
    /// answer the caller does not resend).
    Answered(Result<M, tonic::Status>),
    /// No answer on the channel: send this envelope over gRPC.
    ToGrpc(pb::SignedRequest),
}

/// What to do with a call that left on the push channel and got no answer.
#[derive(Clone, Copy)]
enum IfLost {
    /// Sign it again and send it over gRPC (a second copy does no harm).
    Resend,
    /// Take it as no answer from the server, like a gRPC call cut short.
    Unreachable,
}

pub struct SignedClient {
    tls: Arc<rustls::ClientConfig>,
    /// Hex SHA-256 of the CA bundle this agent trusts (sent at check-in).
    ca_bundle_sha256: String,
    /// Where the server is reached (`HOST:PORT`).
    pub server: String,
    /// Open only during a check-in cycle: agents do not hold gRPC connections between
    /// intervals (the push channel is the one they hold).
    channel: Option<VigoAgentClient<Channel>>,
    /// The push channel's sending half, while one is open: check-ins, resolutions and reports
    /// go over it.
    carrier: Option<Arc<Carrier>>,
    /// Whether the server answered the last call carried on the channel (with an error, too).
    carried_answered: bool,
    identity: Ed25519Identity,
    pub state: AgentState,
    paths: AgentPaths,
    /// The hash of the bundle this agent holds, sent at check-in so that the server leaves the
    /// resources out when they are the same ("" asks for them whole).
    pub held_bundle_hash: String,
}

impl SignedClient {
    /// The client for this agent's server: the config file's `agent.server` if set, else the
    /// address recorded at enrollment (or by `set-server`).
    pub async fn open(paths: &AgentPaths) -> Result<SignedClient, Failure> {
        let state = AgentState::load(paths)?;
        let server = paths.server_override.clone().unwrap_or_else(|| state.server.clone());
        Self::open_at(paths, state, server).await
    }

    /// The client for the server at `server`, whatever is recorded.
    pub async fn open_at(
        paths: &AgentPaths,
        state: AgentState,
        server: String,
    ) -> Result<SignedClient, Failure> {
        let identity = super::state::load_identity(paths)?;
        let tls = Arc::new(super::state::client_tls(paths, &identity)?);
        let ca_bundle_sha256 = super::state::ca_bundle_sha256(paths)?;
        Ok(SignedClient {
            tls,
            ca_bundle_sha256,
            server,
            channel: None,
            carrier: None,
            carried_answered: false,
            identity,
            state,
            paths: paths.clone(),
            held_bundle_hash: String::new(),
        })
    }

    /// Reads the certificate and trusted CAs again (after a renewal); the next call reconnects.
    /// The push channel still shows the old certificate, which a rotated-out CA may no longer
    /// vouch for: it is closed, and opened again with the new one.
    pub fn reload_tls(&mut self) -> Result<(), Failure> {
        self.tls = Arc::new(super::state::client_tls(&self.paths, &self.identity)?);
        self.ca_bundle_sha256 = super::state::ca_bundle_sha256(&self.paths)?;
        self.channel = None;
        if let Some(carrier) = self.carrier.take() {
            carrier.close();
        }
        Ok(())
    }

    pub fn identity(&self) -> &Ed25519Identity {
        &self.identity
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.identity.public_key()
    }

    async fn grpc(&mut self) -> Result<&mut VigoAgentClient<Channel>, Failure> {
        if self.channel.is_none() {
            let channel = connect(&self.server, self.tls.clone()).await?;
            self.channel = Some(VigoAgentClient::new(channel));
        }
        Ok(self.channel.as_mut().expect("connected above"))
    }

    /// Whether the server answered: after a failed call, that the error is the server's own
    /// answer (a gRPC connection is open, or the call was answered on the push channel).
    pub fn is_connected(&self) -> bool {
        self.channel.is_some() || self.carried_answered
    }

    /// Closes the connection until the next call (the TLS session stays resumable; the push
    /// channel stays open).
    pub fn disconnect(&mut self) {
        self.channel = None;
        self.carried_answered = false;
    }

    /// Carries the next calls on this push channel (`watch::Watcher::ensure` opened it).
    pub fn carry_over(&mut self, carrier: Arc<Carrier>) {
        self.carrier = Some(carrier);
    }

    /// Offers `env` (signed for `method`) to the push channel, if one is open. A call that
    /// never left goes over gRPC as it is. One that left and got no answer (the channel died,
    /// or no answer came in time) may or may not have been acted on: `if_lost` says what
    /// then (`IfLost`).
    async fn carried<M: Message + Default>(
        &mut self,
        method: &'static str,
        env: pb::SignedRequest,
        if_lost: IfLost,
    ) -> Result<Carried<M>, Failure> {
        self.carried_answered = false;
        let Some(carrier) = self.carrier.as_ref() else { return Ok(Carried::ToGrpc(env)) };
        let outcome = carrier.call(method, &env).await;
        if !carrier.is_open() {
            self.carrier = None;
        }
        let answer = match outcome {
            Ok(answer) => answer,
            Err(Unanswered::NotSent) => return Ok(Carried::ToGrpc(env)),
            Err(Unanswered::Lost(why)) => {
                tracing::info!(why, method, "no answer on the push channel");
                return match if_lost {
                    // Signed again: the same envelope would be refused as a replay should the
                    // server have acted on the first copy.
                    IfLost::Resend => Ok(Carried::ToGrpc(self.envelope(method, env.payload)?)),
                    IfLost::Unreachable => Ok(Carried::Answered(Err(tonic::Status::unavailable(why)))),
                };
            }
        };
        self.carried_answered = true;
        Ok(Carried::Answered(match answer.code {
            0 => M::decode(answer.payload.as_slice()).map_err(|_| {
                tonic::Status::internal(format!("the server's answer to {method} does not decode"))
            }),
            _ => Err(super::carrier::status_of(&answer)),
        }))
    }

    /// Wraps `payload` in a signed envelope; the sequence is persisted before the request leaves.
    pub fn envelope(&mut self, method: &str, payload: Vec<u8>) -> Result<pb::SignedRequest, Failure> {
        let sequence = self.state.next_sequence();
        self.state.save(&self.paths)?;
        let timestamp_ms = crate::util::time::unix_now_millis();
        let msg = wire::signing_message(method, &self.state.envoy_id, timestamp_ms, sequence, &payload);
        Ok(pb::SignedRequest {
            envoy_id: self.state.envoy_id.clone(),
            timestamp_ms,
            sequence,
            signature: self.identity.sign(&msg).to_vec(),
            payload,
        })
    }

    /// A check-in; `takes_tasks` says whether this run will run the ad-hoc tasks handed out
    /// (a noop run, a repeated check-in or a probe takes none).
    pub async fn check_in(&mut self, takes_tasks: bool) -> Result<pb::CheckInResponse, Failure> {
        self.check_in_dated(takes_tasks).await.map(|(answer, _)| answer)
    }

    /// A check-in, and the server's clock as its answer's `date` header gives it (Unix seconds).
    pub async fn check_in_dated(
        &mut self,
        takes_tasks: bool,
    ) -> Result<(pb::CheckInResponse, Option<i64>), Failure> {
        // Test-only hook (compiled out of release builds, docs/SECURITY.md): a version that
        // cannot check in, to prove an update to it is rolled back.
        #[cfg(debug_assertions)]
        if std::env::var("VIGO_TEST_CHECKIN_FAILS_FOR").ok().as_deref() == Some(crate::release::version()) {
            return Err(Failure::failed("test hook: this version cannot check in"));
        }
        let traits = super::traits::sent::outgoing(&self.paths, self.state.checkin_interval_secs);
        let body = pb::CheckInRequest {
            traits_json: traits.json.clone(),
            traits_digest: traits.digest.clone(),
            agent_version: crate::release::version().into(),
            last_bundle_hash: self.held_bundle_hash.clone(),
            ca_bundle_sha256: self.ca_bundle_sha256.clone(),
            binary_status: super::selfcheck::binary_status(&self.paths),
            hardening: super::selfcheck::hardening(),
            target: crate::release::stamp::TARGET.into(),
            update_events: super::update::pending_events(&self.paths),
            no_tasks: !takes_tasks,
        };
        let env = self.envelope(wire::METHOD_CHECK_IN, body.encode_to_vec())?;
        // A second check-in is harmless: one whose answer was lost is made again.
        let answer = match self.carried(wire::METHOD_CHECK_IN, env, IfLost::Resend).await? {
            // The channel's answers carry no date: whoever needs the server's clock (doctor)
            // checks in over gRPC.
            Carried::Answered(carried) => carried.map(|answer| (answer, None)),
            Carried::ToGrpc(env) => self.grpc().await?.check_in(env).await.map(|r| {
                let date = r.metadata().get("date").and_then(|d| d.to_str().ok()).and_then(server_date);
                (r.into_inner(), date)
            }),
        };
        answer.map_err(|s| status_failure("check-in refused", s)).inspect(|(answer, _)| {
            super::traits::sent::answered(&self.paths, &traits, answer.send_traits);
            super::update::check_in_succeeded(&self.paths)
        })
    }

    /// The binary of an offered release, from `offset` on, as a stream of chunks.
    pub async fn fetch_release(
        &mut self,
        sha256: &str,
        offset: u64,
    ) -> Result<tonic::Streaming<pb::ReleaseChunk>, Failure> {
        let body = pb::FetchReleaseRequest {
            sha256: sha256.into(),
            offset,
            target: crate::release::stamp::TARGET.into(),
        };
        let env = self.envelope(wire::METHOD_FETCH_RELEASE, body.encode_to_vec())?;
        self.grpc()
            .await?
            .fetch_release(env)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| status_failure("release fetch refused", s))
    }

    /// Opens the push channel (framing in `push_wire`) on a connection of its own: TLS with
    /// ALPN vigo-push/2, the signed Watch envelope, and the server's answer.
    pub async fn open_push(&mut self) -> Result<PushConnection, Failure> {
        use crate::push_wire;
        let env = self.envelope(wire::METHOD_WATCH, pb::WatchRequest {}.encode_to_vec())?;
        let (addr, name) = target(&self.server)?;
        let mut config = (*self.tls).clone();
        config.alpn_protocols = vec![push_wire::ALPN.to_vec()];
        let unreachable =
            |e: &dyn std::fmt::Display| Failure::failed(format!("{UNREACHABLE} at {}: {e}", self.server));
        let opening = async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let mut conn = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
            if conn.get_ref().1.alpn_protocol() != Some(push_wire::ALPN) {
                return Err(std::io::Error::other("the server does not offer push"));
            }
            push_wire::write_message(&mut conn, &env).await?;
            let answer: pb::WatchAnswer = push_wire::read_message(&mut conn).await?;
            Ok((conn, answer))
        };
        let (conn, answer) = tokio::time::timeout(Duration::from_secs(30), opening)
            .await
            .map_err(|_| unreachable(&"no answer to Watch in 30 s"))?
            .map_err(|e| unreachable(&e))?;
        match answer.refused.is_empty() {
            true => Ok(conn),
            false => Err(Failure::refused(format!("push refused: {}", answer.refused))),
        }
    }

    /// One ResolveSecrets call for all `keys`; the answer is opened with a one-shot X25519 key.
    pub async fn resolve(
        &mut self,
        keys: &[String],
        epoch: u64,
    ) -> Result<(std::collections::BTreeMap<String, crate::crypto::SecretBytes>, u64), Failure> {
        let recipient = crate::crypto::EphemeralRecipient::generate()?;
        let body = pb::ResolveSecretsRequest {
            keys: keys.to_vec(),
            reply_public_key: recipient.public_key().to_vec(),
            secrets_epoch: epoch,
        };
        let env = self.envelope(wire::METHOD_RESOLVE, body.encode_to_vec())?;
        // The answer is sealed under the sequence of the envelope it answers. Asking again is
        // harmless (one more audit row), and the reply key stays this call's.
        let mut aad = wire::resolve_aad(&env.envoy_id, env.sequence);
        let answer: pb::ResolveSecretsResponse =
            match self.carried(wire::METHOD_RESOLVE, env, IfLost::Resend).await? {
                Carried::Answered(carried) => carried,
                Carried::ToGrpc(env) => {
                    aad = wire::resolve_aad(&env.envoy_id, env.sequence);
                    self.grpc().await?.resolve_secrets(env).await.map(tonic::Response::into_inner)
                }
            }
            .map_err(|s| status_failure("secret resolution refused", s))?;
        let plain = recipient.open(&aad, &answer.sealed_values)?;
        let mut values = pb::SecretValues::decode(plain.expose())
            .map_err(|_| Failure::failed("sealed secret answer is malformed"))?;
        let mut out = std::collections::BTreeMap::new();
        // Values are bytes, binary or text; the places that need text check (engine::attrs).
        for (k, mut v) in std::mem::take(&mut values.values) {
            out.insert(k, crate::crypto::SecretBytes::new(std::mem::take(&mut v)));
        }
        Ok((out, answer.secrets_epoch))
    }

    pub async fn renew_certificate(&mut self) -> Result<pb::RenewCertificateResponse, Failure> {
        let env = self.envelope(wire::METHOD_RENEW, pb::RenewCertificateRequest {}.encode_to_vec())?;
        self.grpc()
            .await?
            .renew_certificate(env)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| status_failure("certificate renewal refused", s))
    }

    pub async fn report(&mut self, report: pb::RunReport) -> Result<String, Failure> {
        self.report_or_refusal(report).await.map_err(|(failure, _)| failure)
    }

    /// `report`, also saying whether a refusal is for good: the server refused the report for
    /// what it is (malformed, or over its size limit), so sending it again is refused again.
    /// The hourly report budget, a server error or no answer pass with time.
    pub async fn report_or_refusal(&mut self, report: pb::RunReport) -> Result<String, (Failure, bool)> {
        let body =
            pb::ReportRunRequest { report: Some(report), ca_bundle_sha256: self.ca_bundle_sha256.clone() };
        let env = self.envelope(wire::METHOD_REPORT, body.encode_to_vec()).map_err(|f| (f, false))?;
        // A report whose answer was lost is kept and sent later, as after a gRPC call cut short
        // (should the server have stored it, that makes a second run row; never none).
        let carried =
            self.carried(wire::METHOD_REPORT, env, IfLost::Unreachable).await.map_err(|f| (f, false))?;
        let answer: Result<pb::ReportRunResponse, tonic::Status> = match carried {
            Carried::Answered(carried) => carried,
            Carried::ToGrpc(env) => {
                let grpc = self.grpc().await.map_err(|f| (f, false))?;
                grpc.report_run(env).await.map(tonic::Response::into_inner)
            }
        };
        answer.map(|r| r.run_id).map_err(|s| {
            let for_good = s.code() == tonic::Code::InvalidArgument
                || (s.code() == tonic::Code::ResourceExhausted
                    && s.message().contains(wire::REPORT_SIZE_SETTING));
            (status_failure("report refused", s), for_good)
        })
    }
}
