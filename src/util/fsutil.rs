//! File writes that never leave a half-written file, and permission checks for key material.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The bytes of the regular file at `path`, at most `max` of them. Opened with `O_NONBLOCK`
/// and checked with `fstat` before anything is read, so a path naming a FIFO, a device or a
/// socket is refused at once instead of blocking the caller (or feeding it forever).
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket, device or directory); name the file itself",
        ));
    }
    if meta.len() > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {max} bytes")));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {max} bytes")));
    }
    Ok(bytes)
}

/// `read_regular` as UTF-8 text.
pub fn read_regular_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory (created with `mode`),
/// fsync, rename over the target, fsync the directory. A crash leaves the old file or the new.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = write_temp(path, bytes, mode)?;
    install_temp(&tmp, path)
}

/// The first half of `atomic_write`: `bytes` in a hidden, fsynced temp file next to `path`
/// (`.NAME.tmp-PID-RANDOM`), which `install_temp` renames into place. Callers that must record
/// something durable before the change becomes visible do that in between.
pub fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> io::Result<PathBuf> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        crate::crypto::hex_encode(&crate::crypto::random_bytes(6).map_err(io::Error::other)?)
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        // The umask may have narrowed the mode at create; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The second half of `atomic_write`: renames `tmp` over `path` and fsyncs the directory.
pub fn install_temp(tmp: &Path, path: &Path) -> io::Result<()> {
    let result = fs::rename(tmp, path).and_then(|_| File::open(parent_dir(path))?.sync_all());
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Makes a directory's entries (a rename, a new file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Creates `dir` (and parents) and sets its mode; an existing directory gets the mode too.
pub fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

/// Refuses key material that group or others can read or write.
pub fn check_private(path: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!("{} is a symlink; key files must be regular files", path.display()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {:04o}, readable or writable by group/others; fix it with `chmod 600 {}`",
            path.display(),
            mode,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
pub fn mode_of(path: &Path) -> io::Result<u32> {
    Ok(fs::metadata(path)?.mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vigo-fsutil-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let d = tmpdir("aw");
        let p = d.join("f");
        atomic_write(&p, b"one", 0o600).unwrap();
        assert_eq!(mode_of(&p).unwrap(), 0o600);
        atomic_write(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no temp file left behind");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn check_private_refuses_group_readable() {
        let d = tmpdir("cp");
        let p = d.join("k");
        atomic_write(&p, b"x", 0o640).unwrap();
        assert!(check_private(&p).unwrap_err().contains("chmod 600"));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_private(&p).is_ok());
        fs::remove_dir_all(&d).unwrap();
    }

    /// A FIFO, a device or a directory is refused without a byte read (no wait for a writer),
    /// and so is a file over the cap.
    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let d = tmpdir("rr");
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let started = std::time::Instant::now();
        for path in [fifo.as_path(), Path::new("/dev/zero"), d.as_path()] {
            let e = read_regular(path, 100).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{path:?}: {e}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let p = d.join("f");
        fs::write(&p, vec![b'x'; 101]).unwrap();
        assert!(read_regular(&p, 100).unwrap_err().to_string().contains("larger than 100 bytes"));
        assert_eq!(read_regular(&p, 101).unwrap().len(), 101);
        fs::remove_dir_all(&d).unwrap();
    }
}
