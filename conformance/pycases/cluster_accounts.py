"""Clusters with accounts and clusters over TLS (real servers of the target's kind, and mixed
with nats-server 2.14).

Accounts A and B on every server; A exports the stream ``pub.>`` and the service ``svc``, B
imports both. Clients of both accounts on every server: messages must cross the routes exactly
as they would inside one server (isolation, the stream import, the service import with its
``_R_`` reply). Interest propagation is awaited with sentinel messages (``_util.wait_propagated``;
across accounts the sentinels travel under the exported ``pub.>``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..conn import Conn
from ..context import CaseContext
from ..registry import pycase, same
from ..runner import REFERENCE
from ..targets import HOST, ServerProcess
from ._util import client, flush, start_cluster, until_pong, wait_full_mesh, wait_propagated

TIMEOUT = 5.0

ACCOUNTS = """accounts {
  A {
    users = [ {user: a, password: a} ]
    exports = [ {stream: "pub.>"}, {service: "svc"} ]
  }
  B {
    users = [ {user: b, password: b} ]
    imports = [
      {stream: {account: A, subject: "pub.>"}}
      {service: {account: A, subject: "svc"}}
    ]
  }
}
"""

_MSG_RE = re.compile(rb"MSG (\S+) (\S+) (?:(\S+) )?(\d+)\r\n")


def _msgs(data: bytes) -> list[tuple[str, str, bytes]]:
    """(subject, reply, payload) of the MSG frames in ``data`` (as read by until_pong)."""
    out = []
    pos = 0
    while pos < len(data):
        m = _MSG_RE.match(data, pos)
        if not m:
            raise ValueError(f"not a MSG frame at {pos}: {data[pos : pos + 80]!r}")
        size = int(m.group(4))
        start = m.end()
        out.append((m.group(1).decode(), (m.group(3) or b"").decode(), data[start : start + size]))
        pos = start + size + 2
    return out


async def _got(ctx: CaseContext, c: Conn) -> list[tuple[str, str, bytes]]:
    data = await until_pong(c)
    try:
        return _msgs(data)
    except ValueError as exc:
        ctx.fail(f"{c.name}: {exc}", None, data[:300])


async def scenario_accounts(ctx: CaseContext, servers: Sequence[ServerProcess]) -> None:
    a = [await client(ctx, s, f"a{i}", {"user": "a", "pass": "a"}) for i, s in enumerate(servers)]
    b = [await client(ctx, s, f"b{i}", {"user": "b", "pass": "b"}) for i, s in enumerate(servers)]
    for c in a + b:
        await c.send(b"SUB iso 1\r\n")
    for c in b:
        await c.send(b"SUB pub.x 2\r\n")
    for c in a + b:
        await flush(c)
    last = len(servers) - 1
    # Interest of every subscriber known everywhere: same-account sentinels, then sentinels
    # under the stream export for B's import (after B's pub.x subscription).
    await wait_propagated(ctx, a[last], a, "acc-a")
    await wait_propagated(ctx, b[0], b, "acc-b")
    await wait_propagated(ctx, a[last], b, "acc-ab", prefix="pub.sentinel")

    # Isolation: a message on iso in A reaches A's subscribers once each, and no B subscriber.
    await a[0].send(b"PUB iso 2\r\nia\r\n")
    await b[last].send(b"PUB iso 2\r\nib\r\n")
    for c in a:
        await c.expect_bytes(b"MSG iso 1 2\r\nia\r\n", TIMEOUT)
    for c in b:
        await c.expect_bytes(b"MSG iso 1 2\r\nib\r\n", TIMEOUT)

    # The stream import: A publishes pub.x on the last server, every B subscriber gets it once.
    await a[last].send(b"PUB pub.x r.1 2\r\npx\r\n")
    for c in b:
        await c.expect_bytes(b"MSG pub.x 2 r.1 2\r\npx\r\n", TIMEOUT)

    # The service import: a responder in A on the first server, a requester in B on the last.
    svc = a[0]
    await svc.send(b"SUB svc 5\r\n")
    await flush(svc)
    req = b[last]
    await req.send(b"SUB inbox.r 6\r\n")
    await flush(req)
    await wait_propagated(ctx, a[last], [svc], "svc")
    await wait_propagated(ctx, b[0], [req], "inbox")
    await req.send(b"PUB svc inbox.r 3\r\nreq\r\n")
    frame = await svc.read_frame(TIMEOUT)
    m = re.fullmatch(rb"MSG svc 5 (_R_\.[A-Za-z0-9]{6}\.[A-Za-z0-9]{6}) 3\r\nreq\r\n", frame)
    ctx.check(
        m is not None,
        "the responder sees the request with an _R_ reply",
        b"MSG svc 5 _R_.xxxxxx.yyyyyy 3",
        frame,
    )
    assert m is not None
    await svc.send(b"PUB " + m.group(1) + b" 3\r\nrep\r\n")
    await req.expect_bytes(b"MSG inbox.r 6 3\r\nrep\r\n", TIMEOUT)
    for c in [*a, *b]:
        got = await _got(ctx, c)
        ctx.check(got == [], f"{c.name}: nothing else", [], got)


@pycase(
    "cluster.accounts.three_servers",
    kinds=same(3),
    timeout=TIMEOUT,
    ref="TestAccountsCrossRoutes",
    doc="two accounts on a 3-server mesh: isolation, a stream import and a service import across routes",
)
async def accounts_three(ctx: CaseContext) -> None:
    servers = await start_cluster(ctx, ctx.kinds, config=ACCOUNTS)
    await wait_full_mesh(ctx, servers)
    await scenario_accounts(ctx, servers)


@pycase(
    "cluster.mixed.accounts",
    kinds=lambda t: [t, REFERENCE, t],
    targets="!go214",
    timeout=TIMEOUT,
    doc="the accounts scenario on target / 2.14 / target: imports across mixed routes",
)
async def accounts_mixed(ctx: CaseContext) -> None:
    servers = await start_cluster(ctx, ctx.kinds, config=ACCOUNTS)
    await wait_full_mesh(ctx, servers)
    await scenario_accounts(ctx, servers)


@pycase(
    "cluster.mixed.accounts_go214_ends",
    kinds=lambda t: [REFERENCE, t, REFERENCE],
    targets="!go214",
    timeout=TIMEOUT,
    doc="the accounts scenario on 2.14 / target / 2.14: the responder and requester on 2.14, the target in the middle",
)
async def accounts_mixed_go_ends(ctx: CaseContext) -> None:
    servers = await start_cluster(ctx, ctx.kinds, config=ACCOUNTS)
    await wait_full_mesh(ctx, servers)
    await scenario_accounts(ctx, servers)


# ---------------------------------------------------------------------------- route TLS
def tls_cluster_config(ctx: CaseContext) -> str:
    """cluster.tls with the run's certificates (server cert doubles as the route client cert)."""
    c = ctx.certs
    return (
        "cluster {\n  tls {\n"
        f'    cert_file: "{c.path("server_cert")}"\n'
        f'    key_file: "{c.path("server_key")}"\n'
        f'    ca_file: "{c.path("ca")}"\n'
        "    timeout: 0.5\n  }\n}\n"
    )


