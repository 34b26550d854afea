//! AMQP 0-9-1 methods with RabbitMQ's numbering and field lists (its `amqp-rabbitmq-0.9.1`
//! spec: the 0-9-1 classes plus exchange.bind/unbind, basic.nack, confirm, connection.blocked /
//! unblocked and update-secret). One struct per method, in one file per class; this file holds
//! the `Method` enum, the id table and the decode / encode dispatch, generated from one list so
//! ids, names and variants cannot drift apart.
//!
//! Reserved fields (the `ticket` short that opens most requests, connection.open's
//! capabilities / insist, open-ok's known-hosts, channel.open's out-of-band, channel.open-ok's
//! channel-id, basic.get-empty's cluster-id) are read and ignored and written as zero or empty,
//! as RabbitMQ does; the structs do not carry them.

mod access;
mod basic;
mod channel;
mod connection;
mod exchange;
mod queue;
mod tx_confirm;

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError, SyntaxError};
use crate::reader::Reader;

pub use access::*;
pub use basic::*;
pub use channel::*;
pub use connection::*;
pub use exchange::*;
pub use queue::*;
pub use tx_confirm::*;

/// A method's (class id, method id) pair, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MethodId {
    /// Class id (connection 10, channel 20, access 30, exchange 40, queue 50, basic 60,
    /// confirm 85, tx 90).
    pub class_id: u16,
    /// Method id within the class.
    pub method_id: u16,
}

impl MethodId {
    /// The class's name (`"basic"`), if the class is known.
    pub fn class_name(&self) -> Option<&'static str> {
        class_name(self.class_id)
    }
}

/// `basic.publish` for known methods, `class/method` otherwise.
impl fmt::Display for MethodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}/{}", self.class_id, self.method_id),
        }
    }
}

/// The name of class `class_id`, if it is one of the eight 0-9-1 classes.
pub fn class_name(class_id: u16) -> Option<&'static str> {
    Some(match class_id {
        10 => "connection",
        20 => "channel",
        30 => "access",
        40 => "exchange",
        50 => "queue",
        60 => "basic",
        85 => "confirm",
        90 => "tx",
        _ => return None,
    })
}

/// The argument list of one method: how it is read from and written to a method frame payload
/// (after the class and method ids).
pub(crate) trait Args: Sized {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError>;
    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError>;
}

/// Declares argument-less methods: a unit struct and an `Args` impl that reads and writes nothing.
macro_rules! no_args {
    ($( $(#[$doc:meta])* $ty:ident; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $ty;

        impl crate::method::Args for $ty {
            fn read(_: &mut crate::reader::Reader) -> Result<Self, crate::error::SyntaxError> {
                Ok($ty)
            }
            fn write(&self, _: &mut bytes::BytesMut) -> Result<(), crate::error::EncodeError> {
                Ok(())
            }
        }
    )*};
}
pub(crate) use no_args;

/// Generates `Method`, the id/name table and the dispatch from one list of
/// `Struct = (class id, method id, "name")`.
macro_rules! methods {
    ($( $ty:ident = ($class:literal, $method:literal, $name:literal); )*) => {
        /// Any AMQP 0-9-1 method (RabbitMQ's set). Variants are named after their class and
        /// method and wrap the struct of the same name.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Method {
            $(
                #[doc = concat!("`", $name, "` (", stringify!($class), "/", stringify!($method), ").")]
                $ty($ty),
            )*
        }

        impl Method {
            /// The method's class and method ids.
            pub fn id(&self) -> MethodId {
                match self {
                    $( Method::$ty(_) => MethodId { class_id: $class, method_id: $method }, )*
                }
            }

            /// The spec name, e.g. `"basic.publish"`, for logs and error texts.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Method::$ty(_) => $name, )*
                }
            }

            /// Writes the arguments (not the class and method ids).
            pub(crate) fn write_args(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
                match self {
                    $( Method::$ty(m) => Args::write(m, out), )*
                }
            }
        }

        impl MethodId {
            /// The spec name (`"basic.publish"`), if the method is known.
            pub fn name(&self) -> Option<&'static str> {
                match (self.class_id, self.method_id) {
                    $( ($class, $method) => Some($name), )*
                    _ => None,
                }
            }
        }

        /// Reads the arguments of method `id`; unknown ids are 503 errors.
        fn read_args(id: MethodId, r: &mut Reader) -> Result<Method, DecodeError> {
            let method = match (id.class_id, id.method_id) {
                $( ($class, $method) => <$ty as Args>::read(r).map(Method::$ty), )*
                (class_id, _) => {
                    return Err(match class_name(class_id) {
                        Some(_) => DecodeError::UnknownMethod(id),
                        None => DecodeError::UnknownClass(id),
                    })
                }
            };
            method.map_err(DecodeError::in_method(id))
        }

        $(
            impl $ty {
                #[doc = concat!("Class id of `", $name, "`.")]
                pub const CLASS_ID: u16 = $class;
                #[doc = concat!("Method id of `", $name, "`.")]
                pub const METHOD_ID: u16 = $method;
                #[doc = concat!("`\"", $name, "\"`.")]
                pub const NAME: &'static str = $name;
            }

            impl From<$ty> for Method {
                fn from(m: $ty) -> Method {
                    Method::$ty(m)
                }
            }
        )*
    };
}

