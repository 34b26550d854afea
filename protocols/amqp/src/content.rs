//! Content header frames (spec 4.2.6.1): class id, weight (always 0), body size and the property
//! list announced by property flags. Only class basic (60) defines properties, so this owns the
//! 14 basic properties; a header for another class is decoded with no properties and left to the
//! broker to reject as 505 UNEXPECTED_FRAME (it knows which method the header should follow).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError, SyntaxError};
use crate::field::FieldTable;
use crate::reader::Reader;
use crate::short_string::ShortString;
use crate::writer;

/// The class whose content carries `BasicProperties`.
pub const BASIC_CLASS_ID: u16 = 60;

/// Bytes before the property flags: class id, weight, body size.
pub(crate) const HEADER_FIXED_LEN: usize = 12;

// Property flag bits of class basic, most significant first in wire order (spec 4.2.6.1: bit 15
// is the first property; bit 0 says another flag word follows).
const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const TYPE: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;
const CONTINUATION: u16 = 1;

/// A content header frame's payload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContentHeader {
    /// The class of the method this content belongs to: 60 (basic) for every content-carrying
    /// method in 0-9-1. The broker checks it matches the method before it (505 otherwise).
    pub class_id: u16,
    /// Total size of the body that follows in body frames.
    pub body_size: u64,
    /// The message properties (all `None` for classes other than basic).
    pub properties: BasicProperties,
}

impl ContentHeader {
    /// A basic-class header.
    pub fn basic(body_size: u64, properties: BasicProperties) -> ContentHeader {
        ContentHeader {
            class_id: BASIC_CLASS_ID,
            body_size,
            properties,
        }
    }
}

/// The 14 properties of class basic, in wire order. `None` means the flag is clear.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BasicProperties {
    /// MIME content type.
    pub content_type: Option<ShortString>,
    /// MIME content encoding.
    pub content_encoding: Option<ShortString>,
    /// Application headers (also what headers exchanges match on).
    pub headers: Option<FieldTable>,
    /// 1 = non-persistent, 2 = persistent.
    pub delivery_mode: Option<u8>,
    /// Priority 0..=9 by the spec; RabbitMQ accepts up to 255 and caps per queue.
    pub priority: Option<u8>,
    /// Application correlation identifier.
    pub correlation_id: Option<ShortString>,
    /// Address to reply to.
    pub reply_to: Option<ShortString>,
    /// Per-message TTL in milliseconds, as a decimal string (RabbitMQ's reading).
    pub expiration: Option<ShortString>,
    /// Application message identifier.
    pub message_id: Option<ShortString>,
    /// Message timestamp, seconds since the epoch.
    pub timestamp: Option<u64>,
    /// The `type` property: message type name.
    pub kind: Option<ShortString>,
    /// Creating user id (RabbitMQ validates it against the connection's user).
    pub user_id: Option<ShortString>,
    /// Creating application id.
    pub app_id: Option<ShortString>,
    /// Reserved by 0-9-1 ("deprecated, must be empty"); carried through unchanged.
    pub cluster_id: Option<ShortString>,
}

impl BasicProperties {
    /// True when `delivery_mode` is 2.
    pub fn is_persistent(&self) -> bool {
        self.delivery_mode == Some(2)
    }

    /// The property flags word for these properties.
    pub fn flags(&self) -> u16 {
        let mut f = 0;
        let mut set = |present: bool, bit: u16| {
            if present {
                f |= bit;
            }
        };
        set(self.content_type.is_some(), CONTENT_TYPE);
        set(self.content_encoding.is_some(), CONTENT_ENCODING);
        set(self.headers.is_some(), HEADERS);
        set(self.delivery_mode.is_some(), DELIVERY_MODE);
        set(self.priority.is_some(), PRIORITY);
        set(self.correlation_id.is_some(), CORRELATION_ID);
        set(self.reply_to.is_some(), REPLY_TO);
        set(self.expiration.is_some(), EXPIRATION);
        set(self.message_id.is_some(), MESSAGE_ID);
        set(self.timestamp.is_some(), TIMESTAMP);
        set(self.kind.is_some(), TYPE);
        set(self.user_id.is_some(), USER_ID);
        set(self.app_id.is_some(), APP_ID);
        set(self.cluster_id.is_some(), CLUSTER_ID);
        f
    }

