//! The fleet as the console shows it: each envoy's state (from its last check-in and its
//! latest run), counts by state, run outcomes by hour, and a filtered, paged envoy list.
//! Read-only; every query here is one statement over `envoys` and `runs`.

use rusqlite::{params, Connection};

/// What an envoy's state is, in the order the console lists them.
pub const STATES: &[&str] = &["converged", "changed", "failed", "pending", "stale", "never", "revoked"];

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

/// The state of every envoy, computed in SQL: revoked, never checked in, stale (no check-in
/// since `?1`), else the status of its latest run (`pending` before the first one). The
/// latest run is one seek in `runs_latest` per envoy, and only for the envoys that need it.
const WITH_STATE: &str = "
    WITH fleet AS (
      SELECT e.id, e.name, e.enrolled_at, e.last_seen, e.revoked_at, e.cert_not_after,
        CASE
          WHEN e.revoked_at IS NOT NULL THEN 'revoked'
          WHEN e.last_seen IS NULL THEN 'never'
          WHEN e.last_seen < ?1 THEN 'stale'
          ELSE COALESCE((SELECT r.status FROM runs r WHERE r.envoy_id = e.id
                         ORDER BY r.received_at DESC LIMIT 1), 'pending')
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
        conn.execute(
            "INSERT INTO runs (id, envoy_id, envoy_name, received_at, status, bundle_hash, report)
             VALUES (?1, ?2, ?2, ?3, ?4, 'h', '{}')",
            params![id, envoy, at, status],
        )
        .unwrap();
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
