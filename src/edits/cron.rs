//! `cron`: one job as a file in /etc/cron.d, written whole. The schedule is checked the way
//! Vixie cron (Debian's `cron`) reads it, so a job that cron would ignore is a compile error:
//! five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or jan-dec, day of week
//! 0-7 or sun-sat), each `*` or a list of numbers and ranges, `*` and ranges with an optional
//! `/step`, or one of the `@` nicknames. One deliberate difference: a range that runs
//! backwards (`5-1`) is refused, though Debian's crontab installs it; crons disagree on what it
//! means.

use crate::util::text::excerpt;

pub const NICKNAMES: &[&str] =
    &["@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];
const MONTHS: &[&str] = &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    what: &'static str,
    lo: u32,
    hi: u32,
    /// Names for values from `lo` on (months from 1, days from 0).
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field { what: "minute", lo: 0, hi: 59, names: &[] },
    Field { what: "hour", lo: 0, hi: 23, names: &[] },
    Field { what: "day of month", lo: 1, hi: 31, names: &[] },
    Field { what: "month", lo: 1, hi: 12, names: MONTHS },
    Field { what: "day of week", lo: 0, hi: 7, names: DAYS },
];

/// The job file name: cron reads only names of letters, digits, `_` and `-` in /etc/cron.d.
pub fn check_job_name(job: &str) -> Result<(), String> {
    if job.is_empty()
        || job.len() > 64
        || !job.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "cron `job` \"{}\" must be 1-64 of A-Z a-z 0-9 _ - (cron skips any other file name in /etc/cron.d)",
            excerpt(job)
        ));
    }
    Ok(())
}

pub fn check_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if s.starts_with('@') {
        return if NICKNAMES.contains(&s) {
            Ok(())
        } else {
            Err(format!("cron schedule \"{}\" is not one of {}", excerpt(s), NICKNAMES.join(", ")))
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "cron schedule \"{}\" has {} fields; it needs five (minute hour day-of-month month day-of-week) or an @ nickname",
            excerpt(s),
            fields.len()
        ));
    }
    for (text, field) in fields.iter().zip(&FIELDS) {
        check_field(text, field).map_err(|why| {
            format!("cron schedule \"{}\": {} \"{}\" {why}", excerpt(s), field.what, excerpt(text))
        })?;
    }
    Ok(())
}

fn check_field(text: &str, f: &Field) -> Result<(), String> {
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            if !step.parse::<u32>().is_ok_and(|n| n >= 1) {
                return Err(format!("has step \"{}\"; a step is a whole number from 1", excerpt(step)));
            }
            if range != "*" && !range.contains('-') {
                return Err(
                    "has a step after a single value; a step follows * or a range (*/5, 8-18/2)".into()
                );
            }
        }
        if range == "*" {
            continue;
        }
        let (a, b) = match range.split_once('-') {
            Some((a, b)) => (value(a, f)?, Some(value(b, f)?)),
            None => (value(range, f)?, None),
        };
        if let Some(b) = b {
            if b < a {
                return Err(format!("has the range {a}-{b}, which runs backwards"));
            }
        }
    }
    Ok(())
}

fn value(text: &str, f: &Field) -> Result<u32, String> {
    if let Ok(n) = text.parse::<u32>() {
        return if (f.lo..=f.hi).contains(&n) {
            Ok(n)
        } else {
            Err(format!("holds {n}, outside {}-{}", f.lo, f.hi))
        };
    }
    let lower = text.to_ascii_lowercase();
    match f.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(f.lo + i as u32),
        None if f.names.is_empty() => Err(format!("holds \"{}\", which is not a number", excerpt(text))),
        None => Err(format!(
            "holds \"{}\", which is neither a number nor one of {}",
            excerpt(text),
            f.names.join(", ")
        )),
    }
}

/// The whole job file.
pub fn job_file(resource: &str, schedule: &str, user: &str, command: &str) -> String {
    format!(
        "# Managed by Vigo (resource {resource}); a change made here is undone at the next run.\n\
         SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         {} {user} {command}\n",
        schedule.trim()
    )
}

/// A cron command is one line, and `%` in it means a newline to cron unless escaped: a bare one
/// would silently cut the command there.
pub fn check_command(command: &str) -> Result<(), String> {
    if command.trim().is_empty() {
        return Err("cron `command` is empty".into());
    }
    if command.contains('\n') || command.contains('\r') {
        return Err("cron `command` must be a single line".into());
    }
    let bytes = command.as_bytes();
    if let Some(i) = (0..bytes.len()).find(|&i| bytes[i] == b'%' && (i == 0 || bytes[i - 1] != b'\\')) {
        return Err(format!(
            "cron `command` has a bare % at character {}; cron turns it into a line break: write \\% for a percent sign",
            i + 1
        ));
    }
    Ok(())
}
