//! Framed I/O shared by the protocol adapters: a read buffer the codecs decode in place
//! (payloads are zero-copy slices of it) and a write buffer that collects every packet of a
//! batch so each batch costs one write syscall. Buffers shrink back after a burst so idle
//! connections stay small.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Free space for one read while the peer sends little at a time: a CONNECT, a PINGREQ, a
/// small PUBLISH. Such reads go through a buffer on the stack and only the bytes that arrived
/// are copied to the heap, so an idle connection holds no read buffer at all (a 4 KiB buffer per
/// idle connection was about half of an idle MQTT connection's memory, 8.7 -> 5.0 KiB; a 256 B
/// one still about a tenth, 3.1 KiB; README, Benchmarks).
const SMALL_CHUNK: usize = 256;
/// Largest free space asked for one read. Reads that fill their chunk double it up to this, so
/// a busy peer is read in few syscalls (4 KiB payloads used to take two reads each, because a
/// fixed 4 KiB chunk is smaller than one packet). Not larger: payloads are zero-copy slices, so
/// one message kept in a queue or the retained store keeps its whole read block alive.
pub(crate) const MAX_CHUNK: usize = 16 * 1024;
/// Buffers larger than this after use are released instead of kept.
const KEEP_CAPACITY: usize = 64 * 1024;

/// A socket with its read and write buffers.
pub struct Framed<S> {
    io: S,
    /// Bytes read and not yet decoded.
    pub rbuf: BytesMut,
    /// Bytes encoded and not yet written.
    pub wbuf: BytesMut,
    /// Total bytes read (for metrics).
    pub bytes_read: u64,
    /// Total bytes written (for metrics).
    pub bytes_written: u64,
    /// Free space the next read asks for: grows while reads fill it, drops back to
    /// `SMALL_CHUNK` after a small read.
    chunk: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Framed<S> {
    /// Wraps a connected socket. Buffers are allocated lazily on first use.
    pub fn new(io: S) -> Framed<S> {
        Framed {
            io,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            bytes_read: 0,
            bytes_written: 0,
            chunk: SMALL_CHUNK,
        }
    }

    /// Reads more bytes into `rbuf`; `Ok(0)` means the peer closed its side.
    /// Cancel-safe: a cancelled read loses no data (both paths commit only what they read).
    /// The future only borrows `self` (8 bytes): it sits in every idle connection's wait, where
    /// an `async fn`'s state was 40 (README, Benchmarks).
    pub fn read_more(&mut self) -> impl Future<Output = std::io::Result<usize>> + '_ {
        std::future::poll_fn(move |cx| self.poll_read_more(cx))
    }

