//! A small, bounded HTTPS client for the services Vigo talks to (an OpenID Provider, isopass): TLS 1.3 with rustls (ring),
//! trust from a pinned PEM or the system bundle read directly (the binary is static: no NSS, no
//! OpenSSL), names resolved by `util::hosts`. One request per connection, a deadline on the
//! whole exchange, a cap on the answer, and redirects reported instead of followed.
//! The provider must offer TLS 1.3: the binary builds rustls without TLS 1.2.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use url::{Host, Position, Url};

use crate::crypto::SecretString;
use crate::util::hosts;

/// Debian's (and most distributions') bundle of system CAs, as one PEM file.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Discovery documents and key sets are a few KiB; token answers less.
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;

/// Which certificate authorities the provider's certificate must chain to.
#[derive(Debug, Clone)]
pub enum TrustRoots {
    /// Only these CAs (PEM text): a private provider, or a pin on a public one's CA.
    Pem(String),
    /// The host's CA bundle at this path (normally [`SYSTEM_CA_BUNDLE`]).
    Bundle(std::path::PathBuf),
}

/// What went wrong talking to the provider. Never carries a request or answer body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("{0}")]
    Url(String),
    #[error("trusted CAs: {0}")]
    Trust(String),
    #[error("cannot reach {0}")]
    Connect(String),
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("{0} did not answer within {1} s")]
    Timeout(String, u64),
    #[error("the answer from {0} is larger than {1} bytes")]
    TooLarge(String, usize),
    #[error("{0} answered with a redirect (HTTP {1}), which is not followed")]
    Redirect(String, u16),
    #[error("HTTP exchange with {0} failed: {1}")]
    Protocol(String, String),
}

/// Status and body of an answer that was not a redirect.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

pub struct HttpsClient {
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    max_body: usize,
}

impl HttpsClient {
    pub fn new(trust: &TrustRoots, timeout: Duration, max_body: usize) -> Result<Self, HttpError> {
        let roots = match trust {
            TrustRoots::Pem(pem) => strict_roots(pem)?,
            TrustRoots::Bundle(path) => bundle_roots(path)?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| HttpError::Trust(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpsClient { tls: Arc::new(tls), timeout, max_body })
    }

    pub async fn get(&self, url: &Url) -> Result<Response, HttpError> {
        self.exchange(url, "GET", None, None, &[], Vec::new()).await
    }

    /// POSTs `form` as `application/x-www-form-urlencoded`, with HTTP Basic credentials.
    pub async fn post_form(
        &self,
        url: &Url,
        basic: (&str, &SecretString),
        form: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        // RFC 6749 2.3.1: each half is form-encoded before the two are joined and base64'd.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = SecretString::new(format!("{}:{}", enc(basic.0), enc(basic.1.expose())));
        let header = SecretString::new(format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pair.expose())
        ));
        self.exchange(
            url,
            "POST",
            Some(&header),
            Some("application/x-www-form-urlencoded"),
            &[],
            body.into_bytes(),
        )
        .await
    }

    /// POSTs a JSON body with a bearer token.
    pub async fn post_json(
        &self,
        url: &Url,
        bearer: &SecretString,
        body: &serde_json::Value,
    ) -> Result<Response, HttpError> {
        let header = SecretString::new(format!("Bearer {}", bearer.expose()));
        self.exchange(
            url,
            "POST",
            Some(&header),
            Some("application/json"),
            &[],
            body.to_string().into_bytes(),
        )
        .await
    }

    /// POSTs `body` as it is, with extra headers (a webhook and its signature).
    pub async fn post_bytes(
        &self,
        url: &Url,
        content_type: &str,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<Response, HttpError> {
        self.exchange(url, "POST", None, Some(content_type), headers, body).await
    }

    async fn exchange(
        &self,
        url: &Url,
        method: &str,
        authorization: Option<&SecretString>,
        content_type: Option<&str>,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<Response, HttpError> {
        let shown = url[..Position::AfterPath].to_string();
        let secs = self.timeout.as_secs();
        let sending = self.send(url, &shown, method, authorization, content_type, headers, body);
        tokio::time::timeout(self.timeout, sending)
            .await
            .map_err(|_| HttpError::Timeout(shown.clone(), secs))?
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        url: &Url,
        shown: &str,
        method: &str,
        authorization: Option<&SecretString>,
        content_type: Option<&str>,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<Response, HttpError> {
        let target = Target::of(url)?;
        let host_port = target.host_port.clone();
        let addr = tokio::task::spawn_blocking(move || hosts::resolve(&host_port))
            .await
            .map_err(|e| HttpError::Connect(e.to_string()))?
            .map_err(HttpError::Connect)?;
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| HttpError::Connect(format!("{} ({addr}): {e}", target.host_port)))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(target.name, tcp)
            .await
            .map_err(|e| HttpError::Tls { host: target.host_port.clone(), reason: e.to_string() })?;
        let protocol = |e: hyper::Error| HttpError::Protocol(shown.to_string(), e.to_string());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(protocol)?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(&url[Position::BeforePath..Position::AfterQuery])
            .header("host", &url[Position::BeforeHost..Position::AfterPort])
            .header("accept", "application/json")
            .header("user-agent", concat!("vigo/", env!("CARGO_PKG_VERSION")));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        if let Some(auth) = authorization {
            let mut value = hyper::header::HeaderValue::from_str(auth.expose()).map_err(|_| {
                HttpError::Url("the client credentials hold characters HTTP cannot carry".into())
            })?;
            value.set_sensitive(true);
            req = req.header("authorization", value);
        }
        let req = req
            .body(Full::new(bytes_of(body)))
            .map_err(|e| HttpError::Protocol(shown.to_string(), e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(protocol)?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            return Err(HttpError::Redirect(shown.to_string(), status));
        }
        let limited = Limited::new(resp.into_body(), self.max_body);
        let body = limited.collect().await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                HttpError::TooLarge(shown.to_string(), self.max_body)
            } else {
                HttpError::Protocol(shown.to_string(), e.to_string())
            }
        })?;
        Ok(Response { status, body: body.to_bytes().to_vec() })
    }
}

