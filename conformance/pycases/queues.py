"""Queue-group distribution on one server (counts, not byte transcripts)."""

from __future__ import annotations

import collections

from ..context import CaseContext
from ..registry import pycase
from ._util import client, flush, read_msgs, until_pong

N = 200  # messages; each of two members expects ~100 (a 50-message floor is 7 sigma away)


@pycase(
    "client.queue.distribution_one_connection",
    ref="TestQueueSub",
    doc="two members of one group on one connection: every message delivered once, both get a share",
)
async def distribution_one_connection(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    c = await client(ctx, s)
    await c.send(b"SUB foo qgroup1 22\r\nSUB foo qgroup1 32\r\n" + b"PUB foo 2\r\nok\r\n" * N)
    msgs = await read_msgs(c, N)
    await flush(c)
    counts = collections.Counter(sid for sid, _ in msgs)
    ctx.check(set(counts) == {"22", "32"}, "both sids must receive messages", "22,32", dict(counts))
    ctx.check(
        min(counts.values()) >= N // 4,
        "uneven queue distribution",
        f">= {N // 4} each",
        dict(counts),
    )


@pycase(
    "client.queue.distribution_two_groups",
    ref="TestMultipleQueueSub",
    doc="two groups of two members: each message once per group, every member gets a share",
)
async def distribution_two_groups(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    c = await client(ctx, s)
    await c.send(
        b"SUB foo g1 1\r\nSUB foo g1 2\r\nSUB foo g2 3\r\nSUB foo g2 4\r\n"
        + b"PUB foo 2\r\nok\r\n" * N
    )
    msgs = await read_msgs(c, 2 * N)
    await flush(c)
    counts = collections.Counter(sid for sid, _ in msgs)
    ctx.check(
        counts["1"] + counts["2"] == N, "group g1 must get each message once", N, dict(counts)
    )
    ctx.check(
        counts["3"] + counts["4"] == N, "group g2 must get each message once", N, dict(counts)
    )
    ctx.check(
        min(counts[k] for k in "1234") >= N // 4,
        "uneven distribution",
        f">= {N // 4}",
        dict(counts),
    )


@pycase(
    "client.queue.distribution_across_connections",
    doc="three connections in one group: exactly one delivery per message in total, all get some",
)
async def distribution_across_connections(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    subs = [await client(ctx, s, f"m{i}") for i in range(3)]
    for c in subs:
        await c.send(b"SUB work grp 1\r\n")
        await flush(c)
    pub = await client(ctx, s, "pub")
    await pub.send(b"PUB work 2\r\nok\r\n" * 150)
    await flush(pub)
    totals = []
    for c in subs:
        got = await until_pong(c)  # all deliveries to c precede this PONG
        totals.append(got.count(b"MSG work 1 2\r\nok\r\n"))
    ctx.check(sum(totals) == 150, "each message must reach exactly one member", 150, totals)
    ctx.check(min(totals) >= 15, "a member got (almost) nothing", ">= 15 each", totals)
