"""NATS JWTs (nats-io/jwt v2): decoding, signature checks, validation, and minting.

Sans-IO and hand-written (docs/DESIGN.md says why): the format is small, and what matters is
to decide exactly as nats-server does, with its messages.

A JWT is three base64url parts (no padding) joined by dots: a header
`{"typ":"JWT","alg":"ed25519-nkey"}` (v1 tokens: `"alg":"ed25519"`), the claims, and the
ed25519 signature by the issuer's nkey over `header.claims` (v1: over the claims part only).
The claims are the registered ones (`jti iat iss name sub exp nbf aud`) plus a `nats` object
whose `type` says what the token is: `operator`, `account`, `user` or `activation`.

`decode` follows jwt.Decode step by step (chunks, header, claims JSON, signature, issuer
role) and raises `JWTError` with the library's message. Claims come back as `Claims`
objects holding the decoded fields in `.nats` (Go's zero values filled in, field names as in
the JSON), and `validate` gives the library's validation issues. v1 claims are migrated to
the v2 layout as the library does.

Minting (`encode`, `new_user`, ...) is for tests and tools: tokens made here are accepted by
nats-server (the tests check that against the real binary).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Any

from . import nkeys_util
from .jwtjson import (
    Any_,
    Bool,
    Custom,
    GoError,
    Int,
    List,
    Map,
    Str,
    Struct,
    embed,
    go_marshal,
    raw_url_b64decode,
    raw_url_b64encode,
    unmarshal,
    unmarshal_value,
)

LIB_VERSION = 2
MAX_TOKEN_SIZE = 1024 * 1024
NO_LIMIT = -1
ALG_V1 = "ed25519"
ALG_V2 = "ed25519-nkey"
JWT_PREFIX = "eyJ"  # every encoded JWT starts with this

OPERATOR, ACCOUNT, USER, ACTIVATION, GENERIC = "operator", "account", "user", "activation", "generic"
AUTH_REQUEST, AUTH_RESPONSE = "authorization_request", "authorization_response"
STREAM, SERVICE = "stream", "service"
ALL = "*"  # revocations: every key issued before the time


class JWTError(ValueError):
    """Not a valid JWT (of the expected kind); the text is nats-io/jwt's."""


# -- schemas (the library's structs, embedded ones flattened) -------------------------------

_STRING_LIST = List(Str(), "jwt.StringList")
_TAG_LIST = List(Str(), "jwt.TagList")


def _export_type(v: Any, d: Any) -> int:
    s = unmarshal_value(v, Str()) if v is not None else ""
    if s == STREAM:
        return 1
    if s == SERVICE:
        return 2
    raise GoError(f"unknown export type {_go_q(s)}")


_EXPORT_TYPE = Custom("jwt.ExportType", int, _export_type)


def _cidr_list(v: Any, d: Any) -> list[str] | None:
    try:
        return unmarshal_value(v, List(Str(), "[]string")) if v is not None else None
    except GoError:
        pass
    s = unmarshal_value(v, Str())
    out: list[str] = []
    for p in s.lower().split(","):
        p = p.strip().lower()
        if p and p not in out:
            out.append(p)
    return out


_CIDR_LIST = Custom("jwt.CIDRList", lambda: None, _cidr_list)


def _sampling(v: Any, d: Any) -> int:
    if v is None:
        raise GoError("json: cannot unmarshal null into Go value of type int")
    if type(v) is str and v.lower() == "headers":  # a JSON string, not a number literal
        return 0
    return unmarshal_value(v, Int("int"))


_SAMPLING = Custom("jwt.SamplingRate", int, _sampling, null=False)

_PERMISSION = Struct("jwt.Permission", [("allow", _STRING_LIST), ("deny", _STRING_LIST)])
_RESP = Struct("*jwt.ResponsePermission", [("max", Int("int")), ("ttl", Int("time.Duration"))], ptr=True)
_TIME_RANGE = Struct("jwt.TimeRange", [("start", Str()), ("end", Str())])
_PERMISSIONS_FIELDS = [("pub", _PERMISSION), ("sub", _PERMISSION), ("resp", _RESP)]
_NATS_LIMITS_FIELDS = [("subs", Int()), ("data", Int()), ("payload", Int())]
_LIMITS_FIELDS = embed("UserLimits", [
    ("src", _CIDR_LIST), ("times", List(_TIME_RANGE)), ("times_location", Str()),
]) + embed("NatsLimits", _NATS_LIMITS_FIELDS)  # fmt: skip
_USER_PERM_LIMITS_FIELDS = embed("Permissions", _PERMISSIONS_FIELDS) + embed("Limits", _LIMITS_FIELDS) + [
    ("bearer_token", Bool()), ("proxy_required", Bool()),
    ("allowed_connection_types", _STRING_LIST),
]  # fmt: skip
_GENERIC_FIELDS = embed("GenericFields", [("tags", _TAG_LIST), ("type", Str("jwt.ClaimType")), ("version", Int("int"))])
_CLAIMS_DATA = embed("ClaimsData", [
    ("aud", Str()), ("exp", Int()), ("jti", Str()), ("iat", Int()), ("iss", Str()),
    ("name", Str()), ("nbf", Int()), ("sub", Str()),
])  # fmt: skip


def _set_nats_limits(d: dict[str, Any]) -> None:
    d["subs"] = d["data"] = d["payload"] = NO_LIMIT


def _scope_type(v: Any, d: Any) -> str:
    s = unmarshal_value(v, Str()) if v is not None else ""
    if s == "user_scope":
        return s
    raise GoError('unknown scope type "%!q(*jwt.ScopeType=0)"' if not s else f"unknown scope type {_go_q(s)}")


_USER_SCOPE = Struct(
    "jwt.UserScope",
    [
        ("kind", Custom("jwt.ScopeType", str, _scope_type)),
        ("key", Str()),
        ("role", Str()),
        ("template", Struct("jwt.UserPermissionLimits", _USER_PERM_LIMITS_FIELDS, init=_set_nats_limits)),
        ("description", Str()),
    ],
)


def _signing_keys(v: Any, d: Any) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {}
    if v is None:
        return out
    items = unmarshal_value(v, List(Any_(), "[]interface {}"))
    for raw, item in zip(v, items, strict=True):
        if isinstance(item, str):
            out[item] = None
        elif isinstance(item, dict):
            if item.get("kind") == "user_scope":
                us = unmarshal_value(raw, _USER_SCOPE)
                out[us["key"]] = us
            else:
                t = item.get("type")
                shown = f'"{t}"' if isinstance(t, str) else "%!q(<nil>)" if t is None else str(t)
                raise GoError(f"unknown signing key scope {shown}")
    return out


_SIGNING_KEYS = Custom("jwt.SigningKeys", dict, _signing_keys)

