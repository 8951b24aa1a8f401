//! Atomic edits of `<root>/etc/{passwd,shadow,group,gshadow}` under the usual lock
//! (`/etc/.pwd.lock`, an fcntl write lock as glibc's `lckpwdf` takes it). Editing the files
//! directly keeps hashes off every command line and works the same under `--root`, where each
//! of those paths, the lock included, is confined like any bundle path: a symlinked `etc` or
//! `etc/shadow` is refused, never followed.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;

use super::rootfs;

/// One colon-separated file. Every line is kept as its fields, so unrelated lines (comments
/// included) are written back byte for byte.
pub(crate) struct Table {
    path: PathBuf,
    pub rows: Vec<Vec<String>>,
    original: Option<String>,
    /// Mode, owner, group for a file that does not exist yet.
    new_meta: (u32, u32, u32),
}

impl Table {
    fn load(path: PathBuf, required: bool, new_meta: (u32, u32, u32)) -> Result<Table, String> {
        let original = match rootfs::read_nofollow(&path) {
            Ok(bytes) => {
                Some(String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let rows = original
            .as_deref()
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(':').map(String::from).collect())
            .collect();
        Ok(Table { path, rows, original, new_meta })
    }

    pub fn exists(&self) -> bool {
        self.original.is_some()
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.rows.iter().position(|r| r.len() > 1 && r[0] == name && !name.starts_with('#'))
    }

    pub fn get(&self, name: &str) -> Option<&Vec<String>> {
        self.find(name).map(|i| &self.rows[i])
    }

    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.rows.len();
        self.rows.retain(|r| !(r.len() > 1 && r[0] == name));
        self.rows.len() != before
    }

    /// Inserts or replaces the row named by `row[0]`.
    pub fn put(&mut self, row: Vec<String>) {
        match self.find(&row[0]) {
            Some(i) => self.rows[i] = row,
            None => self.rows.push(row),
        }
    }

    /// Numeric ids in field 2 (uid or gid).
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.rows.iter().filter_map(|r| r.get(2)?.parse().ok())
    }

    fn render(&self) -> String {
        let mut out: String = self.rows.iter().map(|r| r.join(":") + "\n").collect();
        if self.rows.is_empty() {
            out.clear();
        }
        out
    }

    /// Writes the file atomically if it changed, keeping its mode and ownership.
    fn save(&self) -> Result<(), String> {
        let text = self.render();
        if self.original.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        let (mode, uid, gid) = match std::fs::symlink_metadata(&self.path) {
            Ok(m) => (m.mode() & 0o7777, m.uid(), m.gid()),
            Err(_) => self.new_meta,
        };
        rootfs::write_atomic(&self.path, text.as_bytes(), mode, uid, gid)
    }
}

/// Comma-separated member list of a group row (field 3).
pub(crate) fn members(row: &[String]) -> Vec<String> {
    row.get(3).map(|m| m.split(',').filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default()
}

/// The four account files of a root, read under the lock; the lock is held until drop.
pub(crate) struct Db {
    pub passwd: Table,
    pub shadow: Table,
    pub group: Table,
    pub gshadow: Table,
    /// None in noop runs: they only read, and must not even create the lock file.
    _lock: Option<File>,
}

impl Db {
    pub fn open(root: &Path, noop: bool) -> Result<Db, String> {
        let path = |p: &str| rootfs::confine_all(root, p);
        let lock = if noop { None } else { Some(lock(&path("/etc/.pwd.lock")?)?) };
        let group = Table::load(path("/etc/group")?, true, (0o644, 0, 0))?;
        let shadow_gid = group.get("shadow").and_then(|r| r.get(2)?.parse().ok()).unwrap_or(0);
        Ok(Db {
            passwd: Table::load(path("/etc/passwd")?, true, (0o644, 0, 0))?,
            shadow: Table::load(path("/etc/shadow")?, false, (0o640, 0, shadow_gid))?,
            gshadow: Table::load(path("/etc/gshadow")?, false, (0o640, 0, shadow_gid))?,
            group,
            _lock: lock,
        })
    }

    /// Writes what changed. Order: groups first and passwd last, so a crash in between never
    /// leaves an account that points at a group or shadow entry that is not there yet.
    pub fn save(&self) -> Result<(), String> {
        self.group.save()?;
        if self.gshadow.exists() {
            self.gshadow.save()?;
        }
        self.shadow.save()?;
        self.passwd.save()
    }

    /// Keeps gshadow (when the host has one) in step with a group row.
    pub fn sync_gshadow(&mut self, name: &str) {
        if !self.gshadow.exists() {
            return;
        }
        match self.group.get(name).cloned() {
            Some(g) => {
                let mut row = self
                    .gshadow
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| vec![name.to_string(), "!".into(), String::new(), String::new()]);
                row.resize(4, String::new());
                row[3] = g.get(3).cloned().unwrap_or_default();
                self.gshadow.put(row);
            }
            None => {
                self.gshadow.remove(name);
            }
        }
    }
}

/// The first free id at or above 1000 (below 60000, the usual system limits).
pub(crate) fn free_id(used: impl Iterator<Item = u32>, prefer: Option<u32>) -> Result<u32, String> {
    let used: std::collections::BTreeSet<u32> = used.collect();
    if let Some(p) = prefer.filter(|p| !used.contains(p)) {
        return Ok(p);
    }
    (1000..60000).find(|i| !used.contains(i)).ok_or_else(|| "no free id between 1000 and 59999".to_string())
}

/// `lckpwdf`'s lock: a write lock on the whole file, retried for up to 15 seconds.
fn lock(path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let want = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), FcntlArg::F_SETLK(&want)) {
            Ok(_) => return Ok(file),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "{} is locked by another user/group edit ({e}); try again",
                    path.display()
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Days since the epoch, for the shadow "last changed" field.
pub(crate) fn today() -> String {
    (crate::util::time::unix_now() / 86_400).to_string()
}
