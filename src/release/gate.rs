//! Checking the running binary against its `.sig`: the server's fail-closed startup gate and
//! the agent's self-check it reports at check-in. The bytes checked are the running image
//! (`/proc/self/exe`), not whatever now sits at its path.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::keys::{self, ReleaseKey};
use super::manifest::{self, VerifyError, MAX_SIG_BYTES};
use super::stamp;

/// What the check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinaryStatus {
    /// Signed by the trusted key, for this version and target.
    Verified { version: String, key_id: String, key_source: String, signed_at: i64 },
    /// No release key anywhere: a development build, nothing checked.
    Development,
}

impl BinaryStatus {
    /// One line for logs, check-ins, `/security` and doctor.
    pub fn summary(&self) -> String {
        match self {
            BinaryStatus::Verified { version, key_id, .. } => {
                format!("signed {version} (release key {key_id})")
            }
            BinaryStatus::Development => "unsigned development build (no release key)".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("release key: {0}")]
    Key(String),
    #[error("cannot read the running binary: {0}")]
    Binary(String),
    #[error("no signature for {0} (expected {0}.sig)")]
    MissingSignature(String),
    #[error("{path}.sig: {error}")]
    Refused { path: String, error: VerifyError },
}

static RECORDED: std::sync::OnceLock<BinaryStatus> = std::sync::OnceLock::new();

/// Keeps what the startup check found, for `/security`, health and check-ins.
pub fn record(status: BinaryStatus) {
    let _ = RECORDED.set(status);
}

/// What the startup check found (None: no check has run in this process).
pub fn recorded() -> Option<&'static BinaryStatus> {
    RECORDED.get()
}

/// The running executable's path as it was started (for the `.sig` beside it).
fn exe_path() -> Result<PathBuf, GateError> {
    let exe = std::env::current_exe().map_err(|e| GateError::Binary(e.to_string()))?;
    // After an update renamed a new file over it, the link names the old inode as "(deleted)".
    let text = exe.to_string_lossy();
    Ok(PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text).to_string()))
}

/// Checks the running binary with the key trusted for this host (`public_key_file` unless a
/// key is compiled in).
pub fn check_self(public_key_file: &Path) -> Result<BinaryStatus, GateError> {
    let Some(key) = keys::trusted(public_key_file).map_err(GateError::Key)? else {
        return Ok(BinaryStatus::Development);
    };
    let binary = std::fs::read("/proc/self/exe").map_err(|e| GateError::Binary(e.to_string()))?;
    check_binary(&binary, &exe_path()?, &key)
}

/// Checks `binary` (the bytes of the file at `path`) against `path.sig`.
pub fn check_binary(binary: &[u8], path: &Path, key: &ReleaseKey) -> Result<BinaryStatus, GateError> {
    let shown = path.display().to_string();
    let sig = read_sig(&sig_path(path)).map_err(|e| match e {
        None => GateError::MissingSignature(shown.clone()),
        Some(e) => GateError::Refused { path: shown.clone(), error: VerifyError::Malformed(e) },
    })?;
    let refused = |error| GateError::Refused { path: shown.clone(), error };
    let manifest = manifest::open(&sig, key).map_err(refused)?;
    manifest::check_bytes(&manifest, binary).map_err(refused)?;
    manifest::check_release(&manifest, stamp::version(), stamp::TARGET).map_err(refused)?;
    Ok(BinaryStatus::Verified {
        version: manifest.version,
        key_id: key.id(),
        key_source: key.source.clone(),
        signed_at: manifest.signed_at,
    })
}

pub fn sig_path(binary: &Path) -> PathBuf {
    let mut s = binary.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// A `.sig` file's bytes, bounded. `Err(None)`: there is none.
fn read_sig(path: &Path) -> Result<Vec<u8>, Option<String>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(e.to_string())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_SIG_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| Some(e.to_string()))?;
    Ok(bytes)
}
