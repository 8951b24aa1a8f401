//! Secret rotations waiting for the server: recorded by `vigocli secrets set` and `delete` in
//! the same transaction as their audit row, so a rotation made while the server is down is not
//! lost; the server clears a row in the same transaction as the rotation it runs for it.

use rusqlite::{params, Connection};

/// Records (or refreshes) a pending rotation of `key`.
pub fn record(conn: &Connection, key: &str, now: i64, actor: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO pending_rotations (key, recorded_at, actor) VALUES (?1, ?2, ?3)
         ON CONFLICT(key) DO UPDATE SET recorded_at = excluded.recorded_at, actor = excluded.actor",
        params![key, now, actor],
    )?;
    Ok(())
}

/// (key, actor) of every pending rotation, oldest first.
pub fn pending(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT key, actor FROM pending_rotations ORDER BY recorded_at, key")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The rotation of `key` has been run (or cannot be: the key is gone).
pub fn clear(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM pending_rotations WHERE key = ?1", [key])?;
    Ok(())
}
