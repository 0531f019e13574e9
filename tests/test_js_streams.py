"""JetStream streams: the stream API with nats-py, exact bytes on the wire, persistence (restart,
kill -9, a damaged store), mirrors and sources, monitoring, account limits, and a configuration
fuzz compared with nats-server 2.14 itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from conftest import TIMEOUT, RawClient, go_binary, http_get, wait_for
from nats.js.api import StreamConfig, StreamSource, SubjectTransform
from nats.js.errors import BadRequestError, KeyWrongLastSequenceError, NotFoundError

from pynats_server import Server
from pynats_server.log import Logger
from pynats_server.options import AccountConfig, JetStreamLimits, JetStreamOptions, User

pytestmark = pytest.mark.skipif(os.environ.get("PYNATS_TEST_TARGET", "pynats") != "pynats",
                                reason="runs pynats-server (the fuzz compares with nats-server itself)")  # fmt: skip


@contextlib.asynccontextmanager
async def js_server(store_dir: str, **opts: Any) -> AsyncIterator[Server]:
    srv = Server(host="127.0.0.1", port=0, jetstream=JetStreamOptions(store_dir=store_dir), **opts)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.shutdown()


async def raw(srv: Server) -> RawClient:
    c = await RawClient.open("127.0.0.1", srv.port)
    await c.connect(headers=True, no_responders=True, protocol=1)
    await c.send(b"SUB _INBOX.> 1\r\n")
    await c.ping()
    return c


async def api(c: RawClient, subject: str, body: Any = b"", inbox: str = "_INBOX.r") -> dict[str, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    await c.send(f"PUB $JS.API.{subject} {inbox} {len(data)}\r\n".encode() + data + b"\r\n")
    _, payload = await c.read_msg()
    return json.loads(payload)


# -- the API with nats-py --------------------------------------------------------------------


async def test_natspy_stream_lifecycle(tmp_path: Any) -> None:
    async with js_server(str(tmp_path)) as srv:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["foo.>"])
        for i in range(10):
            ack = await js.publish(f"foo.{i % 3}", f"m{i}".encode())
            assert (ack.stream, ack.seq) == ("S", i + 1)
        info = await js.stream_info("S")
        assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (10, 1, 10)
        # File storage counts nats-server's record size: 22 + subject + payload + 8.
        assert info.state.bytes == sum(22 + 5 + len(f"m{i}") + 8 for i in range(10))
        # A live limit change is applied to what is stored.
        await js.update_stream(StreamConfig(name="S", subjects=["foo.>"], max_msgs=4))
        info = await js.stream_info("S")
        assert (info.state.messages, info.state.first_seq) == (4, 7)
        m = await js.get_msg("S", 8)
        assert (m.subject, m.data) == ("foo.1", b"m7")
        m = await js.get_last_msg("S", "foo.0")
        assert m.seq == 10
        assert await js.delete_msg("S", 8)
        with pytest.raises(NotFoundError):
            await js.get_msg("S", 8)
        assert await js.purge_stream("S", subject="foo.0")  # seqs 7 and 10
        info = await js.stream_info("S")
        assert (info.state.messages, info.state.first_seq) == (1, 9)
        names = [s.config.name for s in await js.streams_info()]
        assert names == ["S"]
        assert await js.delete_stream("S")
        with pytest.raises(NotFoundError):
            await js.stream_info("S")
        await nc.close()


async def test_natspy_dedup_and_expected_headers(tmp_path: Any) -> None:
    async with js_server(str(tmp_path)) as srv:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["a", "b"])
        a1 = await js.publish("a", b"1", headers={"Nats-Msg-Id": "x"})
        a2 = await js.publish("a", b"2", headers={"Nats-Msg-Id": "x"})
        assert (a1.seq, a1.duplicate) == (1, None)
        assert (a2.seq, a2.duplicate) == (1, True)
        await js.publish("b", b"3", headers={"Nats-Expected-Last-Sequence": "1"})
        with pytest.raises(BadRequestError) as e:
            await js.publish("b", b"4", headers={"Nats-Expected-Last-Subject-Sequence": "1"})
        assert e.value.err_code == 10071
        assert (await js.stream_info("S")).state.messages == 2
        await nc.close()


async def test_natspy_key_value(tmp_path: Any) -> None:
    async with js_server(str(tmp_path)) as srv:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="cfg", history=3)
        r1 = await kv.put("k", b"v1")
        r2 = await kv.update("k", b"v2", last=r1)
        assert (await kv.get("k")).value == b"v2"
        with pytest.raises(KeyWrongLastSequenceError):
            await kv.update("k", b"v3", last=r1)
        with pytest.raises(KeyWrongLastSequenceError):
            await kv.create("k", b"again")
        await kv.put("k", b"v3")
        await kv.put("k", b"v4")
        info = await js.stream_info("KV_cfg")
        assert info.state.messages == 3  # history 3: the oldest revision went
        assert info.config.max_msgs_per_subject == 3
        await kv.delete("k")
        with pytest.raises(Exception):  # noqa: B017  - KeyDeletedError / KeyNotFoundError by version
            await kv.get("k")
        await kv.purge("k")
        info = await js.stream_info("KV_cfg")
        assert info.state.messages == 1  # the purge marker rolled the subject up
        assert r2 == 2
        await nc.close()


# -- bytes on the wire -----------------------------------------------------------------------


async def test_puback_and_error_bytes(tmp_path: Any) -> None:
    async with js_server(str(tmp_path)) as srv:
        c = await raw(srv)
        r = await api(c, "STREAM.CREATE.S", {"name": "S", "subjects": ["foo"], "max_msg_size": 40})
        assert r["did_create"] is True
        await c.send(b"PUB foo _INBOX.1 2\r\nhi\r\n")
        await c.expect(b'MSG _INBOX.1 1 22\r\n{"stream":"S","seq":1}\r\n')
        await c.send(b"HPUB foo _INBOX.2 28 29\r\nNATS/1.0\r\nNats-Msg-Id: a\r\n\r\nx\r\n")
        await c.expect(b'MSG _INBOX.2 1 22\r\n{"stream":"S","seq":2}\r\n')
        await c.send(b"HPUB foo _INBOX.3 28 29\r\nNATS/1.0\r\nNats-Msg-Id: a\r\n\r\nx\r\n")
        await c.expect(b'MSG _INBOX.3 1 40\r\n{"stream":"S","seq":2,"duplicate": true}\r\n')
        await c.send(b"PUB foo _INBOX.4 41\r\n" + b"x" * 41 + b"\r\n")  # headers count too
        body = (b'{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},'
                b'"stream":"S","seq":0}')  # fmt: skip
        await c.expect(b"MSG _INBOX.4 1 %d\r\n%s\r\n" % (len(body), body))
        # Many publishes in one write: every PubAck, in order (file streams answer a whole
        # read after one write to disk).
        await c.send(b"".join(b"PUB foo _INBOX.p%d 1\r\nx\r\n" % i for i in range(200)))
        for i in range(200):
            line, payload = await c.read_msg()
            assert line == b"MSG _INBOX.p%d 1 %d" % (i, len(payload))
            assert json.loads(payload) == {"stream": "S", "seq": 3 + i}
        # No reply: stored silently.
        await c.send(b"PUB foo 1\r\nz\r\n")
        assert (await api(c, "STREAM.INFO.S"))["state"]["messages"] == 203
        await c.close()


async def test_no_ack_stream_and_unknown_endpoint(tmp_path: Any) -> None:
    async with js_server(str(tmp_path)) as srv:
        c = await raw(srv)
        assert (await api(c, "STREAM.CREATE.N", {"name": "N", "subjects": ["n"], "no_ack": True}))["did_create"]
        await c.send(b"PUB n _INBOX.1 1\r\nx\r\nPUB $JS.API.NOPE.X _INBOX.2 0\r\n\r\n")
        await c.expect_nothing()  # no PubAck, no answer (and no 503: $JS.API.> is subscribed)
        assert (await api(c, "STREAM.INFO.N"))["state"]["messages"] == 1
        await c.close()


async def test_direct_get_frames(tmp_path: Any) -> None:
    async with js_server(str(tmp_path)) as srv:
        c = await raw(srv)
        await api(c, "STREAM.CREATE.S", {"name": "S", "subjects": ["k.*"], "allow_direct": True})
        await c.send(b"HPUB k.a _INBOX.1 18 20\r\nNATS/1.0\r\nX: 1\r\n\r\nv1\r\n")
        await c.read_msg()
        await c.send(b"PUB $JS.API.DIRECT.GET.S.k.a _INBOX.2 0\r\n\r\n")
        line, body = await c.read_msg()
        hdr_len = int(line.split()[-2])
        hdr = body[:hdr_len].decode()
        assert re.fullmatch(
            r"NATS/1.0\r\nX: 1\r\nNats-Stream: S\r\nNats-Subject: k.a\r\nNats-Sequence: 1\r\n"
            r"Nats-Time-Stamp: \d{4}-\d\d-\d\dT[\d:.]+Z\r\n\r\n", hdr), hdr  # fmt: skip
        assert body[hdr_len:] == b"v1"
        await c.send(b'PUB $JS.API.DIRECT.GET.S _INBOX.3 9\r\n{"seq":9}\r\n')
        await c.expect(b"HMSG _INBOX.3 1 34 34\r\nNATS/1.0 404 Message Not Found\r\n\r\n\r\n")
        # A stream without allow_direct: nobody answers (no responders).
        await api(c, "STREAM.CREATE.N", {"name": "N", "subjects": ["nd"]})
        await c.send(b'PUB $JS.API.DIRECT.GET.N _INBOX.4 9\r\n{"seq":1}\r\n')
        line, _ = await c.read_msg()
        assert line.startswith(b"HMSG _INBOX.4 1 ")
        await c.close()


# -- persistence -----------------------------------------------------------------------------


async def test_restart_keeps_messages_and_dedup_window(tmp_path: Any) -> None:
    d = str(tmp_path)
    async with js_server(d) as srv:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s"])
        await js.add_stream(name="M", subjects=["m"], storage="memory")
        for i in range(5):
            await js.publish("s", b"x", headers={"Nats-Msg-Id": f"id{i}"})
        await js.publish("m", b"gone after a restart")
        await nc.close()
    async with js_server(d) as srv:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        js = nc.jetstream()
        ack = await js.publish("s", b"x", headers={"Nats-Msg-Id": "id3"})
        assert (ack.seq, ack.duplicate) == (4, True)  # the window's ids came back from the store
        ack = await js.publish("s", b"x", headers={"Nats-Expected-Last-Msg-Id": "id4"})
        assert ack.seq == 6
        assert (await js.stream_info("M")).state.messages == 0  # memory streams start empty
        await nc.close()


async def test_damaged_stream_is_logged_and_others_served(tmp_path: Any) -> None:
    d = str(tmp_path)
    async with js_server(d) as srv:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        js = nc.jetstream()
        for name in ("A", "B"):
            await js.add_stream(name=name, subjects=[name.lower()])
            for _ in range(3):
                await js.publish(name.lower(), b"payload")
        await nc.close()
    meta = os.path.join(d, "jetstream", "$G", "streams", "A", "meta.inf")
    with open(meta, "w") as f:
        f.write("{not json")
    buf = __import__("io").StringIO()
    async with js_server(d, logger=Logger(stream=buf)) as srv:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        js = nc.jetstream()
        assert (await js.stream_info("B")).state.messages == 3
        with pytest.raises(NotFoundError):
            await js.stream_info("A")
        await nc.close()
    log = buf.getvalue()
    assert 'Error recovering stream "A" in account "$G"' in log
    assert meta in log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_cli(store: str, port: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "pynats_server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


async def _connect_when_up(port: int, proc: subprocess.Popen[bytes]) -> Any:
    async def up() -> Any:
        assert proc.poll() is None, "the server exited"
        try:
            return await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False, connect_timeout=1)
        except Exception:
            return None

    return await wait_for(up, timeout=20, what="pynats-server to accept clients")


@pytest.mark.parametrize("storage", ["file"])
async def test_kill_9_keeps_every_acknowledged_message(tmp_path: Any, storage: str) -> None:
    """Publish with acks (a window of async publishes) into a CLI server, kill -9 it while
    publishes are in flight, restart: every acknowledged message is there, intact."""
    store = str(tmp_path)
    port = _free_port()
    proc = _start_cli(store, port)
    acked: dict[int, bytes] = {}
    try:
        nc = await _connect_when_up(port, proc)
        js = nc.jetstream()
        await js.add_stream(name="C", subjects=["c.*"], storage=storage)
        deadline = time.monotonic() + 20
        n = 0
        killed = False
        while time.monotonic() < deadline and n < 20_000:
            batch = []
            for _ in range(200):
                payload = b"msg-%d" % n
                batch.append((payload, await js.publish_async(f"c.{n % 7}", payload)))
                n += 1
            if not killed and n >= 3000:
                os.killpg(proc.pid, signal.SIGKILL)  # mid-flight: some of this batch are unacked
                killed = True
            done, _ = await asyncio.wait([f for _, f in batch], timeout=TIMEOUT)
            for payload, fut in batch:
                if fut in done and fut.exception() is None:
                    acked[fut.result().seq] = payload
            if killed:
                break
        with contextlib.suppress(Exception):
            await nc.close()
        proc.wait(10)
        assert killed and len(acked) >= 2000, len(acked)
        proc = _start_cli(store, port)
        nc = await _connect_when_up(port, proc)
        js = nc.jetstream()
        info = await js.stream_info("C")
        assert info.state.last_seq >= max(acked)
        for seq in sorted(acked)[:: max(1, len(acked) // 400)] + [max(acked)]:
            m = await js.get_msg("C", seq)
            assert m.data == acked[seq], seq
        # Every acknowledged sequence is there: the count covers them (nothing lost in between).
        assert info.state.messages >= len(acked)
        assert info.state.first_seq == 1
        await nc.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- mirrors and sources ---------------------------------------------------------------------


async def test_mirror_and_sources(tmp_path: Any) -> None:
    d = str(tmp_path)
    async with js_server(d) as srv:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o.*"])
        for i in range(6):
            await js.publish(f"o.{i % 2}", f"v{i}".encode())
        await js.delete_msg("O", 3)
        await js.add_stream(name="MIR", mirror=StreamSource(name="O"))
        await js.add_stream(name="SRC", subjects=["local"], sources=[
            StreamSource(name="O", filter_subject="o.1"),
            StreamSource(name="O", opt_start_seq=5, subject_transforms=[SubjectTransform(src="o.0", dest="x.0")]),
        ])  # fmt: skip

        async def copied() -> bool:
            mi = await js.stream_info("MIR")
            si = await js.stream_info("SRC")
            return mi.state.messages == 5 and si.state.messages == 4

        await wait_for(copied, what="the mirror and the sources to catch up")
        m = await js.get_msg("MIR", 4)  # the mirror keeps the origin's sequences
        assert (m.seq, m.data) == (4, b"v3")
        with pytest.raises(NotFoundError):
            await js.get_msg("MIR", 3)
        subjects = sorted([(await js.get_msg("SRC", s)).subject for s in range(1, 5)])
        assert subjects == ["o.1", "o.1", "o.1", "x.0"]
        src = await js.get_msg("SRC", 1)
        assert src.headers is not None and re.fullmatch(r"O \d+ o\.1 > o\.1", src.headers["Nats-Stream-Source"])
        await js.publish("o.1", b"new")
        await wait_for(lambda: js.stream_info("SRC"), what="SRC info")

        async def followed() -> bool:
            return (await js.stream_info("SRC")).state.messages == 5 and (
                await js.stream_info("MIR")).state.messages == 6

        await wait_for(followed, what="new origin messages to be copied")
        await nc.close()
    # After a restart the sources resume after what they hold: nothing is copied twice.
    async with js_server(d) as srv:
        nc = await nats.connect(f"nats://127.0.0.1:{srv.port}")
        js = nc.jetstream()
        await js.publish("o.1", b"after restart")

        async def again() -> bool:
            return (await js.stream_info("SRC")).state.messages == 6 and (
                await js.stream_info("MIR")).state.last_seq == 8

        await wait_for(again, what="copying after a restart")
        assert (await js.stream_info("SRC")).state.messages == 6
        await nc.close()


# -- monitoring, account info, account limits ------------------------------------------------


async def test_jsz_and_account_info(tmp_path: Any) -> None:
    async with js_server(str(tmp_path), http_port=-1) as srv:
        c = await raw(srv)
        await api(c, "STREAM.CREATE.F", {"name": "F", "subjects": ["f"], "max_bytes": 1000})
        await api(c, "STREAM.CREATE.M", {"name": "M", "subjects": ["m"], "storage": "memory"})
        await c.send(b"PUB f _INBOX.1 5\r\nhello\r\nPUB m _INBOX.2 5\r\nhello\r\n")
        await c.read_msg()
        await c.read_msg()
        info = await api(c, "INFO")
        assert (info["storage"], info["memory"], info["reserved_storage"], info["streams"]) == (36, 22, 1000, 2)
        assert info["api"] == {"level": 4, "total": 2, "errors": 0}
        status, body = await http_get("127.0.0.1", srv.monitor.port, "/jsz?accounts=1&streams=1&config=1")
        assert status == 200
        z = json.loads(body)
        assert list(z)[:6] == ["memory", "storage", "reserved_memory", "reserved_storage", "accounts", "ha_assets"]
        assert (z["streams"], z["messages"], z["bytes"], z["total"]) == (2, 2, 58, 1)
        (acc,) = z["account_details"]
        assert acc["reserved_memory"] == 2**64 - 1  # nats-server prints the -1 limit as uint64
        assert sorted(s["name"] for s in acc["stream_detail"]) == ["F", "M"]
        assert acc["stream_detail"][0]["config"]["metadata"] == {"_nats.req.level": "0"}
        status, body = await http_get("127.0.0.1", srv.monitor.port, "/jsz?accounts=x")
        assert (status, body) == (400, b"Error decoding boolean for 'accounts': strconv.ParseBool: parsing \"x\": invalid syntax")
        await c.close()


async def test_account_limits(tmp_path: Any) -> None:
    limits = JetStreamLimits(max_streams=2, max_storage=300, max_memory=200, storage_max_stream_bytes=250)
    accounts = [AccountConfig(name="A", jetstream=limits)]
    async with js_server(str(tmp_path), accounts=accounts, users=[User(user="a", password="a", account="A")],
                         no_auth_user="a") as srv:  # fmt: skip
        c = await raw(srv)
        r = await api(c, "STREAM.CREATE.S2", {"name": "S2", "subjects": ["s2"], "max_bytes": 300})
        assert r["error"] == {"code": 400, "err_code": 10122,
                              "description": "stream max bytes exceeds account limit max stream bytes"}  # fmt: skip
        await api(c, "STREAM.CREATE.S1", {"name": "S1", "subjects": ["s1"]})
        await api(c, "STREAM.CREATE.S2", {"name": "S2", "subjects": ["s2"], "max_bytes": 200})
        r = await api(c, "STREAM.CREATE.S3", {"name": "S3", "subjects": ["s3"]})
        assert r["error"]["err_code"] == 10027
        errs = []
        for i in range(8):
            await c.send(b"PUB s1 _INBOX.%d 30\r\n%s\r\n" % (i, b"x" * 30))
            _, body = await c.read_msg()
            errs.append(json.loads(body).get("error", {}).get("err_code"))
        # 30-byte payloads are 62 bytes each in a file store: 4 fit in 300.
        assert errs == [None] * 4 + [10002] * 4
        await c.close()


# -- configuration fuzz against nats-server 2.14 ---------------------------------------------

_TIME_RE = re.compile(r'"\d{4}-\d\d-\d\dT[^"]*"')


class _Target:
    """A raw client of one server (pynats embedded, or a nats-server process)."""

    def __init__(self, c: RawClient) -> None:
        self.c = c
        self.n = 0

    async def _req(self, subject: bytes, body: bytes) -> str:
        self.n += 1
        await self.c.send(b"PUB %s _INBOX.f%d %d\r\n%s\r\n" % (subject, self.n, len(body), body))
        _, payload = await self.c.read_msg()
        return _TIME_RE.sub('"<t>"', payload.decode())

    async def create(self, body: bytes, update: bytes) -> tuple[str, str]:
        """CREATE with `body`, then UPDATE with `update`, then DELETE: the two answers."""
        created = await self._req(b"$JS.API.STREAM.CREATE.F", body)
        updated = await self._req(b"$JS.API.STREAM.UPDATE.F", update)
        await self._req(b"$JS.API.STREAM.DELETE.F", b"")
        return created, updated


async def test_config_fuzz_matches_nats_server(tmp_path: Any) -> None:
    """Random stream configurations get the same answer from pynats and nats-server 2.14: the
    same error (code, err_code, text), or the same echoed configuration. Bounded: a fixed number
    of generated configurations, both servers started once."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    exe = go_binary("go214")
    if exe is None:
        pytest.skip("nats-server 2.14 is not installed")
    go_dir = tempfile.mkdtemp(dir=str(tmp_path))
    port = _free_port()
    proc = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", go_dir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        async def go_up() -> RawClient | None:
            try:
                return await RawClient.open("127.0.0.1", port)
            except OSError:
                return None

        gc = await wait_for(go_up, what="nats-server to listen")
        await gc.connect(headers=True, no_responders=True, protocol=1)
        await gc.send(b"SUB _INBOX.> 1\r\n")
        await gc.ping()
        async with js_server(str(tmp_path / "py")) as srv:
            pc = await raw(srv)
            go, py = _Target(gc), _Target(pc)
            # Other streams for the overlap checks.
            for t in (go, py):
                for name, subj in (("O1", "taken.>"), ("O2", "x.*.y")):
                    await t.c.send(b"PUB $JS.API.STREAM.CREATE.%s _INBOX.o 40\r\n" % name.encode()
                                   + json.dumps({"name": name, "subjects": [subj]}).encode().ljust(40) + b"\r\n")  # fmt: skip
                    await t.c.read_msg()

            durations = st.sampled_from([0, -1, 1, 50_000_000, 100_000_000, 1_000_000_000, 120_000_000_000, 10**13])
            limits = st.sampled_from([0, -1, -5, 1, 2, 100, 10**6, "7", 1.5])
            subjects = st.lists(st.sampled_from(["a", "a.*", "a.>", "a.b", ">", "taken.x", "x.q.y", "$JS.API.X",
                                                 "$SYS.x", "$JS.EVENT.x", "a..b", "b c", "F", "*", "q.*.*"]),
                                max_size=3)  # fmt: skip
            values: dict[str, Any] = {
                "subjects": subjects,
                "retention": st.sampled_from(["limits", "interest", "workqueue", "bogus"]),
                "max_consumers": limits, "max_msgs": limits, "max_bytes": limits, "max_msgs_per_subject": limits,
                "max_msg_size": limits, "max_age": durations, "duplicate_window": durations,
                "discard": st.sampled_from(["old", "new", "NEW"]), "storage": st.sampled_from(["file", "memory"]),
                "num_replicas": st.sampled_from([0, 1, 3, -1, 6, "1"]), "no_ack": st.booleans(),
                "discard_new_per_subject": st.booleans(), "deny_delete": st.booleans(), "deny_purge": st.booleans(),
                "allow_rollup_hdrs": st.booleans(), "allow_direct": st.booleans(), "mirror_direct": st.booleans(),
                "sealed": st.booleans(), "allow_msg_ttl": st.booleans(),
                "subject_delete_marker_ttl": durations, "first_seq": st.sampled_from([0, 5]),
                "compression": st.sampled_from(["none", "s2", "zz"]),
                "description": st.sampled_from(["", "d", "x" * 5000]),
                "metadata": st.sampled_from([{}, {"k": "v"}]),
                "placement": st.sampled_from([{}, {"cluster": "c"}, {"preferred": "p"}]),
                "republish": st.sampled_from([{"src": ">", "dest": "rp.>"}, {"dest": "a"}, {"src": "a.*", "dest": "r.$2"}]),
                "subject_transform": st.sampled_from([{"src": "a.*", "dest": "t.$1"}, {"src": "a.*", "dest": "t.$3"}]),
                "mirror": st.sampled_from([{"name": "O1"}, {"name": "O1", "filter_subject": "taken.a"}, {"name": "a.b"}]),
                "sources": st.sampled_from([[{"name": "O1"}], [{"name": "O1"}, {"name": "O1"}], [{"name": "O2", "filter_subject": "x.1.y"}]]),
                "consumer_limits": st.sampled_from([{}, {"max_ack_pending": 5}, {"inactive_threshold": -1}]),
                "bogus_field": st.just(1),
                "pedantic": st.booleans(),
                "persist_mode": st.sampled_from(["default", "async", "x"]),
                "allow_msg_counter": st.booleans(),
                "name": st.sampled_from(["F", "G", "F.x"]),
            }  # fmt: skip

            @st.composite
            def fields(draw: Any) -> dict[str, Any]:
                # A few fields each time, so that one refusal does not hide the others.
                keys = draw(st.lists(st.sampled_from(sorted(values)), max_size=4, unique=True))
                return {k: draw(values[k]) for k in keys}
            # Hypothesis draws the configurations (deterministically); both servers answer each.
            seen: list[tuple[bytes, bytes]] = []

            @hypothesis.settings(max_examples=int(os.environ.get("PYNATS_FUZZ_EXAMPLES", "400")), deadline=None, database=None, derandomize=True,
                                 suppress_health_check=list(hypothesis.HealthCheck))  # fmt: skip
            @hypothesis.given(fields(), fields())
            def draw(cfg: dict[str, Any], upd: dict[str, Any]) -> None:
                # "name" in cfg overrides; the update keeps the created stream's name and
                # subjects unless it draws its own.
                seen.append((json.dumps({"name": "F", **cfg}).encode(),
                             json.dumps({"name": "F", "subjects": cfg.get("subjects") or ["F"], **upd}).encode()))  # fmt: skip

            draw()
            for body, update in seen:
                a = await go.create(body, update)
                b = await py.create(body, update)
                assert b == a, (f"config {body.decode()}, update {update.decode()}\n  nats-server: {a}\n"
                                f"  pynats:      {b}")  # fmt: skip
            assert len(seen) >= 300
            await pc.close()
        await gc.close()
    finally:
        proc.terminate()
        proc.wait(10)



