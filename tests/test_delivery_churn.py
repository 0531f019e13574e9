"""Delivery stays correct while subscriptions churn: the cached match results and the
delivery plans built from them (delivery.py) against a naive oracle, over a live server.

Random SUB (wildcards, queue groups), UNSUB, UNSUB-with-max and PUB operations on three raw
connections, each followed by a PING/PONG round trip on every connection so the order is
fixed; after each PUB every connection's MSGs must be exactly what the oracle predicts
(for a queue group: exactly one member).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from roundtrip_conn import Conn

from pynats_server import Server
from pynats_server.protocol.subjects import match_literal

PATTERNS = [b"a.x", b"a.y", b"b.x", b"a.*", b"*.x", b"a.>", b">", b"*.*"]
SUBJECTS = [b"a.x", b"a.y", b"b.x", b"b.y"]
QUEUES = [None, None, b"q1", b"q2"]

op = st.one_of(
    st.tuples(st.just("sub"), st.integers(0, 2), st.sampled_from(PATTERNS), st.sampled_from(QUEUES)),
    st.tuples(st.just("unsub"), st.integers(0, 2), st.integers(0, 7), st.integers(-1, 3)),
    st.tuples(st.just("pub"), st.integers(0, 2), st.sampled_from(SUBJECTS), st.just(None)),
    st.tuples(st.just("pub"), st.integers(0, 2), st.sampled_from(SUBJECTS), st.just(None)),
)


@dataclass
class OSub:
    conn: int
    sid: int
    pattern: bytes
    queue: bytes | None
    max: int = 0
    got: int = 0


async def run_ops(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    async with Server() as srv:
        conns = []
        for _ in range(3):
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)
            await r.readline()  # INFO
            c = Conn(r, w)
            await c.roundtrip(b'CONNECT {"verbose":false,"pedantic":false,"echo":true}\r\n')
            conns.append(c)
        subs: dict[tuple[int, int], OSub] = {}
        next_sid = [1, 1, 1]
        for kind, ci, a, b in ops:
            if kind == "sub":
                sid = next_sid[ci]
                next_sid[ci] += 1
                subs[(ci, sid)] = OSub(ci, sid, a, b)
                q = b" " + b if b else b""
                await conns[ci].roundtrip(b"SUB %s%s %d\r\n" % (a, q, sid))
            elif kind == "unsub":
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
            else:
                own = await conns[ci].roundtrip(b"PUB %s 2\r\nhi\r\n" % a)
                got = [await c.roundtrip(b"") for c in conns]
                got[ci] = own + got[ci]
                received = {(i, int(m)) for i, g in enumerate(got) for m in re.findall(rb"MSG \S+ (\d+) 2\r\nhi\r\n", g)}
                plain = {k for k, s in subs.items() if s.queue is None and match_literal(a, s.pattern)}
                groups: dict[bytes, set[tuple[int, int]]] = {}
                for k, s in subs.items():
                    if s.queue is not None and match_literal(a, s.pattern):
                        groups.setdefault(s.queue, set()).add(k)
                assert plain <= received, (a, plain, received)
                for members in groups.values():
                    assert len(members & received) == 1, (a, members, received)
                assert received <= plain | set().union(*groups.values()), (a, received)
                assert sum(len(g) for g in got) == sum(len(m) for m in re.findall(rb"MSG \S+ \d+ 2\r\nhi\r\n", b"".join(got)))
                for k in received:
                    s = subs[k]
                    s.got += 1
                    if s.max and s.got >= s.max:
                        del subs[k]
        for c in conns:
            c.w.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=5, max_size=30))
def test_delivery_matches_the_oracle_under_churn(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    asyncio.run(run_ops(ops))
