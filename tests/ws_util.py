"""WebSocket test helpers: a server with a `websocket {}` block (pynats embedded or the real
nats-server, from the same configuration text), and a raw WebSocket client that writes the
frames a test wants, good or bad, and reads the server's frames back."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import ssl
import struct
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from conftest import TIMEOUT, GoServer, go_binary, wait_for

from pynats_server import Server
from pynats_server.log import Logger

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's sample key
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def upgrade_request(host: str = "127.0.0.1", extra: str = "", *, key: str = KEY, path: str = "/") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()  # fmt: skip


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False, mask: bool = True,
          rsv2: bool = False, length: int | None = None) -> bytes:
    """A client frame; `length` overrides the length field (to lie about it)."""
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class WSRaw:
    """A raw WebSocket client: bytes and frames, every read with a deadline."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.eof = False
        self.compressed = False

    @classmethod
    async def open(cls, port: int, *, tls: ssl.SSLContext | None = None) -> WSRaw:
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=tls,
                                             server_hostname="localhost" if tls else None)  # fmt: skip
        return cls(r, w)

    @classmethod
    async def upgraded(cls, port: int, extra: str = "", *, tls: ssl.SSLContext | None = None) -> tuple[WSRaw, str]:
        """Connected and upgraded: (client, the 101 answer's head)."""
        c = await cls.open(port, tls=tls)
        await c.send(upgrade_request(extra=extra))
        head = await c.read_head()
        assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n"), head
        c.compressed = "permessage-deflate" in head
        return c, head

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _more(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out; have {self.buf[:200]!r}")
        try:
            chunk = await asyncio.wait_for(self.reader.read(65536), left)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError(f"closed; have {self.buf[:200]!r}")
        self.buf += chunk

    async def read_head(self, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            await self._more(deadline)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head.decode() + "\r\n\r\n"

    async def read_http(self, timeout: float = TIMEOUT) -> tuple[str, bytes]:
        """An HTTP answer: (head, body by Content-Length, or to the close)."""
        deadline = time.monotonic() + timeout
        head = await self.read_head(timeout)
        m = re.search(r"Content-Length: (\d+)", head)
        if m:
            n = int(m.group(1))
            while len(self.buf) < n:
                await self._more(deadline)
            body, self.buf = self.buf[:n], self.buf[n:]
            return head, body
        try:
            while True:
                await self._more(deadline)
        except EOFError:
            pass
        body, self.buf = self.buf, b""
        return head, body

    async def _exactly(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            await self._more(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def read_frame(self, timeout: float = TIMEOUT, *, raw: bool = False) -> tuple[int, bytes, int]:
        """The next server frame: (opcode, payload (inflated if compressed, unless `raw`),
        first byte)."""
        deadline = time.monotonic() + timeout
        b0, b1 = await self._exactly(2, deadline)
        assert not b1 & 0x80, "server frames are not masked"
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self._exactly(2, deadline))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self._exactly(8, deadline))
        data = await self._exactly(n, deadline)
        if b0 & 0x40 and not raw:
            d = zlib.decompressobj(wbits=-15)
            data = d.decompress(data + b"\x00\x00\xff\xff")
        return b0 & 0x0F, data, b0

    async def read_nats(self, timeout: float = TIMEOUT) -> bytes:
        """The NATS bytes of the next data frame (control frames skipped)."""
        while True:
            op, data, _ = await self.read_frame(timeout)
            if op in (1, 2, 0):
                return data

    async def nats_until(self, needle: bytes, timeout: float = TIMEOUT) -> bytes:
        out = b""
        while needle not in out:
            out += await self.read_nats(timeout)
        return out

    async def send_nats(self, data: bytes, *, compress: bool = False) -> None:
        if compress:
            await self.send(frame(2, deflate(data), rsv1=True))
        else:
            await self.send(frame(2, data))

    async def read_close(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """Frames until a close frame: (status, text)."""
        while True:
            op, data, _ = await self.read_frame(timeout)
            if op == 8:
                return (struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005), data[2:].decode()

    async def expect_eof(self, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        try:
            while True:
                await self._more(deadline)
                self.buf = b""
        except EOFError:
            return

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1)
        except (asyncio.TimeoutError, OSError, ssl.SSLError):
            pass


class WSServer:
    """A running server with a websocket port."""

    def __init__(self, port: int, ws_port: int, *, http_port: int = 0, srv: Server | None = None,
                 log: Callable[[], str]) -> None:  # fmt: skip
        self.port = port
        self.ws_port = ws_port
        self.http_port = http_port
        self.srv = srv
        self._log = log

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def ws_url(self, scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.ws_port}"

    def log(self) -> str:
        return self._log()

    async def wait_log(self, text: str) -> None:
        await wait_for(lambda: text in self._log(), what=f"log {text!r}")


StartWS = Callable[..., Awaitable[WSServer]]


@pytest.fixture
async def ws_server() -> AsyncIterator[StartWS]:
    """`s = await ws_server(conf, target="pynats")`: a server from configuration text (a
    `websocket {}` block with `port: -1` in it); target "go214" runs the real nats-server."""
    cleanups: list[Callable[[], Awaitable[None]]] = []
    tmp = tempfile.mkdtemp(prefix="pynats-ws-")

    async def start(conf: str, *, target: str = "pynats") -> WSServer:
        path = os.path.join(tmp, f"server{len(cleanups)}.conf")
        if "websocket {" in conf and "host:" not in conf:
            # Loopback only: the block's host defaults to 0.0.0.0 on both servers.
            conf = conf.replace("websocket {", "websocket { host: 127.0.0.1,", 1)
        with open(path, "w") as f:
            f.write(conf)
        if target == "pynats":
            buf = io.StringIO()
            srv = Server.from_config(path, logger=Logger(debug=True, stream=buf), host="127.0.0.1", port=-1)
            await srv.start()
            cleanups.append(srv.shutdown)
            mon = srv.monitor.port if srv.monitor is not None else 0
            return WSServer(srv.port, srv.websocket.port, http_port=mon, srv=srv, log=buf.getvalue)
        exe = go_binary(target)
        if exe is None:
            pytest.skip(f"{target} is not installed")
        g = GoServer(exe, {})
        os.replace(path, os.path.join(g.dir, "ws.conf"))
        g.opts = {}
        h = await _start_go(g, os.path.join(g.dir, "ws.conf"))

        async def stop(g: GoServer = g) -> None:
            g.stop()

        cleanups.append(stop)
        return h

    yield start
    for fn in reversed(cleanups):
        await fn()


async def _start_go(g: GoServer, conf: str) -> WSServer:
    import subprocess

    log = os.path.join(g.dir, "server.log")
    g.proc = subprocess.Popen([g.exe, "-a", "127.0.0.1", "-p", "-1", "-c", conf, "-l", log, "-D"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def read_log() -> str:
        try:
            with open(log) as f:
                return f.read()
        except OSError:
            return ""

    def ready() -> str | None:
        if g.proc is not None and g.proc.poll() is not None:
            raise RuntimeError(f"nats-server exited: {read_log()[-2000:]}")
        text = read_log()
        return text if "Server is ready" in text else None

    text = await wait_for(ready, what="nats-server to start")
    port = int(re.search(r"Listening for client connections on [^ ]+:(\d+)", text).group(1))  # type: ignore[union-attr]
    ws = int(re.search(r"Listening for websocket clients on wss?://[^ ]+:(\d+)", text).group(1))  # type: ignore[union-attr]
    http = re.search(r"Starting http monitor on [^ ]+:(\d+)", text)
    return WSServer(port, ws, http_port=int(http.group(1)) if http else 0, log=read_log)


def targets() -> list[str]:
    """pynats, and the real nats-server 2.14 when it is installed (the same test, both)."""
    return ["pynats", "go214"]


def b64key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def client_tls(ca_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    return ctx


Any_ = Any
