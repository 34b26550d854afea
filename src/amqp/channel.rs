//! Per-channel state, owned by the connection task: the publish being assembled, consumers,
//! unacknowledged deliveries by delivery tag, prefetch (per consumer and channel-wide), the
//! direct reply-to consumer, and publisher-confirm counters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ferromq_amqp::{BasicProperties, BasicPublish, ChannelId};

use super::consumer::Delivery;
use super::reply_to::ReplyConsumer;
use crate::broker::queue::{ConsumerTag, MessageId, QueueHandle};

/// A channel of an open connection.
pub struct Channel {
    /// Its number.
    pub id: ChannelId,
    /// Set once the broker sent channel.close: frames are ignored until close-ok.
    pub closing: bool,
    /// basic.publish whose content is still arriving.
    pub publish: Option<Assembly>,
    /// Last delivery tag handed out (tags start at 1 per channel).
    pub last_delivery_tag: u64,
    /// Deliveries not yet acknowledged, by delivery tag.
    pub unacked: BTreeMap<u64, Unacked>,
    /// Consumers by AMQP consumer tag.
    pub consumers: HashMap<Arc<str>, Consumer>,
    /// basic.qos prefetch count (global=false) for new consumers (0 = unlimited).
    pub prefetch: u16,
    /// basic.qos global=true: the channel-wide window, shared with the consumers' sinks.
    pub credit: Arc<ChannelCredit>,
    /// Deliveries to ack-mode consumers written and not yet settled (what the channel-wide
    /// window limits on the wire).
    pub written: u32,
    /// Deliveries that reached the connection while the channel-wide window was full (queues
    /// checked `has_room` concurrently): written, in order, as acks free the window.
    pub held: VecDeque<Delivery>,
    /// The direct reply-to consumer, if one was started on this channel.
    pub reply: Option<ReplyConsumer>,
    /// Publisher confirms, once confirm.select was received.
    pub confirms: Option<Confirms>,
    /// The queue declared last on this channel (an empty queue name in later methods means it).
    pub last_queue: Option<String>,
    /// Set by tx.select: publishes and acks wait for tx.commit.
    pub tx: Option<super::tx::TxBuffer>,
}

/// A publish whose header and body frames are being collected.
pub struct Assembly {
    /// The method.
    pub method: BasicPublish,
    /// Header frame's properties, once received.
    pub properties: Option<BasicProperties>,
    /// Announced body size, once the header arrived.
    pub body_size: u64,
    /// Body frames so far (one frame: kept as is, no copy).
    pub body: Vec<Bytes>,
    /// Bytes received so far.
    pub received: u64,
}

impl Assembly {
    /// The complete body: the single frame itself, or the frames joined.
    pub fn take_body(&mut self) -> Bytes {
        match self.body.len() {
            0 => Bytes::new(),
            1 => self.body.pop().unwrap_or_default(),
            _ => {
                let mut joined = BytesMut::with_capacity(self.received as usize);
                for part in self.body.drain(..) {
                    joined.extend_from_slice(&part);
                }
                joined.freeze()
            }
        }
    }
}

/// A delivery waiting for ack / nack / reject.
pub struct Unacked {
    /// The queue it came from.
    pub queue: QueueHandle,
    /// Its id there.
    pub id: MessageId,
    /// Counted against the channel-wide window (a consumer delivery, not a basic.get).
    pub counted: bool,
    /// When it was written (delivery acknowledgement timeout).
    pub delivered_at: Instant,
}

/// The channel-wide prefetch window (basic.qos global=true, RabbitMQ's channel limiter),
/// shared by the channel and every ack-mode consumer's sink. Sinks count what they hand over;
/// the connection uncounts what is settled. A window of 0 is unlimited.
#[derive(Debug, Default)]
pub struct ChannelCredit {
    limit: AtomicU32,
    handed: AtomicU32,
}

