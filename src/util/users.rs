//! Users and groups read straight from /etc/passwd and /etc/group (no NSS in a static binary).

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// What an account (user or group) name may be here: 1–32 bytes of `A-Z a-z 0-9 _ - .`, not
/// starting with `-` (a name that could pass for an option to the tools that read it).
pub fn is_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].into(),
                shell: f[6].into(),
            })
        })
        .collect()
}

/// (name, gid, members) from /etc/group-formatted text.
pub fn parse_group(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let members = f[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect();
            Some((f[0].into(), f[2].parse().ok()?, members))
        })
        .collect()
}

pub fn passwd_in(root: &Path) -> Vec<PasswdEntry> {
    parse_passwd(&std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default())
}

pub fn user_name(uid: u32) -> Option<String> {
    passwd_in(Path::new("/")).into_iter().find(|e| e.uid == uid).map(|e| e.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group() {
        let p =
            parse_passwd("root:x:0:0:root:/root:/bin/bash\nbad line\ndan:x:1000:1000::/home/dan:/bin/sh\n");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].name, "dan");
        assert_eq!(p[1].uid, 1000);
        let g = parse_group("wheel:x:10:dan,ann\nempty:x:11:\n");
        assert_eq!(g[0].2, ["dan", "ann"]);
        assert!(g[1].2.is_empty());
    }
}
