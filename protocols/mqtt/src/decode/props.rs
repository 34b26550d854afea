//! MQTT 5.0 property decoding (section 2.2.2). Knows which properties each packet may carry:
//! an identifier not valid for the packet is Malformed [2.2.2.2], a second copy of a
//! single-valued property and an out-of-range value are Protocol Errors.

use crate::error::DecodeError;
use crate::properties::Properties;
use crate::topic::check_topic_name;

use super::reader::Reader;

/// Which property set is being read; each allows different identifiers (5.0 table 2-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PropCtx {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    PubResponse,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// Reads a Property Length followed by that many bytes of properties.
pub(crate) fn read_properties(r: &mut Reader, ctx: PropCtx) -> Result<Properties, DecodeError> {
    let len = r.var_int()? as usize;
    if len > r.remaining() {
        return Err(DecodeError::Malformed("property length exceeds the packet"));
    }
    let mut pr = Reader::new(r.take(len)?);
    let mut p = Properties::default();
    while !pr.is_empty() {
        let id = pr.var_int()?;
        if !allowed(ctx, id) {
            return Err(DecodeError::Malformed("property not valid for this packet"));
        }
        read_one(&mut pr, id, ctx, &mut p)?;
    }
    check_combinations(&p)?;
    Ok(p)
}

fn read_one(r: &mut Reader, id: u32, ctx: PropCtx, p: &mut Properties) -> Result<(), DecodeError> {
    match id {
        0x01 => set(&mut p.payload_format_indicator, flag(r.u8()?)?),
        0x02 => set(&mut p.message_expiry_interval, r.u32()?),
        0x03 => set(&mut p.content_type, r.string()?),
        0x08 => {
            let topic = r.string()?;
            // [MQTT-3.3.2-14]: the Response Topic is a topic name, so no wildcards.
            check_topic_name(&topic)
                .map_err(|_| DecodeError::ProtocolError("response topic is not a topic name"))?;
            set(&mut p.response_topic, topic)
        }
        0x09 => set(&mut p.correlation_data, r.binary()?),
        0x0B => {
            let sid = r.var_int()?;
            if sid == 0 {
                return Err(DecodeError::ProtocolError("subscription identifier 0"));
            }
            // SUBSCRIBE carries at most one; a forwarded PUBLISH one per matching subscription.
            if ctx == PropCtx::Subscribe && !p.subscription_identifiers.is_empty() {
                return Err(DUPLICATE);
            }
            p.subscription_identifiers.push(sid);
            Ok(())
        }
        0x11 => set(&mut p.session_expiry_interval, r.u32()?),
        0x12 => set(&mut p.assigned_client_identifier, r.string()?),
        0x13 => set(&mut p.server_keep_alive, r.u16()?),
        0x15 => set(&mut p.authentication_method, r.string()?),
        0x16 => set(&mut p.authentication_data, r.binary()?),
        0x17 => set(&mut p.request_problem_information, flag(r.u8()?)?),
        0x18 => set(&mut p.will_delay_interval, r.u32()?),
        0x19 => set(&mut p.request_response_information, flag(r.u8()?)?),
        0x1A => set(&mut p.response_information, r.string()?),
        0x1C => set(&mut p.server_reference, r.string()?),
        0x1F => set(&mut p.reason_string, r.string()?),
        0x21 => set(
            &mut p.receive_maximum,
            non_zero(r.u16()?, "receive maximum 0")?,
        ),
        0x22 => set(&mut p.topic_alias_maximum, r.u16()?),
        0x23 => {
            let alias = r.u16()?;
            if alias == 0 {
                return Err(DecodeError::TopicAliasInvalid);
            }
            set(&mut p.topic_alias, alias)
        }
        0x24 => set(&mut p.maximum_qos, flag(r.u8()?)?),
        0x25 => set(&mut p.retain_available, flag(r.u8()?)?),
        0x26 => {
            let key = r.string()?;
            let value = r.string()?;
            p.user_properties.push((key, value));
            Ok(())
        }
        0x27 => set(
            &mut p.maximum_packet_size,
            non_zero(r.u32()?, "maximum packet size 0")?,
        ),
        0x28 => set(&mut p.wildcard_subscription_available, flag(r.u8()?)?),
        0x29 => set(&mut p.subscription_identifier_available, flag(r.u8()?)?),
        0x2A => set(&mut p.shared_subscription_available, flag(r.u8()?)?),
        // `allowed` has already rejected every other identifier.
        _ => Err(DecodeError::Malformed("unknown property identifier")),
    }
}

const DUPLICATE: DecodeError = DecodeError::ProtocolError("property included more than once");

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DUPLICATE);
    }
    *slot = Some(value);
    Ok(())
}

/// Byte properties that are booleans on the wire: any value but 0 or 1 is a Protocol Error.
fn flag(v: u8) -> Result<u8, DecodeError> {
    if v > 1 {
        return Err(DecodeError::ProtocolError(
            "property value other than 0 or 1",
        ));
    }
    Ok(v)
}

