"""Atomic batch publish (`allow_atomic`): staged messages, the commit (`1` or `eob`), gaps,
limits, all-or-nothing checks. Each test runs against pynats-server and nats-server 2.14
(js_targets) and compares the exact answer bytes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from js_targets import js_url  # noqa: F401 - the fixture


@pytest.fixture
async def nc(js_url: str) -> AsyncIterator[Any]:  # noqa: F811
    c = await nats.connect(js_url, allow_reconnect=False, connect_timeout=2)
    yield c
    await c.close()


def err(code: int, err_code: int, text: str, stream: str = "S") -> bytes:
    return json.dumps({"error": {"code": code, "err_code": err_code, "description": text}, "stream": stream,
                       "seq": 0}, separators=(",", ":")).encode()


async def pub(nc: Any, subject: str, body: bytes = b"x", **hdrs: str) -> bytes:
    h = {k.replace("_", "-"): v for k, v in hdrs.items()}
    m = await nc.request(subject, body, timeout=5, headers=h or None)
    return bytes(m.data)


def b(bid: str, seq: int | str, commit: str | None = None, **more: str) -> dict[str, str]:
    h = {"Nats_Batch_Id": bid, "Nats_Batch_Sequence": str(seq), **more}
    if commit is not None:
        h["Nats_Batch_Commit"] = commit
    return h


async def stream(nc: Any, name: str = "S", **cfg: Any) -> Any:
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"{name.lower()}.>"], **cfg)
    return js


async def test_stage_then_commit(nc: Any) -> None:
    js = await stream(nc, allow_atomic=True)
    assert (await js.stream_info("S")).config.allow_atomic is True
    assert await pub(nc, "s.a", b"1", **b("b1", 1)) == b""  # staged: an empty answer
    assert await pub(nc, "s.b", b"2", **b("b1", 2)) == b""
    assert (await js.stream_info("S")).state.messages == 0  # nothing visible before the commit
    assert await pub(nc, "s.a", b"3", **b("b1", 3, "1")) == b'{"stream":"S","seq":3,"batch":"b1","count":3}'
    info = await js.stream_info("S")
    assert (info.state.messages, info.state.last_seq) == (3, 3)
    m = await js.get_msg("S", 3)
    assert m.data == b"3" and m.headers == {
        "Nats-Batch-Id": "b1", "Nats-Batch-Sequence": "3", "Nats-Batch-Commit": "1"}
    # A batch of one.
    assert await pub(nc, "s.c", b"4", **b("solo", 1, "1")) == b'{"stream":"S","seq":4,"batch":"solo","count":1}'


async def test_commit_by_end_of_batch(nc: Any) -> None:
    js = await stream(nc, allow_atomic=True)
    assert await pub(nc, "s.a", b"1", **b("e", 1)) == b""
    assert await pub(nc, "s.a", b"2", **b("e", 2)) == b""
    # The eob message itself is not stored; the last stored one gets "Nats-Batch-Commit: 1".
    assert await pub(nc, "s.a", b"end", **b("e", 3, "eob")) == b'{"stream":"S","seq":2,"batch":"e","count":2}'
    m = await js.get_msg("S", 2)
    assert m.data == b"2" and m.headers == {"Nats-Batch-Id": "e", "Nats-Batch-Sequence": "2", "Nats-Batch-Commit": "1"}
    assert (await js.stream_info("S")).state.messages == 2
    # eob as the first message: an incomplete batch.
    assert await pub(nc, "s.a", b"", **b("e2", 1, "eob")) == err(400, 10176, "atomic publish batch is incomplete")


async def test_errors(nc: Any) -> None:
    await stream(nc, allow_atomic=True)
    await stream(nc, "OFF")
    assert await pub(nc, "off.a", **b("x", 1)) == err(400, 10174, "atomic publish is disabled", "OFF")
    assert await pub(nc, "s.a", Nats_Batch_Id="x") == err(400, 10175, "atomic publish sequence is missing")
    assert await pub(nc, "s.a", **b("y" * 65, 1)) == err(400, 10179, "atomic publish batch ID is invalid")
    assert await pub(nc, "s.a", **b("u", 2)) == err(400, 10176, "atomic publish batch is incomplete")
    assert await pub(nc, "s.a", **b("u", 1001)) == err(400, 10199, "atomic publish batch is too large: 1000")
    assert await pub(nc, "s.a", **b("u", "zz")) == err(400, 10199, "atomic publish batch is too large: 1000")
    assert await pub(nc, "s.a", **b("c", 1)) == b""
    assert await pub(nc, "s.a", **b("c", 2, "yes")) == err(400, 10200, "atomic publish batch commit is invalid")
    assert await pub(nc, "s.a", **b("c", 2, "1")) == err(400, 10176, "atomic publish batch is incomplete")  # gone
    # A gap ends the batch.
    assert await pub(nc, "s.a", **b("g", 1)) == b""
    assert await pub(nc, "s.a", **b("g", 3)) == err(400, 10176, "atomic publish batch is incomplete")
    assert await pub(nc, "s.a", **b("g", 2, "1")) == err(400, 10176, "atomic publish batch is incomplete")
    assert await pub(nc, "s.a", **b("g", 1, "1")) == b'{"stream":"S","seq":1,"batch":"g","count":1}'


async def test_all_or_nothing(nc: Any) -> None:
    js = await stream(nc, allow_atomic=True, duplicate_window=60)
    await pub(nc, "s.a", b"0")  # seq 1, outside any batch
    await pub(nc, "s.z", b"0", Nats_Msg_Id="seen")  # seq 2

    async def batch(bid: str, *msgs: tuple[str, dict[str, str]]) -> bytes:
        for i, (subj, h) in enumerate(msgs[:-1], 1):
            assert await pub(nc, subj, b"m", **b(bid, i, **h)) == b""
        subj, h = msgs[-1]
        return await pub(nc, subj, b"m", **b(bid, len(msgs), "1", **h))

    # A wrong expectation in the middle: nothing of the batch is stored.
    assert await batch("w1", ("s.b", {}), ("s.c", {"Nats-Expected-Last-Subject-Sequence": "5"}), ("s.d", {})) == err(
        400, 10071, "wrong last sequence: 0")
    assert (await js.stream_info("S")).state.messages == 2
    assert await batch("w2", ("s.b", {}), ("s.b", {"Nats-Expected-Last-Subject-Sequence": "3"})) == err(
        400, 10164, "wrong last sequence")  # a subject the batch itself writes
    assert await batch("w3", ("s.b", {"Nats-Msg-Id": "1"}), ("s.c", {"Nats-Msg-Id": "1"})) == err(
        400, 10201, "atomic publish batch contains duplicate message id")
    assert await batch("w4", ("s.b", {}), ("s.c", {"Nats-Msg-Id": "seen"})) == err(
        400, 10201, "atomic publish batch contains duplicate message id")
    assert await batch("w5", ("s.b", {"Nats-Expected-Last-Msg-Id": "seen"})) == err(
        400, 10177, "atomic publish unsupported header used: Nats-Expected-Last-Msg-Id")
    assert await batch("w6", ("s.b", {}), ("s.c", {"Nats-Expected-Last-Sequence": "3"})) == err(
        400, 10164, "wrong last sequence")
    assert await batch("w7", ("s.b", {"Nats-Expected-Stream": "OTHER"})) == err(400, 10060, "expected stream does not match")
    assert await batch("w8", ("s.b", {"Nats-TTL": "1s"})) == err(400, 10166, "per-message TTL is disabled")
    assert await batch("w9", ("s.b", {}), ("s.c", {"Nats-Rollup": "all"})) == err(500, 10111, "rollup not permitted")
    assert (await js.stream_info("S")).state.messages == 2
    # Right expectations pass: the first message's last sequence is the stream's.
    ok = await batch("ok", ("s.b", {"Nats-Expected-Last-Sequence": "2"}),
                     ("s.c", {"Nats-Expected-Last-Subject-Sequence": "0"}),
                     ("s.a", {"Nats-Expected-Last-Subject-Sequence": "1", "Nats-Msg-Id": "new"}))
    assert ok == b'{"stream":"S","seq":5,"batch":"ok","count":3}'
    assert (await js.stream_info("S")).state.messages == 5
    # A duplicate of a message id stored by a batch.
    assert await pub(nc, "s.a", b"m", Nats_Msg_Id="new") == b'{"stream":"S","seq":5,"duplicate": true}'


async def test_discard_new_limits(nc: Any) -> None:
    js = await stream(nc, allow_atomic=True, max_msgs=3, discard="new")
    await pub(nc, "s.a", b"0")
    for i in (1, 2):
        assert await pub(nc, "s.a", **b("l", i)) == b""
    assert await pub(nc, "s.a", **b("l", 3, "1")) == err(503, 10077, "maximum messages exceeded")
    assert (await js.stream_info("S")).state.messages == 1


async def test_too_many_open_batches(nc: Any) -> None:
    await stream(nc, allow_atomic=True)
    for i in range(50):
        assert await pub(nc, "s.a", **b(f"open{i}", 1)) == b""
    assert await pub(nc, "s.a", **b("one-more", 1)) == err(429, 10210, "atomic publish too many inflight")
    # Committing one makes room again.
    assert await pub(nc, "s.a", **b("open0", 2, "1")) == b'{"stream":"S","seq":2,"batch":"open0","count":2}'
    assert await pub(nc, "s.a", **b("one-more", 1)) == b""
