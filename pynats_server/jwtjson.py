"""Go's encoding/json and encoding/base64 as nats-io/jwt uses them (typed schemas), for JWTs.

Sans-IO. nats-server decodes a JWT's header and claims with Go's `json.Unmarshal` into typed
structs, and reports what goes wrong with Go's messages (they reach the log and the replies
of claim update requests). This module decodes JSON into a *schema* (the Go struct's fields,
their JSON names and Go types) the way Go does:

- keys match a field's JSON name exactly, else case-insensitively; unknown keys are ignored;
  a later duplicate wins;
- `null` leaves a field at its zero value;
- a value of the wrong kind is skipped and the first such problem is the error, reported as
  `json: cannot unmarshal number into Go struct field Header.typ of type string`; decoding
  goes on after it (as Go does), but a syntax error stops everything;
- integers must be integer literals within the type's range (`1.5`, `1e3` are errors);
- invalid UTF-8 in strings becomes U+FFFD.

Syntax errors are Go's in the common cases (`unexpected end of JSON input`, `invalid
character 'x' looking for beginning of value`, ...), derived from Python's decoder: the
offending character is the same, the phrase may differ for unusual inputs.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from .protocol.gojson import go_string as _go_string

# -- base64 -------------------------------------------------------------------------------

_URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_URL_MAP = {c: i for i, c in enumerate(_URL_ALPHABET)}


class GoError(ValueError):
    """A decoding error, with Go's message."""


class GoTypeError(GoError):
    """json.UnmarshalTypeError without a struct context (from a custom unmarshaler's inner
    decode): the outer decoder adds its context, as Go's addErrorContext does."""

    def __init__(self, value: str, typ: str) -> None:
        super().__init__(f"json: cannot unmarshal {value} into Go value of type {typ}")
        self.value = value
        self.typ = typ


_URL_CHARS = re.compile(r"[A-Za-z0-9_-]*")


def raw_url_b64decode(s: str) -> bytes:
    """Go's base64.RawURLEncoding.DecodeString: no padding, `\\r`/`\\n` skipped, trailing
    bits ignored; errors are `illegal base64 data at input byte N`."""
    if len(s) % 4 != 1 and _URL_CHARS.fullmatch(s):
        # The usual case, at C speed; the loop below finds where anything else goes wrong.
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    out = bytearray()
    si = 0
    n = len(s)
    while True:
        quantum: list[int] = []
        while len(quantum) < 4:
            if si == n:
                j = len(quantum)
                if j == 0:
                    return bytes(out)
                if j == 1:
                    raise GoError(f"illegal base64 data at input byte {si - j}")
                break
            ch = s[si]
            si += 1
            v = _URL_MAP.get(ch)
            if v is not None:
                quantum.append(v)
                continue
            if ch in "\r\n":
                continue
            raise GoError(f"illegal base64 data at input byte {si - 1}")
        acc = 0
        for v in quantum:
            acc = (acc << 6) | v
        if len(quantum) == 4:
            out += acc.to_bytes(3, "big")
        elif len(quantum) == 3:
            out += (acc >> 2).to_bytes(2, "big")
        else:
            out.append((acc >> 4) & 0xFF)
        if len(quantum) < 4:
            return bytes(out)


def raw_url_b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# -- JSON syntax ------------------------------------------------------------------------------


class _Num(str):
    """A JSON number, kept as its literal (Go checks it against the target type)."""


