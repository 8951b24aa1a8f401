//! Health, config publish and secret rotation notices.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use rusqlite::TransactionBehavior;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{ApiError, ApiResult, Body};
use super::Caller;
use crate::audit::{self, Event};
use crate::server::state::Server;
use crate::server::status::PublishOutcome;
use crate::util::time::unix_now;

type S = State<Arc<Server>>;

/// A publish that has not loaded and validated its tree by then is answered with an error (the
/// loader bounds its own work; this bounds what the caller waits for).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(120);

/// `status` is "ok", or "degraded" with the reasons in `problems`.
pub async fn health(State(s): S) -> ApiResult {
    let p = s.current();
    let mut problems: Vec<String> = s.provider.problem().into_iter().collect();
    if let Some(reason) = &p.fallback {
        problems.push(format!(
            "serving the last good config: the config directory does not load ({reason}); fix it and publish"
        ));
    }
    let sinks = audit_sinks(&s, &mut problems);
    Ok(Json(json!({
        "status": if problems.is_empty() { "ok" } else { "degraded" },
        "problems": problems,
        "config_epoch": p.config_epoch,
        "config_hash": p.content_hash,
        "config_from_last_good": p.fallback.is_some(),
        "secrets_epoch": s.secrets_epoch(),
        "version": crate::release::version(),
        "audit_sinks": sinks,
    })))
}

/// Each audit sink's delivery state with its backlog; a sink failing past the threshold adds
/// a problem.
fn audit_sinks(s: &Server, problems: &mut Vec<String>) -> Vec<Value> {
    let Some(board) = s.sink_board().filter(|b| !b.is_empty()) else { return Vec::new() };
    let head = crate::store::audit_log::head(&s.db()).ok().flatten().map_or(0, |(seq, _)| seq);
    let now = unix_now();
    problems.extend(board.problems(now, head));
    board
        .reports(now)
        .into_iter()
        .map(|r| {
            let backlog = (head - r.last_seq).max(0);
            let mut v = json!(r);
            v["backlog"] = json!(backlog);
            v
        })
        .collect()
}

/// What a publish may say besides "publish": why, whether to go through a freeze, and the
/// revision whose tree the config directory holds again (`vigocli config rollback`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PublishOptions {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub force: bool,
    pub rollback_of: Option<i64>,
}

/// The longest publish message kept.
const MAX_MESSAGE: usize = 1000;

pub async fn publish(
    State(s): S,
    Extension(caller): Extension<Caller>,
    Body(options): Body<PublishOptions>,
) -> ApiResult {
    publish_config(&s, &caller, &options).await.map(Json)
}

