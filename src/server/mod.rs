//! `vigosrv`: the server role. Runs in the foreground; refuses to start (one-line reason)
//! when TLS files, the master key or any `secret:` ref cannot be read.

mod admin;
mod bootstrap;
mod capture;
mod conn_limits;
mod directory;
mod envelope;
mod first_start;
mod grpc;
mod hardening;
mod idle;
pub(crate) mod last_good;
mod listeners;
mod logins;
mod metrics;
pub(crate) mod nudges;
mod pending;
mod push;
mod rate;
mod raw_refusals;
mod refusals;
mod request_deadline;
pub(crate) mod rotation;
mod runs;
mod state;
mod status;
mod updates;
mod web;
mod writer;

use std::process::ExitCode;
use std::sync::Arc;

use argh::{ArgsInfo, FromArgs};

use crate::audit::Event;
use crate::crypto::SecretString;
use crate::exit::{finish, hoist_options, parse_args, CmdResult, Failure};
use crate::logging::{self, LogFormat};
use crate::paths::{self, ServerPaths};
use crate::settings::{Loaded, Settings};
use crate::util::fsutil;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(
    note = "Environment: VIGO_BASE_DIR (the state directory), VIGO_CONFIG (the config file, default /etc/vigo/vigo.yaml), VIGO_LOG (log level: error, warn, info, debug or trace), VIGO_DNS_SERVERS (DNS servers to ask instead of those in /etc/resolv.conf, for listen addresses given as names). docs/OPERATIONS.md describes each."
)]
/// Run the Vigo server (vigosrv) in the foreground: agent gRPC over mTLS and the admin HTTPS API.
/// Exit codes: 0 clean stop, 1 failed to start or crashed, 2 usage error.
pub(crate) struct ServerArgs {
    /// print the version and exit
    #[argh(switch)]
    #[allow(dead_code)] // read by the command-line front door before argh parses (src/argv)
    version: bool,
    /// state directory (default /srv/vigo, or $VIGO_BASE_DIR)
    #[argh(option)]
    base_dir: Option<String>,
    /// config file (default /etc/vigo/vigo.yaml when it exists, or $VIGO_CONFIG)
    #[argh(option)]
    config: Option<String>,
    /// agent gRPC listener address (default 0.0.0.0:7443; port 0 picks a free port)
    #[argh(option)]
    listen: Option<String>,
    /// admin HTTPS listener address (default 127.0.0.1:8443)
    #[argh(option)]
    api_listen: Option<String>,
    /// log format on stderr: human (default) or json
    #[argh(option, default = "LogFormat::Human")]
    log_format: LogFormat,
}

