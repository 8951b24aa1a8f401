//! The fleet as the console shows it: each envoy's state (from its last check-in and its
//! latest run), counts by state, run outcomes by hour, and a filtered, paged envoy list.
//! Read-only; every query here is one statement over `envoys` and `runs`.

use rusqlite::{params, Connection};

/// What an envoy's state is, in the order the console lists them.
pub const STATES: &[&str] =
    &["converged", "changed", "drifting", "failed", "pending", "stale", "never", "revoked"];

/// Envoys silent for this many check-in intervals (times two: 2.5) are stale: one late
/// check-in is noise, two missed in a row are not.
const STALE_HALF_INTERVALS: i64 = 5;

/// Check-ins before this time are stale, at `now` for agents checking in every `interval`.
pub fn stale_before(now: i64, interval_secs: u32) -> i64 {
    now - STALE_HALF_INTERVALS * i64::from(interval_secs) / 2
}

/// Consecutive applied runs, all changing something with the same bundle, that make an envoy
/// drifting: the host keeps being changed back behind Vigo's back.
pub const DRIFT_RUNS: u32 = 3;

/// One envoy with its state.
#[derive(Clone, Debug)]
pub struct EnvoyState {
    pub id: String,
    pub name: String,
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub cert_not_after: Option<i64>,
    /// One of `STATES`.
    pub state: String,
}

/// The state of every envoy, computed in SQL (docs/OPERATIONS.md, "Fleet status", says the
/// same in words): revoked; never checked in; stale (no check-in since `?1`); failed (its
/// latest run of any kind failed: an aborted run is a failed noop run); else from its latest
/// applied run: drifting (the last `DRIFT_RUNS` applied runs all changed something, with one
/// bundle), changed, converged; pending before the first applied run. Runs received in the
/// same second are ordered by arrival (rowid). Each lookup is a seek
/// in `runs_latest` or `runs_applied`, and only for the envoys that need it.
const WITH_STATE: &str = "
    WITH fleet AS (
      SELECT e.id, e.name, e.enrolled_at, e.last_seen, e.revoked_at, e.cert_not_after,
        CASE
          WHEN e.revoked_at IS NOT NULL THEN 'revoked'
          WHEN e.last_seen IS NULL THEN 'never'
          WHEN e.last_seen < ?1 THEN 'stale'
          ELSE COALESCE(
            (SELECT 'failed' FROM (SELECT f.status FROM runs f WHERE f.envoy_id = e.id
                                   ORDER BY f.received_at DESC, f.rowid DESC LIMIT 1) WHERE status = 'failed'),
            (SELECT CASE
                 WHEN r.status = 'changed' AND (
                   SELECT COUNT(*) FROM (SELECT q.status, q.bundle_hash FROM runs q
                                         WHERE q.envoy_id = e.id AND q.noop = 0
                                         ORDER BY q.received_at DESC, q.rowid DESC LIMIT 3)
                   WHERE status = 'changed' AND bundle_hash = r.bundle_hash) = 3 THEN 'drifting'
                 ELSE r.status END
             FROM runs r WHERE r.envoy_id = e.id AND r.noop = 0
             ORDER BY r.received_at DESC, r.rowid DESC LIMIT 1),
            'pending')
        END AS state
      FROM envoys e)";

/// How many envoys are in each state (states with none are left out). Envoys that checked in
/// before `stale_before` are stale.
pub fn counts(conn: &Connection, stale_before: i64) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut stmt =
        conn.prepare_cached(&format!("{WITH_STATE} SELECT state, COUNT(*) FROM fleet GROUP BY state"))?;
    let rows = stmt.query_map([stale_before], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A filter of the envoy list: a state, and a piece of the name.
#[derive(Default, Debug)]
pub struct Filter<'a> {
    pub state: Option<&'a str>,
    pub name_contains: Option<&'a str>,
}

