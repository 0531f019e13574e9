"""Runs of PUBs delivered whole (Parser._bulk, delivery.deliver_run) against a naive oracle,
over a live server, while subscriptions churn.

Like test_delivery_churn, but each publish is a run of up to 24 PUBs with one control line
sent in one write, so the server sees them in one read and takes the bulk path where it
may. Each connection has echo and no_responders drawn; subscriptions come and go, some
with an UNSUB max that is reached in the middle of a run. After every op, each connection's
MSGs must be exactly what the oracle predicts, message by message (a queue group: exactly
one member), in order, and every connection's message and byte counters must match.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from roundtrip_conn import Conn

from pynats_server import Server
from pynats_server.client import ClientConnection
from pynats_server.protocol.subjects import match_literal

PATTERNS = [b"a.x", b"a.y", b"b.x", b"a.*", b"*.x", b"a.>", b">", b"*.*"]
SUBJECTS = [b"a.x", b"a.y", b"b.x", b"b.y"]
QUEUES = [None, None, b"q1", b"q2"]
SIZE = 6  # every payload is b"m%05d" % its number

op = st.one_of(
    st.tuples(st.just("sub"), st.integers(0, 2), st.sampled_from(PATTERNS), st.sampled_from(QUEUES)),
    st.tuples(st.just("unsub"), st.integers(0, 2), st.integers(0, 3), st.integers(-1, 30)),
    st.tuples(st.just("pub"), st.integers(0, 2), st.sampled_from(SUBJECTS), st.tuples(st.booleans(), st.integers(1, 24))),
    st.tuples(st.just("pub"), st.integers(0, 2), st.sampled_from(SUBJECTS), st.tuples(st.booleans(), st.integers(4, 24))),
)
conn_opts = st.tuples(st.sampled_from([True, True, True, False]), st.booleans())  # (echo, no_responders)

MSG_RE = re.compile(rb"MSG (\S+) (\d+) (?:(\S+) )?6\r\nm(\d{5})\r\n")
NR_RE = re.compile(rb"HMSG rep\.\d \d+ ")  # to the first of its subscriptions that matches


@dataclass
class OSub:
    conn: int
    pattern: bytes
    queue: bytes | None
    max: int = 0
    got: int = 0


async def run_ops(ops: list[tuple], opts: list[tuple[bool, bool]]) -> tuple[int, int]:  # type: ignore[type-arg]
    """Returns how many runs the server took whole, and how many it declined."""
    taken = declined = 0
    real = ClientConnection._pub_run

    def counting(self: ClientConnection, *a: Any) -> bool:
        nonlocal taken, declined
        ok = real(self, *a)
        taken += ok
        declined += not ok
        return ok

    ClientConnection._pub_run = counting  # type: ignore[method-assign]
    try:
        await _run(ops, opts)
    finally:
        ClientConnection._pub_run = real  # type: ignore[method-assign]
    return taken, declined


async def _run(ops: list[tuple], opts: list[tuple[bool, bool]]) -> None:  # type: ignore[type-arg]
    async with Server(port=0) as srv:
        conns = []
        for i, (echo, nr) in enumerate(opts):
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)
            await r.readline()  # INFO
            c = Conn(r, w)
            co = {"verbose": False, "pedantic": False, "echo": echo, "headers": True, "no_responders": nr,
                  "name": f"c{i}"}
            await c.roundtrip(b"CONNECT " + json.dumps(co).encode() + b"\r\nSUB rep.%d 999\r\n" % i)
            conns.append(c)
        server_conn = {c.name: c for c in srv.clients.values()}
        got_msgs = [0, 0, 0]
        sent_msgs = [0, 0, 0]
        subs: dict[tuple[int, int], OSub] = {}
        next_sid = [1, 1, 1]
        seq = 0
        for kind, ci, a, b in ops:
            if kind == "sub":
                sid = next_sid[ci]
                next_sid[ci] += 1
                subs[(ci, sid)] = OSub(ci, a, b)
                q = b" " + b if b else b""
                await conns[ci].roundtrip(b"SUB %s%s %d\r\n" % (a, q, sid))
                continue
            if kind == "unsub":
                sid = a + 1
                s = subs.get((ci, sid))
                if b >= 0:
                    await conns[ci].roundtrip(b"UNSUB %d %d\r\n" % (sid, b))
                    if s is not None:
                        if b > s.got:
                            s.max = b
                        else:
                            del subs[(ci, sid)]
                else:
                    await conns[ci].roundtrip(b"UNSUB %d\r\n" % sid)
                    subs.pop((ci, sid), None)
                continue
            with_reply, k = b
            reply = b"rep.%d " % ci if with_reply else b""
            first = seq
            data = b"".join(b"PUB %s %s6\r\nm%05d\r\n" % (a, reply, first + j) for j in range(k))
            seq += k
            sent_msgs[ci] += k
            own = await conns[ci].roundtrip(data)
            got = [await c.roundtrip(b"") for c in conns]
            got[ci] = own + got[ci]
            received = {}
            for i, g in enumerate(got):
                found = MSG_RE.findall(g)
                assert len(found) == g.count(b"MSG ") - g.count(b"HMSG "), g
                last: dict[int, int] = {}
                for subj, sid_b, rep, num in found:
                    sid_i, n = int(sid_b), int(num)
                    assert subj == a and rep == reply.strip(), (subj, rep)
                    assert (i, sid_i, n) not in received
                    assert last.get(sid_i, -1) < n, "out of order"
                    last[sid_i] = n
                    received[(i, sid_i, n)] = True
                got_msgs[i] += len(found)
            unheard = 0
            for n in range(first, first + k):
                delivered = False
                plain = [key for key, s in subs.items() if s.queue is None and match_literal(a, s.pattern)]
                for key in plain:
                    if key[0] == ci and not opts[ci][0]:
                        continue
                    assert received.pop((key[0], key[1], n), None), (n, key)
                    delivered = True
                    _count(subs, key)
                groups: dict[bytes, list[tuple[int, int]]] = {}
                for key, s in subs.items():
                    if s.queue is not None and match_literal(a, s.pattern) and (key[0] != ci or opts[ci][0]):
                        groups.setdefault(s.queue, []).append(key)
                for members in groups.values():
                    hit = [key for key in members if received.pop((key[0], key[1], n), None)]
                    assert len(hit) == 1, (n, members, hit)
                    delivered = True
                    _count(subs, hit[0])
                if not delivered and with_reply and opts[ci][1]:
                    unheard += 1
            assert not received, received
            assert len(NR_RE.findall(got[ci])) == unheard
            for i in range(3):
                sc = server_conn[f"c{i}"]
                assert sc.in_msgs == sent_msgs[i] and sc.in_bytes == SIZE * sent_msgs[i]
                if not opts[i][1]:  # no status messages (their bytes count too)
                    assert sc.out_msgs == got_msgs[i] and sc.out_bytes == SIZE * got_msgs[i]
        for c in conns:
            c.w.close()


def _count(subs: dict[tuple[int, int], OSub], key: tuple[int, int]) -> None:
    s = subs[key]
    s.got += 1
    if s.max and s.got >= s.max:
        del subs[key]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=5, max_size=30), st.lists(conn_opts, min_size=3, max_size=3))
def test_runs_match_the_oracle_under_churn(ops: list[tuple], opts: list[tuple[bool, bool]]) -> None:  # type: ignore[type-arg]
    taken, declined = asyncio.run(run_ops(ops, opts))
    event("some runs taken whole" if taken else "no run taken whole")
    event("some runs declined" if declined else "no run declined")


# -- examples: the declines and the route side ----------------------------------------------------


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """[runs clients took whole, runs routes took whole]."""
    from pynats_server.route import RouteConnection

    counts = [0, 0]
    for i, (cls, name) in enumerate([(ClientConnection, "_pub_run"), (RouteConnection, "on_rmsg_run")]):
        real = getattr(cls, name)

        def counting(self: Any, *a: Any, _real: Any = real, _i: int = i) -> bool:
            ok = _real(self, *a)
            counts[_i] += ok
            return bool(ok)

        monkeypatch.setattr(cls, name, counting)
    return counts


def _run_of(line: bytes, k: int, size: int = 2) -> bytes:
    return b"".join(line + b"%0*d\r\n" % (size, i) for i in range(k))


async def _client(port: int, connect: bytes = b'CONNECT {"verbose":false,"pedantic":false}\r\n') -> Conn:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await r.readline()
    c = Conn(r, w)
    await c.roundtrip(connect)
    return c


async def test_a_run_to_a_reserved_subject_or_reply_is_refused_per_message() -> None:
    async with Server(port=0) as srv:
        sub = await _client(srv.port)
        await sub.roundtrip(b"SUB > 1\r\n")
        pub = await _client(srv.port)
        got = await pub.roundtrip(_run_of(b"PUB _GR_.x 2\r\n", 12) + _run_of(b"PUB $NRG.y 2\r\n", 12))
        assert got.count(b"-ERR 'Permissions Violation for Publish to") == 24
        for line in (b"PUB _GR_.x r 2\r\n", b"PUB ok _R_.x 2\r\n", b"PUB ok $JS.ACK.a 2\r\n", b"PUB ok _GR_.b 2\r\n"):
            got = await pub.roundtrip(_run_of(line, 12))  # each at the start of a read
            assert got.count(b"-ERR 'Permissions Violation for Publish") == 12, line
        assert b"MSG" not in await sub.roundtrip(b"")


async def test_a_subscription_reaches_its_max_in_a_run(taken: list[int]) -> None:
    """One of two subscriptions has UNSUB 10: it gets the run's first ten messages, the
    other all of them; soon the subject's runs are taken whole again."""
    async with Server(port=0) as srv:
        sub = await _client(srv.port)
        await sub.roundtrip(b"SUB foo 1\r\nUNSUB 1 10\r\nSUB foo 2\r\n")
        pub = await _client(srv.port)
        await pub.roundtrip(_run_of(b"PUB foo 2\r\n", 30))
        got = await sub.roundtrip(b"")
        assert re.findall(rb"MSG foo 1 2\r\n(\d\d)", got) == [b"%02d" % i for i in range(10)]
        assert re.findall(rb"MSG foo 2 2\r\n(\d\d)", got) == [b"%02d" % i for i in range(30)]
        assert taken[0] == 0
        # The parser tries a declined line again every 16th read (Parser._bulk).
        n = 0
        while n < 20:
            n += 1
            await pub.roundtrip(_run_of(b"PUB foo 2\r\n", 30))
            got = await sub.roundtrip(b"")
            assert re.findall(rb"MSG foo (\d) 2\r\n(\d\d)", got) == [(b"2", b"%02d" % i) for i in range(30)]
            if taken[0]:
                break
        assert taken[0] == 1
        cl = next(c for c in srv.clients.values() if c.subs)
        assert cl.out_msgs == 40 + 30 * n and cl.subs[b"2"].nm == 30 + 30 * n


