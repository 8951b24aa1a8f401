//! The agent's end of server push: between runs it holds the push channel (framing in
//! `push_wire`), and a nudge that verifies (signed by a CA it trusts, for its own envoy id,
//! fresh, newer than the last) wakes the run loop early. A nudge only moves the next check-in
//! forward; what the agent applies still comes through the signed CheckIn. Without a channel
//! (an older server, a network that cuts long connections, `agent.push = false`) the interval
//! alone drives runs. While the channel is open it also carries the agent's calls
//! (`carrier`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::io::ReadHalf;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::carrier::{Carrier, PushConnection};
use super::client::SignedClient;
use crate::crypto::{self, x509, PublicKeyParts, SignatureScheme};
use crate::paths::AgentPaths;
use crate::proto::v1 as pb;
use crate::push_wire;
use crate::util::time::unix_now_millis;

/// How far a nudge's time may be from ours (the clock skew signed requests are allowed).
const MAX_NUDGE_AGE_MS: i64 = crate::wire::MAX_CLOCK_SKEW_MS;

/// A ping every 30 s keeps the connection inside the server's 60-second idle cut-off; a
/// server that answers nothing (not even a ping) for 70 s is gone.
const PING_EVERY: Duration = Duration::from_secs(30);
const SILENCE_LIMIT: Duration = Duration::from_secs(70);

/// Once a frame has begun, its body has this long to arrive (an answer with a whole bundle on
/// a slow link; the server gives itself as long to send it).
const BODY_WITHIN: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Watcher {
    wake: Arc<Notify>,
    /// Notified when the open channel closes; a new one for each channel, so that a channel
    /// that closed during a run does not make its successor look closed.
    closed: Arc<Notify>,
    follower: Option<JoinHandle<()>>,
    /// The last nudge sequence taken, over all channels: a nudge captured on an earlier
    /// channel cannot be replayed on a later one.
    last_sequence: Arc<AtomicU64>,
}

impl Watcher {
    /// Opens the channel unless one is open, and lets `client` call over it. True when a
    /// channel is held; a failure is logged (the caller decides when to try again).
    pub async fn ensure(&mut self, client: &mut SignedClient, paths: &AgentPaths) -> bool {
        if self.follower.as_ref().is_some_and(|f| !f.is_finished()) {
            return true;
        }
        let keys = match trusted_ca_keys(paths) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "no push channel: cannot read the trusted CAs");
                return false;
            }
        };
        match client.open_push().await {
            Ok(conn) => {
                tracing::info!("holding a push channel: the server can ask for a check-in between intervals");
                let check = NudgeCheck {
                    envoy_id: client.state.envoy_id.clone(),
                    keys,
                    last_sequence: self.last_sequence.clone(),
                };
                self.closed = Arc::new(Notify::new());
                let (wake, closed) = (self.wake.clone(), self.closed.clone());
                let (reader, writer) = tokio::io::split(conn);
                let carrier = Carrier::new(writer);
                client.carry_over(carrier.clone());
                self.follower = Some(tokio::spawn(async move {
                    follow(reader, carrier, check, wake).await;
                    closed.notify_one();
                }));
                true
            }
            Err(f) => {
                tracing::info!(error = %f.message, "no push channel; checking in by interval only");
                false
            }
        }
    }

    /// Resolves once a verified nudge came (also one that came while nobody waited).
    pub async fn nudged(&self) {
        self.wake.notified().await;
    }

    /// Resolves once the open channel closed (also while nobody waited).
    pub async fn lost(&self) {
        self.closed.notified().await;
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(f) = &self.follower {
            f.abort();
        }
    }
}

