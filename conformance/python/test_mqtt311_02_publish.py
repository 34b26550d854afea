"""PUBLISH in both directions at QoS 0/1/2 for MQTT 3.1, 3.1.1 and 5.0; QoS downgrade,
overlapping subscriptions, ordering, unsubscribe, and the QoS 2 exactly-once handshake on the
wire."""

import pytest

import rawmqtt as r
from pahoclient import V5, VERSION_IDS, VERSIONS

pytestmark = pytest.mark.parametrize("version", VERSIONS, ids=[VERSION_IDS[v] for v in VERSIONS])


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_roundtrip(broker, clients, version, qos):
    sub = clients(broker, "rt-sub", version=version)
    sub.connect()
    assert sub.subscribe("rt/topic", 2) == 2
    pub = clients(broker, "rt-pub", version=version)
    pub.connect()
    payload = bytes(range(256)) * 4
    pub.publish("rt/topic", payload, qos=qos)  # waits for PUBACK / PUBCOMP at QoS 1 / 2
    m = sub.get()
    assert (m.topic, m.payload, m.qos, m.retain) == ("rt/topic", payload, qos, False)


@pytest.mark.parametrize("sub_qos,pub_qos", [(0, 1), (0, 2), (1, 2), (2, 1), (1, 0)])
def test_delivery_qos_is_minimum_of_publish_and_subscription(broker, clients, version, sub_qos, pub_qos):
    sub = clients(broker, "dg-sub", version=version)
    sub.connect()
    assert sub.subscribe("dg/t", sub_qos) == sub_qos
    pub = clients(broker, "dg-pub", version=version)
    pub.connect()
    pub.publish("dg/t", b"m", qos=pub_qos)
    # 3.1.1 [MQTT-3.8.4-6] / 5.0 section 3.8.4: delivered at min(publish QoS, granted QoS).
    assert sub.get().qos == min(sub_qos, pub_qos)


def test_overlapping_subscriptions_deliver_at_highest_qos(broker, clients, version):
    sub = clients(broker, "ov-sub", version=version)
    sub.connect()
    assert sub.subscribe_many([("ov/+", 0), ("ov/#", 2), ("ov/a", 1)]) == [0, 2, 1]
    pub = clients(broker, "ov-pub", version=version)
    pub.connect()
    pub.publish("ov/a", b"one", qos=2)
    pub.publish("ov/sentinel", b"s", qos=2)
    got = [m for m in sub.get_until("ov/sentinel") if m.topic == "ov/a"]
    # 3.1.1 [MQTT-3.3.5-1] / 5.0 [MQTT-3.3.4-2]: the client receives the message respecting the
    # highest QoS of the matching subscriptions; several copies are allowed, none missing.
    assert got, "message on ov/a not delivered"
    assert all(m.payload == b"one" for m in got)
    assert max(m.qos for m in got) == 2


def test_messages_from_one_publisher_keep_their_order(broker, clients, version):
    sub = clients(broker, "ord-sub", version=version)
    sub.connect()
    sub.subscribe("ord/#", 2)
    pub = clients(broker, "ord-pub", version=version)
    pub.connect()
    mids = [pub.publish(f"ord/{i % 3}", str(i).encode(), qos=1, wait=False) for i in range(50)]
    assert len(mids) == 50
    got = sub.get_n(50)
    # [MQTT-4.6.0-5] (3.1.1) / [MQTT-4.6.0-6] (5.0): an ordered topic keeps publish order.
    assert [int(m.payload) for m in got] == list(range(50))


def test_resubscribe_replaces_the_subscription(broker, clients, version):
    sub = clients(broker, "rs-sub", version=version)
    sub.connect()
    sub.subscribe("rs/t", 0)
    sub.subscribe("rs/t", 2)
    pub = clients(broker, "rs-pub", version=version)
    pub.connect()
    pub.publish("rs/t", b"x", qos=2)
    pub.publish("rs/end", b"", qos=0)
    sub.subscribe("rs/end", 0)
    pub.publish("rs/end", b"", qos=0)
    got = sub.get_until("rs/end")
    # [MQTT-3.8.4-3]: the new subscription replaces the old one: one copy, at the new QoS.
    assert [(m.topic, m.qos) for m in got] == [("rs/t", 2), ("rs/end", 0)]


