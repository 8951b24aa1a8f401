//! The last step before a resource's diff, error and output go into the report: scrub every
//! known value, then cut. Scrubbing first means a value straddling the report's size limit is
//! still seen whole; where the text was already cut (a command's output beyond what the agent
//! captures), a tail that could be the beginning of a value is dropped with it.

use super::process::CUT_NOTICE;
use crate::placeholder::Scrubber;

/// The most of one text field a report carries.
pub(crate) const REPORT_LIMIT: usize = 64 * 1024;

pub(crate) fn redact(scrubber: &Scrubber, text: &str) -> String {
    let mut out = scrub_whole(scrubber, text);
    if out.len() <= REPORT_LIMIT {
        return out;
    }
    let mut end = REPORT_LIMIT;
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out.truncate(out.len() - scrubber.partial_tail_len(&out));
    out.push_str("\n[truncated at 64 KiB]");
    out
}

/// As `redact`, keeping the end instead of the beginning (a task's outcome is usually at the
/// end of its output): scrubbed whole first, then cut to at most `max` bytes, and a beginning
/// that could be the end of a value is dropped with what was cut.
pub(crate) fn redact_tail(scrubber: &Scrubber, text: &str, max: usize) -> String {
    let whole = scrub_whole(scrubber, text);
    if whole.len() <= max {
        return whole;
    }
    let tail = crate::util::text::tail(&whole, max);
    tail[scrubber.partial_head_len(tail)..].to_string()
}

/// Every known value scrubbed; a piece that ends at a capture cut loses a tail that could be
/// the beginning of a value.
fn scrub_whole(scrubber: &Scrubber, text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(REPORT_LIMIT));
    let mut pieces = text.split(CUT_NOTICE).peekable();
    while let Some(piece) = pieces.next() {
        if pieces.peek().is_some() {
            out.push_str(&scrubber.scrub_cut(piece));
            out.push_str(CUT_NOTICE);
        } else {
            out.push_str(&scrubber.scrub(piece));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubber() -> Scrubber {
        let mut s = Scrubber::new();
        s.add("k", "TopSecretValue-0123456789");
        s
    }

    #[test]
    fn a_value_across_the_report_limit_is_scrubbed_before_the_cut() {
        let value = "TopSecretValue-0123456789";
        for shift in 0..value.len() {
            let text = format!("{}{value} and more", "x".repeat(REPORT_LIMIT - shift));
            let out = redact(&scrubber(), &text);
            assert!(out.ends_with("\n[truncated at 64 KiB]"), "{shift}");
            let kept = out.trim_end_matches("\n[truncated at 64 KiB]");
            assert!(kept.len() <= REPORT_LIMIT);
            // What follows the x's is the start of the replacement, never of the value.
            let tail = kept.trim_start_matches('x');
            assert!("[REDACTED secret:k] and more".starts_with(tail), "{shift}: {tail:?}");
        }
    }

    /// A value across the start of the kept tail leaves neither its end nor its beginning.
    #[test]
    fn a_value_across_the_start_of_a_kept_tail_leaves_no_end() {
        let value = "TopSecretValue-0123456789";
        for shift in 0..=value.len() {
            let text = format!("start {value}{} end", "y".repeat(100 - shift));
            let out = redact_tail(&scrubber(), &text, 100);
            assert!(out.len() <= 100, "{shift}");
            assert!(out.ends_with(" end"), "{shift}: {out:?}");
            let head = out.trim_end_matches(" end").trim_end_matches('y');
            assert!("start [REDACTED secret:k]".ends_with(head), "{shift}: {head:?}");
            for n in 4..value.len() {
                assert!(!out.contains(&value[value.len() - n..]), "{shift}/{n}: {out:?}");
            }
        }
        assert_eq!(
            redact_tail(&scrubber(), "short TopSecretValue-0123456789", 100),
            "short [REDACTED secret:k]"
        );
    }

    #[test]
    fn a_value_cut_by_the_capture_limit_leaves_no_beginning() {
        let text = format!("start TopSecretValue-0123456789 then TopSecretVal{CUT_NOTICE}");
        assert_eq!(redact(&scrubber(), &text), format!("start [REDACTED secret:k] then {CUT_NOTICE}"));
        assert_eq!(redact(&scrubber(), "short"), "short");
    }
}
