"""nats-py end to end: bcrypt passwords and tokens, nkey users, no_auth_user, permission
errors and allow_responses, against the embedded server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import bcrypt
import nats
import pytest
from nats.errors import NoServersError

from pynats_server import Server, nkeys_util
from pynats_server.options import Permissions, ResponsePermission, User

TIMEOUT = 5.0
HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
SEED, UPUB = nkeys_util.create_user()


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Any]]:
    conns = []

    async def make(srv: Server, **kw: Any) -> nats.NATS:
        kw.setdefault("connect_timeout", 2)
        kw.setdefault("max_reconnect_attempts", 0)
        kw.setdefault("allow_reconnect", False)
        nc = await nats.connect(srv.client_url, **kw)
        conns.append(nc)
        return nc

    yield make
    for nc in conns:
        if not nc.is_closed:
            await nc.close()


async def refused(connect: Callable[..., Any], srv: Server, **kw: Any) -> None:
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await connect(srv, error_cb=on_error, **kw)
    assert any("authorization violation" in str(e).lower() for e in errors), errors


async def test_bcrypt_user_password(connect) -> None:
    async with Server(username="alice", password=HASH) as srv:
        nc = await connect(srv, user="alice", password="s3cret")
        sub = await nc.subscribe("x")
        await nc.publish("x", b"hi")
        assert (await sub.next_msg(timeout=TIMEOUT)).data == b"hi"
        await refused(connect, srv, user="alice", password=HASH)


async def test_bcrypt_token(connect) -> None:
    async with Server(authorization=HASH) as srv:
        nc = await connect(srv, token="s3cret")
        await nc.flush(timeout=TIMEOUT)
        await refused(connect, srv, token=HASH)


async def test_bcrypt_users_list(connect) -> None:
    async with Server(users=[User("a", HASH), User("b", "plain")]) as srv:
        await (await connect(srv, user="a", password="s3cret")).flush(timeout=TIMEOUT)
        await (await connect(srv, user="b", password="plain")).flush(timeout=TIMEOUT)
        await refused(connect, srv, user="a", password="plain")


async def test_nkey_user(connect) -> None:
    async with Server(users=[User(nkey=UPUB)]) as srv:
        nc = await connect(srv, nkeys_seed_str=SEED)
        sub = await nc.subscribe("n")
        await nc.publish("n", b"signed")
        assert (await sub.next_msg(timeout=TIMEOUT)).data == b"signed"
        other, _ = nkeys_util.create_user()
        await refused(connect, srv, nkeys_seed_str=other)


async def test_nkey_seed_file(connect, tmp_path) -> None:
    path = tmp_path / "user.nk"
    path.write_text(SEED + "\n")
    async with Server(users=[User(nkey=UPUB)]) as srv:
        await (await connect(srv, nkeys_seed=str(path))).flush(timeout=TIMEOUT)


async def test_no_auth_user(connect) -> None:
    async with Server(users=[User("bob", "pw", Permissions(publish_allow=["ok.>"]))], no_auth_user="bob") as srv:
        errors: list[Exception] = []

        async def on_error(e: Exception) -> None:
            errors.append(e)

        nc = await connect(srv, error_cb=on_error)
        await nc.publish("ok.1", b"x")
        await nc.publish("nope", b"x")
        await nc.flush(timeout=TIMEOUT)
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.02)
        assert any('permissions violation for publish to "nope"' in str(e).lower() for e in errors), errors


async def test_request_reply_with_allow_responses(connect) -> None:
    users = [
        User("svc", "s", Permissions(subscribe_allow=["svc.>"], response=ResponsePermission())),
        User("cli", "c"),
    ]
    async with Server(users=users) as srv:
        svc = await connect(srv, user="svc", password="s")
        cli = await connect(srv, user="cli", password="c")

        async def handler(msg: Any) -> None:
            await msg.respond(b"pong:" + msg.data)

        await svc.subscribe("svc.ping", cb=handler)
        await svc.flush(timeout=TIMEOUT)
        for i in range(3):
            reply = await cli.request("svc.ping", str(i).encode(), timeout=TIMEOUT)
            assert reply.data == f"pong:{i}".encode()
