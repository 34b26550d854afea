//! Header tables as the core holds them: a protocol-neutral mirror of AMQP 0-9-1 field tables
//! (with RabbitMQ's value types), used for AMQP message headers, binding arguments, and queue and
//! exchange arguments. The AMQP adapter converts to and from its codec's types; nothing here
//! knows a wire format.
//!
//! Two notions of equality: `==` is structural (same variant, same value: what makes two
//! bindings' arguments identical), while [`HeaderValue::matches`] is RabbitMQ's comparison for the
//! headers exchange and argument equivalence, where all integer types form one class compared by
//! value (`I8(1)` matches `I64(1)`) but a string never matches a number (`"1"` vs `1`).

use std::fmt::Write as _;

use bytes::Bytes;

/// An ordered table: wire order and duplicate names are kept, lookups see the first entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(pub Vec<(String, HeaderValue)>);

/// One value of a header table; the variant comments give the AMQP type octet.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    /// `t`: boolean.
    Bool(bool),
    /// `b`: signed 8-bit.
    I8(i8),
    /// `B`: unsigned 8-bit.
    U8(u8),
    /// `s`: signed 16-bit (RabbitMQ errata).
    I16(i16),
    /// `u`: unsigned 16-bit.
    U16(u16),
    /// `I`: signed 32-bit.
    I32(i32),
    /// `i`: unsigned 32-bit.
    U32(u32),
    /// `l`: signed 64-bit.
    I64(i64),
    /// `f`: IEEE-754 single.
    F32(f32),
    /// `d`: IEEE-754 double.
    F64(f64),
    /// `D`: `value` × 10^−`scale`.
    Decimal {
        /// Digits after the point.
        scale: u8,
        /// The unscaled value.
        value: u32,
    },
    /// `S`: long string (octets; usually, not necessarily, UTF-8).
    LongString(Bytes),
    /// `x`: byte array.
    ByteArray(Bytes),
    /// `A`: array.
    Array(Vec<HeaderValue>),
    /// `T`: timestamp, seconds since the epoch.
    Timestamp(u64),
    /// `F`: nested table.
    Table(Headers),
    /// `V`: no value.
    Void,
}

impl Headers {
    /// An empty table (no allocation).
    pub const fn new() -> Headers {
        Headers(Vec::new())
    }

    /// A shared empty table, for calls that take `&Headers` and have no arguments.
    pub fn empty() -> &'static Headers {
        static EMPTY: Headers = Headers::new();
        &EMPTY
    }

    /// The first value named `name`.
    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// True if some entry is named `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends an entry (duplicates are kept).
    pub fn push(&mut self, name: impl Into<String>, value: HeaderValue) {
        self.0.push((name.into(), value));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in order.
    pub fn iter(&self) -> std::slice::Iter<'_, (String, HeaderValue)> {
        self.0.iter()
    }
}

impl From<Vec<(String, HeaderValue)>> for Headers {
    fn from(entries: Vec<(String, HeaderValue)>) -> Headers {
        Headers(entries)
    }
}

