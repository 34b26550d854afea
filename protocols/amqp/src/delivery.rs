//! The content write path: a content-carrying method frame, its content header frame and the
//! body split into frames of at most frame-max − 8 payload bytes, written into one `BytesMut`
//! in a single pass after one `reserve` of the exact total. `encode_deliver` is what a queue's
//! consumer path calls per message; `encode_content` also serves basic.publish (clients, tests),
//! basic.return and basic.get-ok.

use bytes::{BufMut, BytesMut};

use crate::content::{BasicProperties, BASIC_CLASS_ID, HEADER_FIXED_LEN};
use crate::error::EncodeError;
use crate::frame::{FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD, FRAME_OVERHEAD};
use crate::ids::ChannelId;
use crate::method::{Args, BasicDeliver, BasicGetOk, BasicPublish, BasicReturn};
use crate::writer;

/// A method that is followed by content (spec: "content-bearing" methods of class basic).
#[derive(Debug, Clone, Copy)]
pub enum ContentMethod<'a> {
    /// basic.publish (client -> server).
    Publish(&'a BasicPublish),
    /// basic.return (server -> client).
    Return(&'a BasicReturn),
    /// basic.deliver (server -> client).
    Deliver(&'a BasicDeliver),
    /// basic.get-ok (server -> client).
    GetOk(&'a BasicGetOk),
}

impl ContentMethod<'_> {
    fn method_id(&self) -> u16 {
        match self {
            ContentMethod::Publish(_) => BasicPublish::METHOD_ID,
            ContentMethod::Return(_) => BasicReturn::METHOD_ID,
            ContentMethod::Deliver(_) => BasicDeliver::METHOD_ID,
            ContentMethod::GetOk(_) => BasicGetOk::METHOD_ID,
        }
    }

    fn args_len(&self) -> usize {
        match self {
            ContentMethod::Publish(m) => m.args_len(),
            ContentMethod::Return(m) => m.args_len(),
            ContentMethod::Deliver(m) => m.args_len(),
            ContentMethod::GetOk(m) => m.args_len(),
        }
    }

    fn write_args(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            ContentMethod::Publish(m) => m.write(out),
            ContentMethod::Return(m) => m.write(out),
            ContentMethod::Deliver(m) => m.write(out),
            ContentMethod::GetOk(m) => m.write(out),
        }
    }
}

/// Appends basic.deliver + content header + body frames for one message on `channel`.
///
/// Same as `encode_content` with `ContentMethod::Deliver`; see there for `frame_max` and errors.
pub fn encode_deliver(
    out: &mut BytesMut,
    channel: ChannelId,
    deliver: &BasicDeliver,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Result<(), EncodeError> {
    encode_content(
        out,
        channel,
        ContentMethod::Deliver(deliver),
        properties,
        body,
        frame_max,
    )
}

/// Appends a content-carrying method frame, its content header frame and the body frames.
///
/// The body is split into frames of at most `frame_max − 8` bytes (an empty body gets no body
/// frame); `frame_max` 0 means no negotiated limit, so the body goes in frames of up to
/// 4 GiB − 1. The method and header frames must each fit `frame_max` (a header cannot be
/// split), else `EncodeError::FrameTooLarge`. Exactly the bytes needed are reserved once up
/// front, so writing into a buffer that already has the room allocates nothing. On error `out`
/// is left as it was.
pub fn encode_content(
    out: &mut BytesMut,
    channel: ChannelId,
    method: ContentMethod<'_>,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Result<(), EncodeError> {
    let max_payload = match frame_max {
        0 => u32::MAX as usize,
        m if (m as usize) <= FRAME_OVERHEAD => return Err(EncodeError::FrameMaxTooSmall(m)),
        m => m as usize - FRAME_OVERHEAD,
    };
    let method_payload = 4 + method.args_len();
    let header_payload = HEADER_FIXED_LEN + properties.encoded_len();
    for (what, payload) in [
        ("method", method_payload),
        ("content header", header_payload),
    ] {
        if payload > max_payload {
            return Err(EncodeError::FrameTooLarge {
                what,
                size: (payload + FRAME_OVERHEAD) as u64,
                max: frame_max,
            });
        }
    }
    let body_frames = body.len().div_ceil(max_payload);
    let total = 2 * FRAME_OVERHEAD
        + method_payload
        + header_payload
        + body_frames * FRAME_OVERHEAD
        + body.len();
    out.reserve(total);
    let start = out.len();
    let result = write_content(out, channel, method, properties, body, max_payload);
    match result {
        Ok(()) => debug_assert_eq!(out.len() - start, total, "length arithmetic"),
        Err(_) => out.truncate(start),
    }
    result
}

fn write_content(
    out: &mut BytesMut,
    channel: ChannelId,
    method: ContentMethod<'_>,
    properties: &BasicProperties,
    body: &[u8],
    max_payload: usize,
) -> Result<(), EncodeError> {
    out.put_u8(FRAME_METHOD);
    out.put_u16(channel.0);
    let at = writer::placeholder_u32(out);
    out.put_u16(BASIC_CLASS_ID);
    out.put_u16(method.method_id());
    method.write_args(out)?;
    writer::patch_len(out, at, "method frame")?;
    out.put_u8(FRAME_END);

    out.put_u8(FRAME_HEADER);
    out.put_u16(channel.0);
    let at = writer::placeholder_u32(out);
    out.put_u16(BASIC_CLASS_ID);
    out.put_u16(0); // weight
    out.put_u64(body.len() as u64);
    properties.write(out)?;
    writer::patch_len(out, at, "content header frame")?;
    out.put_u8(FRAME_END);

    for piece in body.chunks(max_payload) {
        out.put_u8(FRAME_BODY);
        out.put_u16(channel.0);
        // A piece is at most max_payload <= u32::MAX bytes.
        out.put_u32(piece.len() as u32);
        out.put_slice(piece);
        out.put_u8(FRAME_END);
    }
    Ok(())
}
