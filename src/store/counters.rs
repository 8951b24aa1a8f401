//! Named counters of the server (config and secrets epochs) and other small values it keeps
//! across restarts, in `server_state`.

use rusqlite::{params, Connection, OptionalExtension};

pub fn read(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    let v: Option<String> =
        conn.query_row("SELECT value FROM server_state WHERE key = ?1", [key], |r| r.get(0)).optional()?;
    Ok(v.and_then(|s| s.parse().ok()).unwrap_or(0))
}

pub fn write(conn: &Connection, key: &str, value: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO server_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value.to_string()],
    )?;
    Ok(())
}

/// A text value of `server_state` (JSON the server keeps across restarts).
pub fn read_text(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM server_state WHERE key = ?1", [key], |r| r.get(0)).optional()
}

pub fn write_text(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO server_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
