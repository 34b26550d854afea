//! The basic class: qos, consume / cancel, deliveries, get, ack / nack / reject, recover,
//! plus confirm.select. Delivery tags are per channel and count from 1.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use bytes::BytesMut;
use ferromq_amqp::{
    encode_content, reply_code, BasicCancel, BasicCancelOk, BasicConsume, BasicConsumeOk,
    BasicDeliver, BasicGet, BasicGetEmpty, BasicGetOk, BasicQos, BasicQosOk, BasicRecoverOk,
    ChannelId, ConfirmSelectOk, ContentMethod, DeliveryTag, Method, MethodId, ShortString,
};

use super::channel::{Confirms, Consumer, Unacked};
use super::conn::{internal, send, Connection};
use super::consumer::ChannelSink;
use super::reply_code::AmqpError;
use super::translate;
use crate::broker::queue::{ConsumerTag, QueueDelivery};

/// Writes basic.deliver + content header + body frames for one delivery.
pub fn encode_delivery(
    wbuf: &mut BytesMut,
    channel: ChannelId,
    consumer_tag: &str,
    delivery_tag: u64,
    d: &QueueDelivery,
    frame_max: u32,
) -> Result<(), AmqpError> {
    let deliver = BasicDeliver {
        consumer_tag: ShortString::truncating(consumer_tag),
        delivery_tag: DeliveryTag(delivery_tag),
        redelivered: d.redelivered,
        exchange: ShortString::truncating(&d.message.exchange),
        routing_key: translate::routing_key_of(&d.message),
    };
    let properties = translate::to_properties(&d.message);
    ferromq_amqp::encode_deliver(
        wbuf,
        channel,
        &deliver,
        &properties,
        &d.message.body,
        frame_max,
    )
    .map_err(internal)
}

impl Connection {
    pub(super) fn basic_qos(
        &mut self,
        id: ChannelId,
        m: BasicQos,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        if m.prefetch_size != 0 {
            return Err(AmqpError::connection(
                reply_code::NOT_IMPLEMENTED,
                "prefetch_size!=0 (not implemented)",
                Some(method_id(60, 10)),
            ));
        }
        // RabbitMQ's per_consumer_qos: the count applies to consumers started afterwards.
        self.channel(id)?.prefetch = m.prefetch_count;
        send(wbuf, id, Method::BasicQosOk(BasicQosOk))
    }

    pub(super) async fn basic_consume(
        &mut self,
        id: ChannelId,
        m: BasicConsume,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let mid = method_id(60, 20);
        let (queue_name, handle) = self.lookup_queue(id, &m.queue, mid)?;
        let tag: Arc<str> = if m.consumer_tag.is_empty() {
            format!("amq.ctag-{}", crate::broker::vhost::random_token()).into()
        } else {
            String::from_utf8_lossy(m.consumer_tag.as_bytes()).into()
        };
        // Unique across connections and channels: the queue tells consumers apart by it.
        let queue_tag = ConsumerTag(format!("{}/{}/{}", self.id.0, id.0, tag).into());
        let backlog = Arc::new(AtomicUsize::new(0));
        let sink = Arc::new(ChannelSink {
            mailbox: self.mailbox.clone(),
            channel: id,
            consumer_tag: Arc::clone(&tag),
            backlog: Arc::clone(&backlog),
            queue: handle.clone(),
        });
        let channel = self.channel(id)?;
        if channel.consumers.contains_key(&tag) {
            return Err(AmqpError::connection(
                reply_code::NOT_ALLOWED,
                format!("attempt to reuse consumer tag '{tag}'"),
                Some(mid),
            ));
        }
        let prefetch = u32::from(channel.prefetch);
        channel.consumers.insert(
            Arc::clone(&tag),
            Consumer {
                queue: handle.clone(),
                queue_name: queue_name.clone(),
                queue_tag: queue_tag.clone(),
                no_ack: m.no_ack,
            },
        );
        if let Err(e) = handle
            .consume_checked(queue_tag, sink, prefetch, m.no_ack, m.exclusive)
            .await
        {
            self.channel(id)?.consumers.remove(&tag);
            let e = self.core.vhost.consume_error(&queue_name, e);
            return Err(AmqpError::from_vhost(e, mid));
        }
        // consume-ok reaches the socket before any delivery: the mailbox is read only after
        // this frame's replies are written.
        if !m.no_wait {
            send(
                wbuf,
                id,
                Method::BasicConsumeOk(BasicConsumeOk {
                    consumer_tag: ShortString::truncating(&tag),
                }),
            )?;
        }
        self.core.vhost.consumer_added(&queue_name);
        Ok(())
    }

