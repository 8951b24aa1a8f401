//! Offline convergence: after every check-in that applied, the agent keeps its bundle and
//! exactly the secret values that bundle is entitled to in `<base>/offline/bundle.cache`,
//! encrypted; when the server cannot be reached it applies that bundle again (drift keeps being
//! corrected) and queues the run reports (`queue`) until contact returns.
//!
//! The file: a magic line, a JSON header line (envoy id, bundle hash, secrets epoch, when it
//! was stored — nothing secret), then AES-256-GCM (nonce, ciphertext, tag) over the bundle and
//! the values. The key is derived with HKDF-SHA256 from the agent's Ed25519 identity key under
//! a label of its own, and never stored; the header is the associated data, so a cache moved
//! to another envoy, or its header edited, does not open. Root on the host can still decrypt it,
//! as root can already use the identity key (docs/SECURITY.md).

pub mod queue;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::crypto::{self, Ed25519Identity, MasterKey, SecretBytes};
use crate::exit::Failure;
use crate::paths::AgentPaths;
use crate::proto::v1 as pb;
use crate::util::fsutil;

const MAGIC: &[u8] = b"VIGO-OFFLINE-CACHE-1\n";
/// HKDF salt and info: this key is for this file and nothing else.
const KDF_SALT: &[u8] = b"vigo-agent offline cache";
const KDF_INFO: &[u8] = b"aes-256-gcm key v1";
/// A cache larger than this is not read (a bundle is bounded by the server's limits).
const MAX_CACHE_BYTES: u64 = 256 << 20;

/// `<base>/offline`: the cache, the report queue and the time of the last contact.
pub fn dir(paths: &AgentPaths) -> PathBuf {
    paths.base.join("offline")
}

/// Creates `<base>/offline` (0700) when missing.
fn ensure_dir(paths: &AgentPaths) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir(paths))
}

fn cache_path(paths: &AgentPaths) -> PathBuf {
    dir(paths).join("bundle.cache")
}

fn contact_path(paths: &AgentPaths) -> PathBuf {
    dir(paths).join("last-contact")
}

/// What the header says, in the clear and authenticated.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub envoy_id: String,
    pub bundle_hash: String,
    pub secrets_epoch: u64,
    pub stored_at: i64,
}

impl Header {
    fn aad(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// What is encrypted: the bundle as the server sent it and the values, base64.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    bundle: String,
    values: BTreeMap<String, String>,
}

/// A cache opened with this agent's identity.
pub struct Cached {
    pub header: Header,
    pub bundle: pb::PolicyBundle,
    pub values: BTreeMap<String, SecretBytes>,
}

fn key(identity: &Ed25519Identity) -> Result<MasterKey, Failure> {
    let bytes = crypto::hkdf_sha256(KDF_SALT, identity.pkcs8_der(), KDF_INFO, crypto::KEY_LEN)
        .map_err(|e| Failure::failed(e.to_string()))?;
    MasterKey::from_bytes(&bytes).map_err(|e| Failure::failed(e.to_string()))
}

/// Replaces the cache with `bundle` and the values of exactly the keys it is entitled to,
/// unless it holds that bundle under that epoch already.
pub fn store(
    paths: &AgentPaths,
    identity: &Ed25519Identity,
    envoy_id: &str,
    bundle: &pb::PolicyBundle,
    values: &BTreeMap<String, SecretBytes>,
) -> Result<(), Failure> {
    // The same bundle under the same epoch is entitled to the same values: nothing to write
    // (a steady agent would otherwise rewrite and fsync the cache every interval). The header
    // alone is not trusted for that: a cache whose body is damaged is written again.
    let same = |h: &Header| {
        h.envoy_id == envoy_id
            && h.bundle_hash == bundle.bundle_hash
            && h.secrets_epoch == bundle.secrets_epoch
    };
    if header(paths).is_some_and(|h| same(&h))
        && load(paths, identity, envoy_id).is_ok_and(|kept| kept.is_some_and(|k| same(&k.header)))
    {
        return Ok(());
    }
    let entitled =
        crate::bundle::CompiledBundle::from_wire(bundle).map_err(Failure::failed)?.entitled_keys()?;
    let header = Header {
        envoy_id: envoy_id.to_string(),
        bundle_hash: bundle.bundle_hash.clone(),
        secrets_epoch: bundle.secrets_epoch,
        stored_at: crate::util::time::unix_now(),
    };
    let payload = Payload {
        bundle: crypto::b64_encode(&bundle.encode_to_vec()),
        values: values
            .iter()
            .filter(|(k, _)| entitled.contains(*k))
            .map(|(k, v)| (k.clone(), crypto::b64_encode(v.expose())))
            .collect(),
    };
    let plain = SecretBytes::new(serde_json::to_vec(&payload).map_err(|e| Failure::failed(e.to_string()))?);
    let sealed = crypto::seal(&key(identity)?, &header.aad(), plain.expose())
        .map_err(|e| Failure::failed(e.to_string()))?;
    let mut file = MAGIC.to_vec();
    file.extend_from_slice(&header.aad());
    file.push(b'\n');
    file.extend_from_slice(&sealed);
    ensure_dir(paths).map_err(Failure::from)?;
    fsutil::atomic_write(&cache_path(paths), &file, 0o600).map_err(Failure::from)
}

/// The header alone, read without the rest (`vigo-agent status`, every check-in); None
/// without a cache.
pub fn header(paths: &AgentPaths) -> Option<Header> {
    use std::io::Read;
    let file = std::fs::File::open(cache_path(paths)).ok()?;
    let mut first = Vec::new();
    file.take(8192).read_to_end(&mut first).ok()?;
    split(&first).ok().map(|(h, _)| h)
}

/// The hash of the bundle kept for `envoy_id`, if any: what a check-in names so that an
/// unchanged bundle is not sent again.
pub fn held_bundle_hash(paths: &AgentPaths, envoy_id: &str) -> Option<String> {
    header(paths).filter(|h| h.envoy_id == envoy_id).map(|h| h.bundle_hash)
}

fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, Failure> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::failed(format!("{}: {e}", path.display()))),
        Ok(m) if !m.is_file() || m.len() > MAX_CACHE_BYTES => {
            return Err(Failure::failed(format!("{} is not a cache this agent wrote", path.display())))
        }
        Ok(_) => {}
    }
    std::fs::read(path).map(Some).map_err(|e| Failure::failed(format!("{}: {e}", path.display())))
}

