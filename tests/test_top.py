"""`pynats top` (pynats_server/top.py): the view worked out from /varz and /connz, and the
real program in a real terminal (tmux: send-keys to type, capture-pane to read)."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest
from conftest import wait_for
from debian import require

from pynats_server import top


def _poll(at: float, conns: list[dict], **varz: int) -> top.Poll:
    return top.Poll(at, {"server_name": "a", "version": "2.14.0", **varz}, {c["cid"]: c for c in conns})


def _conn(cid: int, msgs: int, nbytes: int, name: str = "") -> dict:
    return {"cid": cid, "name": name, "in_msgs": msgs, "out_msgs": 0, "in_bytes": nbytes, "out_bytes": 0,
            "subscriptions": cid, "uptime": f"{cid}m", "idle": "1s"}  # fmt: skip


def test_rates_and_sorting() -> None:
    first = _poll(10.0, [_conn(1, 100, 1000), _conn(2, 0, 0), _conn(3, 50, 50_000)], in_msgs=150, in_bytes=51_000)
    second = _poll(12.0, [_conn(1, 120, 1200), _conn(2, 100, 100), _conn(3, 50, 50_000), _conn(4, 9, 9)],
                   in_msgs=279, in_bytes=51_309)  # fmt: skip
    s = top.snapshot(first, second)
    assert [r["cid"] for r in s["rows"]] == [2, 1, 3, 4]  # by msgs/s; a new connection has no rate yet
    assert s["rows"][0]["msgs_rate"] == 50.0 and s["in_msgs_rate"] == 64.5
    assert [r["cid"] for r in top.snapshot(first, second, "bytes/s")["rows"]] == [1, 2, 3, 4]
    assert [r["cid"] for r in top.snapshot(first, second, "cid")["rows"]] == [1, 2, 3, 4]
    assert [r["cid"] for r in top.snapshot(first, second, "subs")["rows"]] == [4, 3, 2, 1]
    assert [r["cid"] for r in top.snapshot(first, second, "uptime")["rows"]] == [4, 3, 2, 1]
    lines = top.render(top.snapshot(first, second), width=100, height=10)
    assert len(lines) == 10 and all(len(line) <= 100 for line in lines)
    assert lines[0].startswith("NATS server version 2.14.0")
    assert lines[7].startswith("CID ")
    assert top.human(1234) == "1.2K" and top.human(999) == "999" and top.human(2_500_000, "B") == "2.5MB"


async def tmux(sock: str, *args: str) -> tuple[int, str]:
    p = await asyncio.create_subprocess_exec("tmux", "-L", sock, *args, stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    out, _ = await p.communicate()
    return p.returncode or 0, out.decode(errors="replace")


async def test_pynats_top_under_tmux(start_server) -> None:
    require("tmux", "tmux")
    s = await start_server(http_port=-1)
    quiet = await s.connected(name="quiet-one")
    busy = await s.connected(name="busy-publisher")
    await quiet.send(b"SUB other 1\r\n")
    await quiet.ping()
    sock = f"pynats-top-test-{os.getpid()}"
    cmd = f"{sys.executable} -m pynats_server.natscli top -m http://127.0.0.1:{s.http_port} --interval 0.3"
    rc, out = await tmux(sock, "new-session", "-d", "-s", "top", "-x", "150", "-y", "30", cmd)
    assert rc == 0, out
    stop = asyncio.Event()

    async def publish() -> None:  # bounded: 20 s at most
        end = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < end:
            await busy.send(b"PUB t 5\r\nhello\r\n" * 20)
            try:
                await asyncio.wait_for(stop.wait(), 0.05)  # pacing, not synchronisation
            except asyncio.TimeoutError:
                pass

    traffic = asyncio.ensure_future(publish())
    try:
        async def screen() -> str:
            return (await tmux(sock, "capture-pane", "-p", "-t", "top"))[1]

        def rows(text: str) -> list[str]:
            lines = text.splitlines()
            head = next(i for i, line in enumerate(lines) if line.startswith("CID "))
            return [line for line in lines[head + 1 :] if line.strip()]

        async def busiest_first() -> str | None:
            text = await screen()
            if "Sorted by: msgs/s" not in text or "quiet-one" not in text:
                return None
            r = rows(text)
            return text if r and "busy-publisher" in r[0] and "quiet-one" in r[1] else None

        text = await wait_for(busiest_first, timeout=10, what="top's table, busiest connection first")
        assert "Connections: 2" in text and "NATS server version 2.14.0" in text
        # `o`: the next sort order; `O` back; `q` quits.
        await tmux(sock, "send-keys", "-t", "top", "o")
        await wait_for(lambda: _contains(screen(), "Sorted by: bytes/s"), what="sort by bytes/s")
        await tmux(sock, "send-keys", "-t", "top", "o")
        text = await wait_for(lambda: _contains(screen(), "Sorted by: cid"), what="sort by cid")
        assert "quiet-one" in rows(text)[0]  # the lower cid first
        await tmux(sock, "send-keys", "-t", "top", "q")
        await wait_for(lambda: _gone(sock), what="pynats top to quit on q")
    finally:
        stop.set()
        await traffic
        await tmux(sock, "kill-server")


async def _contains(coro: asyncio.Future[str] | object, text: str) -> str | None:
    got = await coro  # type: ignore[misc]
    return got if text in got else None


async def _gone(sock: str) -> bool:
    rc, _ = await tmux(sock, "has-session", "-t", "top")
    return rc != 0


def test_unreachable_monitoring_port() -> None:
    with pytest.raises(top.FetchError):
        top.fetch("http://127.0.0.1:1", "/varz", timeout=1)


async def test_once_prints_one_view(start_server) -> None:
    s = await start_server(http_port=-1)
    await s.connected(name="someone")
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pynats_server.natscli", "top", "--once", "--interval", "0.2", "--sort", "cid",
        "-m", f"http://127.0.0.1:{s.http_port}", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(p.communicate(), 20)
    assert p.returncode == 0, err
    text = out.decode()
    assert "Sorted by: cid" in text and "someone" in text and "Connections: 1" in text
