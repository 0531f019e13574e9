"""The `websocket {}` configuration block and its checks, as nats-server reads them
(opts.go parseWebsocket, websocket.go validateWebsocketOptions).

Kept apart from config.py so that the block's rules sit in one place; config.py hands the
block's token here, and cli.validate / Server.start call `validate`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .confread import (
    Bad,
    Mapper,
    go_parse_duration,
    go_type,
    go_value,
    listen,
    want,
)
from .options import Options, WebsocketOptions
from .websocket import split_origin

if TYPE_CHECKING:
    from .conf import Token


KEYS = ("websocket", "ws")

# Headers an operator may not add to the 101 answer (nats-server's list).
_RESERVED_HEADERS = ("host", "content-length", "connection", "upgrade", "nats-no-masking")


def apply(m: Mapper, tok: Token) -> None:
    """Read a `websocket {}` block into m.opts.websocket (errors into m.errors)."""
    if type(tok.value) is not dict:
        raise Bad(f"{tok.source}: Expected websocket to be a map, got {go_type(tok.value)}")
    wo = m.opts.websocket
    for key, t in tok.value.items():
        k = key.lower()
        try:
            if k == "listen":
                wo.host, wo.port = listen(t)
            elif k == "port":
                wo.port = want(t, int)
            elif k in ("host", "net"):
                wo.host = want(t, str)
            elif k == "advertise":
                wo.advertise = want(t, str)
            elif k == "no_tls":
                wo.no_tls = want(t, bool)
            elif k == "tls":
                tls = m.tls(t, client=True)
                if tls is not None:
                    wo.tls = tls
            elif k == "same_origin":
                wo.same_origin = want(t, bool)
            elif k in ("allowed_origins", "allowed_origin", "allow_origins", "allow_origin", "origins", "origin"):
                wo.allowed_origins = _strings(m, "allowed origins", t)
            elif k == "handshake_timeout":
                v = t.value
                if type(v) is int:
                    wo.handshake_timeout = float(v)
                elif type(v) is str:
                    try:
                        wo.handshake_timeout = go_parse_duration(v)
                    except ValueError as e:
                        m.error(t, str(e))
                else:
                    m.error(t, f"error parsing handshake timeout: unsupported type {go_type(v)}")
            elif k in ("compress", "compression"):
                wo.compression = want(t, bool)
            elif k in ("authorization", "authentication"):
                auth = m.auth_block(t)
                wo.username, wo.password, wo.token = auth.user or "", auth.password or "", auth.token or ""
                wo.auth_timeout = auth.timeout or 0.0
            elif k in ("jwt_cookie", "user_cookie", "pass_cookie", "token_cookie", "no_auth_user"):
                setattr(wo, k, want(t, str))
            elif k == "headers":
                if type(t.value) is not dict:
                    m.error(t, f"error parsing headers: unsupported type {go_type(t.value)}")
                    continue
                wo.headers = {}
                for name, ht in t.value.items():
                    if type(ht.value) is not str:
                        m.error(ht, f"error parsing header key {name}: unsupported type {go_type(ht.value)}")
                        continue
                    wo.headers[name] = ht.value
            elif k == "ping_interval":
                wo.ping_interval = m.duration("ping_interval", t)
            else:
                m.unknown(key, t)
        except Bad as e:
            m.errors.append(str(e))


def _strings(m: Mapper, what: str, tok: Token) -> list[str]:
    """nats-server's parseStringArray: one string or an array of strings."""
    v = tok.value
    if type(v) is str:
        return [v]
    if type(v) is not list:
        m.error(tok, f"error parsing {what}: unsupported type {go_type(v)}")
        return []
    out = []
    for t in v:
        if type(t.value) is str:
            out.append(t.value)
        else:
            m.error(t, f"error parsing {what}: unsupported type in array {go_type(t.value)}")
    return out


