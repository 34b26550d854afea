//! ferromq-amqp: AMQP 0-9-1 frames, methods, content headers and field tables <-> bytes, with
//! RabbitMQ's extensions and field types. No tokio, no broker types.
//!
//! Pure and resumable: `decode_frame` returns `Ok(None)` on incomplete input with the buffer
//! untouched, checks frame-max as soon as the 7-byte frame header is readable (before buffering
//! the payload), and hands out bodies, long strings and short strings as zero-copy `Bytes`
//! slices of the read buffer. Field tables keep wire order, and their nesting is bounded
//! (`MAX_TABLE_DEPTH`) so no input can exhaust the stack. `encode_deliver` writes a whole
//! delivery (method, header, body frames split at frame-max) after one exact `reserve`.
//!
//! Layout: `frame` (framing, dispatch), `method/` (one file per class), `content` (content
//! header, basic properties), `field` (tables and arrays), `delivery` (the content write path),
//! `protocol_header`, `error` (the one place decode errors become reply codes).

#![warn(missing_docs)]

mod content;
mod delivery;
mod error;
mod field;
mod frame;
mod ids;
mod method;
mod protocol_header;
mod reader;
pub mod reply_code;
mod short_string;
mod writer;

pub use content::{BasicProperties, ContentHeader, BASIC_CLASS_ID};
pub use delivery::{encode_content, encode_deliver, ContentMethod};
pub use error::{DecodeError, EncodeError, SyntaxContext, SyntaxError};
pub use field::{Decimal, FieldTable, FieldValue, MAX_TABLE_DEPTH};
pub use frame::{
    decode_frame, encode_frame, Frame, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_LEN,
    FRAME_HEARTBEAT, FRAME_METHOD, FRAME_MIN_SIZE, FRAME_OVERHEAD,
};
pub use ids::{ChannelId, DeliveryTag};
pub use method::*;
pub use protocol_header::{check_protocol_header, ProtocolHeaderCheck, PROTOCOL_HEADER};
pub use short_string::ShortString;
