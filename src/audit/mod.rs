//! THE audit module: one append-only, SHA-256 hash-chained table.
//!
//! Each row's hash is SHA-256(previous hash || canonical encoding of the row). Appends run in
//! one IMMEDIATE transaction, so the server and a CLI on the same host cannot fork the chain.
//! Rows carry names (keys, envoys, tokens), never secret values: callers pass no values in.

mod chain;
mod export;
mod verify;

pub use chain::{row_hash, GENESIS};
pub use export::{to_line, verify_export, ExportVerdict};
pub use verify::{verify, verify_last, Verdict};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log write failed ({0}); the operation was not carried out")]
    Write(rusqlite::Error),
    #[error("audit log read failed: {0}")]
    Read(#[from] rusqlite::Error),
}

/// One privileged act, as its caller describes it.
pub struct Event<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(actor: &'a str, action: &'a str, target: &'a str) -> Self {
        Event { actor, action, target, detail: serde_json::Value::Object(Default::default()) }
    }
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// A stored audit row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub seq: i64,
    pub ts: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    #[serde(serialize_with = "as_hex")]
    pub prev_hash: Vec<u8>,
    #[serde(serialize_with = "as_hex")]
    pub hash: Vec<u8>,
}

fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::crypto::hex_encode(bytes))
}

/// Longest text taken verbatim from a request into an audit row. Rows can never be deleted,
/// so whatever an unauthenticated caller sends is cut to this before it is recorded.
pub const MAX_RECORDED_TEXT: usize = 128;

/// `text` as it may be recorded: at most `MAX_RECORDED_TEXT` bytes, with the full length noted.
pub fn clip(text: &str) -> String {
    if text.len() <= MAX_RECORDED_TEXT {
        return text.to_string();
    }
    let mut end = MAX_RECORDED_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes]", &text[..end], text.len())
}

/// Appends one event and returns its row. Fails (and the caller must fail) if it cannot.
pub fn append(conn: &mut Connection, event: &Event<'_>) -> Result<Row, AuditError> {
    append_all(conn, std::slice::from_ref(event)).map(|mut rows| rows.remove(0))
}

/// Appends several events in one transaction (one fsync), chained in order.
pub fn append_all(conn: &mut Connection, events: &[Event<'_>]) -> Result<Vec<Row>, AuditError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(AuditError::Write)?;
    let rows = append_in(&tx, events).map_err(AuditError::Write)?;
    tx.commit().map_err(AuditError::Write)?;
    Ok(rows)
}

/// Appends inside a transaction the caller already holds (IMMEDIATE), so a privileged change
/// and its audit row commit or roll back together.
pub fn append_in(conn: &Connection, events: &[Event<'_>]) -> Result<Vec<Row>, rusqlite::Error> {
    // Statements are cached: the server appends on its hot path (one row per ResolveSecrets).
    let last: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (mut seq, mut prev) = last.unwrap_or((0, GENESIS.to_vec()));
    let mut insert = conn.prepare_cached(
        "INSERT INTO audit (seq, ts, actor, action, target, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        seq += 1;
        let mut row = Row {
            seq,
            ts: crate::util::time::now_rfc3339(),
            actor: e.actor.to_string(),
            action: e.action.to_string(),
            target: e.target.to_string(),
            detail: e.detail.to_string(),
            prev_hash: prev.clone(),
            hash: Vec::new(),
        };
        row.hash = row_hash(&row).to_vec();
        insert.execute(params![
            row.seq,
            row.ts,
            row.actor,
            row.action,
            row.target,
            row.detail,
            row.prev_hash,
            row.hash
        ])?;
        prev = row.hash.clone();
        rows.push(row);
    }
    conn.prepare_cached(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )?
    .execute(params![seq, prev])?;
    Ok(rows)
}

/// The last `n` rows, oldest first.
pub fn tail(conn: &Connection, n: u32) -> Result<Vec<Row>, AuditError> {
    let mut stmt = conn.prepare(
        "SELECT seq, ts, actor, action, target, detail, prev_hash, hash FROM
           (SELECT * FROM audit ORDER BY seq DESC LIMIT ?1) ORDER BY seq ASC",
    )?;
    let rows = stmt.query_map([n], read_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        seq: r.get(0)?,
        ts: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        detail: r.get(5)?,
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
    })
}
