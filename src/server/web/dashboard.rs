//! `/`: the fleet at a glance: envoys by state, failed runs and check-ins over the last day,
//! vault lock state, audit chain, epochs, version.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;

use super::charts::{self, Series};
use super::page::{self, Ctx, Layout, PageResult};
use crate::audit::Verdict;
use crate::server::state::Server;
use crate::util::time::unix_now;

pub fn stale_before(s: &Server, now: i64) -> i64 {
    crate::store::fleet::stale_before(now, s.checkin_interval_secs)
}

/// How each envoy state is named on the page.
pub fn state_label(state: &str) -> &'static str {
    match state {
        "converged" => "converged",
        "changed" => "changed",
        "drifting" => "drifting (changed back every run)",
        "failed" => "failed",
        "pending" => "checked in, no run yet",
        "stale" => "stale",
        "never" => "never checked in",
        "revoked" => "revoked",
        _ => "unknown",
    }
}

pub struct StateCount {
    pub state: &'static str,
    pub label: &'static str,
    pub count: u64,
}

pub struct AuditView {
    pub head_seq: i64,
    pub head_hash: String,
    /// "intact", "broken" or "not verified yet".
    pub state: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    states: Vec<StateCount>,
    active: u64,
    failed_24h: u64,
    runs_24h: u64,
    vault: String,
    vault_open: bool,
    audit: AuditView,
    can_audit: bool,
    config_epoch: u64,
    config_hash: String,
    config_fallback: bool,
    secrets_epoch: u64,
    version: &'static str,
    chart_states: String,
    chart_runs: String,
    chart_checkins: String,
}

pub async fn show(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    let now = unix_now();
    let since = now - now.rem_euclid(3600) - 23 * 3600;
    let (counts, by_hour, head) = {
        let conn = s.db();
        (
            crate::store::fleet::counts(&conn, stale_before(&s, now))?,
            crate::store::fleet::runs_by_hour(&conn, since)?,
            crate::store::audit_log::head(&conn)?,
        )
    };
    let states: Vec<StateCount> = crate::store::fleet::STATES
        .iter()
        .map(|st| StateCount {
            state: st,
            label: state_label(st),
            count: counts.iter().find(|(c, _)| c == st).map_or(0, |(_, n)| *n),
        })
        .collect();
    let active = states.iter().filter(|c| c.state != "revoked").map(|c| c.count).sum();
    let hours: Vec<i64> = (0..24).map(|i| since + i * 3600).collect();
    let per_hour = |status: &str| -> Vec<u64> {
        hours
            .iter()
            .map(|h| by_hour.iter().filter(|(x, st, _)| x == h && st == status).map(|(_, _, n)| n).sum())
            .collect()
    };
    let run_series = [
        Series { class: "s-converged", label: "converged", values: per_hour("converged") },
        Series { class: "s-changed", label: "changed", values: per_hour("changed") },
        Series { class: "s-failed", label: "failed", values: per_hour("failed") },
    ];
    let failed_24h = run_series[2].values.iter().sum();
    let runs_24h = run_series.iter().flat_map(|x| x.values.iter()).sum();
    let checkins = s.status.checkins_by_hour(now);
    let chart_checkins = charts::hourly(
        "checkins",
        "Check-ins per hour",
        &hours,
        &[Series {
            class: "s-checkin",
            label: "check-ins",
            values: checkins.iter().map(|(_, n)| *n).collect(),
        }],
    );
    let bars: Vec<(String, &str, u64)> = states
        .iter()
        .filter(|c| c.state != "revoked")
        .map(|c| (format!("s-{}", c.state), c.label, c.count))
        .collect();
    let bar_refs: Vec<(&str, &str, u64)> = bars.iter().map(|(c, l, n)| (c.as_str(), *l, *n)).collect();
    let (vault_open, vault) = match crate::secrets::gate::check_gate(&s.paths.sentinel) {
        Ok(()) => (true, "unlocked for the CLI (the server reads the vault either way)".to_string()),
        Err(why) => (false, why),
    };
    let p = s.current();
    let page = DashboardPage {
        layout: ctx.layout("/", "Dashboard"),
        chart_states: charts::horizontal("states", "Envoys by state", &bar_refs),
        chart_runs: charts::hourly("runs", "Run outcomes per hour", &hours, &run_series),
        chart_checkins,
        states,
        active,
        failed_24h,
        runs_24h,
        vault,
        vault_open,
        audit: audit_view(&s, head),
        can_audit: ctx.can(crate::auth::Permission::AuditRead),
        config_epoch: p.config_epoch,
        config_hash: p.content_hash.clone(),
        config_fallback: p.fallback.is_some(),
        secrets_epoch: s.secrets_epoch(),
        version: crate::release::version(),
    };
    page::render(&page)
}

/// The recorded head and the last verification of the whole chain.
pub fn audit_view(s: &Server, head: Option<(i64, Vec<u8>)>) -> AuditView {
    let (head_seq, head_hash) =
        head.map(|(seq, h)| (seq, crate::crypto::hex_encode(&h))).unwrap_or((0, String::new()));
    let (state, detail) = match s.status.audit_check() {
        None => ("not verified yet", "the server verifies the chain at start and every hour".to_string()),
        Some(c) => match c.verdict {
            Verdict::Intact { rows, .. } => {
                ("intact", format!("{rows} rows verified {} ({} ms)", page::when(Some(c.at)), c.millis))
            }
            Verdict::Broken { seq, reason } => {
                ("broken", format!("row {seq}: {reason} (checked {})", page::when(Some(c.at))))
            }
        },
    };
    AuditView { head_seq, head_hash, state, detail }
}
