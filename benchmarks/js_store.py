"""Micro-benchmark of the JetStream stores (not a test): ``python -m benchmarks.js_store``.

Measures, for the memory and the file store: store_msg, load_msg (random), load_next_msg
(a consumer walking the stream), stores under limits (discard old at max_msgs, KV-style
max_msgs_per_subject=1), memory per message of the memory store, and how long the file store
takes to open (recover) a stream of N messages.

Each measurement runs in a fresh process (memory figures are RSS deltas of that process).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

MSG = b"0123456789abcdef"  # 16 bytes
SUBJ = b"bench.orders"


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _open(kind: str, d: str, **limits: int):  # type: ignore[no-untyped-def]
    from pynats_server.jetstream.store import (
        FileStore,
        FileStoreConfig,
        MemStore,
        StorageType,
        StoreConfig,
    )

    if kind == "mem":
        return MemStore(StoreConfig(storage=StorageType.MEMORY, **limits))
    return FileStore(FileStoreConfig(d), StoreConfig(storage=StorageType.FILE, **limits))


def _rate(n: int, secs: float) -> dict[str, float]:
    return {"ops_per_s": round(n / secs), "us_per_op": round(secs / n * 1e6, 2)}


def case_store_load(kind: str, n: int, d: str) -> dict[str, object]:
    s = _open(kind, d)
    store = s.store_msg
    t = time.perf_counter()
    for _ in range(n):
        store(SUBJ, b"", MSG)
    out: dict[str, object] = {"store_msg": _rate(n, time.perf_counter() - t)}
    seqs = [random.randrange(1, n + 1) for _ in range(min(n, 200_000))]
    load = s.load_msg
    t = time.perf_counter()
    for q in seqs:
        load(q)
    out["load_msg_random"] = _rate(len(seqs), time.perf_counter() - t)
    nxt = s.load_next_msg
    m = min(n, 200_000)
    t = time.perf_counter()
    seq = 0
    for _ in range(m):
        seq = nxt(b"bench.*", True, seq + 1)[1]
    out["load_next_msg"] = _rate(m, time.perf_counter() - t)
    s.stop()
    return out


def case_limits(kind: str, n: int, d: str) -> dict[str, object]:
    out: dict[str, object] = {}
    s = _open(kind, d, max_msgs=10_000)
    store = s.store_msg
    t = time.perf_counter()
    for _ in range(n):
        store(SUBJ, b"", MSG)
    out["store_msg_discard_old"] = _rate(n, time.perf_counter() - t)
    s.stop()
    shutil.rmtree(d, ignore_errors=True)
    s = _open(kind, d, max_msgs_per_subject=1)
    keys = [b"$KV.b.k%d" % i for i in range(10_000)]
    t = time.perf_counter()
    for i in range(n):
        s.store_msg(keys[i % 10_000], b"", MSG)
    out["store_msg_kv_history_1"] = _rate(n, time.perf_counter() - t)
    if kind == "file":
        out["kv_disk_bytes"] = s.disk_usage()
    s.stop()
    return out


def case_memory(n: int) -> dict[str, object]:
    from pynats_server.jetstream.store import MemStore, StoreConfig

    before = _rss()
    s = MemStore(StoreConfig())
    store = s.store_msg
    for _ in range(n):
        store(SUBJ, b"", MSG)
    rss = _rss() - before
    return {
        "msgs": n,
        "rss_bytes_per_msg": round(rss / n, 1),
        "arrays_and_segments_bytes_per_msg": round(s.memory_usage() / n, 1),
    }


def case_recovery(n: int, d: str) -> dict[str, object]:
    s = _open("file", d)
    store = s.store_msg
    for i in range(n):
        store(b"bench.%d" % (i % 100), b"", MSG)
    s.stop()
    mdir = os.path.join(d, "msgs")
    names = os.listdir(mdir)
    blocks = sum(os.path.getsize(os.path.join(mdir, f)) for f in names if f.endswith(".blk"))
    index = os.path.getsize(os.path.join(mdir, "index.db"))
    before = _rss()
    t = time.perf_counter()
    s = _open("file", d)
    secs = time.perf_counter() - t
    rss = _rss() - before
    assert s.state().msgs == n and s.recovered_from_snapshot
    # Now as after a kill -9: no index.db, the blocks are replayed.
    s._close_fds()  # let go of the files without stop(), which would write index.db
    t = time.perf_counter()
    s = _open("file", d)
    replay = time.perf_counter() - t
    assert s.state().msgs == n and not s.recovered_from_snapshot
    return {
        "msgs": n,
        "open_seconds_with_index_db": round(secs, 2),
        "open_seconds_replaying_blocks": round(replay, 2),
        "block_bytes_per_msg": round(blocks / n, 1),
        "index_db_bytes_per_msg": round(index / n, 1),
        "rss_bytes_per_msg": round(rss / n, 1),
    }


def _child(case: str, arg: str, n: int) -> dict[str, object]:
    d = tempfile.mkdtemp(prefix="jsbench-")
    try:
        if case == "store_load":
            return case_store_load(arg, n, os.path.join(d, "s"))
        if case == "limits":
            return case_limits(arg, n, os.path.join(d, "s"))
        if case == "memory":
            return case_memory(n)
        if case == "recovery":
            return case_recovery(n, os.path.join(d, "s"))
        raise SystemExit(f"unknown case {case}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(case: str, arg: str, n: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.js_store", "--child", case, arg, str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.js_store", description=__doc__)
    p.add_argument("-n", type=int, default=200_000, help="messages per throughput case")
    p.add_argument("--big", type=int, default=1_000_000, help="messages for memory/recovery")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(_child(a.child[0], a.child[1], int(a.child[2]))))
        return
    results: dict[str, object] = {}
    for kind in ("mem", "file"):
        results[f"{kind}.store_load"] = run("store_load", kind, a.n)
        results[f"{kind}.limits"] = run("limits", kind, a.n)
    for n in sorted({100_000, a.big}):
        results[f"mem.memory.{n}"] = run("memory", "", n)
    results[f"file.recovery.{a.big}"] = run("recovery", "", a.big)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
