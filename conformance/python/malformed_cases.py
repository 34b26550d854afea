"""Malformed or forbidden packets sent after a successful CONNECT, shared by the raw-socket tests:
name -> (bytes builder taking the protocol version, acceptable v5 DISCONNECT reason codes)."""

import rawmqtt as r

M, P = r.MALFORMED, r.PROTOCOL_ERROR


def _sub_raw(version, payload, first=0x82):
    return r.packet(first, r.u16(1) + (r.props() if version == 5 else b"") + payload)


CASES = {
    # 5.0 [MQTT-2.1.3-1] / 3.1.1 [MQTT-2.2.2-2]: reserved fixed-header flags must be as specified.
    "subscribe_flags_0": (lambda v: _sub_raw(v, r.s("a") + b"\x00", first=0x80), {M}),
    "unsubscribe_flags_0": (lambda v: r.packet(0xA0, r.u16(1) + (r.props() if v == 5 else b"") + r.s("a")), {M}),
    "pubrel_flags_0": (lambda v: r.packet(0x60, r.u16(1)), {M}),
    "pingreq_flags_1": (lambda v: b"\xc1\x00", {M}),
    "disconnect_flags_1": (lambda v: b"\xe1\x00", {M}),
    # Remaining Length is at most 4 bytes (3.1.1 section 2.2.3 / 5.0 section 1.5.5).
    "remaining_length_5_bytes": (lambda v: b"\x30\xff\xff\xff\xff\x01", {M}),
    # [MQTT-3.3.1-4] QoS 3.
    "publish_qos_3": (lambda v: r.packet(0x36, r.s("q/3") + r.u16(1) + (r.props() if v == 5 else b"") + b"x"), {M}),
    # [MQTT-3.3.2-2] wildcards in a Topic Name (5.0 also allows 0x90 Topic Name invalid).
    "publish_topic_plus": (lambda v: r.publish("a/+/b", b"x", version=v), {M, P, r.TOPIC_NAME_INVALID}),
    "publish_topic_hash": (lambda v: r.publish("a/#", b"x", version=v), {M, P, r.TOPIC_NAME_INVALID}),
    # 5.0 [MQTT-1.5.4-1] / 3.1.1 [MQTT-1.5.3-1]: ill-formed UTF-8, and UTF-16 surrogates in UTF-8.
    "publish_topic_invalid_utf8": (lambda v: r.publish(b"a/\xff\xfe", b"x", version=v), {M}),
    "publish_topic_surrogate": (lambda v: r.publish(b"a/\xed\xa0\x80", b"x", version=v), {M}),
    # 5.0 [MQTT-1.5.4-2] / 3.1.1 [MQTT-1.5.3-2]: U+0000 in a string.
    "publish_topic_nul": (lambda v: r.publish(b"a/\x00/b", b"x", version=v), {M}),
    # [MQTT-4.7.3-1] (3.1.1) a Topic Name is at least one character (5.0: unless an alias is used).
    "publish_topic_empty": (lambda v: r.publish("", b"x", version=v), {M, P}),
    # [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (5.0) a QoS > 0 PUBLISH needs a non-zero packet id.
    "publish_packet_id_0": (lambda v: r.publish("p/0", b"x", qos=1, packet_id=0, version=v), {M, P}),
    # The topic's length prefix runs past the end of the packet.
    "publish_truncated_topic": (lambda v: b"\x30\x03\x00\x05a", {M}),
    # 3.1.1 [MQTT-3.8.3-3] / 5.0 [MQTT-3.8.3-2]: a SUBSCRIBE with no Topic Filter.
    "subscribe_no_filters": (lambda v: _sub_raw(v, b""), {M, P}),
    # [MQTT-3.8.3-4] (3.1.1) / section 3.8.3.1 (5.0) requested QoS 3.
    "subscribe_qos_3": (lambda v: _sub_raw(v, r.s("s/3") + b"\x03"), {M, P}),
    # 5.0 [MQTT-3.8.3-5] / 3.1.1 [MQTT-3.8.3-4]: reserved bits of the options byte.
    "subscribe_reserved_option_bits": (lambda v: _sub_raw(v, r.s("s/r") + b"\xc1"), {M, P}),
    # [MQTT-3.10.3-2] an UNSUBSCRIBE with no Topic Filter.
    "unsubscribe_no_filters": (lambda v: r.packet(0xA2, r.u16(1) + (r.props() if v == 5 else b"")), {M, P}),
    # Packet type 0 is reserved.
    "packet_type_0": (lambda v: b"\x00\x00", {M, P}),
    # [MQTT-3.1.0-2] a second CONNECT.
    "second_connect": (lambda v: r.connect("again", version=v), {P}),
    # Server-to-client packets sent by a client.
    "client_sends_connack": (lambda v: b"\x20\x02\x00\x00" if v != 5 else b"\x20\x03\x00\x00\x00", {M, P}),
}

V5_ONLY = {
    # Section 3.8.3.1: Retain Handling 3 is a Protocol Error.
    "subscribe_retain_handling_3": (lambda v: _sub_raw(v, r.s("s/rh") + b"\x30"), {M, P}),
    # Section 3.8.2.1.2: Subscription Identifier 0 is a Protocol Error.
    "subscribe_identifier_0": (
        lambda v: r.packet(0x82, r.u16(1) + r.props(r.prop(r.SUBSCRIPTION_ID, 0)) + r.s("s/i") + b"\x00"), {M, P}),
    # Section 2.2.2.2: a property not defined for the packet (Session Expiry on PUBLISH).
    "publish_property_not_allowed": (
        lambda v: r.publish("pp/x", b"x", version=5, properties=r.props(r.prop(r.SESSION_EXPIRY, 5))), {M, P}),
    # Section 3.3.2.3: a property that may appear once, twice.
    "publish_duplicate_property": (
        lambda v: r.publish("pp/d", b"x", version=5,
                            properties=r.props(r.prop(r.CONTENT_TYPE, "a"), r.prop(r.CONTENT_TYPE, "b"))), {M, P}),
    # A property block longer than the packet.
    "publish_property_length_overrun": (lambda v: r.packet(0x30, r.s("pl/o") + r.varint(50) + b"\x01\x01"), {M}),
    # Section 4.12: AUTH when no Authentication Method was used at CONNECT.
    "auth_without_method": (lambda v: b"\xf0\x00", {P}),
    "auth_continue_without_method": (lambda v: b"\xf0\x02\x18\x00", {P}),
}

V3_ONLY = {
    # AUTH (type 15) does not exist before 5.0.
    "auth_packet_v3": (lambda v: b"\xf0\x00", set()),
}
