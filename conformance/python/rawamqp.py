"""AMQP 0-9-1 frames built and read by hand over a plain socket, independent of any AMQP library
(and of ferromq's own codec), for byte-exact and deliberately malformed traffic.

Builders return `bytes`; `RawAmqp` sends them and reads whole frames (or the 8-byte protocol
header a broker answers a wrong header with) back with timeouts.
"""

import socket
import struct
import time
from dataclasses import dataclass

TIMEOUT = 5.0

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE

# Reply codes (AMQP 0-9-1 section 1.9 constants).
ACCESS_REFUSED = 403
FRAME_ERROR, SYNTAX_ERROR, COMMAND_INVALID, CHANNEL_ERROR, UNEXPECTED_FRAME = 501, 502, 503, 504, 505
NOT_ALLOWED, NOT_IMPLEMENTED = 530, 540

# (class-id, method-id) of the methods the tests use.
CONNECTION_START, CONNECTION_START_OK = (10, 10), (10, 11)
CONNECTION_TUNE, CONNECTION_TUNE_OK = (10, 30), (10, 31)
CONNECTION_OPEN, CONNECTION_OPEN_OK = (10, 40), (10, 41)
CONNECTION_CLOSE, CONNECTION_CLOSE_OK = (10, 50), (10, 51)
CHANNEL_OPEN, CHANNEL_OPEN_OK = (20, 10), (20, 11)
CHANNEL_CLOSE, CHANNEL_CLOSE_OK = (20, 40), (20, 41)
QUEUE_DECLARE, QUEUE_DECLARE_OK = (50, 10), (50, 11)
BASIC_PUBLISH = (60, 40)
BASIC_GET, BASIC_GET_OK, BASIC_GET_EMPTY = (60, 70), (60, 71), (60, 72)

# --- encoding ----------------------------------------------------------------------------------


def u8(n):
    return struct.pack("!B", n)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def u64(n):
    return struct.pack("!Q", n)


def shortstr(text):
    data = text.encode() if isinstance(text, str) else bytes(text)
    return u8(len(data)) + data


def longstr(text):
    data = text.encode() if isinstance(text, str) else bytes(text)
    return u32(len(data)) + data


def table(items=None):
    """A field table of long strings ('S'), booleans ('t') and nested tables ('F')."""
    body = b""
    for key, value in (items or {}).items():
        if isinstance(value, bool):
            body += shortstr(key) + b"t" + u8(value)
        elif isinstance(value, dict):
            body += shortstr(key) + b"F" + table(value)
        else:
            body += shortstr(key) + b"S" + longstr(value)
    return u32(len(body)) + body


def bits(*flags):
    return u8(sum(1 << i for i, f in enumerate(flags) if f))


def frame(ftype, channel, payload, end=FRAME_END):
    return u8(ftype) + u16(channel) + u32(len(payload)) + payload + u8(end)


def method(channel, class_method, args=b"", end=FRAME_END):
    class_id, method_id = class_method
    return frame(FRAME_METHOD, channel, u16(class_id) + u16(method_id) + args, end)


def content_header(channel, body_size, class_id=60, properties=b"", flags=0):
    """A content header; `flags` / `properties` are the raw property flags and list."""
    return frame(FRAME_HEADER, channel, u16(class_id) + u16(0) + u64(body_size) + u16(flags) + properties)


def body(channel, data):
    return frame(FRAME_BODY, channel, data)


def heartbeat(channel=0):
    return frame(FRAME_HEARTBEAT, channel, b"")


def start_ok(user="guest", password="guest", capabilities=None, mechanism="PLAIN"):
    """connection.start-ok; PLAIN's response is `\\0user\\0password`, AMQPLAIN's a field table
    (LOGIN, PASSWORD) without its length prefix."""
    props = {"product": "rawamqp", "capabilities": capabilities or {}}
    if mechanism == "AMQPLAIN":
        response = table({"LOGIN": user, "PASSWORD": password})[4:]
    else:
        response = b"\x00" + user.encode() + b"\x00" + password.encode()
    return method(0, CONNECTION_START_OK, table(props) + shortstr(mechanism) + longstr(response) + shortstr("en_US"))


def tune_ok(channel_max=0, frame_max=0, heartbeat_secs=0):
    return method(0, CONNECTION_TUNE_OK, u16(channel_max) + u32(frame_max) + u16(heartbeat_secs))


def connection_open(vhost="/"):
    return method(0, CONNECTION_OPEN, shortstr(vhost) + shortstr("") + bits(False))


def connection_close(code=200, text="bye"):
    return method(0, CONNECTION_CLOSE, u16(code) + shortstr(text) + u16(0) + u16(0))


def connection_close_ok():
    return method(0, CONNECTION_CLOSE_OK)


def channel_open(channel):
    return method(channel, CHANNEL_OPEN, shortstr(""))


def queue_declare(channel, queue, arguments=None, passive=False, durable=False, exclusive=False,
                  auto_delete=False):
    return method(channel, QUEUE_DECLARE, u16(0) + shortstr(queue)
                  + bits(passive, durable, exclusive, auto_delete, False) + table(arguments))


