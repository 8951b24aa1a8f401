//! Server push: an agent may hold one push channel (`server::push`), over which it is told
//! "check in now" when something it should act on changed (a publish, a secret rotation that
//! concerns it, a task for it). A nudge names only the reason; the agent still fetches
//! through its signed CheckIn, so a nudge can make an agent check in early and nothing more.
//!
//! Each watcher costs a map entry and a one-value channel: nudges to one envoy that come
//! before its connection took the last one merge into one. The nudge is signed when the stream hands
//! it out, on the connection's own task, so a publish that nudges the whole fleet does not
//! sign ten thousand messages in the caller.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tokio_stream::Stream;

use super::state::Server;
use crate::proto::v1 as pb;
use crate::util::time::unix_now_millis;

/// How long a whole-fleet nudge is spread over per envoy nudged, and at most: 10,000 envoys
/// nudged together arrive over 20 s, not in one burst.
const SPREAD_PER_ENVOY_MS: u32 = 2;
const MAX_SPREAD_MS: u32 = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Publish,
    Rotation,
    Task,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Publish => "publish",
            Reason::Rotation => "rotation",
            Reason::Task => "task",
        }
    }
}

#[derive(Clone, Copy)]
struct Pending {
    reason: Reason,
    spread_ms: u32,
}

struct Watcher {
    /// Tells a replaced stream's drop from the current one's.
    generation: u64,
    tx: watch::Sender<Option<Pending>>,
}

pub struct Nudges {
    watchers: Mutex<HashMap<String, Watcher>>,
    generations: AtomicU64,
    /// Nudge sequence numbers: microseconds at start, so they keep rising across restarts.
    sequence: AtomicU64,
}

impl Default for Nudges {
    fn default() -> Self {
        let start = u64::try_from(unix_now_millis()).unwrap_or(0).saturating_mul(1000);
        Nudges {
            watchers: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(0),
            sequence: AtomicU64::new(start),
        }
    }
}

impl Nudges {
    fn watchers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watcher>> {
        self.watchers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Envoys holding a stream now.
    pub fn watching(&self) -> usize {
        self.watchers().len()
    }

    /// Whether `envoy_id` holds a stream now.
    pub fn is_watching(&self, envoy_id: &str) -> bool {
        self.watchers().contains_key(envoy_id)
    }

    /// A new stream for `envoy_id`; an older one of the same envoy ends.
    pub fn stream(&self, server: Arc<Server>, envoy_id: &str) -> NudgeStream {
        let (tx, rx) = watch::channel(None);
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        self.watchers().insert(envoy_id.to_string(), Watcher { generation, tx });
        NudgeStream {
            inner: WatchStream::from_changes(rx),
            server,
            envoy_id: envoy_id.to_string(),
            generation,
        }
    }

    /// Nudges those of `envoy_ids` that hold a stream; returns how many did.
    pub fn nudge<'a>(&self, envoy_ids: impl IntoIterator<Item = &'a str>, reason: Reason) -> usize {
        let watchers = self.watchers();
        let targets: Vec<&Watcher> = envoy_ids.into_iter().filter_map(|id| watchers.get(id)).collect();
        Self::send(&targets, reason)
    }

    /// Nudges every envoy that holds a stream.
    pub fn nudge_all(&self, reason: Reason) -> usize {
        let watchers = self.watchers();
        let targets: Vec<&Watcher> = watchers.values().collect();
        Self::send(&targets, reason)
    }

    fn send(targets: &[&Watcher], reason: Reason) -> usize {
        let n = u32::try_from(targets.len()).unwrap_or(u32::MAX);
        let spread_ms = n.saturating_mul(SPREAD_PER_ENVOY_MS).min(MAX_SPREAD_MS);
        for w in targets {
            // No receiver means the stream is going away; its drop removes the entry.
            let _ = w.tx.send(Some(Pending { reason, spread_ms }));
        }
        targets.len()
    }

    /// Ends the envoy's stream, if it holds one (it was revoked): dropping the sender ends
    /// the stream and with it the connection.
    pub fn forget_envoy(&self, envoy_id: &str) {
        self.watchers().remove(envoy_id);
    }

    fn forget(&self, envoy_id: &str, generation: u64) {
        let mut watchers = self.watchers();
        if watchers.get(envoy_id).is_some_and(|w| w.generation == generation) {
            watchers.remove(envoy_id);
        }
    }

    /// The signed message for one pending nudge (see `Nudge` in agent.proto).
    fn signed(&self, server: &Server, envoy_id: &str, p: Pending) -> Result<pb::Nudge, tonic::Status> {
        let timestamp_ms = unix_now_millis();
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let reason = p.reason.as_str();
        let message = crate::wire::nudge_message(envoy_id, reason, timestamp_ms, sequence, p.spread_ms);
        let signature = server
            .pki()
            .ca_signer
            .sign(&message)
            .map_err(|e| tonic::Status::internal(format!("cannot sign a nudge: {e}")))?;
        Ok(pb::Nudge { reason: reason.into(), timestamp_ms, sequence, spread_ms: p.spread_ms, signature })
    }
}

/// One envoy's stream of nudges; leaving the registry when dropped (the connection closed).
pub struct NudgeStream {
    inner: WatchStream<Option<Pending>>,
    server: Arc<Server>,
    envoy_id: String,
    generation: u64,
}

impl Stream for NudgeStream {
    type Item = Result<pb::Nudge, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Some(p))) => {
                    let this = &*self;
                    return Poll::Ready(Some(this.server.nudges.signed(&this.server, &this.envoy_id, p)));
                }
                Poll::Ready(Some(None)) => continue,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for NudgeStream {
    fn drop(&mut self) {
        self.server.nudges.forget(&self.envoy_id, self.generation);
    }
}
