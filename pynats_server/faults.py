"""Fault decisions for the fault-injection proxy (sans-IO: no sockets, no asyncio).

A `Policy` says what happens to a proxied TCP link: each direction may be delayed,
throttled to a byte rate or dropped (read and discarded: a blackhole, or a half-open link
when only one direction drops); the link may be paused (nothing read either way, so TCP
back-pressure builds up as with a stopped process) or blocked (cut at once, and new links
from that peer cut as soon as they say who they are). `Shaper` turns a direction's
delay and rate into the time each chunk may leave. `PeerSniffer` reads who is on the
dialling side from its first protocol lines: a route's INFO `server_name`, else the
CONNECT `name` (a client's connection name).

faultproxy.py is the asyncio glue that moves the bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

UP = "up"  # from the dialling side to the proxied server
DOWN = "down"  # from the server back to the dialling side
DIRECTIONS = (UP, DOWN)

# Bytes held while waiting for the first lines that name the peer; past this the link is
# forwarded unnamed (not NATS, or TLS).
SNIFF_LIMIT = 1 << 16


@dataclass(frozen=True)
class Direction:
    """What happens to the bytes going one way."""

    delay: float = 0.0  # seconds added to every chunk (latency, not a throughput cap)
    rate: float = 0.0  # bytes per second; 0 is unlimited
    drop: bool = False  # read and discard


@dataclass(frozen=True)
class Policy:
    up: Direction = field(default_factory=Direction)
    down: Direction = field(default_factory=Direction)
    paused: bool = False
    blocked: bool = False

    def direction(self, which: str) -> Direction:
        return self.up if which == UP else self.down

    def with_direction(self, which: str | None, **changes: Any) -> Policy:
        """A copy with `changes` applied to one direction, or both when `which` is None."""
        up = replace(self.up, **changes) if which in (None, UP) else self.up
        down = replace(self.down, **changes) if which in (None, DOWN) else self.down
        return replace(self, up=up, down=down)

    @property
    def clean(self) -> bool:
        return self == Policy()


class Rules:
    """The proxy's policies: one for every link, and overrides for named peers."""

    def __init__(self) -> None:
        self.default = Policy()
        self.peers: dict[str, Policy] = {}

    def policy(self, peer: str | None) -> Policy:
        if peer is not None and peer in self.peers:
            return self.peers[peer]
        return self.default

    def update(self, peer: str | None, **changes: Any) -> Policy:
        """Change the policy of `peer` (every link when None); returns the new policy."""
        direction = changes.pop("direction", None)
        base = self.policy(peer)
        dir_changes = {k: changes.pop(k) for k in ("delay", "rate", "drop") if k in changes}
        p = base.with_direction(direction, **dir_changes) if dir_changes else base
        p = replace(p, **changes)
        if peer is None:
            self.default = p
        elif p == self.default:
            self.peers.pop(peer, None)
        else:
            self.peers[peer] = p
        return p

    def reset(self, peer: str | None = None) -> None:
        """Back to a clean pass-through (for one peer, or everything)."""
        if peer is None:
            self.default = Policy()
            self.peers.clear()
        else:
            self.peers.pop(peer, None)


class Shaper:
    """When each chunk going one way may be sent: after the delay, and no faster than the
    rate (a token bucket with no burst). Times are on the caller's monotonic clock."""

    def __init__(self) -> None:
        self._free_at = 0.0

    def due(self, d: Direction, n: int, now: float) -> float:
        t = now + d.delay
        if d.rate > 0:
            start = max(now, self._free_at)
            self._free_at = start + n / d.rate
            t = max(t, self._free_at)
        else:
            self._free_at = 0.0
        return t

    @staticmethod
    def chunk_size(d: Direction) -> int:
        """How much to read at once: small chunks under a rate limit keep the flow smooth."""
        if d.rate > 0:
            return max(256, min(65536, int(d.rate / 20)))
        return 65536


class PeerSniffer:
    """Names the dialling side from the first bytes it sends.

    A route dialler sends `CONNECT {...}` then `INFO {...}` (its `server_name` is the name
    used; the CONNECT `name` is only the server id, which changes on restart); a client
    sends `CONNECT {... "name": ...}`. Anything else leaves the link unnamed."""

    def __init__(self) -> None:
        self.buf = b""
        self.done = False
        self.peer: str | None = None

    def feed(self, data: bytes) -> bool:
        """Add bytes; True once the name is settled (then `buf` holds every byte fed)."""
        if self.done:
            return True
        self.buf += data
        if not b"CONNECT ".startswith(self.buf[:8]) or len(self.buf) > SNIFF_LIMIT:
            return self._finish(None)
        lines = self.buf.split(b"\r\n")
        if len(lines) < 2:
            return False
        co = _json_arg(lines[0], b"CONNECT ")
        if co is None:
            return self._finish(None)
        name = co.get("name")
        if "cluster" not in co:  # a client: its connection name (if any)
            return self._finish(str(name) if name else None)
        if len(lines) < 3:
            return False  # a route: wait for its INFO
        info = _json_arg(lines[1], b"INFO ")
        if info is not None and info.get("server_name"):
            return self._finish(str(info["server_name"]))
        return self._finish(str(name) if name else None)

    def _finish(self, peer: str | None) -> bool:
        self.peer = peer
        self.done = True
        return True


def _json_arg(line: bytes, op: bytes) -> dict[str, Any] | None:
    if not line.startswith(op):
        return None
    try:
        v = json.loads(line[len(op):])
    except ValueError:
        return None
    return v if isinstance(v, dict) else None
