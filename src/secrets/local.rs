//! The local backend: one AES-256-GCM file per key under the secrets directory, sealed with the
//! master key. The associated data binds the key name, so a file copied to another key's path
//! fails to decrypt. Files are 0600, directories 0700, writes atomic, symlinks never followed.

use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Provider, SecretsError};
use crate::crypto::{self, MasterKey, SecretBytes};
use crate::placeholder::validate_key;
use crate::util::fsutil;

const MAGIC: &[u8] = b"VGS1";
const AAD_PREFIX: &[u8] = b"vigo-secret-v1\0";
/// A secret value is at most this large (certificates and keys fit comfortably).
pub const MAX_VALUE_LEN: usize = 1 << 20;

pub struct LocalVault {
    dir: PathBuf,
    key: MasterKey,
}

fn backend(msg: impl Into<String>) -> SecretsError {
    SecretsError::Backend(msg.into())
}

/// What is wrong with reaching the master key file, in words that point at the fix. A missing
/// file and one this user may not read are different problems: "does not exist" for a
/// permission error sends the operator to `init`, which would make a second key.
pub fn key_file_problem(key_file: &Path, e: &std::io::Error) -> String {
    let path = key_file.display();
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "master key {path} does not exist; run `vigocli secrets init` first, or point --base-dir at the installation that has one"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied reading the master key {path}: run this as the user that owns the vault (see `ls -l {path}`; vigosrv's user, or root)"
        ),
        _ => format!("cannot read the master key {path}: {e}"),
    }
}

/// Whether the master key file is there; Err (with the fix) when it cannot even be looked at.
pub fn key_file_exists(key_file: &Path) -> Result<bool, String> {
    match fs::symlink_metadata(key_file) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(key_file_problem(key_file, &e)),
    }
}

/// Writes a new random master key (64 hex characters, 0600) at `key_file`, creating the
/// directories owner-only. The caller has made sure that no sealed secret needs another key.
pub fn create_master_key(secrets_dir: &Path, key_file: &Path) -> Result<(), String> {
    let key_dir = key_file.parent().unwrap_or(secrets_dir);
    fsutil::ensure_dir(secrets_dir, 0o700).map_err(|e| format!("{}: {e}", secrets_dir.display()))?;
    fsutil::ensure_dir(key_dir, 0o700).map_err(|e| format!("{}: {e}", key_dir.display()))?;
    let key = crypto::random_bytes(crypto::KEY_LEN).map_err(|e| e.to_string())?;
    let hex = crypto::SecretString::new(crypto::hex_encode(&key));
    fsutil::atomic_write(key_file, hex.expose().as_bytes(), 0o600)
        .map_err(|e| format!("{}: {e}", key_file.display()))
}

/// Reads and checks the master key file: owner-only, 64 hex characters.
pub fn read_master_key(key_file: &Path) -> Result<MasterKey, SecretsError> {
    fs::symlink_metadata(key_file).map_err(|e| backend(key_file_problem(key_file, &e)))?;
    fsutil::check_private(key_file).map_err(|e| backend(format!("refusing the master key: {e}")))?;
    let text = fs::read_to_string(key_file).map_err(|e| backend(key_file_problem(key_file, &e)))?;
    let bytes = crypto::hex_decode(text.trim()).ok().filter(|b| b.len() == crypto::KEY_LEN).ok_or_else(|| {
        backend(format!(
            "master key {} must hold exactly 64 hex characters (32 bytes); it is damaged — restore it from backup",
            key_file.display()
        ))
    })?;
    MasterKey::from_bytes(&bytes).map_err(|e| backend(e.to_string()))
}

impl LocalVault {
    pub fn open(secrets_dir: &Path, key_file: &Path) -> Result<Self, SecretsError> {
        let key = read_master_key(key_file)?;
        Ok(LocalVault { dir: secrets_dir.to_path_buf(), key })
    }

