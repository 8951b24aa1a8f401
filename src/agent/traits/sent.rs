//! What the agent sends at check-in: the traits whole when they changed since the server last
//! took them, else only their digest. `<base>/traits.json` (0600) keeps the last traits
//! collected, when the expensive collectors last ran, and the digest the server acknowledged.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::paths::AgentPaths;

#[derive(Serialize, Deserialize, Default)]
struct Kept {
    traits: Option<Value>,
    expensive_at: i64,
    acknowledged: Option<String>,
}

fn file(paths: &AgentPaths) -> std::path::PathBuf {
    paths.base.join("traits.json")
}

fn load(paths: &AgentPaths) -> Kept {
    std::fs::read(file(paths)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn save(paths: &AgentPaths, kept: &Kept) {
    let saved = serde_json::to_vec(kept)
        .map_err(|e| e.to_string())
        .and_then(|b| crate::util::fsutil::atomic_write(&file(paths), &b, 0o600).map_err(|e| e.to_string()));
    if let Err(e) = saved {
        tracing::warn!(error = %e, "could not keep the traits; they are collected whole and sent again next time");
    }
}

/// This check-in's traits: `json` empty when the server already has them.
pub struct Outgoing {
    pub json: String,
    pub digest: String,
}

/// Collects (the expensive collectors when their last run is `EXPENSIVE_EVERY` intervals old)
/// and decides what to send.
pub fn outgoing(paths: &AgentPaths, interval_secs: u32) -> Outgoing {
    let mut kept = load(paths);
    let now = crate::util::time::unix_now();
    let every = super::EXPENSIVE_EVERY as i64 * i64::from(interval_secs.max(1));
    let all = kept.traits.is_none() || now - kept.expensive_at >= every;
    let traits = super::collect(all, kept.traits.as_ref());
    let digest = super::digest(&traits);
    let text = serde_json::to_string(&traits).unwrap_or_default();
    let known = kept.acknowledged.as_deref() == Some(digest.as_str());
    let json = if known || text.len() > super::MAX_BYTES { String::new() } else { text };
    if all {
        kept.expensive_at = now;
    }
    kept.traits = Some(traits);
    save(paths, &kept);
    Outgoing { json, digest }
}

/// After the server answered: it holds these traits now, unless it asked for them.
pub fn answered(paths: &AgentPaths, sent: &Outgoing, send_traits: bool) {
    let mut kept = load(paths);
    kept.acknowledged = if send_traits { None } else { Some(sent.digest.clone()) };
    save(paths, &kept);
}
