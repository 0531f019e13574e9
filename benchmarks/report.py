"""Summarise raw results: medians, pynats/Go ratios, console/Markdown tables, JSON, chart."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BASELINE = "go"
# CPU (% of one core) used during a run by neither the server nor the load generator above
# which the run is reported as disturbed; kernel/accounting noise stays well below it.
OTHER_LOAD_PCT = 30.0


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (scenario, metric) with medians per target and ratios to Go."""
    targets = [name for name, t in doc["targets"].items() if t["available"]]
    rows: list[dict[str, Any]] = []
    for sc in doc["scenarios"]:
        cpu: dict[str, dict[str, float | None]] = {}
        errors: dict[str, int] = {}
        loss: dict[str, float] = {}
        disturbed: dict[str, bool] = {}
        for t in targets:
            runs = sc["runs"].get(t, [])
            ok = [r for r in runs if "error" not in r]
            errors[t] = len(runs) - len(ok)
            loss[t] = max((r.get("loss_pct", 0.0) for r in ok), default=0.0)
            busy = sum(1 for r in ok if r.get("other_cpu_pct", 0.0) > OTHER_LOAD_PCT)
            disturbed[t] = bool(ok) and busy * 2 > len(ok)
            cpu[t] = {
                k: _median([r[k] for r in ok if k in r])
                for k in ("server_cpu_pct", "gen_cpu_pct", "gen_cpu_pct_busiest")
            }
        for i, m in enumerate(sc["metrics"]):
            med: dict[str, float | None] = {}
            values: dict[str, list[float]] = {}
            for t in targets:
                values[t] = [
                    r[m["key"]] for r in sc["runs"].get(t, []) if "error" not in r and m["key"] in r
                ]
                med[t] = _median(values[t])
            base = med.get(BASELINE)
            ratio = {
                t: (med[t] / base if med[t] is not None and base else None)
                for t in targets
                if t != BASELINE
            }
            rows.append(
                {
                    "scenario": sc["name"],
                    "title": sc["title"],
                    "metric": m["key"],
                    "label": m["label"],
                    "unit": m["unit"],
                    "higher_is_better": m["higher_is_better"],
                    "primary": i == 0,
                    "median": med,
                    "values": values,
                    "ratio_to_go": ratio,
                    "cpu": cpu if i == 0 else {},
                    "errors": errors,
                    "max_loss_pct": loss,
                    "disturbed": disturbed,
                }
            )
    return rows


# -- formatting ----------------------------------------------------------------------------------


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "B":
        return f"{v / 1024:.1f} KiB" if abs(v) >= 10 * 1024 else f"{v:.0f} B"
    if unit == "us":
        return f"{v:.1f}"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.2f}{suffix}"
    return f"{v:.0f}"


def _cell(row: dict[str, Any], t: str, available: set[str]) -> str:
    if t not in available:
        return "skipped"
    if row["errors"].get(t) and row["median"].get(t) is None:
        return "failed"
    s = fmt_value(row["median"].get(t), row["unit"])
    if row["errors"].get(t):
        s += " (!)"
    if row["max_loss_pct"].get(t, 0.0) > 0.1 and row["metric"] == "deliveries_per_s":
        s += " (loss)"
    if row["disturbed"].get(t):
        s += " (busy)"
    return s


def _cpu_cell(row: dict[str, Any], t: str) -> str:
    c = row["cpu"].get(t)
    if not c or c.get("server_cpu_pct") is None:
        return ""
    return f"{c['server_cpu_pct']:.0f} / {c['gen_cpu_pct']:.0f} / {c['gen_cpu_pct_busiest']:.0f}"


def table(doc: dict[str, Any], rows: list[dict[str, Any]], *, markdown: bool) -> str:
    names = list(doc["targets"])
    available = {n for n, t in doc["targets"].items() if t["available"]}
    others = [n for n in names if n != BASELINE]
    head = [
        "scenario",
        "metric",
        *names,
        *[f"{n}/go" for n in others],
        *[f"CPU% {n}" for n in names],
    ]
    body: list[list[str]] = []
    for row in rows:
        unit = "µs" if row["unit"] == "us" and markdown else row["unit"]
        arrow = "↑" if row["higher_is_better"] else "↓"
        ratios = []
        for n in others:
            r = row["ratio_to_go"].get(n)
            ratios.append(f"{r:.2f}x" if r is not None else "-")
        body.append(
            [
                row["scenario"] if row["primary"] else "",
                f"{row['label']} [{unit}] {arrow}",
                *[_cell(row, n, available) for n in names],
                *ratios,
                *[_cpu_cell(row, n) for n in names],
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(head)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*r) for r in body]
    return "\n".join(out)


