"""Fairness and slow-consumer scenarios: what a well-behaved client sees beside abusers.

`fairness`: a nats-py client doing request/reply every 5 ms (its latency p50/p99) while,
on the same server, 8 connections send fuzzed protocol, one publisher floods 1 KiB
messages as fast as the server takes them, and one subscriber to that flood never reads
(it is cut off as a slow consumer and comes back).

`slow_consumer_rate`: one publisher -> one fast subscriber, 1 KiB messages, with and
without a stalled subscriber on the same subject beside it: the fast subscriber's rate
should not change (the stalled one is cut off, not waited for).

Every worker is its own forked process with a wall-clock bound; sockets have timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import multiprocessing as mp
import os
import queue
import random
import select
import socket
import time
from typing import Any

from . import proto
from .servers import Server

CTX = mp.get_context("fork")
FLOOD_SUBJECT = "bench.flood"
REQ_SUBJECT = "bench.fair.req"


# -- workers -----------------------------------------------------------------------------------


NICE = int(os.environ.get("BENCH_FAIR_NICE", "0"))


def _nice() -> None:
    """BENCH_FAIR_NICE=10 runs the abusers niced: on a 2-core machine they compete with the
    measured client for CPU (on a real deployment they are elsewhere). By default they are
    not, as in the report this scenario reproduces."""
    if NICE:
        with contextlib.suppress(OSError):
            os.nice(NICE)


def _flooder(host: str, port: int, size: int, stop: Any, out: Any, nice: bool = True) -> None:
    """Publish `size`-byte messages as fast as the server accepts them (no flow control)."""
    if nice:
        _nice()
    sock, _ = proto.connect(host, port, name="flooder")
    frame = proto.pub_frame(FLOOD_SUBJECT, proto.payload(size))
    chunk = frame * max(1, (64 * 1024) // len(frame))
    per = chunk.count(b"PUB ")
    sent = 0
    t0 = time.monotonic()
    sock.settimeout(0.5)
    try:
        while not stop.is_set():
            try:
                sock.sendall(chunk)
                sent += per
            except TimeoutError:
                continue
            except OSError:
                break
    finally:
        out.put(("flood", sent, time.monotonic() - t0))
        sock.close()


def _stalled_connect(host: str, port: int, subject: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.settimeout(5.0)
    s.connect((host, port))
    buf = b""
    while b"\r\n" not in buf:
        buf += s.recv(4096)
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"stalled"}\r\nSUB ' + subject.encode() + b" 1\r\nPING\r\n")
    buf = b""
    while b"PONG\r\n" not in buf:
        buf += s.recv(4096)
    return s


def _stalled(host: str, port: int, subject: str, stop: Any, out: Any, ready: Any) -> None:
    """Subscribe and never read; when the server cuts us off (a write fails), come back."""
    _nice()
    cuts = 0
    s = _stalled_connect(host, port, subject)
    ready.set()
    try:
        while not stop.wait(0.05):
            try:
                s.send(b"PING\r\n")  # the server reads these; we never read its answers
            except OSError:
                cuts += 1
                s.close()
                try:
                    s = _stalled_connect(host, port, subject)
                except OSError:
                    time.sleep(0.05)
                    s = socket.socket()
    finally:
        out.put(("stalled", cuts, 0.0))
        s.close()


_FUZZ_VALID = [
    b"PING\r\n", b"PONG\r\n", b"SUB fz.a 1\r\n", b"SUB fz.* q 2\r\n", b"UNSUB 1\r\n", b"UNSUB 2 5\r\n",
    b"PUB fz.a 5\r\nhello\r\n", b"PUB fz.b reply.x 3\r\nabc\r\n", b"HPUB fz.a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
    b"SUB fz.> 3\r\n", b"PUB fz.c 0\r\n\r\n",
]  # fmt: skip


def _fuzz_bytes(rng: random.Random) -> bytes:
    """Mostly valid protocol, with some mutations (junk bytes, cut or doubled pieces)."""
    parts = []
    for _ in range(rng.randint(1, 40)):
        p = rng.choice(_FUZZ_VALID)
        r = rng.random()
        if r < 0.05:
            i = rng.randrange(len(p))
            p = p[:i] + bytes([rng.randrange(256)]) + p[i + 1 :]
        elif r < 0.08:
            p = p[: rng.randrange(len(p))]
        elif r < 0.10:
            p = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        parts.append(p)
    return b"".join(parts)


def _fuzzers(host: str, port: int, n: int, seed: int, stop: Any, out: Any) -> None:
    """`n` connections sending fuzzed protocol as fast as they can; reconnect when closed."""
    _nice()
    rng = random.Random(seed)
    conns: dict[int, socket.socket] = {}
    reconnects = 0
    sent = 0

    def dial() -> None:
        nonlocal reconnects
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2.0)
        try:
            s.connect((host, port))
            s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"name":"fuzz"}\r\n')
        except OSError:
            s.close()
            return
        s.setblocking(False)
        conns[s.fileno()] = s
        reconnects += 1

    for _ in range(n):
        dial()
    try:
        while not stop.is_set():
            if len(conns) < n:
                dial()
                continue
            socks = list(conns.values())
            r, w, _ = select.select(socks, socks, [], 0.05)
            for s in r:
                try:
                    if not s.recv(65536):
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                except OSError:
                    conns.pop(s.fileno(), None)
                    s.close()
            for s in w:
                if s.fileno() not in conns:
                    continue
                try:
                    sent += s.send(_fuzz_bytes(rng))
                except BlockingIOError:
                    pass
                except OSError:
                    conns.pop(s.fileno(), None)
                    s.close()
    finally:
        out.put(("fuzz", sent, float(reconnects)))
        for s in conns.values():
            s.close()


def _requester(host: str, port: int, interval: float, duration: float, out: Any) -> None:
    """nats-py: a responder and a requester; one request every `interval` seconds."""
    import nats

    async def main() -> None:
        url = f"nats://{host}:{port}"
        resp = await nats.connect(url, name="responder", allow_reconnect=False)
        req = await nats.connect(url, name="requester", allow_reconnect=False)

        async def answer(m: Any) -> None:
            await m.respond(b"ok")

        await resp.subscribe(REQ_SUBJECT, cb=answer)
        await resp.flush()
        lat: list[float] = []
        timeouts = 0
        end = time.monotonic() + duration
        nxt = time.monotonic()
        while time.monotonic() < end:
            t = time.perf_counter()
            try:
                await req.request(REQ_SUBJECT, b"ping", timeout=2.0)
                lat.append(time.perf_counter() - t)
            except Exception:
                timeouts += 1
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                nxt = time.monotonic()
        await req.close()
        await resp.close()
        out.put(("req", lat, float(timeouts)))

    try:
        asyncio.run(main())
    except Exception as e:  # reported, the orchestrator fails the run
        out.put(("error", repr(e), 0.0))


def _collect(out: Any, want: int, deadline: float) -> dict[str, Any]:
    got: dict[str, Any] = {}
    while len(got) < want and time.monotonic() < deadline:
        try:
            kind, a, b = out.get(timeout=0.25)
        except queue.Empty:
            continue
        if kind == "error":
            raise RuntimeError(f"worker failed: {a}")
        got[kind] = (a, b)
    return got


def _stop_procs(procs: list[Any]) -> None:
    end = time.monotonic() + 5.0
    for p in procs:
        p.join(timeout=max(0.0, end - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(timeout=5.0)


def _pct(lat: list[float], p: float) -> float:
    return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] * 1e6


# -- scenarios ---------------------------------------------------------------------------------


def fairness(servers: list[Server], duration: float, fuzz_conns: int = 8, seed: int = 1, flood: bool = True,
             stalled: bool = True) -> dict[str, Any]:
    srv = servers[0]
    out = CTX.Queue()
    stop = CTX.Event()
    ready = CTX.Event()
    procs = [CTX.Process(target=_requester, args=(srv.host, srv.port, 0.005, duration, out), daemon=True)]
    if stalled:
        st = CTX.Process(target=_stalled, args=(srv.host, srv.port, FLOOD_SUBJECT, stop, out, ready), daemon=True)
        st.start()
        procs.append(st)
        if not ready.wait(10.0):
            _stop_procs(procs)
            raise RuntimeError("the stalled subscriber did not connect")
    if flood:
        procs.append(CTX.Process(target=_flooder, args=(srv.host, srv.port, 1024, stop, out), daemon=True))
    if fuzz_conns:
        procs.append(CTX.Process(target=_fuzzers, args=(srv.host, srv.port, fuzz_conns, seed, stop, out), daemon=True))
    cpu0 = srv.cpu_seconds()
    t0 = time.monotonic()
    try:
        for p in procs:
            if p.pid is None:
                p.start()
        got = _collect(out, 1, t0 + duration + 30.0)  # the requester ends on its own
        stop.set()
        got.update(_collect(out, len(procs) - 1, time.monotonic() + 10.0))
    finally:
        stop.set()
        _stop_procs(procs)
    span = time.monotonic() - t0
    if "req" not in got:
        raise RuntimeError("the requester did not finish")
    lat = sorted(got["req"][0])
    if not lat:
        raise RuntimeError("no request completed")
    flood = got.get("flood", (0, 1.0))
    return {
        "requests": len(lat),
        "timeouts": int(got["req"][1]),
        "p50_us": _pct(lat, 50),
        "p90_us": _pct(lat, 90),
        "p99_us": _pct(lat, 99),
        "max_us": lat[-1] * 1e6,
        "flood_msgs_per_s": flood[0] / max(flood[1], 1e-9),
        "stalled_cut_offs": got.get("stalled", (0, 0))[0],
        "fuzz_bytes": got.get("fuzz", (0, 0))[0],
        "fuzz_connections": got.get("fuzz", (0, 0))[1],
        "server_cpu_pct_of_core": 100.0 * (srv.cpu_seconds() - cpu0) / span,
    }


def _counting_sub(host: str, port: int, subject: str, frame_len: int, stop: Any, out: Any, ready: Any) -> None:
    sock, _ = proto.connect(host, port, name="fast-sub")
    sock.sendall(b"SUB " + subject.encode() + b" 1\r\nPING\r\n")
    proto.wait_pong(sock, time.monotonic() + 10.0)
    ready.set()
    buf = bytearray(1 << 18)
    total = 0
    sock.settimeout(0.2)
    t_first = t_last = 0.0
    try:
        while not stop.is_set():
            try:
                n = sock.recv_into(buf)
            except TimeoutError:
                continue
            except OSError as e:
                if e.errno in (errno.EAGAIN,):
                    continue
                break
            if not n:
                break
            t_last = time.monotonic()
            if not t_first:
                t_first = t_last
            total += n
    finally:
        out.put(("sub", total / frame_len, max(t_last - t_first, 1e-9)))
        sock.close()


def slow_consumer_rate(servers: list[Server], duration: float, stalled: bool) -> dict[str, Any]:
    """The fast subscriber's rate beside the flood, with or without a stalled subscriber."""
    srv = servers[0]
    out = CTX.Queue()
    stop = CTX.Event()
    sub_ready = CTX.Event()
    st_ready = CTX.Event()
    frame_len = proto.msg_frame_len(FLOOD_SUBJECT, 1, 1024)
    procs = [CTX.Process(target=_counting_sub, args=(srv.host, srv.port, FLOOD_SUBJECT, frame_len, stop, out, sub_ready),
                         daemon=True)]
    if stalled:
        procs.append(CTX.Process(target=_stalled, args=(srv.host, srv.port, FLOOD_SUBJECT, stop, out, st_ready), daemon=True))
    else:
        st_ready.set()
    cpu0 = srv.cpu_seconds()
    try:
        for p in procs:
            p.start()
        if not (sub_ready.wait(10.0) and st_ready.wait(10.0)):
            raise RuntimeError("subscribers did not connect")
        fl = CTX.Process(target=_flooder, args=(srv.host, srv.port, 1024, stop, out), daemon=True)
        procs.append(fl)
        t0 = time.monotonic()
        fl.start()
        with contextlib.suppress(Exception):
            stop.wait(duration)
        stop.set()
        got = _collect(out, len(procs), time.monotonic() + 10.0)
    finally:
        stop.set()
        _stop_procs(procs)
    span = time.monotonic() - t0
    n, dt = got.get("sub", (0, 1.0))
    return {
        "fast_sub_msgs_per_s": n / dt,
        "flood_msgs_per_s": got.get("flood", (0, 1.0))[0] / max(got.get("flood", (0, 1.0))[1], 1e-9),
        "stalled_cut_offs": got.get("stalled", (0, 0))[0] if stalled else 0,
        "server_cpu_pct_of_core": 100.0 * (srv.cpu_seconds() - cpu0) / span,
    }


