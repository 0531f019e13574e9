"""What client and route connections share: the outbound buffer, flushing, keep-alive, close.

Outbound data is appended to `out` (a list of byte chunks) while a read is processed; the
server then flushes every connection that got something once, with one write of the joined
chunks (DESIGN.md: one write per destination per read).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .protocol import wire

if TYPE_CHECKING:
    from .log import Logger
    from .options import Options


class ConnHost(Protocol):
    """What a connection uses of the server it belongs to (core.ServerCore is the whole)."""

    log: Logger
    loop: asyncio.AbstractEventLoop
    opts: Options
    stale_connections: int
    stale_by_kind: dict[str, int]

    def mark_dirty(self, c: Any) -> None: ...


def go_quote(b: bytes) -> str:
    """Roughly Go's %q of a byte string, as nats-server's trace lines show payloads."""
    return '"' + repr(b)[2:-1].replace("\\'", "'").replace('"', '\\"') + '"'


H = TypeVar("H", bound=ConnHost)


class Connection(asyncio.Protocol, Generic[H]):
    """The base of every connection kind; `H` is what the kind sees of the server (a
    ConnHost at least; core.ServerCore for clients, routes and leaf nodes)."""

    kind_name = "Client"  # "Client" or "Router", in logs and /connz
    log_id_prefix = "cid"
    internal = False  # internal.InternalClient: delivered to by callback, not a socket
    is_leaf = False  # leafnode.LeafConnection (it sits in match results among the routes)
    is_spoke = False
    remote_cluster = ""
    # Messages and payload bytes queued in `out` as whole runs (delivery.deliver_run: one
    # chunk holds many frames), counted at the next flush like the triples. Class-level
    # zeros, so a connection that never gets a run keeps no attributes for them.
    run_msgs = 0
    run_bytes = 0

    server: H

    def __init__(self, server: H) -> None:
        self.server = server
        self.log = server.log
        self.transport: asyncio.Transport | None = None
        self.out: list[Any] = []
        self.closed: bool = False
        self.close_reason: str = ""
        self.host = ""
        self.port = 0
        self.start = time.time()
        self.last_activity = self.start
        self.stop_time = 0.0
        self.out_msgs = 0
        self.out_bytes = 0
        self.pings_out = 0
        self.rtt = 0.0
        self.stalls = 0  # times paused because a route was backed up (/connz stalls)
        self._rtt_start = 0.0
        self._last_in = time.monotonic()
        self._ping_handle: asyncio.TimerHandle | None = None
        self._label = ""
        self._yielding = False  # reading paused until the loop's next turn (yield_reads)

    # Counted by the parser, per message, without an attribute write of ours.
    parser: Any

    @property
    def in_msgs(self) -> int:
        return self.parser.in_msgs

    @property
    def in_bytes(self) -> int:
        return self.parser.in_bytes

    # -- identity for logs ------------------------------------------------------------

    def log_prefix(self) -> str:
        return self._label

    def _set_label(self, ident: int) -> None:
        self._label = f"{self.host}:{self.port} - {self.log_id_prefix}:{ident}"

    def debug(self, text: str) -> None:
        if self.log.debug_enabled:
            self.log.debug(f"{self.log_prefix()} - {text}")

    def trace(self, text: str) -> None:
        if self.log.trace_enabled:
            self.log.trace(f"{self.log_prefix()} - {text}")

    def error(self, text: str) -> None:
        self.log.error(f"{self.log_prefix()} - {text}")

    def notice(self, text: str) -> None:
        self.log.notice(f"{self.log_prefix()} - {text}")

    def warn(self, text: str) -> None:
        self.log.warn(f"{self.log_prefix()} - {text}")

    # -- fairness ---------------------------------------------------------------------

    def yield_reads(self) -> None:
        """Read no more from this connection in this turn of the event loop.

        Called after a full-sized read: uvloop (libuv) goes on reading a socket while
        reads come back full, up to 32 times per turn (8 MiB with its 256 KiB buffer), so
        one flooding connection could keep every other connection waiting for tens of
        milliseconds. Pausing and resuming on the next turn bounds each connection to
        one read per turn; a read is still processed (and flushed) as one batch."""
        t = self.transport
        if self._yielding or t is None or self.closed:
            return
        self._yielding = True
        t.pause_reading()
        self.server.loop.call_soon(self._resume_reads)

    def _resume_reads(self) -> None:
        self._yielding = False
        t = self.transport
        if t is not None and not self.closed and not self.reads_held():
            t.resume_reading()

    def reads_held(self) -> bool:
        """Reading is paused for another reason (a pending auth check, flow control)."""
        return False

    # -- outbound ---------------------------------------------------------------------

    def enqueue(self, data: Any) -> None:
        """Queue protocol bytes; they go out at the end of the current read (or soon).

        `out` holds (line, line, payload) triples (a MSG line in two parts saves joining
        them); a protocol line has an empty payload, which is how flush() tells messages
        from protocol when it counts them."""
        out = self.out
        if not out:
            self.server.mark_dirty(self)
        out.append(data)
        out.append(b"")
        out.append(b"")

    def send_proto(self, data: bytes) -> None:
        """Queue a protocol line (traced as nats-server traces `->> [...]`)."""
        if self.log.trace_enabled:
            line = data.rstrip(b"\r\n").decode(errors="replace")
            self.trace(f"->> [{line}]")
        self.enqueue(data)

    def send_err(self, text: str) -> None:
        if self.log.trace_enabled:
            self.trace(f"->> [-ERR {text}]")
        self.enqueue(wire.err(text))

    def flush(self) -> None:
        out = self.out
        if not out:
            return
        t = self.transport
        if self.closed or t is None:
            out.clear()
            self.run_msgs = self.run_bytes = 0
            return
        payloads = out[2::3]
        n = len(payloads) - payloads.count(b"")
        if n and self.log.trace_enabled:
            self._trace_msgs(out)
        if n:
            self.out_msgs += n
            self.out_bytes += sum(map(len, payloads)) - 2 * n
        if self.run_msgs:
            self.out_msgs += self.run_msgs
            self.out_bytes += self.run_bytes
            self.run_msgs = self.run_bytes = 0
        # A whole run (delivery.deliver_run) or a line alone is written as it is, uncopied.
        if len(out) == 3 and not out[2] and not out[1] and type(out[0]) is bytes:
            data = out[0]
        else:
            data = b"".join(out)
        out.clear()
        t.write(data)
        if t.get_write_buffer_size() > self.max_pending():
            self.on_slow_consumer()

    def _trace_msgs(self, out: list[Any]) -> None:
        """`->> [MSG ...]` and its payload, as nats-server traces what it sends."""
        for i in range(0, len(out), 3):
            payload = out[i + 2]
            if payload:
                line = bytes(out[i] + out[i + 1]).rstrip(b"\r\n").decode(errors="replace")
                self.trace(f"->> [{line}]")
                self.trace_payload("->>", payload)

    def trace_payload(self, prefix: str, msg: Any) -> None:
        """`<<- MSG_PAYLOAD: ["..."]` (`msg` ends with CRLF): none for an empty payload, and
        cut to max_traced_msg_len with `...`, as nats-server's traceMsg."""
        body = bytes(msg[:-2])
        if not body:
            return
        limit = self.server.opts.max_traced_msg_len
        if 0 < limit < len(body):
            self.trace(f'{prefix} MSG_PAYLOAD: ["{go_quote(body[:limit])[1:-1]}..."]')
        else:
            self.trace(f"{prefix} MSG_PAYLOAD: [{go_quote(body)}]")

    def max_pending(self) -> int:
        return self.server.opts.max_pending

    def on_slow_consumer(self) -> None:
        raise NotImplementedError

    # -- keep-alive -------------------------------------------------------------------

    def ping_interval(self) -> float:
        return self.server.opts.ping_interval

    def ping_max(self) -> int:
        return self.server.opts.ping_max

    def set_ping_timer(self, delay: float) -> None:
        self.clear_ping_timer()
        if delay > 0 and not self.closed:
            self._ping_handle = self.server.loop.call_later(delay, self._on_ping_timer)

    def set_first_ping_timer(self, first: float) -> None:
        d = min(self.ping_interval(), first)
        # Jitter of up to 20%, as nats-server adds, so many connections don't ping at once.
        self.set_ping_timer(d + random.random() * d / 5)

    def clear_ping_timer(self) -> None:
        if self._ping_handle is not None:
            self._ping_handle.cancel()
            self._ping_handle = None

    def _should_skip_ping(self) -> bool:
        return False

    def _on_ping_timer(self) -> None:
        self._ping_handle = None
        if self.closed:
            return
        self.debug(f"{self.kind_name} Ping Timer")
        if not self._should_skip_ping():
            if self.pings_out + 1 > self.ping_max():
                self.debug("Stale Client Connection - Closing")  # nats-server's words, for every kind
                srv = self.server
                srv.stale_connections += 1
                kind = {"Router": "routes", "Leafnode": "leafs"}.get(self.kind_name, "clients")
                srv.stale_by_kind[kind] += 1
                self.send_err(wire.E_STALE_CONNECTION)
                self.close_connection("Stale Connection")
                return
            self._rtt_start = time.monotonic()
            self.send_proto(wire.PING)
            self.pings_out += 1
            self.flush()
        self.set_ping_timer(self.ping_interval())

    def got_pong(self) -> None:
        self.pings_out = 0
        if self._rtt_start:
            self.rtt = max(time.monotonic() - self._rtt_start, 1e-9)
            self._rtt_start = 0.0

    # -- closing ----------------------------------------------------------------------

    def close_connection(self, reason: str, *, abort: bool = False) -> None:
        """Close once: what is queued is written first, unless `abort`."""
        if self.closed:
            return
        self.close_reason = reason
        if not abort:
            self.flush()
        self.closed = True
        self.stop_time = time.time()
        self.clear_ping_timer()
        t = self.transport
        if t is not None:
            if abort:
                t.abort()
            else:
                t.close()
        self.on_closed(reason)

    def on_closed(self, reason: str) -> None:
        """Release what the connection holds (subscriptions, route interest)."""

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.stop_time = time.time()
            self.clear_ping_timer()
            self.close_reason = self.close_reason or ("Read Error" if exc else "Client Closed")
            self.on_closed(self.close_reason)
        self.out.clear()
        self.run_msgs = self.run_bytes = 0