pub fn main(command: &str, args: &[&str]) -> ExitCode {
    let args = hoist_options(args, &["--base-dir", "--log-format"]);
    let parsed: ServerArgs = match parse_args(command, &args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    logging::init(parsed.log_format);
    if let Err(f) = crate::util::interrupt::watch() {
        return finish(Err(f));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return finish(Err(Failure::failed(format!("cannot start the runtime: {e}")))),
    };
    // `finish` prints a start error once (as a JSON line under --log-format json).
    finish(runtime.block_on(run(parsed)))
}

/// What startup hands to the listeners.
struct Ready {
    server: Arc<state::Server>,
    settings: Settings,
    admin_token: SecretString,
    /// Why the config directory was not used, when the server fell back to the last good tree.
    fallback: Option<String>,
    /// Held for the life of the server.
    one_server: crate::util::lock::FileLock,
    /// What a first start made (nothing on later starts).
    created: first_start::Created,
    /// Keys the isopass watcher saw change.
    rotations: Option<crate::secrets::isopass::Rotations>,
    /// The audit sinks, built (their CA files read) but not started.
    sinks: Vec<crate::integrations::dispatcher::Sink>,
}

/// Everything that must hold before a listener opens: a bad key or a missing secret refuses
/// startup here, not at the first handshake. Blocking (a secrets backend may be fetched from).
fn startup(loaded: Loaded, paths: ServerPaths) -> Result<Ready, Failure> {
    make_base_dir(&paths.base)?;
    // Taken before the first write to the state (a first start's key and certificates, the
    // database's epochs, the last good config): a second server on it would also replace the
    // first one's admin token. The kernel drops the lock with the process, however it ends.
    let one_server = crate::util::lock::FileLock::acquire(&paths.server_lock, None, "vigosrv")
        .map_err(|e| Failure::failed(format!("{e}; one server per --base-dir: stop that one first")))?;
    // A TLS change killed before its exchange left a staging copy: the set in force is the old
    // one, so the copy is only debris (its audit row, if it committed, names an attempt).
    let swept = crate::pki::sweep_stale_staging(&paths.tls_dir);
    if swept > 0 {
        tracing::warn!(swept, "removed TLS staging directories left by a change that was interrupted");
    }
    let created = first_start::prepare(&paths, !loaded.settings.secrets.is_isopass())
        .map_err(|e| Failure::failed(format!("first start: {e}")))?;
    let (provider, rotations) =
        crate::secrets::open_backend(&loaded.settings.secrets, &paths).map_err(Failure::failed)?;
    let pki = crate::pki::Pki::load(&paths).map_err(Failure::failed)?;
    let refs = loaded.refs.iter().map(|r| r.key.clone()).collect();
    let loading = |e: String| Failure::failed(format!("loading server config: {e}"));
    provider.prepare(&refs).map_err(|e| loading(e.to_string()))?;
    let settings = loaded.resolve(provider.as_ref()).map_err(loading)?;
    let config_dir = paths.config_dir.clone();
    let mut fallback = None;
    let tree = if config_dir.exists() {
        let loaded = crate::config::load_tree(&config_dir)
            .and_then(|tree| tree.validate_all(provider.as_ref()).map(|_| tree))
            .map_err(config_failure);
        match loaded {
            Ok(tree) => Some(tree),
            Err(broken) => {
                // Serving the tree that last worked beats leaving every envoy without a server;
                // with no such tree, the broken one is the error to show.
                let last = last_good::load(&paths.base, provider.as_ref())
                    .map_err(|e| Failure::failed(format!("{}; {e}", broken.message)))?;
                let Some(tree) = last else { return Err(broken) };
                fallback = Some(broken.message);
                Some(tree)
            }
        }
    } else {
        tracing::warn!(dir = %config_dir.display(), "no config directory; envoys get empty bundles until `vigocli config publish`");
        None
    };
    let admin_token = SecretString::new(crate::crypto::random_token("vgla_")?);
    let db = crate::store::open(&paths.db)?;
    // Web users' passwords are secrets too: a network backend fetches them now, not at login.
    let passwords = crate::store::users::list(&db)?
        .into_iter()
        .map(|u| crate::auth::accounts::password_key(&u.username))
        .collect();
    if let Err(e) = provider.prepare(&passwords) {
        tracing::warn!(error = %e, "could not fetch the web users' passwords; password logins fail until it can");
    }
    let oidc_settings = oidc_settings(&settings)?;
    let (sinks, board) =
        crate::integrations::dispatcher::build(&settings.integrations).map_err(Failure::failed)?;
    let server = state::Server::new(state::ServerParts {
        paths: paths.clone(),
        db,
        provider,
        pki,
        config_dir,
        checkin_interval_secs: settings.checkin_interval_secs().map_err(Failure::failed)?,
        client_cert_days: settings.client_cert_days,
        client_cert_renew_days: settings.client_cert_renew_days(),
        admin_token_hash: crate::crypto::sha256(admin_token.expose().as_bytes()),
        tree,
        fallback: fallback.clone(),
        limits: settings.limits.clone(),
        run_settings: settings.runs.clone(),
        auth: settings.auth.clone(),
        oidc_settings,
    })
    .map_err(Failure::failed)?;
    server.set_sink_board(board);
    server.metrics.local_vault.store(!settings.secrets.is_isopass(), std::sync::atomic::Ordering::Relaxed);
    Ok(Ready {
        server: Arc::new(server),
        settings,
        admin_token,
        fallback,
        one_server,
        created,
        rotations,
        sinks,
    })
}

/// A base directory that does not exist yet is made owner-only; an existing one is left as is.
fn make_base_dir(base: &std::path::Path) -> Result<(), Failure> {
    if base.exists() {
        return Ok(());
    }
    fsutil::ensure_dir(base, 0o700)
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", base.display())))
}

/// Logs and audits what a first start made, with what the operator should do next.
fn note_first_start(server: &state::Server, created: &first_start::Created) -> CmdResult {
    if !created.anything() {
        return Ok(());
    }
    let paths = &server.paths;
    if created.master_key {
        tracing::warn!(
            key_file = %paths.key_file.display(),
            "first start: created the master key; run `vigocli secrets init` to set the unlock passphrase, and back the key up"
        );
    }
    if !created.server_names.is_empty() {
        tracing::warn!(
            tls_dir = %paths.tls_dir.display(),
            names = %created.server_names.join(","),
            "first start: created a private CA and a server certificate; agents trust this CA at enrollment (`vigocli tls status` shows it)"
        );
    }
    let detail = serde_json::json!({
        "master_key": created.master_key,
        "certificates": !created.server_names.is_empty(),
        "server_names": created.server_names,
    });
    server
        .audit(&[Event::new("server", "server.first_start", &paths.base.to_string_lossy()).detail(detail)])
        .map_err(|e| Failure::failed(e.to_string()))
}

/// A tree read from the config directory at start that is not the newest revision (edited
/// while the server was down, or the first start) is served as if published: it becomes a
/// revision of the history, with its audit row, so every tree that served can be rolled back to.
fn record_start_revision(server: &state::Server, tree: &crate::config::ConfigTree) -> CmdResult {
    use crate::store::config_history;
    let failed = |e: rusqlite::Error| Failure::failed(format!("recording the config revision: {e}"));
    let hash = tree.content_hash();
    let mut conn = server.db();
    let newest = config_history::list(&conn, 1).map_err(failed)?;
    if newest.first().is_some_and(|r| r.content_hash == hash) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(failed)?;
    let files: Vec<(String, String)> = tree.sources().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    let revision = config_history::NewRevision {
        content_hash: &hash,
        published_at: crate::util::time::unix_now(),
        published_by: "server",
        message: "read from the config directory at start",
        rollback_of: None,
        forced: false,
    };
    let rev = config_history::record(&tx, &revision, &files).map_err(failed)?;
    let detail = serde_json::json!({ "content_hash": hash, "revision": rev });
    crate::audit::append_in(&tx, &[Event::new("server", "config.loaded", &hash).detail(detail)])
        .map_err(failed)?;
    tx.commit().map_err(failed)
}

/// A tree that loaded becomes the last good one; a fallback is shouted in the log and the audit
/// log, and shows in `/v1/health`, until a publish of a fixed tree replaces it.
fn note_config_source(server: &state::Server, fallback: Option<String>) -> CmdResult {
    let published = server.current();
    let Some(tree) = published.tree.as_ref() else { return Ok(()) };
    match fallback {
        None => {
            if let Err(e) = last_good::save(&server.paths.base, tree) {
                tracing::warn!(error = %e, "could not record this config as the last good one");
            }
            record_start_revision(server, tree)
        }
        Some(reason) => {
            tracing::error!(
                config_dir = %server.config_dir.display(),
                reason = %reason,
                content_hash = %published.content_hash,
                "the config directory does not load; serving the last good config until a fixed one is published"
            );
            let detail = serde_json::json!({ "reason": reason, "content_hash": published.content_hash });
            server
                .audit(&[Event::new("server", "config.fallback", &published.content_hash).detail(detail)])
                .map_err(|e| Failure::failed(e.to_string()))
        }
    }
}

/// The OIDC provider's settings (the client secret already resolved from its `secret:` ref).
fn oidc_settings(settings: &Settings) -> Result<Option<crate::auth::oidc::OidcSettings>, Failure> {
    let Some(o) = &settings.auth.oidc else { return Ok(None) };
    let trust = match &o.ca_file {
        Some(f) => crate::util::https::TrustRoots::Pem(
            crate::util::fsutil::read_regular_text(std::path::Path::new(f), 1 << 20)
                .map_err(|e| Failure::failed(format!("auth.oidc.ca_file {f}: {e}")))?,
        ),
        None => crate::util::https::TrustRoots::Bundle(crate::util::https::SYSTEM_CA_BUNDLE.into()),
    };
    Ok(Some(crate::auth::oidc::OidcSettings::new(&o.issuer, &o.client_id, o.client_secret.clone(), trust)))
}

fn config_failure(errs: Vec<crate::config::ConfigError>) -> Failure {
    let first = errs.first().map(|e| e.to_string()).unwrap_or_default();
    Failure::failed(format!(
        "loading config: {first}{}",
        if errs.len() > 1 { format!(" (and {} more)", errs.len() - 1) } else { String::new() }
    ))
}

/// Background chores until shutdown: summaries of refused requests, run report retention.
async fn upkeep(server: Arc<state::Server>, mut stop: tokio::sync::watch::Receiver<bool>) {
    const TICK: std::time::Duration = std::time::Duration::from_secs(5);
    const PRUNE_EVERY: u32 = 120;
    // The dashboard's audit chain status: the whole chain is walked at start and every hour.
    const VERIFY_EVERY: u32 = 720;
    let mut ticks = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
        server.record_refusal_summaries(false).await;
        expire_task_parts(&server).await;
        ticks += 1;
        if ticks % PRUNE_EVERY == 1 {
            prune_runs(&server).await;
            prune_sessions(&server).await;
        }
        if ticks % VERIFY_EVERY == 1 {
            verify_audit(&server).await;
        }
    }
}

