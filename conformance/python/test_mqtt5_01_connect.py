"""MQTT 5.0 CONNECT / CONNACK: assigned client identifier, CONNACK properties, session takeover
with reason 0x8E, enhanced authentication refused, Server Keep Alive."""

import time

import rawmqtt as r
from pahoclient import V5


def test_connect_accepted_with_reason_success(broker, clients):
    ack = clients(broker, "v5-plain", version=V5).connect()
    assert (ack.reason_code, ack.session_present) == (0, False)
    # No identifier was assigned: the client sent one.
    assert ack.prop("AssignedClientIdentifier") is None


def test_empty_client_id_gets_assigned_identifier(broker, clients):
    ack = clients(broker, "", version=V5).connect()
    assigned = ack.prop("AssignedClientIdentifier")
    # [MQTT-3.2.2-16] a zero-length ClientID gets an Assigned Client Identifier in CONNACK.
    assert assigned, "no Assigned Client Identifier in CONNACK"
    ack2 = clients(broker, "", version=V5).connect()
    assert ack2.prop("AssignedClientIdentifier") not in (None, assigned)


def test_assigned_identifier_is_usable_for_resume(broker, clients):
    a = clients(broker, "", version=V5, clean=False, properties=dict(SessionExpiryInterval=60))
    assigned = a.connect().prop("AssignedClientIdentifier")
    a.subscribe("aci/t", 1)
    a.disconnect()
    b = clients(broker, assigned, version=V5, clean=False, properties=dict(SessionExpiryInterval=60))
    assert b.connect().session_present is True


def test_empty_client_id_raw_v5_connack_properties(broker, raw):
    c = raw(broker)
    c.send(r.connect("", version=5))
    ack = c.expect(r.CONNACK)
    assert ack.reason() == 0
    p = ack.properties()
    assert len(p[r.ASSIGNED_CLIENT_ID]) == 1 and p[r.ASSIGNED_CLIENT_ID][0]


def test_connack_advertises_configured_limits(make_broker, raw):
    b = make_broker(receive_maximum=7, topic_alias_maximum=3, max_packet_size=4096)
    c = raw(b)
    ack = c.connect("limits", version=5)
    p = ack.properties()
    # Section 3.2.2.3: Receive Maximum, Topic Alias Maximum, Maximum Packet Size as configured.
    assert p[r.RECEIVE_MAXIMUM] == [7]
    assert p[r.TOPIC_ALIAS_MAXIMUM] == [3]
    assert p[r.MAXIMUM_PACKET_SIZE] == [4096]


def test_server_keep_alive_lowers_client_keep_alive(make_broker, raw):
    b = make_broker(max_keepalive_secs=1)
    c = raw(b)
    ack = c.connect("ska", version=5, keepalive=60)
    # [MQTT-3.2.2-21] the client must use the Server Keep Alive sent in CONNACK...
    assert ack.properties()[r.SERVER_KEEP_ALIVE] == [1]
    start = time.monotonic()
    # ...and the server enforces it: silence for 1.5 x 1 s closes the connection.
    got = c.expect_closed(timeout=4)
    assert time.monotonic() - start <= 3.5
    assert [p.reason() for p in got] == [r.KEEP_ALIVE_TIMEOUT]


def test_session_takeover_sends_disconnect_0x8e(broker, clients):
    a = clients(broker, "v5-takeover", version=V5)
    a.connect()
    b = clients(broker, "v5-takeover", version=V5)
    b.connect()
    from_server, reason, _ = a.wait_disconnected()
    # [MQTT-3.1.4-3] DISCONNECT with 0x8E (Session taken over) to the existing client.
    assert from_server is True
    assert reason == r.SESSION_TAKEN_OVER
    b.subscribe("to/t", 0)
    b.publish("to/t", b"still works")
    assert b.get().payload == b"still works"


def test_session_takeover_raw_bytes(broker, raw):
    a = raw(broker)
    a.connect("v5-takeover-raw", version=5)
    b = raw(broker)
    b.connect("v5-takeover-raw", version=5)
    got = a.expect_closed()
    assert [(p.type, p.reason()) for p in got] == [(r.DISCONNECT, 0x8E)]


def test_authentication_method_is_refused_with_0x8c(broker, clients, raw):
    c = raw(broker)
    c.send(r.connect("auth-m", version=5, properties=r.props(r.prop(r.AUTH_METHOD, "SCRAM-SHA-1"))))
    ack = c.expect(r.CONNACK)
    # [MQTT-4.12.0-1] unsupported Authentication Method: CONNACK 0x8C (or 0x87), then close.
    assert ack.reason() == r.BAD_AUTH_METHOD
    assert ack.body[0] == 0  # session present 0 on a refusal [MQTT-3.2.2-6]
    assert c.expect_closed() == []
    p = clients(broker, "auth-paho", version=V5, properties=dict(AuthenticationMethod="GS2-KRB5"))
    assert p.connect(expect_success=False).reason_code == 0x8C


def test_v5_unsupported_protocol_level(broker, raw):
    c = raw(broker)
    c.send(r.connect("level7", version=7))
    # [MQTT-3.1.2-2] (as Mosquitto: a v3-shaped CONNACK with 0x01 for an unknown level).
    assert c.expect(r.CONNACK).raw == b"\x20\x02\x00\x01"
    c.expect_closed()


def test_user_properties_in_connect_are_accepted(broker, clients):
    c = clients(broker, "up-conn", version=V5, properties=dict(UserProperty=[("k", "v"), ("k", "w")]))
    assert c.connect().reason_code == 0


def test_request_problem_information_zero_accepted(broker, raw):
    c = raw(broker)
    c.connect("rpi", version=5, properties=r.props(r.prop(0x17, 0), r.prop(0x19, 1)))
    c.expect_open()


def test_server_keep_alive_when_client_sends_zero(make_broker, raw):
    b = make_broker(max_keepalive_secs=30)
    c = raw(b)
    ack = c.connect("ka-zero", version=5, keepalive=0)
    # Section 3.2.2.3.14: the server may impose a keep alive on a client that asked for none.
    assert ack.properties()[r.SERVER_KEEP_ALIVE] == [30]
