//! Class channel (20): open, flow control and close. Channel ids live in the frame header, not
//! here; whether a channel is open is the broker's business (504 CHANNEL_ERROR).

use bytes::{BufMut, BytesMut};

use super::{no_args, Args};
use crate::error::{EncodeError, SyntaxError};
use crate::reader::Reader;
use crate::short_string::ShortString;
use crate::writer;

/// Client -> server: open the channel named in the frame header. Carries only the reserved
/// out-of-band short string (read and ignored, written empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelOpen;

impl Args for ChannelOpen {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _out_of_band = r.short_string()?;
        Ok(ChannelOpen)
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        writer::empty_short_string(out);
        Ok(())
    }
}

/// Server -> client: the channel is open. Carries only the reserved channel-id long string
/// (read and ignored, written empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelOpenOk;

impl Args for ChannelOpenOk {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        let _channel_id = r.long_string()?;
        Ok(ChannelOpenOk)
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u32(0);
        Ok(())
    }
}

/// Either peer: stop (`active = false`) or resume sending content. RabbitMQ does not act on a
/// client's flow(false) any more but still answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelFlow {
    /// Whether content may flow.
    pub active: bool,
}

/// Confirms channel.flow with the state now in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelFlowOk {
    /// The flow state now in effect.
    pub active: bool,
}

macro_rules! flow_args {
    ($ty:ident) => {
        impl Args for $ty {
            fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
                let bits = r.bits()?;
                Ok($ty {
                    active: writer::bit(bits, 0),
                })
            }

            fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
                writer::bits(out, &[self.active]);
                Ok(())
            }
        }
    };
}
flow_args!(ChannelFlow);
flow_args!(ChannelFlowOk);

/// Either peer: close the channel with a reply code and the method that caused it (0, 0 if
/// none). Codes below 500 are channel exceptions; 5xx close the connection instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelClose {
    /// Reply code, see `reply_code`.
    pub reply_code: u16,
    /// Human-readable reason.
    pub reply_text: ShortString,
    /// Class of the failing method, or 0.
    pub class_id: u16,
    /// Id of the failing method, or 0.
    pub method_id: u16,
}

impl Args for ChannelClose {
    fn read(r: &mut Reader) -> Result<Self, SyntaxError> {
        Ok(ChannelClose {
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

no_args! {
    /// Either peer: acknowledges channel.close; the channel id may be reused.
    ChannelCloseOk;
}
