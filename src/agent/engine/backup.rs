//! Earlier contents of files managed with `backup: true`, kept in the agent's state directory
//! (`<base>/backups/`, 0700): one directory per host path, named by the path's SHA-256, holding
//! the path itself (`path`) and up to `KEEP` earlier contents (`<unix-ms>.bak`, 0600), oldest
//! dropped first. Content that held a secret is never kept: it would be a plaintext copy that
//! outlives a rotation (see docs/CONFIG.md).

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::fsutil::atomic_write;

/// Earlier contents kept per file.
pub const KEEP: usize = 5;

pub struct Kept {
    /// 1 is the newest.
    pub version: usize,
    pub taken_ms: i64,
    pub size: u64,
    pub file: PathBuf,
}

fn slot(dir: &Path, host_path: &str) -> PathBuf {
    dir.join(crate::crypto::sha256_hex(host_path.as_bytes()))
}

/// Keeps `bytes` as the newest earlier content of `host_path`, dropping the oldest beyond
/// `KEEP`. Identical to the newest kept one: nothing new is kept.
pub fn save(dir: &Path, host_path: &str, bytes: &[u8]) -> Result<(), String> {
    let slot = slot(dir, host_path);
    for d in [dir, slot.as_path()] {
        crate::util::fsutil::ensure_dir(d, 0o700)
            .map_err(|e| format!("backup directory {}: {e}", d.display()))?;
    }
    let fail = |e: std::io::Error| format!("keeping a backup of {host_path} in {}: {e}", slot.display());
    let kept = list(dir, host_path)?;
    if let Some(newest) = kept.first() {
        if fs::read(&newest.file).map_err(fail)? == bytes {
            return Ok(());
        }
    }
    atomic_write(&slot.join("path"), host_path.as_bytes(), 0o600).map_err(fail)?;
    // A clock that went back must not overwrite or reorder: always after the newest.
    let now = crate::util::time::unix_now_millis().max(kept.first().map_or(0, |k| k.taken_ms + 1));
    atomic_write(&slot.join(format!("{now}.bak")), bytes, 0o600).map_err(fail)?;
    for old in list(dir, host_path)?.iter().skip(KEEP) {
        fs::remove_file(&old.file).map_err(fail)?;
    }
    Ok(())
}

/// The earlier contents kept for `host_path`, newest first.
pub fn list(dir: &Path, host_path: &str) -> Result<Vec<Kept>, String> {
    let slot = slot(dir, host_path);
    let entries = match fs::read_dir(&slot) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", slot.display())),
    };
    let mut kept = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(taken_ms) = name.strip_suffix(".bak").and_then(|n| n.parse::<i64>().ok()) else { continue };
        let meta = entry.metadata().map_err(|e| format!("reading {}: {e}", entry.path().display()))?;
        if meta.is_file() {
            kept.push(Kept { version: 0, taken_ms, size: meta.len(), file: entry.path() });
        }
    }
    kept.sort_by_key(|k| std::cmp::Reverse(k.taken_ms));
    for (i, k) in kept.iter_mut().enumerate() {
        k.version = i + 1;
    }
    Ok(kept)
}