    /// True if no property is set.
    pub fn is_empty(&self) -> bool {
        self.flags() == 0
    }

    /// Bytes the flags word and property list take on the wire.
    pub fn encoded_len(&self) -> usize {
        let s = |v: &Option<ShortString>| v.as_ref().map_or(0, |s| 1 + s.len());
        2 + s(&self.content_type)
            + s(&self.content_encoding)
            + self.headers.as_ref().map_or(0, FieldTable::encoded_len)
            + usize::from(self.delivery_mode.is_some())
            + usize::from(self.priority.is_some())
            + s(&self.correlation_id)
            + s(&self.reply_to)
            + s(&self.expiration)
            + s(&self.message_id)
            + if self.timestamp.is_some() { 8 } else { 0 }
            + s(&self.kind)
            + s(&self.user_id)
            + s(&self.app_id)
            + s(&self.cluster_id)
    }

    /// Writes the flags word and the property list.
    pub(crate) fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(self.flags());
        let s = |out: &mut BytesMut, v: &Option<ShortString>| {
            if let Some(v) = v {
                writer::short_string(out, v);
            }
        };
        s(out, &self.content_type);
        s(out, &self.content_encoding);
        if let Some(h) = &self.headers {
            writer::table(out, h)?;
        }
        if let Some(m) = self.delivery_mode {
            out.put_u8(m);
        }
        if let Some(p) = self.priority {
            out.put_u8(p);
        }
        s(out, &self.correlation_id);
        s(out, &self.reply_to);
        s(out, &self.expiration);
        s(out, &self.message_id);
        if let Some(t) = self.timestamp {
            out.put_u64(t);
        }
        s(out, &self.kind);
        s(out, &self.user_id);
        s(out, &self.app_id);
        s(out, &self.cluster_id);
        Ok(())
    }

    /// Reads the property list announced by `flags`.
    fn read(r: &mut Reader, flags: u16) -> Result<BasicProperties, SyntaxError> {
        let s = |r: &mut Reader, bit: u16| -> Result<Option<ShortString>, SyntaxError> {
            if flags & bit != 0 {
                r.short_string().map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(BasicProperties {
            content_type: s(r, CONTENT_TYPE)?,
            content_encoding: s(r, CONTENT_ENCODING)?,
            headers: if flags & HEADERS != 0 {
                Some(r.table()?)
            } else {
                None
            },
            delivery_mode: if flags & DELIVERY_MODE != 0 {
                Some(r.u8()?)
            } else {
                None
            },
            priority: if flags & PRIORITY != 0 {
                Some(r.u8()?)
            } else {
                None
            },
            correlation_id: s(r, CORRELATION_ID)?,
            reply_to: s(r, REPLY_TO)?,
            expiration: s(r, EXPIRATION)?,
            message_id: s(r, MESSAGE_ID)?,
            timestamp: if flags & TIMESTAMP != 0 {
                Some(r.u64()?)
            } else {
                None
            },
            kind: s(r, TYPE)?,
            user_id: s(r, USER_ID)?,
            app_id: s(r, APP_ID)?,
            cluster_id: s(r, CLUSTER_ID)?,
        })
    }
}

/// Decodes a content header payload (the frame's payload, without frame header and end).
pub(crate) fn decode_header(payload: Bytes) -> Result<ContentHeader, DecodeError> {
    if payload.len() < HEADER_FIXED_LEN + 2 {
        // RabbitMQ's analyze_frame cannot even split such a header: a frame error, not syntax.
        return Err(DecodeError::MalformedFrame(
            "content header shorter than its fixed fields",
        ));
    }
    let mut r = Reader::new(payload);
    read_header(&mut r).map_err(DecodeError::in_header)
}

fn read_header(r: &mut Reader) -> Result<ContentHeader, SyntaxError> {
    let class_id = r.u16()?;
    let weight = r.u16()?;
    if weight != 0 {
        return Err(SyntaxError::NonZeroWeight(weight));
    }
    let body_size = r.u64()?;
    let flags = r.u16()?;
    // Spec 4.2.6.1: while bit 0 is set another flag word follows. Basic's 14 properties all
    // live in the first word, so later words must be empty. RabbitMQ ignores the bit (and would
    // then misread the extra word as property data); reading the words is the spec's way and
    // costs nothing for the clients that never set it. Each word consumes two bytes, so the
    // loop is bounded by the payload.
    let mut more = flags & CONTINUATION != 0;
    while more {
        let word = r.u16()?;
        if word & !CONTINUATION != 0 {
            return Err(SyntaxError::UnknownPropertyFlags(word));
        }
        more = word & CONTINUATION != 0;
    }
    // Bit 1 is unused by basic; RabbitMQ ignores it too (`_:2` in its generated decoder).
    let flags = flags & !0b11;
    let properties = if class_id == BASIC_CLASS_ID {
        BasicProperties::read(r, flags)?
    } else if flags != 0 {
        return Err(SyntaxError::UnknownPropertyFlags(flags));
    } else {
        BasicProperties::default()
    };
    r.finish()?;
    Ok(ContentHeader {
        class_id,
        body_size,
        properties,
    })
}

/// Writes a content header payload.
pub(crate) fn write_header(out: &mut BytesMut, h: &ContentHeader) -> Result<(), EncodeError> {
    if h.class_id != BASIC_CLASS_ID && !h.properties.is_empty() {
        return Err(EncodeError::PropertiesNotAllowed {
            class_id: h.class_id,
        });
    }
    out.put_u16(h.class_id);
    out.put_u16(0); // weight
    out.put_u64(h.body_size);
    h.properties.write(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &'static [u8]) -> Result<ContentHeader, DecodeError> {
        decode_header(Bytes::from_static(bytes))
    }

    #[test]
    fn empty_basic_header() {
        let h = decode(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0]).unwrap();
        assert_eq!(h, ContentHeader::basic(5, BasicProperties::default()));
    }

    #[test]
    fn continuation_words() {
        // Continuation set, then an empty word: fine.
        let h = decode(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 1, 0, 0, 2]).unwrap();
        assert_eq!(h.properties.delivery_mode, Some(2));
        // A second word with flags: properties that do not exist.
        let e = decode(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0x80, 0]).unwrap_err();
        assert_eq!(
            e,
            DecodeError::in_header(SyntaxError::UnknownPropertyFlags(0x8000))
        );
        // Continuation promised but missing.
        let e = decode(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]).unwrap_err();
        assert_eq!(e, DecodeError::in_header(SyntaxError::Truncated));
    }

    #[test]
    fn fixed_field_errors() {
        assert!(matches!(
            decode(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Err(DecodeError::MalformedFrame(_))
        ));
        assert_eq!(
            decode(&[0, 60, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]),
            Err(DecodeError::in_header(SyntaxError::NonZeroWeight(7)))
        );
        assert_eq!(
            decode(&[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 9]),
            Err(DecodeError::in_header(SyntaxError::TrailingBytes))
        );
        // Another class: no properties allowed, but decodable so the broker can say 505.
        assert_eq!(
            decode(&[0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
                .unwrap()
                .class_id,
            50
        );
        assert!(decode(&[0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0, 0]).is_err());
    }

    #[test]
    fn encode_rejects_properties_on_other_classes() {
        let h = ContentHeader {
            class_id: 50,
            body_size: 0,
            properties: BasicProperties {
                priority: Some(1),
                ..Default::default()
            },
        };
        assert_eq!(
            write_header(&mut BytesMut::new(), &h),
            Err(EncodeError::PropertiesNotAllowed { class_id: 50 })
        );
    }
}
