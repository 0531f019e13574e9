"""Differential fuzzing of the route protocol: the same random sessions from a fake route peer to
pynats-server and nats-server 2.14.

A session has three phases. (1) An ordinary client connects to the server's client port and
subscribes to some of the session's subjects (plain, wildcard, one queue member per group).
(2) A fake route peer connects to the server's cluster port, reads its INFO and sends CONNECT
and INFO as a route (a fresh server id, the fixed cluster name, no `route_pool_size`, so 2.14
treats it as a server without pooling and keeps one connection for every account), then mostly
valid route operations: RS+ / RS- with and without queue and weight, RMSG with and without a
reply and with queue lists (`+ reply q1 q2`, `| q1`), HMSG, PING / PONG, with some mutations (an
unknown op, bad arguments, a payload of the wrong size, an invalid subject, an RMSG for an
unknown account), cut into random reads. (3) The client subscribes, unsubscribes and publishes
on the session's subjects, so the server's RS+ / RS- / RMSG towards the peer show.

What the peer receives and what the client receives are normalised and compared, phase by
phase, with whether and when each connection was closed. Normalised: the server's INFO reduced
to `INFO` (later gossip INFOs, about other sessions' peers, dropped), the server's own PINGs
dropped (their timing is a timer's), the system account's frames (`$SYS`) dropped, frames for
other sessions' subjects dropped (every subject starts with the session's token, so sessions run
side by side), each run of RS+ sorted (the order of an interest flood is not specified), the
queue names of an RMSG sorted, and each run of client messages sorted as in difffuzz.py.

`python -m conformance.difffuzz_routes --seed 7 --sessions 300` reproduces a run; a difference
prints its seed, the peer's bytes and both normalised replies. Known differences
(conformance/deviations.toml, cases named `difffuzz.route.<kind>`) are not generated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import difffuzz

CLUSTER = "FZ"
ARGS = ("--cluster", "nats://127.0.0.1:-1", "--cluster_name", CLUSTER)
QUIET = 0.25
PHASE_TIMEOUT = 4.0
HDR = b"NATS/1.0\r\nK: v\r\n\r\n"


@dataclass
class RouteSession:
    seed: int
    tok: str
    peer_id: str
    client_pre: bytes  # phase 1, client
    peer: bytes  # phase 2, the peer's bytes after its handshake
    cuts: list[int] = field(default_factory=list)
    client_post: bytes = b""  # phase 3, client


def _subject(rng: random.Random, tok: str, wild: bool) -> str:
    leaves = ["a", "b", "a.b", "c.d"]
    if wild:
        leaves += ["*", ">", "a.*"]
    return f"{tok}.{rng.choice(leaves)}"


def _body(rng: random.Random) -> bytes:
    n = rng.choice([0, 1, 5, 40, rng.randint(0, 300)])
    return bytes(rng.choice(b"abcxyz0123 ") for _ in range(n))


# Queue names: the peer's own groups (its RS+) are q1..q3; an RMSG's queue list names the
# client's groups (cq1, cq2) or one nobody has (cqx), never the peer's own. deviations.toml
# difffuzz.route.queue_failover: for a listed group with no local member, nats-server 2.14 sends
# the message on to a route that has a member, even back to the route it came from.
PEER_QUEUES = ["q1", "q2", "q3"]
CLIENT_QUEUES = ["cq1", "cq2"]


def _queues(rng: random.Random) -> list[str]:
    return rng.sample([*CLIENT_QUEUES, "cqx"], rng.randint(1, 2))


def _route_op(rng: random.Random, tok: str) -> bytes:
    r = rng.random()
    if r < 0.25:
        if rng.random() < 0.35:
            return f"RS+ $G {_subject(rng, tok, True)} {rng.choice(PEER_QUEUES)} {rng.randint(1, 4)}\r\n".encode()
        return f"RS+ $G {_subject(rng, tok, True)}\r\n".encode()
    if r < 0.35:
        q = f" {rng.choice(PEER_QUEUES)}" if rng.random() < 0.35 else ""
        return f"RS- $G {_subject(rng, tok, True)}{q}\r\n".encode()
    if r < 0.8:
        subj = _subject(rng, tok, False)
        reply = f"{tok}.r{rng.randint(1, 3)}" if rng.random() < 0.3 else ""
        mid = f" {reply}" if reply else ""
        if rng.random() < 0.3:
            qs = " ".join(_queues(rng))
            mid = f" + {reply} {qs}" if reply else f" | {qs}"
        body = _body(rng)
        if rng.random() < 0.3:
            return f"HMSG $G {subj}{mid} {len(HDR)} {len(HDR) + len(body)}\r\n".encode() + HDR + body + b"\r\n"
        return f"RMSG $G {subj}{mid} {len(body)}\r\n".encode() + body + b"\r\n"
    return rng.choice([b"PING\r\n", b"PONG\r\n"])


def _route_mutation(rng: random.Random, tok: str) -> bytes:
    t = tok.encode()
    return rng.choice([
        b"FOO bar\r\n",
        b"RS+\r\n",
        b"RS+ $G\r\n",
        b"RS+ $G " + t + b".a q1\r\n",
        b"RS+ $G " + t + b".a q1 x\r\n",
        b"RS- $G " + t + b".a q1 5\r\n",
        b"RS-\r\n",
        b"RMSG\r\n",
        b"RMSG $G " + t + b".a\r\n",
        b"RMSG $G " + t + b".a x\r\n",
        b"RMSG $G " + t + b".a 3\r\nabcdef\r\n",
        b"RMSG $G " + t + b".a * cq1 2\r\nhi\r\n",
        b"HMSG $G " + t + b".a 10 5\r\n",
        b"RMSG NOACC " + t + b".a 2\r\nhi\r\n",
        b"RS+ NOACC " + t + b".a\r\n",
        b"RS+ $G " + t + b"..a\r\n",
        b"RMSG $G " + t + b"..a 2\r\nhi\r\n",
        b"MSG " + t + b".a 1 2\r\nhi\r\n",
    ])  # fmt: skip


def _client_op(rng: random.Random, tok: str, sids: list[int], queues: list[str]) -> bytes:
    r = rng.random()
    if r < 0.35:
        sid = rng.randint(1, 12)
        sids.append(sid)
        # At most one member per group: which member gets a message is random on both servers.
        free = [q for q in CLIENT_QUEUES if q not in queues]
        q = ""
        if free and rng.random() < 0.25:
            queues.append(free[0])
            q = f" {free[0]}"
        return f"SUB {_subject(rng, tok, True)}{q} {sid}\r\n".encode()
    if r < 0.5 and sids:
        return f"UNSUB {rng.choice(sids)}\r\n".encode()
    body = _body(rng)
    reply = f" {tok}.r{rng.randint(1, 3)}" if rng.random() < 0.3 else ""
    if rng.random() < 0.3:
        return f"HPUB {_subject(rng, tok, False)}{reply} {len(HDR)} {len(HDR) + len(body)}\r\n".encode() + HDR + body + b"\r\n"
    return f"PUB {_subject(rng, tok, False)}{reply} {len(body)}\r\n".encode() + body + b"\r\n"


def make_session(seed: int) -> RouteSession:
    rng = random.Random(seed)
    tok = f"rz{seed}"
    peer_id = ("NFZ" + f"{seed:x}".upper() + "X" * 56)[:56]
    connect = b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n'
    sids: list[int] = []
    queues: list[str] = []  # the client's queue groups: one member each, even after an UNSUB
    # Phase 1 only subscribes: its publishes would go nowhere (no peer yet).
    pre_ops = [op for op in (_client_op(rng, tok, sids, queues) for _ in range(rng.randint(0, 5))) if op.startswith(b"SUB")]
    client_pre = connect + b"".join(pre_ops) + b"PING\r\n"
    parts = []
    for _ in range(rng.randint(1, 20)):
        parts.append(_route_op(rng, tok))
        if rng.random() < 0.05:
            parts.append(_route_mutation(rng, tok))
    parts.append(b"PING\r\n")
    peer = b"".join(parts)
    cuts = sorted(rng.randrange(len(peer)) for _ in range(rng.randint(0, 3)))
    post = b"".join(_client_op(rng, tok, sids, queues) for _ in range(rng.randint(1, 10))) + b"PING\r\n"
    return RouteSession(seed, tok, peer_id, client_pre, peer, cuts, post)


# -- running -----------------------------------------------------------------------------------


class _Reader:
    """A socket's input gathered by a task; `<CLOSED>` appended at EOF or reset."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.closed = False
        self.changed = time.monotonic()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(self.sock, 65536)
            except OSError:
                data = b""
            self.changed = time.monotonic()
            if not data:
                self.buf += b"<CLOSED>"
                self.closed = True
                return
            self.buf += data

    def take(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out


async def _quiet(*readers: _Reader, timeout: float = PHASE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        if all(time.monotonic() - r.changed >= QUIET for r in readers):
            return


async def _until(cond: Callable[[], bool], timeout: float = PHASE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        await asyncio.get_running_loop().sock_sendall(sock, data)
        return True
    except OSError:
        return False


async def _connect(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


def handshake(s: RouteSession, name: str) -> bytes:
    co = {"echo": True, "verbose": False, "pedantic": False, "tls_required": False, "headers": True,
          "name": s.peer_id, "cluster": CLUSTER}
    # port 1: nothing listens there, so a server that dials the peer back fails at once.
    info = {"server_id": s.peer_id, "server_name": f"fz-{name}-{s.seed}", "version": "2.9.10", "proto": 2,
            "go": "python", "host": "127.0.0.1", "port": 1, "headers": True, "max_payload": 1048576,
            "cluster": CLUSTER}
    return (b"CONNECT " + json.dumps(co, separators=(",", ":")).encode() + b"\r\n"
            + b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n")


async def run_session(client_port: int, cluster_port: int, name: str, s: RouteSession) -> tuple[bytes, bytes]:
    """The session on one server: (what the peer received, what the client received), phases
    separated by `<PHASE>`."""
    csock = await _connect(client_port)
    client = _Reader(csock)
    psock: socket.socket | None = None
    peer: _Reader | None = None
    try:
        await _send(csock, s.client_pre)
        deadline = time.monotonic() + PHASE_TIMEOUT
        while b"PONG\r\n" not in client.buf and not client.closed and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        c_out = client.take() + b"<PHASE>"
        psock = await _connect(cluster_port)
        peer = _Reader(psock)
        while b"\r\n" not in peer.buf and not peer.closed and time.monotonic() < deadline + PHASE_TIMEOUT:
            await asyncio.sleep(0.01)
        data = handshake(s, name) + s.peer
        off = len(data) - len(s.peer)
        bounds = [0, *(off + c for c in s.cuts), len(data)]
        for a, b in zip(bounds, bounds[1:], strict=False):
            if not await _send(psock, data[a:b]):
                break
            await asyncio.sleep(0.005)
        # The PONG to the session's last PING (unless the server closed): everything before it
        # has been handled; then quiet, for the deliveries to the client.
        pings = s.peer.split(b"\r\n").count(b"PING")
        await _until(lambda: peer.closed or peer.buf.count(b"PONG\r\n") >= pings)
        await _quiet(peer, client)
        p_out = peer.take() + b"<PHASE>"
        c_out += client.take() + b"<PHASE>"
        await _send(csock, s.client_post)
        await _until(lambda: client.closed or b"PONG\r\n" in client.buf)
        await _quiet(peer, client)
        p_out += peer.take()
        c_out += client.take()
    finally:
        tasks = [r.task for r in (client, peer) if r is not None]
        for t in tasks:
            t.cancel()
        # Let the cancellations unregister the sockets before they close (and their fds are reused).
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)
        csock.close()
        if psock is not None:
            psock.close()
    return p_out, c_out


def _frames(raw: bytes) -> list[tuple[bytes, bytes]]:
    """(control line, payload) pairs; markers as lines."""
    out: list[tuple[bytes, bytes]] = []
    i = 0
    while i < len(raw):
        for mark in (b"<CLOSED>", b"<PHASE>"):
            if raw.startswith(mark, i):
                out.append((mark, b""))
                i += len(mark)
                break
        else:
            eol = raw.find(b"\r\n", i)
            nxt = min((j for j in (raw.find(b"<CLOSED>", i), raw.find(b"<PHASE>", i)) if j >= 0), default=-1)
            if eol < 0 or (0 <= nxt < eol):
                end = nxt if nxt >= 0 else len(raw)
                out.append((b"<PARTIAL " + raw[i:end] + b">", b""))
                i = end
                continue
            line = raw[i:eol]
            i = eol + 2
            body = b""
            if line.startswith((b"RMSG ", b"HMSG ", b"MSG ")):
                try:
                    size = int(line.rsplit(b" ", 1)[1])
                except ValueError:
                    size = 0
                body = raw[i : i + size]
                i += size + 2
            out.append((line, body))
    return out


def normalise_peer(raw: bytes, tok: str) -> list[str]:
    frames: list[str] = []
    run: list[str] = []
    seen_info = False
    mine = tok.encode() + b"."

    def flush() -> None:
        frames.extend(sorted(run))
        run.clear()

    for line, body in _frames(raw):
        parts = line.split(b" ")
        if line.startswith(b"INFO "):
            if not seen_info:
                flush()
                frames.append("INFO")
            seen_info = True
            continue
        if line == b"PING":
            continue
        if parts[0] in (b"RS+", b"RS-", b"RMSG", b"HMSG") and len(parts) > 2:
            if parts[1] == b"$SYS" or not parts[2].startswith(mine):
                continue
        if parts[0] == b"RS+":
            run.append(line.decode(errors="replace"))
            continue
        flush()
        if parts[0] in (b"RMSG", b"HMSG") and len(parts) > 4 and parts[3] in (b"+", b"|"):
            nsize = 2 if parts[0] == b"HMSG" else 1
            lead = 5 if parts[3] == b"+" else 4
            parts = [*parts[:lead], *sorted(parts[lead:-nsize]), *parts[-nsize:]]
            line = b" ".join(parts)
        text = line.decode(errors="replace")
        frames.append(text + ("|" + body.decode(errors="replace") if body else ""))
    flush()
    return frames


def normalise_client(raw: bytes) -> list[str]:
    # The server's PINGs come from its timer (nats-server 2.14 sends a client its first PING
    # a moment after the connection starts): not compared, as on the peer's side.
    return [f for f in difffuzz.normalise(raw.replace(b"<PHASE>", b"PHASE\r\n")) if f not in ("INFO", "PING")]


@dataclass
class RouteDifference:
    session: RouteSession
    pynats: tuple[list[str], list[str]]
    go: tuple[list[str], list[str]]

    def describe(self) -> str:
        import difflib

        s = self.session
        out = [f"route session seed {s.seed} (cuts {s.cuts}):", f"client before: {s.client_pre!r}",
               f"peer: {s.peer!r}", f"client after: {s.client_post!r}"]
        for what, a, b in (("peer", self.go[0], self.pynats[0]), ("client", self.go[1], self.pynats[1])):
            if a != b:
                out.append(f"-- what the {what} received:")
                out += difflib.unified_diff(a, b, "nats-server", "pynats-server", lineterm="", n=2)
        return "\n".join(out)


async def compare(srv: difffuzz.Servers, seeds: list[int], parallel: int = 4,
                  deadline: float | None = None) -> tuple[int, list[RouteDifference]]:
    diffs: list[RouteDifference] = []
    sem = asyncio.Semaphore(parallel)
    done = 0

    async def one(seed: int) -> None:
        nonlocal done
        async with sem:
            if deadline is not None and time.monotonic() > deadline:
                return
            s = make_session(seed)
            (pa, ca), (pb, cb) = await asyncio.gather(
                run_session(srv.py.port, srv.py.cluster_port, "py", s),
                run_session(srv.go.port, srv.go.cluster_port, "go", s),
            )
            a = (normalise_peer(pa, s.tok), normalise_client(ca))
            b = (normalise_peer(pb, s.tok), normalise_client(cb))
            if a != b:
                diffs.append(RouteDifference(s, a, b))
            done += 1

    await asyncio.gather(*(one(seed) for seed in seeds))
    return done, diffs


def servers() -> difffuzz.Servers:
    return difffuzz.Servers(difffuzz.CONF, ARGS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance.difffuzz_routes",
                                 description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "1")), help="first session seed")
    ap.add_argument("--sessions", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=300.0, help="stop after this long")
    ap.add_argument("--parallel", type=int, default=4)
    args = ap.parse_args(argv)
    with servers() as srv:
        t0 = time.monotonic()
        n, diffs = asyncio.run(compare(srv, list(range(args.seed, args.seed + args.sessions)), args.parallel,
                                       t0 + args.seconds))
        for d in sorted(diffs, key=lambda d: d.session.seed):
            print(d.describe(), end="\n\n")
        alive = srv.py.proc.poll() is None
    print(f"{n} route sessions in {time.monotonic() - t0:.1f} s, {len(diffs)} differences; pynats-server "
          f"{'still running' if alive else 'EXITED'}")
    return 1 if diffs or not alive else 0


if __name__ == "__main__":
    sys.exit(main())
