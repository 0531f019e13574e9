"""Fuzz a live embedded server (hypothesis, bounded).

Random byte streams (raw noise, and valid client streams with bytes inserted and replaced),
cut into random reads, go to the server on several connections at once while a well-behaved
client publishes to itself. The server must never fail (no exception reaches the event loop,
a fresh connection still gets PONG) and the well-behaved client must not notice anything:
every message arrives, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parser import client_op, noise, stream

from pynats_server import Server
from pynats_server.testing import new_event_loop

# The good client's subject: no fuzz stream can name it (it is not in any strategy's alphabet,
# and random bytes will not spell it).
GOOD = b"GOOD-q9Zk7w.seq"
GOOD_MSGS = 60


@st.composite
def fuzz_stream(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["noise", "mutated", "valid"]))
    if kind == "noise":
        return draw(st.binary(max_size=400))
    data = draw(stream(client_op()))[0]
    if kind == "mutated":
        for pos, junk in draw(st.lists(st.tuples(st.integers(0, 5000), noise), min_size=1, max_size=4)):
            pos %= len(data) + 1
            data = data[:pos] + junk + data[pos + len(junk) // 2 :]
    prefix = draw(st.sampled_from([b"", b"CONNECT {}\r\n", b'CONNECT {"verbose":false,"headers":true}\r\n',
                                   b'CONNECT {"protocol":1,"pedantic":true}\r\n']))  # fmt: skip
    return prefix + data


connections = st.lists(st.tuples(fuzz_stream(), st.lists(st.integers(0, 2000), max_size=8)), min_size=1, max_size=4)


async def _drive_fuzz(host: str, port: int, data: bytes, cuts: list[int]) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return
    try:
        bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
        for a, b in zip(bounds, bounds[1:], strict=False):
            writer.write(data[a:b])
            await writer.drain()
            await asyncio.sleep(0)  # let the server read this piece on its own
        # Read whatever the server says until it closes or goes quiet.
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            while await asyncio.wait_for(reader.read(65536), 0.05):
                pass
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _good_client(host: str, port: int, started: asyncio.Event) -> list[int]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await reader.readline()  # INFO
        writer.write(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB ' + GOOD + b" 1\r\nPING\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b"PONG\r\n"
        started.set()
        for i in range(GOOD_MSGS):
            body = str(i).encode()
            writer.write(b"PUB %s %d\r\n%s\r\n" % (GOOD, len(body), body))
            await writer.drain()
            if i % 10 == 0:
                await asyncio.sleep(0)
        writer.write(b"PING\r\n")
        await writer.drain()
        got = []
        while True:
            line = await asyncio.wait_for(reader.readline(), 5)
            if line == b"PONG\r\n":
                return got
            parts = line.split()
            assert parts[:3] == [b"MSG", GOOD, b"1"], line
            body = await asyncio.wait_for(reader.readexactly(int(parts[3]) + 2), 5)
            got.append(int(body[:-2]))
    finally:
        writer.close()


async def _scenario(conns: list[tuple[bytes, list[int]]]) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    async with Server() as srv:
        host, port = srv.addr
        started = asyncio.Event()
        good = asyncio.create_task(_good_client(host, port, started))
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.gather(*(_drive_fuzz(host, port, data, cuts) for data, cuts in conns))
        got = await asyncio.wait_for(good, 10)
        assert got == list(range(GOOD_MSGS))
        # Still serving: a fresh connection gets INFO and PONG.
        reader, writer = await asyncio.open_connection(host, port)
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"INFO ")
        writer.write(b"PING\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b"PONG\r\n"
        writer.close()
    assert not errors, [e.get("message") or repr(e.get("exception")) for e in errors]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(connections)
def test_fuzzed_connections_do_not_disturb_others(conns: list[tuple[bytes, list[int]]]) -> None:
    asyncio.run(_scenario(conns))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_fuzz_many_random_connections_at_once(loop: str) -> None:
    """Not shrinkable, but wider: 24 connections of seeded random noise and protocol fragments
    (on both event loops the server runs on)."""
    rng = random.Random(20261125)
    frags = [b"PUB ", b"SUB ", b"HPUB ", b"UNSUB ", b"CONNECT ", b"PING", b"PONG", b"INFO ", b"+OK",
             b"-ERR ", b"foo", b"foo.*", b">", b" 1", b" 5", b" 99999", b"\r\n", b"\n", b"\r", b"\t",
             b"{}", b"hello"]  # fmt: skip
    conns = []
    for _ in range(24):
        parts = [rng.choice(frags) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 8)) for _ in range(60)]
        data = b"".join(parts)
        cuts = [rng.randint(0, len(data)) for _ in range(rng.randint(0, 10))]
        conns.append((data, cuts))
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    ev = new_event_loop(loop)
    try:
        ev.run_until_complete(_scenario(conns))
    finally:
        ev.close()
