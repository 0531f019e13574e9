"""INFO JSON checks and output normalisation.

An INFO check compares the *key set* and the *value types* of an INFO object against the
profile of the target (``go29``, ``go214``; ``other`` for pynats and unknown servers), plus a
few values that must match exactly (proto, headers, max_payload, host, port, ...). Values that
legitimately differ between servers (ids, version, go, git_commit, nonce, xkey) are checked
by pattern only.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

# Every INFO field known to nats-server 2.9/2.14 (server.Info), with its JSON type.
FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "server_id": str,
    "server_name": str,
    "version": str,
    "proto": int,
    "git_commit": str,
    "go": str,
    "host": str,
    "port": int,
    "headers": bool,
    "auth_required": bool,
    "tls_required": bool,
    "tls_verify": bool,
    "tls_available": bool,
    "max_payload": int,
    "jetstream": bool,
    "ip": str,
    "client_id": int,
    "client_ip": str,
    "nonce": str,
    "cluster": str,
    "cluster_dynamic": bool,
    "domain": str,
    "connect_urls": list,
    "ws_connect_urls": list,
    "ldm": bool,
    "compression": str,
    "connect_info": bool,
    "remote_account": str,
    "acc_is_sys": bool,
    "api_lvl": int,
    "xkey": str,
    "lnoc": bool,
    "lnocu": bool,
    "route_pool_size": int,
    "route_pool_idx": int,
    "route_account": str,
    "gossip_mode": int,
    "import": dict,
    "export": dict,
    "gateway_url": str,
    "leafnode_urls": list,
    "info_on_connect": bool,
}

PATTERNS: dict[str, str] = {
    "server_id": r"N[A-Z0-9]{55}",
    "xkey": r"X[A-Z0-9]{55}",
    "version": r"\S+",
    "go": r".+",
}

_CLIENT_COMMON = (
    "server_id server_name version proto go host port headers max_payload client_id client_ip"
)
_ROUTE_COMMON = (
    "server_id server_name version proto go host port headers max_payload cluster connect_urls"
)

# (kind, profile) -> (required keys, optional keys)
BASE_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("client", "go214"): (_CLIENT_COMMON + " git_commit api_lvl xkey", ""),
    ("client", "go29"): (_CLIENT_COMMON, "git_commit"),
    ("client", "other"): (_CLIENT_COMMON, "git_commit api_lvl xkey"),
    ("route", "go214"): (_ROUTE_COMMON + " nonce compression lnoc lnocu route_pool_size", ""),
    ("route", "go29"): (_ROUTE_COMMON + " nonce lnoc", "git_commit"),
    ("route", "other"): (_ROUTE_COMMON, "git_commit nonce compression lnoc lnocu route_pool_size"),
}


@dataclasses.dataclass
class InfoSpec:
    """``<info KIND mods...``: KIND is client or route; mods refine the base key set.

    ``key=JSON`` the key must be present with that value; ``+key`` must be present;
    ``-key`` must be absent; ``?key`` may be present; ``as=NAME`` stores the object;
    ``from=NAME`` checks an INFO stored earlier (e.g. by ``peer``) instead of reading one.
    """

    kind: str
    values: dict[str, str] = dataclasses.field(default_factory=dict)  # key -> JSON template text
    present: set[str] = dataclasses.field(default_factory=set)
    absent: set[str] = dataclasses.field(default_factory=set)
    optional: set[str] = dataclasses.field(default_factory=set)
    capture: str | None = None
    source: str | None = None  # from=NAME: check an INFO captured earlier instead of reading one
    exact_keys: bool = True

    @classmethod
    def parse(cls, text: str) -> InfoSpec:
        tokens = _split_mods(text) or ["any"]
        if tokens[0] not in ("client", "route", "any"):
            raise ValueError("<info needs a kind: client, route or any")
        spec = cls(kind=tokens[0])
        for tok in tokens[1:]:
            if tok.startswith("as="):
                spec.capture = tok[3:]
            elif tok.startswith("from="):
                spec.source = tok[5:]
            elif tok.startswith("+"):
                spec.present.add(tok[1:])
            elif tok.startswith("-"):
                spec.absent.add(tok[1:])
            elif tok.startswith("?"):
                spec.optional.add(tok[1:])
            elif "=" in tok:
                k, _, v = tok.partition("=")
                spec.values[k] = v
            else:
                raise ValueError(f"bad <info modifier {tok!r}")
        if spec.kind == "any":
            spec.exact_keys = False
        return spec


def _split_mods(text: str) -> list[str]:
    """Split on spaces, but keep JSON values with spaces inside brackets/quotes together."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    in_str = False
    for ch in text.strip():
        if ch == '"':
            in_str = not in_str
        elif not in_str and ch in "[{":
            depth += 1
        elif not in_str and ch in "]}":
            depth -= 1
        if ch == " " and depth == 0 and not in_str:
            if cur:
                out.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def default_values(kind: str, profile: str, ctx: dict[str, Any]) -> dict[str, Any]:
    """Values that must match exactly unless a case overrides them."""
    if kind == "client":
        return {
            "proto": 1,
            "headers": True,
            "max_payload": 1048576,
            "host": "127.0.0.1",
            "port": ctx.get("client_port"),
            "client_ip": "127.0.0.1",
        }
    if kind == "route":
        vals: dict[str, Any] = {
            "headers": True,
            "max_payload": 1048576,
            "host": "127.0.0.1",
            "port": ctx.get("cluster_port"),
            "connect_urls": [f"127.0.0.1:{ctx.get('client_port')}"],
        }
        if profile == "go29":
            vals["proto"] = 2
        elif profile == "go214":
            vals["proto"] = 3
        return vals
    return {}


