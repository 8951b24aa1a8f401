//! The server's shared state: database, secrets provider, CA, the published config and the
//! per-envoy bundle cache (compiled once per config epoch).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use prost::bytes::Bytes;
use rusqlite::Connection;

use crate::audit::{self, Event};
use crate::bundle::CompiledBundle;
use crate::config::ConfigTree;
use crate::paths::ServerPaths;
use crate::proto::v1 as pb;
use crate::secrets::Provider;
use crate::tlsconf::EnvoyCertVerifier;

/// What envoys whose compiled resources are identical share (real fleets are mostly made of
/// such groups): one copy per distinct bundle, not one per envoy.
pub struct SharedBundle {
    /// The resources as an encoded PolicyBundle without name or hash: about half the memory
    /// of the decoded message, and a decode from it shares the attribute blobs instead of
    /// copying them.
    encoded: Bytes,
    pub resource_count: usize,
    pub entitled: BTreeSet<String>,
    /// (resource name, watched keys) for rotation.
    pub watches: Vec<(String, Vec<String>)>,
}

/// One envoy's compiled bundle, ready to send.
pub struct EnvoyBundle {
    shared: Arc<SharedBundle>,
    pub envoy_name: String,
    /// The hash the agent checks; it covers the envoy's name, so it is the envoy's own.
    pub bundle_hash: String,
    pub config_epoch: u64,
}

impl std::ops::Deref for EnvoyBundle {
    type Target = SharedBundle;

    fn deref(&self) -> &SharedBundle {
        &self.shared
    }
}

/// One published config generation.
pub struct Published {
    pub tree: Option<ConfigTree>,
    /// Why the config directory was not used at start, when this is the last good tree
    /// served in its place (see `last_good`).
    pub fallback: Option<String>,
    pub content_hash: String,
    pub config_epoch: u64,
    /// Compiled bundles by envoy name and traits digest.
    cache: Mutex<HashMap<String, Arc<EnvoyBundle>>>,
    /// The distinct resource sets among them, by SHA-256 of their encoding.
    shared: Mutex<HashMap<[u8; 32], Arc<SharedBundle>>>,
}

pub use super::directory::EnvoyInfo;

pub struct Server {
    pub paths: ServerPaths,
    pub db: Mutex<Connection>,
    pub provider: Arc<dyn Provider>,
    pub verifier: Arc<EnvoyCertVerifier>,
    /// Certificates in force; replaced whole by a TLS reload.
    pki: RwLock<Arc<crate::pki::Pki>>,
    /// The listeners' TLS configurations, built from `pki`; each accept takes the current one.
    tls: RwLock<TlsConfigs>,
    pub config_dir: std::path::PathBuf,
    pub checkin_interval_secs: u32,
    pub client_cert_days: u32,
    /// A client certificate with fewer days than this left is renewed at check-in.
    pub client_cert_renew_days: u32,
    pub admin_token_hash: [u8; 32],
    pub secrets_epoch: AtomicU64,
    pub published: RwLock<Arc<Published>>,
    envoys: RwLock<super::directory::Directory>,
    /// Group-committed writes of the agent RPCs (its own connection; see writer.rs).
    pub writes: super::writer::WriteQueue,
    /// The CA bundle (hex SHA-256) each envoy last said it trusts, since this server started.
    trusted_bundles: Mutex<HashMap<String, String>>,
    /// Tamper signals and the binaries agents run (src/server/hardening.rs).
    pub hardening: super::hardening::Hardening,
    /// Releases offered to agents (src/server/updates.rs).
    pub updates: super::updates::Updates,
    /// Held while a publish loads and validates a tree: one at a time.
    pub publishing: tokio::sync::Mutex<()>,
    pub limits: crate::settings::LimitSettings,
    pub run_settings: crate::settings::RunSettings,
    pub auth: crate::settings::AuthSettings,
    /// Logins in progress and the failure throttle.
    pub logins: super::logins::LoginRuntime,
    /// How to reach the OIDC provider (its client secret resolved from the vault at start).
    pub oidc_settings: Option<crate::auth::oidc::OidcSettings>,
    /// The provider's client, discovered at the first OIDC login.
    pub oidc_client: tokio::sync::Mutex<Option<Arc<crate::auth::oidc::OidcClient>>>,
    /// Refusals anyone can provoke, counted per source or envoy (see refusals.rs).
    pub refusals: super::refusals::Refusals,
    pub report_rate: super::rate::RateBuckets,
    /// What the console shows about the server itself (check-ins per hour, last audit check…).
    pub status: super::status::Status,
    /// Counters and latencies for `/metrics`.
    pub metrics: super::metrics::ServerMetrics,
    /// Agents holding a push channel, to be told "check in now".
    pub nudges: super::nudges::Nudges,
    /// The audit sinks' delivery state, once they are started.
    sinks: std::sync::OnceLock<Arc<crate::integrations::Board>>,
}

