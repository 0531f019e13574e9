"""The benchmark scenarios. Each run gets fresh server(s) and returns a flat dict of metrics."""

from __future__ import annotations

import json
import random
import resource
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import fairness, js_consumers, loadgen, proto
from .servers import Server

CHUNK_BYTES = 64 * 1024  # bytes per sendall for publishers
WINDOW = 8  # max unanswered PINGs (chunks) per publisher
LAG_BYTES = 4 * 1024 * 1024  # publishers pause when subscribers lag by more than this
MAX_MSGS = 200_000_000  # count bound on every publisher, next to the duration bound


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool = True


@dataclass
class Settings:
    duration: float  # seconds of load per throughput run
    quick: bool


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    metrics: tuple[Metric, ...]
    run: Callable[[list[Server], Settings], dict[str, Any]]
    nodes: int = 1
    quick: bool = False  # part of --quick
    tags: tuple[str, ...] = field(default=())
    tls: bool = False  # clients connect with TLS (servers started with --tls)
    server_args: tuple[str, ...] = ()  # more command-line arguments for every server
    jetstream: bool = False  # servers started with -js -sd <a fresh directory>


DELIVERED = Metric("deliveries_per_s", "deliveries/s (at subscribers)", "msgs/s")
PUBLISHED = Metric("published_per_s", "published/s (at publishers)", "msgs/s")


# -- throughput ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    pubs: int = 1
    subs: int = 0
    size: int = 16
    queue: bool = False
    mixed: bool = False  # 128 subjects x sizes 16..1024 B, no two consecutive control lines equal
    # Runs of 32 PUBs that alternate between the subscribed subject and one nobody wants.
    runs_mixed: bool = False
    unsub_max: bool = False  # the subscription has an UNSUB max (never reached in the run)


