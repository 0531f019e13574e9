"""Python cases: the ``@pycase`` decorator and case loading."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from pathlib import Path

from .model import Case, PyCaseFunc, Selector
from .transcript import load_dir

_PYCASES: list[Case] = []
CASES_DIR = Path(__file__).resolve().parent / "cases"


def pycase(
    name: str,
    *,
    doc: str = "",
    ref: str = "",
    kinds: Callable[[str], list[str]] | None = None,
    targets: str | None = None,
    timeout: float = 2.0,
    slow: bool = False,
    requires: tuple[str, ...] = (),
) -> Callable[[PyCaseFunc], PyCaseFunc]:
    """Register an ``async def case(ctx)`` as the case ``name`` (``group.short``).

    ``kinds`` maps the target under test to the server kinds the case starts, e.g.
    ``same(3)`` -> [X, X, X] or ``with_("go214")`` -> [X, go214] (mixed clusters).
    ``timeout`` is the per-expectation timeout (ctx.timeout). ``requires`` names server
    features the case needs (``--skip-requires`` skips them). A wrapper made by a helper
    decorator sets ``__wrapped__`` so that the case's origin is the wrapped function's.
    """

    def deco(fn: PyCaseFunc) -> PyCaseFunc:
        group = name.rsplit(".", 1)[0]
        where = inspect.unwrap(fn)
        src = inspect.getsourcefile(where) or "?"
        line = inspect.getsourcelines(where)[1]
        rel = Path(src).resolve().relative_to(Path(__file__).resolve().parent.parent)
        _PYCASES.append(
            Case(
                name=name,
                group=group,
                doc=doc or (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " "),
                ref=ref,
                origin=f"{rel}:{line}",
                kind="python",
                func=fn,
                kinds=kinds,
                targets=Selector.parse(targets) if targets else None,
                timeout=timeout,
                slow=slow,
                requires=frozenset(requires),
            )
        )
        return fn

    return deco


def same(n: int) -> Callable[[str], list[str]]:
    """n servers of the target's own kind."""
    return lambda t: [t] * n


def with_(*others: str) -> Callable[[str], list[str]]:
    """The target plus the given kinds, e.g. with_("go214") -> [X, go214]."""
    return lambda t: [t, *others]


def load_all() -> list[Case]:
    """Transcript cases from cases/*.txt, then the Python cases in pycases/."""
    cases = load_dir(CASES_DIR)
    if not _PYCASES:
        from . import pycases

        for mod in pkgutil.iter_modules(pycases.__path__):
            importlib.import_module(f"{pycases.__name__}.{mod.name}")
    cases += _PYCASES
    names = [c.name for c in cases]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"duplicate case names: {dups}")
    return cases