impl<K: Into<String>> FromIterator<(K, HeaderValue)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, HeaderValue)>>(iter: I) -> Headers {
        Headers(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a (String, HeaderValue);
    type IntoIter = std::slice::Iter<'a, (String, HeaderValue)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl HeaderValue {
    /// A long string from text.
    pub fn string(text: &str) -> HeaderValue {
        HeaderValue::LongString(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// The value of any integer type (`b B s u I i l`); `None` for everything else, including
    /// decimals and timestamps (RabbitMQ's integer argument types).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            HeaderValue::I8(v) => Some(v.into()),
            HeaderValue::U8(v) => Some(v.into()),
            HeaderValue::I16(v) => Some(v.into()),
            HeaderValue::U16(v) => Some(v.into()),
            HeaderValue::I32(v) => Some(v.into()),
            HeaderValue::U32(v) => Some(v.into()),
            HeaderValue::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a float or double.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            HeaderValue::F32(v) => Some(v.into()),
            HeaderValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            HeaderValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The octets of a long string or byte array.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            HeaderValue::LongString(b) | HeaderValue::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// A long string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::LongString(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// RabbitMQ's name for the value's type, as it appears in its error texts.
    pub fn type_name(&self) -> &'static str {
        match self {
            HeaderValue::Bool(_) => "bool",
            HeaderValue::I8(_) => "byte",
            HeaderValue::U8(_) => "unsignedbyte",
            HeaderValue::I16(_) => "short",
            HeaderValue::U16(_) => "unsignedshort",
            HeaderValue::I32(_) => "signedint",
            HeaderValue::U32(_) => "unsignedint",
            HeaderValue::I64(_) => "long",
            HeaderValue::F32(_) => "float",
            HeaderValue::F64(_) => "double",
            HeaderValue::Decimal { .. } => "decimal",
            HeaderValue::LongString(_) => "longstr",
            HeaderValue::ByteArray(_) => "binary",
            HeaderValue::Array(_) => "array",
            HeaderValue::Timestamp(_) => "timestamp",
            HeaderValue::Table(_) => "table",
            HeaderValue::Void => "void",
        }
    }

    /// RabbitMQ's value comparison (headers exchange, argument equivalence): values of the same
    /// type class with equal values. Integer types are one class compared by value, `f`/`d` are
    /// one class compared as doubles; every other type matches only itself, structurally.
    pub fn matches(&self, other: &HeaderValue) -> bool {
        if let (Some(a), Some(b)) = (self.as_i64(), other.as_i64()) {
            return a == b;
        }
        if let (Some(a), Some(b)) = (self.as_f64(), other.as_f64()) {
            return a == b;
        }
        self == other
    }

    /// The value as RabbitMQ prints it in error texts (strings as text, numbers in decimal).
    pub fn display(&self) -> String {
        let mut out = String::new();
        self.write_display(&mut out);
        out
    }

    fn write_display(&self, out: &mut String) {
        if let Some(i) = self.as_i64() {
            let _ = write!(out, "{i}");
            return;
        }
        let _ = match self {
            HeaderValue::Bool(b) => write!(out, "{b}"),
            HeaderValue::F32(v) => write!(out, "{v}"),
            HeaderValue::F64(v) => write!(out, "{v}"),
            HeaderValue::Decimal { scale, value } => write!(out, "{{{scale},{value}}}"),
            HeaderValue::LongString(b) | HeaderValue::ByteArray(b) => {
                out.push_str(&String::from_utf8_lossy(b));
                Ok(())
            }
            HeaderValue::Timestamp(t) => write!(out, "{t}"),
            HeaderValue::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_display(out);
                }
                out.push(']');
                Ok(())
            }
            HeaderValue::Table(t) => {
                out.push('[');
                for (i, (k, v)) in t.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{{{k},");
                    v.write_display(out);
                    out.push('}');
                }
                out.push(']');
                Ok(())
            }
            HeaderValue::Void => write!(out, "undefined"),
            _ => Ok(()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_match_across_types_strings_do_not_match_numbers() {
        assert!(HeaderValue::I8(1).matches(&HeaderValue::I64(1)));
        assert!(HeaderValue::U32(7).matches(&HeaderValue::I16(7)));
        assert!(!HeaderValue::I32(1).matches(&HeaderValue::I32(2)));
        assert!(!HeaderValue::string("1").matches(&HeaderValue::I32(1)));
        assert!(!HeaderValue::I32(1).matches(&HeaderValue::F64(1.0)));
        assert!(HeaderValue::F32(0.5).matches(&HeaderValue::F64(0.5)));
        assert!(!HeaderValue::string("a").matches(&HeaderValue::ByteArray(Bytes::from("a"))));
        assert!(!HeaderValue::Decimal { scale: 0, value: 1 }.matches(&HeaderValue::I32(1)));
        assert!(!HeaderValue::Timestamp(1).matches(&HeaderValue::I64(1)));
        // Structural equality keeps the type.
        assert_ne!(HeaderValue::I8(1), HeaderValue::I64(1));
    }

    #[test]
    fn tables_keep_order_and_duplicates() {
        let mut h = Headers::new();
        h.push("a", HeaderValue::I32(1));
        h.push("a", HeaderValue::I32(2));
        assert_eq!(h.len(), 2);
        assert_eq!(h.get("a"), Some(&HeaderValue::I32(1)));
        assert_eq!(h.get("b"), None);
        assert!(Headers::empty().is_empty());
    }

    #[test]
    fn accessors_and_display() {
        assert_eq!(HeaderValue::U16(9).as_i64(), Some(9));
        assert_eq!(HeaderValue::Timestamp(9).as_i64(), None);
        assert_eq!(HeaderValue::string("x").as_str(), Some("x"));
        assert_eq!(
            HeaderValue::ByteArray(Bytes::from_static(b"x")).as_str(),
            None
        );
        assert_eq!(HeaderValue::I64(-3).display(), "-3");
        assert_eq!(HeaderValue::string("lazy").display(), "lazy");
        assert_eq!(HeaderValue::I64(1).type_name(), "long");
        assert_eq!(HeaderValue::I32(1).type_name(), "signedint");
    }
}
