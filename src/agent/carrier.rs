//! Calls carried on the push channel: while the agent holds its channel (`watch`), its
//! check-ins, secret resolutions and run reports go over it as `PushCall` frames instead of
//! opening a connection each run. The envelope is the same signed request as over gRPC and
//! the server answers it the same way; what the channel saves is the TCP and TLS setup and
//! HTTP/2 (docs/BENCHMARKS.md).
//!
//! One call at a time (the client is `&mut`): the channel's reader (`watch::follow`) hands
//! the one answer awaited to the caller. A channel that fails a call is closed, and the
//! client sends that call's envelope again over gRPC (`SignedClient::carried`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use tokio::io::WriteHalf;
use tokio::sync::{oneshot, Notify};

use crate::proto::v1 as pb;
use crate::push_wire;

/// The agent's end of an open push channel (`SignedClient::open_push` opens it).
pub type PushConnection = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// An answer is awaited this long: the server gives a call 60 s to be answered and the answer
/// (a whole bundle, on a slow link) 60 s more to be sent.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// A frame the server does not take within this long means the channel is stuck.
const WRITE_WITHIN: Duration = Duration::from_secs(10);

/// The server answers the agent's ping every 30 s: a channel it has not been heard on for
/// longer is likely dead (a server host that rebooted, a NAT that forgot the connection), and
/// a call is not trusted to it.
const QUIET_LIMIT: Duration = Duration::from_secs(45);

/// Why a carried call has no answer.
#[derive(Debug, PartialEq)]
pub enum Unanswered {
    /// The call never left (the channel had closed or gone quiet, or the call is too large
    /// for a frame).
    NotSent,
    /// The call left and no answer came: whether the server acted on it is not known.
    Lost(&'static str),
}

/// The half of a channel that sends: shared by the caller, the pinger and the reader.
pub struct Carrier {
    /// None once the channel closed: with the reader's half gone too, the connection closes.
    writer: tokio::sync::Mutex<Option<WriteHalf<PushConnection>>>,
    /// Where the reader puts the answer to the call in flight.
    awaited: Mutex<Option<oneshot::Sender<pb::PushAnswer>>>,
    /// When the reader last had a frame from the server.
    last_heard: Mutex<Instant>,
    closed: AtomicBool,
    /// Tells the reader to close the channel (a call went wrong on it).
    close_now: Notify,
}

impl Carrier {
    pub fn new(writer: WriteHalf<PushConnection>) -> Arc<Carrier> {
        Arc::new(Carrier {
            writer: tokio::sync::Mutex::new(Some(writer)),
            awaited: Mutex::new(None),
            last_heard: Mutex::new(Instant::now()),
            closed: AtomicBool::new(false),
            close_now: Notify::new(),
        })
    }

    /// Whether the channel may still carry a call.
    pub fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// Notes a frame from the server (the reader calls this for every one).
    pub fn heard(&self) {
        *self.last_heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn gone_quiet(&self) -> bool {
        self.last_heard.lock().unwrap_or_else(|p| p.into_inner()).elapsed() > QUIET_LIMIT
    }

    /// Sends `request` (signed for `method`) and waits for its answer.
    pub async fn call(
        &self,
        method: &str,
        request: &pb::SignedRequest,
    ) -> Result<pb::PushAnswer, Unanswered> {
        let call = pb::PushCall { method: method.into(), request: Some(request.clone()) };
        if self.is_open() && self.gone_quiet() {
            tracing::info!("the push channel has been quiet too long; closing it");
            self.close();
        }
        if !self.is_open() || call.encoded_len() > push_wire::MAX_CALL {
            return Err(Unanswered::NotSent);
        }
        let (tx, rx) = oneshot::channel();
        *self.awaited() = Some(tx);
        // Closed while the answer's place was being set: that close may have missed it.
        if !self.is_open() {
            return Err(Unanswered::NotSent);
        }
        // Dropped unfinished, this call would leave an answer on its way that the next call
        // would take for its own: the channel closes instead.
        let in_flight = CloseUnlessDone(self, false);
        self.send(&call.encode_to_vec()).await?;
        let answer = match tokio::time::timeout(ANSWER_WITHIN, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(Unanswered::Lost("the push channel closed before the answer came")),
            Err(_) => Err(Unanswered::Lost("no answer on the push channel in two minutes")),
        };
        in_flight.done(answer.is_ok());
        answer
    }

    /// Writes one frame (a call, or an empty ping).
    pub async fn send(&self, body: &[u8]) -> Result<(), Unanswered> {
        let mut writer = self.writer.lock().await;
        let Some(writer) = writer.as_mut() else { return Err(Unanswered::NotSent) };
        match tokio::time::timeout(WRITE_WITHIN, push_wire::write_frame(writer, body)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Unanswered::Lost("the push channel failed while sending the call")),
        }
    }

    /// Hands an answer that came to the call waiting for it; false when no call waits (the
    /// server broke the protocol).
    pub fn answered(&self, answer: pb::PushAnswer) -> bool {
        match self.awaited().take() {
            Some(tx) => {
                let _ = tx.send(answer);
                true
            }
            None => false,
        }
    }

    /// Marks the channel closed and fails the call waiting, if any; the reader then ends,
    /// and `shut` closes the connection.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.awaited().take();
        self.close_now.notify_one();
    }

    /// Closes the connection for good (the reader's last act, its own half dropped after).
    pub async fn shut(&self) {
        self.close();
        self.writer.lock().await.take();
    }

    /// Resolves once `close` was called (also before this was awaited).
    pub async fn closing(&self) {
        self.close_now.notified().await;
    }

    fn awaited(&self) -> std::sync::MutexGuard<'_, Option<oneshot::Sender<pb::PushAnswer>>> {
        self.awaited.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Closes the channel when dropped, unless the call it guards ended with an answer.
struct CloseUnlessDone<'a>(&'a Carrier, bool);

impl CloseUnlessDone<'_> {
    fn done(mut self, answered: bool) {
        self.1 = answered;
    }
}

impl Drop for CloseUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.close();
        }
    }
}

/// The gRPC status a carried answer stands for.
pub fn status_of(answer: &pb::PushAnswer) -> tonic::Status {
    tonic::Status::new(tonic::Code::from_i32(answer.code), answer.message.clone())
}
