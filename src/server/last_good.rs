//! The last config tree that loaded and validated (at start or publish). A server whose config
//! directory has since broken (a typo, a secret deleted with `--force`) starts on that tree,
//! loudly, rather than not at all; a publish while running already keeps the old tree serving.
//!
//! Kept as one JSON file (tree names and texts, `secret:` refs but never values) so replacing
//! it is one atomic rename; laid out as a directory only when it is needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigTree};
use crate::secrets::Provider;
use crate::util::fsutil;

const SNAPSHOT: &str = "config.last-good.json";
/// Where a snapshot is laid out to be loaded; error messages then name these files.
const LAID_OUT: &str = "config.last-good";

#[derive(Serialize, Deserialize)]
struct Snapshot {
    content_hash: String,
    files: BTreeMap<String, String>,
}

/// Records `tree` as the last good one.
pub fn save(base: &Path, tree: &ConfigTree) -> Result<(), String> {
    let files = tree.sources().map(|(rel, text)| (rel.to_string(), text.to_string())).collect();
    let snapshot = Snapshot { content_hash: tree.content_hash(), files };
    let bytes = serde_json::to_vec(&snapshot).map_err(|e| e.to_string())?;
    fsutil::atomic_write(&base.join(SNAPSHOT), &bytes, 0o600).map_err(|e| e.to_string())
}

/// Larger than any tree the loader accepts (16 MiB) in JSON; a bigger file is not ours.
const MAX_SNAPSHOT: u64 = 64 * 1024 * 1024;

/// The snapshot's bytes: a regular file reached without following a symlink, of bounded size.
fn read_snapshot(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > MAX_SNAPSHOT {
        return Err(std::io::Error::other(
            "not a config snapshot this server wrote (not a regular file, or too big)",
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_SNAPSHOT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The last good tree, validated again against today's vault; `None` when there is none.
pub fn load(base: &Path, provider: &dyn Provider) -> Result<Option<ConfigTree>, String> {
    let path = base.join(SNAPSHOT);
    let bytes = match read_snapshot(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let snapshot: Snapshot = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a config snapshot ({e})", path.display()))?;
    let dir = lay_out(base, &snapshot)?;
    let errors = |errs: Vec<config::ConfigError>| {
        let first = errs.first().map(|e| e.to_string()).unwrap_or_default();
        format!("the last good config no longer loads either: {first}")
    };
    let tree = config::load_tree(&dir).map_err(errors)?;
    tree.validate_all(provider).map_err(errors)?;
    Ok(Some(tree))
}

/// Writes the snapshot's files under `<base>/config.last-good/`, replacing what was there.
fn lay_out(base: &Path, snapshot: &Snapshot) -> Result<PathBuf, String> {
    let dir = base.join(LAID_OUT);
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io)?;
    }
    fsutil::ensure_dir(&dir, 0o700).map_err(io)?;
    fsutil::ensure_dir(&dir.join("modules"), 0o700).map_err(io)?;
    for (rel, text) in &snapshot.files {
        if !config::is_tree_file(rel) {
            return Err(format!("the config snapshot names an unexpected file {rel:?}"));
        }
        fsutil::atomic_write(&dir.join(rel), text.as_bytes(), 0o600).map_err(io)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryProvider;

    fn tree_in(dir: &Path) -> ConfigTree {
        std::fs::create_dir_all(dir.join("modules")).unwrap();
        std::fs::write(dir.join("nodes.vgo"), "envoys:\n  - match: \"*\"\n    roles: [m]\n").unwrap();
        std::fs::write(
            dir.join("modules/m.vgo"),
            "resources:\n  - {name: d, type: directory, target_path: /d}\n",
        )
        .unwrap();
        config::load_tree(dir).unwrap()
    }

    #[test]
    fn a_saved_tree_loads_back_the_same_and_a_doctored_one_writes_nothing_outside() {
        let base = std::env::temp_dir().join(format!("vigo-last-good-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let tree = tree_in(&base.join("config"));
        let none = load(&base, &MemoryProvider::new()).unwrap();
        assert!(none.is_none());
        save(&base, &tree).unwrap();
        let back = load(&base, &MemoryProvider::new()).unwrap().unwrap();
        assert_eq!(back.content_hash(), tree.content_hash());
        // The laid-out copy is as private as the files in it.
        for dir in [base.join(LAID_OUT), base.join(LAID_OUT).join("modules")] {
            let mode =
                std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions());
            assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
        }

        let doctored = r#"{"content_hash":"x","files":{"nodes.vgo":"envoys: []\n","../escape.vgo":"x"}}"#;
        std::fs::write(base.join(SNAPSHOT), doctored).unwrap();
        let err = load(&base, &MemoryProvider::new()).err().unwrap();
        assert!(err.contains("unexpected file \"../escape.vgo\""), "{err}");
        assert!(!base.join("escape.vgo").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// A snapshot that is a symlink (to a canary outside) or a FIFO is refused without being
    /// followed or waited on.
    #[test]
    fn a_snapshot_that_is_not_a_regular_file_is_refused() {
        let base = std::env::temp_dir().join(format!("vigo-last-good-odd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let canary = base.join("canary.json");
        std::fs::write(&canary, r#"{"content_hash":"CANARY","files":{}}"#).unwrap();
        std::os::unix::fs::symlink(&canary, base.join(SNAPSHOT)).unwrap();
        let err = load(&base, &MemoryProvider::new()).err().unwrap();
        assert!(!err.contains("CANARY"), "{err}");
        std::fs::remove_file(base.join(SNAPSHOT)).unwrap();
        nix::unistd::mkfifo(&base.join(SNAPSHOT), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let started = std::time::Instant::now();
        assert!(load(&base, &MemoryProvider::new()).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