async def scenario_tls_mesh(ctx: CaseContext, kinds: Sequence[str]) -> None:
    servers = await start_cluster(ctx, kinds, config=tls_cluster_config(ctx))
    await wait_full_mesh(ctx, servers)
    for s in servers:
        # Routes do TLS first: no plaintext INFO; the route INFO comes inside TLS.
        r = await Conn.open(
            f"tls-probe-{s.target.name}",
            HOST,
            s.cluster_port,
            TIMEOUT,
            tls=ctx.certs.client_context("client"),
        )
        info, _ = await r.expect_info()
        await r.close()
        ctx.check(
            info.get("tls_required") is True and info.get("tls_verify") is True,
            f"{s.target.name}: the route INFO (inside TLS) says tls_required and tls_verify",
            "tls_required:true tls_verify:true",
            {k: info.get(k) for k in ("tls_required", "tls_verify")},
        )
        plain = await ctx.route(s, f"plain-probe-{s.target.name}")
        await plain.expect_close(TIMEOUT)
    subs = [await client(ctx, s, f"sub{i}") for i, s in enumerate(servers)]
    for c in subs:
        await c.send(b"SUB t 1\r\n")
        await flush(c)
    pub = await client(ctx, servers[-1], "pub")
    await wait_propagated(ctx, pub, subs, "tls")
    await pub.send(b"PUB t 3\r\ntls\r\n")
    for c in subs:
        await c.expect_bytes(b"MSG t 1 3\r\ntls\r\n", TIMEOUT)


@pycase(
    "cluster.tls.mesh",
    kinds=same(3),
    timeout=TIMEOUT,
    ref="TestTLSClusterConfig",
    doc="three servers with cluster.tls (a shared CA): routes do TLS first (no plaintext INFO; a plaintext "
    "peer is closed after the TLS timeout), the route INFO says tls_required/tls_verify, messages cross",
)
async def tls_mesh(ctx: CaseContext) -> None:
    await scenario_tls_mesh(ctx, ctx.kinds)


@pycase(
    "cluster.mixed.tls",
    kinds=lambda t: [t, REFERENCE, t],
    targets="!go214",
    timeout=TIMEOUT,
    doc="a TLS cluster of target / 2.14 / target",
)
async def tls_mixed(ctx: CaseContext) -> None:
    await scenario_tls_mesh(ctx, ctx.kinds)
