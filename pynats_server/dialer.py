"""Dialling routes: resolving a URL, recognising our own address, and the dialler task that
keeps a solicited route up (retries with back-off for configured routes, `connect_retries`
for gossip-learned ones), logging failures as nats-server does."""

from __future__ import annotations

import asyncio
import errno
import random
import socket
from typing import TYPE_CHECKING, Protocol

from . import const, netutil
from .options import RouteURL
from .route import RouteConnection, RouteMesh

if TYPE_CHECKING:
    from .log import Logger


class DialerHost(RouteMesh, Protocol):
    """What dialing a route uses of the cluster (cluster.Cluster)."""

    log: Logger
    running: bool
    port: int
    routes: dict[str, RouteConnection]
    self_keys: set[str]
    local_ips: set[str]

    async def wait_route_gone(self, rid: str) -> None: ...
    def dialer_done(self, d: Dialer) -> None: ...
    def new_connection(self, url: RouteURL | None = None, explicit: bool = False) -> RouteConnection: ...


def url_key(host: str, port: int) -> str:
    return netutil.join_host_port(host.lower(), port)


def dial_error_text(e: BaseException, addr: str) -> str:
    """Python's socket errors in Go's words: `dial tcp 127.0.0.1:6333: connect: connection refused`."""
    if isinstance(e, asyncio.TimeoutError | TimeoutError):
        return f"dial tcp {addr}: i/o timeout"
    if isinstance(e, socket.gaierror):
        return f"dial tcp: lookup {addr.rsplit(':', 1)[0]}: no such host"
    if isinstance(e, OSError) and e.errno is not None:
        text = {
            errno.ECONNREFUSED: "connection refused",
            errno.EHOSTUNREACH: "no route to host",
            errno.ENETUNREACH: "network is unreachable",
            errno.ECONNRESET: "connection reset by peer",
        }.get(e.errno, (e.strerror or str(e)).lower())
        return f"dial tcp {addr}: connect: {text}"
    return f"dial tcp {addr}: {e}"


class SelfRoute(Exception):
    pass


class Dialer:
    """Keeps a solicited route to one URL: dial, wait for the connection to end, dial again."""

    def __init__(self, cluster: DialerHost, url: RouteURL, *, explicit: bool, retries: int) -> None:
        self.cluster = cluster
        self.url = url
        self.key = url_key(url.host, url.port)
        self.explicit = explicit
        self.retries = retries
        self.remote_id = ""
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        cl = self.cluster
        log = cl.server.log
        attempts = 0
        delay = const.DEFAULT_ROUTE_CONNECT
        first = True
        try:
            while cl.running:
                rid = self.remote_id
                if rid and rid in cl.routes:
                    if not self.explicit:
                        return  # a gossip-learned peer that is already connected
                    # Already connected to that server (it may have dialled us): wait.
                    await cl.wait_route_gone(rid)
                    await asyncio.sleep(self._reconnect_delay())
                    continue
                try:
                    conn = await dial_route(cl, self.url, explicit=self.explicit)
                except SelfRoute:
                    log.debug(f"Detected route to self, ignoring {self.url.redacted}")
                    cl.self_keys.add(self.key)
                    return
                except (OSError, asyncio.TimeoutError) as e:
                    attempts += 1
                    text = f"Error trying to connect to route (attempt {attempts}): {e}"
                    if attempts == 1 or not first or attempts % 3600 == 0:
                        log.error(text)
                    else:
                        log.debug(text)
                    if not self.explicit and attempts > self.retries:
                        return
                    await asyncio.sleep(delay)
                    if self.explicit:
                        delay = min(delay * 2, const.DEFAULT_ROUTE_CONNECT_MAX)
                    continue
                await asyncio.shield(conn.done)
                if conn.remote_id:
                    self.remote_id = conn.remote_id
                if conn.outcome == "self":
                    cl.self_keys.add(self.key)
                    return
                if conn.outcome in ("conflict", "wrong-port", "auth", "dupname", "pinned"):
                    if not self.explicit:
                        return
                    attempts += 1
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, const.DEFAULT_ROUTE_CONNECT_MAX)
                    continue
                if conn.registered_once:
                    first = False
                    attempts = 0
                    delay = const.DEFAULT_ROUTE_CONNECT
                if conn.outcome == "duplicate":
                    continue  # the loop waits while the surviving route lives
                if conn.lame_duck and not self.explicit:
                    return
                if not cl.running:
                    return
                log.debug(f"Attempting reconnect for solicited route {self.url.redacted!r}")
                await asyncio.sleep(self._reconnect_delay())
        except asyncio.CancelledError:
            pass
        finally:
            cl.dialer_done(self)

    def _reconnect_delay(self) -> float:
        # nats-server: 0-100 ms of jitter, plus 1 s for configured routes.
        d = random.random() * 0.1
        return d + const.DEFAULT_ROUTE_RECONNECT if self.explicit else d


class DialError(OSError):
    pass


async def dial_route(cluster: DialerHost, url: RouteURL, *, explicit: bool) -> RouteConnection:
    """Resolve and dial a route URL, skipping our own listener's addresses (a URL that
    resolves only to them is a route to ourselves)."""
    loop = cluster.server.loop
    try:
        infos = await loop.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise DialError(dial_error_text(e, netutil.join_host_port(url.host, url.port))) from None
    addrs: list[str] = []
    for fam, _, _, _, sa in infos:
        if fam not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = str(sa[0])
        if ip not in addrs:
            addrs.append(ip)
    if url.port == cluster.port:
        mine = [a for a in addrs if a in cluster.local_ips]
        addrs = [a for a in addrs if a not in cluster.local_ips]
        if mine and not addrs:
            raise SelfRoute()
    if not addrs:
        raise DialError(f"dial tcp {netutil.join_host_port(url.host, url.port)}: no address")
    random.shuffle(addrs)
    err: BaseException | None = None
    for ip in addrs:
        hp = netutil.join_host_port(ip, url.port)
        cluster.log.debug(f"Trying to connect to route on {netutil.join_host_port(url.host, url.port)} ({hp})")
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: cluster.new_connection(url, explicit), ip, url.port),
                const.DEFAULT_ROUTE_DIAL * 2,
            )
            assert isinstance(proto, RouteConnection)
            return proto
        except (OSError, asyncio.TimeoutError) as e:
            err = DialError(dial_error_text(e, hp))
    assert err is not None
    raise err
