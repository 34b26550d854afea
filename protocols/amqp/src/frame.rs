//! Frames (spec 4.2.3): type octet, channel, 32-bit payload size, payload, frame-end 0xCE.
//! `decode_frame` is resumable: it returns `Ok(None)` leaving the buffer untouched until a
//! whole frame is there, rejects a frame larger than frame-max as soon as the 7-byte header is
//! readable (before the payload is buffered), and hands out body payloads as zero-copy slices of
//! the read buffer. Method and header payloads are parsed by `method` and `content`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::content::{self, ContentHeader};
use crate::error::{DecodeError, EncodeError};
use crate::ids::ChannelId;
use crate::method::{self, Method};
use crate::writer;

/// Frame type of method frames.
pub const FRAME_METHOD: u8 = 1;
/// Frame type of content header frames.
pub const FRAME_HEADER: u8 = 2;
/// Frame type of content body frames.
pub const FRAME_BODY: u8 = 3;
/// Frame type of heartbeat frames (the spec's `frame-heartbeat` constant).
pub const FRAME_HEARTBEAT: u8 = 8;
/// The octet that ends every frame.
pub const FRAME_END: u8 = 0xCE;
/// Type, channel and size.
pub const FRAME_HEADER_LEN: usize = 7;
/// Bytes a frame adds around its payload: header and frame end. A body frame under frame-max
/// `m` carries at most `m - 8` body bytes.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_LEN + 1;
/// The smallest frame-max a peer may negotiate, and the limit before tuning (spec 4.2.3:
/// "frame-min-size").
pub const FRAME_MIN_SIZE: u32 = 4096;

/// One AMQP frame.
// The header variant is several times larger than the others (14 properties inline). Boxing it
// would cost an allocation per published message; moving a few hundred bytes does not.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A method frame.
    Method(ChannelId, Method),
    /// A content header frame.
    Header(ChannelId, ContentHeader),
    /// A content body frame: a zero-copy slice of the read buffer when decoded.
    Body(ChannelId, Bytes),
    /// A heartbeat. The spec puts heartbeats on channel 0; the channel is kept so the broker
    /// can answer any other with 505, as RabbitMQ does.
    Heartbeat(ChannelId),
}

impl Frame {
    /// A heartbeat on channel 0.
    pub const fn heartbeat() -> Frame {
        Frame::Heartbeat(ChannelId::CONNECTION)
    }

    /// The channel the frame belongs to.
    pub fn channel(&self) -> ChannelId {
        match self {
            Frame::Method(c, _) | Frame::Header(c, _) | Frame::Body(c, _) | Frame::Heartbeat(c) => {
                *c
            }
        }
    }

    /// The frame type octet.
    pub fn frame_type(&self) -> u8 {
        match self {
            Frame::Method(..) => FRAME_METHOD,
            Frame::Header(..) => FRAME_HEADER,
            Frame::Body(..) => FRAME_BODY,
            Frame::Heartbeat(_) => FRAME_HEARTBEAT,
        }
    }
}

