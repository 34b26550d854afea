//! Class basic (60): QoS, consumers, publish / deliver / get (the content-carrying methods:
//! publish, return, deliver, get-ok), acknowledgements including RabbitMQ's basic.nack, and
//! recover. basic.publish and basic.deliver are the hot path: their short strings are slices of
//! the frame payload, so decoding them allocates nothing.

use bytes::{BufMut, BytesMut};

use super::{no_args, Args};
use crate::error::{EncodeError, SyntaxError};
use crate::field::FieldTable;
use crate::ids::DeliveryTag;
use crate::reader::Reader;
use crate::short_string::ShortString;
use crate::writer;

/// Client -> server: limit unacknowledged deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BasicQos {
    /// Byte limit (0 = none; RabbitMQ rejects any other value with 540).
    pub prefetch_size: u32,
    /// Message limit (0 = none).
    pub prefetch_count: u16,
    /// RabbitMQ: true = shared by all consumers of the channel, false = per new consumer.
    pub global: bool,
}

impl Args for BasicQos {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(BasicQos {
            prefetch_size: r.u32()?,
            prefetch_count: r.u16()?,
            global: writer::bit(r.bits()?, 0),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u32(self.prefetch_size);
        out.put_u16(self.prefetch_count);
        writer::bits(out, &[self.global]);
        Ok(())
    }
}

/// Client -> server: start a consumer on a queue.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BasicConsume {
    /// Queue name.
    pub queue: ShortString,
    /// Consumer tag; empty asks the server to generate one.
    pub consumer_tag: ShortString,
    /// Do not deliver messages published on this connection (RabbitMQ ignores it).
    pub no_local: bool,
    /// Deliveries need no acknowledgement.
    pub no_ack: bool,
    /// The only consumer of the queue.
    pub exclusive: bool,
    /// Do not send consume-ok.
    pub no_wait: bool,
    /// Consumer arguments (`x-priority`, ...).
    pub arguments: FieldTable,
}

impl Args for BasicConsume {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        let queue = r.short_string()?;
        let consumer_tag = r.short_string()?;
        let bits = r.bits()?;
        Ok(BasicConsume {
            queue,
            consumer_tag,
            no_local: writer::bit(bits, 0),
            no_ack: writer::bit(bits, 1),
            exclusive: writer::bit(bits, 2),
            no_wait: writer::bit(bits, 3),
            arguments: r.table()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.queue);
        writer::short_string(out, &self.consumer_tag);
        writer::bits(
            out,
            &[self.no_local, self.no_ack, self.exclusive, self.no_wait],
        );
        writer::table(out, &self.arguments)
    }
}

/// Server -> client: the consumer is registered under this tag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasicConsumeOk {
    /// The consumer tag.
    pub consumer_tag: ShortString,
}

/// Server -> client: the consumer is cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasicCancelOk {
    /// The consumer tag.
    pub consumer_tag: ShortString,
}

macro_rules! tag_args {
    ($ty:ident) => {
        impl Args for $ty {
            fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
                Ok($ty {
                    consumer_tag: r.short_string()?,
                })
            }

            fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
                writer::short_string(out, &self.consumer_tag);
                Ok(())
            }
        }
    };
}
tag_args!(BasicConsumeOk);
tag_args!(BasicCancelOk);

/// Either peer: cancel a consumer (server -> client is RabbitMQ's consumer cancel
/// notification, e.g. when the queue is deleted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasicCancel {
    /// The consumer tag.
    pub consumer_tag: ShortString,
    /// Do not send cancel-ok.
    pub no_wait: bool,
}

impl Args for BasicCancel {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(BasicCancel {
            consumer_tag: r.short_string()?,
            no_wait: writer::bit(r.bits()?, 0),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::short_string(out, &self.consumer_tag);
        writer::bits(out, &[self.no_wait]);
        Ok(())
    }
}

/// Client -> server: publish a message (content header and body frames follow).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasicPublish {
    /// Exchange name; empty for the default exchange.
    pub exchange: ShortString,
    /// Routing key.
    pub routing_key: ShortString,
    /// Return the message (basic.return 312) if it cannot be routed.
    pub mandatory: bool,
    /// Return it if no consumer can take it now (RabbitMQ rejects this with 540).
    pub immediate: bool,
}

