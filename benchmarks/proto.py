"""Minimal raw-socket NATS client protocol used by the load generator.

Nothing here is on a per-message hot path except :func:`send_pipelined` and the
small PONG counter; the publishers and subscribers in :mod:`benchmarks.loadgen`
work on pre-built buffers and byte counts instead of parsing frames.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass, field

CRLF = b"\r\n"
PING = b"PING\r\n"
PONG = b"PONG\r\n"

#: One pre-built write: the bytes (ending with ``PING\r\n``) and how many
#: protocol operations (messages, SUB/UNSUB pairs, ...) it carries.
Chunk = tuple[bytes, int]


class ProtocolError(RuntimeError):
    """The server said -ERR, closed the connection or sent something unexpected."""


def set_io_timeout(sock: socket.socket, seconds: float) -> None:
    """Bound every blocking send/recv in the kernel (SO_RCVTIMEO/SO_SNDTIMEO).

    The socket stays in Python's blocking mode, so a recv costs one system call
    (no poll() first, unlike ``settimeout``); when the timeout fires, the call
    raises ``BlockingIOError``.
    """
    if isinstance(sock, ssl.SSLSocket):
        # OpenSSL retries a read the kernel timed out forever on a blocking socket: a TLS
        # socket needs Python's own timeout (which raises TimeoutError).
        sock.settimeout(seconds)
        return
    tv = struct.pack("ll", int(seconds), int((seconds % 1.0) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)


def recv_some(sock: socket.socket, size: int = 65536) -> bytes:
    """recv() that turns a kernel timeout into TimeoutError and EOF into ProtocolError."""
    try:
        data = sock.recv(size)
    except (BlockingIOError, TimeoutError) as exc:  # TimeoutError: a TLS socket's timeout
        raise TimeoutError("timed out waiting for the server") from exc
    if not data:
        raise ProtocolError("server closed the connection")
    return data


def _check_err(data: bytes) -> None:
    pos = data.find(b"-ERR")
    if pos >= 0:
        end = data.find(CRLF, pos)
        raise ProtocolError(data[pos : end if end > 0 else pos + 200].decode(errors="replace"))


def wait_pong(sock: socket.socket, deadline: float, pending: bytes = b"") -> bytes:
    """Read until a PONG arrives (answering server PINGs); return what followed it.

    Anything before the PONG (e.g. MSG frames still in flight) is discarded; the
    benchmark payloads never contain the text ``PONG``.
    """
    buf = pending
    while True:
        _check_err(buf)
        pos = buf.find(PONG)
        if pos >= 0:
            return buf[pos + len(PONG) :]
        if buf.count(PING):
            sock.sendall(PONG * buf.count(PING))
            buf = buf.replace(PING, b"")
        if time.monotonic() > deadline:
            raise TimeoutError("no PONG from the server before the deadline")
        # Keep only a short tail: the PONG can straddle two reads.
        buf = buf[-8:] + recv_some(sock)


def connect(
    host: str,
    port: int,
    *,
    name: str = "bench",
    echo: bool = False,
    timeout: float = 10.0,
    tls: bool = False,
) -> tuple[socket.socket, dict[str, object]]:
    """Open a client connection: read INFO, send CONNECT + PING, wait for PONG.

    With `tls`, the connection is upgraded after INFO, as NATS clients do (the server's
    certificate is not checked: a benchmark measures speed, not trust)."""
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        set_io_timeout(sock, min(timeout, 5.0))
        buf = b""
        while CRLF not in buf:
            if time.monotonic() > deadline or len(buf) > 1 << 20:
                raise TimeoutError("no INFO from the server")
            buf += recv_some(sock)
        line, rest = buf.split(CRLF, 1)
        if not line.startswith(b"INFO "):
            raise ProtocolError(f"expected INFO, got {line[:80]!r}")
        info = json.loads(line[5:])
        if tls:
            if rest:
                raise ProtocolError(f"unexpected bytes before the TLS handshake: {rest[:80]!r}")
            sock = _client_tls().wrap_socket(sock, server_hostname=host)
            set_io_timeout(sock, min(timeout, 5.0))
        opts = {
            "verbose": False,
            "pedantic": False,
            "name": name,
            "lang": "python-raw-bench",
            "version": "0",
            "protocol": 1,
            "echo": echo,
            "headers": False,
        }
        sock.sendall(b"CONNECT " + json.dumps(opts).encode() + CRLF + PING)
        wait_pong(sock, deadline, rest)
        return sock, info
    except BaseException:
        sock.close()
        raise


def _client_tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class PongCounter:
    """Counts PONGs (and answers PINGs) on a connection that receives nothing else."""

    __slots__ = ("sock", "tail", "pongs")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.tail = b""
        self.pongs = 0

    def read(self) -> int:
        """Block (bounded by the socket timeout) for one read; return the PONG total."""
        data = self.tail + recv_some(self.sock)
        end = data.rfind(CRLF) + 2
        done, self.tail = data[:end], data[end:]
        if b"-ERR" in done:
            _check_err(done)
        self.pongs += done.count(PONG)
        pings = done.count(PING)
        if pings:
            self.sock.sendall(PONG * pings)
        return self.pongs


@dataclass
class PipelineResult:
    ops: int = 0
    pings: int = 0
    t_end: float = 0.0
    lag_waits: int = 0
    notes: list[str] = field(default_factory=list)


def send_pipelined(
    sock: socket.socket,
    chunks: Sequence[Chunk],
    *,
    max_ops: int,
    deadline: float,
    window: int,
    drain_deadline: float,
    progress: MutableSequence[int] | None = None,
    progress_index: int = 0,
    lag_check: Callable[[], bool] | None = None,
    abort: Callable[[], bool] | None = None,
) -> PipelineResult:
    """Send ``chunks`` round-robin until ``max_ops`` or ``deadline``; flow-controlled.

    Every chunk ends with PING, so at most ``window`` chunks are unacknowledged
    by the server at any time. ``progress`` (a shared array) receives the running
    op count at ``progress_index``; ``lag_check()`` returning True makes the
    sender pause (the subscribers are too far behind); ``abort()`` returning True
    stops it with an error. The function returns
    after the server has answered every PING, i.e. processed everything sent.
    """
    counter = PongCounter(sock)
    res = PipelineResult()
    nchunks = len(chunks)
    i = 0
    sent = 0
    pings = 0
    now = time.monotonic
    sleep = time.sleep
    sendall = sock.sendall
    while sent < max_ops:
        data, n = chunks[i]
        i += 1
        if i == nchunks:
            i = 0
        sendall(data)
        sent += n
        pings += 1
        if progress is not None:
            progress[progress_index] = sent
        while pings - counter.pongs > window:
            counter.read()
        if lag_check is not None:
            while lag_check() and now() < deadline:
                res.lag_waits += 1
                sleep(0.0002)
        if now() >= deadline:
            break
        if abort is not None and abort():
            raise TimeoutError("run aborted by the orchestrator")
    while counter.pongs < pings:
        if now() > drain_deadline:
            raise TimeoutError(
                f"server acknowledged {counter.pongs}/{pings} PINGs before the deadline"
            )
        counter.read()
    res.ops = sent
    res.pings = pings
    res.t_end = now()
    return res


def build_chunks(frames: Sequence[bytes], target_bytes: int) -> list[Chunk]:
    """Group whole frames into writes of about ``target_bytes``, each ending with PING."""
    chunks: list[Chunk] = []
    cur: list[bytes] = []
    size = 0
    for frame in frames:
        cur.append(frame)
        size += len(frame)
        if size >= target_bytes:
            chunks.append((b"".join(cur) + PING, len(cur)))
            cur, size = [], 0
    if cur:
        chunks.append((b"".join(cur) + PING, len(cur)))
    return chunks


def repeat_chunk(frame: bytes, target_bytes: int) -> list[Chunk]:
    """One chunk holding ``frame`` repeated to about ``target_bytes`` (at least once)."""
    n = max(1, target_bytes // len(frame))
    return [(frame * n + PING, n)]


def pub_frame(subject: str, payload: bytes, reply: str | None = None) -> bytes:
    head = f"PUB {subject} {reply} {len(payload)}" if reply else f"PUB {subject} {len(payload)}"
    return head.encode() + CRLF + payload + CRLF


def msg_frame_len(subject: str, sid: int, size: int, reply: str | None = None) -> int:
    """Length of the MSG frame the server delivers for such a message."""
    head = f"MSG {subject} {sid} {reply} {size}" if reply else f"MSG {subject} {sid} {size}"
    return len(head) + 2 + size + 2


def payload(size: int) -> bytes:
    """A payload that can never contain ``MSG ``, ``PING`` or ``PONG``."""
    return b"x" * size


class MsgReader:
    """Incremental parser for the few places that need whole MSG frames (req/reply)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> tuple[list[tuple[bytes, bytes | None, bytes]], int]:
        """Return the complete (subject, reply, payload) frames and the number of PINGs."""
        buf = self.buf
        buf += data
        out: list[tuple[bytes, bytes | None, bytes]] = []
        pings = 0
        pos = 0
        while True:
            eol = buf.find(CRLF, pos)
            if eol < 0:
                break
            if buf.startswith(b"MSG ", pos):
                parts = bytes(buf[pos + 4 : eol]).split()
                size = int(parts[-1])
                end = eol + 2 + size + 2
                if len(buf) < end:
                    break
                reply = parts[2] if len(parts) == 4 else None
                out.append((parts[0], reply, bytes(buf[eol + 2 : eol + 2 + size])))
                pos = end
                continue
            line = bytes(buf[pos:eol])
            if line == b"PING":
                pings += 1
            elif line.startswith(b"-ERR"):
                raise ProtocolError(line.decode(errors="replace"))
            pos = eol + 2
        del buf[:pos]
        return out, pings