    pub(super) async fn basic_cancel(
        &mut self,
        id: ChannelId,
        m: BasicCancel,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let tag: Arc<str> = String::from_utf8_lossy(m.consumer_tag.as_bytes()).into();
        if let Some(consumer) = self.channel(id)?.consumers.remove(&tag) {
            // Unacked deliveries stay with the channel, to be acked or rejected (0-9-1 basic.cancel).
            consumer.queue.cancel(consumer.queue_tag, false).await;
            self.core.vhost.consumer_removed(&consumer.queue_name);
        }
        if m.no_wait {
            return Ok(());
        }
        send(
            wbuf,
            id,
            Method::BasicCancelOk(BasicCancelOk {
                consumer_tag: m.consumer_tag,
            }),
        )
    }

    pub(super) async fn basic_get(
        &mut self,
        id: ChannelId,
        m: BasicGet,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let (_, handle) = self.lookup_queue(id, &m.queue, method_id(60, 70))?;
        let owner = ConsumerTag(format!("{}/{}/basic.get", self.id.0, id.0).into());
        let Some((d, remaining)) = handle.get(owner, m.no_ack).await else {
            return send(wbuf, id, Method::BasicGetEmpty(BasicGetEmpty));
        };
        let channel = self.channel(id)?;
        let tag = channel.next_tag();
        if !m.no_ack {
            channel.unacked.insert(
                tag,
                Unacked {
                    queue: handle,
                    id: d.id,
                },
            );
        }
        let get_ok = BasicGetOk {
            delivery_tag: DeliveryTag(tag),
            redelivered: d.redelivered,
            exchange: ShortString::truncating(&d.message.exchange),
            routing_key: translate::routing_key_of(&d.message),
            message_count: u32::try_from(remaining).unwrap_or(u32::MAX),
        };
        let properties = translate::to_properties(&d.message);
        encode_content(
            wbuf,
            id,
            ContentMethod::GetOk(&get_ok),
            &properties,
            &d.message.body,
            self.tuned.frame_max,
        )
        .map_err(internal)
    }

    /// basic.ack (`requeue` None), basic.nack and basic.reject (`requeue` Some).
    pub(super) fn basic_ack(
        &mut self,
        id: ChannelId,
        tag: u64,
        multiple: bool,
        requeue: Option<bool>,
        mid: MethodId,
    ) -> Result<(), AmqpError> {
        let channel = self.channel(id)?;
        let Some(settled) = channel.take_acked(tag, multiple) else {
            return Err(AmqpError::channel(
                reply_code::PRECONDITION_FAILED,
                format!("unknown delivery tag {tag}"),
                Some(mid),
            ));
        };
        if let Some(tx) = channel.tx.as_mut() {
            tx.settlements
                .extend(settled.into_iter().map(|(t, u)| (t, u, requeue)));
            return Ok(());
        }
        // Highest tag first: each requeue goes to the queue's head, so the earliest delivery
        // ends up first again (RabbitMQ requeues to the original position).
        for (_, u) in settled.into_iter().rev() {
            match requeue {
                None => u.queue.ack(u.id),
                Some(requeue) => u.queue.reject(u.id, requeue),
            }
        }
        Ok(())
    }

