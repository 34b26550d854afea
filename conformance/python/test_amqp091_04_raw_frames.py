"""AMQP 0-9-1 at the byte level: protocol header variants, a handshake written by hand, content
split at the negotiated frame_max, and the connection exceptions for broken framing (AMQP 0-9-1
sections 2.3.7, 4.2.2-4.2.7), each followed by the close / close-ok exchange and a check that the
broker still serves a fresh connection. Frames are built in `rawamqp.py`, never with ferromq's
codec.
"""

import time

import pytest

from rawamqp import (
    ACCESS_REFUSED, BASIC_GET_OK, CHANNEL_CLOSE, CHANNEL_CLOSE_OK, CHANNEL_ERROR, COMMAND_INVALID, CONNECTION_CLOSE_OK,
    CONNECTION_START, FRAME_BODY, FRAME_ERROR, FRAME_HEADER, FRAME_HEARTBEAT, NOT_IMPLEMENTED,
    PROTOCOL_HEADER, QUEUE_DECLARE_OK, UNEXPECTED_FRAME, RawAmqp, Reader, Tune, basic_get, basic_publish,
    body, channel_open, connection_close, connection_close_ok, content_header, heartbeat, method, queue_declare,
    shortstr, start_ok, u16,
)

# How long a broker that sent connection.close must keep the socket open for the close-ok. Nothing
# on the wire marks "still waiting", so the test watches the socket for this long.
CLOSE_OK_WINDOW = 0.2


@pytest.fixture
def amqp(broker):
    """Factory of raw AMQP sockets (rawamqp.RawAmqp) to `broker`; all closed at teardown."""
    made = []

    def make(timeout=5.0):
        c = RawAmqp(broker.amqp_port, timeout)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def assert_serves(amqp):
    """A fresh connection completes the handshake and declares a queue."""
    c = amqp()
    c.handshake()
    c.open_channel(1)
    c.send(queue_declare(1, "still-serving"))
    assert c.expect(QUEUE_DECLARE_OK, channel=1).args().shortstr() == "still-serving"
    c.send(connection_close())
    c.expect(CONNECTION_CLOSE_OK, channel=0)
    c.close()


def expect_connection_exception(c, code, failing=(0, 0)):
    """The broker's connection.close with `code` and class-id / method-id `failing`; then checks
    the broker waits for close-ok (discarding other frames meanwhile) and closes right after it."""
    close = c.expect_close()
    assert close.code in (code if isinstance(code, tuple) else (code,)), close
    assert (close.class_id, close.method_id) == failing, close
    assert " - " in close.text, f"reply text without RabbitMQ's 'NAME - ' prefix: {close}"
    # [AMQP 0-9-1 2.2.4] after sending close the broker discards everything but close / close-ok.
    c.send(channel_open(9))
    with pytest.raises(TimeoutError):
        got = c.recv(timeout=CLOSE_OK_WINDOW)
        pytest.fail(f"broker did not wait for close-ok: got {got or 'EOF'}")
    sent_at = time.monotonic()
    c.send(connection_close_ok())
    assert c.expect_closed(timeout=3) == []
    assert time.monotonic() - sent_at < 0.6, "socket closed by a timer, not on close-ok"
    return close


# --- protocol header ------------------------------------------------------------------------


def test_protocol_header_0_9_1_gets_connection_start(amqp):
    c = amqp()
    c.send(PROTOCOL_HEADER)
    r = c.expect(CONNECTION_START, channel=0).args()
    assert (r.u8(), r.u8()) == (0, 9)
    r.table()  # server properties
    assert b"PLAIN" in r.longstr().split()
    assert b"en_US" in r.longstr().split()


@pytest.mark.parametrize("header", [
    pytest.param(b"AMQP\x01\x01\x00\x09", id="amqp-0-9"),
    pytest.param(b"AMQP\x01\x01\x08\x00", id="amqp-0-8"),
    pytest.param(b"AMQP\x00\x01\x00\x00", id="amqp-1-0"),
    pytest.param(b"AMQP\x00\x00\x09\x02", id="amqp-0-9-2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", id="http"),
    pytest.param(b"HTTP", id="http-4-bytes"),
    pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00", id="tls-client-hello"),
])
def test_wrong_protocol_header_gets_ours_and_close(amqp, header):
    # [AMQP 0-9-1 4.2.2] the server writes a valid protocol header and closes the socket. A peer
    # that sent fewer than 8 bytes ("HTTP") is answered without waiting for more. (RabbitMQ 3.10
    # accepts 0-9 as 0-9-1, speaks 0-8, and waits for 8 bytes; ferromq speaks only 0-9-1.)
    c = amqp()
    c.send(header)
    assert c.recv_bytes(8) == PROTOCOL_HEADER
    assert c.recv_bytes(1, timeout=3) == b"" and c.eof
    assert_serves(amqp)


# --- a handshake by hand ------------------------------------------------------------------


