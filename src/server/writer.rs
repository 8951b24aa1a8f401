//! Group commit for the agent hot path. Every signed request writes SQLite (the replay guard,
//! audit rows, run reports); one transaction each made the commit, not the work, the cost, and
//! held a tokio worker while waiting for the database lock. Here one thread with its own
//! connection runs whatever requests are queued in one IMMEDIATE transaction, each in its own
//! savepoint, and answers every caller only after that transaction has committed: nothing is
//! acknowledged before it is stored, so no audit row or run report can be lost.

use std::sync::mpsc;

use rusqlite::{Connection, TransactionBehavior};

/// Writes queued together beyond this wait for the next transaction.
const MAX_BATCH: usize = 512;

trait Job: Send {
    fn run(&mut self, conn: &Connection);
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Write<F, R> {
    work: Option<F>,
    result: Option<rusqlite::Result<R>>,
    done: tokio::sync::oneshot::Sender<Result<R, String>>,
}

impl<F, R> Job for Write<F, R>
where
    F: FnOnce(&Connection) -> rusqlite::Result<R> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) {
        if let Some(work) = self.work.take() {
            self.result = Some(in_savepoint(conn, work));
        }
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let outcome = match (committed, self.result) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(r)) => r.map_err(|e| e.to_string()),
            (Ok(()), None) => Err("the write was not run".to_string()),
        };
        let _ = self.done.send(outcome);
    }
}

/// A failed write rolls back only its own changes; the rest of the batch commits. The savepoint
/// statements are prepared once rather than parsed for every request.
fn in_savepoint<R>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> rusqlite::Result<R>,
) -> rusqlite::Result<R> {
    let run = |sql: &str| conn.prepare_cached(sql)?.execute([]).map(drop);
    run("SAVEPOINT job")?;
    let r = work(conn);
    if r.is_err() {
        run("ROLLBACK TO job")?;
    }
    run("RELEASE job")?;
    r
}

/// What a write is told once the writer stopped (the server is shutting down).
const STOPPED: &str = "the database writer has stopped";

/// The status a failed write gives a caller: "unavailable" while the server shuts down (the
/// agent keeps its report and tries again), "internal" for anything else.
pub fn status(error: String) -> tonic::Status {
    match error == STOPPED {
        true => tonic::Status::unavailable("the server is shutting down; try again"),
        false => tonic::Status::internal(error),
    }
}

pub struct WriteQueue {
    jobs: std::sync::Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl WriteQueue {
    /// Starts the writer thread on `conn`; it ends when the queue is dropped.
    pub fn start(mut conn: Connection) -> std::io::Result<WriteQueue> {
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new().name("vigo-db-writer".into()).spawn(move || {
            while let Ok(first) = queue.recv() {
                let mut batch = vec![first];
                batch.extend(queue.try_iter().take(MAX_BATCH - 1));
                let committed = (|| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    batch.iter_mut().for_each(|job| job.run(&tx));
                    tx.commit()
                })()
                .map_err(|e| format!("database: {e}"));
                for job in batch {
                    job.finish(committed.clone());
                }
            }
        })?;
        Ok(WriteQueue {
            jobs: std::sync::Mutex::new(Some(jobs)),
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Finishes queued writes, then closes the writer's connection (so SQLite can remove the
    /// WAL at shutdown). Later writes fail with "stopped".
    pub fn stop(&self) {
        drop(self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }

    /// Runs `work` in the next batch; returns once its transaction has committed.
    pub async fn write<R, F>(&self, work: F) -> Result<R, String>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job: Box<dyn Job> = Box::new(Write { work: Some(work), result: None, done });
        let sent = match self.jobs.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(STOPPED.to_string());
        }
        answer.await.map_err(|_| STOPPED.to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failed_write_rolls_back_alone_and_others_commit() {
        let dir = std::env::temp_dir().join(format!("vigo-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = dir.join("w.db");
        let q = WriteQueue::start(crate::store::open(&db).unwrap()).unwrap();
        let ok = |v: &'static str| {
            move |c: &Connection| c.execute("INSERT INTO server_state (key, value) VALUES (?1, 'x')", [v])
        };
        let bad = |c: &Connection| {
            c.execute("INSERT INTO server_state (key, value) VALUES ('half', 'x')", [])?;
            c.execute("INSERT INTO no_such_table VALUES (1)", [])
        };
        let (a, b, c) = tokio::join!(q.write(ok("a")), q.write(bad), q.write(ok("c")));
        assert_eq!((a, c), (Ok(1), Ok(1)));
        assert!(b.is_err());
        let conn = crate::store::open(&db).unwrap();
        let keys: Vec<String> = conn
            .prepare("SELECT key FROM server_state ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, ["a", "c"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A write after the writer stopped (the server is shutting down) is "unavailable", which
    /// an agent treats as no answer and keeps its report for later, not a server error.
    #[tokio::test]
    async fn a_write_after_the_writer_stopped_is_unavailable() {
        let dir = std::env::temp_dir().join(format!("vigo-writer-stop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let q = WriteQueue::start(crate::store::open(&dir.join("w.db")).unwrap()).unwrap();
        q.stop();
        let e = q.write(|_| Ok(())).await.unwrap_err();
        assert_eq!(status(e).code(), tonic::Code::Unavailable);
        assert_eq!(status("disk I/O error".into()).code(), tonic::Code::Internal);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
