//! Codec errors: `DecodeError` for bytes a peer sent, `EncodeError` for values the wire cannot
//! carry. `DecodeError::reply_code` is the one place a decode failure becomes an AMQP reply code;
//! the broker's adapter sends the connection.close. Deciding 505 UNEXPECTED_FRAME (a well-formed
//! frame arriving at the wrong time) needs connection state and is the broker's business.

use std::fmt;

use thiserror::Error;

use crate::method::MethodId;
use crate::reply_code;
use crate::short_string::ShortString;

/// Why a frame could not be decoded. Every variant is a connection exception: the broker answers
/// with connection.close carrying `reply_code()` and `reply_text()`, then closes the socket.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The octet after the payload is not 0xCE (spec 4.2.3; 501 FRAME_ERROR).
    #[error("frame end octet is {found:#04x}, expected 0xce")]
    BadFrameEnd {
        /// The octet found where the frame end should be.
        found: u8,
    },
    /// The frame header announces a frame larger than the negotiated frame-max (501). Detected
    /// from the 7-byte header, before the payload is buffered.
    #[error("frame of {size} bytes exceeds frame_max {max}")]
    FrameTooLarge {
        /// Whole frame size: 7-byte header + payload + frame end.
        size: u64,
        /// The limit it was checked against.
        max: u32,
    },
    /// A frame type other than method (1), header (2), body (3) or heartbeat (8) (501). A
    /// protocol header sent again mid-stream shows up here as type 65 (`'A'`).
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    /// A frame too short for its type's fixed fields, or a heartbeat with a payload (501, as
    /// RabbitMQ's `analyze_frame` rejects them before looking at the contents).
    #[error("malformed frame: {0}")]
    MalformedFrame(&'static str),
    /// The payload's fields do not parse (502 SYNTAX_ERROR): a field or declared length runs
    /// past the end of the frame, a bad field table, trailing bytes.
    #[error("{context}: {kind}")]
    Syntax {
        /// Where the error was found.
        context: SyntaxContext,
        /// What was wrong.
        kind: SyntaxError,
    },
    /// A method frame for a class this codec does not know (503 COMMAND_INVALID); carries the
    /// whole id, which connection.close reports [AMQP 0-9-1 connection.close class-id/method-id].
    #[error("unknown class {}", .0.class_id)]
    UnknownClass(MethodId),
    /// A method frame for a known class but an unknown method (503 COMMAND_INVALID).
    #[error("unknown method {}/{} in class {}", .0.class_id, .0.method_id, .0.class_name().unwrap_or("?"))]
    UnknownMethod(MethodId),
}

impl DecodeError {
    /// The reply code for the connection.close this error calls for: 501 FRAME_ERROR,
    /// 502 SYNTAX_ERROR or 503 COMMAND_INVALID.
    ///
    /// RabbitMQ answers a method whose arguments do not parse with 501 (its generated decoder
    /// has no matching clause); the AMQP 0-9-1 spec's own definition of 502 ("a frame that
    /// contained illegal values for one or more fields") fits those better, so ferromq uses 502.
    pub fn reply_code(&self) -> u16 {
        match self {
            DecodeError::BadFrameEnd { .. }
            | DecodeError::FrameTooLarge { .. }
            | DecodeError::UnknownFrameType(_)
            | DecodeError::MalformedFrame(_) => reply_code::FRAME_ERROR,
            DecodeError::Syntax { .. } => reply_code::SYNTAX_ERROR,
            DecodeError::UnknownClass(_) | DecodeError::UnknownMethod(_) => {
                reply_code::COMMAND_INVALID
            }
        }
    }

    /// The reply-text for connection.close, in RabbitMQ's `"FRAME_ERROR - ..."` form, cut to
    /// the 255 bytes a short string holds.
    pub fn reply_text(&self) -> ShortString {
        let code = self.reply_code();
        let name = reply_code::name(code).unwrap_or("ERROR");
        ShortString::truncating(&format!("{name} - {self}"))
    }

