"""Differential fuzzing of the route protocol, bounded for CI: seeded random sessions from a fake
route peer (plus a client on the same server) to pynats-server and nats-server 2.14
(conformance/difffuzz_routes.py), what the peer and the client receive compared after normalising.

`make fuzz` runs the same for longer; a difference prints the session's seed, bytes and both
replies, and `python -m conformance.difffuzz_routes --seed N --sessions 1` replays it.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from conformance import difffuzz, difffuzz_routes

SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
SESSIONS = 400
SECONDS = 20.0


@pytest.mark.timeout(120)
def test_route_sessions_answered_as_nats_server() -> None:
    if difffuzz.go_path() is None:
        pytest.skip("nats-server is not installed")
    with difffuzz_routes.servers() as srv:
        t0 = time.monotonic()
        n, diffs = asyncio.run(difffuzz_routes.compare(srv, list(range(SEED, SEED + SESSIONS)), deadline=t0 + SECONDS))
        assert srv.py.proc.poll() is None, "pynats-server exited"
    assert n >= 30, f"only {n} route sessions ran in {SECONDS} s"
    assert not diffs, "\n\n".join(d.describe() for d in diffs[:5])


def test_route_sessions_are_reproducible() -> None:
    a, b = difffuzz_routes.make_session(777), difffuzz_routes.make_session(777)
    assert (a.client_pre, a.peer, a.cuts, a.client_post) == (b.client_pre, b.peer, b.cuts, b.client_post)
    assert difffuzz_routes.make_session(778).peer != a.peer


def test_route_sessions_leave_out_the_queue_failover_deviation() -> None:
    """deviations.toml difffuzz.route.queue_failover: an RMSG's queue list never names one of
    the peer's own groups."""
    for seed in range(300):
        s = difffuzz_routes.make_session(seed)
        for line in s.peer.split(b"\r\n"):
            parts = line.split(b" ")
            if parts[0] in (b"RMSG", b"HMSG") and len(parts) > 4 and parts[3] in (b"+", b"|"):
                assert not set(parts) & {q.encode() for q in difffuzz_routes.PEER_QUEUES}, line


def test_normalise_peer() -> None:
    raw = (b'INFO {"server_id":"X"} \r\nRS+ $SYS $SYS.REQ.x\r\nRS+ $G t.b\r\nRS+ $G other.a\r\nRS+ $G t.a\r\n'
           b"PING\r\nPONG\r\nRMSG $G t.a + r q2 q1 2\r\nhi\r\nINFO {}\r\nRMSG $SYS x 1\r\nx\r\n<PHASE><CLOSED>")
    assert difffuzz_routes.normalise_peer(raw, "t") == [
        "INFO", "RS+ $G t.a", "RS+ $G t.b", "PONG", "RMSG $G t.a + r q1 q2 2|hi", "<PHASE>", "<CLOSED>",
    ]  # fmt: skip