methods! {
    ConnectionStart = (10, 10, "connection.start");
    ConnectionStartOk = (10, 11, "connection.start-ok");
    ConnectionSecure = (10, 20, "connection.secure");
    ConnectionSecureOk = (10, 21, "connection.secure-ok");
    ConnectionTune = (10, 30, "connection.tune");
    ConnectionTuneOk = (10, 31, "connection.tune-ok");
    ConnectionOpen = (10, 40, "connection.open");
    ConnectionOpenOk = (10, 41, "connection.open-ok");
    ConnectionClose = (10, 50, "connection.close");
    ConnectionCloseOk = (10, 51, "connection.close-ok");
    ConnectionBlocked = (10, 60, "connection.blocked");
    ConnectionUnblocked = (10, 61, "connection.unblocked");
    ConnectionUpdateSecret = (10, 70, "connection.update-secret");
    ConnectionUpdateSecretOk = (10, 71, "connection.update-secret-ok");
    ChannelOpen = (20, 10, "channel.open");
    ChannelOpenOk = (20, 11, "channel.open-ok");
    ChannelFlow = (20, 20, "channel.flow");
    ChannelFlowOk = (20, 21, "channel.flow-ok");
    ChannelClose = (20, 40, "channel.close");
    ChannelCloseOk = (20, 41, "channel.close-ok");
    AccessRequest = (30, 10, "access.request");
    AccessRequestOk = (30, 11, "access.request-ok");
    ExchangeDeclare = (40, 10, "exchange.declare");
    ExchangeDeclareOk = (40, 11, "exchange.declare-ok");
    ExchangeDelete = (40, 20, "exchange.delete");
    ExchangeDeleteOk = (40, 21, "exchange.delete-ok");
    ExchangeBind = (40, 30, "exchange.bind");
    ExchangeBindOk = (40, 31, "exchange.bind-ok");
    ExchangeUnbind = (40, 40, "exchange.unbind");
    // 51, not 41: RabbitMQ's extension spec numbers it so, and clients follow.
    ExchangeUnbindOk = (40, 51, "exchange.unbind-ok");
    QueueDeclare = (50, 10, "queue.declare");
    QueueDeclareOk = (50, 11, "queue.declare-ok");
    QueueBind = (50, 20, "queue.bind");
    QueueBindOk = (50, 21, "queue.bind-ok");
    QueuePurge = (50, 30, "queue.purge");
    QueuePurgeOk = (50, 31, "queue.purge-ok");
    QueueDelete = (50, 40, "queue.delete");
    QueueDeleteOk = (50, 41, "queue.delete-ok");
    QueueUnbind = (50, 50, "queue.unbind");
    QueueUnbindOk = (50, 51, "queue.unbind-ok");
    BasicQos = (60, 10, "basic.qos");
    BasicQosOk = (60, 11, "basic.qos-ok");
    BasicConsume = (60, 20, "basic.consume");
    BasicConsumeOk = (60, 21, "basic.consume-ok");
    BasicCancel = (60, 30, "basic.cancel");
    BasicCancelOk = (60, 31, "basic.cancel-ok");
    BasicPublish = (60, 40, "basic.publish");
    BasicReturn = (60, 50, "basic.return");
    BasicDeliver = (60, 60, "basic.deliver");
    BasicGet = (60, 70, "basic.get");
    BasicGetOk = (60, 71, "basic.get-ok");
    BasicGetEmpty = (60, 72, "basic.get-empty");
    BasicAck = (60, 80, "basic.ack");
    BasicReject = (60, 90, "basic.reject");
    BasicRecoverAsync = (60, 100, "basic.recover-async");
    BasicRecover = (60, 110, "basic.recover");
    BasicRecoverOk = (60, 111, "basic.recover-ok");
    BasicNack = (60, 120, "basic.nack");
    ConfirmSelect = (85, 10, "confirm.select");
    ConfirmSelectOk = (85, 11, "confirm.select-ok");
    TxSelect = (90, 10, "tx.select");
    TxSelectOk = (90, 11, "tx.select-ok");
    TxCommit = (90, 20, "tx.commit");
    TxCommitOk = (90, 21, "tx.commit-ok");
    TxRollback = (90, 30, "tx.rollback");
    TxRollbackOk = (90, 31, "tx.rollback-ok");
}

