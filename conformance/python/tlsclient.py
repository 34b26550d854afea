"""TLS helpers for the conformance suite: SSL contexts over the development certificates in
`certs/` (see certs/README.md) and a raw handshake probe that reports how the broker answered.

With TLS 1.3 a server refuses a client certificate after the client considers the handshake
done, so `probe` also sends a byte and reads: the alert arrives there."""

import socket
import ssl
from pathlib import Path

CERTS = Path(__file__).resolve().parents[2] / "certs"
TIMEOUT = 5.0


def context(ca="ca", cert=None, certs=CERTS, minimum=None, maximum=None):
    """A client SSLContext trusting `{ca}.pem`, presenting `{cert}.pem`/`.key` if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(Path(certs) / f"{ca}.pem"))
    if cert is not None:
        ctx.load_cert_chain(str(Path(certs) / f"{cert}.pem"), str(Path(certs) / f"{cert}.key"))
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def probe(port, ctx, payload=b"AMQP\x00\x00\x09\x01"):
    """Handshakes with 127.0.0.1:port, sends `payload`, reads once. Returns ("ok", version,
    first bytes) when the broker answered, or ("refused", reason) when the TLS layer refused
    (alert, reset or close without data)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        s = ctx.wrap_socket(raw, server_hostname="localhost")
    except (ssl.SSLError, ConnectionError, OSError) as e:
        raw.close()
        return ("refused", str(e))
    try:
        s.sendall(payload)
        data = s.recv(64)
    except (ssl.SSLError, ConnectionError, OSError) as e:
        return ("refused", str(e))
    finally:
        s.close()
    if not data:
        return ("refused", "closed without data")
    return ("ok", s.version() if hasattr(s, "version") else None, data)
