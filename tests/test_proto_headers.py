"""Raw-socket transcripts: HPUB/HMSG, header stripping, no responders (protocol.md 1.4, 1.5)."""

from __future__ import annotations

from conftest import TARGET, ServerHandle

PONG = b"PONG\r\n"


async def test_hpub_to_headers_subscriber(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True)
    await c.send(b"SUB foo 1\r\nHPUB foo rep 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\nPING\r\n")
    await c.expect(b"HMSG foo 1 rep 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n" + PONG)


async def test_hpub_no_reply(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True)
    await c.send(b"SUB foo.* 1\r\nHPUB foo.bar 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n")
    await c.expect(b"HMSG foo.bar 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n" + PONG)


async def test_hpub_size_tokens_copied(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True)
    await c.send(b"SUB foo 1\r\nHPUB foo 012 0014\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n")
    await c.expect(b"HMSG foo 1 012 0014\r\nNATS/1.0\r\n\r\nhi\r\n" + PONG)


async def test_headers_not_validated(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True)
    await c.send(b"SUB foo 1\r\nHPUB foo 7 7\r\nFOO\r\n\r\n\r\nPING\r\n")
    await c.expect(b"HMSG foo 1 7 7\r\nFOO\r\n\r\n\r\n" + PONG)


async def test_headers_stripped_for_subscriber_without_headers(srv: ServerHandle) -> None:
    sub = await srv.connected()  # no headers:true
    pub = await srv.connected(headers=True)
    await sub.send(b"SUB foo 1\r\nSUB foo q 2\r\n")
    await sub.ping()
    await pub.send(b"HPUB foo rep 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n")
    await pub.ping()
    got = sorted(await sub.msgs_until_pong())
    assert got == [(b"MSG foo 1 rep 2", b"hi"), (b"MSG foo 2 rep 2", b"hi")]


async def test_headers_only_message_stripped(srv: ServerHandle) -> None:
    sub = await srv.connected()
    pub = await srv.connected(headers=True)
    await sub.send(b"SUB foo 1\r\n")
    await sub.ping()
    await pub.send(b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n")
    await pub.ping()
    assert await sub.msgs_until_pong() == [(b"MSG foo 1 0", b"")]


async def test_mixed_subscribers(srv: ServerHandle) -> None:
    h = await srv.connected(headers=True)
    plain = await srv.connected()
    await h.send(b"SUB foo 1\r\n")
    await plain.send(b"SUB foo 1\r\n")
    await h.ping()
    await plain.ping()
    await h.send(b"HPUB foo 18 21\r\nNATS/1.0\r\nX: 1\r\n\r\nabc\r\n")
    assert await h.msgs_until_pong() == [(b"HMSG foo 1 18 21", b"NATS/1.0\r\nX: 1\r\n\r\nabc")]
    assert await plain.msgs_until_pong() == [(b"MSG foo 1 3", b"abc")]


async def test_hpub_zero_header_size_delivered_as_msg(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True)
    await c.send(b"SUB foo 1\r\nHPUB foo 0 2\r\nhi\r\nHPUB foo r 0 2\r\nho\r\nPING\r\n")
    await c.expect(b"MSG foo 1 2\r\nhi\r\nMSG foo 1 r 2\r\nho\r\n" + PONG)


async def test_hpub_verbose_ok(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True, verbose=True)
    await c.send(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await c.expect(b"+OK\r\n")


async def test_hpub_split_across_reads(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True)
    data = b"SUB foo 1\r\nHPUB foo 18 21\r\nNATS/1.0\r\nX: 1\r\n\r\nabc\r\nPING\r\n"
    for i in range(0, len(data), 3):
        await c.send(data[i : i + 3])
    await c.expect(b"HMSG foo 1 18 21\r\nNATS/1.0\r\nX: 1\r\n\r\nabc\r\n" + PONG)


# -- no responders -------------------------------------------------------------------------


async def test_no_responders_503(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True, no_responders=True)
    await c.send(b"SUB _INBOX.abc 7\r\nPUB nobody _INBOX.abc 0\r\n\r\nPING\r\n")
    if TARGET == "go29":
        await c.expect(b"HMSG _INBOX.abc 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n" + PONG)
    else:
        await c.expect(b"HMSG _INBOX.abc 7 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n" + PONG)


async def test_no_responders_for_hpub(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True, no_responders=True)
    await c.send(b"SUB _INBOX.* 3\r\nHPUB svc.x _INBOX.q 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n")
    if TARGET == "go29":
        await c.expect(b"HMSG _INBOX.q 3 16 16\r\nNATS/1.0 503\r\n\r\n\r\n" + PONG)
    else:
        await c.expect(b"HMSG _INBOX.q 3 37 37\r\nNATS/1.0 503\r\nNats-Subject: svc.x\r\n\r\n\r\n" + PONG)


async def test_no_responders_not_sent_with_a_responder(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True, no_responders=True)
    responder = await srv.connected()
    await responder.send(b"SUB svc q 1\r\n")
    await responder.ping()
    await c.send(b"SUB _INBOX.abc 7\r\nPUB svc _INBOX.abc 0\r\n\r\nPING\r\n")
    await c.expect(PONG)
    assert await responder.msgs_until_pong() == [(b"MSG svc 1 _INBOX.abc 0", b"")]


async def test_no_responders_needs_reply(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True, no_responders=True)
    await c.send(b"SUB _INBOX.abc 7\r\nPUB nobody 0\r\n\r\nPING\r\n")
    await c.expect(PONG)
    await c.expect_nothing()


async def test_no_responders_off_by_default(srv: ServerHandle) -> None:
    c = await srv.connected(headers=True)
    await c.send(b"SUB _INBOX.abc 7\r\nPUB nobody _INBOX.abc 0\r\n\r\nPING\r\n")
    await c.expect(PONG)
    await c.expect_nothing()
