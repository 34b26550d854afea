"""`[amqp] frame_max` and `channel_max` are what connection.tune offers: pika settles on them,
and a channel above the negotiated channel_max is a 504 CHANNEL_ERROR connection exception."""

import pika
import pytest

TUNE = "[amqp]\nframe_max = 8192\nchannel_max = 4\n"


def connect(b, **kw):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=b.amqp_port, credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=5, **kw))


def test_configured_frame_max_and_channel_max_are_negotiated(make_broker):
    b = make_broker(extra_toml=TUNE)
    conn = connect(b)
    params = conn._impl.params
    assert (params.frame_max, params.channel_max) == (8192, 4)
    # A body larger than frame_max is split into frames the broker accepts.
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    body = bytes(range(256)) * 100
    ch.basic_publish("", q, body)
    method, _props, got = ch.basic_get(q, auto_ack=True)
    assert got == body
    conn.close()


def test_channel_above_channel_max_is_a_connection_error(make_broker):
    b = make_broker(extra_toml=TUNE)
    # Ask for more than the broker offers: pika takes the lower value, then we force channel 5.
    conn = connect(b, channel_max=100)
    assert conn._impl.params.channel_max == 4
    with pytest.raises(Exception):
        conn.channel(channel_number=5)
    b.wait_log(r"channel 5 above channel_max 4")


def test_client_frame_max_above_the_broker_s_gets_the_broker_s(make_broker):
    b = make_broker(extra_toml=TUNE)
    conn = connect(b, frame_max=65536)
    # pika negotiates min(client, server): the broker's 8192 wins.
    assert conn._impl.params.frame_max == 8192
    conn.close()
