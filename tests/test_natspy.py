"""nats-py end to end against the embedded server (on the test's event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from pynats_server import Server

TIMEOUT = 5.0


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with Server() as srv:
        yield srv


@pytest.fixture
async def connect(server: Server):
    conns = []

    async def make(**kw):
        kw.setdefault("connect_timeout", 2)
        kw.setdefault("max_reconnect_attempts", 0)
        nc = await nats.connect(server.client_url, **kw)
        conns.append(nc)
        return nc

    yield make
    for nc in conns:
        if not nc.is_closed:
            await nc.close()


async def test_pub_sub(connect) -> None:
    nc = await connect()
    sub = await nc.subscribe("greet")
    await nc.publish("greet", b"hello")
    msg = await sub.next_msg(timeout=TIMEOUT)
    assert (msg.subject, msg.data, msg.reply) == ("greet", b"hello", "")


async def test_pub_sub_between_connections_in_order(connect) -> None:
    a = await connect()
    b = await connect()
    sub = await b.subscribe("seq")
    await b.flush()
    for i in range(500):
        await a.publish("seq", str(i).encode())
    await a.flush()
    got = [int((await sub.next_msg(timeout=TIMEOUT)).data) for _ in range(500)]
    assert got == list(range(500))


async def test_callback_subscription(connect) -> None:
    nc = await connect()
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def cb(msg) -> None:
        await got.put(msg.data)

    await nc.subscribe("cb", cb=cb)
    await nc.publish("cb", b"1")
    await nc.publish("cb", b"2")
    assert [await asyncio.wait_for(got.get(), TIMEOUT) for _ in range(2)] == [b"1", b"2"]


async def test_wildcards(connect) -> None:
    nc = await connect()
    star = await nc.subscribe("orders.*")
    full = await nc.subscribe("orders.>")
    await nc.publish("orders.new", b"a")
    await nc.publish("orders.eu.new", b"b")
    await nc.publish("orders", b"c")  # matches neither
    await nc.flush()
    assert (await star.next_msg(timeout=TIMEOUT)).subject == "orders.new"
    assert [(await full.next_msg(timeout=TIMEOUT)).subject for _ in range(2)] == ["orders.new", "orders.eu.new"]
    with pytest.raises(NatsTimeoutError):
        await star.next_msg(timeout=0.1)
    with pytest.raises(NatsTimeoutError):
        await full.next_msg(timeout=0.1)


async def test_queue_group(connect) -> None:
    nc = await connect()
    pub = await connect()
    subs = [await nc.subscribe("work", queue="workers") for _ in range(3)]
    plain = await nc.subscribe("work")
    await nc.flush()
    n = 90
    for i in range(n):
        await pub.publish("work", str(i).encode())
    await pub.flush()
    assert [int((await plain.next_msg(timeout=TIMEOUT)).data) for _ in range(n)] == list(range(n))
    await nc.flush()
    got = []
    counts = []
    for s in subs:
        k = s.pending_msgs
        counts.append(k)
        got += [int((await s.next_msg(timeout=TIMEOUT)).data) for _ in range(k)]
    assert sorted(got) == list(range(n)), counts
    assert all(c > 0 for c in counts), counts


async def test_request_reply(connect) -> None:
    svc = await connect()
    client = await connect()

    async def handler(msg) -> None:
        await msg.respond(b"re: " + msg.data)

    await svc.subscribe("svc.echo", queue="svc", cb=handler)
    await svc.flush()
    resp = await client.request("svc.echo", b"ping", timeout=TIMEOUT)
    assert resp.data == b"re: ping"
    # Many in flight at once.
    results = await asyncio.gather(*(client.request("svc.echo", str(i).encode(), timeout=TIMEOUT) for i in range(50)))
    assert [r.data for r in results] == [b"re: " + str(i).encode() for i in range(50)]


async def test_headers(connect) -> None:
    nc = await connect()
    sub = await nc.subscribe("h")
    await nc.publish("h", b"body", headers={"Trace-Id": "abc", "X": "1"})
    msg = await sub.next_msg(timeout=TIMEOUT)
    assert msg.data == b"body"
    assert msg.headers == {"Trace-Id": "abc", "X": "1"}


async def test_headers_with_request(connect) -> None:
    svc = await connect()
    client = await connect()

    async def handler(msg) -> None:
        await msg.respond(msg.headers["Q"].encode())

    await svc.subscribe("hq", cb=handler)
    await svc.flush()
    resp = await client.request("hq", b"", timeout=TIMEOUT, headers={"Q": "42"})
    assert resp.data == b"42"


async def test_no_responders(connect) -> None:
    nc = await connect()
    with pytest.raises(NoRespondersError):
        await nc.request("nobody.home", b"?", timeout=TIMEOUT)


async def test_flush(connect) -> None:
    nc = await connect()
    for _ in range(100):
        await nc.publish("void", b"x" * 100)
    await nc.flush(timeout=TIMEOUT)
    assert nc.stats["out_msgs"] == 100


async def test_drain_subscription(connect) -> None:
    nc = await connect()
    pub = await connect()
    got: list[bytes] = []

    async def cb(msg) -> None:
        got.append(msg.data)

    sub = await nc.subscribe("d", cb=cb)
    await nc.flush()
    for i in range(20):
        await pub.publish("d", str(i).encode())
    await pub.flush()
    await nc.flush()
    await sub.drain()
    assert got == [str(i).encode() for i in range(20)]
    await pub.publish("d", b"late")
    await pub.flush()
    await nc.flush()
    assert len(got) == 20


async def test_drain_connection(connect) -> None:
    nc = await connect()
    pub = await connect()
    got: list[bytes] = []

    async def cb(msg) -> None:
        got.append(msg.data)

    await nc.subscribe("dc", cb=cb)
    await nc.flush()
    for i in range(10):
        await pub.publish("dc", str(i).encode())
    await pub.flush()
    await nc.flush()
    await nc.drain()
    assert nc.is_closed
    assert got == [str(i).encode() for i in range(10)]


async def test_auto_unsubscribe(connect) -> None:
    nc = await connect()
    sub = await nc.subscribe("auto", max_msgs=2)
    for i in range(5):
        await nc.publish("auto", str(i).encode())
    await nc.flush()
    assert [(await sub.next_msg(timeout=TIMEOUT)).data for _ in range(2)] == [b"0", b"1"]
    with pytest.raises(NatsTimeoutError):
        await sub.next_msg(timeout=0.1)


async def test_auto_unsubscribe_server_side(connect, server: Server) -> None:
    """`sub.unsubscribe(limit=n)` leaves the counting to the server (UNSUB sid n)."""
    own = server.sublist.count  # the global account's imports of the system account's services
    nc = await connect()
    other = await connect()
    sub = await nc.subscribe("srvauto")
    await sub.unsubscribe(limit=3)
    await nc.flush()
    for i in range(6):
        await other.publish("srvauto", str(i).encode())
    await other.flush()
    await nc.flush()
    assert sub.pending_msgs == 3
    assert server.sublist.count == own


async def test_no_echo(connect) -> None:
    nc = await connect(no_echo=True)
    other = await connect()
    sub = await nc.subscribe("echo")
    await nc.flush()
    await nc.publish("echo", b"mine")
    await other.publish("echo", b"theirs")
    await other.flush()
    await nc.flush()
    assert (await sub.next_msg(timeout=TIMEOUT)).data == b"theirs"
    with pytest.raises(NatsTimeoutError):
        await sub.next_msg(timeout=0.1)


async def test_reconnect_after_server_restart() -> None:
    """Stop the server, start a new one on the same port: the client reconnects and its
    subscriptions are restored."""
    first = Server()
    await first.start()
    port = first.port
    reconnected = asyncio.Event()
    disconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    async def on_disconnect() -> None:
        disconnected.set()

    nc = await nats.connect(
        first.client_url,
        reconnect_time_wait=0.05,
        max_reconnect_attempts=-1,
        reconnected_cb=on_reconnect,
        disconnected_cb=on_disconnect,
        connect_timeout=2,
    )
    second: Server | None = None
    try:
        sub = await nc.subscribe("survive")
        qsub = await nc.subscribe("survive.q", queue="g")
        await nc.flush()
        await first.shutdown()
        await asyncio.wait_for(disconnected.wait(), TIMEOUT)
        second = Server(port=port)
        await second.start()
        await asyncio.wait_for(reconnected.wait(), TIMEOUT)
        await nc.flush(timeout=TIMEOUT)
        # The subscriptions are back on the new server.
        assert sum(not s.client.internal for s in second.sublist.all()) == 2
        pub = await nats.connect(second.client_url, connect_timeout=2, max_reconnect_attempts=0)
        await pub.publish("survive", b"again")
        await pub.publish("survive.q", b"queued")
        await pub.flush()
        assert (await sub.next_msg(timeout=TIMEOUT)).data == b"again"
        assert (await qsub.next_msg(timeout=TIMEOUT)).data == b"queued"
        await pub.close()
    finally:
        await nc.close()
        if second is not None:
            await second.shutdown()
        await first.shutdown()
