"""MQTT over WebSocket (MQTT 3.1.1 / 5.0 section 6) with paho-mqtt (transport="websockets"), as
Mosquitto's and RabbitMQ web-mqtt listeners serve it: path /mqtt, subprotocol mqtt, binary
messages; and over TLS (wss). Hand-written upgrade requests check the refusals."""

import base64
import os
import socket

import pytest

from pahoclient import V311, V5
from tlsclient import context


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_paho_over_websocket_interoperates_with_tcp(make_broker, clients, version):
    b = make_broker(listeners=["MQTT-WS"])
    ws = clients(b.ws_port, "ws", version=version, transport="websockets")
    ws.connect()
    ws.subscribe("ws/#", qos=1)
    tcp = clients(b.port, "tcp", version=version)
    tcp.connect()
    tcp.subscribe("back/#", qos=1)
    tcp.publish("ws/a", b"from tcp", qos=1)
    m = ws.get(timeout=5)
    assert (m.topic, m.payload) == ("ws/a", b"from tcp")
    # A payload larger than one TCP segment crosses intact in both directions.
    big = os.urandom(200_000)
    ws.publish("back/big", big, qos=1)
    assert tcp.get(timeout=5).payload == big


def test_paho_over_secure_websocket(make_tls_broker, clients):
    b = make_tls_broker(client_cert="optional", listeners=["MQTT-WSS"],
                        extra=["--mqtt-identity-as-username"], log_level="info,ferromq::mqtt=debug")
    c = clients(b.wss_port, "wss", transport="websockets", tls=context(cert="client"))
    c.connect()
    c.subscribe("s/#", qos=1)
    c.publish("s/x", b"secure", qos=1)
    assert c.get(timeout=5).payload == b"secure"
    # The certificate identity applies on wss as on mqtts.
    b.wait_log(r'client connected .*client_id=wss user=Some\("device-1"\)')


def upgrade(port, path="/mqtt", protocol="mqtt"):
    """Sends a WebSocket upgrade request by hand; returns the status line and headers."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
    return head[0], headers


def test_upgrade_selects_the_mqtt_subprotocol(make_broker):
    b = make_broker(listeners=["MQTT-WS"])
    status, headers = upgrade(b.ws_port, protocol="chat, mqtt")
    assert status.startswith("HTTP/1.1 101"), status
    # [MQTT-6.0.0-4]
    assert headers.get("sec-websocket-protocol") == "mqtt"


def test_wrong_path_or_missing_subprotocol_is_refused(make_broker, clients):
    b = make_broker(listeners=["MQTT-WS"])
    assert upgrade(b.ws_port, path="/other")[0].startswith("HTTP/1.1 404")
    assert upgrade(b.ws_port, protocol=None)[0].startswith("HTTP/1.1 400")
    assert upgrade(b.ws_port, protocol="chat")[0].startswith("HTTP/1.1 400")
    b.wait_log("WebSocket upgrade refused")
    ok = clients(b.ws_port, "after", transport="websockets")
    ok.connect()
