"""MQTT over TLS with paho-mqtt (Python's ssl), mosquitto_pub/sub --cafile and openssl s_client:
server certificate checks, TLS versions, client certificates (good, wrong CA, expired, revoked,
missing), and the certificate identity as the MQTT user name (Mosquitto's
use_identity_as_username)."""

import re
import shutil
import ssl
import subprocess

import pytest

from pahoclient import V311, V5
from tlsclient import CERTS, context, probe

MQTT_CONNECT = bytes.fromhex("101000044d5154540402001e000474657374")  # 3.1.1 CONNECT "test"


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_paho_publish_subscribe_over_tls(make_tls_broker, clients, version):
    b = make_tls_broker()
    sub = clients(b.mqtts_port, "sub", version=version, tls=context())
    sub.connect()
    sub.subscribe("tls/#", qos=1)
    pub = clients(b.mqtts_port, "pub", version=version, tls=context())
    pub.connect()
    pub.publish("tls/a", b"over tls", qos=1)
    m = sub.get(timeout=5)
    assert (m.topic, m.payload) == ("tls/a", b"over tls")


def test_paho_refuses_a_server_certificate_from_another_ca(make_tls_broker, clients):
    b = make_tls_broker()
    c = clients(b.mqtts_port, "x", tls=context(ca="wrong-ca"))
    with pytest.raises(ssl.SSLCertVerificationError):
        c.connect()


def test_client_certificates_required(make_tls_broker, clients):
    b = make_tls_broker(client_cert="required")
    good = clients(b.mqtts_port, "good", tls=context(cert="client"))
    good.connect()
    for cert, alert in [(None, "certificate required"), ("wrong-ca-client", "unknown ca"),
                        ("client-expired", "certificate expired"), ("client-revoked", "certificate revoked")]:
        outcome = probe(b.mqtts_port, context(cert=cert), MQTT_CONNECT)
        assert outcome[0] == "refused", f"{cert}: {outcome}"
        assert alert in outcome[1].lower().replace("_", " "), f"{cert}: {outcome}"
    b.wait_log(r"TLS handshake failed .*Revoked")
    b.wait_log(r"TLS handshake failed .*expired")
    # The good client was not disturbed.
    good.subscribe("still/#")
    assert b.alive()


def test_optional_client_certificate(make_tls_broker):
    b = make_tls_broker(client_cert="optional")
    assert probe(b.mqtts_port, context(), MQTT_CONNECT)[0] == "ok"
    assert probe(b.mqtts_port, context(cert="client"), MQTT_CONNECT)[0] == "ok"
    assert probe(b.mqtts_port, context(cert="client-revoked"), MQTT_CONNECT)[0] == "refused"


def test_identity_becomes_the_user_name(make_tls_broker, clients):
    b = make_tls_broker(client_cert="optional", extra=["--mqtt-identity-as-username"],
                        log_level="info,ferromq::mqtt=debug")
    c = clients(b.mqtts_port, "dev1", tls=context(cert="client"), username="mallory", password="pw")
    c.connect()
    b.wait_log(r'client connected .*client_id=dev1 user=Some\("device-1"\)')
    # Without a certificate there is no user: CONNACK 5 (v3) / 0x87 (v5), as Mosquitto.
    anon = clients(b.mqtts_port, "anon", tls=context(), username="device-1")
    # paho reports the 3.1.1 return code 5 as its v5 equivalent 0x87.
    assert anon.connect(expect_success=False).reason_code == 0x87
    anon5 = clients(b.mqtts_port, "anon5", version=V5, tls=context())
    assert anon5.connect(expect_success=False).reason_code == 0x87


def test_tls_versions_below_1_2_are_refused(make_tls_broker):
    b = make_tls_broker()
    ok12 = probe(b.mqtts_port, context(minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2),
                 MQTT_CONNECT)
    ok13 = probe(b.mqtts_port, context(minimum=ssl.TLSVersion.TLSv1_3), MQTT_CONNECT)
    assert ok12[0] == "ok" and ok13[0] == "ok", (ok12, ok13)
    assert ok12[2][:1] == b"\x20"  # CONNACK


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
@pytest.mark.parametrize("flag,accepted", [("-tls1", False), ("-tls1_1", False), ("-tls1_2", True),
                                           ("-tls1_3", True)])
def test_openssl_s_client_versions(make_tls_broker, flag, accepted):
    b = make_tls_broker()
    # @SECLEVEL=0 lets OpenSSL 3 even try TLS 1.0/1.1, so the refusal is the broker's.
    cmd = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{b.mqtts_port}", "-CAfile", str(CERTS / "ca.pem"),
           "-verify_return_error", flag]
    if not accepted:
        cmd += ["-cipher", "DEFAULT@SECLEVEL=0"]
    r = subprocess.run(cmd, input=b"", capture_output=True, timeout=15)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    if accepted:
        assert "Verify return code: 0 (ok)" in out, out
        version = {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[flag]
        assert f"New, {version}, Cipher is" in out, out
    else:
        assert r.returncode != 0, out
        assert "Cipher is (NONE)" in out or "alert" in out.lower() or "no protocols" in out.lower(), out
    assert b.alive()


MOSQ = shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")


@pytest.mark.skipif(not MOSQ, reason="mosquitto clients not installed")
def test_mosquitto_pub_sub_with_cafile_and_client_certificate(make_tls_broker):
    b = make_tls_broker(client_cert="required")
    tls = ["--cafile", str(CERTS / "ca.pem"), "--cert", str(CERTS / "client.pem"), "--key",
           str(CERTS / "client.key")]
    sub = subprocess.Popen(["mosquitto_sub", "-h", "localhost", "-p", str(b.mqtts_port), *tls, "-t", "m/#",
                            "-C", "1", "-W", "10", "-v", "-q", "1", "-i", "msub"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # A retained message makes the order of subscribe and publish irrelevant (no sleep).
        subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(b.mqtts_port), *tls, "-t", "m/x",
                        "-m", "via mosquitto", "-r", "-q", "1"], check=True, timeout=10)
        out, err = sub.communicate(timeout=15)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert out.strip() == "m/x via mosquitto", (out, err)
    bad = subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(b.mqtts_port), "--cafile",
                          str(CERTS / "ca.pem"), "--cert", str(CERTS / "client-revoked.pem"), "--key",
                          str(CERTS / "client-revoked.key"), "-t", "m/y", "-m", "no", "-q", "1"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0, bad
    b.wait_log("invalid peer certificate: Revoked")
