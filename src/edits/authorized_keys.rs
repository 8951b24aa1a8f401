//! `authorized_key`: public keys in a user's `~/.ssh/authorized_keys`, each identified by its
//! key data (algorithm and base64 blob), so a changed comment or options is corrected in place.
//! Present: exactly one line holds the key, written as `[options ]algorithm blob[ comment]`.
//! Absent: every line holding it goes. Keys are parsed with the `ssh-key` crate.

use super::lines::Lines;
use super::one_line;
use crate::util::text::excerpt;

#[derive(Debug)]
pub struct KeyEdit {
    /// Per key: its `algorithm blob` part (what identifies it) and the line that should hold it.
    keys: Vec<(String, String)>,
    pub present: bool,
}

/// Checks an OpenSSH public key line (`ssh-ed25519 AAAA… comment`) and returns its
/// `algorithm blob` part and its comment.
pub fn parse_key(line: &str) -> Result<(String, String), String> {
    one_line("key", line)?;
    let key = ssh_key::PublicKey::from_openssh(line.trim()).map_err(|e| {
        format!(
            "`key` \"{}\" is not an OpenSSH public key ({e}); paste one line of a .pub file",
            excerpt(line)
        )
    })?;
    let text = key.to_openssh().map_err(|e| e.to_string())?;
    let mut words = text.split_whitespace();
    let (alg, blob) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    Ok((format!("{alg} {blob}"), key.comment().to_string()))
}

impl KeyEdit {
    /// `key` holds one key per line (the user resource's `authorized_keys` list comes so).
    pub(super) fn parse(get: &dyn Fn(&str) -> Option<String>, present: bool) -> Result<KeyEdit, String> {
        let options = get("options").unwrap_or_default();
        one_line("options", &options)?;
        let text = get("key").unwrap_or_default();
        let mut keys = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (blob, comment) = parse_key(line)?;
            let mut wanted = String::new();
            if !options.trim().is_empty() {
                wanted.push_str(options.trim());
                wanted.push(' ');
            }
            wanted.push_str(&blob);
            if !comment.is_empty() {
                wanted.push(' ');
                wanted.push_str(&comment);
            }
            keys.push((blob, wanted));
        }
        if keys.is_empty() {
            return Err("`key` is empty; paste one line of a .pub file".into());
        }
        Ok(KeyEdit { keys, present })
    }

    pub(super) fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (blob, wanted) in &self.keys {
            text = self.apply_one(&text, blob, wanted);
        }
        text
    }

    fn apply_one(&self, text: &str, blob: &str, wanted: &str) -> String {
        let mut lines = Lines::split(text);
        let blob = blob.split_whitespace().nth(1).unwrap_or_default();
        let holds = |l: &str| !l.trim_start().starts_with('#') && l.split_whitespace().any(|w| w == blob);
        let mut placed = !self.present;
        let mut out = Vec::with_capacity(lines.lines.len() + 1);
        for line in lines.lines.drain(..) {
            if !holds(&line) {
                out.push(line);
            } else if !placed {
                placed = true;
                out.push(wanted.to_string().into());
            }
        }
        lines.lines = out;
        if !placed {
            lines.push(wanted.to_string());
        }
        lines.join()
    }
}
