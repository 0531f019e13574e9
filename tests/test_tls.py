"""Client TLS, as nats-server 2.14 does it (the behaviours measured on 2.14.0 and 2.9.10 are
listed in docs/DESIGN.md, "TLS"): INFO fields per mode, INFO-then-upgrade, handshake first,
allow_non_tls, the handshake timeout, errors and their log lines, verify and verify_and_map,
pinned certificates, monitoring over HTTPS and the /varz and /connz TLS fields."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.request
from pathlib import Path

import nats
import pytest
from tls_util import Certs, LogCapture, SyncConn, make_certs

from pynats_server import Options, Server
from pynats_server import certs as certmod
from pynats_server.monitor import ConnzOptions
from pynats_server.options import TLSOptions, User


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


async def tls_server(certs: Certs, *, log: LogCapture | None = None, **kw: object) -> Server:
    tls_kw = {k: kw.pop(k) for k in list(kw) if k in TLSOptions.__dataclass_fields__}
    srv = Server(Options(host="127.0.0.1", port=-1, tls=certs.server_tls(**tls_kw), **kw),  # type: ignore[arg-type]
                 logger=log or LogCapture())
    await srv.start()
    return srv


# -- INFO per mode -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, tls_kw, opts_kw, fields",
    [
        ("tls", {}, {}, {"tls_required": True}),
        ("verify", {"verify": True, "ca_file": "CA"}, {}, {"tls_required": True, "tls_verify": True}),
        ("allow_non_tls", {}, {"allow_non_tls": True}, {"tls_available": True}),
    ],
)
async def test_info_fields_per_mode(tls_certs: Certs, mode: str, tls_kw: dict, opts_kw: dict, fields: dict) -> None:
    if tls_kw.get("ca_file") == "CA":
        tls_kw["ca_file"] = tls_certs.ca_file
    srv = await tls_server(tls_certs, **tls_kw, **opts_kw)
    try:
        c = SyncConn(srv.port)
        raw = await asyncio.to_thread(c.recv_line)
        c.close()
        info = json.loads(raw[5:])
        assert {k: v for k, v in info.items() if k.startswith("tls")} == fields
        keys = list(info)
        # nats-server's order: ... headers, [auth_required], tls_*, max_payload ...
        assert keys.index("headers") < keys.index(next(iter(fields))) < keys.index("max_payload")
    finally:
        await srv.shutdown()


async def test_handshake_first_sends_info_after_the_handshake(tls_certs: Certs) -> None:
    log = LogCapture()
    srv = await tls_server(tls_certs, log=log, handshake_first=True)
    try:
        assert log.has('[WRN] Clients that are not using "TLS Handshake First" option will fail to connect')

        def run() -> dict[str, object]:
            c = SyncConn(srv.port)
            c.sock.settimeout(0.2)
            try:
                early = c.sock.recv(100)
            except TimeoutError:
                early = b""
            assert early == b"", "no INFO before the handshake"
            c.sock.settimeout(5)
            c.upgrade(tls_certs.client_ctx())
            info = c.info()
            c.send(b"CONNECT {}\r\nPING\r\n")
            assert c.recv_line() == b"+OK" and c.recv_line() == b"PONG"
            c.close()
            return info

        info = await asyncio.to_thread(run)
        assert info["tls_required"] is True and "tls_available" not in info
        await log.wait("TLS version 1.")
        i = log.lines.index(next(x for x in log.lines if "Starting TLS client connection handshake" in x))
        assert "TLS handshake complete" in log.lines[i + 1]
    finally:
        await srv.shutdown()


async def test_handshake_first_with_allow_non_tls_says_both(tls_certs: Certs) -> None:
    srv = await tls_server(tls_certs, handshake_first=True, allow_non_tls=True)
    try:
        def run() -> dict[str, object]:
            c = SyncConn(srv.port)
            c.upgrade(tls_certs.client_ctx())
            info = c.info()
            c.close()
            return info

        info = await asyncio.to_thread(run)
        assert info["tls_required"] is True and info["tls_available"] is True
    finally:
        await srv.shutdown()


async def test_handshake_first_fallback_sends_info_to_a_silent_client(tls_certs: Certs) -> None:
    srv = await tls_server(tls_certs, handshake_first=True, handshake_first_fallback=0.1)
    try:
        def run() -> tuple[float, dict[str, object], bytes]:
            c = SyncConn(srv.port)
            t0 = time.monotonic()
            info = c.info()
            waited = time.monotonic() - t0
            c.upgrade(tls_certs.client_ctx())
            c.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
            pong = c.recv_line()
            c.close()
            return waited, info, pong

        waited, info, pong = await asyncio.to_thread(run)
        assert 0.05 < waited < 2.0
        assert info["tls_required"] is True and pong == b"PONG"
        # A client that starts the handshake at once is served handshake-first.
        nc = await nats.connect(f"tls://127.0.0.1:{srv.port}", tls=tls_certs.client_ctx(),
                                tls_handshake_first=True, allow_reconnect=False)
        await nc.flush()
        await nc.close()
    finally:
        await srv.shutdown()


# -- nats-py end to end --------------------------------------------------------------------


async def test_nats_py_over_tls(tls_certs: Certs) -> None:
    srv = await tls_server(tls_certs, http_port=-1)
    try:
        nc = await nats.connect(srv.client_url, tls=tls_certs.client_ctx(), tls_hostname="127.0.0.1",
                                allow_reconnect=False)
        sub = await nc.subscribe("greet.*")
        for i in range(100):
            await nc.publish(f"greet.{i}", b"x" * (i * 500))
        for i in range(100):
            m = await sub.next_msg(timeout=2)
            assert m.subject == f"greet.{i}" and len(m.data) == i * 500
        # A request with no responders gets the 503 status over TLS too.
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("nobody.home", b"?", timeout=1)
        await nc.close()
    finally:
        await srv.shutdown()


async def test_nats_py_handshake_first(tls_certs: Certs) -> None:
    srv = await tls_server(tls_certs, handshake_first=True)
    try:
        nc = await nats.connect(f"tls://127.0.0.1:{srv.port}", tls=tls_certs.client_ctx(),
                                tls_handshake_first=True, allow_reconnect=False)
        sub = await nc.subscribe("a")
        await nc.publish("a", b"first")
        assert (await sub.next_msg(timeout=2)).data == b"first"
        await nc.close()
    finally:
        await srv.shutdown()


async def test_verify_requires_a_client_certificate_from_the_ca(tls_certs: Certs) -> None:
    log = LogCapture()
    srv = await tls_server(tls_certs, log=log, verify=True, ca_file=tls_certs.ca_file)
    try:
        nc = await nats.connect(srv.client_url, tls=tls_certs.client_ctx("alice"), allow_reconnect=False)
        await nc.flush()
        await nc.close()

        def attempt(cert: str | None) -> None:
            c = SyncConn(srv.port)
            c.info()
            try:
                c.upgrade(tls_certs.client_ctx(cert))
                c.send(b"CONNECT {}\r\nPING\r\n")
                c.recv_line()
            except (ssl.SSLError, ConnectionError, OSError):
                return
            finally:
                c.close()
            raise AssertionError("the server accepted the connection")

        await asyncio.to_thread(attempt, None)
        await log.wait("TLS handshake error: tls: client didn't provide a certificate")
        await asyncio.to_thread(attempt, "mallory")
        await log.wait("TLS handshake error: tls: failed to verify certificate: x509: certificate signed by unknown authority")
        await log.wait("Client connection closed: TLS Handshake Failure")
    finally:
        await srv.shutdown()


# -- wrong kind of client ------------------------------------------------------------------


async def test_plaintext_connect_on_tls_port_is_closed_at_once(tls_certs: Certs) -> None:
    log = LogCapture()
    srv = await tls_server(tls_certs, log=log)
    try:
        def run() -> tuple[bytes, float]:
            c = SyncConn(srv.port)
            c.info()
            c.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
            return c.read_until_closed(5)

        data, took = await asyncio.to_thread(run)
        assert data == b"" and took < 1.0
        await log.wait("[ERR] 127.0.0.1:")
        assert log.has("TLS handshake error: tls: first record does not look like a TLS handshake")
        await log.wait("Client connection closed: TLS Handshake Failure")
    finally:
        await srv.shutdown()


async def test_silent_client_is_closed_at_the_tls_timeout_while_others_work(tls_certs: Certs) -> None:
    log = LogCapture()
    srv = await tls_server(tls_certs, log=log, timeout=0.5)
    try:
        def stall() -> tuple[bytes, float]:
            c = SyncConn(srv.port)
            c.info()
            c.send(b"\x16\x03\x01\x00")  # the start of a record, then nothing
            return c.read_until_closed(5)

        stalled = asyncio.ensure_future(asyncio.to_thread(stall))
        nc = await nats.connect(srv.client_url, tls=tls_certs.client_ctx(), allow_reconnect=False)
        sub = await nc.subscribe("still")
        await nc.publish("still", b"working")
        assert (await sub.next_msg(timeout=2)).data == b"working"
        data, took = await stalled
        assert data == b"" and 0.4 < took < 2.0
        line = await log.wait("i/o timeout")
        assert "TLS handshake error: read tcp 127.0.0.1:" in line
        assert log.has("[ERR] 127.0.0.1:") and log.has("TLS handshake timeout")
        assert log.has("->> [-ERR Secure Connection - TLS Required]")
        await nc.publish("still", b"after")
        assert (await sub.next_msg(timeout=2)).data == b"after"
        await nc.close()
    finally:
        await srv.shutdown()


async def test_tls_client_on_a_plaintext_port_gets_unknown_protocol(tls_certs: Certs) -> None:
    srv = Server(host="127.0.0.1", port=-1, no_log=True)
    await srv.start()
    try:
        def run() -> bytes:
            c = SyncConn(srv.port)
            c.info()
            try:
                c.upgrade(tls_certs.client_ctx())
            except (ssl.SSLError, OSError):
                pass
            return c.buf

        await asyncio.to_thread(run)
        # Same bytes as nats-server: the ClientHello is an unknown op.
        c = SyncConn(srv.port)
        await asyncio.to_thread(c.info)
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        data, _ = await asyncio.to_thread(c.read_until_closed, 5)
        assert data == b"-ERR 'Unknown Protocol Operation'\r\n"
    finally:
        await srv.shutdown()


async def test_eof_during_handshake_is_logged_like_nats_server(tls_certs: Certs) -> None:
    log = LogCapture()
    srv = await tls_server(tls_certs, log=log)
    try:
        c = SyncConn(srv.port)
        await asyncio.to_thread(c.info)
        c.close()
        await log.wait("TLS handshake error: EOF")
        c = SyncConn(srv.port)
        await asyncio.to_thread(c.info)
        c.send(b"\x16\x03\x01\x00\x50\x01")
        await asyncio.sleep(0.05)
        c.close()
        await log.wait("TLS handshake error: unexpected EOF")
    finally:
        await srv.shutdown()


# -- allow_non_tls -------------------------------------------------------------------------


async def test_allow_non_tls_takes_both(tls_certs: Certs) -> None:
    srv = await tls_server(tls_certs, allow_non_tls=True, http_port=-1)
    try:
        plain = await nats.connect(srv.client_url, allow_reconnect=False)  # tls_available: stays plain

        def tls_client() -> bytes:
            c = SyncConn(srv.port)
            info = c.info()
            assert info.get("tls_available") is True
            c.upgrade(tls_certs.client_ctx())
            c.send(b'CONNECT {"verbose":false}\r\nSUB mixed 1\r\nPING\r\n')
            assert c.recv_line() == b"PONG"
            line = c.recv_line()
            body = c.recv_line()
            c.close()
            return line + b"|" + body

        task = asyncio.ensure_future(asyncio.to_thread(tls_client))
        await asyncio.sleep(0)
        # Wait for the TLS client's interest, then publish from the plaintext one.
        for _ in range(200):
            if srv.sublist.match(b"mixed").psubs:
                break
            await asyncio.sleep(0.01)
        await plain.publish("mixed", b"hi")
        await plain.flush()
        assert await task == b"MSG mixed 1 2|hi"
        conns = srv.monitoring.connz()["connections"]
        assert sum("tls_version" in c for c in conns) <= 1
        await plain.close()
    finally:
        await srv.shutdown()


# -- verify_and_map ------------------------------------------------------------------------


def _users(*names: str) -> list[User]:
    return [User(n) for n in names]


@pytest.mark.parametrize(
    "cert, users, expect",
    [
        ("alice", ["alice@example.com", "someone"], "alice@example.com"),  # email SAN
        ("bob", ["bob.example.com"], "bob.example.com"),  # DNS SAN
        ("alice", ["CN=alice,OU=Eng,O=Acme"], "CN=alice,OU=Eng,O=Acme"),  # the subject
        ("alice", ["O=Acme, OU=Eng, CN=alice"], "O=Acme, OU=Eng, CN=alice"),  # DN, RDNs reordered
        ("alice", ["cn=alice,ou=Eng,o=Acme"], "cn=alice,ou=Eng,o=Acme"),  # types in any case
        ("alice", ["CN=alice,OU=Other,O=Acme"], None),
    ],
)
async def test_verify_and_map(tls_certs: Certs, cert: str, users: list[str], expect: str | None) -> None:
    log = LogCapture()
    srv = await tls_server(tls_certs, log=log, verify=True, map=True, ca_file=tls_certs.ca_file,
                           users=_users(*users), http_port=-1)
    try:
        if expect is None:
            with pytest.raises(Exception):  # noqa: B017 - nats-py raises its own auth error types
                await nats.connect(srv.client_url, tls=tls_certs.client_ctx(cert), allow_reconnect=False,
                                   max_reconnect_attempts=0, connect_timeout=2)
            await log.wait("Authorization Violation")
            await log.wait("], not found")
            return
        nc = await nats.connect(srv.client_url, tls=tls_certs.client_ctx(cert), allow_reconnect=False)
        await nc.flush()
        conns = srv.monitoring.connz(ConnzOptions(auth=True))["connections"]
        assert conns[0]["authorized_user"] == expect
        assert conns[0]["tls_version"] in ("1.2", "1.3")
        await nc.close()
    finally:
        await srv.shutdown()


def test_go_subject_strings(tls_certs: Certs) -> None:
    der = certmod.first_cert_der(tls_certs.pair("alice")[0])
    assert der is not None
    rdns = certmod.subject_rdns(der)
    assert certmod.go_rdn_string(rdns) == "CN=alice,OU=Eng,O=Acme"
    assert certmod.parse_dn("CN=a\\,b,O=x") == [[("CN", "a,b")], [("O", "x")]]
    assert certmod.parse_dn("CN=#01") is None
    a = certmod.parse_dn("CN=alice,OU=Eng,O=Acme")
    b = certmod.dn_from_rdns(rdns)
    assert a is not None and b is not None and certmod.dn_equal(a, b)
    # Escaping as Go's RDNSequence.String: specials, and spaces at either end.
    assert certmod._escape(" a,b+c ") == "\\ a\\,b\\+c\\ "
    assert certmod._escape("#x#") == "\\#x#"


def test_spki_hash_matches_cryptography(tls_certs: Certs) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    path = tls_certs.pair("alice")[0]
    der = certmod.first_cert_der(path)
    assert der is not None
    c = x509.load_der_x509_certificate(der)
    spki = c.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib

    assert certmod.spki_sha256(der) == hashlib.sha256(spki).hexdigest()
    assert certmod.not_after(der) == c.not_valid_after_utc.timestamp()
    assert certmod.subject_of(der) == "CN=alice,OU=Eng,O=Acme"


async def test_pinned_certs(tls_certs: Certs) -> None:
    der = certmod.first_cert_der(tls_certs.pair("alice")[0])
    assert der is not None
    log = LogCapture()
    srv = await tls_server(tls_certs, log=log, verify=True, ca_file=tls_certs.ca_file,
                           pinned_certs={certmod.spki_sha256(der)})
    try:
        nc = await nats.connect(srv.client_url, tls=tls_certs.client_ctx("alice"), allow_reconnect=False)
        await nc.flush()
        await nc.close()

        def bob() -> None:
            c = SyncConn(srv.port)
            c.info()
            try:
                c.upgrade(tls_certs.client_ctx("bob"))
                c.send(b"PING\r\n")
                c.recv_line()
            except (ssl.SSLError, ConnectionError, OSError):
                return
            finally:
                c.close()

        await asyncio.to_thread(bob)
        await log.wait("Failed pinned cert test for key id: ")
        await log.wait("TLS handshake error: certificate not pinned")
    finally:
        await srv.shutdown()


# -- timeouts, monitoring ------------------------------------------------------------------


async def test_auth_timeout_is_tls_timeout_plus_one(tls_certs: Certs) -> None:
    srv = await tls_server(tls_certs, timeout=0.5, username="u", password="p", http_port=-1)
    try:
        v = srv.monitoring.varz()
        assert (v["auth_timeout"], v["tls_timeout"]) == (1.5, 0.5)
        assert v["tls_required"] is True and "tls_verify" not in v
        assert v["tls_cert_not_after"].endswith("Z")

        def run() -> tuple[bytes, float]:
            c = SyncConn(srv.port)
            c.info()
            c.upgrade(tls_certs.client_ctx())
            return c.read_until_closed(5)

        data, took = await asyncio.to_thread(run)
        assert data == b"-ERR 'Authentication Timeout'\r\n"
        assert 1.2 < took < 3.0  # the timer starts after the handshake
    finally:
        await srv.shutdown()


async def test_https_monitoring_and_tls_fields(tls_certs: Certs, tmp_path: Path) -> None:
    log = LogCapture()
    srv = Server(Options(host="127.0.0.1", port=-1, https_port=-1, ports_file_dir=str(tmp_path),
                         tls=tls_certs.server_tls(verify=True, ca_file=tls_certs.ca_file)), logger=log)
    await srv.start()
    try:
        assert srv.monitor_url.startswith("https://")
        await log.wait("Starting https monitor on 127.0.0.1:")
        assert log.has("TLS required for client connections")
        ports = json.loads(next(tmp_path.iterdir()).read_text())
        assert ports["nats"][0].startswith("tls://") and ports["monitoring"][0].startswith("https://")
        nc = await nats.connect(srv.client_url, tls=tls_certs.client_ctx("alice"), name="tlsclient",
                                allow_reconnect=False)
        await nc.flush()

        def get(path: str) -> dict:
            # Monitoring asks for no client certificate.
            with urllib.request.urlopen(srv.monitor_url + path, context=tls_certs.client_ctx(), timeout=5) as r:
                return json.load(r)

        v = await asyncio.to_thread(get, "/varz")
        assert v["tls_required"] is True and v["tls_verify"] is True
        assert v["https_port"] == -1 and v["http_port"] == 0
        c = (await asyncio.to_thread(get, "/connz?auth=1"))["connections"][0]
        assert c["name"] == "tlsclient" and c["tls_version"] == "1.3"
        assert c["tls_cipher_suite"].startswith("TLS_")
        assert c["tls_peer_certs"][0]["subject"] == "CN=alice,OU=Eng,O=Acme"
        keys = list(c)
        assert keys.index("name") < keys.index("tls_version") < keys.index("tls_cipher_suite")
        await nc.close()
    finally:
        await srv.shutdown()


async def test_slow_consumer_on_tls(tls_certs: Certs) -> None:
    srv = await tls_server(tls_certs, max_pending=256 * 1024)
    try:
        def slow() -> None:
            c = SyncConn(srv.port)
            c.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
            c.info()
            c.upgrade(tls_certs.client_ctx())
            c.send(b'CONNECT {"verbose":false}\r\nSUB big 1\r\nPING\r\n')
            assert c.recv_line() == b"PONG"
            # ...and never reads again; the server must cut it off.
            time.sleep(3)
            c.close()

        t = asyncio.ensure_future(asyncio.to_thread(slow))
        for _ in range(300):
            if srv.sublist.match(b"big").psubs:
                break
            await asyncio.sleep(0.01)
        pub = await nats.connect(srv.client_url, tls=tls_certs.client_ctx(), allow_reconnect=False)
        payload = b"x" * 32768
        for _ in range(2000):
            await pub.publish("big", payload)
            if srv.slow_consumers:
                break
            if _ % 50 == 0:
                await pub.flush()
        await pub.flush()
        assert srv.slow_consumers == 1
        await pub.close()
        await t
    finally:
        await srv.shutdown()
