"""A route replaced by a duplicate is retired, not dropped: the messages the peer had
already sent on it are still delivered.

Both pynats-server ends keep the connection dialled by the smaller server id, so a late
dial from the smaller one replaces a live route. Closing the old connection at once lost
whatever was in flight on it; a stalled peer (found by the chaos tests: a node stalled
while an explicit route was dialled again) made that a whole backlog. Now each end sends
its FIN and reads the old connection until the other's."""

from __future__ import annotations

import nats
from cluster_util import wait_for

from pynats_server import ClusterOptions, Options, RouteURL, Server
from pynats_server.dialer import dial_route
from pynats_server.faultproxy import FaultProxy

COUNT = 200


def node(name: str, routes: list[int]) -> Server:
    return Server(Options(host="127.0.0.1", port=-1, no_log=True, server_name=name,
                          cluster=ClusterOptions(host="127.0.0.1", port=-1, name="RETIRE",
                                                 routes=[RouteURL("127.0.0.1", p) for p in routes])))


async def test_replaced_route_delivers_what_was_in_flight() -> None:
    proxy = await FaultProxy().start()
    small = node("small", [])
    large = node("large", [proxy.port])
    while large.id < small.id:  # the dialler of the first route must be the larger id
        large = node("large", [proxy.port])
    await small.start()
    proxy.retarget(small.cluster.port)  # type: ignore[union-attr]
    await large.start()
    assert small.cluster is not None and large.cluster is not None
    sub_nc = await nats.connect(small.client_url)
    pub_nc = await nats.connect(large.client_url)
    try:
        await wait_for(lambda: large.id in small.cluster.routes and small.id in large.cluster.routes,  # type: ignore[union-attr]
                       what="the first route")
        old = large.cluster.routes[small.id]
        got: list[int] = []

        async def on_msg(m: object) -> None:
            got.append(int(m.data))  # type: ignore[attr-defined]

        await sub_nc.subscribe("inflight", cb=on_msg)
        await sub_nc.flush()
        await wait_for(lambda: large.sublist.match(b"inflight").routes, what="interest on large")
        proxy.pause()  # what large sends on the first route now waits in the network
        for i in range(COUNT // 2):
            await pub_nc.publish("inflight", b"%d" % i)
        await pub_nc.flush()
        await wait_for(lambda: old.out_msgs >= COUNT // 2, what="large sent them on the first route")
        # The smaller id dials too: both ends switch to the new connection.
        await dial_route(small.cluster, RouteURL("127.0.0.1", large.cluster.port), explicit=False)
        await wait_for(lambda: large.cluster.routes.get(small.id) not in (None, old)  # type: ignore[union-attr]
                       and small.cluster.routes[large.id].did_solicit,  # type: ignore[union-attr]
                       what="both ends on the new route")
        proxy.resume()
        await wait_for(lambda: len(got) >= COUNT // 2, what="the messages sent on the old route")
        await wait_for(lambda: old.closed, what="the old route closed once drained")
        for i in range(COUNT // 2, COUNT):
            await pub_nc.publish("inflight", b"%d" % i)
        await pub_nc.flush()
        await wait_for(lambda: len(got) >= COUNT, what="the rest, on the new route")
        assert got == list(range(COUNT))
        assert len(small.cluster.routes) == 1 and len(large.cluster.routes) == 1
    finally:
        await sub_nc.close()
        await pub_nc.close()
        await large.shutdown()
        await small.shutdown()
        await proxy.stop()