_LATENCY = Struct("*jwt.ServiceLatency", [("sampling", _SAMPLING), ("results", Str("jwt.Subject"))], ptr=True)
_INFO_FIELDS = embed("Info", [("description", Str()), ("info_url", Str())])
_EXPORT = Struct(
    "*jwt.Export",
    [
        ("name", Str()), ("subject", Str("jwt.Subject")), ("type", _EXPORT_TYPE),
        ("token_req", Bool()), ("revocations", Map(Int(), "jwt.RevocationList")),
        ("response_type", Str("jwt.ResponseType")), ("response_threshold", Int("time.Duration")),
        ("service_latency", _LATENCY), ("account_token_position", Int("uint")),
        ("advertise", Bool()), ("allow_trace", Bool()),
    ] + _INFO_FIELDS,
    ptr=True,
)  # fmt: skip
_IMPORT = Struct(
    "*jwt.Import",
    [
        ("name", Str()), ("subject", Str("jwt.Subject")), ("account", Str()), ("token", Str()),
        ("to", Str("jwt.Subject")), ("local_subject", Str("jwt.RenamingSubject")),
        ("type", _EXPORT_TYPE), ("share", Bool()), ("allow_trace", Bool()),
    ],
    ptr=True,
)  # fmt: skip
_JS_LIMITS_FIELDS = [
    ("mem_storage", Int()), ("disk_storage", Int()), ("streams", Int()), ("consumer", Int()),
    ("max_ack_pending", Int()), ("mem_max_stream_bytes", Int()), ("disk_max_stream_bytes", Int()),
    ("max_bytes_required", Bool()),
]  # fmt: skip
_ACCOUNT_LIMITS_FIELDS = [
    ("imports", Int()), ("exports", Int()), ("wildcards", Bool()), ("disallow_bearer", Bool()),
    ("conn", Int()), ("leaf", Int()),
]  # fmt: skip
_OPERATOR_LIMITS = Struct(
    "jwt.OperatorLimits",
    embed("NatsLimits", _NATS_LIMITS_FIELDS) + embed("AccountLimits", _ACCOUNT_LIMITS_FIELDS)
    + embed("JetStreamLimits", _JS_LIMITS_FIELDS)
    + [("tiered_limits", Map(Struct("jwt.JetStreamLimits", _JS_LIMITS_FIELDS), "jwt.JetStreamTieredLimits"))],
)  # fmt: skip
_WEIGHTED = Struct("jwt.WeightedMapping", [("subject", Str("jwt.Subject")), ("weight", Int("uint8")), ("cluster", Str())])

_USER_NATS = Struct("jwt.User", embed("UserPermissionLimits", _USER_PERM_LIMITS_FIELDS)
                    + [("issuer_account", Str())] + _GENERIC_FIELDS)
_ACCOUNT_NATS = Struct(
    "jwt.Account",
    [
        ("imports", List(_IMPORT, "jwt.Imports")), ("exports", List(_EXPORT, "jwt.Exports")),
        ("limits", _OPERATOR_LIMITS), ("signing_keys", _SIGNING_KEYS),
        ("revocations", Map(Int(), "jwt.RevocationList")),
        ("default_permissions", Struct("jwt.Permissions", _PERMISSIONS_FIELDS)),
        ("mappings", Map(List(_WEIGHTED, "[]jwt.WeightedMapping"), "jwt.Mapping")),
        ("authorization", Struct("jwt.ExternalAuthorization",
                                 [("auth_users", _STRING_LIST), ("allowed_accounts", _STRING_LIST), ("xkey", Str())])),
        ("trace", Struct("*jwt.MsgTrace", [("dest", Str("jwt.Subject")), ("sampling", Int("int"))], ptr=True)),
        ("cluster_traffic", Str("jwt.ClusterTraffic")),
    ] + _INFO_FIELDS + _GENERIC_FIELDS,
)  # fmt: skip
_OPERATOR_NATS = Struct(
    "jwt.Operator",
    [
        ("signing_keys", _STRING_LIST), ("account_server_url", Str()),
        ("operator_service_urls", _STRING_LIST), ("system_account", Str()),
        ("assert_server_version", Str()), ("strict_signing_key_usage", Bool()),
    ] + _GENERIC_FIELDS,
)  # fmt: skip
_ACTIVATION_NATS = Struct(
    "jwt.Activation",
    [("subject", Str("jwt.Subject")), ("kind", _EXPORT_TYPE), ("issuer_account", Str())] + _GENERIC_FIELDS,
)


def _claims_struct(name: str, nats: Struct, extra: list[tuple[str, Any]] | None = None) -> Struct:
    return Struct(name, _CLAIMS_DATA + (extra or []) + [("nats", nats)])


_USER = _claims_struct("jwt.UserClaims", _USER_NATS)
_ACCOUNT = _claims_struct("jwt.AccountClaims", _ACCOUNT_NATS)
_OPERATOR = _claims_struct("jwt.OperatorClaims", _OPERATOR_NATS)
_ACTIVATION = _claims_struct("jwt.ActivationClaims", _ACTIVATION_NATS)
_HEADER = Struct("jwt.Header", [("typ", Str()), ("alg", Str())])
_IDENTIFIER = Struct("jwt.identifier", [
    ("type", Str("jwt.ClaimType")),
    ("nats", Struct("jwt.GenericFields", [("tags", _TAG_LIST), ("type", Str("jwt.ClaimType")), ("version", Int("int"))])),
])  # fmt: skip
_GENERIC = Struct("jwt.GenericClaims", _CLAIMS_DATA + [("nats", Map(Any_(), "map[string]interface {}"))])

# v1 layouts (type, tags and issuer_account at the top level).
_V1_TOP = [("tags", _TAG_LIST), ("type", Str("jwt.ClaimType")), ("issuer_account", Str())]
_V1_USER = _claims_struct(
    "jwt.v1UserClaims",
    Struct("jwt.v1User", _PERMISSIONS_FIELDS + _LIMITS_FIELDS + [("bearer_token", Bool()), ("max", Int())]),
    _V1_TOP,
)
_V1_ACCOUNT = _claims_struct(
    "jwt.v1AccountClaims",
    Struct("jwt.v1NatsAccount", [
        ("imports", List(_IMPORT, "jwt.Imports")), ("exports", List(_EXPORT, "jwt.Exports")),
        ("limits", Struct("struct", _NATS_LIMITS_FIELDS + _ACCOUNT_LIMITS_FIELDS)),
        ("signing_keys", _STRING_LIST), ("revocations", Map(Int(), "jwt.RevocationList")),
    ]),
    _V1_TOP,
)  # fmt: skip
_V1_OPERATOR = _claims_struct(
    "jwt.v1OperatorClaims",
    Struct("jwt.v1NatsOperator", [
        ("signing_keys", _STRING_LIST), ("account_server_url", Str()),
        ("operator_service_urls", _STRING_LIST), ("system_account", Str()),
    ]),
    _V1_TOP,
)  # fmt: skip
_V1_ACTIVATION = _claims_struct(
    "jwt.v1ActivationClaims",
    Struct("jwt.v1NatsActivation", [
        ("subject", Str("jwt.Subject")), ("type", _EXPORT_TYPE), ("max", Int()), ("payload", Int()),
        ("src", Str()), ("times", List(_TIME_RANGE)),
    ]),
    _V1_TOP,
)  # fmt: skip


