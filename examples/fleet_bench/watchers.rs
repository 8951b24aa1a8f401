//! `--watchers N`: the first N envoys each hold the push channel on a connection of its own,
//! as `vigo-agent run` does: TLS with ALPN vigo-push/2, the signed Watch envelope, then frames
//! (a 4-byte big-endian length and a message; a copy of src/push_wire.rs). The server's
//! resident memory is read before the channels open, once they are all open and idle, and
//! after every channel has carried one nudge, so the cost of an idle push connection is
//! measured alone. The nudge comes from a publish: the time until the last channel has it is
//! the fleet-wide delivery time. Then, as `vigo-agent` does, these envoys' cycles ride their
//! channels (`Held::call`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::{err, pb, Envoy, Res};

const ALPN: &[u8] = b"vigo-push/2";

/// The largest frame read from the server (a check-in answer with a whole bundle).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

type Conn = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A held push connection, and the index of the envoy holding it.
pub struct Held {
    conn: Conn,
    envoy: usize,
}

impl Held {
    /// One call carried on the channel (`PushCall`), its answer decoded; nudges that come
    /// meanwhile are passed over.
    pub async fn call<M: Message + Default>(&mut self, method: &str, request: pb::SignedRequest) -> Res<M> {
        let call = pb::PushCall { method: method.into(), request: Some(request) }.encode_to_vec();
        let mut frame = Vec::with_capacity(4 + call.len());
        frame.extend_from_slice(&(call.len() as u32).to_be_bytes());
        frame.extend_from_slice(&call);
        self.conn.write_all(&frame).await.map_err(err)?;
        self.conn.flush().await.map_err(err)?;
        loop {
            let body = read_frame(&mut self.conn).await.map_err(err)?;
            let frame = pb::PushFrame::decode(body.as_slice()).map_err(err)?;
            if let Some(pb::push_frame::Frame::Answer(a)) = frame.frame {
                if a.code != 0 {
                    return Err(format!("{method}: code {}: {}", a.code, a.message));
                }
                return M::decode(a.payload.as_slice()).map_err(err);
            }
        }
    }
}

/// Resident memory of a process now, in KB (not the peak: channels are measured by difference).
pub fn rss_kb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

async fn read_frame(c: &mut Conn) -> std::io::Result<Vec<u8>> {
    let len = c.read_u32().await? as usize;
    if len > MAX_ANSWER {
        return Err(std::io::Error::other("oversized frame"));
    }
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).await?;
    Ok(body)
}

async fn open_one(
    envoy: usize,
    request: pb::SignedRequest,
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> Res<Held> {
    let mut config = (*tls).clone();
    config.alpn_protocols = vec![ALPN.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(err)?;
    tcp.set_nodelay(true).map_err(err)?;
    let name = ServerName::try_from("127.0.0.1").map_err(err)?;
    let mut conn =
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(err)?;
    let body = request.encode_to_vec();
    conn.write_all(&(body.len() as u32).to_be_bytes()).await.map_err(err)?;
    conn.write_all(&body).await.map_err(err)?;
    conn.flush().await.map_err(err)?;
    let answer =
        pb::WatchAnswer::decode(read_frame(&mut conn).await.map_err(err)?.as_slice()).map_err(err)?;
    if !answer.refused.is_empty() {
        return Err(format!("Watch refused: {}", answer.refused));
    }
    Ok(Held { conn, envoy })
}

/// Opens one push channel per envoy, `concurrency` at a time.
pub async fn open(envoys: &mut [Envoy], concurrency: usize) -> Res<Vec<Held>> {
    let mut held = Vec::with_capacity(envoys.len());
    let chunk_len = concurrency.max(1);
    for (c, chunk) in envoys.chunks_mut(chunk_len).enumerate() {
        let mut opening = JoinSet::new();
        for (i, e) in chunk.iter_mut().enumerate() {
            let request = e.envelope("Watch", pb::WatchRequest {}.encode_to_vec());
            opening.spawn(open_one(c * chunk_len + i, request, e.addr, e.tls.clone()));
        }
        while let Some(done) = opening.join_next().await {
            held.push(done.map_err(err)??);
        }
    }
    Ok(held)
}

/// Waits up to `limit` for one nudge on every channel; returns the channels, how many got
/// one, and when the last one came (seconds after `since`).
pub async fn first_nudges(held: Vec<Held>, since: Instant, limit: Duration) -> (Vec<Held>, usize, f64) {
    let mut waiting = JoinSet::new();
    for mut h in held {
        waiting.spawn(async move {
            let got = tokio::time::timeout(limit, read_frame(&mut h.conn)).await;
            let nudged = matches!(&got, Ok(Ok(body)) if pb::PushFrame::decode(body.as_slice())
                .is_ok_and(|f| matches!(f.frame, Some(pb::push_frame::Frame::Nudge(n)) if !n.reason.is_empty())));
            (h, nudged.then(|| since.elapsed().as_secs_f64()))
        });
    }
    let (mut back, mut delivered, mut last) = (Vec::new(), 0, 0.0f64);
    while let Some(Ok((h, at))) = waiting.join_next().await {
        if let Some(t) = at {
            delivered += 1;
            last = last.max(t);
        }
        back.push(h);
    }
    (back, delivered, last)
}

/// Gives each channel to the envoy that holds it: its cycles ride the channel from now on.
pub fn attach(held: Vec<Held>, envoys: &mut [Envoy]) {
    for h in held {
        let i = h.envoy;
        envoys[i].push = Some(Box::new(h));
    }
}

/// The summary's `watch` object.
pub fn summary(
    n: usize,
    before_kb: f64,
    idle_kb: f64,
    nudged_kb: f64,
    delivered: usize,
    last_s: f64,
) -> Value {
    let per = |kb: f64| if n == 0 { 0.0 } else { (kb - before_kb) / n as f64 };
    json!({
        "channels": n,
        "server_rss_before_mb": before_kb / 1024.0,
        "server_rss_kb_per_idle_channel": per(idle_kb),
        "server_rss_kb_per_channel_after_a_nudge": per(nudged_kb),
        "nudges_delivered": delivered,
        "last_nudge_after_publish_s": last_s,
    })
}
