//! What a run has written but not yet made durable and visible.
//!
//! Flushing each file to disk on its own costs one journal commit per file, which dominates a
//! run that writes many files (about 1 ms each on a virtual disk). Instead the file executor
//! writes a complete temp file beside its target and stages it here; the engine commits the
//! batch before any resource that could observe it (anything but another file, or a file that
//! depends on a staged one) and at the end of the run: flush the temps' data (one `syncfs` per
//! filesystem for a large batch), then rename each into place. A crash or `kill -9` before the
//! rename leaves the old file and a stray temp, which the next run that manages a file in that
//! directory removes; never a half-written target.
//!
//! Directory entries changed by the run (renames, creates, removals) are fsynced once per
//! directory when the run is over: a rename is atomic without that fsync, which only makes it
//! durable.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Up to this many staged files are flushed one by one; above it, one `syncfs` per filesystem
/// is cheaper (it also flushes other processes' dirty data, which is why it is not always used).
const SYNC_EACH_UP_TO: usize = 16;

struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    /// The resource (its index in the bundle) that wrote it.
    owner: usize,
}

#[derive(Default)]
pub(crate) struct Batch {
    staged: RefCell<Vec<Staged>>,
    /// The owners of `staged`, for `holds` (asked for every dependency of every resource).
    owners: RefCell<BTreeSet<usize>>,
    owner: Cell<usize>,
    dirs: RefCell<BTreeSet<PathBuf>>,
    swept: RefCell<BTreeSet<PathBuf>>,
    /// Directories a noop run would have created, so what goes inside them is not reported
    /// as failing for want of a parent.
    noop_created: RefCell<BTreeSet<PathBuf>>,
}

impl Batch {
    pub fn note_noop_created(&self, dir: &std::path::Path) {
        self.noop_created.borrow_mut().insert(dir.to_path_buf());
    }

    pub fn noop_created(&self, dir: &std::path::Path) -> bool {
        self.noop_created.borrow().contains(dir)
    }

    /// Names the resource whose writes follow.
    pub fn begin(&self, owner: usize) {
        self.owner.set(owner);
    }

    pub fn is_empty(&self) -> bool {
        self.staged.borrow().is_empty()
    }

    /// Whether `owner` has a write waiting for the next commit.
    pub fn holds(&self, owner: usize) -> bool {
        self.owners.borrow().contains(&owner)
    }

    /// Writes `bytes` to a temp file beside `path` (final mode and owner already set) and
    /// stages its rename over `path` for the next commit.
    pub fn stage_file(&self, path: &Path, bytes: &[u8], mode: u32, ids: (u32, u32)) -> Result<(), String> {
        let tmp = super::rootfs::write_temp(path, bytes, mode, ids, false)?;
        self.staged.borrow_mut().push(Staged { tmp, path: path.to_path_buf(), owner: self.owner.get() });
        self.owners.borrow_mut().insert(self.owner.get());
        Ok(())
    }

    /// Notes that an entry of `path`'s directory changed, to fsync that directory at the end.
    pub fn note_dir_of(&self, path: &Path) {
        if let Some(dir) = path.parent() {
            self.dirs.borrow_mut().insert(dir.to_path_buf());
        }
    }

    /// Flushes and renames every staged file. Returns the owner and error of each one that
    /// could not be put in place (its temp is removed; the old file stays).
    pub fn commit(&self) -> Vec<(usize, String)> {
        let staged = std::mem::take(&mut *self.staged.borrow_mut());
        self.owners.borrow_mut().clear();
        let sync_errors = flush_data(&staged);
        let mut failed = Vec::new();
        for (s, sync_error) in staged.into_iter().zip(sync_errors) {
            let result = match sync_error {
                Some(e) => Err(e),
                None => fs::rename(&s.tmp, &s.path).map_err(|e| e.to_string()),
            };
            match result {
                Ok(()) => self.note_dir_of(&s.path),
                Err(e) => {
                    let _ = fs::remove_file(&s.tmp);
                    failed.push((s.owner, format!("writing {}: {e}", s.path.display())));
                }
            }
        }
        failed
    }

    /// Fsyncs every noted directory once; returns the ones that failed.
    pub fn sync_dirs(&self) -> Vec<String> {
        let dirs = std::mem::take(&mut *self.dirs.borrow_mut());
        dirs.into_iter()
            .filter_map(|d| {
                File::open(&d).and_then(|f| f.sync_all()).err().map(|e| format!("{}: {e}", d.display()))
            })
            .collect()
    }