def _go_q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- claims ---------------------------------------------------------------------------------


class Claims:
    """Decoded claims: the registered fields as attributes, the rest in `nats` (a dict with
    the JSON names; export/import `type` and activation `kind` as 'stream'/'service'/'')."""

    kind = GENERIC
    expected_prefixes: tuple[int, ...] | None = None

    def __init__(self, d: dict[str, Any], version: int = LIB_VERSION) -> None:
        self.aud: str = d.get("aud", "")
        self.exp: int = d.get("exp", 0)
        self.jti: str = d.get("jti", "")
        self.iat: int = d.get("iat", 0)
        self.iss: str = d.get("iss", "")
        self.name: str = d.get("name", "")
        self.nbf: int = d.get("nbf", 0)
        self.sub: str = d.get("sub", "")
        self.nats: dict[str, Any] = d.get("nats") or {}
        self.version = version

    @property
    def subject(self) -> str:
        return self.sub

    @property
    def issuer(self) -> str:
        return self.iss

    @property
    def issuer_account(self) -> str:
        return str(self.nats.get("issuer_account") or "")

    @property
    def claim_type(self) -> str:
        t = self.nats.get("type")
        return t if isinstance(t, str) else ""

    def validate(self, now: float | None = None) -> ValidationResults:
        vr = ValidationResults()
        self._validate_times(vr, now)
        return vr

    def _validate_times(self, vr: ValidationResults, now: float | None = None) -> None:
        t = int(time.time() if now is None else now)
        if self.exp > 0 and t > self.exp:
            vr.add_time_check("claim is expired")
        if self.nbf > 0 and self.nbf > t:
            vr.add_time_check("claim is not yet valid")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sub={self.sub} iss={self.iss} name={self.name!r}>"


class GenericClaims(Claims):
    pass


class OperatorClaims(Claims):
    kind = OPERATOR
    expected_prefixes = (nkeys_util.PREFIX_OPERATOR,)

    @property
    def signing_keys(self) -> list[str]:
        return list(self.nats.get("signing_keys") or ())

    @property
    def system_account(self) -> str:
        return str(self.nats.get("system_account") or "")

    @property
    def strict_signing_key_usage(self) -> bool:
        return bool(self.nats.get("strict_signing_key_usage"))

    def did_sign(self, c: Claims) -> bool:
        if c.iss == self.sub:
            return not self.strict_signing_key_usage or c.sub == self.sub
        return c.iss in self.signing_keys

    def validate(self, now: float | None = None) -> ValidationResults:
        vr = super().validate(now)
        n = self.nats
        url = n.get("account_server_url") or ""
        if url and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", url):
            vr.add_error(f"account server url {_go_q(url)} requires a protocol")
        for u in n.get("operator_service_urls") or ():
            problem = _operator_service_url_problem(u)
            if problem:
                vr.add_error(problem)
        for k in n.get("signing_keys") or ():
            if not nkeys_util.is_valid_public_key(k, nkeys_util.PREFIX_OPERATOR):
                vr.add_error(f"{k} is not an operator public key")
        sa = n.get("system_account") or ""
        if sa and not nkeys_util.is_valid_public_key(sa, nkeys_util.PREFIX_ACCOUNT):
            vr.add_error(f"{sa} is not an account public key")
        try:
            parse_server_version(n.get("assert_server_version") or "")
        except ValueError as e:
            vr.add_error(f"assert server version error: {e}")
        return vr


def _operator_service_url_problem(v: str) -> str:
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)", v)
    if m is None:
        return f"operator service url {_go_q(v)} - protocol not supported (only 'nats', 'tls', 'ws', 'wss' only)"
    if "@" in m.group(2):
        return f"operator service url {_go_q(v)} - credentials are not supported"
    if m.group(3).split("?")[0].split("#")[0]:
        return f"operator service url {_go_q(v)} - paths are not supported"
    if m.group(1).lower() not in ("nats", "tls", "ws", "wss"):
        return f"operator service url {_go_q(v)} - protocol not supported (only 'nats', 'tls', 'ws', 'wss' only)"
    return ""


def parse_server_version(version: str) -> tuple[int, int, int]:
    """jwt.ParseServerVersion (`assert_server_version`)."""
    if not version:
        return 0, 0, 0
    parts = version.split(".")
    if len(parts) != 3:
        raise ValueError("asserted server version must be of the form <major>.<minor>.<update>")
    nums = []
    for p in parts:
        if not re.fullmatch(r"[+-]?[0-9]+", p):
            raise ValueError(f"asserted server version cant parse {p} to int")
        nums.append(int(p))
    if min(nums) < 0:
        raise ValueError(f"asserted server version can'b contain negative values: {version}")
    return nums[0], nums[1], nums[2]