impl Method {
    /// The class id.
    pub fn class_id(&self) -> u16 {
        self.id().class_id
    }

    /// The method id within the class.
    pub fn method_id(&self) -> u16 {
        self.id().method_id
    }

    /// True for the methods followed by a content header and body frames: basic.publish,
    /// basic.return, basic.deliver and basic.get-ok.
    pub fn has_content(&self) -> bool {
        matches!(
            self,
            Method::BasicPublish(_)
                | Method::BasicReturn(_)
                | Method::BasicDeliver(_)
                | Method::BasicGetOk(_)
        )
    }
}

/// Decodes a method frame payload: class id, method id, arguments, nothing after.
pub(crate) fn decode_method(payload: Bytes) -> Result<Method, DecodeError> {
    let mut r = Reader::new(payload);
    let (Ok(class_id), Ok(method_id)) = (r.u16(), r.u16()) else {
        // RabbitMQ's analyze_frame cannot split out the ids: a frame error, not syntax.
        return Err(DecodeError::MalformedFrame(
            "method frame shorter than its class and method ids",
        ));
    };
    let id = MethodId {
        class_id,
        method_id,
    };
    let method = read_args(id, &mut r)?;
    r.finish().map_err(DecodeError::in_method(id))?;
    Ok(method)
}

/// Writes a method frame payload: class id, method id, arguments.
pub(crate) fn encode_method(out: &mut BytesMut, m: &Method) -> Result<(), EncodeError> {
    use bytes::BufMut;
    let id = m.id();
    out.put_u16(id.class_id);
    out.put_u16(id.method_id);
    m.write_args(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        let ack = Method::from(BasicAck {
            delivery_tag: crate::DeliveryTag(1),
            multiple: false,
        });
        assert_eq!(ack.name(), "basic.ack");
        assert_eq!((ack.class_id(), ack.method_id()), (60, 80));
        assert_eq!(BasicNack::METHOD_ID, 120);
        assert_eq!(ConfirmSelect::CLASS_ID, 85);
        assert_eq!(ExchangeBind::METHOD_ID, 30);
        assert_eq!(ConnectionBlocked::METHOD_ID, 60);
        assert_eq!(ConnectionUpdateSecret::METHOD_ID, 70);
        let unknown = MethodId {
            class_id: 60,
            method_id: 200,
        };
        assert_eq!(unknown.to_string(), "60/200");
        assert_eq!(unknown.class_name(), Some("basic"));
        assert_eq!(
            MethodId {
                class_id: 50,
                method_id: 51
            }
            .to_string(),
            "queue.unbind-ok"
        );
    }

    #[test]
    fn unknown_ids() {
        let e = decode_method(Bytes::from_static(&[0, 60, 0, 200])).unwrap_err();
        assert!(matches!(e, DecodeError::UnknownMethod(_)));
        assert_eq!(e.reply_code(), 503);
        let e = decode_method(Bytes::from_static(&[0, 70, 0, 10])).unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnknownClass(MethodId {
                class_id: 70,
                method_id: 10
            })
        );
        let e = decode_method(Bytes::from_static(&[0, 60])).unwrap_err();
        assert_eq!(e.reply_code(), 501);
    }
}
