//! The admin listener's whole-request deadline: a request's head and body must have arrived
//! within `limits.admin_request_timeout` of its first byte. hyper bounds the head alone; a
//! client sending the body a byte at a time would otherwise hold a connection (and its slot)
//! for as long as it likes, since every byte resets the idle timer.
//!
//! The connection's stream notes when each request's first byte arrives (`ClockedStream`);
//! the listener puts the deadline that follows into the request (`RequestDeadline`); the
//! router's outermost layer (`enforce`) makes the body fail once it passes, and answers 408
//! with `Connection: close` if the handler was reading it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// When the request being read began: its first byte after the previous answer went out.
#[derive(Default)]
pub struct RequestClock {
    started: Mutex<Option<Instant>>,
}

impl RequestClock {
    /// The deadline of the request whose head has just been read.
    pub fn deadline(&self, limit: std::time::Duration) -> RequestDeadline {
        let started = self.started.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(Instant::now);
        RequestDeadline(started + limit)
    }

    fn set(&self, value: Option<Instant>) {
        *self.started.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

/// A connection's stream that stamps `clock` with the arrival of each request's first byte.
pub struct ClockedStream<S> {
    inner: S,
    clock: Arc<RequestClock>,
    /// No byte has come since the last answer went out: the next one begins a request.
    between_requests: bool,
}

impl<S> ClockedStream<S> {
    pub fn new(inner: S, clock: Arc<RequestClock>) -> Self {
        ClockedStream { inner, clock, between_requests: true }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClockedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.between_requests && buf.filled().len() > before {
            self.between_requests = false;
            self.clock.set(Some(Instant::now()));
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClockedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            // An answer is going out; a request already buffered behind it counts from when
            // its handler is called, the next one from its first byte.
            self.between_requests = true;
            self.clock.set(None);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// By when the request's body must have arrived whole (a request extension).
#[derive(Clone, Copy, Debug)]
pub struct RequestDeadline(pub Instant);

/// The error a body gives once its deadline has passed.
#[derive(Debug)]
struct TooSlow;

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for TooSlow {}

/// A body that fails once `deadline` has passed, noting it in `fired`.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    fired: Arc<AtomicBool>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        // Checked before the data: a trickle is always ready with one more byte.
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.fired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(TooSlow))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The router's outermost layer: bounds the body by the request's deadline, and answers 408
/// (closing the connection) when a handler's read of it ran past.
pub async fn enforce(request: Request, next: Next) -> Response {
    let Some(RequestDeadline(at)) = request.extensions().get::<RequestDeadline>().copied() else {
        return next.run(request).await;
    };
    let fired = Arc::new(AtomicBool::new(false));
    let request = request.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(at)),
            fired: fired.clone(),
        })
    });
    let response = next.run(request).await;
    if !fired.load(Ordering::Relaxed) {
        return response;
    }
    let message =
        "the request did not arrive whole in time (limits.admin_request_timeout); send it again, faster";
    let mut refused =
        (StatusCode::REQUEST_TIMEOUT, axum::Json(serde_json::json!({ "error": message }))).into_response();
    refused.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_clock_starts_at_a_requests_first_byte_and_stops_at_the_answer() {
        let (client, server) = tokio::io::duplex(1024);
        let clock = Arc::new(RequestClock::default());
        let mut stream = ClockedStream::new(server, clock.clone());
        let (mut client_read, mut client_write) = tokio::io::split(client);
        tokio::time::sleep(Duration::from_millis(200)).await;
        client_write.write_all(b"GET").await.unwrap();
        let mut buf = [0u8; 16];
        let n = stream.read(&mut buf).await.unwrap();
        assert_eq!(n, 3);
        let first = clock.started.lock().unwrap().expect("stamped at the first byte");
        tokio::time::sleep(Duration::from_millis(100)).await;
        client_write.write_all(b" / HTTP/1.1\r\n").await.unwrap();
        let _ = stream.read(&mut buf).await.unwrap();
        assert_eq!(
            clock.started.lock().unwrap().unwrap(),
            first,
            "later bytes of the request do not move it"
        );
        stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert!(clock.started.lock().unwrap().is_none(), "the answer ends the request");
        let _ = client_read.read(&mut buf).await.unwrap();
    }
}
