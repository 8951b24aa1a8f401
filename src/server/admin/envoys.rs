//! Envoys: list, show (with what its bundle entitles it to), revoke.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use rusqlite::TransactionBehavior;
use serde_json::{json, Value};

use axum::extract::RawQuery;

use super::errors::{quoted, ApiError, ApiResult, PathParam};
use super::Caller;
use crate::audit::{self, Event};
use crate::server::state::Server;
use crate::store::{self, envoys::EnvoyRow};
use crate::util::time::unix_now;

type S = State<Arc<Server>>;

fn envoy_json(e: &EnvoyRow) -> Value {
    json!({
        "id": e.id, "name": e.name, "enrolled_at": e.enrolled_at, "last_seen": e.last_seen,
        "revoked_at": e.revoked_at, "last_bundle_hash": e.last_bundle_hash, "triggered": e.triggered,
        "force_apply": e.force_apply, "cert_not_after": e.cert_not_after,
    })
}

/// The most `where` conditions one list takes.
const MAX_WHERES: usize = 16;

/// What `envoys list` keeps: one status, and trait conditions that must all hold.
#[derive(Default)]
struct ListQuery {
    status: Option<String>,
    wheres: Vec<(String, String)>,
}

/// `status=S` (one) and `where=PATH=GLOB` (several) from the query string.
fn list_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let (mut status, mut wheres) = (None, Vec::new());
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "status" => status = Some(v.into_owned()),
            "where" if wheres.len() < MAX_WHERES => {
                wheres.push(crate::store::traits::parse_where(&v).map_err(ApiError::bad_request)?)
            }
            "where" => return Err(ApiError::bad_request(format!("at most {MAX_WHERES} `where` conditions"))),
            other => return Err(ApiError::bad_request(format!("unknown query parameter {}", quoted(other)))),
        }
    }
    Ok(ListQuery { status, wheres })
}

fn stale_before(s: &Server) -> i64 {
    store::fleet::stale_before(unix_now(), s.checkin_interval_secs)
}

fn check_status(status: &str) -> Result<(), ApiError> {
    if store::fleet::STATES.contains(&status) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "status {} is not one of {}",
        quoted(status),
        store::fleet::STATES.join(", ")
    )))
}

/// Every envoy with its status; `?status=` keeps one status, each `?where=PATH=GLOB` keeps
/// the envoys whose traits match.
pub async fn list(State(s): S, RawQuery(raw): RawQuery) -> ApiResult {
    let ListQuery { status: want_status, wheres } = list_query(raw.as_deref())?;
    if let Some(status) = &want_status {
        check_status(status)?;
    }
    let conn = s.db();
    // With trait conditions, only the matching envoys are in `states`.
    let states = store::fleet::states(&conn, stale_before(&s), &wheres)?;
    let rows: Vec<Value> = store::envoys::list(&conn)?
        .iter()
        .filter_map(|e| {
            let status = match states.get(&e.id) {
                Some(status) => status.as_str(),
                None if !wheres.is_empty() => return None,
                None => "pending",
            };
            if want_status.as_deref().is_some_and(|want| want != status) {
                return None;
            }
            let mut v = envoy_json(e);
            v["status"] = json!(status);
            Some(v)
        })
        .collect();
    Ok(Json(json!({ "envoys": rows })))
}

/// Envoys needing attention shown by name at most.
const ATTENTION_SHOWN: usize = 100;

