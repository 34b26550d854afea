"""AMQP 0-9-1 over TLS with pika (Python's ssl): PLAIN as guest over TLS, SASL EXTERNAL with a
client certificate (RabbitMQ's rabbitmq_auth_mechanism_ssl) where the certificate's CN becomes
the user (checked through the user_id property, which must match the authenticated user), and
refused certificates."""

import pika
import pytest

from tlsclient import context, probe


def params(broker, ctx, credentials=None):
    return pika.ConnectionParameters(
        host="127.0.0.1", port=broker.amqps_port,
        ssl_options=pika.SSLOptions(ctx, server_hostname="localhost"),
        credentials=credentials or pika.PlainCredentials("guest", "guest"),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5,
    )


def test_guest_over_tls(make_tls_broker):
    b = make_tls_broker()
    conn = pika.BlockingConnection(params(b, context()))
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.basic_publish("", q, b"tls body")
    method, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"tls body"
    conn.close()


def test_external_logs_in_as_the_certificate_common_name(make_tls_broker):
    b = make_tls_broker(client_cert="required")
    conn = pika.BlockingConnection(params(b, context(cert="client"), pika.credentials.ExternalCredentials()))
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    # RabbitMQ's validated user_id: accepted only when it names the authenticated user.
    ch.basic_publish("", q, b"mine", pika.BasicProperties(user_id="device-1"))
    _, props, body = ch.basic_get(q, auto_ack=True)
    assert (body, props.user_id) == (b"mine", "device-1")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        ch.basic_publish("", q, b"forged", pika.BasicProperties(user_id="guest"))
    assert e.value.reply_code == 406
    conn.close()


def test_identity_from_a_subject_alternative_name(make_tls_broker):
    b = make_tls_broker(client_cert="required", extra=["--tls-identity", "san_email"])
    conn = pika.BlockingConnection(params(b, context(cert="client"), pika.credentials.ExternalCredentials()))
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="device-1@example.com"))
    assert ch.basic_get(q, auto_ack=True)[2] == b"x"
    conn.close()


def test_external_without_a_certificate_is_refused(make_tls_broker):
    b = make_tls_broker(client_cert="optional")
    # pika refuses locally when the broker does not offer EXTERNAL, which is the point.
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(params(b, context(), pika.credentials.ExternalCredentials()))
    assert b.alive()


@pytest.mark.parametrize("cert", ["client-expired", "client-revoked", "wrong-ca-client", None])
def test_bad_certificates_never_reach_amqp(make_tls_broker, cert):
    b = make_tls_broker(client_cert="required")
    outcome = probe(b.amqps_port, context(cert=cert))
    assert outcome[0] == "refused", outcome
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(params(b, context(cert=cert), pika.credentials.ExternalCredentials()))
    assert probe(b.amqps_port, context(cert="client"))[2].startswith(b"\x01\x00\x00")  # connection.start
