"""The rolling-upgrade walkthrough of docs/seed-scenario.md, driven end to end.

Real server processes (the `pynats-server` command line, or any nats-server binary for the
comparison run) and nats-py clients. Used by the test suite (tests/test_walkthrough.py),
by `make demo` (pynats_server.demo) and to measure what a rotation costs clients.

Every node binds 127.0.0.1 for clients (`-a 127.0.0.1`) so nothing but loopback is
advertised; the cluster URLs use `localhost`, as the walkthrough does.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import netutil

Narrate = Callable[[str], None]


def pynats_command() -> list[str]:
    exe = shutil.which("pynats-server", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return [exe] if exe else [sys.executable, "-m", "pynats_server"]


@dataclass
class Node:
    """One server process of the walkthrough."""

    name: str
    command: list[str]
    client_port: int = field(default_factory=netutil.free_port)
    cluster_port: int = field(default_factory=netutil.free_port)
    http_port: int = field(default_factory=netutil.free_port)
    routes: list[int] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log: list[str] = field(default_factory=list)

    def argv(self) -> list[str]:
        argv = [*self.command, "-D", "-a", "127.0.0.1", "-p", str(self.client_port), "-m", str(self.http_port),
                "-cluster", f"nats://localhost:{self.cluster_port}"]
        if self.routes:
            argv += ["-routes", ",".join(f"nats://localhost:{p}" for p in self.routes)]
        return argv + self.extra

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.log.append(f"$ {' '.join(self.argv())}\n")
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        proc = self.proc

        def pump() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                self.log.append(raw.decode(errors="replace"))

        threading.Thread(target=pump, daemon=True).start()

    def lines(self) -> str:
        return "".join(self.log)

    async def wait_log(self, pattern: str, timeout: float = 10.0, since: int = 0) -> re.Match[str]:
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            m = rx.search("".join(self.log[since:]))
            if m:
                return m
            if time.monotonic() > end:
                raise AssertionError(f"{self.name}: no log line matching {pattern!r}:\n{self.lines()[-3000:]}")
            if not self.running and self.proc is not None:
                raise AssertionError(f"{self.name} exited:\n{self.lines()[-3000:]}")
            await asyncio.sleep(0.02)

    async def wait_ready(self, timeout: float = 15.0) -> None:
        mark = max(0, len(self.log) - 1)
        await self.wait_log(r"Server is ready", timeout, since=mark)

    async def stop(self, how: str = "ctrl-c", timeout: float = 20.0) -> None:
        """Stop as a user would: Ctrl-C (SIGINT), or lame duck mode via `--signal ldm=PID`."""
        if not self.running:
            return
        assert self.proc is not None
        if how == "ldm":
            subprocess.run([*self.command, "--signal", f"ldm={self.proc.pid}"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        else:
            self.proc.send_signal(signal.SIGINT)
        end = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > end:
                self.proc.kill()
                raise AssertionError(f"{self.name} did not stop:\n{self.lines()[-2000:]}")
            await asyncio.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def routez(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/routez", timeout=5) as r:
            return json.load(r)

    async def route_ids(self) -> list[str]:
        rz = await asyncio.get_running_loop().run_in_executor(None, self.routez)
        return [r["remote_id"] for r in rz["routes"]]

    async def server_id(self) -> str:
        rz = await asyncio.get_running_loop().run_in_executor(None, self.routez)
        return str(rz["server_id"])


class Client:
    """A nats-py connection that records its disconnects, reconnects and what it learned."""

    def __init__(self, name: str, *, follow_lame_duck: bool = True) -> None:
        self.name = name
        self.nc: Any = None
        self.follow_lame_duck = follow_lame_duck
        self.disconnected_at: float | None = None
        self.outages: list[float] = []
        self.reconnects = 0
        self.events: list[tuple[float, str]] = []
        self._ldm_task: asyncio.Future[None] | None = None

    async def connect(self, url: str) -> Client:
        import nats

        async def disconnected() -> None:
            self.events.append((time.monotonic(), "disconnected"))
            if self.disconnected_at is None:
                self.disconnected_at = time.monotonic()

        async def reconnected() -> None:
            self.events.append((time.monotonic(), f"reconnected {self.port}"))
            self.reconnects += 1
            if self.disconnected_at is not None:
                self.outages.append(time.monotonic() - self.disconnected_at)
                self.disconnected_at = None

        async def lame_duck() -> None:
            # Move before the server closes us, at a random moment so clients spread out.
            # nats-py awaits this callback in its read loop: the wait must not happen here.
            self.events.append((time.monotonic(), "lame duck"))
            if self.follow_lame_duck and self.nc is not None:
                self._ldm_task = asyncio.ensure_future(self._move_later(random.random() * 0.5))

        async def error(e: Exception) -> None:
            pass

        self.nc = await nats.connect(
            servers=[url], name=self.name, max_reconnect_attempts=-1, reconnect_time_wait=0.2,
            connect_timeout=2, disconnected_cb=disconnected, reconnected_cb=reconnected,
            lame_duck_mode_cb=lame_duck, error_cb=error, ping_interval=5,
        )
        return self

    async def _move_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.events.append((time.monotonic(), "force reconnect"))
        await self.nc.force_reconnect()

    @property
    def port(self) -> int:
        return int(self.nc.connected_url.port) if self.nc and self.nc.connected_url else 0

    def known_ports(self) -> set[int]:
        return {int(s.uri.port) for s in self.nc._server_pool if s.uri.port}

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()


@dataclass
class StepResult:
    step: str
    max_outage: float = 0.0
    median_outage: float = 0.0
    lost: int = 0
    spread: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    server: str
    stop_mode: str
    steps: list[StepResult] = field(default_factory=list)
    published: int = 0
    received: int = 0

    @property
    def lost(self) -> int:
        return self.published - self.received

    def table(self) -> str:
        rows = [f"{self.server} ({self.stop_mode}): {self.published} published, {self.lost} lost"]
        for s in self.steps:
            spread = ", ".join(f"{k}:{v}" for k, v in sorted(s.spread.items()))
            rows.append(f"  {s.step:<28} without a server: max {s.max_outage * 1000:6.0f} ms, "
                        f"median {s.median_outage * 1000:6.0f} ms; lost {s.lost:3d}; clients now {spread}")
        return "\n".join(rows)


class Walkthrough:
    """Runs the walkthrough. `command` starts a server: `pynats-server` or a nats-server binary."""

    def __init__(
        self,
        command: list[str] | None = None,
        *,
        stop_mode: str = "ctrl-c",
        narrate: Narrate | None = None,
        movers: int = 12,
        server_label: str = "pynats-server",
    ) -> None:
        self.command = command or pynats_command()
        self.stop_mode = stop_mode
        self.say: Narrate = narrate or (lambda text: None)
        self.movers_n = movers
        self.report = Report(server_label, stop_mode)
        self.nodes: dict[str, Node] = {}
        self.pooled = "pynats" not in server_label
        self.clients: list[Client] = []
        self._seen: set[int] = set()
        self._published = 0
        self._pub_task: asyncio.Task[None] | None = None
        self._tmp = tempfile.mkdtemp(prefix="pynats-walkthrough-")
        # Lame duck timing: nats-server has no flags for it, so both kinds get a config
        # file. The duration's minimum is 30 s; the grace period is kept short.
        self.extra: list[str] = []
        if stop_mode == "ldm":
            conf = os.path.join(self._tmp, "ldm.conf")
            with open(conf, "w", encoding="utf-8") as f:
                f.write('lame_duck_duration: "30s"\nlame_duck_grace_period: "1s"\n')
            self.extra = ["-c", conf]

    # -- helpers ----------------------------------------------------------------------

    def node(self, name: str, routes: list[str]) -> Node:
        n = self.nodes[name]
        n.routes = [self.nodes[r].cluster_port for r in routes]
        return n

    async def start(self, name: str) -> Node:
        n = self.nodes[name]
        n.start()
        await n.wait_ready()
        self.say(f"server {name} is ready: clients on {n.url}, routes on localhost:{n.cluster_port}")
        return n

    async def wait(self, cond: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
        end = time.monotonic() + timeout
        while True:
            v = cond()
            if asyncio.iscoroutine(v):
                v = await v
            if v:
                return v
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}\n" + self.describe())
            await asyncio.sleep(0.05)

    def describe(self) -> str:
        out = []
        keep = os.environ.get("PYNATS_WALKTHROUGH_LOGS")
        for n in self.nodes.values():
            if keep:
                # Full logs for debugging a failure; the message carries only the tails.
                os.makedirs(keep, exist_ok=True)
                with open(os.path.join(keep, f"{n.name}.log"), "w") as f:
                    f.write(n.lines())
            out.append(f"--- {n.name} ({'up' if n.running else 'down'}) ---\n{n.lines()[-2500:]}")
        return "\n".join(out)

    async def mesh(self, names: list[str]) -> bool:
        ids = {}
        for name in names:
            ids[name] = await self.nodes[name].server_id()
        for name in names:
            routes = await self.nodes[name].route_ids()
            want = {ids[o] for o in names if o != name}
            # nats-server 2.10+ pools several connections per peer; count peers for it.
            exact = len(routes) == len(want) or self.pooled
            if not exact or set(routes) != want:
                return False
        return True

    async def probe(self, sub: Client, tag: str) -> None:
        """A message published from a client on another server reaches the subscriber."""
        others = [n for n in self.nodes.values() if n.running and n.client_port != sub.port]
        assert others, "no other server to publish from"
        pub = await Client(f"probe-{tag}").connect(others[0].url)
        got = asyncio.Event()
        subject = f"probe.{tag}.{random.randrange(1 << 30)}"

        async def cb(msg: Any) -> None:
            got.set()

        s = await sub.nc.subscribe(subject, cb=cb)
        try:
            end = time.monotonic() + 15
            while not got.is_set():
                if time.monotonic() > end:
                    raise AssertionError(f"probe {tag} never arrived\n" + self.describe())
                await pub.nc.publish(subject, b"probe")
                await pub.nc.flush()
                try:
                    await asyncio.wait_for(got.wait(), 0.1)
                except asyncio.TimeoutError:
                    pass
        finally:
            await s.unsubscribe()
            await pub.close()

    async def _steady_publisher(self, pub: Client) -> None:
        while True:
            self._published += 1
            try:
                await pub.nc.publish("steady", str(self._published).encode())
            except Exception:  # noqa: BLE001 - a publish during a reconnect may fail; it counts as lost
                pass
            await asyncio.sleep(0.005)

    async def _settle(self, timeout: float = 3.0) -> None:
        """Give what was published so far time to arrive before counting what was lost."""
        target = self._published
        end = time.monotonic() + timeout
        while time.monotonic() < end and not any(i in self._seen for i in range(target, self._published + 1)):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)

    def _lost_since(self, start_seq: int, end_seq: int) -> int:
        return sum(1 for i in range(start_seq + 1, end_seq + 1) if i not in self._seen)

    async def restart_step(self, name: str, movers: list[Client], *, restart: bool = True) -> StepResult:
        n = self.nodes[name]
        on_it = [c for c in movers if c.port == n.client_port]
        before = {id(c): len(c.outages) for c in movers}
        start_seq = self._published
        verb = "lame duck mode for" if self.stop_mode == "ldm" else "Ctrl-C on"
        self.say(f"{verb} server {name} ({len(on_it)} clients connected to it)")
        await n.stop(self.stop_mode)
        await self.wait(lambda: all(c.nc.is_connected and c.port != n.client_port for c in movers),
                        f"clients leaving {name}")
        spread: dict[str, int] = {}
        for c in on_it:
            other = next(o.name for o in self.nodes.values() if o.client_port == c.port)
            spread[other] = spread.get(other, 0) + 1
        self.say(f"  its clients moved: {spread}")
        if restart:
            self.say(f"replacing {name}'s program and starting it again")
            await self.start(name)
        result = StepResult(f"{'restart' if restart else 'remove'} {name}", spread=spread)
        outs = [o for c in movers for o in c.outages[before[id(c)]:]]
        if outs:
            result.max_outage = max(outs)
            result.median_outage = statistics.median(outs)
        await self._settle()
        result.lost = self._lost_since(start_seq, self._published)
        self.report.steps.append(result)
        return result

    # -- the walkthrough ----------------------------------------------------------------

    async def run(self, *, seed_variant: bool = True) -> Report:
        try:
            await self._rotation()
            if seed_variant:
                await self._shutdown_all()
                await self._seed_mode()
        finally:
            await self._shutdown_all()
            shutil.rmtree(self._tmp, ignore_errors=True)
        return self.report

    async def _rotation(self) -> None:
        say = self.say
        for name in "ABC":
            self.nodes[name] = Node(name, self.command, extra=list(self.extra))
        a = self.node("A", ["A", "B"])
        b = self.node("B", ["A", "B"])
        c = self.node("C", ["A", "B"])
        say("Two servers, A and B, each listing both routes (itself included)")
        await self.start("A")
        await a.wait_log(r"Error trying to connect to route \(attempt \d+\): dial tcp \S+: connect: connection refused")
        say("  A cannot reach B yet and says so, as nats-server does; it keeps retrying")
        if not self.pooled:  # nats-server 2.14 skips its own address without a word
            await a.wait_log(r"\[DBG\] Detected route to self, ignoring nats(-route)?://localhost")
            say("  A noticed that one of its routes is itself, and ignores it (one debug line)")
        await self.start("B")
        await self.wait(lambda: self.mesh(["A", "B"]), "one route between A and B")
        say("  A and B formed one route between them (self-routes were ignored)")
        sub = await Client("subscriber").connect(a.url)
        self.clients.append(sub)
        await a.wait_log(r"Client connection created")

        async def on_msg(msg: Any) -> None:
            if msg.subject == "steady":
                self._seen.add(int(msg.data))

        await sub.nc.subscribe(">", cb=on_msg)
        await sub.nc.flush()
        say(f"a subscriber on A (\">\"), connected to {sub.nc.connected_url.netloc}")
        movers = [sub]
        for i in range(self.movers_n):
            movers.append(await Client(f"client-{i}").connect(a.url))
        self.clients.extend(movers[1:])
        say(f"{self.movers_n} more clients on A, to show how a stopped server's clients spread")
        pub = await Client("steady-publisher").connect(b.url)
        self.clients.append(pub)
        await self.probe(sub, "ab")

        say("A temporary server C joins before the upgrade")
        await self.start("C")
        await self.wait(lambda: self.mesh(["A", "B", "C"]), "C joins the mesh")
        await self.wait(lambda: c.client_port in sub.known_ports(), "the subscriber learning of C")
        assert sub.reconnects == 0
        say(f"  the subscriber learned of C without reconnecting: it knows {sorted(sub.known_ports())}")
        self._pub_task = asyncio.ensure_future(self._steady_publisher(pub))

        res = await self.restart_step("A", movers)
        if self.movers_n >= 10:  # with 11+ clients, all picking the same server is a 1-in-1000 event
            assert len(res.spread) == 2, f"A's clients did not spread over B and C: {res.spread}"
        await self.wait(lambda: self.mesh(["A", "B", "C"]), "A back in the mesh")
        await self.probe(sub, "after-a")
        say("  messages reach the subscriber again")
        await self.restart_step("B", movers)
        await self.wait(lambda: self.mesh(["A", "B", "C"]), "B back in the mesh")
        await self.probe(sub, "after-b")
        say("After the last one, stop C: its clients move to the permanent members")
        await self.restart_step("C", movers, restart=False)
        await self.wait(lambda: self.mesh(["A", "B"]), "A and B without C")
        await self.probe(sub, "after-c")
        self._pub_task.cancel()
        await self._settle()
        self.report.published = self._published
        self.report.received = sum(1 for i in range(1, self._published + 1) if i in self._seen)
        say("  the rotation is done; nothing hung, every server stopped cleanly")

    async def mixed_rotation(self, first: list[str], second: list[str], labels: tuple[str, str]) -> None:
        """Three nodes of one kind, replaced one by one by the other kind, then back again,
        with clients connected all the way (an upgrade to pynats-server and the downgrade)."""
        say = self.say
        self.pooled = True
        for name in "ABC":
            self.nodes[name] = Node(name, first, extra=list(self.extra))
        for name in "ABC":
            self.node(name, ["A", "B", "C"])
        say(f"three {labels[0]} nodes, each listing all three routes")
        for name in "ABC":
            await self.start(name)
        await self.wait(lambda: self.mesh(["A", "B", "C"]), f"a mesh of {labels[0]} nodes")
        sub = await Client("subscriber").connect(self.nodes["A"].url)
        self.clients.append(sub)

        async def on_msg(msg: Any) -> None:
            if msg.subject == "steady":
                self._seen.add(int(msg.data))

        await sub.nc.subscribe(">", cb=on_msg)
        movers = [sub]
        for i in range(self.movers_n):
            movers.append(await Client(f"client-{i}").connect(self.nodes["ABC"[i % 3]].url))
        self.clients.extend(movers[1:])
        pub = await Client("steady-publisher").connect(self.nodes["B"].url)
        self.clients.append(pub)
        await self.wait(lambda: len(sub.known_ports()) >= 3, "the subscriber learning every node")
        self._pub_task = asyncio.ensure_future(self._steady_publisher(pub))
        for cmd, label in ((second, labels[1]), (first, labels[0])):
            for name in "ABC":
                node = self.nodes[name]
                say(f"replacing {name} with {label}")
                node.command = cmd
                await self.restart_step(name, movers)
                await self.wait(lambda: self.mesh(["A", "B", "C"]), f"{name} ({label}) back in the mesh")
                await self.probe(sub, f"{name}-{label.split()[0]}")
        self._pub_task.cancel()
        await self._settle()
        self.report.published = self._published
        self.report.received = sum(1 for i in range(1, self._published + 1) if i in self._seen)

    async def _seed_mode(self) -> None:
        say = self.say
        say("Seed servers: B and C name only the seed A")
        for name in "ABC":
            self.nodes[name] = Node(name, self.command)
        self.node("A", [])
        self.node("B", ["A"])
        self.node("C", ["A"])
        for name in "ABC":
            await self.start(name)
        await self.wait(lambda: self.mesh(["A", "B", "C"]), "a full mesh from one seed")
        say("  every pair of servers has exactly one route (/routez on each)")

    async def _shutdown_all(self) -> None:
        if self._pub_task is not None:
            self._pub_task.cancel()
        for c in self.clients:
            try:
                await asyncio.wait_for(c.close(), 2)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - closing during teardown
                pass
        self.clients.clear()
        for n in self.nodes.values():
            if n.running:
                try:
                    await n.stop("ctrl-c", timeout=10)
                except AssertionError:
                    n.kill()
            self._check_log(n)

    def _check_log(self, n: Node) -> None:
        text = n.lines()
        if "Traceback" in text or "[FTL]" in text:
            raise AssertionError(f"{n.name} crashed:\n{text[-3000:]}")
