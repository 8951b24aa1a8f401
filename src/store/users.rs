//! Web users: who may log in to the console and own API tokens, and with which role. Their
//! passwords are in the vault (`vigo/web/auth/<username>`), never in the database.

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebUser {
    pub username: String,
    pub role: String,
    pub display_name: String,
    pub email: String,
    pub ssh_key: Option<String>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "username, role, display_name, email, ssh_key, disabled_at, created_at, created_by, updated_at";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebUser> {
    Ok(WebUser {
        username: r.get(0)?,
        role: r.get(1)?,
        display_name: r.get(2)?,
        email: r.get(3)?,
        ssh_key: r.get(4)?,
        disabled_at: r.get(5)?,
        created_at: r.get(6)?,
        created_by: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// Inserts a user; false when the name is taken.
pub fn insert(conn: &Connection, u: &WebUser) -> rusqlite::Result<bool> {
    let n = conn.execute(
        &format!("INSERT INTO web_users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING"),
        params![u.username, u.role, u.display_name, u.email, u.ssh_key, u.disabled_at, u.created_at, u.created_by, u.updated_at],
    )?;
    Ok(n == 1)
}

pub fn get(conn: &Connection, username: &str) -> rusqlite::Result<Option<WebUser>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM web_users WHERE username = ?1"))?
        .query_row([username], read)
        .optional()
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<WebUser>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM web_users ORDER BY username"))?;
    let rows = stmt.query_map([], read)?;
    rows.collect()
}

/// Some web user's name (the decoy whose password an unknown name's login reads).
pub fn any_username(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT username FROM web_users LIMIT 1")?.query_row([], |r| r.get(0)).optional()
}

/// The user holding a profile value (`email`) or name, for mapping an OIDC claim.
pub fn find_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<WebUser>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM web_users WHERE email = ?1 AND email != ''"),
        [email],
        read,
    )
    .optional()
}

/// Changes the role; false when there is no such user. Touches one row.
pub fn set_role(conn: &Connection, username: &str, role: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE web_users SET role = ?2, updated_at = ?3 WHERE username = ?1",
        params![username, role, now],
    )? == 1)
}

/// Disables (`Some(now)`) or enables (`None`); false when there is no such user.
pub fn set_disabled(
    conn: &Connection,
    username: &str,
    disabled_at: Option<i64>,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE web_users SET disabled_at = ?2, updated_at = ?3 WHERE username = ?1",
        params![username, disabled_at, now],
    )? == 1)
}

/// Deletes the user; false when there is none.
pub fn delete(conn: &Connection, username: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM web_users WHERE username = ?1", [username])? == 1)
}
