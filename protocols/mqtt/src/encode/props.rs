//! MQTT 5.0 property encoding (section 2.2.2): size first (validating lengths, no allocation),
//! then writing in identifier order. Writes whatever properties are set; which ones a packet
//! may carry is the caller's business (the decoder on the other side enforces it).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::EncodeError;
use crate::properties::Properties;

use super::{binary_len, put_binary, put_str, put_var_int, str_len, var_int_len, MAX_VAR_INT};

/// Bytes of the properties themselves (without the Property Length prefix). 0 iff empty: every
/// property takes at least two bytes.
pub(crate) fn properties_len(p: &Properties) -> Result<usize, EncodeError> {
    let mut len = 0;
    len += opt(&p.payload_format_indicator, 1);
    len += opt(&p.message_expiry_interval, 4);
    len += opt_str(&p.content_type, "content type")?;
    len += opt_str(&p.response_topic, "response topic")?;
    len += opt_bin(&p.correlation_data, "correlation data")?;
    for &sid in &p.subscription_identifiers {
        if sid == 0 || sid > MAX_VAR_INT {
            return Err(EncodeError::InvalidValue(
                "subscription identifier outside 1..=268435455",
            ));
        }
        len += 1 + var_int_len(sid as usize);
    }
    len += opt(&p.session_expiry_interval, 4);
    len += opt_str(&p.assigned_client_identifier, "assigned client identifier")?;
    len += opt(&p.server_keep_alive, 2);
    len += opt_str(&p.authentication_method, "authentication method")?;
    len += opt_bin(&p.authentication_data, "authentication data")?;
    len += opt(&p.request_problem_information, 1);
    len += opt(&p.will_delay_interval, 4);
    len += opt(&p.request_response_information, 1);
    len += opt_str(&p.response_information, "response information")?;
    len += opt_str(&p.server_reference, "server reference")?;
    len += opt_str(&p.reason_string, "reason string")?;
    len += opt(&p.receive_maximum, 2);
    len += opt(&p.topic_alias_maximum, 2);
    len += opt(&p.topic_alias, 2);
    len += opt(&p.maximum_qos, 1);
    len += opt(&p.retain_available, 1);
    for (k, v) in &p.user_properties {
        len += 1 + str_len(k, "user property name")? + str_len(v, "user property value")?;
    }
    len += opt(&p.maximum_packet_size, 4);
    len += opt(&p.wildcard_subscription_available, 1);
    len += opt(&p.subscription_identifier_available, 1);
    len += opt(&p.shared_subscription_available, 1);
    Ok(len)
}

/// Size of a property section: its Property Length prefix plus `len` bytes of properties.
pub(crate) fn section_len(len: usize) -> usize {
    var_int_len(len) + len
}

/// Writes the Property Length `len` (from `properties_len`) and then the properties.
pub(crate) fn put_properties(out: &mut BytesMut, p: &Properties, len: usize) {
    put_var_int(out, len);
    if len == 0 {
        return;
    }
    put_u8_prop(out, 0x01, p.payload_format_indicator);
    if let Some(v) = p.message_expiry_interval {
        out.put_u8(0x02);
        out.put_u32(v);
    }
    put_str_prop(out, 0x03, &p.content_type);
    put_str_prop(out, 0x08, &p.response_topic);
    put_bin_prop(out, 0x09, &p.correlation_data);
    for &sid in &p.subscription_identifiers {
        out.put_u8(0x0B);
        put_var_int(out, sid as usize);
    }
    if let Some(v) = p.session_expiry_interval {
        out.put_u8(0x11);
        out.put_u32(v);
    }
    put_str_prop(out, 0x12, &p.assigned_client_identifier);
    put_u16_prop(out, 0x13, p.server_keep_alive);
    put_str_prop(out, 0x15, &p.authentication_method);
    put_bin_prop(out, 0x16, &p.authentication_data);
    put_u8_prop(out, 0x17, p.request_problem_information);
    if let Some(v) = p.will_delay_interval {
        out.put_u8(0x18);
        out.put_u32(v);
    }
    put_u8_prop(out, 0x19, p.request_response_information);
    put_str_prop(out, 0x1A, &p.response_information);
    put_str_prop(out, 0x1C, &p.server_reference);
    put_str_prop(out, 0x1F, &p.reason_string);
    put_u16_prop(out, 0x21, p.receive_maximum);
    put_u16_prop(out, 0x22, p.topic_alias_maximum);
    put_u16_prop(out, 0x23, p.topic_alias);
    put_u8_prop(out, 0x24, p.maximum_qos);
    put_u8_prop(out, 0x25, p.retain_available);
    for (k, v) in &p.user_properties {
        out.put_u8(0x26);
        put_str(out, k);
        put_str(out, v);
    }
    if let Some(v) = p.maximum_packet_size {
        out.put_u8(0x27);
        out.put_u32(v);
    }
    put_u8_prop(out, 0x28, p.wildcard_subscription_available);
    put_u8_prop(out, 0x29, p.subscription_identifier_available);
    put_u8_prop(out, 0x2A, p.shared_subscription_available);
}

fn opt<T>(v: &Option<T>, size: usize) -> usize {
    if v.is_some() {
        1 + size
    } else {
        0
    }
}

fn opt_str(v: &Option<String>, field: &'static str) -> Result<usize, EncodeError> {
    match v {
        Some(s) => Ok(1 + str_len(s, field)?),
        None => Ok(0),
    }
}

fn opt_bin(v: &Option<Bytes>, field: &'static str) -> Result<usize, EncodeError> {
    match v {
        Some(b) => Ok(1 + binary_len(b, field)?),
        None => Ok(0),
    }
}

fn put_u8_prop(out: &mut BytesMut, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        out.put_u8(id);
        out.put_u8(v);
    }
}

fn put_u16_prop(out: &mut BytesMut, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        out.put_u8(id);
        out.put_u16(v);
    }
}

fn put_str_prop(out: &mut BytesMut, id: u8, v: &Option<String>) {
    if let Some(s) = v {
        out.put_u8(id);
        put_str(out, s);
    }
}

fn put_bin_prop(out: &mut BytesMut, id: u8, v: &Option<Bytes>) {
    if let Some(b) = v {
        out.put_u8(id);
        put_binary(out, b);
    }
}
