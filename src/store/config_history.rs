//! Config history: every published tree, content-addressed (migration 11), and the publish
//! freeze (in `server_state`). A publish records its revision in the transaction of its audit
//! row, so no tree serves without its entry here.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize)]
pub struct Revision {
    pub rev: i64,
    pub content_hash: String,
    pub published_at: i64,
    pub published_by: String,
    pub message: String,
    /// The revision whose tree this one published again (`config rollback`).
    pub rollback_of: Option<i64>,
    /// Published through a freeze with `--force`.
    pub forced: bool,
}

/// What a new revision records besides its files.
pub struct NewRevision<'a> {
    pub content_hash: &'a str,
    pub published_at: i64,
    pub published_by: &'a str,
    pub message: &'a str,
    pub rollback_of: Option<i64>,
    pub forced: bool,
}

/// Records a revision with its files (name, text); texts already stored are shared. Returns
/// the new revision number.
pub fn record(conn: &Connection, r: &NewRevision<'_>, files: &[(String, String)]) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO config_revisions (content_hash, published_at, published_by, message, rollback_of, forced)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![r.content_hash, r.published_at, r.published_by, r.message, r.rollback_of, r.forced])?;
    let rev = conn.last_insert_rowid();
    for (path, text) in files {
        let hash = crate::crypto::sha256_hex(text.as_bytes());
        conn.prepare_cached(
            "INSERT INTO config_blobs (hash, text) VALUES (?1, ?2) ON CONFLICT(hash) DO NOTHING",
        )?
        .execute(params![hash, text])?;
        conn.prepare_cached("INSERT INTO config_revision_files (rev, path, blob) VALUES (?1, ?2, ?3)")?
            .execute(params![rev, path, hash])?;
    }
    Ok(rev)
}

const COLUMNS: &str = "rev, content_hash, published_at, published_by, message, rollback_of, forced";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Revision> {
    Ok(Revision {
        rev: r.get(0)?,
        content_hash: r.get(1)?,
        published_at: r.get(2)?,
        published_by: r.get(3)?,
        message: r.get(4)?,
        rollback_of: r.get(5)?,
        forced: r.get(6)?,
    })
}

/// The newest `limit` revisions, newest first.
pub fn list(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<Revision>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM config_revisions ORDER BY rev DESC LIMIT ?1"))?;
    let rows = stmt.query_map([limit], read)?;
    rows.collect()
}

pub fn get(conn: &Connection, rev: i64) -> rusqlite::Result<Option<Revision>> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM config_revisions WHERE rev = ?1"), [rev], read).optional()
}

/// A revision's files (name, text), by name.
pub fn files(conn: &Connection, rev: i64) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.path, b.text FROM config_revision_files f JOIN config_blobs b ON b.hash = f.blob
         WHERE f.rev = ?1 ORDER BY f.path",
    )?;
    let rows = stmt.query_map([rev], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A publish freeze: publishes are refused until `until` unless forced.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Freeze {
    pub until: i64,
    pub reason: String,
    pub by: String,
    pub at: i64,
}

const FREEZE_KEY: &str = "config_freeze";

/// The freeze in force at `now`, if any (one that has run out is no freeze).
pub fn freeze(conn: &Connection, now: i64) -> rusqlite::Result<Option<Freeze>> {
    let text = super::counters::read_text(conn, FREEZE_KEY)?;
    Ok(text.and_then(|t| serde_json::from_str::<Freeze>(&t).ok()).filter(|f| f.until > now))
}

pub fn set_freeze(conn: &Connection, f: &Freeze) -> rusqlite::Result<()> {
    let text = serde_json::to_string(f).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    super::counters::write_text(conn, FREEZE_KEY, &text)
}

/// Ends a freeze; whether one was in force at `now`.
pub fn clear_freeze(conn: &Connection, now: i64) -> rusqlite::Result<bool> {
    let was = freeze(conn, now)?.is_some();
    conn.execute("DELETE FROM server_state WHERE key = ?1", [FREEZE_KEY])?;
    Ok(was)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_share_texts_and_freezes_run_out() {
        let dir = std::env::temp_dir().join(format!("vigo-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("h.db")).unwrap();
        let files = |n: &str| {
            vec![("nodes.vgo".to_string(), "same".to_string()), ("modules/m.vgo".to_string(), n.to_string())]
        };
        let new = |hash: &'static str| NewRevision {
            content_hash: hash,
            published_at: 10,
            published_by: "local-admin",
            message: "",
            rollback_of: None,
            forced: false,
        };
        let r1 = record(&conn, &new("h1"), &files("one")).unwrap();
        let r2 = record(&conn, &new("h2"), &files("two")).unwrap();
        assert_eq!((r1, r2), (1, 2));
        let blobs: i64 = conn.query_row("SELECT COUNT(*) FROM config_blobs", [], |r| r.get(0)).unwrap();
        assert_eq!(blobs, 3, "the shared nodes.vgo is stored once");
        assert_eq!(files_of(&conn, r1), files("one"));
        assert_eq!(list(&conn, 10).unwrap().iter().map(|r| r.rev).collect::<Vec<_>>(), [2, 1]);
        assert!(conn.execute("DELETE FROM config_revisions", []).is_err(), "history is kept");

        let f = Freeze { until: 100, reason: "release".into(), by: "amy".into(), at: 5 };
        set_freeze(&conn, &f).unwrap();
        assert_eq!(freeze(&conn, 50).unwrap(), Some(f));
        assert_eq!(freeze(&conn, 100).unwrap(), None, "a freeze ends at its time");
        assert!(clear_freeze(&conn, 50).unwrap());
        assert_eq!(freeze(&conn, 50).unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn files_of(conn: &Connection, rev: i64) -> Vec<(String, String)> {
        let mut f = files(conn, rev).unwrap();
        f.sort_by(|a, b| b.0.cmp(&a.0));
        f
    }
}
