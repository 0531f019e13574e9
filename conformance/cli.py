"""``python -m conformance``: run the conformance cases against one or more servers."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from . import deviations as devmod
from . import report
from .model import Case
from .registry import load_all
from .runner import Result, Runner
from .targets import Target, discover, registry

HERE = Path(__file__).resolve().parent
BUILTIN_ORDER = ["go214", "go29", "pynats"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Conformance cases for pynats-server against nats-server (see conformance/README.md).",
    )
    p.add_argument("--targets", help="comma-separated target names (default: every available one)")
    p.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="add a server executable as a target (repeatable; NAME defaults to the file name)",
    )
    p.add_argument(
        "-k",
        dest="filters",
        action="append",
        default=[],
        metavar="SUBSTR",
        help="only cases whose name contains SUBSTR (repeatable: any of them)",
    )
    p.add_argument(
        "--jobs", type=int, default=12, help="(case, target) runs in parallel (default 12)"
    )
    p.add_argument(
        "--skip-requires",
        action="append",
        default=[],
        metavar="FEATURE",
        help="report cases that need FEATURE (e.g. jetstream; `requires` in the case) as n/a "
        "instead of running them (repeatable, or comma-separated)",
    )
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="where report.md/report.json go (default: conformance/; with -k only when given)",
    )
    p.add_argument(
        "--problems", action="store_true", help="terminal table: only rows with FAIL/dev"
    )
    p.add_argument("--deviations", type=Path, default=devmod.DEFAULT_PATH, help=argparse.SUPPRESS)
    p.add_argument(
        "--probe",
        metavar="BYTES",
        help="send BYTES (transcript escapes, e.g. 'PING\\r\\n') to a fresh server of each "
        "target and print what comes back; for exploring behaviour",
    )
    return p


def _select(targets: dict[str, Target], wanted: str | None) -> tuple[list[str], list[str]]:
    """(selected names in display order, explicitly requested but unknown/unavailable)."""
    order = [n for n in BUILTIN_ORDER if n in targets] + [
        n for n in targets if n not in BUILTIN_ORDER
    ]
    if not wanted:
        return order, []
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    bad = [n for n in names if n not in targets or not targets[n].available]
    return [n for n in names if n in targets], bad


def _filter(cases: list[Case], filters: list[str]) -> list[Case]:
    if not filters:
        return cases
    return [c for c in cases if any(f in c.name for f in filters)]


def _install_kill_handlers() -> None:
    atexit.register(registry().kill_all_now)

    def on_term(signum: int, _frame: object) -> None:
        registry().kill_all_now()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)


async def _probe(data: str, targets: dict[str, Target], selected: list[str], workdir: Path) -> None:
    from .conn import Conn
    from .model import unescape
    from .targets import ServerProcess, ServerSpec
    from .util import escape

    for name in selected:
        t = targets[name]
        if not t.available:
            print(f"{name}: unavailable ({t.why_unavailable})")
            continue
        s = await ServerProcess(t, ServerSpec(), workdir).start()
        try:
            c = await Conn.open("c", "127.0.0.1", s.client_port)
            c.autopong = False
            await c.send(unescape(data))
            out = await c.collect(0.4)
            print(f"{name}: {escape(out, None)}")
            await c.close()
        finally:
            await s.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # asyncio's child watcher warns about processes killed on the interrupt path: not useful here.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    targets = discover(args.server)
    selected, bad = _select(targets, args.targets)
    for n in bad:
        why = targets[n].why_unavailable if n in targets else "unknown target"
        print(f"warning: target {n} is unavailable: {why}", file=sys.stderr)
    try:
        cases = sorted(_filter(load_all(), args.filters), key=lambda c: c.group)
        devs = devmod.load(args.deviations)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for c in cases:
            extra = " (differential)" if c.differential else ""
            if c.requires:
                extra += f" (requires {','.join(sorted(c.requires))})"
            print(f"{c.name:55s} {c.origin}{extra}")
        print(f"{len(cases)} cases", file=sys.stderr)
        return 0
    if not cases:
        print("no cases selected", file=sys.stderr)
        return 2

    for n in selected:
        t = targets[n]
        state = (
            f"{t.version} [{t.profile}] {t.path}"
            if t.available
            else f"UNAVAILABLE ({t.why_unavailable})"
        )
        print(f"target {n:8s} {state}")

    _install_kill_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="conformance-"))
    done = [0]
    total = len(cases) * len(selected)

    def progress(r: Result) -> None:
        done[0] += 1
        if sys.stderr.isatty():
            print(f"\r{done[0]}/{total} ", end="", file=sys.stderr, flush=True)

    if args.probe is not None:
        asyncio.run(_probe(args.probe, targets, selected, workdir))
        return 0

    skip = frozenset(f.strip() for item in args.skip_requires for f in item.split(",") if f.strip())
    runner = Runner(
        cases, targets, selected, workdir, args.jobs, devs, progress, skip_requires=skip
    )
    t0 = time.monotonic()
    try:
        results = asyncio.run(_run(runner))
    except KeyboardInterrupt:
        registry().kill_all_now()
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - t0
    if sys.stderr.isatty():
        print("\r", end="", file=sys.stderr)

    report.terminal_table(cases, results, selected, only_problems=args.problems)
    fails = report.failures_text(cases, results, selected, limit=60)
    if fails:
        print("\n" + fails)
    counts = report.summary_counts(results, selected)
    print()
    for t in selected:
        c = counts[t]
        print(
            f"{t:8s} pass {c['pass']:4d}   FAIL {c['FAIL']:4d}   dev {c['dev']:3d}   n/a {c['n/a']:4d}"
        )
    print(f"{len(cases)} cases x {len(selected)} targets in {elapsed:.1f} s")

    report_dir = args.report_dir
    if report_dir is None and not args.filters:
        report_dir = HERE
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        cmd = "python -m conformance" + (
            ""
            if argv is None and len(sys.argv) <= 1
            else " " + shlex.join(argv if argv is not None else sys.argv[1:])
        )
        report.write_markdown(
            report_dir / "report.md", cases, results, targets, selected, elapsed, cmd
        )
        report.write_json(report_dir / "report.json", cases, results, targets, selected, elapsed)
        print(f"report: {report_dir / 'report.md'}")

    shutil.rmtree(workdir, ignore_errors=True)
    failed = any(r.status == "FAIL" for r in results.values())
    return 1 if failed or bad else 0


async def _run(runner: Runner) -> dict[tuple[str, str], Result]:
    try:
        return await runner.run()
    finally:
        await registry().stop_all()
