"""The client listener: accepts connections itself, so that running out of file descriptors
is seen, logged and waited out as nats-server does.

Why not `loop.create_server`: under uvloop, libuv meets EMFILE with its "emfile trick" (it
frees a spare descriptor, accepts and at once closes whatever waits) and tells no one, so
nothing could be logged; the asyncio loop pauses a fixed second per error. nats-server
(acceptConnections/acceptError) logs `Temporary Client Accept Error(accept tcp host:port:
accept4: too many open files), sleeping 10ms`, sleeps, doubles the sleep up to 1 s, and
leaves the new connections in the backlog. Accepting here does exactly that on both loops;
each accepted socket goes to the loop's own transport (`connect_accepted_socket`), as
`create_server` does after its accept.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable

from . import netutil
from .log import Logger

MIN_SLEEP = 0.010  # nats-server's ACCEPT_MIN_SLEEP
MAX_SLEEP = 1.0  # ACCEPT_MAX_SLEEP
BURST = 100  # accepts per wake-up, as the asyncio loop takes them, so others get a turn

# Go's net.OpError.Temporary() for accept: these sleep; any other error is logged as
# "Accept error" (nats-server then retries at once; here it sleeps too, never to spin).
_TEMPORARY = {errno.EMFILE, errno.ENFILE, errno.ECONNRESET, errno.ETIMEDOUT}


def bind(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets for host (None: every interface, IPv4 and IPv6), as create_server
    makes them (SO_REUSEADDR, IPV6_V6ONLY, its bind error text)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    try:
        for af, kind, proto, _, sa in dict.fromkeys(infos):
            try:
                sock = socket.socket(af, kind, proto)
            except OSError:
                continue  # a family this machine lacks
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if af == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(sa)
            except OSError as e:
                raise OSError(e.errno, f"error while attempting to bind on address {sa!r}: "
                                       f"{(e.strerror or '').lower()}") from None
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def go_errno_text(e: OSError) -> str:
    """Go's text for an errno: the C library's, first letter lower-cased."""
    text = e.strerror or str(e)
    return text[:1].lower() + text[1:]


class Listener:
    """Accepts on `sockets` and hands each connection to a protocol from `factory`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sockets: list[socket.socket],
                 factory: Callable[[], asyncio.Protocol], log: Logger, name: str = "Client") -> None:
        self.loop = loop
        self.sockets = sockets
        self.factory = factory
        self.log = log
        self.name = name
        self.closed = False
        self._sleep = dict.fromkeys(range(len(sockets)), MIN_SLEEP)
        self._timers: dict[int, asyncio.TimerHandle] = {}
        for i, sock in enumerate(sockets):
            loop.add_reader(sock.fileno(), self._ready, i)

    def _ready(self, i: int) -> None:
        sock = self.sockets[i]
        for _ in range(BURST):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # (an aborted one: Go's accept skips it; the next wake-up goes on)
            except OSError as e:
                self._pause(i, e)
                return
            self._sleep[i] = MIN_SLEEP
            self.loop.create_task(self._serve(conn))

    async def _serve(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.factory, conn)
        except OSError:
            conn.close()  # gone before it got a transport

    def _pause(self, i: int, e: OSError) -> None:
        """nats-server's acceptError: log, stop accepting for a while, double the while."""
        addr = self.sockets[i].getsockname()
        host = "::" if addr[0] == "0.0.0.0" else addr[0]  # Go listens dual-stack there: [::]
        what = f"accept tcp {netutil.join_host_port(host, addr[1])}: accept4: {go_errno_text(e)}"
        delay = self._sleep[i]
        if e.errno in _TEMPORARY:
            self.log.error(f"Temporary {self.name} Accept Error({what}), sleeping {round(delay * 1000)}ms")
        else:
            self.log.error(f"{self.name} Accept error: {what}")
        self.loop.remove_reader(self.sockets[i].fileno())
        self._timers[i] = self.loop.call_later(delay, self._resume, i)
        self._sleep[i] = min(delay * 2, MAX_SLEEP)

    def _resume(self, i: int) -> None:
        del self._timers[i]
        if not self.closed:
            self.loop.add_reader(self.sockets[i].fileno(), self._ready, i)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for sock in self.sockets:
            self.loop.remove_reader(sock.fileno())
            sock.close()

    async def wait_closed(self) -> None:
        return None
