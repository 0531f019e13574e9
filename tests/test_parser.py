"""The sans-IO parser (pynats_server/protocol/parser.py), without sockets.

A recording handler stands in for the connection. Hypothesis checks that any split of a valid
stream into reads gives the same operations, and that arbitrary bytes raise nothing but
ProtocolError. The example tests follow nats-server's server/parser_test.go.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pynats_server.protocol import wire
from pynats_server.protocol.parser import (
    CLIENT,
    ROUTER,
    Parser,
    ProtocolError,
    parse_size,
    split_args,
    split_pub_args,
)

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


class Recorder:
    """Records every handler call, with payloads copied out of the read buffer."""

    def __init__(self, strict: bool = False) -> None:
        self.ops: list[tuple[Any, ...]] = []
        self.strict = strict

    def on_pub(self, subject: bytes, reply: bytes | None, szb: bytes, msg: Any) -> None:
        self.ops.append(("pub", bytes(subject), _b(reply), bytes(szb), bytes(msg)))

    def on_hpub(self, subject: bytes, reply: bytes | None, hdr: int, hdb: bytes, szb: bytes, msg: Any) -> None:
        self.ops.append(("hpub", bytes(subject), _b(reply), hdr, bytes(hdb), bytes(szb), bytes(msg)))

    def on_sub(self, subject: bytes, queue: bytes | None, sid: bytes) -> None:
        self.ops.append(("sub", bytes(subject), _b(queue), bytes(sid)))

    def on_unsub(self, sid: bytes, max_msgs: int) -> None:
        self.ops.append(("unsub", bytes(sid), max_msgs))

    def on_ping(self) -> None:
        self.ops.append(("ping",))

    def on_pong(self) -> None:
        self.ops.append(("pong",))

    def on_connect(self, arg: bytes) -> None:
        self.ops.append(("connect", bytes(arg)))
        if self.strict:  # what client.py does with the JSON
            try:
                if not isinstance(json.loads(arg), dict):
                    raise ValueError
            except ValueError:
                raise ProtocolError(None, "Protocol Violation", "bad CONNECT") from None

    def on_info(self, arg: bytes) -> None:
        self.ops.append(("info", bytes(arg)))
        if self.strict:
            try:
                json.loads(arg)
            except ValueError:
                raise ProtocolError(None, "Protocol Violation", "bad INFO") from None

    def on_err(self, arg: bytes) -> None:
        self.ops.append(("err", bytes(arg)))

    def send_err(self, text: str) -> None:
        self.ops.append(("send_err", text))

    def on_rs_plus(self, arg: bytes, leaf: bool) -> None:
        self.ops.append(("rs+", bytes(arg), leaf))

    def on_rs_minus(self, arg: bytes, leaf: bool) -> None:
        self.ops.append(("rs-", bytes(arg), leaf))

    def on_rmsg(self, acc: bytes, subject: bytes, reply: bytes | None, queues: Any, szb: bytes, msg: Any) -> None:
        self.ops.append(("rmsg", bytes(acc), bytes(subject), _b(reply), _q(queues), bytes(szb), bytes(msg)))

    def on_rhmsg(
        self, acc: bytes, subject: bytes, reply: bytes | None, queues: Any, hdr: int, hdb: bytes, szb: bytes, msg: Any
    ) -> None:
        self.ops.append(
            ("rhmsg", bytes(acc), bytes(subject), _b(reply), _q(queues), hdr, bytes(hdb), bytes(szb), bytes(msg))
        )


def _b(x: Any) -> bytes | None:
    return None if x is None else bytes(x)


def _q(x: Any) -> tuple[bytes, ...] | None:
    return None if x is None else tuple(bytes(q) for q in x)


def make(kind: int = CLIENT, strict: bool = False, **kw: Any) -> tuple[Parser, Recorder]:
    rec = Recorder(strict)
    p = Parser(rec, kind, **kw)
    if kind == CLIENT:
        p.headers = True
    return p, rec


def feed_chunks(p: Parser, data: bytes, cuts: list[int]) -> None:
    prev = 0
    for c in sorted(set(cuts)):
        if 0 < c < len(data):
            p.feed(data[prev:c])
            prev = c
    p.feed(data[prev:])


def parse_all(data: bytes, kind: int = CLIENT, cuts: list[int] | None = None, **kw: Any) -> list[tuple[Any, ...]]:
    p, rec = make(kind, **kw)
    feed_chunks(p, data, cuts or [])
    return rec.ops


def fails(data: bytes, kind: int = CLIENT, **kw: Any) -> ProtocolError:
    p, rec = make(kind, **kw)
    with pytest.raises(ProtocolError) as ei:
        p.feed(data)
    return ei.value


# -- strategies for valid streams -----------------------------------------------------------

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_-$*>.:"
token = st.text(TOKEN_CHARS, min_size=1, max_size=12).map(str.encode)
sid = st.text("0123456789abc", min_size=1, max_size=6).map(str.encode)
sep = st.sampled_from([b" ", b"\t", b"  ", b" \t ", b"\t\t"])
eol = st.sampled_from([b"\r\n", b"\n"])
trail = st.sampled_from([b"", b"", b" ", b"\t", b" \t"])
payload = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=500, max_size=1500),  # crosses the memoryview threshold
    st.sampled_from([b"\r\n", b"PING\r\n", b"\r\n\r\nPUB x 1\r\n", b""]),
)


@st.composite
def op_name(draw: st.DrawFn, name: bytes) -> bytes:
    """The op name in a random mix of upper and lower case."""
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return bytes(c + 32 if f and 65 <= c <= 90 else c for c, f in zip(name, flips, strict=True))


def size_token(n: int, zeros: int) -> bytes:
    s = b"0" * zeros + str(n).encode()
    return s[-9:] if len(s) > 9 else s


@st.composite
def client_op(draw: st.DrawFn) -> tuple[bytes, list[tuple[Any, ...]]]:
    """(wire bytes, the handler calls expected) for one valid client op."""
    kind = draw(st.sampled_from(["pub", "hpub", "sub", "unsub", "ping", "pong", "ok", "connect", "info"]))
    e = draw(eol)
    if kind in ("pub", "hpub"):
        subject = draw(token)
        reply = draw(st.none() | token)
        body = draw(payload)
        szb = size_token(len(body), draw(st.integers(0, 2)))
        name = draw(op_name(b"PUB" if kind == "pub" else b"HPUB"))
        fields = [subject] + ([reply] if reply else [])
        if kind == "hpub":
            hdr = draw(st.integers(0, len(body)))
            hdb = size_token(hdr, draw(st.integers(0, 1)))
            fields.append(hdb)
        fields.append(szb)
        line = name + draw(sep)
        for f in fields[:-1]:
            line += f + draw(sep)
        line += fields[-1] + draw(trail) + e
        if kind == "pub":
            return line + body + b"\r\n", [("pub", subject, reply, szb, body + b"\r\n")]
        return line + body + b"\r\n", [("hpub", subject, reply, hdr, hdb, szb, body + b"\r\n")]
    if kind == "sub":
        subject = draw(token)
        queue = draw(st.none() | token)
        s = draw(sid)
        fields = [subject] + ([queue] if queue else []) + [s]
        line = draw(op_name(b"SUB")) + draw(sep) + draw(sep).join(fields) + draw(trail) + e
        return line, [("sub", subject, queue, s)]
    if kind == "unsub":
        s = draw(sid)
        mx = draw(st.none() | st.integers(0, 10**6))
        fields = [s] + ([str(mx).encode()] if mx is not None else [])
        line = draw(op_name(b"UNSUB")) + draw(sep) + draw(sep).join(fields) + draw(trail) + e
        return line, [("unsub", s, -1 if mx is None else mx)]
    if kind in ("ping", "pong", "ok"):
        name = draw(op_name({"ping": b"PING", "pong": b"PONG", "ok": b"+OK"}[kind]))
        junk = draw(st.binary(max_size=10).map(lambda b: b.replace(b"\n", b"")))
        return name + junk + e, ([] if kind == "ok" else [(kind,)])
    # CONNECT / INFO: the JSON is handed on as it is.
    obj = draw(st.dictionaries(st.sampled_from(["verbose", "name", "echo", "x"]), st.booleans() | st.text(max_size=8)))
    arg = json.dumps(obj).encode()
    name = draw(op_name(b"CONNECT" if kind == "connect" else b"INFO"))
    gap = draw(st.sampled_from([b"", b" ", b"\t "]))
    return name + gap + arg + e, [(kind, arg)]


@st.composite
def route_op(draw: st.DrawFn) -> tuple[bytes, list[tuple[Any, ...]]]:
    kind = draw(st.sampled_from(["rs+", "rs-", "ls+", "rmsg", "hmsg", "lmsg", "ping", "pong", "connect", "info"]))
    e = draw(eol)
    if kind in ("rs+", "rs-", "ls+"):
        fields = [b"$G", draw(token)]
        if draw(st.booleans()):
            fields.append(draw(token))
            if kind != "rs-":
                fields.append(str(draw(st.integers(1, 5))).encode())
        arg = b" ".join(fields)
        name = {"rs+": b"RS+", "rs-": b"RS-", "ls+": b"LS+"}[kind]
        return draw(op_name(name)) + b" " + arg + e, [("rs-" if kind == "rs-" else "rs+", arg, kind == "ls+")]
    if kind in ("rmsg", "hmsg", "lmsg"):
        acc = draw(st.sampled_from([b"$G", b"ACC"]))
        subject = draw(token)
        reply = draw(st.none() | token)
        queues = draw(st.none() | st.lists(token, min_size=1, max_size=3))
        body = draw(payload)
        szb = size_token(len(body), draw(st.integers(0, 1)))
        fields = [acc, subject]
        if queues:
            fields += [b"+", reply] if reply else [b"|"]
            fields += queues
        elif reply:
            fields.append(reply)
        if kind == "lmsg":
            fields.insert(0, b"origin")
        hdr = draw(st.integers(0, len(body)))
        if kind == "hmsg":
            fields.append(str(hdr).encode())
        fields.append(szb)
        name = {"rmsg": b"RMSG", "hmsg": b"HMSG", "lmsg": b"LMSG"}[kind]
        line = draw(op_name(name)) + b" " + b" ".join(fields) + e
        q = tuple(queues) if queues else None
        if kind == "hmsg":
            exp = ("rhmsg", acc, subject, reply, q, hdr, str(hdr).encode(), szb, body + b"\r\n")
        else:
            exp = ("rmsg", acc, subject, reply, q, szb, body + b"\r\n")
        return line + body + b"\r\n", [exp]
    if kind in ("ping", "pong"):
        return draw(op_name(kind.upper().encode())) + e, [(kind,)]
    arg = json.dumps({"name": draw(st.text(max_size=5))}).encode()
    return kind.upper().encode() + b" " + arg + e, [(kind, arg)]


def stream(op: st.SearchStrategy[tuple[bytes, list[Any]]]) -> st.SearchStrategy[tuple[bytes, list[Any]]]:
    def join(ops: list[tuple[bytes, list[Any]]]) -> tuple[bytes, list[Any]]:
        return b"".join(o[0] for o in ops), [x for o in ops for x in o[1]]

    return st.lists(op, min_size=1, max_size=12).map(join)


cuts = st.lists(st.integers(0, 20000), max_size=12)


# -- properties -----------------------------------------------------------------------------


@SETTINGS
@given(stream(client_op()), cuts)
def test_any_split_gives_the_same_ops(s: tuple[bytes, list[Any]], where: list[int]) -> None:
    data, expected = s
    assert parse_all(data) == expected
    where = [w % (len(data) + 1) for w in where]
    assert parse_all(data, cuts=where) == expected


@settings(max_examples=40, deadline=None)
@given(stream(client_op()))
def test_byte_by_byte_gives_the_same_ops(s: tuple[bytes, list[Any]]) -> None:
    data, expected = s
    p, rec = make()
    for i in range(len(data)):
        p.feed(data[i : i + 1])
    assert rec.ops == expected


@SETTINGS
@given(stream(route_op()), cuts)
def test_route_stream_any_split(s: tuple[bytes, list[Any]], where: list[int]) -> None:
    data, expected = s
    assert parse_all(data, ROUTER) == expected
    where = [w % (len(data) + 1) for w in where]
    assert parse_all(data, ROUTER, cuts=where) == expected


def _feed_until_error(p: Parser, data: bytes, where: list[int]) -> None:
    try:
        feed_chunks(p, data, [w % (len(data) + 1) for w in where])
    except ProtocolError as e:
        assert e.err is None or isinstance(e.err, str)


@SETTINGS
@given(st.binary(max_size=300), cuts, st.sampled_from([CLIENT, ROUTER]), st.booleans(), st.booleans())
def test_arbitrary_bytes_raise_only_protocol_error(
    data: bytes, where: list[int], kind: int, await_connect: bool, pedantic: bool
) -> None:
    p, _ = make(kind)
    p.await_connect = await_connect
    p.pedantic = pedantic
    _feed_until_error(p, data, where)


noise = st.one_of(
    st.binary(max_size=6),
    st.sampled_from([b"\r", b"\n", b"\r\n", b" ", b"\t", b"PUB ", b"HPUB ", b"SUB ", b"9", b"-1", b"RMSG ",
                     b"MSG ", b"+", b"|", b"CONNECT ", b"PING", b"999999999", b"{"]),
)  # fmt: skip


@SETTINGS
@given(stream(client_op()), st.lists(st.tuples(st.integers(0, 5000), noise), min_size=1, max_size=5), cuts,
       st.sampled_from([CLIENT, ROUTER]))  # fmt: skip
def test_mutated_streams_raise_only_protocol_error(
    s: tuple[bytes, list[Any]], edits: list[tuple[int, bytes]], where: list[int], kind: int
) -> None:
    data = s[0]
    for pos, junk in edits:
        pos %= len(data) + 1
        data = data[:pos] + junk + data[pos + len(junk) // 2 :]
    p, _ = make(kind, max_payload=2000)
    p.pedantic = True
    _feed_until_error(p, data, where)


@st.composite
def plain_msg(draw: st.DrawFn, route: bool = False) -> tuple[bytes, list[tuple[Any, ...]]]:
    """A PUB (or RMSG) as usually written: the form the split runs take (Parser._split_run)."""
    subject = draw(token)
    reply = draw(st.none() | token)
    body = draw(payload)
    szb = size_token(len(body), draw(st.integers(0, 1)))
    head = b"RMSG $G " if route else b"PUB "
    line = head + subject + b" " + (reply + b" " if reply else b"") + szb + b"\r\n"
    if route:
        return line + body + b"\r\n", [("rmsg", b"$G", subject, reply, None, szb, body + b"\r\n")]
    return line + body + b"\r\n", [("pub", subject, reply, szb, body + b"\r\n")]


@st.composite
def near_msg(draw: st.DrawFn, route: bool = False) -> tuple[bytes, list[tuple[Any, ...]]]:
    """A usual PUB (or RMSG) with one thing wrong or unusual (expected calls not used)."""
    subject, body = draw(token), draw(payload)
    reply = draw(st.none() | token)
    op, szb, sp, end = (b"RMSG $G" if route else b"PUB"), str(len(body)).encode(), b" ", b"\r\n"
    odd_ops = [b"rmsg $G", b"LMSG o $G", b"HMSG $G", b"RS+ $G", b"RMSG $\tG", b"RMSG"] if route else \
        [b"pub", b"SUB", b"HPUB", b"MSG", b"PUBX", b"PU"]
    what = draw(st.sampled_from(["op", "ws_subject", "ws_reply", "space", "trail", "size", "digits", "big", "queue"]))
    if what == "op":
        op = draw(st.sampled_from(odd_ops))
    elif what == "ws_subject":
        subject = subject[:1] + draw(st.sampled_from([b"\t", b"\r", b"\n"])) + subject[1:]
    elif what == "ws_reply":
        reply = (reply or b"r") + draw(st.sampled_from([b"\t", b"\r", b"\n", b"\t1"]))
    elif what == "space":
        sp = draw(st.sampled_from([b"  ", b"\t", b" \t"]))
    elif what == "trail":
        end = draw(st.sampled_from([b" \r\n", b"\n", b"\t\r\n"]))
    elif what == "size":
        szb = str(max(0, len(body) + draw(st.sampled_from([-2, -1, 1, 2])))).encode()
    elif what == "digits":
        szb = b"0" * draw(st.integers(5, 12)) + szb
    elif what == "big":
        body = b"x" * draw(st.integers(1201, 1300))
        szb = str(len(body)).encode()
    else:
        reply = draw(st.sampled_from([b"+ r q", b"| q", b"+", b"|"]))
    line = op + b" " + subject + sp + (reply + b" " if reply else b"") + szb + end
    return line + body + b"\r\n", []


def _outcome(data: bytes, where: list[int], split_run: bool, monkeypatch: pytest.MonkeyPatch,
             kind: int = CLIENT) -> tuple[Any, ...]:
    from pynats_server.protocol import parser as parser_module

    monkeypatch.setattr(parser_module, "_RUN_AVG", 1 << 30 if split_run else 0)
    p, rec = make(kind, max_payload=1200)
    try:
        feed_chunks(p, data, [w % (len(data) + 1) for w in where])
        err: Any = None
    except ProtocolError as e:
        err = (e.err, e.reason)
    return rec.ops, err, p.in_msgs, p.in_bytes


RUN_SETTINGS = settings(max_examples=600, deadline=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check_run(kind: int, ops: list[tuple[bytes, list[Any]]], edits: list[tuple[int, bytes]], where: list[int]) -> None:
    data = b"".join(o[0] for o in ops)
    for pos, junk in edits:
        pos %= len(data) + 1
        data = data[:pos] + junk + data[pos + len(junk) // 2 :]
    with pytest.MonkeyPatch.context() as mp:
        assert _outcome(data, where, True, mp, kind) == _outcome(data, where, False, mp, kind)


@RUN_SETTINGS
@given(st.lists(plain_msg(), max_size=4), st.one_of(near_msg(), client_op()),
       st.lists(st.one_of(plain_msg(), near_msg(), client_op()), max_size=6),
       st.lists(st.tuples(st.integers(0, 5000), noise), max_size=2), cuts)  # fmt: skip
def test_split_run_agrees_with_the_line_by_line_path(
    run: list[tuple[bytes, list[Any]]], odd: tuple[bytes, list[Any]], rest: list[tuple[bytes, list[Any]]],
    edits: list[tuple[int, bytes]], where: list[int],
) -> None:
    """The split run is only a faster way: same calls, same error, same counters. A run of
    usual PUBs, then an odd one (near_msg) or another op, then anything, maybe with noise."""
    _check_run(CLIENT, [*run, odd, *rest], edits, where)


@RUN_SETTINGS
@given(st.lists(plain_msg(route=True), max_size=4), st.one_of(near_msg(route=True), route_op()),
       st.lists(st.one_of(plain_msg(route=True), near_msg(route=True), route_op()), max_size=6),
       st.lists(st.tuples(st.integers(0, 5000), noise), max_size=2), cuts)  # fmt: skip
def test_route_split_run_agrees_with_the_line_by_line_path(
    run: list[tuple[bytes, list[Any]]], odd: tuple[bytes, list[Any]], rest: list[tuple[bytes, list[Any]]],
    edits: list[tuple[int, bytes]], where: list[int],
) -> None:
    """The same for RMSG on routes (Parser._rmsg_pairs)."""
    _check_run(ROUTER, [*run, odd, *rest], edits, where)


@SETTINGS
@given(stream(client_op()), cuts)
def test_ops_before_an_error_are_dispatched(s: tuple[bytes, list[Any]], where: list[int]) -> None:
    data, expected = s
    data += b"ZZZ\r\n"
    p, rec = make()
    with pytest.raises(ProtocolError) as ei:
        feed_chunks(p, data, [w % (len(data) + 1) for w in where])
    assert ei.value.err == wire.E_UNKNOWN_OP
    assert rec.ops == expected


# -- nats-server TestShouldFail -------------------------------------------------------------

SHOULD_FAIL = [
    "xxx",
    "Px", "PIx", "PINx", " PING",
    "POx", "PONx",
    "+x", "+Ox",
    "-x", "-Ex", "-ERx", "-ERRx",
    "Cx", "COx", "CONx", "CONNx", "CONNEx", "CONNECx", "CONNECx", "CONNECT \r\n",
    "PUx", "PUB foo\r\n", "PUB  \r\n", "PUB foo bar       \r\n",
    "PUB foo 2\r\nok \r\n", "PUB foo 2\r\nok\r \n",
    "Sx", "SUx", "SUB\r\n", "SUB  \r\n", "SUB foo\r\n",
    "SUB foo bar baz 22\r\n",
    "Ux", "UNx", "UNSx", "UNSUx", "UNSUBx", "UNSUBUNSUB 1\r\n", "UNSUB_2\r\n",
    "UNSUB_UNSUB_UNSUB 2\r\n", "UNSUB_\t2\r\n", "UNSUB\r\n", "UNSUB \r\n",
    "UNSUB          \t       \r\n",
    "Ix", "INx", "INFx", "INFO  \r\n",
]  # fmt: skip


@pytest.mark.parametrize("proto", SHOULD_FAIL)
def test_should_fail(proto: str) -> None:
    # CONNECT and INFO fail on their (empty) JSON, as in nats-server's processConnect.
    fails(proto.encode(), strict=True)


@pytest.mark.parametrize("proto", SHOULD_FAIL)
def test_should_fail_byte_by_byte(proto: str) -> None:
    p, _ = make(strict=True)
    data = proto.encode()
    with pytest.raises(ProtocolError):
        for i in range(len(data)):
            p.feed(data[i : i + 1])


@pytest.mark.parametrize("proto", ["Mx", "MSx", "MSGx", "MSG  \r\n", "MSG $foo foo 5\r\nhello\r"])
def test_should_fail_route(proto: str) -> None:
    fails(proto.encode(), ROUTER)


@pytest.mark.parametrize("proto", ["M", "MSG foo 1 2\r\nhi\r\n", "RS+ $G foo\r\n", "RMSG $G foo 2\r\n",
                                   "LS+ $G foo\r\n", "A+ foo\r\n", "LMSG x\r\n"])  # fmt: skip
def test_client_must_not_send_route_ops(proto: str) -> None:
    assert fails(proto.encode()).err == wire.E_UNKNOWN_OP


# -- PING / PONG / +OK ----------------------------------------------------------------------


def test_ping_in_pieces() -> None:
    p, rec = make()
    for b in b"PING\r\n":
        p.feed(bytes([b]))
    assert rec.ops == [("ping",)]
    p.feed(b"PING  \r")
    assert rec.ops == [("ping",)]
    p.feed(b"  \n")
    assert rec.ops == [("ping",), ("ping",)]


@pytest.mark.parametrize("line", [b"PING extra junk\r\n", b"PING\t\r\n", b"PINGPONG\r\n", b"ping\n", b"PiNg x\r \n"])
def test_ping_ignores_rest_of_line(line: bytes) -> None:
    assert parse_all(line) == [("ping",)]


def test_pong_and_ok() -> None:
    assert parse_all(b"PONG whatever\r\n+OK\r\n+ok yes\n+OKAY\r\npong\n") == [("pong",), ("pong",)]


# -- CONNECT / INFO / -ERR ------------------------------------------------------------------


def test_connect() -> None:
    arg = b'{"verbose":false,"pedantic":true,"tls_required":false}'
    assert parse_all(b"CONNECT " + arg + b"\r\n") == [("connect", arg)]
    assert parse_all(b"CONNECT" + arg + b"\r\n") == [("connect", arg)]
    assert parse_all(b"connect \t " + arg + b"\n") == [("connect", arg)]


def test_connect_json_split_across_reads() -> None:
    p, rec = make()
    p.feed(b'CONNECT {"verbose":true,"user":"test"')
    assert rec.ops == []
    p.feed(b"}")
    p.feed(b"\r\n")
    assert rec.ops == [("connect", b'{"verbose":true,"user":"test"}')]


def test_connect_empty_arg_is_bad_json() -> None:
    err = fails(b"CONNECT \r\n", strict=True)
    assert err.err is None  # closed without -ERR


def test_client_info_and_err() -> None:
    assert parse_all(b'INFO {"a":1}\r\n-ERR \'oops\'\r\n') == [("info", b'{"a":1}'), ("err", b"'oops'")]


# -- PUB ------------------------------------------------------------------------------------


def test_pub() -> None:
    assert parse_all(b"PUB foo 5\r\nhello\r\n") == [("pub", b"foo", None, b"5", b"hello\r\n")]
    assert parse_all(b"PUB foo.bar INBOX.22 11\r\nhello world\r\n") == [
        ("pub", b"foo.bar", b"INBOX.22", b"11", b"hello world\r\n")
    ]


def test_pub_waits_for_payload_end() -> None:
    p, rec = make()
    p.feed(b"PUB foo 5\r\nhello\r")
    assert rec.ops == []
    p.feed(b"\n")
    assert rec.ops == [("pub", b"foo", None, b"5", b"hello\r\n")]


def test_pub_longer_than_declared() -> None:
    assert fails(b"PUB foo.bar 11\r\nhello world hello world\r").err == wire.E_UNKNOWN_OP


@pytest.mark.parametrize(
    "data",
    [b"PUB foo 2\r\nokX\r\n", b"PUB foo 2\r\nok\rX", b"PUB foo 2\r\nok\n\r", b"PUB foo 2\r\nok \r\n",
     b"PUB foo 2\r\nok\r \n", b"PUB foo 0\r\nX"],
)  # fmt: skip
def test_payload_must_end_with_crlf(data: bytes) -> None:
    assert fails(data).err == wire.E_UNKNOWN_OP
    # ... also when the bytes come one at a time.
    p, _ = make()
    with pytest.raises(ProtocolError) as ei:
        for i in range(len(data)):
            p.feed(data[i : i + 1])
    assert ei.value.err == wire.E_UNKNOWN_OP


def test_pub_size_overflow() -> None:
    """nats-server TestParsePubSizeOverflow (CVE-2019-13126)."""
    e = fails(b"PUB foo 3333333333333333333333333333333333333333333333333333333333333333\r\n")
    assert e.err is None


def test_pub_bad_size_with_max_payload() -> None:
    assert fails(b"PUB foo 2222222222222222\r\n", max_payload=32768).err is None


@pytest.mark.parametrize(
    "arg",
    [b"foo -1", b"foo 1x", b"foo x", b"foo +1", b"foo 1.0", b"foo", b"a b c 1", b"", b"foo 0x10", b"foo 1234567890"],
)
def test_pub_bad_args_close_without_err(arg: bytes) -> None:
    assert fails(b"PUB " + arg + b"\r\n").err is None


# nats-server TestParsePubArg
PUB_ARGS = [
    ("a 2", "a", "", 2, "2"),
    ("a 222", "a", "", 222, "222"),
    ("foo 22", "foo", "", 22, "22"),
    (" foo 22", "foo", "", 22, "22"),
    ("foo 22 ", "foo", "", 22, "22"),
    ("foo   22", "foo", "", 22, "22"),
    (" foo 22 ", "foo", "", 22, "22"),
    (" foo   22 ", "foo", "", 22, "22"),
    ("foo bar 22", "foo", "bar", 22, "22"),
    (" foo bar 22", "foo", "bar", 22, "22"),
    ("foo bar 22 ", "foo", "bar", 22, "22"),
    ("foo  bar  22", "foo", "bar", 22, "22"),
    (" foo bar 22 ", "foo", "bar", 22, "22"),
    ("  foo   bar  22  ", "foo", "bar", 22, "22"),
    ("  foo   bar  2222  ", "foo", "bar", 2222, "2222"),
    ("  foo     2222  ", "foo", "", 2222, "2222"),
    ("a\t2", "a", "", 2, "2"),
    ("a\t222", "a", "", 222, "222"),
    ("foo\t22", "foo", "", 22, "22"),
    ("\tfoo\t22", "foo", "", 22, "22"),
    ("foo\t22\t", "foo", "", 22, "22"),
    ("foo\t\t\t22", "foo", "", 22, "22"),
    ("\tfoo\t22\t", "foo", "", 22, "22"),
    ("\tfoo\t\t\t22\t", "foo", "", 22, "22"),
    ("foo\tbar\t22", "foo", "bar", 22, "22"),
    ("\tfoo\tbar\t22", "foo", "bar", 22, "22"),
    ("foo\tbar\t22\t", "foo", "bar", 22, "22"),
    ("foo\t\tbar\t\t22", "foo", "bar", 22, "22"),
    ("\tfoo\tbar\t22\t", "foo", "bar", 22, "22"),
    ("\t \tfoo\t \t \tbar\t \t22\t \t", "foo", "bar", 22, "22"),
    ("\t\tfoo\t\t\tbar\t\t2222\t\t", "foo", "bar", 2222, "2222"),
    ("\t \tfoo\t \t \t\t\t2222\t \t", "foo", "", 2222, "2222"),
]


@pytest.mark.parametrize(("arg", "subject", "reply", "size", "szb"), PUB_ARGS)
def test_pub_arg_forms(arg: str, subject: str, reply: str, size: int, szb: str) -> None:
    body = b"x" * size
    for e in (b"\r\n", b"\n"):
        ops = parse_all(b"PUB " + arg.encode() + e + body + b"\r\n")
        assert ops == [("pub", subject.encode(), reply.encode() or None, szb.encode(), body + b"\r\n")]
    assert split_pub_args(arg.encode()) == [t.encode() for t in (subject, reply, szb) if t]


# nats-server TestParseHeaderPubArg
HPUB_ARGS = [
    ("a 2 4", "a", "", 2, 4, "4"),
    ("a 22 222", "a", "", 22, 222, "222"),
    ("foo 3 22", "foo", "", 3, 22, "22"),
    (" foo   1 22", "foo", "", 1, 22, "22"),
    ("foo 0   22 ", "foo", "", 0, 22, "22"),
    ("foo  0     22", "foo", "", 0, 22, "22"),
    (" foo 1 22 ", "foo", "", 1, 22, "22"),
    (" foo   3 22 ", "foo", "", 3, 22, "22"),
    ("foo bar 1 22", "foo", "bar", 1, 22, "22"),
    (" foo bar 11 22", "foo", "bar", 11, 22, "22"),
    ("foo bar 11 22 ", "foo", "bar", 11, 22, "22"),
    ("foo  bar  11  22", "foo", "bar", 11, 22, "22"),
    (" foo bar  11 22 ", "foo", "bar", 11, 22, "22"),
    ("  foo   bar  11   22  ", "foo", "bar", 11, 22, "22"),
    ("  foo   bar  22   2222  ", "foo", "bar", 22, 2222, "2222"),
    ("  foo 1    2222  ", "foo", "", 1, 2222, "2222"),
    ("a\t2\t22", "a", "", 2, 22, "22"),
    ("a\t2\t\t222", "a", "", 2, 222, "222"),
    ("foo\t2 22", "foo", "", 2, 22, "22"),
    ("\tfoo\t11\t  22", "foo", "", 11, 22, "22"),
    ("foo\t11\t22\t", "foo", "", 11, 22, "22"),
    ("foo\t\t\t11 22", "foo", "", 11, 22, "22"),
    ("\tfoo\t11\t \t 22\t", "foo", "", 11, 22, "22"),
    ("\tfoo\t\t\t11 22\t", "foo", "", 11, 22, "22"),
    ("foo\tbar\t2 22", "foo", "bar", 2, 22, "22"),
    ("\tfoo\tbar\t11\t22", "foo", "bar", 11, 22, "22"),
    ("foo\tbar\t11\t\t22\t ", "foo", "bar", 11, 22, "22"),
    ("foo\t\tbar\t\t11\t\t\t22", "foo", "bar", 11, 22, "22"),
    ("\tfoo\tbar\t11\t22\t", "foo", "bar", 11, 22, "22"),
    ("\t \tfoo\t \t \tbar\t \t11\t 22\t \t", "foo", "bar", 11, 22, "22"),
    ("\t\tfoo\t\t\tbar\t\t22\t\t\t2222\t\t", "foo", "bar", 22, 2222, "2222"),
    ("\t \tfoo\t \t \t\t\t11\t\t 2222\t \t", "foo", "", 11, 2222, "2222"),
]


@pytest.mark.parametrize(("arg", "subject", "reply", "hdr", "size", "szb"), HPUB_ARGS)
def test_hpub_arg_forms(arg: str, subject: str, reply: str, hdr: int, size: int, szb: str) -> None:
    body = b"h" * size
    ops = parse_all(b"HPUB " + arg.encode() + b"\r\n" + body + b"\r\n")
    assert len(ops) == 1
    op = ops[0]
    assert op[:4] == ("hpub", subject.encode(), reply.encode() or None, hdr)
    assert int(op[4]) == hdr and op[5] == szb.encode() and op[6] == body + b"\r\n"


def test_hpub() -> None:
    assert parse_all(b"HPUB foo 12 17\r\nname:derek\r\nHELLO\r\n") == [
        ("hpub", b"foo", None, 12, b"12", b"17", b"name:derek\r\nHELLO\r\n")
    ]
    assert parse_all(b"HPUB foo INBOX.22 0 5\r\nHELLO\r\n") == [
        ("hpub", b"foo", b"INBOX.22", 0, b"0", b"5", b"HELLO\r\n")
    ]


def test_hpub_needs_headers() -> None:
    p, _ = make()
    p.headers = False
    with pytest.raises(ProtocolError) as ei:
        p.feed(b"HPUB foo 12 17\r\n")
    assert ei.value.err is None


@pytest.mark.parametrize("arg", [b"foo 3 2", b"foo 2", b"foo -1 2", b"foo x 2", b"a b c 1 2", b"foo 1 x"])
def test_hpub_bad_args(arg: bytes) -> None:
    assert fails(b"HPUB " + arg + b"\r\n").err is None


# -- SUB / UNSUB ----------------------------------------------------------------------------


def test_sub_forms() -> None:
    assert parse_all(b"SUB foo 1\r\n") == [("sub", b"foo", None, b"1")]
    assert parse_all(b"SUB foo bar 1\r\n") == [("sub", b"foo", b"bar", b"1")]
    assert parse_all(b"SUB\t foo \t q1  7\r\n") == [("sub", b"foo", b"q1", b"7")]
    assert parse_all(b"sub foo 1\n") == [("sub", b"foo", None, b"1")]


def test_sub_waits_for_newline() -> None:
    p, rec = make()
    p.feed(b"SUB foo 1\r")
    assert rec.ops == []
    p.feed(b"\n")
    assert rec.ops == [("sub", b"foo", None, b"1")]


def test_newline_right_after_op_starts_the_argument() -> None:
    """nats-server's state machine takes the byte after the op's spaces as the argument's
    first byte, even a newline; the argument then runs to the next newline."""
    assert parse_all(b"SUB \nfoo 1\r\n") == [("sub", b"foo", None, b"1")]


def test_unsub_forms() -> None:
    assert parse_all(b"UNSUB 1\r\nUNSUB 2 5\r\nunsub\t3\t0\n") == [
        ("unsub", b"1", -1), ("unsub", b"2", 5), ("unsub", b"3", 0)
    ]


def test_unsub_bad_max_is_negative() -> None:
    # parseSize failing gives -1: "unsubscribe now" (nats-server processUnsub).
    assert parse_all(b"UNSUB 1 x\r\n") == [("unsub", b"1", -1)]


@pytest.mark.parametrize("data", [b"SUB foo\r\n", b"SUB a b c d\r\n", b"UNSUB 1 2 3\r\n", b"UNSUB \r\n"])
def test_sub_unsub_bad_arg_counts(data: bytes) -> None:
    assert fails(data).err is None


# -- case, whitespace, newlines -------------------------------------------------------------


def test_case_insensitive_ops() -> None:
    data = b'cOnNeCt {}\r\nSuB foo 1\r\npUb foo 2\r\nhi\r\nhpub foo 0 2\r\nho\r\nPiNg\r\npOnG\r\n+ok\r\nUnSuB 1\r\n'
    assert [op[0] for op in parse_all(data)] == ["connect", "sub", "pub", "hpub", "ping", "pong", "unsub"]


def test_bare_newlines() -> None:
    assert parse_all(b"SUB foo 1\nPUB foo 2\nhi\r\nPING\n") == [
        ("sub", b"foo", None, b"1"), ("pub", b"foo", None, b"2", b"hi\r\n"), ("ping",)
    ]


@pytest.mark.parametrize("data", [b"PUBfoo 2\r\n", b"SUBfoo 1\r\n", b"UNSUB1\r\n", b"HPUBfoo 0 2\r\n", b"PUB\r\n"])
def test_space_required_after_op(data: bytes) -> None:
    assert fails(data).err == wire.E_UNKNOWN_OP


def test_bad_op_byte_fails_without_newline() -> None:
    assert fails(b"PUX").err == wire.E_UNKNOWN_OP
    p, rec = make()
    p.feed(b"PU")
    with pytest.raises(ProtocolError):
        p.feed(b"X")


# -- pedantic -------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", [b"foo.*", b"foo.>", b"*", b">", b"foo..bar", b".foo", b"foo."])
def test_pedantic_invalid_publish_subject(subject: bytes) -> None:
    for line in (b"PUB %s 2\r\nhi\r\n" % subject, b"PUB\t%s 2\r\nhi\r\n" % subject):
        p, rec = make()
        p.pedantic = True
        p.feed(line)
        # The error is sent, and the message still handed on.
        assert rec.ops == [("send_err", wire.E_INVALID_PUB_SUBJECT), ("pub", subject, None, b"2", b"hi\r\n")]


@pytest.mark.parametrize("subject", [b"foo.b*r", b"foo", b"a.b.c", b"*x", b"x>"])
def test_pedantic_valid_publish_subject(subject: bytes) -> None:
    p, rec = make()
    p.pedantic = True
    p.feed(b"PUB %s 2\r\nhi\r\n" % subject)
    assert rec.ops == [("pub", subject, None, b"2", b"hi\r\n")]


def test_not_pedantic_no_error() -> None:
    assert parse_all(b"PUB foo.* 2\r\nhi\r\n") == [("pub", b"foo.*", None, b"2", b"hi\r\n")]


# -- await_connect (auth pending) -----------------------------------------------------------


@pytest.mark.parametrize("data", [b"PING\r\n", b"SUB foo 1\r\n", b"PUB foo 0\r\n\r\n", b"x", b" CONNECT {}\r\n"])
def test_await_connect_refuses_other_ops(data: bytes) -> None:
    p, rec = make()
    p.await_connect = True
    with pytest.raises(ProtocolError) as ei:
        p.feed(data)
    assert ei.value.err == wire.E_AUTH_VIOLATION
    assert rec.ops == []


def test_await_connect_allows_connect() -> None:
    p, rec = make()
    p.await_connect = True
    p.feed(b"connect {}\r\n")
    assert rec.ops == [("connect", b"{}")]


# -- limits ---------------------------------------------------------------------------------


def _cl_lines() -> list[tuple[str, bytes, bytes]]:
    """(name, a line whose argument is exactly 4096 bytes, the same with 4097)."""
    out = []
    for n in (4096, 4097):
        sub = b"SUB " + b"s" * (n - 2) + b" 1\r\n"
        pub = b"PUB " + b"p" * (n - 2) + b" 2\r\nhi\r\n"
        pad = b"x" * (n - len(b'{"name":""}'))
        con = b'CONNECT {"name":"' + pad + b'"}\r\n'
        unsub = b"UNSUB " + b"9" * n + b"\r\n"
        out.append([("sub", sub), ("pub", pub), ("connect", con), ("unsub", unsub)])
    return [(a[0], a[1], b[1]) for a, b in zip(out[0], out[1], strict=True)]


@pytest.mark.parametrize(("name", "ok", "bad"), _cl_lines(), ids=[x[0] for x in _cl_lines()])
def test_control_line_limit(name: str, ok: bytes, bad: bytes) -> None:
    assert len(parse_all(ok)) == 1
    assert fails(bad).err == wire.E_MAX_CONTROL_LINE


@pytest.mark.parametrize(("name", "ok", "bad"), _cl_lines(), ids=[x[0] for x in _cl_lines()])
def test_control_line_limit_in_pieces(name: str, ok: bytes, bad: bytes) -> None:
    """Two reads, cut anywhere: 4096 always passes, 4097 always fails."""
    for cut in range(1, len(ok)):
        p, rec = make()
        p.feed(ok[:cut])
        p.feed(ok[cut:])
        assert len(rec.ops) == 1, cut
    for cut in range(1, len(bad)):
        p, rec = make()
        with pytest.raises(ProtocolError) as ei:
            p.feed(bad[:cut])
            p.feed(bad[cut:])
        assert ei.value.err == wire.E_MAX_CONTROL_LINE, cut


def test_control_line_fails_before_newline() -> None:
    p, _ = make()
    p.feed(b"PUB foo " + b"2" * 4000)
    with pytest.raises(ProtocolError) as ei:
        p.feed(b"2" * 100)
    assert ei.value.err == wire.E_MAX_CONTROL_LINE


def test_control_line_payload_not_counted() -> None:
    body = b"p" * 10000
    assert parse_all(b"PUB foo 10000\r\n" + body + b"\r\n") == [("pub", b"foo", None, b"10000", body + b"\r\n")]


def test_max_control_line_small() -> None:
    """nats-server TestMaxControlLine: mcl 8 fails a client, even on a partial line."""
    pub = b"PUB foo.bar.baz 2\r\nok\r\n"
    assert fails(pub[:14], max_control_line=8).err == wire.E_MAX_CONTROL_LINE
    assert fails(pub, max_control_line=8).err == wire.E_MAX_CONTROL_LINE
    # Routes get 16 times the limit.
    rs = b"RS+ $G foo.bar.baz\r\n"
    assert parse_all(rs, ROUTER, max_control_line=8) == [("rs+", b"$G foo.bar.baz", False)]


@pytest.mark.parametrize("off", [-1, 0, 1])
def test_max_control_line_route_upper_bound(off: int) -> None:
    """nats-server TestMaxControlLineNonClientUpperBound: 16 x 4096 for routes, across reads."""
    limit = 4096 * 16
    arg = b"x" * (limit + off)
    p, _ = make(ROUTER)
    p.feed(b"RMSG " + arg[: limit // 2])
    if off <= 0:
        p.feed(arg[limit // 2 :])
    else:
        with pytest.raises(ProtocolError) as ei:
            p.feed(arg[limit // 2 :])
        assert ei.value.err == wire.E_MAX_CONTROL_LINE


def test_max_payload() -> None:
    assert len(parse_all(b"PUB foo 10\r\n0123456789\r\n", max_payload=10)) == 1
    for data in (b"PUB foo 11\r\n", b"PUB\tfoo 11\r\n", b"PUB foo r 11\r\n", b"HPUB foo 2 11\r\n"):
        e = fails(data, max_payload=10)
        assert e.err == wire.E_MAX_PAYLOAD
    # Checked on the declared size, before any payload byte.
    p, _ = make(max_payload=10)
    with pytest.raises(ProtocolError):
        p.feed(b"PUB foo 11\r")
        p.feed(b"\n")


def test_route_has_no_max_payload() -> None:
    body = b"r" * 2000
    assert parse_all(b"RMSG $G foo 2000\r\n" + body + b"\r\n", ROUTER, max_payload=10) == [
        ("rmsg", b"$G", b"foo", None, None, b"2000", body + b"\r\n")
    ]


# -- route ops ------------------------------------------------------------------------------


def test_route_rmsg_forms() -> None:
    data = (
        b"RMSG $foo foo 5\r\nhello\r\n"
        b"RMSG $G foo.bar INBOX.22 11\r\nhello world\r\n"
        b"RMSG $G foo.bar + reply baz 11\r\nhello world\r\n"
        b"RMSG $G foo.bar | baz 11\r\nhello world\r\n"
        b"RMSG $G foo.bar + reply q1 q2 q3 2\r\nhi\r\n"
        b"RMSG $G foo.bar | q1 q2 2\r\nhi\r\n"
    )
    for cuts_ in ([], list(range(len(data)))):
        assert parse_all(data, ROUTER, cuts=cuts_) == [
            ("rmsg", b"$foo", b"foo", None, None, b"5", b"hello\r\n"),
            ("rmsg", b"$G", b"foo.bar", b"INBOX.22", None, b"11", b"hello world\r\n"),
            ("rmsg", b"$G", b"foo.bar", b"reply", (b"baz",), b"11", b"hello world\r\n"),
            ("rmsg", b"$G", b"foo.bar", None, (b"baz",), b"11", b"hello world\r\n"),
            ("rmsg", b"$G", b"foo.bar", b"reply", (b"q1", b"q2", b"q3"), b"2", b"hi\r\n"),
            ("rmsg", b"$G", b"foo.bar", None, (b"q1", b"q2"), b"2", b"hi\r\n"),
        ]


def test_route_hmsg_forms() -> None:
    """nats-server TestParseRoutedHeaderMsg."""
    assert fails(b"HMSG $foo foo 10 8\r\nXXXhello\r", ROUTER).err is None
    data = (
        b"HMSG $foo foo 3 8\r\nXXXhello\r\n"
        b"HMSG $G foo.bar INBOX.22 3 14\r\nOK:hello world\r\n"
        b"HMSG $G foo.bar + reply baz 3 14\r\nOK:hello world\r\n"
        b"HMSG $G foo.bar | baz 3 14\r\nOK:hello world\r\n"
    )
    assert parse_all(data, ROUTER) == [
        ("rhmsg", b"$foo", b"foo", None, None, 3, b"3", b"8", b"XXXhello\r\n"),
        ("rhmsg", b"$G", b"foo.bar", b"INBOX.22", None, 3, b"3", b"14", b"OK:hello world\r\n"),
        ("rhmsg", b"$G", b"foo.bar", b"reply", (b"baz",), 3, b"3", b"14", b"OK:hello world\r\n"),
        ("rhmsg", b"$G", b"foo.bar", None, (b"baz",), 3, b"3", b"14", b"OK:hello world\r\n"),
    ]


def test_route_rs_ops() -> None:
    data = b"RS+ $G foo\r\nRS+ $G foo q 3\r\nRS- $G foo\r\nRS- $G foo q\r\nLS+ $G bar\r\nLS- $G bar\r\nrs+ $G x\n"
    assert parse_all(data, ROUTER) == [
        ("rs+", b"$G foo", False),
        ("rs+", b"$G foo q 3", False),
        ("rs-", b"$G foo", False),
        ("rs-", b"$G foo q", False),
        ("rs+", b"$G bar", True),
        ("rs-", b"$G bar", True),
        ("rs+", b"$G x", False),
    ]


def test_route_lmsg_drops_origin() -> None:
    assert parse_all(b"LMSG origin $G foo + r q 2\r\nhi\r\n", ROUTER) == [
        ("rmsg", b"$G", b"foo", b"r", (b"q",), b"2", b"hi\r\n")
    ]


@pytest.mark.parametrize(
    "data",
    [b"RMSG $G foo\r\n", b"RMSG $G foo x y 2\r\n", b"RMSG $G foo -1\r\n", b"HMSG $G foo 2\r\n",
     b"HMSG $G foo 3 2\r\n", b"RMSG $G foo 2\r\nhiX", b"PUB foo 2\r\n", b"SUB foo 1\r\n"],
)  # fmt: skip
def test_route_bad(data: bytes) -> None:
    fails(data, ROUTER)


def test_route_rmsg_payload_split() -> None:
    body = bytes(range(256)) * 10
    data = b"RMSG $G foo r %d\r\n%s\r\n" % (len(body), body)
    for cut in (5, 20, 21, 22, 600, len(data) - 2, len(data) - 1):
        assert parse_all(data, ROUTER, cuts=[cut]) == [
            ("rmsg", b"$G", b"foo", b"r", None, str(len(body)).encode(), body + b"\r\n")
        ]


# -- helpers --------------------------------------------------------------------------------


def test_parse_size() -> None:
    assert parse_size(b"0") == 0
    assert parse_size(b"007") == 7
    assert parse_size(b"999999999") == 999999999
    for bad in (b"", b"-1", b"1x", b"1234567890", b" 1", b"+1"):
        assert parse_size(bad) == -1


def test_split_args() -> None:
    assert split_args(b" a\tb\r\nc  ") == [b"a", b"b", b"c"]
    assert split_pub_args(b" a\tb\r c ") == [b"a", b"b\r", b"c"]


def test_large_payload_is_a_view_of_the_read_buffer() -> None:
    """Zero copy: a large payload read whole is handed on as a memoryview."""
    seen: list[Any] = []

    class H(Recorder):
        def on_pub(self, subject: bytes, reply: bytes | None, szb: bytes, msg: Any) -> None:
            seen.append(type(msg))

    p = Parser(H(), CLIENT)
    p.feed(b"PUB foo 1000\r\n" + b"x" * 1000 + b"\r\nPUB foo 2\r\nhi\r\n")
    assert seen == [memoryview, bytes]


@pytest.mark.parametrize("kind", [CLIENT, ROUTER])
def test_split_run_leaves_very_large_payloads_to_views(kind: int) -> None:
    """A read of small messages with one of 20 KiB: the run stops there and the regex loop
    hands the large payload on as a view; all arrive, in order, with the right bytes."""
    head = b"PUB foo " if kind == CLIENT else b"RMSG $G foo "
    small = b"".join(head + b"2\r\nhi\r\n" for _ in range(200))
    big = head + b"20000\r\n" + b"b" * 20000 + b"\r\n"
    p, rec = make(kind)
    p.feed(small + big + small)
    payloads = [op[-1] for op in rec.ops]
    assert payloads == [b"hi\r\n"] * 200 + [b"b" * 20000 + b"\r\n"] + [b"hi\r\n"] * 200
    assert p.in_msgs == 401 and p.in_bytes == 400 * 2 + 20000


# -- bulk runs (Parser._bulk) ----------------------------------------------------------------


class BulkRecorder(Recorder):
    """Takes whole runs of identical PUB (RMSG) lines, recording each message as on_pub
    (on_rmsg) would; declines a run when `declines` says so (the handler's fallback)."""

    def __init__(self, declines: list[bool]) -> None:
        super().__init__()
        self.declines = declines
        self.runs = 0

    def _take(self, szb: bytes, size: int, payloads: list[bytes]) -> bool:
        assert int(szb) == size and len(payloads) >= 4
        assert all(type(pl) is bytes and len(pl) == size for pl in payloads)
        if self.declines and self.declines.pop(0):
            return False
        self.runs += 1
        return True

    def pub_run(self, subject: bytes, reply: bytes | None, szb: bytes, size: int, payloads: list[bytes]) -> bool:
        if not self._take(szb, size, payloads):
            return False
        self.ops += [("pub", subject, reply, szb, pl + b"\r\n") for pl in payloads]
        return True

    def on_rmsg_run(self, acc: bytes, subject: bytes, reply: bytes | None, szb: bytes, size: int,
                    payloads: list[bytes]) -> bool:
        if not self._take(szb, size, payloads):
            return False
        self.ops += [("rmsg", acc, subject, reply, None, szb, pl + b"\r\n") for pl in payloads]
        return True


@st.composite
def bulk_run(draw: st.DrawFn, route: bool = False) -> bytes:
    """Up to 14 messages with one control line, usually as the split run sees them, now and
    then with something that must end or refuse the run: a payload of another length or
    holding a CRLF, an op in between, an unusual line (near_msg's cases), a large size."""
    usual = draw(st.integers(0, 3)) > 0  # mostly the usual form, else anything drawn below
    subject = draw(st.sampled_from([b"foo", b"a.b", b"x"]) | token)
    reply = None if usual and draw(st.booleans()) else draw(
        st.sampled_from([b"r", b"_R_.x", b"$JS.ACK.a", b"+", b"|", b"r\t1", b""]) | token)
    size = draw(st.sampled_from([0, 1, 2, 5, 16]) if usual else st.integers(0, 1300))
    szb = size_token(size, draw(st.sampled_from([0, 0, 0, 1])))
    head = b"RMSG $G " if route else b"PUB "
    if not usual:
        head = draw(st.sampled_from([b"RMSG $G ", b"rmsg $G ", b"RMSG $\tG "] if route else
                                    [b"PUB ", b"pub ", b"PUB\t"]))  # fmt: skip
    line = head + subject + b" " + (reply + b" " if reply is not None else b"") + szb + b"\r\n"
    out = b""
    for _ in range(draw(st.integers(5, 14) if usual else st.integers(1, 14))):
        body = draw(st.binary(min_size=size, max_size=size))
        what = draw(st.sampled_from(["ok"] * 30 + ["crlf", "short", "long", "ping", "odd"]))
        if what == "crlf" and size >= 2:
            at = draw(st.integers(0, size - 2))
            body = body[:at] + b"\r\n" + body[at + 2 :]
        elif what == "short":
            body = body[:-1]
        elif what == "long":
            body += b"z"
        elif what == "ping":
            out += b"PING\r\n"
        elif what == "odd":
            out += draw(near_msg(route))[0]
        out += line + body + b"\r\n"
    return out


def _bulk_outcome(data: bytes, where: list[int], kind: int, declines: list[bool] | None) -> tuple[Any, ...]:
    """The calls, error and counters with bulk runs (declines given) or line by line (None)."""
    from pynats_server.protocol import parser as parser_module

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parser_module, "_RUN_AVG", 1 << 30 if declines is not None else 0)
        rec: Recorder = BulkRecorder(declines) if declines is not None else Recorder()
        p = Parser(rec, kind, max_payload=1200)
        p.headers = True
        if declines is None:
            p._on_rmsg_run = None
        elif kind == CLIENT:
            p.set_pub_handler(rec.on_pub, BulkRecorder.pub_run)
        try:
            feed_chunks(p, data, [w % (len(data) + 1) for w in where])
            err: Any = None
        except ProtocolError as e:
            err = (e.err, e.reason)
    return rec.ops, err, p.in_msgs, p.in_bytes, getattr(rec, "runs", None)


