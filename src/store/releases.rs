//! Signed agent releases: which binaries the server may hand to agents, by SHA-256.

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Clone, Debug)]
pub struct Release {
    pub sha256: String,
    pub version: String,
    pub target: String,
    pub size: u64,
    /// The `.sig` text, as published.
    pub sig: String,
    pub published_at: i64,
    pub published_by: String,
    pub retired_at: Option<i64>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Release> {
    Ok(Release {
        sha256: r.get(0)?,
        version: r.get(1)?,
        target: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
        sig: r.get(4)?,
        published_at: r.get(5)?,
        published_by: r.get(6)?,
        retired_at: r.get(7)?,
    })
}

const COLUMNS: &str = "sha256, version, target, size, sig, published_at, published_by, retired_at";

/// Records a published release. One `INSERT`; false when that binary is already there (a
/// retired one is brought back).
pub fn insert(conn: &Connection, r: &Release) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT INTO releases (sha256, version, target, size, sig, published_at, published_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(sha256) DO UPDATE SET retired_at = NULL, sig = excluded.sig
         WHERE releases.retired_at IS NOT NULL",
        params![r.sha256, r.version, r.target, r.size as i64, r.sig, r.published_at, r.published_by],
    )?;
    Ok(n == 1)
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Release>> {
    let mut q = conn.prepare(&format!("SELECT {COLUMNS} FROM releases ORDER BY published_at, sha256"))?;
    let rows = q.query_map([], row)?.collect();
    rows
}

/// The live release of `version` for `target` (the newest published, if several).
pub fn live(conn: &Connection, version: &str, target: &str) -> rusqlite::Result<Option<Release>> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM releases WHERE version = ?1 AND target = ?2 AND retired_at IS NULL
             ORDER BY published_at DESC LIMIT 1"
        ),
        params![version, target],
        row,
    )
    .optional()
}

/// The live release with this SHA-256.
pub fn live_by_sha(conn: &Connection, sha256: &str) -> rusqlite::Result<Option<Release>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM releases WHERE sha256 = ?1 AND retired_at IS NULL"),
        params![sha256],
        row,
    )
    .optional()
}

/// Retires every live release of `version`. One `UPDATE`; returns how many.
pub fn retire(conn: &Connection, version: &str, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE releases SET retired_at = ?2 WHERE version = ?1 AND retired_at IS NULL",
        params![version, now],
    )
}
