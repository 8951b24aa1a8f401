//! Run reports as JSON (stored as received: the agent has already scrubbed secret values).

use crate::proto::v1 as pb;

pub fn report_to_json(r: &pb::RunReport) -> serde_json::Value {
    serde_json::json!({
        "bundle_hash": r.bundle_hash,
        "started_ms": r.started_ms,
        "duration_ms": r.duration_ms,
        "noop": r.noop,
        "status": r.status,
        "secrets_epoch": r.secrets_epoch,
        "results": r.results.iter().map(|x| serde_json::json!({
            "name": x.name,
            "type": x.r#type,
            "status": x.status,
            "duration_ms": x.duration_ms,
            "diff": x.diff,
            "error": x.error,
            "output": x.output,
        })).collect::<Vec<_>>(),
    })
}
