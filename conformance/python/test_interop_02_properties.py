"""MQTT 5 properties <-> AMQP 0-9-1 basic properties (issue 4), with paho-mqtt and pika over real
sockets against one broker per module: a table per direction, QoS <-> delivery_mode, and MQTT 5
request / response against a pika RPC server and the reverse.

What is checked is what README.md ("MQTT and AMQP on one core") documents: User Properties <->
headers (MQTT to AMQP: long strings in order plus `x-mqtt-publish-qos`; AMQP to MQTT: scalar
headers as text, tables / arrays / byte arrays / void left out), Content Type <-> content_type,
Correlation Data <-> correlation_id (over 255 bytes: header `x-mqtt-correlation-data`), Response
Topic <-> reply_to with the topic mapping (over 255 bytes: header `x-mqtt-response-topic`),
Message Expiry Interval <-> expiration (time left, ms / s).
"""

import datetime
import decimal
import time

import pika
import pytest

from interop import (  # noqa: F401  (fixtures are used by name)
    EXCHANGE, Queues, _module_amqp, amqp, broker, shared_broker, unique_prefix,
)
from pahoclient import V5

# Correlation data that is not UTF-8 (and holds a zero byte): 4 bytes, exactly 255, and 300.
BINARY_ID = b"\x00\xff\xfe\x80"
ID_255 = bytes((i * 7 + 128) % 256 for i in range(255))
ID_300 = bytes(range(256)) + b"\xff" * 44
# A Response Topic whose AMQP spelling is over 255 bytes (each level has a `.` that becomes `/`).
LONG_REPLY_TOPIC = "replies/" + "v1.0/" * 60 + "end"
LONG_REPLY_KEY = "replies." + "v1/0." * 60 + "end"

# One row per property: (id, MQTT QoS, PUBLISH properties, expected AMQP properties that differ
# from a plain message's). A plain message has no content_type / correlation_id / reply_to /
# expiration and headers {"x-mqtt-publish-qos": QoS}; delivery_mode 2 for QoS >= 1, else 1.
MQTT_TO_AMQP = [
    ("qos0", 0, {}, {}),
    ("qos1", 1, {}, {}),
    ("qos2", 2, {}, {}),
    ("user_properties", 1,
     {"UserProperty": [("region", "eu-west"), ("unit", "°C"), ("empty", ""), ("n", "42")]},
     {"headers": {"region": "eu-west", "unit": "°C", "empty": "", "n": "42", "x-mqtt-publish-qos": 1}}),
    ("content_type", 0, {"ContentType": "application/json; charset=utf-8"},
     {"content_type": "application/json; charset=utf-8"}),
    ("correlation_text", 1, {"CorrelationData": b"req-42"}, {"correlation_id": "req-42"}),
    # pika hands back a short string that is not UTF-8 as bytes.
    ("correlation_binary", 1, {"CorrelationData": BINARY_ID}, {"correlation_id": BINARY_ID}),
    ("correlation_255_bytes", 1, {"CorrelationData": ID_255}, {"correlation_id": ID_255}),
    ("correlation_300_bytes", 1, {"CorrelationData": ID_300},
     {"headers": {"x-mqtt-publish-qos": 1, "x-mqtt-correlation-data": ID_300}}),
    ("response_topic", 1, {"ResponseTopic": "replies/v1.0"}, {"reply_to": "replies.v1/0"}),
    ("response_topic_wildcard_free_levels", 1, {"ResponseTopic": "a//b/c.d.e"}, {"reply_to": "a..b.c/d/e"}),
    ("response_topic_over_255", 1, {"ResponseTopic": LONG_REPLY_TOPIC},
     {"headers": {"x-mqtt-publish-qos": 1, "x-mqtt-response-topic": LONG_REPLY_KEY}}),
    # The time left in ms: at most the 60 s given, and not much less after a local round trip.
    ("message_expiry", 1, {"MessageExpiryInterval": 60},
     {"expiration": lambda e: e is not None and 50_000 < int(e) <= 60_000}),
]


