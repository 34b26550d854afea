//! Class exchange (40): declare, delete, and RabbitMQ's exchange-to-exchange bind / unbind
//! (note unbind-ok is 40/51). Every request opens with the reserved `ticket` short.

use bytes::{BufMut, BytesMut};

use super::{no_args, Args};
use crate::error::{EncodeError, SyntaxError};
use crate::field::FieldTable;
use crate::reader::Reader;
use crate::short_string::ShortString;
use crate::writer;

/// Client -> server: create an exchange, or check that it exists (`passive`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExchangeDeclare {
    /// Exchange name.
    pub exchange: ShortString,
    /// The `type` field: `direct`, `fanout`, `topic`, `headers`, ...
    pub kind: ShortString,
    /// Only check existence; never create.
    pub passive: bool,
    /// Survive a broker restart.
    pub durable: bool,
    /// Delete when the last binding is removed.
    pub auto_delete: bool,
    /// Cannot be published to directly, only via exchange-to-exchange bindings.
    pub internal: bool,
    /// Do not send declare-ok.
    pub no_wait: bool,
    /// Extra arguments (`alternate-exchange`, ...).
    pub arguments: FieldTable,
}

impl Args for ExchangeDeclare {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        let exchange = r.short_string()?;
        let kind = r.short_string()?;
        let bits = r.bits()?;
        Ok(ExchangeDeclare {
            exchange,
            kind,
            passive: writer::bit(bits, 0),
            durable: writer::bit(bits, 1),
            auto_delete: writer::bit(bits, 2),
            internal: writer::bit(bits, 3),
            no_wait: writer::bit(bits, 4),
            arguments: r.table()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.exchange);
        writer::short_string(out, &self.kind);
        writer::bits(
            out,
            &[
                self.passive,
                self.durable,
                self.auto_delete,
                self.internal,
                self.no_wait,
            ],
        );
        writer::table(out, &self.arguments)
    }
}

/// Client -> server: delete an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExchangeDelete {
    /// Exchange name.
    pub exchange: ShortString,
    /// Only delete if it has no bindings.
    pub if_unused: bool,
    /// Do not send delete-ok.
    pub no_wait: bool,
}

impl Args for ExchangeDelete {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _ticket = r.u16()?;
        let exchange = r.short_string()?;
        let bits = r.bits()?;
        Ok(ExchangeDelete {
            exchange,
            if_unused: writer::bit(bits, 0),
            no_wait: writer::bit(bits, 1),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(0);
        writer::short_string(out, &self.exchange);
        writer::bits(out, &[self.if_unused, self.no_wait]);
        Ok(())
    }
}

/// Client -> server (RabbitMQ extension): bind exchange `destination` to exchange `source`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExchangeBind {
    /// The exchange that receives the routed messages.
    pub destination: ShortString,
    /// The exchange messages are routed from.
    pub source: ShortString,
    /// Binding key.
    pub routing_key: ShortString,
    /// Do not send bind-ok.
    pub no_wait: bool,
    /// Binding arguments (headers exchanges match on these).
    pub arguments: FieldTable,
}

/// Client -> server (RabbitMQ extension): remove an exchange-to-exchange binding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExchangeUnbind {
    /// The exchange that received the routed messages.
    pub destination: ShortString,
    /// The exchange messages were routed from.
    pub source: ShortString,
    /// Binding key.
    pub routing_key: ShortString,
    /// Do not send unbind-ok.
    pub no_wait: bool,
    /// Binding arguments, identifying the binding together with the key.
    pub arguments: FieldTable,
}

macro_rules! e2e_binding_args {
    ($ty:ident) => {
        impl Args for $ty {
            fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
                let _ticket = r.u16()?;
                let destination = r.short_string()?;
                let source = r.short_string()?;
                let routing_key = r.short_string()?;
                let bits = r.bits()?;
                Ok($ty {
                    destination,
                    source,
                    routing_key,
                    no_wait: writer::bit(bits, 0),
                    arguments: r.table()?,
                })
            }

            fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
                out.put_u16(0);
                writer::short_string(out, &self.destination);
                writer::short_string(out, &self.source);
                writer::short_string(out, &self.routing_key);
                writer::bits(out, &[self.no_wait]);
                writer::table(out, &self.arguments)
            }
        }
    };
}
e2e_binding_args!(ExchangeBind);
e2e_binding_args!(ExchangeUnbind);

no_args! {
    /// Server -> client: exchange.declare succeeded.
    ExchangeDeclareOk;
    /// Server -> client: exchange.delete succeeded.
    ExchangeDeleteOk;
    /// Server -> client: exchange.bind succeeded.
    ExchangeBindOk;
    /// Server -> client: exchange.unbind succeeded (40/51).
    ExchangeUnbindOk;
}
