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

use std::sync::Arc;
use std::time::Instant;

use crate::auth::{Authenticator, DefaultPolicy};
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
    /// The default vhost `/` (the only one until vhosts can be created).
    pub vhost: Arc<vhost::Vhost>,
    /// Broker-wide counters.
    pub metrics: Metrics,
    /// The login hook.
    pub auth: Arc<dyn Authenticator>,
    /// Where queues outside the vhost's registry (MQTT shared-subscription groups) keep
    /// persistent messages: transient until MQTT sessions are stored. Durable AMQP queues
    /// write to the vhost's store (`Vhost::store`).
    pub store: Arc<dyn MessageStore>,
    /// When the broker started (for `$SYS/broker/uptime`).
    pub started: Instant,
}

impl Core {
    /// A core with the default vhost, its standard exchanges, and the MQTT exchange, and
    /// with what the store under `data_dir` recovered: durable exchanges, queues (with their
    /// unsettled messages) and bindings.
    pub fn new(config: &Config) -> Result<Arc<Core>, StoreError> {
        Core::with_auth(config, Arc::new(DefaultPolicy))
    }

    /// `new` with another login policy than the built-in one.
    pub fn with_auth(
        config: &Config,
        auth: Arc<dyn Authenticator>,
    ) -> Result<Arc<Core>, StoreError> {
        let opened = crate::store::open(&config.data_dir, &config.store)?;
        let vhost = vhost::Vhost::new("/", &config.mqtt.exchange, Arc::clone(&opened.messages));
        if let Some((definitions, set)) = opened.definitions {
            vhost.restore(set);
            vhost.enable_definitions(definitions);
        }
        opened.messages.discard_unclaimed();
        Ok(Arc::new(Core {
            config: Arc::new(config.clone()),
            vhost,
            metrics: Metrics::default(),
            auth,
            store: Arc::new(MemoryStore::default()),
            started: Instant::now(),
        }))
    }
}
