//! The ranges of settings that become durations, names and paths. A value outside them is
//! refused when the file is read, naming the setting and the range, rather than overflowing
//! later (a session lifetime added to the clock at login) or misbehaving quietly.

use crate::util::time::parse_duration;

pub const MINUTE: u64 = 60;
pub const HOUR: u64 = 3600;
pub const DAY: u64 = 86_400;

/// `text` as seconds, from `min` to `max`.
pub fn duration(setting: &str, text: &str, min: u64, max: u64) -> Result<u64, String> {
    let secs = parse_duration(text).map_err(|e| format!("{setting}: {e}"))?;
    if !(min..=max).contains(&secs) {
        return Err(format!("{setting} must be from {} to {}", human(min), human(max)));
    }
    Ok(secs)
}

/// Seconds in the largest unit that divides them, as the file would write them.
fn human(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % DAY == 0 => format!("{}d", s / DAY),
        s if s % HOUR == 0 => format!("{}h", s / HOUR),
        s if s % MINUTE == 0 => format!("{}m", s / MINUTE),
        s => format!("{s}s"),
    }
}

/// An `ssh-keygen -Y sign -n` namespace as the server shows it in a command line to copy: 1 to
/// 64 characters of letters, digits and `.`, `_`, `@`, `-`, beginning with a letter or digit.
pub fn namespace(setting: &str, ns: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&ns.len())
        && ns.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && ns.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if !ok {
        return Err(format!(
            "{setting} must be 1 to 64 characters of letters, digits, '.', '_', '@' and '-', beginning with a letter or digit"
        ));
    }
    Ok(())
}

/// A file the server opens by name: an absolute path of at most 4,096 bytes with no control or
/// invisible characters and no `.` or `..` component.
pub fn absolute_path(setting: &str, path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{setting} must be an absolute path (beginning with /)"));
    }
    if path.len() > 4096 {
        return Err(format!("{setting} is longer than 4096 bytes"));
    }
    crate::util::text::check_visible(setting, path)?;
    if path.split('/').any(|c| c == "." || c == "..") {
        return Err(format!("{setting} may not have . or .. components; write the path itself"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_both_ways() {
        assert_eq!(duration("x", "90s", 1, 120).unwrap(), 90);
        assert_eq!(duration("x", "3m", 1, 120).unwrap_err(), "x must be from 1s to 2m");
        assert_eq!(duration("x", "0s", 1, DAY).unwrap_err(), "x must be from 1s to 1d");
        let huge = duration("x", "9223372036854775807s", 1, 365 * DAY).unwrap_err();
        assert_eq!(huge, "x must be from 1s to 365d");
        let long = format!("{}s", "9".repeat(5000));
        let e = duration("x", &long, 1, DAY).unwrap_err();
        assert!(e.len() < 200, "the bad text is quoted short: {e}");
    }

    #[test]
    fn namespaces_and_paths_are_checked() {
        for good in ["vigo-login", "git", "login@vigo.example", "a"] {
            namespace("ns", good).unwrap();
        }
        for bad in ["", "-n", "two words", "a;rm -rf /", "x\n", &"a".repeat(65), "é"] {
            assert!(namespace("ns", bad).is_err(), "{bad:?}");
        }
        absolute_path("p", "/etc/passwd").unwrap();
        for bad in [
            "etc/passwd",
            "",
            "/etc/../etc/passwd",
            "/etc/./passwd",
            "/etc/pass\nwd",
            &format!("/{}", "a".repeat(4096)),
        ] {
            assert!(absolute_path("p", bad).is_err(), "{bad:?}");
        }
    }
}
