//! X.509 for Vigo's private PKI (rcgen on ring): the CA, the server certificate, the client
//! certificates issued at enrollment, and the self-signed certificate an agent shows before it.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PublicKeyData, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::{CryptoError, Ed25519Identity, SecretString};

const CA_COMMON_NAME: &str = "Vigo CA";

/// A certificate and its private key, both PEM. The key is secret material.
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: SecretString,
}

fn err(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Certificate(e.to_string())
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    // An hour of slack for hosts whose clocks run a little behind the server's.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
}

fn ca_params(days: u32, common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Vigo");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, days);
    params
}

/// A fresh ECDSA P-256 CA, valid for `days`.
pub fn generate_ca(days: u32) -> Result<CertAndKey, CryptoError> {
    generate_named_ca(days, CA_COMMON_NAME)
}

/// A fresh CA with its own name, so that two CAs trusted side by side (during a rollover) are
/// told apart by name as well as by key.
pub fn generate_named_ca(days: u32, common_name: &str) -> Result<CertAndKey, CryptoError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let cert = ca_params(days, common_name).self_signed(&key).map_err(err)?;
    Ok(CertAndKey { cert_pem: cert.pem(), key_pem: SecretString::new(key.serialize_pem()) })
}

/// Signs with the CA: issuer name and key identifier come from its certificate (the first
/// one in `ca.cert_pem`).
fn with_ca<T>(
    ca: &CertAndKey,
    f: impl FnOnce(&rcgen::Issuer<'_, KeyPair>) -> Result<T, CryptoError>,
) -> Result<T, CryptoError> {
    let ca_key = KeyPair::from_pem(ca.key_pem.expose()).map_err(|e| err(format!("CA key: {e}")))?;
    let ca_cert = certs_from_pem(&ca.cert_pem)?.remove(0);
    let issuer =
        rcgen::Issuer::from_ca_cert_der(&ca_cert, ca_key).map_err(|e| err(format!("CA certificate: {e}")))?;
    f(&issuer)
}

/// The server's TLS certificate (ECDSA P-256) for the given SANs, signed by the CA.
pub fn generate_server_cert(ca: &CertAndKey, sans: &[String], days: u32) -> Result<CertAndKey, CryptoError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut params = CertificateParams::new(sans.to_vec()).map_err(err)?;
    params.distinguished_name.push(DnType::CommonName, "vigosrv");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let cert = with_ca(ca, |issuer| params.signed_by(&key, issuer).map_err(err))?;
    Ok(CertAndKey { cert_pem: cert.pem(), key_pem: SecretString::new(key.serialize_pem()) })
}

struct Ed25519Public<'a>(&'a [u8]);

impl PublicKeyData for Ed25519Public<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ED25519
    }
}

fn client_params(common_name: &str, days: u32) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, days);
    params
}

/// The client certificate issued at enrollment: the agent's own Ed25519 key, CN = envoy id.
pub fn issue_client_cert(
    ca: &CertAndKey,
    agent_public_key: &[u8],
    envoy_id: &str,
    days: u32,
) -> Result<String, CryptoError> {
    if agent_public_key.len() != 32 {
        return Err(CryptoError::BadKey("an Ed25519 public key is 32 bytes"));
    }
    let mut params = client_params(envoy_id, days);
    params.use_authority_key_identifier_extension = true;
    let cert = with_ca(ca, |issuer| params.signed_by(&Ed25519Public(agent_public_key), issuer).map_err(err))?;
    Ok(cert.pem())
}

/// A self-signed certificate for an agent's fresh key, shown only to call Enroll.
pub fn self_signed_client_cert(
    identity: &Ed25519Identity,
    common_name: &str,
) -> Result<Vec<u8>, CryptoError> {
    let der = PrivatePkcs8KeyDer::from(identity.pkcs8_der().to_vec());
    let key = KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_ED25519).map_err(err)?;
    let cert = client_params(common_name, 30).self_signed(&key).map_err(err)?;
    Ok(cert.der().to_vec())
}

/// The DNS names and IP addresses a certificate is for.
pub fn subject_alt_names(cert_der: &[u8]) -> Result<Vec<String>, CryptoError> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| err(format!("not a certificate: {e}")))?;
    let Ok(Some(san)) = cert.subject_alternative_name() else { return Ok(vec![]) };
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(*ip).ok()?).to_string()),
                16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(*ip).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

