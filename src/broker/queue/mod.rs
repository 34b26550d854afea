//! Queues: one actor task per queue owns its messages, consumers and unacknowledged set; other
//! tasks talk to it through a `QueueHandle` over a bounded inbox. A full inbox makes the
//! publisher wait (`binding::Pending`), which stops it reading its socket: TCP backpressure.
//! Knows core messages only; AMQP queues and MQTT shared-subscription groups are both queues.

mod actor;
mod consumer;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use actor::{spawn, QueueHandle};
pub use consumer::{ConsumerSink, ConsumerTag};

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
}

/// What happens when a queue is full (AMQP `x-overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop the oldest ready message to make room (RabbitMQ's default).
    #[default]
    DropHead,
    /// Refuse the new message.
    RejectPublish,
}

/// Limits of one queue.
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
