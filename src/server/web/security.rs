//! `/security`: what the server exposes and how it is protected, from the running state: each
//! listener with the TLS versions, suites and groups it offers and whether it asks for a client
//! certificate; days left on the CA, server and issued client certificates; the login providers,
//! throttling and sessions; the agents' default guardrails; the binary's signature and
//! hardening; the crates compiled in, matched against the imported RustSec advisories.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;

use super::page::{self, Ctx, Layout, PageResult};
use crate::agent::engine::guardrails;
use crate::server::state::Server;
use crate::util::time::unix_now;

pub struct Listener {
    name: &'static str,
    address: String,
    versions: String,
    suites: String,
    groups: String,
    client_cert: &'static str,
}

/// What a TLS configuration offers, read from the configuration in force.
fn offered(config: &rustls::ServerConfig) -> (String, String, String) {
    let provider = config.crypto_provider();
    let mut versions: Vec<String> =
        provider.cipher_suites.iter().map(|s| format!("{:?}", s.version().version)).collect();
    versions.dedup();
    let suites: Vec<String> = provider.cipher_suites.iter().map(|s| format!("{:?}", s.suite())).collect();
    let groups: Vec<String> = provider.kx_groups.iter().map(|g| format!("{:?}", g.name())).collect();
    (
        versions.join(", ").replace("TLSv1_3", "TLS 1.3").replace("TLSv1_2", "TLS 1.2"),
        suites.join(", "),
        groups.join(", "),
    )
}

pub struct Cert {
    what: &'static str,
    expires: String,
    days: i64,
    warn: bool,
}

pub struct AdvisoryView {
    id: String,
    krate: String,
    version: String,
    title: String,
    kind: String,
    patched: String,
    url: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    layout: Layout,
    listeners: Vec<Listener>,
    certs: Vec<Cert>,
    client_certs_soon: u64,
    providers: String,
    throttle: Vec<(&'static str, String)>,
    session_idle: String,
    session_lifetime: String,
    public_url: String,
    active_sessions: usize,
    session_users: usize,
    guard_paths: String,
    guard_services: String,
    guard_packages: String,
    signature: String,
    signature_bad: bool,
    started: String,
    hardening: Vec<String>,
    crates: Vec<(&'static str, &'static str)>,
    imported: Option<String>,
    advisories: Vec<AdvisoryView>,
}

/// Certificates with fewer days than this left are flagged.
const WARN_DAYS: i64 = 30;

pub async fn show(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    let now = unix_now();
    let tls = s.tls();
    let (agent_addr, admin_addr) = s
        .status
        .listeners()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_else(|| ("not listening".into(), "not listening".into()));
    let (av, asuites, agroups) = offered(&tls.agent);
    let (mv, msuites, mgroups) = offered(&tls.admin);
    let listeners = vec![
        Listener {
            name: "agents (gRPC)",
            address: agent_addr,
            versions: av,
            suites: asuites,
            groups: agroups,
            client_cert: "required: CA-issued for every call; a self-signed one may only enroll",
        },
        Listener {
            name: "admin API and console (HTTPS)",
            address: admin_addr,
            versions: mv,
            suites: msuites,
            groups: mgroups,
            client_cert: "not asked for: a bearer token or a session cookie, checked on every request",
        },
    ];
    let pki = s.pki();
    let cert = |what, pem: &str| -> Option<Cert> {
        let der = crate::crypto::x509::certs_from_pem(pem).ok()?;
        let t = crate::crypto::x509::not_after(der.first()?).ok()?;
        let days = page::days_left(t, now);
        Some(Cert { what, expires: page::when(Some(t)), days, warn: days < WARN_DAYS })
    };
    let mut certs: Vec<Cert> =
        [cert("CA", &pki.ca.cert_pem), cert("server", &pki.server.cert_pem)].into_iter().flatten().collect();
    let (client_certs_soon, earliest, sessions, advisories, imported) = {
        let conn = s.db();
        let (soon, earliest) = crate::store::fleet::certs_ending(&conn, now + WARN_DAYS * 86_400)?;
        (
            soon,
            earliest,
            crate::store::sessions::list(&conn, None, now)?,
            crate::store::advisories::all(&conn)?,
            crate::store::advisories::imported(&conn)?,
        )
    };
    if let Some(t) = earliest {
        let days = page::days_left(t, now);
        certs.push(Cert {
            what: "earliest issued client certificate",
            expires: page::when(Some(t)),
            days,
            warn: days < WARN_DAYS,
        });
    }
    let t = s.logins.throttle.settings();
    let throttle = vec![
        ("Free failures per username and per source", t.free_failures.to_string()),
        ("Longest wait between attempts after those", format!("{} s", t.max_delay.as_secs())),
        ("Failures in a row that lock", t.lockout_after.to_string()),
        ("Lockout", format!("{} s", t.lockout.as_secs())),
    ];
    let mut users: Vec<&str> = sessions.iter().map(|x| x.username.as_str()).collect();
    users.sort_unstable();
    users.dedup();
    let crates = crate::advisories::compiled_in();
    let found = crate::advisories::matching(&advisories, &crates)
        .into_iter()
        .map(|(a, version)| AdvisoryView {
            id: a.id.clone(),
            krate: a.package.clone(),
            version: version.to_string(),
            title: a.title.clone(),
            kind: a.informational.clone().unwrap_or_else(|| "vulnerability".into()),
            patched: if a.patched.is_empty() { "no fixed release".into() } else { a.patched.join("; ") },
            url: a.url.clone(),
        })
        .collect();
    let imported = imported.map(|i| {
        format!(
            "{} advisories imported {} ({} days ago) from {}; the newest is dated {}",
            i.count,
            page::when(Some(i.at)),
            (now - i.at).div_euclid(86_400),
            i.source,
            i.newest.unwrap_or_else(|| "—".into())
        )
    });
    let security = SecurityPage {
        layout: ctx.layout("/security", "Security"),
        listeners,
        certs,
        client_certs_soon,
        providers: s.auth.providers.join(", "),
        throttle,
        session_idle: s.auth.session_idle.clone(),
        session_lifetime: s.auth.session_lifetime.clone(),
        public_url: s.auth.public_url.clone().unwrap_or_else(|| "not set: the request's own Host".into()),
        active_sessions: sessions.len(),
        session_users: users.len(),
        guard_paths: format!(
            "{}, the agent's state directory and its own binary",
            guardrails::SYSTEM_PATHS.join(", ")
        ),
        guard_services: guardrails::DEFAULT_SERVICES.join(", "),
        guard_packages: guardrails::DEFAULT_PACKAGES.join(", "),
        signature: match crate::release::gate::recorded() {
            Some(status) => status.summary(),
            None => "not checked in this process".into(),
        },
        signature_bad: !matches!(
            crate::release::gate::recorded(),
            Some(crate::release::gate::BinaryStatus::Verified { .. })
        ),
        started: format!(
            "{} UTC ({})",
            page::when(Some(s.status.started_at)),
            page::ago(Some(s.status.started_at), now)
        ),
        hardening: s.hardening.own().into_iter().map(|x| format!("{}: {}", x.event, x.evidence)).collect(),
        crates,
        imported,
        advisories: found,
    };
    page::render(&security)
}
