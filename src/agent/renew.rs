//! Certificates after enrollment: a check-in may hand the agent a new set of CAs to trust
//! (a CA rollover under way) or ask it to renew its client certificate (near its end, or from
//! a CA being retired). Both are written atomically, and only once they check out: a bad
//! certificate written here would lock the agent out for good.

use super::client::SignedClient;
use crate::crypto::x509;
use crate::exit::Failure;
use crate::paths::AgentPaths;
use crate::proto::v1 as pb;
use crate::util::fsutil;

/// Follows what a check-in answer says about certificates; true when anything changed.
pub async fn follow(
    client: &mut SignedClient,
    answer: &pb::CheckInResponse,
    paths: &AgentPaths,
) -> Result<bool, Failure> {
    let mut changed = false;
    if !answer.ca_bundle_pem.is_empty() {
        store_bundle(paths, &answer.ca_bundle_pem)?;
        tracing::info!("the server's CA bundle changed; trusting the new one");
        changed = true;
    }
    if answer.renew_certificate {
        let renewed = client.renew_certificate().await?;
        let bundle = if renewed.ca_bundle_pem.is_empty() {
            std::fs::read_to_string(&paths.ca_cert).map_err(|e| Failure::failed(e.to_string()))?
        } else {
            renewed.ca_bundle_pem.clone()
        };
        check_issued(&renewed.client_cert_pem, &bundle, &client.public_key())?;
        store_bundle(paths, &bundle)?;
        fsutil::atomic_write(&paths.client_cert, renewed.client_cert_pem.as_bytes(), 0o644)?;
        tracing::info!("client certificate renewed");
        changed = true;
    }
    if changed {
        client.reload_tls()?;
    }
    Ok(changed)
}

fn store_bundle(paths: &AgentPaths, pem: &str) -> Result<(), Failure> {
    crate::tlsconf::roots_from_pem(pem)
        .map_err(|e| Failure::failed(format!("the server sent an unusable CA bundle: {e}")))?;
    if std::fs::read_to_string(&paths.ca_cert).is_ok_and(|current| current == pem) {
        return Ok(());
    }
    fsutil::atomic_write(&paths.ca_cert, pem.as_bytes(), 0o644).map_err(Failure::from)
}

/// The renewed certificate must certify our own key and chain to a CA we trust.
fn check_issued(cert_pem: &str, bundle_pem: &str, own_key: &[u8; 32]) -> Result<(), Failure> {
    let bad = |why: &str| {
        Failure::failed(format!(
            "the server sent an unusable client certificate ({why}); keeping the current one"
        ))
    };
    let cert = x509::certs_from_pem(cert_pem).map_err(|_| bad("not a certificate"))?.remove(0);
    if x509::ed25519_key_in_cert(&cert) != Some(*own_key) {
        return Err(bad("it is for another key"));
    }
    let verifier = crate::tlsconf::EnvoyCertVerifier::new(bundle_pem).map_err(|e| bad(&e))?;
    if !verifier.is_ca_issued(&cert) {
        return Err(bad("no trusted CA issued it"));
    }
    Ok(())
}
