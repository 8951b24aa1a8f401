//! Reading the audit log page by page, newest first, filtered by event and actor. Pages are
//! cut by sequence number (`before`), never by OFFSET, so any page is one index seek: the
//! chain has no gaps, and `audit_by_action` / `audit_by_actor` serve the filters.

use rusqlite::{params, Connection, OptionalExtension};

use crate::audit::Row;

#[derive(Default, Debug, Clone)]
pub struct Filter {
    /// An exact action, e.g. `secret.set`.
    pub action: Option<String>,
    /// An exact actor, e.g. `user:alice`.
    pub actor: Option<String>,
}

/// Up to `limit` rows with `seq < before` (all when `before` is None), newest first.
pub fn page(
    conn: &Connection,
    filter: &Filter,
    before: Option<i64>,
    limit: u32,
) -> rusqlite::Result<Vec<Row>> {
    let before = before.unwrap_or(i64::MAX);
    // One statement per filter shape, so each uses its own index (SQLite picks one per query).
    let (sql, args): (&str, Vec<&dyn rusqlite::ToSql>) = match (&filter.action, &filter.actor) {
        (None, None) => ("WHERE seq < ?1", vec![&before]),
        (Some(a), None) => ("WHERE action = ?2 AND seq < ?1", vec![&before, a]),
        (None, Some(who)) => ("WHERE actor = ?2 AND seq < ?1", vec![&before, who]),
        (Some(a), Some(who)) => ("WHERE action = ?2 AND actor = ?3 AND seq < ?1", vec![&before, a, who]),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, ts, actor, action, target, detail, prev_hash, hash FROM audit {sql}
         ORDER BY seq DESC LIMIT {limit}"
    ))?;
    let rows = stmt.query_map(args.as_slice(), crate::audit::read_row)?;
    rows.collect()
}

/// The `seq` that starts the page of newer rows just above `after` (`limit` rows up), for the
/// "newer" link: that page is everything with `seq <` the returned value.
pub fn newer_page_start(
    conn: &Connection,
    filter: &Filter,
    after: i64,
    limit: u32,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT MAX(seq) + 1 FROM (SELECT seq FROM audit WHERE seq > ?1
           AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR actor = ?3) ORDER BY seq LIMIT ?4)",
    )?
    .query_row(params![after, filter.action, filter.actor, limit], |r| r.get(0))
}

/// Up to `limit` rows after `seq`, oldest first: the next batch of an audit sink.
pub fn after(conn: &Connection, seq: i64, limit: u32) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, ts, actor, action, target, detail, prev_hash, hash FROM audit
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![seq, limit], crate::audit::read_row)?;
    rows.collect()
}

/// The recorded head: (seq, hash) of the last row.
pub fn head(conn: &Connection) -> rusqlite::Result<Option<(i64, Vec<u8>)>> {
    conn.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// The distinct actions recorded (for the event filter), from the index alone.
pub fn actions(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    // A skip-scan of `audit_by_action`: one seek per distinct action.
    let mut out = Vec::new();
    let mut last = String::new();
    let mut next =
        conn.prepare_cached("SELECT action FROM audit WHERE action > ?1 ORDER BY action LIMIT 1")?;
    while let Some(a) = next.query_row([&last], |r| r.get::<_, String>(0)).optional()? {
        out.push(a.clone());
        last = a;
        if out.len() >= 500 {
            break;
        }
    }
    Ok(out)
}

/// The newest row of `action` about each of `targets` (for the secrets page: who set each key,
/// when). Returns (target, actor, ts, detail).
pub fn latest_by_target(
    conn: &Connection,
    actions: &[&str],
    limit_rows: u32,
) -> rusqlite::Result<Vec<(String, String, String, String)>> {
    let mut out: Vec<(String, String, String, String)> = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT target, actor, ts, detail FROM audit WHERE action = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    for action in actions {
        let rows = stmt
            .query_map(params![action, limit_rows], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{append_all, Event};

    #[test]
    fn pages_by_sequence_with_filters() {
        let dir = std::env::temp_dir().join(format!("vigo-auditlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut conn = crate::store::open(&dir.join("a.db")).unwrap();
        let events: Vec<Event<'_>> = (0..30)
            .map(|i| {
                let actor = if i % 3 == 0 { "user:alice" } else { "server" };
                let action = if i % 2 == 0 { "secret.set" } else { "envoy.enrolled" };
                Event::new(actor, action, "t")
            })
            .collect();
        append_all(&mut conn, &events).unwrap();
        let all = page(&conn, &Filter::default(), None, 10).unwrap();
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), (21..=30).rev().collect::<Vec<_>>());
        let next = page(&conn, &Filter::default(), Some(21), 10).unwrap();
        assert_eq!(next[0].seq, 20);
        let f = Filter { action: Some("secret.set".into()), actor: Some("user:alice".into()) };
        let rows = page(&conn, &f, None, 100).unwrap();
        // seq = i + 1 with i % 6 == 0: 1, 7, 13, 19, 25.
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [25, 19, 13, 7, 1]);
        assert_eq!(newer_page_start(&conn, &f, 7, 2).unwrap(), Some(20));
        assert_eq!(actions(&conn).unwrap(), ["envoy.enrolled", "secret.set"]);
        assert_eq!(head(&conn).unwrap().unwrap().0, 30);
        let next = after(&conn, 27, 2).unwrap();
        assert_eq!(next.iter().map(|r| r.seq).collect::<Vec<_>>(), [28, 29]);
        assert!(after(&conn, 30, 10).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
