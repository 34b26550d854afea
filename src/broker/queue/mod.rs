//! Queues: one actor task per queue owns its messages, consumers and unacknowledged set; other
//! tasks talk to it through a `QueueHandle` over a bounded inbox. A full inbox makes the
//! publisher wait (`binding::Pending`), which stops it reading its socket: TCP backpressure.
//! Knows core messages only; AMQP queues and MQTT shared-subscription groups are both queues.
//!
//! Layout: `handle` (the public face: `QueueHandle`, `spawn`), `actor` (the task: arrival,
//! dispatch, acks, limits, expiry), `ready` (the ready messages, one FIFO per priority level),
//! `consumer` (consumers, single active consumer, exclusive consumers), `dead_letter` (x-death
//! and RabbitMQ's cycle rule, and the `QueueHost` a queue reaches its vhost through).
//! The RabbitMQ queue arguments these implement are parsed by `vhost::args` into `QueueLimits`.

mod actor;
mod consumer;
mod dead_letter;
mod handle;
pub(crate) mod id_hash;
mod ready;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dead_letter;
#[cfg(test)]
mod tests_paging;
#[cfg(test)]
mod tests_policies;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use consumer::{ConsumeError, ConsumerSink, ConsumerTag};
pub use dead_letter::{DeadLetter, DeathReason, QueueHost};
pub use handle::{
    spawn, spawn_hosted, spawn_recovered, Admission, ConsumeOptions, Outcome, QueueHandle, Verdict,
};

use super::message::Message;

/// Identifies a message within its queue (AMQP maps these to per-channel delivery tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// One message handed to a consumer.
#[derive(Debug, Clone)]
pub struct QueueDelivery {
    /// The queue's name.
    pub queue: Arc<str>,
    /// The consumer it was delivered to.
    pub consumer: ConsumerTag,
    /// Its id in the queue, to ack / reject it.
    pub id: MessageId,
    /// The message.
    pub message: Arc<Message>,
    /// True if it was delivered before and not acknowledged.
    pub redelivered: bool,
    /// Its record in the queue's durable store (a persistent message in a durable queue), so
    /// a consumer can refer to it durably (MQTT outgoing QoS 2 across a restart).
    pub stored: Option<crate::store::StoreId>,
}

/// What happens when a queue is full (AMQP `x-overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (dead-letter, reason `maxlen`) messages from the head to make room (RabbitMQ's
    /// default).
    #[default]
    DropHead,
    /// Refuse the new message; a publisher in confirm mode gets a nack.
    RejectPublish,
    /// As `RejectPublish`, and the refused message is dead-lettered (reason `maxlen`).
    RejectPublishDlx,
}

impl Overflow {
    /// True if a publish can be refused (the publisher must learn the outcome for confirms).
    pub fn refuses(self) -> bool {
        matches!(self, Overflow::RejectPublish | Overflow::RejectPublishDlx)
    }
}

/// Limits and policies of one queue: its RabbitMQ `x-` arguments as the actor enforces them.
#[derive(Debug, Clone, Default)]
pub struct QueueLimits {
    /// At most this many ready messages (`x-max-length`).
    pub max_length: Option<usize>,
    /// At most this many body bytes of ready messages (`x-max-length-bytes`).
    pub max_length_bytes: Option<usize>,
    /// What to do beyond the limits.
    pub overflow: Overflow,
    /// Messages expire this long after they entered the queue (`x-message-ttl`), or at their
    /// own expiry if that comes first.
    pub message_ttl: Option<Duration>,
    /// Where dead-lettered messages are republished (`x-dead-letter-exchange`; `""` is the
    /// default exchange). Without it, rejected, expired and overflowing messages are dropped.
    pub dead_letter_exchange: Option<Arc<str>>,
    /// The routing key (AMQP form) dead-lettered messages are republished with
    /// (`x-dead-letter-routing-key`); their own when `None`.
    pub dead_letter_routing_key: Option<Arc<str>>,
    /// Highest message priority (`x-max-priority`): higher priorities are delivered first,
    /// FIFO within one; a message above it counts as it. `None`: priorities are ignored.
    pub max_priority: Option<u8>,
    /// Only the first registered consumer receives messages (`x-single-active-consumer`).
    pub single_active_consumer: bool,
    /// The queue deletes itself after being unused this long (`x-expires`): no consumers, no
    /// `get`, no `mark_used` (redeclaration). Carried out through its `QueueHost`.
    pub expires: Option<Duration>,
    /// A QoS 0 message that arrives while the queue has no consumer is dropped: an MQTT
    /// session's queue does not keep QoS 0 messages for an offline client (Mosquitto's default,
    /// `queue_qos0_messages false`).
    pub drop_qos0_without_consumer: bool,
}

/// A queue's counters as of the moment the actor answered (see `QueueHandle::counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Messages waiting for a consumer.
    pub ready: u64,
    /// Messages delivered and not yet acknowledged.
    pub unacked: u64,
    /// Consumers.
    pub consumers: u64,
}

/// Counters a queue keeps up to date for `queue.declare-ok` and monitoring.
#[derive(Debug, Default)]
pub struct QueueStats {
    ready: AtomicU64,
    unacked: AtomicU64,
    consumers: AtomicU64,
    dropped: AtomicU64,
    /// Consume requests sent and not yet taken in by the actor. A queue that drops QoS 0
    /// messages without a consumer keeps them while one is on its way: the actor takes in the
    /// publishes already in its inbox before a control request, and a publish that followed
    /// the SUBACK must not be dropped for a consumer registered a moment later.
    consumes_pending: AtomicU64,
}

impl QueueStats {
    /// Messages waiting for a consumer.
    pub fn ready(&self) -> u64 {
        self.ready.load(Ordering::Relaxed)
    }

    /// Messages delivered and not yet acknowledged.
    pub fn unacked(&self) -> u64 {
        self.unacked.load(Ordering::Relaxed)
    }

    /// Active consumers.
    pub fn consumers(&self) -> u64 {
        self.consumers.load(Ordering::Relaxed)
    }

    /// Messages dropped by the overflow policy.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
