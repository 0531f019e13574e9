"""Routes are never cut for being slow, as clients are (the failure of nats-server issue
904, fixed by its PR 1233): when a route peer stops reading, the server holds what it
owes the route and stops reading the publishers (back-pressure); once the peer reads again
every message arrives, in order, on the same route.

The stall stays within nats-server's limits: shorter than the route's ping interval times
its max outstanding pings (then it is stale and closed, as nats-server does) and than the
write deadline during which nats-server needs some progress."""

from __future__ import annotations

import asyncio
import os
import signal

import nats
from cluster_util import GoServer, free_port, go_binary, wait_for

from pynats_server import ClusterOptions, Options, RouteURL, Server
from pynats_server.testing import LocalCluster

COUNT = 6000
PAYLOAD = 1024  # ~6 MB in all: more than the socket buffers and the proxy hold
# A stopped process's socket still takes what its receive buffer grew to: send more.
GO_COUNT = 24000


async def publish_all(nc: nats.NATS, subject: str, count: int = COUNT) -> None:
    """Publish `count` sequenced messages (nats-py's buffer is bounded: it waits)."""
    pad = b"x" * (PAYLOAD - 8)
    for seq in range(count):
        await nc.publish(subject, b"%08d" % seq + pad)
    await nc.flush(timeout=60)


def read_from_publisher(srv: Server) -> int:
    """Messages the server has read from its clients (only the publisher sends any)."""
    return sum(c.in_msgs for c in srv.clients.values())


class Counter:
    def __init__(self, count: int = COUNT) -> None:
        self.seqs: list[int] = []
        self.count = count

    async def on_msg(self, m: object) -> None:
        self.seqs.append(int(m.data[:8]))  # type: ignore[attr-defined]

    def check(self) -> None:
        assert self.seqs == list(range(self.count)), f"lost or reordered: got {len(self.seqs)}"


async def test_route_peer_paused_by_proxy_loses_nothing() -> None:
    async with LocalCluster(2, proxied=True, proxy_buffer=1 << 16) as cl:
        a, b = cl.servers
        assert a is not None and b is not None and a.cluster is not None
        sub_nc = await nats.connect(cl.client_urls[1])
        pub_nc = await nats.connect(cl.client_urls[0])
        bystander = await nats.connect(cl.client_urls[0])
        try:
            got = Counter()
            await sub_nc.subscribe("stall.test", cb=got.on_msg)
            await sub_nc.flush()
            await wait_for(lambda: a.sublist.match(b"stall.test").routes, what="interest on node 0")
            route_ids = {id(r) for r in a.cluster.routes.values()}
            for p in cl.route_proxies:
                p.pause(seconds=3.0)  # neither node reads the route for 3 s
            pub = asyncio.ensure_future(publish_all(pub_nc, "stall.test"))
            await wait_for(lambda: a.throttled, what="the route backed up")
            for _ in range(3):  # a client that does not publish is still served
                await bystander.flush(timeout=1)
            await asyncio.sleep(1.5)  # the stall's length is the point here, not a sync
            assert read_from_publisher(a) < COUNT, "the publisher was not held back"
            await pub
            await wait_for(lambda: len(got.seqs) >= COUNT, timeout=30, what="every message")
            got.check()
            assert a.stalls > 0  # /varz stalled_clients: back-pressure, not a cut
            assert {id(r) for r in a.cluster.routes.values()} == route_ids  # the same route
            assert a.cluster.closed_out_msgs == 0
        finally:
            await sub_nc.close()
            await pub_nc.close()
            await bystander.close()


async def test_go_route_peer_stopped_with_sigstop_loses_nothing() -> None:
    go_port = free_port()
    go = GoServer(go_binary("go214"), name="go", cluster_port=go_port, cluster_name="STALL")
    await go.start()
    py = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name="py",
                        cluster=ClusterOptions(host="127.0.0.1", port=-1, name="STALL",
                                               routes=[RouteURL("127.0.0.1", go_port)])))
    await py.start()
    assert go.proc is not None and py.cluster is not None
    sub_nc = await nats.connect(go.client_url)
    pub_nc = await nats.connect(py.client_url)
    stopped = False
    try:
        await wait_for(lambda: len(py.cluster.routes) == 1, what="the route")  # type: ignore[union-attr]
        got = Counter(GO_COUNT)
        await sub_nc.subscribe("stall.go", cb=got.on_msg)
        await sub_nc.flush()
        await wait_for(lambda: py.sublist.match(b"stall.go").routes, what="the Go node's interest")
        routes_before = set(py.cluster.routes)
        os.kill(go.proc.pid, signal.SIGSTOP)
        stopped = True
        loop = asyncio.get_running_loop()

        def cont() -> None:
            nonlocal stopped
            if go.proc is not None:
                os.kill(go.proc.pid, signal.SIGCONT)
            stopped = False

        loop.call_later(3.0, cont)
        pub = asyncio.ensure_future(publish_all(pub_nc, "stall.go", GO_COUNT))
        await asyncio.sleep(2.0)
        assert read_from_publisher(py) < GO_COUNT, "the publisher was not held back"
        await pub
        await wait_for(lambda: len(got.seqs) >= GO_COUNT, timeout=30, what="every message")
        got.check()
        assert py.stalls > 0
        assert set(py.cluster.routes) == routes_before
        routez = go.varz("routez")["routes"]
        assert len(routez) == 1
    finally:
        if stopped and go.proc is not None:
            os.kill(go.proc.pid, signal.SIGCONT)
        await sub_nc.close()
        await pub_nc.close()
        await py.shutdown()
        await go.stop()


async def test_stall_beyond_the_ping_limit_closes_the_route_and_frees_publishers() -> None:
    """Past ping interval x ping max the stalled route is stale and closed (as nats-server
    does); the publishers held back for it are read again and local delivery goes on; the
    route comes back once the peer reads again."""
    async with LocalCluster(2, proxied=True, proxy_buffer=1 << 16, ping_interval=0.5, ping_max=2) as cl:
        a = cl.servers[0]
        assert a is not None and a.cluster is not None
        local_nc = await nats.connect(cl.client_urls[0])
        remote_nc = await nats.connect(cl.client_urls[1])
        pub_nc = await nats.connect(cl.client_urls[0])
        try:
            local, remote = Counter(), Counter()
            await local_nc.subscribe("stale.test", cb=local.on_msg)
            await remote_nc.subscribe("stale.test", cb=remote.on_msg)
            await local_nc.flush()
            await remote_nc.flush()
            await wait_for(lambda: a.sublist.match(b"stale.test").routes, what="interest on node 0")
            for p in cl.route_proxies:
                p.pause()
            await publish_all(pub_nc, "stale.test")
            await wait_for(lambda: len(local.seqs) >= COUNT, timeout=30, what="local delivery")
            local.check()
            assert a.stalls > 0 and a.stale_by_kind["routes"] >= 1
            assert not a.throttled and pub_nc.is_connected
            for p in cl.route_proxies:
                p.resume()
            await cl.wait_for_mesh(20)
            # Whatever the stale route held is gone with it; new messages flow again.
            await wait_for(lambda: a.sublist.match(b"stale.test").routes, what="interest again")
            n = len(remote.seqs)
            await pub_nc.publish("stale.test", b"%08d" % COUNT)
            await pub_nc.flush()
            await wait_for(lambda: len(remote.seqs) > n, what="a message over the new route")
        finally:
            for nc in (local_nc, remote_nc, pub_nc):
                await nc.close()
