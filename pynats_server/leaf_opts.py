"""Leaf node options: the `leafnodes {}` block of a configuration file (nats-server's
parseLeafNodes, parseLeafAuthorization and parseRemoteLeafNodes in opts.go).

nats-server has no command-line flags for leaf nodes, so neither do we. Keys nats-server
knows and pynats-server does not implement (compression, websocket remotes, proxies, JetStream
migration) are accepted with a warning when they ask for nothing, errors when ignoring them
would change what connects where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from . import const
from .options import TLSOptions

if TYPE_CHECKING:
    from .conf import Token
    from .config import _Mapper

DEFAULT_LEAFNODE_PORT = 7422
DEFAULT_RECONNECT = 1.0  # seconds (nats-server DEFAULT_LEAF_NODE_RECONNECT)
DEFAULT_FIRST_INFO_TIMEOUT = 1.0  # DEFAULT_LEAFNODE_INFO_WAIT


@dataclass
class LeafURL:
    """A remote to dial: `nats-leaf://[user:pass@]host:port` (or nats://, tls://)."""

    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_port}"

    @property
    def host_port(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"


@dataclass
class LeafUser:
    """An entry of `leafnodes { authorization { users [...] } }`."""

    user: str
    password: str = ""
    account: str = ""


@dataclass
class RemoteLeaf:
    """One entry of `leafnodes { remotes [...] }`: where to connect as a leaf node."""

    urls: list[LeafURL] = field(default_factory=list)
    account: str = ""  # the local account the connection is bound to ("": $G)
    credentials: str = ""  # a .creds file: user JWT and seed (signs the hub's nonce)
    nkey: str = ""  # a user seed
    tls: TLSOptions | None = None
    tls_required: bool = False  # `tls: true` or a tls:// URL without a tls block
    hub: bool = False
    deny_imports: list[str] = field(default_factory=list)
    deny_exports: list[str] = field(default_factory=list)
    no_randomize: bool = False
    first_info_timeout: float = DEFAULT_FIRST_INFO_TIMEOUT
    disabled: bool = False


@dataclass
class LeafNodeOptions:
    """`leafnodes {}`: the listener that accepts leaf nodes, its auth, and the remotes."""

    host: str = ""
    port: int = 0  # 0: no listener; -1: a random port
    advertise: str = ""
    no_advertise: bool = False
    user: str = ""
    password: str = ""
    account: str = ""  # the account the single authorization user binds to
    users: list[LeafUser] = field(default_factory=list)
    auth_timeout: float = 0.0  # 0: nats-server's default (the client one)
    tls: TLSOptions | None = None
    reconnect: float = DEFAULT_RECONNECT
    remotes: list[RemoteLeaf] = field(default_factory=list)
    isolate: bool = False

    @property
    def listening(self) -> bool:
        return self.port != 0

    @property
    def enabled(self) -> bool:
        return self.listening or bool(self.remotes)


def parse_leaf_url(text: str) -> LeafURL:
    """A remote URL as nats-server's parseURL reads it (default port 7422)."""
    u = urlsplit(text.strip())
    if not u.scheme or not u.hostname:
        raise ValueError(f"error parsing leafnode url [{text!r}]")
    try:
        port = u.port or DEFAULT_LEAFNODE_PORT
    except ValueError as e:
        raise ValueError(f"error parsing leafnode url [{text!r}]: {e}") from None
    user = unquote(u.username) if u.username is not None else None
    pw = unquote(u.password) if u.password is not None else None
    return LeafURL(u.scheme, u.hostname, port, user, pw)


# -- the configuration file ---------------------------------------------------------------

_IGNORED_KEYS = {"write_deadline", "write_timeout", "min_version", "minimum_version"}
_REMOTE_IGNORED = {"ws_compress", "ws_compression", "websocket_compress", "websocket_compression",
                   "ws_no_masking", "websocket_no_masking", "jetstream_cluster_migrate",
                   "js_cluster_migrate", "ignore_discovered_servers"}  # fmt: skip


def apply(m: _Mapper, tok: Token) -> None:
    """`leafnodes { ... }` into m.opts.leafnode."""
    from .config import _go_type

    if type(tok.value) is not dict:
        m.error(tok, f"Expected map to define leafnodes, got {_go_type(tok.value)}")
        return
    for key, t in tok.value.items():
        m.guarded(lambda k, v: _leaf_key(m, k, v), key, t)
    lo = m.opts.leafnode
    if lo.port and not lo.host:
        lo.host = const.DEFAULT_HOST


def _leaf_key(m: _Mapper, key: str, tok: Token) -> None:
    from .config import _listen, _want

    lo = m.opts.leafnode
    k = key.lower()
    if k == "listen":
        lo.host, lo.port = _listen(tok)
    elif k == "port":
        lo.port = _want(tok, int)
    elif k in ("host", "net"):
        lo.host = _want(tok, str)
    elif k == "authorization":
        _authorization(m, tok)
    elif k == "remotes":
        lo.remotes = _remotes(m, tok)
    elif k in ("reconnect", "reconnect_delay", "reconnect_interval"):
        lo.reconnect = m.duration("reconnect", tok)
    elif k == "tls":
        tls = m.tls(tok, client=False)
        if tls is not None:
            lo.tls = tls
    elif k in ("leafnode_advertise", "advertise"):
        lo.advertise = _want(tok, str)
    elif k == "no_advertise":
        lo.no_advertise = _want(tok, bool)
    elif k in ("isolate_leafnode_interest", "isolate"):
        lo.isolate = _want(tok, bool)
    elif k == "compression":
        _compression(m, "leafnodes", tok)
    elif k in _IGNORED_KEYS:
        m.ignored(f"leafnodes.{key}", tok)
    else:
        m.unknown(key, tok)


def _compression(m: _Mapper, where: str, tok: Token) -> None:
    if tok.value not in (False, "off", "disabled", "not supported"):
        m.warnings.append(
            f"{tok.source}: {where} compression is not supported by pynats-server and is "
            "ignored (leaf node connections are not compressed)"
        )


def _authorization(m: _Mapper, tok: Token) -> None:
    from .config import _want

    lo = m.opts.leafnode
    for key, t in _want(tok, dict).items():
        k = key.lower()
        if k in ("user", "username"):
            lo.user = _want(t, str)
        elif k in ("pass", "password"):
            lo.password = _want(t, str)
        elif k == "account":
            lo.account = _want(t, str)
        elif k == "timeout":
            v = t.value
            if type(v) in (int, float):
                lo.auth_timeout = float(v)
            elif type(v) is str:
                lo.auth_timeout = m.duration("timeout", t)
            else:
                m.error(t, "error parsing leafnode authorization config, 'timeout' wrong type")
        elif k == "users":
            lo.users = _users(m, t)
        elif k == "nkey":
            m.error(t, "leafnode nkey authorization is not supported by pynats-server")
        elif k == "proxy_required":
            if _want(t, bool):
                m.error(t, "proxy_required is not supported")
        else:
            m.unknown(key, t)
    if lo.users and lo.user:
        m.error(tok, "can not have a single user/pass and a users array")


def _users(m: _Mapper, tok: Token) -> list[LeafUser]:
    from .config import _go_map, _want

    if type(tok.value) is not list:
        m.error(tok, f"Expected users field to be an array, got {_go_map(tok.value)}")
        return []
    out = []
    for t in tok.value:
        u = LeafUser("")
        for key, v in _want(t, dict).items():
            k = key.lower()
            if k in ("user", "username"):
                u.user = _want(v, str)
            elif k in ("pass", "password"):
                u.password = _want(v, str)
            elif k == "account":
                u.account = _want(v, str)
            else:
                m.unknown(key, v)
        out.append(u)
    return out


def _remotes(m: _Mapper, tok: Token) -> list[RemoteLeaf]:
    from .config import _go_type

    if type(tok.value) is not list:
        m.error(tok, f"Expected remotes field to be an array, got {_go_type(tok.value)}")
        return []
    out = []
    for t in tok.value:
        if type(t.value) is not dict:
            m.error(t, f"Expected remote leafnode entry to be a map/struct, got {_go_type(t.value)}")
            continue
        r = RemoteLeaf()
        for key, v in t.value.items():
            k = key.lower()
            try:
                _remote_key(m, r, k, key, v)
            except Exception as e:  # _Bad and friends: one error, then the next key
                m.errors.append(str(e))
        if not r.urls:
            m.error(t, "remote leafnode requires at least one url")  # checked by validate in Go
            continue
        if r.tls is None and any(u.scheme in ("tls", "wss") for u in r.urls):
            r.tls_required = True
        out.append(r)
    return out


def _remote_key(m: _Mapper, r: RemoteLeaf, k: str, key: str, v: Token) -> None:
    from .config import _want

    if k in ("url", "urls"):
        vals = v.value if type(v.value) is list else [v]
        if type(v.value) not in (list, str):
            m.error(v, f"Expected remote leafnode url to be an array or string, got {v.value}")
            return
        for u in vals:
            try:
                r.urls.append(parse_leaf_url(_want(u, str)))
            except ValueError as e:
                m.error(u, str(e))
    elif k in ("account", "local"):
        r.account = _want(v, str)
    elif k in ("creds", "credentials"):
        import os

        r.credentials = os.path.expanduser(os.path.expandvars(_want(v, str)))
    elif k in ("nkey", "seed"):
        r.nkey = _want(v, str)
    elif k == "tls":
        if type(v.value) is bool:
            r.tls_required = v.value
        else:
            tls = m.tls(v, client=False)
            if tls is not None:
                r.tls = tls
    elif k == "hub":
        r.hub = _want(v, bool)
    elif k in ("deny_imports", "deny_import"):
        r.deny_imports = _subjects(v)
    elif k in ("deny_exports", "deny_export"):
        r.deny_exports = _subjects(v)
    elif k in ("no_randomize", "dont_randomize"):
        r.no_randomize = _want(v, bool)
    elif k == "first_info_timeout":
        r.first_info_timeout = m.duration(k, v)
    elif k == "disabled":
        r.disabled = _want(v, bool)
    elif k == "compression":
        _compression(m, "remote leafnode", v)
    elif k in ("isolate_leafnode_interest", "isolate", "request_isolation"):
        _want(v, bool)
        m.ignored(f"remotes.{key}", v)
    elif k == "proxy":
        m.error(v, "leafnode proxies are not supported by pynats-server")
    elif k in _REMOTE_IGNORED:
        m.ignored(f"remotes.{key}", v)
    else:
        m.unknown(key, v)


def _subjects(tok: Token) -> list[str]:
    v: Any = tok.value
    if type(v) is str:
        return [v]
    return [str(x.value) for x in v]
