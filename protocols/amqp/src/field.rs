//! Field tables and arrays (spec 4.2.5.5) with RabbitMQ's set of value types, which is what
//! clients actually send: see RabbitMQ's "AMQP 0-9-1 errata" — notably `s` is a signed 16-bit
//! integer there, not the spec's short string, and `u`, `x`, `A`, `V` are extensions.
//!
//! Tables keep the order and duplicates of the wire (a `Vec`, not a map) so re-encoding is
//! faithful. Decoding is recursive but depth-limited (`MAX_TABLE_DEPTH`), checks every declared
//! length against the bytes left before slicing, and grows vectors only as entries are actually
//! parsed, so a forged length cannot make it allocate.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{EncodeError, SyntaxError};
use crate::reader::Reader;
use crate::short_string::ShortString;
use crate::writer;

/// How deeply tables and arrays may nest, counting the outermost table as 1. Real headers nest
/// two or three levels; the bound keeps recursion (decode, encode, drop) far from the stack limit.
pub const MAX_TABLE_DEPTH: usize = 32;

/// A `D` decimal: `value` × 10^−`scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    /// Number of decimal digits after the point.
    pub scale: u8,
    /// The unscaled value.
    pub value: u32,
}

/// One value in a field table or array. The variant comments give the type octet.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`: boolean (any non-zero octet decodes as true).
    Bool(bool),
    /// `b`: signed 8-bit.
    I8(i8),
    /// `B`: unsigned 8-bit.
    U8(u8),
    /// `s`: signed 16-bit (RabbitMQ; the 0-9-1 spec text says short string).
    I16(i16),
    /// `u`: unsigned 16-bit.
    U16(u16),
    /// `I`: signed 32-bit.
    I32(i32),
    /// `i`: unsigned 32-bit.
    U32(u32),
    /// `l`: signed 64-bit. `L` decodes here too: RabbitMQ reads both as signed 64-bit.
    I64(i64),
    /// `f`: IEEE-754 single.
    F32(f32),
    /// `d`: IEEE-754 double.
    F64(f64),
    /// `D`: decimal.
    Decimal(Decimal),
    /// `S`: long string (octets, zero-copy).
    LongString(Bytes),
    /// `x`: byte array (octets, zero-copy).
    ByteArray(Bytes),
    /// `A`: array of values.
    Array(Vec<FieldValue>),
    /// `T`: timestamp, seconds since the epoch.
    Timestamp(u64),
    /// `F`: nested table.
    Table(FieldTable),
    /// `V`: no value.
    Void,
}

impl FieldValue {
    /// The type octet this value is written with.
    pub fn type_octet(&self) -> u8 {
        match self {
            FieldValue::Bool(_) => b't',
            FieldValue::I8(_) => b'b',
            FieldValue::U8(_) => b'B',
            FieldValue::I16(_) => b's',
            FieldValue::U16(_) => b'u',
            FieldValue::I32(_) => b'I',
            FieldValue::U32(_) => b'i',
            FieldValue::I64(_) => b'l',
            FieldValue::F32(_) => b'f',
            FieldValue::F64(_) => b'd',
            FieldValue::Decimal(_) => b'D',
            FieldValue::LongString(_) => b'S',
            FieldValue::ByteArray(_) => b'x',
            FieldValue::Array(_) => b'A',
            FieldValue::Timestamp(_) => b'T',
            FieldValue::Table(_) => b'F',
            FieldValue::Void => b'V',
        }
    }

