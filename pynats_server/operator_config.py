"""The operator-mode keys of a configuration file, as nats-server 2.14 parses them (opts.go):
`operator` (JWTs or files), `trusted`, `resolver`, `resolver_preload`,
`resolver_pinned_accounts`; and the checks nats-server makes before it starts
(validateTrustedOperators), with its messages.

Differences, on purpose: `resolver: URL(...)` (an HTTP account server) is refused, and so is
an operator without a `resolver` (nats-server then uses the operator's account server URL).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from . import nkeys_util
from .confread import Bad, Mapper, go_parse_duration, want
from .confread import go_type as gt
from .options import Options, ResolverOptions

if TYPE_CHECKING:
    from . import jwt
    from .conf import Token


OPERATOR_KEYS = ("operator", "operators", "roots", "root", "root_operators", "root_operator")
RESOLVER_KEYS = ("resolver", "account_resolver", "accounts_resolver")
KEYS = OPERATOR_KEYS + RESOLVER_KEYS + (
    "resolver_preload", "resolver_pinned_accounts", "trusted", "trusted_keys", "resolver_tls",
)  # fmt: skip

URL_REFUSED = (
    "URL account resolvers are not supported by pynats-server: use `resolver: MEMORY` with "
    "`resolver_preload`, or `resolver { type: full, dir: ... }`"
)
_MEM = re.compile(r"(?i)(MEM|MEMORY)\s*")
_URL = re.compile(r'(?i)(?:URL){1}(?:\({1}\s*"?([^\s"]*)"?\s*\){1})?\s*')
_BAD_RESOLVER = (
    'error parsing account resolver, should be MEM or  URL("url") or a map containing dir and '
    "type state=[FULL|CACHE])"
)


def read_operator_jwt(source: str) -> tuple[str, jwt.OperatorClaims]:
    """nats-server's readOperatorJWT: a file (possibly decorated) or, failing that, an inline
    JWT. ValueError with nats-server's text (without the `error parsing operator JWT: `)."""
    from . import jwt

    try:
        with open(source, encoding="utf-8", errors="surrogateescape") as f:
            contents = f.read()
    except OSError as e:
        if not source.startswith(jwt.JWT_PREFIX):
            raise ValueError(_go_os_error(e, source)) from None
        contents = source
    token = jwt.parse_decorated_jwt(contents)
    try:
        return token, jwt.decode_operator(token)
    except jwt.JWTError as e:
        raise ValueError(str(e)) from None


def _go_os_error(e: OSError, path: str) -> str:
    """How Go's os.ReadFile reports the usual failures."""
    if isinstance(e, IsADirectoryError):
        return f"read {path}: is a directory"
    what = {2: "no such file or directory", 13: "permission denied", 20: "not a directory"}
    return f"open {path}: {what.get(e.errno or 0, e.strerror or str(e))}"


def apply(m: Mapper, key: str, tok: Token) -> None:
    """One operator-mode key of the top level (`key` lower-cased)."""
    o = m.opts
    if key in OPERATOR_KEYS:
        _operators(m, tok)
    elif key in RESOLVER_KEYS:
        _resolver(m, tok)
    elif key == "resolver_preload":
        _preload(m, tok)
    elif key == "resolver_pinned_accounts":
        v = tok.value
        if type(v) is str:
            o.resolver_pinned_accounts = [v]
        elif type(v) is list:
            keys = []
            for t in v:
                if type(t.value) is str:
                    keys.append(t.value)
                else:
                    m.error(t, f"error parsing resolver_pinned_accounts: unsupported type in array {_go_type(t.value)}")
            o.resolver_pinned_accounts = keys
        else:
            m.error(tok, f"error parsing resolver_pinned_accounts: unsupported type {_go_type(v)}")
    elif key in ("trusted", "trusted_keys"):
        v = tok.value
        at = tok  # nats-server reports at the last element of a list
        if type(v) is str:
            o.trusted_keys = [v]
        elif type(v) is list:
            keys = []
            for t in v:
                at = t
                if type(t.value) is str:
                    keys.append(t.value)
                else:
                    m.error(t, f"error parsing trusted: unsupported type in array {_go_type(t.value)}")
            o.trusted_keys = keys
        else:
            m.error(tok, f"error parsing trusted: unsupported type {_go_type(v)}")
        for k in o.trusted_keys:
            if not nkeys_util.is_valid_public_key(k, nkeys_util.PREFIX_OPERATOR):
                m.error(at, f"trust key {_q(k)} required to be a valid public operator nkey")
    elif key == "resolver_tls":
        m.error(tok, f"resolver_tls: {URL_REFUSED}")


