//! `/envoys`: the fleet, filtered by state and searched by name, a page at a time; one envoy
//! with its runs, its bundle's resources (markers shown as the `secret:<key>` refs they stand
//! for, never values), the keys it may resolve, and a revoke button for those who may use it.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use serde::Deserialize;

use super::dashboard::{stale_before, state_label};
use super::page::{self, done, Ctx, Layout, PageError, PageResult, P, Q};
use crate::auth::Permission;
use crate::server::state::Server;
use crate::store::fleet::{self, Filter};
use crate::util::time::unix_now;

const PER_PAGE: u32 = 100;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    page: Option<u32>,
}

pub struct Row {
    href: String,
    name: String,
    state: &'static str,
    state_class: String,
    last_seen: String,
    last_seen_ago: String,
    enrolled: String,
    cert_days: String,
}

pub struct StateOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "envoys.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    total: u64,
    q: String,
    states: Vec<StateOption>,
    page: u32,
    pages: u64,
    prev: Option<String>,
    next: Option<String>,
}

fn page_link(state: Option<&str>, q: Option<&str>, page: u32) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if let Some(st) = state {
        s.append_pair("state", st);
    }
    if let Some(q) = q {
        s.append_pair("q", q);
    }
    s.append_pair("page", &page.to_string());
    format!("/envoys?{}", s.finish())
}

pub async fn list(State(s): State<Arc<Server>>, ctx: Ctx, Q(query): Q<ListQuery>) -> PageResult {
    let state = query.state.as_deref().filter(|st| fleet::STATES.contains(st));
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.len() > 253) {
        return Err(PageError::bad_request("a search is at most 253 characters (the longest envoy name)"));
    }
    let page = query.page.unwrap_or(1).max(1);
    let now = unix_now();
    let filter = Filter { state, name_contains: q };
    let (found, total) = fleet::page(
        &s.db(),
        stale_before(&s, now),
        &filter,
        u64::from(page - 1) * u64::from(PER_PAGE),
        PER_PAGE,
    )?;
    let rows = found
        .into_iter()
        .map(|e| Row {
            state: state_label(&e.state),
            state_class: format!("s-{}", e.state),
            last_seen: page::when(e.last_seen),
            last_seen_ago: page::ago(e.last_seen, now),
            enrolled: page::when(Some(e.enrolled_at)),
            cert_days: e.cert_not_after.map_or("—".into(), |t| page::days_left(t, now).to_string()),
            href: format!("/envoys/{}", urlencode(&e.id)),
            name: e.name,
        })
        .collect();
    let pages = total.div_ceil(u64::from(PER_PAGE)).max(1);
    let listing = ListPage {
        layout: ctx.layout("/envoys", "Envoys"),
        rows,
        total,
        q: q.unwrap_or_default().to_string(),
        states: fleet::STATES
            .iter()
            .map(|st| StateOption { value: st, label: state_label(st), selected: Some(*st) == state })
            .collect(),
        page,
        pages,
        prev: (page > 1).then(|| page_link(state, q, page - 1)),
        next: (u64::from(page) < pages).then(|| page_link(state, q, page + 1)),
    };
    page::render(&listing)
}

pub struct ResourceView {
    name: String,
    rtype: String,
    attributes: String,
    extra: String,
}

pub struct RunLink {
    href: String,
    when: String,
    status: String,
}

#[derive(Template)]
#[template(path = "envoy.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    name: String,
    state: &'static str,
    state_class: String,
    enrolled: String,
    last_seen: String,
    last_seen_ago: String,
    revoked: Option<String>,
    revoke_action: String,
    runs_href: String,
    cert_expires: String,
    cert_ca_pin: String,
    /// What the agent said of its binary and tamper signals at its last check-in.
    agent: Option<crate::server::hardening::AgentSelf>,
    bundle_hash: String,
    bundle_error: Option<String>,
    resources: Vec<ResourceView>,
    entitled: Vec<String>,
    runs: Vec<RunLink>,
    can_revoke: bool,
}

