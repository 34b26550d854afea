//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK layouts. Before 5.0 a subscription writes only its
//! QoS and UNSUBACK has no payload; SUBACK reason bytes double as v3 return codes.

use bytes::{BufMut, BytesMut};

use crate::error::EncodeError;
use crate::packet::{
    RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use crate::properties::Properties;

use super::props::{properties_len, put_properties, section_len};
use super::{put_str, str_len, Layout};

/// Packet identifier plus, in 5.0, the property section.
fn id_and_props(props: &Properties, v5: bool) -> Result<Layout, EncodeError> {
    let mut layout = Layout::new(2);
    if v5 {
        let len = properties_len(props)?;
        layout.remaining += section_len(len);
        layout.props = Some(len);
    }
    Ok(layout)
}

pub(super) fn subscribe_layout(s: &Subscribe, v5: bool) -> Result<Layout, EncodeError> {
    let mut layout = id_and_props(&s.properties, v5)?;
    for f in &s.filters {
        layout.remaining += str_len(&f.filter, "topic filter")? + 1;
    }
    Ok(layout)
}

pub(super) fn put_subscribe(s: &Subscribe, v5: bool, layout: &Layout, out: &mut BytesMut) {
    out.put_u16(s.packet_id.get());
    if let Some(len) = layout.props {
        put_properties(out, &s.properties, len);
    }
    for f in &s.filters {
        put_str(out, &f.filter);
        out.put_u8(options_byte(&f.options, v5));
    }
}

fn options_byte(o: &SubscriptionOptions, v5: bool) -> u8 {
    let mut b = o.qos as u8;
    if v5 {
        b |= u8::from(o.no_local) << 2;
        b |= u8::from(o.retain_as_published) << 3;
        let rh = match o.retain_handling {
            RetainHandling::SendAtSubscribe => 0,
            RetainHandling::SendIfNew => 1,
            RetainHandling::DoNotSend => 2,
        };
        b |= rh << 4;
    }
    b
}

pub(super) fn suback_layout(s: &SubAck, v5: bool) -> Result<Layout, EncodeError> {
    let mut layout = id_and_props(&s.properties, v5)?;
    layout.remaining += s.reasons.len();
    Ok(layout)
}

pub(super) fn put_suback(s: &SubAck, layout: &Layout, out: &mut BytesMut) {
    out.put_u16(s.packet_id.get());
    if let Some(len) = layout.props {
        put_properties(out, &s.properties, len);
    }
    for r in &s.reasons {
        out.put_u8(r.0);
    }
}

pub(super) fn unsubscribe_layout(u: &Unsubscribe, v5: bool) -> Result<Layout, EncodeError> {
    let mut layout = id_and_props(&u.properties, v5)?;
    for f in &u.filters {
        layout.remaining += str_len(f, "topic filter")?;
    }
    Ok(layout)
}

pub(super) fn put_unsubscribe(u: &Unsubscribe, layout: &Layout, out: &mut BytesMut) {
    out.put_u16(u.packet_id.get());
    if let Some(len) = layout.props {
        put_properties(out, &u.properties, len);
    }
    for f in &u.filters {
        put_str(out, f);
    }
}

pub(super) fn unsuback_layout(u: &UnsubAck, v5: bool) -> Result<Layout, EncodeError> {
    if !v5 {
        return Ok(Layout::new(2));
    }
    let mut layout = id_and_props(&u.properties, v5)?;
    layout.remaining += u.reasons.len();
    Ok(layout)
}

pub(super) fn put_unsuback(u: &UnsubAck, layout: &Layout, out: &mut BytesMut) {
    out.put_u16(u.packet_id.get());
    if let Some(len) = layout.props {
        put_properties(out, &u.properties, len);
        for r in &u.reasons {
            out.put_u8(r.0);
        }
    }
}