fn non_zero<T: Default + PartialEq>(v: T, what: &'static str) -> Result<T, DecodeError> {
    if v == T::default() {
        return Err(DecodeError::ProtocolError(what));
    }
    Ok(v)
}

/// Rules spanning several properties.
fn check_combinations(p: &Properties) -> Result<(), DecodeError> {
    // 5.0 3.1.2.11.10 / 3.2.2.3.18 / 3.15.2.2.3: data without a method is a Protocol Error.
    if p.authentication_data.is_some() && p.authentication_method.is_none() {
        return Err(DecodeError::ProtocolError(
            "authentication data without authentication method",
        ));
    }
    Ok(())
}

/// Whether property `id` may appear in `ctx` (5.0 table 2-4). User Property is valid everywhere.
fn allowed(ctx: PropCtx, id: u32) -> bool {
    use PropCtx::*;
    match id {
        0x26 => true,
        0x01 | 0x02 | 0x03 | 0x08 | 0x09 => matches!(ctx, Publish | Will),
        0x0B => matches!(ctx, Publish | Subscribe),
        0x11 => matches!(ctx, Connect | ConnAck | Disconnect),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => ctx == ConnAck,
        0x15 | 0x16 => matches!(ctx, Connect | ConnAck | Auth),
        0x17 | 0x19 => ctx == Connect,
        0x18 => ctx == Will,
        0x1C => matches!(ctx, ConnAck | Disconnect),
        0x1F => matches!(
            ctx,
            ConnAck | PubResponse | SubAck | UnsubAck | Disconnect | Auth
        ),
        0x21 | 0x22 | 0x27 => matches!(ctx, Connect | ConnAck),
        0x23 => ctx == Publish,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn props(bytes: &'static [u8], ctx: PropCtx) -> Result<Properties, DecodeError> {
        let mut r = Reader::new(Bytes::from_static(bytes));
        let p = read_properties(&mut r, ctx)?;
        r.finish()?;
        Ok(p)
    }

    #[test]
    fn reads_and_checks_properties() {
        let p = props(b"\x05\x01\x01\x23\x00\x07", PropCtx::Publish).unwrap();
        assert_eq!(p.payload_format_indicator, Some(1));
        assert_eq!(p.topic_alias, Some(7));
        // Several subscription identifiers in PUBLISH, only one in SUBSCRIBE.
        let p = props(b"\x04\x0B\x01\x0B\x02", PropCtx::Publish).unwrap();
        assert_eq!(p.subscription_identifiers, vec![1, 2]);
        assert_eq!(
            props(b"\x04\x0B\x01\x0B\x02", PropCtx::Subscribe),
            Err(DUPLICATE)
        );
        // Repeated user properties keep their order.
        let p = props(
            b"\x0D\x26\x00\x01k\x00\x01a\x26\x00\x01k\x00\x00",
            PropCtx::Auth,
        )
        .unwrap();
        assert_eq!(
            p.user_properties,
            vec![("k".into(), "a".into()), ("k".into(), "".into())]
        );
    }

    #[test]
    fn rejects_bad_properties() {
        use DecodeError::*;
        assert_eq!(
            props(b"\x04\x01\x00\x01\x01", PropCtx::Publish),
            Err(DUPLICATE)
        );
        assert!(matches!(
            props(b"\x02\x01\x02", PropCtx::Publish),
            Err(ProtocolError(_))
        ));
        assert!(matches!(
            props(b"\x03\x21\x00\x00", PropCtx::Connect),
            Err(ProtocolError(_))
        ));
        assert!(matches!(
            props(b"\x05\x27\0\0\0\0", PropCtx::Connect),
            Err(ProtocolError(_))
        ));
        assert_eq!(
            props(b"\x03\x23\x00\x00", PropCtx::Publish),
            Err(TopicAliasInvalid)
        );
        assert!(matches!(
            props(b"\x02\x0B\x00", PropCtx::Subscribe),
            Err(ProtocolError(_))
        ));
        assert!(matches!(
            props(b"\x02\x24\x02", PropCtx::ConnAck),
            Err(ProtocolError(_))
        ));
        // Not valid for the packet / unknown identifier.
        assert!(matches!(
            props(b"\x03\x23\x00\x01", PropCtx::Connect),
            Err(Malformed(_))
        ));
        assert!(matches!(
            props(b"\x02\x7F\x00", PropCtx::Connect),
            Err(Malformed(_))
        ));
        // Property length past the end, value past the property length.
        assert!(matches!(
            props(b"\x05\x01\x01", PropCtx::Publish),
            Err(Malformed(_))
        ));
        assert!(matches!(
            props(b"\x02\x13\x00\x01", PropCtx::ConnAck),
            Err(Malformed(_))
        ));
        assert!(matches!(
            props(b"\x04\x16\x00\x01x", PropCtx::Auth),
            Err(ProtocolError(_))
        ));
        assert!(matches!(
            props(b"\x04\x08\x00\x01#", PropCtx::Will),
            Err(ProtocolError(_))
        ));
    }
}
