"""Run the selected scenarios against the selected targets, alternating targets."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import machine, servers
from .report import OTHER_LOAD_PCT
from .scenarios import Scenario, Settings
from .servers import Target


@dataclass
class Plan:
    scenarios: list[Scenario]
    targets: list[Target]
    runs: int
    settings: Settings
    idle_wait: float = 0.0  # seconds to wait, before each run, for the machine to be idle


def machine_load(sample: float = 0.3) -> float:
    """CPU in use on the whole machine right now, % of one core (sampled over ``sample`` s)."""
    b0, _, _ = servers.machine_cpu()
    time.sleep(sample)
    b1, _, _ = servers.machine_cpu()
    return 100.0 * (b1 - b0) / sample


def wait_idle(max_wait: float, threshold: float = 25.0) -> float:
    """Wait (at most ``max_wait`` s) until other programs leave the CPUs alone; return the load."""
    deadline = time.monotonic() + max_wait
    load = machine_load()
    while load > threshold and time.monotonic() < deadline:
        load = machine_load()
    return load


def run_once(
    sc: Scenario, target: Target, st: Settings, workdir: Path, idle_wait: float = 0.0
) -> dict[str, Any]:
    load_before = wait_idle(idle_wait) if idle_wait > 0 else None
    t0 = time.monotonic()
    try:
        with servers.running(target, workdir, nodes=sc.nodes, tls=sc.tls, jetstream=sc.jetstream,
                                 extra=sc.server_args) as srvs:
            result = sc.run(srvs, st)
    except Exception as exc:  # a failed run is recorded, the benchmark goes on
        return {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "elapsed_s": time.monotonic() - t0,
        }
    result["elapsed_s"] = time.monotonic() - t0
    if load_before is not None:
        result["machine_load_before_pct"] = load_before
    return result


def _disturbed(res: dict[str, Any]) -> bool:
    return "error" not in res and res.get("other_cpu_pct", 0.0) > OTHER_LOAD_PCT


def _summary(sc: Scenario, res: dict[str, Any]) -> str:
    if "error" in res:
        return "ERROR " + res["error"].splitlines()[0][:150]
    parts = []
    for m in sc.metrics:
        v = res.get(m.key)
        if isinstance(v, (int, float)):
            parts.append(f"{m.key}={v:,.1f}")
    if "server_cpu_pct" in res:
        parts.append(
            f"cpu srv={res['server_cpu_pct']:.0f}% gen={res['gen_cpu_pct']:.0f}%"
            f" (busiest {res['gen_cpu_pct_busiest']:.0f}%) machine={res['machine_busy_pct']:.0f}%"
        )
        if res.get("steal_pct", 0) >= 1:
            parts.append(f"steal={res['steal_pct']:.0f}%")
    if res.get("loss_pct"):
        parts.append(f"loss={res['loss_pct']:.2f}%")
    return " ".join(parts)


def execute(plan: Plan, log: Any = print) -> dict[str, Any]:
    """Run the plan; return the raw results document (see report.py for its use)."""
    started = dt.datetime.now(dt.timezone.utc)
    t_start = time.monotonic()
    available = [t for t in plan.targets if t.available]
    for t in plan.targets:
        if not t.available:
            log(f"NOTE: {t.name}: {t.note}")
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        sc.name: {t.name: [] for t in available} for sc in plan.scenarios
    }
    workdir = Path(tempfile.mkdtemp(prefix="pynats-bench-"))
    failed = False
    try:
        for sc in plan.scenarios:
            for r in range(plan.runs):
                # Rotate the order every run so no target always goes first.
                order = (
                    available[r % len(available) :] + available[: r % len(available)]
                    if available
                    else []
                )
                for t in order:
                    res = run_once(sc, t, plan.settings, workdir, plan.idle_wait)
                    attempts = 1
                    # On a shared machine (--wait-idle), redo a run that other programs disturbed.
                    while plan.idle_wait > 0 and attempts < 3 and _disturbed(res):
                        log(f"         {sc.name} {t.name}: disturbed by other programs, again")
                        again = run_once(sc, t, plan.settings, workdir, plan.idle_wait)
                        attempts += 1
                        if "error" not in again and again["other_cpu_pct"] < res["other_cpu_pct"]:
                            res = again
                    res["attempts"] = attempts
                    failed |= "error" in res
                    raw[sc.name][t.name].append(res)
                    log(
                        f"[{time.monotonic() - t_start:6.1f}s] {sc.name:<16} {t.name:<15} run {r + 1}/{plan.runs}: {_summary(sc, res)}"
                    )
    finally:
        servers.stop_all()
        if failed:
            log(f"(server logs kept in {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return {
        "started_utc": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - t_start, 1),
        "settings": {
            "runs": plan.runs,
            "duration_s": plan.settings.duration,
            "quick": plan.settings.quick,
            "idle_wait_s": plan.idle_wait,
        },
        "machine": machine.describe(plan.targets),
        "targets": {
            t.name: {"available": t.available, "command": list(t.command), "note": t.note}
            for t in plan.targets
        },
        "scenarios": [
            {
                "name": sc.name,
                "title": sc.title,
                "description": sc.description,
                "nodes": sc.nodes,
                "metrics": [vars(m) for m in sc.metrics],
                "runs": raw[sc.name],
            }
            for sc in plan.scenarios
        ],
    }
