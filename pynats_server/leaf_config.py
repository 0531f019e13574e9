"""The `leafnodes {}` block of a configuration file (nats-server's
parseLeafNodes, parseLeafAuthorization and parseRemoteLeafNodes in opts.go).

nats-server has no command-line flags for leaf nodes, so neither do we. Keys nats-server
knows and pynats-server does not implement (compression, websocket remotes, proxies, JetStream
migration) are accepted with a warning when they ask for nothing, errors when ignoring them
would change what connects where.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import const
from .confread import Mapper, go_map, go_type, listen, want
from .options import (
    LeafUser,
    RemoteLeaf,
    parse_leaf_url,
)

if TYPE_CHECKING:
    from .conf import Token


# -- the configuration file ---------------------------------------------------------------

_IGNORED_KEYS = {"write_deadline", "write_timeout", "min_version", "minimum_version"}
_REMOTE_IGNORED = {"ws_compress", "ws_compression", "websocket_compress", "websocket_compression",
                   "ws_no_masking", "websocket_no_masking", "jetstream_cluster_migrate",
                   "js_cluster_migrate", "ignore_discovered_servers"}  # fmt: skip


def apply(m: Mapper, tok: Token) -> None:
    """`leafnodes { ... }` into m.opts.leafnode."""
    if type(tok.value) is not dict:
        m.error(tok, f"Expected map to define leafnodes, got {go_type(tok.value)}")
        return
    for key, t in tok.value.items():
        m.guarded(lambda k, v: _leaf_key(m, k, v), key, t)
    lo = m.opts.leafnode
    if lo.port and not lo.host:
        lo.host = const.DEFAULT_HOST


def _leaf_key(m: Mapper, key: str, tok: Token) -> None:
    lo = m.opts.leafnode
    k = key.lower()
    if k == "listen":
        lo.host, lo.port = listen(tok)
    elif k == "port":
        lo.port = want(tok, int)
    elif k in ("host", "net"):
        lo.host = want(tok, str)
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
        lo.advertise = want(tok, str)
    elif k == "no_advertise":
        lo.no_advertise = want(tok, bool)
    elif k in ("isolate_leafnode_interest", "isolate"):
        lo.isolate = want(tok, bool)
    elif k == "compression":
        _compression(m, "leafnodes", tok)
    elif k in _IGNORED_KEYS:
        m.ignored(f"leafnodes.{key}", tok)
    else:
        m.unknown(key, tok)


def _compression(m: Mapper, where: str, tok: Token) -> None:
    if tok.value not in (False, "off", "disabled", "not supported"):
        m.warnings.append(
            f"{tok.source}: {where} compression is not supported by pynats-server and is "
            "ignored (leaf node connections are not compressed)"
        )


def _authorization(m: Mapper, tok: Token) -> None:
    lo = m.opts.leafnode
    for key, t in want(tok, dict).items():
        k = key.lower()
        if k in ("user", "username"):
            lo.user = want(t, str)
        elif k in ("pass", "password"):
            lo.password = want(t, str)
        elif k == "account":
            lo.account = want(t, str)
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
            from .nkeys_util import is_valid_user_key

            nk = want(t, str)
            if not is_valid_user_key(nk):
                m.error(t, "Not a valid public nkey for leafnode authorization")
            lo.nkey = nk
        elif k == "proxy_required":
            if want(t, bool):
                m.error(t, "proxy_required is not supported")
        else:
            m.unknown(key, t)
    # nats-server's validateLeafNodeAuthOptions
    if lo.users:
        if lo.user:
            m.error(tok, "can not have a single user/pass and a users array")
        elif lo.nkey:
            m.error(tok, "can not have a single nkey and a users array")
        else:
            seen: set[str] = set()
            for u in lo.users:
                if u.user in seen:
                    m.error(tok, f'duplicate user "{u.user}" detected in leafnode authorization')
                    break
                seen.add(u.user)


def _users(m: Mapper, tok: Token) -> list[LeafUser]:
    if type(tok.value) is not list:
        m.error(tok, f"Expected users field to be an array, got {go_map(tok.value)}")
        return []
    out = []
    for t in tok.value:
        u = LeafUser("")
        for key, v in want(t, dict).items():
            k = key.lower()
            if k in ("user", "username"):
                u.user = want(v, str)
            elif k in ("pass", "password"):
                u.password = want(v, str)
            elif k == "account":
                u.account = want(v, str)
            else:
                m.unknown(key, v)
        out.append(u)
    return out


def _remotes(m: Mapper, tok: Token) -> list[RemoteLeaf]:
    if type(tok.value) is not list:
        m.error(tok, f"Expected remotes field to be an array, got {go_type(tok.value)}")
        return []
    out = []
    for t in tok.value:
        if type(t.value) is not dict:
            m.error(t, f"Expected remote leafnode entry to be a map/struct, got {go_type(t.value)}")
            continue
        r = RemoteLeaf()
        for key, v in t.value.items():
            k = key.lower()
            try:
                _remote_key(m, r, k, key, v)
            except Exception as e:  # Bad and friends: one error, then the next key
                m.errors.append(str(e))
        if not r.urls:
            m.error(t, "remote leafnode requires at least one url")  # checked by validate in Go
            continue
        if r.tls is None and any(u.scheme in ("tls", "wss") for u in r.urls):
            r.tls_required = True
        out.append(r)
    return out


def _remote_key(m: Mapper, r: RemoteLeaf, k: str, key: str, v: Token) -> None:
    if k in ("url", "urls"):
        vals = v.value if type(v.value) is list else [v]
        if type(v.value) not in (list, str):
            m.error(v, f"Expected remote leafnode url to be an array or string, got {v.value}")
            return
        for u in vals:
            try:
                r.urls.append(parse_leaf_url(want(u, str)))
            except ValueError as e:
                m.error(u, str(e))
    elif k in ("account", "local"):
        r.account = want(v, str)
    elif k in ("creds", "credentials"):
        import os

        r.credentials = os.path.expanduser(os.path.expandvars(want(v, str)))
    elif k in ("nkey", "seed"):
        r.nkey = want(v, str)
    elif k == "tls":
        if type(v.value) is bool:
            r.tls_required = v.value
        else:
            tls = m.tls(v, client=False)
            if tls is not None:
                r.tls = tls
    elif k == "hub":
        r.hub = want(v, bool)
    elif k in ("deny_imports", "deny_import"):
        r.deny_imports = _subjects(v)
    elif k in ("deny_exports", "deny_export"):
        r.deny_exports = _subjects(v)
    elif k in ("no_randomize", "dont_randomize"):
        r.no_randomize = want(v, bool)
    elif k == "first_info_timeout":
        r.first_info_timeout = m.duration(k, v)
    elif k == "disabled":
        r.disabled = want(v, bool)
    elif k == "compression":
        _compression(m, "remote leafnode", v)
    elif k in ("isolate_leafnode_interest", "isolate", "request_isolation"):
        want(v, bool)
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
