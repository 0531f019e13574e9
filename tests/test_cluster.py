"""Clusters of pynats-server nodes in one process, with nats-py clients on different nodes.

Mirrors nats-server's cluster tests: TestBasicClusterPubSub, TestClusterQueueSubs,
TestClusterDoubleMsgs, TestSeedSolicitWorks, TestChainedSolicitWorks,
TestRouteResendsLocalSubsOnReconnect, TestRouteSendAsyncINFOToClients, ...
"""

from __future__ import annotations

import asyncio
import collections

import nats
import pytest
from cluster_util import http_json, wait_for

from pynats_server import ClusterOptions, Options, RouteURL, Server
from pynats_server.testing import LocalCluster, ThreadedCluster


async def interest_everywhere(cl: LocalCluster, subject: bytes, count: int = 1) -> None:
    """Wait until every node sees interest on `subject` (local or over a route)."""

    def ok() -> bool:
        for s in cl.running():
            r = s.sublist.match(subject)
            if len(r.psubs) + len(r.routes) + len(r.qsubs) < 1:
                return False
        return True

    await wait_for(ok, what=f"interest in {subject!r} on every node")


@pytest.mark.parametrize("size", [2, 3, 5])
async def test_pub_sub_across_nodes(size: int) -> None:
    async with LocalCluster(size) as cl:
        subs = [await nats.connect(u) for u in cl.client_urls]
        got: dict[int, list[bytes]] = collections.defaultdict(list)
        for i, nc in enumerate(subs):
            async def cb(m: nats.aio.msg.Msg, i: int = i) -> None:
                got[i].append(m.data)

            await nc.subscribe("news.>", cb=cb)
            await nc.flush()
        await interest_everywhere(cl, b"news.x")
        for i, nc in enumerate(subs):
            await nc.publish(f"news.{i}", f"from {i}".encode())
            await nc.flush()
        expected = sorted(f"from {i}".encode() for i in range(size))
        await wait_for(lambda: all(sorted(got[i]) == expected for i in range(size)), what="every message everywhere")
        for nc in subs:
            await nc.close()


async def test_request_reply_across_routes() -> None:
    async with LocalCluster(3) as cl:
        responder = await nats.connect(cl.client_urls[2])

        async def respond(m: nats.aio.msg.Msg) -> None:
            await m.respond(b"pong:" + m.data)

        await responder.subscribe("svc.echo", cb=respond)
        await responder.flush()
        await interest_everywhere(cl, b"svc.echo")
        requester = await nats.connect(cl.client_urls[0])
        for i in range(20):
            r = await requester.request("svc.echo", str(i).encode(), timeout=2)
            assert r.data == f"pong:{i}".encode()
        # Headers cross the route too.
        r = await requester.request("svc.echo", b"h", timeout=2, headers={"X-Trace": "1"})
        assert r.data == b"pong:h"
        await requester.close()
        await responder.close()


async def test_queue_group_is_cluster_wide() -> None:
    """Exactly one member of the group, in the whole cluster, gets each message."""
    async with LocalCluster(3) as cl:
        counts: collections.Counter[int] = collections.Counter()
        members = []
        for i in range(3):
            for _ in range(2):
                nc = await nats.connect(cl.client_urls[i])

                async def cb(m: nats.aio.msg.Msg, i: int = i) -> None:
                    counts[i] += 1

                await nc.subscribe("work", queue="workers", cb=cb)
                await nc.flush()
                members.append(nc)
        await wait_for(
            lambda: all(len(s.sublist.match(b"work").qsubs[0][1]) == 6 for s in cl.running() if s.sublist.match(b"work").qsubs),
            what="queue weights everywhere",
        )
        pub = await nats.connect(cl.client_urls[0])
        n = 600
        for i in range(n):
            await pub.publish("work", str(i).encode())
        await pub.flush()
        await wait_for(lambda: sum(counts.values()) >= n, what="all queue messages")
        await asyncio.sleep(0.2)  # any duplicate would arrive within this window
        assert sum(counts.values()) == n
        # Members on other nodes get their share (weighted random picks).
        assert all(counts[i] > n / 10 for i in range(3)), counts
        for nc in [*members, pub]:
            await nc.close()


async def test_no_double_delivery_with_overlapping_interest() -> None:
    """TestClusterDoubleMsgs: one RMSG per route even when several remote subs match."""
    # No system account: its STATSZ would count in the route's out_msgs too.
    async with LocalCluster(2, no_system_account=True) as cl:
        sub = await nats.connect(cl.client_urls[1])
        got: list[str] = []

        async def cb(m: nats.aio.msg.Msg) -> None:
            got.append(m.subject)

        await sub.subscribe("a.b", cb=cb)
        await sub.subscribe("a.*", cb=cb)
        await sub.subscribe("a.>", cb=cb)
        await sub.flush()
        await interest_everywhere(cl, b"a.b")
        pub = await nats.connect(cl.client_urls[0])
        await wait_for(lambda: len(cl.servers[0].sublist.match(b"a.b").routes) == 1, what="route interest")
        await pub.publish("a.b", b"x")
        await pub.flush()
        await wait_for(lambda: len(got) == 3, what="three deliveries (one per sub)")
        await asyncio.sleep(0.2)
        assert len(got) == 3
        assert cl.servers[0].cluster.routes[cl.servers[1].id].out_msgs == 1  # type: ignore[union-attr]
        await pub.close()
        await sub.close()


