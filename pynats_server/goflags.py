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


def parse_int(text: str) -> int:
    """strconv.ParseInt(s, 0, 64): decimal, 0x, 0o, 0b, a leading 0 for octal, underscores."""
    t = text
    sign = 1
    if t[:1] in ("+", "-"):
        sign = -1 if t[0] == "-" else 1
        t = t[1:]
    if len(t) > 1 and t[0] == "0" and t[1].isdigit():
        return sign * int(t[1:], 8)
    return sign * int(t, 0)


def parse(argv: list[str], flags: list[Flag]) -> Parsed:
    by_name: dict[str, Flag] = {}
    for f in flags:
        for n in f.names:
            by_name[n] = f
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
                except ValueError:
                    raise FlagError(f'invalid value "{value}" for flag -{name}: parse error') from None
            else:
                v = value
        out.values[f.dest] = v
        out.set_flags.append(f.dest)
        out.given_names[f.dest] = name
    out.args = argv[i:]
    return out
