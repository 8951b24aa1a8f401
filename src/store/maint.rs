//! Looking after the database itself: its size by table, SQLite's own checks, pruning old
//! runs and ended sessions (never audit rows), and consistent copies through SQLite's online
//! backup API while the server keeps writing.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Every table with its row count, by name.
pub fn table_rows(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names
        .into_iter()
        .map(|name| {
            // Names come from sqlite_schema itself, quoted as identifiers.
            let n: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\"")),
                [],
                |r| r.get(0),
            )?;
            Ok((name, n))
        })
        .collect()
}

/// Pages in use and free, and the page size: the file's size is their sum times the size.
pub fn pages(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    let count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok((count, free, size))
}

/// SQLite's full integrity check and the foreign key check; each problem one line ("ok" is
/// none).
pub fn integrity(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|l| l != "ok")
        .collect();
    let fk: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")?
        .query_map([], |r| {
            Ok(format!(
                "row {} of {} refers to a missing {}",
                r.get::<_, i64>(1)?,
                r.get::<_, String>(0)?,
                r.get::<_, String>(2)?
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    problems.extend(fk);
    Ok(problems)
}

/// What `prune` deleted.
pub struct Pruned {
    pub runs: usize,
    pub sessions: usize,
    pub tasks: usize,
}

/// Deletes runs received before `older_than` (the newest `keep_per_envoy` of each envoy stay,
/// so no envoy loses its status), sessions that ended before it, and ad-hoc tasks created
/// before it that are over (stopped, or no part waiting or running), with their results.
/// Audit rows are never deleted (their triggers would refuse anyway; `task.created` stays).
pub fn prune(conn: &Connection, older_than: i64, keep_per_envoy: u32) -> rusqlite::Result<Pruned> {
    let runs = conn.execute(
        "DELETE FROM runs WHERE received_at < ?1 AND rowid NOT IN (
           SELECT rowid FROM (
             SELECT rowid, ROW_NUMBER() OVER (PARTITION BY envoy_id ORDER BY received_at DESC, rowid DESC) AS n
             FROM runs)
           WHERE n <= ?2)",
        rusqlite::params![older_than, keep_per_envoy],
    )?;
    let sessions = conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [older_than])?;
    let over = "SELECT id FROM tasks t WHERE created_at < ?1 AND (stopped IS NOT NULL OR NOT EXISTS
                  (SELECT 1 FROM task_runs r WHERE r.task_id = t.id AND r.state IN ('waiting', 'sent')))";
    conn.execute(&format!("DELETE FROM task_runs WHERE task_id IN ({over})"), [older_than])?;
    let tasks = conn.execute(&format!("DELETE FROM tasks WHERE id IN ({over})"), [older_than])?;
    Ok(Pruned { runs, sessions, tasks })
}

/// A consistent copy of the open database `src` into a new file `dest`, page by page, letting
/// the server's writers in between steps.
pub fn backup_to(src: &Connection, dest: &Path) -> rusqlite::Result<()> {
    let mut out = Connection::open(dest)?;
    let backup = rusqlite::backup::Backup::new(src, &mut out)?;
    backup.run_to_completion(256, Duration::from_millis(5), None)?;
    drop(backup);
    // One file, no WAL beside it: the copy is self-contained.
    out.execute_batch("PRAGMA journal_mode = DELETE;")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tasks::{self, NewTask};

    /// Old tasks that are over go with their results; a task still running, or a young one,
    /// stays.
    #[test]
    fn prune_deletes_old_finished_tasks_and_keeps_running_ones() {
        let dir = std::env::temp_dir().join(format!("vigo-maint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("m.db")).unwrap();
        let targets = vec![("id1".to_string(), "web1".to_string())];
        let task = |id, created_at| NewTask {
            id,
            command: "true",
            target: "web1",
            batch_size: 1,
            max_failures: 0,
            timeout_secs: 60,
            forced: false,
            created_by: "test",
            created_at,
        };
        for (id, at) in [("done-old", 10), ("running-old", 11), ("done-young", 500)] {
            tasks::create(&conn, &task(id, at), &targets).unwrap();
        }
        let ok = tasks::Outcome { exit_code: Some(0), output: "", error: "", duration_ms: 1 };
        for id in ["done-old", "done-young"] {
            conn.execute("UPDATE task_runs SET state = 'sent' WHERE task_id = ?1", [id]).unwrap();
            assert!(tasks::record(&conn, id, "id1", &ok, 20).unwrap());
        }
        let pruned = prune(&conn, 100, 10).unwrap();
        assert_eq!(pruned.tasks, 1);
        assert!(tasks::get(&conn, "done-old").unwrap().is_none());
        assert!(tasks::get(&conn, "running-old").unwrap().is_some(), "a part still waits");
        assert!(tasks::get(&conn, "done-young").unwrap().is_some(), "younger than the cut-off");
        let orphans: i64 = conn
            .query_row("SELECT COUNT(*) FROM task_runs WHERE task_id = 'done-old'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(orphans, 0, "its results went with it");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
