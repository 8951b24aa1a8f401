//! TCP accept loops. Every connection takes a slot before anything else (see `conn_limits`);
//! TLS handshakes run off the accept path, bounded by a timeout; then the connection goes to
//! tonic (agent port) or hyper (admin port).
//!
//! On the agent port a connection changes stage after its handshake: one whose CA-issued
//! certificate holds the key of an enrolled, unrevoked envoy is an envoy's (idle timeout, envoy
//! slots, closed once the envoy is revoked); any other — a self-signed certificate, which may
//! only enroll, or a revoked envoy's — gets a hard deadline that no traffic (HTTP/2 PINGs
//! included) extends, and a few slots per source.
//!
//! On the admin port a request must arrive whole, head and body, within
//! `limits.admin_request_timeout` (`request_deadline`), and hyper's own refusals of requests it
//! cannot parse are JSON like every other API error (`raw_refusals`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::conn_limits::{ConnLimits, Full};
use super::idle::IdleTimeout;
use super::raw_refusals::JsonRefusals;
use super::request_deadline::{ClockedStream, RequestClock};
use super::state::Server;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Admin connections: the whole request head must arrive in this time (or the whole request's
/// deadline, when shorter) ...
const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// ... and a kept-alive connection carrying nothing is closed after this.
const ADMIN_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection caps, per stage, computed once at start from the settings and the descriptor
/// limit.
pub struct Limits {
    pub handshaking: Arc<ConnLimits>,
    pub envoys: Arc<ConnLimits>,
    /// Push channels, apart from `envoys`: they are held for as long as an agent runs.
    pub push: Arc<ConnLimits>,
    pub enrolling: Arc<ConnLimits>,
    pub admin: Arc<ConnLimits>,
    /// The hard lifetime of agent connections that are not an envoy's (an enrollment makes
    /// one call; this is plenty for it).
    pub enrolling_lifetime: Duration,
    /// The whole-request deadline of the admin port.
    pub admin_request_timeout: Duration,
}

impl Limits {
    /// The configured caps, lowered where needed so that all connections together stay within
    /// the descriptor limit (with some kept back for the database, logs and config files).
    pub fn new(s: &crate::settings::LimitSettings, descriptors: u64) -> Limits {
        const RESERVED: usize = 128;
        let budget = usize::try_from(descriptors).unwrap_or(usize::MAX).saturating_sub(RESERVED).max(64);
        let admin = s.admin_connections.min(budget / 8);
        let handshakes = s.handshakes.min(budget / 4);
        let enrolling = s.enrolling_connections.min(budget / 8);
        // What is left is shared by envoys' calls and push channels; calls come first: a
        // channel only saves a wait, a check-in is the job.
        let rest = budget - admin - handshakes - enrolling;
        let push = s.push_channels.min(rest / 2);
        let envoys = s.agent_connections.min(rest - push);
        if envoys < s.agent_connections || push < s.push_channels {
            tracing::warn!(
                descriptors,
                agent_connections = envoys,
                push_channels = push,
                "the descriptor limit allows fewer agent connections than configured; raise LimitNOFILE"
            );
        }
        // No single source may take more than a quarter of a stage that anyone can reach
        // before authenticating. Envoys behind one NAT address may: they hold certificates.
        let quarter = |total: usize, per_source: usize| per_source.min((total / 4).max(1));
        Limits {
            handshaking: ConnLimits::new(
                "agent handshakes",
                handshakes,
                quarter(handshakes, s.handshakes_per_source),
            ),
            envoys: ConnLimits::new("agent connections", envoys, s.agent_connections_per_source),
            push: ConnLimits::new("push channels", push, s.push_channels_per_source),
            enrolling: ConnLimits::new(
                "enrolling connections",
                enrolling,
                quarter(enrolling, s.enrolling_per_source),
            ),
            admin: ConnLimits::new(
                "admin connections",
                admin,
                quarter(admin, s.admin_connections_per_source),
            ),
            enrolling_lifetime: s.enrolling_lifetime(),
            admin_request_timeout: s.admin_request_timeout(),
        }
    }
}

/// Accepts the next connection. Errors such as running out of descriptors are waited out
/// rather than retried in a spin that would take a core.
async fn accept(listener: &TcpListener, label: &str) -> (TcpStream, IpAddr) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => return (tcp, peer.ip()),
            Err(e) => {
                use nix::errno::Errno;
                let out_of_resources = matches!(
                    e.raw_os_error().map(Errno::from_raw),
                    Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
                );
                if out_of_resources {
                    warn_throttled(label, &format!("accept failed: {e}; pausing"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// A warning at most every ten seconds per listener, so a flood cannot flood the log too.
fn warn_throttled(label: &str, message: &str) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let map = last.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    if map.get(label).is_some_and(|t| now.duration_since(*t) < Duration::from_secs(10)) {
        return;
    }
    map.insert(label.to_string(), now);
    tracing::warn!(listener = label, "{message}");
}

fn refused(limits: &ConnLimits, peer: IpAddr, why: Full) {
    let what = match why {
        Full::Listener => format!("connection cap of {} reached", limits.max_total),
        Full::Source => format!("{peer} holds its cap of {} connections", limits.max_per_source),
    };
    warn_throttled(limits.label, &format!("{}: {what}; closing new connections", limits.label));
}

pub async fn serve_agent(
    listener: TcpListener,
    server: Arc<Server>,
    service: super::grpc::AgentService,
    limits: Arc<Limits>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let verifier = server.verifier.clone();
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                a = accept(&listener, "agent") => a,
                _ = stop.changed() => break,
            };
            let slot = match limits.handshaking.try_acquire(peer) {
                Ok(s) => s,
                Err(why) => {
                    refused(&limits.handshaking, peer, why);
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let mut tcp = IdleTimeout::new(tcp, super::idle::AGENT_IDLE_TIMEOUT);
            tcp.hold(slot);
            // The configuration in force now: a TLS reload applies to the next connection.
            let acceptor = TlsAcceptor::from(server.tls().agent);
            let (tx, verifier, limits, server) =
                (tx.clone(), verifier.clone(), limits.clone(), server.clone());
            tokio::spawn(async move {
                let mut tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return tracing::debug!(error = %e, "agent TLS handshake failed"),
                    Err(_) => return tracing::debug!("agent TLS handshake timed out"),
                };
                // An envoy's connection only when the certificate is the CA's and its key an
                // enrolled envoy's that is not revoked: a revoked envoy's certificate still
                // chains to the CA.
                let envoy = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .filter(|leaf| verifier.is_ca_issued(leaf))
                    .and_then(|leaf| server.current_envoy_of(leaf));
                let push = tls.get_ref().1.alpn_protocol() == Some(crate::push_wire::ALPN);
                let stage = match (&envoy, push) {
                    (Some(_), true) => &limits.push,
                    (Some(_), false) => &limits.envoys,
                    (None, _) => &limits.enrolling,
                };
                let slot = match stage.try_acquire(peer) {
                    Ok(s) => s,
                    Err(why) => return refused(stage, peer, why),
                };
                let stream = tls.get_mut().0;
                stream.release_slots();
                stream.hold(slot);
                let is_envoy = envoy.is_some();
                let current = server.clone();
                match envoy {
                    Some(id) => stream.revalidate_with(Box::new(move || current.is_current_envoy(&id))),
                    None => stream.close_after(limits.enrolling_lifetime),
                }
                // The push channel is served here, not by gRPC; only an envoy may hold one.
                if push {
                    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned();
                    if let (true, Some(leaf)) = (is_envoy, leaf) {
                        super::push::serve(tls, leaf.into_owned(), server).await;
                    }
                    return;
                }
                let _ = tx.send(Ok::<_, std::io::Error>(tls)).await;
            });
        }
    });
    let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut stop = shutdown;
    tonic::transport::Server::builder()
        // Bounds what one connection can ask of the server at once, and how big its headers get.
        .max_concurrent_streams(32)
        .http2_max_header_list_size(16 * 1024)
        .add_service(crate::proto::v1::vigo_agent_server::VigoAgentServer::new(service))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.changed().await;
        })
        .await
        .map_err(|e| format!("agent listener: {e}"))
}

