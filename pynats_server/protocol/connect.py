"""CONNECT options as nats-server reads them (Go's encoding/json into ClientOpts), and the
CONNECT trace line with its secrets hidden.

Go's rules, all observed with nats-server 2.14 and 2.9:
- each CONNECT is decoded into the options the connection already has: a field a later
  CONNECT leaves out (or sets to null) keeps its value;
- keys match field names exactly or else case-insensitively (`"PASS"`, `"User"` work);
- a value of the wrong type is an error (`json: cannot unmarshal number into Go struct field
  ClientOpts.pass of type string`), after which the connection is closed;
- invalid UTF-8 and lone surrogates in strings become U+FFFD; unknown keys are ignored.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .gojson import go_string as _go_string

# JSON name -> Go type, as in nats-server's ClientOpts.
_FIELDS: dict[str, str] = {
    "echo": "bool", "verbose": "bool", "pedantic": "bool", "tls_required": "bool",
    "nkey": "string", "jwt": "string", "sig": "string", "auth_token": "string",
    "user": "string", "pass": "string", "name": "string", "lang": "string",
    "version": "string", "protocol": "int", "account": "string", "new_account": "bool",
    "headers": "bool", "no_responders": "bool", "import": "perm", "export": "perm",
    "remote_account": "string", "proxy_sig": "string",
}  # fmt: skip
_FOLDED = {k.casefold(): k for k in _FIELDS}
_GO_TYPES = {"bool": "bool", "string": "string", "int": "int", "perm": "server.SubjectPermission"}
_INT64 = 1 << 63


class ConnectError(ValueError):
    """The CONNECT cannot be decoded; the message is Go's."""


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, in order, duplicates kept."""


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_Pairs)


def _field(key: str) -> str | None:
    if key in _FIELDS:
        return key
    return _FOLDED.get(key.casefold())


def _kind(v: Any) -> str:
    """The JSON kind Go names in its type errors."""
    if isinstance(v, _Pairs):
        return "object"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"




def _type_error(value: str, path: str, gotype: str) -> ConnectError:
    return ConnectError(f"json: cannot unmarshal {value} into Go struct field ClientOpts.{path} of type {gotype}")


def _decode_perm(name: str, v: Any) -> dict[str, list[str] | None]:
    if not isinstance(v, _Pairs):
        raise _type_error(_kind(v), name, _GO_TYPES["perm"])
    out: dict[str, list[str] | None] = {}
    for key, lst in v:
        k = key if key in ("allow", "deny") else {"allow": "allow", "deny": "deny"}.get(key.casefold())
        if k is None or lst is None:
            continue
        if not isinstance(lst, list) or isinstance(lst, _Pairs):
            raise _type_error(_kind(lst), f"{name}.{k}", "[]string")
        for s in lst:
            if s is not None and not isinstance(s, str):
                raise _type_error(_kind(s), f"{name}.{k}", "string")
        out[k] = [_go_string(s) if s is not None else "" for s in lst]
    return out


def parse_connect(arg: bytes, into: dict[str, Any] | None = None) -> dict[str, Any]:
    """Decode a CONNECT argument onto `into` (the options so far; a new dict if None).

    Returns the options. Raises ConnectError (Go's message) for a value of the wrong type
    and ValueError for text that is not JSON."""
    co: dict[str, Any] = {} if into is None else into
    pairs = _loads(arg.decode("utf-8", "replace"))
    if pairs is None:
        return co
    if not isinstance(pairs, _Pairs):
        raise ConnectError(f"json: cannot unmarshal {_kind(pairs)} into Go value of type server.ClientOpts")
    error: ConnectError | None = None
    for key, v in pairs:
        name = _field(key)
        if name is None or v is None:
            continue
        t = _FIELDS[name]
        try:
            if t == "bool":
                if not isinstance(v, bool):
                    raise _type_error(_kind(v), name, "bool")
            elif t == "string":
                if not isinstance(v, str):
                    raise _type_error(_kind(v), name, "string")
                v = _go_string(v)
            elif t == "int":
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise _type_error(_kind(v), name, "int")
                if not isinstance(v, int) or not -_INT64 <= v < _INT64:
                    raise _type_error(f"number {_literal(arg, key, v)}", name, "int")
            else:
                v = _decode_perm(name, v)
        except ConnectError as e:
            # Go keeps decoding and reports the first type error at the end.
            error = error or e
            continue
        co[name] = v
    if error is not None:
        raise error
    return co


def _literal(arg: bytes, key: str, v: Any) -> str:
    """The number as written in the CONNECT (Go quotes the literal), best effort."""
    m = re.search(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*(-?[0-9][0-9.eE+-]*)', arg)
    return m.group(1).decode() if m else json.dumps(v)


# -- the trace line ----------------------------------------------------------------------

# nats-server's removeSecretsFromTrace patterns: a value after a key containing `pass` or
# `auth_token`, or after exactly `sig`, `proxy_sig` or `nkey`, up to a quote, comma, brace
# or line end (Go's \\s is [\\t\\n\\f\\r ]).
_WS = r"[\t\n\f\r ]"
_PREFIX_PAT = re.compile(rf'"?{_WS}*(?:auth_token[^\t\n\f\r ]*?|pass[^\t\n\f\r ]*?)"?{_WS}*[:=]{_WS}*"?([^",\r\n}}]*)')
_EXACT_PAT = re.compile(rf'(?:^|[^A-Za-z0-9_])"?{_WS}*(?:proxy_sig|nkey|sig)"?{_WS}*[:=]{_WS}*"?([^",\r\n}}]*)')
_SECRETS = ("pass", "auth_token", "sig", "proxy_sig")
# For CONNECTs that are not JSON: any letter case, and a quoted value runs to its end quote.
_TOLERANT_PAT = re.compile(
    rf'"?{_WS}*(?:auth_token[^\t\n\f\r ]*?|pass[^\t\n\f\r ]*?|proxy_sig|nkey|sig)"?{_WS}*[:=]{_WS}*'
    r'(?:"((?:[^"\\]|\\.)*)"?|([^",\r\n}]*))',
    re.I,
)


def _redact_with(pat: re.Pattern[str], text: str) -> str:
    out = []
    last = 0
    for m in pat.finditer(text):
        g = 2 if pat.groups == 2 and m.group(1) is None else 1  # the value's group
        out.append(text[last : m.start(g)])
        out.append("[REDACTED]")
        last = m.end(g)
    out.append(text[last:])
    return "".join(out)


def _secret_key(key: str) -> bool:
    k = key.casefold()
    return "pass" in k or "auth_token" in k or k in ("sig", "proxy_sig", "nkey")


def redact_connect(arg: bytes) -> str:
    """The CONNECT argument for the trace log, secrets replaced by `[REDACTED]`.

    Byte for byte what nats-server 2.14 prints, except where its patterns would leave a
    secret (or part of one) visible: a key in other letter case or with escapes, or a value
    holding a quote, comma or brace. Those CONNECTs are shown re-encoded, with every secret
    field replaced."""
    text = arg.decode("utf-8", "replace")
    out = _redact_with(_EXACT_PAT, _redact_with(_PREFIX_PAT, text))
    try:
        co = parse_connect(arg)
    except ValueError:
        return _redact_with(_TOLERANT_PAT, text)
    secrets = [k for k in _SECRETS if co.get(k)]
    if not secrets:
        return out
    try:
        shown = parse_connect(out.encode())
    except ValueError:
        shown = {}
    if all(shown.get(k) == "[REDACTED]" for k in secrets):
        return out
    return _encode(_loads(text))


def _encode(v: Any) -> str:
    """Compact JSON of decoded pairs, with every secret field's value replaced."""
    if isinstance(v, _Pairs):
        items = (
            json.dumps(k, ensure_ascii=False) + ":" + ('"[REDACTED]"' if _secret_key(k) and x is not None else _encode(x))
            for k, x in v
        )
        return "{" + ",".join(items) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_encode(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)

