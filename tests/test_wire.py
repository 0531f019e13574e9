"""Encoders and -ERR texts (pynats_server/protocol/wire.py); route frames round-trip through the
parser."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from test_parser import Recorder

from pynats_server.protocol import wire
from pynats_server.protocol.parser import ROUTER, Parser


def test_err_texts_are_nats_servers() -> None:
    assert wire.err(wire.E_UNKNOWN_OP) == b"-ERR 'Unknown Protocol Operation'\r\n"
    texts = {
        wire.E_UNKNOWN_OP: "Unknown Protocol Operation",
        wire.E_AUTH_VIOLATION: "Authorization Violation",
        wire.E_AUTH_TIMEOUT: "Authentication Timeout",
        wire.E_MAX_PAYLOAD: "Maximum Payload Violation",
        wire.E_MAX_CONTROL_LINE: "maximum control line exceeded",
        wire.E_MAX_CONNECTIONS: "maximum connections exceeded",
        wire.E_MAX_SUBSCRIPTIONS: "maximum subscriptions exceeded",
        wire.E_BAD_CLIENT_PROTOCOL: "invalid client protocol",
        wire.E_NO_RESPONDERS_NEEDS_HEADERS: "no responders requires headers support",
        wire.E_INVALID_SUBJECT: "Invalid Subject",
        wire.E_INVALID_PUB_SUBJECT: "Invalid Publish Subject",
        wire.E_STALE_CONNECTION: "Stale Connection",
        wire.E_ROUTE_PORT: "attempted to connect to route port",
    }
    for const, text in texts.items():
        assert const == text


def test_permission_texts() -> None:
    assert wire.permissions_violation_pub(b"foo.bar") == 'Permissions Violation for Publish to "foo.bar"'
    assert wire.cluster_name_mismatch("A", "B") == 'Rejecting connection, cluster name "A" does not match "B"'


def test_info_line_has_space_before_crlf() -> None:
    line = wire.info({"server_id": "N", "proto": 1})
    assert line == b'INFO {"server_id":"N","proto":1} \r\n'


def test_go_json_escapes_like_go() -> None:
    assert wire.go_json({"a": "<b>&"}) == b'{"a":"\\u003cb\\u003e\\u0026"}'
    assert wire.go_json({"x": "é"}) == '{"x":"é"}'.encode()
    assert json.loads(wire.go_json({"a": "<>&"})) == {"a": "<>&"}


def test_info_fields_order_and_omitempty() -> None:
    fields = {
        "xkey": "X",
        "client_ip": "127.0.0.1",
        "client_id": 5,
        "max_payload": 1024,
        "headers": False,
        "auth_required": False,
        "port": 4222,
        "host": "h",
        "go": "go",
        "git_commit": "",
        "proto": 1,
        "version": "2.14.0",
        "server_name": "n",
        "server_id": "N",
        "connect_urls": [],
        "ldm": False,
        "api_lvl": 4,
    }
    out = wire.info_fields(fields)
    assert list(out) == [
        "server_id", "server_name", "version", "proto", "go", "host", "port", "headers",
        "max_payload", "client_id", "client_ip", "api_lvl", "xkey",
    ]  # fmt: skip
    assert out["headers"] is False  # always present


def test_msg_frames() -> None:
    assert wire.msg_prefix(b"foo", b"1") == b"MSG foo 1 "
    assert wire.msg_tail(None, b"5") == b"5\r\n"
    assert wire.msg_tail(b"r", b"005") == b"r 005\r\n"
    assert wire.hmsg_line(b"foo", b"1", None, b"12", b"14") == b"HMSG foo 1 12 14\r\n"
    assert wire.hmsg_line(b"foo", b"1", b"rep", b"18", b"20") == b"HMSG foo 1 rep 18 20\r\n"


def test_no_responders_frame_2_14() -> None:
    assert wire.no_responders_hmsg(b"_INBOX.abc", b"7", b"nobody") == (
        b"HMSG _INBOX.abc 7 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n"
    )


def test_route_interest_frames() -> None:
    assert wire.rs_plus(b"$G", b"foo") == b"RS+ $G foo\r\n"
    assert wire.rs_plus(b"$G", b"foo", b"q", 3) == b"RS+ $G foo q 3\r\n"
    assert wire.rs_minus(b"$G", b"foo") == b"RS- $G foo\r\n"
    assert wire.rs_minus(b"$G", b"foo", b"q") == b"RS- $G foo q\r\n"


def test_rmsg_line_forms() -> None:
    assert wire.rmsg_line(b"$G", b"foo", None, None, b"5") == b"RMSG $G foo 5\r\n"
    assert wire.rmsg_line(b"$G", b"foo", b"r", None, b"5") == b"RMSG $G foo r 5\r\n"
    assert wire.rmsg_line(b"$G", b"foo", b"r", [b"q1", b"q2"], b"5") == b"RMSG $G foo + r q1 q2 5\r\n"
    assert wire.rmsg_line(b"$G", b"foo", None, [b"q1"], b"5") == b"RMSG $G foo | q1 5\r\n"
    assert wire.rmsg_line(b"$G", b"foo", b"r", [b"q"], b"20", b"18") == b"HMSG $G foo + r q 18 20\r\n"
    assert wire.rmsg_line(b"$G", b"foo", None, None, b"20", b"18") == b"HMSG $G foo 18 20\r\n"


tok = st.text("abcXYZ019_.$-*>", min_size=1, max_size=10).map(str.encode).filter(lambda t: t not in (b"+", b"|"))


@settings(max_examples=200, deadline=None)
@given(tok, tok, st.none() | tok, st.none() | st.lists(tok, min_size=1, max_size=3), st.binary(max_size=600),
       st.none() | st.integers(0, 600))  # fmt: skip
def test_rmsg_round_trips_through_the_parser(
    acc: bytes, subject: bytes, reply: bytes | None, queues: list[bytes] | None, body: bytes, hdr: int | None
) -> None:
    if hdr is not None:
        hdr = min(hdr, len(body))
    szb = str(len(body)).encode()
    hdb = str(hdr).encode() if hdr is not None else None
    frame = wire.rmsg_line(acc, subject, reply, queues, szb, hdb) + body + b"\r\n"
    rec = Recorder()
    Parser(rec, ROUTER).feed(frame)
    q = tuple(queues) if queues else None
    if hdr is None:
        assert rec.ops == [("rmsg", acc, subject, reply, q, szb, body + b"\r\n")]
    else:
        assert rec.ops == [("rhmsg", acc, subject, reply, q, hdr, hdb, szb, body + b"\r\n")]