def machine_lines(doc: dict[str, Any]) -> list[str]:
    m = doc["machine"]
    lines = [
        f"- CPU: {m['cpu_model']}, {m['cpus']} cores ({m['cpus_usable']} usable), "
        f"{m['memory_bytes'] / 2**30:.0f} GiB RAM, {m['kernel']}",
        f"- Python: {m['python']}, uvloop {m['uvloop']}, pynats-server {m['pynats_server']}",
    ]
    lines += [f"- {name}: {ver or 'unknown version'}" for name, ver in m["servers"].items()]
    s = doc["settings"]
    lines.append(
        f"- Settings: {s['runs']} run(s) per scenario and target (median shown), "
        f"{s['duration_s']:g} s per throughput run{', quick mode' if s['quick'] else ''}; "
        f"started {doc['started_utc']}, took {doc['elapsed_s']:.0f} s"
    )
    return lines


NOTES = """\
How to read: ↑ higher is better, ↓ lower is better. `X/go` is the pynats median divided by
the Go median of the same metric (so for ↓ metrics a ratio above 1 means pynats is slower).
`CPU%` is `server / load generator total / busiest generator process`, each in percent of
one core over the run (the machine has 2 cores = 200%). A busiest-generator figure near
100% means the load generator, not the server, was the limit. See benchmarks/README.md.
(!) some runs failed, (loss) subscribers received < 99.9% of the messages published,
(busy) most runs shared the CPUs with other programs (see Problems)."""


def problems(doc: dict[str, Any]) -> list[str]:
    """Skipped targets and the first error of each failing (scenario, target)."""
    out = [f"{name}: {t['note']}" for name, t in doc["targets"].items() if not t["available"]]
    disturbed: list[str] = []
    n_disturbed = n_runs = 0
    for sc in doc["scenarios"]:
        for target, runs in sc["runs"].items():
            n_runs += len(runs)
            errs = [r["error"] for r in runs if "error" in r]
            if errs:
                first = errs[0].splitlines()[0][:200]
                out.append(
                    f"{sc['name']} on {target}: {len(errs)}/{len(runs)} runs failed ({first})"
                )
            busy = [r["other_cpu_pct"] for r in runs if r.get("other_cpu_pct", 0) > OTHER_LOAD_PCT]
            if busy:
                n_disturbed += len(busy)
                disturbed.append(f"{sc['name']}/{target} {len(busy)}x up to {max(busy):.0f}%")
    if disturbed:
        out.append(
            f"{n_disturbed}/{n_runs} runs shared the machine with other programs (CPU used by neither"
            f" the server nor the generator above {OTHER_LOAD_PCT:.0f}% of a core; their numbers are"
            f" low and noisy): " + "; ".join(disturbed)
        )
    return out


