"""The data model shared by the transcript parser, the Python cases and the runner."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

from .targets import ServerSpec

STATUSES = ("pass", "FAIL", "dev", "n/a")


@dataclasses.dataclass(frozen=True)
class Selector:
    """``[go29]``, ``[!go29]``, ``[go214,pynats]``: matches target names or profiles."""

    names: frozenset[str]
    negate: bool = False

    @classmethod
    def parse(cls, text: str) -> Selector:
        text = text.strip().strip("[]").strip()
        negate = text.startswith("!")
        names = frozenset(n.strip() for n in text.lstrip("!").split(",") if n.strip())
        if not names:
            raise ValueError("empty selector")
        return cls(names, negate)

    def matches(self, name: str, profile: str) -> bool:
        hit = name in self.names or profile in self.names
        return hit != self.negate

    def __str__(self) -> str:
        return "[" + ("!" if self.negate else "") + ",".join(sorted(self.names)) + "]"


# ---------------------------------------------------------------------------- templates
_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "s": b" ", "\\": b"\\", "0": b"\0", "{": b"{"}
_TEMPLATE_RE = re.compile(r"\{\{(.*?)\}\}")
_REPEAT_RE = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*\*\s*(\d+)$')


def unescape(text: str) -> bytes:
    """Transcript escapes: \\r \\n \\t \\s (space) \\\\ \\0 \\{ and \\xNN; other text is UTF-8."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2 : i + 4]):
                out.append(int(text[i + 2 : i + 4], 16))
                i += 4
                continue
            if nxt in _ESCAPES:
                out += _ESCAPES[nxt]
                i += 2
                continue
        out += ch.encode()
        i += 1
    return bytes(out)


@dataclasses.dataclass(frozen=True)
class Template:
    """Bytes with ``{{var}}`` holes filled at run time (``{{"A"*10}}`` expands at parse time)."""

    parts: tuple[bytes | str, ...]  # bytes = literal, str = variable reference

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[bytes | str] = []
        pos = 0
        for m in _TEMPLATE_RE.finditer(text):
            if m.start() > pos:
                parts.append(unescape(text[pos : m.start()]))
            expr = m.group(1).strip()
            rep = _REPEAT_RE.match(expr)
            if rep:
                parts.append(unescape(rep.group(1)) * int(rep.group(2)))
            else:
                parts.append(expr)
            pos = m.end()
        if pos < len(text):
            parts.append(unescape(text[pos:]))
        return cls(tuple(parts))

    def render(self, variables: Callable[[str], str]) -> bytes:
        return b"".join(p if isinstance(p, bytes) else variables(p).encode() for p in self.parts)

    @property
    def is_static(self) -> bool:
        return all(isinstance(p, bytes) for p in self.parts)


def render_regex(text: str, variables: Callable[[str], str]) -> str:
    """Fill ``{{var}}`` holes of a regex with the escaped values."""
    return _TEMPLATE_RE.sub(lambda m: re.escape(variables(m.group(1).strip())), text)


# ---------------------------------------------------------------------------- steps and cases
@dataclasses.dataclass
class Step:
    """One transcript line (``op`` names the action; ``arg`` depends on it)."""

    lineno: int
    conn: str
    op: str
    arg: Any = None
    selector: Selector | None = None
    source: str = ""  # the original line, for error messages


# A python case: called with its context.CaseContext (not imported here: context.py imports
# this module).
PyCaseFunc = Callable[[Any], Awaitable[None]]


@dataclasses.dataclass
class Case:
    name: str  # group.short
    group: str
    doc: str = ""
    ref: str = ""
    origin: str = ""  # file:line
    kind: str = "transcript"  # transcript | python
    spec: ServerSpec = dataclasses.field(default_factory=ServerSpec)
    private: bool = False  # a fresh server just for this case
    targets: Selector | None = None  # only these targets (others: n/a)
    differential: bool = False
    timeout: float = 2.0
    quiet: float = 0.25
    listeners: tuple[str, ...] = ()
    steps: list[Step] = dataclasses.field(default_factory=list)
    configs: dict[str, str] = dataclasses.field(default_factory=dict)  # config_NAME headers
    func: PyCaseFunc | None = None
    kinds: Callable[[str], list[str]] | None = None  # python cases: target -> server kinds
    slow: bool = False
    # Server features the case needs (e.g. "jetstream"); `--skip-requires F` reports the cases
    # that need F as n/a instead of running them (CI, until the feature lands in pynats-server).
    requires: frozenset[str] = frozenset()

    def applies_to(self, name: str, profile: str) -> bool:
        return self.targets is None or self.targets.matches(name, profile)