async def test_a_run_to_a_queue_group(taken: list[int]) -> None:
    """Each message of the run to exactly one member, in order per member; every member's
    count matches what it got (an UNSUB max counts on it)."""
    async with Server(port=0) as srv:
        sub = await _client(srv.port)
        await sub.roundtrip(b"SUB q g 1\r\nSUB q g 2\r\nSUB q g 3\r\nSUB q.> g 4\r\nSUB q 5\r\n")
        pub = await _client(srv.port)
        await pub.roundtrip(_run_of(b"PUB q 3\r\n", 300, 3))
        got = await sub.roundtrip(b"")
        assert re.findall(rb"MSG q 5 3\r\n(\d+)", got) == [b"%03d" % i for i in range(300)]
        per = {sid: re.findall(rb"MSG q " + sid + rb" 3\r\n(\d+)", got) for sid in (b"1", b"2", b"3")}
        assert sorted(x for v in per.values() for x in v) == [b"%03d" % i for i in range(300)]
        cl = next(c for c in srv.clients.values() if c.subs)
        for sid, v in per.items():
            assert v == sorted(v) and len(v) > 30 and cl.subs[sid].nm == len(v)
        assert taken[0] == 1


def test_queue_picks_are_uniform_member_indexes() -> None:
    """deliver_run's picks: random bytes, those at or over the largest multiple of the group
    size dropped, the rest modulo it (so every member is equally likely)."""
    import random

    from pynats_server.delivery import _picks

    for g in (2, 3, 5, 7, 100, 200, 255, 256):
        random.seed(g)
        got = _picks(3000, g)
        random.seed(g)
        lim = 256 - 256 % g
        want: list[int] = []
        while len(want) < 3000:
            want += [b % g for b in random.randbytes(3000) if b < lim]
        assert list(got) == want[:3000]


