//! A virtual host: its exchanges, queues and the bindings between them, with RabbitMQ 3.x
//! semantics and reply texts (AMQP 0-9-1 plus RabbitMQ's extensions), and its retained messages.
//!
//! Owns: the registry of exchanges and queues, binding identity (source, destination, key,
//! arguments), exclusive and auto-delete lifetimes, and routing with exchange-to-exchange
//! bindings and alternate exchanges. Must not touch: wire types (errors are `VhostError`s whose
//! text is RabbitMQ's reply text; the adapters map them to codes), queue internals (queues are
//! actors behind `QueueHandle`s).
//!
//! Locking: every change (declare, delete, bind, unbind, consumer counts) holds the `registry`
//! mutex for its synchronous part; lookups and routing read the concurrent maps and never take
//! it. No lock is held across `.await`: the async operations look up under the lock, release it,
//! then talk to the queue actor.
//!
//! Queues reach back through a `QueueHost` (`host.rs`) holding a `Weak<Vhost>`: dead letters are
//! routed from the queue's task with no lock of the queue's held, and a queue unused for its
//! `x-expires` is removed. The weak reference keeps queue actors from keeping their vhost, and
//! so themselves, alive.
//!
//! `/` is created with the default exchange `""` (every queue is reachable through it by its
//! name), `amq.direct`, `amq.fanout`, `amq.topic`, `amq.headers`, `amq.match`, and the exchange
//! MQTT publishes through (`amq.topic` unless configured otherwise).

mod args;
mod bindings;
mod error;
mod exchanges;
mod host;
mod queues;
pub use queues::random_token;
mod restore;
mod retained;
mod route;

#[cfg(test)]
mod tests_declare;
#[cfg(test)]
mod tests_policies;
#[cfg(test)]
mod tests_route;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};

use super::binding::{Binding, BindingOptions, Subscriber};
use super::exchange::Exchange;
use super::headers::Headers;
use super::message::Message;
use super::queue::{QueueHandle, QueueHost};
use super::retain::RetainStore;
use super::ConnectionId;
use crate::store::definitions::{Change, Definitions};
use crate::store::{MemoryStore, MessageStore};

pub use super::exchange::{ExchangeKind, ExchangeSettings};
pub use error::VhostError;
pub use host::Dispatched;
pub use route::Routed;

/// What `queue.declare` sets (AMQP 0-9-1 class queue).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSettings {
    /// Survives a broker restart (the definition).
    pub durable: bool,
    /// Owned by the declaring connection: only it may use the queue, and the queue is deleted
    /// when it closes.
    pub exclusive: bool,
    /// Deleted when its last consumer goes, after having had one.
    pub auto_delete: bool,
    /// Declaration arguments (`x-max-length`, `x-message-ttl`, ...).
    pub arguments: Headers,
    /// The queue backs an MQTT session (not settable over AMQP): QoS 0 messages that arrive
    /// while the session is offline are dropped (`QueueLimits::drop_qos0_without_consumer`).
    pub mqtt_session: bool,
}

/// A queue as `queue.declare-ok` reports it.
#[derive(Debug, Clone)]
pub struct QueueInfo {
    /// Its name (server-generated when declared with an empty one).
    pub name: Arc<str>,
    /// The queue actor.
    pub handle: QueueHandle,
    /// Ready messages, as of the queue's last pass (`QueueHandle::counts` is exact).
    pub messages: u64,
    /// Consumers, as counted by `consumer_added` / `consumer_removed`.
    pub consumers: u64,
}

