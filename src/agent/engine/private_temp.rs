//! A 0600 file in the temp directory, removed when dropped (success, failure, timeout or panic
//! alike): how a command gets bytes that may hold a secret (exec `secret_file`, a file's new
//! content for `validate`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub(crate) struct PrivateTemp(PathBuf);

impl PrivateTemp {
    /// `what` names the file in errors ("the secret_file temp file").
    pub fn create(prefix: &str, bytes: &[u8], what: &str) -> Result<PrivateTemp, String> {
        let rand = crate::crypto::random_bytes(12).map_err(|e| e.to_string())?;
        let path = std::env::temp_dir().join(format!("{prefix}-{}", crate::crypto::hex_encode(&rand)));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("creating {what} {}: {e}", path.display()))?;
        let guard = PrivateTemp(path);
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| format!("writing {what}: {e}"))?;
        Ok(guard)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateTemp {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