@pytest.mark.parametrize("qos,mqtt_props,expected", [pytest.param(*row[1:], id=row[0]) for row in MQTT_TO_AMQP])
def test_mqtt5_publish_properties_as_amqp_properties(broker, clients, amqp, qos, mqtt_props, expected):
    p = unique_prefix("p2a")
    queues = Queues(amqp)
    try:
        queues.add("q", f"{p}.req")
        pub = clients(broker, version=V5)
        pub.connect()
        pub.publish(f"{p}/req", b"body", qos=qos, properties=mqtt_props or None)
        [d] = queues.until("q", f"{p}.req")
    finally:
        queues.close()
    want = {
        "delivery_mode": 2 if qos else 1,
        "headers": {"x-mqtt-publish-qos": qos},
        "content_type": None, "correlation_id": None, "reply_to": None, "expiration": None,
        **expected,
    }
    assert d.body == b"body"
    for name, value in want.items():
        got = getattr(d.properties, name)
        if callable(value):
            assert value(got), f"{name} = {got!r}"
        else:
            assert got == value, f"{name}"
    # User Properties keep their order; x-mqtt-publish-qos comes after them.
    if "UserProperty" in mqtt_props:
        assert list(d.properties.headers) == [k for k, _ in mqtt_props["UserProperty"]] + ["x-mqtt-publish-qos"]
    if isinstance(want["headers"].get("x-mqtt-publish-qos"), int):
        assert type(d.properties.headers["x-mqtt-publish-qos"]) is int


TS = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)

# One row per property: (id, pika BasicProperties keywords, expected MQTT 5 properties that differ
# from a plain message's: none of the properties below).
AMQP_TO_MQTT = [
    ("plain", {}, {}),
    # pika types: str -> S, int -> I (32 bit) or l (64 bit), bool -> t, Decimal -> D,
    # datetime -> T, bytes -> x, dict -> F, list -> A, None -> V.
    ("headers_scalars_and_left_out", {"headers": {
        "s": "text °C", "i": 42, "neg": -7, "big": 2**40, "yes": True, "no": False,
        "dec": decimal.Decimal("3.14"), "ts": TS, "bin": b"\x00\x01", "tbl": {"a": 1}, "arr": [1, "x"],
        "void": None, "last": "end",
    }}, {"UserProperty": [
        ("s", "text °C"), ("i", "42"), ("neg", "-7"), ("big", "1099511627776"), ("yes", "true"), ("no", "false"),
        ("dec", "3.14"), ("ts", "1704164645"), ("last", "end"),
    ]}),
    ("content_type", {"content_type": "application/json"}, {"ContentType": "application/json"}),
    ("correlation_id", {"correlation_id": "abc-123"}, {"CorrelationData": b"abc-123"}),
    ("correlation_id_binary", {"correlation_id": BINARY_ID}, {"CorrelationData": BINARY_ID}),
    ("correlation_id_255", {"correlation_id": ID_255}, {"CorrelationData": ID_255}),
    ("reply_to", {"reply_to": "replies.v1/0"}, {"ResponseTopic": "replies/v1.0"}),
    # Rounded up to whole seconds: 60 while less than a second has passed.
    ("expiration", {"expiration": "60000"}, {"MessageExpiryInterval": lambda s: s is not None and 55 < s <= 60}),
    ("expiration_rounds_up", {"expiration": "1900"}, {"MessageExpiryInterval": 2}),
]

MQTT_PROPERTY_NAMES = ["UserProperty", "ContentType", "CorrelationData", "ResponseTopic", "MessageExpiryInterval"]


@pytest.mark.parametrize("amqp_props,expected", [pytest.param(*row[1:], id=row[0]) for row in AMQP_TO_MQTT])
def test_amqp_properties_as_mqtt5_properties(broker, clients, amqp, amqp_props, expected):
    p = unique_prefix("a2p")
    sub = clients(broker, version=V5)
    sub.connect()
    sub.subscribe(f"{p}/#", qos=1)
    ch = amqp.channel()
    try:
        ch.confirm_delivery()
        ch.basic_publish(EXCHANGE, f"{p}.req", b"body", pika.BasicProperties(delivery_mode=2, **amqp_props))
    finally:
        ch.close()
    m = sub.get()
    assert (m.topic, m.payload, m.qos, m.retain) == (f"{p}/req", b"body", 1, False)
    for name in MQTT_PROPERTY_NAMES:
        want = expected.get(name)
        got = m.prop(name)
        if callable(want):
            assert want(got), f"{name} = {got!r}"
        else:
            assert got == want, f"{name}"