async def test_a_run_to_a_queue_group_over_256_members() -> None:
    async with Server(port=0) as srv:
        sub = await _client(srv.port)
        await sub.roundtrip(b"".join(b"SUB big q %d\r\n" % i for i in range(300)))
        pub = await _client(srv.port)
        await pub.roundtrip(_run_of(b"PUB big 2\r\n", 40))
        got = await sub.roundtrip(b"")
        assert sorted(re.findall(rb"MSG big \d+ 2\r\n(\d\d)", got)) == [b"%02d" % i for i in range(40)]


async def test_a_traced_client_run_is_traced_per_message(taken: list[int]) -> None:
    import io

    from pynats_server.log import Logger

    buf = io.StringIO()
    async with Server(port=0, logger=Logger(trace=True, stream=buf)) as srv:
        sub = await _client(srv.port)
        await sub.roundtrip(b"SUB t 1\r\n")
        pub = await _client(srv.port)
        await pub.roundtrip(_run_of(b"PUB t 2\r\n", 20))
        assert len(re.findall(rb"MSG t 1 2\r\n", await sub.roundtrip(b""))) == 20
        log = buf.getvalue()
        assert log.count("<<- [PUB t 2]") == 20 and log.count("->> [MSG t 1 2]") == 20
        assert taken == [0, 0]


