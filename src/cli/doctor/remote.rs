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
