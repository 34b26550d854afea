//! The MQTT adapter: serves MQTT 3.1, 3.1.1 and 5.0 on one listener (the version is read from
//! CONNECT) and translates packets into calls on the protocol-neutral core. One handler file
//! per packet kind; `conn.rs` owns the connection loop; `session.rs` the session state.

mod access;
mod ack;
mod alias;
mod conn;
mod connect;
mod deliver;
mod publish;
mod reason;
pub mod session;
pub mod session_queue;
pub mod shared;
mod subscribe;
pub mod sys;
mod translate;
mod will;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::broker::binding::Pending;
use crate::broker::dispatch::dispatch;
use crate::broker::message::Message;
use crate::broker::Core;
use session::Session;
use shared::SharedGroup;

/// State the MQTT connections of one broker share.
pub struct Mqtt {
    /// The routing core.
    pub core: Arc<Core>,
    /// Sessions by client identifier.
    pub sessions: DashMap<Arc<str>, Arc<Session>>,
    /// Shared-subscription groups by (group, filter).
    pub shared: DashMap<(String, String), Arc<SharedGroup>>,
    next_generation: AtomicU64,
}

impl Mqtt {
    /// Adapter state over `core`.
    pub fn new(core: Arc<Core>) -> Arc<Mqtt> {
        Arc::new(Mqtt {
            core,
            sessions: DashMap::new(),
            shared: DashMap::new(),
            next_generation: AtomicU64::new(1),
        })
    }

    fn next_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Routes a message through the MQTT exchange (with the vhost's exchange-to-exchange and
    /// alternate-exchange expansion, so AMQP queues bound there receive it too) and updates the
    /// retained store when the message carries the retain flag; returns the number of
    /// destinations reached. Deliveries to full queue inboxes land in `pending`: the caller
    /// awaits them before reading on.
    pub fn publish(&self, message: Arc<Message>, pending: &mut Vec<Pending>) -> usize {
        let vhost = &self.core.vhost;
        vhost.update_retained(&message);
        let bindings = vhost.route_mqtt(&message);
        dispatch(&message, &bindings, pending)
    }

    /// `publish`, then waits for any full inbox (for publishers without a socket: wills, $SYS).
    pub async fn publish_and_wait(&self, message: Arc<Message>) {
        let mut pending = Vec::new();
        self.publish(message, &mut pending);
        for wait in pending {
            wait.await;
        }
    }
}

/// Serves one MQTT connection until it closes or the broker shuts down.
pub async fn serve<S>(stream: S, peer: SocketAddr, mqtt: Arc<Mqtt>, shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    conn::run(stream, peer, mqtt, shutdown).await
}
