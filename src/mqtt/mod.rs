//! The MQTT adapter: serves MQTT 3.1, 3.1.1 and 5.0 on one listener (the version is read from
//! CONNECT) and translates packets into calls on the protocol-neutral core. One handler file
//! per packet kind; `conn.rs` owns the connection loop; `session.rs` the session state;
//! `access.rs` what a client may publish and subscribe to (ACLs, vhost permissions). A client
//! works in the vhost its CONNECT selected: one `Mqtt` state per vhost.

mod access;
mod ack;
mod alias;
mod conn;
mod connect;
mod deadlines;
mod deliver;
mod durable;
pub use durable::qos2_store_name;
mod durable_out;
mod kick;
pub use durable_out::{recover as recover_qos2_out, RecoveredOut};
pub use kick::sweep as sweep_keep_alive;
mod publish;
mod publish_ack;
mod queue_sink;
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
use crate::broker::queue::Verdict;
use crate::broker::vhost::Vhost;
use crate::broker::Core;
use crate::transport::TlsInfo;
use session::Session;
use shared::SharedGroup;

/// State the MQTT connections of one vhost share (the broker's default vhost's holds the
/// others', created when a client first selects one with `vhost:user`).
pub struct Mqtt {
    /// The routing core.
    pub core: Arc<Core>,
    /// The vhost these clients publish and subscribe in.
    pub vhost: Arc<Vhost>,
    /// The adapter state of other vhosts, by name (only the default vhost's has entries).
    vhosts: DashMap<String, Arc<Mqtt>>,
    /// Sessions by client identifier.
    pub sessions: DashMap<Arc<str>, Arc<Session>>,
    /// Shared-subscription groups by (group, filter).
    pub shared: DashMap<(String, String), Arc<SharedGroup>>,
    next_generation: AtomicU64,
    /// Wakes connections waiting to take a session over (`connect::wait_for_previous_owner`)
    /// whenever a session of this vhost is released, ended or attached; each checks its own.
    /// One signal for all sessions, not one per session: a `Notify` is 32 bytes of every
    /// session, so of every idle connection (README, Benchmarks), and takeovers are rare.
    pub released: tokio::sync::Notify,
    /// Keep-alive deadlines of every vhost's connections, for the broker-wide sweeper.
    pub deadlines: Arc<deadlines::Deadlines>,
}

impl Mqtt {
    /// Adapter state over `core`, for its default vhost.
    pub fn new(core: Arc<Core>) -> Arc<Mqtt> {
        let vhost = Arc::clone(&core.vhost);
        let mqtt = Mqtt::for_vhost(Arc::clone(&core), vhost, deadlines::Deadlines::new());
        durable::restore(&mqtt);
        // Persistent sessions of the other vhosts come back in their vhost's adapter state.
        let others: Vec<String> = core
            .recovered_mqtt_sessions
            .lock()
            .keys()
            .cloned()
            .collect();
        for name in others {
            if let Some(host) = core.vhost_named(&name) {
                durable::restore(&mqtt.in_vhost(host));
            }
        }
        // Then the groups no persistent session rejoined go, in every vhost.
        for host in core.open_vhosts() {
            shared::drop_orphaned(&mqtt.in_vhost(host));
        }
        mqtt
    }

    fn for_vhost(
        core: Arc<Core>,
        vhost: Arc<Vhost>,
        deadlines: Arc<deadlines::Deadlines>,
    ) -> Arc<Mqtt> {
        Arc::new(Mqtt {
            core,
            vhost,
            vhosts: DashMap::new(),
            sessions: DashMap::new(),
            shared: DashMap::new(),
            next_generation: AtomicU64::new(1),
            released: tokio::sync::Notify::new(),
            deadlines,
        })
    }

    /// The adapter state of `vhost`: this one for the default vhost, else one per vhost, so
    /// client identifiers, sessions and shared groups are per vhost (as RabbitMQ's).
    pub fn in_vhost(self: &Arc<Self>, vhost: Arc<Vhost>) -> Arc<Mqtt> {
        if Arc::ptr_eq(&vhost, &self.vhost) {
            return Arc::clone(self);
        }
        let mut entry = self
            .vhosts
            .entry(vhost.name.to_string())
            .or_insert_with(|| {
                Mqtt::for_vhost(
                    Arc::clone(&self.core),
                    Arc::clone(&vhost),
                    Arc::clone(&self.deadlines),
                )
            });
        if !Arc::ptr_eq(&entry.vhost, &vhost) {
            // The vhost was deleted and added again: its old clients' state goes with the old one.
            *entry = Mqtt::for_vhost(Arc::clone(&self.core), vhost, Arc::clone(&self.deadlines));
        }
        Arc::clone(&entry)
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
        let vhost = &self.vhost;
        // No one waits for it to be on disk (QoS 0, wills, $SYS).
        drop(vhost.update_retained(&message));
        let bindings = vhost.route_mqtt(&message);
        dispatch(&message, &bindings, pending)
    }

    /// `publish` for a QoS 1/2 message the publisher waits to have acknowledged: the durable
    /// queues it reaches (and, for a retained message, the retained store) answer through the
    /// returned verdict, which resolves once they stored it (after the fsync); PUBACK / PUBREC
    /// wait for it, so an acknowledged message survives a crash. `None` when nothing durable
    /// got it; with the store in memory that is always, and this is `publish`.
    pub fn publish_acknowledged(
        &self,
        message: Arc<Message>,
        pending: &mut Vec<Pending>,
    ) -> (usize, Option<Verdict>) {
        let vhost = &self.vhost;
        let retained = vhost.update_retained(&message);
        let bindings = vhost.route_mqtt(&message);
        let dispatched = vhost.dispatch_until_stored(&message, &bindings, pending);
        (
            dispatched.reached,
            publish_ack::both(dispatched.verdict, retained),
        )
    }

    /// Kicks every connected client's connection once `shutdown` fires; a kicked connection
    /// that sees the shutdown flag ends with `Exit::Shutdown` (v5: DISCONNECT 0x8B, no will).
    /// Saves each idle connection a shutdown future of its own (README, Benchmarks).
    pub async fn kick_on_shutdown(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        // A dropped sender also means the broker is going away.
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        self.kick_all();
    }

    fn kick_all(&self) {
        kick::each_kick(self, &|k| k.wake(kick::SHUTDOWN));
    }

    /// The sessions a connection owns now. Collected first: a session's lock is never taken
    /// while holding a registry shard.
    fn online_sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .iter()
            .filter(|e| e.value().is_online())
            .map(|e| Arc::clone(e.value()))
            .collect()
    }

    /// The adapter states of the other vhosts (empty but for the default vhost's).
    fn other_vhosts(&self) -> Vec<Arc<Mqtt>> {
        self.vhosts.iter().map(|e| Arc::clone(e.value())).collect()
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

/// Serves one MQTT connection until it closes or the broker shuts down; `tls` is set on the
/// MQTTS listener.
// Not `async fn`: a wrapper future would store the arguments a second time for the
// connection's whole life (rust-lang/rust#62958).
pub fn serve<S>(
    stream: S,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    mqtt: Arc<Mqtt>,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    conn::run(stream, peer, tls, mqtt, shutdown)
}
