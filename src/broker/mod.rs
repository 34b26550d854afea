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

use crate::auth::AccessControl;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{MemoryStore, MessageStore};

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
    /// Where persistent messages go.
    pub store: Arc<dyn MessageStore>,
    /// When the broker started (for `$SYS/broker/uptime`).
    pub started: Instant,
}

impl Core {
    /// A core with the default vhost, its standard exchanges, and the MQTT exchange.
    pub fn new(config: &Config) -> Arc<Core> {
        let store: Arc<dyn MessageStore> = Arc::new(MemoryStore::default());
        Arc::new(Core {
            config: Arc::new(config.clone()),
            vhost: vhost::Vhost::new("/", &config.mqtt.exchange, Arc::clone(&store)),
            vhosts: dashmap::DashMap::new(),
            metrics: Metrics::default(),
            auth: Arc::new(AccessControl::new(config)),
            store,
            started: Instant::now(),
        })
    }
}
