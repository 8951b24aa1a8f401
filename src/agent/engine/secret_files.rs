//! Which managed files hold secret values, remembered between runs (in the agent's state
//! directory, see `agent::secret_files_store`).
//!
//! The scrubber knows only the values resolved for this run. A value rotated away, or a
//! `secret:` ref removed from a file's content, is unknown to it, yet the file on disk still
//! holds the old value until this run replaces it. So the file executor never diffs a file
//! whose new content holds a secret, or whose old content did (by this record); and it teaches
//! the run's scrubber the old values it finds there, so a command that prints the old file
//! before it is replaced is scrubbed too. The record holds paths and the content *with
//! markers* last written (never a value), which is how the old values are found again.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::placeholder;

/// Templates larger than this are not remembered (only the path is); old values in such a
/// file are then learned line by line.
const MAX_TEMPLATE: usize = 64 * 1024;

/// Lines of an old file learned one by one, at most (when its template no longer fits it).
const MAX_LEARNED_LINES: usize = 10_000;

/// Binary content learned, at most: the largest value the vault holds.
const MAX_BINARY: usize = crate::secrets::local::MAX_VALUE_LEN;

/// Host paths of secret-bearing files, each with the content (markers, not values) it was
/// last written with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretFiles {
    files: BTreeMap<String, Remembered>,
    /// Set when the record could not be read: every file counts as secret-bearing this run.
    #[serde(skip)]
    pub unknown: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Remembered {
    template: Option<String>,
}

impl SecretFiles {
    /// A record that could not be read: every file counts as secret-bearing.
    pub fn unknown() -> SecretFiles {
        SecretFiles { files: BTreeMap::new(), unknown: true }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    #[cfg(test)]
    pub fn paths(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }
}

/// An old value found in a file: under its key when the file's template located it, else a
/// line of a file that held a secret.
pub(crate) enum Learned {
    Key(String, Zeroizing<Vec<u8>>),
    Line(Zeroizing<Vec<u8>>),
}

/// A change to the record a resource asks for: (resource index, host path, `Some(template)`
/// = the file holds secrets now, `None` = it holds none).
type Update = (usize, String, Option<Option<String>>);

/// One run's view of the record: what it was at the start, what the run changes, what old
/// values it found.
pub(crate) struct Tracker {
    start: SecretFiles,
    updates: RefCell<Vec<Update>>,
    learned: RefCell<Vec<Learned>>,
}

impl Tracker {
    pub fn new(start: SecretFiles) -> Tracker {
        Tracker { start, updates: RefCell::default(), learned: RefCell::default() }
    }

    /// Whether the file at `path` held a secret when the run started (or cannot be known).
    pub fn held_secret(&self, path: &str) -> bool {
        self.start.unknown || self.start.files.contains_key(path)
    }

    /// The file at `path` now holds secrets, written from `template`.
    pub fn holds(&self, owner: usize, path: &str, template: &str) {
        let kept = (template.len() <= MAX_TEMPLATE).then(|| template.to_string());
        self.updates.borrow_mut().push((owner, path.to_string(), Some(kept)));
    }

    /// The file at `path` holds no secret once resource `owner` has changed it.
    pub fn clears(&self, owner: usize, path: &str) {
        self.updates.borrow_mut().push((owner, path.to_string(), None));
    }

    /// Finds the old values in `old`, the content of a secret-bearing file about to be
    /// replaced: located by the template it was last written with (or, for a rotation, the
    /// one it is written with now), else each line of it. Binary content can only have been
    /// one whole value (see `attrs`): it is learned whole.
    pub fn learn_old_content(&self, path: &str, old: &[u8], current_template: Option<&str>) {
        let recorded = self.start.files.get(path).and_then(|r| r.template.as_deref());
        let templates = [recorded, current_template].into_iter().flatten();
        let mut learned = self.learned.borrow_mut();
        let Ok(old) = std::str::from_utf8(old) else {
            let bytes = Zeroizing::new(old[..old.len().min(MAX_BINARY)].to_vec());
            learned.push(match templates.filter_map(placeholder::whole_marker).next() {
                Some(key) => Learned::Key(key, bytes),
                None => Learned::Line(bytes),
            });
            return;
        };
        match templates.clone().find_map(|t| extract(t, old)) {
            Some(values) => {
                learned
                    .extend(values.into_iter().map(|(k, v)| Learned::Key(k, Zeroizing::new(v.into_bytes()))));
            }
            None => {
                // Bounded: each value learned is scrubbed in some twenty spellings.
                if old.len() <= MAX_TEMPLATE {
                    learned.push(Learned::Line(Zeroizing::new(old.as_bytes().to_vec())));
                }
                let lines = old.lines().map(str::trim).filter(|l| l.len() >= 4 && l.len() <= MAX_TEMPLATE);
                for line in lines.take(MAX_LEARNED_LINES) {
                    learned.push(Learned::Line(Zeroizing::new(line.as_bytes().to_vec())));
                }
            }
        }
    }

    pub fn take_learned(&self) -> Vec<Learned> {
        std::mem::take(&mut *self.learned.borrow_mut())
    }

