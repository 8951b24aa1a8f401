//! `--watchers N`: the first N envoys each hold a Watch stream on a connection of its own, as
//! `vigo-agent run` does between runs. The server's resident memory is read before the streams
//! open, once they are all open and idle, and after every stream has carried one nudge, so
//! the cost of an idle push connection is measured alone. The nudge comes from a publish:
//! the time until the last stream has it is the fleet-wide delivery time.

use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::{connect, err, pb, Envoy, Res, H2};
use pb::vigo_agent_client::VigoAgentClient;

/// A held connection, and the stream on it unless only connections were asked for.
pub struct Held {
    _client: VigoAgentClient<H2>,
    stream: Option<tonic::Streaming<pb::Nudge>>,
}

/// Resident memory of a process now, in KB (not the peak: streams are measured by difference).
pub fn rss_kb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Opens one connection per envoy and, unless `connections_only` (which splits the cost of
/// the connection from the stream's), a Watch stream on it; `concurrency` at a time.
pub async fn open(envoys: &mut [Envoy], concurrency: usize, connections_only: bool) -> Res<Vec<Held>> {
    let mut held = Vec::with_capacity(envoys.len());
    for chunk in envoys.chunks_mut(concurrency.max(1)) {
        let mut opening = JoinSet::new();
        for e in chunk.iter_mut() {
            let request = e.envelope("Watch", pb::WatchRequest {}.encode_to_vec());
            let (addr, tls) = (e.addr, e.tls.clone());
            opening.spawn(async move {
                let mut client = connect(addr, tls).await?;
                if connections_only {
                    // A call makes the TLS and HTTP/2 handshakes complete, as a stream's would.
                    let _ = client.watch(pb::SignedRequest::default()).await;
                    return Ok(Held { _client: client, stream: None });
                }
                let stream = client.watch(request).await.map_err(|s| format!("Watch: {}", s.message()))?;
                Ok::<_, String>(Held { _client: client, stream: Some(stream.into_inner()) })
            });
        }
        while let Some(done) = opening.join_next().await {
            held.push(done.map_err(err)??);
        }
    }
    Ok(held)
}

/// Waits up to `limit` for one nudge on every stream; returns the streams, how many got one,
/// and when the last one came (seconds after `since`).
pub async fn first_nudges(held: Vec<Held>, since: Instant, limit: Duration) -> (Vec<Held>, usize, f64) {
    let mut waiting = JoinSet::new();
    for mut h in held {
        waiting.spawn(async move {
            let Some(stream) = h.stream.as_mut() else { return (h, None) };
            let got = tokio::time::timeout(limit, stream.message()).await;
            let at = matches!(got, Ok(Ok(Some(_)))).then(|| since.elapsed().as_secs_f64());
            (h, at)
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
        "streams": n,
        "server_rss_before_mb": before_kb / 1024.0,
        "server_rss_kb_per_idle_stream": per(idle_kb),
        "server_rss_kb_per_stream_after_a_nudge": per(nudged_kb),
        "nudges_delivered": delivered,
        "last_nudge_after_publish_s": last_s,
    })
}
