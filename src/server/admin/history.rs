//! Config history (every published tree, `store::config_history`), the publish freeze, and
//! the trace of how an envoy's bundle comes to be.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use rusqlite::TransactionBehavior;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{quoted, ApiError, ApiResult, Body, PathParam, Query};
use super::Caller;
use crate::audit::{self, Event};
use crate::server::state::Server;
use crate::store::config_history::{self, Freeze};
use crate::util::time::unix_now;

type S = State<Arc<Server>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    limit: Option<u32>,
}

/// The newest revisions (50 unless `?limit=`), and the freeze in force.
pub async fn history(State(s): S, Query(q): Query<HistoryQuery>) -> ApiResult {
    let conn = s.db();
    let revisions = config_history::list(&conn, q.limit.unwrap_or(50).min(10_000))?;
    let freeze = config_history::freeze(&conn, unix_now())?;
    Ok(Json(json!({
        "revisions": revisions,
        "serving": s.current().content_hash,
        "freeze": freeze,
    })))
}

/// One revision with its files (names and texts: `secret:` refs, never values).
pub async fn revision(State(s): S, PathParam(rev): PathParam) -> ApiResult {
    let n: i64 = rev
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{} is not a revision number", quoted(&rev))))?;
    let conn = s.db();
    let r = config_history::get(&conn, n)?
        .ok_or_else(|| ApiError::not_found(format!("there is no config revision {n}")))?;
    let files: serde_json::Map<String, Value> =
        config_history::files(&conn, n)?.into_iter().map(|(p, t)| (p, json!(t))).collect();
    Ok(Json(json!({ "revision": r, "files": files })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    /// Unix seconds.
    until: i64,
    reason: String,
}

/// The longest freeze: a year. Longer is a typo, or a way to forget it.
const MAX_FREEZE_SECS: i64 = 366 * 86_400;

pub async fn freeze(
    State(s): S,
    Extension(caller): Extension<Caller>,
    Body(req): Body<FreezeRequest>,
) -> ApiResult {
    let now = unix_now();
    if req.until <= now || req.until - now > MAX_FREEZE_SECS {
        return Err(ApiError::bad_request("a freeze must end in the future, within a year"));
    }
    let reason = req.reason.trim();
    if reason.is_empty()
        || reason.chars().count() > 500
        || crate::util::text::check_visible("reason", reason).is_err()
    {
        return Err(ApiError::bad_request(
            "a freeze needs a reason: one line of visible text, at most 500 characters",
        ));
    }
    let f = Freeze { until: req.until, reason: reason.to_string(), by: caller.actor.clone(), at: now };
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let detail = json!({ "until": f.until, "reason": audit::clip(&f.reason) });
    audit::append_in(&tx, &[Event::new(&caller.actor, "config.frozen", "config").detail(detail)])?;
    config_history::set_freeze(&tx, &f)?;
    tx.commit()?;
    Ok(Json(json!({ "freeze": f })))
}

pub async fn unfreeze(State(s): S, Extension(caller): Extension<Caller>) -> ApiResult {
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    audit::append_in(&tx, &[Event::new(&caller.actor, "config.unfrozen", "config")])?;
    let was = config_history::clear_freeze(&tx, unix_now())?;
    tx.commit()?;
    Ok(Json(json!({ "was_frozen": was })))
}

/// How the served config makes this envoy's bundle (`config::trace`).
pub async fn trace(State(s): S, PathParam(envoy): PathParam) -> ApiResult {
    crate::wire::validate_envoy_name(&envoy).map_err(ApiError::bad_request)?;
    let published = s.current();
    let tree = published.tree.as_ref().ok_or_else(|| ApiError::not_found("no config is being served"))?;
    let traits: Option<serde_json::Value> = {
        // One lock: a second `s.db()` inside the match would wait on the first for ever.
        let conn = s.db();
        match crate::store::envoys::find(&conn, &envoy)? {
            Some(row) => {
                crate::store::traits::get_json(&conn, &row.id)?.map(|(t, _)| t).filter(|t| !t.is_null())
            }
            None => None,
        }
    };
    let trace = tree.trace(&envoy, traits.as_ref());
    let mut v = serde_json::to_value(trace).map_err(ApiError::internal)?;
    v["content_hash"] = json!(published.content_hash);
    Ok(Json(v))
}
