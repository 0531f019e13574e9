"""A fault-injection TCP proxy (the asyncio glue around faults.py's decisions).

    proxy = await FaultProxy("127.0.0.1", srv.port).start()
    nc = await nats.connect(proxy.url)
    proxy.delay(0.2)              # every chunk, both ways, 200 ms late
    proxy.throttle(10_000, direction="down")
    proxy.blackhole()             # read and drop both ways, send nothing
    proxy.half_open("up")         # only the dialler's bytes vanish
    proxy.pause(); proxy.resume() # stop reading either side (TCP back-pressure)
    proxy.cut()                   # close both sides of every link
    proxy.block("node-2")         # cut that peer's links, and any new ones
    proxy.heal()                  # back to a clean pass-through
    await proxy.stop()

Every method takes `peer=` to act on the links of one named peer only (a route's server
name or a client's connection name, read from its first protocol lines), and applies to
live links at once. The proxy binds 127.0.0.1 only. Its methods must be called on the
event loop it runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from .faults import DOWN, UP, PeerSniffer, Policy, Rules, Shaper

_QUEUE_CHUNKS = 8  # chunks in flight per direction (a delay holds them here); few, so that
# the proxy itself hides little back-pressure


class FaultProxy:
    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 0, *, name: str = "",
                 host: str = "127.0.0.1", port: int = 0, sock_buffer: int = 0) -> None:
        self.target = (target_host, target_port)
        # Kernel socket buffer sizes for both sides of each link (0: the system's, which
        # on loopback can grow to megabytes and hide a pause from the sender for long).
        self.sock_buffer = sock_buffer
        self.name = name
        self.host = host
        self.port = port
        self.rules = Rules()
        self.links: set[Link] = set()
        self.stats = {"links": 0, "cuts": 0, "refused": 0, UP: 0, DOWN: 0, "dropped": 0}
        self._server: asyncio.AbstractServer | None = None
        self._changed: asyncio.Future[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for t in self._timers:
            t.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self.links):
            await link.close()

    def retarget(self, port: int, host: str | None = None) -> None:
        """Send new links to another address (a restarted server on a new port)."""
        self.target = (host or self.target[0], port)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def peers(self) -> list[str | None]:
        return [link.peer for link in self.links]

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults ---------------------------------------------------------------------------

    def policy(self, peer: str | None) -> Policy:
        return self.rules.policy(peer)

    def update(self, peer: str | None = None, **changes: Any) -> None:
        """Change a policy (see faults.Rules.update); live links follow at once."""
        self.rules.update(peer, **changes)
        if self.rules.policy(peer).blocked:
            self.cut(peer)
        self._notify()

    def delay(self, seconds: float, *, peer: str | None = None, direction: str | None = None) -> None:
        self.update(peer, delay=seconds, direction=direction)

    def throttle(self, rate: float, *, peer: str | None = None, direction: str | None = None) -> None:
        """At most `rate` bytes per second (0 lifts the limit)."""
        self.update(peer, rate=rate, direction=direction)

    def blackhole(self, *, peer: str | None = None) -> None:
        """Read and drop both ways: nothing is sent, nothing is closed."""
        self.update(peer, drop=True)

    def half_open(self, direction: str = UP, *, peer: str | None = None) -> None:
        """One direction's bytes vanish; the other still flows."""
        self.update(peer, drop=True, direction=direction)

    def pause(self, *, peer: str | None = None, seconds: float = 0.0) -> None:
        """Stop reading both sides (what a stopped process looks like from the network);
        resume after `seconds` when given."""
        self.update(peer, paused=True)
        if seconds > 0:
            self._timers.append(asyncio.get_running_loop().call_later(seconds, self.resume, peer))

    def resume(self, peer: str | None = None) -> None:
        self.update(peer, paused=False)

    def block(self, peer: str) -> None:
        """Cut `peer`'s links and any it opens until unblocked (a partition)."""
        self.update(peer, blocked=True)

    def unblock(self, peer: str) -> None:
        self.update(peer, blocked=False)

    def heal(self, peer: str | None = None) -> None:
        """Back to a clean pass-through (everything, or one peer's override)."""
        self.rules.reset(peer)
        self._notify()

    def cut(self, peer: str | None = None) -> int:
        """Close both sides of every link (of `peer` only, when given); returns how many."""
        n = 0
        for link in list(self.links):
            if peer is None or link.peer == peer:
                link.cut()
                n += 1
        self.stats["cuts"] += n
        return n

    # -- internals ------------------------------------------------------------------------

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def changed(self) -> None:
        """Wait for the next policy change."""
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        await self._changed

    async def _accept(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if self.rules.default.blocked:
            self.stats["refused"] += 1
            w.close()
            return
        if self.sock_buffer:
            _set_buffers(w, self.sock_buffer)
        link = Link(self, r, w)
        self.links.add(link)
        self.stats["links"] += 1
        try:
            await link.run()
        finally:
            self.links.discard(link)


class Link:
    """One proxied connection: two pumps (reader and writer task per direction)."""

    def __init__(self, proxy: FaultProxy, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = (r, w)
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.peer: str | None = None
        self.sniffer = PeerSniffer()
        self._done = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        try:
            self.upstream = await asyncio.open_connection(*self.proxy.target)
        except OSError:
            self.client[1].close()
            return
        if self.proxy.sock_buffer:
            _set_buffers(self.upstream[1], self.proxy.sock_buffer)
        for direction, (src, _), (_, dst) in ((UP, self.client, self.upstream), (DOWN, self.upstream, self.client)):
            q: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(_QUEUE_CHUNKS)
            self._tasks.append(asyncio.ensure_future(self._read(direction, src, q)))
            self._tasks.append(asyncio.ensure_future(self._write(dst, q)))
        await self._done.wait()
        await self.close()

    def policy(self) -> Policy:
        return self.proxy.rules.policy(self.peer)

    async def _unpaused(self) -> None:
        while self.policy().paused:
            await self.proxy.changed()

    async def _read(self, direction: str, src: asyncio.StreamReader,
                    q: asyncio.Queue[tuple[float, bytes] | None]) -> None:
        loop = asyncio.get_running_loop()
        shaper = Shaper()
        stats = self.proxy.stats
        try:
            while True:
                await self._unpaused()
                data = await src.read(Shaper.chunk_size(self.policy().direction(direction)))
                if not data:
                    # A dropped direction hides the close too, until the drop is lifted.
                    while self.policy().direction(direction).drop:
                        await self.proxy.changed()
                    break
                if direction == UP and not self.sniffer.done:
                    if not self.sniffer.feed(data):
                        continue
                    data, self.sniffer.buf = self.sniffer.buf, b""
                    self.peer = self.sniffer.peer
                    if self.policy().blocked:
                        self.proxy.stats["refused"] += 1
                        break
                await self._unpaused()
                d = self.policy().direction(direction)
                if d.drop:
                    stats["dropped"] += len(data)
                    continue
                stats[direction] += len(data)
                await q.put((shaper.due(d, len(data), loop.time()), data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                q.put_nowait(None)  # the writer sends what is queued, then ends the link
            except asyncio.QueueFull:
                self._done.set()

    async def _write(self, dst: asyncio.StreamWriter, q: asyncio.Queue[tuple[float, bytes] | None]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                item = await q.get()
                if item is None:
                    break
                due, data = item
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._unpaused()
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            self._done.set()

    def _writers(self) -> list[asyncio.StreamWriter]:
        return [self.client[1]] + ([self.upstream[1]] if self.upstream is not None else [])

    def cut(self) -> None:
        self._done.set()
        for w in self._writers():
            w.transport.abort()

    async def close(self) -> None:
        self._done.set()
        for t in self._tasks:
            t.cancel()
        for w in self._writers():
            w.close()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


def _set_buffers(w: asyncio.StreamWriter, size: int) -> None:
    sock = w.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


__all__ = ["DOWN", "UP", "FaultProxy", "Link"]
