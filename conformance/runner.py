"""Schedules (case, target) runs concurrently and turns them into results."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from . import deviations as devmod
from .conn import Mismatch
from .context import CaseContext
from .engine import StepError, run_transcript
from .model import Case
from .targets import ServerError, ServerPool, ServerProcess, ServerSpec, Target
from .util import diff_excerpt

REFERENCE = "go214"  # differential cases compare every other target with this one
CASE_BUDGET = 90.0  # hard limit for one case on one target, seconds


@dataclasses.dataclass
class Result:
    case: str
    group: str
    target: str
    status: str  # pass | FAIL | dev | n/a
    detail: str = ""
    duration: float = 0.0
    reason: str = ""  # deviation reason, or why n/a
    observed: list[tuple[str, bytes]] | None = None


class Runner:
    def __init__(
        self,
        cases: list[Case],
        targets: dict[str, Target],
        selected: list[str],
        workdir: Path,
        jobs: int,
        deviations: list[devmod.Deviation],
        progress: Callable[[Result], None] | None = None,
        skip_requires: frozenset[str] = frozenset(),
    ) -> None:
        self.cases = cases
        self.targets = targets
        self.selected = selected
        self.workdir = workdir
        self.sem = asyncio.Semaphore(max(1, jobs))
        self.pool = ServerPool(workdir)
        self.deviations = deviations
        self.progress = progress
        self.results: dict[tuple[str, str], Result] = {}
        self.skip_requires = skip_requires
        self.memo: dict[str, object] = {}  # shared by the cases of this run (CaseContext.memo)

    async def run(self) -> dict[tuple[str, str], Result]:
        tasks = []
        # Slow cases first so that they overlap with the many short ones.
        ordered = sorted(self.cases, key=lambda c: (not c.slow,))
        for case in ordered:
            for tname in self.selected:
                tasks.append(asyncio.create_task(self._run_one(case, self.targets[tname])))
        try:
            for r in await asyncio.gather(*tasks):
                self.results[(r.case, r.target)] = r
        finally:
            await self.pool.close()
        self._compare_differential()
        self._apply_deviations()
        return self.results

    # ------------------------------------------------------------------ one run
    async def _run_one(self, case: Case, target: Target) -> Result:
        res = Result(case.name, case.group, target.name, "n/a")
        if not target.available:
            res.reason = f"target unavailable: {target.why_unavailable}"
            return self._done(res)
        if not case.applies_to(target.name, target.profile):
            res.reason = f"case applies to {case.targets} only"
            return self._done(res)
        skipped = sorted(case.requires & self.skip_requires)
        if skipped:
            res.reason = f"requires {', '.join(skipped)} (skipped by --skip-requires)"
            return self._done(res)
        if case.kind == "python" and case.kinds is not None:
            missing = [
                k
                for k in case.kinds(target.name)
                if not self.targets.get(k) or not self.targets[k].available
            ]
            if missing:
                res.reason = f"needs unavailable server kinds {missing}"
                return self._done(res)
        async with self.sem:
            t0 = time.monotonic()
            ctx = CaseContext(case, target, self.targets, self.pool, self.workdir, self.memo)
            leased: ServerProcess | None = None
            try:
                if case.kind == "transcript":
                    if case.private or case.listeners:
                        for lst in case.listeners:
                            await ctx.listener(lst)
                        spec = _fill_spec(case.spec, ctx)
                        ctx.server = await ctx.start_server(
                            args=spec.args,
                            config=spec.config,
                            cluster=spec.cluster,
                            cluster_name=spec.cluster_name,
                            http=spec.http,
                            own_config=spec.own_config,
                            jetstream=spec.jetstream,
                        )
                    else:
                        # Shared servers: only run-wide variables ({{tls.*}}, {{nkey:..}}).
                        leased = await self.pool.lease(target, _fill_spec(case.spec, ctx))
                        ctx.server = leased
                    await asyncio.wait_for(run_transcript(ctx), CASE_BUDGET)
                else:
                    assert case.func is not None
                    await asyncio.wait_for(case.func(ctx), CASE_BUDGET)
                res.status = "pass"
            except StepError as exc:
                res.status, res.detail = "FAIL", exc.render()
            except Mismatch as exc:
                res.status, res.detail = "FAIL", exc.render()
            except ServerError as exc:
                res.status, res.detail = "FAIL", f"server error: {exc}"
            except asyncio.TimeoutError:
                res.status, res.detail = "FAIL", f"case did not finish within {CASE_BUDGET:.0f}s"
            except Exception:  # a bug in a case or in the runner: report, don't crash
                res.status, res.detail = "FAIL", "internal error:\n" + traceback.format_exc(limit=6)
            finally:
                died = ctx.servers_died()
                if (
                    leased is not None
                    and not leased.alive
                    and not leased.stopped_on_purpose
                    and leased not in died
                ):
                    died.append(leased)
                await ctx.cleanup()
                for srv in ([leased] if leased is not None else []) + ctx.leased:
                    await self.pool.release(srv, reusable=res.status == "pass" and srv.alive)
            for s in died:
                res.status = "FAIL"
                rc = s.proc.returncode if s.proc else "?"
                res.detail = (res.detail + "\n" if res.detail else "") + (
                    f"server {s.target.name} (pid {s.proc.pid if s.proc else '?'}) exited unexpectedly"
                    f" with {rc}; last log lines:\n{s.log_tail(15)}"
                )
            res.observed = ctx.observed if case.differential else None
            res.duration = time.monotonic() - t0
            return self._done(res)

    def _done(self, res: Result) -> Result:
        if self.progress:
            self.progress(res)
        return res

    # ------------------------------------------------------------------ post-processing
    def _compare_differential(self) -> None:
        for case in self.cases:
            if not case.differential:
                continue
            ref = self.results.get((case.name, REFERENCE))
            for tname in self.selected:
                if tname == REFERENCE:
                    continue
                r = self.results.get((case.name, tname))
                if r is None or r.status != "pass":
                    continue
                if ref is None or ref.status != "pass" or ref.observed is None:
                    r.status = "n/a"
                    r.reason = f"differential case: reference {REFERENCE} did not run or failed"
                    continue
                problem = _compare_observed(ref.observed, r.observed or [])
                if problem:
                    r.status, r.detail = "FAIL", problem

    def _apply_deviations(self) -> None:
        for (case, tname), r in self.results.items():
            t = self.targets[tname]
            d = devmod.find(self.deviations, case, tname, t.profile)
            if d is None:
                continue
            if r.status == "FAIL":
                r.status, r.reason = "dev", d.reason
            elif r.status == "pass":
                r.reason = f"listed as a deviation but passes: {d.reason}"


def _fill_spec(spec: ServerSpec, ctx: CaseContext) -> ServerSpec:
    """Fill ``{{...}}`` in a case's args and config (listener ports, certificate files...)."""
    args = tuple(_fill(a, ctx) if "{{" in a else a for a in spec.args)
    config = spec.config
    if config is not None and "{{" in config:
        config = _fill(config, ctx)
    if args == spec.args and config == spec.config:
        return spec
    return dataclasses.replace(spec, args=args, config=config)


def _fill(text: str, ctx: CaseContext) -> str:
    from .model import Template

    return Template.parse(text).render(ctx.var).decode()


def _compare_observed(ref: list[tuple[str, bytes]], got: list[tuple[str, bytes]]) -> str:
    for i, (a, b) in enumerate(zip(ref, got, strict=False)):
        if a != b:
            e, g, pos = diff_excerpt(a[1], b[1])
            return (
                f"differential: observation #{i + 1} on {b[0]} differs from {REFERENCE} "
                f"(first difference at byte {pos})\n      expected: {e}\n      got:      {g}"
            )
    if len(ref) != len(got):
        return f"differential: {len(got)} observations, {REFERENCE} made {len(ref)}"
    return ""
