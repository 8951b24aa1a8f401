//! Client side of the admin HTTPS API: TLS 1.3 trusting only `<base>/tls/ca`, bearer token from
//! `<base>/local-admin.token` or `--token-file`. Blocking wrapper over a small tokio runtime.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::Value;

use super::Context;
use crate::exit::Failure;
use crate::util::hosts;

pub const DEFAULT_SERVER: &str = "https://127.0.0.1:8443";

pub struct AdminClient {
    url: String,
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    token: String,
    token_path: std::path::PathBuf,
}

impl AdminClient {
    pub fn from_ctx(ctx: &Context) -> Result<Self, Failure> {
        let kept = super::auth_cmd::Kept::find();
        let url = ctx
            .server
            .clone()
            .or_else(|| std::env::var("VIGO_SERVER").ok().filter(|v| !v.is_empty()))
            .or_else(|| kept.as_ref().and_then(|k| k.server()))
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        let rest = url.strip_prefix("https://").ok_or_else(|| {
            Failure::usage(format!("server URL {url:?} must start with https:// (plain HTTP is never used)"))
        })?;
        let authority = rest.trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => (
                h.trim_matches(|c| c == '[' || c == ']').to_string(),
                p.parse().map_err(|_| Failure::usage(format!("bad port in {url:?}")))?,
            ),
            _ => (authority.to_string(), 443),
        };
        // On the server host: the CAs in force, and during a CA rollover the other one too.
        // Elsewhere: the CA kept by `auth set-token --ca-file`.
        let ca = match crate::pki::trusted_cas_pem(&ctx.paths) {
            Ok(pem) => pem,
            Err(e) => kept.as_ref().and_then(|k| k.ca()).ok_or_else(|| {
                Failure::failed(format!(
                    "cannot read the CA certificate: {e}; on another host, keep the server's CA with `vigocli auth set-token --ca-file FILE`"
                ))
            })?,
        };
        let tls = crate::tlsconf::client_config(&ca, None, b"http/1.1").map_err(Failure::failed)?;
        // --token-file (or cli.token_file), else the token kept by `auth set-token`, else the
        // server's local-admin token on this host.
        let token_path = ctx
            .token_file
            .as_ref()
            .map(std::path::PathBuf::from)
            .or_else(|| kept.as_ref().and_then(|k| k.token_file()))
            .unwrap_or_else(|| ctx.paths.admin_token.clone());
        let hint = match ctx.token_file {
            Some(_) => "check the path given to --token-file",
            None => "is vigosrv running on this host? (or pass --token-file, or keep a token with `vigocli auth set-token`)",
        };
        let token = std::fs::read_to_string(&token_path)
            .map_err(|e| {
                Failure::failed(format!("cannot read the admin token {}: {e}; {hint}", token_path.display()))
            })?
            .trim()
            .to_string();
        Ok(AdminClient { url, host, port, tls: Arc::new(tls), token, token_path })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn token_path(&self) -> &std::path::Path {
        &self.token_path
    }

    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Result<Value, Failure> {
        self.call("POST", path, Some(body))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::failed(format!("runtime: {e}")))?;
        let (status, bytes) = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(60), self.send(method, path, body)).await
            })
            .map_err(|_| {
                Failure::failed(format!("the server at {} did not answer within 60s", self.url))
            })??;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let msg = value["error"].as_str().map(String::from).unwrap_or_else(|| format!("HTTP {status}"));
        Err(match status {
            401 | 403 => Failure::refused(format!("the server refused: {msg}")),
            // A name another active envoy or token holds: refused, as an enrollment would be.
            409 => Failure::refused(msg),
            // The server found the arguments bad (a ttl, a name, a role): a usage error here.
            400 => Failure::usage(msg),
            _ => Failure::failed(msg),
        })
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Vec<u8>), Failure> {
        let unreachable = |e: String| {
            Failure::failed(format!(
                "cannot reach the server at {}: {e}; is vigosrv running? (see --server / VIGO_SERVER)",
                self.url
            ))
        };
        let addr = hosts::resolve(&format!("{}:{}", self.host, self.port)).map_err(Failure::usage)?;
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| unreachable(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|_| Failure::usage(format!("bad server host {:?}", self.host)))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| unreachable(format!("TLS: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(conn);
        let payload = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(std::io::Cursor::new(payload)))
            .map_err(|e| Failure::failed(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| unreachable(e.to_string()))?.to_bytes();
        Ok((status, bytes.to_vec()))
    }
}

/// Tells a running server that `key` changed. Err explains why no server was notified.
pub fn notify_rotation(ctx: &Context, key: &str) -> Result<String, String> {
    let client = AdminClient::from_ctx(ctx).map_err(|f| f.message)?;
    let answer =
        client.post("/v1/secrets/rotated", serde_json::json!({ "key": key })).map_err(|f| f.message)?;
    let n = answer["affected_envoys"].as_array().map(Vec::len).unwrap_or(0);
    Ok(format!("Server notified: {n} envoy(s) using {key:?} will apply at their next check-in."))
}
