"""MQTT 5.0 flow control and limits: the client's Receive Maximum and Maximum Packet Size are
honoured by the broker, the broker's Receive Maximum and Maximum Packet Size are enforced."""

import rawmqtt as r
from pahoclient import V5


def test_receive_maximum_limits_inflight_qos1(broker, clients):
    sub = clients(broker, "rm-sub", version=V5, manual_ack=True, properties=dict(ReceiveMaximum=1))
    sub.connect()
    sub.subscribe("rm/t", 1)
    pub = clients(broker, "rm-pub", version=V5)
    pub.connect()
    for i in range(3):
        pub.publish("rm/t", str(i).encode(), qos=1)
    first = sub.get()
    assert first.payload == b"0"
    # [MQTT-3.3.4-9] no second QoS 1 PUBLISH while one is unacknowledged (Receive Maximum 1).
    # All three were routed before `first` arrived (the publisher had their PUBACKs), so a
    # broker ignoring the limit would have sent them already.
    sub.expect_none()
    sub.ack(first)
    second = sub.get()
    assert second.payload == b"1"
    sub.expect_none(0.3)
    sub.ack(second)
    third = sub.get()
    assert third.payload == b"2"
    sub.ack(third)


def test_receive_maximum_limits_inflight_qos2_until_pubrec(broker, raw, clients):
    c = raw(broker)
    c.connect("rm2-sub", version=5, properties=r.props(r.prop(r.RECEIVE_MAXIMUM, 2)))
    c.subscribe([("rm2/t", 2)], version=5)
    pub = clients(broker, "rm2-pub", version=V5)
    pub.connect()
    for i in range(4):
        pub.publish("rm2/t", str(i).encode(), qos=2)
    p0, p1 = c.expect(r.PUBLISH), c.expect(r.PUBLISH)
    # Two in flight (Receive Maximum 2), the third waits.
    try:
        extra = c.recv(timeout=0.5)
    except TimeoutError:
        extra = None
    assert extra is None, f"third PUBLISH sent beyond Receive Maximum: {extra}"
    id0 = p0.publish(5)[1]
    c.send(r.ack(r.PUBREC, id0))
    assert c.expect(r.PUBREL).packet_id() == id0
    # PUBREC alone does not free the slot (it is freed by PUBCOMP) [MQTT-3.3.4-9].
    try:
        extra = c.recv(timeout=0.5)
    except TimeoutError:
        extra = None
    assert extra is None, f"PUBLISH sent before PUBCOMP freed a slot: {extra}"
    c.send(r.ack(r.PUBCOMP, id0))
    p2 = c.expect(r.PUBLISH)
    assert p2.publish(5)[3] == b"2"
    assert p1.publish(5)[3] == b"1"


def test_qos0_is_not_limited_by_receive_maximum(broker, clients):
    sub = clients(broker, "rm0-sub", version=V5, manual_ack=True, properties=dict(ReceiveMaximum=1))
    sub.connect()
    sub.subscribe("rm0/#", 1)
    pub = clients(broker, "rm0-pub", version=V5)
    pub.connect()
    pub.publish("rm0/q1", b"held", qos=1)
    held = sub.get()
    for i in range(3):
        pub.publish("rm0/q0", str(i).encode(), qos=0)
    # QoS 0 messages are not counted by Receive Maximum (section 4.9).
    assert [m.payload for m in sub.get_n(3)] == [b"0", b"1", b"2"]
    sub.ack(held)


def test_maximum_packet_size_of_client_is_respected(broker, clients):
    sub = clients(broker, "mps-sub", version=V5, properties=dict(MaximumPacketSize=128))
    sub.connect()
    sub.subscribe("mps/t", 1)
    pub = clients(broker, "mps-pub", version=V5)
    pub.connect()
    pub.publish("mps/t", b"small-1", qos=1)
    pub.publish("mps/t", b"L" * 500, qos=1)
    pub.publish("mps/t", b"small-2", qos=1)
    # [MQTT-3.1.2-24] (5.0) nothing larger than the client's Maximum Packet Size is sent; the
    # message is discarded [MQTT-3.1.2-25] and later ones still flow.
    got = sub.get_n(2)
    assert [m.payload for m in got] == [b"small-1", b"small-2"]
    sub.expect_none(0.2)


def test_packet_size_limit_counts_properties(broker, raw, clients):
    c = raw(broker)
    c.connect("mps-props", version=5, properties=r.props(r.prop(r.MAXIMUM_PACKET_SIZE, 64)))
    c.subscribe([("mpp/t", 0)], version=5)
    pub = clients(broker, "mps-props-pub", version=V5)
    pub.connect()
    # Payload alone fits in 64 bytes; with a long user property the whole packet does not.
    pub.publish("mpp/t", b"x" * 20, qos=1, properties=dict(UserProperty=[("k", "v" * 60)]))
    pub.publish("mpp/t", b"fits", qos=1)
    p = c.expect(r.PUBLISH)
    assert len(p.raw) <= 64
    assert p.publish(5)[3] == b"fits"


