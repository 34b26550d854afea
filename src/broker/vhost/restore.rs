//! Recreating the durable definitions at start (`Core::new`): exchanges first, then queues
//! (each takes the unsettled messages the store recovered for it), then bindings, through the
//! same declare and bind paths clients use, so a recovered entity is checked and built exactly
//! as a declared one (queues skip only the check for reserved names). Runs before `enable_definitions`, so nothing is recorded twice.

use super::{QueueSettings, Vhost};
use crate::broker::exchange::BindingKey;
use crate::broker::ConnectionId;
use crate::store::definitions::{BoundTo, DefinitionSet};

/// Who recreates queues at start: recovered queues are never exclusive, so no connection's
/// ownership is at stake.
const RESTORER: ConnectionId = ConnectionId(u64::MAX);

impl Vhost {
    /// Recreates `set` in this vhost. An entity that cannot be recreated (arguments this
    /// version refuses, a built-in name) is logged and skipped; the rest still come back.
    pub fn restore(&self, set: DefinitionSet) {
        for (name, settings) in set.exchanges {
            if self.exchange(&name).is_some() {
                continue;
            }
            if let Err(e) = self.declare_exchange(&name, settings, false) {
                tracing::warn!(exchange = %name, error = %e, "store: durable exchange not restored");
            }
        }
        for (name, def) in set.queues {
            let settings = QueueSettings {
                durable: true,
                // Not exclusive (recovered queues never are), nothing else set.
                auto_delete: def.auto_delete,
                arguments: def.arguments,
                // The MQTT adapter's session queues are known by their (RabbitMQ) name.
                mqtt_session: name.starts_with("mqtt-subscription-") && name.ends_with("qos1"),
                ..QueueSettings::default()
            };
            // Not `declare_queue`: a durable server-named queue (`amq.gen-...`) comes back
            // under its reserved name.
            let mut reg = self.lock_registry();
            if self.queue_entry(&name).is_some() {
                continue;
            }
            if let Err(e) = self.create_queue(&mut reg, &name, settings, RESTORER) {
                tracing::warn!(queue = %name, error = %e, "store: durable queue not restored");
            }
        }
        for b in set.bindings {
            let key = if b.mqtt_key {
                BindingKey::Mqtt(&b.key)
            } else {
                BindingKey::Amqp(&b.key)
            };
            let bound = match &b.destination {
                BoundTo::Queue(q) => self.bind_queue(q, &b.source, key, &b.arguments, RESTORER),
                BoundTo::Exchange(x) => self.bind_exchange(x, &b.source, key, &b.arguments),
            };
            if let Err(e) = bound {
                tracing::warn!(source = %b.source, error = %e, "store: durable binding not restored");
            }
        }
    }
}
