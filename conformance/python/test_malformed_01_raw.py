"""Malformed packets and protocol violations over raw sockets. MQTT 5.0 clients get a DISCONNECT
with 0x81 (Malformed Packet) or 0x82 (Protocol Error) (or a more specific code where the spec
names one) before the close; 3.1 / 3.1.1 clients are just disconnected [MQTT-4.8.0-1]. A bad client
never affects the others."""

import time

import pytest

import rawmqtt as r
from malformed_cases import CASES, V3_ONLY, V5_ONLY
from pahoclient import V311, V5

_V3_CASES = sorted({**CASES, **V3_ONLY}.items())
_V5_CASES = sorted({**CASES, **V5_ONLY}.items())


@pytest.mark.parametrize("version", [3, 4], ids=["v31", "v311"])
@pytest.mark.parametrize("name,case", _V3_CASES, ids=[n for n, _ in _V3_CASES])
def test_v3_malformed_packet_closes_connection(broker, raw, name, case, version):
    build, _ = case
    c = raw(broker)
    c.connect("mal3", version=version)
    c.send(build(version))
    # [MQTT-4.8.0-1] (3.1.1 section 4.8): the server closes the connection; nothing is sent.
    assert c.expect_closed() == []
    raw(broker).connect("after-mal3", version=version)


@pytest.mark.parametrize("name,case", _V5_CASES, ids=[n for n, _ in _V5_CASES])
def test_v5_malformed_packet_gets_disconnect_reason(broker, raw, name, case):
    build, reasons = case
    c = raw(broker)
    c.connect("mal5", version=5)
    c.send(build(5))
    got = c.expect_closed()
    # Section 4.13: DISCONNECT with the reason code, then close.
    assert [p.type for p in got] == [r.DISCONNECT], got
    assert got[0].reason() in reasons, f"reason {got[0].reason():#x}, want one of {sorted(hex(x) for x in reasons)}"
    raw(broker).connect("after-mal5", version=5)


def test_bad_client_does_not_affect_others(broker, raw, clients):
    sub = clients(broker, "bystander-sub", version=V5)
    sub.connect()
    sub.subscribe("ok/#", 1)
    sub3 = clients(broker, "bystander-sub3", version=V311)
    sub3.connect()
    sub3.subscribe("ok/#", 1)
    pub = clients(broker, "bystander-pub", version=V311)
    pub.connect()
    for i, (name, (build, _)) in enumerate(_V5_CASES):
        bad = raw(broker)
        bad.connect(f"bad-{i}", version=5)
        bad.send(build(5))
        bad.expect_closed()
        pub.publish(f"ok/{i}", name.encode(), qos=1)
        assert sub.get().payload == name.encode()
        assert sub3.get().payload == name.encode()
    for i, (name, (build, _)) in enumerate(_V3_CASES):
        bad = raw(broker)
        bad.connect(f"bad3-{i}", version=4)
        bad.send(build(4))
        bad.expect_closed()
    pub.publish("ok/end", b"still fine", qos=2)
    assert sub.get().payload == b"still fine"
    assert broker.alive()


# --- before / during CONNECT --------------------------------------------------------------------


@pytest.mark.parametrize("first", [
    pytest.param(r.PINGREQ_BYTES, id="pingreq"),
    pytest.param(r.publish("t", b"x"), id="publish"),
    pytest.param(r.subscribe(1, [("t", 0)]), id="subscribe"),
    pytest.param(b"\xe0\x00", id="disconnect"),
])
def test_first_packet_must_be_connect(broker, raw, first):
    c = raw(broker)
    c.send(first)
    # [MQTT-3.1.0-1] the first packet must be CONNECT; otherwise the connection is closed.
    assert c.expect_closed() == []


def _connect_body(version=4, flags=0x02, client_id="cf", name="MQTT", tail=b""):
    return r.packet(0x10, r.s(name) + bytes([version, flags]) + r.u16(30) + (r.props() if version == 5 else b"")
                    + r.s(client_id) + tail)


