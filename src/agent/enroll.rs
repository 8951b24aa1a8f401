//! `vigo-agent enroll`: a fresh Ed25519 identity, a self-signed certificate for the one call it
//! may make, the server authenticated by the CA pin inside the token, then the issued
//! certificate and the CA stored under the base dir.

use prost::bytes::Bytes;

use super::state::{save_identity, AgentState};
use crate::crypto::{x509, Ed25519Identity, SecretString};
use crate::exit::{CmdResult, Failure};
use crate::paths::AgentPaths;
use crate::proto::v1 as pb;
use crate::proto::v1::vigo_agent_client::VigoAgentClient;
use crate::util::fsutil;
use crate::wire::EnrollToken;

pub struct EnrollRequest {
    pub server: String,
    pub token_file: String,
    pub name: Option<String>,
    pub force: bool,
}

fn read_token(source: &str) -> Result<EnrollToken, Failure> {
    let text = if source == "-" {
        crate::util::prompt::read_line("Enrollment token: ", true)
            .map_err(|e| Failure::failed(e.to_string()))?
    } else {
        SecretString::new(
            std::fs::read_to_string(source).map_err(|e| Failure::failed(format!("{source}: {e}")))?,
        )
    };
    EnrollToken::parse(text.expose()).map_err(Failure::usage)
}

pub async fn enroll(paths: &AgentPaths, req: EnrollRequest) -> CmdResult {
    if let Ok(existing) = AgentState::load(paths) {
        if !req.force {
            return Err(Failure::failed(format!(
                "already enrolled as {} ({}); pass --force to enroll a new identity",
                existing.envoy_name, existing.envoy_id
            )));
        }
    }
    let token = read_token(&req.token_file)?;
    if let Some(n) = &req.name {
        crate::wire::validate_envoy_name(n).map_err(Failure::usage)?;
    }
    let name = req.name.clone().unwrap_or_default();
    let identity = Ed25519Identity::generate()?;
    let self_signed = x509::self_signed_client_cert(&identity, "vigo-agent enrollment")?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(identity.pkcs8_der().to_vec().into());
    let tls = crate::tlsconf::enroll_client_config(token.ca_pin, self_signed.into(), key)
        .map_err(Failure::failed)?;
    let channel = super::client::connect(&req.server, std::sync::Arc::new(tls)).await?;
    let answer = VigoAgentClient::new(channel)
        .enroll(pb::EnrollRequest {
            token: token.secret.clone(),
            public_key: Bytes::copy_from_slice(&identity.public_key()).to_vec(),
            name,
            hostname: crate::util::hosts::hostname(),
        })
        .await
        .map_err(|s| super::client::status_failure("enrollment refused", s))?
        .into_inner();
    let pin = crate::tlsconf::pem_cert_pin(&answer.ca_cert_pem).map_err(Failure::failed)?;
    if pin != token.ca_pin {
        return Err(Failure::refused("the CA returned by the server does not match the token's pin"));
    }
    fsutil::ensure_dir(&paths.base, 0o700)?;
    save_identity(paths, &identity)?;
    fsutil::atomic_write(&paths.client_cert, answer.client_cert_pem.as_bytes(), 0o644)?;
    fsutil::atomic_write(&paths.ca_cert, answer.ca_cert_pem.as_bytes(), 0o644)?;
    AgentState {
        envoy_id: answer.envoy_id.clone(),
        envoy_name: answer.envoy_name.clone(),
        server: req.server.clone(),
        last_seq: 0,
        checkin_interval_secs: answer.checkin_interval_secs,
    }
    .save(paths)?;
    println!("Enrolled as {} ({}) with {}.", answer.envoy_name, answer.envoy_id, req.server);
    Ok(())
}