def test_hand_written_handshake_publish_and_get(amqp):
    c = amqp()
    assert c.handshake() == Tune(channel_max=2047, frame_max=131072, heartbeat=60)
    c.open_channel(1)
    c.send(queue_declare(1, "raw-q"))
    r = c.expect(QUEUE_DECLARE_OK, channel=1).args()
    assert (r.shortstr(), r.u32(), r.u32()) == ("raw-q", 0, 0)
    # One write: publish, header (content-type only: flag bit 15), two body frames.
    c.send(basic_publish(1, "", "raw-q")
           + content_header(1, 11, flags=0x8000, properties=shortstr("text/plain"))
           + body(1, b"hello ") + body(1, b"world"))
    c.send(basic_get(1, "raw-q"))
    r = c.expect(BASIC_GET_OK, channel=1).args()
    assert r.u64() == 1  # delivery tag
    assert r.u8() == 0  # redelivered
    assert (r.shortstr(), r.shortstr(), r.u32()) == ("", "raw-q", 0)
    h = c.recv()
    assert (h.type, h.channel) == (FRAME_HEADER, 1)
    hr = Reader(h.payload)
    assert (hr.u16(), hr.u16(), hr.u64(), hr.u16(), hr.shortstr()) == (60, 0, 11, 0x8000, "text/plain")
    b = c.recv()
    assert (b.type, b.channel, b.payload) == (FRAME_BODY, 1, b"hello world")
    c.send(method(1, CHANNEL_CLOSE, u16(200) + shortstr("done") + u16(0) + u16(0)))
    c.expect(CHANNEL_CLOSE_OK, channel=1)
    c.send(connection_close())
    c.expect(CONNECTION_CLOSE_OK, channel=0)


def test_amqplain_login(amqp):
    # pika cannot send AMQPLAIN; RabbitMQ offers it and old clients use it.
    c = amqp()
    c.handshake(mechanism="AMQPLAIN")
    c.open_channel(1)


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
def test_refused_login_with_authentication_failure_close(amqp, mechanism):
    # With the client capability, a bad login gets connection.close 403 before the socket closes.
    c = amqp()
    c.send(PROTOCOL_HEADER)
    c.expect(CONNECTION_START, channel=0)
    c.send(start_ok(password="wrong", mechanism=mechanism, capabilities={"authentication_failure_close": True}))
    close = c.expect_close()
    assert close.code == ACCESS_REFUSED and close.text.startswith("ACCESS_REFUSED - "), close
    c.send(connection_close_ok())
    assert c.expect_closed(timeout=3) == []
    assert_serves(amqp)


def test_refused_login_without_capability_just_closes(amqp):
    # [AMQP 0-9-1 2.2.4] without authentication_failure_close the server closes the socket
    # (ferromq at once, RabbitMQ after a 3 s anti-DoS delay).
    c = amqp()
    c.send(PROTOCOL_HEADER)
    c.expect(CONNECTION_START, channel=0)
    c.send(start_ok(password="wrong"))
    assert c.expect_closed(timeout=5) == []


def test_content_is_split_at_the_negotiated_frame_max(amqp):
    # frame_max 4096 both ways: 4088-byte body payloads in, and every frame out at most 4096.
    c = amqp()
    c.handshake(frame_max=4096)
    c.open_channel(1)
    c.send(queue_declare(1, "split"))
    c.expect(QUEUE_DECLARE_OK, channel=1)
    data = bytes(range(256)) * 40 + b"tail"  # 10244 bytes: 3 frames of 4088 + 1 of 80
    chunks = [data[i:i + 4088] for i in range(0, len(data), 4088)]
    c.send(basic_publish(1, "", "split") + content_header(1, len(data))
           + b"".join(body(1, part) for part in chunks))
    c.send(basic_get(1, "split"))
    c.expect(BASIC_GET_OK, channel=1)
    assert c.recv().type == FRAME_HEADER
    frames = []
    while sum(len(f.payload) for f in frames) < len(data):
        f = c.recv()
        assert f is not None and f.type == FRAME_BODY, f
        frames.append(f)
    assert all(len(f) <= 4096 for f in frames), [len(f) for f in frames]
    assert len(frames) == 3
    assert b"".join(f.payload for f in frames) == data


# --- connection exceptions ------------------------------------------------------------------


def test_bad_frame_end_is_frame_error(amqp):
    c = amqp()
    c.handshake()
    c.send(channel_open(1)[:-1] + b"\x00")
    expect_connection_exception(c, FRAME_ERROR)
    assert_serves(amqp)


def test_bad_frame_end_during_handshake_is_frame_error(amqp):
    # ferromq reports framing errors during the handshake with connection.close too; RabbitMQ
    # closes the socket silently before connection.open.
    c = amqp()
    c.send(PROTOCOL_HEADER)
    c.expect(CONNECTION_START, channel=0)
    c.send(start_ok()[:-1] + b"\xcd")
    expect_connection_exception(c, FRAME_ERROR)
    assert_serves(amqp)


def test_frame_above_negotiated_frame_max_is_frame_error(amqp):
    c = amqp()
    c.handshake(frame_max=4096)
    c.open_channel(1)
    big = queue_declare(1, "big", arguments={"x-pad": "p" * 5000})
    assert len(big) > 4096
    c.send(big)
    expect_connection_exception(c, FRAME_ERROR)
    assert_serves(amqp)


