"""Raw-socket transcripts: user/password and token auth, the auth timeout (protocol.md 1.3, 2)."""

from __future__ import annotations

import time

import pytest
from conftest import ServerHandle

PONG = b"PONG\r\n"
OK = b"+OK\r\n"


@pytest.fixture
async def userpass(start_server) -> ServerHandle:
    return await start_server(username="alice", password="s3cret")


@pytest.fixture
async def token(start_server) -> ServerHandle:
    return await start_server(authorization="t0ken")


async def test_info_auth_required(userpass: ServerHandle) -> None:
    c = await userpass.client()
    info = await c.read_info()
    assert info["auth_required"] is True
    assert "nonce" not in info  # not sent for user/password auth


async def test_user_pass_ok(userpass: ServerHandle) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":true,"user":"alice","pass":"s3cret"}\r\n')
    await c.expect(OK)
    await c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n")
    await c.expect(OK + OK + b"MSG foo 1 2\r\nhi\r\n" + PONG)


@pytest.mark.parametrize(
    "connect",
    [
        b'CONNECT {"user":"alice","pass":"wrong"}\r\n',
        b'CONNECT {"user":"bob","pass":"s3cret"}\r\n',
        b'CONNECT {"user":"alice"}\r\n',
        b"CONNECT {}\r\n",
        b'CONNECT {"auth_token":"s3cret"}\r\n',
    ],
)
async def test_user_pass_wrong(userpass: ServerHandle, connect: bytes) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(connect)
    await c.expect_err_close("Authorization Violation")


@pytest.mark.parametrize("first", [b"SUB foo 1\r\n", b"PUB foo 2\r\nhi\r\n", b"PING\r\n", b"sub foo 1\r\n", b"X"])
async def test_first_op_not_connect(userpass: ServerHandle, first: bytes) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(first)
    await c.expect_err_close("Authorization Violation")


async def test_lowercase_connect_is_accepted(userpass: ServerHandle) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(b'connect {"verbose":false,"user":"alice","pass":"s3cret"}\r\nPING\r\n')
    await c.expect(PONG)


async def test_connect_and_ops_in_one_write(userpass: ServerHandle) -> None:
    c = await userpass.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"user":"alice","pass":"s3cret"}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n')
    await c.expect(b"MSG foo 1 1\r\nx\r\n" + PONG)


async def test_connect_split_across_reads(userpass: ServerHandle) -> None:
    """nats-server TestProtoCrash: the CONNECT line arrives in two writes."""
    c = await userpass.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":true,"tls_required":false,"user":"alice","pedantic":true,"pass":"s3cret"}')
    await c.expect_nothing(0.05)
    await c.send(b"\r\n")
    await c.expect(OK)


async def test_token_ok(token: ServerHandle) -> None:
    c = await token.client()
    info = await c.read_info()
    assert info["auth_required"] is True
    await c.send(b'CONNECT {"verbose":false,"auth_token":"t0ken"}\r\nPING\r\n')
    await c.expect(PONG)


@pytest.mark.parametrize(
    "connect",
    [
        b'CONNECT {"auth_token":"nope"}\r\n',
        b"CONNECT {}\r\n",
        b'CONNECT {"user":"t0ken"}\r\n',
    ],
)
async def test_token_wrong(token: ServerHandle, connect: bytes) -> None:
    c = await token.client()
    await c.read_info()
    await c.send(connect)
    await c.expect_err_close("Authorization Violation")


async def test_token_first_op_not_connect(token: ServerHandle) -> None:
    c = await token.client()
    await c.read_info()
    await c.send(b"PING\r\n")
    await c.expect_err_close("Authorization Violation")


async def test_auth_timeout(start_server) -> None:
    s = await start_server(username="alice", password="s3cret", auth_timeout=0.3)
    c = await s.client()
    await c.read_info()
    t0 = time.monotonic()
    await c.expect_err_close("Authentication Timeout")
    took = time.monotonic() - t0
    assert 0.2 < took < 2.5, took


async def test_auth_timeout_with_partial_connect(start_server) -> None:
    s = await start_server(username="alice", password="s3cret", auth_timeout=0.3)
    c = await s.client()
    await c.read_info()
    await c.send(b'CONNECT {"user":"alice"')
    await c.expect_err_close("Authentication Timeout")


async def test_no_auth_timeout_after_connect(start_server) -> None:
    s = await start_server(username="alice", password="s3cret", auth_timeout=0.3)
    c = await s.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"user":"alice","pass":"s3cret"}\r\n')
    await c.expect_nothing(0.6)
    assert await c.is_open()


async def test_no_auth_timeout_without_auth(start_server) -> None:
    s = await start_server(auth_timeout=0.3)
    c = await s.client()
    await c.read_info()
    await c.expect_nothing(0.6)
    assert await c.is_open()
