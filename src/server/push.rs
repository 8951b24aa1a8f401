//! The server's end of the push channel (framing in `push_wire`): a connection to the agent
//! port that negotiated `vigo-push/1` sends one signed Watch envelope, is answered, and then
//! carries nudges (`nudges`) and ping answers until either side closes it. Kept apart from
//! gRPC because an idle HTTP/2 connection costs the server twice what an idle push
//! connection may (docs/BENCHMARKS.md).

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_stream::StreamExt;

use super::state::Server;
use crate::proto::v1 as pb;
use crate::push_wire::{read_message, write_frame, write_message};

/// The Watch envelope must arrive this soon after the handshake.
const OPEN_WITHIN: Duration = Duration::from_secs(10);

/// A frame the peer does not take within this long (it stopped reading) closes the channel.
const WRITE_WITHIN: Duration = Duration::from_secs(10);

/// Agents ping every 30 s; a peer that pings more often than this is flooding (each answer
/// costs a TLS record and a flush) and is closed. The first ping may come at once.
const MIN_PING_GAP: Duration = Duration::from_secs(5);

/// Serves one push connection to its end. `leaf` is the client certificate it showed.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    leaf: CertificateDer<'static>,
    server: Arc<Server>,
) {
    let opened = match tokio::time::timeout(OPEN_WITHIN, open(&mut conn, &leaf, &server)).await {
        Ok(o) => o,
        Err(_) => return,
    };
    let envoy_id = match opened {
        Ok(id) => id,
        Err(refused) => {
            let _ = within(write_message(&mut conn, &pb::WatchAnswer { refused })).await;
            return;
        }
    };
    // Registered before the answer, so a nudge sent once the agent knows it is watching
    // cannot be missed.
    let mut nudges = server.nudges.stream(server.clone(), &envoy_id);
    // A revocation between the check of the envelope and the registration above would have
    // missed this stream: ask again now that it is registered.
    if !server.is_current_envoy(&envoy_id) {
        return;
    }
    if !within(write_message(&mut conn, &pb::WatchAnswer::default())).await {
        return;
    }
    // Pings are empty frames: four zero bytes, read as they come so that a nudge is never
    // held up by a half-read ping.
    let (mut ping, mut filled) = ([0u8; 4], 0);
    let mut last_ping: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            read = conn.read(&mut ping[filled..]) => {
                match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => filled += n,
                }
                if filled == ping.len() {
                    // Anything but a ping after the envelope breaks the protocol: close.
                    let now = tokio::time::Instant::now();
                    let flooding = last_ping.is_some_and(|t| now - t < MIN_PING_GAP);
                    if ping != [0; 4] || flooding || !within(write_frame(&mut conn, &[])).await {
                        return;
                    }
                    (last_ping, filled) = (Some(now), 0);
                }
            }
            next = nudges.next() => match next {
                Some(Ok(n)) => {
                    if !within(write_message(&mut conn, &n)).await {
                        return;
                    }
                }
                Some(Err(e)) => return tracing::warn!(error = %e.message(), "push channel closed"),
                // Another stream of the same envoy replaced this one.
                None => return,
            },
        }
    }
}

/// Whether a write finished, and in time.
async fn within(write: impl std::future::Future<Output = std::io::Result<()>>) -> bool {
    matches!(tokio::time::timeout(WRITE_WITHIN, write).await, Ok(Ok(())))
}

/// Reads and checks the Watch envelope (certificate, signature, time, sequence, as any call);
/// the envoy's id, or why it is refused.
async fn open<S: AsyncRead + Unpin>(
    conn: &mut S,
    leaf: &CertificateDer<'_>,
    server: &Server,
) -> Result<String, String> {
    let env: pb::SignedRequest = read_message(conn).await.map_err(|e| format!("no Watch envelope: {e}"))?;
    let v = server.verify_from(leaf, &env, crate::wire::METHOD_WATCH).map_err(|s| s.message().to_string())?;
    pb::WatchRequest::decode(v.payload.as_slice())
        .map_err(|_| "the payload is not a WatchRequest".to_string())?;
    server.write_fresh(&v, |_, _| Ok(())).await.map_err(|s| s.message().to_string())?;
    Ok(v.envoy.id)
}
