//! Run reports, stored as the agent sent them (already scrubbed), and their retention.

use rusqlite::{params, Connection, OptionalExtension};

pub struct NewRun<'a> {
    pub id: &'a str,
    pub envoy_id: &'a str,
    pub envoy_name: &'a str,
    pub received_at: i64,
    pub status: &'a str,
    pub bundle_hash: &'a str,
    pub report_json: &'a str,
    /// The run changed nothing on purpose (noop, or aborted before any resource ran).
    pub noop: bool,
}

pub fn insert(conn: &Connection, r: &NewRun<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO runs (id, envoy_id, envoy_name, received_at, status, bundle_hash, report, noop)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        r.id,
        r.envoy_id,
        r.envoy_name,
        r.received_at,
        r.status,
        r.bundle_hash,
        r.report_json,
        r.noop
    ])?;
    Ok(())
}

pub struct RunSummary {
    pub id: String,
    pub envoy_name: String,
    pub received_at: i64,
    pub status: String,
    pub bundle_hash: String,
}

/// The newest `limit` runs, of one envoy or of all.
pub fn list(conn: &Connection, envoy_name: Option<&str>, limit: u32) -> rusqlite::Result<Vec<RunSummary>> {
    let mut stmt = conn.prepare(
        "SELECT id, envoy_name, received_at, status, bundle_hash FROM runs
         WHERE ?1 IS NULL OR envoy_name = ?1 ORDER BY received_at DESC, rowid DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![envoy_name, limit], |r| {
        Ok(RunSummary {
            id: r.get(0)?,
            envoy_name: r.get(1)?,
            received_at: r.get(2)?,
            status: r.get(3)?,
            bundle_hash: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// A page of runs, newest first, of one envoy and/or one status, older than the cursor
/// `(received_at, rowid)` of the last row of the previous page. Returns each run with its
/// cursor. One range scan of `runs_by_time` (or `runs_by_envoy` for one envoy).
pub fn page(
    conn: &Connection,
    envoy_name: Option<&str>,
    status: Option<&str>,
    before: Option<(i64, i64)>,
    limit: u32,
) -> rusqlite::Result<Vec<(RunSummary, (i64, i64))>> {
    let (at, rowid) = before.unwrap_or((i64::MAX, i64::MAX));
    let mut stmt = conn.prepare_cached(
        "SELECT id, envoy_name, received_at, status, bundle_hash, rowid FROM runs
         WHERE (?1 IS NULL OR envoy_name = ?1) AND (?2 IS NULL OR status = ?2)
           AND (received_at, rowid) < (?3, ?4)
         ORDER BY received_at DESC, rowid DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(params![envoy_name, status, at, rowid, limit], |r| {
        let received_at: i64 = r.get(2)?;
        Ok((
            RunSummary {
                id: r.get(0)?,
                envoy_name: r.get(1)?,
                received_at,
                status: r.get(3)?,
                bundle_hash: r.get(4)?,
            },
            (received_at, r.get(5)?),
        ))
    })?;
    rows.collect()
}

/// (envoy name, received at, report JSON) of one run.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<(String, i64, String)>> {
    conn.query_row("SELECT envoy_name, received_at, report FROM runs WHERE id = ?1", [id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .optional()
}

/// Deletes runs received before `older_than`, and beyond the newest `keep_per_envoy` of each
/// envoy. Returns how many went.
pub fn prune(conn: &Connection, older_than: i64, keep_per_envoy: u32) -> rusqlite::Result<usize> {
    let old = conn.execute("DELETE FROM runs WHERE received_at < ?1", [older_than])?;
    let surplus = conn.execute(
        "DELETE FROM runs WHERE rowid IN (
           SELECT rowid FROM (
             SELECT rowid, ROW_NUMBER() OVER (PARTITION BY envoy_id ORDER BY received_at DESC, rowid DESC) AS n
             FROM runs)
           WHERE n > ?1)",
        [keep_per_envoy],
    )?;
    Ok(old + surplus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_per_envoy_and_drops_the_old() {
        let dir = std::env::temp_dir().join(format!("vigo-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("r.db")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        for (i, envoy) in ["a", "a", "a", "a", "b", "b"].iter().enumerate() {
            let id = format!("r{i}");
            let run = NewRun {
                id: &id,
                envoy_id: envoy,
                envoy_name: envoy,
                received_at: 100 + i as i64,
                status: "converged",
                bundle_hash: "h",
                report_json: "{}",
                noop: false,
            };
            insert(&conn, &run).unwrap();
        }
        // Keep 2 per envoy, and nothing received before 101: r0 (old), r1 (surplus of a) go.
        assert_eq!(prune(&conn, 101, 2).unwrap(), 2);
        let left: Vec<String> = list(&conn, None, 10).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(left, ["r5", "r4", "r3", "r2"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