def markdown(doc: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    notes = problems(doc)
    return "\n".join(
        [
            "### pynats-server vs nats-server",
            "",
            *machine_lines(doc),
            "",
            table(doc, rows, markdown=True),
            "",
            NOTES,
            *(["", "Problems:", *(f"- {n}" for n in notes)] if notes else []),
            "",
        ]
    )


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _bars(ax: Any, rows: list[dict[str, Any]], names: list[str], value: Any, label: Any) -> None:
    """Horizontal grouped bars: one group per row, one bar per target, value text at the end."""
    h = 0.8 / max(1, len(names))
    for j, n in enumerate(names):
        pts = [(i + j * h, v, label(r, n, v)) for i, r in enumerate(rows) if (v := value(r, n))]
        if not pts:
            continue
        ax.barh([p[0] for p in pts], [p[1] for p in pts], height=h, color=COLORS.get(n), label=n)
        for y, v, text in pts:
            ax.text(v, y, " " + text, va="center", fontsize=7)
    ax.set_yticks(
        [i + 0.4 - h / 2 for i in range(len(rows))], [_row_name(r) for r in rows], fontsize=8
    )
    ax.set_ylim(len(rows) - 0.1, -0.3)
    ax.set_xscale("log")
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


def _compact(v: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


COLORS = {"go": "#00add8", "pynats-uvloop": "#2ca02c", "pynats-asyncio": "#ff7f0e"}


def _row_name(r: dict[str, Any]) -> str:
    return r["scenario"] if r["primary"] else f"{r['scenario']} ({r['metric']})"


def chart(doc: dict[str, Any], rows: list[dict[str, Any]], path: Path) -> str | None:
    """Write the PNG; return a note instead when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return "matplotlib not installed (pip install matplotlib): chart skipped"
    names = [n for n, t in doc["targets"].items() if t["available"]]
    others = [n for n in names if n != BASELINE]
    tput = [r for r in rows if r["unit"] in ("msgs/s", "ops/s") and r["primary"]]
    rel = [
        r
        for r in rows
        if (r["primary"] or not r["higher_is_better"])
        and any(v is not None for v in r["ratio_to_go"].values())
    ]
    height = max(5.0, 0.32 * max(len(tput) * len(names), len(rel) * max(1, len(others))) + 2.0)
    fig, axes = plt.subplots(1, 2, figsize=(16, height))
    ax = axes[0]
    _bars(
        ax,
        tput,
        names,
        lambda r, n: r["median"].get(n),
        lambda r, n, v: fmt_value(v, r["unit"]),
    )
    lows = [r["median"][n] for r in tput for n in names if r["median"].get(n)]
    if lows:
        ax.set_xlim(10 ** math.floor(math.log10(min(lows) / 2)), max(lows) * 4)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))
    ax.set_xlabel("messages (deliveries, or ops) per second, median, log scale")
    ax.set_title("Throughput")
    ax = axes[1]
    if rel and others:

        def rel_value(r: dict[str, Any], n: str) -> float | None:
            v = r["ratio_to_go"].get(n)
            return None if not v else (v if r["higher_is_better"] else 1 / v)

        _bars(ax, rel, others, rel_value, lambda r, n, v: f"{v:.2f}")
        vals = [x for r in rel for n in others if (x := rel_value(r, n))]
        ax.set_xlim(min(0.5, 10 ** math.floor(math.log10(min(vals) / 2))), max(2.0, max(vals) * 3))
        ax.axvline(1.0, color="black", lw=1)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_xlabel(
            "pynats relative to Go (Go = 1; > 1 is better than Go; latency and memory inverted)"
        )
    else:
        ax.text(
            0.5, 0.5, "no pynats-server results", ha="center", va="center", transform=ax.transAxes
        )
        ax.set_axis_off()
    ax.set_title("pynats-server relative to Go")
    m = doc["machine"]
    fig.suptitle(
        f"pynats-server vs nats-server -- {m['cpu_model']}, {m['cpus']} cores, {m['python']}, "
        f"{doc['settings']['runs']} run(s) per point, medians"
    )
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return None


def write(
    doc: dict[str, Any], rows: list[dict[str, Any]], name: str, *, with_chart: bool = True,
    dated: bool = True,
) -> list[Path]:
    """Write <name>.json, a dated copy (unless `dated` is off), <name>.md and <name>.png into results/."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = doc["started_utc"].replace(":", "").replace("-", "").replace("+0000", "")
    full = {**doc, "summary": rows}
    data = (json.dumps(full, indent=1, sort_keys=False) + "\n").encode()
    paths = [RESULTS_DIR / f"{name}.json"]
    if dated:
        paths.append(RESULTS_DIR / f"{stamp}{'-quick' if doc['settings']['quick'] else ''}.json")
    for p in paths:
        _atomic_write(p, data)
    md = RESULTS_DIR / f"{name}.md"
    _atomic_write(md, markdown(doc, rows).encode())
    paths.append(md)
    if with_chart:
        png = RESULTS_DIR / f"{name}.png"
        note = chart(doc, rows, png)
        if note:
            print("NOTE:", note)
        else:
            paths.append(png)
    return paths
