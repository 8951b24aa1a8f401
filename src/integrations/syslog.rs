//! The syslog sink: each audit row is one RFC 5424 message whose MSG is the row's JSON line,
//! sent over TLS (RFC 5425: octet-counting framing, the receiver's CA pinned, TLS 1.3), plain
//! TCP (the same framing, RFC 6587) or UDP (one datagram per message, RFC 5426).
//!
//! Syslog has no acknowledgements, so a row written to a connection is not yet known to be
//! received. A row counts as delivered once the connection it went out on has stayed up for
//! `SETTLE` after it was written; when a connection ends, every row not yet counted is sent
//! again on the next one. A receiver may see a row twice; it never misses one because a
//! connection dropped. UDP is best effort: a datagram sent counts as delivered.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::audit::Row;
use crate::settings::SyslogSink;

/// How long a connection must stay up after a row is written before the row counts.
pub const SETTLE: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A receiver that stops reading for this long is treated as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest UDP payload; a bigger message is not sent (UDP is best effort).
const MAX_DATAGRAM: usize = 65_000;

/// RFC 5424 severity: warning for refusals and failures, notice for everything else.
fn severity(action: &str) -> u8 {
    if ["denied", "failed", "rejected", "locked", "refused", "fallback"].iter().any(|w| action.contains(w)) {
        4
    } else {
        5
    }
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, else `-`.
fn field(text: &str, max: usize) -> String {
    let clean: String = text.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

/// One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME vigo PROCID MSGID - MSG`, the row's
/// action as MSGID (so receivers can filter without parsing), the row as MSG.
pub fn format(row: &Row, facility: u8, hostname: &str) -> String {
    let pri = u16::from(facility) * 8 + u16::from(severity(&row.action));
    format!(
        "<{pri}>1 {} {} vigo {} {} - {}",
        field(&row.ts, 64),
        field(hostname, 255),
        std::process::id(),
        field(&row.action, 32),
        crate::audit::to_line(row)
    )
}

/// RFC 5425 / RFC 6587 octet counting: `LEN SP MSG`.
pub fn frame(message: &str) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message.as_bytes());
    out
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

enum Conn {
    Stream(Box<dyn Stream>),
    Datagram(UdpSocket),
}

pub struct Syslog {
    address: String,
    transport: String,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    facility: u8,
    hostname: String,
    conn: Option<Conn>,
    /// Rows written on the current connection and not yet counted: (seq, when written).
    unsettled: VecDeque<(i64, Instant)>,
}

impl Syslog {
    pub fn new(s: &SyslogSink) -> Result<Syslog, String> {
        let tls = match s.transport.as_str() {
            "tls" => {
                let ca_file = s.ca_file.as_deref().unwrap_or_default();
                let pem = std::fs::read_to_string(ca_file).map_err(|e| format!("ca_file {ca_file}: {e}"))?;
                let roots =
                    crate::tlsconf::roots_from_pem(&pem).map_err(|e| format!("ca_file {ca_file}: {e}"))?;
                if roots.is_empty() {
                    return Err(format!("ca_file {ca_file} holds no certificate"));
                }
                let config = rustls::ClientConfig::builder_with_provider(crate::tlsconf::provider())
                    .with_protocol_versions(&[&rustls::version::TLS13])
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let host = match &s.server_name {
                    Some(n) => n.clone(),
                    None => s.address.rsplit_once(':').map(|(h, _)| h).unwrap_or_default().to_string(),
                };
                let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
                let name = ServerName::try_from(host.clone()).map_err(|_| {
                    format!("{host:?} is not a name a certificate can carry (set server_name)")
                })?;
                Some((Arc::new(config), name))
            }
            _ => None,
        };
        Ok(Syslog {
            address: s.address.clone(),
            transport: s.transport.clone(),
            tls,
            facility: s.facility_code(),
            hostname: s.hostname.clone().unwrap_or_else(crate::util::hosts::hostname),
            conn: None,
            unsettled: VecDeque::new(),
        })
    }

    async fn connect(&self) -> Result<Conn, String> {
        let address = self.address.clone();
        let addr = tokio::task::spawn_blocking(move || crate::util::hosts::resolve(&address))
            .await
            .map_err(|e| e.to_string())??;
        if self.transport == "udp" {
            let local = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let sock = UdpSocket::bind(local).await.map_err(|e| format!("udp socket: {e}"))?;
            sock.connect(addr).await.map_err(|e| format!("udp {addr}: {e}"))?;
            return Ok(Conn::Datagram(sock));
        }
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {} ({addr}) timed out", self.address))?
            .map_err(|e| format!("cannot connect to {} ({addr}): {e}", self.address))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Conn::Stream(Box::new(tcp))),
            Some((config, name)) => {
                let tls = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    tokio_rustls::TlsConnector::from(config.clone()).connect(name.clone(), tcp),
                )
                .await
                .map_err(|_| format!("TLS handshake with {} timed out", self.address))?
                .map_err(|e| format!("TLS with {}: {e}", self.address))?;
                Ok(Conn::Stream(Box::new(tls)))
            }
        }
    }

    /// Sends `rows`; returns the last row that now counts as delivered, if any moved. An error
    /// drops the connection, and the caller sends again from its last counted row.
    pub async fn send(&mut self, rows: &[Row]) -> Result<Option<i64>, String> {
        let result = self.send_inner(rows).await;
        if result.is_err() {
            self.reset();
        }
        result
    }

    async fn send_inner(&mut self, rows: &[Row]) -> Result<Option<i64>, String> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        self.check_alive().await?;
        let (facility, hostname) = (self.facility, self.hostname.clone());
        match self.conn.as_mut() {
            Some(Conn::Datagram(sock)) => {
                for row in rows {
                    let msg = format(row, facility, &hostname);
                    if msg.len() > MAX_DATAGRAM {
                        tracing::warn!(
                            seq = row.seq,
                            bytes = msg.len(),
                            "audit row too large for a UDP datagram; not sent (use tcp or tls)"
                        );
                        continue;
                    }
                    sock.send(msg.as_bytes())
                        .await
                        .map_err(|e| format!("udp send to {}: {e}", self.address))?;
                }
                Ok(rows.last().map(|r| r.seq))
            }
            Some(Conn::Stream(stream)) => {
                let mut bytes = Vec::new();
                for row in rows {
                    bytes.extend(frame(&format(row, facility, &hostname)));
                }
                let write = async {
                    stream.write_all(&bytes).await?;
                    stream.flush().await
                };
                tokio::time::timeout(WRITE_TIMEOUT, write)
                    .await
                    .map_err(|_| {
                        format!("{} stopped reading for {}s", self.address, WRITE_TIMEOUT.as_secs())
                    })?
                    .map_err(|e| format!("writing to {}: {e}", self.address))?;
                let now = Instant::now();
                self.unsettled.extend(rows.iter().map(|r| (r.seq, now)));
                Ok(self.settled())
            }
            None => Err("not connected".into()),
        }
    }

    /// Called when there is nothing new to send: rows that have settled, or an error if the
    /// receiver has closed the connection meanwhile (their rows are then sent again).
    pub async fn poll(&mut self) -> Result<Option<i64>, String> {
        if self.conn.is_none() {
            return Ok(None);
        }
        if let Err(e) = self.check_alive().await {
            self.reset();
            return Err(e);
        }
        Ok(self.settled())
    }

    /// At shutdown: waits (at most `SETTLE`) for the rows in flight to settle on a connection
    /// that stays up, so a restart does not send them again; returns the last that did.
    pub async fn drain(&mut self) -> Option<i64> {
        let mut last = None;
        let until = Instant::now() + SETTLE + Duration::from_millis(100);
        while self.unsettled() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.poll().await {
                Ok(Some(s)) => last = Some(s),
                Ok(None) => {}
                Err(_) => return last,
            }
        }
        last
    }

    /// Whether anything is waiting to settle.
    pub fn unsettled(&self) -> bool {
        !self.unsettled.is_empty()
    }

    fn settled(&mut self) -> Option<i64> {
        let mut last = None;
        while let Some((seq, at)) = self.unsettled.front() {
            if at.elapsed() < SETTLE {
                break;
            }
            last = Some(*seq);
            self.unsettled.pop_front();
        }
        last
    }

    /// A receiver never writes to us: anything readable is its close (EOF) or an error.
    async fn check_alive(&mut self) -> Result<(), String> {
        let Some(Conn::Stream(stream)) = self.conn.as_mut() else { return Ok(()) };
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::ZERO, stream.read(&mut buf)).await {
            Err(_) => Ok(()),
            Ok(Ok(0)) => Err(format!("{} closed the connection", self.address)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("connection to {}: {e}", self.address)),
        }
    }

    fn reset(&mut self) {
        self.conn = None;
        self.unsettled.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str) -> Row {
        Row {
            seq: 7,
            ts: "2026-11-22T22:22:51.123Z".into(),
            actor: "user:zoë".into(),
            action: action.into(),
            target: "app/db".into(),
            detail: "{\"k\":1}".into(),
            prev_hash: vec![0; 32],
            hash: vec![1; 32],
        }
    }

    #[test]
    fn messages_are_rfc5424_with_the_row_as_an_ascii_message() {
        let m = format(&row("secret.set"), 10, "web 1");
        let pid = std::process::id();
        let expected_head =
            format!("<85>1 2026-11-22T22:22:51.123Z web1 vigo {pid} secret.set - {{\"seq\":7,");
        assert!(m.starts_with(&expected_head), "{m}");
        assert!(m.is_ascii() && m.contains("zo\\u00eb"), "{m}");
        // Refusals are warnings; facility local0 (16).
        assert!(format(&row("secret.entitlement_denied"), 16, "h").starts_with("<132>1 "));
        // An action that is not a valid MSGID is cut and cleaned.
        let long = format(&row(&"a b".repeat(40)), 10, "");
        let parts: Vec<&str> = long.splitn(7, ' ').collect();
        assert_eq!(parts[2], "-", "empty hostname");
        assert_eq!(parts[5].len(), 32);
    }

    #[test]
    fn frames_count_octets() {
        assert_eq!(frame("<85>1 x"), b"7 <85>1 x");
        let text = "é".repeat(3);
        assert_eq!(&frame(&text)[..2], b"6 ");
    }
}
