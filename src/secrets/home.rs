//! Which installation a vault belongs to. The CLI writes a vault operation's audit row into the
//! database of its own `--base-dir`, and checks the unlock gate there; pointed at another
//! installation's vault (`--secrets-dir`, `--key-file`) from a different base directory, a
//! `reveal` would be gated and audited where nobody looks. So the vault records its home base
//! directory in `<secrets_dir>/.vigo-home` (a dot name: never a secret key), and vault verbs run
//! from any other base directory are refused.

use std::path::{Path, PathBuf};

use crate::util::fsutil;

const FILE: &str = ".vigo-home";

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// Records `base` as the home of the vault in `secrets_dir`.
pub fn record(secrets_dir: &Path, base: &Path) -> Result<(), String> {
    let text = format!("{}\n", canonical(base).display());
    let path = secrets_dir.join(FILE);
    fsutil::atomic_write(&path, text.as_bytes(), 0o600).map_err(|e| format!("{}: {e}", path.display()))
}

/// Refuses unless the vault in `secrets_dir` belongs to `base`. A vault made before homes were
/// recorded is adopted by the first base directory that uses it.
pub fn check(secrets_dir: &Path, base: &Path) -> Result<(), String> {
    let recorded = match std::fs::read_to_string(secrets_dir.join(FILE)) {
        Ok(text) => PathBuf::from(text.trim_end_matches('\n')),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Best effort: a vault this user cannot write to is still usable.
            let _ = record(secrets_dir, base);
            return Ok(());
        }
        Err(e) => return Err(format!("{}: {e}", secrets_dir.join(FILE).display())),
    };
    if canonical(&recorded) == canonical(base) {
        return Ok(());
    }
    Err(format!(
        "the vault in {} belongs to the installation at {} (its unlock gate and audit log are there), not to --base-dir {}; run with --base-dir {}",
        secrets_dir.display(),
        recorded.display(),
        base.display(),
        recorded.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vault_is_used_only_from_its_home() {
        let dir = std::env::temp_dir().join(format!("vigo-home-{}", std::process::id()));
        let (home, other) = (dir.join("home"), dir.join("other"));
        for d in [&home, &other] {
            fsutil::ensure_dir(d, 0o700).unwrap();
        }
        let secrets = home.join("secrets");
        fsutil::ensure_dir(&secrets, 0o700).unwrap();
        check(&secrets, &home).unwrap(); // adopted
        check(&secrets, &home.join(".")).unwrap();
        let e = check(&secrets, &other).unwrap_err();
        assert!(e.contains("belongs to the installation at") && e.contains("run with --base-dir"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