def test_unsubscribe_stops_delivery(broker, clients, version):
    sub = clients(broker, "us-sub", version=version)
    sub.connect()
    sub.subscribe_many([("us/a", 1), ("us/b", 1)])
    sub.unsubscribe("us/a")
    pub = clients(broker, "us-pub", version=version)
    pub.connect()
    pub.publish("us/a", b"gone", qos=1)
    pub.publish("us/b", b"kept", qos=1)
    # [MQTT-3.10.4-2]: the server stops adding messages for the removed filter.
    assert [m.topic for m in sub.get_until("us/b")] == ["us/b"]


def test_publisher_receives_own_message_without_no_local(broker, clients, version):
    c = clients(broker, "self-sub", version=version)
    c.connect()
    c.subscribe("self/t", 1)
    c.publish("self/t", b"echo", qos=1)
    assert c.get().payload == b"echo"


@pytest.mark.parametrize("qos", [1, 2])
def test_raw_publish_acknowledgement_bytes(broker, raw, version, qos):
    v = int(version)
    c = raw(broker)
    c.connect("raw-ack", version=v)
    c.send(r.publish("raw/ack", b"p", qos=qos, packet_id=0x1234, version=v))
    ack = c.expect(r.PUBACK if qos == 1 else r.PUBREC)
    if v == 5:
        # No subscriber: 0x10 (No matching subscribers) or omitted reason 0x00 are both valid.
        assert ack.packet_id() == 0x1234 and ack.flags == 0 and ack.reason() in (0x00, 0x10)
    else:
        # 3.1.1 [MQTT-4.3.2-2] / [MQTT-4.3.3-2]: the acknowledgement carries the PUBLISH's packet id.
        assert ack.raw == bytes([0x40 if qos == 1 else 0x50, 2, 0x12, 0x34])
    if qos == 2:
        c.send(r.ack(r.PUBREL, 0x1234))
        comp = c.expect(r.PUBCOMP)
        assert comp.packet_id() == 0x1234 and comp.flags == 0


def test_qos2_inbound_duplicate_is_delivered_once(broker, raw, clients, version):
    v = int(version)
    sub = clients(broker, "eo-sub", version=version)
    sub.connect()
    sub.subscribe("eo/t", 2)
    c = raw(broker)
    c.connect("eo-pub", version=v)
    c.send(r.publish("eo/t", b"once", qos=2, packet_id=7, version=v))
    assert c.expect(r.PUBREC).packet_id() == 7
    # The PUBREC "got lost": the client re-sends with DUP before releasing.
    c.send(r.publish("eo/t", b"once", qos=2, packet_id=7, dup=True, version=v))
    assert c.expect(r.PUBREC).packet_id() == 7
    c.send(r.ack(r.PUBREL, 7))
    assert c.expect(r.PUBCOMP).packet_id() == 7
    c.send(r.publish("eo/t", b"next", qos=2, packet_id=7, version=v))
    assert c.expect(r.PUBREC).packet_id() == 7
    c.send(r.ack(r.PUBREL, 7))
    c.expect(r.PUBCOMP)
    # [MQTT-4.3.3-2] (method B, 3.1.1 4.3.3): the duplicate before PUBREL is not delivered
    # again; after PUBREL the id is free and a new message with it is a new message.
    got = sub.get_n(2)
    assert [m.payload for m in got] == [b"once", b"next"]
    sub.expect_none()


def test_qos2_outbound_handshake(broker, raw, clients, version):
    v = int(version)
    c = raw(broker)
    c.connect("q2-sub", version=v)
    c.subscribe([("q2/t", 2)], version=v)
    pub = clients(broker, "q2-pub", version=version)
    pub.connect()
    pub.publish("q2/t", b"two", qos=2)
    p = c.expect(r.PUBLISH)
    topic, pid, _, payload = p.publish(v)
    # [MQTT-4.3.3-1]: QoS 2 PUBLISH with a packet id, DUP 0 on first delivery.
    assert (topic, payload, (p.flags >> 1) & 3, p.flags & 0x08) == ("q2/t", b"two", 2, 0)
    assert pid and pid > 0
    c.send(r.ack(r.PUBREC, pid))
    rel = c.expect(r.PUBREL)
    # [MQTT-3.6.1-1] PUBREL has flags 0b0010.
    assert rel.flags == 0x02 and rel.packet_id() == pid
    c.send(r.ack(r.PUBCOMP, pid))
    c.expect_open()


