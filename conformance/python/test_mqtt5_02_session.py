"""MQTT 5.0 sessions: Clean Start, Session Expiry Interval (including 0 and changes at
DISCONNECT), queued messages while offline."""

import time

import rawmqtt as r
from pahoclient import V5


def _persistent(clients, broker, cid, expiry=60, clean=False):
    return clients(broker, cid, version=V5, clean=clean, properties=dict(SessionExpiryInterval=expiry))


def test_session_present_after_resume(broker, clients):
    a = _persistent(clients, broker, "v5-sp", clean=True)
    # [MQTT-3.2.2-2] Clean Start 1 -> session present 0.
    assert a.connect().session_present is False
    a.subscribe("v5sp/t", 1)
    a.disconnect()
    b = _persistent(clients, broker, "v5-sp")
    # [MQTT-3.2.2-3] a stored session resumed -> session present 1.
    assert b.connect().session_present is True
    b.disconnect()
    c = _persistent(clients, broker, "v5-sp", clean=True)
    # [MQTT-3.1.2-4] Clean Start 1 discards the existing session.
    assert c.connect().session_present is False


def test_offline_qos1_message_delivered_on_resume(broker, clients):
    a = _persistent(clients, broker, "v5-offline")
    a.connect()
    a.subscribe("v5off/t", 1)
    a.disconnect()
    pub = clients(broker, "v5-offline-pub", version=V5)
    pub.connect()
    # A message for an offline session with subscribers is accepted with 0x00.
    assert pub.publish("v5off/t", b"while away", qos=1) == 0
    b = _persistent(clients, broker, "v5-offline")
    assert b.connect().session_present is True
    m = b.get()
    assert (m.topic, m.payload, m.qos) == ("v5off/t", b"while away", 1)


def test_session_expiry_zero_ends_session_at_disconnect(broker, raw, clients):
    a = raw(broker)
    a.connect("v5-exp0", version=5, clean=False)  # no Session Expiry Interval = 0
    a.subscribe([("v5e0/t", 1)], version=5)
    a.send(r.disconnect(version=5))
    # The broker closes the socket once it has released the session. (paho closes its own
    # socket at once, so a reconnect could overtake the DISCONNECT on the broker's side.)
    a.expect_closed()
    b = clients(broker, "v5-exp0", version=V5, clean=False)
    # [MQTT-3.1.2-23] absent expiry: the session ends when the connection closes.
    assert b.connect().session_present is False


def test_session_expires_after_interval(broker, clients):
    a = _persistent(clients, broker, "v5-exp1", expiry=1)
    a.connect()
    a.subscribe("v5e1/t", 1)
    a.disconnect()
    # The expiry has no observable event: wait it out (1 s) with margin.
    time.sleep(1.6)
    b = _persistent(clients, broker, "v5-exp1", expiry=1)
    # Section 3.1.2.11.2: the session is discarded once the interval has passed.
    assert b.connect().session_present is False


def test_session_kept_within_interval(broker, clients):
    a = _persistent(clients, broker, "v5-exp5", expiry=5)
    a.connect()
    a.subscribe("v5e5/t", 1)
    a.disconnect()
    b = _persistent(clients, broker, "v5-exp5", expiry=5)
    assert b.connect().session_present is True


def test_disconnect_can_shorten_expiry_to_zero(broker, clients):
    a = _persistent(clients, broker, "v5-shorten", expiry=60)
    a.connect()
    a.disconnect(properties=dict(SessionExpiryInterval=0))
    b = _persistent(clients, broker, "v5-shorten")
    # Section 3.14.2.2.2: the DISCONNECT's Session Expiry Interval replaces the CONNECT's.
    assert b.connect().session_present is False


def test_disconnect_cannot_set_expiry_when_connect_had_zero(broker, raw):
    c = raw(broker)
    c.connect("v5-zero-then-set", version=5)
    c.send(r.disconnect(5, reason=0, properties=r.props(r.prop(r.SESSION_EXPIRY, 30))))
    got = c.expect_closed()
    # Section 3.14.2.2.2: a Protocol Error; the server answers DISCONNECT 0x82.
    assert [(p.type, p.reason()) for p in got] == [(r.DISCONNECT, r.PROTOCOL_ERROR)]


def test_expired_session_drops_its_queue(broker, clients):
    a = _persistent(clients, broker, "v5-expq", expiry=1)
    a.connect()
    a.subscribe("v5eq/t", 1)
    a.disconnect()
    pub = clients(broker, "v5-expq-pub", version=V5)
    pub.connect()
    pub.publish("v5eq/t", b"stale", qos=1)
    time.sleep(1.6)  # let the 1 s session expiry pass (no observable event)
    b = _persistent(clients, broker, "v5-expq", expiry=60)
    assert b.connect().session_present is False
    b.subscribe("v5eq/end", 0)
    b.publish("v5eq/end", b"", qos=0)
    assert [m.topic for m in b.get_until("v5eq/end")] == ["v5eq/end"]


def test_takeover_with_clean_start_0_keeps_session(broker, clients):
    a = _persistent(clients, broker, "v5-tk")
    a.connect()
    a.subscribe("v5tk/t", 1)
    b = _persistent(clients, broker, "v5-tk")
    assert b.connect().session_present is True
    a.wait_disconnected()
    pub = clients(broker, "v5-tk-pub", version=V5)
    pub.connect()
    pub.publish("v5tk/t", b"kept", qos=1)
    assert b.get().payload == b"kept"


def test_unacknowledged_qos1_resent_with_dup_v5(broker, raw, clients):
    c = raw(broker)
    c.connect("v5-dup", version=5, clean=False, properties=r.props(r.prop(r.SESSION_EXPIRY, 60)))
    c.subscribe([("v5dup/t", 1)], version=5)
    pub = clients(broker, "v5-dup-pub", version=V5)
    pub.connect()
    pub.publish("v5dup/t", b"unacked", qos=1, properties=dict(UserProperty=[("a", "b")]))
    first = c.expect(r.PUBLISH)
    _, pid, _, _ = first.publish(5)
    c.close()
    c2 = raw(broker)
    c2.send(r.connect("v5-dup", version=5, clean=False, properties=r.props(r.prop(r.SESSION_EXPIRY, 60))))
    assert c2.expect(r.CONNACK).body[0] == 1
    again = c2.expect(r.PUBLISH)
    topic, pid2, props, payload = again.publish(5)
    # [MQTT-4.4.0-1] re-sent with DUP 1 [MQTT-3.3.1-1], same packet id, same properties.
    assert (topic, pid2, payload, bool(again.flags & 0x08)) == ("v5dup/t", pid, b"unacked", True)
    assert props[r.USER_PROPERTY] == [("a", "b")]


def test_takeover_with_clean_start_1_discards_session(broker, clients):
    a = _persistent(clients, broker, "v5-tk-clean")
    a.connect()
    a.subscribe("v5tkc/t", 1)
    b = _persistent(clients, broker, "v5-tk-clean", clean=True)
    assert b.connect().session_present is False
    # [MQTT-3.1.4-3] the existing connection is told 0x8E and closed.
    assert a.wait_disconnected()[1] == r.SESSION_TAKEN_OVER
    b.subscribe("v5tkc/end", 0)
    pub = clients(broker, "v5-tk-clean-pub", version=V5)
    pub.connect()
    pub.publish("v5tkc/t", b"old subscription", qos=1)
    pub.publish("v5tkc/end", b"")
    # [MQTT-3.1.2-4] Clean Start 1: the old session's subscription is gone.
    assert [m.topic for m in b.get_until("v5tkc/end")] == ["v5tkc/end"]
