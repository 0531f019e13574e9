"""Route protocol transcripts: a raw socket plays the peer server.

Mirrors nats-server's test/routes_test.go and new_routes_test.go: TestSendRouteInfoOnConnect,
TestRouteToSelf, TestSendRouteSubAndUnsub, TestRouteForwardsMsgFromClients/ToClients,
TestRouteOneHopSemantics, TestRouteQueueSemantics, TestMultipleRoutesSameId, ...
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest
from cluster_util import RawPeer, high_id, low_id, peer_connect, peer_info, wait_for

from pynats_server import ClusterOptions, Options, RouteURL, Server

CLUSTER = "RT"


def _opts(**cluster: object) -> Options:
    c = ClusterOptions(host="127.0.0.1", port=-1, name=CLUSTER)
    for k, v in cluster.items():
        setattr(c, k, v)
    return Options(host="127.0.0.1", port=-1, no_log=True, cluster=c)


@pytest.fixture
async def srv() -> AsyncIterator[Server]:
    async with Server(_opts()) as s:
        yield s


async def route_peer(srv: Server, sid: str, port: int = 7777, **info: object) -> RawPeer:
    """A registered raw peer: connect, read the INFO, send CONNECT and INFO."""
    assert srv.cluster is not None
    p = await RawPeer.connect("127.0.0.1", srv.cluster.port)
    await p.expect_info()
    await p.send(peer_connect(sid, CLUSTER) + peer_info(sid, CLUSTER, port, **info))
    await wait_for(lambda: sid in srv.cluster.routes, what="route registered")  # type: ignore[union-attr]
    return p


async def client(srv: Server, connect: bytes = b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n') -> RawPeer:
    c = await RawPeer.connect("127.0.0.1", srv.port)
    await c.expect_info()
    await c.send(connect + b"PING\r\n")
    await c.expect(b"PONG\r\n")
    return c


async def test_accepting_side_sends_info_at_once(srv: Server) -> None:
    p = await RawPeer.connect("127.0.0.1", srv.cluster.port)  # type: ignore[union-attr]
    info = await p.expect_info()
    assert info["server_id"] == srv.id and len(info["server_id"]) == 56
    assert info["proto"] == 2
    assert info["port"] == srv.cluster.port  # type: ignore[union-attr]
    assert info["headers"] is True and info["cluster"] == CLUSTER
    assert info["connect_urls"] == [f"127.0.0.1:{srv.port}"]
    for forbidden in ("route_pool_size", "compression", "lnoc", "lnocu", "lang"):
        assert forbidden not in info
    assert list(info)[:4] == ["server_id", "server_name", "version", "proto"]
    p.close()


@pytest.mark.parametrize("first", [b"PING\r\n", b'INFO {"server_id":"x"}\r\n'])
async def test_connect_must_come_first(srv: Server, first: bytes) -> None:
    p = await RawPeer.connect("127.0.0.1", srv.cluster.port)  # type: ignore[union-attr]
    await p.expect_info()
    await p.send(first)
    rest = await p.expect_closed()
    assert rest == b"-ERR 'Authorization Violation'\r\n"


async def test_registration_sends_existing_interest(srv: Server) -> None:
    c = await client(srv)
    await c.send(b"SUB foo 1\r\nSUB foo 2\r\nSUB bar q 3\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    p = await route_peer(srv, low_id())
    got = await p.read_until(b"RS+ $G bar q 1\r\n")
    assert got.count(b"RS+ $G foo\r\n") == 1
    c.close()
    p.close()


async def test_plain_interest_counted_per_subject(srv: Server) -> None:
    p = await route_peer(srv, low_id())
    c = await client(srv)
    await c.send(b"SUB p 1\r\nSUB p 2\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    await p.expect(b"RS+ $G p\r\n")
    await c.send(b"UNSUB 1\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    await p.expect_nothing(0.2)
    await c.send(b"UNSUB 2\r\n")
    await p.expect(b"RS- $G p\r\n")


async def test_queue_weights_resent_and_no_weight_on_unsub(srv: Server) -> None:
    p = await route_peer(srv, low_id())
    c = await client(srv)
    await c.send(b"SUB w q 1\r\nSUB w q 2\r\nSUB w q 3\r\n")
    await p.expect(b"RS+ $G w q 1\r\nRS+ $G w q 2\r\nRS+ $G w q 3\r\n")
    await c.send(b"UNSUB 1\r\nUNSUB 2\r\nUNSUB 3\r\n")
    await p.expect(b"RS+ $G w q 2\r\nRS+ $G w q 1\r\nRS- $G w q\r\n")


async def test_auto_unsub_sends_rs_minus(srv: Server) -> None:
    p = await route_peer(srv, low_id())
    c = await client(srv)
    await c.send(b"SUB m 1\r\nUNSUB 1 1\r\n")
    await p.expect(b"RS+ $G m\r\n")
    await c.send(b"PUB m 1\r\nx\r\n")
    await c.expect(b"MSG m 1 1\r\nx\r\n")
    await p.expect(b"RS- $G m\r\n")


async def test_rmsg_forms_to_the_peer(srv: Server) -> None:
    p = await route_peer(srv, low_id())
    await p.send(b"RS+ $G foo\r\nRS+ $G bar qa 1\r\nPING\r\n")
    await p.read_until(b"PONG\r\n")
    c = await client(srv)
    await c.send(b"PUB foo 2\r\nhi\r\nPUB foo rep 2\r\nhi\r\nPUB bar 2\r\nab\r\nPUB bar rr 2\r\ncd\r\n")
    await c.send(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await p.read_until(b"RMSG $G foo 2\r\nhi\r\n")
    await p.expect(b"RMSG $G foo rep 2\r\nhi\r\n")
    await p.expect(b"RMSG $G bar | qa 2\r\nab\r\n")
    await p.expect(b"RMSG $G bar + rr qa 2\r\ncd\r\n")
    await p.expect(b"HMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")


async def test_one_rmsg_per_route_for_plain_and_queue_interest(srv: Server) -> None:
    p = await route_peer(srv, low_id())
    await p.send(b"RS+ $G foo\r\nRS+ $G foo.* \r\nRS+ $G foo qa 2\r\nRS+ $G foo qb 1\r\nPING\r\n")
    await p.read_until(b"PONG\r\n")
    c = await client(srv)
    await c.send(b"PUB foo 2\r\nhi\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    await p.expect(b"RMSG $G foo | qa qb 2\r\nhi\r\n")
    await p.expect_nothing(0.2)


async def test_headers_stripped_for_a_peer_without_headers(srv: Server) -> None:
    p = await route_peer(srv, low_id(), headers=False)
    await p.send(b"RS+ $G foo\r\nPING\r\n")
    await p.read_until(b"PONG\r\n")
    c = await client(srv)
    await c.send(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await p.expect(b"RMSG $G foo 2\r\nhi\r\n")


async def test_routed_messages_reach_local_subscribers(srv: Server) -> None:
    p = await route_peer(srv, low_id())
    c = await client(srv)
    await c.send(b"SUB foo 1\r\nSUB foo q1 2\r\nSUB foo q2 3\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    await p.send(b"RMSG $G foo 2\r\nhi\r\n")
    await c.expect(b"MSG foo 1 2\r\nhi\r\n")
    await c.expect_nothing(0.15)
    # A queue group gets a routed message only when the RMSG names it.
    await p.send(b"RMSG $G foo | q1 2\r\nab\r\n")
    await c.expect(re.compile(rb"(MSG foo [12] 2\r\nab\r\n){2}"))
    await p.send(b"RMSG $G foo + r q1 q2 2\r\ncd\r\n")
    got = await c.read_until(b"cd\r\n")
    got += await c.read_until(b"cd\r\n")
    got += await c.read_until(b"cd\r\n")
    assert sorted(re.findall(rb"MSG foo (\d) r 2", got)) == [b"1", b"2", b"3"]
    await p.send(b"HMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await c.expect(b"HMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")


async def test_one_hop_routed_messages_are_not_forwarded(srv: Server) -> None:
    p1 = await route_peer(srv, low_id("1"), 7001)
    p2 = await route_peer(srv, low_id("2"), 7002)
    await p2.send(b"RS+ $G foo\r\nPING\r\n")
    await p2.read_until(b"PONG\r\n")
    await p1.send(b"RMSG $G foo 2\r\nhi\r\nPING\r\n")
    await p1.read_until(b"PONG\r\n")
    await p2.expect_nothing(0.3)
    assert b"RMSG" not in p2.buf


async def test_route_to_self_is_dropped(srv: Server) -> None:
    p = await RawPeer.connect("127.0.0.1", srv.cluster.port)  # type: ignore[union-attr]
    info = await p.expect_info()
    await p.send(peer_connect(srv.id, CLUSTER) + b"INFO " + json.dumps(info).encode() + b"\r\n")
    await p.expect_closed()
    assert srv.cluster.routes == {}  # type: ignore[union-attr]


async def test_rs_minus_with_a_weight_closes_the_route(srv: Server) -> None:
    p = await route_peer(srv, low_id())
    await p.send(b"RS- $G zz q 5\r\n")
    await p.expect_closed()
    await wait_for(lambda: not srv.cluster.routes, what="route removed")  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", [b"XYZ foo\r\n", b"MSG foo 1 2\r\nhi\r\n", b"SUB foo 1\r\n"])
async def test_unknown_route_op(srv: Server, bad: bytes) -> None:
    p = await route_peer(srv, low_id())
    await p.send(bad)
    rest = await p.expect_closed()
    assert rest.endswith(b"-ERR 'Unknown Protocol Operation'\r\n")


async def test_interest_for_other_accounts_is_ignored(srv: Server) -> None:
    own = sum(a.sublist.count for a in srv.accounts.values())
    p = await route_peer(srv, low_id())
    await p.send(b"RS+ OTHER foo\r\nRMSG OTHER foo 2\r\nhi\r\nPING\r\n")
    await p.read_until(b"PONG\r\n")
    assert sum(a.sublist.count for a in srv.accounts.values()) == own
    assert srv.cluster.routes  # type: ignore[union-attr]


async def test_dropped_route_takes_its_interest(srv: Server) -> None:
    p = await route_peer(srv, low_id())
    await p.send(b"RS+ $G foo\r\nRS+ $G bar q 3\r\nPING\r\n")
    await p.read_until(b"PONG\r\n")
    assert srv.sublist.match(b"foo").routes and srv.sublist.match(b"bar").qsubs
    p.close()
    await wait_for(lambda: not srv.sublist.match(b"foo") and not srv.sublist.match(b"bar"), what="interest dropped")


async def test_cluster_name_mismatch() -> None:
    async with Server(_opts()) as s:
        p = await RawPeer.connect("127.0.0.1", s.cluster.port)  # type: ignore[union-attr]
        await p.expect_info()
        await p.send(peer_connect(low_id(), "OTHER") + peer_info(low_id(), "OTHER", 7))
        rest = await p.expect_closed()
        assert rest == f"-ERR 'Rejecting connection, cluster name \"OTHER\" does not match \"{CLUSTER}\"'\r\n".encode()


async def test_dynamic_cluster_name_adopts_a_fixed_one() -> None:
    async with Server(_opts(name="")) as s:
        assert s.cluster is not None and s.cluster.dynamic
        p = await RawPeer.connect("127.0.0.1", s.cluster.port)
        info = await p.expect_info()
        assert info["cluster_dynamic"] is True
        await p.send(peer_connect(low_id(), "FIXED") + peer_info(low_id(), "FIXED", 7))
        await wait_for(lambda: s.cluster.routes, what="registered")  # type: ignore[union-attr]
        assert s.cluster.name == "FIXED" and not s.cluster.dynamic


async def test_gossip_carries_the_current_cluster_name() -> None:
    """A peer that registered under an older generated name is gossiped under today's name.

    nats-server checks the cluster name on every INFO, gossip included, and closes the
    route on a mismatch: a stale name made a mixed cluster flap (found in the rolling
    upgrade walkthrough).
    """
    async with Server(_opts(name="")) as s:
        assert s.cluster is not None
        p1 = await RawPeer.connect("127.0.0.1", s.cluster.port)
        await p1.expect_info()
        await p1.send(peer_connect(low_id("1"), "~1", cluster_dynamic=True)
                      + peer_info(low_id("1"), "~1", 7001, cluster_dynamic=True))
        await wait_for(lambda: s.cluster.name == "~1" and s.cluster.routes, what="first name adopted")  # type: ignore[union-attr]
        p2 = await RawPeer.connect("127.0.0.1", s.cluster.port)
        await p2.expect_info()
        await p2.send(peer_connect(low_id("2"), "~2", cluster_dynamic=True)
                      + peer_info(low_id("2"), "~2", 7002, cluster_dynamic=True))
        info = await p2.expect_info()
        assert info["server_id"] == low_id("1")
        assert info["cluster"] == "~2" and info["cluster_dynamic"] is True
        # The first peer hears of the newcomer, and of the new name, under the new name too.
        seen = [await p1.expect_info(), await p1.expect_info()]
        assert {i["server_id"] for i in seen} == {s.id, low_id("2")}
        assert all(i["cluster"] == "~2" for i in seen)


async def test_client_on_route_port_is_told(srv: Server) -> None:
    p = await RawPeer.connect("127.0.0.1", srv.cluster.port)  # type: ignore[union-attr]
    await p.expect_info()
    await p.send(b'CONNECT {"lang":"python","verbose":false}\r\n')
    assert await p.expect_closed() == b"-ERR 'attempted to connect to route port'\r\n"


async def test_route_auth() -> None:
    async with Server(_opts(user="ru", password="rp")) as s:
        port = s.cluster.port  # type: ignore[union-attr]
        p = await RawPeer.connect("127.0.0.1", port)
        info = await p.expect_info()
        assert info["auth_required"] is True
        await p.send(peer_connect(low_id(), CLUSTER) + peer_info(low_id(), CLUSTER, 7))
        assert await p.expect_closed() == b"-ERR 'Authorization Violation'\r\n"
        ok = await RawPeer.connect("127.0.0.1", port)
        await ok.expect_info()
        await ok.send(peer_connect(low_id(), CLUSTER, user="ru", **{"pass": "rp"}) + peer_info(low_id(), CLUSTER, 7))
        await wait_for(lambda: s.cluster.routes, what="authenticated route")  # type: ignore[union-attr]


async def test_same_peer_twice_keeps_one_route(srv: Server) -> None:
    """TestMultipleRoutesSameId: a second connection from the same peer is not a second route."""
    sid = high_id()
    p1 = await route_peer(srv, sid, 7001)
    p2 = await RawPeer.connect("127.0.0.1", srv.cluster.port)  # type: ignore[union-attr]
    await p2.expect_info()
    await p2.send(peer_connect(sid, CLUSTER) + peer_info(sid, CLUSTER, 7001) + b"PING\r\n")
    await p2.read_until(b"PONG\r\n")
    assert len(srv.cluster.routes) == 1 and srv.cluster.routes[sid].rid  # type: ignore[union-attr]
    # The peer decides which one it keeps: when it closes the first, the second takes over.
    c = await client(srv)
    await c.send(b"SUB held 1\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    p1.close()
    await p2.read_until(b"RS+ $G held\r\n")


async def test_nats_server_peer_picks_which_duplicate_survives() -> None:
    """With a nats-server peer (its INFO's `go` is a Go version), a duplicate connection is
    held, not closed: nats-server keeps the connection it registered first and closes the
    other, and if we closed one too it could be the one it keeps (seen: a mixed cluster
    flapping every second). Our rule (keep the one solicited by the smaller id) is only for
    pynats peers; here it would have closed the peer's connection at once."""
    got: asyncio.Queue[RawPeer] = asyncio.Queue()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await got.put(RawPeer(r, w))

    listener = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    lport = listener.sockets[0].getsockname()[1]
    sid = high_id()
    try:
        async with Server(_opts(routes=[RouteURL("127.0.0.1", lport)])) as s:
            assert s.cluster is not None
            dialled = await asyncio.wait_for(got.get(), 5)  # ours: we hold back its INFO
            await dialled.expect(re.compile(rb"CONNECT (\{.*?\})\r\n"))
            theirs = await route_peer(s, sid, lport, go="go1.22.5")
            c = await client(s)
            await c.send(b"SUB held 1\r\nPING\r\n")
            await c.expect(b"PONG\r\n")
            await dialled.send(peer_info(sid, CLUSTER, lport, go="go1.22.5") + b"PING\r\n")
            await dialled.read_until(b"PONG\r\n")
            # Both connections are still open: neither was closed as a duplicate.
            await theirs.send(b"PING\r\n")
            await theirs.read_until(b"PONG\r\n")
            assert s.cluster.routes[sid] is not None and len(s.cluster.standby.get(sid, [])) == 1
            # The peer keeps the connection we dialled and closes its own: ours takes over.
            theirs.close()
            await dialled.read_until(b"RS+ $G held\r\n")
            await wait_for(lambda: s.cluster.routes.get(sid) is not None and not s.cluster.standby.get(sid),  # type: ignore[union-attr]
                           what="the held connection registered")
    finally:
        listener.close()


async def test_soliciting_side_sends_connect_then_info() -> None:
    got: asyncio.Queue[RawPeer] = asyncio.Queue()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await got.put(RawPeer(r, w))

    listener = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    lport = listener.sockets[0].getsockname()[1]
    try:
        async with Server(_opts(routes=[RouteURL("127.0.0.1", lport)])) as s:
            p = await asyncio.wait_for(got.get(), 5)
            m = await p.expect(re.compile(rb"CONNECT (\{.*?\})\r\n"))
            co = json.loads(m.group(1))
            assert co == {"echo": True, "verbose": False, "pedantic": False, "tls_required": False,
                          "headers": True, "name": s.id, "cluster": CLUSTER}
            info = await p.expect_info()
            assert info["server_id"] == s.id
            await p.send(peer_info(low_id(), CLUSTER, lport))
            await wait_for(lambda: s.cluster.routes, what="solicited route registered")  # type: ignore[union-attr]
            # Route keep-alive: a PING about a second after the route was created.
            await p.read_until(b"PING\r\n", timeout=3)
            await p.send(b"PONG\r\n")
    finally:
        listener.close()


async def test_gossip_forwards_newcomers_with_ip(srv: Server) -> None:
    p1 = await route_peer(srv, low_id("1"), 7001)
    await route_peer(srv, low_id("2"), 7002, connect_urls=["10.9.9.9:4222"])
    info = await p1.expect_info()
    assert info["server_id"] == low_id("2")
    assert info["ip"] == "nats-route://127.0.0.1:7002/"


async def test_gossip_makes_the_server_dial_the_newcomer(srv: Server) -> None:
    got: asyncio.Queue[RawPeer] = asyncio.Queue()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await got.put(RawPeer(r, w))

    listener = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    lport = listener.sockets[0].getsockname()[1]
    try:
        p1 = await route_peer(srv, low_id("1"), 7001)
        await p1.send(peer_info(low_id("3"), CLUSTER, lport, ip=f"nats-route://127.0.0.1:{lport}/"))
        dialled = await asyncio.wait_for(got.get(), 5)
        m = await dialled.expect(re.compile(rb"CONNECT (\{.*?\})\r\n"))
        assert json.loads(m.group(1))["name"] == srv.id
    finally:
        listener.close()


async def test_connect_urls_reach_protocol_1_clients(srv: Server) -> None:
    c1 = await client(srv, b'CONNECT {"verbose":false,"protocol":1}\r\n')
    await c1.expect_info()  # the connect_info INFO after the first PONG
    c0 = await client(srv, b'CONNECT {"verbose":false,"protocol":0}\r\n')
    p = await route_peer(srv, low_id(), 7001, connect_urls=["10.9.9.9:4222"])
    info = await c1.expect_info()
    assert info["connect_urls"] == [f"127.0.0.1:{srv.port}", "10.9.9.9:4222"]
    await c0.expect_nothing(0.2)
    p.close()
    info = await c1.expect_info()
    assert info["connect_urls"] == [f"127.0.0.1:{srv.port}"]


async def test_peer_lame_duck_removes_its_urls(srv: Server) -> None:
    c1 = await client(srv, b'CONNECT {"verbose":false,"protocol":1}\r\n')
    await c1.expect_info()
    sid = low_id()
    p = await route_peer(srv, sid, 7001, connect_urls=["10.9.9.9:4222"])
    await c1.expect_info()
    await p.send(peer_info(sid, CLUSTER, 7001, connect_urls=["10.9.9.9:4222"], ldm=True))
    info = await c1.expect_info()
    assert "10.9.9.9:4222" not in info["connect_urls"]


# -- Handshake orderings (conformance/cases/route_order.txt) ----------------------------------


async def connect_only_peer(srv: Server, sid: str) -> RawPeer:
    """A peer that sends CONNECT and no INFO (nats-server's own route tests write them so)."""
    p = await RawPeer.connect("127.0.0.1", srv.cluster.port)  # type: ignore[union-attr]
    await p.expect_info()
    await p.send(peer_connect(sid, CLUSTER))
    return p


async def test_connect_only_peer_is_a_route_both_ways(srv: Server) -> None:
    """nats-server honours a CONNECT-only peer's RS+ and RMSG (both 2.9 and 2.14)."""
    sid = low_id()
    p = await connect_only_peer(srv, sid)
    await p.send(b"RS+ $G foo\r\nPING\r\n")
    await p.expect(b"PONG\r\n")
    c = await client(srv)
    await c.send(b"SUB bar 1\r\nPUB foo 2\r\nok\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    await p.expect(b"RMSG $G foo 2\r\nok\r\n")
    # Not registered: not told our interest, not in the route table.
    await p.expect_nothing(0.2)
    assert sid not in srv.cluster.routes  # type: ignore[union-attr]
    await p.send(b"RMSG $G bar 2\r\nhi\r\nRMSG $G bar rep 2\r\nho\r\nHMSG $G bar 12 14\r\nNATS/1.0\r\n\r\nhe\r\n")
    await c.expect(b"MSG bar 1 2\r\nhi\r\nMSG bar 1 rep 2\r\nho\r\nHMSG bar 1 12 14\r\nNATS/1.0\r\n\r\nhe\r\n")
    # Its interest goes with it.
    p.close()
    await wait_for(lambda: not srv.sublist.match(b"foo"), what="interest dropped")


async def test_connect_only_send_once_one_hop_and_queue_weights(srv: Server) -> None:
    p = await connect_only_peer(srv, low_id("1"))
    await p.send(b"RS+ $G foo\r\nRS+ $G *\r\nRS+ $G >\r\nRS+ $G foo q 1\r\nPING\r\n")
    await p.expect(b"PONG\r\n")
    c = await client(srv)
    await c.send(b"PUB foo 2\r\nok\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    await p.expect(b"RMSG $G foo | q 2\r\nok\r\n")
    await p.expect_nothing(0.2)
    # A queue weight from a CONNECT-only peer counts: its member is repeated by the weight.
    await c.send(b"SUB foo q 5\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    await p.send(b"RS+ $G foo q 3\r\nPING\r\n")
    await p.expect(b"PONG\r\n")
    (name, members), = srv.sublist.match(b"foo").qsubs
    assert name == b"q" and sum(s.is_route for s in members) == 3 and len(members) == 4
    # One hop: its messages do not go on to a registered route with the same interest.
    r = await route_peer(srv, low_id("2"), 7002)
    await r.send(b"RS+ $G foo\r\nPING\r\n")
    await r.read_until(b"PONG\r\n")
    await p.send(b"RMSG $G foo 2\r\nhi\r\nPING\r\n")
    await p.expect(b"PONG\r\n")
    await r.expect_nothing(0.2)
    assert b"RMSG" not in r.buf


async def test_connect_only_then_info_registers_and_keeps_early_interest(srv: Server) -> None:
    c = await client(srv)
    await c.send(b"SUB loc 1\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    sid = low_id()
    p = await connect_only_peer(srv, sid)
    await p.send(b"RS+ $G early\r\nRS+ $G eq g 2\r\nPING\r\n")
    await p.expect(b"PONG\r\n")
    await p.send(peer_info(sid, CLUSTER, 7001))
    await p.expect(b"RS+ $G loc\r\n")
    assert srv.cluster.routes[sid] is not None  # type: ignore[union-attr]
    # The early interest is the same subscriptions: installed once, removed by one RS-.
    r = srv.sublist.match(b"early")
    assert len(r.routes) == 1
    await p.send(b"RS- $G early\r\nRS- $G eq g\r\nPING\r\n")
    await p.read_until(b"PONG\r\n")
    assert not srv.sublist.match(b"early") and not srv.sublist.match(b"eq")


async def test_two_connect_only_connections_with_one_id(srv: Server) -> None:
    """Both are routes until INFOs arrive (as in nats-server); then one registers and the other
    is held (a peer that is not pynats-server decides which it keeps): no message goes to the
    held one, and it takes over when the first one goes."""
    sid = high_id()
    c = await client(srv)
    await c.send(b"SUB foo 1\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    p1 = await connect_only_peer(srv, sid)
    p2 = await connect_only_peer(srv, sid)
    for p in (p1, p2):
        await p.send(b"RS+ $G foo\r\nPING\r\n")
        await p.expect(b"PONG\r\n")
    await c.send(b"PUB foo 2\r\nhi\r\n")
    await c.expect(b"MSG foo 1 2\r\nhi\r\n")
    await p1.expect(b"RMSG $G foo 2\r\nhi\r\n")
    await p2.expect(b"RMSG $G foo 2\r\nhi\r\n")
    await p1.send(b"RMSG $G foo 2\r\np1\r\n")
    await c.expect(b"MSG foo 1 2\r\np1\r\n")
    await p2.send(b"RMSG $G foo 2\r\np2\r\n")
    await c.expect(b"MSG foo 1 2\r\np2\r\n")
    await p1.send(peer_info(sid, CLUSTER, 7001))
    await p1.expect(b"RS+ $G foo\r\n")
    await p2.send(peer_info(sid, CLUSTER, 7001) + b"PING\r\n")
    await p2.expect(b"PONG\r\n")
    cl = srv.cluster
    assert cl is not None
    held = cl.standby[sid]
    assert len(held) == 1 and held[0] is not cl.routes[sid] and not held[0].live
    await c.send(b"PUB foo 2\r\nh2\r\nPING\r\n")
    await c.read_until(b"PONG\r\n")
    await p1.expect(b"RMSG $G foo 2\r\nh2\r\n")
    await p2.expect_nothing(0.2)
    assert len(srv.sublist.match(b"foo").routes) == 1
    p1.close()
    await p2.expect(b"RS+ $G foo\r\n")
    await c.send(b"PUB foo 2\r\nh3\r\n")
    await p2.expect(b"RMSG $G foo 2\r\nh3\r\n")


async def test_a_peer_that_never_sends_info_is_closed_as_stale() -> None:
    """As nats-server 2.14: no PING before the INFO, closed after ping_max + 1 intervals."""
    opts = _opts()
    opts.ping_interval, opts.ping_max = 0.3, 1
    async with Server(opts) as s:
        p = await connect_only_peer(s, low_id("1"))
        await p.send(b"PING\r\n")
        await p.expect(b"PONG\r\n")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await p.expect_closed(3) == b"-ERR 'Stale Connection'\r\n"
        assert loop.time() - t0 > 0.4
        # With an INFO, the usual PINGs start.
        q = await route_peer(s, low_id("2"), 7002)
        await q.read_until(b"PING\r\n", timeout=3)
        await q.send(b"PONG\r\n")


async def test_later_info_with_another_cluster_name_closes(srv: Server) -> None:
    sid = low_id()
    p = await route_peer(srv, sid)
    await p.send(peer_info(sid, "OTHER", 7777))
    assert await p.expect_closed() == b""
    await wait_for(lambda: sid not in srv.cluster.routes, what="route removed")  # type: ignore[union-attr]


async def test_ops_not_acted_on_are_logged_and_counted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Nothing a route receives goes without a trace: the RMSG itself at -V (as nats-server),
    a debug line and a count for what is not acted on."""
    log = tmp_path / "s.log"
    opts = _opts()
    opts.no_log, opts.debug, opts.trace, opts.log_file = False, True, True, str(log)
    async with Server(opts) as s:
        assert s.cluster is not None
        sid = low_id()
        p = await connect_only_peer(s, sid)
        await p.send(
            b"RMSG $G foo 2\r\nok\r\nRMSG $G foo + rep q 0\r\n\r\nRMSG $G foo + rep 1\r\nx\r\n"
            b"RMSG NOACC foo 2\r\nzz\r\n+OK\r\nA+ foo\r\nA- foo\r\n"
            b"RS+ $G dup\r\nRS+ $G dup\r\nRS- $G nope\r\nRS- NOACC x\r\nRS+ NOACC y\r\nPING\r\n"
        )
        await p.expect(b"PONG\r\n")
        await p.send(peer_info(sid, CLUSTER, 7777))
        await wait_for(lambda: sid in s.cluster.routes, what="registered")  # type: ignore[union-attr]
        await p.send(peer_info(sid, CLUSTER, 7777, server_name="renamed", headers=False) + b"PING\r\n")
        await p.read_until(b"PONG\r\n")
        assert dict(s.cluster.ignored) == {
            "RMSG unknown account": 1, "+OK": 1, "A+": 1, "A-": 1, "RS+ duplicate": 1, "RS- unknown": 1,
            "RS- unknown account": 1, "RS+ unknown account": 1, "INFO changes": 1,
        }
    text = log.read_text()
    for line in (
        "<<- [RMSG $G foo 2]", '<<- MSG_PAYLOAD: ["ok"]', "<<- [RMSG $G foo + rep q 0]", "<<- [RMSG $G foo + rep 1]",
        "<<- [RMSG NOACC foo 2]", "<<- [PING]",
        '[DBG] 127.0.0.1:', 'Unknown account "NOACC" for routed message on subject: "foo"',
        "Ignoring +OK on a route", "<<- [A+ foo]", "Ignoring A+ foo", "Ignoring A- foo",
        "Ignoring duplicate RS+ $G dup", "Ignoring RS- $G nope", 'Unknown account "NOACC" for subject "x"',
        '[ERR] ', 'Unknown account "NOACC" for remote subject "y"',
        f'Ignoring changed server_name, headers in an INFO from route "{sid}"',
    ):
        assert line in text, line
    # An empty payload has no MSG_PAYLOAD line (nats-server's rule).
    lines = text.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.endswith("<<- [RMSG $G foo + rep q 0]"))
    assert "MSG_PAYLOAD" not in lines[i + 1]
