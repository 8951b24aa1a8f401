//! Console sessions. Only the SHA-256 of a session id is stored: a copy of the database opens
//! no session.

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Clone, Debug)]
pub struct Session {
    pub id_hash: Vec<u8>,
    pub username: String,
    pub provider: String,
    pub source: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

const COLUMNS: &str = "id_hash, username, provider, source, created_at, last_seen, expires_at";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id_hash: r.get(0)?,
        username: r.get(1)?,
        provider: r.get(2)?,
        source: r.get(3)?,
        created_at: r.get(4)?,
        last_seen: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

pub fn insert(conn: &Connection, s: &Session) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT INTO sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![s.id_hash, s.username, s.provider, s.source, s.created_at, s.last_seen, s.expires_at],
    )?;
    Ok(())
}

/// The live session with this id hash: not past its absolute end, and seen within `idle`
/// seconds. Its `last_seen` moves to `now` (one row).
pub fn touch(
    conn: &Connection,
    id_hash: &[u8; 32],
    now: i64,
    idle: i64,
) -> rusqlite::Result<Option<Session>> {
    conn.prepare_cached(&format!(
        "UPDATE sessions SET last_seen = ?2 WHERE id_hash = ?1 AND expires_at > ?2 AND last_seen > ?2 - ?3
         RETURNING {COLUMNS}"
    ))?
    .query_row(params![id_hash.as_slice(), now, idle], read)
    .optional()
}

pub fn delete(conn: &Connection, id_hash: &[u8]) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])? == 1)
}

/// Ends every session of a user (role change, disable, delete, new password); how many.
pub fn delete_for_user(conn: &Connection, username: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM sessions WHERE username = ?1", [username])
}

/// Live sessions, of one user or of all, newest first.
pub fn list(conn: &Connection, username: Option<&str>, now: i64) -> rusqlite::Result<Vec<Session>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE (?1 IS NULL OR username = ?1) AND expires_at > ?2
         ORDER BY created_at DESC"
    ))?;
    let rows = stmt.query_map(params![username, now], read)?;
    rows.collect()
}

/// Deletes sessions that ended (absolute end, or idle past `idle`); how many.
pub fn prune(conn: &Connection, now: i64, idle: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen <= ?1 - ?2", params![now, idle])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_or_at_its_absolute_end_and_prune_removes_it() {
        let dir = std::env::temp_dir().join(format!("vigo-sessions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("s.db")).unwrap();
        let row = |n: u8, created: i64, expires: i64| Session {
            id_hash: vec![n; 32],
            username: "alice".into(),
            provider: "basic".into(),
            source: "127.0.0.1".into(),
            created_at: created,
            last_seen: created,
            expires_at: expires,
        };
        insert(&conn, &row(1, 1000, 10_000)).unwrap();
        insert(&conn, &row(2, 1000, 1500)).unwrap();
        // Used within the idle window: it lives on, and its last use moves.
        assert!(touch(&conn, &[1; 32], 1500, 600).unwrap().is_some());
        assert!(touch(&conn, &[1; 32], 2099, 600).unwrap().is_some());
        // Idle past the window: gone, even before its absolute end.
        assert!(touch(&conn, &[1; 32], 2700, 600).unwrap().is_none());
        // Past its absolute end: gone, however recently used.
        assert!(touch(&conn, &[2; 32], 1499, 600).unwrap().is_some());
        assert!(touch(&conn, &[2; 32], 1500, 600).unwrap().is_none());
        assert_eq!(prune(&conn, 2700, 600).unwrap(), 2);
        assert!(list(&conn, None, 0).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
