//! One delivery task per sink. The audit table is the queue: each task reads the rows after its
//! cursor on its own connection, hands them to its transport, and moves its cursor (in SQLite,
//! through the caller's writer) once they count as delivered. Nothing here is on the path of a
//! privileged operation: an append never waits for a sink, and a sink that is down for hours
//! only leaves its cursor behind. Failures back off exponentially from 1 s to `retry_max`; after
//! a failure the task resends from its cursor, so delivery is at least once and in order.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::watch;

use super::jsonl::JsonlFile;
use super::status::{Board, SinkState};
use super::syslog::Syslog;
use super::webhook::Webhook;
use crate::audit::Row;
use crate::settings::IntegrationSettings;
use crate::util::time::unix_now;

/// Persists a sink's cursor: (sink name, last delivered seq, now). The server passes its
/// group-committing writer, so cursor writes batch with everything else.
pub type Advance =
    Arc<dyn Fn(String, i64, i64) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// How often an idle task looks for new rows (rows appended by the CLI come from another
/// process, so there is nothing to wake on but the table itself).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// While syslog rows wait to settle, look more often.
const SETTLE_POLL: Duration = Duration::from_millis(200);
/// A cursor is written at most this often while rows flow (and always when the task idles).
const PERSIST_EVERY: Duration = Duration::from_secs(1);
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Rows read at once for syslog and file sinks (webhooks read their batch size).
const READ_BATCH: u32 = 500;

enum Transport {
    Syslog(Box<Syslog>),
    Webhook(Box<Webhook>),
    File(JsonlFile),
}

impl Transport {
    fn batch(&self) -> u32 {
        match self {
            Transport::Webhook(w) => w.batch as u32,
            _ => READ_BATCH,
        }
    }

    /// Sends; returns (last row written, last row that now counts as delivered).
    async fn send(&mut self, rows: &[Row]) -> Result<(i64, Option<i64>), String> {
        let last = rows.last().map_or(0, |r| r.seq);
        match self {
            Transport::Syslog(s) => s.send(rows).await.map(|settled| (last, settled)),
            Transport::Webhook(w) => {
                let done = w.send(rows).await?;
                Ok((done.unwrap_or(0), done))
            }
            Transport::File(f) => {
                let (f, rows) = (f.clone(), rows.to_vec());
                let done =
                    tokio::task::spawn_blocking(move || f.send(&rows)).await.map_err(|e| e.to_string())??;
                Ok((last, done))
            }
        }
    }

    /// Nothing new to send: rows that have settled since, or the connection found dead.
    async fn idle(&mut self) -> Result<Option<i64>, String> {
        match self {
            Transport::Syslog(s) => s.poll().await,
            _ => Ok(None),
        }
    }

    /// At shutdown: what in flight still counts (syslog rows that settle in time).
    async fn drain(&mut self) -> Option<i64> {
        match self {
            Transport::Syslog(s) => s.drain().await,
            _ => None,
        }
    }

    fn settling(&self) -> bool {
        matches!(self, Transport::Syslog(s) if s.unsettled())
    }
}

/// A sink ready to run: its transport and the state it reports into.
pub struct Sink {
    transport: Transport,
    state: Arc<SinkState>,
}

