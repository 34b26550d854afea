"""Connection limits (`[limits]`): `max_connections` over all listeners, refused at accept
before any handshake; `max_connections_per_user`, refused after login with MQTT CONNACK 0x97
Quota exceeded (3.1.1: return code 3 Server unavailable) and AMQP connection.close 530
NOT_ALLOWED (RabbitMQ's user connection limit). Slots come back when connections close."""

import socket
import time

import pika
import pytest

import rawmqtt as r
from pahoclient import V311, V5


REFUSED = (pika.exceptions.ConnectionClosedByBroker, pika.exceptions.ProbableAccessDeniedError)


def amqp_params(b, user="guest", password="guest"):
    return pika.ConnectionParameters(
        host="127.0.0.1", port=b.amqp_port, credentials=pika.PlainCredentials(user, password),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=30)


def closed_without_answer(port, payload):
    """Connects, sends `payload`, and reports whether the broker closed without a byte."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(payload)
        try:
            return s.recv(64) == b""
        except ConnectionResetError:
            return True
    finally:
        s.close()


def test_max_connections_spans_protocols_and_frees_on_close(make_broker, clients):
    b = make_broker(extra_toml="[limits]\nmax_connections = 2\n")
    mqtt = clients(b, "limit-1")
    mqtt.connect()
    amqp = pika.BlockingConnection(amqp_params(b))
    # Both listeners share the count: a third MQTT or AMQP socket is closed unanswered.
    assert closed_without_answer(b.port, r.connect("limit-3"))
    assert closed_without_answer(b.amqp_port, b"AMQP\x00\x00\x09\x01")
    b.wait_log(r"connection limit reached: refusing new connections")
    amqp.close()
    # The closed connection's slot is free again (its task may take a moment to end).
    deadline = time.monotonic() + 5
    while closed_without_answer(b.port, r.connect("limit-again")):
        assert time.monotonic() < deadline, "slot not released"
        time.sleep(0.05)


def test_max_connections_per_user_mqtt_v5_and_v311(make_broker, clients):
    b = make_broker(extra_toml="[limits]\nmax_connections_per_user = 1\n")
    first = clients(b, "per-user-1", version=V5, username="guest", password="guest")
    first.connect()
    v5 = clients(b, "per-user-2", version=V5, username="guest", password="guest")
    assert v5.connect(expect_success=False).reason_code == 0x97
    v3 = clients(b, "per-user-3", version=V311, username="guest", password="guest")
    # 3.1.1 has no Quota exceeded: 3 Server unavailable, which paho reports as 3.
    assert v3.connect(expect_success=False).reason_code in (3, 0x88)
    # Anonymous clients are not a user: not counted.
    clients(b, "anon-1").connect()
    clients(b, "anon-2").connect()
    first.disconnect()
    deadline = time.monotonic() + 5
    while clients(b, "per-user-4", version=V5, username="guest",
                  password="guest").connect(expect_success=False).reason_code != 0:
        assert time.monotonic() < deadline, "user slot not released"
        time.sleep(0.05)


def test_max_connections_per_user_amqp_530(make_broker, clients):
    b = make_broker(extra_toml="[limits]\nmax_connections_per_user = 1\n")
    first = pika.BlockingConnection(amqp_params(b))
    # pika reports a 530 at connection.open as a probable access denial, quoting the close.
    with pytest.raises(REFUSED) as e:
        pika.BlockingConnection(amqp_params(b))
    assert "(530)" in str(e.value)
    assert "user connection limit (1) is reached" in str(e.value)
    # The same user over MQTT counts against the same limit.
    m = clients(b, "guest-mqtt", version=V5, username="guest", password="guest")
    assert m.connect(expect_success=False).reason_code == 0x97
    first.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            pika.BlockingConnection(amqp_params(b)).close()
            break
        except REFUSED:
            assert time.monotonic() < deadline, "user slot not released"
            time.sleep(0.05)
