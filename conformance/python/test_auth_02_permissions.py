"""RabbitMQ-style permissions with pika: each refused operation closes the channel with 403
ACCESS_REFUSED and RabbitMQ's text ("access to queue 'q' in vhost '/' refused for user 'u'"),
and the connection lives on. `limited` may configure, write and read only names starting with
`own-`; `admin` may do everything."""

import pika
import pytest

CONFIG = """
[auth]
failed_login_delay_ms = 20

[[users]]
name = "admin"
password = "pw"

[[users]]
name = "limited"
password = "pw"

[[permissions]]
user = "admin"
configure = ".*"
write = ".*"
read = ".*"

[[permissions]]
user = "limited"
configure = "^own-"
write = "^own-"
read = "^own-"
"""


def connect(broker, user):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=broker.amqp_port, credentials=pika.PlainCredentials(user, "pw"),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5,
    ))


@pytest.fixture
def limited(make_broker):
    b = make_broker(extra_toml=CONFIG)
    admin = connect(b, "admin")
    ch = admin.channel()
    ch.queue_declare(queue="other")
    ch.exchange_declare(exchange="other-x", exchange_type="direct")
    ch.basic_publish(exchange="", routing_key="other", body=b"secret")
    conn = connect(b, "limited")
    yield conn
    conn.close()
    admin.close()


def refused(conn, op, what):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        op(ch)
    assert e.value.reply_code == 403
    assert e.value.reply_text == f"ACCESS_REFUSED - access to {what} in vhost '/' refused for user 'limited'"


def test_configure(limited):
    ch = limited.channel()
    ch.queue_declare(queue="own-q")
    ch.exchange_declare(exchange="own-x", exchange_type="fanout")
    ch.queue_declare(queue="other", passive=True)  # looking needs no permission
    refused(limited, lambda c: c.queue_declare(queue="mine"), "queue 'mine'")
    refused(limited, lambda c: c.exchange_declare(exchange="logs", exchange_type="fanout"), "exchange 'logs'")
    refused(limited, lambda c: c.queue_delete(queue="other"), "queue 'other'")
    refused(limited, lambda c: c.exchange_delete(exchange="other-x"), "exchange 'other-x'")


def test_write_and_read_on_bindings(limited):
    ch = limited.channel()
    ch.queue_declare(queue="own-q")
    ch.exchange_declare(exchange="own-x", exchange_type="direct")
    ch.queue_bind(queue="own-q", exchange="own-x", routing_key="k")
    refused(limited, lambda c: c.queue_bind(queue="own-q", exchange="amq.direct", routing_key="k"),
            "exchange 'amq.direct'")
    refused(limited, lambda c: c.queue_bind(queue="other", exchange="own-x", routing_key="k"), "queue 'other'")
    refused(limited, lambda c: c.exchange_bind(destination="own-x", source="other-x", routing_key="k"),
            "exchange 'other-x'")


def test_read(limited):
    refused(limited, lambda c: c.basic_get(queue="other"), "queue 'other'")
    refused(limited, lambda c: c.queue_purge(queue="other"), "queue 'other'")
    refused(limited, lambda c: c.basic_consume(queue="other", on_message_callback=lambda *a: None),
            "queue 'other'")


def test_publish_to_default_exchange_is_amq_default(limited):
    ch = limited.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_publish(exchange="", routing_key="own-q", body=b"x")
    assert e.value.reply_code == 403
    assert "access to exchange 'amq.default' in vhost '/' refused for user 'limited'" in e.value.reply_text
    ch = limited.channel()
    ch.confirm_delivery()
    ch.exchange_declare(exchange="own-x", exchange_type="fanout")
    ch.basic_publish(exchange="own-x", routing_key="", body=b"ok")
