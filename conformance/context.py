"""What a running case gets: its target, servers, connections, listeners and variables."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

from . import certs as certsmod
from . import nkeyutil
from .conn import Conn, Mismatch
from .model import Case
from .targets import HOST, ServerPool, ServerProcess, ServerSpec, Target


def fake_server_id() -> str:
    """A random id shaped like a server nkey (N + 55 base32 characters)."""
    raw = base64.b32encode(os.urandom(40)).decode().rstrip("=")
    return "N" + raw[:55]


class RawJSON:
    """A captured JSON object: renders as the exact text received, fields as values."""

    def __init__(self, text: str, obj: dict[str, Any]) -> None:
        self.text = text
        self.obj = obj


class Listener:
    """A TCP listener a case opens so that a server can dial it (``--routes``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self._queue: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> Listener:
        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await self._queue.put((r, w))

        self._server = await asyncio.start_server(on_conn, HOST, 0, limit=1 << 22)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def accept(self, name: str, timeout: float) -> Conn:
        try:
            r, w = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Mismatch(
                f"no connection on listener {self.name} within {timeout}s", conn=name
            ) from None
        return Conn(name, r, w, timeout)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
        while not self._queue.empty():
            _, w = self._queue.get_nowait()
            w.close()


class CaseContext:
    """State of one case run on one target."""

    def __init__(
        self,
        case: Case,
        target: Target,
        targets: dict[str, Target],
        pool: ServerPool,
        workdir: Path,
        memo: dict[str, Any] | None = None,
    ) -> None:
        self.case = case
        self.target = target
        self.targets = targets
        self.pool = pool
        self.workdir = workdir
        self.timeout = case.timeout
        self.server: ServerProcess | None = None  # the main server (transcript cases)
        self.conns: dict[str, Conn] = {}
        self.conn_kind: dict[str, str] = {}
        self.conn_listener: dict[str, str] = {}  # accepted connection -> listener name
        self.listeners: dict[str, Listener] = {}
        self.vars: dict[str, Any] = {}
        self.observed: list[tuple[str, bytes]] = []
        self._servers: list[ServerProcess] = []
        self._extra_conns: list[Conn] = []
        self.leased: list[ServerProcess] = []  # from the pool; the runner gives them back
        self.notes: list[str] = []
        # Shared by every case of one run (e.g. the JetStream cases keep go214's recordings).
        self.memo: dict[str, Any] = memo if memo is not None else {}

    # ------------------------------------------------------------------ servers
    @property
    def kinds(self) -> list[str]:
        """Python cases: the server kinds (target names) this run uses, e.g. [pynats, go214]."""
        if self.case.kinds is None:
            return [self.target.name]
        return self.case.kinds(self.target.name)

    async def start_server(
        self,
        target: str | None = None,
        *,
        args: tuple[str, ...] | list[str] = (),
        config: str | None = None,
        cluster: bool = False,
        cluster_name: str = "CONF",
        http: bool = False,
        base_args: bool = True,
        own_config: bool = False,
        jetstream: bool = False,
    ) -> ServerProcess:
        """A private server (stopped when the case ends).

        ``base_args=False`` passes only ``args`` (no ``-a 127.0.0.1 -p -1``): for CLI cases.
        ``own_config``: the config file is this server's alone (``ServerProcess.reload``
        rewrites it).
        ``jetstream=True`` adds ``-js -sd <a fresh store directory>``.
        """
        t = self.targets[target] if target else self.target
        if not t.available:
            raise Mismatch(f"target {t.name} is not available: {t.why_unavailable}")
        spec = ServerSpec(
            args=tuple(args),
            config=config,
            cluster=cluster,
            cluster_name=cluster_name,
            http=http,
            base_args=base_args,
            own_config=own_config,
            jetstream=jetstream,
        )
        s = ServerProcess(t, spec, self.workdir)
        self._servers.append(s)
        return await s.start()

    async def shared_server(
        self,
        target: str | None = None,
        *,
        args: tuple[str, ...] = (),
        config: str | None = None,
        cluster: bool = False,
        http: bool = False,
        jetstream: bool = False,
    ) -> ServerProcess:
        """A pooled server (this case has it to itself until it ends); default: the target."""
        t = self.targets[target] if target else self.target
        if not t.available:
            raise Mismatch(f"target {t.name} is not available: {t.why_unavailable}")
        spec = ServerSpec(
            args=tuple(args), config=config, cluster=cluster, http=http, jetstream=jetstream
        )
        s = await self.pool.lease(t, spec)
        self.leased.append(s)
        return s

    def adopt(self, server: ServerProcess) -> None:
        """Stop this server when the case ends."""
        self._servers.append(server)

    # ------------------------------------------------------------------ connections
    async def client(self, server: ServerProcess | None = None, name: str = "c") -> Conn:
        s = server or self.server
        assert s is not None
        c = await Conn.open(name, HOST, s.client_port, self.timeout)
        self._extra_conns.append(c)
        return c

    async def route(self, server: ServerProcess | None = None, name: str = "r") -> Conn:
        s = server or self.server
        assert s is not None
        c = await Conn.open(name, HOST, s.cluster_port, self.timeout)
        c.ignore.append(SYS_RE)
        self._extra_conns.append(c)
        return c

    async def listener(self, name: str) -> Listener:
        lst = await Listener(name).start()
        self.listeners[name] = lst
        return lst

    # ------------------------------------------------------------------ HTTP monitoring
    async def http_get(
        self, server: ServerProcess, path: str, timeout: float | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """A minimal HTTP/1.0 GET against the monitoring port."""
        t = timeout or self.timeout
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, server.http_port), t
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise Mismatch(
                f"cannot connect to monitoring port {server.http_port}: {exc!r}"
            ) from None
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
            data = await asyncio.wait_for(reader.read(), t)
        except (OSError, asyncio.TimeoutError) as exc:
            raise Mismatch(f"GET {path}: {exc!r}") from None
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            raise Mismatch(f"GET {path}: bad HTTP response", None, data[:200]) from None
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, body

    async def http_json(self, server: ServerProcess, path: str) -> Any:
        status, _, body = await self.http_get(server, path)
        if status != 200:
            raise Mismatch(
                f"GET {path}: HTTP {status}", b"200", str(status).encode() + b" " + body[:200]
            )
        try:
            return json.loads(body)
        except ValueError as exc:
            raise Mismatch(f"GET {path}: body is not JSON ({exc})", None, body[:300]) from None

    # ------------------------------------------------------------------ helpers
    def fail(self, message: str, expected: Any = None, got: Any = None) -> NoReturn:
        raise Mismatch(message, _b(expected), _b(got))

    def check(self, cond: bool, message: str, expected: Any = None, got: Any = None) -> None:
        if not cond:
            self.fail(message, expected, got)

    async def eventually(
        self,
        probe: Callable[[], Awaitable[Any]],
        timeout: float,
        what: str,
        interval: float = 0.05,
    ) -> Any:
        """Poll ``probe`` until it returns a truthy value; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = await probe()
            except Mismatch as exc:
                last = exc.message
            if last and not isinstance(last, str):
                return last
            if time.monotonic() >= deadline:
                self.fail(f"timed out after {timeout}s waiting for {what}", what, repr(last))
            await asyncio.sleep(interval)

    def var(self, name: str) -> str:
        """Resolve a ``{{name}}`` template reference."""
        s = self.server
        if name.startswith("id:"):
            key = "__id__" + name[3:]
            if key not in self.vars:
                self.vars[key] = fake_server_id()
            return str(self.vars[key])
        builtins: dict[str, Callable[[], Any]] = {
            "client_port": lambda: s.client_port if s else "",
            "cluster_port": lambda: s.cluster_port if s else "",
            "http_port": lambda: s.http_port if s else "",
            "host": lambda: HOST,
            "pid": lambda: s.pid if s else "",
            "cluster_name": lambda: s.spec.cluster_name if s else "",
        }
        if name in builtins:
            return str(builtins[name]())
        if name.startswith("tls."):
            try:
                return certs_for(self).path(name[4:])
            except KeyError as exc:
                raise Mismatch(str(exc)) from None
        if name.startswith("nkey:"):
            return nkeyutil.public_key(self._seed(name[5:]))
        if name.startswith(("sign:", "signstd:")):
            kind, _, rest = name.partition(":")
            seed, _, what = rest.partition(":")
            if len(what) >= 2 and what[0] == what[-1] == '"':
                data = what[1:-1]
            else:
                data = self.var(what)
            return nkeyutil.sign(self._seed(seed), data.encode(), std=kind == "signstd")
        if name in self.vars:
            v = self.vars[name]
            return v.text if isinstance(v, RawJSON) else str(v)
        head, dot, field = name.partition(".")
        if dot:
            if head in self.listeners and field == "port":
                return str(self.listeners[head].port)
            v = self.vars.get(head)
            if isinstance(v, RawJSON) and field in v.obj:
                f = v.obj[field]
                return f if isinstance(f, str) else json.dumps(f, separators=(",", ":"))
        raise Mismatch(f"unknown template variable {{{{{name}}}}}")

    def _seed(self, text: str) -> str:
        """A seed given inline (S...) or by the name of a variable holding one."""
        v = self.vars.get(text)
        return str(v) if v is not None else text

    @property
    def certs(self) -> certsmod.Certs:
        """The run's TLS certificates (conformance/certs.py)."""
        return certs_for(self)

    async def cleanup(self) -> None:
        for c in list(self.conns.values()) + self._extra_conns:
            await c.close()
        for lst in self.listeners.values():
            await lst.close()
        await asyncio.gather(*(s.stop(grace=0.5) for s in self._servers), return_exceptions=True)

    def servers_died(self) -> list[ServerProcess]:
        """Servers of this case that exited without being asked to."""
        candidates = list(self._servers) + [s for s in self.leased if s not in self._servers]
        if self.server is not None and self.server not in candidates:
            candidates.append(self.server)
        return [
            s for s in candidates if s.proc is not None and not s.alive and not s.stopped_on_purpose
        ]


def certs_for(ctx: CaseContext) -> certsmod.Certs:
    return certsmod.for_workdir(ctx.workdir)


SYS_RE = re.compile(rb"(RS[+-]|RMSG|HMSG) \$SYS .*")


def _b(v: Any) -> Any:
    if v is None or isinstance(v, (bytes, str)):
        return v
    return json.dumps(v, sort_keys=True, default=str)
