"""Logins with real clients: paho (wrong password -> 3.1.1 rc 4 / 5.0 0x86, unknown vhost in
`vhost:user` -> 5 / 0x87), pika (PLAIN against configured users, ProbableAuthenticationError on
a wrong password, 530 without vhost permissions), mosquitto_pub -u/-P, and `ferromq user add` on
a running broker's data dir taking effect at the next login (no restart)."""

import shutil
import subprocess

import pika
import pytest

from conftest import broker_binary
import rawamqp as a
import rawmqtt as r
from pahoclient import V5, V311

USERS = """
[auth]
failed_login_delay_ms = 20

[[users]]
name = "alice"
password = "s3cret"

[[users]]
name = "nobody"
password = "pw"

[[permissions]]
user = "alice"
vhost = "/"
configure = ".*"
write = ".*"
read = ".*"
"""


@pytest.fixture
def auth_broker(make_broker):
    return make_broker(extra_toml=USERS)


def pika_params(broker, user, password, vhost="/"):
    return pika.ConnectionParameters(
        host="127.0.0.1", port=broker.amqp_port, virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5,
    )


@pytest.mark.parametrize("version,bad,unauthorized", [(V311, 0x86, 0x87), (V5, 0x86, 0x87)])
def test_paho_credentials(auth_broker, clients, version, bad, unauthorized):
    # paho reports 3.1.1's return codes 4 / 5 as 0x86 / 0x87; the raw test below checks the bytes.
    ok = clients(auth_broker, "ok", version=version, username="alice", password="s3cret")
    assert ok.connect().reason_code == 0
    wrong = clients(auth_broker, "wrong", version=version, username="alice", password="nope")
    assert wrong.connect(expect_success=False).reason_code == bad
    ghost = clients(auth_broker, "ghost", version=version, username="ghost", password="x")
    assert ghost.connect(expect_success=False).reason_code == bad
    vhost = clients(auth_broker, "vh", version=version, username="nowhere:alice", password="s3cret")
    assert vhost.connect(expect_success=False).reason_code == unauthorized
    explicit = clients(auth_broker, "vh2", version=version, username="/:alice", password="s3cret")
    assert explicit.connect().reason_code == 0
    # A user without permissions on the vhost is not authorized there.
    nobody = clients(auth_broker, "nb", version=version, username="nobody", password="pw")
    assert nobody.connect(expect_success=False).reason_code == unauthorized


@pytest.mark.parametrize("user,password,rc", [("alice", "nope", 4), ("nowhere:alice", "s3cret", 5),
                                              ("alice", "s3cret", 0)])
def test_v311_connack_return_codes_on_the_wire(auth_broker, raw, user, password, rc):
    c = raw(auth_broker)
    c.send(r.connect("raw", version=4, username=user, password=password))
    assert c.expect(r.CONNACK).raw == bytes([0x20, 0x02, 0x00, rc])


def test_anonymous_refused_when_disallowed(make_broker, clients):
    b = make_broker(allow_anonymous=False)
    anon = clients(b, "anon", version=V5)
    assert anon.connect(expect_success=False).reason_code == 0x87
    guest = clients(b, "g", version=V5, username="guest", password="guest")
    assert guest.connect().reason_code == 0


def test_pika_plain_against_users(auth_broker):
    conn = pika.BlockingConnection(pika_params(auth_broker, "alice", "s3cret"))
    conn.channel().queue_declare(queue="alice-q")
    conn.close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as e:
        pika.BlockingConnection(pika_params(auth_broker, "alice", "wrong"))
    assert "403" in str(e.value) and "ACCESS_REFUSED" in str(e.value)
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika_params(auth_broker, "guest", "guest"))
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        pika.BlockingConnection(pika_params(auth_broker, "nobody", "pw"))
    assert "530" in str(e.value) and "access to vhost '/' refused for user 'nobody'" in str(e.value)


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto_pub not installed")
def test_mosquitto_pub_credentials(auth_broker):
    base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(auth_broker.port), "-t", "t", "-m", "x"]
    good = subprocess.run(base + ["-u", "alice", "-P", "s3cret"], capture_output=True, text=True, timeout=10)
    assert good.returncode == 0, good.stderr
    bad = subprocess.run(base + ["-u", "alice", "-P", "nope"], capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0
    assert "bad user name or password" in bad.stderr, bad.stderr


def admin(broker, *args):
    out = subprocess.run([str(broker_binary()), *args, "--data-dir", str(broker.data_dir)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_cli_user_changes_apply_to_running_broker(broker, clients):
    admin(broker, "user", "add", "carol", "first")
    admin(broker, "permissions", "set", "carol", ".*", ".*", ".*")
    conn = pika.BlockingConnection(pika_params(broker, "carol", "first"))
    conn.close()
    admin(broker, "user", "passwd", "carol", "second")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika_params(broker, "carol", "first"))
    c = clients(broker, "carol", version=V5, username="carol", password="second")
    assert c.connect().reason_code == 0
    # guest was kept when the first user was added.
    pika.BlockingConnection(pika_params(broker, "guest", "guest")).close()


def test_cli_vhost_opened_by_pika_and_paho(broker, clients):
    admin(broker, "vhost", "add", "dev")
    admin(broker, "user", "add", "dave", "pw")
    admin(broker, "permissions", "set", "dave", "--vhost", "dev", ".*", ".*", ".*")
    assert "dev" in admin(broker, "vhost", "list").split()
    conn = pika.BlockingConnection(pika_params(broker, "dave", "pw", vhost="dev"))
    ch = conn.channel()
    ch.queue_declare(queue="dev-q")
    ch.queue_bind(queue="dev-q", exchange="amq.topic", routing_key="sensors.#")
    m = clients(broker, "dev-sensor", version=V5, username="dev:dave", password="pw")
    m.connect()
    m.publish("sensors/t1", b"21.5", qos=1)
    method, _, body = ch.basic_get("dev-q", auto_ack=True)
    assert method is not None and body == b"21.5"
    conn.close()
    # dave has no permissions on `/`.
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(pika_params(broker, "dave", "pw"))
    admin(broker, "vhost", "delete", "dev")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as e:
        pika.BlockingConnection(pika_params(broker, "dave", "pw", vhost="dev"))
    assert "vhost 'dev' not found" in str(e.value)


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
def test_raw_sasl_mechanisms_against_users(auth_broker, mechanism):
    """connection.start-ok with each mechanism: the right password gets connection.tune, a wrong
    one connection.close 403 (the client asked for authentication_failure_close)."""
    for password, ok in [("s3cret", True), ("wrong", False)]:
        c = a.RawAmqp(auth_broker.amqp_port)
        try:
            c.send(a.PROTOCOL_HEADER)
            c.expect(a.CONNECTION_START, channel=0)
            c.send(a.start_ok(user="alice", password=password, mechanism=mechanism,
                              capabilities={"authentication_failure_close": True}))
            if ok:
                c.expect(a.CONNECTION_TUNE, channel=0)
            else:
                close = c.expect_close()
                assert close.code == 403 and close.text.startswith("ACCESS_REFUSED - "), close
        finally:
            c.close()
