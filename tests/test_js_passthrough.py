"""A pynats-server without JetStream in a cluster whose nats-server nodes run JetStream: its
clients' `$JS.API` requests and stream publishes reach the Go nodes' JetStream, as in a cluster
of nats-server nodes only ("mixed mode": the global account imports `$JS.API.>` from the
system account, so requests travel over the routes in the system account with the client's
Nats-Request-Info, whose cluster name places the stream)."""

from __future__ import annotations

import asyncio

import nats
from cluster_util import GoServer, free_port, go_binary, wait_for

from pynats_server import Options, Server
from pynats_server.options import ClusterOptions


async def test_js_api_traffic_passes_through_a_pynats_node(tmp_path) -> None:
    ports = [free_port(), free_port()]
    py = Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name="py",
                        cluster=ClusterOptions(host="127.0.0.1", port=free_port(), name="mixed")))  # fmt: skip
    await py.start()
    assert py.cluster is not None
    # Two nats-server JetStream nodes (a JetStream cluster needs a meta leader: one JetStream
    # node among non-JetStream ones never elects one, on nats-server alone too), routed to
    # each other and to pynats.
    routes = [f"nats://127.0.0.1:{p}" for p in (*ports, py.cluster.port)]
    gos = [GoServer(go_binary("go214"), "-js", "-sd", str(tmp_path / f"js{i}"), name=f"go{i}", cluster_port=p,
                    cluster_name="mixed", routes=routes) for i, p in enumerate(ports)]  # fmt: skip
    await asyncio.gather(*(g.start() for g in gos))
    nc = None
    try:
        await wait_for(lambda: py.cluster is not None and len(py.cluster.routes) == 2, what="routes to the Go nodes")
        nc = await nats.connect(f"nats://127.0.0.1:{py.port}")
        js = nc.jetstream()
        # The Go nodes elect a JetStream meta leader some seconds after the routes form.
        async def ready() -> bool:
            try:
                await js.account_info()
                return True
            except Exception:
                return False

        await wait_for(ready, timeout=30, what="JetStream reachable through the pynats node")
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        acks = [await js.publish(f"orders.{i}", b"x%d" % i) for i in range(20)]
        assert [a.seq for a in acks] == list(range(1, 21)) and {a.stream for a in acks} == {"ORDERS"}
        # A plain publish from the pynats node is stored by the Go node too.
        await nc.publish("orders.plain", b"plain")
        await nc.flush()
        sub = await js.pull_subscribe("orders.>", durable="d")
        got: list[bytes] = []
        while len(got) < 21:
            for m in await sub.fetch(21 - len(got), timeout=5):
                got.append(m.data)
                await m.ack()
        assert got == [b"x%d" % i for i in range(20)] + [b"plain"]
        info = await js.stream_info("ORDERS")
        assert info.state.messages == 21
        # The pynats node itself has no JetStream: nothing of it is answered locally.
        assert py.jetstream is None
    finally:
        if nc is not None:
            await nc.close()
        await py.shutdown()
        for g in gos:
            await g.stop()
