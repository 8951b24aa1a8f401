//! Run reports as JSON (stored as received: the agent has already scrubbed secret values).
//! Serialized straight from the message, keys in alphabetical order as before; building a
//! `serde_json::Value` first cost a map per resource on every ReportRun.

use serde::Serialize;

use crate::proto::v1 as pb;

#[derive(Serialize)]
struct Report<'a> {
    bundle_hash: &'a str,
    duration_ms: u64,
    noop: bool,
    results: Vec<Result<'a>>,
    secrets_epoch: u64,
    started_ms: i64,
    status: &'a str,
    /// A converged run's unchanged results, counted instead of listed (absent when none were).
    #[serde(skip_serializing_if = "is_zero")]
    unchanged_omitted: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct Result<'a> {
    diff: &'a str,
    duration_ms: u64,
    error: &'a str,
    name: &'a str,
    output: &'a str,
    status: &'a str,
    #[serde(rename = "type")]
    rtype: &'a str,
}

pub fn report_to_json(r: &pb::RunReport) -> String {
    let report = Report {
        bundle_hash: &r.bundle_hash,
        duration_ms: r.duration_ms,
        noop: r.noop,
        results: r
            .results
            .iter()
            .map(|x| Result {
                diff: &x.diff,
                duration_ms: x.duration_ms,
                error: &x.error,
                name: &x.name,
                output: &x.output,
                status: &x.status,
                rtype: &x.r#type,
            })
            .collect(),
        secrets_epoch: r.secrets_epoch,
        started_ms: r.started_ms,
        status: &r.status,
        unchanged_omitted: r.unchanged_omitted,
    };
    serde_json::to_string(&report).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_as_a_json_value_with_sorted_keys() {
        let r = pb::RunReport {
            bundle_hash: "h".into(),
            status: "changed".into(),
            results: vec![pb::ResourceResult {
                name: "n\"q".into(),
                r#type: "file".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let value = serde_json::json!({
            "bundle_hash": "h", "started_ms": 0, "duration_ms": 0, "noop": false, "status": "changed",
            "secrets_epoch": 0, "results": [{ "name": "n\"q", "type": "file", "status": "", "duration_ms": 0,
            "diff": "", "error": "", "output": "" }],
        });
        assert_eq!(report_to_json(&r), value.to_string());
    }
}