# -- many connections --------------------------------------------------------------------------


def round_trips(host: str, port: int, n: int, timeout: float = 10.0) -> list[float]:
    """`n` request/reply round trips of a raw client to itself (SUB, then PUB and read the
    MSG, one at a time): seconds each. Every one must come back, in order."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB good.rr 1\r\nPING\r\n')
        buf = b""
        while not buf.endswith(b"PONG\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("closed before PONG")
            buf += chunk
        out = []
        for i in range(n):
            body = b"%06d" % i
            want = b"MSG good.rr 1 6\r\n" + body + b"\r\n"
            t = time.perf_counter()
            s.sendall(b"PUB good.rr 6\r\n" + body + b"\r\n")
            buf = b""
            while len(buf) < len(want):
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("the client was closed")
                buf += chunk
            out.append(time.perf_counter() - t)
            if buf != want:
                raise RuntimeError(f"unexpected reply {buf[:200]!r}")
        return out
    finally:
        s.close()


def open_subscribed(host: str, port: int, n: int, deadline: float) -> list[socket.socket]:
    """`n` client connections, each with CONNECT, one SUB (a subject of its own) and a
    PING answered; in batches, so the server's backlog and our buffers stay small."""
    socks: list[socket.socket] = []
    try:
        for start in range(0, n, 250):
            batch = []
            for i in range(start, min(n, start + 250)):
                s = socket.create_connection((host, port), timeout=10)
                s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB conn.%d 1\r\nPING\r\n' % i)
                batch.append(s)
                socks.append(s)
            for s in batch:
                buf = b""
                while not buf.endswith(b"PONG\r\n"):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"opening connections stalled after {len(socks)}")
                    chunk = s.recv(65536)
                    if not chunk:
                        raise RuntimeError(f"connection {len(socks)} closed: {buf[-200:]!r}")
                    buf += chunk
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def _raise_fd_limit(n: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _rss_settled(srv: Server) -> int:
    time.sleep(0.5)
    prev = srv.rss_bytes()
    for _ in range(10):
        time.sleep(0.1)
        cur = srv.rss_bytes()
        if abs(cur - prev) < 64 * 1024:
            return cur
        prev = cur
    return prev


def many_connections(servers: list[Server], n: int, rounds: int = 500) -> dict[str, Any]:
    """Request/reply latency of one client, alone and beside `n` subscribed connections;
    the server's memory per connection."""
    srv = servers[0]
    _raise_fd_limit(n + 256)
    base_lat = sorted(round_trips(srv.host, srv.port, rounds))
    rss0 = _rss_settled(srv)
    t0 = time.monotonic()
    socks = open_subscribed(srv.host, srv.port, n, t0 + 300)
    try:
        opened = time.monotonic() - t0
        rss1 = _rss_settled(srv)
        lat = sorted(round_trips(srv.host, srv.port, rounds))
    finally:
        for s in socks:
            s.close()
    return {
        "connections": n,
        "open_s": opened,
        "bytes_per_conn": (rss1 - rss0) / n,
        "p50_us": _pct(lat, 50),
        "p99_us": _pct(lat, 99),
        "alone_p50_us": _pct(base_lat, 50),
        "alone_p99_us": _pct(base_lat, 99),
    }