    /// The class and method to report in connection.close's class-id / method-id fields: the
    /// method whose arguments failed to parse, or the unknown one. `None` (send 0, 0) otherwise.
    pub fn failing_method(&self) -> Option<MethodId> {
        match self {
            DecodeError::Syntax {
                context: SyntaxContext::Method(id),
                ..
            } => Some(*id),
            DecodeError::UnknownMethod(id) | DecodeError::UnknownClass(id) => Some(*id),
            _ => None,
        }
    }

    /// Wraps a field-level error with the method it occurred in.
    pub(crate) fn in_method(id: MethodId) -> impl Fn(SyntaxError) -> DecodeError {
        move |kind| DecodeError::Syntax {
            context: SyntaxContext::Method(id),
            kind,
        }
    }

    /// Wraps a field-level error found in a content header.
    pub(crate) fn in_header(kind: SyntaxError) -> DecodeError {
        DecodeError::Syntax {
            context: SyntaxContext::ContentHeader,
            kind,
        }
    }
}

/// The frame part a `DecodeError::Syntax` was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxContext {
    /// The arguments of this method.
    Method(MethodId),
    /// A content header frame (its fixed fields or the basic properties).
    ContentHeader,
}

impl fmt::Display for SyntaxContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyntaxContext::Method(id) => write!(f, "{id}"),
            SyntaxContext::ContentHeader => f.write_str("content header"),
        }
    }
}

/// What was wrong with the fields of a frame payload (all 502 SYNTAX_ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SyntaxError {
    /// A field, or a length a field declares (string, table, array), runs past the end of the
    /// frame or of the table holding it.
    #[error("field runs past the end of its frame or table")]
    Truncated,
    /// Bytes left over after the last field.
    #[error("trailing bytes after the last field")]
    TrailingBytes,
    /// A field table or array value with a type octet this codec does not know.
    #[error("unknown field value type {0:#04x}")]
    UnknownFieldType(u8),
    /// Field tables / arrays nested deeper than `MAX_TABLE_DEPTH`. Rejected to bound recursion:
    /// a few kilobytes of `F` headers must not exhaust the stack.
    #[error("field tables nested deeper than {}", crate::field::MAX_TABLE_DEPTH)]
    TableTooDeep,
    /// A content header's weight is not zero (spec 4.2.6.1: "unused and must be zero").
    #[error("content header weight {0} is not zero")]
    NonZeroWeight(u16),
    /// Property flags announce properties that do not exist: a continuation flag word with
    /// flags set (basic has 14 properties, all in the first word), or any flag on a class that
    /// defines no properties.
    #[error("property flags {0:#06x} name properties that do not exist")]
    UnknownPropertyFlags(u16),
}

/// Why a value could not be encoded. Nothing is left in the output buffer on error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A short string longer than 255 bytes (spec 4.2.5.3); never truncated silently.
    #[error("short string of {len} bytes, more than 255")]
    ShortStringTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A long string, byte array, field table, field array or frame payload longer than the
    /// 32-bit length prefix can say.
    #[error("{what} of {len} bytes does not fit a 32-bit length")]
    TooLong {
        /// Which kind of value.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// Field tables / arrays nested deeper than `MAX_TABLE_DEPTH` (what we would refuse to
    /// decode, we do not send).
    #[error("field tables nested deeper than {}", crate::field::MAX_TABLE_DEPTH)]
    TableTooDeep,
    /// A method or content header frame larger than the frame-max it must fit (content headers
    /// cannot be split across frames).
    #[error("{what} frame of {size} bytes exceeds frame_max {max}")]
    FrameTooLarge {
        /// Which frame.
        what: &'static str,
        /// Whole frame size.
        size: u64,
        /// The limit.
        max: u32,
    },
    /// A frame-max too small to carry any body bytes (at most 8, the frame overhead).
    #[error("frame_max {0} leaves no room for a body frame payload")]
    FrameMaxTooSmall(u32),
    /// A content header for a class other than basic that carries basic properties.
    #[error("content header for class {class_id} cannot carry basic properties")]
    PropertiesNotAllowed {
        /// The header's class.
        class_id: u16,
    },
}