    /// Any integer type (and timestamps) widened to i64; `None` for other types and for
    /// timestamps above `i64::MAX`. Clients pick integer widths freely (`x-message-ttl` arrives
    /// as `I`, `l` or `s` depending on the library), so arguments are best read through this.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::I8(v) => Some(v.into()),
            FieldValue::U8(v) => Some(v.into()),
            FieldValue::I16(v) => Some(v.into()),
            FieldValue::U16(v) => Some(v.into()),
            FieldValue::I32(v) => Some(v.into()),
            FieldValue::U32(v) => Some(v.into()),
            FieldValue::I64(v) => Some(v),
            FieldValue::Timestamp(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The boolean of a `t` value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            FieldValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The octets of an `S` or `x` value.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            FieldValue::LongString(b) | FieldValue::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// The table of an `F` value.
    pub fn as_table(&self) -> Option<&FieldTable> {
        match self {
            FieldValue::Table(t) => Some(t),
            _ => None,
        }
    }

    /// The values of an `A` value.
    pub fn as_array(&self) -> Option<&[FieldValue]> {
        match self {
            FieldValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Bytes this value takes on the wire, type octet included.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            FieldValue::Bool(_) | FieldValue::I8(_) | FieldValue::U8(_) => 1,
            FieldValue::I16(_) | FieldValue::U16(_) => 2,
            FieldValue::I32(_) | FieldValue::U32(_) | FieldValue::F32(_) => 4,
            FieldValue::I64(_) | FieldValue::F64(_) | FieldValue::Timestamp(_) => 8,
            FieldValue::Decimal(_) => 5,
            FieldValue::LongString(b) | FieldValue::ByteArray(b) => 4 + b.len(),
            FieldValue::Array(a) => 4 + a.iter().map(FieldValue::encoded_len).sum::<usize>(),
            FieldValue::Table(t) => t.encoded_len(),
            FieldValue::Void => 0,
        }
    }
}

/// A field table: ordered `(name, value)` pairs as they appear on the wire. Duplicate names are
/// kept; lookups return the first, as RabbitMQ's `table_lookup` does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldTable(Vec<(ShortString, FieldValue)>);

impl FieldTable {
    /// An empty table (no allocation).
    pub const fn new() -> FieldTable {
        FieldTable(Vec::new())
    }

    /// The first value named `name`.
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&FieldValue> {
        let name = name.as_ref();
        self.0
            .iter()
            .find(|(k, _)| k.as_bytes() == name)
            .map(|(_, v)| v)
    }

    /// The first value named `name`, mutably.
    pub fn get_mut(&mut self, name: impl AsRef<[u8]>) -> Option<&mut FieldValue> {
        let name = name.as_ref();
        self.0
            .iter_mut()
            .find(|(k, _)| k.as_bytes() == name)
            .map(|(_, v)| v)
    }

    /// True if an entry is named `name`.
    pub fn contains_key(&self, name: impl AsRef<[u8]>) -> bool {
        self.get(name).is_some()
    }

    /// Replaces the first entry named `name` and returns its old value, or appends a new entry.
    pub fn insert(&mut self, name: ShortString, value: FieldValue) -> Option<FieldValue> {
        match self.get_mut(name.as_bytes()) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.0.push((name, value));
                None
            }
        }
    }

    /// Appends an entry without looking for an existing one (keeps duplicates).
    pub fn push(&mut self, name: ShortString, value: FieldValue) {
        self.0.push((name, value));
    }

    /// Removes the first entry named `name` and returns its value.
    pub fn remove(&mut self, name: impl AsRef<[u8]>) -> Option<FieldValue> {
        let name = name.as_ref();
        let at = self.0.iter().position(|(k, _)| k.as_bytes() == name)?;
        Some(self.0.remove(at).1)
    }

    /// Entries in wire order.
    pub fn iter(&self) -> std::slice::Iter<'_, (ShortString, FieldValue)> {
        self.0.iter()
    }

    /// The entries as a slice.
    pub fn as_slice(&self) -> &[(ShortString, FieldValue)] {
        &self.0
    }

    /// The entries as a vector.
    pub fn into_vec(self) -> Vec<(ShortString, FieldValue)> {
        self.0
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes this table takes on the wire, its 32-bit length prefix included.
    pub fn encoded_len(&self) -> usize {
        4 + self
            .0
            .iter()
            .map(|(k, v)| 1 + k.len() + v.encoded_len())
            .sum::<usize>()
    }
}

impl From<Vec<(ShortString, FieldValue)>> for FieldTable {
    fn from(entries: Vec<(ShortString, FieldValue)>) -> FieldTable {
        FieldTable(entries)
    }
}

