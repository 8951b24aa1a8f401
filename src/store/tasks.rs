//! Ad-hoc tasks (`vigocli task run`): a command, the envoys it targets split into batches, and
//! each envoy's result. An envoy is handed its run at check-in once every earlier batch of the
//! task has finished and the task has not been stopped (too many failures).

use rusqlite::{params, Connection, OptionalExtension};

/// A task as created.
#[derive(Debug, Clone)]
pub struct NewTask<'a> {
    pub id: &'a str,
    pub command: &'a str,
    pub target: &'a str,
    pub batch_size: u32,
    pub max_failures: u32,
    pub timeout_secs: u32,
    pub forced: bool,
    pub created_by: &'a str,
    pub created_at: i64,
}

/// One envoy's part in a task.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskRun {
    pub envoy: String,
    pub batch: u32,
    /// waiting | sent | ok | failed
    pub state: String,
    pub exit_code: Option<i64>,
    pub output: String,
    pub error: String,
    pub duration_ms: Option<i64>,
}

/// A task with its counts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskSummary {
    pub id: String,
    pub command: String,
    pub target: String,
    pub batch_size: u32,
    pub max_failures: u32,
    pub timeout_secs: u32,
    pub forced: bool,
    pub created_by: String,
    pub created_at: i64,
    pub stopped: Option<String>,
    pub waiting: u64,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
}

/// What an agent is handed: (task id, command, timeout).
pub type Handout = (String, String, u32);

/// Stores a task and its targets, `(envoy id, envoy name)` in batch order.
pub fn create(conn: &Connection, t: &NewTask<'_>, targets: &[(String, String)]) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO tasks (id, command, target, batch_size, max_failures, timeout_secs, forced, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            t.id,
            t.command,
            t.target,
            t.batch_size,
            t.max_failures,
            t.timeout_secs,
            t.forced,
            t.created_by,
            t.created_at
        ],
    )?;
    let mut insert = conn.prepare(
        "INSERT INTO task_runs (task_id, envoy_id, envoy_name, batch, state) VALUES (?1, ?2, ?3, ?4, 'waiting')",
    )?;
    for (i, (id, name)) in targets.iter().enumerate() {
        insert.execute(params![t.id, id, name, (i as u32) / t.batch_size.max(1)])?;
    }
    Ok(())
}

/// How long past its time limit a handed-out task may stay without a result before it counts
/// as failed: two check-in intervals (the run that took it may be long) and ten minutes.
pub fn grace_secs(checkin_interval_secs: u32) -> i64 {
    2 * i64::from(checkin_interval_secs) + 600
}

/// Fails the runs sent longer ago than their time limit plus `grace_secs` without a result
/// (the agent was killed, or its host went away), and the runs whose turn has come for an
/// envoy that will not take them: revoked, or silent for `grace_secs` (and the task is older
/// than that) while running no part. A batch must not wait for ever.
///
/// The parts handed out at one check-in run one after the other and are reported together,
/// once the run ends: each is due when the whole hand-out may have ended (the sum of their
/// time limits after it was sent).
pub fn expire(conn: &Connection, now: i64, grace_secs: i64) -> rusqlite::Result<usize> {
    let mut expired = conn.execute(
        "UPDATE task_runs SET state = 'failed', error = 'no result came back from the envoy', done_at = ?1
         WHERE state = 'sent'
           AND sent_at < ?1 - ?2 - (SELECT SUM(t.timeout_secs) FROM task_runs s JOIN tasks t ON t.id = s.task_id
                                    WHERE s.envoy_id = task_runs.envoy_id AND s.sent_at = task_runs.sent_at)",
        params![now, grace_secs],
    )?;
    expired += conn.execute(
        &format!(
            "UPDATE task_runs SET state = 'failed', done_at = ?1,
                 error = 'not run: the envoy was revoked, or had not checked in for too long when its turn came'
             WHERE (task_id, envoy_id) IN (
                 SELECT r.task_id, r.envoy_id FROM task_runs r
                 JOIN tasks t ON t.id = r.task_id JOIN envoys e ON e.id = r.envoy_id
                 WHERE {STARTABLE}
                   AND (e.revoked_at IS NOT NULL
                        OR (t.created_at < ?1 - ?2 AND COALESCE(e.last_seen, 0) < ?1 - ?2
                            -- an agent running parts sends nothing until its run ends: busy, not silent
                            AND NOT EXISTS (SELECT 1 FROM task_runs s WHERE s.envoy_id = r.envoy_id AND s.state = 'sent'))))"
        ),
        params![now, grace_secs],
    )?;
    if expired > 0 {
        stop_where_too_many_failed(conn, None)?;
    }
    Ok(expired)
}

