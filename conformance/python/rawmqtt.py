"""MQTT packets built and read by hand over a plain socket, independent of any MQTT library (and
of ferromq's own codec), for byte-exact and deliberately malformed traffic.

Builders return `bytes`; `RawClient` sends them and reads whole packets back with timeouts.
"""

import socket
import struct
import time
from dataclasses import dataclass

TIMEOUT = 5.0

# Packet types (first nibble of the fixed header).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15
NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
         8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
         14: "DISCONNECT", 15: "AUTH"}

# v5 reason codes used by the tests.
MALFORMED = 0x81
PROTOCOL_ERROR = 0x82
SESSION_TAKEN_OVER = 0x8E
KEEP_ALIVE_TIMEOUT = 0x8D
TOPIC_NAME_INVALID = 0x90
PACKET_TOO_LARGE = 0x95
TOPIC_ALIAS_INVALID = 0x94
BAD_AUTH_METHOD = 0x8C

# --- encoding ----------------------------------------------------------------------------------


def varint(n):
    """Variable Byte Integer (MQTT 1.5.5)."""
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def s(text):
    """UTF-8 string (or raw bytes) with its 2-byte length."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return u16(len(data)) + data


def packet(first_byte, body=b""):
    """Fixed header (type/flags byte + remaining length) + body."""
    return bytes([first_byte]) + varint(len(body)) + body


# v5 properties: identifier -> kind.
_PROP_KINDS = {
    0x01: "byte", 0x02: "u32", 0x03: "str", 0x08: "str", 0x09: "bin", 0x0B: "varint", 0x11: "u32",
    0x12: "str", 0x13: "u16", 0x15: "str", 0x16: "bin", 0x17: "byte", 0x18: "u32", 0x19: "byte",
    0x1A: "str", 0x1C: "str", 0x1F: "str", 0x21: "u16", 0x22: "u16", 0x23: "u16", 0x24: "byte",
    0x25: "byte", 0x26: "pair", 0x27: "u32", 0x28: "byte", 0x29: "byte", 0x2A: "byte",
}
PAYLOAD_FORMAT, MESSAGE_EXPIRY, CONTENT_TYPE, RESPONSE_TOPIC, CORRELATION_DATA = 0x01, 0x02, 0x03, 0x08, 0x09
SUBSCRIPTION_ID, SESSION_EXPIRY, ASSIGNED_CLIENT_ID, SERVER_KEEP_ALIVE = 0x0B, 0x11, 0x12, 0x13
AUTH_METHOD, AUTH_DATA, WILL_DELAY, REASON_STRING, RECEIVE_MAXIMUM = 0x15, 0x16, 0x18, 0x1F, 0x21
TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS, MAXIMUM_QOS, RETAIN_AVAILABLE, USER_PROPERTY = 0x22, 0x23, 0x24, 0x25, 0x26
MAXIMUM_PACKET_SIZE = 0x27


def prop(ident, value):
    """One encoded v5 property."""
    kind = _PROP_KINDS[ident]
    head = bytes([ident])
    if kind == "byte":
        return head + bytes([value])
    if kind == "u16":
        return head + u16(value)
    if kind == "u32":
        return head + u32(value)
    if kind == "varint":
        return head + varint(value)
    if kind in ("str", "bin"):
        return head + s(value)
    if kind == "pair":
        return head + s(value[0]) + s(value[1])
    raise ValueError(kind)


def props(*items):
    """A v5 property block: length + the encoded properties (each from `prop`)."""
    body = b"".join(items)
    return varint(len(body)) + body


def connect(client_id="", version=4, clean=True, keepalive=60, will=None, username=None, password=None,
            properties=b"", flags_extra=0):
    """CONNECT. version 3 = MQTT 3.1 ("MQIsdp"), 4 = 3.1.1, 5 = 5.0, anything else is sent as
    "MQTT" with that level. `will` = dict(topic, payload, qos, retain, properties)."""
    name = "MQIsdp" if version == 3 else "MQTT"
    flags = flags_extra
    if clean:
        flags |= 0x02
    payload = s(client_id)
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        if version == 5:
            payload += will.get("properties", props())
        payload += s(will["topic"]) + s(will.get("payload", b""))
    if username is not None:
        flags |= 0x80
        payload += s(username)
    if password is not None:
        flags |= 0x40
        payload += s(password)
    variable = s(name) + bytes([version, flags]) + u16(keepalive)
    if version == 5:
        variable += properties if properties else props()
    return packet(0x10, variable + payload)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, packet_id=None, version=4, properties=None):
    first = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = s(topic)
    if qos:
        body += u16(packet_id if packet_id is not None else 1)
    if version == 5:
        body += properties if properties is not None else props()
    return packet(first, body + (payload.encode() if isinstance(payload, str) else payload))


def subscribe(packet_id, filters, version=4, properties=None):
    """`filters` = [(filter, options byte)] (QoS, or the v5 options byte)."""
    body = u16(packet_id)
    if version == 5:
        body += properties if properties is not None else props()
    for f, opts in filters:
        body += s(f) + bytes([opts])
    return packet(0x82, body)


def unsubscribe(packet_id, filters, version=4):
    body = u16(packet_id) + (props() if version == 5 else b"")
    for f in filters:
        body += s(f)
    return packet(0xA2, body)


def ack(kind, packet_id, version=4, reason=None):
    """PUBACK / PUBREC / PUBREL / PUBCOMP (PUBREL gets its mandatory flags 0b0010)."""
    first = (kind << 4) | (0x02 if kind == PUBREL else 0)
    body = u16(packet_id)
    if version == 5 and reason is not None:
        body += bytes([reason])
    return packet(first, body)


def disconnect(version=4, reason=None, properties=None):
    if version == 5 and (reason is not None or properties is not None):
        return packet(0xE0, bytes([reason or 0]) + (properties if properties is not None else props()))
    return packet(0xE0)


PINGREQ_BYTES = b"\xc0\x00"

# --- decoding ----------------------------------------------------------------------------------


def parse_props(data, pos=0):
    """Decodes a property block at `pos`; returns ({identifier: [values]}, position after it)."""
    length, pos = read_varint(data, pos)
    end = pos + length
    out = {}
    while pos < end:
        ident = data[pos]
        pos += 1
        kind = _PROP_KINDS.get(ident)
        if kind == "byte":
            value = data[pos]
            pos += 1
        elif kind == "u16":
            value = struct.unpack_from("!H", data, pos)[0]
            pos += 2
        elif kind == "u32":
            value = struct.unpack_from("!I", data, pos)[0]
            pos += 4
        elif kind == "varint":
            value, pos = read_varint(data, pos)
        elif kind in ("str", "bin"):
            n = struct.unpack_from("!H", data, pos)[0]
            raw = bytes(data[pos + 2:pos + 2 + n])
            value = raw.decode("utf-8") if kind == "str" else raw
            pos += 2 + n
        elif kind == "pair":
            k, pos = read_str(data, pos)
            v, pos = read_str(data, pos)
            value = (k, v)
        else:
            raise ValueError(f"unknown property 0x{ident:02x}")
        out.setdefault(ident, []).append(value)
    return out, end


def read_varint(data, pos):
    value, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def read_str(data, pos):
    n = struct.unpack_from("!H", data, pos)[0]
    return bytes(data[pos + 2:pos + 2 + n]).decode("utf-8"), pos + 2 + n


@dataclass
class Packet:
    type: int
    flags: int
    body: bytes

    @property
    def name(self):
        return NAMES.get(self.type, str(self.type))

    @property
    def raw(self):
        return packet((self.type << 4) | self.flags, self.body)

    def reason(self):
        """v5 reason code of CONNACK / PUBACK.. / DISCONNECT (0 when omitted)."""
        if self.type == CONNACK:
            return self.body[1]
        if self.type == DISCONNECT:
            return self.body[0] if self.body else 0
        if self.type in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            return self.body[2] if len(self.body) > 2 else 0
        raise ValueError(self.name)

    def properties(self):
        """v5 properties of CONNACK / DISCONNECT."""
        if self.type == CONNACK:
            return parse_props(self.body, 2)[0] if len(self.body) > 2 else {}
        if self.type == DISCONNECT:
            return parse_props(self.body, 1)[0] if len(self.body) > 1 else {}
        raise ValueError(self.name)

    def publish(self, version=4):
        """(topic, packet id or None, properties dict, payload) of a PUBLISH."""
        assert self.type == PUBLISH, self
        topic, pos = read_str(self.body, 0)
        pid = None
        if (self.flags >> 1) & 3:
            pid = struct.unpack_from("!H", self.body, pos)[0]
            pos += 2
        properties = {}
        if version == 5:
            properties, pos = parse_props(self.body, pos)
        return topic, pid, properties, bytes(self.body[pos:])

    def packet_id(self):
        return struct.unpack_from("!H", self.body, 0)[0]

    def __repr__(self):
        return f"<{self.name} flags={self.flags:#x} body={self.body.hex()}>"


class RawClient:
    """A TCP connection to the broker speaking hand-made bytes."""

    def __init__(self, port, timeout=TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError from None
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def recv(self, timeout=TIMEOUT):
        """The next whole packet, or None if the broker closed the connection first; raises
        TimeoutError if neither happens within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            pkt = self._take()
            if pkt is not None:
                return pkt
            if self.eof:
                return None
            self._fill(deadline)

    def _take(self):
        if len(self.buf) < 2:
            return None
        length, shift, pos = 0, 0, 1
        while True:
            if pos >= len(self.buf):
                return None
            b = self.buf[pos]
            length |= (b & 0x7F) << shift
            pos += 1
            if not b & 0x80:
                break
            shift += 7
        if len(self.buf) < pos + length:
            return None
        first = self.buf[0]
        pkt = Packet(first >> 4, first & 0x0F, bytes(self.buf[pos:pos + length]))
        del self.buf[:pos + length]
        return pkt

    def expect(self, ptype, timeout=TIMEOUT):
        """The next packet, asserted to be of type `ptype`."""
        try:
            pkt = self.recv(timeout)
        except TimeoutError:
            raise AssertionError(f"expected {NAMES[ptype]}, got nothing within {timeout}s") from None
        assert pkt is not None, f"expected {NAMES[ptype]}, connection closed"
        assert pkt.type == ptype, f"expected {NAMES[ptype]}, got {pkt}"
        return pkt

    def expect_closed(self, timeout=TIMEOUT):
        """Reads until the broker closes the connection; returns the packets received before.
        Fails if the connection is still open after `timeout`."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                pkt = self.recv(max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"connection still open after {timeout}s; received {got}") from None
            if pkt is None:
                return got
            got.append(pkt)

    def expect_open(self, window=0.3):
        """Asserts the connection stays open (answers a PINGREQ with PINGRESP)."""
        self.send(PINGREQ_BYTES)
        pkt = self.expect(PINGRESP, timeout=max(window, TIMEOUT))
        return pkt

    def connect(self, client_id="c", version=4, expect_rc=0, **kwargs):
        """CONNECT and the CONNACK, asserting its return / reason code."""
        self.send(connect(client_id, version, **kwargs))
        ack = self.expect(CONNACK)
        assert ack.reason() == expect_rc, f"CONNACK {ack} (want code {expect_rc:#x})"
        return ack

    def subscribe(self, filters, version=4, packet_id=1, properties=None):
        if isinstance(filters, str):
            filters = [(filters, 0)]
        self.send(subscribe(packet_id, filters, version, properties))
        ack = self.expect(SUBACK)
        assert ack.packet_id() == packet_id
        return ack

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
