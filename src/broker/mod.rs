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

/// Persistent MQTT sessions found in the definitions log: by vhost, by client identifier.
pub type RecoveredSessions = std::collections::HashMap<
    String,
    std::collections::BTreeMap<String, crate::store::definitions::MqttSessionDef>,
>;

/// QoS 2 packet ids received and not released, with their store records, by (vhost, client
/// identifier).
pub type RecoveredQos2 =
    std::collections::HashMap<(String, String), Vec<(u16, crate::store::StoreId)>>;

/// Outgoing QoS 2 state of recovered MQTT sessions, by vhost and client identifier.
pub type RecoveredQos2Out =
    std::collections::HashMap<(String, String), Vec<crate::mqtt::RecoveredOut>>;

/// Everything the connections of one broker share.
pub struct Core {
    /// The configuration the broker started with.
    pub config: Arc<Config>,
    /// The default vhost `/`.
    pub vhost: Arc<vhost::Vhost>,
    /// Other vhosts: those defined at start (with what the store kept of them), and those
    /// added later, created when first opened (`vhosts.rs`).
    pub vhosts: dashmap::DashMap<String, Arc<vhost::Vhost>>,
    /// Broker-wide counters.
    pub metrics: Metrics,
    /// Logins, vhost permissions and MQTT ACLs.
    pub auth: Arc<AccessControl>,
    /// An in-memory store for the queues whose messages are never kept across restarts:
    /// MQTT shared-subscription groups. Durable queues write to their vhost's view of the
    /// shared message store (`Vhost::store`).
    pub store: Arc<dyn MessageStore>,
    /// The message store every vhost shares (the segment log, or in memory).
    messages: Arc<dyn MessageStore>,
    /// The definitions log every vhost shares (`None` in memory).
    definitions: Option<Arc<crate::store::Definitions>>,
    /// The last run did not stop cleanly: recovered messages come back redelivered.
    unclean: bool,
    /// When the broker started (for `$SYS/broker/uptime`).
    pub started: Instant,
    /// Per recovered MQTT session (by vhost and client identifier), the QoS 2 packet ids it had
    /// received and not seen released, with their records in the store (taken once, by the
    /// MQTT adapter).
    pub recovered_qos2: parking_lot::Mutex<RecoveredQos2>,
    /// Per recovered MQTT session (by vhost and client identifier), the QoS 2 packet ids it
    /// had in flight to its client, with the messages they name (taken out of its queue;
    /// taken once, by the MQTT adapter).
    pub recovered_qos2_out: parking_lot::Mutex<RecoveredQos2Out>,
    /// Persistent MQTT sessions found in the definitions log, for the MQTT adapter to resume
    /// in their vhosts (each vhost's taken once).
    pub recovered_mqtt_sessions: parking_lot::Mutex<RecoveredSessions>,
    /// Connection limits and the memory / disk alarms.
    pub limits: crate::limits::Limits,
}