/// The tasks that can still move: a part running, or a part waiting in a task not stopped (a
/// stopped task's waiting parts never start). The server's upkeep expires their overdue parts
/// (`expire`), also when no envoy with a waiting part checks in.
pub fn open_task_ids(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT DISTINCT r.task_id FROM task_runs r JOIN tasks t ON t.id = r.task_id
         WHERE r.state = 'sent' OR (r.state = 'waiting' AND t.stopped IS NULL)",
    )?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// Stops the task (or every task) whose failures passed its `max_failures`.
fn stop_where_too_many_failed(conn: &Connection, task_id: Option<&str>) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE tasks SET stopped = 'more than ' || max_failures || ' envoys failed'
         WHERE (?1 IS NULL OR id = ?1) AND stopped IS NULL
           AND (SELECT COUNT(*) FROM task_runs WHERE task_id = tasks.id AND state = 'failed') > max_failures",
        [task_id],
    )?;
    Ok(())
}

/// A run `r` of task `t` that may start now: waiting, its task not stopped, and every earlier
/// batch of its task finished.
const STARTABLE: &str = "r.state = 'waiting' AND t.stopped IS NULL
    AND NOT EXISTS (SELECT 1 FROM task_runs p WHERE p.task_id = r.task_id AND p.batch < r.batch
                    AND p.state IN ('waiting', 'sent'))";

/// Runs handed out in one check-in at most: as many results as one report may carry (the
/// rest go at the next check-in).
pub const MAX_PER_CHECK_IN: usize = 64;