/// One vhost.
pub struct Vhost {
    /// Its name (`/`).
    pub name: String,
    /// Which add of the name this is (`ferromq vhost add` gives each a fresh id); `None` for
    /// `/`, vhosts of the config file and vhosts added before incarnations existed.
    pub incarnation: Option<String>,
    exchanges: DashMap<Arc<str>, Arc<Exchange>>,
    queues: DashMap<Arc<str>, Arc<QueueEntry>>,
    registry: Mutex<Registry>,
    /// Retained messages by topic (MQTT 3.3.1.3), shared by every protocol in this vhost.
    pub retained: RetainStore<Arc<Message>>,
    /// Store ids of the retained messages written to a durable store, by topic (`retained.rs`).
    retained_ids: Mutex<HashMap<String, crate::store::StoreId>>,
    mqtt_exchange: Arc<Exchange>,
    /// Where durable queues keep persistent messages.
    store: Arc<dyn MessageStore>,
    /// What transient queues get: keeps nothing (RabbitMQ drops even persistent messages of a
    /// transient queue at a restart).
    transient: Arc<dyn MessageStore>,
    /// Where durable exchanges, queues and bindings are recorded (the log every vhost
    /// shares); unset in memory and while `restore` recreates them.
    definitions: OnceLock<Arc<Definitions>>,
    /// End of the last definition appended under the registry lock and not yet waited for:
    /// the `RegistryGuard` holding the lock waits for its fsync once it released the lock.
    /// Only touched under the lock.
    unsynced: AtomicU64,
    /// Set once the vhost was deleted (or deleted and added again) while connections still
    /// use it: it records no more definitions, which would land in the next incarnation's.
    retired: std::sync::atomic::AtomicBool,
    /// What the queues call back into (a weak reference to this vhost).
    host: Arc<dyn QueueHost>,
    /// The queues a confirming publisher must hear from (`QueueHandle::answers_publishes`:
    /// their `x-overflow` can refuse a publish, or they store persistent messages durably), by
    /// the address of their binding target (`Binding::destination_key`), for
    /// `dispatch_with_outcome`. Often empty, so a confirmed publish pays one uncontended read
    /// lock to learn that.
    refusing: RwLock<HashMap<usize, QueueHandle>>,
}

/// What changes only under the registry lock.
#[derive(Default)]
struct Registry {
    bindings: bindings::BindingTable,
    /// Exclusive queues by owning connection.
    exclusive: HashMap<ConnectionId, Vec<Arc<str>>>,
}

/// The registry lock, held; see `Vhost::lock_registry`.
struct RegistryGuard<'a> {
    guard: Option<parking_lot::MutexGuard<'a, Registry>>,
    vhost: &'a Vhost,
}

impl std::ops::Deref for RegistryGuard<'_> {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        // Some until `drop`.
        self.guard.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for RegistryGuard<'_> {
    fn deref_mut(&mut self) -> &mut Registry {
        self.guard.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for RegistryGuard<'_> {
    fn drop(&mut self) {
        // Read and reset under the lock: what this holder appended, nobody else's.
        let at = self.vhost.unsynced.swap(0, Ordering::Relaxed);
        drop(self.guard.take());
        if at > 0 {
            if let Some(d) = self.vhost.definitions.get() {
                wait_durable(d, at);
            }
        }
    }
}

/// Waits for the definitions log to be durable up to `at`. The declare paths are synchronous
/// and run on the runtime's worker threads: on a multi-threaded runtime the worker's other
/// tasks are handed to another thread for the wait (`block_in_place`), so other connections'
/// declares go on meanwhile and share this fsync rather than queue behind the few workers.
fn wait_durable(definitions: &Definitions, at: u64) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| definitions.sync_to(at));
        }
        _ => definitions.sync_to(at),
    }
}

/// A queue in the registry.
struct QueueEntry {
    name: Arc<str>,
    handle: QueueHandle,
    /// The queue as a binding destination: one `Arc` for all its bindings, so they can be
    /// removed, and merged on delivery, by pointer.
    target: Arc<dyn Subscriber>,
    settings: QueueSettings,
    /// The owning connection of an exclusive queue.
    owner: Option<ConnectionId>,
    /// Consumers counted by `consumer_added` / `consumer_removed` (changed under the lock).
    consumers: AtomicU64,
    /// Set by the first consumer: an auto-delete queue is deleted only after having had one.
    had_consumer: AtomicBool,
}

