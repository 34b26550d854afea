//! Consumers as a queue actor sees them: a sink to hand deliveries to, a prefetch window and
//! the count of its unacknowledged messages.

use std::sync::Arc;

use super::QueueDelivery;

/// A consumer tag (AMQP `consumer-tag`; MQTT shared-group members use their client id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsumerTag(pub Arc<str>);

/// Where a consumer's deliveries go. Called on the queue's task: it must not block. The
/// prefetch window bounds how much a sink must buffer.
pub trait ConsumerSink: Send + Sync + 'static {
    /// Takes one delivery.
    fn deliver(&self, delivery: QueueDelivery);

    /// False while the sink's own buffer is full (e.g. a no-ack AMQP consumer whose socket is
    /// slower than the queue); the queue then waits for `QueueHandle::resume`.
    fn has_room(&self) -> bool {
        true
    }

    /// The queue was deleted while this consumer was registered; no more deliveries come, and
    /// acks for earlier ones are ignored. (AMQP: RabbitMQ's `consumer_cancel_notify` sends
    /// `basic.cancel` to the client.) Called on the queue's task; must not block.
    fn cancelled(&self, _tag: &ConsumerTag) {}
}

/// A registered consumer.
pub(super) struct Consumer {
    pub tag: ConsumerTag,
    pub sink: Arc<dyn ConsumerSink>,
    /// Unacknowledged deliveries allowed at once; 0 = unlimited (AMQP basic.qos semantics).
    pub prefetch: u32,
    /// Deliveries are settled when sent (AMQP no-ack; MQTT QoS 0).
    pub no_ack: bool,
    /// Deliveries not yet settled.
    pub unacked: u32,
}

impl Consumer {
    /// True if the prefetch window has room.
    pub fn has_credit(&self) -> bool {
        (self.no_ack || self.prefetch == 0 || self.unacked < self.prefetch) && self.sink.has_room()
    }
}