async def _route_peer(srv: Server) -> Any:
    from cluster_util import RawPeer, low_id, peer_connect, peer_info, wait_for

    cl = srv.cluster
    assert cl is not None
    sid = low_id()
    p = await RawPeer.connect("127.0.0.1", cl.port)
    await p.expect_info()
    await p.send(peer_connect(sid, "BK") + peer_info(sid, "BK", 7777))
    await wait_for(lambda: sid in cl.routes, what="route registered")
    return p


def _cluster_server(**kw: Any) -> Server:
    from pynats_server import ClusterOptions, Options

    return Server(Options(host="127.0.0.1", port=-1, no_log=True,
                          cluster=ClusterOptions(host="127.0.0.1", port=-1, name="BK")), **kw)


async def test_routed_runs_reach_local_subscribers(taken: list[int]) -> None:
    """RMSG runs from a route: two subscriptions on one subject get every message (one chunk
    per sid), one with an UNSUB max gets exactly its max (its runs declined), a run for an
    unknown account is dropped and the route goes on; the counters hold."""
    async with _cluster_server() as srv:
        c = await _client(srv.port)
        await c.roundtrip(b"SUB foo 1\r\nSUB foo 2\r\nSUB lim 3\r\nUNSUB 3 25\r\n")
        p = await _route_peer(srv)
        await p.send(_run_of(b"RMSG $G foo 2\r\n", 30) + _run_of(b"RMSG NOPE foo 2\r\n", 10)
                     + _run_of(b"RMSG $G lim 2\r\n", 12) + _run_of(b"RMSG $G foo r 2\r\n", 30) + b"PING\r\n")
        await p.read_until(b"PONG\r\n")
        await p.send(_run_of(b"RMSG $G lim 2\r\n", 20) + b"PING\r\n")  # at the start of a read
        await p.read_until(b"PONG\r\n")
        got = await c.roundtrip(b"")
        for sid in (b"1", b"2"):
            assert re.findall(rb"MSG foo " + sid + rb" 2\r\n(\d\d)", got) == [b"%02d" % i for i in range(30)]
            assert re.findall(rb"MSG foo " + sid + rb" r 2\r\n(\d\d)", got) == [b"%02d" % i for i in range(30)]
        assert re.findall(rb"MSG lim 3 2\r\n(\d\d)", got) == [b"%02d" % i for i in [*range(12), *range(13)]]
        route = next(iter(srv.cluster.routes.values()))  # type: ignore[union-attr]
        cl = next(iter(srv.clients.values()))
        assert route.in_msgs == 102 and route.in_bytes == 204
        assert cl.out_msgs == 145 and cl.out_bytes == 290
        assert cl.subs[b"1"].nm == 60 and b"3" not in cl.subs
        assert taken[1] >= 2  # the runs on foo were taken whole (when they came in one read)


