"""Limits as nats-server 2.14 enforces them: what the client gets, what is logged, what is counted.

The -ERR texts and closes of max_payload, max_control_line, max_connections and
max_subscriptions are in test_proto_errors.py, the stale connection in test_proto_errors.py
and test_monitor.py, the pending-bytes slow consumer in test_proto_slow.py; this file adds
their log lines and counters, the write deadline, a route's payload over max_payload,
auth_timeout and lame duck timings. The tests that take a `start_server` run against
nats-server too (PYNATS_TEST_TARGET=go214) and pass there.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from cluster_util import RawPeer, peer_connect, peer_info
from conftest import TARGET, TIMEOUT, Closed, wait_for

from pynats_server import ClusterOptions, Options, Server

PONG = b"PONG\r\n"


def _errs(h) -> list[str]:  # type: ignore[no-untyped-def]
    return [line for line in h.log_lines() if line.startswith(("[ERR]", "[INF]"))]


async def test_max_connections_err_and_log(start_server) -> None:
    s = await start_server(max_connections=1, capture_log=True)
    first = await s.connected()
    second = await s.client()
    await second.read_info()
    await second.expect_err_close("maximum connections exceeded")
    assert await first.is_open()
    await s.wait_log("[ERR] maximum connections exceeded")


async def test_max_subscriptions_log(start_server) -> None:
    s = await start_server(max_subscriptions=2, capture_log=True)
    c = await s.connected()
    await c.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n")
    await c.expect(b"-ERR 'maximum subscriptions exceeded'\r\n" + PONG)
    await s.wait_log("[ERR] maximum subscriptions exceeded")


async def test_max_payload_log(start_server) -> None:
    s = await start_server(max_payload=512, capture_log=True)
    c = await s.connected()
    await c.send(b"PUB foo 513\r\n")
    await c.expect_err_close("Maximum Payload Violation")
    await s.wait_log("[ERR] maximum payload exceeded: 513 vs 512")


async def test_max_control_line_log(start_server) -> None:
    s = await start_server(max_control_line=64, capture_log=True)
    c = await s.connected()
    await c.send(b"PUB " + b"a" * 80 + b" 1\r\nx\r\n")
    await c.expect_err_close("maximum control line exceeded")
    await s.wait_log("[ERR] maximum control line exceeded")


async def test_auth_timeout(start_server) -> None:
    s = await start_server(username="u", password="p", auth_timeout=0.3, capture_log=True, debug=True)
    c = await s.client()
    await c.read_info()
    t0 = time.monotonic()
    await c.expect_err_close("Authentication Timeout")
    assert 0.2 < time.monotonic() - t0 < 3.0
    await s.wait_log("[DBG] Authentication Timeout")


async def test_auth_timeout_stops_at_connect(start_server) -> None:
    s = await start_server(username="u", password="p", auth_timeout=0.3)
    c = await s.client()
    await c.connect(user="u", **{"pass": "p"})
    await asyncio.sleep(0)  # (no synchronisation: the check below waits past the timeout)
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:
        assert await c.is_open()


# -- slow consumers --------------------------------------------------------------------------


async def _stall(s, until, max_msgs: int = 32768, size: int = 1024) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    """A subscriber that never reads (small receive buffer), a publisher that sends it
    messages of `size` bytes until `until()` (checked every 256 messages) is true, and a
    fast subscriber that reads every one (the publisher is paced on it, never on the slow
    one)."""
    slow = await s.client(rcvbuf=4096)
    await slow.connect()
    await slow.send(b"SUB data 1\r\n")
    await slow.ping()
    fast = await s.connected()
    await fast.send(b"SUB data 1\r\n")
    await fast.ping()
    pub = await s.connected()
    frame = b"PUB data %d\r\n%s\r\n" % (size, b"x" * size)
    sent = 0
    while sent < max_msgs:
        for _ in range(4):
            await pub.send(frame * 64)
            for _ in range(64):
                await fast.read_msg()
        sent += 256
        if await until():
            break
    return slow, fast, pub


async def _closed(c) -> bool:  # type: ignore[no-untyped-def]
    """Read (and drop) what the never-read socket holds until the server's close shows."""
    deadline = time.monotonic() + TIMEOUT * 2
    try:
        while True:
            await c._fill(deadline)
            c.buf = b""
    except Closed:
        return True
    except TimeoutError:
        return False


async def test_slow_consumer_pending_bytes_counted_by_kind(start_server) -> None:
    s = await start_server(max_pending=128 * 1024, max_payload=64 * 1024, http_port=-1, capture_log=True)
    slow, fast, pub = await _stall(s, lambda: _when_varz(s, lambda v: v["slow_consumers"] == 1))
    v = await wait_for(lambda: _when_varz(s, lambda v: v["slow_consumers"] == 1), what="a slow consumer")
    assert v["slow_consumer_stats"] == {"clients": 1, "routes": 0, "gateways": 0, "leafs": 0}
    await s.wait_log(f"[INF] Slow Consumer Detected: MaxPending of {128 * 1024} Exceeded")
    assert await pub.is_open() and await fast.is_open()
    assert await _closed(slow)
    _, body = await s.http_get("/connz?state=closed")
    reasons = [c["reason"] for c in json.loads(body)["connections"]]
    assert reasons == ["Slow Consumer (Pending Bytes)"], reasons