/// Reads the channel until it ends or goes silent, pinging meanwhile: hands answers to the
/// call waiting (`carrier`), and wakes the run loop on a nudge that verifies. A nudge that
/// does not verify ends the channel (the CAs may have changed: the next `ensure` reads them
/// again). The run loop opens a new channel after the old one ends
/// (`run::idle_until_next_run`).
async fn follow(
    mut reader: ReadHalf<PushConnection>,
    carrier: Arc<Carrier>,
    mut check: NudgeCheck,
    wake: Arc<Notify>,
) {
    let pinging = carrier.clone();
    let pinger = tokio::spawn(async move {
        loop {
            tokio::time::sleep(PING_EVERY).await;
            if pinging.send(&[]).await.is_err() {
                return pinging.close();
            }
        }
    });
    let _stop_pinging = AbortOnDrop(pinger);
    read_frames(&mut reader, &carrier, &mut check, &wake).await;
    carrier.shut().await;
}

async fn read_frames(
    reader: &mut ReadHalf<PushConnection>,
    carrier: &Carrier,
    check: &mut NudgeCheck,
    wake: &Arc<Notify>,
) {
    use pb::push_frame::Frame;
    loop {
        let frame = tokio::select! {
            read = read_frame(reader) => match read {
                Ok(f) => f,
                Err(why) => return tracing::info!(why, "the push channel closed"),
            },
            _ = carrier.closing() => return tracing::info!("closing the push channel: a call on it failed"),
        };
        carrier.heard();
        if frame.is_empty() {
            continue; // the answer to a ping
        }
        let nudge = match pb::PushFrame::decode(frame.as_slice()).ok().and_then(|f| f.frame) {
            Some(Frame::Nudge(n)) => n,
            Some(Frame::Answer(a)) => match carrier.answered(a) {
                true => continue,
                false => return tracing::warn!("the push channel answered a call not made; closing it"),
            },
            None => return tracing::warn!("the push channel sent a frame that does not decode; closing it"),
        };
        if let Err(why) = check.accept(&nudge, unix_now_millis()) {
            return tracing::warn!(reason = %crate::util::text::excerpt(&nudge.reason), why, "ignored a nudge that does not verify; closing the channel");
        }
        tracing::info!(reason = %nudge.reason, "nudged by the server: checking in");
        // Waited apart: answers keep being read meanwhile.
        let (wait, wake) = (random_below(nudge.spread_ms), wake.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            wake.notify_one();
        });
    }
}

