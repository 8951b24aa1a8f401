//! hyper answers a request it cannot parse by itself — 400 for a malformed request line or
//! header, 414 for a URI too long, 431 for a head past its buffer — with an empty body and none
//! of our headers, before any of our code sees the request. Every other error of the admin API
//! is JSON (`{"error": …}`) with the security headers; so are these, rewritten on their way
//! out. They are recognisable as the only answers without our Content-Security-Policy, which
//! the router's outermost layer puts on every answer it gives.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's stream that swaps hyper's own refusals for JSON ones.
pub struct JsonRefusals<S> {
    inner: S,
    /// A replacement answer still to be written, and how much of it has been.
    pending: Vec<u8>,
    written: usize,
}

impl<S> JsonRefusals<S> {
    pub fn new(inner: S) -> Self {
        JsonRefusals { inner, pending: Vec::new(), written: 0 }
    }
}

impl<S: AsyncWrite + Unpin> JsonRefusals<S> {
    fn write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonRefusals<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonRefusals<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.write_pending(cx))?;
        if let Some(answer) = replacement_for(data) {
            // hyper's answer counts as written; ours goes out before anything else does.
            self.pending = answer;
            if let Poll::Ready(Err(e)) = self.write_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(data.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.write_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.write_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The JSON answer standing for `data` when `data` is one of hyper's own refusals.
fn replacement_for(data: &[u8]) -> Option<Vec<u8>> {
    let code = data.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let (status, message) = match code {
        b"400" => ("400 Bad Request", "the request is not well-formed HTTP/1.1"),
        b"414" => ("414 URI Too Long", "the request's URI is too long"),
        b"431" => (
            "431 Request Header Fields Too Large",
            "the request's line and headers are over 64 KiB, or too many",
        ),
        _ => return None,
    };
    let end = data.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = data[..end].to_ascii_lowercase();
    if head.windows(25).any(|w| w == b"content-security-policy: ") {
        return None;
    }
    let body = serde_json::json!({ "error": message }).to_string();
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\ncache-control: no-store\r\n",
        body.len()
    );
    for (name, value) in crate::server::web::SECURITY_HEADERS {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn hypers_own_refusals_become_json_and_ours_pass_untouched() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let mut stream = JsonRefusals::new(server);
        let ours = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-security-policy: default-src 'none'\r\ncontent-length: 2\r\n\r\n{}";
        stream.write_all(ours.as_bytes()).await.unwrap();
        stream.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        stream.flush().await.unwrap();
        drop(stream);
        let mut got = String::new();
        let mut client = client;
        client.read_to_string(&mut got).await.unwrap();
        let (first, second) = got.split_at(ours.len());
        assert_eq!(first, ours);
        assert!(second.starts_with("HTTP/1.1 431 "), "{second}");
        assert!(second.contains("content-type: application/json\r\n"), "{second}");
        assert!(second.contains("x-content-type-options: nosniff\r\n"), "{second}");
        let body: serde_json::Value = serde_json::from_str(second.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert!(body["error"].as_str().unwrap().contains("64 KiB"), "{body}");
    }
}
