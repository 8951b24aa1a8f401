//! TLS 1.3-only rustls configurations (ring provider) for both ends of both listeners.
//!
//! Agent port: every connection must show a client certificate. A CA-issued certificate is an
//! enrolled envoy; a valid self-signed Ed25519 certificate is an agent about to enroll, and the
//! gRPC layer lets such a connection call Enroll and nothing else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;

use crate::crypto::{self, x509};

/// ring's TLS 1.3 suites, AES-128-GCM first: its SHA-256 key schedule runs on the CPU's SHA
/// extensions where SHA-384 has none, and every agent check-in is a (resumed) handshake.
/// Servers follow the client's order, so this is what agents negotiate with a Vigo server.
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::cipher_suite as suite;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::ring::default_provider()
    })
}

fn tls_err(e: impl std::fmt::Display) -> String {
    format!("TLS setup: {e}")
}

pub fn roots_from_pem(ca_pem: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for c in x509::certs_from_pem(ca_pem).map_err(tls_err)? {
        roots.add(c).map_err(tls_err)?;
    }
    Ok(roots)
}

pub fn private_key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| tls_err(format!("private key: {e:?}")))
}

/// How long a certificate found CA-issued is trusted without re-checking its chain (its
/// signature cannot change; this bounds how late an expiry is noticed), and how many are kept.
const ISSUED_TTL: Duration = Duration::from_secs(300);
const ISSUED_MAX: usize = 65_536;

/// Accepts CA-issued client certificates, and self-signed Ed25519 ones for enrollment.
#[derive(Debug)]
pub struct EnvoyCertVerifier {
    /// The CAs whose certificates are enrolled envoys' (several during a CA rollover).
    ca: RwLock<Arc<dyn ClientCertVerifier>>,
    provider: Arc<CryptoProvider>,
    /// SHA-256 of certificates that chained to the CA, and when. The handshake fills it and
    /// every signed request asks it, which would otherwise redo an ECDSA check per request.
    issued: Mutex<HashMap<[u8; 32], Instant>>,
}

impl EnvoyCertVerifier {
    pub fn new(ca_pem: &str) -> Result<Self, String> {
        let provider = provider();
        let ca = Self::trusting(ca_pem, &provider)?;
        Ok(EnvoyCertVerifier { ca: RwLock::new(ca), provider, issued: Mutex::new(HashMap::new()) })
    }

    fn trusting(ca_pem: &str, provider: &Arc<CryptoProvider>) -> Result<Arc<dyn ClientCertVerifier>, String> {
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots_from_pem(ca_pem)?), provider.clone())
            .build()
            .map_err(tls_err)
    }

    /// Trusts exactly the CAs in `ca_pem` from now on (a TLS reload, a CA rollover step).
    pub fn set_trusted(&self, ca_pem: &str) -> Result<(), String> {
        let ca = Self::trusting(ca_pem, &self.provider)?;
        *self.ca.write().unwrap_or_else(|p| p.into_inner()) = ca;
        self.issued.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
    }

    fn ca(&self) -> Arc<dyn ClientCertVerifier> {
        self.ca.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether `cert` chains to the Vigo CA (an enrolled envoy's certificate).
    pub fn is_ca_issued(&self, cert: &CertificateDer<'_>) -> bool {
        let fingerprint = crypto::sha256(cert);
        let cache = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        if cache.get(&fingerprint).is_some_and(|at| at.elapsed() < ISSUED_TTL) {
            return true;
        }
        drop(cache);
        let ok = self.ca().verify_client_cert(cert, &[], UnixTime::now()).is_ok();
        if ok {
            self.remember_issued(fingerprint);
        }
        ok
    }

    fn remember_issued(&self, fingerprint: [u8; 32]) {
        let mut cache = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= ISSUED_MAX {
            cache.retain(|_, at| at.elapsed() < ISSUED_TTL);
            if cache.len() >= ISSUED_MAX {
                cache.clear();
            }
        }
        cache.insert(fingerprint, Instant::now());
    }

    fn verify_self_signed(&self, cert: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
        if x509::ed25519_key_in_cert(cert).is_none() {
            return Err(rustls::Error::General(
                "client certificate is neither CA-issued nor a self-signed Ed25519 enrollment certificate"
                    .into(),
            ));
        }
        let mut own = RootCertStore::empty();
        own.add(cert.clone().into_owned())?;
        let v = WebPkiClientVerifier::builder_with_provider(Arc::new(own), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        v.verify_client_cert(cert, &[], now).map(|_| ())
    }
}

impl ClientCertVerifier for EnvoyCertVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.ca().verify_client_cert(end_entity, intermediates, now) {
            Ok(v) => {
                // Vigo's CA issues envoy certificates directly; only those are remembered.
                if intermediates.is_empty() {
                    self.remember_issued(crypto::sha256(end_entity));
                }
                Ok(v)
            }
            Err(_) => self.verify_self_signed(end_entity, now).map(|_| ClientCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.ca().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.ca().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.ca().supported_verify_schemes()
    }
}

fn server_builder() -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>, String> {
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)
}

/// The server's certificate chain: its certificate, then the CA (agents pin the CA).
fn server_chain(cert_pem: &str, ca_pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut chain = x509::certs_from_pem(cert_pem).map_err(tls_err)?;
    chain.extend(x509::certs_from_pem(ca_pem).map_err(tls_err)?);
    Ok(chain)
}

/// The agent (gRPC) listener: mTLS mandatory, h2.
pub fn agent_listener_config(
    cert_pem: &str,
    key_pem: &str,
    ca_pem: &str,
    verifier: Arc<EnvoyCertVerifier>,
    ticketer: Option<Arc<dyn rustls::server::ProducesTickets>>,
) -> Result<ServerConfig, String> {
    let mut cfg = server_builder()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_chain(cert_pem, ca_pem)?, private_key_from_pem(key_pem)?)
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), crate::push_wire::ALPN.to_vec()];
    // Agents reconnect at every check-in; TLS 1.3 tickets (AEAD-sealed, rotating keys) let that
    // resume without a full handshake. The client certificate travels inside the ticket, and
    // every request is still checked against the envoy's key and revocation state.
    // A reload keeps the ticketer, so agents keep resuming across it.
    cfg.ticketer = match ticketer {
        Some(t) => t,
        None => rustls::crypto::ring::Ticketer::new().map_err(tls_err)?,
    };
    // One ticket per connection is enough: each check-in uses one and receives the next.
    cfg.send_tls13_tickets = 1;
    Ok(cfg)
}

