//! A hostile client for load tests, written from the outside: raw TCP, TLS with a fresh
//! self-signed Ed25519 certificate, hand-made HTTP/2 frames and a hand-encoded gRPC Enroll.
//! Its connections come from a source address of the test's choosing (127.0.0.2), so the
//! server's per-source caps can tell it apart from the legitimate clients on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub const ATTACKER: &str = "127.0.0.2";

/// A TCP connection to `addr` from `source`.
pub async fn connect_from(source: &str, addr: &str) -> std::io::Result<TcpStream> {
    let addr: SocketAddr = addr.parse().unwrap();
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{source}:0").parse().unwrap())?;
    socket.set_nodelay(true)?;
    socket.connect(addr).await
}

#[derive(Debug)]
struct AnyServer;

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// A fresh Ed25519 identity: (self-signed certificate, key, raw public key).
pub fn self_signed_identity() -> (CertificateDer<'static>, PrivateKeyDer<'static>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["intruder".into()]).unwrap().self_signed(&key).unwrap();
    let public = key.public_key_raw().to_vec();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.der().clone(), der, public)
}

/// A TLS client that trusts any server and shows `identity` (or no certificate).
pub fn tls_client(
    identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    alpn: &[u8],
) -> Arc<rustls::ClientConfig> {
    let builder =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer));
    let mut cfg = match identity {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

pub async fn tls_connect(
    tcp: TcpStream,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await
}

/// The HTTP/2 client preface and an empty SETTINGS frame.
pub fn h2_preface() -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    out
}

/// One HTTP/2 PING frame: what keeps a connection busy without ever making a request.
pub fn h2_ping(n: u64) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 0x6, 0, 0, 0, 0, 0];
    out.extend_from_slice(&n.to_be_bytes());
    out
}

/// Reads and throws away whatever the server sends, until it closes or `dur` passes; true
/// when the server closed the connection.
pub async fn drain_until_closed<S: AsyncReadExt + Unpin>(s: &mut S, dur: std::time::Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + dur;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EnrollRequest {
    #[prost(string, tag = "1")]
    pub token: String,
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub hostname: String,
}

/// Sends Enroll requests with garbage tokens over one HTTP/2 connection from `source`, `n` of
/// them one after the other; returns the grpc-status of each (0 OK, 7 PermissionDenied,
/// 8 ResourceExhausted, ...; -1 when the connection failed).
pub async fn garbage_enrolls(source: &'static str, addr: String, n: usize) -> Vec<i32> {
    let addr = addr.as_str();
    let (cert, key, public) = self_signed_identity();
    let mut statuses = Vec::with_capacity(n);
    let Ok(tcp) = connect_from(source, addr).await else { return vec![-1; n] };
    let Ok(tls) = tls_connect(tcp, tls_client(Some((cert, key)), b"h2")).await else { return vec![-1; n] };
    let Ok((mut sender, conn)) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    else {
        return vec![-1; n];
    };
    tokio::spawn(conn);
    for i in 0..n {
        let msg = EnrollRequest {
            token: format!("garbage-{i}"),
            public_key: public.clone(),
            name: format!("n{i}"),
            hostname: String::new(),
        };
        let body = prost::Message::encode_to_vec(&msg);
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
        framed.extend_from_slice(&body);
        let req = hyper::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/vigo.v1.VigoAgent/Enroll"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(http_body_util::Full::new(bytes_of(framed)))
            .unwrap();
        let status = match sender.send_request(req).await {
            Ok(resp) => grpc_status(resp).await,
            Err(_) => -1,
        };
        statuses.push(status);
        if status == -1 {
            break;
        }
    }
    statuses
}

fn bytes_of(v: Vec<u8>) -> std::io::Cursor<Vec<u8>> {
    std::io::Cursor::new(v)
}

async fn grpc_status(resp: hyper::Response<hyper::body::Incoming>) -> i32 {
    use http_body_util::BodyExt;
    let header = resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if let Some(s) = header {
        return s;
    }
    match resp.into_body().collect().await {
        Ok(collected) => collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1),
        Err(_) => -1,
    }
}

/// Writes `bytes` to a stream, ignoring a peer that has gone.
pub async fn send<S: AsyncWriteExt + Unpin>(s: &mut S, bytes: &[u8]) -> bool {
    s.write_all(bytes).await.is_ok() && s.flush().await.is_ok()
}

/// An enrolled agent's identity as it keeps it (`identity.key`, `client.crt` under its base):
/// the certificate chain and the key, for a hand-made connection that shows them.
pub fn agent_identity(agent_base: &std::path::Path) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::from_pem_file(agent_base.join("client.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_file(agent_base.join("identity.key")).unwrap();
    (cert, key)
}

/// One HTTP/1.1 answer read whole from a raw connection: status, head (lower-cased), body.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawAnswer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {self:?}"))
    }
}

/// Reads one answer (the server closes after it, or its Content-Length says where it ends).
pub async fn read_answer<S: AsyncReadExt + Unpin>(s: &mut S) -> Option<RawAnswer> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|n| got.len() >= end + 4 + n) {
                let n = len.unwrap();
                let status = head.get(9..12)?.parse().ok()?;
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + n]).into_owned();
                return Some(RawAnswer { status, head, body });
            }
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` as is over a fresh TLS connection to the admin port and reads the answer.
pub async fn admin_raw(addr: &str, request: &[u8]) -> Option<RawAnswer> {
    let tcp = connect_from("127.0.0.1", addr).await.ok()?;
    let mut tls = tls_connect(tcp, tls_client(None, b"http/1.1")).await.ok()?;
    if !send(&mut tls, request).await {
        return None;
    }
    tokio::time::timeout(std::time::Duration::from_secs(15), read_answer(&mut tls)).await.ok()?
}