async fn expire_task_parts(server: &Arc<state::Server>) {
    let s = server.clone();
    let done = tokio::task::spawn_blocking(move || admin::tasks::expire_overdue_parts(&s, &s.db())).await;
    if let Ok(Err(e)) = done {
        tracing::warn!(error = %e, "could not expire overdue task parts");
    }
}

async fn verify_audit(server: &Arc<state::Server>) {
    let s = server.clone();
    match tokio::task::spawn_blocking(move || status::verify_audit(&s)).await {
        Ok(Ok(check)) if !matches!(check.verdict, crate::audit::Verdict::Intact { .. }) => {
            tracing::error!(verdict = ?check.verdict, "the audit chain does not verify")
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not verify the audit chain"),
        Err(e) => tracing::warn!(error = %e, "the audit verification task failed"),
    }
}

async fn prune_sessions(server: &state::Server) {
    let (now, idle) = (crate::util::time::unix_now(), server.logins.idle_secs);
    if let Err(e) = server.writes.write(move |c| crate::store::sessions::prune(c, now, idle)).await {
        tracing::warn!(error = %e, "could not delete ended sessions");
    }
}

async fn prune_runs(server: &state::Server) {
    let Ok(keep_for) = server.run_settings.keep_for_secs() else { return };
    let older_than = crate::util::time::unix_now() - keep_for;
    let keep = server.run_settings.keep_per_envoy;
    match server.writes.write(move |c| crate::store::runs::prune(c, older_than, keep)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "old run reports pruned"),
        Err(e) => tracing::warn!(error = %e, "could not prune old run reports"),
    }
}