@pytest.mark.parametrize("delivery_mode,sub_qos,expected_qos", [
    pytest.param(None, 1, 0, id="no_delivery_mode-sub1"),
    pytest.param(1, 2, 0, id="transient-sub2"),
    pytest.param(2, 0, 0, id="persistent-sub0"),
    pytest.param(2, 1, 1, id="persistent-sub1"),
    pytest.param(2, 2, 1, id="persistent-sub2"),
])
def test_amqp_persistent_is_qos1_capped_by_subscription(broker, clients, amqp, delivery_mode, sub_qos,
                                                        expected_qos):
    p = unique_prefix("dm")
    sub = clients(broker, version=V5)
    sub.connect()
    assert sub.subscribe(f"{p}/+", qos=sub_qos) == sub_qos
    ch = amqp.channel()
    try:
        ch.confirm_delivery()
        ch.basic_publish(EXCHANGE, f"{p}.m", b"x", pika.BasicProperties(delivery_mode=delivery_mode))
    finally:
        ch.close()
    m = sub.get()
    assert (m.topic, m.qos) == (f"{p}/m", expected_qos)


def test_retained_amqp_message_keeps_its_properties(broker, clients, amqp):
    """A message retained from AMQP (`x-mqtt-retain: true`) reaches a later MQTT 5 subscriber with
    RETAIN set and its properties mapped as for a live one (the header itself is a scalar, so it
    is a User Property too)."""
    p = unique_prefix("retp")
    ch = amqp.channel()
    try:
        ch.confirm_delivery()
        ch.basic_publish(EXCHANGE, f"{p}.state", b"on", pika.BasicProperties(
            delivery_mode=2, content_type="text/plain", correlation_id="c-9", reply_to="back.v1/0",
            expiration="60000", headers={"x-mqtt-retain": True, "site": "lab"}))
    finally:
        ch.close()
    sub = clients(broker, version=V5)
    sub.connect()
    sub.subscribe(f"{p}/+", qos=1)
    m = sub.get()
    assert (m.topic, m.payload, m.qos, m.retain) == (f"{p}/state", b"on", 1, True)
    assert m.prop("ContentType") == "text/plain"
    assert m.prop("CorrelationData") == b"c-9"
    assert m.prop("ResponseTopic") == "back/v1.0"
    assert m.prop("UserProperty") == [("x-mqtt-retain", "true"), ("site", "lab")]
    assert 55 < m.prop("MessageExpiryInterval") <= 60


def test_empty_retained_amqp_message_clears_the_retained_message(broker, clients, amqp):
    """As an MQTT retained publish with an empty payload [MQTT-3.3.1-10], an empty AMQP body with
    `x-mqtt-retain: true` removes the topic's retained message, whoever published it."""
    p = unique_prefix("clr")
    pub = clients(broker, version=V5)
    pub.connect()
    pub.publish(f"{p}/a", b"from mqtt", qos=1, retain=True)
    ch = amqp.channel()
    try:
        ch.confirm_delivery()
        ch.basic_publish(EXCHANGE, f"{p}.b", b"from amqp", pika.BasicProperties(headers={"x-mqtt-retain": True}))
        for key in (f"{p}.a", f"{p}.b"):
            ch.basic_publish(EXCHANGE, key, b"", pika.BasicProperties(headers={"x-mqtt-retain": True}))
        ch.basic_publish(EXCHANGE, f"{p}.c", b"kept", pika.BasicProperties(headers={"x-mqtt-retain": True}))
    finally:
        ch.close()
    sub = clients(broker, version=V5)
    sub.connect()
    sub.subscribe(f"{p}/#", qos=1)
    # Retained messages are queued at subscribe time, so a live publish after SUBACK comes last.
    pub.publish(f"{p}/end", b"", qos=1)
    got = sub.get_until(f"{p}/end")
    assert [(m.topic, m.payload, m.retain) for m in got] == [(f"{p}/c", b"kept", True), (f"{p}/end", b"", False)]