    /// Validates the key name, then maps it under the secrets dir, refusing symlinked parents.
    fn path_for(&self, key: &str) -> Result<PathBuf, SecretsError> {
        validate_key(key)?;
        if crate::placeholder::split_field(key).1.is_some() {
            return Err(backend(format!(
                "{key:?} names a field ('#'), which selects part of a structured isopass entry; the local vault keeps one value per key"
            )));
        }
        // The vault directory itself may sit behind a symlink; nothing inside it may. Callers
        // check the last component themselves (O_NOFOLLOW on read, a file-type check on write
        // and delete), so only the directories in between are looked at here.
        let mut path = self.dir.clone();
        for (i, segment) in key.split('/').enumerate() {
            if i > 0 && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(backend(format!("{} is a symlink; refusing to follow it", path.display())));
            }
            path.push(segment);
        }
        Ok(path)
    }

    fn aad(key: &str) -> Vec<u8> {
        [AAD_PREFIX, key.as_bytes()].concat()
    }

    /// Seals `value` for `key` into a hidden temp file beside its final path; nothing reads it
    /// until `Staged::install`. Dropping the `Staged` without installing removes the temp file.
    pub fn stage(&self, key: &str, value: &[u8]) -> Result<Staged, SecretsError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(backend("secret values are limited to 1 MiB"));
        }
        let path = self.path_for(key)?;
        if let Ok(meta) = fs::symlink_metadata(&path) {
            if !meta.file_type().is_file() {
                return Err(backend(format!("{} exists and is not a regular file", path.display())));
            }
        }
        let mut dir = self.dir.clone();
        fsutil::ensure_dir(&dir, 0o700).map_err(|e| backend(format!("{}: {e}", dir.display())))?;
        for segment in
            key.split('/').collect::<Vec<_>>().split_last().map(|(_, p)| p.to_vec()).unwrap_or_default()
        {
            dir.push(segment);
            fsutil::ensure_dir(&dir, 0o700).map_err(|e| backend(format!("{}: {e}", dir.display())))?;
        }
        let sealed = crypto::seal(&self.key, &Self::aad(key), value).map_err(|e| backend(e.to_string()))?;
        let file = [MAGIC, &sealed].concat();
        let tmp = fsutil::write_temp(&path, &file, 0o600)
            .map_err(|e| backend(format!("{}: {e}", path.display())))?;
        Ok(Staged { tmp, path })
    }

    /// Stores `value` under `key` now (atomic: a reader sees the old value or the new).
    #[cfg(test)]
    pub fn put(&self, key: &str, value: &[u8]) -> Result<(), SecretsError> {
        self.stage(key, value)?.install()
    }

    fn read_file(&self, key: &str) -> Result<Vec<u8>, SecretsError> {
        let path = self.path_for(key)?;
        let mut f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => SecretsError::NotFound { key: key.into() },
                _ => backend(format!("{}: {e}", path.display())),
            })?;
        // Room for a typical sealed value up front: an empty Vec makes read_to_end probe with a
        // 32-byte read first, a third syscall per secret on the server's ResolveSecrets path.
        let mut buf = Vec::with_capacity(1024);
        f.by_ref()
            .take((MAX_VALUE_LEN + 1024) as u64)
            .read_to_end(&mut buf)
            .map_err(|e| backend(format!("{}: {e}", path.display())))?;
        Ok(buf)
    }

    pub fn delete(&self, key: &str) -> Result<(), SecretsError> {
        let path = self.path_for(key)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => {
                fs::remove_file(&path).map_err(|e| backend(format!("{}: {e}", path.display())))
            }
            Ok(_) => Err(backend(format!("{} is not a regular file; refusing", path.display()))),
            Err(_) => Err(SecretsError::NotFound { key: key.into() }),
        }
    }

    /// Removes the temp files that a `set` killed midway left in the vault (see
    /// `super::temps`); returns how many.
    pub fn sweep_stale_temps(&self) -> Result<usize, SecretsError> {
        super::temps::sweep(&self.dir)
    }

    /// Every key stored under `dir`, sorted; needs no master key (names are not secret).
    pub fn list_keys_in(dir: &Path) -> Result<Vec<String>, SecretsError> {
        let mut out = Vec::new();
        Self::walk(dir, "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), SecretsError> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(backend(format!("{}: {e}", dir.display()))),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Dot files are the master key and in-flight temp files, never secrets.
            if name.starts_with('.') {
                continue;
            }
            let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                Self::walk(&entry.path(), &key, out)?;
            } else if ft.is_file() && validate_key(&key).is_ok() {
                out.push(key);
            }
        }
        Ok(())
    }
}

/// A sealed value written but not yet in place (see `LocalVault::stage`).
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
}

