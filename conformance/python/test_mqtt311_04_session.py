"""Persistent sessions in MQTT 3.1 / 3.1.1 (clean session 0): subscriptions and QoS 1/2
messages survive a disconnect, unacknowledged messages are re-sent with DUP on resume."""

import pytest

import rawmqtt as r
from pahoclient import V31, V311

pytestmark = pytest.mark.parametrize("version", [V31, V311], ids=["v31", "v311"])


@pytest.mark.parametrize("qos", [1, 2])
def test_offline_messages_are_queued_for_persistent_session(broker, clients, version, qos):
    a = clients(broker, "offline-q", version=version, clean=False)
    a.connect()
    a.subscribe("off/t", 2)
    a.disconnect()
    pub = clients(broker, "offline-pub", version=version)
    pub.connect()
    for i in range(3):
        pub.publish("off/t", f"m{i}".encode(), qos=qos)
    b = clients(broker, "offline-q", version=version, clean=False)
    b.connect()
    # [MQTT-3.1.2-5] QoS 1/2 messages for the session's subscriptions are stored while it is
    # disconnected and delivered, in order, when it resumes.
    got = b.get_n(3)
    assert [(m.topic, m.payload, m.qos) for m in got] == [("off/t", f"m{i}".encode(), qos) for i in range(3)]


def test_clean_session_gets_nothing_queued(broker, clients, version):
    a = clients(broker, "clean-q", version=version, clean=True)
    a.connect()
    a.subscribe("cq/t", 1)
    a.disconnect()
    pub = clients(broker, "clean-q-pub", version=version)
    pub.connect()
    pub.publish("cq/t", b"lost", qos=1)
    b = clients(broker, "clean-q", version=version, clean=True)
    assert b.connect().session_present is False
    b.subscribe("cq/t", 1)
    pub.publish("cq/t", b"live", qos=1)
    # [MQTT-3.1.2-6] the clean session's state (subscription and message) ended with it.
    assert b.get().payload == b"live"


def test_subscriptions_survive_reconnect(broker, clients, version):
    a = clients(broker, "subs-survive", version=version, clean=False)
    a.connect()
    a.subscribe("ss/+", 1)
    a.disconnect()
    b = clients(broker, "subs-survive", version=version, clean=False)
    b.connect()
    pub = clients(broker, "subs-survive-pub", version=version)
    pub.connect()
    pub.publish("ss/x", b"live", qos=1)
    # [MQTT-3.1.2-4] the session (with its subscriptions) is resumed.
    m = b.get()
    assert (m.topic, m.qos) == ("ss/x", 1)


def test_unacknowledged_qos1_is_resent_with_dup(broker, raw, clients, version):
    v = int(version)
    c = raw(broker)
    c.connect("dup-resend", version=v, clean=False)
    c.subscribe([("dr/t", 1)], version=v)
    pub = clients(broker, "dup-resend-pub", version=version)
    pub.connect()
    pub.publish("dr/t", b"unacked", qos=1)
    first = c.expect(r.PUBLISH)
    _, pid, _, payload = first.publish(v)
    assert payload == b"unacked" and not first.flags & 0x08
    c.close()  # no PUBACK
    c2 = raw(broker)
    c2.send(r.connect("dup-resend", version=v, clean=False))
    c2.expect(r.CONNACK)
    again = c2.expect(r.PUBLISH)
    topic, pid2, _, payload2 = again.publish(v)
    # [MQTT-4.4.0-1] re-sent on resume with the same packet id, and [MQTT-3.3.1-1] DUP set.
    assert (topic, pid2, payload2) == ("dr/t", pid, b"unacked")
    assert again.flags & 0x08
    c2.send(r.ack(r.PUBACK, pid2))
    c2.expect_open()


def test_unacknowledged_qos2_pubrel_is_resent(broker, raw, clients, version):
    v = int(version)
    c = raw(broker)
    c.connect("rel-resend", version=v, clean=False)
    c.subscribe([("rr/t", 2)], version=v)
    pub = clients(broker, "rel-resend-pub", version=version)
    pub.connect()
    pub.publish("rr/t", b"two", qos=2)
    _, pid, _, _ = c.expect(r.PUBLISH).publish(v)
    c.send(r.ack(r.PUBREC, pid))
    assert c.expect(r.PUBREL).packet_id() == pid
    c.close()  # no PUBCOMP
    c2 = raw(broker)
    c2.send(r.connect("rel-resend", version=v, clean=False))
    c2.expect(r.CONNACK)
    # [MQTT-4.4.0-1] the PUBREL is re-sent (not the PUBLISH).
    rel = c2.expect(r.PUBREL)
    assert rel.packet_id() == pid and rel.flags == 0x02
    c2.send(r.ack(r.PUBCOMP, pid))
    c2.expect_open()


def test_inbound_qos2_state_survives_reconnect(broker, raw, clients, version):
    v = int(version)
    sub = clients(broker, "in-q2-sub", version=version)
    sub.connect()
    sub.subscribe("iq/t", 2)
    c = raw(broker)
    c.connect("in-q2", version=v, clean=False)
    c.send(r.publish("iq/t", b"exactly", qos=2, packet_id=9, version=v))
    c.expect(r.PUBREC)
    c.close()  # lost before PUBREL
    c2 = raw(broker)
    c2.send(r.connect("in-q2", version=v, clean=False))
    c2.expect(r.CONNACK)
    c2.send(r.publish("iq/t", b"exactly", qos=2, packet_id=9, dup=True, version=v))
    c2.expect(r.PUBREC)
    c2.send(r.ack(r.PUBREL, 9))
    assert c2.expect(r.PUBCOMP).packet_id() == 9
    sub.subscribe("iq/end", 0)
    c2.send(r.publish("iq/end", b"", version=v))
    # [MQTT-4.3.3-2] exactly once across the reconnect: the DUP re-send is not routed again.
    assert [m.payload for m in sub.get_until("iq/end")] == [b"exactly", b""]
