//! Where state lives. Every path derives from one base directory (`--base-dir`, else
//! `VIGO_BASE_DIR`, else the role's default), so tests and the quickstart run unprivileged.

use std::path::{Path, PathBuf};

pub const SERVER_DEFAULT_BASE: &str = "/srv/vigo";
pub const AGENT_DEFAULT_BASE: &str = "/var/lib/vigo";

pub fn base_dir(flag: Option<&str>, default: &str) -> PathBuf {
    flag.map(PathBuf::from)
        .or_else(|| std::env::var_os("VIGO_BASE_DIR").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The server host's files (also what `vigocli` reads on that host).
#[derive(Clone, Debug)]
pub struct ServerPaths {
    pub base: PathBuf,
    pub secrets_dir: PathBuf,
    pub key_file: PathBuf,
    pub verifier: PathBuf,
    pub sentinel: PathBuf,
    pub tls_dir: PathBuf,
    pub config_dir: PathBuf,
    pub db: PathBuf,
    pub admin_token: PathBuf,
    /// Published agent binaries, by SHA-256 (`vigocli release publish`).
    pub releases_dir: PathBuf,
    /// Held by the running vigosrv: one server per base directory.
    pub server_lock: PathBuf,
}

impl ServerPaths {
    pub fn new(base: &Path) -> Self {
        let secrets_dir = base.join("secrets");
        ServerPaths {
            base: base.to_path_buf(),
            key_file: secrets_dir.join(".master.key"),
            secrets_dir,
            verifier: base.join("secrets-verifier.json"),
            sentinel: base.join(".secrets-unlocked"),
            tls_dir: base.join("tls"),
            config_dir: base.join("config"),
            db: base.join("vigo.db"),
            admin_token: base.join("local-admin.token"),
            releases_dir: base.join("releases"),
            server_lock: base.join("vigosrv.lock"),
        }
    }

    /// Applies `--secrets-dir` / `--key-file`; the key file follows the secrets dir unless given.
    pub fn with_overrides(mut self, secrets_dir: Option<&str>, key_file: Option<&str>) -> Self {
        if let Some(d) = secrets_dir {
            self.secrets_dir = PathBuf::from(d);
            self.key_file = self.secrets_dir.join(".master.key");
        }
        if let Some(k) = key_file {
            self.key_file = PathBuf::from(k);
        }
        self
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.tls_dir.join("ca")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.tls_dir.join("ca_key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.tls_dir.join("cert")
    }
    pub fn server_key(&self) -> PathBuf {
        self.tls_dir.join("key")
    }
    /// During a CA rollover: the CA agents are learning to trust, before the switch.
    pub fn ca_next(&self) -> PathBuf {
        self.tls_dir.join("ca.next")
    }
    pub fn ca_key_next(&self) -> PathBuf {
        self.tls_dir.join("ca_key.next")
    }
    /// After the switch: the old CA, trusted until every envoy has renewed under the new one.
    pub fn ca_prev(&self) -> PathBuf {
        self.tls_dir.join("ca.prev")
    }
}

/// The agent host's files.
#[derive(Clone, Debug)]
pub struct AgentPaths {
    pub base: PathBuf,
    pub identity: PathBuf,
    pub client_cert: PathBuf,
    pub ca_cert: PathBuf,
    pub state: PathBuf,
    pub db: PathBuf,
    pub guardrails: PathBuf,
    pub lock: PathBuf,
    /// The server address from the config file, used instead of the one in `agent.json`.
    pub server_override: Option<String>,
    /// The release public key file (the config file's `release.public_key_file`).
    pub release_key_file: PathBuf,
    /// Whether `vigo-agent run` holds the push channel (the config file's `agent.push`).
    pub push: bool,
    /// The config file's `agent.offline_max_age`, in seconds.
    pub offline_max_age_secs: i64,
}

impl AgentPaths {
    pub fn new(base: &Path) -> Self {
        AgentPaths {
            base: base.to_path_buf(),
            identity: base.join("identity.key"),
            client_cert: base.join("client.crt"),
            ca_cert: base.join("ca.crt"),
            state: base.join("agent.json"),
            db: base.join("agent.db"),
            guardrails: base.join("guardrails.yaml"),
            lock: base.join("run.lock"),
            server_override: None,
            push: true,
            offline_max_age_secs: crate::settings::DEFAULT_OFFLINE_MAX_AGE_SECS,
            release_key_file: PathBuf::from(crate::release::keys::DEFAULT_PUBLIC_KEY_FILE),
        }
    }
}