/// One frame from the server: silence before it begins is bounded by the pings' answers,
/// its body by how long an answer may take to send.
async fn read_frame(reader: &mut ReadHalf<PushConnection>) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let len = match tokio::time::timeout(SILENCE_LIMIT, reader.read_u32()).await {
        Ok(read) => read.map_err(|e| e.to_string())? as usize,
        Err(_) => return Err("it went silent".into()),
    };
    push_wire::check_length(len, push_wire::MAX_ANSWER).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; len];
    match tokio::time::timeout(BODY_WITHIN, reader.read_exact(&mut body)).await {
        Ok(read) => read.map_err(|e| e.to_string())?,
        Err(_) => return Err("a frame did not arrive whole in time".into()),
    };
    Ok(body)
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A random number of milliseconds below `spread_ms` (0 for 0).
pub fn random_below(spread_ms: u32) -> u64 {
    if spread_ms == 0 {
        return 0;
    }
    let r = crypto::random_bytes(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
    u64::from(r % spread_ms)
}

/// The public keys of the CAs this agent trusts (a nudge is signed by the active one).
fn trusted_ca_keys(paths: &AgentPaths) -> Result<Vec<Vec<u8>>, String> {
    let pem =
        std::fs::read_to_string(&paths.ca_cert).map_err(|e| format!("{}: {e}", paths.ca_cert.display()))?;
    let certs = x509::certs_from_pem(&pem).map_err(|e| e.to_string())?;
    Ok(certs.iter().filter_map(|c| x509::p256_key_in_cert(c)).collect())
}

/// What a nudge must be to count.
struct NudgeCheck {
    envoy_id: String,
    keys: Vec<Vec<u8>>,
    last_sequence: Arc<AtomicU64>,
}

impl NudgeCheck {
    fn accept(&mut self, n: &pb::Nudge, now_ms: i64) -> Result<(), &'static str> {
        let message =
            crate::wire::nudge_message(&self.envoy_id, &n.reason, n.timestamp_ms, n.sequence, n.spread_ms);
        let signed = self.keys.iter().any(|k| {
            crypto::verify_signature(
                &PublicKeyParts::EcdsaP256(k.clone()),
                SignatureScheme::EcdsaP256Sha256,
                &message,
                &n.signature,
            )
            .is_ok()
        });
        if !signed {
            return Err("not signed by a trusted CA for this envoy");
        }
        if n.timestamp_ms.abs_diff(now_ms) > MAX_NUDGE_AGE_MS.unsigned_abs() {
            return Err("too old or from the future");
        }
        // Only this channel's follower takes nudges, so load-then-store does not race.
        if n.sequence <= self.last_sequence.load(Ordering::Relaxed) {
            return Err("replayed");
        }
        self.last_sequence.store(n.sequence, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(ca: &x509::CertAndKey, envoy: &str, ts: i64, seq: u64) -> pb::Nudge {
        let m = crate::wire::nudge_message(envoy, "publish", ts, seq, 0);
        let signature = x509::CaSigner::from_pem(ca.key_pem.expose()).unwrap().sign(&m).unwrap();
        pb::Nudge { reason: "publish".into(), timestamp_ms: ts, sequence: seq, spread_ms: 0, signature }
    }

    fn key(ca: &x509::CertAndKey) -> Vec<u8> {
        x509::p256_key_in_cert(&x509::certs_from_pem(&ca.cert_pem).unwrap()[0]).unwrap()
    }

    /// Only a fresh, newer nudge for this envoy signed by a trusted CA wakes the agent.
    #[test]
    fn a_nudge_counts_only_signed_for_this_envoy_fresh_and_new() {
        let (ca, other) = (x509::generate_ca(1).unwrap(), x509::generate_ca(1).unwrap());
        let now = 1_000_000_000_000;
        let mut check =
            NudgeCheck { envoy_id: "e1".into(), keys: vec![key(&ca)], last_sequence: Arc::default() };
        check.accept(&signed(&ca, "e1", now, 5), now).unwrap();
        assert_eq!(check.accept(&signed(&ca, "e1", now, 5), now), Err("replayed"));
        assert_eq!(check.accept(&signed(&ca, "e1", now, 4), now), Err("replayed"));
        assert!(check.accept(&signed(&other, "e1", now, 9), now).is_err(), "an untrusted CA");
        assert!(check.accept(&signed(&ca, "e2", now, 9), now).is_err(), "another envoy's nudge");
        let stale = now - MAX_NUDGE_AGE_MS - 1;
        assert_eq!(check.accept(&signed(&ca, "e1", stale, 9), now), Err("too old or from the future"));
        let mut tampered = signed(&ca, "e1", now, 9);
        tampered.spread_ms = 60_000;
        assert!(check.accept(&tampered, now).is_err(), "the spread is signed");
        check.accept(&signed(&ca, "e1", now, 9), now).unwrap();
        assert_eq!(check.accept(&signed(&ca, "e1", i64::MIN, 10), now), Err("too old or from the future"));
        assert_eq!(check.accept(&signed(&ca, "e1", i64::MAX, 10), now), Err("too old or from the future"));
    }

    /// A nudge taken on one channel cannot be replayed on the next: the sequence is the
    /// watcher's, not the channel's.
    #[test]
    fn a_later_channel_refuses_a_nudge_an_earlier_one_took() {
        let ca = x509::generate_ca(1).unwrap();
        let now = 1_000_000_000_000;
        let taken = Arc::new(AtomicU64::new(0));
        let channel =
            || NudgeCheck { envoy_id: "e1".into(), keys: vec![key(&ca)], last_sequence: taken.clone() };
        let nudge = signed(&ca, "e1", now, 7);
        channel().accept(&nudge, now).unwrap();
        assert_eq!(channel().accept(&nudge, now), Err("replayed"));
        channel().accept(&signed(&ca, "e1", now, 8), now).unwrap();
    }
}