def _mixed_frames(n: int = 4096, subjects: int = 128, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    frames = []
    prev = -1
    for _ in range(n):
        k = rng.randrange(subjects - 1)
        k = k if k < prev else k + 1  # never the previous subject
        prev = k
        frames.append(
            proto.pub_frame(f"bench.mixed.s{k}.data", proto.payload(rng.randint(16, 1024)))
        )
    return frames


def throughput(flow: Flow) -> Callable[[list[Server], Settings], dict[str, Any]]:
    def run(servers: list[Server], st: Settings) -> dict[str, Any]:
        pub_srv, sub_srv = servers[0], servers[-1]
        dpm: float = 1 if flow.queue else max(1, flow.subs)
        if flow.runs_mixed:
            want = proto.pub_frame("bench.data", proto.payload(flow.size))
            frames = [want] * 32 + [proto.pub_frame("bench.none", proto.payload(flow.size))] * 32
            chunks = proto.build_chunks(frames * 46, CHUNK_BYTES)  # one write: 46 pairs of runs
            frame_len = len(want)
            msg_len = proto.msg_frame_len("bench.data", 1, flow.size)
            sub_lines = b"SUB bench.data 1\r\n"
            dpm /= 2
        elif flow.mixed:
            frames = _mixed_frames()
            chunks = proto.build_chunks(frames, CHUNK_BYTES)
            frame_len = sum(map(len, frames)) // len(frames)
            msg_len = 0  # sizes vary: subscribers count "MSG " instead
            sub_lines = b"SUB bench.mixed.> 1\r\n"
        else:
            frame = proto.pub_frame("bench.data", proto.payload(flow.size))
            chunks = proto.repeat_chunk(frame, CHUNK_BYTES)
            frame_len = len(frame)
            msg_len = proto.msg_frame_len("bench.data", 1, flow.size)
            sub_lines = b"SUB bench.data workers 1\r\n" if flow.queue else b"SUB bench.data 1\r\n"
            if flow.unsub_max:
                sub_lines += b"UNSUB 1 999999999\r\n"
        probe = None
        probe_subject = None
        if len(servers) > 1:
            probe_subject = "bench.probe"
            probe_sock, _ = proto.connect(pub_srv.host, pub_srv.port, name="bench-probe")

            def probe() -> None:
                probe_sock.sendall(b"PUB bench.probe 0\r\n\r\n" + proto.PING)
                proto.wait_pong(probe_sock, time.monotonic() + 5.0)

        drivers = [
            (
                loadgen.publisher,
                loadgen.PubSpec(
                    pub_srv.host,
                    pub_srv.port,
                    chunks,
                    duration=st.duration,
                    max_ops=MAX_MSGS,
                    window=WINDOW,
                    lag_limit=max(16, LAG_BYTES // frame_len) if flow.subs else 0,
                    deliveries_per_msg=dpm,
                    tls=pub_srv.tls,
                ),
            )
            for _ in range(flow.pubs)
        ]
        sinks = [
            (
                loadgen.subscriber,
                loadgen.SubSpec(
                    sub_srv.host,
                    sub_srv.port,
                    sub_lines,
                    group=flow.queue,
                    probe_subject=probe_subject,
                    max_seconds=st.duration + 90.0,
                    frame_len=msg_len,
                    tls=sub_srv.tls,
                ),
            )
            for _ in range(flow.subs)
        ]
        try:
            res = loadgen.run_job(
                loadgen.Job(drivers, sinks, duration=st.duration, probe=probe),
                [s.cpu_seconds for s in servers],
            )
        finally:
            if probe is not None:
                probe_sock.close()
        return _throughput_metrics(res, servers, expected_per_sub=None, dpm=dpm, queue=flow.queue)

    return run


def _cpu_fields(res: loadgen.JobResult, servers: list[Server]) -> dict[str, Any]:
    workers = res.drivers + res.sinks
    # From the start signal to the moment every worker had finished (the subscribers stop
    # within ~10 ms of their last message); the server and machine CPU are read at these two
    # instants too, so all the percentages share one window.
    wall = max(res.t_done - res.t_go, 1e-9)
    gen_cpu = sum(w["cpu"] for w in workers)
    busiest = max(
        (w["cpu"] / max(w["t_end"] - w["t_start"], 1e-9) for w in workers),
        default=0.0,
    )
    return {
        "wall_s": wall,
        "server_cpu_pct": 100.0 * res.server_cpu / wall,
        "server_cpu_pct_per_node": [100.0 * c / wall for c in res.per_server_cpu],
        "gen_cpu_pct": 100.0 * gen_cpu / wall,
        "gen_cpu_pct_busiest": 100.0 * busiest,
        "gen_cpu_pct_per_process": {
            **{f"pub{i}": round(100.0 * w["cpu"] / wall, 1) for i, w in enumerate(res.drivers)},
            **{f"sub{i}": round(100.0 * w["cpu"] / wall, 1) for i, w in enumerate(res.sinks)},
        },
        "gen_processes": len(workers),
        # Whole machine, all processes (ours, the servers', anyone else's), % of one core.
        "machine_busy_pct": 100.0 * res.machine_busy / wall,
        "steal_pct": 100.0 * res.machine_steal / wall,
        # What neither the server nor the generator used: kernel network work, the
        # orchestrator, and any other program running on the machine at the same time.
        "other_cpu_pct": 100.0 * (res.machine_busy - res.server_cpu - gen_cpu) / wall,
        "server_peak_rss": max(s.peak_rss_bytes() for s in servers),
    }


def _throughput_metrics(
    res: loadgen.JobResult,
    servers: list[Server],
    *,
    expected_per_sub: int | None,
    dpm: float,
    queue: bool,
) -> dict[str, Any]:
    sent = sum(d["sent"] for d in res.drivers)
    pub_wall = max(d["t_end"] for d in res.drivers) - res.t_go
    out: dict[str, Any] = {
        "published": sent,
        "published_per_s": sent / pub_wall,
        **_cpu_fields(res, servers),
        "lag_waits": sum(d.get("lag_waits", 0) for d in res.drivers),
    }
    if res.sinks:
        received = sum(s["received"] for s in res.sinks)
        expected = round(sent * dpm)
        sub_wall = max(s["t_end"] for s in res.sinks) - res.t_go
        out.update(
            delivered=received,
            expected=expected,
            loss_pct=100.0 * (expected - received) / expected if expected else 0.0,
            deliveries_per_s=received / max(sub_wall, 1e-9),
            per_sub_received=[s["received"] for s in res.sinks],
            stray_bytes=sum(s.get("stray_bytes", 0) for s in res.sinks),
        )
    return out


# -- request/reply latency ---------------------------------------------------------------------


def reqrep(servers: list[Server], st: Settings) -> dict[str, Any]:
    srv = servers[0]
    count = 3_000 if st.quick else 20_000
    res = loadgen.run_job(
        loadgen.Job(
            drivers=[
                (
                    loadgen.requester,
                    loadgen.ReqSpec(srv.host, srv.port, "bench.req", 16, count, st.duration * 3),
                ),
            ],
            sinks=[
                (
                    loadgen.responder,
                    loadgen.RespSpec(srv.host, srv.port, "bench.req", st.duration * 3 + 90.0),
                )
            ],
            duration=st.duration * 3,
        ),
        [s.cpu_seconds for s in servers],
    )
    lat = sorted(res.drivers[0]["latencies_ns"])
    if not lat:
        raise loadgen.RunError("no request completed")

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] / 1000.0

    span = res.drivers[0]["t_end"] - res.drivers[0]["t_start"]
    return {
        "requests": len(lat),
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "mean_us": statistics.fmean(lat) / 1000.0,
        "max_us": lat[-1] / 1000.0,
        "requests_per_s": len(lat) / span,
        **_cpu_fields(res, servers),
    }


# -- memory ------------------------------------------------------------------------------------


def _settled_rss(srv: Server, settle: float = 0.5) -> int:
    """RSS after it stopped moving for a moment (bounded: at most a few samples)."""
    time.sleep(settle)
    prev = srv.rss_bytes()
    for _ in range(10):
        time.sleep(0.1)
        cur = srv.rss_bytes()
        if abs(cur - prev) < 64 * 1024:
            return cur
        prev = cur
    return prev


def _raise_fd_limit(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def mem_per_conn(servers: list[Server], st: Settings) -> dict[str, Any]:
    srv = servers[0]
    n = 1000
    _raise_fd_limit(n + 256)
    base = _settled_rss(srv)
    socks: list[socket.socket] = []
    t0 = time.monotonic()
    try:
        for i in range(n):
            if time.monotonic() - t0 > 120:
                raise loadgen.RunError(f"opening connections stalled after {i}")
            sock, _ = proto.connect(srv.host, srv.port, name=f"idle-{i}")
            socks.append(sock)
        opened = time.monotonic() - t0
        after = _settled_rss(srv)
    finally:
        for s in socks:
            s.close()
    return {
        "connections": n,
        "rss_before": base,
        "rss_after": after,
        "bytes_per_conn": (after - base) / n,
        "open_s": opened,
        "server_peak_rss": srv.peak_rss_bytes(),
    }


def _sub_chunks(n: int, prefix: str, unsub: bool) -> list[proto.Chunk]:
    frames = []
    for i in range(1, n + 1):
        line = f"SUB {prefix}.{i} {i}\r\n"
        if unsub:
            line += f"UNSUB {i}\r\n"
        frames.append(line.encode())
    return proto.build_chunks(frames, CHUNK_BYTES)


def mem_per_sub(servers: list[Server], st: Settings) -> dict[str, Any]:
    srv = servers[0]
    n = 100_000
    chunks = _sub_chunks(n, "bench.sub.s", unsub=False)
    sock, _ = proto.connect(srv.host, srv.port, name="bench-subscriptions")
    try:
        base = _settled_rss(srv)
        t0 = time.monotonic()
        res = proto.send_pipelined(
            sock, chunks, max_ops=n, deadline=t0 + 300, window=WINDOW, drain_deadline=t0 + 300
        )
        took = res.t_end - t0
        after = _settled_rss(srv)
    finally:
        sock.close()
    return {
        "subscriptions": res.ops,
        "rss_before": base,
        "rss_after": after,
        "bytes_per_sub": (after - base) / res.ops,
        "subscribe_s": took,
        "subs_per_s": res.ops / took,
        "server_peak_rss": srv.peak_rss_bytes(),
    }


def sub_churn(servers: list[Server], st: Settings) -> dict[str, Any]:
    srv = servers[0]
    chunks = _sub_chunks(1000, "bench.churn.s", unsub=True)
    res = loadgen.run_job(
        loadgen.Job(
            drivers=[
                (
                    loadgen.publisher,
                    loadgen.PubSpec(
                        srv.host, srv.port, chunks, st.duration, max_ops=MAX_MSGS, window=WINDOW
                    ),
                )
            ],
            duration=st.duration,
        ),
        [s.cpu_seconds for s in servers],
    )
    d = res.drivers[0]
    return {
        "pairs": d["sent"],
        "pairs_per_s": d["sent"] / (d["t_end"] - d["t_start"]),
        **_cpu_fields(res, servers),
    }


# -- JetStream publishing ----------------------------------------------------------------------

JS_SIZE = 128
JS_SUBJECT = "bench.js"


def _create_stream(srv: Server, storage: str) -> None:
    """STREAM.CREATE for the run's stream (bench.js), answered before the load starts."""
    sock, _ = proto.connect(srv.host, srv.port, name="bench-js-setup")
    try:
        body = json.dumps({"name": "BENCH", "subjects": [JS_SUBJECT], "storage": storage}).encode()
        sock.sendall(
            b"SUB _INBOX.setup 1\r\n"
            + proto.pub_frame("$JS.API.STREAM.CREATE.BENCH", body, "_INBOX.setup")
            + proto.PING
        )
        deadline = time.monotonic() + 10.0
        reader = proto.MsgReader()
        while True:
            if time.monotonic() > deadline:
                raise loadgen.RunError("no answer to STREAM.CREATE")
            msgs, _ = reader.feed(proto.recv_some(sock))
            if msgs:
                if b'"error"' in msgs[0][2]:
                    raise loadgen.RunError(f"STREAM.CREATE failed: {msgs[0][2][:200]!r}")
                return
    finally:
        sock.close()


def js_publish(storage: str, window: int) -> Callable[[list[Server], Settings], dict[str, Any]]:
    """Publish with a reply into a stream and count the PubAcks: `window` 1 is the synchronous
    publish (each waits for its ack: latencies), more is the asynchronous one (up to `window`
    publishes unacknowledged)."""

    def run(servers: list[Server], st: Settings) -> dict[str, Any]:
        srv = servers[0]
        _create_stream(srv, storage)
        res = loadgen.run_job(
            loadgen.Job(
                drivers=[
                    (
                        loadgen.js_publisher,
                        loadgen.JsPubSpec(srv.host, srv.port, JS_SUBJECT, JS_SIZE, window,
                                          st.duration, MAX_MSGS),  # fmt: skip
                    )
                ],
                duration=st.duration,
            ),
            [s.cpu_seconds for s in servers],
        )
        d = res.drivers[0]
        span = max(d["t_end"] - d["t_start"], 1e-9)
        out: dict[str, Any] = {
            "published": d["sent"],
            "acked": d["acked"],
            "acked_per_s": d["acked"] / span,
            **_cpu_fields(res, servers),
        }
        lat = sorted(d.get("latencies_ns") or [])
        if lat:
            out["p50_us"] = lat[len(lat) // 2] / 1000.0
            out["p99_us"] = lat[min(len(lat) - 1, int(0.99 * len(lat)))] / 1000.0
        return out

    return run


ACKED = Metric("acked_per_s", "acknowledged publishes/s", "msgs/s")


def _js(name: str, title: str, description: str, storage: str, window: int, quick: bool = False) -> Scenario:
    metrics: tuple[Metric, ...] = (ACKED,)
    if window == 1:
        metrics = (ACKED, Metric("p50_us", "publish-to-ack p50", "us", higher_is_better=False))
    return Scenario(name, title, description, metrics, js_publish(storage, window), quick=quick,
                    jetstream=True)  # fmt: skip


# -- registry ----------------------------------------------------------------------------------


def _tp(
    name: str,
    title: str,
    description: str,
    flow: Flow,
    *,
    quick: bool = False,
    nodes: int = 1,
    tls: bool = False,
    server_args: tuple[str, ...] = (),
) -> Scenario:
    metrics = (DELIVERED, PUBLISHED) if flow.subs else (PUBLISHED,)
    return Scenario(
        name, title, description, metrics, throughput(flow), nodes=nodes, quick=quick, tls=tls,
        server_args=server_args,
    )


SCENARIOS: tuple[Scenario, ...] = (
    _tp(
        "pub_only_16b",
        "publish only, 16 B",
        "1 publisher, no subscribers: ingest and discard.",
        Flow(),
        quick=True,
    ),
    _tp(
        "pubsub_16b",
        "1 pub -> 1 sub, 16 B",
        "One subject, one subscriber.",
        Flow(subs=1, size=16),
        quick=True,
    ),
    _tp("pubsub_128b", "1 pub -> 1 sub, 128 B", "Payload sweep.", Flow(subs=1, size=128)),
    _tp(
        "pubsub_1k", "1 pub -> 1 sub, 1 KiB", "Payload sweep.", Flow(subs=1, size=1024), quick=True
    ),
    _tp("pubsub_64k", "1 pub -> 1 sub, 64 KiB", "Payload sweep.", Flow(subs=1, size=65536)),
    _tp(
        "pubsub_mixed",
        "1 pub -> 1 sub, 128 subjects, 16 B-1 KiB",
        "Subjects bench.mixed.s0..s127, random sizes, subscriber on bench.mixed.>; "
        "no two consecutive PUB lines are equal.",
        Flow(subs=1, mixed=True),
        quick=True,
    ),
    _tp(
        "pubsub_tls_128b",
        "1 pub -> 1 sub, 128 B, TLS",
        "pubsub_128b with both clients on TLS (INFO, then the handshake; TLS 1.3).",
        Flow(subs=1, size=128),
        quick=True,
        tls=True,
    ),
    _tp(
        "pubsub_runs_mixed_16b",
        "1 pub -> 1 sub, runs to a subscribed and an unwanted subject, 16 B",
        "Runs of 32 PUBs alternate between bench.data (one subscriber) and bench.none (none): "
        "each read mixes runs with and without a destination.",
        Flow(subs=1, runs_mixed=True),
    ),
    _tp(
        "pubsub_unsub_max_16b",
        "1 pub -> 1 sub with an UNSUB max, 16 B",
        "The subscription has an auto-unsubscribe limit (999,999,999, not reached): every message takes "
        "the path a limited subscription needs.",
        Flow(subs=1, unsub_max=True),
    ),
    _tp(
        "pubsub_traced_16b",
        "1 pub -> 1 sub, servers tracing (-V), 16 B",
        "pubsub_16b with protocol tracing on: every message is traced in and out.",
        Flow(subs=1),
        server_args=("-V",),
    ),
    _tp(
        "fanout_1x4_16b",
        "1 pub -> 4 subs, 16 B",
        "Every message to 4 subscribers.",
        Flow(subs=4),
        quick=True,
    ),
    _tp(
        "fanin_4x1_16b",
        "4 pubs -> 1 sub, 16 B",
        "4 publishers, one subscriber.",
        Flow(pubs=4, subs=1),
    ),
    _tp(
        "queue_4_16b",
        "queue group of 4, 16 B",
        "1 publisher, 4 subscribers in one queue group: each message to one.",
        Flow(subs=4, queue=True),
    ),
    Scenario(
        "reqrep_latency",
        "request/reply, 16 B",
        "One outstanding request at a time through a raw-socket responder.",
        (
            Metric("p50_us", "latency p50", "us", higher_is_better=False),
            Metric("p99_us", "latency p99", "us", higher_is_better=False),
        ),
        reqrep,
        quick=True,
    ),
    _tp(
        "cluster_1x1_16b",
        "2-node cluster, pub on A -> sub on B, 16 B",
        "Publisher on node A, subscriber on node B; every message crosses the route.",
        Flow(subs=1),
        nodes=2,
        quick=True,
    ),
    Scenario(
        "mem_per_conn",
        "memory per idle connection",
        "Server RSS delta after 1,000 connections that each did CONNECT + PING/PONG.",
        (Metric("bytes_per_conn", "RSS per connection", "B", higher_is_better=False),),
        mem_per_conn,
        quick=True,
    ),
    Scenario(
        "mem_per_sub",
        "memory per subscription",
        "Server RSS delta after 100,000 subscriptions (distinct subjects) on one connection.",
        (Metric("bytes_per_sub", "RSS per subscription", "B", higher_is_better=False),),
        mem_per_sub,
        quick=True,
    ),
    _js(
        "js_pub_sync_file",
        "JetStream publish, sync, file, 128 B",
        "One publisher waits for each PubAck before the next publish (file storage).",
        "file",
        1,
        quick=True,
    ),
    _js(
        "js_pub_sync_mem",
        "JetStream publish, sync, memory, 128 B",
        "One publisher waits for each PubAck before the next publish (memory storage).",
        "memory",
        1,
    ),
    _js(
        "js_pub_async_file",
        "JetStream publish, async window 256, file, 128 B",
        "One publisher keeps up to 256 publishes unacknowledged (file storage).",
        "file",
        256,
        quick=True,
    ),
    _js(
        "js_pub_async_mem",
        "JetStream publish, async window 256, memory, 128 B",
        "One publisher keeps up to 256 publishes unacknowledged (memory storage).",
        "memory",
        256,
    ),
    Scenario(
        "js_pull_fetch",
        "JetStream pull fetch of a stored stream",
        "A stream of 100,000 x 16 B (20,000 quick); one pull request for all of them on an explicit-ack "
        "consumer without a max_ack_pending limit; time until the last arrives.",
        (Metric("msgs_per_s", "messages/s (fetch)", "msgs/s"),),
        lambda srvs, st: js_consumers.pull_fetch(srvs, st.quick),
        quick=True,
        jetstream=True,
    ),
    Scenario(
        "js_push",
        "JetStream push consumer of a stored stream",
        "The same stream; a push consumer (ack none) created with its deliver subject subscribed; "
        "time until the last message arrives.",
        (Metric("msgs_per_s", "messages/s (push)", "msgs/s"),),
        lambda srvs, st: js_consumers.push(srvs, st.quick),
        quick=True,
        jetstream=True,
    ),
    Scenario(
        "fair_reqrep",
        "request/reply beside abusers",
        "A nats-py client does request/reply every 5 ms while 8 connections send fuzzed protocol, "
        "one publisher floods 1 KiB messages and one subscriber to the flood never reads.",
        (
            Metric("p50_us", "latency p50", "us", higher_is_better=False),
            Metric("p99_us", "latency p99", "us", higher_is_better=False),
        ),
        lambda srvs, st: fairness.fairness(srvs, max(3.0, 2 * st.duration)),
        tags=("fairness",),
    ),
    Scenario(
        "slowcons_fast_sub",
        "fast subscriber, no stalled one",
        "1 KiB flood -> one fast subscriber (the reference for slowcons_beside_stalled).",
        (Metric("fast_sub_msgs_per_s", "fast subscriber msgs/s", "msgs/s"),),
        lambda srvs, st: fairness.slow_consumer_rate(srvs, max(2.0, st.duration), stalled=False),
        tags=("fairness",),
    ),
    Scenario(
        "slowcons_beside_stalled",
        "fast subscriber beside a stalled one",
        "The same, with a second subscriber that never reads (cut off as a slow consumer, and "
        "back): the fast subscriber's rate should match slowcons_fast_sub.",
        (Metric("fast_sub_msgs_per_s", "fast subscriber msgs/s", "msgs/s"),),
        lambda srvs, st: fairness.slow_consumer_rate(srvs, max(2.0, st.duration), stalled=True),
        tags=("fairness",),
    ),
    Scenario(
        "conns_10k",
        "10,000 subscribed connections",
        "10,000 client connections with a subscription each: one client's request/reply latency beside "
        "them (alone_p50_us/alone_p99_us in the JSON: before they connect), the server's RSS per connection.",
        (
            Metric("p99_us", "latency p99 beside 10k conns", "us", higher_is_better=False),
            Metric("bytes_per_conn", "RSS per subscribed connection", "B", higher_is_better=False),
        ),
        lambda srvs, st: fairness.many_connections(srvs, 2_000 if st.quick else 10_000),
        tags=("fairness",),
    ),
    Scenario(
        "sub_churn",
        "SUB/UNSUB churn",
        "SUB + UNSUB pairs per second on one connection, confirmed by PING/PONG.",
        (Metric("pairs_per_s", "SUB+UNSUB pairs/s", "ops/s"),),
        sub_churn,
    ),
)


def select(patterns: list[str] | None, quick: bool) -> list[Scenario]:
    """Scenarios whose name contains any of ``patterns`` (all, or the quick set, otherwise)."""
    if patterns:
        return [s for s in SCENARIOS if any(p in s.name for p in patterns)]
    return [s for s in SCENARIOS if s.quick or not quick]