def _go_type(v: Any) -> str:
    return gt(v)


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _operators(m: Mapper, tok: Token) -> None:
    v = tok.value
    sources: list[str] = []
    if type(v) is str:
        sources = [v]
    elif type(v) is list:
        for t in v:
            if type(t.value) is str:
                sources.append(t.value)
            else:
                m.error(tok, "error parsing operators: unsupported type conf.token where string is expected")
                break
    else:
        m.error(tok, f"error parsing operators: unsupported type {_go_type(v)}")
    o = m.opts
    o.operators = []
    for src in sources:
        try:
            token, claims = read_operator_jwt(src)
        except ValueError as e:
            m.error(tok, f"error parsing operator JWT: {e}")
            continue
        o.operators.append(token)
        if len(sources) == 1 and not o.system_account and claims.system_account:
            o.system_account = claims.system_account
    m.operator_tok = tok


def _resolver(m: Mapper, tok: Token) -> None:
    o = m.opts
    v = tok.value
    o.resolver = None
    m.resolver_seen = True
    if type(v) is str:
        if _MEM.search(v):
            o.resolver = ResolverOptions("MEM")
        elif _URL.search(v):
            m.error(tok, URL_REFUSED)
            return
    elif type(v) is dict:
        r = ResolverOptions("")
        hdel_set = False
        vals = {k: t for k, t in v.items()}
        try:
            if "dir" in vals:
                r.dir = want(vals["dir"], str)
            kind = want(vals["type"], str) if "type" in vals else ""
            if "allow_delete" in vals:
                r.allow_delete = want(vals["allow_delete"], bool)
            if "hard_delete" in vals:
                hdel_set = True
                r.hard_delete = want(vals["hard_delete"], bool)
            if "limit" in vals:
                r.limit = want(vals["limit"], int)
            for name in ("ttl", "interval", "timeout"):
                if name in vals:
                    setattr(r, name, go_parse_duration(want(vals[name], str)))
        except Bad as e:
            m.errors.append(str(e))
            return
        except ValueError as e:
            m.error(tok, str(e))
            return
        kind = kind.upper()
        if kind in ("CACHE", "FULL"):
            _check_dir(m, tok, r.dir)
            if kind == "CACHE":
                if r.interval:
                    m.error(tok, "CACHE does not accept sync")
                if r.allow_delete:
                    m.error(tok, "CACHE does not accept allow_delete")
                if hdel_set:
                    m.error(tok, "CACHE does not accept hard_delete")
            else:
                if r.ttl:
                    m.error(tok, "FULL does not accept ttl")
                if hdel_set and not r.allow_delete:
                    m.error(tok, "hard_delete has no effect without delete")
            if r.timeout < 0 or (r.timeout == 0 and "timeout" in vals):
                m.error(tok, f"Fetch timeout {r.timeout}s is too smal")
            problem = make_dir(r.dir)
            if problem:
                m.error(tok, problem)
                return
            r.kind = kind
            o.resolver = r
        elif kind in ("MEM", "MEMORY"):
            o.resolver = ResolverOptions("MEM")
    else:
        m.error(tok, f"error parsing operator resolver, wrong type {_go_type(v)}")
        return
    if o.resolver is None:
        m.error(tok, _BAD_RESOLVER)


def _check_dir(m: Mapper, tok: Token, d: str) -> None:
    if not d:
        m.error(tok, "dir has no value and needs to point to a directory")
        return
    try:
        st = os.stat(d)
    except OSError:
        return
    import stat

    if not stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o100:
        m.error(tok, "dir needs to point to an accessible directory")


def make_dir(d: str) -> str:
    """Create the resolver's directory (as nats-server does when it reads the config)."""
    try:
        os.makedirs(d or "", mode=0o750, exist_ok=True)
    except FileNotFoundError:
        return f"mkdir {d}: no such file or directory"
    except OSError as e:
        return f"mkdir {d}: {(e.strerror or str(e)).lower()}"
    return ""