def test_packet_over_broker_maximum_is_rejected_v5(make_broker, raw, clients):
    b = make_broker(max_packet_size=1024)
    other = clients(b, "mps-bystander", version=V5)
    other.connect()
    other.subscribe("big/t", 0)
    c = raw(b)
    ack = c.connect("too-big", version=5)
    assert ack.properties()[r.MAXIMUM_PACKET_SIZE] == [1024]
    c.send(r.publish("big/t", b"B" * 2000, version=5))
    got = c.expect_closed()
    # [MQTT-3.2.2-15] / section 4.13: a packet above the server's Maximum Packet Size gets
    # DISCONNECT 0x95 (Packet too large).
    assert [(p.type, p.reason()) for p in got] == [(r.DISCONNECT, r.PACKET_TOO_LARGE)]
    other.publish("big/t", b"fine")
    assert other.get().payload == b"fine"


def test_packet_over_broker_maximum_closes_v311(make_broker, raw):
    b = make_broker(max_packet_size=1024)
    c = raw(b)
    c.connect("too-big-v3")
    c.send(r.publish("big/t", b"B" * 2000))
    assert c.expect_closed() == []


def test_packet_at_broker_maximum_is_accepted(make_broker, raw):
    b = make_broker(max_packet_size=1024)
    c = raw(b)
    c.connect("just-fits", version=5)
    pkt = r.publish("fit/t", b"", qos=1, packet_id=1, version=5)
    pkt = r.publish("fit/t", b"F" * (1024 - len(pkt) - 1), qos=1, packet_id=1, version=5)
    assert len(pkt) == 1024
    c.send(pkt)
    assert c.expect(r.PUBACK).packet_id() == 1


def test_inbound_qos2_beyond_receive_maximum_is_rejected(make_broker, raw):
    b = make_broker(receive_maximum=2)
    c = raw(b)
    ack = c.connect("rm-in", version=5)
    assert ack.properties()[r.RECEIVE_MAXIMUM] == [2]
    for pid in (1, 2, 3):
        c.send(r.publish("rmi/t", b"x", qos=2, packet_id=pid, version=5))
    got = c.expect_closed()
    # [MQTT-3.3.4-7] more unacknowledged QoS 2 than Receive Maximum: DISCONNECT 0x93.
    assert [p.type for p in got] == [r.PUBREC, r.PUBREC, r.DISCONNECT]
    assert got[-1].reason() == 0x93


def test_puback_with_error_reason_frees_the_window(broker, raw, clients):
    c = raw(broker)
    c.connect("rm-err1", version=5, properties=r.props(r.prop(r.RECEIVE_MAXIMUM, 1)))
    c.subscribe([("rme/t", 1)], version=5)
    pub = clients(broker, "rm-err1-pub", version=V5)
    pub.connect()
    pub.publish("rme/t", b"a", qos=1)
    pub.publish("rme/t", b"b", qos=1)
    p = c.expect(r.PUBLISH)
    # 0x80 Unspecified error still completes the QoS 1 exchange (section 4.9).
    c.send(r.ack(r.PUBACK, p.publish(5)[1], version=5, reason=0x80))
    assert c.expect(r.PUBLISH).publish(5)[3] == b"b"


def test_pubrec_with_error_reason_frees_the_window(broker, raw, clients):
    c = raw(broker)
    c.connect("rm-err2", version=5, properties=r.props(r.prop(r.RECEIVE_MAXIMUM, 1)))
    c.subscribe([("rme2/t", 2)], version=5)
    pub = clients(broker, "rm-err2-pub", version=V5)
    pub.connect()
    pub.publish("rme2/t", b"a", qos=2)
    pub.publish("rme2/t", b"b", qos=2)
    p = c.expect(r.PUBLISH)
    # [MQTT-3.3.4-9] a PUBREC >= 0x80 ends the exchange: no PUBREL, and the slot is free.
    c.send(r.ack(r.PUBREC, p.publish(5)[1], version=5, reason=0x80))
    nxt = c.expect(r.PUBLISH)
    assert nxt.publish(5)[3] == b"b"


def test_disconnect_fits_client_maximum_packet_size(broker, raw):
    c = raw(broker)
    c.connect("mps-disconnect", version=5, properties=r.props(r.prop(r.MAXIMUM_PACKET_SIZE, 16)))
    c.send(r.publish("bad/#", b"x", version=5))
    got = c.expect_closed()
    assert [p.type for p in got] == [r.DISCONNECT] and got[0].reason() >= 0x80, got
    # [MQTT-3.1.2-24] nothing larger than the client's Maximum Packet Size; [MQTT-3.14.2-3] the
    # Reason String is left out when it would make the DISCONNECT too large.
    assert len(got[0].raw) <= 16, f"{len(got[0].raw)}-byte DISCONNECT to a client accepting 16"


def test_refusing_connack_fits_client_maximum_packet_size(broker, raw):
    c = raw(broker)
    c.send(r.connect("mps-connack", version=5, properties=r.props(
        r.prop(r.MAXIMUM_PACKET_SIZE, 16), r.prop(r.AUTH_METHOD, "SCRAM-SHA-256"))))
    ack = c.expect(r.CONNACK)
    assert ack.reason() == r.BAD_AUTH_METHOD
    # [MQTT-3.2.2-19] no Reason String that would exceed the client's Maximum Packet Size.
    assert len(ack.raw) <= 16, f"{len(ack.raw)}-byte CONNACK to a client accepting 16"