/// One page of envoys by name matching `filter`, and how many match in all.
pub fn page(
    conn: &Connection,
    stale_before: i64,
    filter: &Filter<'_>,
    offset: u64,
    limit: u32,
) -> rusqlite::Result<(Vec<EnvoyState>, u64)> {
    let matching = "FROM fleet WHERE (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR instr(name, ?3) > 0)";
    let total: u64 = conn
        .prepare_cached(&format!("{WITH_STATE} SELECT COUNT(*) {matching}"))?
        .query_row(params![stale_before, filter.state, filter.name_contains], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "{WITH_STATE} SELECT id, name, enrolled_at, last_seen, revoked_at, cert_not_after, state {matching}
         ORDER BY name, enrolled_at LIMIT ?4 OFFSET ?5"
    ))?;
    let rows = stmt.query_map(
        params![stale_before, filter.state, filter.name_contains, limit, offset as i64],
        |r| {
            Ok(EnvoyState {
                id: r.get(0)?,
                name: r.get(1)?,
                enrolled_at: r.get(2)?,
                last_seen: r.get(3)?,
                cert_not_after: r.get(5)?,
                state: r.get(6)?,
            })
        },
    )?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total))
}

/// Every envoy's state by id (`envoys list` with its status column); with `wheres`, only the
/// envoys whose traits match them all (`traits::condition`), whose states alone are computed.
pub fn states(
    conn: &Connection,
    stale_before: i64,
    wheres: &[(String, String)],
) -> rusqlite::Result<std::collections::HashMap<String, String>> {
    if wheres.is_empty() {
        let mut stmt = conn.prepare_cached(&format!("{WITH_STATE} SELECT id, state FROM fleet"))?;
        let rows = stmt.query_map([stale_before], |r| Ok((r.get(0)?, r.get(1)?)))?;
        return rows.collect();
    }
    let (condition, args) = super::traits::condition(wheres, 2);
    let mut stmt = conn.prepare(&format!(
        "{WITH_STATE} SELECT id, state FROM fleet WHERE id IN (SELECT envoy_id FROM envoy_traits WHERE {condition})"
    ))?;
    let mut all: Vec<&dyn rusqlite::ToSql> = vec![&stale_before];
    all.extend(args.iter().map(|a| a as &dyn rusqlite::ToSql));
    let rows = stmt.query_map(all.as_slice(), |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The statuses that need someone's attention, in the order `fleet status` lists them.
pub const ATTENTION: &[&str] = &["failed", "drifting", "stale", "never"];

/// Every envoy with its state, in one pass (`fleet status` counts and picks from it).
pub fn all(conn: &Connection, stale_before: i64) -> rusqlite::Result<Vec<EnvoyState>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{WITH_STATE} SELECT id, name, enrolled_at, last_seen, cert_not_after, state FROM fleet ORDER BY name"
    ))?;
    let rows = stmt.query_map([stale_before], |r| {
        Ok(EnvoyState {
            id: r.get(0)?,
            name: r.get(1)?,
            enrolled_at: r.get(2)?,
            last_seen: r.get(3)?,
            cert_not_after: r.get(4)?,
            state: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// The state of one envoy (by id).
pub fn state_of(conn: &Connection, stale_before: i64, id: &str) -> rusqlite::Result<String> {
    conn.prepare_cached(&format!("{WITH_STATE} SELECT state FROM fleet WHERE id = ?2"))?
        .query_row(params![stale_before, id], |r| r.get(0))
}

/// Run outcomes per hour since `since`: (hour start, status, count).
pub fn runs_by_hour(conn: &Connection, since: i64) -> rusqlite::Result<Vec<(i64, String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT (received_at / 3600) * 3600 AS hour, status, COUNT(*) FROM runs
         WHERE received_at >= ?1 GROUP BY hour, status",
    )?;
    let rows = stmt.query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Active envoys whose client certificate ends before `before`, and the earliest end.
pub fn certs_ending(conn: &Connection, before: i64) -> rusqlite::Result<(u64, Option<i64>)> {
    conn.query_row(
        "SELECT COUNT(*) FILTER (WHERE cert_not_after < ?1), MIN(cert_not_after)
         FROM envoys WHERE revoked_at IS NULL",
        [before],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envoy(conn: &Connection, id: &str, name: &str, last_seen: Option<i64>, revoked: bool) {
        conn.execute(
            "INSERT INTO envoys (id, name, public_key, enrolled_at, last_seen, revoked_at)
             VALUES (?1, ?2, ?1, 0, ?3, ?4)",
            params![id, name, last_seen, revoked.then_some(5)],
        )
        .unwrap();
    }

    fn run(conn: &Connection, id: &str, envoy: &str, at: i64, status: &str) {
        run_with(conn, id, envoy, at, status, "h", false);
    }

    fn run_with(conn: &Connection, id: &str, envoy: &str, at: i64, status: &str, bundle: &str, noop: bool) {
        conn.execute(
            "INSERT INTO runs (id, envoy_id, envoy_name, received_at, status, bundle_hash, report, noop)
             VALUES (?1, ?2, ?2, ?3, ?4, ?5, '{}', ?6)",
            params![id, envoy, at, status, bundle, noop],
        )
        .unwrap();
    }

    /// Drifting needs three applied runs in a row that changed something with one bundle; a
    /// noop run neither makes nor breaks it; an aborted (failed noop) run is a failure.
    #[test]
    fn drifting_failed_and_the_noop_runs_between() {
        let dir = std::env::temp_dir().join(format!("vigo-fleet-drift-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("f.db")).unwrap();
        let state = |id: &str| state_of(&conn, 0, id).unwrap();
        envoy(&conn, "a", "web1", Some(1000), false);
        run_with(&conn, "a1", "a", 1, "changed", "h1", false);
        run_with(&conn, "a2", "a", 2, "changed", "h1", false);
        assert_eq!(state("a"), "changed");
        run_with(&conn, "a3", "a", 3, "changed", "h1", true);
        assert_eq!(state("a"), "changed", "a noop run is not a third change");
        run_with(&conn, "a4", "a", 4, "changed", "h1", false);
        assert_eq!(state("a"), "drifting");
        run_with(&conn, "a5", "a", 5, "failed", "h1", true);
        assert_eq!(state("a"), "failed", "an aborted run is a failure");
        run_with(&conn, "a6", "a", 6, "converged", "h1", false);
        assert_eq!(state("a"), "converged");
        envoy(&conn, "b", "web2", Some(1000), false);
        run_with(&conn, "b1", "b", 1, "changed", "h1", false);
        run_with(&conn, "b2", "b", 2, "changed", "h2", false);
        run_with(&conn, "b3", "b", 3, "changed", "h3", false);
        assert_eq!(state("b"), "changed", "three publishes, three changes: not drift");
        envoy(&conn, "c", "web3", Some(1000), false);
        run_with(&conn, "c1", "c", 1, "converged", "h1", true);
        assert_eq!(state("c"), "pending", "only a noop run so far");
        assert_eq!(stale_before(1000, 100), 750);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Each state comes from the right evidence: the latest run wins over older ones, an old
    /// check-in makes an envoy stale whatever its runs said, revocation wins over everything.
    #[test]
    fn states_counts_filters_and_pages() {
        let dir = std::env::temp_dir().join(format!("vigo-fleet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("f.db")).unwrap();
        envoy(&conn, "a", "web1", Some(1000), false);
        run(&conn, "r1", "a", 900, "failed");
        run(&conn, "r2", "a", 950, "converged");
        envoy(&conn, "b", "web2", Some(1000), false);
        run(&conn, "r3", "b", 990, "failed");
        envoy(&conn, "c", "db1", Some(10), false);
        run(&conn, "r4", "c", 10, "converged");
        envoy(&conn, "d", "db2", None, false);
        envoy(&conn, "e", "db3", Some(1000), false);
        envoy(&conn, "f", "old", Some(1000), true);
        let mut counts = counts(&conn, 500).unwrap();
        counts.sort();
        let want: Vec<(String, u64)> =
            [("converged", 1), ("failed", 1), ("never", 1), ("pending", 1), ("revoked", 1), ("stale", 1)]
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect();
        assert_eq!(counts, want);
        let (rows, total) =
            page(&conn, 500, &Filter { state: None, name_contains: Some("db") }, 0, 2).unwrap();
        assert_eq!(total, 3);
        assert_eq!(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["db1", "db2"]);
        assert_eq!(rows[0].state, "stale");
        let (rows, total) =
            page(&conn, 500, &Filter { state: Some("failed"), name_contains: None }, 0, 10).unwrap();
        assert_eq!((total, rows[0].name.as_str()), (1, "web2"));
        assert_eq!(state_of(&conn, 500, "a").unwrap(), "converged");
        let by_hour = runs_by_hour(&conn, 0).unwrap();
        assert_eq!(by_hour.iter().map(|(_, _, n)| n).sum::<u64>(), 4);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