/// The runs `envoy_id` may start now (oldest task first, at most `MAX_PER_CHECK_IN`), marked sent.
pub fn hand_out(conn: &Connection, envoy_id: &str, now: i64) -> rusqlite::Result<Vec<Handout>> {
    let due: Vec<Handout> = conn
        .prepare_cached(&format!(
            "SELECT t.id, t.command, t.timeout_secs FROM task_runs r JOIN tasks t ON t.id = r.task_id
             WHERE r.envoy_id = ?1 AND {STARTABLE} ORDER BY t.created_at, t.id LIMIT {MAX_PER_CHECK_IN}"
        ))?
        .query_map([envoy_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, _, _) in &due {
        conn.execute(
            "UPDATE task_runs SET state = 'sent', sent_at = ?3 WHERE task_id = ?1 AND envoy_id = ?2",
            params![id, envoy_id, now],
        )?;
    }
    Ok(due)
}

/// The envoys that may start a run of `task_id` now (to be nudged: the task was created, or
/// a batch just finished).
pub fn startable_envoys(conn: &Connection, task_id: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(&format!(
        "SELECT r.envoy_id FROM task_runs r JOIN tasks t ON t.id = r.task_id WHERE r.task_id = ?1 AND {STARTABLE}"
    ))?
    .query_map([task_id], |r| r.get(0))?
    .collect()
}

/// Whether an envoy has any task waiting (cheap: answered on every check-in).
pub fn any_waiting(conn: &Connection, envoy_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM task_runs WHERE envoy_id = ?1 AND state = 'waiting' LIMIT 1")?
        .query_row([envoy_id], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

/// What an envoy reported of one task.
pub struct Outcome<'a> {
    pub exit_code: Option<i64>,
    pub output: &'a str,
    pub error: &'a str,
    pub duration_ms: i64,
}

/// Records one envoy's result for a run it was sent; stops the task once its failures pass
/// `max_failures`. Results for runs not sent to this envoy are ignored (false).
pub fn record(
    conn: &Connection,
    task_id: &str,
    envoy_id: &str,
    o: &Outcome<'_>,
    now: i64,
) -> rusqlite::Result<bool> {
    let ok = o.exit_code == Some(0) && o.error.is_empty();
    let changed = conn.execute(
        "UPDATE task_runs SET state = ?3, exit_code = ?4, output = ?5, error = ?6, duration_ms = ?7, done_at = ?8
         WHERE task_id = ?1 AND envoy_id = ?2 AND state = 'sent'",
        params![task_id, envoy_id, if ok { "ok" } else { "failed" }, o.exit_code, o.output, o.error, o.duration_ms, now],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    stop_where_too_many_failed(conn, Some(task_id))?;
    Ok(true)
}

const SUMMARY: &str =
    "SELECT t.id, t.command, t.target, t.batch_size, t.max_failures, t.timeout_secs, t.forced,
       t.created_by, t.created_at, t.stopped,
       (SELECT COUNT(*) FROM task_runs r WHERE r.task_id = t.id AND r.state = 'waiting'),
       (SELECT COUNT(*) FROM task_runs r WHERE r.task_id = t.id AND r.state = 'sent'),
       (SELECT COUNT(*) FROM task_runs r WHERE r.task_id = t.id AND r.state = 'ok'),
       (SELECT COUNT(*) FROM task_runs r WHERE r.task_id = t.id AND r.state = 'failed')
     FROM tasks t";

fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskSummary> {
    Ok(TaskSummary {
        id: r.get(0)?,
        command: r.get(1)?,
        target: r.get(2)?,
        batch_size: r.get(3)?,
        max_failures: r.get(4)?,
        timeout_secs: r.get(5)?,
        forced: r.get(6)?,
        created_by: r.get(7)?,
        created_at: r.get(8)?,
        stopped: r.get(9)?,
        waiting: r.get(10)?,
        sent: r.get(11)?,
        ok: r.get(12)?,
        failed: r.get(13)?,
    })
}

/// The latest tasks, newest first.
pub fn list(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<TaskSummary>> {
    conn.prepare(&format!("{SUMMARY} ORDER BY t.created_at DESC, t.rowid DESC LIMIT ?1"))?
        .query_map([limit], summary)?
        .collect()
}

/// One task and every envoy's run of it, by batch and name.
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<(TaskSummary, Vec<TaskRun>)>> {
    let Some(task) = conn.query_row(&format!("{SUMMARY} WHERE t.id = ?1"), [id], summary).optional()? else {
        return Ok(None);
    };
    let runs = conn
        .prepare(
            "SELECT envoy_name, batch, state, exit_code, output, error, duration_ms FROM task_runs
             WHERE task_id = ?1 ORDER BY batch, envoy_name",
        )?
        .query_map([id], |r| {
            Ok(TaskRun {
                envoy: r.get(0)?,
                batch: r.get(1)?,
                state: r.get(2)?,
                exit_code: r.get(3)?,
                output: r.get(4)?,
                error: r.get(5)?,
                duration_ms: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some((task, runs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task<'a>(id: &'a str, batch_size: u32, max_failures: u32) -> NewTask<'a> {
        NewTask {
            id,
            command: "true",
            target: "web*",
            batch_size,
            max_failures,
            timeout_secs: 60,
            forced: false,
            created_by: "test",
            created_at: 1,
        }
    }

    fn ran(code: i64) -> Outcome<'static> {
        Outcome { exit_code: Some(code), output: "", error: "", duration_ms: 1 }
    }

    /// Batches open one after the other, a failure past the limit stops the rest, and a run
    /// whose envoy never answers fails after its time limit and the grace, so that the next
    /// batch is not held for ever.
    #[test]
    fn batches_open_in_order_failures_stop_them_and_silence_expires() {
        let dir = std::env::temp_dir().join(format!("vigo-tasks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("t.db")).unwrap();
        let targets: Vec<(String, String)> = (1..=3).map(|i| (format!("id{i}"), format!("web{i}"))).collect();
        create(&conn, &task("t1", 1, 1), &targets).unwrap();
        assert_eq!(startable_envoys(&conn, "t1").unwrap(), ["id1"]);
        assert!(hand_out(&conn, "id2", 100).unwrap().is_empty(), "batch 2 waits for batch 1");
        assert_eq!(hand_out(&conn, "id1", 100).unwrap().len(), 1);
        assert!(startable_envoys(&conn, "t1").unwrap().is_empty(), "batch 1 runs, batch 2 waits");
        assert!(hand_out(&conn, "id1", 101).unwrap().is_empty(), "handed out once");
        assert!(record(&conn, "t1", "id1", &ran(0), 110).unwrap());
        assert!(!record(&conn, "t1", "id1", &ran(0), 111).unwrap(), "one result per run");
        assert_eq!(startable_envoys(&conn, "t1").unwrap(), ["id2"], "batch 1 done: batch 2 may start");
        assert_eq!(hand_out(&conn, "id2", 120).unwrap().len(), 1);
        // web2's agent is killed: nothing comes back. Within limit and grace, batch 3 waits.
        assert_eq!(expire(&conn, 120 + 60 + 600, 600).unwrap(), 0);
        assert!(hand_out(&conn, "id3", 200).unwrap().is_empty());
        assert_eq!(expire(&conn, 120 + 60 + 601, 600).unwrap(), 1);
        // Failed, it counts as a failure (one is allowed here) and the gate opens.
        let (summary, runs) = get(&conn, "t1").unwrap().unwrap();
        assert_eq!((summary.ok, summary.failed), (1, 1));
        assert!(runs[1].error.contains("no result"));
        assert_eq!(hand_out(&conn, "id3", 900).unwrap().len(), 1);
        assert!(record(&conn, "t1", "id3", &ran(0), 910).unwrap());

        // A run whose turn came for an envoy that is revoked, or silent past the grace, fails;
        // one that checks in keeps its turn.
        for (id, last_seen, revoked) in
            [("id1", Some(2_000), None), ("id2", Some(10), None), ("id3", None, Some(5))]
        {
            conn.execute(
                "INSERT INTO envoys (id, name, public_key, enrolled_at, last_seen, revoked_at) VALUES (?1, ?1, ?1, 1, ?2, ?3)",
                params![id, last_seen, revoked],
            )
            .unwrap();
        }
        create(&conn, &NewTask { created_at: 1_000, ..task("t3", 3, 3) }, &targets).unwrap();
        assert_eq!(expire(&conn, 1_100, 600).unwrap(), 1, "the revoked envoy's run, at once");
        assert_eq!(expire(&conn, 1_700, 600).unwrap(), 1, "the silent one's, past the grace");
        let (summary, runs) = get(&conn, "t3").unwrap().unwrap();
        assert_eq!(summary.failed, 2);
        assert!(runs.iter().filter(|r| r.envoy != "web1").all(|r| r.error.contains("not checked in")));
        assert_eq!(hand_out(&conn, "id1", 1_700).unwrap().len(), 1, "the live envoy still runs it");
        assert!(record(&conn, "t3", "id1", &ran(0), 1_710).unwrap());
        conn.execute("DELETE FROM envoys", []).unwrap();

        create(&conn, &task("t2", 1, 0), &targets).unwrap();
        assert_eq!(hand_out(&conn, "id1", 1000).unwrap().len(), 1);
        assert!(record(&conn, "t2", "id1", &ran(7), 1001).unwrap());
        assert!(get(&conn, "t2").unwrap().unwrap().0.stopped.is_some());
        assert!(hand_out(&conn, "id2", 1002).unwrap().is_empty(), "a stopped task hands out nothing");
        assert!(
            !open_task_ids(&conn).unwrap().contains(&"t2".to_string()),
            "nor is it open: its parts never start"
        );

        // Two parts handed out together run one after the other and are reported together:
        // both are due when both may have ended.
        let targets1 = &targets[..1];
        create(&conn, &NewTask { created_at: 4_000, ..task("t4", 1, 5) }, targets1).unwrap();
        create(&conn, &NewTask { created_at: 4_001, ..task("t5", 1, 5) }, targets1).unwrap();
        assert_eq!(hand_out(&conn, "id1", 5_000).unwrap().len(), 2);
        assert_eq!(expire(&conn, 5_000 + 60 + 600 + 1, 600).unwrap(), 0, "the first is not due alone");
        assert_eq!(expire(&conn, 5_000 + 120 + 600 + 1, 600).unwrap(), 2, "both, once both may have ended");

        // Busy, not silent: an agent running a part sends nothing until its run ends, so its
        // next part is not failed for the silence.
        conn.execute("INSERT INTO envoys (id, name, public_key, enrolled_at, last_seen) VALUES ('id2', 'web2', 'k2', 1, 10)", [])
            .unwrap();
        let targets2 = &targets[1..2];
        create(&conn, &NewTask { created_at: 7_000, ..task("t6", 1, 5) }, targets2).unwrap();
        assert_eq!(hand_out(&conn, "id2", 8_000).unwrap().len(), 1);
        create(&conn, &NewTask { created_at: 7_000, ..task("t7", 1, 5) }, targets2).unwrap();
        assert_eq!(expire(&conn, 8_100, 600).unwrap(), 0, "its running part keeps the next one waiting");
        assert_eq!(expire(&conn, 8_000 + 60 + 600 + 1, 600).unwrap(), 2, "then both: the silence is real");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
