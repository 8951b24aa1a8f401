//! The server's end of the push channel (framing in `push_wire`): a connection to the agent
//! port that negotiated `vigo-push/2` sends one signed Watch envelope, is answered, and then
//! carries nudges (`nudges`), ping answers, and the agent's calls with their answers, until
//! either side closes it. Kept apart from gRPC because an idle HTTP/2 connection costs the
//! server twice what an idle push connection may, and a call carried here costs it less
//! than one on a connection of its own (docs/BENCHMARKS.md).

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_stream::StreamExt;

use super::grpc::AgentService;
use super::state::Server;
use crate::proto::v1 as pb;
use crate::push_wire::{self, read_message, write_frame, write_message};

/// The Watch envelope must arrive this soon after the handshake.
const OPEN_WITHIN: Duration = Duration::from_secs(10);

/// A frame the peer does not take within this long (it stopped reading) closes the channel.
const WRITE_WITHIN: Duration = Duration::from_secs(10);

/// A carried call is given this long to be answered, and its answer (a whole bundle, on a
/// slow link) as long again to be taken, as the agent gives a gRPC call.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// Agents ping every 30 s. A few pings may come together (they queue behind a call, which
/// may take two minutes), but a peer that keeps pinging faster than one per `PING_REFILL`
/// is flooding (each answer costs a TLS record and a flush) and is closed.
const PING_BURST: u32 = 4;
const PING_REFILL: Duration = Duration::from_secs(5);

/// Serves one push connection to its end. `leaf` is the client certificate it showed.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    leaf: CertificateDer<'static>,
    server: Arc<Server>,
) {
    let opened = match tokio::time::timeout(OPEN_WITHIN, open(&mut conn, &leaf, &server)).await {
        Ok(o) => o,
        Err(_) => return,
    };
    let envoy_id = match opened {
        Ok(id) => id,
        Err(refused) => {
            let _ = within(WRITE_WITHIN, write_message(&mut conn, &pb::WatchAnswer { refused })).await;
            return;
        }
    };
    // Registered before the answer, so a nudge sent once the agent knows it is watching
    // cannot be missed.
    let mut nudges = server.nudges.stream(server.clone(), &envoy_id);
    // A revocation between the check of the envelope and the registration above would have
    // missed this stream: ask again now that it is registered.
    if !server.is_current_envoy(&envoy_id) {
        return;
    }
    if !within(WRITE_WITHIN, write_message(&mut conn, &pb::WatchAnswer::default())).await {
        return;
    }
    let calls = AgentService { server: server.clone() };
    let mut incoming = Incoming::default();
    let mut pings = PingBudget::default();
    loop {
        tokio::select! {
            read = incoming.read_from(&mut conn) => {
                let frame = match read {
                    Ok(Some(frame)) => frame,
                    Ok(None) => continue,
                    Err(_) => return,
                };
                if frame.is_empty() {
                    if !pings.take(tokio::time::Instant::now()) || !within(WRITE_WITHIN, write_frame(&mut conn, &[])).await {
                        return;
                    }
                    continue;
                }
                // Anything but a call after the envelope breaks the protocol: close.
                let Ok(call) = pb::PushCall::decode(frame.as_slice()) else { return };
                drop(frame);
                // Boxed: the call's state lives only while it runs, not in every idle
                // channel's task (that would cost each one a few KB more).
                let answering = Box::pin(calls.carried(&leaf, call));
                let Ok(answer) = tokio::time::timeout(ANSWER_WITHIN, answering).await else {
                    return;
                };
                if !within(ANSWER_WITHIN, write_message(&mut conn, &answer_frame(answer))).await {
                    return;
                }
            }
            next = nudges.next() => match next {
                Some(Ok(n)) => {
                    let frame = pb::PushFrame { frame: Some(pb::push_frame::Frame::Nudge(n)) };
                    if !within(WRITE_WITHIN, write_message(&mut conn, &frame)).await {
                        return;
                    }
                }
                Some(Err(e)) => return tracing::warn!(error = %e.message(), "push channel closed"),
                // Another stream of the same envoy replaced this one.
                None => return,
            },
        }
    }
}

/// Pings a peer may still send now: `PING_BURST` at most, one more each `PING_REFILL`.
struct PingBudget {
    left: u32,
    since: tokio::time::Instant,
}

impl Default for PingBudget {
    fn default() -> Self {
        PingBudget { left: PING_BURST, since: tokio::time::Instant::now() }
    }
}

