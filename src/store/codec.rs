//! Core values <-> bytes for the store: messages (every field, so a recovered message is the
//! one published), header tables (queue and exchange arguments, binding arguments, AMQP
//! headers) and the primitives both logs use. A compact, explicit layout of our own rather than
//! a serde format: it is a handful of fields, the decoder must never panic on a corrupt record
//! that happened to pass its CRC, and it must stay stable across releases.
//!
//! Integers are little-endian; strings and byte strings are a u32 length then the bytes;
//! an `Option` is a 0/1 byte then the value. Instants (message expiry) are stored as wall-clock
//! milliseconds since the epoch and turned back into instants on reading.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::broker::headers::{HeaderValue, Headers};
use crate::broker::message::{AmqpProperties, Message, Origin, Properties};

/// A record's payload did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed store record: {0}")]
pub struct CodecError(pub &'static str);

type R<T> = Result<T, CodecError>;

/// Deepest nesting of header tables and arrays accepted on reading (AMQP tables in practice
/// nest two or three levels; this only stops a corrupt record from recursing without end).
const MAX_DEPTH: usize = 64;

/// Appends primitives to a buffer.
pub struct Writer<'a>(pub &'a mut Vec<u8>);

impl Writer<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(v);
    }

    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    pub fn opt<T>(&mut self, v: Option<T>, put: impl FnOnce(&mut Self, T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                put(self, v);
            }
        }
    }

    pub fn headers(&mut self, h: &Headers) {
        self.u32(u32::try_from(h.0.len()).unwrap_or(u32::MAX));
        for (name, value) in &h.0 {
            self.str(name);
            self.value(value);
        }
    }

    fn value(&mut self, v: &HeaderValue) {
        match v {
            HeaderValue::Bool(b) => {
                self.u8(b't');
                self.u8(u8::from(*b));
            }
            HeaderValue::I8(n) => {
                self.u8(b'b');
                self.0.extend_from_slice(&n.to_le_bytes());
            }
            HeaderValue::U8(n) => {
                self.u8(b'B');
                self.u8(*n);
            }
            HeaderValue::I16(n) => {
                self.u8(b's');
                self.0.extend_from_slice(&n.to_le_bytes());
            }
            HeaderValue::U16(n) => {
                self.u8(b'u');
                self.u16(*n);
            }
            HeaderValue::I32(n) => {
                self.u8(b'I');
                self.0.extend_from_slice(&n.to_le_bytes());
            }
            HeaderValue::U32(n) => {
                self.u8(b'i');
                self.u32(*n);
            }
            HeaderValue::I64(n) => {
                self.u8(b'l');
                self.0.extend_from_slice(&n.to_le_bytes());
            }
            HeaderValue::F32(f) => {
                self.u8(b'f');
                self.u32(f.to_bits());
            }
            HeaderValue::F64(f) => {
                self.u8(b'd');
                self.u64(f.to_bits());
            }
            HeaderValue::Decimal { scale, value } => {
                self.u8(b'D');
                self.u8(*scale);
                self.u32(*value);
            }
            HeaderValue::LongString(b) => {
                self.u8(b'S');
                self.bytes(b);
            }
            HeaderValue::ByteArray(b) => {
                self.u8(b'x');
                self.bytes(b);
            }
            HeaderValue::Array(items) => {
                self.u8(b'A');
                self.u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
                for item in items {
                    self.value(item);
                }
            }
            HeaderValue::Timestamp(t) => {
                self.u8(b'T');
                self.u64(*t);
            }
            HeaderValue::Table(t) => {
                self.u8(b'F');
                self.headers(t);
            }
            HeaderValue::Void => self.u8(b'V'),
        }
    }

    /// Every field of `message`.
    pub fn message(&mut self, m: &Message) {
        self.str(&m.exchange);
        self.str(&m.topic);
        self.bytes(&m.body);
        self.u8(m.qos);
        self.u8(u8::from(m.retain));
        self.opt(m.expires_at, |w, t| w.u64(instant_to_epoch_ms(t)));
        let p = &m.properties;
        self.u8(u8::from(p.payload_is_utf8));
        self.opt(p.content_type.as_deref(), Writer::str);
        self.opt(p.response_topic.as_deref(), Writer::str);
        self.opt(p.correlation_data.as_deref(), Writer::bytes);
        self.u32(u32::try_from(p.user_properties.len()).unwrap_or(u32::MAX));
        for (k, v) in &p.user_properties {
            self.str(k);
            self.str(v);
        }
        self.opt(p.amqp.as_deref(), Writer::amqp);
        self.opt(m.origin.client_id.as_deref(), Writer::str);
    }

    fn amqp(&mut self, a: &AmqpProperties) {
        self.opt(a.content_encoding.as_deref(), Writer::bytes);
        self.opt(a.headers.as_ref(), Writer::headers);
        self.opt(a.delivery_mode, Writer::u8);
        self.opt(a.priority, Writer::u8);
        for b in [&a.correlation_id, &a.reply_to, &a.expiration, &a.message_id] {
            self.opt(b.as_deref(), Writer::bytes);
        }
        self.opt(a.timestamp, Writer::u64);
        for b in [&a.kind, &a.user_id, &a.app_id, &a.cluster_id] {
            self.opt(b.as_deref(), Writer::bytes);
        }
    }
}

