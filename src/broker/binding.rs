//! Bindings: what an exchange routes to. A destination is anything that accepts deliveries
//! (an MQTT session, a shared-subscription group, an AMQP queue) or another exchange (a RabbitMQ
//! exchange-to-exchange binding, expanded by the vhost when it routes); identity is the `Arc`
//! pointer, so the topic index can store and remove bindings without knowing their type.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::message::Message;

/// One delivery of a message to a destination, after overlapping bindings were merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// QoS to deliver with: the publish QoS capped by the binding's maximum.
    pub qos: u8,
    /// Keep the publisher's retain flag (MQTT 5 Retain As Published); otherwise 0 is sent.
    pub retain_as_published: bool,
    /// MQTT 5 subscription identifiers of every binding that matched [MQTT-3.3.4-3].
    pub subscription_ids: Vec<u32>,
}

/// A delivery that could not be queued at once because the destination's inbox is full. The
/// publisher awaits it before reading more from its socket, which is how backpressure reaches
/// the client. Allocated only in that (rare) case.
pub type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Something messages can be delivered to. `deliver` must not block: it queues and wakes, or
/// returns the wait for a full inbox as `Pending`.
pub trait Subscriber: Send + Sync + 'static {
    /// Takes one message; the subscriber applies its own queue limits and overflow policy.
    fn deliver(&self, message: &Arc<Message>, delivery: Delivery) -> Option<Pending>;

    /// The client identity for No Local [MQTT-3.8.3-3]; `None` for queues.
    fn identity(&self) -> Option<&str>;

    /// The exchange's name when the destination is an exchange (exchange-to-exchange binding):
    /// routing continues there instead of delivering. `None` for everything that takes
    /// deliveries.
    fn as_exchange(&self) -> Option<&str> {
        None
    }
}

/// Per-binding delivery options (MQTT subscription options; AMQP bindings use the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BindingOptions {
    /// Highest QoS delivered through this binding.
    pub max_qos: u8,
    /// Do not deliver messages published by the subscriber itself.
    pub no_local: bool,
    /// Keep the retain flag on forwarded messages.
    pub retain_as_published: bool,
    /// MQTT 5 subscription identifier.
    pub subscription_id: Option<u32>,
}

impl Default for BindingOptions {
    fn default() -> Self {
        BindingOptions {
            max_qos: 2,
            no_local: false,
            retain_as_published: false,
            subscription_id: None,
        }
    }
}

/// A destination plus the options it was bound with. Equal when both the destination (by
/// pointer) and the options are equal.
#[derive(Clone)]
pub struct Binding {
    /// Where matching messages go.
    pub destination: Arc<dyn Subscriber>,
    /// How they are delivered.
    pub options: BindingOptions,
}

impl Binding {
    /// The destination's identity as an address, for grouping and equality.
    pub fn destination_key(&self) -> usize {
        Arc::as_ptr(&self.destination) as *const () as usize
    }
}

impl PartialEq for Binding {
    fn eq(&self, other: &Self) -> bool {
        self.destination_key() == other.destination_key() && self.options == other.options
    }
}

impl Eq for Binding {}

impl Hash for Binding {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.destination_key().hash(state);
        self.options.hash(state);
    }
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field(
                "destination",
                &format_args!("{:#x}", self.destination_key()),
            )
            .field("options", &self.options)
            .finish()
    }
}
