//! Classes confirm (85, RabbitMQ's publisher confirms) and tx (90, transactions): small enough
//! to share a file.

use bytes::BytesMut;

use super::{no_args, Args};
use crate::error::{EncodeError, SyntaxError};
use crate::reader::Reader;
use crate::writer;

/// Client -> server: put the channel in confirm mode (acks / nacks for every publish).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfirmSelect {
    /// Do not send select-ok.
    pub no_wait: bool,
}

impl Args for ConfirmSelect {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(ConfirmSelect {
            no_wait: writer::bit(r.bits()?, 0),
        })
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::bits(out, &[self.no_wait]);
        Ok(())
    }
}

no_args! {
    /// Server -> client: the channel is in confirm mode.
    ConfirmSelectOk;
    /// Client -> server: put the channel in transactional mode.
    TxSelect;
    /// Server -> client: the channel is transactional.
    TxSelectOk;
    /// Client -> server: commit the current transaction.
    TxCommit;
    /// Server -> client: committed.
    TxCommitOk;
    /// Client -> server: abandon the current transaction.
    TxRollback;
    /// Server -> client: rolled back.
    TxRollbackOk;
}
