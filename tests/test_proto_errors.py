"""Raw-socket transcripts: every -ERR a single server without TLS/JWT sends, whether the
connection closes after it, the silent closes, and the limits (protocol.md sections 1 and 2)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from conftest import ServerHandle, wait_for

PONG = b"PONG\r\n"
OK = b"+OK\r\n"


# -- Unknown Protocol Operation ------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"ZZZ\r\n",
        b"ZZZ",  # a bad op byte fails at once, without a newline
        b"PUBS foo 2\r\nok\r\n",
        b"SUBZZZ foo 1\r\n",
        b"MSG foo 1 2\r\nhi\r\n",  # clients must not send MSG
        b"RS+ $G foo\r\n",
        b"RMSG $G foo 2\r\nhi\r\n",
        b"LS+ $G foo\r\n",
        b"A+ foo\r\n",
        b"UNSUB\r\n",  # a space is required after the op
        b"PUB\r\n",
        b"SUB\r\n",
        b"UNSUBX 1\r\n",
        b" PING\r\n",
        b"PINX\r\n",
        b"PUB foo 2\r\nhiX\r\n",  # a payload must be followed by exactly CRLF
        b"PUB foo 2\r\nhi\rX",
        b"PUB foo 2\r\nhi\n\r",
        b"PUB foo 2\r\nhello\r\n",  # longer than declared
        b"\r\n",
    ],
)
async def test_unknown_protocol_operation(srv: ServerHandle, data: bytes) -> None:
    c = await srv.connected()
    await c.send(data)
    await c.expect_err_close("Unknown Protocol Operation")


async def test_ops_before_a_bad_op_are_processed(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\nZZZ\r\nPING\r\n")
    await c.expect(b"MSG foo 1 2\r\nhi\r\n" + PONG)
    await c.expect_err_close("Unknown Protocol Operation")


async def test_unknown_op_before_connect(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b"HELLO\r\n")
    await c.expect_err_close("Unknown Protocol Operation")


async def test_incomplete_pub_corrupts_stream(srv: ServerHandle) -> None:
    """nats-server test/proto_test.go TestIncompletePubArg."""
    c = await srv.connected()
    good = b"A" * 10000 + b"\r\n"
    bad = b"B" * 3371
    bad2 = b"C" * 10000 + b"\r\n"
    pub = b"PUB example 10000\r\n"
    await c.send(pub + good + pub + good + pub + bad + pub + bad2)
    await c.expect_err_close("Unknown Protocol Operation")


async def test_err_from_client_closes_silently(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"-ERR 'oops'\r\n")
    await c.expect_closed()


# -- silent closes (parse errors: no -ERR) --------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"PUB foo\r\n",
        b"PUB a b c 1\r\n",
        b"PUB foo -1\r\n",
        b"PUB foo abc\r\n",
        b"PUB foo 1x\r\n",
        b"PUB foo 3333333333333333333333\r\n",  # size overflow (CVE-2019-13126)
        b"PUB foo bar       \r\n",
        b"PUB  \r\n",
        b"SUB foo\r\n",
        b"SUB a b c d\r\n",
        b"SUB  \r\n",
        b"UNSUB 1 2 3\r\n",
        b"UNSUB \r\n",
        b"CONNECT {bad json\r\n",
        b"CONNECT \r\n",
        b"CONNECT []\r\n",
        b"INFO  \r\n",
        b"INFO {bad\r\n",
    ],
)
async def test_parse_errors_close_without_err(srv: ServerHandle, data: bytes) -> None:
    c = await srv.connected()
    await c.send(data)
    await c.expect_closed()


async def test_bad_connect_json_first_op(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b"CONNECT {\"verbose\":\r\n")
    await c.expect_closed()


async def test_hpub_without_headers_closes_silently(srv: ServerHandle) -> None:
    c = await srv.connected()  # no headers:true
    await c.send(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await c.expect_closed()


async def test_hpub_without_connect_closes_silently(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await c.expect_closed()


@pytest.mark.parametrize(
    "data",
    [
        b"HPUB foo 3 2\r\n",  # header size above the total
        b"HPUB foo 2\r\n",
        b"HPUB foo -1 2\r\n",
        b"HPUB foo x 2\r\n",
        b"HPUB a b c 1 2\r\n",
    ],
)
async def test_hpub_bad_args_close_silently(srv: ServerHandle, data: bytes) -> None:
    c = await srv.connected(headers=True)
    await c.send(data)
    await c.expect_closed()


# -- Maximum Payload Violation --------------------------------------------------------------


async def test_max_payload(start_server) -> None:
    s = await start_server(max_payload=512)
    c = await s.connected()
    assert c.info is not None and c.info["max_payload"] == 512
    body = b"x" * 512
    await c.send(b"SUB foo 1\r\nPUB foo 512\r\n" + body + b"\r\nPING\r\n")
    await c.expect(b"MSG foo 1 512\r\n" + body + b"\r\n" + PONG)
    # Checked against the declared size, before the payload arrives.
    await c.send(b"PUB foo 513\r\n")
    await c.expect_err_close("Maximum Payload Violation")


async def test_max_payload_hpub_counts_total(start_server) -> None:
    s = await start_server(max_payload=512)
    c = await s.connected(headers=True)
    await c.send(b"HPUB foo 12 513\r\n")
    await c.expect_err_close("Maximum Payload Violation")


async def test_max_payload_default(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"PUB foo 1048577\r\n")
    await c.expect_err_close("Maximum Payload Violation")


# -- maximum control line exceeded ----------------------------------------------------------


async def test_control_line_pub_4096_ok(srv: ServerHandle) -> None:
    c = await srv.connected()
    subject = b"a" * 4094  # "<subject> 2" is 4096 bytes
    await c.send(b"SUB %s 1\r\nPUB %s 2\r\nhi\r\nPING\r\n" % (subject, subject))
    await c.expect(b"MSG %s 1 2\r\nhi\r\n" % subject + PONG)


async def test_control_line_pub_4097_fails(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"PUB %s 2\r\nhi\r\n" % (b"a" * 4095))
    await c.expect_err_close("maximum control line exceeded")


async def test_control_line_sub(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB %s 1\r\nPING\r\n" % (b"b" * 4094))
    await c.expect(PONG)
    await c.send(b"SUB %s 2\r\n" % (b"b" * 4095))
    await c.expect_err_close("maximum control line exceeded")


def _connect_of_len(n: int) -> bytes:
    base = json.dumps({"verbose": False, "name": ""}).encode()
    pad = n - len(base)
    return json.dumps({"verbose": False, "name": "x" * pad}).encode()


async def test_control_line_connect_4096_ok(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    arg = _connect_of_len(4096)
    assert len(arg) == 4096
    await c.send(b"CONNECT " + arg + b"\r\nPING\r\n")
    await c.expect(PONG)


async def test_control_line_connect_4097_fails(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b"CONNECT " + _connect_of_len(4097) + b"\r\n")
    await c.expect_err_close("maximum control line exceeded")


async def test_control_line_exceeded_without_newline(srv: ServerHandle) -> None:
    """More than 4096 argument bytes fail before the line ends (nats-server TestControlLineMaximums)."""
    c = await srv.connected()
    await c.send(b"PUB foo " + b"2" * 5000)
    await c.expect_err_close("maximum control line exceeded")


async def test_control_line_counts_across_reads(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB " + b"c" * 3000)
    await c.expect_nothing()
    await c.send(b"c" * 2000 + b" 1\r\n")
    await c.expect_err_close("maximum control line exceeded")


async def test_control_line_4096_in_pieces_ok(srv: ServerHandle) -> None:
    c = await srv.connected()
    line = b"SUB %s 1\r\n" % (b"d" * 4094)
    for cut in (4, 100, 2000, len(line) - 2, len(line) - 1):
        await c.send(line[:cut])
        await c.expect_nothing(0.05)
        await c.send(line[cut:])
        await c.send(b"UNSUB 1\r\n")
    await c.send(b"PING\r\n")
    await c.expect(PONG)


async def test_control_line_4097_in_pieces_fails(srv: ServerHandle) -> None:
    c = await srv.connected()
    line = b"SUB %s 1\r\n" % (b"d" * 4095)
    await c.send(line[:2000])
    await c.expect_nothing(0.05)
    await c.send(line[2000:])
    await c.expect_err_close("maximum control line exceeded")


async def test_payload_does_not_count_toward_control_line(srv: ServerHandle) -> None:
    c = await srv.connected()
    body = b"p" * 10000
    await c.send(b"SUB foo 1\r\nPUB foo 10000\r\n" + body + b"\r\nPING\r\n")
    await c.expect(b"MSG foo 1 10000\r\n" + body + b"\r\n" + PONG)


# -- maximum connections exceeded -----------------------------------------------------------


async def test_max_connections(start_server) -> None:
    s = await start_server(max_connections=1)
    first = await s.connected()
    second = await s.client()
    await second.read_info()
    await second.expect_err_close("maximum connections exceeded")
    assert await first.is_open()
    await first.close()

    # Once the first has gone, a new connection is accepted.
    async def accepted() -> bool:
        c = await s.client()
        await c.read_info()
        ok = await c.is_open()
        await c.close()
        return ok

    await wait_for(accepted, what="a connection to be accepted again")


# -- maximum subscriptions exceeded ---------------------------------------------------------


async def test_max_subscriptions(start_server) -> None:
    s = await start_server(max_subscriptions=1)
    c = await s.connected()
    await c.send(b"SUB foo 1\r\nSUB bar 2\r\n")
    await c.expect(b"-ERR 'maximum subscriptions exceeded'\r\n")
    # The connection stays open; the first subscription works, the second was not made.
    await c.send(b"PUB bar 1\r\nx\r\nPUB foo 1\r\ny\r\nPING\r\n")
    await c.expect(b"MSG foo 1 1\r\ny\r\n" + PONG)
    # After an UNSUB there is room again.
    await c.send(b"UNSUB 1\r\nSUB bar 2\r\nPUB bar 1\r\nz\r\nPING\r\n")
    await c.expect(b"MSG bar 2 1\r\nz\r\n" + PONG)


# -- CONNECT errors -------------------------------------------------------------------------


@pytest.mark.parametrize("proto", [2, -1, 5])
async def test_invalid_client_protocol(srv: ServerHandle, proto: int) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"protocol":%d}\r\n' % proto)
    await c.expect_err_close("invalid client protocol")


async def test_no_responders_requires_headers(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"no_responders":true}\r\n')
    await c.expect_err_close("no responders requires headers support")


async def test_account_in_connect_is_refused(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"account":"A"}\r\n')
    await c.expect_err_close("Authorization Violation")


# -- Invalid Subject ------------------------------------------------------------------------


@pytest.mark.parametrize("subject", [b"foo..bar", b".foo", b"foo.", b"foo.>.bar", b">.foo", b"."])
async def test_invalid_subject(srv: ServerHandle, subject: bytes) -> None:
    c = await srv.connected(verbose=True)
    await c.send(b"SUB %s 1\r\n" % subject)
    await c.expect(b"-ERR 'Invalid Subject'\r\n")
    # Still open, and the sid was not taken.
    await c.send(b"SUB foo 1\r\n")
    await c.expect(OK)
    await c.send(b"PUB foo 1\r\nx\r\n")
    await c.expect(OK + b"MSG foo 1 1\r\nx\r\n")


async def test_invalid_subject_queue(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo..bar q 1\r\nPING\r\n")
    await c.expect(b"-ERR 'Invalid Subject'\r\n" + PONG)


@pytest.mark.parametrize("subject", [b"foo.b*r", b"foo*", b"f>o", b"*x.y>"])
async def test_wildcard_chars_inside_tokens_are_literal(srv: ServerHandle, subject: bytes) -> None:
    c = await srv.connected(pedantic=True)
    await c.send(b"SUB %s 1\r\nPUB %s 1\r\nx\r\nPING\r\n" % (subject, subject))
    await c.expect(b"MSG %s 1 1\r\nx\r\n" % subject + PONG)


# -- Stale Connection -----------------------------------------------------------------------


async def test_stale_connection(start_server) -> None:
    s = await start_server(ping_interval=0.2, ping_max=2)
    c = await s.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    await c.expect(PONG)
    t0 = time.monotonic()
    # Never answer: two PINGs, then the error and the close.
    await c.expect(b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n")
    await c.expect_closed()
    assert time.monotonic() - t0 < 3.0


async def test_answered_pings_keep_connection(start_server) -> None:
    s = await start_server(ping_interval=0.2, ping_max=2)
    c = await s.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false}\r\n')
    deadline = time.monotonic() + 1.5
    pings = 0
    while time.monotonic() < deadline:
        line = await c.read_line()
        assert line == b"PING", line
        pings += 1
        await c.send(b"PONG\r\n")
    assert pings >= 3  # more than ping_max: answering resets the count
    assert await c.is_open()


async def test_server_ping_without_connect(start_server) -> None:
    s = await start_server(ping_interval=0.2, ping_max=2)
    c = await s.client()
    await c.read_info()
    await c.expect(b"PING\r\n", timeout=3.0)


# -- CONNECT field types (nats-server json.Unmarshal into ClientOpts) -------------------------

# A field of the wrong JSON type fails the whole CONNECT, like bad JSON: closed, no -ERR.
WRONG_TYPES = [b'{"echo":"yes"}', b'{"protocol":"1"}', b'{"protocol":1.0}', b'{"protocol":1.5}',
               b'{"headers":"true"}', b'{"name":5}', b'{"verbose":1}', b'{"user":["a"]}',
               b'{"pedantic":{}}', b'{"no_responders":"false"}', b'{"auth_token":1}']  # fmt: skip


async def test_connect_field_of_wrong_type_closes_silently(srv: ServerHandle) -> None:
    async def one(co: bytes) -> str | None:
        c = await srv.client()
        await c.read_info()
        await c.send(b"CONNECT " + co + b"\r\nPING\r\n")
        try:
            await c.expect_closed(timeout=2.0)
        except AssertionError as e:
            return f"{co.decode()}: {e}"
        return None

    failures = [f for f in await asyncio.gather(*(one(co) for co in WRONG_TYPES)) if f]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "co",
    [b'{"verbose":null}', b'{"verbose":true,"echo":null,"pedantic":null,"name":null,"protocol":null}'],
)
async def test_connect_null_fields_keep_defaults(srv: ServerHandle, co: bytes) -> None:
    """JSON null leaves a field at its default (verbose, echo and pedantic stay true)."""
    c = await srv.client()
    await c.read_info()
    await c.send(b"CONNECT " + co + b"\r\nSUB foo 1\r\nPUB foo.* 1\r\nx\r\nPING\r\n")
    await c.expect(b"+OK\r\n+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\nPONG\r\n", timeout=2.0)


async def test_connect_unknown_fields_ignored(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"whatever":[1,2],"tls_required":false,"lang":"x"}\r\nPING\r\n')
    await c.expect(PONG)
