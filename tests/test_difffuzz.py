"""Differential fuzzing, bounded for CI: seeded random client sessions to pynats-server and
nats-server 2.14 (conformance/difffuzz.py), replies compared after normalising.

`make fuzz` runs the same for longer (FUZZ_SECONDS, FUZZ_SEED); a difference prints the
session's seed, bytes and both replies, and `python -m conformance.difffuzz --seed N
--sessions 1` replays it.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from conformance import difffuzz

SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
SESSIONS = 1500
SECONDS = 25.0


@pytest.mark.timeout(120)
def test_sessions_answered_as_nats_server() -> None:
    if difffuzz.go_path() is None:
        pytest.skip("nats-server is not installed")
    with difffuzz.Servers() as srv:
        t0 = time.monotonic()
        n, diffs = asyncio.run(
            difffuzz.compare(srv.py.port, srv.go.port, list(range(SEED, SEED + SESSIONS)), deadline=t0 + SECONDS)
        )
        assert srv.py.proc.poll() is None, "pynats-server exited"
    assert n >= 200, f"only {n} sessions ran in {SECONDS} s"
    assert not diffs, "\n\n".join(d.describe() for d in diffs[:5])


def test_sessions_are_reproducible() -> None:
    a, b = difffuzz.make_session(12345), difffuzz.make_session(12345)
    assert (a.data, a.cuts) == (b.data, b.cuts)
    assert difffuzz.make_session(12346).data != a.data


def test_normalise_sorts_message_runs_and_reduces_info() -> None:
    raw = (b'INFO {"server_id":"X"} \r\n+OK\r\nMSG a 2 1\r\nx\r\nMSG a 1 1\r\nx\r\nPONG\r\n'
           b"HMSG r 7 36 36\r\nNATS/1.0 503\r\nNats-Subject: fz.a\r\n\r\n\r\n<CLOSED>")
    assert difffuzz.normalise(raw) == [
        "INFO", "+OK", "MSG a 1 1|x", "MSG a 2 1|x", "PONG",
        "HMSG r <sid> 36 36|NATS/1.0 503\r\nNats-Subject: fz.a\r\n\r\n", "<CLOSED>",
    ]  # fmt: skip
