//! Enrolled envoys: identity, name, replay guard, rotation flags, certificate.

use rusqlite::{params, Connection, OptionalExtension};

/// What the server keeps in memory about every envoy.
#[derive(Clone, Debug)]
pub struct Identity {
    pub id: String,
    pub name: String,
    pub public_key: Vec<u8>,
    pub revoked: bool,
    /// The client certificate last issued (unknown for envoys enrolled before it was kept).
    pub cert: Option<IssuedCert>,
}

pub fn load_identities(conn: &Connection) -> rusqlite::Result<Vec<Identity>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, public_key, revoked_at IS NOT NULL, cert_not_after, cert_ca_pin FROM envoys",
    )?;
    let rows = stmt.query_map([], |r| {
        let cert = match (r.get::<_, Option<i64>>(4)?, r.get::<_, Option<String>>(5)?) {
            (Some(not_after), Some(ca_pin)) => Some(IssuedCert { not_after, ca_pin }),
            _ => None,
        };
        Ok(Identity { id: r.get(0)?, name: r.get(1)?, public_key: r.get(2)?, revoked: r.get(3)?, cert })
    })?;
    rows.collect()
}

/// The envoy holding this public key, if any: (id, revoked).
pub fn by_public_key(conn: &Connection, key: &[u8]) -> rusqlite::Result<Option<(String, bool)>> {
    conn.query_row("SELECT id, revoked_at IS NOT NULL FROM envoys WHERE public_key = ?1", [key], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}

pub fn active_name_taken(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT COUNT(*) > 0 FROM envoys WHERE name = ?1 AND revoked_at IS NULL", [name], |r| {
        r.get(0)
    })
}

pub struct NewEnvoy<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub public_key: &'a [u8],
    pub enrolled_at: i64,
    pub cert: &'a IssuedCert,
}

/// The client certificate last issued to an envoy: when it expires and which CA signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCert {
    pub not_after: i64,
    /// Hex SHA-256 of the issuing CA certificate.
    pub ca_pin: String,
}

pub fn insert(conn: &Connection, e: &NewEnvoy<'_>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO envoys (id, name, public_key, enrolled_at, cert_not_after, cert_ca_pin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![e.id, e.name, e.public_key, e.enrolled_at, e.cert.not_after, e.cert.ca_pin],
    )?;
    Ok(())
}

/// Records a renewed certificate. Touches one row.
pub fn record_certificate(conn: &Connection, id: &str, cert: &IssuedCert) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE envoys SET cert_not_after = ?2, cert_ca_pin = ?3 WHERE id = ?1")?
        .execute(params![id, cert.not_after, cert.ca_pin])?;
    Ok(())
}

/// The rotation flags read as the sequence advanced.
pub struct Fresh {
    pub triggered: String,
    pub force_apply: bool,
}

/// Advances the replay guard: touches the envoy's row only when `sequence` is above the last
/// one stored (`WHERE last_seq < ?`). `None` means a replay or a reordering.
pub fn advance_sequence(
    conn: &Connection,
    id: &str,
    sequence: i64,
    now: i64,
) -> rusqlite::Result<Option<Fresh>> {
    conn.prepare_cached(
        "UPDATE envoys SET last_seq = ?1, last_seen = ?2 WHERE id = ?3 AND last_seq < ?1
         RETURNING triggered, force_apply",
    )?
    .query_row(params![sequence, now, id], |r| Ok(Fresh { triggered: r.get(0)?, force_apply: r.get(1)? }))
    .optional()
}

/// After a real (not noop) run: the rotation flags are spent and the applied bundle noted.
pub fn mark_applied(conn: &Connection, id: &str, bundle_hash: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE envoys SET triggered = '[]', force_apply = 0, last_bundle_hash = ?2 WHERE id = ?1",
    )?
    .execute(params![id, bundle_hash])?;
    Ok(())
}

/// Adds resources to an envoy's triggered list and flags it to apply at its next check-in.
pub fn add_triggered(conn: &Connection, id: &str, resources: &[String]) -> rusqlite::Result<()> {
    let current: String = conn.query_row("SELECT triggered FROM envoys WHERE id = ?1", [id], |r| r.get(0))?;
    let mut all: Vec<String> = serde_json::from_str(&current).unwrap_or_default();
    for t in resources {
        if !all.contains(t) {
            all.push(t.clone());
        }
    }
    conn.execute(
        "UPDATE envoys SET triggered = ?2, force_apply = 1 WHERE id = ?1",
        params![id, serde_json::to_string(&all).unwrap_or_else(|_| "[]".into())],
    )?;
    Ok(())
}

/// Marks the envoy revoked; false when it already was (or does not exist).
pub fn revoke(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE envoys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )? == 1)
}

/// One envoy as operators see it.
#[derive(Clone, Debug)]
pub struct EnvoyRow {
    pub id: String,
    pub name: String,
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_bundle_hash: Option<String>,
    pub triggered: Vec<String>,
    pub force_apply: bool,
    pub cert_not_after: Option<i64>,
    /// Hex pin of the CA that issued the envoy's certificate.
    pub cert_ca_pin: Option<String>,
}

const COLUMNS: &str = "id, name, enrolled_at, last_seen, revoked_at, last_bundle_hash, triggered, force_apply, cert_not_after, cert_ca_pin";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EnvoyRow> {
    Ok(EnvoyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        enrolled_at: r.get(2)?,
        last_seen: r.get(3)?,
        revoked_at: r.get(4)?,
        last_bundle_hash: r.get(5)?,
        triggered: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
        force_apply: r.get(7)?,
        cert_not_after: r.get(8)?,
        cert_ca_pin: r.get(9)?,
    })
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<EnvoyRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM envoys ORDER BY name, enrolled_at"))?;
    let rows = stmt.query_map([], read_row)?;
    rows.collect()
}

/// The envoy an operator means. An envoy id (a UUID, which no name may look like) selects
/// by id only; anything else is a name, preferring the active envoy, then the latest revoked.
pub fn find(conn: &Connection, name_or_id: &str) -> rusqlite::Result<Option<EnvoyRow>> {
    let by = if crate::wire::looks_like_envoy_id(name_or_id) { "id" } else { "name" };
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM envoys WHERE {by} = ?1
             ORDER BY revoked_at IS NOT NULL, enrolled_at DESC LIMIT 1"
        ),
        [name_or_id],
        read_row,
    )
    .optional()
}