fn bytes_of(body: Vec<u8>) -> std::io::Cursor<Vec<u8>> {
    std::io::Cursor::new(body)
}

/// Where a URL points: the name TLS checks, and `host:port` to resolve.
struct Target {
    name: ServerName<'static>,
    host_port: String,
}

impl Target {
    fn of(url: &Url) -> Result<Target, HttpError> {
        if url.scheme() != "https" {
            return Err(HttpError::Url(format!(
                "{} is not an https:// URL (plain HTTP is never used)",
                &url[..Position::AfterPath]
            )));
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let (name, host) = match url.host() {
            Some(Host::Domain(d)) => (
                ServerName::try_from(d.to_string())
                    .map_err(|_| HttpError::Url(format!("bad host name {d:?}")))?,
                d.to_string(),
            ),
            Some(Host::Ipv4(ip)) => (ServerName::IpAddress(std::net::IpAddr::V4(ip).into()), ip.to_string()),
            Some(Host::Ipv6(ip)) => {
                (ServerName::IpAddress(std::net::IpAddr::V6(ip).into()), format!("[{ip}]"))
            }
            None => return Err(HttpError::Url(format!("{url} has no host"))),
        };
        Ok(Target { name, host_port: format!("{host}:{port}") })
    }
}

/// Every certificate of a pinned PEM must be a usable CA: a typo is an error, not less trust.
fn strict_roots(pem: &str) -> Result<RootCertStore, HttpError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| HttpError::Trust(format!("not PEM certificates: {e:?}")))?;
        roots.add(cert).map_err(|e| HttpError::Trust(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(HttpError::Trust("the PEM holds no certificate".into()));
    }
    Ok(roots)
}

/// A system bundle may hold a certificate rustls cannot use; those are skipped, as browsers do.
fn bundle_roots(path: &std::path::Path) -> Result<RootCertStore, HttpError> {
    let pem =
        std::fs::read(path).map_err(|e| HttpError::Trust(format!("cannot read {}: {e}", path.display())))?;
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok));
    if roots.is_empty() {
        return Err(HttpError::Trust(format!("{} holds no usable CA certificate", path.display())));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_bundle_loads_and_a_bad_pin_is_an_error() {
        let roots = bundle_roots(std::path::Path::new(SYSTEM_CA_BUNDLE))
            .expect("the system CA bundle (Debian ca-certificates, installed by scripts/test-all.sh)");
        assert!(roots.len() > 10, "only {} CAs in {SYSTEM_CA_BUNDLE}", roots.len());
        assert!(matches!(strict_roots("hello"), Err(HttpError::Trust(_))));
        assert!(matches!(bundle_roots(std::path::Path::new("/nonexistent")), Err(HttpError::Trust(_))));
    }

    #[test]
    fn only_https_urls_with_a_host_are_targets() {
        let t = Target::of(&Url::parse("https://127.0.0.1:8443/x").unwrap()).unwrap();
        assert_eq!(t.host_port, "127.0.0.1:8443");
        let t = Target::of(&Url::parse("https://[::1]/x").unwrap()).unwrap();
        assert_eq!(t.host_port, "[::1]:443");
        let t = Target::of(&Url::parse("https://idp.example.org/x").unwrap()).unwrap();
        assert_eq!(t.host_port, "idp.example.org:443");
        assert!(matches!(
            Target::of(&Url::parse("http://idp.example.org/").unwrap()),
            Err(HttpError::Url(_))
        ));
    }
}
