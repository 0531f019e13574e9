"""Servers in operator mode for the JWT tests: pynats-server (embedded) or a real nats-server
(go214, go29) started from the same config text, with their logs as `[LVL] text` lines
(the client's `host:port - cid:N - "v1:lang" - "acc/user" - ` prefix dropped)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import subprocess
import time
from typing import Any

from cluster_util import go_binary

from pynats_server import Server
from pynats_server import nkeys_util as nk
from pynats_server.log import Logger
from pynats_server.options import Options

TARGETS = ["pynats", "go214", "go29"]
_LINE = re.compile(r'(?:\[\d+\] )?(?:\S+ \S+ )?(\[[A-Z]{3}\]) (?:\S+:\d+ - cid:\d+ - (?:"[^"]*" - ){0,2})?(.*)')


class Running:
    """A server in operator mode, of any kind."""

    def __init__(self, kind: str, port: int, log: Any, srv: Server | None = None,
                 proc: subprocess.Popen[bytes] | None = None) -> None:
        self.kind = kind
        self.port = port
        self._log = log
        self.srv = srv
        self.proc = proc

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def log_lines(self) -> list[str]:
        out = []
        for line in self._log().splitlines():
            m = _LINE.match(line)
            if m:
                out.append(f"{m.group(1)} {m.group(2)}")
        return out

    def log_since(self, n: int) -> list[str]:
        return [line for line in self.log_lines()[n:] if not line.startswith("[TRC]")]

    async def stop(self) -> None:
        if self.srv is not None:
            await self.srv.shutdown()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            await asyncio.get_running_loop().run_in_executor(None, self.proc.wait, 10)


async def start(kind: str, conf: str, tmp_path: Any, *, debug: bool = True, name: str = "s") -> Running:
    path = os.path.join(str(tmp_path), f"{name}-{kind}.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.write(conf)
    if kind == "pynats":
        from pynats_server.config import apply_config_file

        opts = Options()
        apply_config_file(opts, path)
        opts.host, opts.port = "127.0.0.1", -1
        buf = io.StringIO()
        srv = Server(opts, logger=Logger(debug=debug, trace=False, stream=buf))
        await srv.start()
        return Running(kind, srv.port, buf.getvalue, srv=srv)
    exe = go_binary(kind)
    log = os.path.join(str(tmp_path), f"{name}-{kind}.log")
    args = [exe, "-a", "127.0.0.1", "-p", "-1", "-c", path, "-l", log] + (["-D"] if debug else [])
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def read() -> str:
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    deadline = time.monotonic() + 10
    while "Server is ready" not in read():
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited: {read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{kind} did not start")
        await asyncio.sleep(0.02)
    m = re.search(r"Listening for client connections on [^ ]+:(\d+)", read())
    assert m is not None
    return Running(kind, int(m.group(1)), read, proc=proc)


def skip_unless(kind: str) -> None:
    if kind != "pynats":
        go_binary(kind)  # skips (or fails under CI) when missing


class Raw:
    """A raw client: INFO, then whatever the test sends; reads with deadlines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: dict[str, Any]) -> None:
        self.reader = reader
        self.writer = writer
        self.info = info
        self.buf = b""

    @classmethod
    async def open(cls, port: int) -> Raw:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        line = await asyncio.wait_for(r.readline(), 5)
        assert line.startswith(b"INFO "), line
        return cls(r, w, json.loads(line[5:]))

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def connect(self, token: str, seed: str | None, **extra: Any) -> None:
        co: dict[str, Any] = {"verbose": False, "pedantic": False, "jwt": token}
        if seed is not None:
            co["sig"] = nk.sign_nonce(seed, self.info["nonce"])
        co.update(extra)
        await self.send(f"CONNECT {json.dumps(co)}\r\nPING\r\n")

    async def read_until(self, token: bytes, timeout: float = 5.0) -> bytes:
        """Everything up to and including `token` (or to EOF, marked `<EOF>`)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while token not in self.buf:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {token!r}; got {self.buf!r}")
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:
                continue
            if not data:
                self.buf += b"<EOF>"
                if token not in self.buf:
                    raise AssertionError(f"closed before {token!r}; got {self.buf!r}")
                break
            self.buf += data
        i = self.buf.index(token) + len(token)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    async def read_all(self, timeout: float = 5.0) -> bytes:
        """Until the server closes."""
        return await self.read_until(b"<EOF>", timeout)

    def close(self) -> None:
        self.writer.close()


async def wait_log(s: Running, line: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while line not in s.log_lines():
        if time.monotonic() > deadline:
            raise AssertionError(f"{s.kind}: no log line {line!r} in {s.log_lines()[-20:]}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return int(sk.getsockname()[1])


class Servers:
    """`await servers(kind, conf, tmp_path)` starts one (skipped when that kind is not
    installed); `stop_all()` at the end. Test files wrap it in a `servers` fixture."""

    def __init__(self) -> None:
        self.running: list[Running] = []

    async def __call__(self, kind: str, conf: str, tmp_path: Any, **kw: Any) -> Running:
        skip_unless(kind)
        s = await start(kind, conf, tmp_path, **kw)
        self.running.append(s)
        return s

    async def stop_all(self) -> None:
        for s in self.running:
            await s.stop()