/// The admin (HTTPS JSON) listener: server authentication only; callers bring bearer tokens.
pub fn admin_listener_config(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Result<ServerConfig, String> {
    let mut cfg = server_builder()?
        .with_no_client_auth()
        .with_single_cert(server_chain(cert_pem, ca_pem)?, private_key_from_pem(key_pem)?)
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

fn client_builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, String> {
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)
}

/// A client trusting only the Vigo CA; with a client certificate when one is given.
pub fn client_config(
    ca_pem: &str,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: &[u8],
) -> Result<ClientConfig, String> {
    let builder = client_builder()?.with_root_certificates(roots_from_pem(ca_pem)?);
    let mut cfg = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(tls_err)?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}

/// Trusts the server only if its chain carries the CA whose SHA-256 the enrollment token pins.
#[derive(Debug)]
struct PinnedCaVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca =
            intermediates.iter().find(|c| crypto::ct_eq(&crypto::sha256(c), &self.pin)).ok_or_else(|| {
                rustls::Error::General("the server's CA does not match the enrollment token's pin".into())
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The enrolling agent's client: pinned CA, self-signed Ed25519 client certificate.
pub fn enroll_client_config(
    ca_pin: [u8; 32],
    self_signed: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<ClientConfig, String> {
    let verifier = Arc::new(PinnedCaVerifier { pin: ca_pin, provider: provider() });
    let mut cfg = client_builder()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![self_signed], key)
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// SHA-256 of the first certificate in a PEM text (the CA pin).
pub fn pem_cert_pin(pem: &str) -> Result<[u8; 32], String> {
    let certs = x509::certs_from_pem(pem).map_err(tls_err)?;
    Ok(crypto::sha256(&certs[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certs_are_remembered_and_self_signed_never_pass() {
        let ca = x509::generate_ca(1).unwrap();
        let v = EnvoyCertVerifier::new(&ca.cert_pem).unwrap();
        let id = crypto::Ed25519Identity::generate().unwrap();
        let pem = x509::issue_client_cert(&ca, &id.public_key(), "e1", 1).unwrap();
        let issued = x509::certs_from_pem(&pem).unwrap().remove(0);
        let own = CertificateDer::from(x509::self_signed_client_cert(&id, "enroll").unwrap());
        for _ in 0..2 {
            assert!(v.is_ca_issued(&issued));
            assert!(!v.is_ca_issued(&own));
        }
        assert_eq!(v.issued.lock().unwrap().len(), 1, "only the issued certificate is cached");
    }
}