    /// basic.recover: every unacknowledged delivery of the channel is requeued (RabbitMQ
    /// supports only requeue=true).
    pub(super) fn basic_recover(
        &mut self,
        id: ChannelId,
        requeue: bool,
        wbuf: &mut BytesMut,
        reply: bool,
    ) -> Result<(), AmqpError> {
        if !requeue {
            return Err(AmqpError::connection(
                reply_code::NOT_IMPLEMENTED,
                "requeue=false",
                Some(method_id(60, 110)),
            ));
        }
        let channel = self.channel(id)?;
        // Highest tag first, so the requeued messages keep their order (see basic_ack).
        for u in std::mem::take(&mut channel.unacked).into_values().rev() {
            u.queue.reject(u.id, true);
        }
        if reply {
            send(wbuf, id, Method::BasicRecoverOk(BasicRecoverOk))?;
        }
        Ok(())
    }

    pub(super) fn confirm_select(
        &mut self,
        id: ChannelId,
        no_wait: bool,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let channel = self.channel(id)?;
        if channel.tx.is_some() {
            return Err(AmqpError::channel(
                reply_code::PRECONDITION_FAILED,
                "cannot switch from tx to confirm mode",
                Some(method_id(85, 10)),
            ));
        }
        channel.confirms.get_or_insert_with(Confirms::default);
        if no_wait {
            return Ok(());
        }
        send(wbuf, id, Method::ConfirmSelectOk(ConfirmSelectOk))
    }

    /// Acknowledges every publish routed since the last call: basic.nack for those a queue
    /// refused, basic.ack (with `multiple` where it covers several) for the runs between them.
    /// Called once all routed messages reached their queues, so an ack never precedes the
    /// enqueue.
    pub(super) fn flush_confirms(&mut self, wbuf: &mut BytesMut) {
        for channel in self.channels.values_mut() {
            let Some(c) = channel.confirms.as_mut() else {
                continue;
            };
            let mut write = |method| {
                let _ = send(wbuf, channel.id, method);
            };
            for refused in std::mem::take(&mut c.refused) {
                if refused > c.confirmed + 1 {
                    write(ack(refused - 1, c.confirmed));
                }
                write(Method::BasicNack(ferromq_amqp::BasicNack {
                    delivery_tag: DeliveryTag(refused),
                    multiple: false,
                    requeue: false,
                }));
                c.confirmed = refused;
            }
            if c.published > c.confirmed {
                write(ack(c.published, c.confirmed));
                c.confirmed = c.published;
            }
        }
    }

    /// The channel, which must be open (callers come from `on_method`).
    pub(super) fn channel(
        &mut self,
        id: ChannelId,
    ) -> Result<&mut super::channel::Channel, AmqpError> {
        self.channels.get_mut(&id.0).ok_or_else(|| {
            AmqpError::connection(
                reply_code::CHANNEL_ERROR,
                format!("channel {} is not open", id.0),
                None,
            )
        })
    }

    /// The queue a method names (empty: the channel's last declared one) and its handle.
    fn lookup_queue(
        &mut self,
        id: ChannelId,
        name: &ShortString,
        mid: MethodId,
    ) -> Result<(String, crate::broker::queue::QueueHandle), AmqpError> {
        let queue_name = self.queue_name(id, name, mid)?;
        let handle = self
            .core
            .vhost
            .queue(&queue_name, self.id)
            .map_err(|e| AmqpError::from_vhost(e, mid))?;
        Ok((queue_name, handle))
    }

    /// A queue name from a method; empty means the channel's last declared queue.
    pub(super) fn queue_name(
        &mut self,
        id: ChannelId,
        name: &ShortString,
        mid: MethodId,
    ) -> Result<String, AmqpError> {
        if !name.is_empty() {
            return Ok(String::from_utf8_lossy(name.as_bytes()).into_owned());
        }
        self.channel(id)?.last_queue.clone().ok_or_else(|| {
            AmqpError::channel(
                reply_code::NOT_FOUND,
                "no previously declared queue",
                Some(mid),
            )
        })
    }
}

/// basic.ack for every publish after `confirmed` up to `upto`.
fn ack(upto: u64, confirmed: u64) -> Method {
    Method::BasicAck(ferromq_amqp::BasicAck {
        delivery_tag: DeliveryTag(upto),
        multiple: upto - confirmed > 1,
    })
}

/// A method id for error reports.
pub fn method_id(class_id: u16, method_id: u16) -> MethodId {
    MethodId {
        class_id,
        method_id,
    }
}