def basic_publish(channel, exchange, routing_key, mandatory=False):
    return method(channel, BASIC_PUBLISH, u16(0) + shortstr(exchange) + shortstr(routing_key)
                  + bits(mandatory, False))


def basic_get(channel, queue, no_ack=True):
    return method(channel, BASIC_GET, u16(0) + shortstr(queue) + bits(no_ack))


# --- decoding ----------------------------------------------------------------------------------


class Reader:
    """Reads AMQP fields from a method payload, front to back."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        assert len(out) == n, f"field runs past the end of the payload: {self.data!r}"
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def u64(self):
        return struct.unpack("!Q", self.take(8))[0]

    def shortstr(self):
        return self.take(self.u8()).decode()

    def longstr(self):
        return self.take(self.u32())

    def table(self):
        """Skips a field table, returning its raw bytes."""
        return self.take(self.u32())


@dataclass
class Frame:
    type: int
    channel: int
    payload: bytes

    @property
    def method(self):
        """(class-id, method-id) of a method frame."""
        assert self.type == FRAME_METHOD, f"not a method frame: {self}"
        return struct.unpack("!HH", self.payload[:4])

    def args(self):
        return Reader(self.payload[4:])

    def __len__(self):
        return len(self.payload) + 8

    def __repr__(self):
        if self.type == FRAME_METHOD:
            return f"Frame(method {self.method} ch{self.channel}, {len(self.payload)} bytes)"
        return f"Frame(type {self.type} ch{self.channel}, {len(self.payload)} bytes)"


@dataclass
class Close:
    """connection.close or channel.close arguments."""
    code: int
    text: str
    class_id: int
    method_id: int

    @classmethod
    def parse(cls, f):
        r = f.args()
        return cls(r.u16(), r.shortstr(), r.u16(), r.u16())


@dataclass
class Tune:
    channel_max: int
    frame_max: int
    heartbeat: int


class RawAmqp:
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

    def recv_bytes(self, n, timeout=TIMEOUT):
        """Exactly `n` bytes, or fewer if the broker closed the connection first."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < n and not self.eof:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv(self, timeout=TIMEOUT):
        """The next whole frame, or None if the broker closed the connection first; raises
        TimeoutError if neither happens within `timeout`. Checks the frame-end octet."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 7:
                ftype, channel, size = struct.unpack("!BHI", self.buf[:7])
                if len(self.buf) >= size + 8:
                    assert self.buf[size + 7] == FRAME_END, f"bad frame end from broker: {self.buf[:size + 8]!r}"
                    f = Frame(ftype, channel, bytes(self.buf[7:7 + size]))
                    del self.buf[:size + 8]
                    return f
            if self.eof:
                assert not self.buf, f"connection closed inside a frame: {bytes(self.buf)!r}"
                return None
            self._fill(deadline)

    def expect(self, class_method, channel=None, timeout=TIMEOUT, skip_heartbeats=True):
        """The next method frame, asserted to be `class_method` (on `channel` if given)."""
        while True:
            try:
                f = self.recv(timeout)
            except TimeoutError:
                raise AssertionError(f"expected method {class_method}, got nothing within {timeout}s") from None
            assert f is not None, f"expected method {class_method}, connection closed"
            if skip_heartbeats and f.type == FRAME_HEARTBEAT:
                continue
            assert f.type == FRAME_METHOD and f.method == class_method, f"expected {class_method}, got {f}"
            if channel is not None:
                assert f.channel == channel, f"expected {class_method} on channel {channel}, got {f}"
            return f

    def expect_close(self, timeout=TIMEOUT):
        """The broker's connection.close (on channel 0), parsed."""
        return Close.parse(self.expect(CONNECTION_CLOSE, channel=0, timeout=timeout))

    def expect_closed(self, timeout=TIMEOUT):
        """Reads until the broker closes the socket; returns the frames received before. Fails
        if the connection is still open after `timeout`."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self.recv(max(0.001, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"connection still open after {timeout}s; received {got}") from None
            if f is None:
                return got
            got.append(f)

    def handshake(self, frame_max=None, heartbeat_secs=0, channel_max=None, vhost="/", mechanism="PLAIN"):
        """Protocol header to open-ok. Returns the broker's connection.tune proposal. Limits left
        at None echo the broker's proposal in tune-ok, as clients do."""
        self.send(PROTOCOL_HEADER)
        self.expect(CONNECTION_START, channel=0)
        self.send(start_ok(mechanism=mechanism))
        r = self.expect(CONNECTION_TUNE, channel=0).args()
        tune = Tune(r.u16(), r.u32(), r.u16())
        self.send(tune_ok(tune.channel_max if channel_max is None else channel_max,
                          tune.frame_max if frame_max is None else frame_max, heartbeat_secs))
        self.send(connection_open(vhost))
        self.expect(CONNECTION_OPEN_OK, channel=0)
        return tune

    def open_channel(self, channel=1):
        self.send(channel_open(channel))
        self.expect(CHANNEL_OPEN_OK, channel=channel)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