def test_topic_alias_is_resolved_for_amqp(broker, clients, amqp):
    """An MQTT 5 publisher that switches to a Topic Alias: the AMQP consumer sees the full routing
    key every time [MQTT-3.3.2-12]."""
    p = unique_prefix("alias")
    queues = Queues(amqp)
    try:
        queues.add("q", f"{p}.#")
        pub = clients(broker, version=V5, properties={"TopicAliasMaximum": 0})
        pub.connect()
        pub.publish(f"{p}/fw/v1.2", b"1", qos=1, properties={"TopicAlias": 1})
        pub.publish("", b"2", qos=1, properties={"TopicAlias": 1})
        pub.publish(f"{p}/end", b"3", qos=1)
        got = queues.until("q", f"{p}.end")
    finally:
        queues.close()
    assert [(d.routing_key, d.body) for d in got] == [(f"{p}.fw.v1/2", b"1"), (f"{p}.fw.v1/2", b"2"),
                                                      (f"{p}.end", b"3")]


def test_expiry_applies_across_protocols(broker, clients, amqp):
    """The expiry is a deadline on the message, not only a property: an MQTT message with a 1 s
    Message Expiry Interval waiting in an AMQP queue is gone after it (RabbitMQ per-message TTL),
    and an AMQP message with `expiration` 1000 waiting for an offline MQTT session is not sent to
    it [MQTT-3.3.2-5]; messages without expiry stay (the control)."""
    p = unique_prefix("exp")
    ch = amqp.channel()
    try:
        q = ch.queue_declare("", exclusive=True, auto_delete=False).method.queue
        ch.queue_bind(q, EXCHANGE, routing_key=f"{p}.m.*")
        offline = clients(broker, f"{p}-offline", version=V5, clean=True,
                          properties={"SessionExpiryInterval": 300})
        offline.connect()
        offline.subscribe(f"{p}/a/+", qos=1)
        offline.disconnect()

        pub = clients(broker, version=V5)
        pub.connect()
        pub.publish(f"{p}/m/short", b"short", qos=1, properties={"MessageExpiryInterval": 1})
        pub.publish(f"{p}/m/kept", b"kept", qos=1)
        ch.confirm_delivery()
        ch.basic_publish(EXCHANGE, f"{p}.a.short", b"short", pika.BasicProperties(delivery_mode=2, expiration="1000"))
        ch.basic_publish(EXCHANGE, f"{p}.a.kept", b"kept", pika.BasicProperties(delivery_mode=2))
        time.sleep(1.3)  # no event marks an expiry passing

        got = []
        while (r := ch.basic_get(q, auto_ack=True))[0] is not None:
            got.append((r[0].routing_key, r[2]))
        assert got == [(f"{p}.m.kept", b"kept")]
    finally:
        ch.close()
    back = clients(broker, f"{p}-offline", version=V5, clean=False, properties={"SessionExpiryInterval": 300})
    assert back.connect().session_present
    # The queued messages go out on reconnect, before a live one published after CONNACK.
    pub.publish(f"{p}/a/end", b"end", qos=1)
    got = back.get_until(f"{p}/a/end")
    assert [(m.topic, m.payload) for m in got] == [(f"{p}/a/kept", b"kept"), (f"{p}/a/end", b"end")]


def test_mqtt5_request_response_against_pika_rpc_server(broker, clients, amqp):
    """An MQTT 5 requester (Response Topic + Correlation Data) and a pika RPC server in the style
    of RabbitMQ's tutorial 6 that replies to `reply_to` with the request's `correlation_id`. Topics
    with a dotted level check that the mapping holds both ways."""
    p = unique_prefix("rpc")
    request_topic, request_key = f"{p}/calc.v2/add", f"{p}.calc/v2.add"
    reply_topic, reply_key = f"{p}/replies/client.1", f"{p}.replies.client/1"
    requests = {b"req-1": b"2+3", BINARY_ID: b"40+2", ID_255: b"1+1"}

    served = []
    server = amqp.channel()
    try:
        q = server.queue_declare("", exclusive=True, auto_delete=True).method.queue
        server.queue_bind(q, EXCHANGE, routing_key=request_key)
        server.basic_qos(prefetch_count=1)

        def on_request(ch, method, props, body):
            a, b = body.split(b"+")
            ch.basic_publish(EXCHANGE, props.reply_to, str(int(a) + int(b)).encode(),
                             pika.BasicProperties(correlation_id=props.correlation_id, content_type="text/plain"))
            ch.basic_ack(method.delivery_tag)
            served.append((method.routing_key, props.reply_to, props.correlation_id))

        server.basic_consume(q, on_request)

        requester = clients(broker, version=V5)
        requester.connect()
        requester.subscribe(reply_topic, qos=1)
        for corr, body in requests.items():
            requester.publish(request_topic, body, qos=1,
                              properties={"ResponseTopic": reply_topic, "CorrelationData": corr})
        drive(amqp, lambda: len(served) == len(requests))
    finally:
        server.close()

    # pika returns a short string that is not UTF-8 as bytes, a UTF-8 one as str.
    as_bytes = [c if isinstance(c, bytes) else c.encode() for _, _, c in served]
    assert [(k, r) for k, r, _ in served] == [(request_key, reply_key)] * len(requests)
    assert as_bytes == list(requests)
    replies = {}
    for m in requester.get_n(len(requests)):
        assert (m.topic, m.qos, m.prop("ContentType")) == (reply_topic, 0, "text/plain")
        replies[m.prop("CorrelationData")] = m.payload
    assert replies == {b"req-1": b"5", BINARY_ID: b"42", ID_255: b"2"}