fn split(bytes: &[u8]) -> Result<(Header, &[u8]), String> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("not an offline cache")?;
    let end = rest.iter().position(|&b| b == b'\n').ok_or("no header")?;
    let header: Header = serde_json::from_slice(&rest[..end]).map_err(|e| format!("header: {e}"))?;
    Ok((header, &rest[end + 1..]))
}

/// Opens the cache for `envoy_id`. None without one; an error when it exists but does not open
/// (another envoy's, damaged, or encrypted under another identity).
pub fn load(
    paths: &AgentPaths,
    identity: &Ed25519Identity,
    envoy_id: &str,
) -> Result<Option<Cached>, Failure> {
    let Some(bytes) = read_capped(&cache_path(paths))? else { return Ok(None) };
    let broken = |why: String| Failure::failed(format!("the offline cache cannot be used: {why}"));
    let (header, sealed) = split(&bytes).map_err(broken)?;
    if header.envoy_id != envoy_id {
        return Err(broken("it belongs to another envoy".into()));
    }
    let plain = crypto::open(&key(identity)?, &header.aad(), sealed).map_err(|_| {
        broken("it does not open with this agent's identity key (copied, or tampered with)".into())
    })?;
    let payload: Payload = serde_json::from_slice(plain.expose()).map_err(|e| broken(e.to_string()))?;
    let bundle_bytes = crypto::b64_decode(&payload.bundle).map_err(|e| broken(e.to_string()))?;
    let bundle = pb::PolicyBundle::decode(bundle_bytes.as_slice()).map_err(|e| broken(e.to_string()))?;
    if bundle.bundle_hash != header.bundle_hash {
        return Err(broken("its bundle is not the one its header names".into()));
    }
    let mut values = BTreeMap::new();
    for (k, v) in payload.values {
        values.insert(k, SecretBytes::new(crypto::b64_decode(&v).map_err(|e| broken(e.to_string()))?));
    }
    Ok(Some(Cached { header, bundle, values }))
}

/// Forgets everything kept for offline runs: the cache and the queued reports. After the server
/// refused this envoy for good, nothing of it may be applied again.
pub fn wipe(paths: &AgentPaths) {
    forget_cache(paths);
    queue::clear(paths);
}

/// Removes the cache alone (it outlived `agent.offline_max_age`); the queued reports, which
/// hold no secret, still go to the server once it answers.
pub fn forget_cache(paths: &AgentPaths) {
    let _ = std::fs::remove_file(cache_path(paths));
}

/// Records that the server answered now.
pub fn note_contact(paths: &AgentPaths) {
    let _ = ensure_dir(paths);
    let _ = fsutil::atomic_write(
        &contact_path(paths),
        crate::util::time::unix_now().to_string().as_bytes(),
        0o600,
    );
}

/// When the server last answered (unix seconds), if ever since the offline state was kept.
pub fn last_contact(paths: &AgentPaths) -> Option<i64> {
    std::fs::read_to_string(contact_path(paths)).ok()?.trim().parse().ok()
}

/// `vigo-agent status`.
pub fn print_status(paths: &AgentPaths, json: bool) -> crate::exit::CmdResult {
    let now = crate::util::time::unix_now();
    let cached = header(paths);
    let status = serde_json::json!({
        "cached_bundle": cached.as_ref().map(|h| serde_json::json!({
            "bundle_hash": h.bundle_hash, "secrets_epoch": h.secrets_epoch,
            "stored_at": h.stored_at, "age_secs": now.saturating_sub(h.stored_at),
        })),
        "queued_reports": queue::len(paths),
        "dropped_reports": queue::dropped(paths),
        "last_contact": last_contact(paths),
        "last_contact_secs_ago": last_contact(paths).map(|t| now.saturating_sub(t)),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&status).map_err(|e| Failure::failed(e.to_string()))?);
        return Ok(());
    }
    let ago = |t: i64| crate::util::time::ago(Some(t), now);
    match &cached {
        Some(h) => println!(
            "cached bundle:   {} (secrets epoch {}), kept {}",
            h.bundle_hash.chars().take(16).collect::<String>(),
            h.secrets_epoch,
            ago(h.stored_at)
        ),
        None => println!("cached bundle:   none (no run has applied a bundle from the server yet)"),
    }
    let dropped = queue::dropped(paths);
    let dropped = if dropped > 0 {
        format!(" ({dropped} older ones dropped: the queue was full)")
    } else {
        String::new()
    };
    println!("queued reports:  {}{dropped}", queue::len(paths));
    match last_contact(paths) {
        Some(t) => println!("last contact:    {}", ago(t)),
        None => println!("last contact:    never recorded"),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