#[derive(Clone)]
pub struct TlsConfigs {
    pub agent: Arc<rustls::ServerConfig>,
    pub admin: Arc<rustls::ServerConfig>,
}

impl TlsConfigs {
    fn build(
        pki: &crate::pki::Pki,
        verifier: &Arc<EnvoyCertVerifier>,
        ticketer: Option<Arc<dyn rustls::server::ProducesTickets>>,
    ) -> Result<TlsConfigs, String> {
        let (cert, key) = (&pki.server.cert_pem, pki.server.key_pem.expose());
        let agent =
            crate::tlsconf::agent_listener_config(cert, key, &pki.bundle_pem, verifier.clone(), ticketer)?;
        let admin = crate::tlsconf::admin_listener_config(cert, key, &pki.bundle_pem)?;
        Ok(TlsConfigs { agent: Arc::new(agent), admin: Arc::new(admin) })
    }
}

pub struct ServerParts {
    pub paths: ServerPaths,
    pub db: Connection,
    pub provider: Arc<dyn Provider>,
    pub pki: crate::pki::Pki,
    pub config_dir: std::path::PathBuf,
    pub checkin_interval_secs: u32,
    pub client_cert_days: u32,
    pub client_cert_renew_days: u32,
    pub admin_token_hash: [u8; 32],
    pub tree: Option<ConfigTree>,
    /// Set when `tree` is the last good one, not the config directory's: why.
    pub fallback: Option<String>,
    pub limits: crate::settings::LimitSettings,
    pub run_settings: crate::settings::RunSettings,
    pub auth: crate::settings::AuthSettings,
    pub oidc_settings: Option<crate::auth::oidc::OidcSettings>,
}

/// How long refusals are counted together before they are summarised (see refusals.rs).
pub const REFUSAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

fn read_counter(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    crate::store::counters::read(conn, key)
}

fn write_counter(conn: &Connection, key: &str, value: u64) -> rusqlite::Result<()> {
    crate::store::counters::write(conn, key, value)
}

impl Server {
    /// Builds the state; every start is a reload, so both epochs advance past what agents saw.
    pub fn new(parts: ServerParts) -> Result<Server, String> {
        let conn = parts.db;
        let step = |k: &str| -> Result<u64, String> {
            let next = read_counter(&conn, k).map_err(|e| e.to_string())? + 1;
            write_counter(&conn, k, next).map_err(|e| e.to_string())?;
            Ok(next)
        };
        let config_epoch = step("config_epoch")?;
        let secrets_epoch = step("secrets_epoch")?;
        let envoys = super::directory::Directory::new(
            crate::store::envoys::load_identities(&conn).map_err(|e| e.to_string())?,
        );
        let verifier = Arc::new(EnvoyCertVerifier::new(&parts.pki.bundle_pem)?);
        let tls = TlsConfigs::build(&parts.pki, &verifier, None)?;
        let content_hash = parts.tree.as_ref().map(|t| t.content_hash()).unwrap_or_default();
        let writer_conn = crate::store::open(&parts.paths.db).map_err(|e| e.to_string())?;
        let writes = super::writer::WriteQueue::start(writer_conn).map_err(|e| e.to_string())?;
        let status = super::status::Status::new(&conn, crate::util::time::unix_now());
        Ok(Server {
            paths: parts.paths,
            db: Mutex::new(conn),
            provider: parts.provider,
            verifier,
            pki: RwLock::new(Arc::new(parts.pki)),
            tls: RwLock::new(tls),
            config_dir: parts.config_dir,
            checkin_interval_secs: parts.checkin_interval_secs,
            client_cert_days: parts.client_cert_days,
            client_cert_renew_days: parts.client_cert_renew_days,
            admin_token_hash: parts.admin_token_hash,
            secrets_epoch: AtomicU64::new(secrets_epoch),
            published: RwLock::new(Arc::new(Published {
                tree: parts.tree,
                fallback: parts.fallback,
                content_hash,
                config_epoch,
                cache: Mutex::new(HashMap::new()),
                shared: Mutex::new(HashMap::new()),
            })),
            envoys: RwLock::new(envoys),
            writes,
            publishing: tokio::sync::Mutex::new(()),
            trusted_bundles: Mutex::new(HashMap::new()),
            hardening: Default::default(),
            updates: Default::default(),
            report_rate: super::rate::RateBuckets::per_hour(
                parts.run_settings.reports_per_hour,
                (parts.run_settings.reports_per_hour / 6).max(10),
            ),
            limits: parts.limits,
            run_settings: parts.run_settings,
            logins: super::logins::LoginRuntime::new(&parts.auth)?,
            auth: parts.auth,
            oidc_settings: parts.oidc_settings,
            oidc_client: tokio::sync::Mutex::new(None),
            refusals: super::refusals::Refusals::new(REFUSAL_WINDOW),
            status,
            metrics: Default::default(),
            nudges: Default::default(),
            sinks: std::sync::OnceLock::new(),
        })
    }