class AccountClaims(Claims):
    kind = ACCOUNT
    expected_prefixes = (nkeys_util.PREFIX_ACCOUNT, nkeys_util.PREFIX_OPERATOR)

    @property
    def limits(self) -> dict[str, Any]:
        return self.nats.get("limits") or {}

    @property
    def signing_keys(self) -> dict[str, dict[str, Any] | None]:
        return self.nats.get("signing_keys") or {}

    @property
    def revocations(self) -> dict[str, int]:
        return self.nats.get("revocations") or {}

    @property
    def imports(self) -> list[dict[str, Any]]:
        return [i for i in self.nats.get("imports") or () if i is not None]

    @property
    def exports(self) -> list[dict[str, Any]]:
        return [e for e in self.nats.get("exports") or () if e is not None]

    def did_sign(self, c: Claims) -> bool:
        if c.iss == self.sub:
            return True
        if c.issuer_account == self.sub:
            return c.iss in self.signing_keys
        return False

    def is_claim_revoked(self, uc: Claims) -> bool:
        if uc.iat == 0 or not uc.sub:
            return True
        return is_revoked(self.revocations, uc.sub, uc.iat)

    def validate(self, now: float | None = None) -> ValidationResults:
        vr = super().validate(now)
        n = self.nats
        _validate_imports(n.get("imports") or [], self.sub, vr)
        _validate_exports(n.get("exports") or [], vr)
        lim = n.get("limits") or {}
        tiered = lim.get("tiered_limits") or {}
        if tiered:
            if any(lim.get(k) for k, *_ in _JS_LIMITS_FIELDS):
                vr.add_error("JetStream Limits and tiered JetStream Limits are mutually exclusive")
            if "" in tiered:
                vr.add_error('Tiered JetStream Limits can not contain a blank "" tier name')
        _validate_permissions(n.get("default_permissions") or {}, vr)
        for frm, wms in (n.get("mappings") or {}).items():
            _validate_subject(frm, vr)
            total = 0
            per: dict[str, int] = {}
            for wm in wms or ():
                _validate_subject(wm.get("subject", ""), vr)
                w = wm.get("weight") or 100
                if w > 100:
                    vr.add_error(f"Mapping {_go_q(frm)} has a weight {w} that exceeds 100")
                if wm.get("cluster"):
                    per[wm["cluster"]] = per.get(wm["cluster"], 0) + w
                    if per[wm["cluster"]] > 100:
                        vr.add_error(f"Mapping {_go_q(frm)} in cluster {_go_q(wm['cluster'])} exceeds 100% among all of it's weighted to mappings")
                else:
                    total += w
            if total > 100:
                vr.add_error(f"Mapping {_go_q(frm)} exceeds 100% among all of it's weighted to mappings")
        auth = n.get("authorization") or {}
        if auth.get("allowed_accounts") and not auth.get("auth_users"):
            vr.add_error("External authorization cannot have accounts without users specified")
        for u in auth.get("auth_users") or ():
            if not nkeys_util.is_valid_public_key(u, nkeys_util.PREFIX_USER):
                vr.add_error(f"AuthUser {_go_q(u)} is not a valid user public key")
        imports = n.get("imports") or []
        exports = n.get("exports") or []
        lim_empty = not any(v for v in lim.values())
        if not lim_empty and lim.get("imports", 0) >= 0 and len(imports) > lim.get("imports", 0):
            vr.add_error("the account contains more imports than allowed by the operator")
        if lim.get("imports", 0) != NO_LIMIT and len(imports) > lim.get("imports", 0):
            vr.add_error("the account contains more imports than allowed by the operator")
        if lim.get("exports", 0) != NO_LIMIT:
            if len(exports) > lim.get("exports", 0):
                vr.add_error("the account contains more exports than allowed by the operator")
            if not lim.get("wildcards"):
                for ex in exports:
                    if ex is not None and subject_has_wildcards(ex.get("subject", "")):
                        vr.add_error("the account contains wildcard exports that are not allowed by the operator")
        for k, scope in (n.get("signing_keys") or {}).items():
            key = scope["key"] if scope is not None else k
            if not nkeys_util.is_valid_public_key(key, nkeys_util.PREFIX_ACCOUNT):
                vr.add_error(f"{key} is not an account public key" if scope is not None
                             else f"{_go_q(k)} is not a valid account signing key")
        if len(n.get("description") or "") > 8 * 1024:
            vr.add_error("Description is too long")
        ct = n.get("cluster_traffic") or ""
        if ct not in ("", "system", "owner"):
            vr.add_error(f"unknown cluster traffic option: {_go_q(ct)}")
        if nkeys_util.is_valid_public_key(self.iss, nkeys_util.PREFIX_ACCOUNT) and not lim_empty:
            vr.add_warning("self-signed account JWTs shouldn't contain operator limits")
        return vr


class UserClaims(Claims):
    kind = USER
    expected_prefixes = (nkeys_util.PREFIX_ACCOUNT,)

    @property
    def bearer_token(self) -> bool:
        return bool(self.nats.get("bearer_token"))

    def has_empty_permissions(self) -> bool:
        """jwt.UserClaims.HasEmptyPermissions: no permissions, limits or connection rules
        (what a user signed by a scoped signing key must have)."""
        n = self.nats
        for k, *_ in _USER_PERM_LIMITS_FIELDS:
            v = n.get(k)
            if k in ("pub", "sub"):
                if v and (v.get("allow") is not None or v.get("deny") is not None):
                    return False
            elif k == "src":
                if v is not None:  # Go's DeepEqual tells an empty list from none
                    return False
            elif v:
                return False
        return True

    def validate(self, now: float | None = None) -> ValidationResults:
        vr = super().validate(now)
        n = self.nats
        _validate_permissions(n, vr)
        _validate_limits(n, vr)
        ia = n.get("issuer_account") or ""
        if ia and not nkeys_util.is_valid_public_key(ia, nkeys_util.PREFIX_ACCOUNT):
            vr.add_error("account_id is not an account public key")
        return vr


class ActivationClaims(Claims):
    kind = ACTIVATION
    expected_prefixes = (nkeys_util.PREFIX_ACCOUNT, nkeys_util.PREFIX_OPERATOR)

    @property
    def import_subject(self) -> str:
        return str(self.nats.get("subject") or "")

    @property
    def import_type(self) -> str:
        return _TYPE_NAMES.get(self.nats.get("kind", 0), "unknown")

    def validate(self, now: float | None = None, *, time_checks: bool = True) -> ValidationResults:
        vr = ValidationResults()
        if time_checks:
            self._validate_times(vr, now)
        kind = self.nats.get("kind", 0)
        if kind not in (1, 2):
            vr.add_error(f"invalid import type: {_go_q(_TYPE_NAMES.get(kind, 'unknown'))}")
        _validate_subject(self.import_subject, vr)
        ia = self.issuer_account
        if ia and not nkeys_util.is_valid_public_key(ia, nkeys_util.PREFIX_ACCOUNT):
            vr.add_error("account_id is not an account public key")
        return vr


_TYPE_NAMES = {0: "unknown", 1: STREAM, 2: SERVICE}
_TYPE_CODES = {STREAM: 1, SERVICE: 2}


def type_name(code: int) -> str:
    return _TYPE_NAMES.get(code, "unknown")


# -- validation -------------------------------------------------------------------------------


@dataclass
class Issue:
    description: str
    blocking: bool = False
    time_check: bool = False


@dataclass
class ValidationResults:
    issues: list[Issue] = field(default_factory=list)

    def add_error(self, text: str) -> None:
        self.issues.append(Issue(text, blocking=True))

    def add_time_check(self, text: str) -> None:
        self.issues.append(Issue(text, time_check=True))

    def add_warning(self, text: str) -> None:
        self.issues.append(Issue(text))

    def is_blocking(self, include_time_checks: bool) -> bool:
        return any(i.blocking or (include_time_checks and i.time_check) for i in self.issues)

    def errors(self) -> list[str]:
        return [i.description for i in self.issues if i.blocking]

    def go_repr(self) -> str:
        """Go's `%+v` of the results, as nats-server logs them (`User JWT no longer valid:
        &{Issues:[claim is expired]}`): each issue prints as its description."""
        return "&{Issues:[" + " ".join(i.description for i in self.issues) + "]}"


def subject_has_wildcards(v: str) -> bool:
    """jwt.Subject.HasWildCards."""
    return (v.endswith(".>") or ".*." in v or v.endswith(".*") or v.startswith("*.")
            or v in ("*", ">"))  # fmt: skip


def subject_contained_in(s: str, other: str) -> bool:
    """jwt.Subject.IsContainedIn: is every subject `s` covers also covered by `other`?"""
    o = other.split(".")
    m = s.split(".")
    if len(m) > len(o) and o[-1] != ">":
        return False
    if len(m) < len(o):
        return False
    for i, tok in enumerate(o):
        if i == len(o) - 1 and tok == ">":
            return True
        if tok != m[i] and tok != "*":
            return False
    return True