pub async fn show(State(s): State<Arc<Server>>, ctx: Ctx, P(name): P) -> PageResult {
    let now = unix_now();
    let (envoy, state, runs) = {
        let conn = s.db();
        let envoy = crate::store::envoys::find(&conn, &name)?
            .ok_or_else(|| PageError::not_found("there is no envoy of that name or id"))?;
        let state = fleet::state_of(&conn, stale_before(&s, now), &envoy.id)?;
        let runs = crate::store::runs::list(&conn, Some(&envoy.name), 20)?;
        (envoy, state, runs)
    };
    let (mut bundle_hash, mut bundle_error, mut resources, mut entitled) =
        (String::new(), None, Vec::new(), Vec::new());
    if envoy.revoked_at.is_none() {
        match s.bundle_for(&envoy.id, &envoy.name).and_then(|b| Ok((b.message()?, b.entitled.clone()))) {
            Ok((message, keys)) => {
                bundle_hash = message.bundle_hash.clone();
                entitled = keys.into_iter().collect();
                resources = message
                    .resources
                    .iter()
                    .map(|r| ResourceView {
                        name: r.name.clone(),
                        rtype: r.r#type.clone(),
                        attributes: page::show_json(&String::from_utf8_lossy(&r.attributes_json)),
                        extra: describe_edges(r),
                    })
                    .collect();
            }
            Err(e) => bundle_error = Some(page::markers_as_refs(&e)),
        }
    }
    let detail = DetailPage {
        layout: ctx.layout("/envoys", format!("Envoy {}", envoy.name)),
        state: state_label(&state),
        state_class: format!("s-{state}"),
        enrolled: page::when(Some(envoy.enrolled_at)),
        last_seen: page::when(envoy.last_seen),
        last_seen_ago: page::ago(envoy.last_seen, now),
        revoked: envoy.revoked_at.map(|t| page::when(Some(t))),
        cert_expires: envoy
            .cert_not_after
            .map_or("—".into(), |t| format!("{} ({} days)", page::when(Some(t)), page::days_left(t, now))),
        cert_ca_pin: envoy.cert_ca_pin.clone().unwrap_or_default(),
        agent: s.hardening.agent(&envoy.id),
        bundle_hash,
        bundle_error,
        resources,
        entitled,
        runs: runs
            .into_iter()
            .map(|r| RunLink {
                href: format!("/runs/{}", urlencode(&r.id)),
                when: page::when(Some(r.received_at)),
                status: r.status,
            })
            .collect(),
        can_revoke: ctx.can(Permission::EnvoysRevoke) && envoy.revoked_at.is_none(),
        revoke_action: format!("/envoys/{}/revoke", urlencode(&envoy.id)),
        runs_href: format!("/runs?envoy={}", urlencode(&envoy.name)),
        id: envoy.id,
        name: envoy.name,
    };
    page::render(&detail)
}

/// `depends on …; notifies …; watches secret:…; when …`, as the config said.
fn describe_edges(r: &crate::proto::v1::Resource) -> String {
    let mut parts = Vec::new();
    if !r.depends_on.is_empty() {
        parts.push(format!("depends on {}", r.depends_on.join(", ")));
    }
    if !r.notify.is_empty() {
        parts.push(format!("notifies {}", r.notify.join(", ")));
    }
    if !r.watch_secret.is_empty() {
        let refs: Vec<String> = r.watch_secret.iter().map(|k| format!("secret:{k}")).collect();
        parts.push(format!("watches {}", refs.join(", ")));
    }
    if !r.when.is_empty() {
        parts.push(format!("when {}", page::markers_as_refs(&r.when)));
    }
    parts.join("; ")
}

pub async fn revoke(State(s): State<Arc<Server>>, ctx: Ctx, P(name): P) -> PageResult {
    let envoy = crate::server::admin::envoys::revoke_envoy(&s, &ctx.caller, &name)?;
    done(&format!("/envoys/{}", urlencode(&envoy.id)), "revoked")
}

/// A path segment, percent-encoded.
pub fn urlencode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}
