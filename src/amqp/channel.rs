//! Per-channel state, owned by the connection task: the publish being assembled, consumers,
//! unacknowledged deliveries by delivery tag, prefetch, and publisher-confirm counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferromq_amqp::{BasicProperties, BasicPublish, ChannelId};

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
    /// basic.qos prefetch count for new consumers (0 = unlimited).
    pub prefetch: u16,
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
    /// Publishes a queue refused (`x-overflow = reject-publish`): nacked instead of acked.
    pub refused: std::collections::BTreeSet<u64>,
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
}
