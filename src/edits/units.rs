//! `systemd_unit`: a unit file in /etc/systemd/system, written whole.

use crate::util::text::excerpt;

/// The unit types a file in /etc/systemd/system may define.
const SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".timer",
    ".path",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".slice",
    ".scope",
];

/// A unit file name: systemd's characters, and a unit type it knows (the suffix is what tells
/// systemd what the file is).
pub fn check_unit_file_name(unit: &str) -> Result<(), String> {
    let chars_ok = !unit.starts_with('-')
        && !unit.starts_with('.')
        && unit.len() <= 255
        && unit.bytes().all(|b| b.is_ascii_alphanumeric() || b":_.@\\-".contains(&b));
    let suffix_ok = SUFFIXES.iter().any(|s| unit.len() > s.len() && unit.ends_with(s));
    if !chars_ok || !suffix_ok {
        return Err(format!(
            "`unit` \"{}\" is not a unit file name: letters, digits and : _ . @ \\ - ending in one of {}",
            excerpt(unit),
            SUFFIXES.join(" ")
        ));
    }
    Ok(())
}
