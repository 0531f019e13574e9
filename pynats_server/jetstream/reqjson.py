"""JetStream API request bodies decoded as nats-server decodes them, with its error texts.

nats-server reads a request with Go's `json.Decoder` and `DisallowUnknownFields` (strict
mode, the default), so a client that sends an unknown field, a wrong type or broken JSON gets
Go's own message back inside `invalid JSON: ...`. This module reproduces that for nested
structs described by a small schema:

* a syntax check with Go's scanner messages and byte offsets (`invalid character '}' looking
  for beginning of object key string at offset 13`, `unexpected EOF` for a truncated value);
  several values in a row are each decoded, as the Decoder does;
* field names matched case-insensitively (an exact match first), `null` leaving a field alone
  (but handed to enum decoders, which refuse it, as nats-server's UnmarshalJSON does);
* type errors naming the innermost struct and the field path
  (`json: cannot unmarshal string into Go struct field StreamSource.StreamConfig.mirror.name
  of type string`), the first problem in document order winning;
* with strict off, unknown fields are ignored and errors are those of `json.Unmarshal`.

Sans-IO. Values come back as plain Python values keyed by their JSON names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class GoJSONError(ValueError):
    """The text Go's encoding/json (or a type's UnmarshalJSON) would return."""


# ---------------------------------------------------------------------------------------------
# Schema


class GoType:
    """A Go type as the decoder sees it; `name` is how Go prints it in type errors."""

    name = ""


@dataclass(frozen=True)
class Str(GoType):
    name: str = "string"


@dataclass(frozen=True)
class Bool(GoType):
    name: str = "bool"


@dataclass(frozen=True)
class Int(GoType):
    name: str = "int64"
    lo: int = -(1 << 63)
    hi: int = (1 << 63) - 1


INT = Int("int")
INT64 = Int("int64")
INT32 = Int("int32", -(1 << 31), (1 << 31) - 1)
UINT64 = Int("uint64", 0, (1 << 64) - 1)
DURATION = Int("time.Duration")


@dataclass(frozen=True)
class Enum(GoType):
    """A type with its own UnmarshalJSON: `decode(raw JSON text, parsed value)` returns the
    canonical value or raises GoJSONError (it is also called for `null`)."""

    decode: Callable[[str, Any], Any] = lambda raw, v: v
    name: str = ""


@dataclass(frozen=True)
class Time(GoType):
    name: str = "time.Time"


@dataclass(frozen=True)
class Slice(GoType):
    elem: GoType = field(default_factory=Str)
    name: str = "[]string"


@dataclass(frozen=True)
class Map(GoType):
    elem: GoType = field(default_factory=Str)
    name: str = "map[string]string"


@dataclass(frozen=True)
class Struct(GoType):
    """`fields`: JSON key -> (type, the Go path of the field: embedded struct names + key)."""

    name: str = ""
    fields: dict[str, tuple[GoType, tuple[str, ...]]] = field(default_factory=dict)
    # Go's name for the type in "cannot unmarshal X into ... of type server.<name>".
    go_name: str = ""


@dataclass(frozen=True)
class Ptr(GoType):
    """A pointer: `null` gives None; type errors name the pointed-to type."""

    elem: GoType = field(default_factory=Str)

    @property
    def name(self) -> str:  # type: ignore[override]
        return _ptr_name(self.elem)


def _ptr_name(t: GoType) -> str:
    if isinstance(t, Struct):
        return t.go_name or f"server.{t.name}"
    return t.name


def struct(name: str, groups: list[tuple[tuple[str, ...], dict[str, GoType]]]) -> Struct:
    """A struct from groups of fields: ((embedded struct names), {json key: type})."""
    fields: dict[str, tuple[GoType, tuple[str, ...]]] = {}
    for prefix, keys in groups:
        for k, t in keys.items():
            fields[k] = (t, (*prefix, k))
    return Struct(name=name, fields=fields, go_name=f"server.{name}")


def enum_of(values: dict[str, Any], *, fold: bool = False) -> Enum:
    """nats-server's enum UnmarshalJSON: the JSON text must be one of `values` (keys are the
    JSON strings, e.g. '"limits"'); `fold`: compared lower-cased (DiscardPolicy)."""

    def decode(raw: str, v: Any) -> Any:
        key = raw.lower() if fold else raw
        if key in values:
            return values[key]
        raise GoJSONError(f"can not unmarshal {go_quote(raw)}")

    return Enum(decode=decode)


# ---------------------------------------------------------------------------------------------
# Go's string quoting (%q) and the scanner's quoteChar


def go_quote(s: str) -> str:
    """strconv.Quote: a double-quoted Go string literal."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif ch == "\ufffd":
            out.append(ch)
        elif not ch.isprintable() and o > 0x7F:
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _quote_char(b: int) -> str:
    if b == 0x27:
        return "'\\''"
    if b == 0x22:
        return "'\"'"
    q = go_quote(chr(b))
    return "'" + q[1:-1] + "'"


# ---------------------------------------------------------------------------------------------
# The scanner: Go's syntax errors


