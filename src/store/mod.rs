//! The one SQLite store. Every role opens its database through `open`, which sets WAL, a busy
//! timeout and foreign keys, and brings the schema up to date by `user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub mod advisories;
pub mod api_tokens;
pub mod audit_log;
pub mod config_history;
pub mod counters;
pub mod enroll_tokens;
pub mod envoys;
pub mod fleet;
pub mod maint;
pub mod releases;
pub mod rotations;
pub mod runs;
mod schema;
pub mod sessions;
pub mod sink_cursors;
pub mod tasks;
pub mod traits;
pub mod users;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("database {path} has schema version {found}, newer than this vigo understands ({known}); upgrade vigo")]
    TooNew { path: String, found: i64, known: i64 },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// How long a writer waits for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let shown = path.display().to_string();
    let wrap = |source| StoreError::Open { path: shown.clone(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::util::fsutil::ensure_dir(dir, 0o700)
            .map_err(|e| wrap(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
    }
    let conn = Connection::open(path).map_err(wrap)?;
    // The database holds audit rows and envoy keys: owner-only, like every other state file.
    let _ = std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600));
    conn.busy_timeout(BUSY_TIMEOUT).map_err(wrap)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(wrap)?;
    // FULL syncs the WAL at every commit: an acknowledged audit row or run report survives a
    // power cut, not only a crash. The server's group commit pays one sync per batch.
    conn.pragma_update(None, "synchronous", "FULL").map_err(wrap)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(wrap)?;
    migrate(&conn, &shown)?;
    Ok(conn)
}

fn migrate(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = schema::MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew { path: path.into(), found: current, known });
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(current as usize) {
        // IMMEDIATE: two processes starting at once must not both run a migration.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let again: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if again > i as i64 {
            conn.execute_batch("COMMIT")?;
            continue;
        }
        let step =
            conn.execute_batch(sql).and_then(|_| conn.pragma_update(None, "user_version", (i + 1) as i64));
        match step {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_migrates_and_refuses_newer_schema() {
        let dir = std::env::temp_dir().join(format!("vigo-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = dir.join("t.db");
        let conn = open(&db).unwrap();
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, schema::MIGRATIONS.len() as i64);
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        // 2 = FULL: a commit is on disk before it is acknowledged.
        let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap();
        assert_eq!(sync, 2);
        conn.pragma_update(None, "user_version", 999).unwrap();
        drop(conn);
        assert!(matches!(open(&db), Err(StoreError::TooNew { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
