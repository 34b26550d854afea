"""AMQP 0-9-1 with pika, the way RabbitMQ users' Python code talks to a broker.

Each test runs against its own broker (the `broker` fixture) and uses the default user
guest/guest from loopback, as RabbitMQ's defaults allow.
"""

import time

import pika
import pytest


def params(broker, **kw):
    return pika.ConnectionParameters(
        host="127.0.0.1",
        port=broker.amqp_port,
        credentials=pika.PlainCredentials(kw.pop("user", "guest"), kw.pop("password", "guest")),
        connection_attempts=1,
        socket_timeout=5,
        blocked_connection_timeout=5,
        **kw,
    )


def connect(broker, **kw):
    return pika.BlockingConnection(params(broker, **kw))


def test_publish_consume_ack(broker):
    conn = connect(broker)
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    assert q.startswith("amq.gen-")
    for i in range(5):
        ch.basic_publish(exchange="", routing_key=q, body=f"m{i}".encode(),
                         properties=pika.BasicProperties(content_type="text/plain", headers={"n": i}))
    got = []
    for method, props, body in ch.consume(q, inactivity_timeout=5):
        assert method is not None, "timed out waiting for deliveries"
        got.append((body, props.content_type, props.headers))
        ch.basic_ack(method.delivery_tag)
        if len(got) == 5:
            break
    ch.cancel()
    assert got == [(f"m{i}".encode(), "text/plain", {"n": i}) for i in range(5)]
    conn.close()


def test_confirms_and_unroutable_mandatory(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare(queue="confirmed").method.queue
    ch.basic_publish(exchange="", routing_key=q, body=b"ok", mandatory=True)
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(exchange="amq.direct", routing_key="nobody", body=b"lost", mandatory=True)
    assert ch.queue_declare(queue="confirmed", passive=True).method.message_count == 1
    conn.close()


def test_basic_get_counts(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue="g")
    for i in range(3):
        ch.basic_publish(exchange="", routing_key="g", body=bytes([i]))
    method, _props, body = ch.basic_get("g", auto_ack=True)
    assert body == b"\x00"
    assert method.message_count == 2
    assert ch.basic_get("g", auto_ack=True)[2] == b"\x01"
    assert ch.queue_purge("g").method.message_count == 1
    assert ch.basic_get("g")[0] is None
    conn.close()


def test_wrong_password_is_refused(broker):
    with pytest.raises((pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)):
        connect(broker, password="nope")


def test_unknown_vhost_is_refused(broker):
    # pika reports a close during connection.open as a probable access denial (as against
    # RabbitMQ); the broker's reason is inside it.
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        connect(broker, virtual_host="nowhere")
    assert "530" in str(e.value) and "vhost 'nowhere' not found" in str(e.value)


def test_channel_error_keeps_connection(broker):
    conn = connect(broker)
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.queue_declare(queue="missing", passive=True)
    assert e.value.reply_code == 404
    assert "NOT_FOUND" in e.value.reply_text
    ch2 = conn.channel()
    ch2.queue_declare(queue="present")
    conn.close()


def test_inequivalent_exchange_redeclare_is_406(broker):
    conn = connect(broker)
    ch = conn.channel()
    ch.exchange_declare("logs", exchange_type="fanout")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.exchange_declare("logs", exchange_type="direct")
    assert e.value.reply_code == 406
    conn.close()


def test_heartbeats_keep_an_idle_connection_open(broker):
    # With a 1 s heartbeat, an idle client that answers heartbeats stays connected well past
    # the 2-interval timeout; pika raises if the broker closed it.
    conn = connect(broker, heartbeat=1)
    ch = conn.channel()
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.2)
    ch.queue_declare(queue="still-here")
    assert conn.is_open
    conn.close()


def test_mqtt_to_amqp_through_amq_topic(broker):
    import paho.mqtt.client as mqtt

    conn = connect(broker)
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", routing_key="home.*.temp")
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="py-dev", protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.publish("home/kitchen/temp", b"22", qos=1).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    for method, _props, body in ch.consume(q, inactivity_timeout=5):
        assert method is not None, "MQTT publish did not reach the AMQP queue"
        assert body == b"22"
        assert method.routing_key == "home.kitchen.temp"
        break
    conn.close()
