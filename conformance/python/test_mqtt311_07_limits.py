"""Broker limits visible on the wire in every version: the outgoing in-flight window for clients
without a Receive Maximum (`max_inflight`), and the per-session queue bound
(`max_queued_messages`, Mosquitto's option of the same name: new messages are dropped)."""

import pytest

import rawmqtt as r
from pahoclient import V311, V5


@pytest.mark.parametrize("version", [3, 4], ids=["v31", "v311"])
def test_max_inflight_limits_unacknowledged_qos1(make_broker, raw, clients, version):
    b = make_broker(max_inflight=2)
    c = raw(b)
    c.connect("inflight", version=version)
    c.subscribe([("inf/t", 1)], version=version)
    pub = clients(b, "inflight-pub", version=V311)
    pub.connect()
    for i in range(4):
        pub.publish("inf/t", str(i).encode(), qos=1)
    p0, p1 = c.expect(r.PUBLISH), c.expect(r.PUBLISH)
    try:
        extra = c.recv(timeout=0.5)
    except TimeoutError:
        extra = None
    # At most max_inflight unacknowledged QoS 1 messages towards the client.
    assert extra is None, extra
    c.send(r.ack(r.PUBACK, p0.publish(version)[1]))
    p2 = c.expect(r.PUBLISH)
    assert p2.publish(version)[3] == b"2"
    for p in (p1, p2):
        c.send(r.ack(r.PUBACK, p.publish(version)[1]))
    assert c.expect(r.PUBLISH).publish(version)[3] == b"3"


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_max_queued_messages_drops_newest(make_broker, clients, version):
    b = make_broker(max_queued_messages=5)
    kwargs = dict(properties=dict(SessionExpiryInterval=60)) if version == V5 else {}
    a = clients(b, "queue-bound", version=version, clean=False, **kwargs)
    a.connect()
    a.subscribe("qb/t", 1)
    a.disconnect()
    pub = clients(b, "queue-bound-pub", version=version)
    pub.connect()
    for i in range(10):
        pub.publish("qb/t", str(i).encode(), qos=1)
    again = clients(b, "queue-bound", version=version, clean=False, **kwargs)
    again.connect()
    again.subscribe("qb/end", 0)
    pub.publish("qb/end", b"", qos=0)
    got = [m.payload for m in again.get_until("qb/end")][:-1]
    # The queue holds the first 5; later messages were dropped while it was full.
    assert got == [b"0", b"1", b"2", b"3", b"4"]
