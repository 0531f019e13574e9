"""Real-client cases: the official Python client (nats-py) against the target."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import MaxPayloadError, NoRespondersError

from ..context import CaseContext
from ..registry import pycase
from ..targets import ServerProcess


async def _quiet(_e: BaseException) -> None:
    """nats-py prints errors to stderr by default; the cases check them themselves."""


@contextlib.asynccontextmanager
async def connected(ctx: CaseContext, server: ServerProcess, **kw: Any) -> AsyncIterator[Client]:
    errors: list[BaseException] = []

    async def on_error(e: BaseException) -> None:
        errors.append(e)

    opts: dict[str, Any] = {
        "servers": [server.client_url],
        "connect_timeout": 3,
        "allow_reconnect": False,
        "error_cb": on_error,
    }
    opts.update(kw)
    try:
        nc = await nats.connect(**opts)
    except Exception as exc:  # noqa: BLE001 - any connect failure is the finding
        ctx.fail(f"nats-py could not connect: {exc!r}")
    try:
        yield nc
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), 3)


@pycase("client.natspy.pub_sub", doc="subscribe, publish, flush, receive in order")
async def pub_sub(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    async with connected(ctx, s) as nc:
        sub = await nc.subscribe("natspy.x")
        for i in range(20):
            await nc.publish("natspy.x", f"m{i}".encode())
        await nc.flush()
        got = [(await sub.next_msg(timeout=2)).data for _ in range(20)]
        ctx.check(got == [f"m{i}".encode() for i in range(20)], "messages differ", "m0..m19", got)


@pycase("client.natspy.request_reply", doc="request/response through a subscriber that responds")
async def request_reply(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    async with connected(ctx, s) as nc:

        async def handler(msg: Any) -> None:
            await msg.respond(b"re:" + msg.data)

        await nc.subscribe("natspy.svc", cb=handler)
        await nc.flush()
        msg = await nc.request("natspy.svc", b"q", timeout=2)
        ctx.check(msg.data == b"re:q", "wrong reply", b"re:q", msg.data)


@pycase("client.natspy.headers", doc="headers round trip (HPUB/HMSG) with nats-py")
async def headers(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    async with connected(ctx, s) as nc:
        sub = await nc.subscribe("natspy.h")
        await nc.publish("natspy.h", b"body", headers={"X-A": "1", "X-B": "two words"})
        await nc.flush()
        msg = await sub.next_msg(timeout=2)
        ctx.check(msg.data == b"body", "payload", b"body", msg.data)
        ctx.check(
            msg.headers == {"X-A": "1", "X-B": "two words"},
            "headers",
            {"X-A": "1", "X-B": "two words"},
            msg.headers,
        )


@pycase(
    "client.natspy.no_responders",
    doc="a request nobody listens to fails fast with NoRespondersError",
)
async def no_responders(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    async with connected(ctx, s) as nc:
        try:
            await nc.request("natspy.nobody", b"x", timeout=2)
        except NoRespondersError:
            return
        except Exception as exc:  # noqa: BLE001
            ctx.fail("expected NoRespondersError", "NoRespondersError", repr(exc))
        ctx.fail("expected NoRespondersError, got a reply")


@pycase("client.natspy.queue_group", doc="two queue subscribers: each message is delivered once")
async def queue_group(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    async with connected(ctx, s) as nc:
        a = await nc.subscribe("natspy.q", queue="workers")
        b = await nc.subscribe("natspy.q", queue="workers")
        for i in range(40):
            await nc.publish("natspy.q", str(i).encode())
        await nc.flush()
        await nc.flush()
        n = a.pending_msgs + b.pending_msgs
        ctx.check(n == 40, "each message must be delivered once", 40, n)


@pycase(
    "client.natspy.max_payload_from_info",
    doc="the client learns max_payload from INFO and refuses bigger messages",
)
async def max_payload_from_info(ctx: CaseContext) -> None:
    s = await ctx.shared_server(config="max_payload: 512\n")
    async with connected(ctx, s) as nc:
        ctx.check(nc.max_payload == 512, "max_payload from INFO", 512, nc.max_payload)
        try:
            await nc.publish("natspy.big", b"x" * 513)
        except MaxPayloadError:
            return
        ctx.fail("publishing 513 bytes should fail client-side")


@pycase("client.natspy.drain", doc="drain delivers what is pending, then closes")
async def drain(ctx: CaseContext) -> None:
    s = await ctx.shared_server()
    got: list[bytes] = []
    async with connected(ctx, s) as nc:

        async def cb(msg: Any) -> None:
            got.append(msg.data)

        await nc.subscribe("natspy.d", cb=cb)
        async with connected(ctx, s) as pub:
            for i in range(10):
                await pub.publish("natspy.d", str(i).encode())
            await pub.flush()
        await nc.flush()
        await nc.drain()
        ctx.check(nc.is_closed, "connection closed after drain", True, nc.is_closed)
    ctx.check(len(got) == 10, "all messages handled before close", 10, len(got))


@pycase("client.natspy.auth_user_password", doc="nats-py with user/password in the URL")
async def auth_user_password(ctx: CaseContext) -> None:
    s = await ctx.shared_server(args=("--user", "u", "--pass", "p"))
    async with connected(ctx, s, servers=[f"nats://u:p@127.0.0.1:{s.client_port}"]) as nc:
        await nc.flush()
    try:
        nc2 = await nats.connect(
            servers=[f"nats://u:wrong@127.0.0.1:{s.client_port}"],
            connect_timeout=2,
            allow_reconnect=False,
            error_cb=_quiet,
        )
    except Exception as exc:  # noqa: BLE001
        ctx.check(
            "authorization" in str(exc).lower(),
            "error mentions authorization",
            "Authorization Violation",
            repr(exc),
        )
        return
    await nc2.close()
    ctx.fail("a wrong password must be refused")