/// Whether an ECDSA P-256 private key (PKCS#8 PEM) is the key of the certificate.
pub fn key_matches_cert(key_pem: &str, cert_der: &[u8]) -> Result<bool, CryptoError> {
    let key = KeyPair::from_pem(key_pem).map_err(|e| err(format!("private key: {e}")))?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| err(format!("not a certificate: {e}")))?;
    Ok(key.public_key_raw() == cert.public_key().subject_public_key.data.as_ref())
}

/// Whether a server certificate chains to `ca_der` and is for its own first name, checked the
/// way a client checks it (rustls' verifier), at a moment inside the certificate's validity so
/// that an expired certificate is reported by the expiry check, not here.
pub fn issued_by(cert_der: &[u8], ca_der: &[u8]) -> Result<(), CryptoError> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::{ServerName, UnixTime};
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| err(format!("not a certificate: {e}")))?;
    let (from, to) = (cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp());
    let inside = u64::try_from(from + (to - from) / 2).map_err(err)?;
    let name = subject_alt_names(cert_der)?.into_iter().next().ok_or_else(|| err("it names no host"))?;
    let name = ServerName::try_from(name).map_err(err)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec())).map_err(err)?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), ring_provider())
        .build()
        .map_err(err)?;
    let end_entity = CertificateDer::from(cert_der.to_vec());
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(inside));
    verifier.verify_server_cert(&end_entity, &[], &name, &[], at).map(|_| ()).map_err(err)
}

/// Whether a client certificate chains to one of `cas`, checked the way the server's mTLS
/// verifier checks it, at a moment inside the certificate's validity (expiry is its own check).
pub fn client_issued_by(cert_der: &[u8], cas: &[CertificateDer<'static>]) -> Result<(), CryptoError> {
    use rustls_pki_types::UnixTime;
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| err(format!("not a certificate: {e}")))?;
    let (from, to) = (cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp());
    let inside = u64::try_from(from + (to - from) / 2).map_err(err)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone()).map_err(err)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), ring_provider())
        .build()
        .map_err(err)?;
    let end_entity = CertificateDer::from(cert_der.to_vec());
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(inside));
    verifier.verify_client_cert(&end_entity, &[], at).map(|_| ()).map_err(err)
}

// Not tlsconf's provider: tests/oidc_flow.rs compiles this file without the rest of the crate.
fn ring_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA's key as a signer of short server statements (nudges), apart from certificates:
/// agents already pin the CA, so they can check these with nothing new on disk. Every such
/// statement starts with its own domain string, so none can pass for another.
pub struct CaSigner(ring::signature::EcdsaKeyPair);

impl CaSigner {
    pub fn from_pem(key_pem: &str) -> Result<CaSigner, CryptoError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| CryptoError::BadKey("the CA key is not a PKCS#8 PEM key"))?;
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| CryptoError::BadKey("the CA key is not an ECDSA P-256 key"))?;
        Ok(CaSigner(pair))
    }

    /// ECDSA P-256 over SHA-256, as fixed-width `r || s`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let sig = self.0.sign(&ring::rand::SystemRandom::new(), message).map_err(|_| CryptoError::Random)?;
        Ok(sig.as_ref().to_vec())
    }
}

/// The ECDSA P-256 public key (SEC1 point) a certificate certifies, if it certifies one.
pub fn p256_key_in_cert(cert_der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let spki = cert.public_key();
    // id-ecPublicKey with the prime256v1 curve.
    let is_p256 = spki.algorithm.algorithm.to_id_string() == "1.2.840.10045.2.1"
        && spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string())
            == Some("1.2.840.10045.3.1.7".into());
    is_p256.then(|| spki.subject_public_key.data.to_vec())
}

/// When a certificate stops being valid, in Unix seconds.
pub fn not_after(cert_der: &[u8]) -> Result<i64, CryptoError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| err(format!("not a certificate: {e}")))?;
    Ok(cert.validity().not_after.timestamp())
}

/// Every certificate in a PEM text, as DER.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, CryptoError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM certificate: {e:?}")))?;
    if certs.is_empty() {
        return Err(err("no certificate found in PEM text"));
    }
    Ok(certs)
}

/// One PEM block: `label` around the base64 of `der` in 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let mut b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    // For a private key the base64 text is as secret as the key.
    zeroize::Zeroize::zeroize(&mut b64);
    out
}

/// A private key as a PKCS#8 PEM block, kept secret.
pub fn private_key_pem(pkcs8_der: &[u8]) -> SecretString {
    SecretString::new(pem("PRIVATE KEY", pkcs8_der))
}

