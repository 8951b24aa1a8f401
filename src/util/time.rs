//! Wall-clock helpers without a date crate: Unix seconds and RFC 3339 UTC text.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn unix_now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Days since 1970-01-01 to a civil (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-22T22:22:51.123Z` for a Unix time in milliseconds.
pub fn rfc3339_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// Unix seconds of an RFC 3339 time (`2026-12-24T18:00:00Z`, with an offset or `Z`).
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            format!(
                "\"{}\" is not an RFC 3339 time such as 2026-12-24T18:00:00Z",
                crate::util::text::excerpt(text)
            )
        })
}

pub fn now_rfc3339() -> String {
    rfc3339_millis(unix_now_millis())
}

/// Parses durations like `90s`, `15m`, `24h`, `7d` (one unit) into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    // The text comes from a file or a flag: quoted short, never whole.
    let shown = || crate::util::text::quote_short(text);
    let (num, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {}: expected a number and a unit, e.g. 24h", shown()))?;
    let mult = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("invalid duration {}: unit must be s, m, h or d", shown())),
    };
    n.checked_mul(mult).ok_or_else(|| format!("duration {} is too large", shown()))
}

/// How long ago `t` was, in the largest unit that fits (`3 min ago`, `2 h ago`, `5 d ago`).
pub fn ago(t: Option<i64>, now: i64) -> String {
    let Some(t) = t else { return "never".into() };
    let d = now.saturating_sub(t).max(0);
    match d {
        0..=59 => format!("{d} s ago"),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=172_799 => format!("{} h ago", d / 3600),
        _ => format!("{} d ago", d / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_millis(1_795_386_171_123), "2026-11-22T22:22:51.123Z");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("24h").unwrap(), 86_400);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("2d").unwrap(), 172_800);
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
