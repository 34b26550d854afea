//! Consumers as a queue actor sees them: a sink to hand deliveries to, a prefetch window and
//! the count of its unacknowledged messages; and the set of them, which decides who gets the
//! next message (the highest-priority consumers with credit, round-robin among equals, or only
//! the first one registered for a single-active-consumer queue) and who may register
//! (exclusive consumers).

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

/// Why `QueueHandle::consume_checked` refused a consumer. The first three are RabbitMQ's
/// `exclusive_consume_unavailable`, which AMQP reports as 403 ACCESS_REFUSED
/// "queue 'q' in vhost '/' in exclusive use" (see `Vhost::consume_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsumeError {
    /// Another consumer of the queue is exclusive.
    #[error("in exclusive use")]
    ExclusiveConsumerExists,
    /// An exclusive consumer was asked for, but the queue has consumers.
    #[error("in exclusive use")]
    QueueHasConsumers,
    /// An exclusive consumer was asked for on an `x-single-active-consumer` queue (RabbitMQ
    /// refuses it there whatever the other consumers).
    #[error("in exclusive use")]
    SingleActiveConsumer,
    /// The queue was deleted before the request reached it.
    #[error("queue deleted")]
    QueueDeleted,
}

/// A registered consumer.
pub(super) struct Consumer {
    pub tag: ConsumerTag,
    pub sink: Arc<dyn ConsumerSink>,
    /// Unacknowledged deliveries allowed at once; 0 = unlimited (AMQP basic.qos semantics).
    pub prefetch: u32,
    /// Deliveries are settled when sent (AMQP no-ack; MQTT QoS 0).
    pub no_ack: bool,
    /// Registered with basic.consume exclusive=true: no other consumer may join.
    pub exclusive: bool,
    /// Deliveries not yet settled.
    pub unacked: u32,
    /// RabbitMQ's consumer priority (`x-priority`, default 0): lower ones receive only while
    /// every higher one is blocked.
    pub priority: i32,
}

impl Consumer {
    /// True if the prefetch window has room.
    pub fn has_credit(&self) -> bool {
        (self.no_ack || self.prefetch == 0 || self.unacked < self.prefetch) && self.sink.has_room()
    }
}

/// The consumers of one queue, in registration order.
pub(super) struct Consumers {
    list: Vec<Consumer>,
    /// Round-robin cursor: the slot to try first for the next message.
    next: usize,
    /// The highest priority registered: a scan stops at the first consumer with credit at it.
    top_priority: i32,
    /// `x-single-active-consumer`: only the first in `list` receives.
    single_active: bool,
}

impl Consumers {
    pub fn new(single_active: bool) -> Consumers {
        Consumers {
            list: Vec::new(),
            next: 0,
            top_priority: 0,
            single_active,
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether a consumer (`exclusive` or not) may join, in RabbitMQ's order of checks
    /// (`rabbit_amqqueue_process` basic_consume): single active consumer first, then an
    /// existing exclusive consumer, then "exclusive needs an unused queue".
    pub fn admit(&self, exclusive: bool) -> Result<(), ConsumeError> {
        if self.single_active && exclusive {
            return Err(ConsumeError::SingleActiveConsumer);
        }
        if self.list.iter().any(|c| c.exclusive) {
            return Err(ConsumeError::ExclusiveConsumerExists);
        }
        if exclusive && !self.list.is_empty() {
            return Err(ConsumeError::QueueHasConsumers);
        }
        Ok(())
    }

    /// Registers a consumer last. On a single-active-consumer queue it waits, registered and
    /// idle, until those before it are gone.
    pub fn add(&mut self, consumer: Consumer) {
        self.list.push(consumer);
        self.top_priority = self.highest_priority();
    }

    /// Removes the consumer tagged `tag`; true if it was there. Removal keeps the order, so the
    /// next registered consumer of a single-active-consumer queue takes over.
    pub fn remove(&mut self, tag: &ConsumerTag) -> bool {
        let before = self.list.len();
        self.list.retain(|c| c.tag != *tag);
        self.top_priority = self.highest_priority();
        before != self.list.len()
    }

    pub fn get_mut(&mut self, tag: &ConsumerTag) -> Option<&mut Consumer> {
        self.list.iter_mut().find(|c| c.tag == *tag)
    }

    /// The slot of the consumer the next message goes to, if one has credit: the
    /// highest-priority consumers with credit, round-robin among them (RabbitMQ consumer
    /// priorities), or the active (first) one of a single-active-consumer queue.
    pub fn next_with_credit(&mut self) -> Option<usize> {
        let n = if self.single_active {
            self.list.len().min(1)
        } else {
            self.list.len()
        };
        // From the cursor, the first consumer with credit at the best priority seen: equal
        // priorities take turns, a higher one always wins. With all priorities equal (the usual
        // case) the scan stops at the first consumer with credit, as plain round-robin does.
        let mut best: Option<usize> = None;
        for slot in (0..n).map(|i| (self.next + i) % n) {
            let c = &self.list[slot];
            if best.is_some_and(|b| c.priority <= self.list[b].priority) || !c.has_credit() {
                continue;
            }
            best = Some(slot);
            if c.priority >= self.top_priority {
                break;
            }
        }
        let slot = best?;
        self.next = (slot + 1) % n;
        Some(slot)
    }

    fn highest_priority(&self) -> i32 {
        self.list.iter().map(|c| c.priority).max().unwrap_or(0)
    }

    /// The consumer in `slot` (from `next_with_credit`, with no change in between).
    pub fn at_mut(&mut self, slot: usize) -> &mut Consumer {
        &mut self.list[slot]
    }

    /// Removes every consumer (queue deletion).
    pub fn take_all(&mut self) -> Vec<Consumer> {
        self.next = 0;
        self.top_priority = 0;
        std::mem::take(&mut self.list)
    }
}