/// Counts by status (every status, zero included), the envoys that need attention, and the
/// rules the statuses were computed with.
pub async fn fleet_status(State(s): S) -> ApiResult {
    let before = stale_before(&s);
    // One pass over the fleet: the counts and the envoys needing attention come from it.
    let all = store::fleet::all(&s.db(), before)?;
    let mut counts = serde_json::Map::new();
    for state in store::fleet::STATES {
        counts.insert(state.to_string(), json!(all.iter().filter(|e| e.state == *state).count()));
    }
    let rank = |e: &store::fleet::EnvoyState| store::fleet::ATTENTION.iter().position(|a| *a == e.state);
    let mut needing: Vec<&store::fleet::EnvoyState> = all.iter().filter(|e| rank(e).is_some()).collect();
    needing.sort_by(|a, b| (rank(a), &a.name).cmp(&(rank(b), &b.name)));
    let total = needing.len();
    let attention: Vec<Value> = needing
        .iter()
        .take(ATTENTION_SHOWN)
        .map(|e| json!({ "name": e.name, "id": e.id, "status": e.state, "last_seen": e.last_seen }))
        .collect();
    Ok(Json(json!({
        "counts": counts,
        "envoys": all.len(),
        "attention": attention,
        "attention_total": total,
        "push_channels": s.nudges.watching(),
        "rules": {
            "stale_after_secs": unix_now() - before,
            "checkin_interval_secs": s.checkin_interval_secs,
            "drift_runs": store::fleet::DRIFT_RUNS,
        },
    })))
}

fn find(s: &Server, name_or_id: &str) -> Result<EnvoyRow, ApiError> {
    store::envoys::find(&s.db(), name_or_id)?
        .ok_or_else(|| ApiError::not_found(format!("no envoy named {}", quoted(name_or_id))))
}

pub async fn show(State(s): S, PathParam(name): PathParam) -> ApiResult {
    let envoy = find(&s, &name)?;
    let bundle = s.bundle_for(&envoy.id, &envoy.name).ok();
    let status = store::fleet::state_of(&s.db(), stale_before(&s), &envoy.id)?;
    let (traits, traits_at) = match store::traits::get_json(&s.db(), &envoy.id)? {
        Some((traits, at)) => (traits, Some(at)),
        None => (Value::Null, None),
    };
    Ok(Json(json!({
        "envoy": envoy_json(&envoy),
        "status": status,
        "traits": traits,
        "traits_updated_at": traits_at,
        "bundle_hash": bundle.as_ref().map(|b| b.bundle_hash.clone()),
        "resources": bundle.as_ref().map(|b| b.resource_count),
        "entitled_keys": bundle.as_ref().map(|b| b.entitled.iter().cloned().collect::<Vec<_>>()),
        "push_channel": s.nudges.is_watching(&envoy.id),
        // As the agent reported it at its last check-in since this server started.
        "agent": s.hardening.agent(&envoy.id).map(|a| json!({
            "version": a.version, "binary": a.binary, "tamper_signals": a.signals,
        })),
    })))
}

/// Revokes by name or by id (an id, shaped like a UUID, never matches a name).
pub async fn revoke(
    State(s): S,
    Extension(caller): Extension<Caller>,
    PathParam(name): PathParam,
) -> ApiResult {
    let envoy = revoke_envoy(&s, &caller, &name)?;
    Ok(Json(json!({ "revoked": envoy.id, "name": envoy.name })))
}

/// Revokes an envoy and records it, in one transaction; the API and the console both call
/// this. From the commit on, the envoy's check-ins are refused.
pub fn revoke_envoy(s: &Server, caller: &Caller, name: &str) -> Result<EnvoyRow, ApiError> {
    let envoy = find(s, name)?;
    let already =
        || ApiError::new(StatusCode::CONFLICT, format!("envoy {} is already revoked", quoted(name)));
    if envoy.revoked_at.is_some() {
        return Err(already());
    }
    {
        let mut conn = s.db();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !store::envoys::revoke(&tx, &envoy.id, unix_now())? {
            return Err(already());
        }
        audit::append_in(
            &tx,
            &[Event::new(&caller.actor, "envoy.revoked", &envoy.id).detail(json!({ "name": envoy.name }))],
        )?;
        tx.commit()?;
    }
    if let Some(mut info) = s.envoy(&envoy.id) {
        info.revoked = true;
        s.remember_envoy(info);
    }
    // Its push channel closes now, not at the next turn of the connection's idle timer.
    s.nudges.forget_envoy(&envoy.id);
    Ok(envoy)
}
