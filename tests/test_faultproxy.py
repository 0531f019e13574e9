"""The fault-injection proxy: its sans-IO decisions, then each fault on real connections
(a pynats-server behind the proxy, raw clients and nats-py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import nats
import pytest
from conftest import RawClient, wait_for

from pynats_server import Server
from pynats_server.faultproxy import FaultProxy
from pynats_server.faults import DOWN, UP, Direction, PeerSniffer, Policy, Rules, Shaper

# -- decisions (no I/O) ---------------------------------------------------------------------


def test_shaper_delay_and_rate() -> None:
    s = Shaper()
    assert s.due(Direction(delay=0.5), 100, now=10.0) == 10.5
    d = Direction(rate=1000)
    assert s.due(d, 500, now=0.0) == 0.5  # 500 bytes at 1000 B/s
    assert s.due(d, 500, now=0.1) == 1.0  # queued behind the first
    assert s.due(d, 100, now=5.0) == 5.1  # idle: no credit saved up
    assert Shaper.chunk_size(Direction()) == 65536
    assert Shaper.chunk_size(Direction(rate=1000)) == 256


def test_rules_default_and_peer_overrides() -> None:
    r = Rules()
    assert r.policy("a").clean
    r.update("a", drop=True, direction=UP)
    assert r.policy("a").up.drop and not r.policy("a").down.drop
    assert r.policy("b").clean
    r.update(None, paused=True)
    assert r.policy("b").paused and not r.policy("a").paused  # the override stands alone
    r.update("a", drop=False, direction=UP)
    r.reset()
    assert r.policy("a") == Policy() and not r.peers
    r.update("c", blocked=True)
    r.update("c", blocked=False)
    assert "c" not in r.peers  # back to the default: no override kept


def test_peer_sniffer() -> None:
    s = PeerSniffer()
    assert not s.feed(b"CONN")
    assert s.feed(b'ECT {"name":"app","verbose":false}\r\nPING\r\n')
    assert s.peer == "app" and s.buf.startswith(b"CONNECT")
    r = PeerSniffer()
    assert not r.feed(b'CONNECT {"name":"NID","cluster":"C"}\r\n')  # a route: waits for INFO
    assert r.feed(b'INFO {"server_id":"NID","server_name":"node-1"}\r\n')
    assert r.peer == "node-1"
    other = PeerSniffer()
    assert other.feed(b"GET / HTTP/1.1\r\n") and other.peer is None


# -- the proxy on real connections -------------------------------------------------------------


@pytest.fixture
async def served() -> AsyncIterator[tuple[Server, FaultProxy]]:
    srv = Server(host="127.0.0.1", port=-1, no_log=True)
    await srv.start()
    proxy = await FaultProxy("127.0.0.1", srv.port).start()
    try:
        yield srv, proxy
    finally:
        await proxy.stop()
        await srv.shutdown()


async def raw(proxy: FaultProxy) -> RawClient:
    return await RawClient.open("127.0.0.1", proxy.port)


async def test_pass_through_and_peer_name(served: tuple[Server, FaultProxy]) -> None:
    srv, proxy = served
    nc = await nats.connect(proxy.url, name="app")
    try:
        sub = await nc.subscribe("x")
        await nc.publish("x", b"hello")
        assert (await sub.next_msg(2)).data == b"hello"
        assert proxy.peers() == ["app"]
        assert proxy.stats[UP] > 0 and proxy.stats[DOWN] > 0
    finally:
        await nc.close()


async def test_delay_adds_latency_both_ways(served: tuple[Server, FaultProxy]) -> None:
    _, proxy = served
    c = await raw(proxy)
    await c.read_info()
    proxy.delay(0.2)
    t = time.monotonic()
    await c.send("CONNECT {\"verbose\":false}\r\nPING\r\n")
    await c.expect("PONG\r\n", timeout=5)
    assert time.monotonic() - t >= 0.4
    proxy.heal()
    t = time.monotonic()
    await c.send("PING\r\n")
    await c.expect("PONG\r\n")
    assert time.monotonic() - t < 0.2


async def test_throttle_caps_bytes_per_second(served: tuple[Server, FaultProxy]) -> None:
    _, proxy = served
    c = await raw(proxy)
    await c.read_info()
    await c.send("CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n")
    await c.expect("PONG\r\n")
    proxy.throttle(20_000, direction=DOWN)
    payload = b"x" * 10_000
    t = time.monotonic()
    await c.send(b"PUB big %d\r\n" % len(payload) + payload + b"\r\n")
    await c.expect(b"MSG big 1 10000\r\n" + payload + b"\r\n", timeout=5)
    assert time.monotonic() - t >= 0.4  # 10 kB at 20 kB/s


async def test_blackhole_accepts_reads_and_sends_nothing(served: tuple[Server, FaultProxy]) -> None:
    _, proxy = served
    proxy.blackhole()
    c = await raw(proxy)
    await c.expect_nothing(0.3)  # not even the INFO
    await c.send("CONNECT {\"verbose\":false}\r\nPING\r\n")
    await c.expect_nothing(0.3)
    proxy.heal()
    # The server's INFO was dropped and its view of the link went on: a fresh start works.
    c2 = await raw(proxy)
    await c2.read_info()


async def test_half_open_drops_one_direction(served: tuple[Server, FaultProxy]) -> None:
    srv, proxy = served
    c = await raw(proxy)
    await c.read_info()
    await c.send("CONNECT {\"verbose\":false}\r\nPING\r\n")
    await c.expect("PONG\r\n")
    proxy.half_open(UP)
    await c.send("SUB lost 1\r\nPING\r\n")
    await c.expect_nothing(0.3)  # no PONG: the server never saw the PING
    assert not srv.sublist.match(b"lost")
    proxy.heal()
    proxy.half_open(DOWN)
    await c.send("SUB seen 1\r\nPING\r\n")
    await wait_for(lambda: srv.sublist.match(b"seen"), what="the server got the SUB")
    await c.expect_nothing(0.2)  # but its PONG vanished


async def test_pause_holds_bytes_until_resume(served: tuple[Server, FaultProxy]) -> None:
    _, proxy = served
    c = await raw(proxy)
    await c.read_info()
    await c.send("CONNECT {\"verbose\":false}\r\n")
    proxy.pause()
    await c.send("PING\r\n")
    await c.expect_nothing(0.3)
    proxy.resume()
    await c.expect("PONG\r\n")
    proxy.pause(seconds=0.3)  # resumes by itself
    t = time.monotonic()
    await c.send("PING\r\n")
    await c.expect("PONG\r\n", timeout=5)
    assert time.monotonic() - t >= 0.25


async def test_cut_closes_both_sides_and_clients_reconnect(served: tuple[Server, FaultProxy]) -> None:
    srv, proxy = served
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await nats.connect(proxy.url, name="app", reconnect_time_wait=0.05,
                            reconnected_cb=on_reconnect)
    try:
        await wait_for(lambda: len(srv.clients) == 1, what="the client on the server")
        assert proxy.cut() == 1
        await asyncio.wait_for(reconnected.wait(), 5)
        await nc.flush()
        assert proxy.stats["cuts"] == 1 and proxy.stats["links"] == 2
    finally:
        await nc.close()


async def test_block_one_peer_leaves_others(served: tuple[Server, FaultProxy]) -> None:
    srv, proxy = served
    a = await nats.connect(proxy.url, name="a", max_reconnect_attempts=0, allow_reconnect=False)
    b = await nats.connect(proxy.url, name="b")
    try:
        proxy.block("a")
        await wait_for(lambda: a.is_closed, what="a cut")
        await b.flush()
        # A new connection from "a" is cut as soon as its CONNECT names it.
        c = await raw(proxy)
        await c.read_info()
        await c.send(b"CONNECT " + json.dumps({"name": "a"}).encode() + b"\r\nPING\r\n")
        await c.expect_closed()
        proxy.unblock("a")
        a2 = await nats.connect(proxy.url, name="a")
        await a2.flush()
        await a2.close()
    finally:
        await b.close()