impl Staged {
    /// Renames the value into place.
    pub fn install(mut self) -> Result<(), SecretsError> {
        let tmp = std::mem::take(&mut self.tmp);
        fsutil::install_temp(&tmp, &self.path).map_err(|e| backend(format!("{}: {e}", self.path.display())))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Provider for LocalVault {
    /// The stored bytes. The format never said "text": values written when only text was
    /// accepted are the UTF-8 bytes of that text, so they read back unchanged.
    fn get(&self, key: &str) -> Result<SecretBytes, SecretsError> {
        let file = self.read_file(key)?;
        let sealed = file.strip_prefix(MAGIC).ok_or_else(|| SecretsError::Tampered { key: key.into() })?;
        crypto::open(&self.key, &Self::aad(key), sealed)
            .map_err(|_| SecretsError::Tampered { key: key.into() })
    }

    fn version(&self, key: &str) -> Result<String, SecretsError> {
        Ok(crypto::sha256_hex(&self.read_file(key)?))
    }

    fn list(&self) -> Result<Vec<String>, SecretsError> {
        Self::list_keys_in(&self.dir)
    }

    /// The file's size less what sealing adds (magic, nonce, tag): the value's length.
    fn size(&self, key: &str) -> Result<Option<u64>, SecretsError> {
        let path = self.path_for(key)?;
        let len = fs::symlink_metadata(&path).map_err(|e| backend(format!("{}: {e}", path.display())))?.len();
        Ok(Some(len.saturating_sub((MAGIC.len() + ring::aead::NONCE_LEN + 16) as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn vault(tag: &str) -> (PathBuf, LocalVault) {
        let base = std::env::temp_dir().join(format!("vigo-vault-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let dir = base.join("secrets");
        fsutil::ensure_dir(&dir, 0o700).unwrap();
        let key = dir.join(".master.key");
        let k = crypto::hex_encode(&crypto::random_bytes(32).unwrap());
        fsutil::atomic_write(&key, k.as_bytes(), 0o600).unwrap();
        (base, LocalVault::open(&dir, &key).unwrap())
    }

    #[test]
    fn a_staged_value_is_invisible_until_installed_and_dropping_it_leaves_nothing() {
        let (base, v) = vault("staged");
        v.put("app/key", b"old").unwrap();
        let staged = v.stage("app/key", b"new").unwrap();
        assert_eq!(v.get("app/key").unwrap().expose(), b"old");
        assert_eq!(v.list().unwrap(), ["app/key"], "the temp file is not a key");
        drop(staged);
        assert_eq!(fs::read_dir(base.join("secrets/app")).unwrap().count(), 1, "temp file removed");
        v.stage("app/key", b"new").unwrap().install().unwrap();
        assert_eq!(v.get("app/key").unwrap().expose(), b"new");
        assert_eq!(fs::read_dir(base.join("secrets/app")).unwrap().count(), 1);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn temps_of_dead_writers_are_swept_and_a_live_writers_temp_is_kept() {
        let (base, v) = vault("sweep");
        v.put("app/key", b"v").unwrap();
        // A real temp name, as `set` makes it, parses back to our PID.
        let live = v.stage("app/key", b"new").unwrap();
        let names: Vec<String> = fs::read_dir(base.join("secrets/app"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let temp = names.iter().find(|n| n.starts_with('.')).unwrap();
        assert_eq!(super::super::temps::temp_writer(temp), Some(std::process::id() as i32));
        // A PID that is certainly gone: a child we waited for.
        let dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        let mut dead = dead;
        dead.wait().unwrap();
        let stale = base.join(format!("secrets/app/.key.tmp-{dead_pid}-0123456789ab"));
        fs::write(&stale, b"sealed leftovers").unwrap();
        let master_temp = base.join(format!("secrets/..master.key.tmp-{dead_pid}-0123456789ab"));
        fs::write(&master_temp, b"key leftovers").unwrap();
        assert_eq!(v.sweep_stale_temps().unwrap(), 2);
        assert!(!stale.exists() && !master_temp.exists());
        assert!(base.join("secrets/.master.key").exists(), "not a temp");
        live.install().unwrap();
        assert_eq!(v.get("app/key").unwrap().expose(), b"new", "the live writer's temp survived");
        for not_temp in [".master.key", ".vigo-home", "key.tmp-1-0123456789ab", ".x.tmp-1-xyz"] {
            assert_eq!(super::super::temps::temp_writer(not_temp), None, "{not_temp}");
        }
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn the_longest_segment_the_key_grammar_allows_can_be_stored() {
        let (base, v) = vault("long");
        let longest = format!("app/{}", "s".repeat(crate::placeholder::MAX_SEGMENT_LEN));
        v.put(&longest, b"v").unwrap();
        assert_eq!(v.get(&longest).unwrap().expose(), b"v");
        let too_long = format!("app/{}", "s".repeat(crate::placeholder::MAX_SEGMENT_LEN + 1));
        assert!(matches!(v.put(&too_long, b"v"), Err(SecretsError::InvalidKey(_))));
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn put_get_list_delete_with_modes() {
        let (base, v) = vault("basic");
        v.put("vigo/db/dsn", b"postgres://x").unwrap();
        v.put("vigo/api", b"k").unwrap();
        assert_eq!(v.get("vigo/db/dsn").unwrap().expose(), b"postgres://x");
        assert_eq!(v.list().unwrap(), ["vigo/api", "vigo/db/dsn"]);
        let file = base.join("secrets/vigo/db/dsn");
        assert_eq!(fsutil::mode_of(&file).unwrap(), 0o600);
        assert_eq!(fsutil::mode_of(&base.join("secrets/vigo/db")).unwrap(), 0o700);
        assert!(!fs::read(&file).unwrap().windows(8).any(|w| w == b"postgres"));
        v.delete("vigo/api").unwrap();
        assert!(matches!(v.get("vigo/api"), Err(SecretsError::NotFound { .. })));
        fs::remove_dir_all(base).unwrap();
    }

    /// Any bytes go in and come back out unchanged: NUL, 0xff, invalid UTF-8, a trailing newline.
    #[test]
    fn binary_values_round_trip_byte_for_byte() {
        let (base, v) = vault("binary");
        let der = [0x30, 0x82, 0x01, 0x0a, 0x00, 0xff, 0xfe, 0xc3, 0x28, 0x0a];
        v.put("tls/cert.der", &der).unwrap();
        assert_eq!(v.get("tls/cert.der").unwrap().expose(), der);
        assert_eq!(v.get("tls/cert.der").unwrap().as_text(), None);
        fs::remove_dir_all(base).unwrap();
    }

    /// A vault written before values were bytes (`tests/fixtures/vault-v1`) still opens: the
    /// on-disk format did not change, and its text value comes back as the same UTF-8 bytes.
    #[test]
    fn a_vault_written_before_values_were_bytes_still_opens() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault-v1");
        let base = std::env::temp_dir().join(format!("vigo-vault-v1-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let dir = base.join("secrets");
        fsutil::ensure_dir(&dir.join("app/db"), 0o700).unwrap();
        let key = dir.join(".master.key");
        fsutil::atomic_write(&key, &fs::read(fixture.join("master.key")).unwrap(), 0o600).unwrap();
        fs::copy(fixture.join("app/db/dsn"), dir.join("app/db/dsn")).unwrap();
        let v = LocalVault::open(&dir, &key).unwrap();
        assert_eq!(v.get("app/db/dsn").unwrap().as_text(), Some("postgres://app:s3crét@db/app"));
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn copied_file_is_tampered_and_bad_names_refused() {
        let (base, v) = vault("tamper");
        v.put("a/one", b"1").unwrap();
        v.put("a/two", b"2").unwrap();
        fs::copy(base.join("secrets/a/one"), base.join("secrets/a/two")).unwrap();
        assert!(matches!(v.get("a/two"), Err(SecretsError::Tampered { .. })));
        for bad in ["../x", "/abs", "a//b", "a/./b", "a\0b"] {
            assert!(matches!(v.put(bad, b"x"), Err(SecretsError::InvalidKey(_))), "{bad:?}");
        }
        assert!(!base.join("x").exists());
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn symlinks_inside_the_vault_are_not_followed() {
        let (base, v) = vault("symlink");
        let outside = base.join("outside");
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, base.join("secrets/linked")).unwrap();
        assert!(v.put("linked/x", b"v").is_err());
        assert!(!outside.join("x").exists());
        v.put("real", b"v").unwrap();
        std::os::unix::fs::symlink(base.join("secrets/real"), base.join("secrets/alias")).unwrap();
        assert!(v.get("alias").is_err());
        assert_eq!(v.list().unwrap(), ["real"]);
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_key_file_that_cannot_be_read_is_not_called_missing() {
        let path = Path::new("/srv/vigo/secrets/.master.key");
        let denied = key_file_problem(path, &std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(denied.starts_with("permission denied reading the master key"), "{denied}");
        assert!(!denied.contains("does not exist") && !denied.contains("init"), "{denied}");
        let missing = key_file_problem(path, &std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(missing.contains("does not exist") && missing.contains("secrets init"), "{missing}");
    }

    #[test]
    fn master_key_checks() {
        let (base, _) = vault("mk");
        let key = base.join("secrets/.master.key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let e = LocalVault::open(&base.join("secrets"), &key).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        fsutil::atomic_write(&key, b"abcd", 0o600).unwrap();
        let e = LocalVault::open(&base.join("secrets"), &key).err().unwrap().to_string();
        assert!(e.contains("64 hex"), "{e}");
        fs::remove_dir_all(base).unwrap();
    }
}