async def test_node_restart_restores_interest() -> None:
    """TestRouteResendsLocalSubsOnReconnect: a restarted node gets the others' interest back,
    and clients that reconnect to it bring theirs."""
    async with LocalCluster(3) as cl:
        sub = await nats.connect(cl.client_urls[0])
        got: list[bytes] = []

        async def cb(m: nats.aio.msg.Msg) -> None:
            got.append(m.data)

        await sub.subscribe("orders", cb=cb)
        await sub.flush()
        await interest_everywhere(cl, b"orders")
        await cl.restart_node(1)
        await interest_everywhere(cl, b"orders")
        pub = await nats.connect(cl.client_urls[1])
        await pub.publish("orders", b"after-restart")
        await pub.flush()
        await wait_for(lambda: got == [b"after-restart"], what="message through the restarted node")
        await pub.close()
        await sub.close()


async def test_seed_configuration_forms_a_full_mesh() -> None:
    """TestSeedSolicitWorks: every node names only the seed; gossip completes the mesh."""
    async with LocalCluster(5) as cl:
        assert cl.mesh_formed()
        # Gossip makes pairs dial each other at once; the duplicates close shortly after.
        await wait_for(lambda: all(len(s.cluster.routes) == 4 and len(s.cluster.conns) == 4  # type: ignore[union-attr]
                                   for s in cl.running()), what="one connection per pair")


async def test_chained_configuration_forms_a_full_mesh() -> None:
    """TestChainedSolicitWorks: s3 -> s2 -> seed converges to a full mesh."""
    servers: list[Server] = []
    try:
        prev_port: int | None = None
        for i in range(4):
            routes = [RouteURL("127.0.0.1", prev_port)] if prev_port else []
            s = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name=f"chain{i}",
                               cluster=ClusterOptions(host="127.0.0.1", port=-1, name="CH", routes=routes)))
            await s.start()
            servers.append(s)
            prev_port = s.cluster.port  # type: ignore[union-attr]
        ids = {s.id for s in servers}
        await wait_for(lambda: all(set(s.cluster.routes) == ids - {s.id} for s in servers), what="chained mesh")  # type: ignore[union-attr]
    finally:
        for s in servers:
            await s.shutdown()


async def test_every_node_may_list_every_route_itself_included() -> None:
    async with LocalCluster(3, full_mesh_config=True) as cl:
        for s in cl.running():
            assert s.cluster is not None
            assert len(s.cluster.routes) == 2
            assert len(s.cluster.self_keys) == 1  # its own URL, recognised and skipped


async def test_routez_and_varz_show_the_mesh() -> None:
    async with LocalCluster(3, http_port=-1) as cl:
        for s in cl.running():
            rz = await http_json(f"{s.monitor_url}/routez")
            assert rz["num_routes"] == 2
            names = {r["remote_name"] for r in rz["routes"]}
            assert names == {o.name for o in cl.running() if o is not s}
            for r in rz["routes"]:
                for key in ("rid", "remote_id", "did_solicit", "is_configured", "ip", "port", "start",
                            "rtt", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "subscriptions"):
                    assert key in r
            vz = await http_json(f"{s.monitor_url}/varz")
            assert vz["routes"] == 2 and vz["cluster"]["name"] == cl.name


async def test_connect_urls_grow_and_shrink_in_the_client() -> None:
    async with LocalCluster(2) as cl:
        nc = await nats.connect(cl.client_urls[0])

        def discovered() -> set[str]:
            return {s.uri.netloc for s in nc._server_pool}

        await wait_for(lambda: f"127.0.0.1:{cl.servers[1].port}" in discovered(), what="client learns node 1")
        extra = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name="extra",
                               cluster=ClusterOptions(host="127.0.0.1", port=-1, name=cl.name,
                                                      routes=[RouteURL("127.0.0.1", cl.servers[0].cluster.port)])))  # type: ignore[union-attr]
        await extra.start()
        try:
            await wait_for(lambda: f"127.0.0.1:{extra.port}" in discovered(), what="client learns the newcomer")
            assert nc.connected_url.netloc == f"127.0.0.1:{cl.servers[0].port}"  # never reconnected
        finally:
            await extra.shutdown()
        # The INFO after the leave no longer lists it (nats-py keeps what it once learned in
        # its pool, so check the server's own view).
        await wait_for(lambda: f"127.0.0.1:{extra.port}" not in cl.servers[0].cluster.client_connect_urls(),  # type: ignore[union-attr]
                       what="URL dropped on leave")
        await nc.close()


