//! Ad-hoc tasks: `POST /v1/tasks` (plan or create), `GET /v1/tasks`, `GET /v1/tasks/{id}`.
//! The targets are fixed when the task is created and split into batches; each envoy gets its
//! run at check-in once the batches before it have finished (store/tasks.rs).

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use rusqlite::TransactionBehavior;
use serde::Deserialize;
use serde_json::json;

use super::errors::{ApiError, ApiResult, Body, PathParam};
use super::Caller;
use crate::audit::{self, Event};
use crate::config::glob::Glob;
use crate::server::nudges::Reason;
use crate::server::state::Server;
use crate::store;
use crate::util::text::excerpt;
use crate::util::time::unix_now;

type S = State<Arc<Server>>;

/// The longest command a task may carry.
const MAX_COMMAND_BYTES: usize = 4096;
/// The longest a task may run on one envoy.
const MAX_TIMEOUT_SECS: u32 = 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub command: String,
    /// An envoy name or glob (`web*`), or trait conditions `PATH=GLOB[,PATH=GLOB…]`.
    pub target: String,
    /// `N` envoys or `N%` of the targets per batch (default: all at once).
    #[serde(default)]
    pub batch_size: Option<String>,
    /// Stop handing out batches once more than `N` (or `N%`) envoys failed (default 0).
    #[serde(default)]
    pub max_failures: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u32,
    /// Plan only: the batches, nothing stored or sent.
    #[serde(default)]
    pub dry_run: bool,
    /// Run a command the dangerous-command scanner refuses (audited as forced).
    #[serde(default)]
    pub force: bool,
}

fn default_timeout() -> u32 {
    60
}

/// `N` or `N%` of `of`, at least `floor`.
fn count_of(text: &str, of: usize, floor: usize, what: &str) -> Result<usize, ApiError> {
    let bad =
        || ApiError::bad_request(format!("{what} {}: a number, or a percentage like 10%", excerpt(text)));
    let n = match text.strip_suffix('%') {
        Some(p) => {
            let pct: usize = p.trim().parse().map_err(|_| bad())?;
            if pct > 100 {
                return Err(bad());
            }
            (of * pct).div_ceil(100)
        }
        None => text.trim().parse().map_err(|_| bad())?,
    };
    Ok(n.max(floor))
}

/// Refuses what a task may not carry: nothing to run, too long, hidden characters, a secret.
fn check_command(command: &str) -> Result<(), ApiError> {
    if command.trim().is_empty() || command.len() > MAX_COMMAND_BYTES {
        return Err(ApiError::bad_request(format!("a task's command is 1 to {MAX_COMMAND_BYTES} bytes")));
    }
    crate::util::text::check_visible_lines("task command", command).map_err(ApiError::bad_request)?;
    if command.contains("secret:") || crate::placeholder::contains_marker(command) {
        return Err(ApiError::bad_request(
            "a task's command line may not name a secret: it would show in `ps` and in the audit log; \
             put the command in a config exec resource with stdin: or secret_file: instead",
        ));
    }
    Ok(())
}

/// The active envoys `target` selects, by name: `(id, name)`.
fn targets(s: &Server, target: &str) -> Result<Vec<(String, String)>, ApiError> {
    let conn = s.db();
    let active = store::envoys::list(&conn)?.into_iter().filter(|e| e.revoked_at.is_none());
    if target.contains('=') {
        let wheres = target
            .split(',')
            .map(|w| store::traits::parse_where(w.trim()).map_err(ApiError::bad_request))
            .collect::<Result<Vec<_>, _>>()?;
        let before = store::fleet::stale_before(unix_now(), s.checkin_interval_secs);
        let matching = store::fleet::states(&conn, before, &wheres)?;
        return Ok(active.filter(|e| matching.contains_key(&e.id)).map(|e| (e.id, e.name)).collect());
    }
    let glob = Glob::new(target).map_err(|e| ApiError::bad_request(format!("target: {e}")))?;
    Ok(active.filter(|e| glob.matches(&e.name)).map(|e| (e.id, e.name)).collect())
}

