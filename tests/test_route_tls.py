"""Route TLS (`cluster { tls {} }`): pynats-server with itself and with the real nats-server
2.14.0 and 2.9.10, both dialling directions; the handshake comes before INFO/CONNECT, peer
certificates are required and verified, a plaintext peer on the TLS route port is closed as
nats-server closes it."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from pathlib import Path

import nats
import pytest
from cluster_util import GoServer, free_port, go_binary, wait_for
from tls_util import Certs, LogCapture, make_certs

from pynats_server import ClusterOptions, Options, RouteURL, Server
from pynats_server.options import TLSOptions


@pytest.fixture(scope="module")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def node_tls(certs: Certs, name: str = "node", **kw: object) -> TLSOptions:
    cert, key = certs.pair(name)
    return TLSOptions(cert_file=cert, key_file=key, ca_file=certs.ca_file, **kw)  # type: ignore[arg-type]


def py_node(certs: Certs, name: str, *, routes: list[int] | None = None, port: int = -1,
            log: LogCapture | None = None, cert: str = "node", **tls_kw: object) -> Server:
    return Server(
        Options(host="127.0.0.1", port=-1, server_name=name, http_port=-1,
                cluster=ClusterOptions(host="127.0.0.1", port=port, name="TLSC", tls=node_tls(certs, cert, **tls_kw),
                                       routes=[RouteURL("127.0.0.1", p) for p in routes or []])),
        logger=log or LogCapture(),
    )


async def roundtrip(a_url: str, b_url: str, certs: Certs | None = None, subject: str = "x") -> None:
    a = await nats.connect(a_url, allow_reconnect=False)
    b = await nats.connect(b_url, allow_reconnect=False)
    try:
        for src, dst in ((a, b), (b, a)):
            sub = await dst.subscribe(subject)
            await dst.flush()
            for _ in range(200):
                await src.publish(subject, b"hop")
                await src.flush()
                try:
                    assert (await sub.next_msg(timeout=0.05)).data == b"hop"
                    break
                except nats.errors.TimeoutError:
                    continue
            else:
                raise AssertionError("no message across the TLS route")
            await sub.unsubscribe()
    finally:
        await a.close()
        await b.close()


async def test_pynats_cluster_over_tls(tls_certs: Certs) -> None:
    la, lb = LogCapture(), LogCapture()
    a = py_node(tls_certs, "A", log=la)
    await a.start()
    b = py_node(tls_certs, "B", routes=[a.cluster.port], log=lb)  # type: ignore[union-attr]
    await b.start()
    try:
        await wait_for(lambda: a.cluster.routes and b.cluster.routes, what="TLS route")  # type: ignore[union-attr]
        await roundtrip(a.client_url, b.client_url)
        # The dialling side: handshake, then CONNECT, then INFO.
        order = [ln for ln in lb.lines if " - rid:" in ln]
        want = ["Starting TLS route client handshake", "TLS handshake complete", "TLS version 1.",
                "Route connect msg sent", "Route connection created"]
        got = [next(i for i, ln in enumerate(order) if w in ln) for w in want]
        assert got == sorted(got), order[:8]
        assert la.has("Starting TLS route server handshake")
        assert la.has('"tls_required":true')  # in the traced CONNECT
        v = a.monitoring.varz()["cluster"]
        assert (v["tls_required"], v["tls_verify"], v["tls_timeout"], v["auth_timeout"]) == (True, True, 2, 3)
        assert a.ports()["cluster"][0].startswith("tls://")
    finally:
        await b.shutdown()
        await a.shutdown()


async def test_plaintext_peer_on_tls_route_port(tls_certs: Certs) -> None:
    log = LogCapture()
    a = py_node(tls_certs, "A", log=log, timeout=0.5)
    await a.start()
    try:
        port = a.cluster.port  # type: ignore[union-attr]

        def plain(send: bytes) -> bytes:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                if send:
                    s.sendall(send)
                out = b""
                while True:
                    d = s.recv(4096)
                    if not d:
                        return out
                    out += d
            except ConnectionResetError:
                return out
            finally:
                s.close()

        # Nothing is sent before the handshake; a CONNECT in plaintext is refused at once.
        assert await asyncio.to_thread(plain, b'CONNECT {"verbose":false,"name":"X","cluster":"TLSC"}\r\n') == b""
        await log.wait("TLS route handshake error: tls: first record does not look like a TLS handshake")
        await log.wait("Router connection closed: TLS Handshake Failure")
        # A silent one is closed at the TLS timeout.
        assert await asyncio.to_thread(plain, b"") == b""
        await log.wait("TLS route handshake error: read tcp ")
        await log.wait("TLS handshake timeout")
        assert not a.cluster.routes  # type: ignore[union-attr]
    finally:
        await a.shutdown()


async def test_route_from_another_ca_is_refused(tls_certs: Certs) -> None:
    la, lb = LogCapture(), LogCapture()
    a = py_node(tls_certs, "A", log=la)
    await a.start()
    cert, key = tls_certs.pair("othernode")
    b = Server(Options(host="127.0.0.1", port=-1, server_name="B", cluster=ClusterOptions(
        host="127.0.0.1", port=-1, name="TLSC",
        tls=TLSOptions(cert_file=cert, key_file=key, ca_file=str(tls_certs.dir / "other-ca.pem")),
        routes=[RouteURL("127.0.0.1", a.cluster.port)])), logger=lb)  # type: ignore[union-attr]
    await b.start()
    try:
        await lb.wait("TLS route handshake error: tls: failed to verify certificate: x509: certificate signed by unknown authority")
        assert not a.cluster.routes and not b.cluster.routes  # type: ignore[union-attr]
    finally:
        await b.shutdown()
        await a.shutdown()


async def test_insecure_skips_verifying_the_dialled_peer(tls_certs: Certs) -> None:
    """insecure: the dialler does not check the peer; the peer still checks the dialler."""
    a = py_node(tls_certs, "A")
    await a.start()
    cert, key = tls_certs.pair("node")
    lb = LogCapture()
    b = Server(Options(host="127.0.0.1", port=-1, server_name="B", cluster=ClusterOptions(
        host="127.0.0.1", port=-1, name="TLSC",
        tls=TLSOptions(cert_file=cert, key_file=key, ca_file=str(tls_certs.dir / "other-ca.pem"), insecure=True),
        routes=[RouteURL("127.0.0.1", a.cluster.port)])), logger=lb)  # type: ignore[union-attr]
    await b.start()
    try:
        assert lb.has("TLS certificate chain and hostname of solicited routes will not be verified. DO NOT USE IN PRODUCTION!")
        await wait_for(lambda: b.cluster.routes, what="insecure route")  # type: ignore[union-attr]
    finally:
        await b.shutdown()
        await a.shutdown()


# -- with nats-server --------------------------------------------------------------------


def go_tls_conf(certs: Certs, d: Path) -> str:
    cert, key = certs.pair("node")
    path = d / "go-route-tls.conf"
    path.write_text(f'cluster {{ tls {{ cert_file: "{cert}", key_file: "{key}", ca_file: "{certs.ca_file}" }} }}\n')
    return str(path)


@pytest.mark.parametrize("kind", ["go214", "go29"])
@pytest.mark.parametrize("who_dials", ["go-dials-us", "we-dial-go"])
async def test_tls_route_with_nats_server(tls_certs: Certs, tmp_path: Path, kind: str, who_dials: str) -> None:
    go_port = free_port()
    log = LogCapture()
    py = py_node(tls_certs, "py", routes=[go_port] if who_dials == "we-dial-go" else None, log=log)
    py.opts.cluster.name = "TLSC"
    await py.start()
    go = GoServer(go_binary(kind), "-c", go_tls_conf(tls_certs, tmp_path), name="go", cluster_port=go_port,
                  cluster_name="TLSC",
                  routes=[f"nats-route://127.0.0.1:{py.cluster.port}"] if who_dials == "go-dials-us" else None)  # type: ignore[union-attr]
    await go.start()
    try:
        await wait_for(lambda: len(py.cluster.routes) == 1, timeout=15, what="TLS route to nats-server")  # type: ignore[union-attr]
        route = next(iter(py.cluster.routes.values()))  # type: ignore[union-attr]
        assert route.did_solicit == (who_dials == "we-dial-go")
        assert route.tls_state() is not None
        await roundtrip(py.client_url, go.client_url, subject=f"tls.{kind}")
        routez = await asyncio.to_thread(go.varz, "routez")
        assert [r["remote_id"] for r in routez["routes"]] == [py.id]
        info = [ln for ln in log.lines if "<<- [INFO " in ln][0]
        fields = json.loads(info.split("<<- [INFO ", 1)[1].rstrip("]"))
        assert fields["tls_required"] is True and fields["tls_verify"] is True
    finally:
        await go.stop()
        await py.shutdown()


async def test_connect_and_info_fields_seen_by_a_raw_tls_peer(tls_certs: Certs) -> None:
    """What we send on a TLS route, read by a raw TLS peer in each direction."""
    a = py_node(tls_certs, "A")
    await a.start()
    ctx = ssl.create_default_context(cafile=tls_certs.ca_file)
    ctx.check_hostname = False
    ctx.load_cert_chain(*tls_certs.pair("node"))
    try:
        def peer() -> dict:
            s = socket.create_connection(("127.0.0.1", a.cluster.port), timeout=5)  # type: ignore[union-attr]
            t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
            line = b""
            while not line.endswith(b"\r\n"):
                line += t.recv(4096)
            t.close()
            return json.loads(line[5:])

        info = await asyncio.to_thread(peer)
        assert info["tls_required"] is True and info["tls_verify"] is True
        assert list(info).index("tls_required") == list(info).index("headers") + 1 + ("auth_required" in info)
    finally:
        await a.shutdown()


@pytest.mark.parametrize("known_host, allowed", [("localhost", True), ("elsewhere.example", False)])
async def test_verify_cert_and_check_known_urls(tls_certs: Certs, known_host: str, allowed: bool) -> None:
    """The accepting side takes a route whose certificate has a DNS name among its own route
    URLs' hosts (the node certificate is for localhost)."""
    la = LogCapture()
    dead = free_port()
    a = Server(Options(host="127.0.0.1", port=-1, server_name="A", cluster=ClusterOptions(
        host="127.0.0.1", port=-1, name="TLSC", tls=node_tls(tls_certs, check_known_urls=True, verify=True),
        routes=[RouteURL(known_host, dead)])), logger=la)
    await a.start()
    b = py_node(tls_certs, "B", routes=[a.cluster.port])  # type: ignore[union-attr]
    await b.start()
    try:
        if allowed:
            await wait_for(lambda: a.cluster.routes and b.cluster.routes, what="route by known URL")  # type: ignore[union-attr]
            assert la.has('Using SAN found in cert for auth ["localhost"]')
        else:
            await la.wait("Authorization Violation")
            assert not a.cluster.routes  # type: ignore[union-attr]
    finally:
        await b.shutdown()
        await a.shutdown()
