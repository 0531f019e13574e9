"""JetStream consumers: pull and push delivery, acks, redelivery, flow control, heartbeats,
retention, inactivity, restarts. nats-py drives the usual paths; raw protocol checks the
exact status frames nats-server sends. Every test also runs against nats-server 2.14
(`PYNATS_TEST_TARGET=go214`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from conftest import TARGET, RawClient, ServerHandle, StartServer, go_binary, wait_for
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from pynats_server.options import JetStreamOptions


async def js_server(start_server: StartServer, tmp_path: Path, **kw: Any) -> ServerHandle:
    return await start_server(jetstream=JetStreamOptions(store_dir=str(tmp_path / "js")), **kw)


class Js:
    """A raw connection with an `_INBOX.>` subscription (sid 1) for API answers."""

    def __init__(self, c: RawClient) -> None:
        self.c = c
        self.n = 0
        self.other: list[tuple[bytes, bytes]] = []  # messages for other sids, in order

    @classmethod
    async def open(cls, h: ServerHandle) -> Js:
        c = await h.connected(headers=True, no_responders=True)
        await c.send(b"SUB _INBOX.> 1\r\n")
        await c.ping()
        return cls(c)

    def inbox(self) -> bytes:
        self.n += 1
        return b"_INBOX.%d" % self.n

    async def pub(self, subject: str, data: bytes = b"", reply: bytes = b"", hdr: bytes = b"") -> None:
        r = b" " + reply if reply else b""
        if hdr:
            await self.c.send(b"HPUB %s%s %d %d\r\n%s%s\r\n" % (subject.encode(), r, len(hdr), len(hdr) + len(data),
                                                               hdr, data))  # fmt: skip
        else:
            await self.c.send(b"PUB %s%s %d\r\n%s\r\n" % (subject.encode(), r, len(data), data))

    async def api(self, subject: str, body: Any = None) -> dict[str, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        inbox = self.inbox()
        await self.pub("$JS.API." + subject, data, inbox)
        while True:
            line, payload = await self.c.read_msg()
            if line.split(b" ")[1] == inbox:
                return json.loads(payload)
            self.other.append((line, payload))

    async def msg(self, timeout: float = 5.0) -> tuple[bytes, bytes]:
        if self.other:
            return self.other.pop(0)
        return await self.c.read_msg(timeout)

    async def stream(self, name: str = "S", subjects: list[str] | None = None, **cfg: Any) -> None:
        r = await self.api(f"STREAM.CREATE.{name}", {"name": name, "subjects": subjects or ["foo"], **cfg})
        assert "error" not in r, r

    async def publish(self, subject: str, n: int, size: int = 0) -> None:
        for i in range(n):
            await self.pub(subject, (b"x" * size) if size else b"m%d" % i, self.inbox())
            _, payload = await self.c.read_msg()
            assert b'"seq"' in payload, payload

    async def consumer(self, stream: str, name: str, **cfg: Any) -> dict[str, Any]:
        r = await self.api(f"CONSUMER.CREATE.{stream}.{name}",
                           {"stream_name": stream, "config": {"durable_name": name, **cfg}})  # fmt: skip
        assert "error" not in r, r
        return r


async def nc_for(h: ServerHandle) -> Any:
    return await nats.connect(h.url, allow_reconnect=False)


# ------------------------------------------------------------------------- pull (nats-py)


async def test_pull_fetch_batches_acks_and_timeouts(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    nc = await nc_for(h)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        for i in range(10):
            await js.publish("foo", b"m%d" % i)
        psub = await js.pull_subscribe("foo", "dur", stream="S")
        msgs = await psub.fetch(4, timeout=2)
        assert [m.data for m in msgs] == [b"m0", b"m1", b"m2", b"m3"]
        assert [m.metadata.sequence.stream for m in msgs] == [1, 2, 3, 4]
        assert [m.metadata.num_pending for m in msgs] == [9, 8, 7, 6]
        for m in msgs:
            await m.ack_sync()
        msgs = await psub.fetch(20, timeout=1)
        assert [m.data for m in msgs] == [b"m%d" % i for i in range(4, 10)]
        for m in msgs:
            await m.ack()
        with pytest.raises(nats.errors.TimeoutError):
            await psub.fetch(1, timeout=0.3)
        info = await js.consumer_info("S", "dur")
        assert (info.delivered.stream_seq, info.ack_floor.stream_seq, info.num_ack_pending) == (10, 10, 0)
        assert info.num_pending == 0
        # A message published while a fetch waits goes to it.
        task = asyncio.create_task(psub.fetch(1, timeout=3))
        await wait_for(lambda: _num_waiting(h, "S", "dur") or task.done(), what="the pull to wait")
        await js.publish("foo", b"late")
        (m,) = await task
        assert m.data == b"late"
    finally:
        await nc.close()


def _num_waiting(h: ServerHandle, stream: str, name: str) -> bool:
    if h.srv is None:
        return True  # nats-server: nothing to look at; the fetch waits anyway
    s = h.srv.jetstream.accounts["$G"].streams[stream]
    c = s.consumers[name]
    return bool(c.waiting.q)


async def test_nak_term_in_progress_and_ack_wait_redelivery(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    nc = await nc_for(h)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        for i in range(4):
            await js.publish("foo", b"m%d" % i)
        psub = await js.pull_subscribe("foo", "d", stream="S", config=ConsumerConfig(ack_wait=0.6))
        m0, m1, m2, m3 = await psub.fetch(4, timeout=2)
        await m0.nak()
        await m1.term()
        await m2.in_progress()
        await m3.ack_sync()
        (r,) = await psub.fetch(1, timeout=2)
        assert (r.data, r.metadata.num_delivered) == (b"m0", 2)
        await r.ack_sync()
        info = await js.consumer_info("S", "d")
        assert info.num_ack_pending == 1  # m2 (in progress)
        assert info.num_redelivered == 0
        # m2 is redelivered once ack_wait has passed without an ack; m1 (terminated) never.
        (r,) = await psub.fetch(1, timeout=3)
        assert (r.data, r.metadata.num_delivered) == (b"m2", 2)
        await r.ack_sync()
        with pytest.raises(nats.errors.TimeoutError):
            await psub.fetch(1, timeout=0.8)
        info = await js.consumer_info("S", "d")
        assert (info.num_ack_pending, info.ack_floor.stream_seq) == (0, 4)
    finally:
        await nc.close()


async def test_nak_with_delay(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    nc = await nc_for(h)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        await js.publish("foo", b"a")
        psub = await js.pull_subscribe("foo", "d", stream="S")
        (m,) = await psub.fetch(1, timeout=2)
        t0 = time.monotonic()
        await m.nak(delay=0.5)
        (m,) = await psub.fetch(1, timeout=3)
        assert m.metadata.num_delivered == 2
        assert time.monotonic() - t0 >= 0.45
    finally:
        await nc.close()


async def test_max_deliver_and_its_advisory(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    nc = await nc_for(h)
    try:
        js = nc.jetstream()
        adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.d")
        await js.add_stream(name="S", subjects=["foo"])
        await js.publish("foo", b"a")
        cfg = ConsumerConfig(ack_wait=0.3, max_deliver=2)
        psub = await js.pull_subscribe("foo", "d", stream="S", config=cfg)
        (m,) = await psub.fetch(1, timeout=2)
        assert m.metadata.num_delivered == 1
        (m,) = await psub.fetch(1, timeout=3)
        assert m.metadata.num_delivered == 2
        # Not redelivered again; the pull that would have got it sees the advisory sent.
        with pytest.raises(nats.errors.TimeoutError):
            await psub.fetch(1, timeout=0.8)
        a = await adv.next_msg(timeout=3)
        body = json.loads(a.data)
        assert (body["type"], body["stream"], body["consumer"], body["stream_seq"], body["deliveries"]) == (
            "io.nats.jetstream.advisory.v1.max_deliver", "S", "d", 1, 2)  # fmt: skip
        info = await js.consumer_info("S", "d")
        assert (info.num_ack_pending, info.num_redelivered) == (0, 1)
    finally:
        await nc.close()


async def test_backoff_schedule(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    nc = await nc_for(h)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        await js.publish("foo", b"a")
        cfg = ConsumerConfig(backoff=[0.2, 0.8], max_deliver=4)
        psub = await js.pull_subscribe("foo", "d", stream="S", config=cfg)
        info = await js.consumer_info("S", "d")
        assert info.config.ack_wait == 0.2  # the first backoff value
        times = []
        for _ in range(3):
            (m,) = await psub.fetch(1, timeout=3)
            times.append(time.monotonic())
        assert m.metadata.num_delivered == 3
        assert times[1] - times[0] >= 0.15
        assert times[2] - times[1] >= 0.7
    finally:
        await nc.close()


async def test_max_ack_pending_stops_delivery_until_acks(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    nc = await nc_for(h)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        for i in range(5):
            await js.publish("foo", b"m%d" % i)
        psub = await js.pull_subscribe("foo", "d", stream="S", config=ConsumerConfig(max_ack_pending=2))
        msgs = await psub.fetch(5, timeout=0.5)
        assert len(msgs) == 2
        await msgs[0].ack_sync()
        more = await psub.fetch(5, timeout=0.5)
        assert [m.data for m in more] == [b"m2"]
    finally:
        await nc.close()


# ------------------------------------------------------------------------- push (nats-py)


async def test_push_subscribe_durable_and_push_bound(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    nc = await nc_for(h)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        for i in range(3):
            await js.publish("foo", b"m%d" % i)
        got: list[bytes] = []
        done = asyncio.Event()

        async def cb(msg: Any) -> None:
            got.append(msg.data)
            await msg.ack()
            if len(got) == 5:
                done.set()

        sub = await js.subscribe("foo", durable="P", stream="S", cb=cb)
        for i in range(3, 5):
            await js.publish("foo", b"m%d" % i)
        await asyncio.wait_for(done.wait(), 5)
        assert got == [b"m%d" % i for i in range(5)]
        info = await js.consumer_info("S", "P")
        assert info.push_bound is True
        await wait_for(lambda: _acked(h, "S", "P", 5), what="acks")
        await sub.unsubscribe()

        async def unbound() -> bool:
            i = await js.consumer_info("S", "P")
            return not i.push_bound

        deadline = time.monotonic() + 5
        while not await unbound():
            assert time.monotonic() < deadline, "push_bound stays after unsubscribe"
            await asyncio.sleep(0.02)
    finally:
        await nc.close()


def _acked(h: ServerHandle, stream: str, name: str, floor: int) -> bool:
    if h.srv is None:
        return True
    c = h.srv.jetstream.accounts["$G"].streams[stream].consumers[name]
    return c.asflr >= floor


async def test_ordered_consumer(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    nc = await nc_for(h)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        for i in range(50):
            await js.publish("foo", b"m%d" % i)
        sub = await js.subscribe("foo", stream="S", ordered_consumer=True)
        got = [(await sub.next_msg(timeout=3)).data for _ in range(50)]
        assert got == [b"m%d" % i for i in range(50)]
        await js.publish("foo", b"late")
        assert (await sub.next_msg(timeout=3)).data == b"late"
        await sub.unsubscribe()
    finally:
        await nc.close()


async def test_queue_push_consumer(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    nc = await nc_for(h)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        a = await js.subscribe("foo", queue="q", stream="S")
        b = await js.subscribe("foo", queue="q", stream="S")
        for i in range(20):
            await js.publish("foo", b"m%d" % i)
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 20 and time.monotonic() < deadline:
            for s in (a, b):
                try:
                    got.append((await s.next_msg(timeout=0.05)).data)
                except nats.errors.TimeoutError:
                    pass
        assert sorted(got) == sorted(b"m%d" % i for i in range(20))
    finally:
        await nc.close()


# ---------------------------------------------------------------------------- raw frames


async def test_pull_status_frames(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    js = await Js.open(h)
    await js.stream()
    await js.publish("foo", 2)
    await js.consumer("S", "D", ack_policy="explicit")
    inbox = js.inbox()
    await js.pub("$JS.API.CONSUMER.MSG.NEXT.S.D", b'{"batch":3,"no_wait":true}', inbox)
    for i in range(2):
        line, body = await js.msg()
        assert line.startswith(b"MSG foo 1 $JS.ACK.S.D.1.%d.%d." % (i + 1, i + 1)), line
        assert line.endswith(b".%d 2" % (1 - i)), line
        assert body == b"m%d" % i
    assert await js.msg() == (b"HMSG %s 1 28 28" % inbox, b"NATS/1.0 404 No Messages\r\n\r\n")
    inbox = js.inbox()
    await js.pub("$JS.API.CONSUMER.MSG.NEXT.S.D", b'{"batch":2,"expires":100000000}', inbox)
    hdr = b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 2\r\nNats-Pending-Bytes: 0\r\n\r\n"
    assert await js.msg() == (b"HMSG %s 1 81 81" % inbox, hdr)
    await js.publish("foo", 1, size=100)
    inbox = js.inbox()
    await js.pub("$JS.API.CONSUMER.MSG.NEXT.S.D", b'{"batch":1,"max_bytes":50}', inbox)
    hdr = b"NATS/1.0 409 Message Size Exceeds MaxBytes\r\nNats-Pending-Messages: 1\r\nNats-Pending-Bytes: 50\r\n\r\n"
    assert await js.msg() == (b"HMSG %s 1 96 96" % inbox, hdr)
    await js.consumer("S", "MB", max_batch=2)
    inbox = js.inbox()
    await js.pub("$JS.API.CONSUMER.MSG.NEXT.S.MB", b"5", inbox)
    assert await js.msg() == (b"HMSG %s 1 46 46" % inbox, b"NATS/1.0 409 Exceeded MaxRequestBatch of 2\r\n\r\n")
    await js.consumer("S", "P", deliver_subject="dlv")
    inbox = js.inbox()
    await js.pub("$JS.API.CONSUMER.MSG.NEXT.S.P", b"", inbox)
    assert await js.msg() == (b"HMSG %s 1 39 39" % inbox, b"NATS/1.0 409 Consumer is push based\r\n\r\n")
    # Heartbeats while a pull waits.
    await js.consumer("S", "H", deliver_policy="new")
    inbox = js.inbox()
    await js.pub("$JS.API.CONSUMER.MSG.NEXT.S.H", b'{"batch":1,"expires":1000000000,"idle_heartbeat":200000000}', inbox)
    hb = b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 3\r\n\r\n"
    assert await js.msg() == (b"HMSG %s 1 75 75" % inbox, hb)
    # The pull is still waiting when its consumer goes: it is told so.
    await js.api("CONSUMER.DELETE.S.H")
    line, body = await js.msg()
    while body.startswith(b"NATS/1.0 100"):
        line, body = await js.msg()
    assert (line, body) == (b"HMSG %s 1 33 33" % inbox, b"NATS/1.0 409 Consumer Deleted\r\n\r\n")
    await js.c.close()


async def test_ack_reply_and_next(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    js = await Js.open(h)
    await js.stream()
    await js.publish("foo", 3)
    await js.consumer("S", "D", ack_policy="explicit")
    await js.pub("$JS.API.CONSUMER.MSG.NEXT.S.D", b"", js.inbox())
    line, _ = await js.msg()
    ack = line.split(b" ")[3]
    inbox = js.inbox()
    await js.pub(ack.decode(), b"+ACK", inbox)
    assert await js.msg() == (b"MSG %s 1 0" % inbox, b"")
    # +NXT: acks and delivers the next one to the ack's reply subject.
    await js.pub("$JS.API.CONSUMER.MSG.NEXT.S.D", b"", js.inbox())
    line, _ = await js.msg()
    nxt = js.inbox()
    await js.pub(line.split(b" ")[3].decode(), b"+NXT", nxt)
    line, body = await js.msg()
    assert line.startswith(b"MSG foo 1 $JS.ACK.S.D.1.3.3."), line
    assert body == b"m2"
    r = await js.api("CONSUMER.INFO.S.D")
    assert (r["ack_floor"]["stream_seq"], r["num_ack_pending"]) == (2, 1)
    await js.c.close()


async def test_push_interest_heartbeat_and_flow_control(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    js = await Js.open(h)
    await js.stream()
    await js.publish("foo", 20, size=60000)
    r = await js.consumer("S", "P", deliver_subject="dlv", flow_control=True, idle_heartbeat=300_000_000)
    assert "push_bound" not in r
    await js.c.expect_nothing(0.2)  # nobody listens on dlv: nothing is delivered
    await js.c.send(b"SUB dlv 2\r\n")
    n = fc = 0
    while n < 20:
        line, body = await js.msg()
        if line.startswith(b"HMSG dlv 2 $JS.FC.S.P."):
            assert body == b"NATS/1.0 100 FlowControl Request\r\n\r\n"
            assert n == 18
            fc += 1
            await js.pub(line.split(b" ")[3].decode(), b"")
            continue
        assert line.startswith(b"MSG foo 2 $JS.ACK.S.P.1.%d.%d." % (n + 1, n + 1)), line
        n += 1
    assert fc == 1
    line, body = await js.msg()
    assert line == b"HMSG dlv 2 77 77"
    assert body == b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 20\r\nNats-Last-Stream: 20\r\n\r\n"
    r = await js.api("CONSUMER.INFO.S.P")
    assert r["push_bound"] is True
    await js.c.close()


async def test_headers_only_and_last_per_subject(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    js = await Js.open(h)
    await js.stream(subjects=["k.*"])
    for subj in ("k.a", "k.b", "k.a"):
        await js.pub(subj, b"12345", js.inbox())
        await js.msg()
    await js.c.send(b"SUB keys 2\r\n")
    await js.api("CONSUMER.CREATE.S", {"stream_name": "S", "config": {
        "deliver_policy": "last_per_subject", "filter_subject": "k.*", "headers_only": True,
        "deliver_subject": "keys"}})  # fmt: skip
    seen = []
    for _ in range(2):
        line, body = await js.msg()
        assert body == b"NATS/1.0\r\nNats-Msg-Size: 5\r\n\r\n", body
        seen.append(line.split(b" ")[1])
    assert seen == [b"k.b", b"k.a"]
    await js.c.close()


async def test_workqueue_and_interest_retention(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    js = await Js.open(h)
    await js.stream("W", ["w"], retention="workqueue")
    await js.publish("w", 3)
    await js.consumer("W", "C", ack_policy="explicit")
    r = await js.api("CONSUMER.CREATE.W.C2",
                     {"stream_name": "W", "config": {"durable_name": "C2", "ack_policy": "explicit"}})  # fmt: skip
    assert r["error"]["err_code"] == 10099  # a second unfiltered consumer
    await js.pub("$JS.API.CONSUMER.MSG.NEXT.W.C", b"2", js.inbox())
    (l1, _), _ = await js.msg(), await js.msg()
    ack = js.inbox()
    await js.pub(l1.split(b" ")[3].decode(), b"+ACK", ack)
    await js.msg()
    r = await js.api("STREAM.INFO.W")
    assert (r["state"]["messages"], r["state"]["first_seq"]) == (2, 2)
    await js.stream("I", ["i"], retention="interest")
    await js.consumer("I", "A", ack_policy="explicit")
    await js.consumer("I", "B", ack_policy="explicit")
    await js.publish("i", 1)
    for name, left in (("A", 1), ("B", 0)):
        await js.pub(f"$JS.API.CONSUMER.MSG.NEXT.I.{name}", b"1", js.inbox())
        line, _ = await js.msg()
        await js.pub(line.split(b" ")[3].decode(), b"+ACK", js.inbox())
        await js.msg()
        r = await js.api("STREAM.INFO.I")
        assert r["state"]["messages"] == left
    await js.c.close()


async def test_inactive_threshold_removes_ephemerals(start_server: StartServer, tmp_path: Path) -> None:
    h = await js_server(start_server, tmp_path)
    js = await Js.open(h)
    await js.stream()
    r = await js.api("CONSUMER.CREATE.S", {"stream_name": "S", "config": {"inactive_threshold": 200_000_000}})
    name = r["name"]
    assert r["config"]["inactive_threshold"] == 200_000_000
    deadline = time.monotonic() + 5
    while True:
        r = await js.api(f"CONSUMER.INFO.S.{name}")
        if "error" in r:
            assert r["error"]["err_code"] == 10014
            break
        assert time.monotonic() < deadline, "the ephemeral consumer is still there"
        await asyncio.sleep(0.05)
    await js.c.close()


# ---------------------------------------------------------------------------- restarts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_cmd(port: int, store: Path) -> list[str]:
    if TARGET == "pynats":
        exe = Path(sys.executable).parent / "pynats-server"
        base = [str(exe)] if exe.exists() else [sys.executable, "-m", "pynats_server"]
    else:
        exe2 = go_binary(TARGET)
        if exe2 is None:
            pytest.skip(f"{TARGET} is not installed")
        base = [exe2]
    return [*base, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]


async def _start_proc(port: int, store: Path) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(_server_cmd(port, store), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def up() -> bool:
        try:
            nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False, connect_timeout=0.5)
        except Exception:
            return False
        await nc.close()
        return True

    deadline = time.monotonic() + 10
    while not await up():
        assert p.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not start"
        await asyncio.sleep(0.05)
    return p


async def test_durable_survives_kill_9(tmp_path: Path) -> None:
    port = _free_port()
    store = tmp_path / "store"
    p = await _start_proc(port, store)
    try:
        nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        for i in range(10):
            await js.publish("foo", b"m%d" % i)
        psub = await js.pull_subscribe("foo", "dur", stream="S", config=ConsumerConfig(ack_wait=1.0))
        msgs = await psub.fetch(5, timeout=2)
        for m in msgs[:3]:
            await m.ack_sync()
        state = store / "jetstream" / "$G" / "streams" / "S" / "obs" / "dur" / "o.dat"

        def written() -> bool:
            from pynats_server.jetstream.store.consumer import decode_consumer_state

            try:
                data = state.read_bytes()
                st = decode_consumer_state(data[:-4])
            except (OSError, ValueError):
                return False
            return st.ack_floor.stream == 3 and st.delivered.stream == 5

        if TARGET == "pynats":
            await wait_for(written, what="the consumer state on disk")
        else:
            await asyncio.sleep(0.5)  # nats-server: no way to see its flush; it writes within 100 ms
        await nc.close()
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        p = await _start_proc(port, store)
        nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False)
        js = nc.jetstream()
        info = await js.consumer_info("S", "dur")
        assert (info.delivered.stream_seq, info.ack_floor.stream_seq, info.num_ack_pending) == (5, 3, 2)
        psub = await js.pull_subscribe("foo", "dur", stream="S")
        got = []
        deadline = time.monotonic() + 6
        while len(got) < 7 and time.monotonic() < deadline:
            try:
                for m in await psub.fetch(7 - len(got), timeout=1):
                    got.append((m.data, m.metadata.num_delivered))
                    await m.ack()
            except nats.errors.TimeoutError:
                pass
        assert sorted(got) == sorted([(b"m3", 2), (b"m4", 2)] + [(b"m%d" % i, 1) for i in range(5, 10)])
        await nc.close()
    finally:
        p.kill()
        p.wait()


async def test_kill_9_mid_publish_keeps_acked_messages_and_the_durable_position(tmp_path: Path) -> None:
    """The crash check: publish with acks, a durable consumer acks part of what it got, then
    kill -9 while more acked publishes are in flight. After a restart every message whose
    publish was acknowledged is there (each one read back), and the durable resumes where its
    acks left it: the delivered-but-unacked messages come again, then the rest."""
    port = _free_port()
    store = tmp_path / "store"
    p = await _start_proc(port, store)
    acked: dict[int, bytes] = {}
    try:
        nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False)
        js = nc.jetstream()
        await js.add_stream(name="K", subjects=["k.*"], storage="file")
        for i in range(400):
            payload = b"first-%d" % i
            acked[(await js.publish(f"k.{i % 5}", payload)).seq] = payload
        psub = await js.pull_subscribe("k.*", "dur", stream="K", config=ConsumerConfig(ack_wait=2.0))
        got: list[Any] = []
        deadline = time.monotonic() + 10
        while len(got) < 200 and time.monotonic() < deadline:
            got += await psub.fetch(200 - len(got), timeout=2)
        assert [m.metadata.sequence.stream for m in got] == list(range(1, 201))
        for m in got[:150]:
            await m.ack_sync()
        state = store / "jetstream" / "$G" / "streams" / "K" / "obs" / "dur" / "o.dat"

        def written() -> bool:
            from pynats_server.jetstream.store.consumer import decode_consumer_state

            try:
                st = decode_consumer_state(state.read_bytes()[:-4])
            except (OSError, ValueError):
                return False
            return st.ack_floor.stream == 150 and st.delivered.stream == 200

        if TARGET == "pynats":
            await wait_for(written, what="the consumer state on disk")
        else:
            await asyncio.sleep(0.5)  # nats-server: no way to see its flush; it writes within 100 ms
        # More acked publishes, a window of 100 in flight; kill -9 in the middle of one.
        n = 0
        killed = False
        while not killed and n < 5000:
            batch = []
            for _ in range(100):
                payload = b"second-%d" % n
                batch.append((payload, await js.publish_async(f"k.{n % 5}", payload)))
                n += 1
            if n >= 1500:
                os.kill(p.pid, signal.SIGKILL)
                killed = True
            done, _ = await asyncio.wait([f for _, f in batch], timeout=5)
            for payload, fut in batch:
                if fut in done and fut.exception() is None:
                    acked[fut.result().seq] = payload
        with contextlib.suppress(Exception):
            await nc.close()
        p.wait()
        assert killed and len(acked) >= 1400, len(acked)

        p = await _start_proc(port, store)
        nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False)
        js = nc.jetstream()
        info = await js.stream_info("K")
        assert info.state.first_seq == 1 and info.state.last_seq >= max(acked)
        for seq in sorted(acked):
            m = await js.get_msg("K", seq)
            assert m.data == acked[seq], seq
        ci = await js.consumer_info("K", "dur")
        assert (ci.delivered.stream_seq, ci.ack_floor.stream_seq, ci.num_ack_pending) == (200, 150, 50)
        psub = await js.pull_subscribe("k.*", "dur", stream="K")
        # New messages come from 201 on; the 50 unacked ones again once their ack wait is over.
        again: list[Any] = []
        deadline = time.monotonic() + 15
        while len([m for m in again if m.metadata.num_delivered == 2]) < 50 and time.monotonic() < deadline:
            with contextlib.suppress(nats.errors.TimeoutError):
                again += await psub.fetch(50, timeout=1)
        redelivered = [m.metadata.sequence.stream for m in again if m.metadata.num_delivered == 2]
        fresh = [m.metadata.sequence.stream for m in again if m.metadata.num_delivered == 1]
        assert sorted(redelivered) == list(range(151, 201))
        assert fresh == list(range(201, 201 + len(fresh)))
        assert all(m.data == acked[m.metadata.sequence.stream] for m in again)
        await nc.close()
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


async def test_consumers_come_back_after_a_clean_restart(tmp_path: Path) -> None:
    port = _free_port()
    store = tmp_path / "store"
    p = await _start_proc(port, store)
    try:
        nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        for i in range(4):
            await js.publish("foo", b"m%d" % i)
        await js.add_consumer("S", ConsumerConfig(durable_name="A", ack_policy=AckPolicy.EXPLICIT,
                                                  deliver_policy=DeliverPolicy.LAST))  # fmt: skip
        psub = await js.pull_subscribe("foo", "B", stream="S")
        (m,) = await psub.fetch(1, timeout=2)
        await m.ack_sync()
        await nc.close()
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        p = await _start_proc(port, store)
        nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False)
        js = nc.jetstream()
        a = await js.consumer_info("S", "A")
        assert (a.config.deliver_policy, a.delivered.stream_seq, a.num_pending) == (DeliverPolicy.LAST, 3, 1)
        b = await js.consumer_info("S", "B")
        assert (b.delivered.stream_seq, b.ack_floor.stream_seq, b.num_pending) == (1, 1, 3)
        await js.delete_consumer("S", "B")
        await nc.close()
    finally:
        p.kill()
        p.wait()


async def test_ephemeral_comes_back_and_then_goes(tmp_path: Path) -> None:
    """An ephemeral of a file stream is stored like a durable; after a restart it is there
    again (same name) and goes once its inactive threshold passes without use. The threshold leaves a
    loaded machine time to restart before the first look."""
    port = _free_port()
    store = tmp_path / "store"
    p = await _start_proc(port, store)
    try:
        nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo"])
        ci = await js.add_consumer("S", ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, inactive_threshold=5.0))
        name = ci.name
        await nc.close()
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        p = await _start_proc(port, store)
        nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False)
        js = nc.jetstream()
        again = await js.consumer_info("S", name)
        assert (again.name, again.config.durable_name) == (name, None)
        deadline = time.monotonic() + 20
        while True:
            try:
                await js.consumer_info("S", name)
            except nats.js.errors.NotFoundError:
                break
            assert time.monotonic() < deadline, "the recovered ephemeral is still there"
            await asyncio.sleep(0.1)
        await nc.close()
    finally:
        p.kill()
        p.wait()
