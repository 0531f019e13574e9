"""Helpers shared by the Python cases (no cases here)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

from ..conn import Conn, Mismatch
from ..context import CaseContext
from ..targets import ServerProcess

DEFAULT_CONNECT = {"verbose": False, "pedantic": False}


async def client(
    ctx: CaseContext,
    server: ServerProcess,
    name: str = "c",
    connect: dict[str, Any] | None = None,
) -> Conn:
    """A raw client connection: INFO read, CONNECT sent, PING/PONG done."""
    c = await ctx.client(server, name)
    await c.expect_info()
    opts = dict(DEFAULT_CONNECT)
    opts.update(connect or {})
    await c.send(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
    await c.expect_bytes(b"PONG\r\n")
    if opts.get("protocol") == 1:
        # 2.14 sends an INFO (connect_info) after the first PONG: drop it if it comes.
        await drop_info(c, 0.15)
    return c


async def drop_info(c: Conn, quiet: float) -> None:
    """Consume INFO lines that arrive within ``quiet`` seconds."""
    while True:
        try:
            await c.expect_nothing(quiet)
            return
        except Mismatch:
            if c.pending.startswith(b"INFO "):
                await c.read_line()
                continue
            raise


async def flush(c: Conn) -> None:
    await c.send(b"PING\r\n")
    await c.expect_bytes(b"PONG\r\n")


async def until_pong(c: Conn, timeout: float = 5.0) -> bytes:
    """Send PING; return every frame received before the PONG (which is consumed)."""
    await c.send(b"PING\r\n")
    out = bytearray()
    while True:
        frame = await c.read_frame(timeout)
        if frame == b"PONG\r\n":
            return bytes(out)
        out += frame


async def read_msgs(c: Conn, n: int, timeout: float = 5.0) -> list[tuple[str, bytes]]:
    """Read n MSG frames; return (sid, payload) pairs."""
    out = []
    for _ in range(n):
        frame = await c.read_frame(timeout)
        head, _, rest = frame.partition(b"\r\n")
        parts = head.split()
        if not parts or parts[0] not in (b"MSG", b"HMSG"):
            raise Mismatch("expected a MSG frame", b"MSG ...", frame, c.name)
        out.append((parts[2].decode(), rest[:-2]))
    return out


# ---------------------------------------------------------------------------- clusters
async def start_cluster(
    ctx: CaseContext,
    kinds: Sequence[str],
    topology: str = "seed",
    extra_args: Sequence[str] = (),
    cluster_name: str = "CONF",
    config: str | None = None,
) -> list[ServerProcess]:
    """Start servers of the given kinds, each with monitoring (and ``config``, if given).

    topology: ``seed`` (all route to the first), ``chain`` (each routes to the previous one).
    """
    servers: list[ServerProcess] = []
    for i, kind in enumerate(kinds):
        args = list(extra_args)
        if i > 0:
            peer = servers[0] if topology == "seed" else servers[i - 1]
            args += ["--routes", peer.cluster_url]
        servers.append(
            await ctx.start_server(
                kind,
                args=args,
                cluster=True,
                cluster_name=cluster_name,
                http=True,
                config=config,
            )
        )
    return servers


async def server_id(ctx: CaseContext, s: ServerProcess) -> str:
    return str((await ctx.http_json(s, "/varz"))["server_id"])


async def routes_by_remote(
    ctx: CaseContext, s: ServerProcess, subs: bool = False
) -> dict[str, list[dict[str, Any]]]:
    z = await ctx.http_json(s, "/routez?subs=1" if subs else "/routez")
    out: dict[str, list[dict[str, Any]]] = {}
    for r in z.get("routes") or []:
        out.setdefault(r["remote_id"], []).append(r)
    return out


async def wait_full_mesh(
    ctx: CaseContext, servers: Sequence[ServerProcess], timeout: float = 10.0
) -> dict[int, str]:
    """Wait until every server has routes to exactly all the others (checked on /routez)."""
    ids = {i: await server_id(ctx, s) for i, s in enumerate(servers)}

    async def probe() -> Any:
        for i, s in enumerate(servers):
            remotes = set(await routes_by_remote(ctx, s))
            want = {ids[j] for j in ids if j != i}
            if remotes != want:
                return f"server #{i} routes to {len(remotes)} of {len(want)} peers"
        return True

    await ctx.eventually(probe, timeout, "a full mesh of routes on /routez")
    return ids


def pooled(ctx: CaseContext, a: ServerProcess, b: ServerProcess) -> bool:
    """Both are 2.10+ Go servers: they use route pooling (several connections per pair)."""
    return a.target.profile == "go214" and b.target.profile == "go214"


async def check_one_route_per_pair(ctx: CaseContext, servers: Sequence[ServerProcess]) -> None:
    """Pairs with at least one non-pooling server have exactly one route."""
    ids = {i: await server_id(ctx, s) for i, s in enumerate(servers)}
    for i, s in enumerate(servers):
        by_remote = await routes_by_remote(ctx, s)
        for j, other in enumerate(servers):
            if i == j or pooled(ctx, s, other):
                continue
            n = len(by_remote.get(ids[j], []))
            ctx.check(
                n == 1,
                f"server #{i} ({s.target.name}) has {n} routes to #{j} ({other.target.name})",
                "1 route",
                f"{n} routes",
            )


async def wait_route_interest(
    ctx: CaseContext, s: ServerProcess, subject: str, timeout: float = 5.0, present: bool = True
) -> None:
    """Wait until server s lists ``subject`` (or no longer lists it) among its routes' subs."""

    async def probe() -> Any:
        z = await ctx.http_json(s, "/routez?subs=1")
        found = any(subject in (r.get("subscriptions_list") or []) for r in z.get("routes") or [])
        return True if found == present else f"interest in {subject} present={found}"

    await ctx.eventually(probe, timeout, f"route interest in {subject!r} on {s.target.name}")


