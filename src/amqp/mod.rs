//! The AMQP 0-9-1 adapter: RabbitMQ clients (pika, lapin, amqp091-go, the Java client,
//! kombu) connect unmodified. `handshake.rs` opens the connection, `conn.rs` owns the loop and
//! channel dispatch, one file per class of methods (`declare.rs`, `basic.rs`, `content.rs`),
//! `translate.rs` maps content to core messages, `reply_code.rs` maps errors to reply codes.
//! RabbitMQ extensions: `reply_to.rs` (direct reply-to), `ack_timeout.rs` (delivery
//! acknowledgement timeout), `access.rs` (permission checks before each method).

mod access;
mod ack_timeout;
mod basic;
mod blocked;
mod channel;
mod coalesce;
mod conn;
mod consumer;
mod content;
mod declare;
mod handshake;
mod reply_code;
mod reply_to;
mod translate;
mod tx;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::broker::{ConnectionId, Core};
use crate::transport::TlsInfo;

/// Connection ids for exclusive-queue ownership; distinct from MQTT's, shared per process.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// State the AMQP connections of one broker share.
pub struct Amqp {
    /// The routing core.
    pub core: Arc<Core>,
    /// Direct reply-to consumers by token.
    pub replies: Arc<reply_to::Registry>,
}

impl Amqp {
    /// Adapter state over `core`.
    pub fn new(core: Arc<Core>) -> Arc<Amqp> {
        Arc::new(Amqp {
            core,
            replies: Arc::default(),
        })
    }
}

/// Serves one AMQP connection until it closes or the broker shuts down; `tls` is set on the
/// AMQPS listener. `over_limit` carries `max_connections` when the socket was accepted above
/// it: the handshake then ends at connection.open with 530, as RabbitMQ answers.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    amqp: Arc<Amqp>,
    shutdown: watch::Receiver<bool>,
    over_limit: Option<u32>,
) where
    S: AsyncRead + AsyncWrite + std::os::fd::AsRawFd + Unpin + Send + 'static,
{
    let id = ConnectionId(NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed));
    conn::run(stream, peer, tls, amqp, id, shutdown, over_limit).await
}