impl FromIterator<(ShortString, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (ShortString, FieldValue)>>(iter: I) -> FieldTable {
        FieldTable(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a FieldTable {
    type Item = &'a (ShortString, FieldValue);
    type IntoIter = std::slice::Iter<'a, (ShortString, FieldValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for FieldTable {
    type Item = (ShortString, FieldValue);
    type IntoIter = std::vec::IntoIter<(ShortString, FieldValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FieldTable {
    /// Decodes the entries of a table whose bytes stand alone, without the 32-bit length
    /// prefix: the SASL AMQPLAIN response of connection.start-ok is encoded that way.
    pub fn decode_entries(bytes: Bytes) -> Result<FieldTable, SyntaxError> {
        let mut body = Reader::new(bytes);
        let mut entries = Vec::new();
        while !body.is_empty() {
            let name = body.short_string()?;
            let value = read_value(&mut body, 1)?;
            entries.push((name, value));
        }
        Ok(FieldTable(entries))
    }
}

/// Reads a table (32-bit length, then name/value pairs) at nesting level `depth`.
pub(crate) fn read_table(r: &mut Reader, depth: usize) -> Result<FieldTable, SyntaxError> {
    if depth > MAX_TABLE_DEPTH {
        return Err(SyntaxError::TableTooDeep);
    }
    let mut body = Reader::new(r.long_string()?);
    let mut entries = Vec::new();
    while !body.is_empty() {
        let name = body.short_string()?;
        let value = read_value(&mut body, depth)?;
        entries.push((name, value));
    }
    Ok(FieldTable(entries))
}

/// Reads an array (32-bit length, then values) at nesting level `depth`.
fn read_array(r: &mut Reader, depth: usize) -> Result<Vec<FieldValue>, SyntaxError> {
    if depth > MAX_TABLE_DEPTH {
        return Err(SyntaxError::TableTooDeep);
    }
    let mut body = Reader::new(r.long_string()?);
    let mut values = Vec::new();
    while !body.is_empty() {
        values.push(read_value(&mut body, depth)?);
    }
    Ok(values)
}

/// Reads a type octet and its value; nested tables and arrays go one level deeper.
fn read_value(r: &mut Reader, depth: usize) -> Result<FieldValue, SyntaxError> {
    let value = match r.u8()? {
        b't' => FieldValue::Bool(r.u8()? != 0),
        b'b' => FieldValue::I8(r.u8()? as i8),
        b'B' => FieldValue::U8(r.u8()?),
        b's' => FieldValue::I16(r.u16()? as i16),
        b'u' => FieldValue::U16(r.u16()?),
        b'I' => FieldValue::I32(r.u32()? as i32),
        b'i' => FieldValue::U32(r.u32()?),
        // RabbitMQ errata: `L` is read as signed 64-bit like `l`; we write `l`.
        b'l' | b'L' => FieldValue::I64(r.u64()? as i64),
        b'f' => FieldValue::F32(f32::from_bits(r.u32()?)),
        b'd' => FieldValue::F64(f64::from_bits(r.u64()?)),
        b'D' => FieldValue::Decimal(Decimal {
            scale: r.u8()?,
            value: r.u32()?,
        }),
        b'S' => FieldValue::LongString(r.long_string()?),
        b'x' => FieldValue::ByteArray(r.long_string()?),
        b'A' => FieldValue::Array(read_array(r, depth + 1)?),
        b'T' => FieldValue::Timestamp(r.u64()?),
        b'F' => FieldValue::Table(read_table(r, depth + 1)?),
        b'V' => FieldValue::Void,
        other => return Err(SyntaxError::UnknownFieldType(other)),
    };
    Ok(value)
}

/// Writes a table at nesting level `depth`, patching its length once the entries are written.
pub(crate) fn write_table(
    out: &mut BytesMut,
    t: &FieldTable,
    depth: usize,
) -> Result<(), EncodeError> {
    if depth > MAX_TABLE_DEPTH {
        return Err(EncodeError::TableTooDeep);
    }
    let at = writer::placeholder_u32(out);
    for (name, value) in &t.0 {
        writer::short_string(out, name);
        write_value(out, value, depth)?;
    }
    writer::patch_len(out, at, "field table")
}

fn write_array(out: &mut BytesMut, a: &[FieldValue], depth: usize) -> Result<(), EncodeError> {
    if depth > MAX_TABLE_DEPTH {
        return Err(EncodeError::TableTooDeep);
    }
    let at = writer::placeholder_u32(out);
    for value in a {
        write_value(out, value, depth)?;
    }
    writer::patch_len(out, at, "field array")
}

fn write_value(out: &mut BytesMut, v: &FieldValue, depth: usize) -> Result<(), EncodeError> {
    out.put_u8(v.type_octet());
    match v {
        FieldValue::Bool(b) => out.put_u8(u8::from(*b)),
        FieldValue::I8(x) => out.put_i8(*x),
        FieldValue::U8(x) => out.put_u8(*x),
        FieldValue::I16(x) => out.put_i16(*x),
        FieldValue::U16(x) => out.put_u16(*x),
        FieldValue::I32(x) => out.put_i32(*x),
        FieldValue::U32(x) => out.put_u32(*x),
        FieldValue::I64(x) => out.put_i64(*x),
        FieldValue::F32(x) => out.put_f32(*x),
        FieldValue::F64(x) => out.put_f64(*x),
        FieldValue::Decimal(d) => {
            out.put_u8(d.scale);
            out.put_u32(d.value);
        }
        FieldValue::LongString(b) | FieldValue::ByteArray(b) => writer::long_string(out, b)?,
        FieldValue::Array(a) => write_array(out, a, depth + 1)?,
        FieldValue::Timestamp(t) => out.put_u64(*t),
        FieldValue::Table(t) => write_table(out, t, depth + 1)?,
        FieldValue::Void => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &'static str) -> ShortString {
        ShortString::from_static(s)
    }

    #[test]
    fn lookup_helpers_follow_wire_order() {
        let mut t = FieldTable::new();
        t.push(name("a"), FieldValue::I16(-3));
        t.push(name("a"), FieldValue::Bool(true));
        t.push(name("b"), FieldValue::LongString(Bytes::from_static(b"x")));
        assert_eq!(t.get("a"), Some(&FieldValue::I16(-3)));
        assert_eq!(t.get("a").and_then(FieldValue::as_i64), Some(-3));
        assert_eq!(
            t.insert(name("a"), FieldValue::U8(1)),
            Some(FieldValue::I16(-3))
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t.remove("a"), Some(FieldValue::U8(1)));
        assert_eq!(t.get("a"), Some(&FieldValue::Bool(true)));
        assert!(t.contains_key(b"b"));
        assert_eq!(
            t.get("b").and_then(FieldValue::as_bytes).map(|b| &b[..]),
            Some(&b"x"[..])
        );
        assert_eq!(t.insert(name("c"), FieldValue::Void), None);
        let names: Vec<_> = t.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn encoded_len_matches_writer() {
        let mut inner = FieldTable::new();
        inner.push(
            name("d"),
            FieldValue::Decimal(Decimal { scale: 2, value: 5 }),
        );
        let t: FieldTable = vec![
            (
                name("arr"),
                FieldValue::Array(vec![FieldValue::Void, FieldValue::F64(1.5)]),
            ),
            (name("tbl"), FieldValue::Table(inner)),
            (
                name("x"),
                FieldValue::ByteArray(Bytes::from_static(b"\0\x01")),
            ),
        ]
        .into();
        let mut out = BytesMut::new();
        write_table(&mut out, &t, 1).unwrap();
        assert_eq!(out.len(), t.encoded_len());
        let mut r = Reader::new(out.freeze());
        assert_eq!(read_table(&mut r, 1), Ok(t));
    }

    #[test]
    fn depth_limit_on_encode() {
        let mut v = FieldValue::Void;
        for _ in 0..MAX_TABLE_DEPTH {
            v = FieldValue::Array(vec![v]);
        }
        let t: FieldTable = vec![(name("deep"), v)].into();
        assert_eq!(
            write_table(&mut BytesMut::new(), &t, 1),
            Err(EncodeError::TableTooDeep)
        );
    }
}

#[cfg(test)]
mod decode_entries_tests {
    use super::*;

    #[test]
    fn amqplain_response_decodes() {
        // LOGIN = "guest", PASSWORD = "guest", as pika sends them (no length prefix).
        let mut raw = Vec::new();
        for (k, v) in [("LOGIN", "guest"), ("PASSWORD", "guest")] {
            raw.push(k.len() as u8);
            raw.extend_from_slice(k.as_bytes());
            raw.push(b'S');
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        let t = FieldTable::decode_entries(Bytes::from(raw)).unwrap();
        assert_eq!(
            t.get("LOGIN").and_then(FieldValue::as_bytes).unwrap(),
            "guest"
        );
        assert!(FieldTable::decode_entries(Bytes::from_static(b"\x05LOG")).is_err());
    }
}