async def wait_connect_urls(c: Conn, want: set[str], timeout: float) -> dict[str, Any]:
    """Read async INFOs on a client connection until connect_urls equals ``want``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise Mismatch(
                "connect_urls never matched", json.dumps(sorted(want)), json.dumps(last), c.name
            )
        obj, _ = await c.expect_info(timeout=left, space_before_crlf=False)
        last = obj.get("connect_urls")
        if set(last or []) == want:
            return obj


_SENTINEL_RE = re.compile(rb"MSG sentinel\..*")
_SENTINEL_SIDS = itertools.count(1)


async def wait_propagated(
    ctx: CaseContext,
    pub: Conn,
    subs: Sequence[Conn],
    tag: str,
    timeout: float = 8.0,
    prefix: str = "sentinel",
) -> None:
    """Wait until interest registered by each subscriber connection reached the publisher's server.

    Each subscriber subscribes to a sentinel subject *after* its real subscriptions; interest is
    forwarded in order, so once the publisher's sentinel messages arrive, the real subscriptions
    are known too. Sentinel messages are filtered out of the subscribers' streams. ``prefix``
    puts the sentinels elsewhere (e.g. under a stream export, to wait across accounts).
    """
    for i, c in enumerate(subs):
        subject = f"{prefix}.{tag}.{i}"
        rx = (
            _SENTINEL_RE
            if prefix == "sentinel"
            else re.compile(rb"MSG " + re.escape(prefix.encode()) + rb"\..*")
        )
        if rx not in c.ignore:
            c.ignore.append(rx)
        sid = next(_SENTINEL_SIDS)
        await c.send(f"SUB {subject} s{sid}\r\n".encode())
        await flush(c)

        async def probe(c: Conn = c, subject: str = subject) -> Any:
            await pub.send(f"PUB {subject} 0\r\n\r\n".encode())
            await flush(pub)
            await asyncio.sleep(0.02)
            return any(subject.encode() in f for f in c.ignored) or f"{subject} not delivered yet"

        await ctx.eventually(
            probe, timeout, f"interest of {c.name} to propagate ({subject})", interval=0.05
        )