impl ChannelCredit {
    /// True if another delivery fits in the window. Queues ask this concurrently, so the window
    /// can be overshot by one delivery per queue; the connection holds those back (`held`).
    pub fn has_room(&self) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        limit == 0 || self.handed.load(Ordering::Relaxed) < limit
    }

    /// The window (0 = unlimited).
    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    /// basic.qos global=true.
    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// A sink handed over one delivery.
    pub fn took(&self) {
        self.handed.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` deliveries were settled (or given back).
    pub fn released(&self, n: u32) {
        // Saturating: never below zero even if a settlement raced a channel reset.
        let _ = self
            .handed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                Some(h.saturating_sub(n))
            });
    }
}

/// A consumer on this channel.
pub struct Consumer {
    /// The queue consumed from.
    pub queue: QueueHandle,
    /// The queue's name (for the auto-delete count).
    pub queue_name: String,
    /// Its tag in the queue (unique across connections).
    pub queue_tag: ConsumerTag,
    /// Deliveries are settled when sent.
    pub no_ack: bool,
}

/// Publisher confirm bookkeeping (RabbitMQ's confirm extension).
#[derive(Default)]
pub struct Confirms {
    /// Sequence number of the last publish on this channel (they count from 1).
    pub published: u64,
    /// Highest sequence number acknowledged to the client.
    pub confirmed: u64,
    /// Publishes a queue refused (`x-overflow = reject-publish`, or a store that could not
    /// write them): nacked instead of acked.
    pub refused: std::collections::BTreeSet<u64>,
    /// Publishes whose queues have not answered yet (a durable queue answers after the fsync):
    /// no confirm goes out for them or any later publish until they are decided.
    pub undecided: std::collections::BTreeSet<u64>,
    /// Tells this confirm mode from an earlier one on a reused channel number, so a late answer
    /// for a closed channel's publish is not taken for the new one's.
    pub epoch: u64,
}

impl Confirms {
    /// Confirm mode just selected.
    pub fn new() -> Confirms {
        static EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Confirms {
            epoch: EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Confirms::default()
        }
    }
}

impl Channel {
    /// A freshly opened channel.
    pub fn new(id: ChannelId) -> Channel {
        Channel {
            id,
            closing: false,
            publish: None,
            last_delivery_tag: 0,
            unacked: BTreeMap::new(),
            consumers: HashMap::new(),
            prefetch: 0,
            credit: Arc::new(ChannelCredit::default()),
            written: 0,
            held: VecDeque::new(),
            reply: None,
            confirms: None,
            last_queue: None,
            tx: None,
        }
    }

    /// The next delivery tag.
    pub fn next_tag(&mut self) -> u64 {
        self.last_delivery_tag += 1;
        self.last_delivery_tag
    }

    /// Removes acknowledged tags: `tag` alone, or every tag up to it when `multiple` (0 with
    /// `multiple` means all, AMQP 0-9-1 basic.ack). `None` if a single tag is unknown.
    pub fn take_acked(&mut self, tag: u64, multiple: bool) -> Option<Vec<(u64, Unacked)>> {
        if multiple {
            let upto = if tag == 0 { u64::MAX } else { tag };
            let keep = self.unacked.split_off(&upto.saturating_add(1));
            let taken = std::mem::replace(&mut self.unacked, keep);
            return Some(taken.into_iter().collect());
        }
        self.unacked.remove(&tag).map(|u| vec![(tag, u)])
    }

    /// Releases the channel-wide window taken by settled deliveries; true if the window was
    /// full before and has room now (the consumers' queues must be resumed).
    pub fn release_credit<'a>(&mut self, settled: impl IntoIterator<Item = &'a Unacked>) -> bool {
        let n = settled.into_iter().filter(|u| u.counted).count() as u32;
        if n == 0 {
            return false;
        }
        let was_full = !self.credit.has_room();
        self.written = self.written.saturating_sub(n);
        self.credit.released(n);
        was_full && self.credit.has_room()
    }

    /// True if a delivery to an ack-mode consumer may be written now.
    pub fn window_open(&self) -> bool {
        let limit = self.credit.limit();
        limit == 0 || self.written < limit
    }

    /// The queues of this channel's consumers, each once (to resume them).
    pub fn consumer_queues(&self) -> Vec<QueueHandle> {
        let mut queues: Vec<QueueHandle> = Vec::new();
        for c in self.consumers.values() {
            if !queues.iter().any(|q| Arc::ptr_eq(q.name(), c.queue.name())) {
                queues.push(c.queue.clone());
            }
        }
        queues
    }
}
