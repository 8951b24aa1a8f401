//! The long-lived isopass bearer token, read once at start from `secrets.token_file`. The file
//! must be a regular file owned by root or by the server's own user, with no group or other
//! permissions: anyone who reads it can read every secret the server can.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use zeroize::Zeroize;

use crate::crypto::SecretString;

/// A bearer token is a line of text; a larger file is not one.
const MAX_LEN: u64 = 16 * 1024;

pub fn read(path: &str) -> Result<SecretString, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) => {
                format!("secrets.token_file {path} is a symlink; point the setting at the file itself")
            }
            _ => format!("secrets.token_file {path}: {e}"),
        })?;
    let meta = file.metadata().map_err(|e| format!("secrets.token_file {path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("secrets.token_file {path} is not a regular file"));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!(
            "secrets.token_file {path} is owned by uid {}; it must belong to root or to the server's user: `chown root {path}`",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "secrets.token_file {path} has mode {:04o}, open to group or others; fix it with `chmod 600 {path}`",
            meta.mode() & 0o7777
        ));
    }
    if meta.len() > MAX_LEN {
        return Err(format!(
            "secrets.token_file {path} is larger than {MAX_LEN} bytes; it should hold one token"
        ));
    }
    let mut text = String::new();
    file.take(MAX_LEN)
        .read_to_string(&mut text)
        .map_err(|e| format!("secrets.token_file {path}: {e} (the token must be text)"))?;
    let token = text.trim().to_string();
    text.zeroize();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "secrets.token_file {path} must hold one token: printable characters, no spaces, on one line"
        ));
    }
    Ok(SecretString::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_a_private_regular_file_with_one_token() {
        let dir = std::env::temp_dir().join(format!("vigo-isopass-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("token");
        let s = p.to_str().unwrap();
        std::fs::write(&p, "iso_live_abc123\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(s).unwrap().expose(), "iso_live_abc123");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read(s).unwrap_err();
        assert!(e.contains("chmod 600") && !e.contains("abc123"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&p, "two words\n").unwrap();
        assert!(read(s).unwrap_err().contains("one token"));
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(read(link.to_str().unwrap()).unwrap_err().contains("symlink"));
        assert!(read(dir.to_str().unwrap()).unwrap_err().contains("not a regular file"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