def _truncated_connect(version):
    """The client identifier's length says 2 bytes; the packet ends after 1."""
    body = _connect_body(version, client_id="xy")[2:-1]
    return b"\x10" + r.varint(len(body)) + body


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("bad", [
    # [MQTT-3.1.2-3] reserved connect flag bit 0.
    pytest.param(lambda v: _connect_body(v, flags=0x03), id="reserved_flag"),
    # [MQTT-3.1.2-14] Will QoS 3.
    pytest.param(lambda v: _connect_body(v, flags=0x02 | 0x04 | 0x18, tail=(r.props() if v == 5 else b"")
                                         + r.s("w") + r.s("p")), id="will_qos_3"),
    # [MQTT-3.1.2-13] Will QoS set without the Will Flag.
    pytest.param(lambda v: _connect_body(v, flags=0x02 | 0x08), id="will_qos_without_will"),
    # [MQTT-3.1.2-15] Will Retain set without the Will Flag.
    pytest.param(lambda v: _connect_body(v, flags=0x02 | 0x20), id="will_retain_without_will"),
    # 3.1.1 [MQTT-1.5.3-1] / 5.0 [MQTT-1.5.4-1] the client identifier is ill-formed UTF-8.
    pytest.param(lambda v: _connect_body(v, client_id=b"\xc3\x28"), id="client_id_invalid_utf8"),
    # The payload ends before the client identifier's bytes.
    pytest.param(lambda v: _truncated_connect(v), id="truncated_payload"),
    # Remaining Length of 5 bytes.
    pytest.param(lambda v: b"\x10\xff\xff\xff\xff\x01", id="remaining_length_5_bytes"),
    # The Will Topic is a Topic Name: no wildcards (3.1.1 [MQTT-4.7.1-1], 5.0 [MQTT-4.7.0-1]).
    pytest.param(lambda v: r.connect("wt", version=v, will=dict(topic="w/#", payload=b"p")), id="will_topic_wildcard"),
    # 3.1.1 [MQTT-1.5.3-1] / 5.0 [MQTT-1.5.4-1] the user name is ill-formed UTF-8.
    pytest.param(lambda v: r.connect("un", version=v, username=b"\xff\xfe"), id="username_invalid_utf8"),
    # The Password Flag is set but the payload ends after the user name.
    pytest.param(lambda v: _connect_body(v, flags=0x02 | 0x80 | 0x40, client_id="pw", tail=r.s("user")),
                 id="password_flag_without_password"),
])
def test_bad_connect_is_refused(broker, raw, version, bad):
    c = raw(broker)
    c.send(bad(version))
    got = c.expect_closed()
    # The connection is closed; a CONNACK, if any, is a refusal (v5 section 4.13: >= 0x80).
    assert all(p.type == r.CONNACK and p.reason() != 0 for p in got), got


@pytest.mark.parametrize("properties", [
    # Section 3.1.2.11: each of these values (or repetitions) is a Protocol Error.
    pytest.param(r.props(r.prop(r.RECEIVE_MAXIMUM, 0)), id="receive_maximum_0"),
    pytest.param(r.props(r.prop(r.MAXIMUM_PACKET_SIZE, 0)), id="maximum_packet_size_0"),
    pytest.param(r.props(r.prop(0x17, 2)), id="request_problem_information_2"),
    pytest.param(r.props(r.prop(0x19, 2)), id="request_response_information_2"),
    pytest.param(r.props(r.prop(r.SESSION_EXPIRY, 1), r.prop(r.SESSION_EXPIRY, 2)), id="session_expiry_twice"),
    pytest.param(r.props(r.prop(r.CONTENT_TYPE, "x")), id="publish_property_in_connect"),
])
def test_v5_bad_connect_properties_are_refused(broker, raw, properties):
    c = raw(broker)
    c.send(r.connect("bad-props", version=5, properties=properties))
    got = c.expect_closed()
    assert all(p.type == r.CONNACK and p.reason() >= 0x80 for p in got), got


