//! `GET /metrics`: the server's Prometheus metrics, on the admin listener for tokens holding
//! `metrics.read`, and optionally on a plain loopback listener (`integrations.metrics.listen`).
//!
//! The RPC paths only bump atomics (`ServerMetrics`); everything else — fleet states, the audit
//! head, sink cursors, the vault gate, `/proc/self` — is read when a scrape asks, on the scrape's
//! own database connection, so a scrape never holds a lock the check-in path takes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;

use super::admin::ApiError;
use super::state::Server;
use crate::integrations::metrics::{Counter, Exposition, Histogram, CONTENT_TYPE};
use crate::util::time::unix_now;

/// The agent RPCs, as labelled in `vigo_rpc_duration_seconds`.
#[derive(Clone, Copy)]
pub enum Rpc {
    Enroll,
    CheckIn,
    ResolveSecrets,
    ReportRun,
    RenewCertificate,
    FetchRelease,
}

const RPCS: [&str; 6] =
    ["Enroll", "CheckIn", "ResolveSecrets", "ReportRun", "RenewCertificate", "FetchRelease"];
/// How a request ended: answered, refused (the caller's fault: auth, replay, entitlement,
/// limits, bad input), or failed (the server's).
const RESULTS: [&str; 3] = ["ok", "refused", "error"];
const OUTCOMES: [&str; 3] = ["converged", "changed", "failed"];

/// What the hot paths count.
#[derive(Default)]
pub struct ServerMetrics {
    rpc: [Histogram; 6],
    checkins: [Counter; 3],
    enrollments: [Counter; 3],
    pub entitlement_denials: Counter,
    pub keys_resolved: Counter,
    /// Calls that came carried on a push channel rather than over gRPC.
    pub push_calls: Counter,
    runs: [Counter; 3],
    pub login_failures: Counter,
    pub lockouts: Counter,
    /// Whether the vault is the local one (its unlock gate is then reported).
    pub local_vault: AtomicBool,
    /// The scrape's own read connection, opened on first use.
    conn: Mutex<Option<Connection>>,
}

fn result_of(code: tonic::Code) -> usize {
    use tonic::Code::*;
    match code {
        Ok => 0,
        PermissionDenied | Unauthenticated | InvalidArgument | FailedPrecondition | ResourceExhausted
        | AlreadyExists | NotFound | OutOfRange => 1,
        _ => 2,
    }
}

impl ServerMetrics {
    /// Records one RPC's time and, for check-ins and enrollments, how it ended.
    pub fn rpc<T>(&self, rpc: Rpc, started: Instant, result: &Result<T, tonic::Status>) {
        self.rpc[rpc as usize].observe(started.elapsed());
        let code = result.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok);
        match rpc {
            Rpc::CheckIn => self.checkins[result_of(code)].inc(),
            Rpc::Enroll => self.enrollments[result_of(code)].inc(),
            _ => {}
        }
    }

    pub fn run_reported(&self, status: &str) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == status) {
            self.runs[i].inc();
        }
    }
}

/// What a scrape reads from the database.
struct Stored {
    states: Vec<(String, u64)>,
    head: i64,
}

fn read_stored(s: &Server) -> Result<Stored, String> {
    let mut slot = s.metrics.conn.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        *slot = Some(crate::store::open(&s.paths.db).map_err(|e| e.to_string())?);
    }
    let conn = slot.as_ref().ok_or("no connection")?;
    // Stale as the console counts it: no check-in for three intervals.
    let stale_before = crate::store::fleet::stale_before(unix_now(), s.checkin_interval_secs);
    let states = crate::store::fleet::counts(conn, stale_before).map_err(|e| e.to_string())?;
    let head = crate::store::audit_log::head(conn).map_err(|e| e.to_string())?.map_or(0, |(seq, _)| seq);
    Ok(Stored { states, head })
}