impl Core {
    /// A core with the default vhost, its standard exchanges, and the MQTT exchange, and
    /// with what the store under `data_dir` recovered: durable exchanges, queues (with their
    /// unsettled messages) and bindings of every vhost that still exists.
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
        let unclean = !opened.clean;
        let messages = opened.messages;
        let (definitions, mut sets) = match opened.definitions {
            Some((d, sets)) => (Some(Arc::new(d)), sets),
            None => (None, crate::store::definitions::VhostSets::new()),
        };
        // Every vhost that exists is opened now, so it takes back its messages and retained
        // messages before `discard_unclaimed` settles the rest; a vhost deleted while the
        // broker was down is forgotten with everything it kept.
        let mut names = access.vhost_names();
        names.sort();
        for gone in sets.keys().filter(|v| !names.contains(v)) {
            tracing::warn!(
                vhost = %gone,
                "store: dropping the durable definitions and messages of a vhost that no longer exists"
            );
            if let Some(d) = &definitions {
                d.forget_vhost(gone);
            }
        }
        // One deleted and added again while the broker was down is another incarnation: the
        // old one's definitions go, and its messages (kept under the old incarnation's names)
        // are settled below with everything no queue claims.
        for name in &names {
            let now = access.vhost_incarnation(name);
            if sets.get(name).is_some_and(|set| set.incarnation != now) {
                tracing::warn!(
                    vhost = %name,
                    "store: the vhost was deleted and added again; dropping what the old one kept"
                );
                sets.remove(name);
                if let Some(d) = &definitions {
                    d.forget_vhost(name);
                }
            }
        }
        let mut recovered_mqtt_sessions = RecoveredSessions::new();
        let mut recovered_qos2 = std::collections::HashMap::new();
        let mut recovered_qos2_out = std::collections::HashMap::new();
        let mut default = None;
        let vhosts = dashmap::DashMap::new();
        for name in names {
            let host = open_vhost(
                &name,
                access.vhost_incarnation(&name),
                config,
                &messages,
                unclean,
            );
            let recorded = sets.get(&name).and_then(|s| s.incarnation.clone());
            if let Some(d) = &definitions {
                record_incarnation(d, &host, recorded.as_deref());
            }
            if let Some(mut set) = sets.remove(&name) {
                let sessions = std::mem::take(&mut set.mqtt_sessions);
                // Taken before `discard_unclaimed`, which would settle them.
                for client_id in sessions.keys() {
                    let ids = recovered_qos2_ids(host.store(), client_id);
                    if !ids.is_empty() {
                        recovered_qos2.insert((name.clone(), client_id.clone()), ids);
                    }
                    // Before `host.restore`: the messages these name leave the session's queue.
                    let out = crate::mqtt::recover_qos2_out(&**host.store(), client_id);
                    if !out.is_empty() {
                        recovered_qos2_out.insert((name.clone(), client_id.clone()), out);
                    }
                }
                if !sessions.is_empty() {
                    recovered_mqtt_sessions.insert(name.clone(), sessions);
                }
                host.restore(set);
            }
            if let Some(d) = &definitions {
                host.restore_retained();
                host.enable_definitions(Arc::clone(d));
            }
            if name == crate::store::definitions::DEFAULT_VHOST {
                default = Some(host);
            } else {
                vhosts.insert(name, host);
            }
        }
        messages.discard_unclaimed();
        let vhost = default.unwrap_or_else(|| {
            open_vhost(
                crate::store::definitions::DEFAULT_VHOST,
                None,
                config,
                &messages,
                unclean,
            )
        });
        Ok(Arc::new(Core {
            config: Arc::new(config.clone()),
            vhost,
            vhosts,
            metrics: Metrics::default(),
            auth: Arc::new(access),
            store: Arc::new(MemoryStore::default()),
            messages,
            definitions,
            unclean,
            started: Instant::now(),
            recovered_mqtt_sessions: parking_lot::Mutex::new(recovered_mqtt_sessions),
            recovered_qos2: parking_lot::Mutex::new(recovered_qos2),
            recovered_qos2_out: parking_lot::Mutex::new(recovered_qos2_out),
            limits: crate::limits::Limits::new(config),
        }))
    }

    /// Every vhost open now, `/` first.
    pub fn open_vhosts(&self) -> Vec<Arc<vhost::Vhost>> {
        let mut all = vec![Arc::clone(&self.vhost)];
        all.extend(self.vhosts.iter().map(|v| Arc::clone(v.value())));
        all
    }

    /// For a graceful stop, once no connection is left: lets every queue take in the last
    /// acks, writes out the store and records the clean shutdown, so a restart neither
    /// redelivers what was acknowledged nor flags the rest redelivered.
    pub async fn close_store(&self) {
        for host in self.open_vhosts() {
            host.settle_pending().await;
        }
        let store = Arc::clone(&self.messages);
        let _ = tokio::task::spawn_blocking(move || store.flush()).await;
        if self.definitions.is_some() {
            crate::store::shutdown::mark_clean(&self.config.data_dir);
        }
    }
}

/// A vhost over its view of the shared message store (definitions enabled by the caller).
fn open_vhost(
    name: &str,
    incarnation: Option<String>,
    config: &Config,
    messages: &Arc<dyn MessageStore>,
    unclean: bool,
) -> Arc<vhost::Vhost> {
    let store =
        crate::store::VhostStore::new(Arc::clone(messages), name, incarnation.as_deref(), unclean);
    vhost::Vhost::incarnation_of(name, incarnation, &config.mqtt.exchange, Arc::new(store))
}

/// Records which incarnation `host`'s definitions are of, once, before any of them.
fn record_incarnation(
    definitions: &crate::store::definitions::Definitions,
    host: &vhost::Vhost,
    recorded: Option<&str>,
) {
    if let Some(i) = host.incarnation.as_deref().filter(|i| recorded != Some(*i)) {
        definitions.record(
            &host.name,
            &crate::store::definitions::Change::Incarnation(i.to_string()),
        );
    }
}

/// The QoS 2 packet ids persistent session `client_id` had received and not seen released,
/// from `store` (its vhost's), with their records.
fn recovered_qos2_ids(
    store: &Arc<dyn MessageStore>,
    client_id: &str,
) -> Vec<(u16, crate::store::StoreId)> {
    let name = crate::mqtt::qos2_store_name(client_id);
    store
        .take_recovered(&name)
        .into_iter()
        .filter_map(|r| {
            let m = r.message.or_else(|| store.read(r.id))?;
            let id = u16::from_be_bytes(m.body.get(..2)?.try_into().ok()?);
            Some((id, r.id))
        })
        .collect()
}