BULK_SETTINGS = settings(max_examples=1000, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@BULK_SETTINGS
@given(st.tuples(bulk_run(), st.lists(st.one_of(bulk_run(), bulk_run(), client_op()), max_size=4)).map(
           lambda t: [t[0], *t[1]]),
       st.lists(st.booleans(), max_size=4), st.lists(st.tuples(st.integers(0, 5000), noise), max_size=2),
       st.sampled_from([[], [], [], [7], [40, 300]]), st.sampled_from([CLIENT, ROUTER]))  # fmt: skip
def test_bulk_runs_agree_with_the_line_by_line_path(
    parts: list[Any], declines: list[bool], edits: list[tuple[int, bytes]], where: list[int], kind: int
) -> None:
    """Runs taken whole (Parser._bulk, its handler declining now and then) give the same
    calls, error and counters as the line-by-line path, for any stream of runs of one
    control line broken in any of the ways bulk_run makes, cut into reads anywhere."""
    if kind == ROUTER:
        parts = [p for p in parts if isinstance(p, bytes)]
        if not parts:
            return
    data = b"".join(p if isinstance(p, bytes) else p[0] for p in parts)
    if kind == ROUTER:
        data = data.replace(b"PUB ", b"RMSG $G ").replace(b"PUB\t", b"RMSG\t$G ").replace(b"pub ", b"rmsg $G ")
    for pos, junk in edits:
        pos %= len(data) + 1
        data = data[:pos] + junk + data[pos + len(junk) // 2 :]
    got = _bulk_outcome(data, where, kind, list(declines))
    want = _bulk_outcome(data, where, kind, None)
    event("a run taken whole" if got[4] else "no run taken whole")
    assert got[:4] == want[:4]


def test_bulk_takes_a_run_whole() -> None:
    """A run is handed on in one call (and counted), up to what ends it."""
    run = b"PUB foo r 2\r\nhi\r\n" * 10
    rec = BulkRecorder([])
    p = Parser(rec, CLIENT)
    p.set_pub_handler(rec.on_pub, BulkRecorder.pub_run)
    p.feed(run + b"PING\r\n" + run + b"PUB foo r 3\r\nh\r\n\r\n" + run[:-3])
    assert rec.runs == 2  # the odd payload ends the split run: the last run goes one by one
    assert rec.ops.count(("pub", b"foo", b"r", b"2", b"hi\r\n")) == 29
    assert ("ping",) in rec.ops and ("pub", b"foo", b"r", b"3", b"h\r\n\r\n") in rec.ops
    assert p.in_msgs == 30 and p.in_bytes == 61


@pytest.mark.parametrize("kind", [CLIENT, ROUTER])
def test_bulk_declined_runs_go_one_by_one(kind: int) -> None:
    head = b"PUB foo " if kind == CLIENT else b"RMSG $G foo "
    rec = BulkRecorder([True] * 100)
    p = Parser(rec, kind)
    if kind == CLIENT:
        p.set_pub_handler(rec.on_pub, BulkRecorder.pub_run)
    for _ in range(20):
        p.feed((head + b"2\r\nhi\r\n") * 8)
    assert rec.runs == 0 and len(rec.ops) == 160 and p.in_msgs == 160
    # A declined line is tried again only every 16th read.
    assert len(rec.declines) == 100 - 2


BULK_EDGES = [
    b"PUB foo " + b"r" * 5000 + b" 2\r\n",  # a reply over the control line limit
    b"PUB " + b"s" * 5000 + b" 2\r\n",  # a subject over it
    b"PUB foo 1300\r\n",  # over max_payload
    b"PUB foo 0000000002\r\n",  # ten digits
    b"PUB foo -2\r\n",
    b"PUB foo  2\r\n",  # an empty token: the general path reads it as no reply
    b"PUB foo r r 2\r\n",
    b"PUB foo r\x0b 2\r\n",  # not whitespace to NATS: a run
    b"PUB foo r\r 2\r\n",  # a CR inside a token is kept: a run
    b"PUB f\ro 2\r\n",
    b"PUB foo _R_.x 2\r\n",
    b"PUB foo _GR_.x 2\r\n",
    b"PUB foo $JS.ACK.x 2\r\n",
    b"PUB f\x00o 2\r\n",
    b"PUB f\no 2\r\n",
    b"PUB foo r\n 2\r\n",
    b"PUB foo 2 \r\n",
    b"PUBX foo 2\r\n",
    b"SUB foo 2\r\n",
    b"pub foo 2\r\n",  # a run for the general path only
    b"RMSGX $G foo 2\r\n",
    b"HMSG $G foo 2\r\n",
    b"RMSG $G foo " + b"r" * 70000 + b" 2\r\n",
    b"RMSG $G foo + 2\r\n",
    b"RMSG $G foo | 2\r\n",
    b"RMSG $G foo r\t 2\r\n",
    b"RMSG $G f\to 2\r\n",
    b"RMSG $\rG foo 2\r\n",
    b"RMSG $G foo r q 2\r\n",
    b"RMSG $G foo 2 \r\n",
]


@pytest.mark.parametrize("line", BULK_EDGES)
@pytest.mark.parametrize("size", [2, 1300])
def test_bulk_edges_agree_with_the_line_by_line_path(line: bytes, size: int) -> None:
    """Runs of lines each check of Parser._bulk is there for (with payloads of the size the
    line says, and of another), after a run of usual ones: the same outcome as line by
    line."""
    kind = ROUTER if line.startswith((b"RMSG", b"HMSG")) else CLIENT
    # After a run taken whole: the split run is on and looks for the next run right there.
    ok = b"RMSG $G a 1\r\nx\r\n" if kind == ROUTER else b"PUB a 1\r\nx\r\n"
    data = ok * 5 + b"".join(line + bytes([65 + k]) * size + b"\r\n" for k in range(8))
    assert _bulk_outcome(data, [], kind, [])[:4] == _bulk_outcome(data, [], kind, None)[:4]