/// The startup gate: no start on a binary whose signature does not check out (exit 3). An
/// unsigned development build starts, saying so loudly.
fn check_own_binary(public_key_file: &std::path::Path) -> CmdResult {
    if let Err(e) = crate::release::tamper::forbid_core_dumps() {
        tracing::warn!(error = %e, "core dumps stay possible: a dump would hold secret values");
    }
    let status = crate::release::gate::check_self(public_key_file)
        .map_err(|e| Failure::refused(format!("refusing to start: {e}")))?;
    if let verified @ crate::release::gate::BinaryStatus::Verified { .. } = &status {
        tracing::info!(binary = %verified.summary(), "the binary's signature checks out");
    }
    crate::release::gate::record(status);
    Ok(())
}

/// Said once the server runs (so that a start error stays the only line of a failed start).
fn warn_if_unsigned(public_key_file: &std::path::Path) {
    if crate::release::gate::recorded() == Some(&crate::release::gate::BinaryStatus::Development) {
        tracing::warn!(
            key_file = %public_key_file.display(),
            "UNSIGNED DEVELOPMENT BUILD: no release key is compiled in or installed, so this binary's signature was not checked"
        );
    }
}

async fn run(args: ServerArgs) -> CmdResult {
    let descriptors = conn_limits::raise_descriptor_limit();
    let loaded = crate::settings::load_for(args.config.as_deref()).map_err(Failure::failed)?;
    // Fail-closed, before the state is touched: only the config file has been read (for where
    // the release key is).
    check_own_binary(&loaded.settings.release.public_key_file())?;
    if let Some(f) = &loaded.file {
        tracing::info!(file = %f.display(), "read the config file");
    }
    let base = loaded.settings.base_dir(args.base_dir.as_deref(), paths::SERVER_DEFAULT_BASE);
    let paths = loaded.settings.server_paths(&base);
    let ready = tokio::task::spawn_blocking(move || startup(loaded, paths))
        .await
        .map_err(|e| Failure::failed(format!("startup stopped: {e}")))??;
    let Ready { server, settings, admin_token, fallback, one_server: _one_server, created, rotations, sinks } =
        ready;
    let bind = |addr: &str| {
        let a = crate::util::hosts::resolve(addr).map_err(Failure::usage)?;
        std::net::TcpListener::bind(a)
            .and_then(|l| {
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l)
            })
            .map_err(|e| Failure::failed(format!("cannot listen on {addr}: {e}")))
    };
    let agent_listener = bind(args.listen.as_deref().unwrap_or(&settings.listen))?;
    let api_listener = bind(args.api_listen.as_deref().unwrap_or(&settings.api_listen))?;
    let metrics_listener = settings.integrations.metrics.listen.as_deref().map(bind).transpose()?;
    let agent_addr = agent_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;
    server.status.set_listeners(agent_addr, api_addr);
    // A new local-admin token at every start; the previous one dies with the previous process.
    fsutil::atomic_write(&server.paths.admin_token, admin_token.expose().as_bytes(), 0o600)?;
    server
        .audit(&[Event::new("server", "server.started", &server.paths.base.to_string_lossy())
            .detail(serde_json::json!({ "agent": agent_addr.to_string(), "api": api_addr.to_string() }))])
        .map_err(|e| Failure::failed(e.to_string()))?;
    note_first_start(&server, &created)?;
    note_config_source(&server, fallback)?;
    rotation::apply_pending(&server);
    warn_if_unsigned(&settings.release.public_key_file());
    let _hardening = hardening::watch(server.clone());
    server
        .updates
        .set_key(crate::release::keys::trusted(&settings.release.public_key_file()).unwrap_or(None));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let limits = Arc::new(listeners::Limits::new(&settings.limits, descriptors));
    let grpc = tokio::spawn(listeners::serve_agent(
        agent_listener,
        server.clone(),
        grpc::AgentService { server: server.clone() },
        limits.clone(),
        stop_rx.clone(),
    ));
    let api = tokio::spawn(listeners::serve_admin(
        api_listener,
        server.clone(),
        admin::router(server.clone()),
        limits,
        stop_rx.clone(),
    ));
    let upkeep = tokio::spawn(upkeep(server.clone(), stop_rx.clone()));
    let sink_tasks = start_sinks(&server, sinks, &settings, stop_rx.clone());
    if let Some(l) = metrics_listener {
        tracing::info!(addr = %l.local_addr()?, "metrics on plain HTTP, loopback only");
        tokio::spawn(metrics::serve_plain(l, server.clone(), stop_rx.clone()));
    }
    if let Some(changes) = rotations {
        tokio::spawn(rotation::follow_watcher(server.clone(), changes, stop_rx));
    }
    tracing::info!(agent = %agent_addr, api = %api_addr, "listening agent={agent_addr} api={api_addr}");
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let _ = grpc.await;
        let _ = api.await;
        let _ = upkeep.await;
        for t in sink_tasks {
            let _ = t.await;
        }
    })
    .await;
    server.record_refusal_summaries(true).await;
    if let Err(e) = server.status.save(&server.db()) {
        tracing::warn!(error = %e, "could not save the check-in counts");
    }
    let _ = std::fs::remove_file(&server.paths.admin_token);
    server.close_database();
    Ok(())
}