async def test_a_traced_route_run_is_traced_per_message(taken: list[int]) -> None:
    import io

    from pynats_server.log import Logger

    buf = io.StringIO()
    async with _cluster_server(logger=Logger(trace=True, stream=buf)) as srv:
        c = await _client(srv.port)
        await c.roundtrip(b"SUB foo 1\r\n")
        p = await _route_peer(srv)
        await p.send(_run_of(b"RMSG $G foo 2\r\n", 20) + b"PING\r\n")
        await p.read_until(b"PONG\r\n")
        assert len(re.findall(rb"MSG foo 1 2\r\n", await c.roundtrip(b""))) == 20
        log = buf.getvalue()
        assert log.count("<<- [RMSG $G foo 2]") == 20 and log.count("->> [MSG foo 1 2]") == 20
        assert taken == [0, 0]


async def test_a_run_crosses_a_route_whole(taken: list[int]) -> None:
    """A client's run to a subject a route wants goes out as RMSGs, in order."""
    async with _cluster_server() as srv:
        p = await _route_peer(srv)
        await p.send(b"RS+ $G far\r\nPING\r\n")
        await p.read_until(b"PONG\r\n")
        pub = await _client(srv.port)
        await pub.roundtrip(_run_of(b"PUB far 2\r\n", 30))
        got = await p.read_until(b"RMSG $G far 2\r\n29\r\n")
        assert re.findall(rb"RMSG \$G far 2\r\n(\d\d)", got) == [b"%02d" % i for i in range(30)]
        route = next(iter(srv.cluster.routes.values()))  # type: ignore[union-attr]
        assert route.out_msgs == 30
        assert taken[0] == 1


async def test_runs_through_stream_and_service_imports(tmp_path: Any, taken: list[int]) -> None:
    """A run that reaches a stream import's subscription (its subject mapped) or a service
    import goes one by one, and every message arrives with the importer's subject."""
    from test_accounts import options

    def co(user: str) -> bytes:
        return b'CONNECT {"verbose":false,"pedantic":false,"user":"%s","pass":"%s"}\r\n' % (user.encode(), user.encode())

    async with Server(options(tmp_path)) as srv:
        a = await _client(srv.port, co("a"))
        b = await _client(srv.port, co("b"))
        await b.roundtrip(b"SUB from_a.public.news 1\r\nSUB private.x 2\r\nSUB from_a.public.q g 3\r\n")
        await a.roundtrip(b"SUB svc.echo 9\r\n")
        await a.roundtrip(_run_of(b"PUB public.news 2\r\n", 20))
        await a.roundtrip(_run_of(b"PUB private.x 2\r\n", 20))
        await a.roundtrip(_run_of(b"PUB public.q 2\r\n", 20))
        got = await b.roundtrip(b"")
        assert re.findall(rb"MSG from_a.public.news 1 2\r\n(\d\d)", got) == [b"%02d" % i for i in range(20)]
        assert re.findall(rb"MSG private.x 2 2\r\n(\d\d)", got) == [b"%02d" % i for i in range(20)]
        assert re.findall(rb"MSG from_a.public.q 3 2\r\n(\d\d)", got) == [b"%02d" % i for i in range(20)]
        await b.roundtrip(_run_of(b"PUB echo 2\r\n", 20))
        got = await a.roundtrip(b"")
        assert re.findall(rb"MSG svc.echo 9 2\r\n(\d\d)", got) == [b"%02d" % i for i in range(20)]
        assert taken[0] == 0
