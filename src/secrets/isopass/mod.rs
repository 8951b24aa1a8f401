//! The isopass backend: secret values from an HTTP secrets service (`api`), read through the
//! same `Provider` as the local vault.
//!
//! Reads are served from memory. The values are fetched by one worker thread: when the server
//! asks for keys it has not read yet (`prepare`, at start and before a config is validated),
//! when told a key changed (`refresh`), and every `poll_interval` for every key it holds (the
//! watcher). A poll that finds a different value sends the key on the rotation channel; the
//! server runs the same rotation as `vigocli secrets set`. A poll that fails keeps the values
//! already validated, retries with backoff and shows as a problem in health and doctor.

mod api;
pub mod token_file;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use api::{EntryValue, IsopassApi};

use super::watcher::{self, Digests, Schedule};
use super::{Provider, SecretsError};
use crate::crypto::SecretBytes;
use crate::placeholder::split_field;
use crate::settings::IsopassSettings;
use crate::util::https::{TrustRoots, SYSTEM_CA_BUNDLE};

/// Keys whose value changed at a poll, for the server to roll out.
pub type Rotations = tokio::sync::mpsc::UnboundedReceiver<Vec<String>>;

/// What the worker is asked to do; each request waits for its answer.
struct Fetch {
    names: Vec<String>,
    reply: mpsc::Sender<Result<(), String>>,
}

#[derive(Default)]
struct Health {
    /// Unix time of the last successful exchange.
    last_ok: Option<i64>,
    /// Since when, and why, the service has been failing (None: it answers).
    failing: Option<(i64, String)>,
    /// Entries referenced but gone from isopass at the last poll (they keep their last value).
    missing: Vec<String>,
}

pub struct Isopass {
    entries: RwLock<BTreeMap<String, EntryValue>>,
    /// Every entry name asked for so far: the watcher polls them all, so an entry created in
    /// isopass after the server asked for it (a web user's password) is found at the next poll.
    wanted: Mutex<BTreeSet<String>>,
    digests: Digests,
    health: Mutex<Health>,
    worker: Mutex<mpsc::Sender<Fetch>>,
}

/// The state the worker thread owns.
struct Worker {
    api: IsopassApi,
    shared: Arc<Isopass>,
    rotations: Option<tokio::sync::mpsc::UnboundedSender<Vec<String>>>,
    poll: Option<Duration>,
}

impl Isopass {
    /// Reads the token file, starts the worker and exchanges the token once: a refused token
    /// or an unreachable service stops the start here. With `watch`, polls for rotations and
    /// returns their channel.
    pub fn start(
        settings: &IsopassSettings,
        watch: bool,
    ) -> Result<(Arc<Isopass>, Option<Rotations>), String> {
        let bearer = token_file::read(&settings.token_file)?;
        let trust = match &settings.ca_file {
            Some(f) => {
                // A regular file only: a FIFO named here would hang the start.
                let pem = crate::util::fsutil::read_regular_text(std::path::Path::new(f), 1 << 20)
                    .map_err(|e| format!("secrets.ca_file {f}: {e}"))?;
                TrustRoots::Pem(pem)
            }
            None => TrustRoots::Bundle(SYSTEM_CA_BUNDLE.into()),
        };
        let mut api = IsopassApi::new(&settings.url, &trust, bearer, &settings.token_file)
            .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("isopass: cannot start its runtime: {e}"))?;
        runtime.block_on(api.check_token()).map_err(|e| e.to_string())?;
        let (requests, inbox) = mpsc::channel();
        let shared = Arc::new(Isopass {
            entries: RwLock::new(BTreeMap::new()),
            wanted: Mutex::new(BTreeSet::new()),
            digests: Digests::new().map_err(|e| e.to_string())?,
            health: Mutex::new(Health { last_ok: Some(crate::util::time::unix_now()), ..Health::default() }),
            worker: Mutex::new(requests),
        });
        let (rotations, receiver) = match watch && settings.watcher_enabled {
            true => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        let worker = Worker {
            api,
            shared: shared.clone(),
            rotations,
            poll: receiver.is_some().then(|| Duration::from_secs(settings.poll_secs)),
        };
        std::thread::Builder::new()
            .name("isopass".into())
            .spawn(move || worker.run(runtime, inbox))
            .map_err(|e| format!("isopass: cannot start its worker: {e}"))?;
        Ok((shared, receiver))
    }

    /// Asks the worker to fetch `names` and waits for it.
    fn fetch(&self, names: Vec<String>) -> Result<(), SecretsError> {
        if names.is_empty() {
            return Ok(());
        }
        self.wanted.lock().unwrap_or_else(|p| p.into_inner()).extend(names.iter().cloned());
        let (reply, answer) = mpsc::channel();
        let sent = self.worker.lock().unwrap_or_else(|p| p.into_inner()).send(Fetch { names, reply });
        sent.map_err(|_| SecretsError::Backend("isopass: the worker has stopped".into()))?;
        answer
            .recv()
            .map_err(|_| SecretsError::Backend("isopass: the worker has stopped".into()))?
            .map_err(SecretsError::Backend)
    }