/// Starts one delivery task per audit sink. Cursors are written through the server's
/// group-committing writer, like every other write of the running server.
fn start_sinks(
    server: &Arc<state::Server>,
    sinks: Vec<crate::integrations::dispatcher::Sink>,
    settings: &Settings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    if sinks.is_empty() {
        return Vec::new();
    }
    let writer = server.clone();
    let advance: crate::integrations::dispatcher::Advance = Arc::new(move |name, seq, now| {
        let writer = writer.clone();
        Box::pin(async move {
            writer
                .writes
                .write(move |c| crate::store::sink_cursors::advance(c, &name, seq, now).map(drop))
                .await
        })
    });
    // Checked at load, so the default only stands in for a value that cannot be there.
    let retry_max = std::time::Duration::from_secs(settings.integrations.retry_max_secs().unwrap_or(300));
    crate::integrations::dispatcher::start(sinks, server.paths.db.clone(), advance, retry_max, stop)
}

/// Set by `vigo quickstart` for the server it starts: stop when that parent is gone, even if it
/// was killed with SIGKILL and could not stop us itself.
pub const EXIT_WITH_PARENT_ENV: &str = "VIGO_EXIT_WITH_PARENT";

async fn wait_for_signal() {
    tokio::select! {
        _ = crate::util::interrupt::requested() => {}
        _ = parent_gone() => tracing::warn!("the process that started this server is gone"),
    }
}

/// Resolves once the parent changes (the kernel re-parents an orphan), when asked to by
/// `EXIT_WITH_PARENT_ENV`; never otherwise.
async fn parent_gone() {
    if std::env::var_os(EXIT_WITH_PARENT_ENV).is_none() {
        return std::future::pending().await;
    }
    let parent = nix::unistd::getppid();
    while nix::unistd::getppid() == parent {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
