//! The RustSec advisories last imported, and when and from where they were imported.

use rusqlite::{params, Connection, OptionalExtension};

use crate::advisories::Advisory;

/// When the database was last imported, from where, and the date of its newest advisory.
#[derive(Clone, Debug)]
pub struct Imported {
    pub at: i64,
    pub source: String,
    pub count: u64,
    pub newest: Option<String>,
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

fn list_of(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

/// Replaces every stored advisory with `all` and records the import. One unit: the caller's
/// transaction (with its audit row); `DELETE` of every row, one `INSERT` per advisory, two
/// `server_state` upserts.
pub fn replace_all(conn: &Connection, all: &[Advisory], source: &str, now: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM advisories", [])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO advisories (id, package, title, date, url, informational, aliases, patched, unaffected)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(id) DO NOTHING",
    )?;
    for a in all {
        insert.execute(params![
            a.id,
            a.package,
            a.title,
            a.date,
            a.url,
            a.informational,
            json(&a.aliases),
            json(&a.patched),
            json(&a.unaffected)
        ])?;
    }
    let mut state = conn.prepare_cached(
        "INSERT INTO server_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?;
    state.execute(params!["advisories_imported_at", now.to_string()])?;
    state.execute(params!["advisories_source", source])?;
    Ok(())
}

/// Every stored advisory.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Advisory>> {
    let mut stmt = conn.prepare(
        "SELECT id, package, title, date, url, informational, aliases, patched, unaffected
         FROM advisories ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Advisory {
            id: r.get(0)?,
            package: r.get(1)?,
            title: r.get(2)?,
            date: r.get(3)?,
            url: r.get(4)?,
            informational: r.get(5)?,
            aliases: list_of(r.get(6)?),
            patched: list_of(r.get(7)?),
            unaffected: list_of(r.get(8)?),
        })
    })?;
    rows.collect()
}

/// The last import, if there was one.
pub fn imported(conn: &Connection) -> rusqlite::Result<Option<Imported>> {
    let get = |key: &str| {
        conn.query_row("SELECT value FROM server_state WHERE key = ?1", [key], |r| r.get::<_, String>(0))
            .optional()
    };
    let Some(at) = get("advisories_imported_at")? else { return Ok(None) };
    let (count, newest): (u64, Option<String>) =
        conn.query_row("SELECT COUNT(*), MAX(date) FROM advisories", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Some(Imported {
        at: at.parse().unwrap_or(0),
        source: get("advisories_source")?.unwrap_or_default(),
        count,
        newest,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_replaces_the_previous_one() {
        let dir = std::env::temp_dir().join(format!("vigo-advstore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("a.db")).unwrap();
        assert!(imported(&conn).unwrap().is_none());
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/advisories");
        let read = crate::advisories::read_dir(&fixtures).unwrap();
        replace_all(&conn, &read, "first", 100).unwrap();
        replace_all(&conn, &read[..1], "second", 200).unwrap();
        let got = imported(&conn).unwrap().unwrap();
        assert_eq!((got.at, got.source.as_str(), got.count), (200, "second", 1));
        assert_eq!(all(&conn).unwrap(), read[..1]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
