//! The operator-side unlock gate: an Argon2id verifier of the unlock passphrase and a sentinel
//! file holding an expiry time that slides 24 h forward on every gated call. The gate deters
//! accidents at the CLI; it is not cryptography (the server reads the vault without it).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crypto::{self, SecretString};
use crate::util::{fsutil, time::unix_now};

pub const UNLOCK_WINDOW_SECS: i64 = 24 * 3600;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifierFile {
    algorithm: String,
    phc: String,
}

/// A verifier written at once (tests; the CLI stages it, see `stage_verifier`).
#[cfg(test)]
pub fn write_verifier(path: &Path, passphrase: &SecretString) -> Result<(), String> {
    stage_verifier(path, passphrase)?.install()
}

/// A new verifier in a temp file beside `path`, put in place by `install` once the change's
/// audit row has committed (`cli::audited::audited_staged`); dropped, it is removed and the
/// passphrase in force stays.
pub struct StagedVerifier {
    tmp: PathBuf,
    path: PathBuf,
}

pub fn stage_verifier(path: &Path, passphrase: &SecretString) -> Result<StagedVerifier, String> {
    let phc = crypto::argon2id_hash(passphrase.expose().as_bytes()).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec_pretty(&VerifierFile { algorithm: "argon2id".into(), phc })
        .map_err(|e| e.to_string())?;
    let tmp = fsutil::write_temp(path, &body, 0o600).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(StagedVerifier { tmp, path: path.to_path_buf() })
}

impl StagedVerifier {
    pub fn install(self) -> Result<(), String> {
        fsutil::install_temp(&self.tmp, &self.path).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

impl Drop for StagedVerifier {
    fn drop(&mut self) {
        // After `install` the temp name is gone; before, this is the unused new verifier.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// The PHC string stored in the verifier file.
pub fn read_verifier(path: &Path) -> Result<String, String> {
    let text = fs::read_to_string(path).map_err(|_| {
        format!("no unlock verifier at {}; run `vigocli secrets init` to set a passphrase", path.display())
    })?;
    let v: VerifierFile = serde_json::from_str(&text)
        .map_err(|e| format!("{} is damaged ({e}); run `vigocli secrets reset`", path.display()))?;
    Ok(v.phc)
}

pub fn passphrase_matches(verifier: &Path, passphrase: &SecretString) -> Result<bool, String> {
    let phc = read_verifier(verifier)?;
    crypto::argon2id_verify(passphrase.expose().as_bytes(), &phc).map_err(|e| e.to_string())
}

pub fn open_gate(sentinel: &Path) -> Result<(), String> {
    let expiry = unix_now() + UNLOCK_WINDOW_SECS;
    fsutil::atomic_write(sentinel, format!("{expiry}\n").as_bytes(), 0o600)
        .map_err(|e| format!("{}: {e}", sentinel.display()))
}

pub fn close_gate(sentinel: &Path) -> Result<bool, String> {
    match fs::remove_file(sentinel) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", sentinel.display())),
    }
}

/// Refuses unless the sentinel exists and has not expired.
pub fn check_gate(sentinel: &Path) -> Result<(), String> {
    let locked = "the vault is locked; run `vigocli secrets unlock` first";
    let text = fs::read_to_string(sentinel).map_err(|_| locked.to_string())?;
    let expiry: i64 = text.trim().parse().map_err(|_| locked.to_string())?;
    if expiry <= unix_now() {
        return Err("the vault unlock has expired (24 h idle); run `vigocli secrets unlock` again".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_opens_expires_and_closes() {
        let dir = std::env::temp_dir().join(format!("vigo-gate-{}", std::process::id()));
        fsutil::ensure_dir(&dir, 0o700).unwrap();
        let s = dir.join(".secrets-unlocked");
        assert!(check_gate(&s).is_err());
        open_gate(&s).unwrap();
        check_gate(&s).unwrap();
        fs::write(&s, format!("{}\n", unix_now() - 1)).unwrap();
        assert!(check_gate(&s).unwrap_err().contains("expired"));
        assert!(close_gate(&s).unwrap());
        assert!(!close_gate(&s).unwrap());
        let v = dir.join("verifier.json");
        write_verifier(&v, &SecretString::new("pass phrase".into())).unwrap();
        assert!(passphrase_matches(&v, &SecretString::new("pass phrase".into())).unwrap());
        assert!(!passphrase_matches(&v, &SecretString::new("nope".into())).unwrap());
        fs::remove_dir_all(dir).unwrap();
    }
}