def _preload(m: Mapper, tok: Token) -> None:
    from . import jwt

    if type(tok.value) is not dict:
        m.error(tok, "preload should be a map of account_public_key:account_jwt")
        return
    out: dict[str, str] = {}
    for k, t in tok.value.items():
        if type(t.value) is not str:
            m.error(t, "preload map value should be a string JWT")
            continue
        try:
            jwt.decode_account(t.value)
        except jwt.JWTError:
            m.error(t, "invalid account JWT")
            continue
        out[k] = t.value
    m.opts.resolver_preload = out


def finish(m: Mapper) -> None:
    """After every key: an operator without a resolver would use its account server URL."""
    o = m.opts
    tok = m.operator_tok
    if len(o.operators) == 1 and o.resolver is None and tok is not None and not m.resolver_seen:
        m.error(tok, URL_REFUSED)


# -- before starting (validateTrustedOperators, configureResolver) ----------------------------


def operator_claims(opts: Options) -> list[jwt.OperatorClaims]:
    from . import jwt

    return [jwt.decode_operator(t) for t in opts.operators]


def validate(opts: Options) -> str:
    """What nats-server refuses to start with in operator mode ("" when fine)."""
    from . import jwt

    if not opts.operators:
        for k in opts.trusted_keys:
            if not nkeys_util.is_valid_public_key(k, nkeys_util.PREFIX_OPERATOR):
                return f"trusted Keys {_q(k)} are required to be a valid public operator nkey"
        return ""
    try:
        ops = operator_claims(opts)
    except jwt.JWTError as e:
        return f"error parsing operator JWT: {e}"
    if opts.resolver is None:
        return "operators require an account resolver to be configured"
    if opts.accounts:
        return "operators do not allow Accounts to be configured directly"
    if opts.users:
        return "operators do not allow users to be configured directly"
    if opts.trusted_keys:
        return "conflicting options for 'TrustedKeys' and 'TrustedOperators'"
    sys_acc = system_account(opts)
    if opts.system_account:
        found_non_empty = any(op.system_account for op in ops)
        if found_non_empty and not any(op.system_account == opts.system_account for op in ops):
            return "system_account in config and operator JWT must be identical"
    elif not ops[0].system_account and opts.resolver.kind in ("FULL", "CACHE"):
        return ("using nats based account resolver - the system account needs to be specified in "
                "configuration or the operator jwt")
    from . import const

    smaj, smin, supd = (int(x) for x in const.NATS_VERSION.split(".")[:3])
    for op in ops:
        try:
            maj, mi, up = jwt.parse_server_version(op.nats.get("assert_server_version") or "")
        except ValueError as e:
            return f"operator {op.sub} expects version {op.nats.get('assert_server_version')} got error instead: {e}"
        if maj > smaj:
            return f"operator {op.sub} expected major version {maj} > server major version {smaj}"
        if maj == smaj and mi > smin:
            return f"operator {op.sub} expected minor version {mi} > server minor version {smin}"
        if maj == smaj and mi == smin and up > supd:
            return f"operator {op.sub} expected update version {up} > server update version {supd}"
    for k in opts.resolver_pinned_accounts or ():
        if not nkeys_util.is_valid_public_key(k, nkeys_util.PREFIX_ACCOUNT):
            return f"pinned account key {_q(k)} is not a valid public account nkey"
    for k, v in opts.resolver_preload.items():
        try:
            jwt.decode_account(v)
        except jwt.JWTError as e:
            return f"preload account error for {_q(k)}: {e}"
    if sys_acc and opts.resolver.kind == "MEM" and len(ops) >= 1 and sys_acc not in opts.resolver_preload:
        return "error resolving system account: account missing"
    return ""


def system_account(opts: Options) -> str:
    """The system account's public key in operator mode ("" when none is named)."""
    from . import jwt

    if opts.system_account:
        return opts.system_account
    if len(opts.operators) == 1:
        try:
            return jwt.decode_operator(opts.operators[0]).system_account
        except jwt.JWTError:
            return ""
    return ""


def trusted_keys(opts: Options) -> tuple[list[str], set[str]]:
    """The keys accounts may be signed by, and the strict operators' signing keys."""

    keys = list(opts.trusted_keys)
    strict: set[str] = set()
    for op in operator_claims(opts):
        if not op.strict_signing_key_usage:
            keys.append(op.sub)
        else:
            strict.update(op.signing_keys)
        keys.extend(op.signing_keys)
    return keys, strict
