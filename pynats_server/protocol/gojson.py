"""Request options decoded as nats-server's encoding/json would, with its error texts.

The system account's requests carry optional JSON bodies (`{"subscriptions":true}` ...)
that nats-server unmarshals into Go structs. A client that sends a wrong type or broken JSON
gets Go's error text back in the response, so this module reproduces what that takes:
case-insensitive field names, `null` leaving a default, and Go's messages for type and
syntax errors. Sans-IO.
"""

from __future__ import annotations

import json
from typing import Any


def go_string(s: str) -> str:
    """Lone surrogates (from `\\ud800` escapes) become U+FFFD, as Go decodes them."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in s)
    return s


class GoJSONError(ValueError):
    """The text nats-server's json.Unmarshal would return."""


class _Float(str):
    """A JSON number with a fraction or exponent, kept as written (Go quotes it in errors)."""


# A struct: its Go name and its fields, grouped by the embedded struct that holds them
# (Go names the embedded struct in the error path): [(embedded name, {json key: Go type})].
Struct = tuple[str, list[tuple[str, dict[str, str]]]]

FILTER = ("EventFilterOptions", {
    "server_name": "string", "cluster": "string", "host": "string", "exact_match": "bool",
    "tags": "[]string", "domain": "string",
})  # fmt: skip

_INTS = {"int", "uint64", "server.ConnState"}


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, _Float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _check(v: Any, gotype: str) -> Any:
    """The value as the field takes it, or None (a type error) — `null` is handled before."""
    if gotype == "bool":
        return v if isinstance(v, bool) else None
    if gotype in ("string", "server.SortOpt"):
        return v if isinstance(v, str) and not isinstance(v, _Float) else None
    if gotype in _INTS:
        if isinstance(v, bool) or not isinstance(v, int):
            return None
        if gotype == "uint64" and v < 0:
            return None
        return v
    if gotype == "[]string":
        if not isinstance(v, list) or not all(isinstance(x, str) and not isinstance(x, _Float) or x is None
                                              for x in v):
            return None
        return [x or "" for x in v]
    return v


def _type_error(v: Any, struct: str, path: str, gotype: str) -> GoJSONError:
    kind = _kind(v)
    if kind == "number" and gotype in _INTS:
        kind = f"number {v}"
    return GoJSONError(f"json: cannot unmarshal {kind} into Go struct field {struct}.{path} of type {gotype}")


def decode(body: bytes, struct: Struct) -> dict[str, Any]:
    """The fields `body` sets (by their JSON keys); raises GoJSONError."""
    name, groups = struct
    try:
        doc = json.loads(body, parse_float=_Float, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise GoJSONError(_syntax_error(e)) from None
    except (ValueError, RecursionError):
        # NaN/Infinity, bytes that are not UTF-8, absurd nesting: Go stops at the first odd byte.
        first = body.lstrip()[:1].decode("latin-1") or " "
        raise GoJSONError(f"invalid character {_quote_char(first)} looking for beginning of value") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise GoJSONError(f"json: cannot unmarshal {_kind(doc)} into Go value of type server.{name}")
    fields: dict[str, tuple[str, str, str]] = {}  # lower-cased key -> (key, Go type, error path)
    for embedded, keys in groups:
        for k, t in keys.items():
            fields.setdefault(k.lower(), (k, t, f"{embedded}.{k}" if embedded else k))
    out: dict[str, Any] = {}
    err: GoJSONError | None = None
    for k, v in doc.items():
        f = fields.get(k.lower())
        if f is None or v is None:
            continue
        key, gotype, path = f
        got = _check(v, gotype)
        if got is None:
            err = err or _type_error(v, name, path, gotype)
            continue
        out[key] = got
    if err is not None:
        raise err
    return out


def _quote_char(c: str) -> str:
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    q = json.dumps(c)[1:-1]
    return f"'{q}'"


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _syntax_error(e: json.JSONDecodeError) -> str:
    """Go's scanner message for the error Python's decoder found."""
    doc = e.doc
    rest = doc[e.pos:] if e.pos < len(doc) else ""
    if not rest.strip() or e.msg.startswith("Unterminated string"):
        return "unexpected end of JSON input"
    c = _quote_char(rest[0])
    if e.msg.startswith("Extra data"):
        return f"invalid character {c} after top-level value"
    if e.msg.startswith("Expecting property name"):
        return f"invalid character {c} looking for beginning of object key string"
    if e.msg.startswith("Expecting ':'"):
        return f"invalid character {c} after object key"
    if e.msg.startswith("Expecting ','"):
        before = doc[: e.pos].rstrip()
        inside = _innermost(before)
        where = "array element" if inside == "[" else "object key:value pair"
        return f"invalid character {c} after {where}"
    if e.msg.startswith("Invalid control character"):
        return f"invalid character {c} in string literal"
    return f"invalid character {c} looking for beginning of value"


def _innermost(text: str) -> str:
    """The bracket that is open at the end of `text` (strings skipped)."""
    stack: list[str] = []
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""