def test_qos1_outbound_flags_and_packet_id(broker, raw, clients, version):
    v = int(version)
    c = raw(broker)
    c.connect("q1-sub", version=v)
    c.subscribe([("q1/t", 1)], version=v)
    pub = clients(broker, "q1-pub", version=version)
    pub.connect()
    pub.publish("q1/t", b"a", qos=1)
    pub.publish("q1/t", b"b", qos=1)
    p1, p2 = c.expect(r.PUBLISH), c.expect(r.PUBLISH)
    (_, id1, _, b1), (_, id2, _, b2) = p1.publish(v), p2.publish(v)
    assert (b1, b2) == (b"a", b"b")
    # 3.1.1 [MQTT-2.3.1-4] / 5.0 [MQTT-2.2.1-2]: QoS 1 messages in flight use distinct non-zero ids.
    assert id1 and id2 and id1 != id2
    c.send(r.ack(r.PUBACK, id1))
    c.send(r.ack(r.PUBACK, id2))
    c.expect_open()


def test_large_payload_roundtrip(broker, clients, version):
    sub = clients(broker, "big-sub", version=version)
    sub.connect()
    sub.subscribe("big/t", 1)
    pub = clients(broker, "big-pub", version=version)
    pub.connect()
    payload = bytes(i % 251 for i in range(300_000))  # 3-byte Remaining Length
    pub.publish("big/t", payload, qos=1)
    assert sub.get().payload == payload


def test_empty_payload_roundtrip(broker, clients, version):
    sub = clients(broker, "empty-sub", version=version)
    sub.connect()
    sub.subscribe("empty/t", 1)
    pub = clients(broker, "empty-pub", version=version)
    pub.connect()
    pub.publish("empty/t", b"", qos=1)
    m = sub.get()
    assert (m.topic, m.payload) == ("empty/t", b"")


def test_many_filters_in_one_subscribe(broker, raw, version):
    v = int(version)
    c = raw(broker)
    c.connect("many-filters", version=v)
    filters = [(f"mf/{i}", i % 3) for i in range(40)]
    ack = c.subscribe(filters, version=v, packet_id=77)
    codes = ack.body[3:] if v == 5 else ack.body[2:]
    # 3.1.1 [MQTT-3.8.4-5] / 5.0 [MQTT-3.9.3-1]: one return code per filter, in order.
    assert list(codes) == [q for _, q in filters]


def test_pubrel_for_unknown_packet_id_gets_pubcomp(broker, raw, version):
    v = int(version)
    c = raw(broker)
    c.connect("unknown-rel", version=v)
    c.send(r.ack(r.PUBREL, 99))
    comp = c.expect(r.PUBCOMP)
    assert comp.packet_id() == 99
    if v == 5:
        # Section 3.7.2.1: 0x92 Packet Identifier not found.
        assert comp.reason() == 0x92


@pytest.mark.parametrize("bad_filter", ["a/#/b", "a#", "+a", "a/b+", "", "#/a", "a/\u0000"])
def test_invalid_topic_filter_is_refused(broker, raw, version, bad_filter):
    v = int(version)
    c = raw(broker)
    c.connect("bad-filter", version=v)
    c.send(r.subscribe(3, [(bad_filter, 1)], version=v))
    first = c.recv()
    # 3.1.1 [MQTT-4.7.1-2]/[MQTT-4.7.1-3], 5.0 [MQTT-4.7.1-1]/[MQTT-4.7.1-2], [MQTT-4.7.3-1], U+0000
    # (3.1.1 [MQTT-1.5.3-2] / 5.0 [MQTT-1.5.4-2]): an invalid filter is never
    # subscribed. The server refuses it in SUBACK (0x80 / v5 >= 0x80) or closes the connection
    # (v5: after a DISCONNECT with an error code; Mosquitto uses 0x81).
    if first is not None and first.type == r.SUBACK:
        assert first.body[-1] >= 0x80, first
        return
    if v == 5:
        assert first is not None and first.type == r.DISCONNECT and first.reason() >= 0x80, first
        assert c.expect_closed() == []
    else:
        assert first is None, first