async def test_domain_prefix(tmp_path: Any) -> None:
    """With a JetStream domain, `$JS.<domain>.API.*` reaches the API (and direct gets) from the
    account, and PubAcks name the domain."""
    srv = Server(host="127.0.0.1", port=0, jetstream=JetStreamOptions(store_dir=str(tmp_path), domain="hub"))
    await srv.start()
    try:
        c = await raw(srv)
        body = json.dumps({"name": "S", "subjects": ["s"], "allow_direct": True}).encode()
        await c.send(b"PUB $JS.hub.API.STREAM.CREATE.S _INBOX.1 %d\r\n%s\r\n" % (len(body), body))
        _, payload = await c.read_msg()
        assert json.loads(payload)["did_create"] is True and b'"domain"' not in payload
        await c.send(b"PUB s _INBOX.2 1\r\nx\r\n")
        await c.expect(b'MSG _INBOX.2 1 37\r\n{"stream":"S","domain":"hub","seq":1}\r\n')
        await c.send(b'PUB $JS.hub.API.DIRECT.GET.S _INBOX.3 9\r\n{"seq":1}\r\n')
        line, _ = await c.read_msg()
        assert line.startswith(b"HMSG _INBOX.3 1 ")
        await c.send(b"PUB $JS.hub.API.INFO _INBOX.4 0\r\n\r\n")
        _, payload = await c.read_msg()
        assert json.loads(payload)["domain"] == "hub"
        await c.close()
    finally:
        await srv.shutdown()