    /// Closes both database connections at shutdown (queued writes finish first), so SQLite
    /// checkpoints and removes the WAL. Any later database use fails.
    pub fn close_database(&self) {
        self.writes.stop();
        if let Ok(memory) = Connection::open_in_memory() {
            drop(std::mem::replace(&mut *self.db(), memory));
        }
    }

    /// Hands the audit sinks' board to health and metrics (once, at start).
    pub fn set_sink_board(&self, board: Arc<crate::integrations::Board>) {
        let _ = self.sinks.set(board);
    }

    pub fn sink_board(&self) -> Option<&Arc<crate::integrations::Board>> {
        self.sinks.get()
    }

    pub fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends audit rows in their own transaction.
    pub fn audit(&self, events: &[Event<'_>]) -> Result<(), audit::AuditError> {
        audit::append_all(&mut self.db(), events).map(|_| ())
    }

    pub fn envoy(&self, id: &str) -> Option<EnvoyInfo> {
        self.envoys.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// The id of the enrolled, unrevoked envoy whose key the certificate `cert` holds. The
    /// agent listener asks this after the handshake: a CA-issued certificate alone (it may be
    /// a revoked envoy's) does not make a connection an envoy's.
    pub fn current_envoy_of(&self, cert: &[u8]) -> Option<String> {
        let key = crate::crypto::x509::ed25519_key_in_cert(cert)?;
        let envoys = self.envoys.read().unwrap_or_else(|p| p.into_inner());
        envoys.current_with_key(&key).map(str::to_string)
    }

    /// Whether the envoy `id` is enrolled and not revoked.
    pub fn is_current_envoy(&self, id: &str) -> bool {
        self.envoys.read().unwrap_or_else(|p| p.into_inner()).get(id).is_some_and(|e| !e.revoked)
    }

    pub fn remember_envoy(&self, info: EnvoyInfo) {
        self.envoys.write().unwrap_or_else(|p| p.into_inner()).remember(info);
    }

    pub fn active_envoys(&self) -> Vec<EnvoyInfo> {
        self.envoys.read().unwrap_or_else(|p| p.into_inner()).all().filter(|e| !e.revoked).cloned().collect()
    }

    pub fn pki(&self) -> Arc<crate::pki::Pki> {
        self.pki.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn tls(&self) -> TlsConfigs {
        self.tls.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads `<base>/tls` again and puts it in force for new connections: the server
    /// certificate, the CAs trusted for client certificates and sent to agents. Session tickets
    /// stay valid. Nothing changes if anything fails to load.
    pub fn reload_tls(&self) -> Result<(), String> {
        let pki = crate::pki::Pki::load(&self.paths)?;
        let ticketer = self.tls().agent.ticketer.clone();
        let tls = TlsConfigs::build(&pki, &self.verifier, Some(ticketer))?;
        self.verifier.set_trusted(&pki.bundle_pem)?;
        *self.pki.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pki);
        *self.tls.write().unwrap_or_else(|p| p.into_inner()) = tls;
        Ok(())
    }

    /// Notes which CA bundle an envoy trusts (as it said at check-in).
    pub fn note_trusted_bundle(&self, envoy_id: &str, sha256: &str) {
        // Kept in memory per envoy: only what a SHA-256 in hex looks like, never a big string.
        let sha256 =
            if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) { sha256 } else { "" };
        let mut map = self.trusted_bundles.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(envoy_id).map(String::as_str) != Some(sha256) {
            map.insert(envoy_id.to_string(), sha256.to_string());
        }
    }

    pub fn trusted_bundle(&self, envoy_id: &str) -> Option<String> {
        self.trusted_bundles.lock().unwrap_or_else(|p| p.into_inner()).get(envoy_id).cloned()
    }

    /// Whether the envoy's client certificate should be renewed now: near its end, from a CA
    /// being retired, or not on record.
    pub fn needs_renewal(&self, envoy: &EnvoyInfo, pki: &crate::pki::Pki) -> bool {
        let Some(cert) = &envoy.cert else { return true };
        let window = i64::from(self.client_cert_renew_days) * 86_400;
        cert.not_after - crate::util::time::unix_now() < window || cert.ca_pin != pki.ca_pin_hex()
    }

    /// Issues a client certificate for `public_key` from the active CA; returns it with the
    /// record the database keeps of it.
    pub fn issue_client_cert(
        &self,
        public_key: &[u8],
        envoy_id: &str,
    ) -> Result<(String, crate::store::envoys::IssuedCert), String> {
        let pki = self.pki();
        let pem =
            crate::crypto::x509::issue_client_cert(&pki.ca, public_key, envoy_id, self.client_cert_days)
                .map_err(|e| e.to_string())?;
        let der = crate::crypto::x509::certs_from_pem(&pem).map_err(|e| e.to_string())?;
        let not_after = crate::crypto::x509::not_after(&der[0]).map_err(|e| e.to_string())?;
        Ok((pem, crate::store::envoys::IssuedCert { not_after, ca_pin: pki.ca_pin_hex() }))
    }

    /// Writes the summaries of ended refusal windows (all of them when `all`, at shutdown).
    pub async fn record_refusal_summaries(&self, all: bool) {
        let summaries = self.refusals.take_ended(all);
        if summaries.is_empty() {
            return;
        }
        let written = self
            .writes
            .write(move |c| {
                let events: Vec<Event<'_>> = summaries
                    .iter()
                    .map(|s| Event::new("server", s.action, &s.key).detail(s.detail()))
                    .collect();
                audit::append_in(c, &events).map(drop)
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record the summary of refused requests");
        }
    }

    pub fn current(&self) -> Arc<Published> {
        self.published.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn secrets_epoch(&self) -> u64 {
        self.secrets_epoch.load(Ordering::SeqCst)
    }

    /// The next secrets epoch, persisted in the caller's transaction. It takes effect for
    /// agents only through `secrets_epoch_committed`, once that transaction has committed.
    pub fn next_secrets_epoch(&self, conn: &Connection) -> rusqlite::Result<u64> {
        let next = read_counter(conn, "secrets_epoch")?.max(self.secrets_epoch()) + 1;
        write_counter(conn, "secrets_epoch", next)?;
        Ok(next)
    }

    pub fn secrets_epoch_committed(&self, epoch: u64) {
        self.secrets_epoch.fetch_max(epoch, Ordering::SeqCst);
    }

    pub fn next_config_epoch(&self, conn: &Connection) -> rusqlite::Result<u64> {
        let config_epoch = read_counter(conn, "config_epoch")? + 1;
        write_counter(conn, "config_epoch", config_epoch)?;
        Ok(config_epoch)
    }

    /// Swaps in a newly validated config; the old generation keeps serving until this returns.
    pub fn install(&self, tree: ConfigTree, config_epoch: u64) {
        let next = Arc::new(Published {
            content_hash: tree.content_hash(),
            tree: Some(tree),
            fallback: None,
            config_epoch,
            cache: Mutex::new(HashMap::new()),
            shared: Mutex::new(HashMap::new()),
        });
        *self.published.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// The envoy's bundle for the current config generation, compiled at most once per set of
    /// traits. Only a tree that reads traits (`.Traits`, an entry's `traits:`) looks them up:
    /// the ones stored from the envoy's last check-in, so a check-in and the ResolveSecrets
    /// after it see the same bundle and the same entitlement.
    pub fn bundle_for(&self, envoy_id: &str, envoy_name: &str) -> Result<Arc<EnvoyBundle>, String> {
        let published = self.current();
        let uses_traits = published.tree.as_ref().is_some_and(|t| t.uses_traits());
        let digest = match uses_traits {
            true => crate::store::traits::digest(&self.db(), envoy_id).map_err(|e| e.to_string())?,
            false => None,
        };
        let key = format!("{envoy_name}\0{}", digest.as_deref().unwrap_or_default());
        if let Some(b) = published.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(b.clone());
        }
        let traits: Option<serde_json::Value> = match digest {
            Some(_) => crate::store::traits::get_json(&self.db(), envoy_id)
                .map_err(|e| e.to_string())?
                .map(|(traits, _)| traits)
                .filter(|t| !t.is_null()),
            None => None,
        };
        let compiled = match &published.tree {
            Some(tree) => tree
                .compile_with_traits(envoy_name, traits.as_ref(), self.provider.as_ref())
                .map_err(|errs| errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))?,
            None => CompiledBundle { envoy_name: envoy_name.to_string(), resources: vec![] },
        };
        let built = Arc::new(published.envoy_bundle(&compiled)?);
        let mut cache = published.cache.lock().unwrap_or_else(|p| p.into_inner());
        // An envoy's bundle under traits it no longer has is never asked for again.
        if uses_traits {
            let prefix = format!("{envoy_name}\0");
            cache.retain(|k, _| !k.starts_with(&prefix));
        }
        cache.insert(key, built.clone());
        Ok(built)
    }
}

impl EnvoyBundle {
    /// A fresh message to fill in and send (the per-request fields are left at their defaults).
    pub fn message(&self) -> Result<pb::PolicyBundle, String> {
        let mut m = <pb::PolicyBundle as prost::Message>::decode(self.shared.encoded.clone())
            .map_err(|e| format!("cached bundle: {e}"))?;
        m.envoy_name = self.envoy_name.clone();
        m.bundle_hash = self.bundle_hash.clone();
        m.config_epoch = self.config_epoch;
        Ok(m)
    }

    /// The message for an envoy that holds this bundle already (its check-in named the hash):
    /// everything but the resources, which it applies from its own copy.
    pub fn message_without_resources(&self) -> pb::PolicyBundle {
        pb::PolicyBundle {
            envoy_name: self.envoy_name.clone(),
            bundle_hash: self.bundle_hash.clone(),
            config_epoch: self.config_epoch,
            resources_omitted: true,
            ..Default::default()
        }
    }
}

impl Published {
    /// The envoy's bundle, its resources shared with every envoy compiled to the same ones.
    fn envoy_bundle(&self, compiled: &CompiledBundle) -> Result<EnvoyBundle, String> {
        let resources: Vec<pb::Resource> = compiled
            .resources
            .iter()
            .map(|r| pb::Resource {
                name: r.name.clone(),
                r#type: r.rtype.clone(),
                attributes_json: Bytes::from(serde_json::Value::Object(r.attributes.clone()).to_string()),
                depends_on: r.depends_on.clone(),
                notify: r.notify.clone(),
                watch_secret: r.watch_secret.clone(),
                when: r.when.clone().unwrap_or_default(),
            })
            .collect();
        let encoded = prost::Message::encode_to_vec(&pb::PolicyBundle { resources, ..Default::default() });
        let key = crate::crypto::sha256(&encoded);
        let known = self.shared.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        let shared = match known {
            Some(s) => s,
            None => {
                let built = Arc::new(SharedBundle {
                    encoded: Bytes::from(encoded),
                    resource_count: compiled.resources.len(),
                    entitled: compiled.entitled_keys().map_err(|e| e.to_string())?,
                    watches: compiled
                        .resources
                        .iter()
                        .filter(|r| !r.watch_secret.is_empty())
                        .map(|r| (r.name.clone(), r.watch_secret.clone()))
                        .collect(),
                });
                let mut table = self.shared.lock().unwrap_or_else(|p| p.into_inner());
                table.entry(key).or_insert(built).clone()
            }
        };
        Ok(EnvoyBundle {
            shared,
            envoy_name: compiled.envoy_name.clone(),
            bundle_hash: compiled.hash(),
            config_epoch: self.config_epoch,
        })
    }
}

/// A server over a temporary directory, for unit tests of the handlers.
#[cfg(test)]
pub fn test_server(tag: &str) -> (std::path::PathBuf, Arc<Server>) {
    test_server_with(tag, crate::secrets::MemoryProvider::new(), Default::default())
}

/// As `test_server`, with these secrets and `auth:` settings.
#[cfg(test)]
pub fn test_server_with(
    tag: &str,
    secrets: crate::secrets::MemoryProvider,
    auth: crate::settings::AuthSettings,
) -> (std::path::PathBuf, Arc<Server>) {
    let dir = std::env::temp_dir().join(format!("vigo-server-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let paths = ServerPaths::new(&dir);
    let ca = crate::crypto::x509::generate_ca(30).unwrap();
    let server_cert = crate::crypto::x509::generate_server_cert(&ca, &["localhost".into()], 30).unwrap();
    std::fs::create_dir_all(&paths.tls_dir).unwrap();
    for (path, text, mode) in [
        (paths.ca_cert(), ca.cert_pem.as_str(), 0o644),
        (paths.ca_key(), ca.key_pem.expose(), 0o600),
        (paths.server_cert(), server_cert.cert_pem.as_str(), 0o644),
        (paths.server_key(), server_cert.key_pem.expose(), 0o600),
    ] {
        crate::util::fsutil::atomic_write(&path, text.as_bytes(), mode).unwrap();
    }
    let server = Server::new(ServerParts {
        db: crate::store::open(&paths.db).unwrap(),
        pki: crate::pki::Pki::load(&paths).unwrap(),
        paths,
        provider: Arc::new(secrets),
        config_dir: dir.join("config"),
        checkin_interval_secs: 300,
        client_cert_days: 30,
        client_cert_renew_days: 10,
        admin_token_hash: crate::crypto::sha256(b"vgla_test"),
        tree: None,
        fallback: None,
        limits: Default::default(),
        run_settings: Default::default(),
        auth,
        oidc_settings: None,
    })
    .unwrap();
    (dir, Arc::new(server))
}

#[cfg(test)]
mod tests {
    /// What an envoy says about its CA bundle is kept in memory only when it looks like what it
    /// should be, a SHA-256 in hex: never a big string of the envoy's choosing.
    #[test]
    fn a_trusted_bundle_is_noted_only_as_a_sha256() {
        let (dir, s) = super::test_server("trusted-bundle");
        let good = "ab".repeat(32);
        s.note_trusted_bundle("e1", &good);
        assert_eq!(s.trusted_bundle("e1").as_deref(), Some(good.as_str()));
        s.note_trusted_bundle("e1", &"x".repeat(4 << 20));
        assert_eq!(s.trusted_bundle("e1").as_deref(), Some(""), "not kept, and the old one dropped");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Envoys compiled to the same resources share one copy of them; each keeps its own name
    /// and hash, and a different bundle gets its own copy.
    #[test]
    fn identical_bundles_are_kept_once_and_sent_under_each_envoys_name() {
        let (dir, s) = super::test_server("shared-bundles");
        let config = dir.join("config");
        std::fs::create_dir_all(config.join("modules")).unwrap();
        let nodes = "envoys:\n  - match: \"web*\"\n    roles: [web]\n  - match: db1\n    roles: [db]\n";
        std::fs::write(config.join("nodes.vgo"), nodes).unwrap();
        let file = |c: &str| {
            format!("resources:\n  - {{name: f, type: file, target_path: /etc/f, content: \"{c}\"}}\n")
        };
        std::fs::write(config.join("modules/web.vgo"), file("same")).unwrap();
        std::fs::write(config.join("modules/db.vgo"), file("other")).unwrap();
        s.install(crate::config::load_tree(&config).unwrap(), 2);
        let (a, b, c) = (
            s.bundle_for("i1", "web1").unwrap(),
            s.bundle_for("i2", "web2").unwrap(),
            s.bundle_for("i3", "db1").unwrap(),
        );
        assert!(std::sync::Arc::ptr_eq(&a.shared, &b.shared), "web1 and web2 share their resources");
        assert!(!std::sync::Arc::ptr_eq(&a.shared, &c.shared), "db1's differ");
        assert_ne!(a.bundle_hash, b.bundle_hash, "each envoy's hash covers its name");
        let (ma, mb) = (a.message().unwrap(), b.message().unwrap());
        assert_eq!((ma.envoy_name.as_str(), mb.envoy_name.as_str()), ("web1", "web2"));
        assert_eq!(ma.bundle_hash, a.bundle_hash);
        assert_eq!((ma.resources.len(), ma.config_epoch), (1, 2));
        assert_eq!(ma.resources, mb.resources);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
