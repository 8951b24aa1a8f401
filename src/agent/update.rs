//! Agent self-update (docs/OPERATIONS.md, "Agent self-update"). When a check-in offers a
//! release, the agent checks the offer's signature with its own release key, refuses a lower
//! version unless the release was signed as a downgrade, fetches the binary over its mTLS
//! channel (resuming a cut download), checks size and SHA-256, keeps the running binary as
//! `<exe>.prev`, renames the new one into place and executes it. The new binary is on probation
//! until a check-in succeeds; if it cannot check in, the previous binary is put back and run.
//! Every step is a rename, so a kill at any moment leaves a complete binary at `<exe>`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::client::SignedClient;
use crate::exit::Failure;
use crate::paths::AgentPaths;
use crate::proto::v1 as pb;
use crate::release::{gate, keys, manifest, stamp};
use crate::util::fsutil;

/// Failed check-ins a daemon allows a new binary before it goes back to the previous one.
const PROBATION_FAILURES: u32 = 3;
/// Events kept for the server at most (oldest dropped).
const MAX_EVENTS: usize = 8;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Event {
    kind: String,
    from: String,
    to: String,
    reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probation {
    from: String,
    to: String,
    failures: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct State {
    /// Not yet delivered to the server.
    events: Vec<Event>,
    /// Between the swap and the new binary's first good check-in.
    probation: Option<Probation>,
    /// Releases refused (never tried again) or rolled back (tried again after a while: the
    /// server may only have been away), by SHA-256.
    refused: Vec<Refused>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Refused {
    sha256: String,
    /// Unix time after which it may be tried again (None: never).
    until: Option<i64>,
}

/// How long a rolled-back release waits before it is tried again.
const RETRY_ROLLED_BACK_SECS: i64 = 6 * 3600;

impl State {
    fn refuses(&self, sha256: &str) -> bool {
        let now = crate::util::time::unix_now();
        self.refused.iter().any(|r| r.sha256 == sha256 && r.until.is_none_or(|t| now < t))
    }
    fn refuse(&mut self, sha256: String, until: Option<i64>) {
        self.refused.retain(|r| r.sha256 != sha256);
        self.refused.push(Refused { sha256, until });
    }
}

fn state_path(paths: &AgentPaths) -> PathBuf {
    paths.base.join("update.json")
}

fn load(paths: &AgentPaths) -> State {
    std::fs::read(state_path(paths)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn save(paths: &AgentPaths, state: &State) -> Result<(), Failure> {
    let body = serde_json::to_vec_pretty(state).map_err(|e| Failure::failed(e.to_string()))?;
    fsutil::atomic_write(&state_path(paths), &body, 0o600).map_err(Failure::from)
}

fn push_event(state: &mut State, kind: &str, from: &str, to: &str, reason: &str) {
    state.events.push(Event { kind: kind.into(), from: from.into(), to: to.into(), reason: reason.into() });
    let excess = state.events.len().saturating_sub(MAX_EVENTS);
    state.events.drain(..excess);
}

/// The events to send with the next check-in: those stored, and "updated" when this binary is
/// the one on probation (the check-in that carries it is the proof).
pub fn pending_events(paths: &AgentPaths) -> Vec<pb::UpdateEvent> {
    let state = load(paths);
    let mut events: Vec<pb::UpdateEvent> = state
        .events
        .iter()
        .map(|e| pb::UpdateEvent {
            kind: e.kind.clone(),
            from_version: e.from.clone(),
            to_version: e.to.clone(),
            reason: e.reason.clone(),
        })
        .collect();
    if let Some(p) = state.probation.as_ref().filter(|p| p.to == stamp::version()) {
        events.push(pb::UpdateEvent {
            kind: "updated".into(),
            from_version: p.from.clone(),
            to_version: p.to.clone(),
            reason: String::new(),
        });
    }
    events
}

/// After a check-in the server answered: the events reached it, and a new binary has passed.
pub fn check_in_succeeded(paths: &AgentPaths) {
    let mut state = load(paths);
    if state.events.is_empty() && state.probation.is_none() {
        return;
    }
    if state.probation.as_ref().is_some_and(|p| p.to == stamp::version()) {
        tracing::info!(version = stamp::version(), "the new agent binary checked in; update complete");
    }
    state.events.clear();
    state.probation = None;
    if let Err(e) = save(paths, &state) {
        tracing::warn!(error = %e.message, "could not record the delivered update events");
    }
}

/// After a failed check-in: a new binary on probation that keeps failing (or fails a one-shot
/// run) goes back to the previous one, which is then executed. Returns only if nothing was done.
pub fn check_in_failed(paths: &AgentPaths, failure: &Failure, once: bool) {
    let mut state = load(paths);
    let Some(p) = state.probation.clone() else { return };
    if p.to != stamp::version() {
        // The swap never happened (killed before the rename): nothing to undo.
        state.probation = None;
        let _ = save(paths, &state);
        return;
    }
    let failures = p.failures + 1;
    if !once && failures < PROBATION_FAILURES {
        state.probation = Some(Probation { failures, ..p });
        let _ = save(paths, &state);
        return;
    }
    let Ok(exe) = exe_path() else { return };
    let prev = with_suffix(&exe, ".prev");
    if !prev.exists() {
        tracing::error!("the new binary cannot check in and there is no previous binary to go back to");
        return;
    }
    let reason = format!("the new binary could not check in: {}", failure.message);
    tracing::error!(from = %p.to, to = %p.from, %reason, "rolling back to the previous agent binary");
    push_event(&mut state, "rolled_back", &p.from, &p.to, &reason);
    if let Some(sha) = sha_of(&exe) {
        state.refuse(sha, Some(crate::util::time::unix_now() + RETRY_ROLLED_BACK_SECS));
    }
    state.probation = None;
    if save(paths, &state).is_err() {
        return;
    }
    let back = std::fs::rename(&prev, &exe)
        .and_then(|_| match std::fs::rename(with_suffix(&exe, ".sig.prev"), gate::sig_path(&exe)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .and_then(|_| fsutil::sync_dir(fsutil::parent_dir(&exe)));
    match back {
        Ok(()) => reexec(&exe),
        Err(e) => tracing::error!(error = %e, "could not put the previous binary back"),
    }
}

fn sha_of(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| crate::crypto::sha256_hex(&b))
}

fn exe_path() -> Result<PathBuf, Failure> {
    let exe =
        std::env::current_exe().map_err(|e| Failure::failed(format!("cannot find this binary: {e}")))?;
    let text = exe.to_string_lossy();
    Ok(PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text).to_string()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Acts on a check-in's offer: refuses it (recorded for the server), or installs it and
/// executes the new binary (does not return then).
pub async fn follow(client: &mut SignedClient, paths: &AgentPaths, offer: &pb::ReleaseOffer) {
    let mut state = load(paths);
    if offer.version == stamp::version() || state.refuses(&offer.sha256) {
        return;
    }
    match install(client, paths, offer).await {
        Ok(exe) => reexec(&exe),
        Err(Refusal::Final(reason)) => {
            tracing::warn!(version = %offer.version, %reason, "release refused");
            push_event(&mut state, "refused", stamp::version(), &offer.version, &reason);
            state.refuse(offer.sha256.clone(), None);
            let _ = save(paths, &state);
        }
        Err(Refusal::Retry(reason)) => {
            tracing::warn!(version = %offer.version, %reason, "update not done; will try again at the next check-in");
        }
    }
}

enum Refusal {
    /// This release will never do (bad signature, downgrade, tampered bytes).
    Final(String),
    /// Try again later (a cut download, a full disk).
    Retry(String),
}

async fn install(
    client: &mut SignedClient,
    paths: &AgentPaths,
    offer: &pb::ReleaseOffer,
) -> Result<PathBuf, Refusal> {
    let key = keys::trusted(&paths.release_key_file)
        .map_err(Refusal::Final)?
        .ok_or_else(|| Refusal::Final("this agent has no release key to check a release with".into()))?;
    let m = manifest::open(offer.sig.as_bytes(), &key).map_err(|e| Refusal::Final(e.to_string()))?;
    if m.sha256 != offer.sha256 || m.version != offer.version {
        return Err(Refusal::Final("the offer does not match its signed manifest".into()));
    }
    if m.target != stamp::TARGET {
        return Err(Refusal::Final(format!(
            "the release is for {}, this agent is {}",
            m.target,
            stamp::TARGET
        )));
    }
    let (new, own) = (semver::Version::parse(&m.version), semver::Version::parse(stamp::version()));
    let (Ok(new), Ok(own)) = (new, own) else {
        return Err(Refusal::Final("a version is not semver".into()));
    };
    if new < own && !m.allow_downgrade {
        return Err(Refusal::Final(format!(
            "{} is older than {} and was not signed as a downgrade (release sign --allow-downgrade)",
            m.version,
            stamp::version()
        )));
    }
    let exe = exe_path().map_err(|f| Refusal::Retry(f.message))?;
    let part = with_suffix(&exe, ".update.part");
    download(client, &part, &m).await?;
    let bytes = std::fs::read(&part).map_err(|e| Refusal::Retry(e.to_string()))?;
    if let Err(e) = manifest::check_bytes(&m, &bytes) {
        let _ = std::fs::remove_file(&part);
        return Err(Refusal::Final(format!("the downloaded binary was refused: {e}")));
    }
    swap(paths, &exe, &part, offer, &m.version).map_err(|e| Refusal::Retry(format!("installing: {e}")))?;
    Ok(exe)
}

/// Fetches the release into `part`, continuing a download of the same release cut earlier.
async fn download(client: &mut SignedClient, part: &Path, m: &manifest::Manifest) -> Result<(), Refusal> {
    let marker = with_suffix(part, ".sha256");
    let same = std::fs::read_to_string(&marker).map(|s| s.trim() == m.sha256).unwrap_or(false);
    let mut offset = if same { std::fs::metadata(part).map(|md| md.len()).unwrap_or(0) } else { 0 };
    if offset > m.size {
        offset = 0;
    }
    let retry = |e: std::io::Error| Refusal::Retry(e.to_string());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(offset == 0)
        .append(offset > 0)
        .mode(0o600)
        .open(part)
        .map_err(retry)?;
    std::fs::write(&marker, &m.sha256).map_err(retry)?;
    if offset < m.size {
        tracing::info!(version = %m.version, from = offset, size = m.size, "fetching the release");
        let mut stream =
            client.fetch_release(&m.sha256, offset).await.map_err(|f| Refusal::Retry(f.message))?;
        while let Some(chunk) = stream.message().await.map_err(|s| Refusal::Retry(s.message().to_string()))? {
            offset += chunk.data.len() as u64;
            if offset > m.size {
                drop(file);
                let _ = std::fs::remove_file(part);
                return Err(Refusal::Final("the server sent more bytes than the release has".into()));
            }
            file.write_all(&chunk.data).map_err(retry)?;
        }
    }
    file.sync_all().map_err(retry)?;
    let _ = std::fs::remove_file(&marker);
    Ok(())
}

/// Puts the new binary in place: the old one kept as `.prev` (and its `.sig`), the probation
/// recorded, then the renames. Each name always holds a complete file.
fn swap(
    paths: &AgentPaths,
    exe: &Path,
    part: &Path,
    offer: &pb::ReleaseOffer,
    version: &str,
) -> std::io::Result<()> {
    let dir = fsutil::parent_dir(exe);
    std::fs::set_permissions(part, std::fs::Permissions::from_mode(0o755))?;
    let sig_new = with_suffix(exe, ".sig.new");
    fsutil::atomic_write(&sig_new, offer.sig.as_bytes(), 0o644)?;
    // The running binary stays reachable as .prev (a second name for the same file).
    let prev_tmp = with_suffix(exe, ".prev.tmp");
    let _ = std::fs::remove_file(&prev_tmp);
    std::fs::hard_link(exe, &prev_tmp)?;
    std::fs::rename(&prev_tmp, with_suffix(exe, ".prev"))?;
    let sig = gate::sig_path(exe);
    if sig.exists() {
        std::fs::copy(&sig, with_suffix(exe, ".sig.prev"))?;
    }
    let mut state = load(paths);
    state.probation = Some(Probation { from: stamp::version().into(), to: version.into(), failures: 0 });
    save(paths, &state).map_err(|f| std::io::Error::other(f.message))?;
    fsutil::sync_dir(dir)?;
    std::fs::rename(part, exe)?;
    std::fs::rename(&sig_new, &sig)?;
    fsutil::sync_dir(dir)?;
    tracing::info!(from = stamp::version(), to = version, "new agent binary in place; starting it");
    Ok(())
}

/// Replaces this process with the binary at `exe`, same arguments (the role is picked by the
/// name it was started under, kept as argv[0]).
fn reexec(exe: &Path) {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    let err = std::process::Command::new(exe).arg0(arg0).args(args).exec();
    tracing::error!(error = %err, "could not start the new binary; this one keeps running");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_release_stays_refused_and_a_rolled_back_one_waits() {
        let mut state = State::default();
        let now = crate::util::time::unix_now();
        state.refuse("bad".into(), None);
        state.refuse("rolled".into(), Some(now + 60));
        state.refuse("old".into(), Some(now - 1));
        assert!(state.refuses("bad") && state.refuses("rolled"));
        assert!(!state.refuses("old") && !state.refuses("other"));
        state.refuse("rolled".into(), Some(now - 1));
        assert!(!state.refuses("rolled"), "a newer entry replaces the older one");
    }

    #[test]
    fn at_most_a_few_events_wait_for_the_server() {
        let mut state = State::default();
        for n in 0..20 {
            push_event(&mut state, "refused", "1.0.0", &format!("1.0.{n}"), "r");
        }
        assert_eq!(state.events.len(), MAX_EVENTS);
        assert_eq!(state.events.last().unwrap().to, "1.0.19");
    }
}
