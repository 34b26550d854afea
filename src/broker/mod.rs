//! The protocol-neutral core: vhosts with their exchanges, the topic index, retained messages,
//! and the dispatch of a routed message to its destinations. Knows no wire types: the `mqtt/`
//! and `amqp/` adapters translate packets and methods into `Message`s and calls on `Vhost`.

pub mod binding;
pub mod dispatch;
pub mod exchange;
pub mod headers;
pub mod message;
pub mod queue;
pub mod retain;
pub mod routing_key;
pub mod topic_index;
pub mod vhost;
mod vhosts;

use std::sync::Arc;
use std::time::Instant;

use crate::auth::{AccessControl, Authenticator};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{MemoryStore, MessageStore, StoreError};

/// Identifies one client connection (of either protocol) to the core: the owner of exclusive
/// queues, and who asks for a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Everything the connections of one broker share.
pub struct Core {
    /// The configuration the broker started with.
    pub config: Arc<Config>,
    /// The default vhost `/`.
    pub vhost: Arc<vhost::Vhost>,
    /// Other vhosts, created when first opened (`vhosts.rs`).
    pub vhosts: dashmap::DashMap<String, Arc<vhost::Vhost>>,
    /// Broker-wide counters.
    pub metrics: Metrics,
    /// Logins, vhost permissions and MQTT ACLs.
    pub auth: Arc<AccessControl>,
    /// An in-memory store for the queues whose messages are not kept across restarts yet:
    /// MQTT shared-subscription groups, and every queue of the vhosts other than `/` (durable
    /// definitions and messages are kept for `/` only so far). Durable queues of `/` write to
    /// its store (`Vhost::store`).
    pub store: Arc<dyn MessageStore>,
    /// When the broker started (for `$SYS/broker/uptime`).
    pub started: Instant,
    /// Per recovered MQTT session, the QoS 2 packet ids it had received and not seen released,
    /// with their records in the store (taken once, by the MQTT adapter).
    pub recovered_qos2:
        parking_lot::Mutex<std::collections::HashMap<String, Vec<(u16, crate::store::StoreId)>>>,
    /// Per recovered MQTT session, the QoS 2 packet ids it had in flight to its client, with
    /// the messages they name (taken out of its queue; taken once, by the MQTT adapter).
    pub recovered_qos2_out:
        parking_lot::Mutex<std::collections::HashMap<String, Vec<crate::mqtt::RecoveredOut>>>,
    /// Persistent MQTT sessions of `/` found in the definitions log, for the MQTT adapter to
    /// resume (taken once).
    pub recovered_mqtt_sessions: parking_lot::Mutex<
        std::collections::BTreeMap<String, crate::store::definitions::MqttSessionDef>,
    >,
    /// Connection limits and the memory / disk alarms.
    pub limits: crate::limits::Limits,
}

impl Core {
    /// A core with the default vhost, its standard exchanges, and the MQTT exchange, and
    /// with what the store under `data_dir` recovered: durable exchanges, queues (with their
    /// unsettled messages) and bindings.
    pub fn new(config: &Config) -> Result<Arc<Core>, StoreError> {
        Core::build(config, AccessControl::new(config))
    }

    /// `new` with another login policy than the users of the configuration (permissions and
    /// ACLs still apply as configured); see `AccessControl::with_login`.
    pub fn with_auth(
        config: &Config,
        login: Arc<dyn Authenticator>,
    ) -> Result<Arc<Core>, StoreError> {
        Core::build(config, AccessControl::new(config).with_login(login))
    }

    fn build(config: &Config, access: AccessControl) -> Result<Arc<Core>, StoreError> {
        let opened = crate::store::open(&config.data_dir, &config.store)?;
        let vhost = vhost::Vhost::new("/", &config.mqtt.exchange, Arc::clone(&opened.messages));
        let mut recovered_mqtt_sessions = std::collections::BTreeMap::new();
        let mut recovered_qos2 = std::collections::HashMap::new();
        let mut recovered_qos2_out = std::collections::HashMap::new();
        if let Some((definitions, mut set)) = opened.definitions {
            recovered_mqtt_sessions = std::mem::take(&mut set.mqtt_sessions);
            // Taken before `discard_unclaimed`, which would settle them.
            for client_id in recovered_mqtt_sessions.keys() {
                let name = crate::mqtt::qos2_store_name(client_id);
                let ids: Vec<(u16, crate::store::StoreId)> = opened
                    .messages
                    .take_recovered(&name)
                    .into_iter()
                    .filter_map(|r| {
                        let m = r.message.or_else(|| opened.messages.read(r.id))?;
                        let id = u16::from_be_bytes(m.body.get(..2)?.try_into().ok()?);
                        Some((id, r.id))
                    })
                    .collect();
                if !ids.is_empty() {
                    recovered_qos2.insert(client_id.clone(), ids);
                }
                // Before `vhost.restore`: the messages these name leave the session's queue.
                let out = crate::mqtt::recover_qos2_out(&*opened.messages, client_id);
                if !out.is_empty() {
                    recovered_qos2_out.insert(client_id.clone(), out);
                }
            }
            vhost.restore(set);
            vhost.restore_retained();
            vhost.enable_definitions(definitions);
        }
        opened.messages.discard_unclaimed();
        Ok(Arc::new(Core {
            config: Arc::new(config.clone()),
            vhost,
            vhosts: dashmap::DashMap::new(),
            metrics: Metrics::default(),
            auth: Arc::new(access),
            store: Arc::new(MemoryStore::default()),
            started: Instant::now(),
            recovered_mqtt_sessions: parking_lot::Mutex::new(recovered_mqtt_sessions),
            recovered_qos2: parking_lot::Mutex::new(recovered_qos2),
            recovered_qos2_out: parking_lot::Mutex::new(recovered_qos2_out),
            limits: crate::limits::Limits::new(config),
        }))
    }
}