pub async fn create(
    State(s): S,
    Extension(caller): Extension<Caller>,
    Body(req): Body<CreateTask>,
) -> ApiResult {
    check_command(&req.command)?;
    if req.timeout_secs == 0 || req.timeout_secs > MAX_TIMEOUT_SECS {
        return Err(ApiError::bad_request(format!("timeout must be 1 to {MAX_TIMEOUT_SECS} seconds")));
    }
    // The same scanner the agents run; they still apply their own guardrails.
    let scanner = crate::agent::engine::Guardrails::defaults(Path::new("/var/lib/vigo"));
    let danger = scanner.check_command(&req.command, None).err();
    if let (Some(blocked), false) = (&danger, req.force) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{}; pass --force to run it anyway (audited as forced)", blocked.message),
        ));
    }
    let targets = targets(&s, &req.target)?;
    if targets.is_empty() {
        return Err(ApiError::bad_request(format!(
            "target {} selects no active envoy",
            excerpt(&req.target)
        )));
    }
    let batch_size = count_of(req.batch_size.as_deref().unwrap_or("100%"), targets.len(), 1, "batch size")?;
    let max_failures =
        count_of(req.max_failures.as_deref().unwrap_or("0"), targets.len(), 0, "max failures")?;
    let batches: Vec<Vec<&str>> =
        targets.chunks(batch_size).map(|c| c.iter().map(|(_, n)| n.as_str()).collect()).collect();
    let plan = json!({
        "command": req.command, "targets": targets.len(), "batch_size": batch_size,
        "max_failures": max_failures, "timeout_secs": req.timeout_secs, "batches": batches,
        "forced": danger.is_some(),
    });
    if req.dry_run {
        return Ok(Json(plan));
    }
    let id = crate::crypto::uuid_v4().map_err(ApiError::internal)?;
    let task = store::tasks::NewTask {
        id: &id,
        command: &req.command,
        target: &req.target,
        batch_size: u32::try_from(batch_size).unwrap_or(u32::MAX),
        max_failures: u32::try_from(max_failures).unwrap_or(u32::MAX),
        timeout_secs: req.timeout_secs,
        forced: danger.is_some(),
        created_by: &caller.actor,
        created_at: unix_now(),
    };
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    store::tasks::create(&tx, &task, &targets)?;
    let mut detail = json!({
        "command": excerpt(&req.command), "target": excerpt(&req.target), "envoys": targets.len(),
        "batch_size": batch_size, "max_failures": max_failures,
    });
    if let Some(blocked) = &danger {
        detail["forced_past"] = json!(blocked.rule);
    }
    let action = if danger.is_some() { "task.created_forced" } else { "task.created" };
    audit::append_in(&tx, &[Event::new(&caller.actor, action, &id).detail(detail)])?;
    tx.commit()?;
    drop(conn);
    // The first batch hears of it now if it holds a push channel, else at its next check-in.
    let first_batch = targets.iter().take(batch_size).map(|(envoy_id, _)| envoy_id.as_str());
    let nudged = s.nudges.nudge(first_batch, Reason::Task);
    let mut answer = plan;
    answer["id"] = json!(id);
    answer["nudged"] = json!(nudged);
    Ok(Json(answer))
}

/// Runs whose envoy never answered count as failed before anything is shown.
fn expire(s: &Server, conn: &rusqlite::Connection) -> Result<(), ApiError> {
    expire_overdue_parts(s, conn)?;
    Ok(())
}

/// Fails overdue task parts (`store::tasks::expire`) and nudges the batches that may start
/// now, so a task moves on although no envoy with a waiting part checks in. The server's
/// upkeep calls it every few seconds, and so does every look at tasks; it costs one indexed
/// lookup when no task is open.
pub fn expire_overdue_parts(s: &Server, conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let open = store::tasks::open_task_ids(conn)?;
    if open.is_empty() {
        return Ok(());
    }
    if store::tasks::expire(conn, unix_now(), store::tasks::grace_secs(s.checkin_interval_secs))? > 0 {
        crate::server::grpc::nudge_next_batches(s, conn, open.iter().map(String::as_str));
    }
    Ok(())
}

pub async fn list(State(s): S) -> ApiResult {
    let conn = s.db();
    expire(&s, &conn)?;
    Ok(Json(json!({ "tasks": store::tasks::list(&conn, 100)? })))
}

pub async fn show(State(s): S, PathParam(id): PathParam) -> ApiResult {
    let conn = s.db();
    expire(&s, &conn)?;
    let (task, runs) =
        store::tasks::get(&conn, &id)?.ok_or_else(|| ApiError::not_found("there is no task with that id"))?;
    Ok(Json(json!({ "task": task, "runs": runs })))
}
