"""Message schedules (`allow_msg_schedules`): one-off (`@at`) and repeating (`@every`)
schedules, the produced message's headers, a schedule's source, the publish-time errors, and
schedules surviving a restart. Each test (but the restart) runs against pynats-server and
nats-server 2.14 (js_targets) and compares exact answers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.js.errors as jserr
import pytest
from conftest import wait_for
from js_targets import js_url  # noqa: F401 - the fixture

from pynats_server import Server
from pynats_server.options import JetStreamOptions

WAIT = 10.0


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


def at(seconds: float) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return "@at " + t.strftime("%Y-%m-%dT%H:%M:%SZ")


async def stream(nc: Any, name: str = "S", **cfg: Any) -> Any:
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"{name.lower()}.>"], **cfg)
    return js


async def last(js: Any, subject: str, stream: str = "S") -> Any:
    try:
        return await js.get_last_msg(stream, subject)
    except jserr.NotFoundError:
        return None


async def test_config(nc: Any) -> None:
    js = await stream(nc, allow_msg_schedules=True)
    cfg = (await js.stream_info("S")).config
    assert cfg.allow_msg_schedules is True and cfg.allow_rollup_hdrs is True
    await stream(nc, "N")
    assert (await js.stream_info("N")).config.allow_msg_schedules is not True


async def test_one_off_schedule(nc: Any) -> None:
    js = await stream(nc, allow_msg_schedules=True)
    ack = await pub(nc, "s.sched.a", b"hello", Nats_Schedule=at(1), Nats_Schedule_Target="s.target",
                    X_Custom="1", Nats_Msg_Id="m1")
    assert ack == b'{"stream":"S","seq":1}'
    stored = await js.get_msg("S", 1)
    assert stored.headers["Nats-Rollup"] == "sub"  # added to every schedule message
    produced = await wait_for(lambda: last(js, "s.target"), timeout=WAIT, what="the scheduled message")
    assert produced.data == b"hello"
    assert produced.headers == {"X-Custom": "1", "Nats-Scheduler": "s.sched.a", "Nats-Schedule-Next": "purge"}

    async def schedule_gone() -> bool:
        return await last(js, "s.sched.a") is None

    await wait_for(schedule_gone, timeout=WAIT, what="the schedule to be purged")
    info = await js.stream_info("S")
    assert (info.state.messages, info.state.last_seq) == (1, 2)


async def test_repeating_schedule_and_source(nc: Any) -> None:
    js = await stream(nc, allow_msg_schedules=True, allow_msg_ttl=True)
    await pub(nc, "s.src", b"latest", Y="2")
    ack = await pub(nc, "s.sched.r", b"own", Nats_Schedule="@every 1s", Nats_Schedule_Target="s.out",
                    Nats_Schedule_Source="s.src", Nats_Schedule_TTL="5s")
    assert ack == b'{"stream":"S","seq":2}'

    async def two() -> Any:
        st = await js.stream_info("S", subjects_filter="s.out")
        return st.state.subjects and st.state.subjects.get("s.out", 0) >= 2

    await wait_for(two, timeout=WAIT, what="two scheduled messages")
    m = await js.get_last_msg("S", "s.out")
    assert m.data == b"latest"  # the source's last message, with its headers
    h = dict(m.headers)
    nxt = h.pop("Nats-Schedule-Next")
    assert h == {"Y": "2", "Nats-Scheduler": "s.sched.r", "Nats-TTL": "5s"}
    assert nxt.endswith("Z") and dt.datetime.fromisoformat(nxt.replace("Z", "+00:00"))
    assert (await last(js, "s.sched.r")) is not None  # a repeating schedule stays


async def test_publish_errors(nc: Any) -> None:
    await stream(nc, allow_msg_schedules=True)
    await stream(nc, "OFF")
    t = "s.t"
    cases = [
        ({"Nats_Schedule": "@every 500ms", "Nats_Schedule_Target": t}, err(400, 10189, "message schedules pattern is invalid")),
        ({"Nats_Schedule": "1 2 3", "Nats_Schedule_Target": t}, err(400, 10189, "message schedules pattern is invalid")),
        ({"Nats_Schedule": "@hourly"}, err(400, 10190, "message schedules target is invalid")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": "s.a"}, err(400, 10190, "message schedules target is invalid")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": "s.*"}, err(400, 10190, "message schedules target is invalid")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": "elsewhere"}, err(400, 10190, "message schedules target is invalid")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": t, "Nats_Schedule_TTL": "soon"},
         err(400, 10191, "message schedules invalid per-message TTL")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": t, "Nats_Schedule_TTL": "5s"},
         err(400, 10166, "per-message TTL is disabled")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": t, "Nats_Schedule_Rollup": "all"},
         err(400, 10192, "message schedules invalid rollup")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": t, "Nats_Rollup": "all"},
         err(400, 10192, "message schedules invalid rollup")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": t, "Nats_Schedule_Source": t},
         err(400, 10203, "message schedules source is invalid")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": t, "Nats_Schedule_Source": "other"},
         err(400, 10203, "message schedules source is invalid")),
        ({"Nats_Schedule": "@hourly", "Nats_Schedule_Target": t, "Nats_Schedule_Time_Zone": "Mars/Olympus"},
         err(400, 10223, "message schedules time zone is invalid")),
        ({"Nats_Schedule": at(60), "Nats_Schedule_Target": t, "Nats_Schedule_Time_Zone": "UTC"},
         err(400, 10189, "message schedules pattern is invalid")),
        ({"Nats_Scheduler": "s.x"}, err(400, 10212, "message schedules invalid scheduler")),
        ({"Nats_Schedule_Next": "soon", "Nats_Scheduler": "s.x"}, err(400, 10212, "message schedules invalid scheduler")),
        ({"Nats_Schedule_Next": "purge", "Nats_Scheduler": "s.a"}, err(400, 10212, "message schedules invalid scheduler")),
    ]
    for hdrs, want in cases:
        assert await pub(nc, "s.a", **hdrs) == want, hdrs
    assert await pub(nc, "off.a", Nats_Schedule="@hourly", Nats_Schedule_Target="off.t") == err(
        400, 10188, "message schedules is disabled", "OFF")
    # A cron pattern in a time zone is fine; a client may purge a schedule itself.
    ok = await pub(nc, "s.c", Nats_Schedule="0 30 9 * * mon-fri", Nats_Schedule_Target=t,
                   Nats_Schedule_Time_Zone="Europe/Amsterdam")
    assert ok == b'{"stream":"S","seq":1}'
    assert await pub(nc, "s.p", Nats_Schedule_Next="purge", Nats_Scheduler="s.c") == b'{"stream":"S","seq":2}'
    js = nc.jetstream()
    assert await last(js, "s.c") is None


async def test_schedules_survive_a_restart(tmp_path: Path) -> None:
    store = JetStreamOptions(store_dir=str(tmp_path / "js"))
    srv = Server(jetstream=store)
    await srv.start()
    port = srv.port
    nc = await nats.connect(srv.client_url, allow_reconnect=False)
    js = await stream(nc, allow_msg_schedules=True, storage="file")
    await pub(nc, "s.sched", b"later", Nats_Schedule=at(2), Nats_Schedule_Target="s.out")
    await nc.close()
    await srv.shutdown()
    srv = Server(jetstream=store, port=port)
    await srv.start()
    try:
        nc = await nats.connect(srv.client_url, allow_reconnect=False)
        js = nc.jetstream()
        m = await wait_for(lambda: last(js, "s.out"), timeout=WAIT, what="the schedule after the restart")
        assert m.data == b"later" and m.headers["Nats-Schedule-Next"] == "purge"
        await nc.close()
    finally:
        await srv.shutdown()