def check_info(
    obj: dict[str, Any], spec: InfoSpec, profile: str, values: dict[str, Any]
) -> list[str]:
    """Return a list of problems (empty when the INFO object conforms)."""
    problems: list[str] = []
    if spec.kind in ("client", "route"):
        req_s, opt_s = BASE_KEYS[(spec.kind, profile)]
        required = set(req_s.split())
        optional = set(opt_s.split())
    else:
        required, optional = set(), set()
    required |= spec.present | set(values)
    optional |= spec.optional
    required -= spec.absent | spec.optional
    optional -= spec.absent
    keys = set(obj)
    missing = sorted(required - keys)
    if missing:
        problems.append(f"missing keys {missing}")
    forbidden = sorted(keys & spec.absent)
    if forbidden:
        problems.append(f"keys that must be absent {forbidden}")
    if spec.exact_keys:
        extra = sorted(keys - required - optional - spec.absent)
        if extra:
            problems.append(f"unexpected keys {extra}")
    for k, v in obj.items():
        t = FIELD_TYPES.get(k)
        if t is not None and not _type_ok(v, t):
            problems.append(f"{k}: expected {_tname(t)}, got {json.dumps(v)}")
        pat = PATTERNS.get(k)
        if pat and isinstance(v, str) and not re.fullmatch(pat, v):
            problems.append(f"{k}: {v!r} does not match /{pat}/")
    for k, want in values.items():
        if k in spec.absent or k not in obj:
            continue
        if obj[k] != want:
            problems.append(f"{k}: expected {json.dumps(want)}, got {json.dumps(obj[k])}")
    return problems


def _type_ok(v: Any, t: type | tuple[type, ...]) -> bool:
    if t is int or t == (int,):
        return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, t)


def _tname(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return "/".join(x.__name__ for x in t)
    return {
        "str": "string",
        "int": "integer",
        "bool": "boolean",
        "list": "array",
        "dict": "object",
    }[t.__name__]


def json_signature(value: Any) -> Any:
    """Key set and value types of a JSON document (ints and floats are both "number")."""
    if isinstance(value, dict):
        return {k: json_signature(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        kinds = set()
        for item in value:
            sig = json_signature(item)
            if isinstance(sig, dict):
                merged.update(sig)
            else:
                kinds.add(json.dumps(sig))
        if merged:
            return [merged]
        return [json.loads(k) for k in sorted(kinds)][:1]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def flatten_signature(sig: Any, prefix: str = "", skip: tuple[str, ...] = ()) -> dict[str, str]:
    """{"a.b": "string", "list[].x": "number", ...}; subtrees whose path is in ``skip`` are not expanded."""
    out: dict[str, str] = {}
    if isinstance(sig, dict):
        for k, v in sig.items():
            path = prefix + k
            if isinstance(v, dict):
                out[path] = "object"
                if path not in skip:
                    out.update(flatten_signature(v, path + ".", skip))
            elif isinstance(v, list):
                out[path] = "array"
                if v and path not in skip:
                    out.update(flatten_signature(v[0], path + "[].", skip))
            else:
                out[path] = v
    return out


_INFO_LINE = re.compile(rb"INFO [^\r\n]*\r\n")


def normalise_output(data: bytes) -> bytes:
    """Normalise a server's output for differential comparison: INFO JSON becomes ``{...}``."""
    return _INFO_LINE.sub(b"INFO {...} \r\n", data)