/// The whole exposition.
pub fn render(s: &Server) -> Result<String, String> {
    let stored = read_stored(s)?;
    let m = &s.metrics;
    let mut e = Exposition::default();
    e.family("vigo_build_info", "gauge", "The running version (always 1).");
    e.sample("vigo_build_info", &[("version", crate::release::version())], 1.0);
    e.family(
        "vigo_checkins_total",
        "counter",
        "Agent check-ins by result: ok, refused (auth, replay, revoked, bad input) or error.",
    );
    for (i, r) in RESULTS.iter().enumerate() {
        e.sample("vigo_checkins_total", &[("result", r)], m.checkins[i].get() as f64);
    }
    e.family("vigo_enrollments_total", "counter", "Enrollment requests by result: ok, refused or error.");
    for (i, r) in RESULTS.iter().enumerate() {
        e.sample("vigo_enrollments_total", &[("result", r)], m.enrollments[i].get() as f64);
    }
    e.family("vigo_rpc_duration_seconds", "histogram", "Time to answer each agent RPC, in seconds.");
    for (i, name) in RPCS.iter().enumerate() {
        e.histogram("vigo_rpc_duration_seconds", &[("method", name)], &m.rpc[i]);
    }
    e.single(
        "vigo_secret_entitlement_denials_total",
        "counter",
        "ResolveSecrets requests refused for asking keys outside the envoy's bundle.",
        m.entitlement_denials.get() as f64,
    );
    e.single(
        "vigo_secret_keys_resolved_total",
        "counter",
        "Secret keys answered to envoys (names counted, values never seen here).",
        m.keys_resolved.get() as f64,
    );
    e.family("vigo_runs_total", "counter", "Run reports received, by outcome.");
    for (i, o) in OUTCOMES.iter().enumerate() {
        e.sample("vigo_runs_total", &[("outcome", o)], m.runs[i].get() as f64);
    }
    e.family("vigo_envoys", "gauge", "Envoys by state, as the console shows them.");
    for state in crate::store::fleet::STATES {
        let n = stored.states.iter().find(|(st, _)| st == state).map_or(0, |(_, n)| *n);
        e.sample("vigo_envoys", &[("state", state)], n as f64);
    }
    let stale = stored.states.iter().find(|(st, _)| st == "stale").map_or(0, |(_, n)| *n);
    e.single(
        "vigo_envoys_stale",
        "gauge",
        "Active envoys that have not checked in for three intervals.",
        stale as f64,
    );
    e.single(
        "vigo_watch_streams",
        "gauge",
        "Envoys holding a push channel (told to check in at once when something changes).",
        s.nudges.watching() as f64,
    );
    e.single(
        "vigo_push_calls_total",
        "counter",
        "Agent calls carried on push channels (the rest came over gRPC, each run on a connection of its own).",
        m.push_calls.get() as f64,
    );
    e.single(
        "vigo_audit_head_sequence",
        "gauge",
        "Sequence number of the last audit row.",
        stored.head as f64,
    );
    sinks(s, &mut e, stored.head);
    let p = s.current();
    e.single("vigo_config_epoch", "gauge", "The config epoch in force.", p.config_epoch as f64);
    e.single("vigo_secrets_epoch", "gauge", "The secrets epoch in force.", s.secrets_epoch() as f64);
    if m.local_vault.load(Ordering::Relaxed) {
        let locked = crate::secrets::gate::check_gate(&s.paths.sentinel).is_err();
        e.single(
            "vigo_vault_locked",
            "gauge",
            "1 when the local vault's unlock gate (vigocli secrets unlock) is closed.",
            f64::from(u8::from(locked)),
        );
    }
    e.single(
        "vigo_login_failures_total",
        "counter",
        "Failed console logins (every provider and reason).",
        m.login_failures.get() as f64,
    );
    e.single(
        "vigo_login_lockouts_total",
        "counter",
        "Usernames or sources locked after too many failed logins.",
        m.lockouts.get() as f64,
    );
    crate::integrations::process::write(&mut e);
    Ok(e.finish())
}

fn sinks(s: &Server, e: &mut Exposition, head: i64) {
    let Some(board) = s.sink_board() else { return };
    if board.is_empty() {
        return;
    }
    let reports = board.reports(unix_now());
    let each = |e: &mut Exposition,
                name: &str,
                kind: &str,
                help: &str,
                value: &dyn Fn(&crate::integrations::SinkReport) -> f64| {
        e.family(name, kind, help);
        for r in &reports {
            e.sample(name, &[("sink", &r.name), ("kind", r.kind)], value(r));
        }
    };
    each(e, "vigo_audit_sink_backlog_rows", "gauge", "Audit rows not yet delivered to the sink.", &|r| {
        (head - r.last_seq).max(0) as f64
    });
    each(
        e,
        "vigo_audit_sink_last_success_timestamp_seconds",
        "gauge",
        "When the sink last took rows (0: never).",
        &|r| r.last_success.unwrap_or(0) as f64,
    );
    each(
        e,
        "vigo_audit_sink_delivered_rows_total",
        "counter",
        "Rows the sink has taken since the server started.",
        &|r| r.delivered as f64,
    );
    each(
        e,
        "vigo_audit_sink_failures_total",
        "counter",
        "Failed delivery attempts since the server started.",
        &|r| r.failures as f64,
    );
    each(
        e,
        "vigo_audit_sink_failing",
        "gauge",
        "1 when the sink has been failing for longer than integrations.warn_after.",
        &|r| f64::from(u8::from(r.warning)),
    );
}

/// The handler, on both listeners.
pub async fn scrape(State(s): State<Arc<Server>>) -> Result<Response, ApiError> {
    let text = tokio::task::spawn_blocking(move || render(&s))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// The plain loopback listener: `/metrics` only, no token (checked loopback at load).
pub async fn serve_plain(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "only /metrics is served here\n") })
        .with_state(server);
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::warn!(error = %e, "the metrics listener stopped");
    }
}
