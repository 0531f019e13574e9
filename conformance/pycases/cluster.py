"""Cluster behaviour with several real servers (nats-server's route_discovery_test.go,
cluster_test.go, routes_test.go, server_test.go lame duck tests).

Same-kind cases run [X, X(, X)] for the target X. Mixed cases run the target with nats-server
2.14 ([X, go214, ...]), so that pynats-server slots into a Go cluster; for X = go29 they are the
2.9 + 2.14 mixed clusters. Convergence is checked on /routez; interest propagation with sentinel
messages (see _util.wait_propagated); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from typing import Any

from ..conn import Conn, Mismatch
from ..context import CaseContext
from ..registry import pycase, same, with_
from ..runner import REFERENCE
from ..targets import HOST, ServerProcess
from ..util import free_port
from ._util import (
    check_one_route_per_pair,
    client,
    flush,
    read_msgs,
    routes_by_remote,
    start_cluster,
    until_pong,
    wait_connect_urls,
    wait_full_mesh,
    wait_propagated,
)

TIMEOUT = 5.0


def url(s: ServerProcess) -> str:
    return f"127.0.0.1:{s.client_port}"


# ---------------------------------------------------------------------------- scenarios
async def scenario_mesh(
    ctx: CaseContext, kinds: Sequence[str], topology: str
) -> list[ServerProcess]:
    servers = await start_cluster(ctx, kinds, topology)
    await wait_full_mesh(ctx, servers, timeout=10)
    await check_one_route_per_pair(ctx, servers)
    return servers


async def scenario_pubsub_everywhere(ctx: CaseContext, servers: Sequence[ServerProcess]) -> None:
    """A subscriber on every server; each server publishes once; every subscriber gets each message once."""
    subs = [await client(ctx, s, f"sub{i}") for i, s in enumerate(servers)]
    for c in subs:
        await c.send(b"SUB all 1\r\n")
        await flush(c)
    pubs = [await client(ctx, s, f"pub{i}") for i, s in enumerate(servers)]
    for i, p in enumerate(pubs):
        await wait_propagated(ctx, p, subs, f"all{i}")
    for i, p in enumerate(pubs):
        await p.send(f"PUB all 2\r\nm{i}\r\n".encode())
        await flush(p)
    for c in subs:
        got = sorted(payload for _, payload in await read_msgs(c, len(pubs)))
        want = sorted(f"m{i}".encode() for i in range(len(pubs)))
        ctx.check(got == want, f"{c.name} got each message once", want, got)
        extra = await until_pong(c)
        ctx.check(extra == b"", f"{c.name}: no duplicates", b"", extra)


async def scenario_queue(ctx: CaseContext, servers: Sequence[ServerProcess], n: int = 90) -> None:
    """Queue members on every server: each message is delivered exactly once cluster-wide."""
    members = [await client(ctx, s, f"q{i}") for i, s in enumerate(servers)]
    for c in members:
        await c.send(b"SUB work workers 1\r\n")
        await flush(c)
    pub = await client(ctx, servers[0], "pub")
    await wait_propagated(ctx, pub, members, "queue")
    await pub.send(b"".join(f"PUB work 3\r\n{i:03d}\r\n".encode() for i in range(n)))
    await flush(pub)
    # A member's PONG can come back before messages routed to its server arrive (they travel on
    # another connection), so read in rounds until every message is seen or the deadline passes,
    # then one round more to catch a duplicate.
    seen: list[bytes] = []

    async def read_round() -> None:
        for c in members:
            data = await until_pong(c)
            seen.extend(line for line in data.split(b"\r\n") if len(line) == 3 and line.isdigit())

    deadline = asyncio.get_running_loop().time() + 10
    while len(seen) < n and asyncio.get_running_loop().time() < deadline:
        await read_round()
    await read_round()
    ctx.check(len(seen) == n, "exactly one delivery per message across the cluster", n, len(seen))
    ctx.check(len(set(seen)) == n, "no message delivered twice", n, len(set(seen)))


async def scenario_connect_urls(ctx: CaseContext, kinds: Sequence[str]) -> None:
    """A protocol-1 client learns of a joining server and of its departure (async INFO)."""
    a = await ctx.start_server(kinds[0], cluster=True, http=True)
    c = await client(ctx, a, "watcher", {"protocol": 1})
    b = await ctx.start_server(kinds[1], cluster=True, http=True, args=["--routes", a.cluster_url])
    await wait_connect_urls(c, {url(a), url(b)}, 10)
    await b.stop()
    await wait_connect_urls(c, {url(a)}, 10)


async def scenario_lame_duck(ctx: CaseContext, kinds: Sequence[str]) -> None:
    """SIGUSR2 on A: A's protocol-1 clients get INFO ldm:true (without A's URL); B's clients
    get connect_urls without A; A stops accepting clients."""
    a, b = await start_cluster(ctx, kinds)
    await wait_full_mesh(ctx, [a, b])
    ca = await client(ctx, a, "on_a", {"protocol": 1})
    cb = await client(ctx, b, "on_b", {"protocol": 1})
    a.send_signal(signal.SIGUSR2)
    info = await wait_ldm_info(ctx, ca)
    urls = set(info.get("connect_urls") or [])
    ctx.check(
        url(a) not in urls,
        "the LDM INFO does not list the server itself",
        f"no {url(a)}",
        sorted(urls),
    )
    await wait_connect_urls(cb, {url(b)}, 10)
    with_refused = False
    try:
        extra = await Conn.open("late", HOST, a.client_port, 1.0)
        await extra.close()
    except Mismatch:
        with_refused = True
    ctx.check(
        with_refused,
        "a server in lame duck mode refuses new clients",
        "connection refused",
        "accepted",
    )


async def wait_ldm_info(ctx: CaseContext, c: Conn) -> dict[str, Any]:
    for _ in range(5):
        obj, _line = await c.expect_info(timeout=TIMEOUT, space_before_crlf=False)
        if obj.get("ldm") is True:
            return obj
    ctx.fail("no INFO with ldm:true")


# ---------------------------------------------------------------------------- same-kind cases
@pycase(
    "cluster.seed_solicit_works",
    ref="TestSeedSolicitWorks",
    kinds=same(3),
    timeout=TIMEOUT,
    doc="two servers route to a seed: a full mesh on /routez, one route per pair (no pooling)",
)
async def seed_solicit_works(ctx: CaseContext) -> None:
    await scenario_mesh(ctx, ctx.kinds, "seed")


@pycase(
    "cluster.chained_solicit_works",
    ref="TestChainedSolicitWorks",
    kinds=same(3),
    timeout=TIMEOUT,
    doc="s3 -> s2 -> s1 chain converges to a full mesh",
)
async def chained_solicit_works(ctx: CaseContext) -> None:
    await scenario_mesh(ctx, ctx.kinds, "chain")


@pycase(
    "cluster.seed_four_servers",
    ref="TestStressSeedSolicitWorks",
    kinds=same(4),
    timeout=TIMEOUT,
    doc="four servers on one seed: full mesh",
)
async def seed_four(ctx: CaseContext) -> None:
    await scenario_mesh(ctx, ctx.kinds, "seed")


@pycase(
    "cluster.basic_pubsub",
    ref="TestBasicClusterPubSub",
    kinds=same(2),
    timeout=TIMEOUT,
    doc="subscriber on A, publisher on B: delivered once",
)
async def basic_pubsub(ctx: CaseContext) -> None:
    a, b = await scenario_mesh(ctx, ctx.kinds, "seed")
    sub = await client(ctx, a, "sub")
    await sub.send(b"SUB foo 1\r\n")
    pub = await client(ctx, b, "pub")
    await wait_propagated(ctx, pub, [sub], "basic")
    await pub.send(b"PUB foo reply 5\r\nhello\r\n")
    await flush(pub)
    await sub.expect_bytes(b"MSG foo 1 reply 5\r\nhello\r\n")
    ctx.check(await until_pong(sub) == b"", "no duplicate", b"", b"?")


@pycase(
    "cluster.no_double_messages",
    ref="TestClusterDoubleMsgs",
    kinds=same(3),
    timeout=TIMEOUT,
    doc="a subscriber on every server of a 3-mesh: each message arrives once (one-hop rule)",
)
async def no_double(ctx: CaseContext) -> None:
    servers = await scenario_mesh(ctx, ctx.kinds, "seed")
    await scenario_pubsub_everywhere(ctx, servers)


@pycase(
    "cluster.queue_distribution",
    ref="TestQueueDistributionAcrossRoutes",
    kinds=same(3),
    timeout=TIMEOUT,
    doc="queue members on three servers: each message delivered exactly once cluster-wide",
)
async def queue_distribution(ctx: CaseContext) -> None:
    servers = await scenario_mesh(ctx, ctx.kinds, "seed")
    await scenario_queue(ctx, servers)


@pycase(
    "cluster.request_across_routes",
    ref="TestRequestsAcrossRoutes",
    kinds=same(2),
    timeout=TIMEOUT,
    doc="a responder on A answers a request from B",
)
async def request_across(ctx: CaseContext) -> None:
    a, b = await scenario_mesh(ctx, ctx.kinds, "seed")
    svc = await client(ctx, a, "svc")
    await svc.send(b"SUB svc.echo 1\r\n")
    req = await client(ctx, b, "req")
    await req.send(b"SUB _INBOX.x 2\r\n")
    await wait_propagated(ctx, req, [svc], "svc")
    await wait_propagated(ctx, svc, [req], "inbox")
    await req.send(b"PUB svc.echo _INBOX.x 4\r\nping\r\n")
    await svc.expect_bytes(b"MSG svc.echo 1 _INBOX.x 4\r\nping\r\n")
    await svc.send(b"PUB _INBOX.x 4\r\npong\r\n")
    await req.expect_bytes(b"MSG _INBOX.x 2 4\r\npong\r\n")


@pycase(
    "cluster.auto_unsub_propagation",
    ref="TestAutoUnsubscribePropagation",
    kinds=same(2),
    timeout=TIMEOUT,
    doc="UNSUB 1 2 on A: B's publisher gets 2 deliveries through, then A's interest is gone",
)
async def auto_unsub(ctx: CaseContext) -> None:
    a, b = await scenario_mesh(ctx, ctx.kinds, "seed")
    sub = await client(ctx, a, "sub")
    await sub.send(b"SUB au 1\r\nUNSUB 1 2\r\n")
    pub = await client(ctx, b, "pub")
    await wait_propagated(ctx, pub, [sub], "au")
    await pub.send(b"PUB au 1\r\n1\r\n" * 5)
    await flush(pub)
    got = await read_msgs(sub, 2)
    ctx.check(len(got) == 2, "two deliveries", 2, len(got))
    ctx.check(await until_pong(sub) == b"", "nothing after the max", b"", b"more")

    async def gone() -> Any:
        z = await ctx.http_json(b, "/routez?subs=1")
        lists = [r.get("subscriptions_list") or [] for r in z.get("routes") or []]
        return True if not any("au" in lst for lst in lists) else "B still lists interest in au"

    await ctx.eventually(gone, TIMEOUT, "the auto-unsubscribed interest to leave B's /routez")


@pycase(
    "cluster.drops_remote_interest_on_close",
    ref="TestClusterDropsRemoteSids",
    kinds=same(2),
    timeout=TIMEOUT,
    doc="when A's subscriber disconnects, B forgets its interest (nothing is delivered, /routez clean)",
)
async def drops_remote(ctx: CaseContext) -> None:
    a, b = await scenario_mesh(ctx, ctx.kinds, "seed")
    sub = await client(ctx, a, "sub")
    await sub.send(b"SUB dr 1\r\n")
    pub = await client(ctx, b, "pub")
    await wait_propagated(ctx, pub, [sub], "dr")
    await sub.close()

    async def gone() -> Any:
        z = await ctx.http_json(b, "/routez?subs=1")
        lists = [r.get("subscriptions_list") or [] for r in z.get("routes") or []]
        return True if not any("dr" in lst for lst in lists) else "B still lists interest in dr"

    await ctx.eventually(gone, TIMEOUT, "B to drop interest in dr")


@pycase(
    "cluster.connect_urls_join_leave",
    ref="TestRouteSendAsyncINFOToClients",
    kinds=same(2),
    timeout=TIMEOUT,
    doc="a protocol-1 client gets connect_urls when a server joins, and again when it leaves",
)
async def connect_urls_join_leave(ctx: CaseContext) -> None:
    await scenario_connect_urls(ctx, ctx.kinds)


@pycase(
    "cluster.interest_restored_after_reconnect",
    ref="TestRouteResendsLocalSubsOnReconnect",
    kinds=same(2),
    timeout=TIMEOUT,
    doc="A is killed and restarted on the same cluster port: B's route reconnects and resends B's interest",
)
async def interest_restored(ctx: CaseContext) -> None:
    kinds = ctx.kinds
    port = free_port()
    cluster = ["--cluster", f"nats://127.0.0.1:{port}", "--cluster_name", "CONF"]
    a = await ctx.start_server(kinds[0], args=cluster, http=True)
    b = await ctx.start_server(
        kinds[1], cluster=True, http=True, args=["--routes", f"nats://127.0.0.1:{port}"]
    )
    await wait_full_mesh(ctx, [a, b])
    sub = await client(ctx, b, "sub")
    await sub.send(b"SUB back 1\r\n")
    await flush(sub)
    await a.kill()
    a2 = await ctx.start_server(kinds[0], args=cluster, http=True)
    await wait_full_mesh(ctx, [a2, b], timeout=10)
    pub = await client(ctx, a2, "pub")
    await wait_propagated(ctx, pub, [sub], "back")
    await pub.send(b"PUB back 2\r\nok\r\n")
    await sub.expect_bytes(b"MSG back 1 2\r\nok\r\n")


@pycase(
    "cluster.lame_duck_info",
    ref="TestLameDuckModeInfo",
    kinds=same(2),
    timeout=TIMEOUT,
    doc="SIGUSR2: ldm:true INFO to the server's clients, updated connect_urls to the peer's clients",
)
async def lame_duck(ctx: CaseContext) -> None:
    await scenario_lame_duck(ctx, ctx.kinds)


@pycase(
    "cluster.route_to_self_ignored",
    ref="TestRouteToSelf",
    kinds=same(1),
    timeout=TIMEOUT,
    doc="--routes listing the server's own cluster URL: no route, no crash",
)
async def route_to_self(ctx: CaseContext) -> None:
    port = free_port()
    s = await ctx.start_server(
        args=[
            "--cluster",
            f"nats://127.0.0.1:{port}",
            "--cluster_name",
            "CONF",
            "--routes",
            f"nats://127.0.0.1:{port}",
        ],
        http=True,
    )
    await s.wait_log(r"Listening for route connections", TIMEOUT)
    c = await client(ctx, s)
    for _ in range(6):  # ~1.2 s: the self dial happens within the first second
        await c.expect_nothing(0.2)
    routes = await routes_by_remote(ctx, s)
    ctx.check(not routes, "no route to itself", {}, routes)
    ctx.check(s.alive, "server still running", "alive", "exited")


@pycase(
    "cluster.cluster_name_mismatch",
    ref="TestClusterNameConflictsDropRoutes",
    kinds=same(2),
    timeout=TIMEOUT,
    doc="fixed, different cluster names: no route forms",
)
async def name_mismatch(ctx: CaseContext) -> None:
    a = await ctx.start_server(ctx.kinds[0], cluster=True, cluster_name="AAA", http=True)
    b = await ctx.start_server(
        ctx.kinds[1], cluster=True, cluster_name="BBB", http=True, args=["--routes", a.cluster_url]
    )
    await b.wait_log(r"(?i)cluster name|Rejecting connection|Route connection closed", TIMEOUT)
    for s in (a, b):
        routes = await routes_by_remote(ctx, s)
        ctx.check(not routes, f"no route on {s.target.name}", {}, routes)


@pycase(
    "cluster.no_advertise",
    kinds=same(2),
    timeout=TIMEOUT,
    doc="--no_advertise on both: clients are not told about the peer",
)
async def no_advertise(ctx: CaseContext) -> None:
    a = await ctx.start_server(ctx.kinds[0], cluster=True, http=True, args=["--no_advertise"])
    c = await client(ctx, a, "watcher", {"protocol": 1})
    b = await ctx.start_server(
        ctx.kinds[1], cluster=True, http=True, args=["--no_advertise", "--routes", a.cluster_url]
    )
    await wait_full_mesh(ctx, [a, b])
    await c.expect_nothing(0.4)


# ---------------------------------------------------------------------------- mixed with 2.14
MIXED = "!go214"  # for go214 these are the same-kind cases above


@pycase(
    "cluster.mixed.seed_target",
    kinds=with_(REFERENCE, REFERENCE),
    targets=MIXED,
    timeout=TIMEOUT,
    doc="the target is the seed, two 2.14 servers join: full mesh",
)
async def mixed_seed_target(ctx: CaseContext) -> None:
    await scenario_mesh(ctx, ctx.kinds, "seed")


@pycase(
    "cluster.mixed.seed_go214",
    kinds=lambda t: [REFERENCE, t, t],
    targets=MIXED,
    timeout=TIMEOUT,
    doc="a 2.14 seed, two target servers join: full mesh (they find each other through 2.14's gossip)",
)
async def mixed_seed_go(ctx: CaseContext) -> None:
    await scenario_mesh(ctx, ctx.kinds, "seed")


@pycase(
    "cluster.mixed.chain",
    kinds=lambda t: [t, REFERENCE, t],
    targets=MIXED,
    timeout=TIMEOUT,
    doc="chain target <- 2.14 <- target: full mesh",
)
async def mixed_chain(ctx: CaseContext) -> None:
    await scenario_mesh(ctx, ctx.kinds, "chain")


@pycase(
    "cluster.mixed.pubsub_everywhere",
    kinds=lambda t: [t, REFERENCE, t],
    targets=MIXED,
    timeout=TIMEOUT,
    doc="subscribers on every server of a target/2.14 mesh: each message once",
)
async def mixed_pubsub(ctx: CaseContext) -> None:
    servers = await scenario_mesh(ctx, ctx.kinds, "seed")
    await scenario_pubsub_everywhere(ctx, servers)


@pycase(
    "cluster.mixed.queue_distribution",
    kinds=lambda t: [t, REFERENCE, t],
    targets=MIXED,
    timeout=TIMEOUT,
    doc="queue members on target and 2.14 servers: exactly one delivery per message",
)
async def mixed_queue(ctx: CaseContext) -> None:
    servers = await scenario_mesh(ctx, ctx.kinds, "seed")
    await scenario_queue(ctx, servers)


@pycase(
    "cluster.mixed.headers_across",
    kinds=with_(REFERENCE),
    targets=MIXED,
    timeout=TIMEOUT,
    doc="HPUB on one kind, HMSG on the other, both directions",
)
async def mixed_headers(ctx: CaseContext) -> None:
    a, b = await scenario_mesh(ctx, ctx.kinds, "seed")
    ca = await client(ctx, a, "ca", {"headers": True})
    cb = await client(ctx, b, "cb", {"headers": True})
    await ca.send(b"SUB h.a 1\r\n")
    await cb.send(b"SUB h.b 1\r\n")
    await wait_propagated(ctx, cb, [ca], "ha")
    await wait_propagated(ctx, ca, [cb], "hb")
    await ca.send(b"HPUB h.b r 21 23\r\nNATS/1.0\r\nX-K: v1\r\n\r\nhi\r\n")
    await cb.expect_bytes(b"HMSG h.b 1 r 21 23\r\nNATS/1.0\r\nX-K: v1\r\n\r\nhi\r\n")
    await cb.send(b"HPUB h.a 21 23\r\nNATS/1.0\r\nX-K: v2\r\n\r\nyo\r\n")
    await ca.expect_bytes(b"HMSG h.a 1 21 23\r\nNATS/1.0\r\nX-K: v2\r\n\r\nyo\r\n")


@pycase(
    "cluster.mixed.connect_urls",
    kinds=with_(REFERENCE),
    targets=MIXED,
    timeout=TIMEOUT,
    doc="a client of the target learns of a joining 2.14 server and of its departure",
)
async def mixed_connect_urls(ctx: CaseContext) -> None:
    await scenario_connect_urls(ctx, ctx.kinds)


@pycase(
    "cluster.mixed.connect_urls_go_side",
    kinds=lambda t: [REFERENCE, t],
    targets=MIXED,
    timeout=TIMEOUT,
    doc="a client of 2.14 learns of a joining target server and of its departure",
)
async def mixed_connect_urls_go(ctx: CaseContext) -> None:
    await scenario_connect_urls(ctx, ctx.kinds)


@pycase(
    "cluster.mixed.lame_duck_target",
    kinds=with_(REFERENCE),
    targets=MIXED,
    timeout=TIMEOUT,
    doc="the target enters lame duck mode next to a 2.14 peer",
)
async def mixed_ldm_target(ctx: CaseContext) -> None:
    await scenario_lame_duck(ctx, ctx.kinds)


@pycase(
    "cluster.mixed.lame_duck_go214",
    kinds=lambda t: [REFERENCE, t],
    targets=MIXED,
    timeout=TIMEOUT,
    doc="a 2.14 server enters lame duck mode next to the target: the target's clients get updated URLs",
)
async def mixed_ldm_go(ctx: CaseContext) -> None:
    await scenario_lame_duck(ctx, ctx.kinds)


@pycase(
    "cluster.mixed.interest_restored",
    kinds=with_(REFERENCE),
    targets=MIXED,
    timeout=TIMEOUT,
    doc="the target is killed and restarted: the 2.14 peer reconnects and resends its interest",
)
async def mixed_interest_restored(ctx: CaseContext) -> None:
    await interest_restored(ctx)