async def test_slow_consumer_write_deadline(start_server) -> None:
    # Far below max_pending: only the stalled write can cut it off.
    s = await start_server(write_deadline=0.5, http_port=-1, capture_log=True)
    t0 = time.monotonic()
    slow, fast, pub = await _stall(s, lambda: _when_varz(s, lambda v: v["slow_consumers"] == 1))
    v = await wait_for(lambda: _when_varz(s, lambda v: v["slow_consumers"] == 1), what="a slow consumer")
    assert time.monotonic() - t0 < TIMEOUT * 2
    assert v["slow_consumer_stats"] == {"clients": 1, "routes": 0, "gateways": 0, "leafs": 0}
    lines = [x for x in s.log_lines() if "Slow Consumer" in x]
    assert len(lines) == 1, lines
    assert lines[0].startswith("[INF] Slow Consumer Detected: WriteDeadline of 500ms exceeded with "), lines
    assert lines[0].endswith(" total bytes."), lines
    assert await pub.is_open() and await fast.is_open()
    assert await _closed(slow)
    _, body = await s.http_get("/connz?state=closed")
    reasons = [c["reason"] for c in json.loads(body)["connections"]]
    assert reasons == ["Slow Consumer (Write Deadline)"], reasons


async def _when_varz(s, pred):  # type: ignore[no-untyped-def]
    v = await s.varz()
    return v if pred(v) else None


# -- routes: max_payload is a client limit -----------------------------------------------------


@pytest.mark.skipif(TARGET != "pynats", reason="a raw route peer against the embedded server")
async def test_route_payload_over_max_payload_is_delivered() -> None:
    """nats-server does not apply max_payload to routes (mpay -1): a message from a peer
    with a bigger limit reaches local subscribers."""
    opts = Options(host="127.0.0.1", port=-1, no_log=True, max_payload=512,
                   cluster=ClusterOptions(host="127.0.0.1", port=-1, name="L"))
    async with Server(opts) as srv:
        assert srv.cluster is not None
        c = await RawPeer.connect("127.0.0.1", srv.port)
        await c.expect_info()
        await c.send(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB big 1\r\nPING\r\n')
        await c.expect(PONG)
        sid = "NPEERBIGPAYLOAD0000000000000000000000000000000000000000"
        p = await RawPeer.connect("127.0.0.1", srv.cluster.port)
        await p.expect_info()
        await p.send(peer_connect(sid, "L") + peer_info(sid, "L", 7777, max_payload=4 * 1024 * 1024))
        await wait_for(lambda: sid in srv.cluster.routes, what="route registered")  # type: ignore[union-attr]
        await p.read_until(b"RS+ $G big\r\n")
        body = b"y" * 100_000
        await p.send(b"RMSG $G big %d\r\n" % len(body) + body + b"\r\n")
        await c.expect(b"MSG big 1 %d\r\n" % len(body) + body + b"\r\n")
        # The route stays up.
        await p.send(b"PING\r\n")
        await p.read_until(PONG)


# -- lame duck mode ----------------------------------------------------------------------------


@pytest.mark.skipif(TARGET != "pynats", reason="nats-server refuses a lame duck duration under 30 s")
async def test_lame_duck_timings(start_server) -> None:
    """INFO with ldm at once; nobody closed during the grace period; then the clients are
    closed one at a time, spread over the rest of the duration (at least half of each gap)."""
    s = await start_server(lame_duck_duration=1.2, lame_duck_grace_period=0.4, capture_log=True)
    clients = []
    for _ in range(4):
        c = await s.client()
        await c.connect(protocol=1)
        clients.append(c)
    t0 = time.monotonic()
    assert s.srv is not None
    task = asyncio.ensure_future(s.srv.lame_duck_mode())
    for c in clients:
        line = await c.read_line()
        if b'"connect_info":true' in line:  # the INFO after the first PONG
            line = await c.read_line()
        assert line.startswith(b"INFO ") and json.loads(line[5:]).get("ldm") is True, line
    closed_at: list[float] = []

    async def watch(c) -> None:  # type: ignore[no-untyped-def]
        try:
            while True:
                await c._fill(time.monotonic() + TIMEOUT)
                c.buf = b""
        except Closed:
            closed_at.append(time.monotonic() - t0)

    await asyncio.wait_for(asyncio.gather(*(watch(c) for c in clients)), TIMEOUT)
    await asyncio.wait_for(task, TIMEOUT)
    closed_at.sort()
    assert closed_at[0] >= 0.4, closed_at  # the grace period
    # 0.8 s over 4 clients: gaps of 0.1-0.2 s between closes.
    gaps = [b - a for a, b in zip(closed_at, closed_at[1:], strict=False)]
    assert all(g >= 0.08 for g in gaps), gaps
    assert closed_at[-1] < 0.4 + 0.8 + 0.5, closed_at
    lines = s.log_lines()
    assert "[INF] Entering lame duck mode, stop accepting new clients" in lines
    assert "[INF] Closing existing clients" in lines


# -- one big read per loop turn --------------------------------------------------


@pytest.mark.parametrize("size", [16, 700, 5000])
async def test_big_reads_keep_order(start_server, size: int) -> None:
    """Megabytes in one write arrive in reads of up to 256 KiB, one per loop turn (reading
    pauses after each): every message arrives, once, in order, and a PING written after them
    is answered after the last."""
    s = await start_server()
    sub = await s.connected()
    await sub.send(b"SUB big 1\r\n")
    await sub.ping()
    pub = await s.connected()
    n = (4 * 1024 * 1024) // (size + 20)
    pad = b"y" * (size - 8)
    await pub.send(b"".join(b"PUB big %d\r\n%08d%s\r\n" % (size, i, pad) for i in range(n)) + b"PING\r\n")

    async def read_all() -> None:
        for i in range(n):
            line, body = await sub.read_msg()
            assert body[:8] == b"%08d" % i, (i, body[:8])

    await asyncio.gather(read_all(), pub.expect(PONG, timeout=30))