impl QueueEntry {
    /// Durable queues survive a restart, with their persistent messages. Exclusive ones never
    /// do: they end with their connection.
    fn is_durable(&self) -> bool {
        self.settings.durable && self.owner.is_none()
    }

    fn binding(&self) -> Binding {
        Binding {
            destination: Arc::clone(&self.target),
            options: BindingOptions::default(),
        }
    }

    fn info(&self) -> QueueInfo {
        QueueInfo {
            name: Arc::clone(&self.name),
            handle: self.handle.clone(),
            messages: self.handle.stats().ready(),
            consumers: self.consumers.load(Ordering::Relaxed),
        }
    }
}

/// The exchanges every vhost starts with (RabbitMQ's, all durable).
const BUILT_IN: [(&str, ExchangeKind); 6] = [
    ("", ExchangeKind::Direct),
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

impl Vhost {
    /// A vhost with the built-in exchanges and the MQTT exchange `mqtt_exchange` (a durable
    /// topic exchange unless it is one of the built-in ones). Queues persist through `store`.
    pub fn new(name: &str, mqtt_exchange: &str, store: Arc<dyn MessageStore>) -> Arc<Vhost> {
        Vhost::incarnation_of(name, None, mqtt_exchange, store)
    }

    /// `new` for incarnation `incarnation` of vhost `name` (see `Vhost::incarnation`).
    pub fn incarnation_of(
        name: &str,
        incarnation: Option<String>,
        mqtt_exchange: &str,
        store: Arc<dyn MessageStore>,
    ) -> Arc<Vhost> {
        let exchanges: DashMap<Arc<str>, Arc<Exchange>> = DashMap::new();
        for (x, kind) in BUILT_IN {
            exchanges.insert(
                x.into(),
                Arc::new(Exchange::new(x, ExchangeSettings::durable(kind))),
            );
        }
        let mqtt = exchanges
            .entry(mqtt_exchange.into())
            .or_insert_with(|| Arc::new(Exchange::topic(mqtt_exchange)))
            .value()
            .clone();
        Arc::new_cyclic(|me| Vhost {
            name: name.to_string(),
            incarnation,
            exchanges,
            queues: DashMap::new(),
            registry: Mutex::new(Registry::default()),
            retained: RetainStore::new(),
            retained_ids: Mutex::new(HashMap::new()),
            mqtt_exchange: mqtt,
            store,
            transient: Arc::new(MemoryStore::default()),
            definitions: OnceLock::new(),
            unsynced: AtomicU64::new(0),
            retired: std::sync::atomic::AtomicBool::new(false),
            host: host::VhostHost::shared(me.clone()),
            refusing: RwLock::new(HashMap::new()),
        })
    }

    /// The exchange MQTT publishes route through and MQTT subscriptions bind to.
    pub fn mqtt_exchange(&self) -> &Arc<Exchange> {
        &self.mqtt_exchange
    }

    /// An exchange by name.
    pub fn exchange(&self, name: &str) -> Option<Arc<Exchange>> {
        self.exchanges.get(name).map(|e| Arc::clone(e.value()))
    }

    /// Where this vhost's durable queues keep persistent messages.
    pub fn store(&self) -> &Arc<dyn MessageStore> {
        &self.store
    }

    /// From now on durable declarations, deletions and bindings are recorded in
    /// `definitions` (after `restore`, so recreating them does not record them again).
    pub fn enable_definitions(&self, definitions: Arc<Definitions>) {
        let _reg = self.lock_registry();
        if self.definitions.set(definitions).is_err() {
            tracing::warn!("definitions log already enabled; keeping the first");
        }
    }

    /// Stops recording definitions: the vhost was deleted while connections still use it.
    /// Under the registry lock, so a change being recorded is either in before the vhost's
    /// definitions are forgotten or not written at all.
    pub fn retire(&self) {
        let _reg = self.lock_registry();
        self.retired.store(true, Ordering::Relaxed);
    }

    /// Records a persistent MQTT session (`Some`) or its end (`None`) with the durable
    /// definitions, when this vhost keeps any (a store on disk); returns once it is durable.
    pub fn record_mqtt_session(
        &self,
        client_id: &str,
        session: Option<crate::store::definitions::MqttSessionDef>,
    ) {
        if self.definitions.get().is_none() {
            return;
        }
        let _reg = self.lock_registry();
        self.log_definition(match session {
            Some(def) => Change::MqttSession(client_id.to_string(), def),
            None => Change::DeleteMqttSession(client_id.to_string()),
        });
    }

    /// Records a change to the durable definitions (called under the registry lock, so the
    /// log has changes in the order they were made). The record is durable once the guard of
    /// that lock is dropped (`RegistryGuard`): changes are answered after that.
    fn log_definition(&self, change: Change) {
        if self.retired.load(Ordering::Relaxed) {
            return;
        }
        if let Some(d) = self.definitions.get() {
            let at = d.append(&self.name, &change);
            self.unsynced.fetch_max(at, Ordering::Relaxed);
        }
    }

    /// Takes the registry lock. Definitions appended while it is held are fsynced after it is
    /// released, when the guard drops, so other declares in the vhost do not wait for this
    /// one's disk write (and several share one fsync).
    fn lock_registry(&self) -> RegistryGuard<'_> {
        RegistryGuard {
            guard: Some(self.registry.lock()),
            vhost: self,
        }
    }

    /// Names of the exchanges, in no particular order (management and tests).
    pub fn exchange_names(&self) -> Vec<Arc<str>> {
        self.exchanges.iter().map(|e| Arc::clone(e.key())).collect()
    }

    /// Waits until every queue has handled what was sent to it so far (acks included: the
    /// request is ordered after them), so a store flush afterwards sees their settlements.
    /// For graceful shutdown.
    pub async fn settle_pending(&self) {
        let handles: Vec<QueueHandle> = self.queues.iter().map(|q| q.handle.clone()).collect();
        for h in handles {
            h.counts().await;
        }
    }

    /// Names of the queues, in no particular order (management and tests).
    pub fn queue_names(&self) -> Vec<Arc<str>> {
        self.queues.iter().map(|q| Arc::clone(q.key())).collect()
    }

    fn queue_entry(&self, name: &str) -> Option<Arc<QueueEntry>> {
        self.queues.get(name).map(|q| Arc::clone(q.value()))
    }

    /// RabbitMQ's resource name: `queue 'q' in vhost '/'`.
    fn resource(&self, kind: &str, name: &str) -> String {
        format!("{kind} '{name}' in vhost '{}'", self.name)
    }

    fn no_exchange(&self, name: &str) -> VhostError {
        VhostError::NotFound(format!("no {}", self.resource("exchange", name)))
    }

    fn no_queue(&self, name: &str) -> VhostError {
        VhostError::NotFound(format!("no {}", self.resource("queue", name)))
    }

    fn locked(&self, name: &str) -> VhostError {
        VhostError::ResourceLocked(format!(
            "cannot obtain exclusive access to locked {}. It could be originally declared on \
             another connection or the exclusive property value does not match that of the \
             original declaration.",
            self.resource("queue", name)
        ))
    }

    /// Exclusive queues serve their owner only (RabbitMQ's "lax" check: a non-exclusive queue
    /// serves everyone).
    fn check_access(&self, queue: &QueueEntry, requester: ConnectionId) -> Result<(), VhostError> {
        match queue.owner {
            Some(owner) if owner != requester => Err(self.locked(&queue.name)),
            _ => Ok(()),
        }
    }
}

fn default_exchange_refused() -> VhostError {
    VhostError::AccessRefused("operation not permitted on the default exchange".to_string())
}