def _validate_subject(v: str, vr: ValidationResults) -> None:
    if not v:
        vr.add_error("subject cannot be empty")
        return
    if " " in v:
        vr.add_error(f"subject {_go_q(v)} cannot have spaces")
    if v[0] == "." or v[-1] == ".":
        vr.add_error(f"subject {_go_q(v)} cannot start or end with a `.`")
    if ".." in v:
        vr.add_error(f"subject {_go_q(v)} cannot contain consecutive `.`")


def _check_permission(subj: str, permit_queue: bool, vr: ValidationResults) -> None:
    tk = subj.split(" ")
    if len(tk) == 1:
        _validate_subject(tk[0], vr)
    elif len(tk) == 2:
        _validate_subject(tk[0], vr)
        _validate_subject(tk[1], vr)
        if not permit_queue:
            vr.add_error(f'Permission Subject "{subj}" is not allowed to contain queue')
    else:
        vr.add_error(f'Permission Subject "{subj}" contains too many spaces')


def _validate_permissions(p: dict[str, Any], vr: ValidationResults) -> None:
    for key, permit_queue in (("sub", True), ("pub", False)):
        perm = p.get(key) or {}
        for s in (perm.get("allow") or []) + (perm.get("deny") or []):
            _check_permission(s, permit_queue, vr)


_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})")


def parse_clock(v: str) -> tuple[int, int, int] | None:
    """Go's time.Parse("15:04:05", v) for the times of user claims."""
    m = _TIME.fullmatch(v)
    if m is None:
        return None
    h, mi, s = (int(x) for x in m.groups())
    if h > 23 or mi > 59 or s > 59:
        return None
    return h, mi, s


def _validate_limits(n: dict[str, Any], vr: ValidationResults) -> None:
    for cidr in n.get("src") or ():
        try:
            ipaddress.ip_network(cidr, strict=False)
            if "/" not in cidr:
                raise ValueError
        except ValueError:
            vr.add_error(f"invalid cidr {_go_q(cidr)} in user src limits")
    for tr in n.get("times") or ():
        for key, what in (("start", "start"), ("end", "end")):
            v = tr.get(key) or ""
            if not v:
                vr.add_error("time ranges start must contain a start" if key == "start"
                             else "time ranges end must contain an end")
            elif parse_clock(v) is None:
                vr.add_error(f"{what} in time range is invalid {_go_q(v)}")
    loc = n.get("times_location") or ""
    if loc:
        try:
            _zone(loc)
        except Exception:  # noqa: BLE001 - any failure to load the zone
            vr.add_error(f"could not parse iana time zone by name: unknown time zone {loc}")


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _validate_exports(exports: list[Any], vr: ValidationResults) -> None:
    service: list[str] = []
    stream: list[str] = []
    for e in exports:
        if e is None:
            vr.add_error("null export is not allowed")
            continue
        (service if e.get("type") == 2 else stream).append(e.get("subject", ""))
        t = e.get("type", 0)
        rt = e.get("response_type", "")
        if t not in (1, 2):
            vr.add_error(f"invalid export type: {_go_q(type_name(t))}")
        if t == 2 and rt not in ("", "Singleton", "Stream", "Chunked"):
            vr.add_error(f"invalid response type for service: {_go_q(rt)}")
        if t == 1:
            if rt:
                vr.add_error(f"invalid response type for stream: {_go_q(rt)}")
            if e.get("allow_trace"):
                vr.add_error("AllowTrace only valid for service export")
        lat = e.get("service_latency")
        if lat is not None:
            if t != 2:
                vr.add_error("latency tracking only permitted for services")
            smp = lat.get("sampling", 0)
            if smp != 0 and not 1 <= smp <= 100:
                vr.add_error("sampling percentage needs to be between 1-100")
            _validate_subject(lat.get("results", ""), vr)
            if subject_has_wildcards(lat.get("results", "")):
                vr.add_error("results subject can not contain wildcards")
        thr = e.get("response_threshold", 0)
        if thr < 0:
            vr.add_error("negative response threshold is invalid")
        if thr > 0 and t != 2:
            vr.add_error("response threshold only valid for services")
        subj = e.get("subject", "")
        _validate_subject(subj, vr)
        pos = e.get("account_token_position", 0)
        if pos > 0:
            if not subject_has_wildcards(subj):
                vr.add_error(f"Account Token Position can only be used with wildcard subjects: {subj}")
            else:
                toks = subj.split(".")
                if pos > len(toks):
                    vr.add_error(f"Account Token Position {pos} exceeds length of subject '{subj}'")
                elif toks[pos - 1] != "*":
                    vr.add_error(f"Account Token Position {pos} matches '{toks[pos - 1]}' but must match a * in: {subj}")
    for kind, subjects in (("service", service), ("stream", stream)):
        seen: dict[str, str] = {}
        for i, ns in enumerate(subjects):
            for j, s in enumerate(subjects):
                if i != j and subject_contained_in(ns, s) and s not in seen:
                    seen[s] = ns
        for k, v in seen.items():
            vr.add_error(f"{kind} export subject {_go_q(k)} already exports {_go_q(v)}")


def _validate_imports(imports: list[Any], acc_pub: str, vr: ValidationResults) -> None:
    by_acct: dict[str, set[str]] = {}
    for i in imports:
        if i is None:
            vr.add_error("null import is not allowed")
            continue
        if i.get("type") == 2:
            sub = i.get("to") or _renaming_to_subject(i.get("local_subject", "")) or i.get("subject", "")
            acct = i.get("account", "")
            for other in by_acct.get(acct, ()):
                if subject_contained_in(sub, other) or subject_contained_in(other, sub):
                    vr.add_error(f"overlapping subject namespace for {_go_q(sub)} and {_go_q(other)} in same account {_go_q(acct)}")
            if sub in by_acct.get(acct, ()):
                vr.add_error(f"overlapping subject namespace for {_go_q(sub)} in account {_go_q(acct)}")
            by_acct.setdefault(acct, set()).add(sub)
        validate_import(i, acc_pub, vr)


def _renaming_to_subject(s: str) -> str:
    if "$" not in s:
        return s
    return ".".join("*" if len(t) > 1 and t[0] == "$" and t[1:].isdigit() else t for t in s.split("."))