async def test_clients_of_a_stopped_node_move_and_resubscribe() -> None:
    async with LocalCluster(3) as cl:
        sub = await nats.connect(cl.client_urls[1], reconnect_time_wait=0.1, max_reconnect_attempts=-1)
        got: list[bytes] = []

        async def cb(m: nats.aio.msg.Msg) -> None:
            got.append(m.data)

        await sub.subscribe("moves", cb=cb)
        await sub.flush()
        await wait_for(lambda: len(sub._server_pool) >= 3, what="client knows the cluster")
        await cl.stop_node(1)
        await wait_for(lambda: sub.is_connected and sub.connected_url.netloc != f"127.0.0.1:{cl._client_ports[1]}",
                       timeout=10, what="subscriber reconnected elsewhere")
        survivors = [s for s in cl.running()]
        await wait_for(lambda: all(s.sublist.match(b"moves") for s in survivors), what="interest restored")
        pub = await nats.connect(survivors[0].client_url)
        await pub.publish("moves", b"again")
        await pub.flush()
        await wait_for(lambda: got == [b"again"], what="message after the move")
        await pub.close()
        await sub.close()


async def test_lame_duck_mode_tells_routes_and_clients() -> None:
    async with LocalCluster(2, lame_duck_grace_period=0.2, lame_duck_duration=1.0) as cl:
        nc = await nats.connect(cl.client_urls[1])
        await nc.flush()
        a, b = cl.servers[0], cl.servers[1]
        assert a is not None and b is not None
        await wait_for(lambda: f"127.0.0.1:{b.port}" in a.cluster.client_connect_urls(), what="urls")  # type: ignore[union-attr]
        task = asyncio.ensure_future(b.lame_duck_mode())
        await wait_for(lambda: f"127.0.0.1:{b.port}" not in a.cluster.client_connect_urls(),  # type: ignore[union-attr]
                       what="peer drops the lame duck's URL")
        await wait_for(lambda: task.done(), timeout=5, what="lame duck shutdown")
        assert b.shutting_down
        cl.servers[1] = None
        await nc.close()


def test_threaded_cluster_fixture(nats_cluster: ThreadedCluster) -> None:
    """The pytest plugin's cluster fixture: three nodes, a full mesh, usable from sync code."""
    urls = nats_cluster.client_urls
    assert len(urls) == 3 and all(urls)
    assert nats_cluster.call(nats_cluster.cluster.mesh_formed)

    async def roundtrip() -> bytes:
        a = await nats.connect(urls[0])
        b = await nats.connect(urls[2])
        sub = await b.subscribe("fixture")
        await b.flush()
        for _ in range(100):
            await a.publish("fixture", b"ok")
            await a.flush()
            try:
                return (await sub.next_msg(timeout=0.1)).data
            except nats.errors.TimeoutError:
                continue
        raise AssertionError("no message")

    assert asyncio.run(roundtrip()) == b"ok"
    nats_cluster.restart_node(0)
    nats_cluster.wait_for_mesh()


@pytest.mark.parametrize("which_end", ["solicitor", "acceptor"])
async def test_a_dropped_route_to_a_live_peer_comes_back(which_end: str) -> None:
    """PRs 3573/8454/8527: every route to a live peer is re-established, whoever dialled it,
    including gossip-learned (implicit) routes between non-seed nodes."""
    async with LocalCluster(3) as cl:
        a, b = cl.servers[1], cl.servers[2]  # their route is implicit (learned by gossip)
        assert a is not None and b is not None and a.cluster is not None and b.cluster is not None
        route = a.cluster.routes[b.id]
        end = route if route.did_solicit == (which_end == "solicitor") else b.cluster.routes[a.id]
        assert end.transport is not None
        end.transport.abort()
        await wait_for(lambda: b.id not in a.cluster.routes or a.cluster.routes[b.id] is not route, what="drop seen")
        await cl.wait_for_mesh(10)


async def test_connect_urls_are_refcounted() -> None:
    """nats-server #1515: two servers advertising the same client URL; one leaving must not
    remove the URL the other still serves."""
    seed = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name="seed",
                          cluster=ClusterOptions(host="127.0.0.1", port=-1, name="RC")))
    await seed.start()
    peers = []
    try:
        for name in ("p1", "p2"):
            p = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name=name, client_advertise="10.1.1.1:4222",
                               cluster=ClusterOptions(host="127.0.0.1", port=-1, name="RC",
                                                      routes=[RouteURL("127.0.0.1", seed.cluster.port)])))  # type: ignore[union-attr]
            await p.start()
            peers.append(p)
        await wait_for(lambda: len(seed.cluster.routes) == 2, what="both peers")  # type: ignore[union-attr]
        assert "10.1.1.1:4222" in seed.cluster.client_connect_urls()  # type: ignore[union-attr]
        await peers.pop().shutdown()
        await wait_for(lambda: len(seed.cluster.routes) == 1, what="one peer left")  # type: ignore[union-attr]
        assert "10.1.1.1:4222" in seed.cluster.client_connect_urls()  # type: ignore[union-attr]
        await peers.pop().shutdown()
        await wait_for(lambda: "10.1.1.1:4222" not in seed.cluster.client_connect_urls(), what="URL gone")  # type: ignore[union-attr]
    finally:
        for p in peers:
            await p.shutdown()
        await seed.shutdown()
