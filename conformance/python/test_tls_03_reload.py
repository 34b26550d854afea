"""Certificate hot reload on SIGHUP, against the broker binary: new connections get the new
server certificate, connections made before stay up; a broken file keeps the old certificates.
Each test copies the development certificates into its own directory and edits that copy."""

import shutil
import signal

from tlsclient import CERTS, context, probe

MQTT_CONNECT = bytes.fromhex("101000044d5154540402001e000474657374")


def copy_certs(tmp_path):
    dest = tmp_path / "certs"
    dest.mkdir()
    for f in CERTS.iterdir():
        if f.is_file():
            shutil.copy(f, dest / f.name)
    return dest


def test_sighup_serves_the_new_certificate_and_keeps_old_connections(make_tls_broker, clients, tmp_path):
    certs = copy_certs(tmp_path)
    b = make_tls_broker(certs=certs)
    old = clients(b.mqtts_port, "old", tls=context(certs=certs))
    old.connect()
    old.subscribe("r/#", qos=1)
    shutil.copy(certs / "wrong-ca-server.pem", certs / "server.pem")
    shutil.copy(certs / "wrong-ca-server.key", certs / "server.key")
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"TLS certificates reloaded \(SIGHUP\)")
    stale = probe(b.mqtts_port, context(certs=certs), MQTT_CONNECT)
    assert stale[0] == "refused" and "certificate verify failed" in stale[1], stale
    new = clients(b.mqtts_port, "new", tls=context(ca="wrong-ca", certs=certs))
    new.connect()
    new.publish("r/x", b"after reload", qos=1)
    m = old.get(timeout=5)
    assert (m.topic, m.payload) == ("r/x", b"after reload")


def test_sighup_with_a_broken_certificate_keeps_the_old_one(make_tls_broker, clients, tmp_path):
    certs = copy_certs(tmp_path)
    b = make_tls_broker(certs=certs)
    (certs / "server.key").write_text("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"TLS reload \(SIGHUP\) failed, keeping the previous certificates")
    assert b.alive()
    c = clients(b.mqtts_port, "still", tls=context(certs=certs))
    c.connect()


def test_sighup_without_tls_listeners_is_harmless(broker, clients):
    broker.proc.send_signal(signal.SIGHUP)
    broker.wait_log("SIGHUP: no TLS listener, no certificates to reload")
    c = clients(broker, "plain")
    c.connect()
