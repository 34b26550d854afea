//! What the connection writes from its consumers' mailbox: deliveries (at once, or held back
//! in order while the channel-wide prefetch window is full), direct reply-to replies, and
//! consumer cancellations the queue side started (RabbitMQ's `consumer_cancel_notify`).

use std::sync::atomic::Ordering;

use ferromq_amqp::{ChannelId, Method, ShortString};

use super::{send, Connection};
use crate::amqp::consumer::{Delivery, Outbound, BACKLOG_LOW};
use crate::amqp::reply_code::AmqpError;
use crate::amqp::reply_to::Reply;

impl Connection {
    /// Handles one item of the mailbox.
    pub(super) fn on_outbound(
        &mut self,
        out: Outbound,
        wbuf: &mut bytes::BytesMut,
    ) -> Result<(), AmqpError> {
        match out {
            Outbound::Deliver(d) => self.write_delivery(d, wbuf),
            Outbound::Reply(r) => self.write_reply(r, wbuf),
            Outbound::Cancelled {
                channel,
                consumer_tag,
            } => {
                let Some(ch) = self.channels.get_mut(&channel.0).filter(|c| !c.closing) else {
                    return Ok(());
                };
                if ch.consumers.remove(&consumer_tag).is_none() {
                    return Ok(());
                }
                send(
                    wbuf,
                    channel,
                    Method::BasicCancel(ferromq_amqp::BasicCancel {
                        consumer_tag: ShortString::truncating(&consumer_tag),
                        no_wait: true,
                    }),
                )
            }
        }
    }

    /// Takes one delivery from a consumer's queue off the mailbox: written, held back while
    /// the channel-wide window is full, or returned if the consumer is gone.
    fn write_delivery(&mut self, d: Delivery, wbuf: &mut bytes::BytesMut) -> Result<(), AmqpError> {
        let before = d.backlog.fetch_sub(1, Ordering::Relaxed);
        let Some(channel) = self.channels.get_mut(&d.channel.0).filter(|c| !c.closing) else {
            return Ok(());
        };
        if before == BACKLOG_LOW + 1 {
            if let Some(consumer) = channel.consumers.get(&d.consumer_tag) {
                consumer.queue.resume();
            }
        }
        // Queues check the window concurrently and may overshoot it: the excess waits here,
        // behind anything already waiting, so deliveries stay in order.
        let consumer_left = !channel.consumers.contains_key(&d.consumer_tag);
        if d.counted && !consumer_left && (!channel.held.is_empty() || !channel.window_open()) {
            channel.held.push_back(d);
            return Ok(());
        }
        self.write_now(d, wbuf)
    }

    /// Writes deliveries held back by the channel-wide window while it has room.
    pub(in crate::amqp) fn write_held(
        &mut self,
        id: ChannelId,
        wbuf: &mut bytes::BytesMut,
    ) -> Result<(), AmqpError> {
        loop {
            let Some(channel) = self.channels.get_mut(&id.0).filter(|c| !c.closing) else {
                return Ok(());
            };
            if !channel.window_open() {
                return Ok(());
            }
            let Some(d) = channel.held.pop_front() else {
                return Ok(());
            };
            self.write_now(d, wbuf)?;
        }
    }

    /// Writes one delivery to the socket buffer (the window has room for it).
    fn write_now(&mut self, d: Delivery, wbuf: &mut bytes::BytesMut) -> Result<(), AmqpError> {
        let Some(channel) = self.channels.get_mut(&d.channel.0).filter(|c| !c.closing) else {
            return Ok(());
        };
        let Some(consumer) = channel.consumers.get(&d.consumer_tag) else {
            // Cancelled meanwhile: the queue still counts it unacked; give it back.
            if d.counted {
                channel.credit.released(1);
            }
            d.queue.reject(d.delivery.id, true);
            return Ok(());
        };
        let no_ack = consumer.no_ack;
        let queue = consumer.queue.clone();
        let tag = channel.next_tag();
        if !no_ack {
            channel.written += 1;
            channel.unacked.insert(
                tag,
                crate::amqp::channel::Unacked {
                    queue,
                    id: d.delivery.id,
                    counted: true,
                    delivered_at: std::time::Instant::now(),
                },
            );
        }
        crate::amqp::basic::encode_delivery(
            wbuf,
            d.channel,
            &d.consumer_tag,
            tag,
            &d.delivery.message,
            d.delivery.redelivered,
            self.tuned.frame_max,
        )
    }

    /// Writes one direct reply-to reply to the channel's reply consumer (no-ack: nothing to
    /// track). A reply for a reply consumer cancelled meanwhile is dropped, as in RabbitMQ.
    fn write_reply(&mut self, r: Reply, wbuf: &mut bytes::BytesMut) -> Result<(), AmqpError> {
        r.backlog.fetch_sub(1, Ordering::Relaxed);
        let Some(channel) = self.channels.get_mut(&r.channel.0).filter(|c| !c.closing) else {
            return Ok(());
        };
        if channel
            .reply
            .as_ref()
            .is_none_or(|c| c.tag != r.consumer_tag)
        {
            return Ok(());
        }
        let tag = channel.next_tag();
        crate::amqp::basic::encode_delivery(
            wbuf,
            r.channel,
            &r.consumer_tag,
            tag,
            &r.message,
            false,
            self.tuned.frame_max,
        )
    }
}
