//! Protected files and directories known by what they are — device and inode — rather than
//! by how a path spells them: a symlinked parent, a hard link, `..`, `//` or a bind mount all
//! lead to the same identity.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub(crate) struct ProtectedId {
    dev: u64,
    ino: u64,
    /// The path it was protected under (named in the rule).
    pub path: PathBuf,
    /// A directory whose whole subtree is protected (else only the entry itself).
    subtree: bool,
}

impl ProtectedId {
    /// The identity of `path` as it exists now (symlinks followed); `None` when it does not.
    pub fn of(path: &Path, subtree: bool) -> Option<ProtectedId> {
        let m = fs::metadata(path).ok()?;
        Some(ProtectedId { dev: m.dev(), ino: m.ino(), path: path.to_path_buf(), subtree })
    }

    fn is(&self, m: &fs::Metadata) -> bool {
        m.dev() == self.dev && m.ino() == self.ino
    }
}

/// What `find` learnt about directories during one run: for a directory as the bundle's path
/// spells it, the protected subtree it resolves into (an index into the ids), if any. Resolving
/// costs a readlink and a stat per ancestor; a run over a thousand paths in a few directories
/// would repeat the same walk a thousand times. The engine empties it whenever a resource may
/// have changed the filesystem (see `Guardrails::forget_resolved_dirs`), so an answer is only
/// reused while nothing the run did could have moved a directory, a symlink or a mount.
#[derive(Debug, Default)]
pub(crate) struct ResolvedDirs(Mutex<HashMap<PathBuf, Option<usize>>>);

impl Clone for ResolvedDirs {
    /// A copy starts empty: what it would hold is only valid for the run that learnt it.
    fn clone(&self) -> Self {
        ResolvedDirs::default()
    }
}

impl ResolvedDirs {
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The protected entry that `host` is, or lies under, however it is reached.
pub(crate) fn find<'a>(ids: &'a [ProtectedId], host: &Path, known: &ResolvedDirs) -> Option<&'a ProtectedId> {
    // The entry itself: its own inode (a hard link), and what a symlink there points to.
    for m in [fs::symlink_metadata(host), fs::metadata(host)].into_iter().flatten() {
        if let Some(id) = ids.iter().find(|id| id.is(&m)) {
            return Some(id);
        }
    }
    // Its directories as the kernel resolves them: from the deepest one that exists, with
    // every symlink on the way followed. A directory already resolved in this run existed then,
    // and nothing has changed since (or the engine would have emptied `known`).
    let mut known = known.0.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(verdict) = host.parent().and_then(|d| known.get(d)) {
        return verdict.map(|i| &ids[i]);
    }
    let mut dir = host.parent();
    while let Some(d) = dir {
        if fs::metadata(d).is_ok() {
            break;
        }
        dir = d.parent();
    }
    let dir = dir?;
    if let Some(verdict) = known.get(dir) {
        return verdict.map(|i| &ids[i]);
    }
    let resolved: PathBuf = fs::canonicalize(dir).ok()?;
    let verdict = resolved
        .ancestors()
        .filter_map(|a| fs::metadata(a).ok())
        .find_map(|m| ids.iter().position(|id| id.subtree && id.is(&m)));
    known.insert(dir.to_path_buf(), verdict);
    verdict.map(|i| &ids[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_of_a_protected_path_is_recognised() {
        let d = std::env::temp_dir().join(format!("vigo-ident-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("state/sub")).unwrap();
        fs::create_dir_all(d.join("other")).unwrap();
        fs::write(d.join("state/guardrails.yaml"), "").unwrap();
        fs::write(d.join("binary"), "").unwrap();
        let ids = [
            ProtectedId::of(&d.join("state"), true).unwrap(),
            ProtectedId::of(&d.join("binary"), false).unwrap(),
        ];
        std::os::unix::fs::symlink(d.join("state"), d.join("alias")).unwrap();
        std::os::unix::fs::symlink(d.join("state/sub"), d.join("deep-alias")).unwrap();
        std::os::unix::fs::symlink(d.join("binary"), d.join("other/bin-link")).unwrap();
        fs::hard_link(d.join("binary"), d.join("other/bin-hardlink")).unwrap();
        for alias in [
            "state/guardrails.yaml",
            "alias/guardrails.yaml",
            "alias/new/deeper/file",
            "deep-alias/x",
            "other/../state/x",
            "other/bin-link",
            "other/bin-hardlink",
        ] {
            assert!(find(&ids, &d.join(alias), &ResolvedDirs::default()).is_some(), "{alias}");
        }
        for free in ["other/x", "binary-not", "statefile", "other/new/x"] {
            assert!(find(&ids, &d.join(free), &ResolvedDirs::default()).is_none(), "{free}");
        }
        assert!(find(&ids, &d.join("binary"), &ResolvedDirs::default()).is_some(), "the binary itself");
        assert!(
            find(&ids, &d.join("binary/x"), &ResolvedDirs::default()).is_none(),
            "only a directory protects a subtree"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