def validate_import(i: dict[str, Any], acc_pub: str, vr: ValidationResults) -> None:
    """jwt.Import.Validate (an activation token is decoded and checked too)."""
    t = i.get("type", 0)
    subj = i.get("subject", "")
    if t not in (1, 2):
        vr.add_error(f"invalid import type: {_go_q(type_name(t))}")
    if t == 2 and i.get("allow_trace"):
        vr.add_error("AllowTrace only valid for stream import")
    if not i.get("account"):
        vr.add_error("account to import from is not specified")
    if i.get("to"):
        vr.add_warning("the field to has been deprecated (use LocalSubject instead)")
    _validate_subject(subj, vr)
    ls = i.get("local_subject", "")
    if ls:
        _validate_renaming(ls, subj, vr)
        if i.get("to"):
            vr.add_error("Local Subject replaces To")
    if i.get("share") and t != 2:
        vr.add_error(f"sharing information (for latency tracking) is only valid for services: {_go_q(subj)}")
    token = i.get("token", "")
    if not token:
        return
    try:
        act = decode_activation(token)
    except JWTError:
        vr.add_error(f"import {_go_q(subj)} contains an invalid activation token")
        return
    acct = i.get("account", "")
    if not (act.iss == acct or act.issuer_account == acct):
        vr.add_error(f"activation token doesn't match account for import {_go_q(subj)}")
    if act.sub != acc_pub:
        vr.add_error(f"activation token doesn't match account it is being included in, {_go_q(subj)}")
    if act.nats.get("kind", 0) != t:
        vr.add_error(f"mismatch between token import type {act.import_type} and type of import {type_name(t)}")
    vr.issues.extend(act.validate(time_checks=False).issues)
    target = str(i.get("to")) if t == 2 and i.get("to") else subj
    if not subject_contained_in(target, act.import_subject):
        vr.add_error(f"activation token import subject {_go_q(act.import_subject)} doesn't match import {_go_q(subj)}")


def _validate_renaming(s: str, frm: str, vr: ValidationResults) -> None:
    _validate_subject(s, vr)
    if not frm:
        vr.add_error("subject cannot be empty")
    if " " in s:
        vr.add_error(f"subject {_go_q(s)} cannot have spaces")

    def suffix(x: str) -> bool:
        return x == ">" or x.endswith(".>")

    if suffix(s) != suffix(frm):
        vr.add_error("both, renaming subject and subject, need to end or not end in >")
    from_cnt = 1 if frm == "*" else frm.split(".").count("*")
    ref = 0
    for tk in s.split("."):
        if tk == "*":
            ref += 1
        if len(tk) < 2:
            continue
        if tk[0] == "$" and re.fullmatch(r"[+-]?[0-9]+", tk[1:]):
            if int(tk[1:]) > from_cnt:
                vr.add_error(f"Reference ${int(tk[1:])} in {_go_q(s)} reference * in {_go_q(frm)} that do not exist")
            else:
                ref += 1
    if ref != from_cnt:
        vr.add_error("subject does not contain enough * or reference wildcards $[0-9]")


def is_revoked(revocations: dict[str, int] | None, subject: str, issued_at: int) -> bool:
    """nats-server's isRevoked: revoked by key or by `*`, at or after the issue time."""
    if not revocations:
        return False
    t = revocations.get(subject)
    if t is None or t < issued_at:
        t = revocations.get(ALL)
        if t is None or t < issued_at:
            return False
    return True


# -- decoding -----------------------------------------------------------------------------------


_PREFIX_NAMES = {
    nkeys_util.PREFIX_ACCOUNT: "account", nkeys_util.PREFIX_OPERATOR: "operator",
    nkeys_util.PREFIX_USER: "user", nkeys_util.PREFIX_SERVER: "server",
}  # fmt: skip


def _header(part: str) -> dict[str, Any]:
    try:
        h = unmarshal(raw_url_b64decode(part), _HEADER)
    except GoError as e:
        raise JWTError(str(e)) from None
    typ, alg = h["typ"], h["alg"]
    if typ.upper() != "JWT":
        raise JWTError(f"not supported type {_go_q(typ)}")
    if alg.lower() not in (ALG_V1, ALG_V2):
        raise JWTError(f"unexpected {_go_q(alg)} algorithm")
    return h


def _verify(issuer: str, payload: str, sig: bytes) -> bool:
    try:
        return nkeys_util.verify(issuer, payload.encode("utf-8", "surrogateescape"), sig)
    except nkeys_util.NkeyError:
        return False


def decode(token: str) -> Claims:
    """jwt.Decode: the claims of a JWT whose signature verifies with its issuer's key; the
    JWTError's text is the library's."""
    if len(token) > MAX_TOKEN_SIZE:
        raise JWTError(
            f"token size {len(token)} exceeds maximum of {MAX_TOKEN_SIZE} bytes: token too large"
        )
    chunks = token.split(".")
    if len(chunks) != 3:
        raise JWTError("expected 3 chunks")
    _header(chunks[0])
    try:
        data = raw_url_b64decode(chunks[1])
        ver, claims = _load(data)
        sig = raw_url_b64decode(chunks[2])
    except GoError as e:
        raise JWTError(str(e)) from None
    if ver <= 1:
        if not _verify(claims.iss, chunks[1], sig):
            raise JWTError("claim failed V1 signature verification")
    elif not _verify(claims.iss, token[: len(chunks[0]) + len(chunks[1]) + 1], sig):
        raise JWTError("claim failed V2 signature verification")
    prefixes = claims.expected_prefixes
    if prefixes is not None and not any(nkeys_util.is_valid_public_key(claims.iss, p) for p in prefixes):
        names = " ".join(_PREFIX_NAMES[p] for p in prefixes)
        raise JWTError(f"unable to validate expected prefixes - [{names}]")
    return claims


def _load(data: bytes) -> tuple[int, Claims]:
    ident = unmarshal(data, _IDENTIFIER)
    top_type = ident["type"]
    kind = top_type or ident["nats"]["type"]
    version = 1 if top_type else ident["nats"]["version"]
    if version > LIB_VERSION:
        raise GoError("JWT was generated by a newer version ")
    loaders = {OPERATOR: (_OPERATOR, _V1_OPERATOR, OperatorClaims),
               ACCOUNT: (_ACCOUNT, _V1_ACCOUNT, AccountClaims),
               USER: (_USER, _V1_USER, UserClaims),
               ACTIVATION: (_ACTIVATION, _V1_ACTIVATION, ActivationClaims)}  # fmt: skip
    if kind in (AUTH_REQUEST, AUTH_RESPONSE):
        # Auth callout claims: decoded as generic ones here (no callouts in pynats-server).
        return version, GenericClaims(unmarshal(data, _GENERIC), version)
    if kind == "cluster":
        raise GoError("ClusterClaims are not supported")
    if kind == "server":
        raise GoError("ServerClaims are not supported")
    if kind not in loaders:
        return -1, GenericClaims(unmarshal(data, _GENERIC), -1)
    v2, v1, cls = loaders[kind]
    if version == 2:
        d = unmarshal(data, v2, _v2_defaults(kind, v2))
        if kind == ACCOUNT:
            lim = d["nats"]["limits"]
            if lim.get("tiered_limits"):
                for k, *_ in _JS_LIMITS_FIELDS:
                    lim[k] = False if k == "max_bytes_required" else 0
        return 2, cls(d, 2)
    if version == 1:
        return 1, cls(_migrate_v1(kind, unmarshal(data, v1, _v1_defaults(kind, v1))), 1)
    raise GoError(f"library supports version {LIB_VERSION} or less - received {version}")


def _v2_defaults(kind: str, s: Struct) -> dict[str, Any]:
    return s.new()  # v2 claims start from Go's zero values (no -1 limits)


