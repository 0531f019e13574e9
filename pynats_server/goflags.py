"""Command-line parsing with the rules of Go's `flag` package, which nats-server uses.

Sans-IO. `-x` and `--x` are the same flag, values come as `-x=v` or `-x v` (booleans only
as `-x` or `-x=false`), single-dash long names (`-cluster`) are normal, parsing stops at the
first non-flag argument or at `--`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class FlagError(Exception):
    """A message in Go's words, e.g. `flag provided but not defined: -x`."""


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    kind: str  # "bool", "int", "str"
    dest: str
    help: str = ""


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)
    set_flags: list[str] = field(default_factory=list)  # dest names, in order given
    given_names: dict[str, str] = field(default_factory=dict)  # dest -> name as typed
    args: list[str] = field(default_factory=list)


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(text)


def _underscore_ok(s: str) -> bool:
    """strconv's underscoreOK: `_` only between digits, or between a base prefix and a digit."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i = 2
        saw = "0"
        hexa = s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        i += 1
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
            continue
        if c == "_":
            if saw != "0":
                return False
            saw = "_"
            continue
        if saw == "_":
            return False
        saw = "!"
    return saw != "_"


_DIGITS = "0123456789abcdef"
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def parse_int(text: str) -> int:
    """strconv.ParseInt(s, 0, 64): decimal, 0x, 0o, 0b, a leading 0 for octal, underscores.

    ValueError for bad syntax, OverflowError outside int64 (Go: "value out of range").
    """
    s = text
    neg = False
    if s[:1] in ("+", "-"):
        neg = s[0] == "-"
        s = s[1:]
    if not s:
        raise ValueError(text)
    base = 10
    body = s
    if s[0] == "0":
        if len(s) >= 3 and s[1].lower() in "box":
            base = {"b": 2, "o": 8, "x": 16}[s[1].lower()]
            body = s[2:]
        else:
            base = 8
            body = s[1:]
    if "_" in body and not _underscore_ok(text):
        raise ValueError(text)
    digits = body.replace("_", "")
    valid = _DIGITS[:base]
    if any(c.lower() not in valid for c in digits) or (not digits and base != 8):
        raise ValueError(text)
    v = int(digits, base) if digits else 0
    if neg:
        v = -v
    if not INT64_MIN <= v <= INT64_MAX:
        raise OverflowError(text)
    return v


def parse(argv: list[str], flags: list[Flag]) -> Parsed:
    by_name: dict[str, Flag] = {}
    for fl in flags:
        for n in fl.names:
            by_name[n] = fl
    out = Parsed()
    i = 0
    while i < len(argv):
        a = argv[i]
        if len(a) < 2 or a[0] != "-":
            break
        minus = 1
        if a[1] == "-":
            minus = 2
            if len(a) == 2:  # "--" ends the flags
                i += 1
                break
        name = a[minus:]
        if not name or name[0] == "-" or name[0] == "=":
            raise FlagError(f"bad flag syntax: {a}")
        i += 1
        has_value = False
        value = ""
        if "=" in name:
            name, value = name.split("=", 1)
            has_value = True
        f = by_name.get(name)
        if f is None:
            raise FlagError(f"flag provided but not defined: -{name}")
        if f.kind == "bool":
            if has_value:
                try:
                    v: Any = parse_bool(value)
                except ValueError:
                    raise FlagError(f'invalid boolean value "{value}" for -{name}: parse error') from None
            else:
                v = True
        else:
            if not has_value:
                if i >= len(argv):
                    raise FlagError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            if f.kind == "int":
                try:
                    v = parse_int(value)
                except OverflowError:
                    raise FlagError(f'invalid value "{value}" for flag -{name}: value out of range') from None
                except ValueError:
                    raise FlagError(f'invalid value "{value}" for flag -{name}: parse error') from None
            else:
                v = value
        out.values[f.dest] = v
        out.set_flags.append(f.dest)
        out.given_names[f.dest] = name
    out.args = argv[i:]
    return out