impl Args for BasicPublish {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        let exchange = r.short_string()?;
        let routing_key = r.short_string()?;
        let bits = r.bits()?;
        Ok(BasicPublish {
            exchange,
            routing_key,
            mandatory: writer::bit(bits, 0),
            immediate: writer::bit(bits, 1),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.exchange);
        writer::short_string(out, &self.routing_key);
        writer::bits(out, &[self.mandatory, self.immediate]);
        Ok(())
    }
}

impl BasicPublish {
    /// Argument bytes on the wire.
    pub(crate) fn args_len(&self) -> usize {
        2 + 1 + self.exchange.len() + 1 + self.routing_key.len() + 1
    }
}

/// Server -> client: an unroutable mandatory message comes back (content follows).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasicReturn {
    /// Why (312 NO_ROUTE, 313 NO_CONSUMERS).
    pub reply_code: u16,
    /// Human-readable reason.
    pub reply_text: ShortString,
    /// The exchange it was published to.
    pub exchange: ShortString,
    /// The routing key it was published with.
    pub routing_key: ShortString,
}

impl Args for BasicReturn {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(BasicReturn {
            reply_code: r.u16()?,
            reply_text: r.short_string()?,
            exchange: r.short_string()?,
            routing_key: r.short_string()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(self.reply_code);
        writer::short_string(out, &self.reply_text);
        writer::short_string(out, &self.exchange);
        writer::short_string(out, &self.routing_key);
        Ok(())
    }
}

impl BasicReturn {
    /// Argument bytes on the wire.
    pub(crate) fn args_len(&self) -> usize {
        2 + 1 + self.reply_text.len() + 1 + self.exchange.len() + 1 + self.routing_key.len()
    }
}

/// Server -> client: a message for a consumer (content follows).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasicDeliver {
    /// The consumer it is for.
    pub consumer_tag: ShortString,
    /// Channel-scoped delivery tag, used to ack / reject it.
    pub delivery_tag: DeliveryTag,
    /// Delivered before (possibly) and not acknowledged.
    pub redelivered: bool,
    /// The exchange it was published to.
    pub exchange: ShortString,
    /// The routing key it was published with.
    pub routing_key: ShortString,
}

impl Args for BasicDeliver {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(BasicDeliver {
            consumer_tag: r.short_string()?,
            delivery_tag: DeliveryTag(r.u64()?),
            redelivered: writer::bit(r.bits()?, 0),
            exchange: r.short_string()?,
            routing_key: r.short_string()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::short_string(out, &self.consumer_tag);
        out.put_u64(self.delivery_tag.0);
        writer::bits(out, &[self.redelivered]);
        writer::short_string(out, &self.exchange);
        writer::short_string(out, &self.routing_key);
        Ok(())
    }
}

impl BasicDeliver {
    /// Argument bytes on the wire.
    pub(crate) fn args_len(&self) -> usize {
        1 + self.consumer_tag.len() + 8 + 1 + 1 + self.exchange.len() + 1 + self.routing_key.len()
    }
}

/// Client -> server: fetch one message synchronously.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasicGet {
    /// Queue name.
    pub queue: ShortString,
    /// The message needs no acknowledgement.
    pub no_ack: bool,
}

impl Args for BasicGet {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        Ok(BasicGet {
            queue: r.short_string()?,
            no_ack: writer::bit(r.bits()?, 0),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.queue);
        writer::bits(out, &[self.no_ack]);
        Ok(())
    }
}

/// Server -> client: the message basic.get asked for (content follows).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasicGetOk {
    /// Channel-scoped delivery tag.
    pub delivery_tag: DeliveryTag,
    /// Delivered before (possibly) and not acknowledged.
    pub redelivered: bool,
    /// The exchange it was published to.
    pub exchange: ShortString,
    /// The routing key it was published with.
    pub routing_key: ShortString,
    /// Messages left in the queue.
    pub message_count: u32,
}