def test_body_frame_above_broker_frame_max_is_frame_error(amqp):
    c = amqp()
    assert c.handshake().frame_max == 131072
    c.open_channel(1)
    c.send(basic_publish(1, "", "anything") + content_header(1, 200_000)
           + body(1, b"x" * (131072 - 7)))  # 131073 bytes with header and frame end
    expect_connection_exception(c, FRAME_ERROR)
    assert_serves(amqp)


@pytest.mark.parametrize("failing", [
    pytest.param((60, 999), id="unknown-method-of-basic"),
    pytest.param((20, 99), id="unknown-method-of-channel"),
    pytest.param((99, 10), id="unknown-class"),
])
def test_unknown_method_is_command_invalid(amqp, failing):
    # connection.close names the failing method (class-id, method-id) even when the broker does
    # not know it. (RabbitMQ 3.10 drops the socket without connection.close.)
    c = amqp()
    c.handshake()
    c.open_channel(1)
    c.send(method(1, failing, b"\x00\x00\x00\x00"))
    expect_connection_exception(c, (COMMAND_INVALID, NOT_IMPLEMENTED), failing)
    assert_serves(amqp)


@pytest.mark.parametrize("frames", [
    pytest.param(lambda: content_header(1, 3), id="header-without-publish"),
    pytest.param(lambda: body(1, b"abc"), id="body-without-publish"),
    pytest.param(lambda: basic_publish(1, "", "q") + queue_declare(1, "q"), id="method-instead-of-header"),
    pytest.param(lambda: basic_publish(1, "", "q") + content_header(1, 3) + queue_declare(1, "q"),
                 id="method-instead-of-body"),
    pytest.param(lambda: basic_publish(1, "", "q") + content_header(1, 0) + body(1, b"x"),
                 id="body-after-empty-content"),
    pytest.param(lambda: content_header(0, 3), id="header-on-channel-0"),
])
def test_content_out_of_order_is_unexpected_frame(amqp, frames):
    c = amqp()
    c.handshake()
    c.open_channel(1)
    c.send(frames())
    close = c.expect_close()
    assert close.code == UNEXPECTED_FRAME, close
    c.send(connection_close_ok())
    assert c.expect_closed(timeout=3) == []
    assert_serves(amqp)


def test_method_on_unopened_channel_is_channel_error(amqp):
    c = amqp()
    c.handshake()
    c.send(queue_declare(5, "nope"))
    expect_connection_exception(c, CHANNEL_ERROR, (50, 10))
    assert_serves(amqp)


def test_method_on_closed_channel_is_channel_error(amqp):
    c = amqp()
    c.handshake()
    c.open_channel(3)
    c.send(method(3, CHANNEL_CLOSE, u16(200) + shortstr("") + u16(0) + u16(0)))
    c.expect(CHANNEL_CLOSE_OK, channel=3)
    c.send(queue_declare(3, "nope"))
    expect_connection_exception(c, CHANNEL_ERROR, (50, 10))
    assert_serves(amqp)


def test_heartbeat_on_a_channel_is_frame_error(amqp):
    # [AMQP 0-9-1 4.2.7] heartbeat frames must use channel 0; otherwise 501 FRAME_ERROR
    # (RabbitMQ 3.10 answers 505 UNEXPECTED_FRAME).
    c = amqp()
    c.handshake()
    c.open_channel(1)
    c.send(heartbeat(1))
    expect_connection_exception(c, FRAME_ERROR)
    assert_serves(amqp)


def test_broker_gives_up_waiting_for_close_ok(amqp):
    c = amqp()
    c.handshake()
    start = time.monotonic()
    c.send(queue_declare(5, "nope"))
    assert c.expect_close().code == CHANNEL_ERROR
    # No close-ok: the broker closes the socket by itself, after waiting a while (ferromq 1 s,
    # RabbitMQ 30 s).
    assert c.expect_closed(timeout=35) == []
    assert 0.5 <= time.monotonic() - start <= 35
    assert_serves(amqp)


def test_missed_heartbeats_close_the_socket(amqp):
    # Heartbeat 1 s negotiated in tune-ok; the client then sends nothing. The broker sends its own
    # heartbeats while idle and closes the socket after about two silent intervals.
    c = amqp()
    c.handshake(heartbeat_secs=1)
    opened = time.monotonic()
    got = c.expect_closed(timeout=6)
    elapsed = time.monotonic() - opened
    assert 1.5 <= elapsed <= 4.0, f"closed after {elapsed:.2f}s"
    assert got and all(f.type == FRAME_HEARTBEAT and f.channel == 0 for f in got), got
    assert_serves(amqp)


def test_heartbeats_from_client_keep_the_connection(amqp):
    c = amqp()
    c.handshake(heartbeat_secs=1)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        c.send(heartbeat())
        try:
            f = c.recv(timeout=0.4)  # paces the client's heartbeats; the broker's come meanwhile
        except TimeoutError:
            continue
        assert f is not None, "broker closed a connection that sent heartbeats"
        assert f.type == FRAME_HEARTBEAT, f
    c.open_channel(1)
