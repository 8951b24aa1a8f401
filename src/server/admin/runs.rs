//! Run reports and the audit log tail.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{ApiError, ApiResult, PathParam, Query};
use crate::server::state::Server;
use crate::store;

type S = State<Arc<Server>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    envoy: Option<String>,
    limit: Option<u32>,
}

pub async fn list(State(s): S, Query(q): Query<RunsQuery>) -> ApiResult {
    let limit = q.limit.unwrap_or(50).min(10_000);
    let rows: Vec<Value> = store::runs::list(&s.db(), q.envoy.as_deref(), limit)?
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "envoy": r.envoy_name, "received_at": r.received_at,
                "status": r.status, "bundle_hash": r.bundle_hash,
            })
        })
        .collect();
    Ok(Json(json!({ "runs": rows })))
}

pub async fn show(State(s): S, PathParam(id): PathParam) -> ApiResult {
    let (envoy, received, report) =
        store::runs::get(&s.db(), &id)?.ok_or_else(|| ApiError::not_found("no such run"))?;
    let report: Value = serde_json::from_str(&report).map_err(ApiError::internal)?;
    Ok(Json(json!({ "id": id, "envoy": envoy, "received_at": received, "report": report })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    n: Option<u32>,
}

pub async fn audit_tail(State(s): S, Query(q): Query<AuditQuery>) -> ApiResult {
    let rows = crate::audit::tail(&s.db(), q.n.unwrap_or(50).min(100_000)).map_err(ApiError::internal)?;
    Ok(Json(json!({ "rows": rows })))
}