def parse_origin(text: str) -> tuple[str, str, str]:
    """(scheme, host, port) of an origin URL; ValueError with Go's words when it fails."""
    if not text.startswith("/") and "://" not in text and ":" not in text:
        raise ValueError(f'parse "{text}": invalid URI for request')
    u = urlsplit(text)
    host, port = split_origin(u.scheme == "https", u.netloc.rpartition("@")[2])
    return u.scheme, host, port


def validate(opts: Options) -> str:
    """nats-server's validateWebsocketOptions: its error text, or ""."""
    wo = opts.websocket
    if wo.port == 0:
        return ""
    if wo.tls is None and not wo.no_tls:
        return "websocket requires TLS configuration"
    for ao in wo.allowed_origins:
        u = urlsplit(ao)
        if not ao or ("://" not in ao and not ao.startswith("/")):
            return f'unable to parse allowed origin: parse "{ao}": invalid URI for request'
        if u.scheme not in ("http", "https"):
            return (f'unable to parse allowed origin "{ao}": allowed origins must be absolute URLs '
                    "with http or https scheme")
        if not u.netloc:
            return f'unable to parse allowed origin "{ao}": host is required'
        try:
            split_origin(u.scheme == "https", u.netloc)
        except ValueError as e:
            return f"unable to parse allowed origin: {e}"
    if wo.no_auth_user:
        names = {u.user for u in opts.users if not u.nkey} | {u.nkey for u in opts.users if u.nkey}
        if not opts.users:
            return f'no_auth_user: "{wo.no_auth_user}" present, but users/nkeys are not defined'
        if wo.no_auth_user not in names:
            return f'no_auth_user: "{wo.no_auth_user}" not present as user or nkey in authorization block or account configuration'
    if opts.users:
        if wo.username:
            return "websocket authentication username not compatible with presence of users/nkeys"
        if wo.token:
            return "websocket authentication token not compatible with presence of users/nkeys"
    if wo.jwt_cookie and not (opts.operators or opts.trusted_keys):
        return (f'trusted operators or trusted keys configuration is required for JWT '
                f'authentication via cookie "{wo.jwt_cookie}"')
    for name in wo.headers:
        low = name.lower()
        if low in _RESERVED_HEADERS:
            return f'websocket: invalid header "{name}" not allowed'
        if low.startswith("sec-websocket-"):
            return f'websocket: invalid header "{name}", "Sec-WebSocket-" prefix not allowed'
    return ""


def go_struct(wo: WebsocketOptions) -> str:
    """Roughly Go's %v of WebsocketOpts (its fields' values in order, space-separated)."""
    def v(x: Any) -> str:
        if isinstance(x, list):
            return "[" + " ".join(map(str, x)) + "]"
        if isinstance(x, dict):
            return "map[" + " ".join(f"{k}:{val}" for k, val in sorted(x.items())) + "]"
        return go_value(x)

    return "{" + " ".join(v(getattr(wo, f)) for f in wo.__dataclass_fields__ if f != "tls") + "}"


def varz(wo: WebsocketOptions, port: int) -> dict[str, Any]:
    """The `websocket` block of /varz (nats-server's WebsocketOptsVarz: empty fields left out)."""
    if not wo.port:
        return {}
    v: dict[str, Any] = {"host": wo.host or "0.0.0.0", "port": port}
    fields: list[tuple[str, Any]] = [
        ("advertise", wo.advertise), ("no_auth_user", wo.no_auth_user), ("jwt_cookie", wo.jwt_cookie),
        ("handshake_timeout", int(wo.handshake_timeout * 1e9)), ("auth_timeout", wo.auth_timeout),
        ("no_tls", wo.no_tls), ("tls_map", bool(wo.tls and wo.tls.map)), ("same_origin", wo.same_origin),
        ("allowed_origins", list(wo.allowed_origins)), ("compression", wo.compression),
    ]  # fmt: skip
    for k, val in fields:
        if val:
            v[k] = val
    return v