def test_v5_bad_will_properties_are_refused(broker, raw):
    c = raw(broker)
    # Section 3.1.3.2: a Subscription Identifier is not a will property.
    c.send(r.connect("bad-will-props", version=5,
                     will=dict(topic="w", payload=b"p", properties=r.props(r.prop(r.SUBSCRIPTION_ID, 3)))))
    got = c.expect_closed()
    assert all(p.type == r.CONNACK and p.reason() >= 0x80 for p in got), got


def test_v31_empty_client_id_is_refused(broker, raw):
    c = raw(broker)
    c.send(r.connect("", version=3))
    # MQTT 3.1: the client identifier is 1 to 23 characters; return code 2.
    assert c.expect(r.CONNACK).raw == b"\x20\x02\x00\x02"
    c.expect_closed()


def test_v311_password_without_username_is_refused(broker, raw):
    c = raw(broker)
    c.send(r.connect("pw-only", version=4, password=b"secret"))
    got = c.expect_closed()
    # [MQTT-3.1.2-22] (3.1.1): the password flag requires the user name flag.
    assert all(p.type == r.CONNACK and p.reason() != 0 for p in got), got


def test_v5_password_without_username_is_allowed(broker, raw):
    c = raw(broker)
    # Section 3.1.2.9 (5.0) allows a password without a user name.
    c.connect("pw-only5", version=5, password=b"secret")
    c.expect_open()


def test_connect_timeout_closes_silent_socket(make_broker, raw):
    b = make_broker(connect_timeout_secs=1)
    c = raw(b)
    start = time.monotonic()
    # A socket that never sends CONNECT is closed after connect_timeout_secs (section 4.x: the
    # server should close a connection that does not send CONNECT in a reasonable time).
    assert c.expect_closed(timeout=4) == []
    assert 0.8 <= time.monotonic() - start <= 3.0


def test_connect_timeout_closes_partial_connect(make_broker, raw):
    b = make_broker(connect_timeout_secs=1)
    c = raw(b)
    c.send(r.connect("partial")[:5])
    assert c.expect_closed(timeout=4) == []


def test_connect_timeout_does_not_hit_connected_clients(make_broker, raw):
    b = make_broker(connect_timeout_secs=1)
    c = raw(b)
    c.connect("in-time", keepalive=0)
    # Only "still open after the timeout" can show this: wait past the 1 s connect timeout.
    time.sleep(1.5)
    c.expect_open()


def test_connect_split_across_writes(broker, raw):
    c = raw(broker)
    data = r.connect("split-connect", version=5, properties=r.props(r.prop(r.SESSION_EXPIRY, 0)))
    for i in range(len(data)):
        c.send(data[i:i + 1])
    assert c.expect(r.CONNACK).reason() == 0


def test_packets_split_and_coalesced(broker, raw, clients):
    sub = clients(broker, "coalesce-sub")
    sub.connect()
    sub.subscribe("co/#", 1)
    c = raw(broker)
    c.connect("coalesce")
    burst = b"".join(r.publish(f"co/{i}", str(i).encode(), qos=1, packet_id=i + 1) for i in range(5))
    c.send(burst[:7])
    c.send(burst[7:])
    acks = [c.expect(r.PUBACK).packet_id() for _ in range(5)]
    assert acks == [1, 2, 3, 4, 5]
    assert [m.payload for m in sub.get_n(5)] == [b"0", b"1", b"2", b"3", b"4"]


def test_v5_packet_too_large_before_connack(make_broker, raw):
    b = make_broker(max_packet_size=256)
    c = raw(b)
    c.send(r.connect("huge-connect", version=5, will=dict(topic="w", payload=b"W" * 1000)))
    got = c.expect_closed()
    # A CONNECT above the server's limit is refused (CONNACK 0x95 allowed) and closed.
    assert all(p.type == r.CONNACK and p.reason() >= 0x80 for p in got), got
