//! Paths inside the target root, and the file primitives the executors share.
//!
//! Confinement, one rule for every executor: a bundle path must be absolute; `..` that would
//! climb above the root is refused; when the root is not `/`, no directory component inside
//! the root may be a symlink (it is never followed, since it could point anywhere on the
//! host). What an executor reads, locks, chmods or chowns in place must not be a symlink
//! either (`confine_all`), and is opened with `O_NOFOLLOW` so a link swapped in after the
//! check is refused rather than followed. With root `/` nothing can escape, so symlinked
//! directories such as `/lib -> usr/lib` are allowed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::libc;

use crate::util::users;

fn is_confining(root: &Path) -> bool {
    root != Path::new("/")
}

/// Resolves a bundle path inside `root` without following symlinks in its directories. The
/// last component is left for the caller to inspect (a symlink resource manages one).
pub(crate) fn confine(root: &Path, path: &str) -> Result<PathBuf, String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must be absolute"));
    }
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(format!("path {path:?} escapes the target root through '..'"));
                }
            }
            Component::Normal(p) => parts.push(p),
            Component::Prefix(_) => return Err(format!("path {path:?} is not a Unix path")),
        }
    }
    let mut out = root.to_path_buf();
    for (i, p) in parts.iter().enumerate() {
        out.push(p);
        if is_confining(root) && i + 1 < parts.len() {
            if let Ok(meta) = fs::symlink_metadata(&out) {
                if meta.file_type().is_symlink() {
                    return Err(format!(
                        "path {path:?} goes through the symlink {} inside the target root; \
                         refusing to follow it",
                        out.display()
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// `confine` for a path that will be followed whole — a directory a command runs in, a file
/// read, locked or changed in place: under a target root its last component may not be a
/// symlink either.
pub(crate) fn confine_all(root: &Path, path: &str) -> Result<PathBuf, String> {
    let out = confine(root, path)?;
    if is_confining(root) && fs::symlink_metadata(&out).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "path {path:?} is the symlink {} inside the target root; refusing to follow it",
            out.display()
        ));
    }
    Ok(out)
}

/// Opens `path` for reading without following a symlink at its last component (`O_NOFOLLOW`;
/// a FIFO does not block the open).
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// The bytes of the regular file at `path`; a symlink or anything but a regular file is an
/// error, never followed or read.
pub(crate) fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    let mut f = open_nofollow(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => io::Error::other("it is a symlink; refusing to follow it"),
        _ => e,
    })?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    // Sized from the stat already made: `File::read_to_end` would stat and seek again to guess
    // it, two system calls per file on a run that reads a thousand. Room to spare so that
    // reaching the end takes one more read, not a probe.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(64));
    (&mut f).take(u64::MAX).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The text of a file of the root's own database (`/etc/passwd`, `/etc/group`), confined like
/// any bundle path; `None` when it does not exist.
pub(crate) fn read_root_file(root: &Path, path: &str) -> Result<Option<String>, String> {
    let host = confine_all(root, path)?;
    match read_nofollow(&host) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", host.display())),
    }
}

/// Parses "0644", "644" or "0o644" (octal) into permission bits.
pub(crate) fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim().trim_start_matches("0o");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && !digits.is_empty())
        .ok_or_else(|| format!("mode {text:?} is not an octal mode like \"0644\""))
}

/// Owner name (or number) to a uid, as the target root's /etc/passwd defines it.
pub(crate) fn lookup_uid(root: &Path, name: &str) -> Result<u32, String> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let text = read_root_file(root, "/etc/passwd")?.unwrap_or_default();
    users::parse_passwd(&text)
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| e.uid)
        .ok_or_else(|| format!("owner {name:?} is not a user in {}", root.join("etc/passwd").display()))
}

pub(crate) fn lookup_gid(root: &Path, name: &str) -> Result<u32, String> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let text = read_root_file(root, "/etc/group")?.unwrap_or_default();
    users::parse_group(&text)
        .into_iter()
        .find(|g| g.0 == name)
        .map(|g| g.1)
        .ok_or_else(|| format!("group {name:?} is not a group in {}", root.join("etc/group").display()))
}

/// Wanted ownership and mode; `None` keeps what is there.
#[derive(Default, Clone, Copy)]
pub(crate) struct Meta {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Meta {
    /// Reads `mode`, `owner` and `group` from resource attributes.
    pub fn from_attrs(a: &super::attrs::Attrs, root: &Path) -> Result<Meta, String> {
        Ok(Meta {
            mode: a.string("mode")?.map(|m| parse_mode(&m)).transpose()?,
            uid: a.string("owner")?.map(|o| lookup_uid(root, &o)).transpose()?,
            gid: a.string("group")?.map(|g| lookup_gid(root, &g)).transpose()?,
        })
    }

    /// Lines describing how `current` differs from what is wanted.
    pub fn diff(&self, current: &fs::Metadata) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(m) = self.mode.filter(|m| *m != current.mode() & 0o7777) {
            out.push(format!("mode {:04o} -> {m:04o}", current.mode() & 0o7777));
        }
        if let Some(u) = self.uid.filter(|u| *u != current.uid()) {
            out.push(format!("owner {} -> {u}", current.uid()));
        }
        if let Some(g) = self.gid.filter(|g| *g != current.gid()) {
            out.push(format!("group {} -> {g}", current.gid()));
        }
        out
    }

