//! Edits to part of a text file: `file_line`, `blockinfile`, `ini`, `json_file` and `replace`.
//! Each one is a pure function from the file's current text to its new text, so the config
//! compiler can refuse a broken edit (a regex that does not compile, an edit that would never
//! converge) before any envoy sees it, and the agent's executor (`agent::engine::edit`) only
//! reads, applies and writes.
//!
//! Every edit converges: applied to its own output it changes nothing. `replace` is checked for
//! that at compile time where it can be, and on every run where it cannot.

pub mod authorized_keys;
mod block;
pub mod cron;
mod fstab;
pub mod hosts;
mod ini;
mod json;
mod line;
mod lines;
mod replace;
pub mod repos;
pub mod sysctl;
pub mod units;

#[cfg(test)]
mod tests;

use crate::util::text::excerpt;

pub use replace::compile_regex;

/// The resource types that edit part of a file named by their `target_path` (`host`, of
/// /etc/hosts, and `authorized_key`, of a user's keys, are edits too).
pub const TYPES: &[&str] = &["file_line", "blockinfile", "ini", "json_file", "replace"];

/// The largest file an edit reads: edits are for configuration files, and the whole text is
/// held in memory twice while it is edited.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug)]
pub enum Edit {
    Line(line::LineEdit),
    Block(block::BlockEdit),
    Ini(ini::IniEdit),
    Json(json::JsonEdit),
    Replace(replace::ReplaceEdit),
    Host(hosts::HostEdit),
    Key(authorized_keys::KeyEdit),
    Fstab(fstab::FstabEdit),
}

impl Edit {
    /// Reads an edit of type `rtype` from its attributes (`get` returns a rendered attribute; a
    /// list comes as its items joined by spaces).
    /// `name` is the resource's name, part of blockinfile's default marker. `Ok(None)`: not an
    /// edit type.
    pub fn parse(
        rtype: &str,
        name: &str,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Edit>, String> {
        if !TYPES.contains(&rtype) && !matches!(rtype, "host" | "authorized_key" | "mount") {
            return Ok(None);
        }
        let present = match get("ensure").as_deref() {
            // A mount's fstab line is there in every state but absent.
            Some("mounted" | "unmounted") if rtype == "mount" => true,
            None | Some("present") => true,
            Some("absent") => false,
            Some(other) => {
                return Err(format!("ensure must be present or absent, not \"{}\"", excerpt(other)))
            }
        };
        Ok(Some(match rtype {
            "file_line" => Edit::Line(line::LineEdit::parse(get, present)?),
            "blockinfile" => Edit::Block(block::BlockEdit::parse(get, name, present)?),
            "ini" => Edit::Ini(ini::IniEdit::parse(get, present)?),
            "json_file" => Edit::Json(json::JsonEdit::parse(get, present)?),
            "replace" => Edit::Replace(replace::ReplaceEdit::parse(get)?),
            "host" => Edit::Host(hosts::HostEdit::parse(get, present)?),
            "authorized_key" => Edit::Key(authorized_keys::KeyEdit::parse(get, present)?),
            "mount" => Edit::Fstab(fstab::FstabEdit::parse(get, present)?),
            _ => return Ok(None),
        }))
    }

    /// The file's new text. An error means the file is not in a shape this edit can work on.
    pub fn apply(&self, text: &str) -> Result<String, String> {
        match self {
            Edit::Line(e) => Ok(e.apply(text)),
            Edit::Block(e) => e.apply(text),
            Edit::Ini(e) => Ok(e.apply(text)),
            Edit::Json(e) => e.apply(text),
            Edit::Replace(e) => e.apply(text),
            Edit::Host(e) => Ok(e.apply(text)),
            Edit::Key(e) => Ok(e.apply(text)),
            Edit::Fstab(e) => Ok(e.apply(text)),
        }
    }

    /// Whether this edit only takes something away (a missing file then needs nothing).
    pub fn only_removes(&self) -> bool {
        match self {
            Edit::Line(e) => !e.present,
            Edit::Block(e) => !e.present,
            Edit::Ini(e) => !e.present,
            Edit::Json(e) => !e.present,
            Edit::Replace(_) => true,
            Edit::Host(e) => !e.present,
            Edit::Key(e) => !e.present,
            Edit::Fstab(e) => !e.present,
        }
    }
}

/// An attribute that must hold one line of text.
fn one_line(attr: &str, value: &str) -> Result<(), String> {
    if value.contains('\n') || value.contains('\r') {
        return Err(format!("`{attr}` must be a single line; \"{}\" holds a line break", excerpt(value)));
    }
    Ok(())
}
