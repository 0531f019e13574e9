"""The embedding API (`async with Server()`, `ThreadedServer`) and the pytest fixtures from
pynats_server/pytest_plugin.py (nats_server, nats_server_session, nats_server_factory)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import urllib.request

import nats
import pytest
from conftest import RawClient

from pynats_server import Options, Server, ThreadedServer
from pynats_server.testing import ThreadedServer as TS

TIMEOUT = 5.0


def sync_ping(port: int, host: str = "127.0.0.1") -> dict:
    """Connect, read INFO, CONNECT + PING, expect PONG; the INFO."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as s:
        s.settimeout(TIMEOUT)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, f"closed before INFO (got {buf!r})"
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        s.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        while b"PONG\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, f"closed before PONG (got {buf!r})"
            buf += chunk
    assert line.startswith(b"INFO ")
    return json.loads(line[5:])


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.settimeout(1.0)
            return s.recv(10) == b""
    except OSError:
        return True


def open_sync_client(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    buf = b""
    while b"\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, "closed before INFO"
        buf += chunk
    return s


def read_to_eof(s: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


# -- async with Server() ---------------------------------------------------------------------


async def test_async_with_server_defaults() -> None:
    async with Server() as srv:
        assert srv.running
        assert srv.opts.host == "127.0.0.1"
        assert srv.port > 0
        assert srv.addr == ("127.0.0.1", srv.port)
        assert srv.client_url == f"nats://127.0.0.1:{srv.port}"
        assert srv.monitor_url is None
        c = await RawClient.open(*srv.addr)
        info = await c.read_info()
        assert info["server_id"] == srv.id
        assert info["port"] == srv.port
        await c.connect(read_info=False)
        await c.close()
    assert not srv.running


async def test_keyword_overrides() -> None:
    async with Server(max_payload=4096, server_name="embedded") as srv:
        c = await RawClient.open(*srv.addr)
        info = await c.read_info()
        assert info["max_payload"] == 4096
        assert info["server_name"] == "embedded"
        await c.close()


async def test_options_object() -> None:
    opts = Options(host="127.0.0.1", port=-1, no_log=True, max_connections=3)
    async with Server(opts) as srv:
        assert srv.opts is opts
        assert srv.port > 0


def test_options_have_nats_server_defaults() -> None:
    o = Options()
    # nats-server's default: every interface (an options check; nothing binds it here).
    assert ipaddress.ip_address(o.host).is_unspecified and o.host.count(".") == 3 and o.port == 4222
    assert o.max_payload == 1048576 and o.max_control_line == 4096
    assert o.max_pending == 64 * 1024 * 1024
    assert o.ping_interval == 120 and o.ping_max == 2
    assert o.auth_timeout == 2.0


async def test_shutdown_closes_every_connection() -> None:
    srv = Server()
    await srv.start()
    own = srv.sublist.count  # the global account's imports of the system account's services
    clients = [await RawClient.open(*srv.addr) for _ in range(3)]
    for c in clients:
        await c.connect()
        await c.send(b"SUB foo 1\r\n")
        await c.ping()
    assert len(srv.clients) == 3
    assert srv.sublist.count == own + 3
    await srv.shutdown()
    for c in clients:
        await c.expect_closed()
    assert srv.clients == {}
    assert srv.sublist.count == own
    with pytest.raises(OSError):
        await asyncio.open_connection(*srv.addr)
    await srv.shutdown()  # idempotent


async def test_wait_for_shutdown() -> None:
    srv = Server()
    await srv.start()
    waiter = asyncio.create_task(srv.wait_for_shutdown())
    await asyncio.sleep(0)
    assert not waiter.done()
    await srv.shutdown()
    await asyncio.wait_for(waiter, TIMEOUT)


async def test_two_servers_side_by_side() -> None:
    async with Server() as a, Server() as b:
        assert a.port != b.port and a.id != b.id
        ca = await RawClient.open(*a.addr)
        cb = await RawClient.open(*b.addr)
        assert (await ca.read_info())["server_id"] == a.id
        assert (await cb.read_info())["server_id"] == b.id
        await ca.close()
        await cb.close()


async def test_restart_on_same_port() -> None:
    async with Server() as first:
        port = first.port
    async with Server(port=port) as second:
        assert second.port == port
        c = await RawClient.open(*second.addr)
        await c.connect()
        await c.close()


async def test_ports() -> None:
    async with Server(http_port=-1) as srv:
        p = srv.ports()
        assert p["nats"] == [f"nats://127.0.0.1:{srv.port}"]
        assert p["monitoring"] == [f"http://127.0.0.1:{srv.monitor.port}"]
        assert srv.monitor_url == f"http://127.0.0.1:{srv.monitor.port}"


# -- ThreadedServer ---------------------------------------------------------------------------


def test_threaded_server_context_manager() -> None:
    with ThreadedServer() as ts:
        assert ts is not None and ts.port > 0
        assert ts.client_url == f"nats://127.0.0.1:{ts.port}"
        info = sync_ping(ts.port)
        assert info["server_id"] == ts.server.id
        port = ts.port
    assert refused(port)


def test_threaded_server_asyncio_loop() -> None:
    """The same on asyncio's own event loop (no uvloop)."""
    with ThreadedServer(loop="asyncio") as ts:
        info = sync_ping(ts.port)
        assert info["port"] == ts.port


def test_threaded_server_start_stop() -> None:
    ts = TS()
    assert ts.start() is ts
    try:
        with pytest.raises(RuntimeError):
            ts.start()
        sync_ping(ts.port)
        assert ts.call(lambda: len(ts.server.clients)) >= 0
    finally:
        ts.stop()
    ts.stop()  # idempotent
    assert refused(ts.port)


def test_threaded_server_stop_closes_every_connection() -> None:
    ts = ThreadedServer().start()
    socks = []
    try:
        for _ in range(3):
            s = open_sync_client(ts.port)
            s.sendall(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\nPING\r\n')
            buf = b""
            while b"PONG\r\n" not in buf:
                chunk = s.recv(4096)
                assert chunk, "closed before PONG"
                buf += chunk
            socks.append(s)
        assert ts.call(lambda: len(ts.server.clients)) == 3
    finally:
        ts.stop()
    for s in socks:
        assert read_to_eof(s) == b""
        s.close()


def test_threaded_server_monitor() -> None:
    with ThreadedServer(http_port=-1) as ts:
        assert ts.monitor_url is not None
        with urllib.request.urlopen(ts.monitor_url + "/varz", timeout=TIMEOUT) as r:
            assert json.load(r)["port"] == ts.port


def test_threaded_server_call_coroutine() -> None:
    with ThreadedServer(loop="asyncio") as ts:

        async def count() -> int:
            await asyncio.sleep(0)
            return len(ts.server.clients)

        assert ts.call(count) == 0


# -- pytest fixtures --------------------------------------------------------------------------


def test_fixture_nats_server(nats_server) -> None:
    assert isinstance(nats_server, ThreadedServer)
    info = sync_ping(nats_server.port)
    assert info["port"] == nats_server.port


async def test_fixture_nats_server_with_natspy(nats_server) -> None:
    nc = await nats.connect(nats_server.client_url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        sub = await nc.subscribe("fixture")
        await nc.publish("fixture", b"hi")
        msg = await sub.next_msg(timeout=TIMEOUT)
        assert msg.data == b"hi"
    finally:
        await nc.close()


_session_ids: list[str] = []


@pytest.mark.parametrize("n", [1, 2])
def test_fixture_nats_server_session_is_shared(nats_server_session, n: int) -> None:
    sync_ping(nats_server_session.port)
    _session_ids.append(nats_server_session.server.id)
    assert len(set(_session_ids)) == 1


def test_fixture_nats_server_factory(nats_server_factory) -> None:
    a = nats_server_factory(max_payload=1024)
    b = nats_server_factory(server_name="b")
    assert a.port != b.port
    assert sync_ping(a.port)["max_payload"] == 1024
    assert sync_ping(b.port)["server_name"] == "b"


async def test_fixture_nats_server_js(nats_server_js, tmp_path) -> None:
    """The JetStream fixture: streams work through nats-py and live under the test's tmp_path."""
    nc = await nats.connect(nats_server_js.client_url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        await js.add_stream(name="E", subjects=["e.>"], storage="file")
        ack = await js.publish("e.1", b"hello")
        assert (ack.stream, ack.seq) == ("E", 1)
        assert (await js.get_msg("E", 1)).data == b"hello"
    finally:
        await nc.close()
    assert (tmp_path / "jetstream" / "jetstream" / "$G" / "streams" / "E").is_dir()


async def test_threaded_server_jetstream_true_uses_a_temporary_store() -> None:
    srv = TS(jetstream=True).start()
    store = srv._tmp_store
    assert store is not None
    try:
        nc = await nats.connect(srv.client_url, connect_timeout=2, max_reconnect_attempts=0)
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t"], storage="file")
        await js.publish("t", b"x")
        await nc.close()
        assert os.path.isdir(os.path.join(store, "jetstream", "$G", "streams", "T"))
    finally:
        srv.stop()
    assert not os.path.exists(store)  # removed by stop()


def test_threaded_server_without_jetstream_has_none() -> None:
    with TS() as srv:
        assert "jetstream" not in sync_ping(srv.port)
