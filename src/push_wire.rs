//! The push channel's framing, shared by both ends (see the comment above `WatchRequest` in
//! agent.proto): after a TLS handshake that chose `ALPN`, each frame is a 4-byte big-endian
//! length and one protobuf message; an empty frame is a ping (agent) or its answer (server).
//! Each end bounds what it reads: the server the agent's calls (`MAX_CALL`), the agent the
//! server's answers (`MAX_ANSWER`); the Watch envelope and its answer are far smaller
//! (`MAX_OPENING`).

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const ALPN: &[u8] = b"vigo-push/2";

/// The largest Watch envelope and WatchAnswer (a few hundred bytes each): the server reads the
/// envelope before it knows who is calling.
pub const MAX_OPENING: usize = 4096;

/// The largest call the agent sends on the channel: room for a check-in with its traits
/// (64 KiB at most) and a report of a few hundred resources. A larger call goes over gRPC.
pub const MAX_CALL: usize = 256 * 1024;

/// The largest frame the agent reads from the server: a check-in answer carries the whole
/// bundle when it changed; the same bound as a gRPC answer (tonic's default 4 MiB).
pub const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// Writes one message as a frame and flushes it.
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, m: &impl Message) -> std::io::Result<()> {
    let body = m.encode_to_vec();
    write_frame(w, &body).await
}

/// Writes one frame (an empty `body` is a ping or its answer) and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads one frame's body (empty for a ping), of at most `max` bytes. Not cancel-safe: read
/// frames in one place.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Vec<u8>> {
    let len = r.read_u32().await? as usize;
    check_length(len, max)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(body)
}

/// Refuses a frame longer than `max`, before anything is allocated for it.
pub fn check_length(len: usize, max: usize) -> std::io::Result<()> {
    match len <= max {
        true => Ok(()),
        false => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a push frame of {len} bytes; at most {max}"),
        )),
    }
}

/// Reads one opening frame (the Watch envelope, its answer) and decodes it as `M`.
pub async fn read_message<M: Message + Default, R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<M> {
    let body = read_frame(r, MAX_OPENING).await?;
    M::decode(body.as_slice()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "a push frame that does not decode")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_an_oversized_length_is_refused_unread() {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let nudge = crate::proto::v1::Nudge { reason: "publish".into(), sequence: 7, ..Default::default() };
        write_message(&mut a, &nudge).await.unwrap();
        write_frame(&mut a, &[]).await.unwrap();
        assert_eq!(read_message::<crate::proto::v1::Nudge, _>(&mut b).await.unwrap(), nudge);
        assert!(read_frame(&mut b, 0).await.unwrap().is_empty(), "a ping");
        a.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
        let e = read_frame(&mut b, MAX_ANSWER).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    }
}