impl Args for BasicGetOk {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(BasicGetOk {
            delivery_tag: DeliveryTag(r.u64()?),
            redelivered: writer::bit(r.bits()?, 0),
            exchange: r.short_string()?,
            routing_key: r.short_string()?,
            message_count: r.u32()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u64(self.delivery_tag.0);
        writer::bits(out, &[self.redelivered]);
        writer::short_string(out, &self.exchange);
        writer::short_string(out, &self.routing_key);
        out.put_u32(self.message_count);
        Ok(())
    }
}

impl BasicGetOk {
    /// Argument bytes on the wire.
    pub(crate) fn args_len(&self) -> usize {
        8 + 1 + 1 + self.exchange.len() + 1 + self.routing_key.len() + 4
    }
}

/// Server -> client: basic.get found the queue empty. Carries only the reserved cluster-id
/// short string (read and ignored, written empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BasicGetEmpty;

impl Args for BasicGetEmpty {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _cluster_id = r.short_string()?;
        Ok(BasicGetEmpty)
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::empty_short_string(out);
        Ok(())
    }
}

/// Either peer: acknowledge one delivery, or all up to the tag (`multiple`). Server -> client
/// it is a publisher confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BasicAck {
    /// The delivery (or publish sequence number) acknowledged.
    pub delivery_tag: DeliveryTag,
    /// Everything up to and including the tag; tag 0 with multiple means all outstanding.
    pub multiple: bool,
}

impl Args for BasicAck {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(BasicAck {
            delivery_tag: DeliveryTag(r.u64()?),
            multiple: writer::bit(r.bits()?, 0),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u64(self.delivery_tag.0);
        writer::bits(out, &[self.multiple]);
        Ok(())
    }
}

/// Client -> server: reject one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BasicReject {
    /// The delivery rejected.
    pub delivery_tag: DeliveryTag,
    /// Put it back in the queue instead of discarding / dead-lettering it.
    pub requeue: bool,
}

impl Args for BasicReject {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(BasicReject {
            delivery_tag: DeliveryTag(r.u64()?),
            requeue: writer::bit(r.bits()?, 0),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u64(self.delivery_tag.0);
        writer::bits(out, &[self.requeue]);
        Ok(())
    }
}

/// Client -> server: redeliver all unacknowledged messages, no reply (deprecated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BasicRecoverAsync {
    /// Requeue rather than redeliver to the same consumer.
    pub requeue: bool,
}

/// Client -> server: redeliver all unacknowledged messages; answered with recover-ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BasicRecover {
    /// Requeue rather than redeliver to the same consumer.
    pub requeue: bool,
}

macro_rules! recover_args {
    ($ty:ident) => {
        impl Args for $ty {
            fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
                Ok($ty {
                    requeue: writer::bit(r.bits()?, 0),
                })
            }

            fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
                writer::bits(out, &[self.requeue]);
                Ok(())
            }
        }
    };
}
recover_args!(BasicRecoverAsync);
recover_args!(BasicRecover);

/// Either peer (RabbitMQ extension): negative acknowledgement of one or many deliveries;
/// server -> client it is a negative publisher confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BasicNack {
    /// The delivery (or publish sequence number) rejected.
    pub delivery_tag: DeliveryTag,
    /// Everything up to and including the tag.
    pub multiple: bool,
    /// Put them back in the queue instead of discarding / dead-lettering them.
    pub requeue: bool,
}

impl Args for BasicNack {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let delivery_tag = DeliveryTag(r.u64()?);
        let bits = r.bits()?;
        Ok(BasicNack {
            delivery_tag,
            multiple: writer::bit(bits, 0),
            requeue: writer::bit(bits, 1),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u64(self.delivery_tag.0);
        writer::bits(out, &[self.multiple, self.requeue]);
        Ok(())
    }
}

no_args! {
    /// Server -> client: basic.qos took effect.
    BasicQosOk;
    /// Server -> client: basic.recover is done.
    BasicRecoverOk;
}