    fn names_of<'a>(keys: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let names: BTreeSet<&str> = keys.into_iter().map(|k| split_field(k).0).collect();
        names.into_iter().map(str::to_string).collect()
    }

    /// Every held key's digest, under the names the config uses (`name#field` for fields).
    fn digests(&self) -> BTreeMap<String, String> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut out = BTreeMap::new();
        for (name, value) in entries.iter() {
            match value {
                EntryValue::Text(v) => {
                    out.insert(name.clone(), self.digests.of(v.expose()));
                }
                EntryValue::Fields(fields) => {
                    for (field, v) in fields {
                        out.insert(format!("{name}#{field}"), self.digests.of(v.expose()));
                    }
                }
            }
        }
        out
    }
}

impl Provider for Isopass {
    fn get(&self, key: &str) -> Result<SecretBytes, SecretsError> {
        crate::placeholder::validate_key(key)?;
        let (name, field) = split_field(key);
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(name).ok_or_else(|| SecretsError::NotFound { key: key.into() })?;
        match (entry, field) {
            (EntryValue::Text(v), None) => Ok(v.clone()),
            (EntryValue::Text(_), Some(_)) => Err(SecretsError::Backend(format!(
                "isopass entry {name:?} holds one value, not fields; refer to it as secret:{name}"
            ))),
            (EntryValue::Fields(fields), Some(f)) => fields.get(f).cloned().ok_or_else(|| {
                SecretsError::Backend(format!(
                    "isopass entry {name:?} has no field {f:?} (its fields: {})",
                    fields.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            }),
            (EntryValue::Fields(fields), None) => Err(SecretsError::Backend(format!(
                "isopass entry {name:?} is structured; name one of its fields: {}",
                fields.keys().map(|f| format!("secret:{name}#{f}")).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    fn version(&self, key: &str) -> Result<String, SecretsError> {
        self.get(key).map(|v| self.digests.of(v.expose()))
    }

    fn list(&self) -> Result<Vec<String>, SecretsError> {
        Ok(self.digests().into_keys().collect())
    }

    fn prepare(&self, keys: &BTreeSet<String>) -> Result<(), SecretsError> {
        let held = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let absent: Vec<&String> = keys.iter().filter(|k| !held.contains_key(split_field(k).0)).collect();
        let names = Self::names_of(absent);
        drop(held);
        self.fetch(names)
    }

    fn refresh(&self, keys: &BTreeSet<String>) -> Result<(), SecretsError> {
        self.fetch(Self::names_of(keys))
    }

    fn problem(&self) -> Option<String> {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let since = |t: i64| crate::util::time::rfc3339_millis(t * 1000);
        if let Some((at, why)) = &health.failing {
            let served = health.last_ok.map(since).unwrap_or_else(|| "start".into());
            return Some(format!(
                "isopass unreachable since {}: {why}; serving the values fetched at {served}, retrying",
                since(*at)
            ));
        }
        (!health.missing.is_empty()).then(|| {
            format!("isopass no longer has {}; their last values are still served", health.missing.join(", "))
        })
    }
}

impl Worker {
    fn run(mut self, runtime: tokio::runtime::Runtime, inbox: mpsc::Receiver<Fetch>) {
        let mut schedule = self.poll.map(Schedule::new);
        let mut next_poll = self.poll.map(|p| Instant::now() + p);
        loop {
            let wait = next_poll.map(|t| t.saturating_duration_since(Instant::now()));
            let request = match wait {
                Some(w) => inbox.recv_timeout(w),
                None => inbox.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match request {
                Ok(Fetch { names, reply }) => {
                    let outcome = runtime.block_on(self.fetch(&names, false));
                    let _ = reply.send(outcome);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let ok = runtime.block_on(self.poll()).is_ok();
                    let schedule = schedule.as_mut().expect("polls only with a schedule");
                    let wait = if ok { schedule.after_success() } else { schedule.after_failure() };
                    next_poll = Some(Instant::now() + wait);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Fetches `names` into the shared map and records how the exchange went.
    async fn fetch(&mut self, names: &[String], poll: bool) -> Result<(), String> {
        let outcome = self.api.search(names).await;
        let now = crate::util::time::unix_now();
        let mut health = self.shared.health.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(found) => {
                if poll {
                    let held = self.shared.entries.read().unwrap_or_else(|p| p.into_inner());
                    health.missing = held.keys().filter(|n| !found.contains_key(*n)).cloned().collect();
                }
                if health.failing.take().is_some() {
                    tracing::info!("isopass answers again");
                }
                health.last_ok = Some(now);
                drop(health);
                self.shared.entries.write().unwrap_or_else(|p| p.into_inner()).extend(found);
                Ok(())
            }
            Err(e) => {
                let e = e.to_string();
                if health.failing.is_none() {
                    health.failing = Some((now, e.clone()));
                } else if let Some((_, why)) = health.failing.as_mut() {
                    why.clone_from(&e);
                }
                Err(e)
            }
        }
    }

    /// The watcher: every wanted entry fetched again, changed values sent for rotation.
    async fn poll(&mut self) -> Result<(), String> {
        let before = self.shared.digests();
        let names: Vec<String> =
            self.shared.wanted.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        if names.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.fetch(&names, true).await {
            tracing::warn!(error = %e, "isopass poll failed; the values already fetched stay in use");
            return Err(e);
        }
        let changed = watcher::changed(&before, &self.shared.digests());
        if let Some(missing) = self.shared.problem() {
            tracing::warn!("{missing}");
        }
        if !changed.is_empty() {
            tracing::info!(keys = changed.len(), "isopass values changed");
            if let Some(tx) = &self.rotations {
                let _ = tx.send(changed);
            }
        }
        Ok(())
    }
}
