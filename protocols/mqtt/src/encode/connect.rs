//! CONNECT and CONNACK layouts. CONNECT is written in the version its `protocol` field names;
//! CONNACK in the connection's version, with the v3 return-code mapping before 5.0.

use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
use crate::packet::{ConnAck, Connect, ProtocolVersion};

use super::props::{properties_len, put_properties, section_len};
use super::{binary_len, put_binary, put_str, str_len, Layout};

fn protocol_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V31 => "MQIsdp",
        ProtocolVersion::V311 | ProtocolVersion::V5 => "MQTT",
    }
}

pub(super) fn connect_layout(c: &Connect) -> Result<Layout, EncodeError> {
    let v5 = c.protocol.is_v5();
    if c.password.is_some() && c.username.is_none() && !v5 {
        // [MQTT-3.1.2-22]
        return Err(EncodeError::UnsupportedInVersion(
            "password without user name",
        ));
    }
    // Protocol name, level, flags, keep alive.
    let mut remaining = 2 + protocol_name(c.protocol).len() + 1 + 1 + 2;
    let mut layout = Layout::new(0);
    if v5 {
        let props = properties_len(&c.properties)?;
        remaining += section_len(props);
        layout.props = Some(props);
    }
    remaining += str_len(&c.client_id, "client identifier")?;
    if let Some(w) = &c.will {
        if v5 {
            let props = properties_len(&w.properties)?;
            remaining += section_len(props);
            layout.will_props = Some(props);
        }
        remaining += str_len(&w.topic, "will topic")?;
        remaining += binary_len(&w.payload, "will payload")?;
    }
    if let Some(u) = &c.username {
        remaining += str_len(u, "user name")?;
    }
    if let Some(p) = &c.password {
        remaining += binary_len(p, "password")?;
    }
    layout.remaining = remaining;
    Ok(layout)
}

pub(super) fn put_connect(c: &Connect, layout: &Layout, out: &mut BytesMut) {
    put_str(out, protocol_name(c.protocol));
    out.put_u8(c.protocol.level());
    let mut flags = 0u8;
    if c.clean_start {
        flags |= 0b0000_0010;
    }
    if let Some(w) = &c.will {
        flags |= 0b0000_0100 | ((w.qos as u8) << 3);
        if w.retain {
            flags |= 0b0010_0000;
        }
    }
    if c.password.is_some() {
        flags |= 0b0100_0000;
    }
    if c.username.is_some() {
        flags |= 0b1000_0000;
    }
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    if let Some(len) = layout.props {
        put_properties(out, &c.properties, len);
    }
    put_str(out, &c.client_id);
    if let Some(w) = &c.will {
        if let Some(len) = layout.will_props {
            put_properties(out, &w.properties, len);
        }
        put_str(out, &w.topic);
        put_binary(out, &w.payload);
    }
    if let Some(u) = &c.username {
        put_str(out, u);
    }
    if let Some(p) = &c.password {
        put_binary(out, p);
    }
}

/// 5.0 always writes the Property Length, even when it is 0 (`20 03 00 00 00`).
pub(super) fn connack_layout(c: &ConnAck, v5: bool) -> Result<Layout, EncodeError> {
    let mut layout = Layout::new(2);
    if v5 {
        let props = properties_len(&c.properties)?;
        layout.remaining += section_len(props);
        layout.props = Some(props);
    }
    Ok(layout)
}

pub(super) fn put_connack(
    c: &ConnAck,
    version: ProtocolVersion,
    layout: &Layout,
    out: &mut BytesMut,
) {
    // MQTT 3.1 has no Session Present flag; its first byte is unused.
    let session_present = c.session_present && version != ProtocolVersion::V31;
    out.put_u8(u8::from(session_present));
    if version.is_v5() {
        out.put_u8(c.code.0);
    } else {
        out.put_u8(c.code.to_v3_connack());
    }
    if let Some(len) = layout.props {
        put_properties(out, &c.properties, len);
    }
}