/// Loads and validates the config directory off the async workers (a slow or hostile tree
/// must not stall check-ins), then swaps it in once its audit row has committed. A refused
/// tree is audited too, and the previous config keeps serving. The API and the console both
/// publish through this; the outcome is kept for the console's config page.
pub async fn publish_config(
    s: &Arc<Server>,
    caller: &Caller,
    options: &PublishOptions,
) -> Result<Value, ApiError> {
    let Ok(_one_at_a_time) = s.publishing.try_lock() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "another publish is in progress; try again when it ends",
        ));
    };
    if options.message.chars().count() > MAX_MESSAGE
        || crate::util::text::check_visible_lines("message", &options.message).is_err()
    {
        return Err(ApiError::bad_request(format!(
            "a publish message is at most {MAX_MESSAGE} characters of visible text"
        )));
    }
    if let Some(f) = crate::store::config_history::freeze(&s.db(), unix_now())? {
        if !options.force {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "publishes are frozen until {} by {} ({}); `vigocli config unfreeze` ends it, or publish with --force",
                    crate::util::time::rfc3339_millis(f.until * 1000),
                    f.by,
                    super::errors::quoted(&f.reason)
                ),
            ));
        }
    }
    let loader = s.clone();
    let load = tokio::task::spawn_blocking(move || {
        let tree = crate::config::load_tree(&loader.config_dir)?;
        let patterns = tree.validate_all(loader.provider.as_ref())?;
        Ok::<_, Vec<crate::config::ConfigError>>((tree, patterns))
    });
    let loaded = match tokio::time::timeout(PUBLISH_TIMEOUT, load).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => return Err(ApiError::internal(e)),
        Err(_) => {
            return Err(reject(s, caller, vec![format!("loading took over {}s", PUBLISH_TIMEOUT.as_secs())]))
        }
    };
    let (tree, patterns) = match loaded {
        Ok(x) => x,
        Err(errs) => return Err(reject(s, caller, errs.iter().map(|e| e.to_string()).collect())),
    };
    let hash = tree.content_hash();
    if let Some(rev) = options.rollback_of {
        let want = crate::store::config_history::get(&s.db(), rev)?
            .ok_or_else(|| ApiError::not_found(format!("there is no config revision {rev}")))?;
        if want.content_hash != hash {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("the config directory does not hold revision {rev}'s tree; nothing was published"),
            ));
        }
    }
    let frozen = crate::store::config_history::freeze(&s.db(), unix_now())?.is_some();
    let (config_epoch, secrets_epoch, rev) = {
        let mut conn = s.db();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let files: Vec<(String, String)> =
            tree.sources().map(|(p, t)| (p.to_string(), t.to_string())).collect();
        let revision = crate::store::config_history::NewRevision {
            content_hash: &hash,
            published_at: unix_now(),
            published_by: &caller.actor,
            message: &options.message,
            rollback_of: options.rollback_of,
            forced: frozen,
        };
        let rev = crate::store::config_history::record(&tx, &revision, &files)?;
        let detail = json!({
            "content_hash": hash, "dir": s.config_dir.display().to_string(), "revision": rev,
            "message": audit::clip(&options.message), "rollback_of": options.rollback_of, "forced_through_freeze": frozen,
        });
        let action = if options.rollback_of.is_some() { "config.rolled_back" } else { "config.published" };
        audit::append_in(&tx, &[Event::new(&caller.actor, action, &hash).detail(detail)])?;
        let config_epoch = s.next_config_epoch(&tx)?;
        let secrets_epoch = s.next_secrets_epoch(&tx)?;
        // The new config serves only once its audit row is committed; a failed commit keeps the old.
        tx.commit()?;
        (config_epoch, secrets_epoch, rev)
    };
    if let Err(e) = crate::server::last_good::save(&s.paths.base, &tree) {
        tracing::warn!(error = %e, "could not record the published config as the last good one");
    }
    s.install(tree, config_epoch);
    s.secrets_epoch_committed(secrets_epoch);
    crate::server::rotation::apply_pending(s);
    tracing::info!(config_epoch, content_hash = %hash, "config published");
    let patterns: Vec<Value> =
        patterns.into_iter().map(|(p, n)| json!({ "pattern": p, "resources": n })).collect();
    s.status.set_publish(PublishOutcome { at: unix_now(), actor: caller.actor.clone(), errors: vec![] });
    s.nudges.nudge_all(crate::server::nudges::Reason::Publish);
    Ok(json!({
        "config_epoch": config_epoch, "secrets_epoch": secrets_epoch, "content_hash": hash,
        "revision": rev, "envoys": patterns,
    }))
}

/// Audits a refused publish (how many errors, the first one clipped) and answers 422.
fn reject(s: &Server, caller: &Caller, errors: Vec<String>) -> ApiError {
    s.status.set_publish(PublishOutcome {
        at: unix_now(),
        actor: caller.actor.clone(),
        errors: errors.clone(),
    });
    let first = errors.first().cloned().unwrap_or_default();
    let detail = json!({ "errors": errors.len(), "first_error": audit::clip(&first) });
    if let Err(e) = s.audit(&[Event::new(&caller.actor, "config.publish_rejected", "config").detail(detail)])
    {
        return ApiError::internal(e);
    }
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("config rejected; the previous config keeps serving:\n{}", errors.join("\n")),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotated {
    key: String,
}

pub async fn secret_rotated(
    State(s): S,
    Extension(caller): Extension<Caller>,
    Body(req): Body<Rotated>,
) -> ApiResult {
    crate::placeholder::validate_key(&req.key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // A network backend reads the value again first: the notice says it changed there.
    let (provider, key) = (s.provider.clone(), req.key.clone());
    tokio::task::spawn_blocking(move || provider.refresh(&[key].into()))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    if !s.provider.contains(&req.key).map_err(ApiError::internal)? {
        return Err(ApiError::not_found(format!(
            "the secrets backend holds no secret {}; store it first (`vigocli secrets set`, or in isopass)",
            super::errors::quoted(&req.key)
        )));
    }
    // A web password's rotation also ends that user's sessions (in `rotation`, for every path).
    let done = crate::server::rotation::rotate(&s, &caller.actor, &req.key).map_err(ApiError::internal)?;
    Ok(Json(json!({
        "key": req.key, "affected_envoys": done.envoys, "secrets_epoch": s.secrets_epoch(), "sessions_ended": done.sessions_ended,
    })))
}
