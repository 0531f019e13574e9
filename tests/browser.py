"""A headless Chromium for tests, driven over the DevTools protocol on a pipe.

`--remote-debugging-pipe` makes Chromium read commands from fd 3 and write answers to
fd 4, as NUL-terminated JSON: no websocket, no port, nothing but the browser Debian ships.
Only what the tests need: open a page, evaluate JavaScript, take a screenshot.

Chromium comes from Debian's package (tests/debian.py installs it when missing).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

from debian import require

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]  # fmt: skip


def find_chromium() -> str:
    return require("chromium", "chromium")


class Browser:
    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self._w = -1
        self._reader: asyncio.StreamReader | None = None
        self._next = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._dir = tempfile.mkdtemp(prefix="pynats-chromium-")

    async def start(self, width: int = 1280, height: int = 900) -> Browser:
        exe = find_chromium()
        to_r, to_w = os.pipe()  # our commands -> the browser's fd 3
        from_r, from_w = os.pipe()  # the browser's fd 4 -> us
        args = [*FLAGS, f"--user-data-dir={self._dir}", f"--window-size={width},{height}",
                "--remote-debugging-pipe", "about:blank"]  # fmt: skip
        self.proc = await asyncio.create_subprocess_exec(
            "bash", "-c", f'exec "$0" "$@" 3<&{to_r} 4>&{from_w} {to_r}<&- {from_w}>&-', exe, *args,
            pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_r)
        os.close(from_w)
        self._w = to_w
        loop = asyncio.get_running_loop()
        self._reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self._reader),
                                     os.fdopen(from_r, "rb", buffering=0))  # fmt: skip
        self._task = asyncio.ensure_future(self._read())
        await self.send("Browser.getVersion")
        return self

    async def _read(self) -> None:
        assert self._reader is not None
        while True:
            try:
                raw = await self._reader.readuntil(b"\0")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                break
            msg = json.loads(raw[:-1])
            fut = self._waiting.pop(msg.get("id", -1), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("chromium went away"))

    async def send(self, method: str, params: dict[str, Any] | None = None, *, session: str = "",
                   timeout: float = 15.0) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._next] = fut
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        answer = await asyncio.wait_for(fut, timeout)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def open(self, url: str) -> Page:
        target = (await self.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self, session)
        await self.send("Page.enable", session=session)
        await self.send("Page.navigate", {"url": url}, session=session)
        return page

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.send("Browser.close", timeout=3.0)
            try:
                await asyncio.wait_for(self.proc.wait(), 5.0)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._task is not None:
            self._task.cancel()
        if self._w >= 0:
            os.close(self._w)
            self._w = -1
        shutil.rmtree(self._dir, ignore_errors=True)

    async def __aenter__(self) -> Browser:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def eval(self, expression: str) -> Any:
        r = await self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                    session=self.session)  # fmt: skip
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def screenshot(self, path: str) -> None:
        r = await self.browser.send("Page.captureScreenshot", {"format": "png"}, session=self.session)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
