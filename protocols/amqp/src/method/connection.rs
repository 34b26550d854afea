//! Class connection (10): the handshake (start, secure, tune, open), close, RabbitMQ's
//! blocked / unblocked notifications and update-secret (credential refresh, e.g. OAuth tokens).
//! Field lists follow RabbitMQ's `rabbit_framing_amqp_0_9_1`.

use bytes::{BufMut, Bytes, BytesMut};

use super::{no_args, Args};
use crate::error::{EncodeError, SyntaxError};
use crate::field::FieldTable;
use crate::reader::Reader;
use crate::short_string::ShortString;
use crate::writer;

/// Server -> client, first method on channel 0: protocol version, server properties (product,
/// version, capabilities table), SASL mechanisms and locales as space-separated lists.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectionStart {
    /// 0 for 0-9-1.
    pub version_major: u8,
    /// 9 for 0-9-1.
    pub version_minor: u8,
    /// Server properties; RabbitMQ clients look for `capabilities` in here.
    pub server_properties: FieldTable,
    /// Space-separated SASL mechanisms, e.g. `PLAIN AMQPLAIN`.
    pub mechanisms: Bytes,
    /// Space-separated message locales, e.g. `en_US`.
    pub locales: Bytes,
}

impl Args for ConnectionStart {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(ConnectionStart {
            version_major: r.u8()?,
            version_minor: r.u8()?,
            server_properties: r.table()?,
            mechanisms: r.long_string()?,
            locales: r.long_string()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.version_major);
        out.put_u8(self.version_minor);
        writer::table(out, &self.server_properties)?;
        writer::long_string(out, &self.mechanisms)?;
        writer::long_string(out, &self.locales)
    }
}

/// Client -> server: client properties, the chosen mechanism, its initial response (for PLAIN
/// `\0user\0password`) and locale.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectionStartOk {
    /// Client properties (product, version, capabilities, connection_name, ...).
    pub client_properties: FieldTable,
    /// Chosen SASL mechanism.
    pub mechanism: ShortString,
    /// The mechanism's initial response (opaque bytes, may hold credentials: do not log).
    pub response: Bytes,
    /// Chosen locale.
    pub locale: ShortString,
}

impl Args for ConnectionStartOk {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(ConnectionStartOk {
            client_properties: r.table()?,
            mechanism: r.short_string()?,
            response: r.long_string()?,
            locale: r.short_string()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::table(out, &self.client_properties)?;
        writer::short_string(out, &self.mechanism);
        writer::long_string(out, &self.response)?;
        writer::short_string(out, &self.locale);
        Ok(())
    }
}

/// Server -> client: a SASL challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionSecure {
    /// Challenge bytes.
    pub challenge: Bytes,
}

impl Args for ConnectionSecure {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(ConnectionSecure {
            challenge: r.long_string()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::long_string(out, &self.challenge)
    }
}

/// Client -> server: the response to a SASL challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionSecureOk {
    /// Response bytes (may hold credentials: do not log).
    pub response: Bytes,
}

impl Args for ConnectionSecureOk {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(ConnectionSecureOk {
            response: r.long_string()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::long_string(out, &self.response)
    }
}

/// Server -> client: the server's limits. 0 means "no limit" for each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionTune {
    /// Highest channel number the server allows.
    pub channel_max: u16,
    /// Largest frame size (header and frame end included).
    pub frame_max: u32,
    /// Heartbeat interval in seconds the server wants.
    pub heartbeat: u16,
}

/// Client -> server: the limits the client accepts (each at most the server's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionTuneOk {
    /// Highest channel number the client will use.
    pub channel_max: u16,
    /// Largest frame size the client will send.
    pub frame_max: u32,
    /// Heartbeat interval in seconds, 0 for none.
    pub heartbeat: u16,
}

macro_rules! tune_args {
    ($ty:ident) => {
        impl Args for $ty {
            fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
                Ok($ty {
                    channel_max: r.u16()?,
                    frame_max: r.u32()?,
                    heartbeat: r.u16()?,
                })
            }

            fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
                out.put_u16(self.channel_max);
                out.put_u32(self.frame_max);
                out.put_u16(self.heartbeat);
                Ok(())
            }
        }
    };
}
tune_args!(ConnectionTune);
tune_args!(ConnectionTuneOk);

/// Client -> server: open a virtual host. The reserved capabilities short string and insist
/// bit are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionOpen {
    /// Virtual host name, e.g. `/`.
    pub virtual_host: ShortString,
}

impl Args for ConnectionOpen {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let virtual_host = r.short_string()?;
        let _capabilities = r.short_string()?;
        let _insist = r.bits()?;
        Ok(ConnectionOpen { virtual_host })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::short_string(out, &self.virtual_host);
        writer::empty_short_string(out);
        writer::bits(out, &[false]);
        Ok(())
    }
}

/// Server -> client: the virtual host is open. Carries only the reserved known-hosts short
/// string (read and ignored, written empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionOpenOk;

impl Args for ConnectionOpenOk {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _known_hosts = r.short_string()?;
        Ok(ConnectionOpenOk)
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::empty_short_string(out);
        Ok(())
    }
}

/// Either peer: close the connection with a reply code and the method that caused it (0, 0 if
/// none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionClose {
    /// Reply code, see `reply_code`.
    pub reply_code: u16,
    /// Human-readable reason.
    pub reply_text: ShortString,
    /// Class of the failing method, or 0.
    pub class_id: u16,
    /// Id of the failing method, or 0.
    pub method_id: u16,
}

impl Args for ConnectionClose {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(ConnectionClose {
            reply_code: r.u16()?,
            reply_text: r.short_string()?,
            class_id: r.u16()?,
            method_id: r.u16()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(self.reply_code);
        writer::short_string(out, &self.reply_text);
        out.put_u16(self.class_id);
        out.put_u16(self.method_id);
        Ok(())
    }
}

/// Server -> client (RabbitMQ extension): publishing is blocked by a resource alarm.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionBlocked {
    /// Why, e.g. `low on memory`.
    pub reason: ShortString,
}

impl Args for ConnectionBlocked {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(ConnectionBlocked {
            reason: r.short_string()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::short_string(out, &self.reason);
        Ok(())
    }
}

/// Client -> server (RabbitMQ extension): replace the connection's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionUpdateSecret {
    /// The new secret (e.g. a token; do not log).
    pub new_secret: Bytes,
    /// Why it is being updated.
    pub reason: ShortString,
}

impl Args for ConnectionUpdateSecret {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(ConnectionUpdateSecret {
            new_secret: r.long_string()?,
            reason: r.short_string()?,
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::long_string(out, &self.new_secret)?;
        writer::short_string(out, &self.reason);
        Ok(())
    }
}

no_args! {
    /// Either peer: acknowledges connection.close; the socket may then be closed.
    ConnectionCloseOk;
    /// Server -> client (RabbitMQ extension): the resource alarm has cleared.
    ConnectionUnblocked;
    /// Server -> client (RabbitMQ extension): the new secret was accepted.
    ConnectionUpdateSecretOk;
}
