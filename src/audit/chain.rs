//! The canonical encoding a row's hash covers. Length-prefixed fields, so no two different
//! rows encode alike; changing this breaks every existing chain, so it is versioned by a tag.

use super::Row;

/// The `prev_hash` of the first row.
pub const GENESIS: [u8; 32] = [0u8; 32];

const TAG: &[u8] = b"vigo-audit-v1";

pub fn row_hash(row: &Row) -> [u8; 32] {
    let fields = [&row.ts, &row.actor, &row.action, &row.target, &row.detail];
    let mut buf = Vec::with_capacity(
        TAG.len() + row.prev_hash.len() + 8 + fields.iter().map(|f| f.len() + 4).sum::<usize>(),
    );
    buf.extend_from_slice(TAG);
    buf.extend_from_slice(&row.prev_hash);
    buf.extend_from_slice(&row.seq.to_be_bytes());
    for f in fields {
        buf.extend_from_slice(&(f.len() as u32).to_be_bytes());
        buf.extend_from_slice(f.as_bytes());
    }
    crate::crypto::sha256(&buf)
}