    /// The record after the run. A file becomes secret-bearing as soon as a resource wrote (or
    /// found) a secret in it; it stops being one only once a resource that changed it to
    /// secret-free content succeeded (`succeeded(owner)`). A noop run changes nothing.
    pub fn finish(self, noop: bool, succeeded: impl Fn(usize) -> bool) -> SecretFiles {
        let mut record = self.start;
        record.unknown = false;
        if noop {
            return record;
        }
        for (owner, path, state) in self.updates.into_inner() {
            match state {
                Some(template) => {
                    record.files.insert(path, Remembered { template });
                }
                None if succeeded(owner) => {
                    record.files.remove(&path);
                }
                None => {}
            }
        }
        record
    }
}

/// The values `template`'s markers stand for in `text`, if `text` has the template's shape
/// (the literal parts in order, something between them). Adjacent markers cannot be told
/// apart, so such a template finds nothing.
fn extract(template: &str, text: &str) -> Option<Vec<(String, String)>> {
    let markers = placeholder::find_markers(template).ok()?;
    if markers.is_empty() {
        return None;
    }
    let mut literals = Vec::with_capacity(markers.len() + 1);
    let mut from = 0;
    for m in &markers {
        literals.push(&template[from..m.start]);
        from = m.end;
    }
    literals.push(&template[from..]);
    let mut rest = text.strip_prefix(literals[0])?;
    let last = literals.len() - 1;
    let mut values = Vec::new();
    for (i, m) in markers.iter().enumerate() {
        let next = literals[i + 1];
        let value = if i + 1 == last {
            let v = rest.strip_suffix(next)?;
            rest = "";
            v
        } else {
            if next.is_empty() {
                return None;
            }
            let at = rest.find(next)?;
            let v = &rest[..at];
            rest = &rest[at + next.len()..];
            v
        };
        if !value.is_empty() {
            values.push((m.key.clone(), value.to_string()));
        }
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(key: &str) -> String {
        placeholder::marker(key).unwrap()
    }

    #[test]
    fn values_are_found_by_the_template_they_were_written_with() {
        let t = format!("user=app\npassword={}\nurl=db://{}@host\n", m("db/pw"), m("db/user"));
        let found = extract(&t, "user=app\npassword=old pw=1\nurl=db://ann@host\n").unwrap();
        assert_eq!(found, [("db/pw".into(), "old pw=1".into()), ("db/user".into(), "ann".into())]);
        assert_eq!(extract(&m("k"), "whole").unwrap(), [("k".into(), "whole".into())]);
        assert!(extract(&t, "something else entirely").is_none());
        assert!(extract(&format!("{}{}", m("a"), m("b")), "ab").is_none(), "adjacent markers");
        assert!(extract("no markers", "no markers").is_none());
    }

    #[test]
    fn the_record_gains_at_once_and_loses_only_after_a_successful_change() {
        let t = Tracker::new(SecretFiles::default());
        t.holds(0, "/a", &m("k"));
        t.clears(1, "/b");
        let record = t.finish(false, |_| false);
        assert_eq!(record.paths(), ["/a"]);
        let t = Tracker::new(record.clone());
        assert!(t.held_secret("/a") && !t.held_secret("/b"));
        t.clears(3, "/a");
        assert_eq!(t.finish(false, |i| i != 3).paths(), ["/a"], "the change failed");
        let t = Tracker::new(record.clone());
        t.clears(3, "/a");
        assert_eq!(t.finish(true, |_| true).paths(), ["/a"], "noop");
        let t = Tracker::new(record);
        t.clears(3, "/a");
        assert!(t.finish(false, |_| true).is_empty());
        let unknown = SecretFiles { unknown: true, ..SecretFiles::default() };
        assert!(Tracker::new(unknown).held_secret("/anything"));
    }

    /// Binary old content was one whole value: learned whole (under its key when the
    /// template says which), not line by line as text.
    #[test]
    fn binary_old_content_is_learned_whole() {
        let mut start = SecretFiles::default();
        start.files.insert("/der".into(), Remembered { template: Some(m("tls/der")) });
        let t = Tracker::new(start);
        t.learn_old_content("/der", &[0x30, 0x00, 0xff, b'\n', 0xfe], None);
        t.learn_old_content("/other", &[0xff, b'x'], Some("text around"));
        let learned = t.take_learned();
        assert!(
            matches!(&learned[0], Learned::Key(k, v) if k == "tls/der" && v.as_slice() == [0x30, 0x00, 0xff, b'\n', 0xfe])
        );
        assert!(matches!(&learned[1], Learned::Line(v) if v.as_slice() == [0xff, b'x']));
        assert_eq!(learned.len(), 2);
    }

    #[test]
    fn old_values_are_learned_by_template_or_else_line_by_line() {
        let mut start = SecretFiles::default();
        start.files.insert("/f".into(), Remembered { template: Some(format!("pw={}\n", m("k"))) });
        let t = Tracker::new(start);
        t.learn_old_content("/f", b"pw=oldvalue\n", Some("pw=plain\n"));
        t.learn_old_content("/g", b"a\nlong line one\n", None);
        let learned: Vec<String> = t
            .take_learned()
            .into_iter()
            .map(|l| match l {
                Learned::Key(k, v) => format!("{k}={}", String::from_utf8_lossy(&v)),
                Learned::Line(v) => format!("line={}", String::from_utf8_lossy(&v)),
            })
            .collect();
        assert_eq!(learned, ["k=oldvalue", "line=a\nlong line one\n", "line=long line one"]);
    }
}
