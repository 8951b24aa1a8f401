//! What `doctor` asks the running server: its health, and envoys gone quiet or with
//! certificates about to end.

use crate::cli::admin_client::AdminClient;
use crate::cli::Context;
use crate::doctor::{expiry, Check};
use crate::util::time::unix_now;

pub fn server(ctx: &Context, out: &mut Vec<Check>) {
    let client = match AdminClient::from_ctx(ctx) {
        Ok(c) => c,
        Err(f) => {
            return out.push(Check::fail(
                "server",
                f.message,
                "start vigosrv (and check --server / VIGO_SERVER)",
            ))
        }
    };
    let health = match client.get("/v1/health") {
        Ok(h) => h,
        Err(f) => {
            return out.push(Check::fail(
                "server",
                f.message,
                "start vigosrv, or check that it listens where the CLI looks",
            ))
        }
    };
    match health["status"].as_str() {
        Some("ok") => out.push(Check::ok(
            "server",
            format!("{} answers; config epoch {}", client.url(), health["config_epoch"]),
        )),
        _ => {
            let problems: Vec<String> = health["problems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(String::from))
                .collect();
            out.push(Check::warn(
                "server",
                format!("degraded: {}", problems.join("; ")),
                "see the problems; `vigocli config validate` for config ones",
            ));
        }
    }
    audit_sinks(&health, out);
    let interval = ctx.checkin_interval_secs;
    let Ok(envoys) = client.get("/v1/envoys") else { return };
    let active: Vec<&serde_json::Value> =
        envoys["envoys"].as_array().into_iter().flatten().filter(|e| e["revoked_at"].is_null()).collect();
    let now = unix_now();
    let stale: Vec<&str> = active
        .iter()
        .filter(|e| e["last_seen"].as_i64().is_some_and(|t| now - t > i64::from(interval) * 5 / 2))
        .filter_map(|e| e["name"].as_str())
        .collect();
    if stale.is_empty() {
        out.push(Check::ok(
            "envoys",
            format!("{} active; none silent for 2.5 check-in intervals", active.len()),
        ));
    } else {
        let shown: Vec<&str> = stale.iter().take(10).copied().collect();
        out.push(Check::warn(
            "envoys",
            format!(
                "{} of {} silent for over 2.5 intervals: {}{}",
                stale.len(),
                active.len(),
                shown.join(", "),
                if stale.len() > 10 { ", …" } else { "" }
            ),
            "check those hosts: is vigo-agent running, can it reach the server?",
        ));
    }
    if let Some(t) = active.iter().filter_map(|e| e["cert_not_after"].as_i64()).min() {
        out.push(expiry(
            "envoy certificates",
            "the earliest envoy certificate",
            t,
            "agents renew on their own at check-in; check those that stopped checking in",
        ));
    }
}

/// One line per audit sink from the server's health: delivering, behind, or failing.
fn audit_sinks(health: &serde_json::Value, out: &mut Vec<Check>) {
    for sink in health["audit_sinks"].as_array().into_iter().flatten() {
        let name = format!("audit sink {}", sink["name"].as_str().unwrap_or("?"));
        let target =
            format!("{} {}", sink["kind"].as_str().unwrap_or(""), sink["target"].as_str().unwrap_or(""));
        let backlog = sink["backlog"].as_i64().unwrap_or(0);
        let error = sink["last_error"].as_str().unwrap_or("");
        if sink["warning"].as_bool() == Some(true) {
            out.push(Check::warn(
                &name,
                format!("{target}: failing ({error}); {backlog} rows waiting"),
                "check that the receiver is up and reachable; rows are kept and sent once it answers",
            ));
        } else if !sink["failing_since"].is_null() {
            out.push(Check::ok(
                &name,
                format!("{target}: retrying after a failure ({error}); {backlog} rows waiting"),
            ));
        } else {
            out.push(Check::ok(
                &name,
                format!("{target}: delivered up to row {}; {backlog} rows waiting", sink["last_seq"]),
            ));
        }
    }
}
