//! A stand-in isopass service for the tests (no public implementation exists): HTTPS on
//! 127.0.0.1 with a certificate from a throwaway CA, following the API as isopass's public
//! client uses it —
//! - `POST /api/auth/token`, `Authorization: Bearer <long-lived token>`: `{token, expires_at}`;
//! - `POST /api/client/search`, `Authorization: Bearer <short-lived token>`, `{"names": [...]}`:
//!   a list of entries `{id, name, type, organization_id, organization, tags, scopes, value}`.
//!
//! The test changes entries, revokes the short-lived tokens, shortens their life or takes the
//! service down, and reads how many exchanges and searches it served. The service stops when
//! the handle drops, and by itself after ten minutes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::oidc::TestCa;

const LIFETIME: Duration = Duration::from_secs(600);

#[derive(Default)]
pub struct State {
    /// The long-lived token the server's token file holds.
    pub bearer: String,
    /// Entries by name: (type, value).
    pub entries: BTreeMap<String, (String, Value)>,
    /// Short-lived tokens and when they expire (Unix seconds).
    pub sessions: BTreeMap<String, i64>,
    /// Life of a short-lived token, in seconds.
    pub token_ttl: i64,
    /// `expires_at` as Unix seconds instead of RFC 3339 text.
    pub numeric_expiry: bool,
    /// Connections are dropped at once (the service is "down").
    pub down: bool,
    pub exchanges: usize,
    pub searches: usize,
    /// Searches refused with 401.
    pub refused: usize,
    /// The names of the last search.
    pub last_names: Vec<String>,
}

pub struct StandIn {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    pub fn start(bearer: &str) -> StandIn {
        let ca = TestCa::new();
        let state =
            Arc::new(Mutex::new(State { bearer: bearer.into(), token_ttl: 3600, ..State::default() }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let shared = state.clone();
        let (cert, key) = (ca.cert_pem.clone(), ca.key_pem.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(serve(listener, &cert, &key, shared, stopped));
        });
        StandIn { addr, ca_pem: ca.ca_pem, state, stop: Some(stop), thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn set(&self, name: &str, kind: &str, value: Value) {
        self.state.lock().unwrap().entries.insert(name.into(), (kind.into(), value));
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    cert_pem: &str,
    key_pem: &str,
    state: Arc<Mutex<State>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let certs = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let deadline = tokio::time::sleep(LIFETIME);
    tokio::pin!(deadline);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
            _ = &mut stopped => return,
            _ = &mut deadline => return,
        };
        if state.lock().unwrap().down {
            drop(tcp);
            continue;
        }
        let (acceptor, state) = (acceptor.clone(), state.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(req, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

type Answer = Response<Full<std::io::Cursor<Vec<u8>>>>;

fn reply(status: u16, body: Value) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(std::io::Cursor::new(body.to_string().into_bytes())))
        .unwrap()
}

fn rfc3339(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

async fn answer(req: Request<hyper::body::Incoming>, state: &Mutex<State>) -> Answer {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let Ok(body) = Limited::new(req.into_body(), 64 * 1024).collect().await else {
        return reply(400, json!({ "error": "body too large" }));
    };
    let body: Value = serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut s = state.lock().unwrap();
    match (method.as_str(), path.as_str()) {
        ("POST", "/api/auth/token") => {
            if bearer != s.bearer {
                return reply(401, json!({ "error": "invalid token" }));
            }
            s.exchanges += 1;
            let token = format!("short-{}-{now}", s.exchanges);
            let expires = now + s.token_ttl;
            s.sessions.insert(token.clone(), expires);
            let expires_at = if s.numeric_expiry { json!(expires) } else { json!(rfc3339(expires)) };
            reply(200, json!({ "token": token, "expires_at": expires_at }))
        }
        ("POST", "/api/client/search") => {
            if s.sessions.get(&bearer).is_none_or(|exp| *exp <= now) {
                s.refused += 1;
                return reply(401, json!({ "error": "token expired or revoked" }));
            }
            s.searches += 1;
            let names: Vec<String> = body["names"]
                .as_array()
                .map(|a| a.iter().filter_map(|n| n.as_str().map(String::from)).collect())
                .unwrap_or_default();
            s.last_names = names.clone();
            let entries: Vec<Value> = s
                .entries
                .iter()
                .filter(|(name, _)| names.contains(name))
                .enumerate()
                .map(|(i, (name, (kind, value)))| {
                    json!({
                        "id": format!("e{i}"), "name": name, "type": kind,
                        "organization_id": "org-1", "organization": "Operations",
                        "tags": ["vigo"], "scopes": ["read"], "value": value,
                    })
                })
                .collect();
            reply(200, json!(entries))
        }
        _ => reply(404, json!({ "error": "not found" })),
    }
}
