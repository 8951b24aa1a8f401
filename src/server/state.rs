//! The server's shared state: database, secrets provider, CA, the published config and the
//! per-envoy bundle cache (compiled once per config epoch).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use prost::bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};

use crate::audit::{self, Event};
use crate::bundle::CompiledBundle;
use crate::config::ConfigTree;
use crate::crypto::SecretString;
use crate::paths::ServerPaths;
use crate::proto::v1 as pb;
use crate::secrets::Provider;
use crate::tlsconf::EnvoyCertVerifier;

/// A compiled bundle ready to send, with what the server needs to know about it.
pub struct EnvoyBundle {
    /// The bundle as encoded protobuf: about half the memory of the decoded message, and a
    /// decode from it shares the attribute blobs instead of copying them.
    encoded: Bytes,
    pub bundle_hash: String,
    pub resource_count: usize,
    pub entitled: BTreeSet<String>,
    /// (resource name, watched keys) for rotation.
    pub watches: Vec<(String, Vec<String>)>,
}

/// One published config generation.
pub struct Published {
    pub tree: Option<ConfigTree>,
    /// Served because the config directory did not load at start (see `last_good`).
    pub from_last_good: bool,
    pub content_hash: String,
    pub config_epoch: u64,
    cache: Mutex<HashMap<String, Arc<EnvoyBundle>>>,
}

#[derive(Clone, Debug)]
pub struct EnvoyInfo {
    pub id: String,
    pub name: String,
    pub public_key: Vec<u8>,
    pub revoked: bool,
}

pub struct Server {
    pub paths: ServerPaths,
    pub db: Mutex<Connection>,
    pub provider: Arc<dyn Provider>,
    pub verifier: Arc<EnvoyCertVerifier>,
    pub ca_cert_pem: String,
    pub ca_key_pem: SecretString,
    pub ca_pin: [u8; 32],
    pub config_dir: std::path::PathBuf,
    pub checkin_interval_secs: u32,
    pub client_cert_days: u32,
    pub admin_token_hash: [u8; 32],
    pub secrets_epoch: AtomicU64,
    pub published: RwLock<Arc<Published>>,
    envoys: RwLock<HashMap<String, EnvoyInfo>>,
    /// Group-committed writes of the agent RPCs (its own connection; see writer.rs).
    pub writes: super::writer::WriteQueue,
}

pub struct ServerParts {
    pub paths: ServerPaths,
    pub db: Connection,
    pub provider: Arc<dyn Provider>,
    pub verifier: Arc<EnvoyCertVerifier>,
    pub ca_cert_pem: String,
    pub ca_key_pem: SecretString,
    pub config_dir: std::path::PathBuf,
    pub checkin_interval_secs: u32,
    pub client_cert_days: u32,
    pub admin_token_hash: [u8; 32],
    pub tree: Option<ConfigTree>,
    pub tree_from_last_good: bool,
}

fn read_counter(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    let v: Option<String> =
        conn.query_row("SELECT value FROM server_state WHERE key = ?1", [key], |r| r.get(0)).optional()?;
    Ok(v.and_then(|s| s.parse().ok()).unwrap_or(0))
}

fn write_counter(conn: &Connection, key: &str, value: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO server_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value.to_string()],
    )?;
    Ok(())
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
        let envoys = load_envoys(&conn).map_err(|e| e.to_string())?;
        let ca_pin = crate::tlsconf::pem_cert_pin(&parts.ca_cert_pem)?;
        let content_hash = parts.tree.as_ref().map(|t| t.content_hash()).unwrap_or_default();
        let writer_conn = crate::store::open(&parts.paths.db).map_err(|e| e.to_string())?;
        let writes = super::writer::WriteQueue::start(writer_conn).map_err(|e| e.to_string())?;
        Ok(Server {
            paths: parts.paths,
            db: Mutex::new(conn),
            provider: parts.provider,
            verifier: parts.verifier,
            ca_cert_pem: parts.ca_cert_pem,
            ca_key_pem: parts.ca_key_pem,
            ca_pin,
            config_dir: parts.config_dir,
            checkin_interval_secs: parts.checkin_interval_secs,
            client_cert_days: parts.client_cert_days,
            admin_token_hash: parts.admin_token_hash,
            secrets_epoch: AtomicU64::new(secrets_epoch),
            published: RwLock::new(Arc::new(Published {
                tree: parts.tree,
                from_last_good: parts.tree_from_last_good,
                content_hash,
                config_epoch,
                cache: Mutex::new(HashMap::new()),
            })),
            envoys: RwLock::new(envoys),
            writes,
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

    pub fn remember_envoy(&self, info: EnvoyInfo) {
        self.envoys.write().unwrap_or_else(|p| p.into_inner()).insert(info.id.clone(), info);
    }

    pub fn active_envoys(&self) -> Vec<EnvoyInfo> {
        self.envoys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| !e.revoked)
            .cloned()
            .collect()
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
            from_last_good: false,
            config_epoch,
            cache: Mutex::new(HashMap::new()),
        });
        *self.published.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// The envoy's bundle for the current config generation, compiled at most once.
    pub fn bundle_for(&self, envoy_name: &str) -> Result<Arc<EnvoyBundle>, String> {
        let published = self.current();
        if let Some(b) = published.cache.lock().unwrap_or_else(|p| p.into_inner()).get(envoy_name) {
            return Ok(b.clone());
        }
        let compiled = match &published.tree {
            Some(tree) => tree
                .compile(envoy_name, self.provider.as_ref())
                .map_err(|errs| errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))?,
            None => CompiledBundle { envoy_name: envoy_name.to_string(), resources: vec![] },
        };
        let built = Arc::new(to_envoy_bundle(&compiled, published.config_epoch)?);
        published
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(envoy_name.to_string(), built.clone());
        Ok(built)
    }
}

impl EnvoyBundle {
    /// A fresh message to fill in and send (the per-request fields are left at their defaults).
    pub fn message(&self) -> Result<pb::PolicyBundle, String> {
        <pb::PolicyBundle as prost::Message>::decode(self.encoded.clone())
            .map_err(|e| format!("cached bundle: {e}"))
    }
}

fn to_envoy_bundle(compiled: &CompiledBundle, config_epoch: u64) -> Result<EnvoyBundle, String> {
    let entitled = compiled.entitled_keys().map_err(|e| e.to_string())?;
    let resources = compiled
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
    let watches = compiled
        .resources
        .iter()
        .filter(|r| !r.watch_secret.is_empty())
        .map(|r| (r.name.clone(), r.watch_secret.clone()))
        .collect();
    let bundle_hash = compiled.hash();
    let proto = pb::PolicyBundle {
        envoy_name: compiled.envoy_name.clone(),
        bundle_hash: bundle_hash.clone(),
        secrets_epoch: 0,
        config_epoch,
        resources,
        triggered: vec![],
        force_apply: false,
    };
    Ok(EnvoyBundle {
        encoded: Bytes::from(prost::Message::encode_to_vec(&proto)),
        bundle_hash,
        resource_count: compiled.resources.len(),
        entitled,
        watches,
    })
}

fn load_envoys(conn: &Connection) -> rusqlite::Result<HashMap<String, EnvoyInfo>> {
    let mut stmt = conn.prepare("SELECT id, name, public_key, revoked_at IS NOT NULL FROM envoys")?;
    let rows = stmt.query_map([], |r| {
        Ok(EnvoyInfo { id: r.get(0)?, name: r.get(1)?, public_key: r.get(2)?, revoked: r.get(3)? })
    })?;
    rows.map(|r| r.map(|e| (e.id.clone(), e))).collect()
}
