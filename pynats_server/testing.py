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
    """

    def __init__(
        self,
        size: int = 3,
        *,
        name: str = "pynats-test",
        full_mesh_config: bool = False,
        **overrides: Any,
    ) -> None:
        from .options import ClusterOptions

        self.size = size
        self.name = name
        self.full_mesh_config = full_mesh_config
        self.overrides = overrides
        self.servers: list[Server | None] = [None] * size
        self._client_ports = [-1] * size
        self._cluster_ports = [-1] * size
        self._ClusterOptions = ClusterOptions

    def _options(self, i: int) -> Options:
        from .options import RouteURL

        if self.full_mesh_config:
            routes = [RouteURL("127.0.0.1", p) for p in self._cluster_ports]
        elif i == 0:
            routes = []
        else:
            routes = [RouteURL("127.0.0.1", self._cluster_ports[0])]
        base = Options(
            host="127.0.0.1",
            port=self._client_ports[i],
            server_name=f"{self.name}-{i}",
            no_log=True,
            cluster=self._ClusterOptions(
                host="127.0.0.1", port=self._cluster_ports[i], name=self.name, routes=routes
            ),
        )
        from dataclasses import replace

        return replace(base, **self.overrides) if self.overrides else base

    async def start(self, wait: float = 10.0) -> LocalCluster:
        import socket

        if self.full_mesh_config:
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
        return srv

    async def stop_node(self, i: int) -> None:
        srv = self.servers[i]
        self.servers[i] = None
        if srv is not None:
            await srv.shutdown()

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
        return [s.client_url if s is not None else "" for s in self.servers]

    async def stop(self) -> None:
        for i in range(self.size):
            await self.stop_node(i)

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
