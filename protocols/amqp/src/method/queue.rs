//! Class queue (50): declare, bind, purge, delete, unbind. Every request opens with the
//! reserved `ticket` short. queue.unbind has no no-wait bit (spec), unlike queue.bind.

use bytes::{BufMut, BytesMut};

use super::{no_args, Args};
use crate::error::{EncodeError, SyntaxError};
use crate::field::FieldTable;
use crate::reader::Reader;
use crate::short_string::ShortString;
use crate::writer;

/// Client -> server: create a queue (an empty name asks the server to generate one), or
/// check that it exists (`passive`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueDeclare {
    /// Queue name; empty for a server-named queue.
    pub queue: ShortString,
    /// Only check existence; never create.
    pub passive: bool,
    /// Survive a broker restart.
    pub durable: bool,
    /// Owned by this connection; deleted when it closes.
    pub exclusive: bool,
    /// Delete when the last consumer cancels.
    pub auto_delete: bool,
    /// Do not send declare-ok.
    pub no_wait: bool,
    /// Extra arguments (`x-message-ttl`, `x-max-length`, `x-queue-type`, ...).
    pub arguments: FieldTable,
}

impl Args for QueueDeclare {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        let queue = r.short_string()?;
        let bits = r.bits()?;
        Ok(QueueDeclare {
            queue,
            passive: writer::bit(bits, 0),
            durable: writer::bit(bits, 1),
            exclusive: writer::bit(bits, 2),
            auto_delete: writer::bit(bits, 3),
            no_wait: writer::bit(bits, 4),
            arguments: r.table()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.queue);
        writer::bits(
            out,
            &[
                self.passive,
                self.durable,
                self.exclusive,
                self.auto_delete,
                self.no_wait,
            ],
        );
        writer::table(out, &self.arguments)
    }
}

/// Server -> client: the queue exists, with its (possibly generated) name and counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueDeclareOk {
    /// Queue name.
    pub queue: ShortString,
    /// Messages ready for delivery.
    pub message_count: u32,
    /// Active consumers.
    pub consumer_count: u32,
}

impl Args for QueueDeclareOk {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(QueueDeclareOk {
            queue: r.short_string()?,
            message_count: r.u32()?,
            consumer_count: r.u32()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::short_string(out, &self.queue);
        out.put_u32(self.message_count);
        out.put_u32(self.consumer_count);
        Ok(())
    }
}

/// Client -> server: bind a queue to an exchange.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueBind {
    /// Queue name (empty: the channel's last declared queue).
    pub queue: ShortString,
    /// Exchange name.
    pub exchange: ShortString,
    /// Binding key.
    pub routing_key: ShortString,
    /// Do not send bind-ok.
    pub no_wait: bool,
    /// Binding arguments (headers exchanges match on these).
    pub arguments: FieldTable,
}

impl Args for QueueBind {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        let queue = r.short_string()?;
        let exchange = r.short_string()?;
        let routing_key = r.short_string()?;
        let bits = r.bits()?;
        Ok(QueueBind {
            queue,
            exchange,
            routing_key,
            no_wait: writer::bit(bits, 0),
            arguments: r.table()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.queue);
        writer::short_string(out, &self.exchange);
        writer::short_string(out, &self.routing_key);
        writer::bits(out, &[self.no_wait]);
        writer::table(out, &self.arguments)
    }
}

/// Client -> server: remove all ready messages from a queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueuePurge {
    /// Queue name.
    pub queue: ShortString,
    /// Do not send purge-ok.
    pub no_wait: bool,
}

impl Args for QueuePurge {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        let queue = r.short_string()?;
        let bits = r.bits()?;
        Ok(QueuePurge {
            queue,
            no_wait: writer::bit(bits, 0),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.queue);
        writer::bits(out, &[self.no_wait]);
        Ok(())
    }
}

/// Server -> client: how many messages queue.purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueuePurgeOk {
    /// Messages purged.
    pub message_count: u32,
}

/// Server -> client: how many messages were deleted with the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDeleteOk {
    /// Messages deleted.
    pub message_count: u32,
}

macro_rules! count_args {
    ($ty:ident) => {
        impl Args for $ty {
            fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
                Ok($ty {
                    message_count: r.u32()?,
                })
            }

            fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
                out.put_u32(self.message_count);
                Ok(())
            }
        }
    };
}
count_args!(QueuePurgeOk);
count_args!(QueueDeleteOk);

/// Client -> server: delete a queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueDelete {
    /// Queue name.
    pub queue: ShortString,
    /// Only delete if it has no consumers.
    pub if_unused: bool,
    /// Only delete if it has no messages.
    pub if_empty: bool,
    /// Do not send delete-ok.
    pub no_wait: bool,
}

impl Args for QueueDelete {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        let queue = r.short_string()?;
        let bits = r.bits()?;
        Ok(QueueDelete {
            queue,
            if_unused: writer::bit(bits, 0),
            if_empty: writer::bit(bits, 1),
            no_wait: writer::bit(bits, 2),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.queue);
        writer::bits(out, &[self.if_unused, self.if_empty, self.no_wait]);
        Ok(())
    }
}

/// Client -> server: remove a queue binding (always answered with unbind-ok).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueUnbind {
    /// Queue name.
    pub queue: ShortString,
    /// Exchange name.
    pub exchange: ShortString,
    /// Binding key.
    pub routing_key: ShortString,
    /// Binding arguments, identifying the binding together with the key.
    pub arguments: FieldTable,
}

impl Args for QueueUnbind {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        Ok(QueueUnbind {
            queue: r.short_string()?,
            exchange: r.short_string()?,
            routing_key: r.short_string()?,
            arguments: r.table()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.queue);
        writer::short_string(out, &self.exchange);
        writer::short_string(out, &self.routing_key);
        writer::table(out, &self.arguments)
    }
}

no_args! {
    /// Server -> client: queue.bind succeeded.
    QueueBindOk;
    /// Server -> client: queue.unbind succeeded.
    QueueUnbindOk;
}
