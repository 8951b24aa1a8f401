//! Closes connections that carry no traffic for a while, or that outlive a hard deadline
//! whatever they carry. Agents reconnect (resuming TLS) at each check-in, so an idle
//! connection is dead weight: about 50 KB of TLS and HTTP/2 buffers each, which at fleet
//! scale is most of the server's memory. A connection that never authenticates gets a hard
//! deadline instead, since HTTP/2 PINGs would keep an idle timer happy forever.
//!
//! The stream also holds the connection's slots (see `conn_limits`), so they are freed
//! exactly when the connection is dropped.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{sleep, Instant, Sleep};

pub const AGENT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A TCP stream that fails with `TimedOut` once it has seen no reads or writes for `limit`,
/// or once its hard deadline (if set) has passed.
pub struct IdleTimeout {
    inner: TcpStream,
    limit: Duration,
    last_traffic: Instant,
    deadline: Pin<Box<Sleep>>,
    hard_deadline: Option<Pin<Box<Sleep>>>,
    /// Asked at every turn of the idle timer (once per `limit` at most): a connection whose
    /// answer is no (its envoy was revoked meanwhile) is closed, whatever traffic it carries.
    still_valid: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    slots: Vec<super::conn_limits::Slot>,
}

impl IdleTimeout {
    pub fn new(inner: TcpStream, limit: Duration) -> Self {
        IdleTimeout {
            inner,
            limit,
            last_traffic: Instant::now(),
            deadline: Box::pin(sleep(limit)),
            hard_deadline: None,
            still_valid: None,
            slots: Vec::new(),
        }
    }

    /// Closes the connection at the next turn of the idle timer once `check` says no.
    pub fn revalidate_with(&mut self, check: Box<dyn Fn() -> bool + Send + Sync>) {
        self.still_valid = Some(check);
    }

    /// Ends the connection `after` from now, whatever traffic it carries.
    pub fn close_after(&mut self, after: Duration) {
        self.hard_deadline = Some(Box::pin(sleep(after)));
    }

    /// Keeps `slot` until the connection is dropped.
    pub fn hold(&mut self, slot: super::conn_limits::Slot) {
        self.slots.push(slot);
    }

    /// Gives up the slots held so far (the connection moves to another stage's slots).
    pub fn release_slots(&mut self) {
        self.slots.clear();
    }

    /// Only notes the time: moving the timer on every read and write cost more than the I/O.
    fn touch(&mut self) {
        self.last_traffic = Instant::now();
    }

    /// When the timer fires, the connection is idle unless traffic came since it was set; then
    /// the timer moves to `limit` after that traffic.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.hard_deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready()) {
            return true;
        }
        while self.deadline.as_mut().poll(cx).is_ready() {
            let due = self.last_traffic + self.limit;
            if due <= Instant::now() || self.still_valid.as_ref().is_some_and(|ok| !ok()) {
                return true;
            }
            self.deadline.as_mut().reset(due);
        }
        false
    }

    fn wrote(&mut self, r: &Poll<io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) {
            self.touch();
        }
    }
}

fn idle() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle or past its deadline")
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(idle()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

/// Every write, too, checks the timers first: a peer that stops reading leaves the server's
/// writes pending, and must not hold the connection (or, revoked, keep it) that way.
impl AsyncWrite for IdleTimeout {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(idle()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.wrote(&r);
        r
    }

    /// Forwarded so that TLS records queued together leave in one `writev`; without it every
    /// record of a flight (ServerHello, the encrypted handshake, each HTTP/2 flush) was its
    /// own syscall.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.expired(cx) {
            return Poll::Ready(Err(idle()));
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(idle()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Keeps tonic's view of the peer (address, and through TLS the client certificate).
impl tonic::transport::server::Connected for IdleTimeout {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn silence_closes_and_traffic_keeps_open() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut wrapped = IdleTimeout::new(server, Duration::from_millis(300));
        let mut buf = [0u8; 8];
        // Traffic every 100 ms keeps it open well past the limit.
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(wrapped.read(&mut buf).await.unwrap(), 1);
        }
        // Then silence: the read fails with TimedOut after about the limit.
        let started = std::time::Instant::now();
        let err = wrapped.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    }

    /// A peer that keeps talking (as HTTP/2 PINGs would) is still cut at the hard deadline.
    #[tokio::test]
    async fn traffic_does_not_outlive_a_hard_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut wrapped = IdleTimeout::new(server, Duration::from_secs(60));
        wrapped.close_after(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let mut buf = [0u8; 8];
        let err = loop {
            let _ = client.write_all(b"p").await;
            match tokio::time::timeout(Duration::from_millis(50), wrapped.read(&mut buf)).await {
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => break e,
            }
            assert!(started.elapsed() < Duration::from_secs(5), "never cut");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    /// A connection kept busy (as PINGs would) is closed at the next turn of its idle timer
    /// once it stops being valid (its envoy revoked meanwhile).
    #[tokio::test]
    async fn traffic_does_not_keep_a_connection_that_stopped_being_valid() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut wrapped = IdleTimeout::new(server, Duration::from_millis(200));
        let valid = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let v = valid.clone();
        wrapped.revalidate_with(Box::new(move || v.load(std::sync::atomic::Ordering::Relaxed)));
        let started = std::time::Instant::now();
        let mut buf = [0u8; 8];
        let err = loop {
            if started.elapsed() > Duration::from_millis(600) {
                valid.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            let _ = client.write_all(b"p").await;
            match tokio::time::timeout(Duration::from_millis(50), wrapped.read(&mut buf)).await {
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => break e,
            }
            assert!(started.elapsed() < Duration::from_secs(5), "never cut");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(600), "kept while valid: {:?}", started.elapsed());
    }

    /// A write that cannot proceed (the peer stopped reading) fails once the connection has
    /// moved nothing for the limit, instead of holding the connection forever.
    #[tokio::test]
    async fn a_peer_that_stops_reading_does_not_hold_a_pending_write() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut wrapped = IdleTimeout::new(server, Duration::from_millis(300));
        let chunk = vec![0u8; 64 * 1024];
        let err = loop {
            match tokio::time::timeout(Duration::from_secs(20), wrapped.write(&chunk)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => break e,
                Err(_) => panic!("a pending write outlived the idle limit"),
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn vectored_writes_reach_the_socket_whole() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut wrapped = IdleTimeout::new(server, Duration::from_secs(5));
        assert!(wrapped.is_write_vectored());
        let bufs = [io::IoSlice::new(b"hello "), io::IoSlice::new(b"world")];
        let n = wrapped.write_vectored(&bufs).await.unwrap();
        assert_eq!(n, 11, "both slices in one write");
        drop(wrapped);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello world");
    }
}
