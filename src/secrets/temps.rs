//! Sealed temp files that a killed `secrets set` left behind. A value is sealed into
//! `.NAME.tmp-PID-RANDOM` beside its file (`util::fsutil::write_temp`) and renamed into place
//! once its audit row commits; a `kill -9` in between left that file for good. The sweep
//! removes such files anywhere in the vault once the process that wrote each one is gone; the
//! temp of a live process (a `set` running beside us) is never touched.

use std::fs;
use std::path::Path;

use super::SecretsError;

fn backend(msg: impl Into<String>) -> SecretsError {
    SecretsError::Backend(msg.into())
}

/// Removes the stale temps under `vault_dir`; returns how many.
pub fn sweep(vault_dir: &Path) -> Result<usize, SecretsError> {
    let mut removed = 0;
    let mut dirs = vec![vault_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(backend(format!("{}: {e}", dir.display()))),
        };
        for entry in entries.flatten() {
            let Ok(ft) = entry.file_type() else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            if ft.is_dir() {
                dirs.push(entry.path());
            } else if ft.is_file() && temp_writer(&name).is_some_and(|pid| !crate::util::process::alive(pid))
            {
                fs::remove_file(entry.path())
                    .map_err(|e| backend(format!("{}: {e}", entry.path().display())))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The PID in a temp file name `.NAME.tmp-PID-RANDOM` (12 hex digits), if it is one.
pub(super) fn temp_writer(name: &str) -> Option<i32> {
    let (stem, tail) = name.rsplit_once(".tmp-")?;
    let (pid, random) = tail.split_once('-')?;
    let is_temp = stem.len() > 1
        && stem.starts_with('.')
        && random.len() == 12
        && random.bytes().all(|b| b.is_ascii_hexdigit())
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit());
    is_temp.then(|| pid.parse().ok()).flatten()
}
