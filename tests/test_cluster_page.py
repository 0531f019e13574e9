"""The live cluster page (/cluster, its data /clusterz): every server of the cluster
learned through the system account, the routes between them, clients, rates, lame duck
and down states, checked as JSON and in a real headless Chromium (Debian's package).

Set PYNATS_SCREENSHOTS=DIR to keep the screenshots (the README's comes from here)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from browser import Browser
from cluster_util import http_json, wait_for
from conftest import RawClient

from pynats_server.testing import LocalCluster


async def clusterz(url: str) -> dict[str, Any]:
    return await http_json(f"{url}/clusterz")


def states(z: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["state"] for s in z["servers"]}


async def test_clusterz_follows_the_cluster() -> None:
    async with LocalCluster(3, http_port=-1, name="page") as cl:
        s0 = cl.running()[0]
        url = s0.monitor_url
        assert url is not None
        z = await wait_for(lambda: _when(clusterz(url), lambda z: len(z["routes"]) == 3), what="3 routes")
        assert states(z) == {"page-0": "up", "page-1": "up", "page-2": "up"}
        assert z["cluster"] == "page" and z["source"] == "system account"
        me = next(s for s in z["servers"] if s["self"])
        assert me["id"] == s0.id and me["implementation"] == "pynats-server"
        # Clients and counters as each server's /varz has them.
        c = await RawClient.open("127.0.0.1", cl.running()[1].port)
        await c.connect()
        await c.send(b"PUB x 2\r\nhi\r\n")
        await c.ping()
        z = await wait_for(lambda: _when(clusterz(url), lambda z: _server(z, "page-1")["connections"] == 1),
                           what="the client on page-1")
        assert _server(z, "page-1")["in_msgs"] >= 1
        # Lame duck mode: the other servers hear of it (route INFO, LAMEDUCK event).
        s1 = cl.running()[1]
        ldm = asyncio.ensure_future(s1.lame_duck_mode())
        z = await wait_for(lambda: _when(clusterz(url), lambda z: states(z)["page-1"] == "lame duck"),
                           what="page-1 in lame duck mode")
        await s1.shutdown()
        await ldm
        cl.servers[1] = None
        await c.close()
        # A stopped node stays on the page as down; the routes it had are gone.
        z = await wait_for(lambda: _when(clusterz(url), lambda z: states(z)["page-1"] == "down"),
                           what="page-1 down")
        assert len(z["routes"]) == 1
        # It comes back under a new id with the same name: both entries, one down, one up.
        await cl.start_node(1)
        await cl.wait_for_mesh()
        z = await wait_for(lambda: _when(clusterz(url), lambda z: len(z["routes"]) == 3), what="mesh again")
        assert sorted(s["state"] for s in z["servers"] if s["name"] == "page-1") == ["down", "up"]


async def test_clusterz_without_a_system_account() -> None:
    async with LocalCluster(2, http_port=-1, no_system_account=True, name="nosys") as cl:
        url = cl.running()[0].monitor_url
        assert url is not None
        z = await clusterz(url)
        assert z["source"] == "this server"
        assert states(z) == {"nosys-0": "up", "nosys-1": "up"} and len(z["routes"]) == 1


async def _when(coro: Any, pred: Any) -> Any:
    z = await coro
    return z if pred(z) else None


def _server(z: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in z["servers"] if s["name"] == name and s["state"] != "down")


async def _traffic(cl: LocalCluster, stop: asyncio.Event) -> None:
    """A subscriber on node 0 and publishers on nodes 1 and 2, bounded in count and time."""
    sub = await RawClient.open("127.0.0.1", cl.running()[0].port)
    await sub.connect(name="dashboard-sub")
    await sub.send(b"SUB demo.> 1\r\n")
    await sub.ping()
    pubs = []
    for node in cl.running()[1:]:
        p = await RawClient.open("127.0.0.1", node.port)
        await p.connect(name="dashboard-pub")
        pubs.append(p)
    end = time.monotonic() + 25
    try:
        for n in range(500):  # about 20 batches a second until stopped (25 s at most)
            if stop.is_set() or time.monotonic() > end:
                break
            for i, p in enumerate(pubs):
                with contextlib.suppress(ConnectionError):
                    await p.send(b"PUB demo.%d 11\r\nhello world\r\n" % i * (10 + n % 7))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)  # pacing, not synchronisation
            sub.buf = b""
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(sub.reader.read(1 << 20), 0.01)
    finally:
        for c in (sub, *pubs):
            with contextlib.suppress(Exception):
                await c.close()


async def test_cluster_page_in_a_browser(tmp_path: Path) -> None:
    shots = Path(os.environ.get("PYNATS_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    async with LocalCluster(3, http_port=-1, name="demo") as cl, Browser() as browser:
        stop = asyncio.Event()
        traffic = asyncio.ensure_future(_traffic(cl, stop))
        try:
            url = cl.running()[0].monitor_url
            page = await browser.open(f"{url}/cluster")

            async def shown(count: int, routes: int, polls: int = 1) -> bool:
                got = await page.eval(
                    "JSON.stringify([document.querySelector('#servers')?.dataset.count,"
                    " document.querySelector('#graph')?.dataset.routes, document.body?.dataset.polls])"
                )
                c, r, p = json.loads(got or "[null, null, null]")
                return c == str(count) and r == str(routes) and int(p or 0) >= polls

            await wait_for(lambda: shown(3, 3, polls=3), timeout=15, what="a 3-node mesh on the page")
            names = await page.eval("[...document.querySelectorAll('#servers tbody tr td:nth-child(2)')]"
                                    ".map(td => td.textContent).join(',')")
            assert names == "demo-0 *,demo-1,demo-2"
            assert await page.eval("document.querySelectorAll('#graph .node.up').length") == 3
            await page.screenshot(str(shots / "cluster-page.png"))
            # A node stops: the page shows it down, one route left, and says so.
            await cl.stop_node(2)
            await wait_for(lambda: shown(2, 1), timeout=10, what="the page noticing demo-2 stopped")
            assert await page.eval("document.querySelector('#servers tr.down td:nth-child(2)').textContent") == "demo-2"
            assert await page.eval("document.querySelector('#graph .node.down') !== null")
            events = await page.eval("document.querySelector('#events').textContent")
            assert "demo-2 is down" in events
            await page.screenshot(str(shots / "cluster-page-node-down.png"))
        finally:
            stop.set()
            await traffic
    assert (shots / "cluster-page.png").stat().st_size > 10_000
