//! Web user names and the rule for admins: an `admin` web user must be a real person's
//! account on the server host (uid ≥ 1000, a login shell), read from the passwd file itself
//! (the binary is static: no NSS).

use crate::util::users::PasswdEntry;

/// Reserved for the principal of the boot-minted local-admin token, which is no web user.
pub const RESERVED: &[&str] = &["localhost", "local-admin"];

/// 1-32 characters of `a-z 0-9 . _ -`, starting with a letter: safe in a path of the vault
/// (`vigo/web/auth/<username>`), an audit row and a URL.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(format!(
            "invalid username {}: use 1-32 characters of a-z 0-9 . _ -, starting with a letter",
            crate::util::text::excerpt(name)
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!("the username {name:?} is reserved for the local-admin principal"));
    }
    Ok(())
}

/// The vault key holding a web user's password.
pub fn password_key(username: &str) -> String {
    format!("vigo/web/auth/{username}")
}

/// The passwd entry of `username` if it is a person's account: uid at least 1000 (and not
/// `nobody`), and a shell one can log in with.
pub fn human_account(passwd: &str, username: &str) -> Result<PasswdEntry, String> {
    let entry = crate::util::users::parse_passwd(passwd)
        .into_iter()
        .find(|e| e.name == username)
        .ok_or_else(|| {
            format!(
                "an admin must be an account on the server host, and {username:?} is not in the passwd file"
            )
        })?;
    if entry.uid < 1000 || entry.uid == 65_534 {
        return Err(format!(
            "{username:?} has uid {}: an admin must be a person's account (uid 1000 or above), not a system account",
            entry.uid
        ));
    }
    let shell = entry.shell.rsplit('/').next().unwrap_or_default();
    if entry.shell.is_empty() || matches!(shell, "nologin" | "false" | "sync" | "halt" | "shutdown") {
        return Err(format!(
            "{username:?} has no login shell ({:?}): an admin must be able to log in",
            entry.shell
        ));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for good in ["alice", "bob.smith", "ops-2", "a"] {
            assert!(check_username(good).is_ok(), "{good}");
        }
        for bad in ["", "Alice", "1bob", "-x", "a/b", "a b", &"a".repeat(33), "localhost", "al\u{202e}ice"] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
        assert!(!check_username("x\u{1b}[2J").unwrap_err().contains('\u{1b}'), "never echoed raw");
    }

    #[test]
    fn only_people_may_be_admins() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
            daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
            alice:x:1000:1000:Alice:/home/alice:/bin/bash\n\
            svc:x:1001:1001::/srv:/usr/sbin/nologin\n\
            nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n";
        assert_eq!(human_account(passwd, "alice").unwrap().home, "/home/alice");
        assert!(human_account(passwd, "root").unwrap_err().contains("uid 1000"));
        assert!(human_account(passwd, "svc").unwrap_err().contains("login shell"));
        assert!(human_account(passwd, "nobody").is_err());
        assert!(human_account(passwd, "carol").unwrap_err().contains("not in the passwd file"));
    }
}