/// Reads primitives from a payload; every read is bounds-checked.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// What is left unread.
    pub fn rest(self) -> &'a [u8] {
        self.buf
    }

    /// True once everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.buf.len() < n {
            return Err(CodecError("truncated field"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> R<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> R<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> R<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> R<u64> {
        self.array().map(u64::from_le_bytes)
    }

    pub fn bytes(&mut self) -> R<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub fn owned_bytes(&mut self) -> R<Bytes> {
        self.bytes().map(Bytes::copy_from_slice)
    }

    pub fn string(&mut self) -> R<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| CodecError("invalid UTF-8"))
    }

    pub fn bool(&mut self) -> R<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CodecError("invalid flag")),
        }
    }

    pub fn opt<T>(&mut self, get: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        if self.bool()? {
            get(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A count of items each at least `min_size` bytes, checked against what is left before
    /// anything is allocated for them.
    fn count(&mut self, min_size: usize) -> R<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.buf.len() {
            return Err(CodecError("count exceeds record"));
        }
        Ok(n)
    }

    pub fn headers(&mut self) -> R<Headers> {
        self.headers_at(0)
    }

    fn headers_at(&mut self, depth: usize) -> R<Headers> {
        if depth > MAX_DEPTH {
            return Err(CodecError("tables nested too deep"));
        }
        let n = self.count(5)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let value = self.value(depth)?;
            out.push((name, value));
        }
        Ok(Headers(out))
    }

    fn value(&mut self, depth: usize) -> R<HeaderValue> {
        Ok(match self.u8()? {
            b't' => HeaderValue::Bool(self.bool()?),
            b'b' => HeaderValue::I8(i8::from_le_bytes(self.array()?)),
            b'B' => HeaderValue::U8(self.u8()?),
            b's' => HeaderValue::I16(i16::from_le_bytes(self.array()?)),
            b'u' => HeaderValue::U16(self.u16()?),
            b'I' => HeaderValue::I32(i32::from_le_bytes(self.array()?)),
            b'i' => HeaderValue::U32(self.u32()?),
            b'l' => HeaderValue::I64(i64::from_le_bytes(self.array()?)),
            b'f' => HeaderValue::F32(f32::from_bits(self.u32()?)),
            b'd' => HeaderValue::F64(f64::from_bits(self.u64()?)),
            b'D' => HeaderValue::Decimal {
                scale: self.u8()?,
                value: self.u32()?,
            },
            b'S' => HeaderValue::LongString(self.owned_bytes()?),
            b'x' => HeaderValue::ByteArray(self.owned_bytes()?),
            b'A' => {
                if depth > MAX_DEPTH {
                    return Err(CodecError("arrays nested too deep"));
                }
                let n = self.count(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                HeaderValue::Array(items)
            }
            b'T' => HeaderValue::Timestamp(self.u64()?),
            b'F' => HeaderValue::Table(self.headers_at(depth + 1)?),
            b'V' => HeaderValue::Void,
            _ => return Err(CodecError("unknown header value type")),
        })
    }

    /// A message written by `Writer::message`.
    pub fn message(&mut self) -> R<Message> {
        let exchange = self.string()?;
        let topic = self.string()?;
        let body = self.owned_bytes()?;
        let qos = self.u8()?;
        let retain = self.bool()?;
        let expires_at = self.opt(Reader::u64)?.map(epoch_ms_to_instant);
        let payload_is_utf8 = self.bool()?;
        let content_type = self.opt(Reader::string)?;
        let response_topic = self.opt(Reader::string)?;
        let correlation_data = self.opt(Reader::owned_bytes)?;
        let n = self.count(8)?;
        let mut user_properties = Vec::with_capacity(n);
        for _ in 0..n {
            user_properties.push((self.string()?, self.string()?));
        }
        let amqp = self.opt(Reader::amqp)?.map(Box::new);
        let client_id = self.opt(Reader::string)?.map(Into::into);
        Ok(Message {
            exchange: exchange.into(),
            topic,
            body,
            qos,
            retain,
            expires_at,
            properties: Properties {
                payload_is_utf8,
                content_type,
                response_topic,
                correlation_data,
                user_properties,
                amqp,
            },
            origin: Origin { client_id },
        })
    }

    fn amqp(&mut self) -> R<AmqpProperties> {
        let content_encoding = self.opt(Reader::owned_bytes)?;
        let headers = self.opt(Reader::headers)?;
        let delivery_mode = self.opt(Reader::u8)?;
        let priority = self.opt(Reader::u8)?;
        let correlation_id = self.opt(Reader::owned_bytes)?;
        let reply_to = self.opt(Reader::owned_bytes)?;
        let expiration = self.opt(Reader::owned_bytes)?;
        let message_id = self.opt(Reader::owned_bytes)?;
        let timestamp = self.opt(Reader::u64)?;
        let kind = self.opt(Reader::owned_bytes)?;
        let user_id = self.opt(Reader::owned_bytes)?;
        let app_id = self.opt(Reader::owned_bytes)?;
        let cluster_id = self.opt(Reader::owned_bytes)?;
        Ok(AmqpProperties {
            content_encoding,
            headers,
            delivery_mode,
            priority,
            correlation_id,
            reply_to,
            expiration,
            message_id,
            timestamp,
            kind,
            user_id,
            app_id,
            cluster_id,
        })
    }
}

/// The wall-clock time of `t`, in milliseconds since the epoch.
fn instant_to_epoch_ms(t: Instant) -> u64 {
    let now = Instant::now();
    let wall = SystemTime::now();
    let at = if t >= now {
        wall + (t - now)
    } else {
        wall - (now - t)
    };
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The instant of a wall-clock time (a time already past is "now minus the difference", so an
/// expired message stays expired).
fn epoch_ms_to_instant(ms: u64) -> Instant {
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    let now = Instant::now();
    match at.duration_since(SystemTime::now()) {
        Ok(ahead) => now + ahead,
        Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        let mut headers = Headers::new();
        headers.0.push(("n".into(), HeaderValue::I64(-5)));
        headers.0.push((
            "nested".into(),
            HeaderValue::Array(vec![
                HeaderValue::LongString(Bytes::from_static(b"s")),
                HeaderValue::Table(Headers(vec![("d".into(), HeaderValue::F64(1.5))])),
                HeaderValue::Decimal { scale: 2, value: 7 },
                HeaderValue::Void,
            ]),
        ));
        Message {
            exchange: "x".into(),
            topic: "a/b".into(),
            body: Bytes::from_static(b"body"),
            qos: 1,
            retain: false,
            expires_at: Some(Instant::now() + Duration::from_secs(60)),
            properties: Properties {
                payload_is_utf8: true,
                content_type: Some("text/plain".into()),
                response_topic: None,
                correlation_data: Some(Bytes::from_static(b"c")),
                user_properties: vec![("k".into(), "v".into())],
                amqp: Some(Box::new(AmqpProperties {
                    headers: Some(headers),
                    delivery_mode: Some(2),
                    priority: Some(3),
                    message_id: Some(Bytes::from_static(b"m1")),
                    timestamp: Some(42),
                    ..AmqpProperties::default()
                })),
            },
            origin: Origin {
                client_id: Some("c1".into()),
            },
        }
    }

    #[test]
    fn a_message_round_trips() {
        let m = sample();
        let mut buf = Vec::new();
        Writer(&mut buf).message(&m);
        let mut r = Reader::new(&buf);
        let back = r.message().expect("decodes");
        assert!(r.is_empty());
        assert_eq!(back.exchange, m.exchange);
        assert_eq!(back.topic, m.topic);
        assert_eq!(back.body, m.body);
        assert_eq!(back.properties, m.properties);
        assert_eq!(back.origin.client_id, m.origin.client_id);
        let left = back
            .expires_at
            .expect("expiry")
            .duration_since(Instant::now());
        assert!(left > Duration::from_secs(58) && left <= Duration::from_secs(61));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        Writer(&mut buf).message(&sample());
        for cut in 0..buf.len() {
            assert!(Reader::new(&buf[..cut]).message().is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn absurd_counts_do_not_allocate() {
        let mut buf = Vec::new();
        Writer(&mut buf).u32(u32::MAX);
        assert!(Reader::new(&buf).headers().is_err());
    }
}
