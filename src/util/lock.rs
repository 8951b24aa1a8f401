//! One holder at a time: the agent's run lock (one apply per host) and the server's lock on its
//! base directory (one vigosrv per state). A `flock` on a lock file (released by the kernel when
//! the holder exits, even by `kill -9`) with the holder's PID written inside, so the next one
//! can say who holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Held for the life of the value; dropping it releases the lock.
pub struct FileLock {
    _lock: Flock<File>,
}

impl FileLock {
    /// Takes the lock at `path`. With `wait: None` a held lock fails at once; with
    /// `Some(d)` it is retried until `d` has passed. The error names the holder (`holder`: what
    /// kind of process takes this lock) and its PID.
    pub fn acquire(path: &Path, wait: Option<Duration>, holder: &str) -> Result<FileLock, String> {
        let deadline = wait.map(|d| Instant::now() + d);
        let mut file = open(path)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    // Ours now: record our PID for whoever comes next.
                    let pid = std::process::id().to_string();
                    let written = lock
                        .set_len(0)
                        .and_then(|_| lock.seek(SeekFrom::Start(0)))
                        .and_then(|_| lock.write_all(pid.as_bytes()))
                        .and_then(|_| lock.sync_data());
                    written.map_err(|e| format!("writing the lock {}: {e}", path.display()))?;
                    return Ok(FileLock { _lock: lock });
                }
                Err((f, Errno::EWOULDBLOCK)) => {
                    if deadline.is_none_or(|d| Instant::now() >= d) {
                        return Err(format!(
                            "another {holder} holds the lock {} (PID {}){}",
                            path.display(),
                            holder_pid(path),
                            if wait.is_some() { " (gave up waiting)" } else { "" }
                        ));
                    }
                    file = f;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, e)) => return Err(format!("locking {}: {e}", path.display())),
            }
        }
    }
}

fn open(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("opening the lock {}: {e}", path.display()))
}

fn holder_pid(path: &Path) -> String {
    let mut text = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        "unknown".into()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_naming_the_holder_then_succeeds_after_release() {
        let dir = std::env::temp_dir().join(format!("vigo-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.lock");
        let first = FileLock::acquire(&path, None, "test").unwrap();
        let err = FileLock::acquire(&path, None, "test").err().expect("second run must not get the lock");
        assert!(
            err.contains(&format!(
                "another test holds the lock {} (PID {})",
                path.display(),
                std::process::id()
            )),
            "{err}"
        );
        let t = Instant::now();
        let err = FileLock::acquire(&path, Some(Duration::from_millis(200)), "test").err().unwrap();
        assert!(t.elapsed() >= Duration::from_millis(200) && err.contains("gave up waiting"));
        // A waiter gets the lock once the holder lets go.
        let p2 = path.clone();
        let waiter = std::thread::spawn(move || {
            FileLock::acquire(&p2, Some(Duration::from_secs(10)), "test").map(|_| ())
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(first);
        waiter.join().unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