/// Decodes one frame from the front of `buf` and advances `buf` past it.
///
/// `frame_max` is the negotiated frame-max: the largest whole frame (header, payload and frame
/// end) accepted; 0 means no limit, as in connection.tune. Before tune-ok the spec's limit is
/// `FRAME_MIN_SIZE` (a broker may allow more for large start-ok messages). The check is exact;
/// RabbitMQ tolerates frames up to 8 bytes over (`?FRAME_SIZE_FUDGE`, for clients that forget
/// the frame overhead), which a caller gets by passing the negotiated value + 8.
///
/// Returns `Ok(None)`, with `buf` unchanged, while the frame is incomplete. The frame type is
/// checked from the first byte and the size from the 7-byte header, so garbage and oversized
/// frames fail without waiting for their payload. On `Err` the connection must be closed
/// (connection.close with `reply_code()`); how much of `buf` was consumed is then unspecified.
pub fn decode_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, DecodeError> {
    let Some(&frame_type) = buf.first() else {
        return Ok(None);
    };
    if !matches!(
        frame_type,
        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
    ) {
        return Err(DecodeError::UnknownFrameType(frame_type));
    }
    let Some(header) = buf.get(..FRAME_HEADER_LEN) else {
        return Ok(None);
    };
    let channel = ChannelId(u16::from_be_bytes([header[1], header[2]]));
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
    let total = u64::from(size) + FRAME_OVERHEAD as u64;
    if frame_max != 0 && total > u64::from(frame_max) {
        return Err(DecodeError::FrameTooLarge {
            size: total,
            max: frame_max,
        });
    }
    if frame_type == FRAME_HEARTBEAT && size != 0 {
        // RabbitMQ: analyze_frame matches heartbeats only with an empty payload.
        return Err(DecodeError::MalformedFrame(
            "heartbeat frame with a payload",
        ));
    }
    // `total` fits usize whenever it fits in memory; if it does not, the frame cannot have
    // arrived yet either.
    let Ok(total) = usize::try_from(total) else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    let end = buf[total - 1];
    if end != FRAME_END {
        return Err(DecodeError::BadFrameEnd { found: end });
    }
    // Trim header and frame end while still a BytesMut: advancing and truncating it touch no
    // reference count, unlike slicing the frozen `Bytes`.
    let mut frame = buf.split_to(total);
    frame.advance(FRAME_HEADER_LEN);
    frame.truncate(total - FRAME_OVERHEAD);
    let payload = frame.freeze();
    let frame = match frame_type {
        FRAME_METHOD => Frame::Method(channel, method::decode_method(payload)?),
        FRAME_HEADER => Frame::Header(channel, content::decode_header(payload)?),
        FRAME_BODY => Frame::Body(channel, payload),
        _ => Frame::Heartbeat(channel),
    };
    Ok(Some(frame))
}

/// Appends `frame` to `out`.
///
/// The frame is not checked against a frame-max: method frames are small, and content should
/// go through `encode_content` / `encode_deliver`, which split bodies and check the header.
/// Fails only for values the wire cannot carry; `out` is then left as it was.
pub fn encode_frame(frame: &Frame, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write_frame(frame, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_frame(frame: &Frame, out: &mut BytesMut) -> Result<(), EncodeError> {
    out.put_u8(frame.frame_type());
    out.put_u16(frame.channel().0);
    match frame {
        Frame::Method(_, m) => {
            let at = writer::placeholder_u32(out);
            method::encode_method(out, m)?;
            writer::patch_len(out, at, "method frame")?;
        }
        Frame::Header(_, h) => {
            let at = writer::placeholder_u32(out);
            content::write_header(out, h)?;
            writer::patch_len(out, at, "content header frame")?;
        }
        Frame::Body(_, body) => {
            out.put_u32(writer::len_u32(body.len(), "body frame")?);
            out.put_slice(body);
        }
        Frame::Heartbeat(_) => out.put_u32(0),
    }
    out.put_u8(FRAME_END);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_is_checked_from_the_first_byte() {
        let mut buf = BytesMut::from(&b"G"[..]);
        assert_eq!(
            decode_frame(&mut buf, 0),
            Err(DecodeError::UnknownFrameType(b'G'))
        );
        let mut buf = BytesMut::from(&[8u8][..]);
        assert_eq!(decode_frame(&mut buf, 0), Ok(None));
    }

    #[test]
    fn size_is_checked_from_the_header() {
        // A body frame announcing 4 GiB - 1: rejected at 7 bytes under a limit...
        let mut buf = BytesMut::from(&[3u8, 0, 1, 0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            decode_frame(&mut buf, 131_072),
            Err(DecodeError::FrameTooLarge {
                size: 0xffff_ffff + 8,
                max: 131_072
            })
        );
        // ...and simply incomplete without one.
        assert_eq!(decode_frame(&mut buf, 0), Ok(None));
        assert_eq!(buf.len(), 7);
    }

    #[test]
    fn heartbeat_with_payload_is_rejected_early() {
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 1][..]);
        assert_eq!(
            decode_frame(&mut buf, 0),
            Err(DecodeError::MalformedFrame(
                "heartbeat frame with a payload"
            ))
        );
    }

    #[test]
    fn bad_frame_end() {
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 0, 0xCD][..]);
        assert_eq!(
            decode_frame(&mut buf, 0),
            Err(DecodeError::BadFrameEnd { found: 0xCD })
        );
        assert_eq!(buf.len(), 8, "a bad frame end is reported before consuming");
    }
}