class _Syntax(Exception):
    def __init__(self, msg: str, offset: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.offset = offset  # bytes read including the bad one (Go's SyntaxError.Offset)


class _EOF(Exception):
    """The input ended inside a value."""


_WS = b" \t\r\n"


def _scan_value(b: bytes, i: int) -> int:
    """Check the JSON value starting at b[i] (after whitespace); the index after it."""
    n = len(b)
    if i >= n:
        raise _EOF()
    c = b[i]
    if c == 0x7B:  # {
        i = _skip_ws(b, i + 1)
        if i >= n:
            raise _EOF()
        if b[i] == 0x7D:
            return i + 1
        while True:
            if i >= n:
                raise _EOF()
            if b[i] != 0x22:
                raise _Syntax(
                    f"invalid character {_quote_char(b[i])} looking for beginning of object key string", i + 1
                )
            i = _scan_string(b, i)
            i = _skip_ws(b, i)
            if i >= n:
                raise _EOF()
            if b[i] != 0x3A:
                raise _Syntax(f"invalid character {_quote_char(b[i])} after object key", i + 1)
            i = _skip_ws(b, i + 1)
            i = _scan_value(b, i)
            i = _skip_ws(b, i)
            if i >= n:
                raise _EOF()
            if b[i] == 0x2C:
                i = _skip_ws(b, i + 1)
                continue
            if b[i] == 0x7D:
                return i + 1
            raise _Syntax(f"invalid character {_quote_char(b[i])} after object key:value pair", i + 1)
    if c == 0x5B:  # [
        i = _skip_ws(b, i + 1)
        if i >= n:
            raise _EOF()
        if b[i] == 0x5D:
            return i + 1
        while True:
            i = _scan_value(b, i)
            i = _skip_ws(b, i)
            if i >= n:
                raise _EOF()
            if b[i] == 0x2C:
                i = _skip_ws(b, i + 1)
                continue
            if b[i] == 0x5D:
                return i + 1
            raise _Syntax(f"invalid character {_quote_char(b[i])} after array element", i + 1)
    if c == 0x22:
        return _scan_string(b, i)
    if c == 0x2D or 0x30 <= c <= 0x39:
        return _scan_number(b, i)
    for lit in (b"true", b"false", b"null"):
        if c == lit[0]:
            for k in range(1, len(lit)):
                if i + k >= n:
                    raise _EOF()
                if b[i + k] != lit[k]:
                    name = lit.decode()
                    raise _Syntax(
                        f"invalid character {_quote_char(b[i + k])} in literal {name} "
                        f"(expecting {_quote_char(lit[k])})",
                        i + k + 1,
                    )
            return i + len(lit)
    raise _Syntax(f"invalid character {_quote_char(c)} looking for beginning of value", i + 1)


def _skip_ws(b: bytes, i: int) -> int:
    n = len(b)
    while i < n and b[i] in _WS:
        i += 1
    return i


def _scan_string(b: bytes, i: int) -> int:
    n = len(b)
    i += 1
    while True:
        if i >= n:
            raise _EOF()
        c = b[i]
        if c == 0x22:
            return i + 1
        if c == 0x5C:
            i += 1
            if i >= n:
                raise _EOF()
            e = b[i]
            if e == 0x75:  # \u
                for k in range(1, 5):
                    if i + k >= n:
                        raise _EOF()
                    h = b[i + k]
                    if not (0x30 <= h <= 0x39 or 0x41 <= h <= 0x46 or 0x61 <= h <= 0x66):
                        raise _Syntax(
                            f"invalid character {_quote_char(h)} in \\u hexadecimal character escape", i + k + 1
                        )
                i += 5
                continue
            if e not in b'"\\/bfnrt':
                raise _Syntax(f"invalid character {_quote_char(e)} in string escape code", i + 1)
            i += 1
            continue
        if c < 0x20:
            raise _Syntax(f"invalid character {_quote_char(c)} in string literal", i + 1)
        i += 1


def _digits(b: bytes, i: int) -> int:
    n = len(b)
    while i < n and 0x30 <= b[i] <= 0x39:
        i += 1
    return i


def _scan_number(b: bytes, i: int) -> int:
    n = len(b)
    if b[i] == 0x2D:
        i += 1
        if i >= n:
            raise _EOF()
        if not 0x30 <= b[i] <= 0x39:
            raise _Syntax(f"invalid character {_quote_char(b[i])} in numeric literal", i + 1)
    if b[i] == 0x30:
        i += 1
    else:
        i = _digits(b, i)
    if i < n and b[i] == 0x2E:
        i += 1
        if i >= n:
            raise _EOF()
        if not 0x30 <= b[i] <= 0x39:
            raise _Syntax(f"invalid character {_quote_char(b[i])} after decimal point in numeric literal", i + 1)
        i = _digits(b, i)
    if i < n and b[i] in b"eE":
        i += 1
        if i < n and b[i] in b"+-":
            i += 1
        if i >= n:
            raise _EOF()
        if not 0x30 <= b[i] <= 0x39:
            raise _Syntax(f"invalid character {_quote_char(b[i])} in exponent of numeric literal", i + 1)
        i = _digits(b, i)
    return i


# ---------------------------------------------------------------------------------------------
# Decoding


class _Num(str):
    """A JSON number as written (Go quotes the literal in type errors)."""


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, _Num):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _raw(v: Any) -> str:
    """The JSON text of a parsed value (for enum errors: close to what was sent)."""
    if isinstance(v, _Num):
        return str(v)
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class _Decoder:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.err: GoJSONError | None = None

    def fail(self, e: GoJSONError) -> None:
        if self.err is None:
            self.err = e

    def type_error(self, v: Any, t: GoType, ctx: tuple[str, tuple[str, ...]] | None) -> None:
        kind = _kind(v)
        if kind == "number" and isinstance(t, Int):
            kind = f"number {v}"
        if ctx is None:
            self.fail(GoJSONError(f"json: cannot unmarshal {kind} into Go value of type {t.name}"))
        else:
            self.fail(GoJSONError(
                f"json: cannot unmarshal {kind} into Go struct field {ctx[0]}.{'.'.join(ctx[1])} of type {t.name}"
            ))

    def value(self, v: Any, t: GoType, ctx: tuple[str, tuple[str, ...]] | None, old: Any = None) -> Any:
        """The decoded value (or `old` when nothing is set: null, or an error recorded)."""
        if isinstance(t, Enum):
            # An UnmarshalJSON error stops decoding at once (type errors and unknown fields
            # are only remembered): it wins over those seen before.
            return t.decode(_raw(v), v)
        if v is None:
            return None if isinstance(t, Ptr) else old
        if isinstance(t, Ptr):
            return self.value(v, t.elem, ctx, old)
        if isinstance(t, Str):
            if isinstance(v, str) and not isinstance(v, _Num):
                return v
        elif isinstance(t, Bool):
            if isinstance(v, bool):
                return v
        elif isinstance(t, Int):
            if isinstance(v, _Num):
                if re.fullmatch(r"-?\d+", v):
                    n = int(v)
                    if t.lo <= n <= t.hi:
                        return n
            else:
                pass
        elif isinstance(t, Time):
            if isinstance(v, str) and not isinstance(v, _Num):
                if _TIME_RE.match(v):
                    return v
                raise GoJSONError(
                    f'parsing time {go_quote(v)} as "2006-01-02T15:04:05Z07:00": cannot parse '
                    f'{go_quote(v)} as "2006"'
                )
            raise GoJSONError("Time.UnmarshalJSON: input is not a JSON string")
        elif isinstance(t, Slice):
            if isinstance(v, list):
                return [self.value(x, t.elem, ctx, _zero(t.elem)) for x in v]
        elif isinstance(t, Map):
            if isinstance(v, dict):
                return {k: self.value(x, t.elem, ctx, _zero(t.elem)) for k, x in v.items()}
        elif isinstance(t, Struct):
            if isinstance(v, dict):
                return self.struct(v, t, ctx[1] if ctx else ())
        self.type_error(v, t, ctx)
        return old

    def struct(self, doc: dict[str, Any], t: Struct, base: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fields = t.fields
        folded: dict[str, str] | None = None
        for k, v in doc.items():
            key = k
            f = fields.get(k)
            if f is None:
                if folded is None:
                    folded = {name.lower(): name for name in fields}
                key = folded.get(k.lower(), "")
                f = fields.get(key)
            if f is None:
                if self.strict:
                    self.fail(GoJSONError(f"json: unknown field {go_quote(k)}"))
                continue
            ft, path = f
            got = self.value(v, ft, (t.name, base + path), out.get(key, _MISSING))
            if got is not _MISSING:
                out[key] = got
        return out


_MISSING: Any = object()


def _zero(t: GoType) -> Any:
    if isinstance(t, Str):
        return ""
    if isinstance(t, Bool):
        return False
    if isinstance(t, Int):
        return 0
    return None


def decode(body: bytes, t: Struct, *, strict: bool = True) -> dict[str, Any]:
    """The fields `body` sets (JSON keys -> values); raises GoJSONError with Go's text.

    An empty body (or only whitespace) decodes to {} as nats-server's Decoder loop does."""
    b = bytes(body)
    out: dict[str, Any] = {}
    i = _skip_ws(b, 0)
    while i < len(b):
        # One value at a time, as the Decoder: a value's own errors come before a later
        # value's syntax error.
        try:
            end = _scan_value(b, i)
            if not strict:
                j = _skip_ws(b, end)
                if j < len(b):
                    raise _Syntax(f"invalid character {_quote_char(b[j])} after top-level value", j + 1)
        except _Syntax as e:
            raise GoJSONError(f"{e.msg} at offset {e.offset}" if strict else e.msg) from None
        except _EOF:
            raise GoJSONError("unexpected EOF" if strict else "unexpected end of JSON input") from None
        doc = _parse(b[i:end])
        i = _skip_ws(b, end)
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise GoJSONError(f"json: cannot unmarshal {_kind(doc)} into Go value of type {t.go_name}")
        d = _Decoder(strict)
        out.update(d.struct(doc, t, ()))
        if d.err is not None:
            raise d.err
    return out


def _parse(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    return json.loads(text, parse_int=_Num, parse_float=_Num, parse_constant=_Num)
