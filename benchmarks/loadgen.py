"""The load generator: lean raw-socket workers, each in its own process.

Publishers send pre-built buffers (tens of KiB per ``sendall``), each ending
with PING, and never have more than ``window`` PINGs unanswered. Subscribers
``recv_into`` a fixed buffer and never parse frames: when every frame has the
same size they divide the byte total by it, otherwise they count ``b"MSG "``
occurrences with ``bytearray.count`` (C speed). Workers share counters in
shared memory (no locks) so publishers can pause when subscribers fall too far
behind, and report their own CPU time so the harness can tell who was the limit.

Every wait has a deadline: a stalled server makes a run fail, never hang.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import RawArray, RawValue
from typing import Any

from . import proto
from .servers import machine_cpu

CTX = mp.get_context("fork")
MSG = b"MSG "
RECV_BUF = 1 << 18  # 256 KiB


class RunError(RuntimeError):
    """A worker failed or the run did not finish in time."""


@dataclass
class Shared:
    """Lock-free shared state between the orchestrator and the workers."""

    n_pubs: int
    n_subs: int
    go: Any = field(init=False)
    pub_counts: Any = field(init=False)  # ops sent, per driver
    sub_counts: Any = field(init=False)  # MSG frames received, per subscriber
    target: Any = field(init=False)  # deliveries expected, set when the drivers are done
    results: Any = field(init=False)

    def __post_init__(self) -> None:
        self.go = CTX.Event()
        self.pub_counts = RawArray("q", max(1, self.n_pubs))
        self.sub_counts = RawArray("q", max(1, self.n_subs))
        self.target = RawValue("q", -1)
        self.results = CTX.Queue()


@dataclass
class PubSpec:
    """A pipelined sender (publisher, or SUB/UNSUB churner)."""

    host: str
    port: int
    chunks: list[proto.Chunk]
    duration: float
    max_ops: int
    window: int = 8
    lag_limit: int = 0  # max undelivered messages before pausing (0: no limit)
    deliveries_per_msg: float = 1
    tls: bool = False


@dataclass
class SubSpec:
    """A counting subscriber."""

    host: str
    port: int
    subs: bytes  # SUB lines
    group: bool = False  # queue-group member: done when the group total reaches the target
    probe_subject: str | None = None  # cluster: wait for a probe message before being ready
    max_seconds: float = 300.0  # hard bound on the measuring loop
    # Size of every MSG frame when they are all alike: count by byte totals, not by scanning.
    frame_len: int = 0
    tls: bool = False


@dataclass
class ReqSpec:
    host: str
    port: int
    subject: str
    size: int
    count: int
    duration: float
    warmup: int = 100


@dataclass
class JsPubSpec:
    """A JetStream publisher: publishes with a reply and counts the PubAcks."""

    host: str
    port: int
    subject: str
    size: int
    window: int  # publishes allowed unacknowledged (1: wait for each ack)
    duration: float
    max_ops: int


@dataclass
class RespSpec:
    host: str
    port: int
    subject: str
    max_seconds: float = 300.0


def _report(sh: Shared, role: str, idx: int, kind: str, **data: Any) -> None:
    sh.results.put({"role": role, "idx": idx, "kind": kind, **data})


def _worker(
    fn: Callable[..., dict[str, Any]],
    role: str,
    idx: int,
    sh: Shared,
    spec: Any,
    start_timeout: float,
) -> None:
    try:
        data = fn(spec, idx, sh, start_timeout)
        _report(sh, role, idx, "done", **data)
    except BaseException as exc:  # report everything, including KeyboardInterrupt
        _report(
            sh, role, idx, "error", error=f"{type(exc).__name__}: {exc}", tb=traceback.format_exc()
        )
    finally:
        sh.results.close()
        sh.results.join_thread()


def _wait_go(sh: Shared, start_timeout: float) -> tuple[float, float]:
    if not sh.go.wait(start_timeout) or sh.target.value >= 0:
        raise RunError("start signal never came (the run was aborted)")
    return time.monotonic(), time.process_time()


def publisher(spec: PubSpec, idx: int, sh: Shared, start_timeout: float) -> dict[str, Any]:
    sock, _ = proto.connect(spec.host, spec.port, name=f"bench-pub-{idx}", tls=spec.tls)
    lag_check = None
    if spec.lag_limit and sh.n_subs:
        pub_counts, sub_counts = sh.pub_counts, sh.sub_counts
        dpm, limit = spec.deliveries_per_msg, spec.lag_limit * spec.deliveries_per_msg

        def lag_check() -> bool:
            return sum(pub_counts) * dpm - sum(sub_counts) > limit

    _report(sh, "pub", idx, "ready")
    t0, cpu0 = _wait_go(sh, start_timeout)
    target = sh.target
    try:
        res = proto.send_pipelined(
            sock,
            spec.chunks,
            max_ops=spec.max_ops,
            deadline=t0 + spec.duration,
            window=spec.window,
            drain_deadline=t0 + spec.duration + 30.0,
            progress=sh.pub_counts,
            progress_index=idx,
            lag_check=lag_check,
            abort=lambda: target.value >= 0,  # only set while drivers run if the run failed
        )
    finally:
        sock.close()
    return {
        "sent": res.ops,
        "t_start": t0,
        "t_end": res.t_end,
        "cpu": time.process_time() - cpu0,
        "lag_waits": res.lag_waits,
    }


def _probe_wait(sock: Any, spec: SubSpec, deadline: float) -> None:
    """Cluster: wait until a probe published on the other node arrives, then drop it."""
    proto.set_io_timeout(sock, 0.1)
    seen = b""
    while MSG not in seen:
        if time.monotonic() > deadline:
            raise RunError("subscription interest never reached the publishing node")
        try:
            seen = seen[-8:] + proto.recv_some(sock)
        except TimeoutError:
            pass
    sock.sendall(b"UNSUB 999999\r\n" + proto.PING)
    proto.wait_pong(sock, deadline)


def subscriber(spec: SubSpec, idx: int, sh: Shared, start_timeout: float) -> dict[str, Any]:
    sock, _ = proto.connect(spec.host, spec.port, name=f"bench-sub-{idx}", tls=spec.tls)
    setup_deadline = time.monotonic() + start_timeout
    subs = spec.subs
    if spec.probe_subject:
        subs += f"SUB {spec.probe_subject} 999999\r\n".encode()
    sock.sendall(subs + proto.PING)
    proto.wait_pong(sock, setup_deadline)
    if spec.probe_subject:
        _report(sh, "sub", idx, "probe")
        _probe_wait(sock, spec, setup_deadline)
    proto.set_io_timeout(sock, 0.01)
    _report(sh, "sub", idx, "ready")
    t0, cpu0 = _wait_go(sh, start_timeout)
    counts = sh.sub_counts
    target = sh.target
    group = spec.group
    now = time.monotonic
    buf = bytearray(RECV_BUF + 3)
    view = memoryview(buf)
    recv_into = sock.recv_into
    frame_len = spec.frame_len
    count = 0
    total = 0  # bytes received
    carry = 0  # bytes kept from the previous read (a "MSG " may straddle two reads)
    t_first = t_last = 0.0
    idle_limit = 1.0
    try:
        while True:
            try:
                n = recv_into(view[carry:] if carry else view)
            except (BlockingIOError, TimeoutError):  # 10 ms without data (TimeoutError: TLS)
                tgt = target.value
                if tgt >= 0 and (
                    (sum(counts) if group else count) >= tgt or now() - (t_last or t0) > idle_limit
                ):
                    break  # everything arrived, or publishers are done and nothing more is coming
                if now() - t0 > spec.max_seconds:
                    raise RunError(
                        f"subscriber still running after {spec.max_seconds:.0f}s"
                    ) from None
                continue
            if n == 0:
                raise proto.ProtocolError("server closed the subscriber connection")
            total += n
            if frame_len:
                # All frames have the same, known size: no need to look at the bytes at all.
                count = total // frame_len
            else:
                end = carry + n
                count += buf.count(MSG, 0, end)
                if end >= 3:
                    buf[0:3] = buf[end - 3 : end]
                    carry = 3
                else:
                    carry = end
            counts[idx] = count
            t_last = now()
            if not t_first:
                t_first = t_last
            tgt = target.value
            if tgt >= 0 and (sum(counts) if group else count) >= tgt:
                break
    finally:
        sock.close()
    return {
        "received": count,
        "bytes": total,
        # Fixed-size frames: anything but 0 means the stream held something unexpected.
        "stray_bytes": total - count * frame_len if frame_len else 0,
        "t_start": t0,
        "t_first": t_first,
        "t_end": t_last or now(),
        "cpu": time.process_time() - cpu0,
    }


def requester(spec: ReqSpec, idx: int, sh: Shared, start_timeout: float) -> dict[str, Any]:
    sock, _ = proto.connect(spec.host, spec.port, name="bench-requester")
    inbox = "_INBOX.bench.reply"
    sock.sendall(f"SUB {inbox} 1\r\n".encode() + proto.PING)
    proto.wait_pong(sock, time.monotonic() + start_timeout)
    frame = proto.pub_frame(spec.subject, proto.payload(spec.size), inbox)
    reply_len = proto.msg_frame_len(inbox, 1, spec.size)
    _report(sh, "pub", idx, "ready")
    t0, cpu0 = _wait_go(sh, start_timeout)
    deadline = t0 + spec.duration
    lat: list[int] = []
    reader = proto.MsgReader()
    clock = time.perf_counter_ns
    now = time.monotonic
    recv, sendall = sock.recv, sock.sendall
    target = sh.target
    try:
        for i in range(spec.count + spec.warmup):
            t = clock()
            sendall(frame)
            data = recv(65536)
            if len(data) != reply_len or not data.startswith(MSG):
                # Slow path: a partial read, a server PING, an error...
                msgs, pings = reader.feed(data)
                while not msgs:
                    if pings:
                        sendall(proto.PONG * pings)
                    msgs, pings = reader.feed(proto.recv_some(sock))
                if pings:
                    sendall(proto.PONG * pings)
            if i >= spec.warmup:
                lat.append(clock() - t)
            if now() > deadline or target.value >= 0:  # time is up, or the run was aborted
                break
    except BlockingIOError as exc:
        raise RunError(f"no reply within the socket timeout after {len(lat)} requests") from exc
    finally:
        sock.close()
    t_end = now()
    sh.pub_counts[idx] = len(lat)
    return {
        "latencies_ns": lat,
        "t_start": t0,
        "t_end": t_end,
        "cpu": time.process_time() - cpu0,
    }


def js_publisher(spec: JsPubSpec, idx: int, sh: Shared, start_timeout: float) -> dict[str, Any]:
    """Publish to a stream subject with a reply subject; every PubAck is one MSG on it.

    The acks are counted, not parsed (a PubAck holds no `MSG `). With a window of 1 each
    publish waits for its ack and the round trip is timed; otherwise batches of publishes go
    out while no more than `window` are unacknowledged."""
    sock, _ = proto.connect(spec.host, spec.port, name="bench-js-pub")
    inbox = "_INBOX.bench.acks"
    sock.sendall(f"SUB {inbox} 1\r\n".encode() + proto.PING)
    proto.wait_pong(sock, time.monotonic() + start_timeout)
    frame = proto.pub_frame(spec.subject, proto.payload(spec.size), inbox)
    batch = 1 if spec.window == 1 else max(1, spec.window // 4)
    chunk = frame * batch
    _report(sh, "pub", idx, "ready")
    t0, cpu0 = _wait_go(sh, start_timeout)
    deadline = t0 + spec.duration
    now = time.monotonic
    clock = time.perf_counter_ns
    recv, sendall = sock.recv, sock.sendall
    target = sh.target
    sent = acked = 0
    carry = b""
    lat: list[int] = []
    try:
        t_sent = 0
        while now() < deadline and sent < spec.max_ops and target.value < 0:
            while sent - acked + batch <= spec.window:
                t_sent = clock()
                sendall(chunk)
                sent += batch
            data = carry + recv(RECV_BUF)
            if b"-ERR" in data:
                proto._check_err(data)
            acked += data.count(MSG)
            carry = data[-3:]
            if spec.window == 1 and acked == sent:
                lat.append(clock() - t_sent)
        drain = now() + 30.0
        while acked < sent:
            if now() > drain:
                raise RunError(f"{sent - acked} publishes never acknowledged")
            data = carry + proto.recv_some(sock)
            acked += data.count(MSG)
            carry = data[-3:]
    except BlockingIOError as exc:
        raise RunError(f"no PubAck within the socket timeout after {acked} acks") from exc
    finally:
        sock.close()
    t_end = now()
    sh.pub_counts[idx] = acked
    return {
        "sent": sent,
        "acked": acked,
        "latencies_ns": lat[100:] if len(lat) > 200 else lat,
        "t_start": t0,
        "t_end": t_end,
        "cpu": time.process_time() - cpu0,
    }


def responder(spec: RespSpec, idx: int, sh: Shared, start_timeout: float) -> dict[str, Any]:
    sock, _ = proto.connect(spec.host, spec.port, name="bench-responder")
    sock.sendall(f"SUB {spec.subject} 1\r\n".encode() + proto.PING)
    proto.wait_pong(sock, time.monotonic() + start_timeout)
    proto.set_io_timeout(sock, 0.01)
    _report(sh, "sub", idx, "ready")
    t0, cpu0 = _wait_go(sh, start_timeout)
    reader = proto.MsgReader()
    handled = 0
    try:
        while sh.target.value < 0:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                if time.monotonic() - t0 > spec.max_seconds:
                    raise RunError(
                        f"responder still running after {spec.max_seconds:.0f}s"
                    ) from None
                continue
            if not data:
                raise proto.ProtocolError("server closed the responder connection")
            msgs, pings = reader.feed(data)
            out = [proto.PONG * pings] if pings else []
            for _subject, reply, body in msgs:
                if reply:
                    out.append(proto.pub_frame(reply.decode(), body))
            if out:
                sock.sendall(b"".join(out))
            handled += len(msgs)
    finally:
        sock.close()
    return {
        "received": handled,
        "t_start": t0,
        "t_end": time.monotonic(),
        "cpu": time.process_time() - cpu0,
    }


@dataclass
class Job:
    """Everything one measured run needs: the drivers (publishers/requesters) and the sinks."""

    drivers: Sequence[tuple[Callable[..., dict[str, Any]], Any]]
    sinks: Sequence[tuple[Callable[..., dict[str, Any]], Any]] = ()
    duration: float = 3.0
    start_timeout: float = 30.0
    # Called repeatedly while the sinks wait for a cluster probe (see SubSpec.probe_subject).
    probe: Callable[[], None] | None = None


@dataclass
class JobResult:
    drivers: list[dict[str, Any]]
    sinks: list[dict[str, Any]]
    t_go: float
    t_done: float
    server_cpu: float  # seconds of CPU used by all server processes during the run
    per_server_cpu: list[float]
    machine_busy: float  # seconds of CPU used on the whole machine (all cores) during the run
    machine_steal: float  # seconds stolen by the hypervisor during the run


def run_job(job: Job, cpu_of: Sequence[Callable[[], float]]) -> JobResult:
    """Fork the workers, synchronise their start, collect their results (all bounded)."""
    sh = Shared(len(job.drivers), len(job.sinks))
    procs: list[Any] = []
    roles: list[tuple[str, int, Callable[..., dict[str, Any]], Any]] = [
        ("sub", i, fn, spec) for i, (fn, spec) in enumerate(job.sinks)
    ] + [("pub", i, fn, spec) for i, (fn, spec) in enumerate(job.drivers)]
    try:
        for role, idx, fn, spec in roles:
            p = CTX.Process(
                target=_worker,
                args=(fn, role, idx, sh, spec, job.start_timeout),
                name=f"bench-{role}-{idx}",
                daemon=True,
            )
            p.start()
            procs.append(p)

        def take(deadline: float, on_idle: Callable[[], None] | None = None) -> dict[str, Any]:
            while True:
                try:
                    msg: dict[str, Any] = sh.results.get(timeout=0.02 if on_idle else 0.25)
                except queue.Empty:
                    if time.monotonic() > deadline:
                        raise RunError("timed out waiting for the load generator workers") from None
                    if on_idle:
                        on_idle()
                    continue
                if msg["kind"] == "error":
                    raise RunError(
                        f"{msg['role']}[{msg['idx']}] failed: {msg['error']}\n{msg.get('tb', '')}"
                    )
                return msg

        # 1. Everyone connected (and subscribed, and cluster interest propagated).
        deadline = time.monotonic() + job.start_timeout
        ready = 0
        probing = False
        while ready < len(roles):
            msg = take(deadline, job.probe if probing else None)
            if msg["kind"] == "probe":
                probing = True
            elif msg["kind"] == "ready":
                ready += 1
        # 2. Go.
        cpu_before = [f() for f in cpu_of]
        mach_before = machine_cpu()
        t_go = time.monotonic()
        sh.go.set()
        # 3. Drivers finish on their own (count or duration); then tell sinks what to expect.
        deadline = t_go + job.duration + 60.0
        drivers: list[dict[str, Any] | None] = [None] * len(job.drivers)
        sinks: list[dict[str, Any] | None] = [None] * len(job.sinks)
        while any(d is None for d in drivers):
            msg = take(deadline)
            (drivers if msg["role"] == "pub" else sinks)[msg["idx"]] = msg
        sh.target.value = sum(int(d.get("sent", 0)) for d in drivers if d)
        # 4. Sinks drain (they stop on the target or after 1 s without data).
        deadline = time.monotonic() + 60.0
        while any(s is None for s in sinks):
            msg = take(deadline)
            sinks[msg["idx"]] = msg
        t_done = time.monotonic()
        cpu_after = [f() for f in cpu_of]
        mach_after = machine_cpu()
    finally:
        if sh.target.value < 0:
            sh.target.value = 0  # failed run: sinks stop at their next idle tick
        sh.go.set()  # workers still waiting to start give up at once (they see target >= 0)
        end = time.monotonic() + 5.0
        for p in procs:
            p.join(timeout=max(0.0, end - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=5.0)
        sh.results.close()
    per = [b - a for a, b in zip(cpu_before, cpu_after, strict=True)]
    return JobResult(
        drivers=[d for d in drivers if d],
        sinks=[s for s in sinks if s],
        t_go=t_go,
        t_done=t_done,
        server_cpu=sum(per),
        per_server_cpu=per,
        machine_busy=mach_after[0] - mach_before[0],
        machine_steal=mach_after[2] - mach_before[2],
    )