pub async fn serve_admin(
    listener: TcpListener,
    server: Arc<Server>,
    router: axum::Router,
    limits: Arc<Limits>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    loop {
        let (tcp, peer) = tokio::select! {
            a = accept(&listener, "admin") => a,
            _ = shutdown.changed() => return Ok(()),
        };
        let slot = match limits.admin.try_acquire(peer) {
            Ok(s) => s,
            Err(why) => {
                refused(&limits.admin, peer, why);
                continue;
            }
        };
        let mut tcp = IdleTimeout::new(tcp, ADMIN_IDLE_TIMEOUT);
        tcp.hold(slot);
        let acceptor = TlsAcceptor::from(server.tls().admin);
        let router = router.clone();
        let request_timeout = limits.admin_request_timeout;
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
                return;
            };
            let clock = Arc::new(RequestClock::default());
            let stream = ClockedStream::new(JsonRefusals::new(tls), clock.clone());
            // Every request carries the peer address, for login throttling and audit rows, and
            // the deadline by which its body must have arrived.
            let service = hyper_util::service::TowerToHyperService::new(tower::service_fn(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(super::admin::Peer(peer));
                    request.extensions_mut().insert(clock.deadline(request_timeout));
                    tower::ServiceExt::oneshot(router.clone(), request)
                },
            ));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(ADMIN_HEADER_TIMEOUT.min(request_timeout))
                .max_buf_size(64 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Push channels have their own cap beside the envoys' calls, and a descriptor limit
    /// that cannot hold both configured caps gives calls at least half of what is left.
    #[test]
    fn push_channels_are_capped_apart_from_calls_and_never_crowd_them_out() {
        let s = crate::settings::LimitSettings::default();
        let roomy = Limits::new(&s, 1 << 20);
        assert_eq!((roomy.envoys.max_total, roomy.push.max_total), (20_000, 20_000));
        let tight = Limits::new(&s, 1024);
        let rest =
            1024 - 128 - tight.admin.max_total - tight.handshaking.max_total - tight.enrolling.max_total;
        assert_eq!(tight.envoys.max_total + tight.push.max_total, rest, "all of what is left is used");
        assert!(tight.envoys.max_total >= tight.push.max_total, "{} calls", tight.envoys.max_total);
        let no_push = crate::settings::LimitSettings { push_channels: 0, ..s };
        assert_eq!(Limits::new(&no_push, 1024).envoys.max_total, rest, "no push, all for calls");
    }
}
