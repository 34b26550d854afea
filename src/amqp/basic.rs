//! The basic class: qos, consume / cancel, deliveries, get, ack / nack / reject, recover,
//! plus confirm.select. Delivery tags are per channel and count from 1. basic.qos sets the
//! per-consumer window (global=false) or the channel-wide one (global=true, shared by the
//! channel's consumers; RabbitMQ "Consumer Prefetch"); a consumer is limited by both.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use ferromq_amqp::{
    encode_content, reply_code, BasicCancel, BasicCancelOk, BasicConsume, BasicConsumeOk,
    BasicDeliver, BasicGet, BasicGetEmpty, BasicGetOk, BasicQos, BasicQosOk, BasicRecoverOk,
    ChannelId, ConfirmSelectOk, ContentMethod, DeliveryTag, FieldTable, FieldValue, Method,
    MethodId, ShortString,
};

use super::channel::{Confirms, Consumer, Unacked};
use super::conn::{internal, send, Connection};
use super::consumer::ChannelSink;
use super::reply_code::AmqpError;
use super::reply_to::{ReplyConsumer, PSEUDO_QUEUE};
use super::translate;
use crate::broker::message::Message;
use crate::broker::queue::{ConsumeOptions, ConsumerTag};

/// Writes basic.deliver + content header + body frames for one delivery.
pub fn encode_delivery(
    wbuf: &mut BytesMut,
    channel: ChannelId,
    consumer_tag: &str,
    delivery_tag: u64,
    message: &Message,
    redelivered: bool,
    frame_max: u32,
) -> Result<(), AmqpError> {
    let deliver = BasicDeliver {
        consumer_tag: ShortString::truncating(consumer_tag),
        delivery_tag: DeliveryTag(delivery_tag),
        redelivered,
        exchange: ShortString::truncating(&message.exchange),
        routing_key: translate::routing_key_of(message),
    };
    let properties = translate::to_properties(message);
    ferromq_amqp::encode_deliver(
        wbuf,
        channel,
        &deliver,
        &properties,
        &message.body,
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
        let channel = self.channel(id)?;
        if m.global {
            // RabbitMQ's channel limiter: shared by every consumer of the channel, existing
            // ones included, at once.
            let before = channel.credit.limit();
            channel.credit.set_limit(u32::from(m.prefetch_count));
            let after = u32::from(m.prefetch_count);
            if after == 0 || (before != 0 && after > before) {
                self.window_opened(id, wbuf)?;
            }
        } else {
            // RabbitMQ's per_consumer_qos: the count applies to consumers started afterwards.
            channel.prefetch = m.prefetch_count;
        }
        send(wbuf, id, Method::BasicQosOk(BasicQosOk))
    }

    pub(super) async fn basic_consume(
        &mut self,
        id: ChannelId,
        m: BasicConsume,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let mid = method_id(60, 20);
        let tag: Arc<str> = if m.consumer_tag.is_empty() {
            format!("amq.ctag-{}", crate::broker::vhost::random_token()).into()
        } else {
            String::from_utf8_lossy(m.consumer_tag.as_bytes()).into()
        };
        if m.queue.as_bytes() == PSEUDO_QUEUE.as_bytes() {
            return self.reply_consume(id, tag, &m, wbuf);
        }
        let (queue_name, handle) = self.lookup_queue(id, &m.queue, mid)?;
        let priority = consumer_priority(&m.arguments, &self.vhost.name, &queue_name)?;
        // Unique across connections and channels: the queue tells consumers apart by it.
        let queue_tag = ConsumerTag(format!("{}/{}/{}", self.id.0, id.0, tag).into());
        let backlog = Arc::new(AtomicUsize::new(0));
        let credit = Arc::clone(&self.channel(id)?.credit);
        let sink = Arc::new(ChannelSink {
            mailbox: self.mailbox.clone(),
            channel: id,
            consumer_tag: Arc::clone(&tag),
            backlog: Arc::clone(&backlog),
            queue: handle.clone(),
            no_ack: m.no_ack,
            credit,
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
        let options = ConsumeOptions {
            prefetch,
            no_ack: m.no_ack,
            exclusive: m.exclusive,
            priority,
        };
        if let Err(e) = handle.consume_with(queue_tag, sink, options).await {
            self.channel(id)?.consumers.remove(&tag);
            let e = self.vhost.consume_error(&queue_name, e);
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
        self.vhost.consumer_added(&queue_name);
        Ok(())
    }

    pub(super) async fn basic_cancel(
        &mut self,
        id: ChannelId,
        m: BasicCancel,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let tag: Arc<str> = String::from_utf8_lossy(m.consumer_tag.as_bytes()).into();
        let channel = self.channel(id)?;
        if channel.reply.as_ref().is_some_and(|r| r.tag == tag) {
            // Dropping the reply consumer unregisters its token: later replies are dropped.
            channel.reply = None;
        } else if let Some(consumer) = channel.consumers.remove(&tag) {
            // Deliveries held back by the channel-wide window were never written: give them
            // back now rather than when the window opens.
            let (gone, kept): (std::collections::VecDeque<_>, _) =
                std::mem::take(&mut channel.held)
                    .into_iter()
                    .partition(|d| d.consumer_tag == tag);
            channel.held = kept;
            channel.credit.released(gone.len() as u32);
            for d in gone {
                d.queue.reject(d.delivery.id, true);
            }
            // Unacked deliveries stay with the channel, to be acked or rejected (0-9-1 basic.cancel).
            consumer.queue.cancel(consumer.queue_tag, false).await;
            self.vhost.consumer_removed(&consumer.queue_name);
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
                    // basic.get is outside the prefetch windows (RabbitMQ).
                    counted: false,
                    delivered_at: Instant::now(),
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
        wbuf: &mut BytesMut,
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
        let opened = channel.release_credit(settled.iter().map(|(_, u)| u));
        // Highest tag first: each requeue goes to the queue's head, so the earliest delivery
        // ends up first again (RabbitMQ requeues to the original position).
        for (_, u) in settled.into_iter().rev() {
            match requeue {
                None => u.queue.ack(u.id),
                Some(requeue) => u.queue.reject(u.id, requeue),
            }
        }
        self.after_release(id, opened, wbuf)
    }

    /// After settlements freed `opened`-or-not room in the channel-wide window: writes held
    /// deliveries, and resumes the consumers' queues if the window was full.
    pub(super) fn after_release(
        &mut self,
        id: ChannelId,
        opened: bool,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        if opened {
            return self.window_opened(id, wbuf);
        }
        if self.channel(id)?.held.is_empty() {
            return Ok(());
        }
        self.write_held(id, wbuf)
    }

    /// The channel-wide window grew or emptied: write what was held back, then let the
    /// consumers' queues deliver again (they stopped on `has_room`).
    fn window_opened(&mut self, id: ChannelId, wbuf: &mut BytesMut) -> Result<(), AmqpError> {
        self.write_held(id, wbuf)?;
        for queue in self.channel(id)?.consumer_queues() {
            queue.resume();
        }
        Ok(())
    }

    /// Reply consumer: basic.consume of `amq.rabbitmq.reply-to` (RabbitMQ direct reply-to).
    fn reply_consume(
        &mut self,
        id: ChannelId,
        tag: Arc<str>,
        m: &BasicConsume,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let mid = method_id(60, 20);
        let replies = Arc::clone(&self.adapter.replies);
        let mailbox = self.mailbox.clone();
        let channel = self.channel(id)?;
        // RabbitMQ's order of checks: tag reuse, then no-ack, then one per channel.
        if channel.consumers.contains_key(&tag) {
            return Err(AmqpError::connection(
                reply_code::NOT_ALLOWED,
                format!("attempt to reuse consumer tag '{tag}'"),
                Some(mid),
            ));
        }
        if !m.no_ack {
            return Err(AmqpError::channel(
                reply_code::PRECONDITION_FAILED,
                "reply consumer cannot acknowledge",
                Some(mid),
            ));
        }
        if channel.reply.is_some() {
            return Err(AmqpError::channel(
                reply_code::PRECONDITION_FAILED,
                "reply consumer already set",
                Some(mid),
            ));
        }
        channel.reply = Some(ReplyConsumer::register(
            &replies,
            mailbox,
            id,
            Arc::clone(&tag),
        ));
        if m.no_wait {
            return Ok(());
        }
        send(
            wbuf,
            id,
            Method::BasicConsumeOk(BasicConsumeOk {
                consumer_tag: ShortString::truncating(&tag),
            }),
        )
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
        let unacked = std::mem::take(&mut channel.unacked);
        let opened = channel.release_credit(unacked.values());
        // Highest tag first, so the requeued messages keep their order (see basic_ack).
        for u in unacked.into_values().rev() {
            u.queue.reject(u.id, true);
        }
        if reply {
            send(wbuf, id, Method::BasicRecoverOk(BasicRecoverOk))?;
        }
        self.after_release(id, opened, wbuf)
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
        channel.confirms.get_or_insert_with(Confirms::new);
        if no_wait {
            return Ok(());
        }
        send(wbuf, id, Method::ConfirmSelectOk(ConfirmSelectOk))
    }

    /// Acknowledges every publish routed since the last call up to the first one whose queues
    /// have not answered yet (`Confirms::undecided`: a durable queue answers after the fsync):
    /// basic.nack for those a queue refused, basic.ack (with `multiple` where it covers
    /// several) for the runs between them. Called once all routed messages reached their
    /// queues, so an ack never precedes the enqueue, nor the fsync of a persistent message.
    pub(super) fn flush_confirms(&mut self, wbuf: &mut BytesMut) {
        for channel in self.channels.values_mut() {
            let Some(c) = channel.confirms.as_mut() else {
                continue;
            };
            let mut write = |method| {
                let _ = send(wbuf, channel.id, method);
            };
            let upto = c.undecided.first().map_or(c.published, |first| first - 1);
            while let Some(refused) = c.refused.first().copied().filter(|r| *r <= upto) {
                c.refused.remove(&refused);
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
            if upto > c.confirmed {
                write(ack(upto, c.confirmed));
                c.confirmed = upto;
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

/// The `x-priority` argument of basic.consume (RabbitMQ consumer priorities): any integer type,
/// default 0; anything else is RabbitMQ's 406 "invalid arg".
fn consumer_priority(args: &FieldTable, vhost: &str, queue: &str) -> Result<i32, AmqpError> {
    let Some(value) = args.get("x-priority") else {
        return Ok(0);
    };
    let priority = match value {
        FieldValue::I8(v) => Some(i64::from(*v)),
        FieldValue::U8(v) => Some(i64::from(*v)),
        FieldValue::I16(v) => Some(i64::from(*v)),
        FieldValue::U16(v) => Some(i64::from(*v)),
        FieldValue::I32(v) => Some(i64::from(*v)),
        FieldValue::U32(v) => Some(i64::from(*v)),
        FieldValue::I64(v) => Some(*v),
        _ => None,
    };
    priority
        .map(|p| p.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
        .ok_or_else(|| {
            AmqpError::channel(
                reply_code::PRECONDITION_FAILED,
                format!(
                    "invalid arg 'x-priority' for queue '{queue}' in vhost '{vhost}': \
                     {{unacceptable_type,{}}}",
                    type_name(value)
                ),
                Some(method_id(60, 20)),
            )
        })
}

/// RabbitMQ's name of a non-integer field type, for "invalid arg" texts.
fn type_name(value: &FieldValue) -> &'static str {
    match value {
        FieldValue::Bool(_) => "bool",
        FieldValue::F32(_) => "float",
        FieldValue::F64(_) => "double",
        FieldValue::Decimal(_) => "decimal",
        FieldValue::LongString(_) => "longstr",
        FieldValue::ByteArray(_) => "binary",
        FieldValue::Array(_) => "array",
        FieldValue::Timestamp(_) => "timestamp",
        FieldValue::Table(_) => "table",
        FieldValue::Void => "void",
        _ => "unsupported",
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
