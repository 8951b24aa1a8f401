//! API tokens for the admin API: a name, a role, the SHA-256 of the token, and (for tokens
//! made since web users exist) the web user who owns it and when it expires.
//!
//! A name is unique among its owner's active tokens only (the local-admin principal's ownerless
//! tokens are one more owner): a shared namespace would tell anyone who may make a token which
//! names other people's tokens have. `owner IS ?` matches NULL to NULL.

use rusqlite::{params, Connection, OptionalExtension};

/// Whether `owner` (None: the local-admin principal) has an active token of that name.
pub fn active_name_taken(conn: &Connection, owner: Option<&str>, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM api_tokens WHERE owner IS ?1 AND name = ?2 AND revoked_at IS NULL",
        params![owner, name],
        |r| r.get(0),
    )
}

pub struct NewApiToken<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub hash: &'a [u8; 32],
    pub created_at: i64,
    /// The web user it belongs to; `None` for tokens of the local-admin principal.
    pub owner: Option<&'a str>,
    pub expires_at: Option<i64>,
}

pub fn insert(conn: &Connection, t: &NewApiToken<'_>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO api_tokens (id, name, role, token_hash, created_at, owner, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![t.id, t.name, t.role, t.hash.as_slice(), t.created_at, t.owner, t.expires_at],
    )?;
    Ok(())
}

/// A token that may be used now.
pub struct ActiveToken {
    pub name: String,
    pub role: String,
    pub owner: Option<String>,
    pub expires_at: Option<i64>,
}

/// The token with this hash, unless revoked or expired.
pub fn find_active(conn: &Connection, hash: &[u8; 32], now: i64) -> rusqlite::Result<Option<ActiveToken>> {
    conn.prepare_cached(
        "SELECT name, role, owner, expires_at FROM api_tokens
         WHERE token_hash = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
    )?
    .query_row(params![hash.as_slice(), now], |r| {
        Ok(ActiveToken { name: r.get(0)?, role: r.get(1)?, owner: r.get(2)?, expires_at: r.get(3)? })
    })
    .optional()
}

pub struct ApiTokenRow {
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub owner: Option<String>,
    pub expires_at: Option<i64>,
}

/// Every token, or those of one owner.
pub fn list(conn: &Connection, owner: Option<&str>) -> rusqlite::Result<Vec<ApiTokenRow>> {
    let mut stmt = conn.prepare(
        "SELECT name, role, created_at, revoked_at, owner, expires_at FROM api_tokens
         WHERE ?1 IS NULL OR owner = ?1 ORDER BY created_at, name",
    )?;
    let rows = stmt.query_map([owner], |r| {
        Ok(ApiTokenRow {
            name: r.get(0)?,
            role: r.get(1)?,
            created_at: r.get(2)?,
            revoked_at: r.get(3)?,
            owner: r.get(4)?,
            expires_at: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// The owners of the active tokens of that name (None: the local-admin principal's).
pub fn active_owners(conn: &Connection, name: &str) -> rusqlite::Result<Vec<Option<String>>> {
    let mut stmt =
        conn.prepare("SELECT owner FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL ORDER BY owner")?;
    let rows = stmt.query_map([name], |r| r.get(0))?;
    rows.collect()
}

/// Revokes `owner`'s active token of that name; false when there is none. Touches one row.
pub fn revoke(conn: &Connection, owner: Option<&str>, name: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE api_tokens SET revoked_at = ?3 WHERE owner IS ?1 AND name = ?2 AND revoked_at IS NULL",
        params![owner, name, now],
    )? == 1)
}

/// Revokes `owner`'s active tokens whose role is one of `roles` (those above a role the owner
/// was just lowered to); how many.
pub fn revoke_owned_with_roles(
    conn: &Connection,
    owner: &str,
    roles: &[&str],
    now: i64,
) -> rusqlite::Result<usize> {
    let mut n = 0;
    for role in roles {
        n += conn.execute(
            "UPDATE api_tokens SET revoked_at = ?3 WHERE owner = ?1 AND role = ?2 AND revoked_at IS NULL",
            params![owner, role, now],
        )?;
    }
    Ok(n)
}

/// Revokes every active token of a user (the user is deleted); how many.
pub fn revoke_owned_by(conn: &Connection, owner: &str, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE owner = ?1 AND revoked_at IS NULL",
        params![owner, now],
    )
}
