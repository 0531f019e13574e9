"""Embedding helpers for tests: a server on its own thread, for synchronous code.

    with ThreadedServer() as srv:
        nc = pynats_client.connect(srv.client_url)

The server runs on its own event loop (uvloop when installed) in a daemon thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

from .options import Options
from .server import Server


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class ThreadedServer:
    """A `Server` running on a background thread with its own event loop."""

    def __init__(self, opts: Options | None = None, **overrides: Any) -> None:
        self.server = Server(opts, **overrides)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="pynats-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("pynats-server did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = self._loop = new_event_loop(self.server.opts.loop)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as e:  # noqa: BLE001 - handed to the caller of start()
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_until_complete(self.server.wait_for_shutdown())
            # Let transports finish closing.
            loop.run_until_complete(asyncio.sleep(0))
        finally:
            loop.close()

    def call(self, fn: Any, *args: Any, timeout: float = 10.0) -> Any:
        """Run `fn(*args)` (a coroutine function or plain function) on the server's loop."""
        assert self._loop is not None

        async def run() -> Any:
            r = fn(*args)
            if asyncio.iscoroutine(r):
                r = await r
            return r

        fut: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return fut.result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None or self._loop is None:
            return
        if self._loop.is_running():
            self.call(self.server.shutdown, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None

    @property
    def client_url(self) -> str:
        return self.server.client_url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def monitor_url(self) -> str | None:
        return self.server.monitor_url

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
