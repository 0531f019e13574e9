"""Embedding helpers for tests: a server on its own thread, for synchronous code.

    with ThreadedServer() as srv:
        nc = pynats_client.connect(srv.client_url)

The server runs on its own event loop (uvloop when installed) in a daemon thread.

JetStream: `ThreadedServer(jetstream=True)` stores streams in a temporary directory removed by
`stop()`; `jetstream="/some/dir"` (a str or path) keeps them there; a `JetStreamOptions` is
used as given.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import tempfile
import threading
from typing import Any

from .faultproxy import FaultProxy
from .options import JetStreamOptions, Options
from .server import Server


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class ThreadedServer:
    """A `Server` running on a background thread with its own event loop."""

    def __init__(self, opts: Options | None = None, **overrides: Any) -> None:
        self._tmp_store: str | None = None
        js = overrides.get("jetstream")
        if js is True:
            self._tmp_store = tempfile.mkdtemp(prefix="pynats-js-")
            overrides["jetstream"] = JetStreamOptions(store_dir=self._tmp_store)
        elif isinstance(js, (str, os.PathLike)):
            overrides["jetstream"] = JetStreamOptions(store_dir=os.fspath(js))
        elif js is False:
            overrides["jetstream"] = None
        self.server = Server(opts, **overrides)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._run, name="pynats-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("pynats-server did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = self._loop = new_event_loop(self.server.opts.loop)
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as e:  # noqa: BLE001 - handed to the caller of start()
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_until_complete(self.server.wait_for_shutdown())
            # Let transports finish closing.
            loop.run_until_complete(asyncio.sleep(0))
        finally:
            loop.close()

    def call(self, fn: Any, *args: Any, timeout: float = 10.0) -> Any:
        """Run `fn(*args)` (a coroutine function or plain function) on the server's loop."""
        assert self._loop is not None

        async def run() -> Any:
            r = fn(*args)
            if asyncio.iscoroutine(r):
                r = await r
            return r

        fut: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return fut.result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        try:
            if self._thread is None or self._loop is None:
                return
            if self._loop.is_running():
                self.call(self.server.shutdown, timeout=timeout)
            self._thread.join(timeout)
            self._thread = None
        finally:
            if self._tmp_store is not None and self._thread is None:
                shutil.rmtree(self._tmp_store, ignore_errors=True)
                self._tmp_store = None

    @property
    def client_url(self) -> str:
        return self.server.client_url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def monitor_url(self) -> str | None:
        return self.server.monitor_url

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalCluster:
    """N pynats-server nodes on the running event loop, routed into one cluster.

        async with LocalCluster(3) as cl:          # seed mode: nodes 1.. route to node 0
            nc = await nats.connect(cl.client_urls[1])

    `full_mesh_config=True` gives every node the full route list (itself included) instead.
    Nodes bind 127.0.0.1 on random ports; a restarted node keeps its ports.

    `proxied=True` puts a fault proxy (faultproxy.FaultProxy) in front of every node's
    route port and client port: nodes advertise the proxies, so every route and every
    client connection goes through them, and the network faults work: partition(a, b),
    heal(), cut_route(a, b), stall(i, seconds), slow_client(i, rate), drop_client(i).
    lame_duck(i) and restart_node(i) work on any cluster.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        name: str = "pynats-test",
        full_mesh_config: bool = False,
        proxied: bool = False,
        proxy_buffer: int = 0,
        **overrides: Any,
    ) -> None:
        from .options import ClusterOptions

        self.size = size
        self.name = name
        self.proxied = proxied
        self.proxy_buffer = proxy_buffer
        # Proxied nodes all name every proxy as a route: a healed partition always re-forms
        # (implicit routes are retried only a few times, as in nats-server).
        self.full_mesh_config = full_mesh_config or proxied
        self.overrides = overrides
        self.servers: list[Server | None] = [None] * size
        self._client_ports = [-1] * size
        self._cluster_ports = [-1] * size
        self._ClusterOptions = ClusterOptions
        self.route_proxies: list[FaultProxy] = []
        self.client_proxies: list[FaultProxy] = []
        self._lame_ducks: set[asyncio.Task[None]] = set()

    def _options(self, i: int) -> Options:
        from .options import RouteURL

        route_ports = [p.port for p in self.route_proxies] if self.proxied else self._cluster_ports
        if self.full_mesh_config:
            routes = [RouteURL("127.0.0.1", p) for p in route_ports]
        elif i == 0:
            routes = []
        else:
            routes = [RouteURL("127.0.0.1", route_ports[0])]
        base = Options(
            host="127.0.0.1",
            port=self._client_ports[i],
            server_name=self.node_name(i),
            no_log=True,
            cluster=self._ClusterOptions(
                host="127.0.0.1", port=self._cluster_ports[i], name=self.name, routes=routes,
                advertise=self.route_proxies[i].hostport if self.proxied else "",
            ),
        )
        if self.proxied:
            base.client_advertise = self.client_proxies[i].hostport
        from dataclasses import replace

        return replace(base, **self.overrides) if self.overrides else base

    def node_name(self, i: int) -> str:
        """Node i's server name (what the proxies know its routes by)."""
        return f"{self.name}-{i}"

    async def start(self, wait: float = 10.0) -> LocalCluster:
        import socket

        if self.proxied and not self.route_proxies:
            for i in range(self.size):
                buf = self.proxy_buffer
                self.route_proxies.append(await FaultProxy(name=f"route-{i}", sock_buffer=buf).start())
                self.client_proxies.append(await FaultProxy(name=f"client-{i}", sock_buffer=buf).start())
        if self.full_mesh_config and not self.proxied:
            # Every node needs every port up front: reserve them (bind, read, release).
            for i in range(self.size):
                if self._cluster_ports[i] == -1:
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", 0))
                        self._cluster_ports[i] = s.getsockname()[1]
        for i in range(self.size):
            await self.start_node(i)
        if wait:
            await self.wait_for_mesh(wait)
        return self

    async def start_node(self, i: int) -> Server:
        if self.servers[i] is not None:
            raise RuntimeError(f"node {i} is running")
        srv = Server(self._options(i))
        await srv.start()
        self._client_ports[i] = srv.port
        assert srv.cluster is not None
        self._cluster_ports[i] = srv.cluster.port
        self.servers[i] = srv
        if self.proxied:
            self.route_proxies[i].retarget(srv.cluster.port)
            self.client_proxies[i].retarget(srv.port)
        return srv

    async def stop_node(self, i: int) -> None:
        srv = self.servers[i]
        self.servers[i] = None
        if srv is not None:
            await srv.shutdown()
        if self.proxied:
            self.route_proxies[i].cut()
            self.client_proxies[i].cut()

    async def restart_node(self, i: int, wait: float = 10.0) -> Server:
        await self.stop_node(i)
        srv = await self.start_node(i)
        if wait:
            await self.wait_for_mesh(wait)
        return srv

    def running(self) -> list[Server]:
        return [s for s in self.servers if s is not None]

    def mesh_formed(self) -> bool:
        nodes = self.running()
        ids = {s.id for s in nodes}
        for s in nodes:
            assert s.cluster is not None
            if set(s.cluster.routes) != ids - {s.id}:
                return False
        return True

    async def wait_for_mesh(self, timeout: float = 10.0) -> None:
        """Wait until every running node has exactly one route to every other."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not self.mesh_formed():
            if loop.time() > end:
                raise TimeoutError(f"cluster mesh not formed: {self.describe()}")
            await asyncio.sleep(0.02)

    def describe(self) -> str:
        parts = []
        for i, s in enumerate(self.servers):
            if s is None or s.cluster is None:
                parts.append(f"{i}: down")
            else:
                names = sorted(r.remote_name for r in s.cluster.routes.values())
                parts.append(f"{i}: {names}")
        return "; ".join(parts)

    @property
    def client_urls(self) -> list[str]:
        """Where clients connect: the client proxies of a proxied cluster."""
        if self.proxied:
            return [p.url for p in self.client_proxies]
        return [s.client_url if s is not None else "" for s in self.servers]

    # -- faults ---------------------------------------------------------------------------

    def _need_proxies(self) -> None:
        if not self.proxied:
            raise RuntimeError("network faults need a proxied cluster (proxied=True)")

    def partition(self, a: int | list[int], b: int | list[int]) -> None:
        """Cut the routes between the nodes of `a` and those of `b`, and keep them cut
        (each side's proxy refuses the other's routes) until heal()."""
        self._need_proxies()
        side_a = [a] if isinstance(a, int) else list(a)
        side_b = [b] if isinstance(b, int) else list(b)
        for i in side_a:
            for j in side_b:
                self.route_proxies[i].block(self.node_name(j))
                self.route_proxies[j].block(self.node_name(i))

    def heal(self) -> None:
        """Lift every network fault (partitions, stalls, slow or dropped clients)."""
        for p in self.route_proxies + self.client_proxies:
            p.heal()

    def cut_route(self, a: int, b: int) -> None:
        """Close the route between nodes a and b once; the nodes dial it again."""
        self._need_proxies()
        self.route_proxies[a].cut(self.node_name(b))
        self.route_proxies[b].cut(self.node_name(a))

    def stall(self, i: int, seconds: float = 0.0) -> None:
        """Node i stops reading and sending on every route and client connection (as if
        its process were stopped); resumes after `seconds` (or at unstall(i))."""
        self._need_proxies()
        me = self.node_name(i)
        self.route_proxies[i].pause(seconds=seconds)
        self.client_proxies[i].pause(seconds=seconds)
        for j, p in enumerate(self.route_proxies):
            if j != i:
                p.pause(peer=me, seconds=seconds)

    def unstall(self, i: int) -> None:
        self._need_proxies()
        me = self.node_name(i)
        self.route_proxies[i].resume()
        self.client_proxies[i].resume()
        for j, p in enumerate(self.route_proxies):
            if j != i:
                p.resume(me)

    def slow_client(self, i: int, rate: float, *, name: str | None = None, delay: float = 0.0) -> None:
        """Throttle node i's client connections (only those named `name`) to `rate` bytes
        per second, both ways, plus `delay` seconds of latency. rate=0 lifts the limit."""
        self._need_proxies()
        p = self.client_proxies[i]
        p.throttle(rate, peer=name)
        p.delay(delay, peer=name)

    def drop_client(self, i: int, *, name: str | None = None, block: bool = False) -> int:
        """Cut node i's client connections (only those named `name`); with `block`, also
        refuse them until heal(). Returns how many were cut."""
        self._need_proxies()
        p = self.client_proxies[i]
        if block and name is not None:
            n = len([x for x in p.peers() if x == name])
            p.block(name)
            return n
        if block:
            p.update(None, blocked=True)
        return p.cut(name)

    async def lame_duck(self, i: int, wait: bool = False) -> None:
        """Put node i in lame duck mode: it stops accepting clients, tells clients and
        routes, closes its clients over lame_duck_duration, then shuts down (restart it
        with start_node(i)). With `wait`, return once it has shut down."""
        srv = self.servers[i]
        if srv is None:
            raise RuntimeError(f"node {i} is not running")
        async def run() -> None:
            await srv.lame_duck_mode()
            if self.servers[i] is srv:
                await self.stop_node(i)

        task = asyncio.ensure_future(run())
        self._lame_ducks.add(task)
        task.add_done_callback(self._lame_ducks.discard)
        if wait:
            await task

    async def stop(self) -> None:
        for i in range(self.size):
            await self.stop_node(i)
        for t in list(self._lame_ducks):
            t.cancel()
        for p in self.route_proxies + self.client_proxies:
            await p.stop()

    async def __aenter__(self) -> LocalCluster:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class ThreadedCluster:
    """A LocalCluster on a background thread, for synchronous code and pytest fixtures."""

    def __init__(self, size: int = 3, **kwargs: Any) -> None:
        self.cluster = LocalCluster(size, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float = 20.0) -> ThreadedCluster:
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = new_event_loop()
            asyncio.set_event_loop(loop)
            self._stop = asyncio.Event()
            ready.set()
            loop.run_until_complete(self._stop.wait())
            loop.run_until_complete(self.cluster.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="pynats-cluster", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        self.call(self.cluster.start, timeout=timeout)
        return self

    def call(self, fn: Any, *args: Any, timeout: float = 20.0) -> Any:
        assert self._loop is not None

        async def run() -> Any:
            r = fn(*args)
            if asyncio.iscoroutine(r):
                r = await r
            return r

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop_node(self, i: int) -> None:
        self.call(self.cluster.stop_node, i)

    def start_node(self, i: int) -> None:
        self.call(self.cluster.start_node, i)

    def restart_node(self, i: int) -> None:
        self.call(self.cluster.restart_node, i)

    def wait_for_mesh(self, timeout: float = 10.0) -> None:
        self.call(self.cluster.wait_for_mesh, timeout, timeout=timeout + 5)

    # Faults (see LocalCluster): each runs on the cluster's loop.

    def partition(self, a: int | list[int], b: int | list[int]) -> None:
        self.call(self.cluster.partition, a, b)

    def heal(self) -> None:
        self.call(self.cluster.heal)

    def cut_route(self, a: int, b: int) -> None:
        self.call(self.cluster.cut_route, a, b)

    def stall(self, i: int, seconds: float = 0.0) -> None:
        self.call(self.cluster.stall, i, seconds)

    def unstall(self, i: int) -> None:
        self.call(self.cluster.unstall, i)

    def slow_client(self, i: int, rate: float, *, name: str | None = None, delay: float = 0.0) -> None:
        self.call(lambda: self.cluster.slow_client(i, rate, name=name, delay=delay))

    def drop_client(self, i: int, *, name: str | None = None, block: bool = False) -> int:
        return int(self.call(lambda: self.cluster.drop_client(i, name=name, block=block)))

    def lame_duck(self, i: int, wait: bool = False, timeout: float = 60.0) -> None:
        self.call(lambda: self.cluster.lame_duck(i, wait), timeout=timeout)

    def mesh_formed(self) -> bool:
        return bool(self.call(self.cluster.mesh_formed))

    @property
    def client_urls(self) -> list[str]:
        return self.cluster.client_urls

    @property
    def servers(self) -> list[Server | None]:
        return self.cluster.servers

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(20)
            self._thread = None

    def __enter__(self) -> ThreadedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class OperatorSetup:
    """An operator-mode setup for tests: an operator, its system account, accounts and
    users, with their keys and JWTs (minted by pynats_server.jwt), and the server config.

        op = OperatorSetup()
        op.account("A", exports=[{"subject": "svc.>", "type": "service"}])
        creds = op.creds_file("A", tmp_path / "alice.creds", pub_allow=["foo.>"])
        srv = Server(op.options(host="127.0.0.1", port=-1))      # or op.config() for a file
        nc = await nats.connect(srv.client_url, user_credentials=str(creds))

    The same config text works for nats-server (`op.config()`); `resolver` is `MEMORY` with
    every account preloaded, or a `full`/`cache` directory resolver (accounts are written
    to the directory, as nats-server stores them).
    """

    def __init__(self, name: str = "OP", *, system_account: str = "SYS") -> None:
        from . import jwt, nkeys_util

        self._jwt = jwt
        self._nk = nkeys_util
        self.name = name
        self.seed, self.public_key = nkeys_util.create_operator()
        self.accounts: dict[str, dict[str, Any]] = {}
        self.system = system_account
        self.account(system_account)
        self.jwt = jwt.new_operator(self.seed, name, system_account=self.accounts[system_account]["pub"])

    def account(self, name: str, **claims: Any) -> str:
        """Create (or, for a known name, sign again) an account; returns its JWT. `claims` are
        jwt.new_account's keywords (exports, imports, limits, revocations, ...)."""
        a = self.accounts.get(name)
        if a is None:
            seed, pub = self._nk.create_account()
            a = self.accounts[name] = {"seed": seed, "pub": pub, "claims": {}}
        a["claims"] = {**a["claims"], **claims}
        a["jwt"] = self._jwt.new_account(self.seed, a["pub"], name, **a["claims"])
        return str(a["jwt"])

    def pub(self, account: str) -> str:
        """An account's public key (its name on the server)."""
        return str(self.accounts[account]["pub"])

    def user(self, account: str, name: str = "", **claims: Any) -> tuple[str, str]:
        """A new user of `account`: (seed, JWT); `claims` are jwt.user_nats' keywords."""
        seed, pub = self._nk.create_user()
        return seed, self._jwt.new_user(self.accounts[account]["seed"], pub, name or pub, **claims)

    def creds(self, account: str, name: str = "", **claims: Any) -> str:
        """A creds file's text for a new user of `account` (what NATS clients load)."""
        seed, token = self.user(account, name, **claims)
        return self._jwt.format_user_creds(token, seed)

    def creds_file(self, account: str, path: Any, name: str = "", **claims: Any) -> Any:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.creds(account, name, **claims))
        return path

    def activation(self, exporter: str, importer: str, subject: str, kind: str = "stream", **kw: Any) -> str:
        """An activation token for a private export of `exporter` to `importer`."""
        return self._jwt.new_activation(self.accounts[exporter]["seed"], self.pub(importer), subject, kind, **kw)

    def resolver_options(self, resolver: str = "MEMORY", directory: str = "") -> tuple[Any, dict[str, str]]:
        from .options import ResolverOptions

        if resolver.upper() in ("MEM", "MEMORY"):
            return ResolverOptions("MEM"), {a["pub"]: a["jwt"] for a in self.accounts.values()}
        import os

        os.makedirs(directory, exist_ok=True)
        for a in self.accounts.values():
            with open(os.path.join(directory, a["pub"] + ".jwt"), "w", encoding="utf-8") as f:
                f.write(a["jwt"])
        return ResolverOptions(resolver.upper(), dir=directory), {}

    def config(self, resolver: str = "MEMORY", directory: str = "", extra: str = "") -> str:
        """The operator-mode part of a server config file."""
        lines = [f'operator: "{self.jwt}"', f"system_account: {self.pub(self.system)}"]
        r, preload = self.resolver_options(resolver, directory)
        if r.kind == "MEM":
            lines.append("resolver: MEMORY")
            lines.append("resolver_preload {")
            lines += [f'  {k}: "{v}"' for k, v in preload.items()]
            lines.append("}")
        else:
            lines.append(f'resolver {{ type: {r.kind.lower()}, dir: "{directory}" }}')
        if extra:
            lines.append(extra)
        return "\n".join(lines) + "\n"

    def options(self, resolver: str = "MEMORY", directory: str = "", **overrides: Any) -> Options:
        """pynats Options for the same setup (random port on 127.0.0.1 unless overridden)."""
        r, preload = self.resolver_options(resolver, directory)
        opts = Options(host="127.0.0.1", port=-1, no_log=True)
        opts.operators = [self.jwt]
        opts.system_account = self.pub(self.system)
        opts.resolver = r
        opts.resolver_preload = preload
        for k, v in overrides.items():
            setattr(opts, k, v)
        return opts