    /// Removes temps that an earlier, killed run left in `dir` (once per directory per run).
    pub fn sweep_once(&self, dir: &Path) {
        if !self.swept.borrow_mut().insert(dir.to_path_buf()) {
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = stray_temp_pid(&name.to_string_lossy());
            if pid.is_some_and(|pid| pid != std::process::id() && !process_alive(pid)) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Flushes the staged temps' data to disk; one entry per temp, `Some(error)` where it failed.
fn flush_data(staged: &[Staged]) -> Vec<Option<String>> {
    if staged.len() <= SYNC_EACH_UP_TO {
        return staged
            .iter()
            .map(|s| File::open(&s.tmp).and_then(|f| f.sync_data()).err().map(|e| e.to_string()))
            .collect();
    }
    // One syncfs per filesystem the temps live on, found through their directories.
    let mut by_device: BTreeMap<u64, Result<(), String>> = BTreeMap::new();
    let devices: Vec<Option<u64>> =
        staged.iter().map(|s| fs::symlink_metadata(&s.tmp).ok().map(|m| m.dev())).collect();
    for (s, dev) in staged.iter().zip(&devices) {
        if let Some(dev) = dev {
            by_device.entry(*dev).or_insert_with(|| syncfs_of(&s.tmp));
        }
    }
    devices
        .iter()
        .map(|dev| match dev {
            None => Some("the staged temp file vanished".to_string()),
            Some(dev) => by_device[dev].clone().err(),
        })
        .collect()
}

fn syncfs_of(path: &Path) -> Result<(), String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    nix::unistd::syncfs(f.as_raw_fd()).map_err(|e| format!("syncfs: {e}"))
}

/// The pid in a temp name made by `rootfs::temp_beside` (`.NAME.vigo-PID-HEX12`).
fn stray_temp_pid(name: &str) -> Option<u32> {
    let (_, tail) = name.strip_prefix('.')?.rsplit_once(".vigo-")?;
    let (pid, rand) = tail.split_once('-')?;
    let hex = rand.len() == 12 && rand.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| pid.parse().ok()).flatten()
}

/// Whether a process with this pid exists (ours or someone else's).
pub(super) fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // EPERM means it exists but is someone else's.
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stray_temp_names_are_recognised_and_nothing_else() {
        assert_eq!(stray_temp_pid(".app.conf.vigo-4242-0123456789ab"), Some(4242));
        assert_eq!(stray_temp_pid(".a.vigo-b.vigo-7-abcdefabcdef"), Some(7));
        assert_eq!(stray_temp_pid("app.conf.vigo-4242-0123456789ab"), None);
        assert_eq!(stray_temp_pid(".app.conf.vigo-4242-0123"), None);
        assert_eq!(stray_temp_pid(".app.conf.vigo-x-0123456789ab"), None);
        assert_eq!(stray_temp_pid(".bashrc"), None);
    }

    fn scratch(tag: &str) -> PathBuf {
        let rand = crate::crypto::hex_encode(&crate::crypto::random_bytes(4).unwrap());
        let d = std::env::temp_dir().join(format!("vigo-batch-{tag}-{}-{rand}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        v.sort();
        v
    }

    #[test]
    fn commit_renames_small_and_large_batches_and_reports_what_failed() {
        for n in [2, SYNC_EACH_UP_TO + 4] {
            let dir = scratch("commit");
            let batch = Batch::default();
            for i in 0..n {
                batch.begin(i);
                batch
                    .stage_file(&dir.join(format!("f{i}")), b"new", 0o640, super::super::rootfs::own_ids())
                    .unwrap();
            }
            assert!(batch.holds(0) && batch.holds(n - 1) && !batch.holds(n));
            // Nothing is visible before the commit.
            assert!(entries(&dir).iter().all(|e| e.starts_with('.')), "{:?}", entries(&dir));
            // The last target turns into a non-empty directory: its rename must fail.
            let blocked = dir.join(format!("f{}", n - 1));
            fs::create_dir_all(blocked.join("inner")).unwrap();
            let failed = batch.commit();
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].0, n - 1);
            assert!(failed[0].1.contains(&blocked.display().to_string()), "{}", failed[0].1);
            for i in 0..n - 1 {
                let f = dir.join(format!("f{i}"));
                assert_eq!(fs::read(&f).unwrap(), b"new");
                assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o640);
            }
            assert_eq!(entries(&dir).len(), n, "a temp survived: {:?}", entries(&dir));
            assert!(batch.is_empty() && !batch.holds(0));
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn sweep_removes_temps_of_dead_runs_only() {
        let dir = scratch("sweep");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let dead_temp = format!(".app.conf.vigo-{dead}-0123456789ab");
        let live_temp = ".app.conf.vigo-1-0123456789ab".to_string(); // pid 1 is always alive
        for name in [&dead_temp, &live_temp, &".bashrc".to_string(), &"app.conf".to_string()] {
            fs::write(dir.join(name), "x").unwrap();
        }
        let batch = Batch::default();
        batch.sweep_once(&dir);
        assert_eq!(entries(&dir), [".app.conf.vigo-1-0123456789ab", ".bashrc", "app.conf"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