class _Obj(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, in order."""


def _quote_char(c: str) -> str:
    # Go's quoteChar: 'x', '\'' and '"' for the quotes.
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    q = json.dumps(c)[1:-1] if c.isprintable() or c == " " else repr(c)[1:-1]
    return f"'{q}'"


def parse(data: bytes | str) -> Any:
    """JSON text -> a tree of _Obj / list / str / _Num / bool / None; GoError on syntax."""
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    try:
        return json.loads(
            text,
            object_pairs_hook=_Obj,
            parse_int=_Num,
            parse_float=_Num,
            parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)),
        )
    except json.JSONDecodeError as e:
        raise GoError(_syntax_message(text, e)) from None
    except ValueError as e:  # NaN / Infinity: not JSON to Go
        idx = text.find(str(e))
        ch = text[idx] if idx >= 0 else "N"
        raise GoError(f"invalid character {_quote_char(ch)} looking for beginning of value") from None


def _syntax_message(text: str, e: json.JSONDecodeError) -> str:
    pos = e.pos
    if not text.strip() or pos >= len(text) or e.msg.startswith("Unterminated string"):
        return "unexpected end of JSON input"
    ch = text[pos]
    msg = e.msg
    if msg.startswith("Extra data"):
        return f"invalid character {_quote_char(ch)} after top-level value"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {_quote_char(ch)} after object key"
    if msg.startswith("Expecting ',' delimiter"):
        # Inside an object or an array: the nearest unclosed bracket tells which.
        depth = 0
        for c in reversed(text[:pos]):
            if c in "}]":
                depth += 1
            elif c in "{[":
                if depth == 0:
                    where = "object key:value pair" if c == "{" else "array element"
                    return f"invalid character {_quote_char(ch)} after {where}"
                depth -= 1
        return f"invalid character {_quote_char(ch)} after object key:value pair"
    if msg.startswith("Expecting property name"):
        return f"invalid character {_quote_char(ch)} looking for beginning of object key string"
    if msg.startswith("Invalid control character"):
        return f"invalid character {_quote_char(ch)} in string literal"
    if msg.startswith("Invalid \\escape") or msg.startswith("Invalid \\u"):
        return f"invalid character {_quote_char(ch)} in string escape code"
    return f"invalid character {_quote_char(ch)} looking for beginning of value"


def _kind(v: Any) -> str:
    """The JSON kind Go names in its type errors."""
    if isinstance(v, _Obj):
        return "object"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, _Num):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "null"




# -- schemas --------------------------------------------------------------------------------


class T:
    """A Go type: how a JSON value becomes a Python value (`conv`), its zero value, and the
    name Go prints for it (`jwt.StringList`)."""

    def __init__(self, name: str, zero: Callable[[], Any]) -> None:
        self.name = name
        self.zero = zero

    def decode(self, v: Any, d: Decoder) -> Any:
        raise NotImplementedError


class Str(T):
    def __init__(self, name: str = "string") -> None:
        super().__init__(name, str)

    def decode(self, v: Any, d: Decoder) -> Any:
        if isinstance(v, str) and not isinstance(v, _Num):
            return _go_string(v)
        d.type_error(_kind(v), self.name)
        return ""


class Bool(T):
    def __init__(self, name: str = "bool") -> None:
        super().__init__(name, bool)

    def decode(self, v: Any, d: Decoder) -> Any:
        if isinstance(v, bool):
            return v
        d.type_error(_kind(v), self.name)
        return False


_INT_RANGES = {
    "int64": (-(1 << 63), (1 << 63) - 1), "int": (-(1 << 63), (1 << 63) - 1),
    "time.Duration": (-(1 << 63), (1 << 63) - 1), "uint": (0, (1 << 64) - 1),
    "uint8": (0, 255), "int32": (-(1 << 31), (1 << 31) - 1),
    "jwt.SamplingRate": (-(1 << 63), (1 << 63) - 1),
}  # fmt: skip
_INT_LIT = re.compile(r"-?(0|[1-9][0-9]*)")


class Int(T):
    def __init__(self, name: str = "int64") -> None:
        super().__init__(name, int)
        self.lo, self.hi = _INT_RANGES[name]

    def decode(self, v: Any, d: Decoder) -> Any:
        if isinstance(v, _Num):
            if _INT_LIT.fullmatch(v):
                n = int(v)
                if self.lo <= n <= self.hi:
                    return n
            d.type_error(f"number {v}", self.name)
            return 0
        d.type_error(_kind(v), self.name)
        return 0


class List(T):
    def __init__(self, elem: T, name: str = "") -> None:
        super().__init__(name or f"[]{elem.name}", lambda: None)
        self.elem = elem

    def decode(self, v: Any, d: Decoder) -> Any:
        if isinstance(v, list) and not isinstance(v, _Obj):
            return [d.value(self.elem, x) for x in v]
        d.type_error(_kind(v), self.name)
        return None


class Map(T):
    def __init__(self, elem: T, name: str) -> None:
        super().__init__(name, lambda: None)
        self.elem = elem

    def decode(self, v: Any, d: Decoder) -> Any:
        if isinstance(v, _Obj):
            out: dict[str, Any] = {}
            for k, x in v:
                out[_go_string(k)] = d.value(self.elem, x)
            return out
        d.type_error(_kind(v), self.name)
        return None


class Any_(T):
    """interface{}: plain Python values (numbers as float, as Go's are)."""

    def __init__(self, name: str = "interface {}") -> None:
        super().__init__(name, lambda: None)

    def decode(self, v: Any, d: Decoder) -> Any:
        return plain(v)


def plain(v: Any) -> Any:
    if isinstance(v, _Obj):
        return {k: plain(x) for k, x in v}
    if isinstance(v, _Num):
        return float(v)
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


class Custom(T):
    """A type with its own UnmarshalJSON: `fn(value, decoder)` returns the value or raises
    GoError (kept as the first error, as Go's decoder keeps it)."""

    def __init__(self, name: str, zero: Callable[[], Any], fn: Callable[[Any, Decoder], Any],
                 null: bool = True) -> None:
        super().__init__(name, zero)
        self.fn = fn
        self.null = null  # Go calls UnmarshalJSON("null") for non-pointer types

    def decode(self, v: Any, d: Decoder) -> Any:
        try:
            return self.fn(v, d)
        except GoTypeError as e:
            d.type_error(e.value, e.typ)
            return self.zero()
        except GoError as e:
            d.error(str(e))
            return self.zero()


def embed(prefix: str, fields: list[Any]) -> list[Any]:
    """The fields of a struct embedded (without a JSON name) as `prefix`: Go names the
    embedded struct in error paths (`AccountClaims.ClaimsData.sub`)."""
    out = []
    for f in fields:
        name, t = f[0], f[1]
        inner = f[2] if len(f) > 2 else ""
        out.append((name, t, f"{prefix}.{inner}" if inner else prefix))
    return out


class Struct(T):
    """A Go struct: fields as (JSON name, type[, embedded struct path]), embedded structs
    flattened (see `embed`)."""

    def __init__(self, name: str, fields: list[Any], *, ptr: bool = False,
                 init: Callable[[dict[str, Any]], None] | None = None) -> None:
        super().__init__(name, (lambda: None) if ptr else self.new)
        self.fields: dict[str, T] = {f[0]: f[1] for f in fields}
        self.paths = {f[0]: (f"{f[2]}.{f[0]}" if len(f) > 2 and f[2] else f[0]) for f in fields}
        self.folded = {k.casefold(): k for k in reversed(list(self.fields))}
        self.short = name.split(".")[-1].lstrip("*")
        self.ptr = ptr
        self.init = init

    def new(self) -> dict[str, Any]:
        out = {k: t.zero() for k, t in self.fields.items()}
        if self.init is not None:
            self.init(out)
        return out

    def decode(self, v: Any, d: Decoder, into: dict[str, Any] | None = None) -> Any:
        if not isinstance(v, _Obj):
            d.type_error(_kind(v), self.name)
            return into if into is not None else self.zero()
        out = into if into is not None else self.new()
        for k, x in v:
            key = k if k in self.fields else self.folded.get(k.casefold())
            if key is None:
                continue
            d.push(self.short, self.paths[key])
            try:
                out[key] = d.value(self.fields[key], x, out.get(key))
            finally:
                d.pop()
        return out


class Decoder:
    """One Unmarshal: the first error, and where in the struct it happened."""

    def __init__(self) -> None:
        self.first: str | None = None
        self.first_type: tuple[str, str] | None = None
        self.raw_type_errors = False
        self._struct: list[str] = []
        self._path: list[str] = []

    def push(self, struct: str, field: str) -> None:
        self._struct.append(struct)
        self._path.append(field)

    def pop(self) -> None:
        self._struct.pop()
        self._path.pop()

    def error(self, msg: str) -> None:
        if self.first is None:
            self.first = msg

    def type_error(self, value: str, typ: str) -> None:
        if self.raw_type_errors and not self._path and self.first is None:
            self.first_type = (value, typ)
        if self._path:
            where = f"Go struct field {self._struct[-1]}.{'.'.join(self._path)}"
        else:
            where = "Go value"
        self.error(f"json: cannot unmarshal {value} into {where} of type {typ}")

    def value(self, t: T, v: Any, current: Any = None) -> Any:
        if v is None:
            if isinstance(t, Custom) and t.null:
                return t.decode(None, self)
            return current if current is not None else t.zero()
        if isinstance(t, Struct) and not t.ptr and isinstance(current, dict):
            return t.decode(v, self, current)
        return t.decode(v, self)


def unmarshal(data: bytes | str, t: T, into: Any = None) -> Any:
    """json.Unmarshal(data, &value-of-type-t): the decoded value; GoError on failure."""
    tree = parse(data)
    d = Decoder()
    if tree is None:
        out = into if into is not None else t.zero()
    elif isinstance(t, Struct) and into is not None:
        out = t.decode(tree, d, into)
    else:
        out = d.value(t, tree)
    if d.first is not None:
        raise GoError(d.first)
    return out


def unmarshal_value(v: Any, t: T) -> Any:
    """Decode an already parsed value (inside a custom unmarshaler); a type error of the
    value itself is a GoTypeError, for the outer decoder to give its context."""
    d = Decoder()
    d.raw_type_errors = True
    out = d.value(t, v)
    if d.first_type is not None:
        raise GoTypeError(*d.first_type)
    if d.first is not None:
        raise GoError(d.first)
    return out


# -- encoding ----------------------------------------------------------------------------------


def go_marshal(obj: Any) -> bytes:
    """Go's json.Marshal for the values built here (HTML characters escaped as Go does)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    ).encode("utf-8")  # fmt: skip
