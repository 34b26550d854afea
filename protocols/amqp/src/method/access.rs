//! Class access (30): the 0-8 access-ticket request, deprecated in 0-9-1 but still in
//! RabbitMQ's spec and still sent by a few old clients; RabbitMQ answers request-ok with
//! ticket 1 and ignores tickets everywhere else.

use bytes::{BufMut, BytesMut};

use super::Args;
use crate::error::{EncodeError, SyntaxError};
use crate::reader::Reader;
use crate::short_string::ShortString;
use crate::writer;

/// Client -> server: request an access ticket for a realm.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessRequest {
    /// Realm name.
    pub realm: ShortString,
    /// Exclusive access.
    pub exclusive: bool,
    /// Passive access.
    pub passive: bool,
    /// Active access.
    pub active: bool,
    /// Write access.
    pub write: bool,
    /// Read access.
    pub read: bool,
}

impl Args for AccessRequest {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let realm = r.short_string()?;
        let bits = r.bits()?;
        Ok(AccessRequest {
            realm,
            exclusive: writer::bit(bits, 0),
            passive: writer::bit(bits, 1),
            active: writer::bit(bits, 2),
            write: writer::bit(bits, 3),
            read: writer::bit(bits, 4),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::short_string(out, &self.realm);
        writer::bits(
            out,
            &[
                self.exclusive,
                self.passive,
                self.active,
                self.write,
                self.read,
            ],
        );
        Ok(())
    }
}

/// Server -> client: the granted ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessRequestOk {
    /// The ticket (RabbitMQ sends 1).
    pub ticket: u16,
}

impl Args for AccessRequestOk {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(AccessRequestOk { ticket: r.u16()? })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(self.ticket);
        Ok(())
    }
}
