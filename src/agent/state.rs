//! The agent's identity and small persistent state under its base dir: the Ed25519 key (0600),
//! the issued client certificate, the pinned CA, and `agent.json` (ids, server, last sequence).

use serde::{Deserialize, Serialize};

use crate::crypto::{self, x509, Ed25519Identity};
use crate::exit::Failure;
use crate::paths::AgentPaths;
use crate::util::fsutil;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentState {
    pub envoy_id: String,
    pub envoy_name: String,
    pub server: String,
    /// Highest request sequence used; the next one is always larger (the server refuses replays).
    pub last_seq: u64,
    pub checkin_interval_secs: u32,
}

impl AgentState {
    pub fn load(paths: &AgentPaths) -> Result<AgentState, Failure> {
        let text = std::fs::read_to_string(&paths.state).map_err(|_| {
            Failure::failed(format!(
                "this agent is not enrolled ({} is missing); run `vigo-agent enroll` first",
                paths.state.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::failed(format!("{} is damaged: {e}", paths.state.display())))
    }

    pub fn save(&self, paths: &AgentPaths) -> Result<(), Failure> {
        let body = serde_json::to_vec_pretty(self).map_err(|e| Failure::failed(e.to_string()))?;
        fsutil::atomic_write(&paths.state, &body, 0o600).map_err(Failure::from)
    }

    /// The next request sequence: above the last one, and above the clock in microseconds so a
    /// lost state file cannot make the agent reuse old numbers.
    pub fn next_sequence(&mut self) -> u64 {
        let now_us = (crate::util::time::unix_now_millis().max(0) as u64) * 1000;
        self.last_seq = (self.last_seq + 1).max(now_us);
        self.last_seq
    }
}

pub fn save_identity(paths: &AgentPaths, id: &Ed25519Identity) -> Result<(), Failure> {
    let pem = x509::private_key_pem(id.pkcs8_der());
    fsutil::atomic_write(&paths.identity, pem.expose().as_bytes(), 0o600).map_err(Failure::from)
}

pub fn load_identity(paths: &AgentPaths) -> Result<Ed25519Identity, Failure> {
    fsutil::check_private(&paths.identity)
        .map_err(|e| Failure::failed(format!("refusing the identity key: {e}")))?;
    let pem = crypto::SecretString::new(
        std::fs::read_to_string(&paths.identity)
            .map_err(|e| Failure::failed(format!("{}: {e}", paths.identity.display())))?,
    );
    // A damaged key cannot be repaired, only replaced: say so rather than quote a parser.
    let damaged = |why: &str| {
        Failure::failed(format!(
            "the identity key {} is damaged ({why}); restore it from a backup, or enroll this host again with `vigo-agent enroll --force` and a new token",
            paths.identity.display()
        ))
    };
    let der = match crate::tlsconf::private_key_from_pem(pem.expose())
        .map_err(|_| damaged("no PEM private key in it"))?
    {
        rustls::pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => return Err(damaged("not a PKCS#8 key")),
    };
    Ed25519Identity::from_pkcs8(&der).map_err(|_| damaged("not an Ed25519 key"))
}

/// Hex SHA-256 of the CA bundle file, as the server compares it.
pub fn ca_bundle_sha256(paths: &AgentPaths) -> Result<String, Failure> {
    let bytes = std::fs::read(&paths.ca_cert)
        .map_err(|e| Failure::failed(format!("{}: {e}", paths.ca_cert.display())))?;
    Ok(crypto::sha256_hex(&bytes))
}

/// The mTLS client configuration of an enrolled agent.
pub fn client_tls(paths: &AgentPaths, id: &Ed25519Identity) -> Result<rustls::ClientConfig, Failure> {
    let ca = std::fs::read_to_string(&paths.ca_cert)
        .map_err(|e| Failure::failed(format!("{}: {e}", paths.ca_cert.display())))?;
    let cert = std::fs::read_to_string(&paths.client_cert)
        .map_err(|e| Failure::failed(format!("{}: {e}", paths.client_cert.display())))?;
    let chain = x509::certs_from_pem(&cert).map_err(|e| Failure::failed(e.to_string()))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(id.pkcs8_der().to_vec().into());
    crate::tlsconf::client_config(&ca, Some((chain, key)), b"h2").map_err(Failure::failed)
}
