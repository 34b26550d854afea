//! Framed I/O shared by the protocol adapters: a read buffer the codecs decode in place
//! (payloads are zero-copy slices of it) and a write buffer that collects every packet of a
//! batch so each batch costs one write syscall. Buffers shrink back after a burst so idle
//! connections stay small.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Initial and minimum free space for one read.
const READ_CHUNK: usize = 4 * 1024;
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
        }
    }

    /// Reads more bytes into `rbuf`; `Ok(0)` means the peer closed its side.
    /// Cancel-safe: a cancelled read loses no data (`read_buf` commits only what it read).
    pub async fn read_more(&mut self) -> std::io::Result<usize> {
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_CAPACITY {
            self.rbuf = BytesMut::new();
        }
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK {
            self.rbuf.reserve(READ_CHUNK);
        }
        let n = self.io.read_buf(&mut self.rbuf).await?;
        self.bytes_read += n as u64;
        Ok(n)
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
