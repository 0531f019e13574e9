"""Raw-socket transcripts: INFO, CONNECT, PING/PONG, PUB/SUB/UNSUB/MSG, framing, wildcards,
queue groups, verbose/pedantic/echo."""

from __future__ import annotations

import json
import re
from collections import Counter

from conftest import TARGET, RawClient, ServerHandle

from pynats_server.protocol.wire import _INFO_ORDER

OK = b"+OK\r\n"
PONG = b"PONG\r\n"


# -- INFO ----------------------------------------------------------------------------------


async def test_info_on_accept(srv: ServerHandle) -> None:
    c = await srv.client()
    line = await c.read_line()
    assert line.startswith(b"INFO {") and line.endswith(b"} ")
    info = json.loads(line[5:])
    assert re.fullmatch(r"N[A-Z2-7]{55}", info["server_id"]), info["server_id"]
    assert info["server_name"] == info["server_id"]
    assert re.fullmatch(r"2\.\d+\.\d+", info["version"])
    assert info["proto"] == 1
    assert info["host"] == "127.0.0.1"
    assert info["port"] == srv.port
    assert info["headers"] is True
    assert info["max_payload"] == 1048576
    assert isinstance(info["client_id"], int) and info["client_id"] >= 1
    assert info["client_ip"] == "127.0.0.1"
    assert "auth_required" not in info  # omitempty
    assert "connect_info" not in info
    # nats-server's Info struct order.
    keys = list(info)
    assert all(k in _INFO_ORDER for k in keys), keys
    assert keys == sorted(keys, key=_INFO_ORDER.index)
    assert keys[:4] == ["server_id", "server_name", "version", "proto"]
    # Nothing else is written until the client speaks.
    await c.expect_nothing()


async def test_info_client_ids_increase(srv: ServerHandle) -> None:
    a = await srv.client()
    ia = await a.read_info()
    b = await srv.client()
    ib = await b.read_info()
    assert ib["client_id"] > ia["client_id"]
    assert ia["server_id"] == ib["server_id"]


async def test_info_max_payload_option(start_server) -> None:
    s = await start_server(max_payload=512)
    c = await s.client()
    assert (await c.read_info())["max_payload"] == 512


# -- CONNECT -------------------------------------------------------------------------------


async def test_connect_empty_object_gets_ok(srv: ServerHandle) -> None:
    """Missing fields default to verbose=true (and pedantic, echo)."""
    c = await srv.client()
    await c.read_info()
    await c.send(b"CONNECT {}\r\n")
    await c.expect(OK)
    await c.send(b"PING\r\n")
    await c.expect(PONG)


async def test_connect_optional_defaults_apply(srv: ServerHandle) -> None:
    """No CONNECT at all: verbose +OKs, pedantic checks, echo on."""
    c = await srv.client()
    await c.read_info()
    await c.send(b"SUB foo 1\r\n")
    await c.expect(OK)
    await c.send(b"PUB foo 2\r\nhi\r\n")
    await c.expect(OK + b"MSG foo 1 2\r\nhi\r\n")
    await c.send(b"PING\r\n")
    await c.expect(PONG)  # no +OK for PING


