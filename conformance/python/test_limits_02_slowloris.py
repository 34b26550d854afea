"""Slowloris: a socket that sends nothing, or only part of the MQTT CONNECT or the AMQP
protocol header, is closed after its protocol's timeout (`[mqtt] connect_timeout_secs` for
CONNECT; `[amqp] handshake_timeout_secs` from accept to connection.open-ok), on plain and TLS
listeners. Each case sets the other protocol's timeout far longer, so the test shows which
setting closed it. Raw sockets, so nothing the
client library does can hide a broker that waits forever."""

import socket
import ssl
import time

import pytest

import rawmqtt as r
from tlsclient import context

TIMEOUT = 1
LONG = 30


def timeouts(listener):
    """Broker settings giving `listener`'s protocol the short timeout and the other a long one."""
    short_mqtt = listener.startswith("MQTT")
    return {
        "connect_timeout_secs": TIMEOUT if short_mqtt else LONG,
        "extra_toml": f"[amqp]\nhandshake_timeout_secs = {LONG if short_mqtt else TIMEOUT}\n",
    }


def closed_after(sock, payload, limit=6.0):
    """Sends `payload`, then waits for the broker to close; returns the seconds it took."""
    start = time.monotonic()
    if payload:
        sock.sendall(payload)
    sock.settimeout(limit)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
    except (ConnectionResetError, ssl.SSLError):
        pass
    except socket.timeout:
        pytest.fail(f"connection still open after {limit}s")
    return time.monotonic() - start


CASES = {
    "mqtt-silent": ("MQTT", b""),
    "mqtt-partial-connect": ("MQTT", r.connect("slow")[:5]),
    "mqtt-fixed-header-only": ("MQTT", b"\x10\x7f"),
    "amqp-silent": ("AMQP", b""),
    "amqp-partial-header": ("AMQP", b"AMQP\x00"),
}


@pytest.mark.parametrize("listener,payload", CASES.values(), ids=CASES.keys())
def test_idle_or_partial_plain_connections_are_closed(make_broker, listener, payload):
    b = make_broker(**timeouts(listener))
    s = socket.create_connection(("127.0.0.1", b.ports[listener]), timeout=5)
    try:
        took = closed_after(s, payload)
    finally:
        s.close()
    # Closed by the timeout, not at once and not much later.
    assert TIMEOUT * 0.8 <= took < TIMEOUT + 3, took


@pytest.mark.parametrize("listener,payload", [("MQTTS", b""), ("MQTTS", b"\x10\x20\x00"),
                                              ("AMQPS", b""), ("AMQPS", b"AMQ")],
                         ids=["mqtts-silent", "mqtts-partial", "amqps-silent", "amqps-partial"])
def test_idle_or_partial_tls_connections_are_closed(make_tls_broker, listener, payload):
    b = make_tls_broker(**timeouts(listener))
    raw = socket.create_connection(("127.0.0.1", b.ports[listener]), timeout=5)
    s = context().wrap_socket(raw, server_hostname="localhost")
    try:
        took = closed_after(s, payload)
    finally:
        s.close()
    assert TIMEOUT * 0.8 <= took < TIMEOUT + 3, took
