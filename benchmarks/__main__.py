"""``python -m benchmarks``: run the benchmark suite and write results/."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from . import report, runner, scenarios, servers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark pynats-server (uvloop and asyncio loops) against the Go nats-server.",
    )
    p.add_argument(
        "--quick", action="store_true", help="headline scenarios only, 1 short run each (~1 minute)"
    )
    p.add_argument(
        "--targets",
        default=",".join(servers.TARGET_NAMES),
        help="comma-separated, from: %(default)s",
    )
    p.add_argument(
        "-k",
        dest="filter",
        action="append",
        help="only scenarios whose name contains this (repeatable, or comma-separated)",
    )
    p.add_argument("--runs", type=int, help="runs per scenario and target (default 3, quick 1)")
    p.add_argument(
        "--duration", type=float, help="seconds of load per throughput run (default 3, quick 1)"
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other programs to leave the CPUs idle",
    )
    p.add_argument(
        "--pynats", help="path of the pynats-server executable (default: next to this python)"
    )
    p.add_argument(
        "--out",
        help="results name: results/<out>.{json,md,png}, no dated copy (default latest, quick: latest-quick)",
    )
    p.add_argument("--no-chart", action="store_true", help="do not draw the PNG")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return p.parse_args(argv)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for sc in scenarios.SCENARIOS:
            print(f"{sc.name:<18} {'quick' if sc.quick else '     '}  {sc.title}: {sc.description}")
        return 0
    patterns = [p for f in args.filter or [] for p in f.split(",") if p]
    selected = scenarios.select(patterns, args.quick)
    if not selected:
        print("no scenario matches", patterns, file=sys.stderr)
        return 2
    try:
        targets = servers.discover_targets([t for t in args.targets.split(",") if t], args.pynats)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not any(t.available for t in targets):
        print("no target available:", "; ".join(t.note for t in targets), file=sys.stderr)
        return 2
    settings = scenarios.Settings(
        duration=args.duration or (1.0 if args.quick else 3.0),
        quick=args.quick,
    )
    plan = runner.Plan(
        selected, targets, args.runs or (1 if args.quick else 3), settings, args.wait_idle
    )
    signal.signal(signal.SIGTERM, _terminate)
    t0 = time.monotonic()
    print(
        f"{len(selected)} scenarios x {sum(t.available for t in targets)} targets x {plan.runs} runs, "
        f"{settings.duration:g} s per throughput run",
        flush=True,
    )
    try:
        doc = runner.execute(plan, log=lambda s: print(s, flush=True))
    except KeyboardInterrupt:
        servers.stop_all()
        print("interrupted", file=sys.stderr)
        return 130
    rows = report.summarise(doc)
    print()
    print(report.table(doc, rows, markdown=False))
    print()
    print("\n".join(report.machine_lines(doc)))
    print(report.NOTES)
    for line in report.problems(doc):
        print("PROBLEM:", line)
    name = args.out or ("latest-quick" if args.quick else "latest")
    # A named run (CI's ci-quick) keeps no dated copy: it would pile up in the tree.
    for path in report.write(doc, rows, name, with_chart=not args.no_chart, dated=not args.out):
        print("wrote", path)
    print(f"total {time.monotonic() - t0:.0f} s")
    failed = sum(v for r in rows if r["primary"] for v in r["errors"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