def test_pika_rpc_client_against_mqtt5_responder(broker, clients, amqp):
    """A pika RPC client (callback queue bound on amq.topic, `reply_to` + `correlation_id`) and an
    MQTT 5 responder that answers on the request's Response Topic with its Correlation Data."""
    p = unique_prefix("rrpc")
    service_topic, service_key = f"{p}/svc/upper.v1", f"{p}.svc.upper/v1"
    reply_key, reply_topic = f"{p}.replies.py/1", f"{p}/replies/py.1"

    responder = clients(broker, version=V5)
    responder.connect()
    responder.subscribe(service_topic, qos=1)

    client = Queues(amqp)
    try:
        client.add("callback", reply_key)
        client.ch.confirm_delivery()
        calls = {"c-1": b"hello", "c-2": b"world"}
        for corr, body in calls.items():
            client.ch.basic_publish(EXCHANGE, service_key, body,
                                    pika.BasicProperties(reply_to=reply_key, correlation_id=corr, delivery_mode=2))

        for _ in calls:
            req = responder.get()
            assert (req.topic, req.qos) == (service_topic, 1)
            assert req.prop("ResponseTopic") == reply_topic
            responder.publish(req.prop("ResponseTopic"), req.payload.upper(), qos=1,
                              properties={"CorrelationData": req.prop("CorrelationData")})

        drive(amqp, lambda: len(client.got["callback"]) == len(calls))
        got = client.got["callback"]
    finally:
        client.close()
    assert {d.properties.correlation_id: d.body for d in got} == {"c-1": b"HELLO", "c-2": b"WORLD"}
    assert all(d.routing_key == reply_key and d.properties.delivery_mode == 2 for d in got)
    assert all(d.properties.headers == {"x-mqtt-publish-qos": 1} for d in got)


def drive(conn, done, timeout=5.0):
    """Runs pika's I/O until `done()` or the deadline."""
    deadline = time.monotonic() + timeout
    while not done():
        remaining = deadline - time.monotonic()
        assert remaining > 0, "timed out driving the AMQP connection"
        conn.process_data_events(time_limit=remaining)


def test_mqtt5_request_with_correlation_data_over_255_bytes_round_trips(broker, clients, amqp):
    """README: Correlation Data over 255 bytes travels in header `x-mqtt-correlation-data`. An
    AMQP RPC server that echoes that header (it cannot put it in correlation_id) answers an MQTT 5
    requester, which must get its Correlation Data back to match the reply."""
    p = unique_prefix("rpcl")
    reply_topic = f"{p}/replies"
    requester = clients(broker, version=V5)
    requester.connect()
    requester.subscribe(reply_topic, qos=1)
    queues = Queues(amqp)
    try:
        queues.add("server", f"{p}.req")
        requester.publish(f"{p}/req", b"ping", qos=1,
                          properties={"ResponseTopic": reply_topic, "CorrelationData": ID_300})
        [req] = queues.until("server", f"{p}.req")
        assert req.properties.headers["x-mqtt-correlation-data"] == ID_300
        queues.ch.basic_publish(EXCHANGE, req.properties.reply_to, b"pong", pika.BasicProperties(
            headers={"x-mqtt-correlation-data": req.properties.headers["x-mqtt-correlation-data"]}))
    finally:
        queues.close()
    m = requester.get()
    assert (m.topic, m.payload) == (reply_topic, b"pong")
    assert m.prop("CorrelationData") == ID_300
