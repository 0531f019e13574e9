"""JetStream consumer scenarios: a pull fetch and a push consumer reading a stored stream.

Both fill a stream (file storage, 16 B messages on `bench.js`) before the clock starts, then
time how long the messages take to arrive at a raw-socket client:

- `js_pull_fetch`: one pull request (`{"batch": N, "expires": 60s}`) on a durable pull
  consumer with explicit acks and no max_ack_pending limit (the server tracks every message
  as pending, as for any explicit-ack consumer; the client does not ack).
- `js_push`: a push consumer (ack none) created with its deliver subject already subscribed.

The client counts `MSG bench.js ` in what it reads (a C-level count per read).
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

from . import proto
from .servers import Server, machine_cpu

SUBJECT = b"bench.js"
NEEDLE = b"MSG bench.js "
STORAGE = os.environ.get("BENCH_JS_STORAGE", "file")  # file (the default of streams) or memory


class _Client:
    def __init__(self, srv: Server) -> None:
        self.sock, _ = proto.connect(srv.host, srv.port, name="bench-js")
        self.sock.sendall(b"SUB _INBOX.> 1\r\n")
        self.reader = proto.MsgReader()
        self.n = 0

    def request(self, subject: str, body: Any, timeout: float = 30.0) -> dict[str, Any]:
        self.n += 1
        inbox = f"_INBOX.r{self.n}"
        data = json.dumps(body).encode() if body is not None else b""
        self.sock.sendall(proto.pub_frame(subject, data, inbox))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frames, pings = self.reader.feed(proto.recv_some(self.sock))
            if pings:
                self.sock.sendall(proto.PONG * pings)
            for subj, _, payload in frames:
                if subj == inbox.encode():
                    out: dict[str, Any] = json.loads(payload)
                    if "error" in out:
                        raise proto.ProtocolError(f"{subject}: {out['error']}")
                    return out
        raise TimeoutError(f"no answer to {subject}")

    def close(self) -> None:
        self.sock.close()


def _fill(c: _Client, n: int) -> None:
    c.request("$JS.API.STREAM.CREATE.B", {"name": "B", "subjects": [SUBJECT.decode()], "storage": STORAGE})
    frame = proto.pub_frame(SUBJECT.decode(), proto.payload(16))
    chunk = frame * 1000
    for _ in range(n // 1000):
        c.sock.sendall(chunk)
    c.sock.sendall(frame * (n % 1000) + proto.PING)
    proto.wait_pong(c.sock, time.monotonic() + 60.0)
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:  # nats-server stores asynchronously
        if c.request("$JS.API.STREAM.INFO.B", None)["state"]["messages"] >= n:
            return
        time.sleep(0.05)
    raise TimeoutError("the stream did not fill")


def _count(c: _Client, n: int, timeout: float) -> float:
    """Read until `n` deliveries have arrived; the time the last one did."""
    seen = 0
    tail = b""
    sock = c.sock
    deadline = time.monotonic() + timeout
    while seen < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{seen} of {n} messages")
        data = tail + proto.recv_some(sock, 1 << 20)
        seen += data.count(NEEDLE)
        if b"PING\r\n" in data:
            sock.sendall(proto.PONG)
        tail = data[-(len(NEEDLE) - 1):]
    return time.monotonic()


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Clock:
    """Wall, server, client (this process) and machine CPU over the measured window."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.cpu0 = srv.cpu_seconds()
        self.gen0 = _self_cpu()
        self.m0 = machine_cpu()
        self.t0 = time.monotonic()

    def metrics(self, n: int, t1: float) -> dict[str, Any]:
        span = max(t1 - self.t0, 1e-9)
        srv_cpu = self.srv.cpu_seconds() - self.cpu0
        gen = _self_cpu() - self.gen0
        m1 = machine_cpu()
        busy, steal = m1[0] - self.m0[0], m1[2] - self.m0[2]
        return {
            "messages": n,
            "seconds": span,
            "msgs_per_s": n / span,
            "server_cpu_pct": 100.0 * srv_cpu / span,
            "gen_cpu_pct": 100.0 * gen / span,
            "gen_cpu_pct_busiest": 100.0 * gen / span,
            "machine_busy_pct": 100.0 * busy / span,
            "steal_pct": 100.0 * steal / span,
            "other_cpu_pct": 100.0 * (busy - srv_cpu - gen) / span,
            "server_peak_rss": self.srv.peak_rss_bytes(),
        }


def pull_fetch(servers: list[Server], quick: bool) -> dict[str, Any]:
    srv = servers[0]
    n = 20_000 if quick else 100_000
    c = _Client(srv)
    try:
        _fill(c, n)
        c.request("$JS.API.CONSUMER.CREATE.B.D", {"stream_name": "B", "config": {
            "durable_name": "D", "ack_policy": "explicit", "max_ack_pending": -1}})  # fmt: skip
        clock = _Clock(srv)
        req = json.dumps({"batch": n, "expires": 60_000_000_000}).encode()
        c.sock.sendall(proto.pub_frame("$JS.API.CONSUMER.MSG.NEXT.B.D", req, "_INBOX.fetch"))
        return clock.metrics(n, _count(c, n, 120.0))
    finally:
        c.close()


def push(servers: list[Server], quick: bool) -> dict[str, Any]:
    srv = servers[0]
    n = 20_000 if quick else 100_000
    c = _Client(srv)
    try:
        _fill(c, n)
        c.sock.sendall(b"SUB bench.dlv 2\r\n" + proto.PING)
        proto.wait_pong(c.sock, time.monotonic() + 10.0)
        clock = _Clock(srv)
        body = {"stream_name": "B", "config": {"durable_name": "P", "ack_policy": "none",
                                               "deliver_subject": "bench.dlv"}}  # fmt: skip
        c.sock.sendall(proto.pub_frame("$JS.API.CONSUMER.CREATE.B.P", json.dumps(body).encode(), "_INBOX.c"))
        return clock.metrics(n, _count(c, n, 120.0))
    finally:
        c.close()
