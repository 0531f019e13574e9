"""Reading configuration values as nats-server reads them: Go's type names and value forms in
error messages, durations, `host:port` listens, and the shape of an `authorization {}` block.

Shared by config.py and the block parsers it hands keys to (leaf_config.py,
websocket_config.py, operator_config.py); `Mapper` is what those parsers see of config.py's
mapper, so they do not import it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .netutil import go_split_host_port
from .options import Options, Permissions, TLSOptions, User

if TYPE_CHECKING:
    from .conf import Token


GO_TYPES = {str: "string", bool: "bool", int: "int64", float: "float64", datetime: "time.Time",
             dict: "map[string]interface {}", list: "[]interface {}"}  # fmt: skip



class Bad(Exception):
    """A value of the wrong type or shape: one error, then on to the next key."""


@dataclass
class AuthBlock:
    user: str | None = None
    password: str | None = None
    token: str | None = None
    timeout: float | None = None
    users: list[User] | None = None  # users and nkey users; [] when `users: []`
    default_permissions: Permissions | None = None
    unsupported: str = ""  # auth callouts, ...


def go_type(v: Any) -> str:
    return GO_TYPES.get(type(v), type(v).__name__)


def want(tok: Token, typ: type) -> Any:
    """Go's `v.(T)`: the value if it has exactly that type."""
    if type(tok.value) is not typ:
        raise Bad(
            f"{tok.source}: interface conversion: interface {{}} is {go_type(tok.value)}, "
            f"not {GO_TYPES[typ]}"
        )
    return tok.value


def go_quote(s: str) -> str:  # Go's %q, for the printable strings of a config file
    return json.dumps(s, ensure_ascii=False)


def go_map(v: Any) -> str:  # Go's %v of a map (nats-server's shows pointers in their place)
    from .conf import unwrap

    v = unwrap(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_value(x)}" for k, x in sorted(v.items())) + "]"
    return go_value(v)


def go_value(v: Any) -> str:  # Go's %v
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return str(v)


_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}  # fmt: skip


def go_parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds; ValueError carries Go's message."""
    invalid = ValueError(f"time: invalid duration {go_quote(text)}")
    s = text
    sign = -1.0 if s[:1] == "-" else 1.0
    s = s[1:] if s[:1] in ("-", "+") and s else s
    if s == "0":
        return 0.0
    if not s:
        raise invalid
    total = 0.0
    while s:
        m = _DURATION.match(s)
        assert m is not None  # both groups may be empty
        number, unit = m.groups()
        if number in ("", "."):
            raise invalid
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        total += float(number) * _UNITS[unit]
        s = s[m.end() :]
    if total > 9223372036.854775807:
        raise invalid
    return sign * total


def listen(tok: Token) -> tuple[str, int]:
    """`port` or `host:port` (nats-server's parseListen); host is "" for a bare port."""
    v = tok.value
    if type(v) is int:
        return "", v
    if type(v) is not str:
        raise Bad(f"{tok.source}: expected port or host:port, got {go_type(v)}")
    try:
        host, port = go_split_host_port(v)
    except ValueError:
        raise Bad(f"{tok.source}: could not parse address string {go_quote(v)}") from None
    if not re.fullmatch(r"[+-]?[0-9]+", port):
        raise Bad(f"{tok.source}: could not parse port {go_quote(port)}")
    return host, int(port)


class Mapper(Protocol):
    """What a block parser uses of the configuration mapper (config._Mapper)."""

    opts: Options
    errors: list[str]
    warnings: list[str]
    operator_tok: Token | None
    resolver_seen: bool

    def guarded(self, fn: Any, key: str, tok: Token) -> None: ...
    def error(self, tok: Token, reason: str) -> None: ...
    def unknown(self, key: str, tok: Token) -> None: ...
    def ignored(self, key: str, tok: Token) -> None: ...
    def duration(self, field: str, tok: Token) -> float: ...
    def auth_block(self, tok: Token) -> AuthBlock: ...
    def tls(self, tok: Token, *, client: bool) -> TLSOptions | None: ...