    /// `read_more` as a poll: every step before the read is idempotent, so a poll that returns
    /// `Pending` and is polled again starts over without effect.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.rbuf.is_empty() && self.chunk == SMALL_CHUNK {
            // The peer is idle or sends little: wait without a heap buffer. Decoded payloads
            // keep their own slices, so releasing ours frees nothing they use.
            self.rbuf = BytesMut::new();
            let n = ready!(self.poll_read_small(cx))?;
            self.bytes_read += n as u64;
            // A full stack buffer means more is coming: read straight into `rbuf` next time.
            if n == SMALL_CHUNK {
                self.chunk = 2 * SMALL_CHUNK;
            }
            return Poll::Ready(Ok(n));
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_CAPACITY {
            self.rbuf = BytesMut::new();
        }
        if self.rbuf.capacity() - self.rbuf.len() < self.chunk {
            self.rbuf.reserve(self.chunk);
        }
        // A fresh `read_buf` future per poll: it holds only its two borrows, and dropping it
        // while pending loses nothing (tokio documents it cancel-safe).
        let read = self.io.read_buf(&mut self.rbuf);
        tokio::pin!(read);
        let n = ready!(read.poll(cx))?;
        self.bytes_read += n as u64;
        self.chunk = if n >= self.chunk {
            (self.chunk * 2).min(MAX_CHUNK)
        } else if n < SMALL_CHUNK {
            SMALL_CHUNK
        } else {
            self.chunk
        };
        Poll::Ready(Ok(n))
    }

    /// One read into a buffer on the stack (of this poll, not of the connection's future),
    /// then the bytes read are copied into `rbuf`, sized to them. A pending read has consumed
    /// nothing (the `AsyncRead` contract), so nothing is lost between polls.
    fn poll_read_small(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let mut stack = [MaybeUninit::<u8>::uninit(); SMALL_CHUNK];
        let mut buf = ReadBuf::uninit(&mut stack);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                self.rbuf.extend_from_slice(buf.filled());
                Poll::Ready(Ok(buf.filled().len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes all of `wbuf` in one go and empties it.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.io.write_all(&self.wbuf).await?;
        // A no-op on TCP; TLS and WebSocket streams buffer records / messages until flushed.
        self.io.flush().await?;
        self.bytes_written += self.wbuf.len() as u64;
        if self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = BytesMut::new();
        } else {
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Flushes and shuts the write side down (best effort).
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }

    /// Flushes, then reads and discards until the peer closes its side (at most `wait`), then
    /// closes ours. For protocols where the client closes after a final reply (AMQP
    /// connection.close-ok): closing first can make a client report an aborted connection
    /// before it has read the reply, and closing with unread input makes the kernel send RST,
    /// which can destroy the reply in flight.
    pub async fn close_gracefully(&mut self, wait: std::time::Duration) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(wait, async {
            loop {
                self.rbuf.clear();
                match self.read_more().await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        self.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_chunk_grows_while_reads_fill_it_and_shrinks_when_idle() {
        let (mut peer, ours) = tokio::io::duplex(256 * 1024);
        let mut f = Framed::new(ours);
        peer.write_all(&vec![7u8; 100_000]).await.unwrap();
        let mut total = 0;
        while total < 100_000 {
            total += f.read_more().await.unwrap();
        }
        assert_eq!(f.chunk, MAX_CHUNK, "a busy peer is read in large chunks");
        f.rbuf.clear();

        // A lone PINGREQ: the peer is idle, so the next wait holds no heap buffer.
        peer.write_all(&[0xC0, 0x00]).await.unwrap();
        assert_eq!(f.read_more().await.unwrap(), 2);
        assert_eq!(f.chunk, SMALL_CHUNK);
        f.rbuf.clear();
        peer.write_all(&[0xC0, 0x00]).await.unwrap();
        assert_eq!(f.read_more().await.unwrap(), 2);
        assert_eq!(&f.rbuf[..], &[0xC0, 0x00]);
        assert!(
            f.rbuf.capacity() < SMALL_CHUNK,
            "a small read holds {} bytes",
            f.rbuf.capacity()
        );
        f.rbuf.clear();
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), f.read_more());
        assert!(waiting.await.is_err(), "nothing was sent");
        assert_eq!(f.rbuf.capacity(), 0, "an idle wait holds no read buffer");
    }

    #[tokio::test]
    async fn bytes_survive_small_reads_split_anywhere_and_a_full_stack_buffer_grows_the_chunk() {
        let (mut peer, ours) = tokio::io::duplex(64 * 1024);
        let mut f = Framed::new(ours);
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let mut got = Vec::new();
        // Pieces of 1, 2, 3... bytes with reads in between, then a burst: every byte arrives
        // once and in order whichever path read it.
        let mut at = 0;
        for size in 1..40 {
            peer.write_all(&data[at..at + size]).await.unwrap();
            at += size;
            while got.len() < at {
                f.read_more().await.unwrap();
                got.extend_from_slice(&f.rbuf.split());
            }
        }
        peer.write_all(&data[at..]).await.unwrap();
        while got.len() < data.len() {
            f.read_more().await.unwrap();
            got.extend_from_slice(&f.rbuf.split());
        }
        assert_eq!(got, data);
        assert!(
            f.chunk > SMALL_CHUNK,
            "a burst moves reads off the stack buffer"
        );
    }
}