def _v1_defaults(kind: str, s: Struct) -> dict[str, Any]:
    d = s.new()
    n = d["nats"]
    if kind == USER:
        n["subs"] = n["data"] = n["payload"] = n["max"] = NO_LIMIT
    elif kind == ACTIVATION:
        n["max"] = n["payload"] = NO_LIMIT
    return d


def _migrate_v1(kind: str, d: dict[str, Any]) -> dict[str, Any]:
    old = d["nats"]
    out = {k: d[k] for k, *_ in _CLAIMS_DATA}
    if kind == USER:
        n = _USER_NATS.new()
        for k, *_ in _PERMISSIONS_FIELDS + _LIMITS_FIELDS + [("bearer_token", None)]:
            n[k] = old[k]
        n["issuer_account"] = d["issuer_account"]
    elif kind == ACCOUNT:
        n = _ACCOUNT_NATS.new()
        n["imports"], n["exports"] = old["imports"], old["exports"]
        for k, v in old["limits"].items():
            n["limits"][k] = v
        n["signing_keys"] = dict.fromkeys(old["signing_keys"] or ())
        n["revocations"] = old["revocations"]
    elif kind == OPERATOR:
        n = _OPERATOR_NATS.new()
        for k in ("signing_keys", "account_server_url", "operator_service_urls", "system_account"):
            n[k] = old[k]
    else:
        n = _ACTIVATION_NATS.new()
        n["subject"], n["kind"] = old["subject"], old["type"]
        n["issuer_account"] = d["issuer_account"]
    n["type"], n["tags"], n["version"] = d["type"], d["tags"], 1
    out["nats"] = n
    return out


def _decode_kind(token: str, cls: type[Claims], what: str) -> Any:
    c = decode(token)
    if not isinstance(c, cls):
        raise JWTError(f"not {what} claim")
    return c


def decode_user(token: str) -> UserClaims:
    return _decode_kind(token, UserClaims, "user")  # type: ignore[no-any-return]


def decode_account(token: str) -> AccountClaims:
    return _decode_kind(token, AccountClaims, "account")  # type: ignore[no-any-return]


def decode_operator(token: str) -> OperatorClaims:
    return _decode_kind(token, OperatorClaims, "operator")  # type: ignore[no-any-return]


def decode_activation(token: str) -> ActivationClaims:
    return _decode_kind(token, ActivationClaims, "activation")  # type: ignore[no-any-return]


def decode_generic(token: str) -> GenericClaims:
    """jwt.DecodeGeneric: any kind, signature checked, no issuer role check."""
    chunks = token.split(".")
    if len(chunks) != 3:
        raise JWTError("expected 3 chunks")
    h = _header(chunks[0])
    try:
        data = raw_url_b64decode(chunks[1])
        d = unmarshal(data, _GENERIC)
        sig = raw_url_b64decode(chunks[2])
    except GoError as e:
        raise JWTError(str(e)) from None
    payload = chunks[1] if h["alg"] == ALG_V1 else token[: len(chunks[0]) + len(chunks[1]) + 1]
    if not _verify(d["iss"], payload, sig):
        raise JWTError(f"claim failed V{1 if h['alg'] == ALG_V1 else 2} signature verification")
    return GenericClaims(d, -1)


# -- decorated files (creds) ------------------------------------------------------------------

_DECORATED = re.compile(r"\s*(?:(?:[-]{3,}.*[-]{3,}\r?\n)([\w\-.=]+)(?:\r?\n[-]{3,}.*[-]{3,}(\r?\n|\Z)))")


def parse_decorated_jwt(contents: str) -> str:
    """jwt.ParseDecoratedJWT: the JWT of a creds/decorated file, or the text itself."""
    m = _DECORATED.search(contents)
    return m.group(1) if m else contents


def parse_decorated_seed(contents: str) -> str:
    """The nkey seed of a creds file (the second decorated block)."""
    items = _DECORATED.findall(contents)
    if len(items) > 1:
        return items[1][0]
    for line in contents.splitlines():
        if line.strip().startswith(("SO", "SA", "SU")):
            return line.strip()
    raise JWTError("no nkey seed found")


def format_user_creds(token: str, seed: str) -> str:
    """A creds file (jwt.FormatUserConfig), as `nsc` writes them and NATS clients read them."""
    return (
        f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


# -- minting ----------------------------------------------------------------------------------

_PAYLOAD_ORDER = {
    USER: [k for k, _ in _USER_NATS.fields.items()],
    ACCOUNT: [k for k, _ in _ACCOUNT_NATS.fields.items()],
    OPERATOR: [k for k, _ in _OPERATOR_NATS.fields.items()],
    ACTIVATION: [k for k, _ in _ACTIVATION_NATS.fields.items()],
}


def _omit(v: Any) -> bool:
    return v is None or v is False or v == 0 and not isinstance(v, bool) or v in ("", [], {})


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if not _omit(_clean(x)) or k in _KEEP_ZERO}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


# Fields without omitempty in the library (written even when zero).
_KEEP_ZERO = {"max", "ttl", "kind", "key", "role", "template", "description", "sampling", "results", "subject"}


def _encode_nats(kind: str, nats: dict[str, Any]) -> dict[str, Any]:
    n = dict(nats)
    if kind == ACCOUNT:
        for lst in ("imports", "exports"):
            items = [dict(x) for x in n.get(lst) or ()]
            for x in items:
                if isinstance(x.get("type"), str):
                    x["type"] = _TYPE_CODES.get(x["type"], 0)
                x["type"] = type_name(x.get("type", 0)) if x.get("type") else None
            n[lst] = sorted(items, key=lambda x: x.get("subject", ""))
        sk = n.get("signing_keys") or {}
        if isinstance(sk, dict):
            n["signing_keys"] = [sk[k] if sk[k] is not None else k for k in sorted(sk)]
    elif kind == ACTIVATION:
        k = n.get("kind")
        n["kind"] = type_name(_TYPE_CODES.get(k, 0) if isinstance(k, str) else (k or 0)) if k else None
    n["type"] = kind
    n["version"] = LIB_VERSION
    order = _PAYLOAD_ORDER.get(kind, list(n))
    out = {k: n[k] for k in order if k in n}
    out.update({k: v for k, v in n.items() if k not in out})
    return _clean(out)


