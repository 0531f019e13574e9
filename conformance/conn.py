"""A raw TCP connection to a server with frame-aware expectations.

The reader splits what the server sends into *frames*: one control line, plus the payload for
``MSG``/``HMSG``/``RMSG``/``LMSG`` (the last size token says how long it is). Whole frames pass
through filters (automatic PONG to a server PING, ``ignore`` patterns) and are appended to
``pending``; expectations consume ``pending`` from the front. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import ssl
import time
from collections.abc import Callable
from typing import Any

from .util import diff_excerpt, escape

DEFAULT_TIMEOUT = 2.0
_SIZED_OPS = {b"MSG", b"HMSG", b"RMSG", b"LMSG"}


def _first_frame(data: bytes) -> bytes:
    """The first frame of ``data`` (a line, plus the payload of a sized op); all if incomplete."""
    nl = data.find(b"\n")
    if nl < 0:
        return data
    parts = data[: nl + 1].split()
    if parts and parts[0].upper() in _SIZED_OPS and len(parts) >= 2:
        try:
            size = int(parts[-1])
        except ValueError:
            return data[: nl + 1]
        return data[: nl + 1 + size + 2]
    return data[: nl + 1]


class Mismatch(Exception):
    """An expectation was not met. ``expected``/``got`` are shown escaped in reports."""

    def __init__(
        self,
        message: str,
        expected: bytes | str | None = None,
        got: bytes | str | None = None,
        conn: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.got = got
        self.conn = conn

    def render(self) -> str:
        head = f"[{self.conn}] {self.message}" if self.conn else self.message
        exp, got = self.expected, self.got
        if exp is None and got is None:
            return head
        if isinstance(exp, bytes) and isinstance(got, bytes):
            e, g, i = diff_excerpt(exp, got)
            return f"{head}\n      first difference at byte {i}\n      expected: {e}\n      got:      {g}"
        out = head
        if exp is not None:
            out += "\n      expected: " + (escape(exp) if isinstance(exp, bytes) else str(exp))
        if got is not None:
            out += "\n      got:      " + (escape(got) if isinstance(got, bytes) else str(got))
        return out


class Conn:
    """One client or route connection opened (or accepted) by a case."""

    def __init__(
        self,
        name: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.name = name
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.raw = bytearray()  # bytes not yet split into whole frames
        self.pending = bytearray()  # whole frames, after filters, not yet consumed
        self.eof = False
        self.eof_reason = ""
        self.autopong = True
        self.ignore: list[re.Pattern[bytes]] = []
        self.seen_pings = 0
        self.ignored: collections.deque[bytes] = collections.deque(
            maxlen=1000
        )  # frames dropped by `ignore`
        self.received = 0  # total bytes read
        self._event = asyncio.Event()
        self._upgrading = False  # set while the read loop stops for a TLS upgrade
        self.tls = False
        self._task = asyncio.create_task(self._read_loop())
        self.on_frame: Callable[[bytes], None] | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    async def open(
        cls,
        name: str,
        host: str,
        port: int,
        timeout: float = DEFAULT_TIMEOUT,
        tls: ssl.SSLContext | None = None,
    ) -> Conn:
        """Connect; with ``tls``, do the TLS handshake first (its failures raise as they are)."""
        if tls is not None:
            # No Mismatch here: a handshake failure may be what the case expects.
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host, port, limit=1 << 22, ssl=tls, server_hostname="127.0.0.1"
                ),
                timeout,
            )
            c = cls(name, reader, writer, timeout)
            c.tls = True
            return c
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 22), timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise Mismatch(f"cannot connect to {host}:{port}: {exc!r}", conn=name) from None
        return cls(name, reader, writer, timeout)

    # ------------------------------------------------------------------ reading
    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    self.eof_reason = "closed by server"
                    break
                self.received += len(data)
                self.raw += data
                self._split_frames()
                self._event.set()
        except (ConnectionResetError, BrokenPipeError) as exc:
            self.eof_reason = f"reset ({exc.__class__.__name__})"
        except OSError as exc:
            self.eof_reason = f"error {exc!r}"
        except asyncio.CancelledError:
            if self._upgrading:
                return
            self.eof_reason = "closed by us"
            raise
        finally:
            if not self._upgrading:
                self._finish_eof()

    def _finish_eof(self) -> None:
        self.eof = True
        # whatever is left over (a partial frame) becomes visible to expectations
        if self.raw:
            self.pending += self.raw
            self.raw.clear()
        self._event.set()

    def _split_frames(self) -> None:
        while True:
            nl = self.raw.find(b"\n")
            if nl < 0:
                return
            end = nl + 1
            line = bytes(self.raw[:end])
            parts = line.split()
            if parts and parts[0].upper() in _SIZED_OPS and len(parts) >= 2:
                try:
                    size = int(parts[-1])
                except ValueError:
                    size = -1
                if size >= 0:
                    end = nl + 1 + size + 2
                    if len(self.raw) < end:
                        return
            frame = bytes(self.raw[:end])
            del self.raw[:end]
            self._deliver(frame)

    def _deliver(self, frame: bytes) -> None:
        if self.autopong and frame == b"PING\r\n":
            self.seen_pings += 1
            self._write_nowait(b"PONG\r\n")
            return
        control = frame.split(b"\n", 1)[0].rstrip(b"\r")
        for rx in self.ignore:
            if rx.fullmatch(control):
                self.ignored.append(frame)
                return
        if self.on_frame is not None:
            self.on_frame(frame)
        self.pending += frame

    def add_ignore(self, rx: re.Pattern[bytes]) -> None:
        """Drop frames whose control line matches ``rx``: from now on, and those already pending."""
        self.ignore.append(rx)
        kept = bytearray()
        data = bytes(self.pending)
        while data:
            frame = _first_frame(data)
            data = data[len(frame) :]
            control = frame.split(b"\n", 1)[0].rstrip(b"\r")
            if rx.fullmatch(control):
                self.ignored.append(frame)
            else:
                kept += frame
        self.pending = kept

    async def wait_data(self, deadline: float) -> bool:
        """Wait for more data (or EOF) until the deadline (time.monotonic()); False on timeout."""
        return await self._wait(deadline)

    async def _wait(self, deadline: float) -> bool:
        """Wait for more data (or EOF) until the deadline; False on timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self._event.clear()
        try:
            await asyncio.wait_for(self._event.wait(), left)
        except asyncio.TimeoutError:
            return False
        return True

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _got(self) -> bytes:
        tail = bytes(self.pending) + bytes(self.raw)
        return tail + (b" <EOF: " + self.eof_reason.encode() + b">" if self.eof else b"")

    # ------------------------------------------------------------------ writing
    def _write_nowait(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.write(data)

    async def send(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout + 3)
        except (OSError, RuntimeError, asyncio.TimeoutError):
            pass  # the expectations that follow will say what happened

    # ------------------------------------------------------------------ TLS
    async def start_tls(self, context: ssl.SSLContext, timeout: float | None = None) -> None:
        """Upgrade to TLS here (after INFO, or at once for a handshake-first server).

        Raises ``ssl.SSLError``/``OSError``/``asyncio.TimeoutError`` when the handshake fails;
        the connection is then closed (``eof``). Bytes that arrived before the upgrade stay in
        ``pending``.
        """
        if self.raw:
            raise Mismatch("bytes pending before the TLS upgrade", None, bytes(self.raw), self.name)
        self._upgrading = True
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        self._upgrading = False
        try:
            await asyncio.wait_for(
                self.writer.start_tls(context, server_hostname="127.0.0.1"),
                self.timeout if timeout is None else timeout,
            )
        except BaseException as exc:
            self.eof_reason = f"TLS handshake failed: {exc!r}"
            self._finish_eof()
            with contextlib.suppress(Exception):
                self.writer.transport.abort()
            raise
        self.tls = True
        self._task = asyncio.create_task(self._read_loop())

    # ------------------------------------------------------------------ expectations
    async def expect_bytes(self, want: bytes, timeout: float | None = None) -> None:
        deadline = self._deadline(timeout)
        while True:
            have = bytes(self.pending[: len(want)])
            if not want.startswith(have):
                raise Mismatch("unexpected bytes", want, self._got(), self.name)
            if len(have) == len(want):
                del self.pending[: len(want)]
                return
            if self.eof:
                raise Mismatch(
                    "connection closed before the expected bytes", want, self._got(), self.name
                )
            if not await self._wait(deadline):
                raise Mismatch("timed out waiting for bytes", want, self._got(), self.name)

    async def read_line(self, timeout: float | None = None, what: str = "a line") -> bytes:
        """Consume and return the next line (with its CRLF) from the pending frames."""
        deadline = self._deadline(timeout)
        while True:
            nl = self.pending.find(b"\n")
            if nl >= 0:
                line = bytes(self.pending[: nl + 1])
                del self.pending[: nl + 1]
                return line
            if self.eof:
                raise Mismatch(
                    f"connection closed while waiting for {what}", what, self._got(), self.name
                )
            if not await self._wait(deadline):
                raise Mismatch(f"timed out waiting for {what}", what, self._got(), self.name)

    async def read_frame(self, timeout: float | None = None) -> bytes:
        """Consume the next whole frame (control line plus payload when sized)."""
        line = await self.read_line(timeout, "a frame")
        parts = line.split()
        if parts and parts[0].upper() in _SIZED_OPS:
            try:
                size = int(parts[-1])
            except ValueError:
                return line
            payload = await self.read_exact(size + 2, timeout)
            return line + payload
        return line

    async def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        deadline = self._deadline(timeout)
        while len(self.pending) < n:
            if self.eof:
                raise Mismatch(
                    f"connection closed while waiting for {n} bytes", None, self._got(), self.name
                )
            if not await self._wait(deadline):
                raise Mismatch(f"timed out waiting for {n} bytes", None, self._got(), self.name)
        data = bytes(self.pending[:n])
        del self.pending[:n]
        return data

    async def expect_regex(self, pattern: str, timeout: float | None = None) -> re.Match[str]:
        """The next line (without CRLF, which must be there) must fully match ``pattern``."""
        line = await self.read_line(timeout, f"a line matching /{pattern}/")
        text = line.decode("latin-1")
        if not text.endswith("\r\n"):
            raise Mismatch("line does not end with \\r\\n", pattern, line, self.name)
        m = re.fullmatch(pattern, text[:-2])
        if not m:
            raise Mismatch("line does not match", f"/{pattern}/", line, self.name)
        return m

    async def expect_unordered(self, items: list[bytes], timeout: float | None = None) -> None:
        """Each item must arrive exactly once, in any order."""
        deadline = self._deadline(timeout)
        left = list(items)
        while left:
            progressed = False
            for it in left:
                if self.pending.startswith(it):
                    del self.pending[: len(it)]
                    left.remove(it)
                    progressed = True
                    break
            if progressed:
                continue
            head = bytes(self.pending)
            if head and not any(it.startswith(head[: len(it)]) for it in left):
                raise Mismatch(
                    "unexpected bytes (unordered set)", b" | ".join(left), self._got(), self.name
                )
            if self.eof:
                raise Mismatch(
                    "connection closed before the unordered set",
                    b" | ".join(left),
                    self._got(),
                    self.name,
                )
            if not await self._wait(deadline):
                raise Mismatch(
                    "timed out waiting for the unordered set",
                    b" | ".join(left),
                    self._got(),
                    self.name,
                )

    async def expect_info(
        self, timeout: float | None = None, space_before_crlf: bool = True
    ) -> tuple[dict[str, Any], bytes]:
        """Read an ``INFO {json} \\r\\n`` line; return the parsed JSON and the raw line.

        nats-server puts a space before the CRLF of the INFO it sends on accept; forwarded
        (gossip) INFOs on routes have none, hence ``space_before_crlf=False`` for those.
        """
        line = await self.read_line(timeout, "INFO")
        if not line.startswith(b"INFO "):
            raise Mismatch(
                "expected an INFO line", b"INFO {...} \r\n", line + bytes(self.pending), self.name
            )
        if not line.endswith(b"\r\n") or (space_before_crlf and not line.endswith(b" \r\n")):
            want = b"INFO {...} \r\n" if space_before_crlf else b"INFO {...}\r\n"
            raise Mismatch("INFO line must end with ' \\r\\n'", want, line, self.name)
        body = line[5:-2].strip()
        try:
            obj = json.loads(body)
        except ValueError as exc:
            raise Mismatch(f"INFO JSON does not parse: {exc}", None, line, self.name) from None
        if not isinstance(obj, dict):
            raise Mismatch("INFO JSON is not an object", None, line, self.name)
        return obj, line

    async def expect_ignored(self, rx: re.Pattern[bytes], timeout: float | None = None) -> None:
        """A frame dropped by the ``ignore`` filters (so far, or before the deadline) has a
        control line matching ``rx``: for frames a case does not check in order ($SYS)."""
        deadline = self._deadline(timeout)
        while True:
            for frame in self.ignored:
                if rx.fullmatch(frame.split(b"\n", 1)[0].rstrip(b"\r")):
                    return
            if self.eof:
                raise Mismatch("connection closed; no ignored frame matched", rx.pattern, self._got(), self.name)
            if not await self._wait(deadline):
                raise Mismatch(
                    "no ignored frame matched",
                    rx.pattern,
                    b" | ".join(f.split(b"\r\n")[0] for f in list(self.ignored)[-8:]),
                    self.name,
                )

    async def expect_close(self, timeout: float | None = None) -> None:
        deadline = self._deadline(timeout)
        while True:
            if self.pending:
                raise Mismatch("expected the server to close", b"<EOF>", self._got(), self.name)
            if self.eof:
                return
            if not await self._wait(deadline):
                raise Mismatch(
                    "connection still open", b"<EOF>", self._got() + b"<still open>", self.name
                )

    async def expect_nothing(self, quiet: float) -> None:
        deadline = time.monotonic() + quiet
        while True:
            if self.pending or self.raw:
                raise Mismatch("expected nothing", b"", self._got(), self.name)
            if self.eof:
                raise Mismatch(
                    "expected nothing, the connection closed", b"", self._got(), self.name
                )
            if not await self._wait(deadline):
                return

    async def collect(self, quiet: float, limit: float = 5.0) -> bytes:
        """Everything until ``quiet`` seconds pass without data, or EOF (differential cases)."""
        end = time.monotonic() + limit
        while not self.eof:
            before = len(self.pending) + len(self.raw)
            if not await self._wait(min(end, time.monotonic() + quiet)):
                if len(self.pending) + len(self.raw) == before:
                    break
            if time.monotonic() >= end:
                break
        out = bytes(self.pending) + bytes(self.raw)
        self.pending.clear()
        self.raw.clear()
        if self.eof:
            out += b"<EOF>"
        return out

    # ------------------------------------------------------------------ closing
    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        with contextlib.suppress(Exception):
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1)