pub fn cert_to_pem(der: &[u8]) -> String {
    pem("CERTIFICATE", der)
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }.
const ED25519_SPKI_PREFIX: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The Ed25519 public key a certificate certifies, if it certifies one. A certificate holds a
/// single SubjectPublicKeyInfo, and this exact 12-byte header occurs nowhere else in one.
pub fn ed25519_key_in_cert(cert_der: &[u8]) -> Option<[u8; 32]> {
    let at = cert_der.windows(ED25519_SPKI_PREFIX.len()).position(|w| w == ED25519_SPKI_PREFIX)?;
    let start = at + ED25519_SPKI_PREFIX.len();
    let key = cert_der.get(start..start + 32)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(key);
    Some(out)
}

/// SubjectPublicKeyInfo PEM for an Ed25519 public key (what `openssl pkeyutl -pubin` reads).
#[cfg(test)]
pub fn ed25519_public_pem(public_key: &[u8; 32]) -> String {
    use base64::Engine;
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(public_key);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_issues_server_and_client_certs() {
        let ca = generate_ca(3650).unwrap();
        let srv = generate_server_cert(&ca, &["localhost".into(), "127.0.0.1".into()], 365).unwrap();
        assert!(srv.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let id = Ed25519Identity::generate().unwrap();
        let client = issue_client_cert(&ca, &id.public_key(), "envoy-1", 365).unwrap();
        let der = certs_from_pem(&client).unwrap();
        assert_eq!(ed25519_key_in_cert(&der[0]), Some(id.public_key()));
        let own = self_signed_client_cert(&id, "enroll").unwrap();
        assert_eq!(ed25519_key_in_cert(&own), Some(id.public_key()));
        assert_eq!(certs_from_pem(&cert_to_pem(&own)).unwrap()[0].as_ref(), &own[..]);
    }

    #[test]
    fn ecdsa_cert_has_no_ed25519_key_and_garbage_is_refused() {
        let ca = generate_ca(1).unwrap();
        assert!(ed25519_key_in_cert(&certs_from_pem(&ca.cert_pem).unwrap()[0]).is_none());
        assert!(certs_from_pem("hello").is_err());
        let broken =
            CertAndKey { cert_pem: ca.cert_pem.clone(), key_pem: SecretString::new("not a key".into()) };
        assert!(generate_server_cert(&broken, &["localhost".into()], 1).is_err());
    }

    #[test]
    fn a_server_certificate_chains_only_to_its_own_ca() {
        let der = |pem: &str| certs_from_pem(pem).unwrap().remove(0).to_vec();
        let (ca, other) = (generate_ca(30).unwrap(), generate_ca(30).unwrap());
        let srv = generate_server_cert(&ca, &["vigo.example".into(), "127.0.0.1".into()], 1).unwrap();
        issued_by(&der(&srv.cert_pem), &der(&ca.cert_pem)).unwrap();
        // Both CAs have the same name: only the signature tells them apart.
        let e = issued_by(&der(&srv.cert_pem), &der(&other.cert_pem)).unwrap_err();
        assert!(e.to_string().contains("BadSignature"), "{e}");
    }

    #[test]
    fn a_ca_signature_checks_with_its_certificate_and_no_other() {
        use crate::crypto::{verify_signature, PublicKeyParts, SignatureScheme};
        let (ca, other) = (generate_ca(30).unwrap(), generate_ca(30).unwrap());
        let key_of = |pem: &str| p256_key_in_cert(&certs_from_pem(pem).unwrap()[0]).unwrap();
        let sig = CaSigner::from_pem(ca.key_pem.expose()).unwrap().sign(b"hello").unwrap();
        let scheme = SignatureScheme::EcdsaP256Sha256;
        verify_signature(&PublicKeyParts::EcdsaP256(key_of(&ca.cert_pem)), scheme, b"hello", &sig).unwrap();
        assert!(verify_signature(
            &PublicKeyParts::EcdsaP256(key_of(&other.cert_pem)),
            scheme,
            b"hello",
            &sig
        )
        .is_err());
        assert!(verify_signature(&PublicKeyParts::EcdsaP256(key_of(&ca.cert_pem)), scheme, b"hellO", &sig)
            .is_err());
        // An Ed25519 client certificate certifies no P-256 key.
        let id = Ed25519Identity::generate().unwrap();
        assert!(p256_key_in_cert(&self_signed_client_cert(&id, "x").unwrap()).is_none());
        assert!(CaSigner::from_pem("not a key").is_err());
    }
}