def encode(kind: str, subject: str, nats: dict[str, Any], signer_seed: str, *, name: str = "",
           exp: int = 0, nbf: int = 0, aud: str = "", iat: int | None = None) -> str:
    """Sign claims with the seed of the issuer (jwt's Encode): `nats` is the payload in the
    JSON layout; export/import types may be given as 'stream'/'service'."""
    issuer = nkeys_util.public_key(signer_seed)
    allowed = {USER: (nkeys_util.PREFIX_ACCOUNT,),
               ACCOUNT: (nkeys_util.PREFIX_ACCOUNT, nkeys_util.PREFIX_OPERATOR),
               OPERATOR: (nkeys_util.PREFIX_OPERATOR,),
               ACTIVATION: (nkeys_util.PREFIX_ACCOUNT, nkeys_util.PREFIX_OPERATOR)}.get(kind)  # fmt: skip
    if allowed is not None and not any(nkeys_util.is_valid_public_key(issuer, p) for p in allowed):
        names = " ".join(_PREFIX_NAMES[p] for p in allowed)
        raise JWTError(f"unable to validate expected prefixes - [{names}]")
    cd: dict[str, Any] = {
        "aud": aud, "exp": exp, "jti": "", "iat": int(time.time()) if iat is None else iat,
        "iss": issuer, "name": name, "nbf": nbf, "sub": subject,
    }  # fmt: skip
    cd["jti"] = _jti(cd)
    header = raw_url_b64encode(go_marshal({"typ": "JWT", "alg": ALG_V2}))
    body = {k: v for k, v in cd.items() if not _omit(v)}
    body["nats"] = _encode_nats(kind, nats)
    payload = raw_url_b64encode(go_marshal(body))
    signing_input = f"{header}.{payload}"
    sig = nkeys_util.sign(signer_seed, signing_input.encode())
    return f"{signing_input}.{raw_url_b64encode(sig)}"


def _jti(cd: dict[str, Any]) -> str:
    # The library's ID: base32 (no padding) of SHA-512/256 of the claims data without ID.
    body = go_marshal({k: v for k, v in cd.items() if not _omit(v)})
    digest = hashlib.new("sha512_256", body).digest()
    return base64.b32encode(digest).decode().rstrip("=")


def user_nats(*, pub_allow: list[str] | None = None, pub_deny: list[str] | None = None,
              sub_allow: list[str] | None = None, sub_deny: list[str] | None = None,
              resp: tuple[int, float] | None = None, src: list[str] | None = None,
              times: list[tuple[str, str]] | None = None, times_location: str = "",
              subs: int = NO_LIMIT, data: int = NO_LIMIT, payload: int = NO_LIMIT,
              bearer_token: bool = False, allowed_connection_types: list[str] | None = None,
              issuer_account: str = "", scoped: bool = False, tags: list[str] | None = None) -> dict[str, Any]:
    """The `nats` part of a user JWT (jwt.NewUserClaims' defaults: no limits).
    `scoped`: nothing at all, as a user of a scoped signing key must be."""
    if scoped:
        return {"issuer_account": issuer_account, "tags": tags}
    n: dict[str, Any] = {
        "pub": {"allow": pub_allow, "deny": pub_deny},
        "sub": {"allow": sub_allow, "deny": sub_deny},
        "subs": subs, "data": data, "payload": payload,
    }  # fmt: skip
    if resp is not None:
        n["resp"] = {"max": resp[0], "ttl": int(resp[1] * 1e9)}
    if src:
        n["src"] = src
    if times:
        n["times"] = [{"start": s, "end": e} for s, e in times]
    if times_location:
        n["times_location"] = times_location
    n["bearer_token"] = bearer_token
    n["allowed_connection_types"] = allowed_connection_types
    n["issuer_account"] = issuer_account
    n["tags"] = tags
    return n


def account_limits(*, conn: int = NO_LIMIT, subs: int = NO_LIMIT, payload: int = NO_LIMIT,
                   data: int = NO_LIMIT, imports: int = NO_LIMIT, exports: int = NO_LIMIT,
                   leaf: int = NO_LIMIT, wildcards: bool = True, disallow_bearer: bool = False) -> dict[str, Any]:
    """An account's `limits` (jwt.NewAccountClaims' defaults: no limits)."""
    return {"subs": subs, "data": data, "payload": payload, "imports": imports, "exports": exports,
            "wildcards": wildcards, "disallow_bearer": disallow_bearer, "conn": conn, "leaf": leaf}


def user_scope(key: str, *, role: str = "", template: dict[str, Any] | None = None,
               description: str = "") -> dict[str, Any]:
    """A scoped signing key entry for an account's `signing_keys`."""
    t = template if template is not None else user_nats()
    t = {k: v for k, v in t.items() if k not in ("issuer_account", "tags")}
    return {"kind": "user_scope", "key": key, "role": role, "template": t, "description": description}


def new_operator(seed: str, name: str = "", *, system_account: str = "",
                 signing_keys: list[str] | None = None, strict_signing_key_usage: bool = False,
                 account_server_url: str = "", exp: int = 0) -> str:
    """A self-signed operator JWT."""
    n: dict[str, Any] = {"signing_keys": signing_keys, "account_server_url": account_server_url,
                         "system_account": system_account,
                         "strict_signing_key_usage": strict_signing_key_usage}  # fmt: skip
    return encode(OPERATOR, nkeys_util.public_key(seed), n, seed, name=name, exp=exp)


def new_account(signer_seed: str, account: str, name: str = "", *, limits: dict[str, Any] | None = None,
                exports: list[dict[str, Any]] | None = None, imports: list[dict[str, Any]] | None = None,
                signing_keys: list[Any] | None = None, revocations: dict[str, int] | None = None,
                default_permissions: dict[str, Any] | None = None, exp: int = 0,
                iat: int | None = None) -> str:
    """An account JWT for public key `account`, signed by the operator (or a signing key)."""
    sk: dict[str, Any] = {}
    for k in signing_keys or ():
        if isinstance(k, dict):
            sk[k["key"]] = k
        else:
            sk[k] = None
    n: dict[str, Any] = {
        "imports": imports, "exports": exports,
        "limits": limits if limits is not None else account_limits(),
        "signing_keys": sk, "revocations": revocations,
        "default_permissions": default_permissions,
    }  # fmt: skip
    return encode(ACCOUNT, account, n, signer_seed, name=name or account, exp=exp, iat=iat)


def new_user(signer_seed: str, user: str, name: str = "", *, exp: int = 0, nbf: int = 0,
             iat: int | None = None, **kw: Any) -> str:
    """A user JWT for public key `user`, signed by its account (or a signing key: then pass
    `issuer_account`); `kw` are user_nats' arguments."""
    return encode(USER, user, user_nats(**kw), signer_seed, name=name or user, exp=exp, nbf=nbf, iat=iat)


def new_activation(signer_seed: str, importer: str, subject: str, kind: str, *, issuer_account: str = "",
                   exp: int = 0, iat: int | None = None) -> str:
    """An activation token letting account `importer` import `subject` (a private export)."""
    n = {"subject": subject, "kind": kind, "issuer_account": issuer_account}
    return encode(ACTIVATION, importer, n, signer_seed, name=subject, exp=exp, iat=iat)


__all__ = [
    "JWTError", "Claims", "OperatorClaims", "AccountClaims", "UserClaims", "ActivationClaims",
    "GenericClaims", "ValidationResults", "decode", "decode_user", "decode_account",
    "decode_operator", "decode_activation", "decode_generic", "encode", "new_operator",
    "new_account", "new_user", "new_activation", "user_nats", "account_limits", "user_scope",
    "format_user_creds", "parse_decorated_jwt", "parse_decorated_seed", "is_revoked",
]  # fmt: skip