/// Builds every configured sink (reading CA files now, so a bad one stops the start) and the
/// board they report to.
pub fn build(settings: &IntegrationSettings) -> Result<(Vec<Sink>, Arc<Board>), String> {
    let mut board = Board::new(settings.warn_after_secs()?);
    let mut sinks = Vec::new();
    for s in &settings.syslog {
        let transport = Syslog::new(s).map_err(|e| format!("integrations.syslog {}: {e}", s.name))?;
        if s.transport != "tls" {
            tracing::warn!(sink = %s.name, transport = %s.transport, "audit rows go to this syslog receiver unencrypted and unauthenticated; use transport tls beyond a trusted network");
        }
        let shown = format!("{}://{}", s.transport, s.address);
        sinks.push(Sink {
            transport: Transport::Syslog(Box::new(transport)),
            state: board.add(&s.name, "syslog", shown),
        });
    }
    for w in &settings.webhook {
        let transport = Webhook::new(w).map_err(|e| format!("integrations.webhook {}: {e}", w.name))?;
        let shown = url::Url::parse(&w.url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
        sinks.push(Sink {
            transport: Transport::Webhook(Box::new(transport)),
            state: board.add(&w.name, "webhook", shown),
        });
    }
    for f in &settings.file {
        // A missing directory would only show as a sink failing later: say it now.
        let dir = std::path::Path::new(&f.path).parent().unwrap_or(std::path::Path::new("/"));
        if !dir.is_dir() {
            return Err(format!(
                "integrations.file {}: the directory {} does not exist; create it (owner-only) first",
                f.name,
                dir.display()
            ));
        }
        sinks.push(Sink {
            transport: Transport::File(JsonlFile::new(&f.path)),
            state: board.add(&f.name, "file", f.path.clone()),
        });
    }
    Ok((sinks, Arc::new(board)))
}

/// Starts one task per sink; each ends when `stop` turns true, after writing its cursor.
pub fn start(
    sinks: Vec<Sink>,
    db: PathBuf,
    advance: Advance,
    retry_max: Duration,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    sinks
        .into_iter()
        .map(|sink| {
            let task =
                Task { db: db.clone(), conn: None, advance: advance.clone(), retry_max, stop: stop.clone() };
            tokio::spawn(task.run(sink))
        })
        .collect()
}

struct Task {
    db: PathBuf,
    /// This task's own reading connection, opened on first use.
    conn: Option<Arc<Mutex<Connection>>>,
    advance: Advance,
    retry_max: Duration,
    stop: watch::Receiver<bool>,
}

impl Task {
    async fn blocking<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        if self.conn.is_none() {
            let path = self.db.clone();
            let conn = tokio::task::spawn_blocking(move || crate::store::open(&path))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            self.conn = Some(Arc::new(Mutex::new(conn)));
        }
        let conn = self.conn.clone().ok_or("no connection")?;
        tokio::task::spawn_blocking(move || work(&conn.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading the audit log: {e}"))
    }

    /// Sleeps `d`, or less if asked to stop; true when stopping.
    async fn pause(&mut self, d: Duration) -> bool {
        if *self.stop.borrow() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = self.stop.changed() => true,
        }
    }

    /// Where to start: the stored cursor, or past the rows a file already holds.
    async fn resume_point(&mut self, sink: &Sink) -> Result<i64, String> {
        let name = sink.state.name.clone();
        let cursor = self.blocking(move |c| crate::store::sink_cursors::read(c, &name)).await?;
        sink.state.resume_at(cursor.last_seq, cursor.last_success);
        if let Transport::File(f) = &sink.transport {
            let f = f.clone();
            if let Some(last) =
                tokio::task::spawn_blocking(move || f.last_seq()).await.map_err(|e| e.to_string())??
            {
                if last > cursor.last_seq {
                    return Ok(last);
                }
            }
        }
        Ok(cursor.last_seq)
    }

    async fn run(mut self, mut sink: Sink) {
        let state = sink.state.clone();
        let mut retry = FIRST_RETRY;
        let mut confirmed = loop {
            match self.resume_point(&sink).await {
                Ok(seq) => break seq,
                Err(e) => {
                    state.failed(e, unix_now());
                    if self.pause(retry).await {
                        return;
                    }
                    retry = (retry * 2).min(self.retry_max);
                }
            }
        };
        let (mut sent, mut persisted, mut persisted_at) = (confirmed, state.last_seq(), Instant::now());
        loop {
            if *self.stop.borrow() {
                break;
            }
            let limit = sink.transport.batch();
            let outcome = match self.blocking(move |c| crate::store::audit_log::after(c, sent, limit)).await {
                Err(e) => Err(e),
                Ok(rows) if rows.is_empty() => sink.transport.idle().await.map(|c| (sent, c, true)),
                Ok(rows) => sink.transport.send(&rows).await.map(|(s, c)| (s, c, false)),
            };
            let idle = match outcome {
                Ok((written, counted, idle)) => {
                    sent = sent.max(written);
                    state.working();
                    retry = FIRST_RETRY;
                    if let Some(c) = counted.filter(|c| *c > confirmed) {
                        state.delivered(c, (c - confirmed) as u64, unix_now());
                        confirmed = c;
                    }
                    idle
                }
                Err(e) => {
                    tracing::warn!(sink = %state.name, error = %e, retry_in_secs = retry.as_secs(), "audit sink failed; its rows wait in the audit log");
                    state.failed(e, unix_now());
                    // Everything after the cursor goes again, in order.
                    sent = confirmed;
                    if self.pause(retry).await {
                        break;
                    }
                    retry = (retry * 2).min(self.retry_max);
                    continue;
                }
            };
            if confirmed > persisted && (idle || persisted_at.elapsed() >= PERSIST_EVERY) {
                if self.persist(&state.name, confirmed).await {
                    persisted = confirmed;
                }
                persisted_at = Instant::now();
            }
            if idle {
                let wait = if sink.transport.settling() { SETTLE_POLL } else { IDLE_POLL };
                if self.pause(wait).await {
                    break;
                }
            }
        }
        if let Some(c) = sink.transport.drain().await.filter(|c| *c > confirmed) {
            state.delivered(c, (c - confirmed) as u64, unix_now());
            confirmed = c;
        }
        if confirmed > persisted {
            self.persist(&state.name, confirmed).await;
        }
    }

    async fn persist(&self, name: &str, seq: i64) -> bool {
        match (self.advance)(name.to_string(), seq, unix_now()).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(sink = %name, error = %e, "could not record the audit sink's cursor; rows after it may be sent again");
                false
            }
        }
    }
}
