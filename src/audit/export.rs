//! Audit rows as they leave the database: one JSON object per row, carrying every field the
//! row's hash covers (the detail as the exact text that was hashed), so whoever receives them
//! can check the chain without the database; and the check itself, for `vigocli audit verify
//! --export FILE`.
//!
//! A sink delivers at least once, so a receiver's file may repeat rows after a reconnect. A
//! repeated row must be identical to the first copy, and a repeated run must go up one by one;
//! anything else — a missing row, an edited one, rows out of order — breaks the file.

use std::io::BufRead;

use serde::Deserialize;

use super::{row_hash, Row, GENESIS};
use crate::crypto::{ct_eq, hex_decode, hex_encode};

/// The row as one line of JSON, ASCII only (other characters as `\u` escapes), so no relay on
/// the way can re-encode it: the text that comes out is the text that went in.
pub fn to_line(row: &Row) -> String {
    // Serializing a struct of strings and integers cannot fail.
    let json = serde_json::to_string(row).unwrap_or_default();
    ascii_only(&json)
}

/// Non-ASCII characters appear only inside JSON strings, where `\uXXXX` means the same.
fn ascii_only(json: &str) -> String {
    if json.is_ascii() {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// A row as read back from an export.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Exported {
    seq: i64,
    ts: String,
    actor: String,
    action: String,
    target: String,
    detail: String,
    prev_hash: String,
    hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportVerdict {
    /// Rows `first..=last` are all there, chained, each matching its hash. `repeated` counts
    /// identical copies of rows already seen (redeliveries).
    Intact { first: i64, last: i64, repeated: u64, head: String },
    /// The first line (1-based) that does not hold, the row it names (if it read), and why.
    Broken { line: u64, seq: Option<i64>, reason: String },
}

/// The longest line read; a row is far smaller (requests are clipped before they are recorded).
const MAX_LINE: usize = 1 << 20;

/// Checks an export: JSON Lines of rows, or lines a syslog receiver wrote whose message is the
/// row (anything before the first `{` is the receiver's prefix and is skipped). Blank lines are
/// skipped. `expected_head` (hex), when given, must be one of the rows.
pub fn verify_export(mut input: impl BufRead, expected_head: Option<&str>) -> std::io::Result<ExportVerdict> {
    let mut check = Walk::default();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = std::io::Read::take(&mut input, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.len() > MAX_LINE {
            return Ok(check.broken(
                line_no,
                None,
                format!("line longer than {MAX_LINE} bytes: not an audit row"),
            ));
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let Some(start) = text.find('{') else {
            return Ok(check.broken(line_no, None, "no audit row on this line".into()));
        };
        let row = match serde_json::from_str::<Exported>(&text[start..]) {
            Ok(r) => r,
            Err(e) => return Ok(check.broken(line_no, None, format!("not an audit row: {e}"))),
        };
        if let Err((seq, reason)) = check.row(row) {
            return Ok(check.broken(line_no, seq, reason));
        }
    }
    if check.hashes.is_empty() {
        return Ok(ExportVerdict::Broken {
            line: line_no,
            seq: None,
            reason: "no audit rows in the file".into(),
        });
    }
    let head = hex_encode(check.hashes.last().map(|h| h.as_slice()).unwrap_or(&GENESIS));
    if let Some(expected) = expected_head {
        if !check.hashes.iter().any(|h| hex_encode(h).eq_ignore_ascii_case(expected)) {
            return Ok(ExportVerdict::Broken {
                line: line_no,
                seq: None,
                reason: "the expected head hash is not in the file: rows were cut off or replaced".into(),
            });
        }
    }
    Ok(ExportVerdict::Intact {
        first: check.first,
        last: check.first + check.hashes.len() as i64 - 1,
        repeated: check.repeated,
        head,
    })
}

#[derive(Default)]
struct Walk {
    /// Sequence number of the first row.
    first: i64,
    /// Hash of each row from `first` on, in order.
    hashes: Vec<[u8; 32]>,
    /// The row of the previous line.
    previous: Option<i64>,
    repeated: u64,
}

impl Walk {
    fn broken(&self, line: u64, seq: Option<i64>, reason: String) -> ExportVerdict {
        ExportVerdict::Broken { line, seq, reason }
    }

    fn row(&mut self, e: Exported) -> Result<(), (Option<i64>, String)> {
        let seq = e.seq;
        let bad = |reason: String| (Some(seq), reason);
        let hash: [u8; 32] = hex_decode(&e.hash)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| bad("hash is not 64 hex characters".into()))?;
        let prev = hex_decode(&e.prev_hash)
            .ok()
            .filter(|p| p.len() == 32)
            .ok_or_else(|| bad("prev_hash is not 64 hex characters".into()))?;
        let row = Row {
            seq,
            ts: e.ts,
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
            prev_hash: prev,
            hash: hash.to_vec(),
        };
        if !ct_eq(&row_hash(&row), &hash) {
            return Err(bad("row content does not match its hash (edited)".into()));
        }
        let previous = self.previous.replace(seq);
        if self.hashes.is_empty() {
            if seq < 1 {
                return Err(bad(format!("row number {seq} is not a sequence number")));
            }
            if seq == 1 && !ct_eq(&row.prev_hash, &GENESIS) {
                return Err(bad("the first row's prev_hash is not the chain's start".into()));
            }
            self.first = seq;
            self.hashes.push(hash);
            return Ok(());
        }
        let next = self.first + self.hashes.len() as i64;
        if seq == next {
            if previous.is_some_and(|p| p != seq - 1) {
                return Err(bad(format!(
                    "row {seq} comes after row {}: out of order",
                    previous.unwrap_or(0)
                )));
            }
            let last = self.hashes.last().copied().unwrap_or(GENESIS);
            if !ct_eq(&row.prev_hash, &last) {
                return Err(bad("prev_hash does not match the previous row".into()));
            }
            self.hashes.push(hash);
            return Ok(());
        }
        if seq > next {
            return Err(bad(format!("row {next} is missing (the next row here is {seq})")));
        }
        // A row seen before: a redelivery must repeat it exactly, and after the first repeat
        // must go up one by one, as a sink resends from its cursor.
        if seq < self.first {
            return Err(bad(format!("row {seq} comes after row {}: out of order", previous.unwrap_or(0))));
        }
        if previous.is_some_and(|p| seq > p && seq != p + 1) {
            return Err(bad(format!("row {seq} comes after row {}: out of order", previous.unwrap_or(0))));
        }
        if !ct_eq(&self.hashes[(seq - self.first) as usize], &hash) {
            return Err(bad(format!("row {seq} appears twice with different content (edited)")));
        }
        self.repeated += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of `n` rows made the way `append_in` makes them, one with non-ASCII text.
    fn chain(n: i64) -> Vec<Row> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let mut row = Row {
                    seq,
                    ts: format!("2026-01-01T00:00:{:02}Z", seq % 60),
                    actor: "user:zoë".into(),
                    action: "secret.set".into(),
                    target: format!("app/k{seq}"),
                    detail: serde_json::json!({ "i": seq, "note": "naïve \u{1F512}" }).to_string(),
                    prev_hash: prev.clone(),
                    hash: vec![],
                };
                row.hash = row_hash(&row).to_vec();
                prev = row.hash.clone();
                row
            })
            .collect()
    }

    fn lines(rows: &[Row]) -> String {
        rows.iter().map(|r| to_line(r) + "\n").collect()
    }

    fn verify(text: &str) -> ExportVerdict {
        verify_export(text.as_bytes(), None).unwrap()
    }

    fn broken_at(text: &str) -> (u64, String) {
        match verify(text) {
            ExportVerdict::Broken { line, reason, .. } => (line, reason),
            v => panic!("expected broken, got {v:?}"),
        }
    }

    #[test]
    fn lines_are_ascii_and_an_intact_export_verifies() {
        let rows = chain(5);
        let text = lines(&rows);
        assert!(text.is_ascii());
        assert!(text.contains("zo\\u00eb") && text.contains("\\ud83d\\udd12"), "{text}");
        let head = hex_encode(&rows[4].hash);
        assert_eq!(
            verify(&text),
            ExportVerdict::Intact { first: 1, last: 5, repeated: 0, head: head.clone() }
        );
        assert!(matches!(verify_export(text.as_bytes(), Some(&head)).unwrap(), ExportVerdict::Intact { .. }));
        let other = hex_encode(&[7u8; 32]);
        assert!(matches!(
            verify_export(text.as_bytes(), Some(&other)).unwrap(),
            ExportVerdict::Broken { .. }
        ));
        // The same rows as `audit tail --json` prints them (not escaped) verify too.
        let plain: String = rows.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
        assert!(matches!(verify(&plain), ExportVerdict::Intact { last: 5, .. }));
    }

    #[test]
    fn a_gap_an_edit_and_a_reorder_are_named() {
        let rows = chain(6);
        let mut gap = rows.clone();
        gap.remove(2);
        let (line, reason) = broken_at(&lines(&gap));
        assert_eq!(line, 3);
        assert!(reason.contains("row 3 is missing"), "{reason}");

        let mut text = lines(&rows);
        text = text.replacen("app/k4", "app/kX", 1);
        let (line, reason) = broken_at(&text);
        assert_eq!(line, 4);
        assert!(reason.contains("edited"), "{reason}");

        // Edited and rehashed: its own hash holds, the next link does not.
        let mut rehashed = rows.clone();
        rehashed[3].target = "app/kX".into();
        rehashed[3].hash = row_hash(&rehashed[3]).to_vec();
        let (line, reason) = broken_at(&lines(&rehashed));
        assert_eq!(line, 5);
        assert!(reason.contains("prev_hash"), "{reason}");

        let mut swapped = rows.clone();
        swapped.swap(3, 4);
        let (line, reason) = broken_at(&lines(&swapped));
        assert_eq!(line, 4);
        assert!(reason.contains("missing"), "{reason}");

        // A copy of an earlier row dropped later is out of order unless a resend starts there.
        let mut moved = rows[..4].to_vec();
        moved.extend([rows[1].clone(), rows[3].clone(), rows[4].clone()]);
        let (line, reason) = broken_at(&lines(&moved));
        assert_eq!(line, 6);
        assert!(reason.contains("out of order"), "{reason}");
    }

    #[test]
    fn redeliveries_pass_only_when_identical() {
        let rows = chain(8);
        // A sink that resent rows 4..6 after a reconnect, then went on.
        let mut resent = rows[..6].to_vec();
        resent.extend(rows[3..].iter().cloned());
        match verify(&lines(&resent)) {
            ExportVerdict::Intact { first: 1, last: 8, repeated: 3, .. } => {}
            v => panic!("{v:?}"),
        }
        // The repeated copy edited and rehashed: caught, though its own hash holds.
        let mut forged = rows[..6].to_vec();
        let mut copy = rows[4].clone();
        copy.detail = "{}".into();
        copy.hash = row_hash(&copy).to_vec();
        forged.push(copy);
        let (line, reason) = broken_at(&lines(&forged));
        assert_eq!(line, 7);
        assert!(reason.contains("appears twice"), "{reason}");
    }

    #[test]
    fn a_file_that_starts_later_is_checked_from_its_first_row() {
        let rows = chain(10);
        assert!(matches!(verify(&lines(&rows[4..])), ExportVerdict::Intact { first: 5, last: 10, .. }));
        // Row 1 must start the chain.
        let mut first = rows[..2].to_vec();
        first[0].prev_hash = vec![1; 32];
        first[0].hash = row_hash(&first[0]).to_vec();
        assert!(broken_at(&lines(&first[..1])).1.contains("chain's start"));
    }

    #[test]
    fn syslog_prefixes_are_skipped_and_other_lines_refused() {
        let rows = chain(3);
        let text: String = rows
            .iter()
            .map(|r| format!("<110>1 2026-01-01T00:00:00Z host vigo 1 audit - {}\n", to_line(r)))
            .collect();
        assert!(matches!(verify(&text), ExportVerdict::Intact { last: 3, .. }));
        let (line, reason) = broken_at(&format!("{}hello\n", lines(&rows)));
        assert_eq!(line, 4);
        assert!(reason.contains("no audit row"), "{reason}");
        let (_, reason) = broken_at("{\"seq\": 1}\n");
        assert!(reason.contains("not an audit row"), "{reason}");
        assert!(broken_at("").1.contains("no audit rows"));
    }
}
