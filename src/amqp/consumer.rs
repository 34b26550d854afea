//! Consumers as the queue actor sees an AMQP channel's consumer: a sink that forwards each
//! delivery to the connection task's mailbox. The mailbox is unbounded, but what is in it is
//! bounded: consumers with a prefetch window by that window, no-ack and unlimited consumers by
//! `BACKLOG_HIGH` (the sink reports no room above it, and the connection resumes the queue
//! once it has written the backlog down to `BACKLOG_LOW`). Ack-mode sinks also respect the
//! channel-wide window (basic.qos global=true, `ChannelCredit`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferromq_amqp::ChannelId;
use tokio::sync::mpsc;

use super::channel::ChannelCredit;
use super::reply_to::Reply;
use crate::broker::queue::{ConsumerSink, ConsumerTag, QueueDelivery, QueueHandle};

/// Deliveries buffered for one consumer before its queue pauses.
pub const BACKLOG_HIGH: usize = 1000;
/// Backlog at which a paused queue is resumed.
pub const BACKLOG_LOW: usize = BACKLOG_HIGH / 2;

/// What the connection task receives from queues.
pub enum Outbound {
    /// A message for a consumer.
    Deliver(Delivery),
    /// The consumer's queue was deleted: tell the client (RabbitMQ's consumer_cancel_notify).
    Cancelled {
        /// The consumer's channel.
        channel: ChannelId,
        /// The consumer's AMQP tag.
        consumer_tag: Arc<str>,
    },
    /// A direct reply-to reply for the channel's reply consumer (no queue behind it).
    Reply(Reply),
}

/// One message for a consumer.
pub struct Delivery {
    /// The channel of the consumer.
    pub channel: ChannelId,
    /// The consumer's AMQP tag.
    pub consumer_tag: Arc<str>,
    /// The delivery.
    pub delivery: QueueDelivery,
    /// The queue it came from (to give it back if the consumer is gone).
    pub queue: QueueHandle,
    /// The consumer's backlog counter, decremented when written.
    pub backlog: Arc<AtomicUsize>,
    /// Counted against the channel-wide window (the consumer is in ack mode).
    pub counted: bool,
}

/// One consumer's sink.
pub struct ChannelSink {
    /// The connection's mailbox.
    pub mailbox: mpsc::UnboundedSender<Outbound>,
    /// The consumer's channel.
    pub channel: ChannelId,
    /// The consumer's AMQP tag.
    pub consumer_tag: Arc<str>,
    /// Deliveries handed over and not yet written to the socket.
    pub backlog: Arc<AtomicUsize>,
    /// The queue consumed from.
    pub queue: QueueHandle,
    /// Deliveries are settled when sent: not subject to the channel-wide window.
    pub no_ack: bool,
    /// The channel-wide window.
    pub credit: Arc<ChannelCredit>,
}

impl ConsumerSink for ChannelSink {
    fn deliver(&self, delivery: QueueDelivery) {
        self.backlog.fetch_add(1, Ordering::Relaxed);
        if !self.no_ack {
            self.credit.took();
        }
        // If the connection is gone the send fails; the message stays unacknowledged under
        // this consumer and goes back to the queue when the connection's cleanup cancels it.
        let _ = self.mailbox.send(Outbound::Deliver(Delivery {
            channel: self.channel,
            consumer_tag: Arc::clone(&self.consumer_tag),
            delivery,
            queue: self.queue.clone(),
            backlog: Arc::clone(&self.backlog),
            counted: !self.no_ack,
        }));
    }

    fn cancelled(&self, _tag: &ConsumerTag) {
        let _ = self.mailbox.send(Outbound::Cancelled {
            channel: self.channel,
            consumer_tag: Arc::clone(&self.consumer_tag),
        });
    }

    fn has_room(&self) -> bool {
        // RabbitMQ's limiter applies to ack-mode consumers only.
        self.backlog.load(Ordering::Relaxed) < BACKLOG_HIGH
            && (self.no_ack || self.credit.has_room())
    }
}