async def test_connect_without_space(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT{"verbose":false}\r\nPING\r\n')
    await c.expect(PONG)


async def test_connect_verbose_false(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nPING\r\n')
    await c.expect(b"MSG foo 1 2\r\nhi\r\n" + PONG)


async def test_verbose_ok_after_every_op(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":true}\r\n')
    await c.expect(OK)
    await c.send(b"SUB foo 1\r\n")
    await c.expect(OK)
    await c.send(b"PUB bar 2\r\nhi\r\n")
    await c.expect(OK)
    await c.send(b"UNSUB 1\r\n")
    await c.expect(OK)
    await c.send(b"UNSUB 99\r\n")  # unknown sid: still OK
    await c.expect(OK)
    await c.send(b"PING\r\n")
    await c.expect(PONG)
    await c.expect_nothing()


async def test_second_connect(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false}\r\nCONNECT {"verbose":true}\r\n')
    await c.expect(OK)


# -- PING / PONG ---------------------------------------------------------------------------


async def test_ping_pong(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b"PING\r\nPING\r\n")
    await c.expect(PONG + PONG)


async def test_ping_pong_ok_ignore_rest_of_line(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b"PING extra junk\r\n")
    await c.expect(PONG)
    await c.send(b"PONG whatever\r\n+OK yes\r\n")
    await c.send(b"PING\t\t x\n")
    await c.expect(PONG)
    await c.expect_nothing()


async def test_client_info_pong_ok_are_ignored(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false}\r\nINFO {"server_id":"x"}\r\nPONG\r\n+OK\r\nPING\r\n')
    await c.expect(PONG)
    await c.expect_nothing()


# -- framing -------------------------------------------------------------------------------


async def test_ops_case_insensitive(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'connect {"verbose":false}\r\nsub foo 1\r\nPuB foo 2\r\nhi\r\npInG\r\n')
    await c.expect(b"MSG foo 1 2\r\nhi\r\n" + PONG)
    await c.send(b"UnSuB 1\r\npub foo 2\r\nhi\r\nPING\r\n")
    await c.expect(PONG)


async def test_tabs_and_spaces(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB\t foo \t q1  7\r\nPUB\t\tfoo  \t 2\t\r\nhi\r\nPING\r\n")
    await c.expect(b"MSG foo 7 2\r\nhi\r\n" + PONG)
    await c.send(b"PUB  foo \t reply  3 \r\nabc\r\nPING\r\n")
    await c.expect(b"MSG foo 7 reply 3\r\nabc\r\n" + PONG)
    await c.send(b"UNSUB \t 7 \r\nPUB foo 1\r\nx\r\nPING\r\n")
    await c.expect(PONG)


async def test_bare_newline(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false}\nSUB foo 1\nPUB foo 2\nhi\r\nPING\n')
    await c.expect(b"MSG foo 1 2\r\nhi\r\n" + PONG)


async def test_ops_split_byte_by_byte(srv: ServerHandle) -> None:
    c = await srv.connected()
    data = b"SUB foo 1\r\nPUB foo bar 5\r\nhello\r\nPING\r\n"
    for i in range(len(data)):
        await c.send(data[i : i + 1])
    await c.expect(b"MSG foo 1 bar 5\r\nhello\r\n" + PONG)


async def test_payload_with_crlf_inside(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nPUB foo 6\r\n\r\nPI\r\n\r\nPING\r\n")
    await c.expect(b"MSG foo 1 6\r\n\r\nPI\r\n\r\n" + PONG)


async def test_empty_payload(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nPUB foo 0\r\n\r\nPING\r\n")
    await c.expect(b"MSG foo 1 0\r\n\r\n" + PONG)


async def test_large_payload(srv: ServerHandle) -> None:
    c = await srv.connected()
    body = bytes(range(256)) * 4000  # 1,024,000 bytes, under the 1 MiB default
    await c.send(b"SUB foo 1\r\n")
    await c.send(b"PUB foo %d\r\n%s\r\nPING\r\n" % (len(body), body))
    line, got = await c.read_msg()
    assert line == b"MSG foo 1 %d" % len(body)
    assert got == body
    await c.expect(PONG)


# -- PUB / SUB / MSG -----------------------------------------------------------------------


async def test_pub_sub_reply(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nPUB foo reply.to 5\r\nhello\r\nPING\r\n")
    await c.expect(b"MSG foo 1 reply.to 5\r\nhello\r\n" + PONG)


async def test_size_token_copied_byte_for_byte(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nPUB foo 003\r\nabc\r\nPUB foo r 00\r\n\r\nPING\r\n")
    await c.expect(b"MSG foo 1 003\r\nabc\r\nMSG foo 1 r 00\r\n\r\n" + PONG)


async def test_reply_subject_not_validated(srv: ServerHandle) -> None:
    c = await srv.connected(pedantic=True)
    await c.send(b"SUB foo 1\r\nPUB foo bar.* 2\r\nhi\r\nPUB foo bar..> 2\r\nhi\r\nPING\r\n")
    await c.expect(b"MSG foo 1 bar.* 2\r\nhi\r\nMSG foo 1 bar..> 2\r\nhi\r\n" + PONG)


async def test_messages_between_connections(srv: ServerHandle) -> None:
    sub = await srv.connected()
    pub = await srv.connected()
    await sub.send(b"SUB greet.* 9\r\n")
    await sub.ping()
    await pub.send(b"PUB greet.joe _INBOX.1 5\r\nhello\r\n")
    await pub.ping()
    await sub.expect(b"MSG greet.joe 9 _INBOX.1 5\r\nhello\r\n")
    # Reply back.
    await pub.send(b"SUB _INBOX.1 1\r\n")
    await pub.ping()
    await sub.send(b"PUB _INBOX.1 2\r\nok\r\n")
    await pub.expect(b"MSG _INBOX.1 1 2\r\nok\r\n")


async def test_messages_keep_publish_order(srv: ServerHandle) -> None:
    sub = await srv.connected()
    pub = await srv.connected()
    await sub.send(b"SUB seq 1\r\n")
    await sub.ping()
    n = 2000
    await pub.send(b"".join(b"PUB seq %d\r\n%d\r\n" % (len(str(i)), i) for i in range(n)))
    for i in range(n):
        _, body = await sub.read_msg()
        assert body == str(i).encode()


async def test_sub_same_subject_twice_gets_two_copies(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nSUB foo 2\r\nPUB foo 2\r\nhi\r\nPING\r\n")
    sids = sorted([(await c.read_msg())[0], (await c.read_msg())[0]])
    assert sids == [b"MSG foo 1 2", b"MSG foo 2 2"]
    await c.expect(PONG)


async def test_duplicate_sid_is_ignored(srv: ServerHandle) -> None:
    c = await srv.connected(verbose=True)
    await c.send(b"SUB foo 1\r\n")
    await c.expect(OK)
    await c.send(b"SUB bar 1\r\n")
    await c.expect(OK)
    await c.send(b"PUB bar 2\r\nhi\r\nPUB foo 2\r\nok\r\nPING\r\n")
    await c.expect(OK + OK + b"MSG foo 1 2\r\nok\r\n" + PONG)


async def test_unsub_unknown_sid(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"UNSUB 42\r\nUNSUB 43 5\r\nPING\r\n")
    await c.expect(PONG)


async def test_unsub(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1\r\nPUB foo 1\r\nb\r\nPING\r\n")
    await c.expect(b"MSG foo 1 1\r\na\r\n" + PONG)


async def test_unsub_max(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nUNSUB 1 2\r\n")
    await c.send(b"PUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\nPING\r\n")
    await c.expect(b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n" + PONG)
    await c.send(b"PUB foo 1\r\nd\r\nPING\r\n")
    await c.expect(PONG)


async def test_unsub_max_counts_messages_already_delivered(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1 2\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\nPING\r\n")
    await c.expect(b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n" + PONG)


async def test_unsub_max_not_above_delivered_removes_at_once(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nUNSUB 1 2\r\nPUB foo 1\r\nc\r\nPING\r\n")
    await c.expect(b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n" + PONG)


async def test_unsub_zero_removes_at_once(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nUNSUB 1 0\r\nPUB foo 1\r\na\r\nPING\r\n")
    await c.expect(PONG)
    # The sid can be used again.
    await c.send(b"SUB bar 1\r\nPUB bar 1\r\nb\r\nPING\r\n")
    await c.expect(b"MSG bar 1 1\r\nb\r\n" + PONG)


async def test_unsub_max_on_queue_member(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo q 1\r\nUNSUB 1 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPING\r\n")
    await c.expect(b"MSG foo 1 1\r\na\r\n" + PONG)


# -- pedantic / echo -----------------------------------------------------------------------


async def test_pedantic_invalid_publish_subject_still_delivered(srv: ServerHandle) -> None:
    c = await srv.connected(pedantic=True)
    await c.send(b"SUB > 1\r\nPUB foo.* 2\r\nhi\r\nPING\r\n")
    await c.expect(b"-ERR 'Invalid Publish Subject'\r\nMSG foo.* 1 2\r\nhi\r\n" + PONG)
    await c.send(b"PUB foo.> 2\r\nhi\r\nPUB * 2\r\nhi\r\nPING\r\n")
    await c.expect(
        b"-ERR 'Invalid Publish Subject'\r\nMSG foo.> 1 2\r\nhi\r\n"
        b"-ERR 'Invalid Publish Subject'\r\nMSG * 1 2\r\nhi\r\n" + PONG
    )


async def test_pedantic_empty_token_matches_nothing(srv: ServerHandle) -> None:
    c = await srv.connected(pedantic=True)
    await c.send(b"SUB > 1\r\nSUB foo.* 2\r\nPUB foo..bar 2\r\nhi\r\nPING\r\n")
    await c.expect(b"-ERR 'Invalid Publish Subject'\r\n" + PONG)


async def test_not_pedantic_no_error(srv: ServerHandle) -> None:
    c = await srv.connected(pedantic=False)
    await c.send(b"SUB > 1\r\nPUB foo.* 2\r\nhi\r\nPUB foo..bar 2\r\nhi\r\nPING\r\n")
    await c.expect(b"MSG foo.* 1 2\r\nhi\r\n" + PONG)


async def test_pedantic_default_on_without_connect(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b"PUB foo.* 2\r\nhi\r\n")
    await c.expect(b"-ERR 'Invalid Publish Subject'\r\n" + OK)


async def test_echo_false(srv: ServerHandle) -> None:
    c = await srv.connected(echo=False)
    other = await srv.connected()
    await c.send(b"SUB foo 1\r\nSUB foo q 2\r\n")
    await c.ping()
    await c.send(b"PUB foo 4\r\nself\r\nPING\r\n")
    await c.expect(PONG)
    await other.send(b"PUB foo 5\r\nother\r\n")
    await other.ping()
    got = sorted([(await c.read_msg()), (await c.read_msg())])
    assert got == [(b"MSG foo 1 5", b"other"), (b"MSG foo 2 5", b"other")]


async def test_echo_default_true(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n")
    await c.expect(b"MSG foo 1 2\r\nhi\r\n" + PONG)


# -- wildcards -----------------------------------------------------------------------------


async def _sids_for(c: RawClient, subject: bytes) -> list[bytes]:
    await c.send(b"PUB %s 1\r\nx\r\nPING\r\n" % subject)
    sids = []
    while True:
        line = await c.read_line()
        if line == b"PONG":
            return sorted(sids)
        parts = line.split(b" ")
        assert parts[0] == b"MSG" and parts[1] == subject, line
        sids.append(parts[2])
        assert await c.read_line() == b"x"


async def test_wildcards(srv: ServerHandle) -> None:
    c = await srv.connected()
    subs = {b"1": b"foo.*", b"2": b"foo.>", b"3": b">", b"4": b"*.*", b"5": b"foo", b"6": b"foo.b*r",
            b"7": b"*", b"8": b"foo.*.baz", b"9": b"*.bar.>"}  # fmt: skip
    for sid, subj in subs.items():
        await c.send(b"SUB %s %s\r\n" % (subj, sid))
    assert await _sids_for(c, b"foo.bar") == [b"1", b"2", b"3", b"4"]
    assert await _sids_for(c, b"foo") == [b"3", b"5", b"7"]  # foo.> does not match foo
    assert await _sids_for(c, b"foo.b*r") == [b"1", b"2", b"3", b"4", b"6"]  # b*r is literal
    assert await _sids_for(c, b"foo.bar.baz") == [b"2", b"3", b"8", b"9"]
    assert await _sids_for(c, b"x.bar.y.z") == [b"3", b"9"]
    assert await _sids_for(c, b"bar") == [b"3", b"7"]


async def test_published_wildcard_subject_is_literal(srv: ServerHandle) -> None:
    c = await srv.connected(pedantic=False)
    for sid, subj in ((b"1", b"foo.*"), (b"2", b"foo.>"), (b"3", b">"), (b"4", b"*.*"), (b"5", b"foo.bar")):
        await c.send(b"SUB %s %s\r\n" % (subj, sid))
    assert await _sids_for(c, b"foo.*") == [b"1", b"2", b"3", b"4"]


async def test_wildcard_sub_then_unsub(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo.* 1\r\nSUB foo.bar 2\r\n")
    assert await _sids_for(c, b"foo.bar") == [b"1", b"2"]
    await c.send(b"UNSUB 1\r\n")
    assert await _sids_for(c, b"foo.bar") == [b"2"]
    await c.send(b"UNSUB 2\r\n")
    assert await _sids_for(c, b"foo.bar") == []


async def test_queue_names_not_validated(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo q.* 1\r\nSUB foo q> 2\r\nPUB foo 1\r\nx\r\nPING\r\n")
    got = sorted([(await c.read_msg())[0], (await c.read_msg())[0]])
    assert got == [b"MSG foo 1 1", b"MSG foo 2 1"]
    await c.expect(PONG)


# -- queue groups --------------------------------------------------------------------------


async def test_queue_groups_one_member_per_group(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo g1 1\r\nSUB foo g1 2\r\nSUB foo g2 3\r\nSUB foo g2 4\r\nSUB foo 5\r\n")
    n = 200
    await c.send(b"".join(b"PUB foo %d\r\n%d\r\n" % (len(str(i)), i) for i in range(n)) + b"PING\r\n")
    per_msg: dict[bytes, list[bytes]] = {}
    for _ in range(3 * n):
        line, body = await c.read_msg()
        per_msg.setdefault(body, []).append(line.split(b" ")[2])
    await c.expect(PONG)
    counts: Counter[bytes] = Counter()
    for body, sids in per_msg.items():
        assert sorted(sids)[0] in (b"1", b"2") and sorted(sids)[1] in (b"3", b"4"), (body, sids)
        assert sorted(sids)[2] == b"5"
        counts.update(sids)
    assert len(per_msg) == n
    assert counts[b"5"] == n
    assert counts[b"1"] + counts[b"2"] == n and counts[b"3"] + counts[b"4"] == n
    for sid in (b"1", b"2", b"3", b"4"):
        assert counts[sid] >= 60, counts  # ~100 each; 60 is more than 5 sigma away


async def test_queue_group_across_connections(srv: ServerHandle) -> None:
    members = [await srv.connected() for _ in range(3)]
    for i, m in enumerate(members):
        await m.send(b"SUB work.* workers %d\r\n" % i)
        await m.ping()
    pub = await srv.connected()
    n = 300
    await pub.send(b"".join(b"PUB work.x %d\r\n%d\r\n" % (len(str(i)), i) for i in range(n)))
    await pub.ping()
    got: dict[int, list[int]] = {}
    for i, m in enumerate(members):
        got[i] = [int(body) for _, body in await m.msgs_until_pong()]
    # Each message went to exactly one member, and each member got a fair share.
    everything = sorted(b for bodies in got.values() for b in bodies)
    assert everything == list(range(n))
    for bodies in got.values():
        assert bodies == sorted(bodies)
        assert len(bodies) >= 60, {k: len(v) for k, v in got.items()}


async def test_queue_and_plain_on_wildcards(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo.* q 1\r\nSUB foo.bar q 2\r\nSUB foo.> r 3\r\n")
    for _ in range(20):
        sids = await _sids_for(c, b"foo.bar")
        assert len(sids) == 2 and sids[0] in (b"1", b"2") and sids[1] == b"3", sids


# -- async INFO after the first PING ---------------------------------------------------------


async def test_connect_info_after_first_ping_protocol_1(srv: ServerHandle) -> None:
    c = await srv.client()
    first = await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    await c.expect(PONG)
    if TARGET == "go29":
        return
    info = await c.read_info()
    assert info["connect_info"] is True
    assert info["remote_account"] == "$G"
    assert info["server_id"] == first["server_id"]
    assert info["client_id"] == first["client_id"]
    keys = list(info)
    assert keys == sorted(keys, key=_INFO_ORDER.index)
    # Only after the first PING.
    await c.send(b"PING\r\n")
    await c.expect(PONG)
    await c.expect_nothing()


async def test_no_connect_info_for_protocol_0(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b'CONNECT {"verbose":false,"protocol":0}\r\nPING\r\n')
    await c.expect(PONG)
    await c.expect_nothing()


async def test_no_connect_info_without_connect(srv: ServerHandle) -> None:
    c = await srv.client()
    await c.read_info()
    await c.send(b"PING\r\n")
    await c.expect(PONG)
    await c.expect_nothing()


# -- corner cases checked against nats-server 2.14 -------------------------------------------


async def test_second_connect_drops_subscriptions(srv: ServerHandle) -> None:
    """2.14 re-authenticates on a second CONNECT and clears the old subscriptions."""
    c = await srv.connected()
    await c.send(b'SUB foo 1\r\nCONNECT {"verbose":false}\r\nPUB foo 2\r\nhi\r\n')
    assert await c.msgs_until_pong() == []


async def test_sid_reusable_after_auto_unsubscribe(srv: ServerHandle) -> None:
    c = await srv.connected()
    await c.send(b"SUB foo 1\r\nUNSUB 1 1\r\nPUB foo 2\r\nhi\r\nSUB foo 1\r\nPUB foo 2\r\nho\r\n")
    assert await c.msgs_until_pong() == [(b"MSG foo 1 2", b"hi"), (b"MSG foo 1 2", b"ho")]


async def test_echo_false_queue_member_skipped_for_another(srv: ServerHandle) -> None:
    c = await srv.connected(echo=False)
    d = await srv.connected()
    await c.send(b"SUB foo q 1\r\n")
    await c.ping()
    await d.send(b"SUB foo q 2\r\n")
    await d.ping()
    await c.send(b"".join(b"PUB foo 1\r\nx\r\n" for _ in range(20)))
    await c.ping()
    assert len(await d.msgs_until_pong()) == 20
    assert await c.msgs_until_pong() == []
