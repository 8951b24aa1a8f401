//! TCP accept loops: TLS handshakes run off the accept path (bounded by a timeout), then the
//! connection goes to tonic (agent port) or hyper (admin port).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve_agent(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: super::grpc::AgentService,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let acceptor = TlsAcceptor::from(tls);
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => break,
            };
            let Ok((tcp, _peer)) = accepted else { continue };
            let _ = tcp.set_nodelay(true);
            let tcp = super::idle::IdleTimeout::new(tcp, super::idle::AGENT_IDLE_TIMEOUT);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok::<_, std::io::Error>(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "agent TLS handshake failed"),
                    Err(_) => tracing::debug!("agent TLS handshake timed out"),
                }
            });
        }
    });
    let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut stop = shutdown;
    tonic::transport::Server::builder()
        .add_service(crate::proto::v1::vigo_agent_server::VigoAgentServer::new(service))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.changed().await;
        })
        .await
        .map_err(|e| format!("agent listener: {e}"))
}

pub async fn serve_admin(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return Ok(()),
        };
        let Ok((tcp, _peer)) = accepted else { continue };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}
