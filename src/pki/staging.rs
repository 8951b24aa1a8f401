//! A change to the TLS directory is made whole in a sibling staging directory
//! (`.<name>.staging-PID`, same filesystem) and put in place by one rename: an atomic exchange
//! with the directory in force, or a plain rename when there is none yet. The caller commits
//! the change's audit row between the two (`cli::audited`), so the order is: stage, commit the
//! row, exchange. A crash before the exchange leaves the old set and a staging directory (swept
//! once its writer is gone, at the next TLS change or server start); after it, the new set
//! with its row. Never a change without its row, nor a CA without its key.

use std::path::{Path, PathBuf};

use crate::util::fsutil;
use crate::util::lock::FileLock;

/// A staged change, holding the TLS lock until it is put in place or dropped (which removes
/// the staging directory and leaves the TLS directory as it was).
pub struct Staged {
    _lock: FileLock,
    staging: PathBuf,
    target: PathBuf,
    /// The target holds a set now: exchange with it (else rename onto the empty or missing dir).
    exchange: bool,
}

fn parts(dir: &Path) -> (PathBuf, String) {
    let parent = fsutil::parent_dir(dir).to_path_buf();
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (parent, name)
}

fn staging_prefix(name: &str) -> String {
    format!(".{name}.staging-")
}

/// Takes the TLS lock, sweeps what killed writers left, and makes an empty staging directory
/// for `dir`. `exchange`: `dir` holds the set in force.
fn begin(dir: &Path, exchange: bool) -> Result<Staged, String> {
    let (parent, name) = parts(dir);
    fsutil::ensure_dir(&parent, 0o700).map_err(|e| format!("{}: {e}", parent.display()))?;
    let lock = FileLock::acquire(
        &parent.join(format!("{name}.lock")),
        Some(std::time::Duration::from_secs(30)),
        "a TLS change",
    )?;
    sweep(dir);
    let staging = parent.join(format!("{}{}", staging_prefix(&name), std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    fsutil::ensure_dir(&staging, 0o700).map_err(|e| e.to_string())?;
    Ok(Staged { _lock: lock, staging, target: dir.to_path_buf(), exchange })
}

/// A staging copy of the set in `dir`, changed by `change` (which gets the staging directory).
pub fn stage_change(dir: &Path, change: impl FnOnce(&Path) -> Result<(), String>) -> Result<Staged, String> {
    let staged = begin(dir, true)?;
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        if !entry.file_type().map_err(|e| e.to_string())?.is_file() {
            continue;
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &entry.metadata().map_err(|e| e.to_string())?.permissions(),
        );
        let bytes = std::fs::read(entry.path()).map_err(|e| e.to_string())?;
        fsutil::atomic_write(&staged.staging.join(entry.file_name()), &bytes, mode & 0o777)
            .map_err(|e| e.to_string())?;
    }
    change(&staged.staging)?;
    Ok(staged)
}

/// A new set for `dir`, which must be absent or empty, written by `write`.
pub fn stage_new(dir: &Path, write: impl FnOnce(&Path) -> Result<(), String>) -> Result<Staged, String> {
    let staged = begin(dir, false)?;
    write(&staged.staging)?;
    Ok(staged)
}

impl Staged {
    /// Where the staged set is being written (for a check before it is put in place).
    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Puts the staged set in place with one rename; the old set, if any, is removed after.
    pub fn put_in_place(self) -> Result<(), String> {
        use nix::fcntl::{renameat2, RenameFlags};
        if self.exchange {
            renameat2(None, &self.staging, None, &self.target, RenameFlags::RENAME_EXCHANGE)
                .map_err(|e| format!("replacing {}: {e}", self.target.display()))?;
        } else {
            // rename(2) replaces an empty directory and refuses one with files in it.
            std::fs::rename(&self.staging, &self.target)
                .map_err(|e| format!("{}: {e} (it already holds files)", self.target.display()))?;
        }
        fsutil::sync_dir(fsutil::parent_dir(&self.target)).map_err(|e| e.to_string())
        // Drop removes the staging name, which now holds the old set (or nothing).
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// Removes the staging directories beside `dir` whose writer is gone (a change killed before
/// its exchange); a live writer's is kept. Returns how many.
pub fn sweep(dir: &Path) -> usize {
    let (parent, name) = parts(dir);
    let prefix = staging_prefix(&name);
    let Ok(entries) = std::fs::read_dir(&parent) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name.strip_prefix(&prefix).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !crate::util::process::alive(pid) && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}
