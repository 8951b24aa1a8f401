//! API tokens for the admin API: a name, a role and the SHA-256 of the token.

use rusqlite::{params, Connection, OptionalExtension};

pub fn active_name_taken(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL",
        [name],
        |r| r.get(0),
    )
}

pub fn insert(
    conn: &Connection,
    id: &str,
    name: &str,
    role: &str,
    hash: &[u8; 32],
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO api_tokens (id, name, role, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, name, role, hash.as_slice(), now],
    )?;
    Ok(())
}

/// (name, role) of the active token with this hash.
pub fn find_active(conn: &Connection, hash: &[u8; 32]) -> rusqlite::Result<Option<(String, String)>> {
    conn.prepare_cached("SELECT name, role FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL")?
        .query_row([hash.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

pub struct ApiTokenRow {
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<ApiTokenRow>> {
    let mut stmt =
        conn.prepare("SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY created_at, name")?;
    let rows = stmt.query_map([], |r| {
        Ok(ApiTokenRow { name: r.get(0)?, role: r.get(1)?, created_at: r.get(2)?, revoked_at: r.get(3)? })
    })?;
    rows.collect()
}

/// Revokes the active token of that name; false when there is none.
pub fn revoke(conn: &Connection, name: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        params![name, now],
    )? == 1)
}
