//! Agent self-update, the server's part: which release an envoy is offered at check-in (the
//! config's `agent_version` for it, published for its target, signature and bytes checked by
//! the server too), the binary streamed over the agent's mTLS channel, and the audit rows of
//! what agents report (updated, refused, rolled back).

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Mutex;

use super::state::{EnvoyInfo, Server};
use crate::audit::Event;
use crate::proto::v1 as pb;
use crate::release::{keys::ReleaseKey, manifest};
use crate::store::releases::Release;

/// Bytes per streamed chunk.
pub const CHUNK: usize = 256 * 1024;
/// At most this many events per check-in are recorded (the agent keeps a short list anyway).
const MAX_EVENTS: usize = 8;

#[derive(Default)]
pub struct Updates {
    /// The release key the server checks releases with (None: offers nothing).
    key: Mutex<Option<ReleaseKey>>,
    /// Releases whose file and signature the server has checked, by SHA-256.
    checked: Mutex<HashSet<String>>,
    /// (envoy id, sha256) already audited as offered by this process.
    offered: Mutex<HashSet<(String, String)>>,
}

impl Updates {
    pub fn set_key(&self, key: Option<ReleaseKey>) {
        *self.key.lock().unwrap_or_else(|p| p.into_inner()) = key;
    }

    /// The release public key as its one-line file (for the bootstrap script).
    pub fn key_line(&self) -> Option<String> {
        self.key
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|k| crate::release::keys::public_key_line(&k.public))
    }
}

fn file_of(s: &Server, sha256: &str) -> PathBuf {
    s.paths.releases_dir.join(sha256)
}

/// The release `envoy` should move to, if the config names another version than it reports.
pub fn wanted(s: &Server, envoy: &EnvoyInfo, running: &str, target: &str) -> Option<Release> {
    let published = s.current();
    let desired = published.tree.as_ref()?.desired_agent_version(&envoy.name)?;
    if desired == running {
        return None;
    }
    let release = match crate::store::releases::live(&s.db(), desired, target) {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::debug!(envoy = %envoy.name, version = desired, target, "no published release to offer");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the releases");
            return None;
        }
    };
    checked(s, &release).then_some(release)
}

/// Checks a release's signature and stored bytes once per process.
fn checked(s: &Server, r: &Release) -> bool {
    if s.updates.checked.lock().unwrap_or_else(|p| p.into_inner()).contains(&r.sha256) {
        return true;
    }
    let Some(key) = s.updates.key.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
        tracing::warn!("a release is configured but this server has no release key to check it with");
        return false;
    };
    let result = manifest::open(r.sig.as_bytes(), &key).map_err(|e| e.to_string()).and_then(|m| {
        let bytes = std::fs::read(file_of(s, &r.sha256)).map_err(|e| e.to_string())?;
        manifest::check_bytes(&m, &bytes).map_err(|e| e.to_string())?;
        if m.sha256 != r.sha256 || m.version != r.version || m.target != r.target {
            return Err("the stored record does not match its manifest".into());
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            s.updates.checked.lock().unwrap_or_else(|p| p.into_inner()).insert(r.sha256.clone());
            true
        }
        Err(e) => {
            tracing::error!(version = %r.version, sha256 = %r.sha256, error = %e, "a published release does not check out; not offered");
            false
        }
    }
}

/// The offer for the check-in answer, audited once per envoy and release.
pub fn offer(s: &Server, envoy: &EnvoyInfo, release: &Release) -> pb::ReleaseOffer {
    let first = s
        .updates
        .offered
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((envoy.id.clone(), release.sha256.clone()));
    if first {
        let detail = serde_json::json!({ "version": release.version, "sha256": release.sha256 });
        if let Err(e) = s.audit(&[Event::new("server", "release.offered", &envoy.id).detail(detail)]) {
            tracing::warn!(error = %e, "could not audit a release offer");
        }
    }
    pb::ReleaseOffer {
        version: release.version.clone(),
        sha256: release.sha256.clone(),
        size: release.size,
        sig: release.sig.clone(),
    }
}

/// Audits what the agent reports about its updates.
pub fn record_events(s: &Server, envoy: &EnvoyInfo, events: &[pb::UpdateEvent]) {
    let actor = format!("envoy:{}", envoy.id);
    let clip =
        |t: &str| crate::util::text::escape_control(&t.chars().take(300).collect::<String>()).into_owned();
    let rows: Vec<Event> = events
        .iter()
        .take(MAX_EVENTS)
        .filter_map(|e| {
            let action = match e.kind.as_str() {
                "updated" => "release.updated",
                "refused" => "release.refused",
                "rolled_back" => "release.rolled_back",
                _ => return None,
            };
            let detail = serde_json::json!({
                "from": clip(&e.from_version), "to": clip(&e.to_version), "reason": clip(&e.reason),
            });
            Some(Event::new(&actor, action, &envoy.id).detail(detail))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    if let Err(e) = s.audit(&rows) {
        tracing::warn!(error = %e, "could not audit an agent's update report");
    }
}

/// The bytes of the release `sha256` from `offset`, if it is the one this envoy is offered.
pub fn open_for(
    s: &Server,
    envoy: &EnvoyInfo,
    sha256: &str,
    offset: u64,
    target: &str,
) -> Result<std::fs::File, String> {
    let release = crate::store::releases::live_by_sha(&s.db(), sha256)
        .map_err(|e| e.to_string())?
        .ok_or("no such release")?;
    let offered = s
        .current()
        .tree
        .as_ref()
        .and_then(|t| t.desired_agent_version(&envoy.name).map(|v| v == release.version))
        .unwrap_or(false);
    if !offered || release.target != target || !checked(s, &release) {
        return Err("this release is not offered to this envoy".into());
    }
    if offset > release.size {
        return Err("offset beyond the end of the release".into());
    }
    let mut file = std::fs::File::open(file_of(s, sha256)).map_err(|e| e.to_string())?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    Ok(file)
}

/// Reads the next chunk (empty at the end).
pub fn next_chunk(file: &mut std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    while filled < CHUNK {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    Ok(buf)
}
