"""Faults for users' own tests: the cluster fixtures' partition, stall, cut_route,
slow_client, drop_client, lame_duck and restart_node, each driving a real nats-py
application through it (the README shows the same patterns)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from pynats_server.testing import ThreadedCluster


async def wait_until(pred: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def answered(nc: nats.NATS, subject: str, timeout: float = 0.3) -> bool:
    try:
        await nc.request(subject, b"?", timeout=timeout)
    except (NatsTimeout, NoRespondersError):
        return False
    return True


async def responder(url: str, subject: str, **kw: object) -> nats.NATS:
    nc = await nats.connect(url, name="svc", **kw)  # type: ignore[arg-type]

    async def reply(m: object) -> None:
        await m.respond(b"ok")  # type: ignore[attr-defined]

    await nc.subscribe(subject, cb=reply)
    await nc.flush()
    return nc


async def wait_answered(nc: nats.NATS, subject: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not await answered(nc, subject):
        if time.monotonic() > end:
            raise AssertionError(f"no answer on {subject}")


async def test_partition_and_heal(nats_proxied_cluster: ThreadedCluster) -> None:
    cl = nats_proxied_cluster
    svc = await responder(cl.client_urls[0], "svc.echo")
    app = await nats.connect(cl.client_urls[2], name="app")
    try:
        await wait_answered(app, "svc.echo")
        cl.partition(0, [1, 2])
        await wait_until(lambda: not cl.mesh_formed(), what="the partition")
        assert not await answered(app, "svc.echo")  # the app sees the outage...
        cl.heal()
        cl.wait_for_mesh(15)
        await wait_answered(app, "svc.echo")  # ...and its retry succeeds once healed
    finally:
        await svc.close()
        await app.close()


async def test_stall_a_node(nats_proxied_cluster: ThreadedCluster) -> None:
    cl = nats_proxied_cluster
    svc = await responder(cl.client_urls[1], "svc.slow")
    app = await nats.connect(cl.client_urls[0], name="app")
    try:
        await wait_answered(app, "svc.slow")
        cl.stall(1, seconds=1.5)
        t = time.monotonic()
        assert not await answered(app, "svc.slow", timeout=0.5)
        # The request made during the stall is answered once node 1 reads again.
        await app.request("svc.slow", b"?", timeout=5)
        assert time.monotonic() - t >= 1.0
        assert cl.mesh_formed()  # a short stall costs no route
    finally:
        await svc.close()
        await app.close()


async def test_cut_one_route(nats_proxied_cluster: ThreadedCluster) -> None:
    cl = nats_proxied_cluster
    svc = await responder(cl.client_urls[0], "svc.cut")
    app = await nats.connect(cl.client_urls[1], name="app")
    try:
        await wait_answered(app, "svc.cut")
        cuts = sum(p.stats["cuts"] for p in cl.cluster.route_proxies)
        cl.cut_route(0, 1)
        assert sum(p.stats["cuts"] for p in cl.cluster.route_proxies) == cuts + 1
        cl.wait_for_mesh(15)  # the route is dialled again
        await wait_answered(app, "svc.cut")
    finally:
        await svc.close()
        await app.close()


async def test_slow_client_connection(nats_proxied_cluster: ThreadedCluster) -> None:
    cl = nats_proxied_cluster
    slow = await nats.connect(cl.client_urls[0], name="slow")
    fast = await nats.connect(cl.client_urls[0], name="fast")
    pub = await nats.connect(cl.client_urls[0], name="pub")
    try:
        s_sub = await slow.subscribe("data")
        f_sub = await fast.subscribe("data")
        await slow.flush()
        await fast.flush()
        cl.slow_client(0, 4000, name="slow")
        t = time.monotonic()
        for _ in range(10):
            await pub.publish("data", b"x" * 1000)
        await pub.flush()
        for _ in range(10):
            await f_sub.next_msg(2)
        fast_time = time.monotonic() - t
        for _ in range(10):
            await s_sub.next_msg(10)
        slow_time = time.monotonic() - t
        assert fast_time < 1.0 and slow_time >= 2.0  # ~10 kB at 4 kB/s
    finally:
        for nc in (slow, fast, pub):
            await nc.close()


async def test_drop_client_connection_and_resubscribe(nats_proxied_cluster: ThreadedCluster) -> None:
    cl = nats_proxied_cluster
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    app = await nats.connect(cl.client_urls[0], name="app", reconnect_time_wait=0.1,
                             reconnected_cb=on_reconnect)
    pub = await nats.connect(cl.client_urls[1], name="pub")
    try:
        sub = await app.subscribe("events")
        await app.flush()
        assert cl.drop_client(0, name="app") == 1
        await asyncio.wait_for(reconnected.wait(), 10)
        # nats-py sends its subscriptions again on reconnect: events reach it once more.
        end = time.monotonic() + 10
        while True:
            await pub.publish("events", b"e")
            try:
                await sub.next_msg(0.2)
                break
            except NatsTimeout:
                assert time.monotonic() < end, "no event after the reconnect"
    finally:
        await app.close()
        await pub.close()


async def test_lame_duck_moves_clients(nats_cluster_factory: Callable[..., ThreadedCluster]) -> None:
    cl = nats_cluster_factory(3, lame_duck_duration=2.0, lame_duck_grace_period=0.2)
    moved = asyncio.Event()

    async def on_reconnect() -> None:
        moved.set()

    app = await nats.connect(cl.client_urls[0], name="app", reconnect_time_wait=0.1,
                             reconnected_cb=on_reconnect)
    svc = await responder(cl.client_urls[1], "svc.ldm")
    try:
        await wait_answered(app, "svc.ldm")
        await wait_until(lambda: len(app.servers) == 3, what="the client to learn every node")
        node0 = cl.client_urls[0]
        cl.lame_duck(0)
        await asyncio.wait_for(moved.wait(), 15)
        assert app.connected_url is not None and app.connected_url.geturl() != node0
        await wait_answered(app, "svc.ldm")
        await wait_until(lambda: cl.servers[0] is None, what="node 0 to shut down")
        cl.start_node(0)
        cl.wait_for_mesh(15)
    finally:
        await app.close()
        await svc.close()


@pytest.mark.parametrize("proxied", [False, True])
async def test_restart_node_on_same_ports(nats_cluster_factory: Callable[..., ThreadedCluster],
                                          proxied: bool) -> None:
    cl = nats_cluster_factory(3, proxied=proxied)
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    url = cl.client_urls[1]
    svc = await responder(url, "svc.restart", reconnect_time_wait=0.1, reconnected_cb=on_reconnect,
                          dont_randomize=True)
    app = await nats.connect(cl.client_urls[2], name="app")
    try:
        await wait_answered(app, "svc.restart")
        cl.restart_node(1)
        assert cl.client_urls[1] == url  # same ports
        await asyncio.wait_for(reconnected.wait(), 10)
        await wait_answered(app, "svc.restart")  # the service's subscription is back
    finally:
        await svc.close()
        await app.close()