    /// Applies ownership then mode (chown can clear setuid bits, so mode goes last), through a
    /// descriptor opened without following a symlink: a link swapped in is refused.
    pub fn apply(&self, path: &Path) -> Result<(), String> {
        if self.uid.is_none() && self.gid.is_none() && self.mode.is_none() {
            return Ok(());
        }
        let f = open_nofollow(path).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => format!("{} is a symlink; refusing to change it", path.display()),
            _ => format!("opening {}: {e}", path.display()),
        })?;
        if self.uid.is_some() || self.gid.is_some() {
            std::os::unix::fs::fchown(&f, self.uid, self.gid)
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
        }
        if let Some(m) = self.mode {
            f.set_permissions(fs::Permissions::from_mode(m))
                .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// A temp name beside `path` (same directory, so the final rename is atomic).
pub(crate) fn temp_beside(path: &Path) -> Result<PathBuf, String> {
    let name = path.file_name().ok_or_else(|| format!("{} has no file name", path.display()))?;
    let rand = crate::crypto::random_bytes(6).map_err(|e| e.to_string())?;
    Ok(path.with_file_name(format!(
        ".{}.vigo-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        crate::crypto::hex_encode(&rand)
    )))
}

/// Writes a file atomically with its final mode and owner already set before the rename:
/// temp file in the same directory, fsync, rename, fsync the directory. A crash (even
/// `kill -9`) leaves either the old file or the new one, plus at most a stray temp file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32, uid: u32, gid: u32) -> Result<(), String> {
    replace_file(path, bytes, mode, uid, gid)?;
    sync_parent(path).map_err(|e| format!("syncing the directory of {}: {e}", path.display()))
}

/// Temp file beside `path`, final mode and owner, fsync, rename over `path`.
fn replace_file(path: &Path, bytes: &[u8], mode: u32, uid: u32, gid: u32) -> Result<(), String> {
    let tmp = write_temp(path, bytes, mode, (uid, gid), true)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}

/// Writes `bytes` to a new temp file beside `path` with its final mode and owner, flushed to
/// disk when `sync` is set, and returns the temp's path; the caller renames it into place.
/// On error nothing is left behind.
pub(crate) fn write_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    (uid, gid): (u32, u32),
    sync: bool,
) -> Result<PathBuf, String> {
    let tmp = temp_beside(path)?;
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if sync {
            f.sync_data()?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(format!("writing {}: {e}", path.display()))
        }
    }
}

pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// The effective uid/gid new files get when no owner is asked for.
pub(crate) fn own_ids() -> (u32, u32) {
    (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_refuses_dotdot_escape_and_keeps_inside() {
        let root = Path::new("/srv/root");
        assert_eq!(confine(root, "/etc/x").unwrap(), Path::new("/srv/root/etc/x"));
        assert_eq!(confine(root, "/etc/../etc/x").unwrap(), Path::new("/srv/root/etc/x"));
        assert!(confine(root, "/../../etc/passwd").unwrap_err().contains("escapes"));
        assert!(confine(root, "/etc/../../x").unwrap_err().contains("escapes"));
        assert!(confine(root, "relative").is_err());
        assert_eq!(confine(Path::new("/"), "/etc/x").unwrap(), Path::new("/etc/x"));
    }

    #[test]
    fn modes_parse_as_octal() {
        assert_eq!(parse_mode("0644").unwrap(), 0o644);
        assert_eq!(parse_mode("755").unwrap(), 0o755);
        assert_eq!(parse_mode("4755").unwrap(), 0o4755);
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("77777").is_err());
    }

    /// Reads and in-place changes refuse a symlink at the last component even when it was
    /// swapped in after the caller looked (they open with O_NOFOLLOW).
    #[test]
    fn reads_and_changes_in_place_never_follow_a_symlink() {
        let d = std::env::temp_dir().join(format!("vigo-rootfs-nofollow-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("target"), "outside").unwrap();
        fs::set_permissions(d.join("target"), fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(d.join("target"), d.join("link")).unwrap();
        assert!(read_nofollow(&d.join("link")).unwrap_err().to_string().contains("symlink"));
        let err = Meta { mode: Some(0o600), ..Meta::default() }.apply(&d.join("link")).unwrap_err();
        assert!(err.contains("symlink"), "{err}");
        assert_eq!(fs::metadata(d.join("target")).unwrap().mode() & 0o7777, 0o644);
        assert_eq!(read_nofollow(&d.join("target")).unwrap(), b"outside");
        let root = d.join("root");
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(&d, root.join("etc")).unwrap();
        assert!(read_root_file(&root, "/etc/target").unwrap_err().contains("symlink"));
        assert!(confine_all(&root, "/etc").unwrap_err().contains("symlink"));
        fs::remove_dir_all(&d).unwrap();
    }
}