impl PingBudget {
    /// Takes one ping's worth; false when none is left (a flood).
    fn take(&mut self, now: tokio::time::Instant) -> bool {
        let earned = (now - self.since).as_millis() / PING_REFILL.as_millis();
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        self.left = self.left.saturating_add(earned).min(PING_BURST);
        self.since = match self.left {
            PING_BURST => now,
            _ => self.since + PING_REFILL * earned,
        };
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

/// The frame being read: its 4-byte length, then its body. Read a piece at a time (each
/// `read_from` is one read, and safe to drop unfinished), so that a nudge never waits behind
/// a frame that is half in; an idle channel holds four bytes here.
enum Incoming {
    Length([u8; 4], usize),
    Body(Vec<u8>, usize),
}

impl Default for Incoming {
    fn default() -> Self {
        Incoming::Length([0; 4], 0)
    }
}

impl Incoming {
    /// One read: a whole frame once its last byte came, None before. An end of the
    /// connection or a length over `push_wire::MAX_CALL` is an error.
    async fn read_from<S: AsyncRead + Unpin>(&mut self, conn: &mut S) -> std::io::Result<Option<Vec<u8>>> {
        let (buf, filled) = match self {
            Incoming::Length(len, filled) => (&mut len[..], filled),
            Incoming::Body(body, filled) => (&mut body[..], filled),
        };
        if *filled < buf.len() {
            match conn.read(&mut buf[*filled..]).await? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => *filled += n,
            }
            if *filled < buf.len() {
                return Ok(None);
            }
        }
        match std::mem::take(self) {
            Incoming::Length(len, _) => {
                let len = u32::from_be_bytes(len) as usize;
                push_wire::check_length(len, push_wire::MAX_CALL)?;
                match len {
                    0 => Ok(Some(Vec::new())),
                    _ => {
                        *self = Incoming::Body(vec![0; len], 0);
                        Ok(None)
                    }
                }
            }
            Incoming::Body(body, _) => Ok(Some(body)),
        }
    }
}

/// Whether a write finished, and in time.
async fn within(limit: Duration, write: impl std::future::Future<Output = std::io::Result<()>>) -> bool {
    matches!(tokio::time::timeout(limit, write).await, Ok(Ok(())))
}

/// The frame that carries `answer`; an answer larger than an agent reads on the channel
/// becomes an error saying so (the agent would otherwise drop the channel for it and see no
/// answer at all).
fn answer_frame(answer: pb::PushAnswer) -> pb::PushFrame {
    let frame = pb::PushFrame { frame: Some(pb::push_frame::Frame::Answer(answer)) };
    let len = frame.encoded_len();
    if len <= push_wire::MAX_ANSWER {
        return frame;
    }
    let too_large = pb::PushAnswer {
        // Not a refusal: the agent reports the run that could not go on, as it does when a
        // gRPC answer is over its size limit.
        code: tonic::Code::OutOfRange as i32,
        message: format!(
            "an answer of {len} bytes, over the {} the push channel carries",
            push_wire::MAX_ANSWER
        ),
        payload: Vec::new(),
    };
    pb::PushFrame { frame: Some(pb::push_frame::Frame::Answer(too_large)) }
}

/// Reads and checks the Watch envelope (certificate, signature, time, sequence, as any call);
/// the envoy's id, or why it is refused.
async fn open<S: AsyncRead + Unpin>(
    conn: &mut S,
    leaf: &CertificateDer<'_>,
    server: &Server,
) -> Result<String, String> {
    let env: pb::SignedRequest = read_message(conn).await.map_err(|e| format!("no Watch envelope: {e}"))?;
    let v = server.verify_from(leaf, &env, crate::wire::METHOD_WATCH).map_err(|s| s.message().to_string())?;
    pb::WatchRequest::decode(v.payload.as_slice())
        .map_err(|_| "the payload is not a WatchRequest".to_string())?;
    server.write_fresh(&v, |_, _| Ok(())).await.map_err(|s| s.message().to_string())?;
    Ok(v.envoy.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four pings may come at once (they queue behind a slow call); beyond that, one per 5 s.
    #[test]
    fn pings_may_come_a_few_at_once_but_not_as_a_flood() {
        let start = tokio::time::Instant::now();
        let mut budget = PingBudget { left: PING_BURST, since: start };
        assert!((0..PING_BURST).all(|_| budget.take(start)), "a burst of four");
        assert!(!budget.take(start), "the fifth at once is a flood");
        let later = start + PING_REFILL;
        assert!(budget.take(later) && !budget.take(later), "one more after 5 s");
        let idle = later + PING_REFILL * 100;
        assert!(
            (0..PING_BURST).all(|_| budget.take(idle)) && !budget.take(idle),
            "never more than four saved"
        );
    }

    /// An answer larger than an agent reads on the channel is sent as an error that says so,
    /// not as a frame the agent would drop the channel for.
    #[test]
    fn an_answer_too_large_for_the_channel_becomes_an_error() {
        let answer = |n: usize| pb::PushAnswer { code: 0, message: String::new(), payload: vec![7; n] };
        let fits = answer_frame(answer(push_wire::MAX_ANSWER - 64));
        assert!(fits.encoded_len() <= push_wire::MAX_ANSWER);
        assert!(matches!(fits.frame, Some(pb::push_frame::Frame::Answer(a)) if a.code == 0));
        let over = answer_frame(answer(push_wire::MAX_ANSWER));
        let Some(pb::push_frame::Frame::Answer(a)) = over.frame else { panic!("an answer") };
        assert_eq!(a.code, tonic::Code::OutOfRange as i32);
        assert!(a.message.contains("push channel carries") && a.payload.is_empty(), "{}", a.message);
    }
}
