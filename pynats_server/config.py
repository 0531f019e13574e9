"""Applying a nats-server configuration file (`-c FILE`) to Options.

The keys and messages are nats-server 2.14's (server/opts.go): every problem is collected and
reported together, each as `file:line:col: reason`, warnings before errors. Keys that
nats-server knows but pynats-server does not implement are accepted with a warning, unless
ignoring them would change who may connect (auth callout, URL account resolvers) or what a
client is promised (JetStream): those are errors. Unknown keys are errors, except keys only
defined to be referenced as `$variables`.
"""

from __future__ import annotations

import re
from typing import Any

from . import const, operator_config, websocket_config
from .conf import Token
from .confread import (
    AuthBlock,
    Bad,
    go_map,
    go_parse_duration,
    go_quote,
    go_type,
    go_value,
    listen,
    want,
)
from .options import (
    AccountConfig,
    ExportConfig,
    ImportConfig,
    JetStreamLimits,
    JetStreamOptions,
    Options,
    Permissions,
    ResponsePermission,
    TLSOptions,
    User,
)

# Known to nats-server, accepted and ignored (with a warning).
_IGNORED = {
    "trace_headers", "disable_sublist_cache", "no_sublist_cache", "default_sentinel",
    "prof_port", "prof_block_rate", "max_sub_tokens",
    "max_subscription_tokens", "connect_error_reports", "reconnect_error_reports", "server_tags",
    "server_metadata", "feature_flags", "no_fast_producer_stall",
    "write_timeout", "default_js_domain", "gateway",
    "mqtt", "ocsp", "ocsp_cache", "proxies",
}  # fmt: skip
_CLUSTER_IGNORED = {"connect_backoff", "accounts", "write_deadline", "write_timeout"}


def apply_config_file(opts: Options, path: str) -> list[str]:
    """Read `path` into `opts`; returns the warnings, raises cli.UsageError on errors."""
    from .conf import ConfError, parse_file_tokens
    from .optcheck import UsageError

    try:
        tokens = parse_file_tokens(path)
    except ConfError as e:
        raise UsageError(str(e)) from None
    return apply_config(opts, tokens, path)


def apply_config(opts: Options, tokens: dict[str, Token], path: str = "") -> list[str]:
    """A parsed configuration (conf.parse_*_tokens) into `opts`, as nats-server would."""
    from .optcheck import UsageError

    m = _Mapper(opts)
    if not tokens:
        m.warnings.append(f"{path}: config has no values or is empty")
    for key, tok in tokens.items():
        m.guarded(m.top, key, tok)
    operator_config.finish(m)
    if m.errors:
        raise UsageError("\n".join(m.warnings + m.errors))
    return m.warnings


def _go_duration(seconds: float) -> str:
    from .gotime import go_duration

    return go_duration(seconds)


class _Mapper:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self._js: JetStreamOptions | None = opts.jetstream
        # Operator mode (operator_config.py): where `operator` was, and whether a resolver was.
        self.operator_tok: Token | None = None
        self.resolver_seen = False

    def guarded(self, fn: Any, key: str, tok: Token) -> None:
        try:
            fn(key, tok)
        except Bad as e:
            self.errors.append(str(e))
        except ValueError as e:
            # A NUL in a path that is opened or checked while the file is read (found by
            # fuzzing): Go's system calls refuse it with EINVAL.
            if "null" not in str(e):
                raise
            self.error(tok, f"{key}: invalid argument")

    def error(self, tok: Token, reason: str) -> None:
        self.errors.append(f"{tok.source}: {reason}")

    def invalid_use(self, tok: Token, field: str, reason: str) -> None:
        self.warnings.append(f'{tok.source}: invalid use of field "{field}": {reason}')

    def unknown(self, key: str, tok: Token) -> None:
        if not tok.used:
            self.error(tok, f"unknown field {go_quote(key)}")

    def ignored(self, key: str, tok: Token) -> None:
        self.warnings.append(
            f'{tok.source}: "{key}" is not supported by pynats-server and is ignored'
        )

    def duration(self, field: str, tok: Token) -> float:
        """nats-server's parseDuration: a Go duration string, or (deprecated) seconds."""
        if type(tok.value) is str:
            try:
                return go_parse_duration(tok.value)
            except ValueError as e:
                raise Bad(f"{tok.source}: error parsing {field}: {e}") from None
        seconds = want(tok, int)
        self.invalid_use(tok, field, f"{field} should be converted to a duration")
        return float(seconds)

    # -- top level

    def top(self, key: str, tok: Token) -> None:
        o = self.opts
        k = key.lower()
        simple = {"port": ("port", int), "client_advertise": ("client_advertise", str),
                  "host": ("host", str), "net": ("host", str), "debug": ("debug", bool),
                  "trace": ("trace", bool), "logtime": ("logtime", bool),
                  "logfile": ("log_file", str), "log_file": ("log_file", str),
                  "pidfile": ("pid_file", str), "pid_file": ("pid_file", str),
                  "ports_file_dir": ("ports_file_dir", str), "max_pending": ("max_pending", int),
                  "http_port": ("http_port", int), "monitor_port": ("http_port", int),
                  "https_port": ("https_port", int), "allow_non_tls": ("allow_non_tls", bool),
                  "max_subscriptions": ("max_subscriptions", int),
                  "max_subs": ("max_subscriptions", int), "ping_max": ("ping_max", int),
                  "no_header_support": ("no_header_support", bool),
                  "http_base_path": ("http_base_path", str), "max_closed_clients": ("max_closed_clients", int),
                  "logfile_size_limit": ("log_size_limit", int), "log_size_limit": ("log_size_limit", int),
                  "logfile_max_num": ("log_max_num", int), "log_max_num": ("log_max_num", int),
                  "logtime_utc": ("logtime_utc", bool), "max_traced_msg_len": ("max_traced_msg_len", int),
                  "syslog": ("syslog", bool), "remote_syslog": ("remote_syslog", str)}  # fmt: skip
        if k in simple:
            attr, typ = simple[k]
            setattr(o, attr, want(tok, typ))
        elif k == "listen":
            host, o.port = listen(tok)
            if host:
                o.host = host
        elif k == "http":
            o.http_host, o.http_port = listen(tok)
        elif k == "https":
            o.http_host, o.https_port = listen(tok)
        elif k == "tls":
            tls = self.tls(tok, client=True)
            if tls is not None:
                o.tls = tls
        elif k == "server_name":
            if " " in want(tok, str):
                self.error(tok, "server name cannot contain spaces")
            else:
                o.server_name = tok.value
        elif k == "trace_verbose":
            o.trace = o.trace_verbose = want(tok, bool)
        elif k in ("max_control_line", "max_payload"):
            if want(tok, int) > (1 << 31) - 1:
                self.error(tok, f"{key} value is too big")
            else:
                setattr(o, k, tok.value)
        elif k in ("max_connections", "max_conn"):
            o.max_connections = want(tok, int) or -1  # 0 means none, as in nats-server
        elif k in ("ping_interval", "write_deadline"):
            setattr(o, k, self.duration(k, tok))
        elif k in ("lame_duck_duration", "lame_duck_grace_period"):
            self.lame_duck(k, tok)
        elif k == "authorization":
            self.authorization(tok)
        elif k == "no_auth_user":
            o.no_auth_user = want(tok, str)
        elif k == "cluster":
            self.cluster(tok)
        elif k in ("leaf", "leafnodes"):
            from . import leaf_config

            leaf_config.apply(self, tok)
        elif k == "jetstream":
            self.jetstream(tok)
        elif k in ("store_dir", "storedir"):
            js = self.js_options()
            if js.store_dir:
                self.error(tok, "Duplicate 'store_dir' configuration")
            else:
                js.store_dir = want(tok, str)
        elif k == "proxy_protocol":
            if want(tok, bool):
                self.error(tok, "the PROXY protocol is not supported")
        elif k in operator_config.KEYS:
            operator_config.apply(self, k, tok)
        elif k in websocket_config.KEYS:
            websocket_config.apply(self, tok)
        elif k == "accounts":
            self.accounts(tok)
        elif k in ("system_account", "system"):
            o.system_account = want(tok, str)
        elif k in ("no_system_account", "no_system", "no_sys_acc"):
            o.no_system_account = want(tok, bool)
        elif k in ("mappings", "maps"):
            self.error(tok, "subject mappings are not supported yet")
        elif k in _IGNORED:
            self.ignored(key, tok)
        else:
            self.unknown(key, tok)

    def lame_duck(self, k: str, tok: Token) -> None:
        try:
            seconds = go_parse_duration(want(tok, str))
        except ValueError as e:
            raise Bad(f"{tok.source}: error parsing {k}: {e}") from None
        if k == "lame_duck_duration" and seconds < const.LAME_DUCK_MIN_DURATION:
            self.error(
                tok, f"invalid lame_duck_duration of {_go_duration(seconds)}, minimum is 30 seconds"
            )
        elif k == "lame_duck_grace_period" and seconds < 0:
            self.error(tok, "invalid lame_duck_grace_period, needs to be positive")
        else:
            setattr(self.opts, k, seconds)

    # -- jetstream

    def js_options(self) -> JetStreamOptions:
        """The JetStream options, made (not yet enabled) when a key names one first."""
        if self._js is None:
            self._js = JetStreamOptions()
        return self._js

    def jetstream(self, tok: Token) -> None:
        """nats-server's parseJetStream: `true`/`false`, "enabled"/"disabled", or a block."""
        v = tok.value
        enable = True
        if type(v) is str:
            if v.lower() not in ("enabled", "enable", "disabled", "disable"):
                raise Bad(f"{tok.source}: Expected 'enabled' or 'disabled' for string value, got '{v}'")
            enable = v.lower().startswith("enable")
        elif type(v) is dict:
            js = self.js_options()
            for key, t in v.items():
                k = key.lower()
                if k in ("enable", "enabled"):
                    enable = want(t, bool)
                elif k == "strict":
                    if type(t.value) is not bool:
                        raise Bad(f"{t.source}: Expected 'true' or 'false' for bool value, got '{t.value}'")
                    js.strict = t.value
                elif k in ("store", "store_dir", "storedir"):
                    if js.store_dir:
                        raise Bad(f"{t.source}: Duplicate 'store_dir' configuration")
                    js.store_dir = want(t, str)
                elif k in ("sync", "sync_interval"):
                    if type(t.value) is str and t.value.lower() == "always":
                        js.sync_always = True
                    else:
                        js.sync_interval = self.duration(k, t)
                elif k in ("max_memory_store", "max_mem_store", "max_mem"):
                    js.max_memory = self.storage_size("max_mem_store", t)
                elif k in ("max_file_store", "max_file"):
                    js.max_storage = self.storage_size("max_file_store", t)
                elif k == "domain":
                    js.domain = want(t, str)
                elif k in ("key", "ek", "encryption_key", "prev_key", "prev_ek", "prev_encryption_key",
                           "cipher", "tpm"):
                    self.error(t, "JetStream encryption is not supported")
                elif k in ("extension_hint", "limits", "unique_tag", "max_outstanding_catchup",
                           "max_buffered_size", "max_buffered_msgs", "request_queue_limit",
                           "info_queue_limit", "meta_compact", "meta_compact_size"):
                    self.ignored(f"jetstream.{key}", t)
                else:
                    self.unknown(key, t)
        else:
            enable = want(tok, bool)
        if enable:
            self.opts.jetstream = self.js_options()
        else:
            self.opts.jetstream = None

    def storage_size(self, what: str, tok: Token) -> int:
        """nats-server's getStorageSize: an integer, or a string ending in K, M, G or T (1024s)."""
        v = tok.value
        if type(v) is int:
            return v
        if type(v) is not str:
            raise Bad(f"{tok.source}: {what} must be int64 or string")
        if not v:
            return 0
        mult = {"K": 10, "M": 20, "G": 30, "T": 40}.get(v[-1])
        try:
            num = int(v[:-1])
        except ValueError:
            raise Bad(f'{tok.source}: {what} strconv.ParseInt: parsing {go_quote(v[:-1])}: invalid syntax') from None
        if mult is None:
            raise Bad(f"{tok.source}: {what} sizes defined as strings must end in K, M, G, T")
        return num << mult

    def account_jetstream(self, tok: Token) -> JetStreamLimits | None:
        """An account's `jetstream`: enabled/disabled, or its limits (parseJetStreamForAccount)."""
        v = tok.value
        if type(v) is bool:
            return JetStreamLimits() if v else None
        if type(v) is str:
            if v.lower() in ("enabled", "enable"):
                return JetStreamLimits()
            if v.lower() in ("disabled", "disable"):
                return None
            raise Bad(f"{tok.source}: Expected 'enabled' or 'disabled' for string value, got '{v}'")
        lim = JetStreamLimits()
        for key, t in want(tok, dict).items():
            k = key.lower()
            if k in ("max_memory", "max_mem", "mem", "memory"):
                lim.max_memory = self.storage_size(key, t)
            elif k in ("max_store", "max_file", "max_disk", "store", "disk"):
                lim.max_storage = self.storage_size(key, t)
            elif k in ("max_streams", "streams"):
                lim.max_streams = want(t, int)
            elif k in ("max_consumers", "consumers"):
                lim.max_consumers = want(t, int)
            elif k in ("max_bytes_required", "max_stream_bytes", "max_bytes"):
                lim.max_bytes_required = want(t, bool)
            elif k in ("mem_max_stream_bytes", "memory_max_stream_bytes"):
                lim.memory_max_stream_bytes = self.storage_size(key, t)
            elif k in ("disk_max_stream_bytes", "store_max_stream_bytes"):
                lim.storage_max_stream_bytes = self.storage_size(key, t)
            elif k == "max_ack_pending":
                lim.max_ack_pending = want(t, int)
            elif k == "cluster_traffic":
                self.ignored(f"jetstream.{key}", t)
            else:
                self.unknown(key, t)
        return lim

    # -- accounts

    def accounts(self, tok: Token) -> None:
        """`accounts { NAME { users, exports, imports, default_permissions } }` or a list of
        names (nats-server parseAccounts)."""
        o = self.opts
        seen: set[str] = set()
        if type(tok.value) is list:
            for t in tok.value:
                name = want(t, str)
                if self.reserved_account(t, name) or self.duplicate_account(t, name, seen):
                    continue
                o.accounts.append(AccountConfig(name))
            return
        for name, t in want(tok, dict).items():
            if t.used:
                continue
            if type(t.value) is not dict:
                self.error(t, "Expected map entries for accounts")
                continue
            if self.reserved_account(t, name):
                continue
            acc = AccountConfig(name)
            o.accounts.append(acc)
            users: list[User] = []
            for key, v in t.value.items():
                k = key.lower()
                if k == "users":
                    users = self.users(v)
                elif k == "exports":
                    acc.exports = [e for e in map(self.export, want(v, list)) if e is not None]
                elif k == "imports":
                    acc.imports = [i for i in map(self.import_, want(v, list)) if i is not None]
                elif k == "default_permissions":
                    acc.default_permissions = self.permissions(v)
                elif k == "jetstream":
                    acc.jetstream = self.account_jetstream(v)
                elif k in ("limits", "msg_trace", "trace_dest", "nkey"):
                    self.ignored(f"accounts.{name}.{key}", v)
                elif k in ("mappings", "maps"):
                    self.error(v, "subject mappings are not supported yet")
                else:
                    self.unknown(key, v)
            if users and (o.username or o.authorization):
                what = "a single user/pass" if o.username else "a token"
                self.error(t, f"Can not have {what} and accounts")
                continue
            for u in users:
                key = u.nkey or u.user
                if any((x.nkey or x.user) == key for x in o.users):
                    self.error(t, f"Duplicate {'nkey' if u.nkey else 'user'} {go_quote(key)} detected")
                    continue
                u.account = name
                if u.permissions is None:
                    u.permissions = acc.default_permissions
                o.users.append(u)
        if not self.errors:
            from .accounts import AccountError, build_accounts

            try:
                build_accounts(o)
            except AccountError as e:
                self.error(tok, str(e))

    def reserved_account(self, tok: Token, name: str) -> bool:
        if name in (const.GLOBAL_ACCOUNT,):
            self.error(tok, f"{go_quote(name)} is a Reserved Account")
            return True
        return False

    def duplicate_account(self, tok: Token, name: str, seen: set[str]) -> bool:
        if name in seen:
            self.error(tok, f"Duplicate Account Entry: {name}")
            return True
        seen.add(name)
        return False

    def export(self, tok: Token) -> ExportConfig | None:
        if type(tok.value) is not dict:
            self.error(tok, f"Export Items should be a map with type entry, got {go_type(tok.value)}")
            return None
        ex: ExportConfig | None = None
        accounts: list[str] | None = None
        rt = threshold = None
        pos = 0
        for key, v in tok.value.items():
            k = key.lower()
            if k in ("stream", "service"):
                if ex is not None:
                    self.error(v, f"Detected {k} {go_quote(str(v.value))} but already saw a "
                                  f"{'service' if ex.service else 'stream'}")
                    continue
                ex = ExportConfig(want(v, str), service=(k == "service"))
            elif k in ("response", "response_type"):
                rt = {"single": "Singleton", "singleton": "Singleton", "stream": "Stream",
                      "chunk": "Chunked", "chunked": "Chunked"}.get(want(v, str).lower())  # fmt: skip
                if rt is None:
                    self.error(v, f"Unknown response type: {go_quote(v.value)}")
            elif k in ("threshold", "response_threshold", "response_max_time", "response_time"):
                try:
                    threshold = go_parse_duration(want(v, str))
                except ValueError:
                    self.error(v, "Expected response threshold to be a parseable time duration, "
                                  f"got {go_quote(v.value)}")
            elif k == "accounts":
                accounts = [str(want(a, str)) for a in want(v, list)]
            elif k == "account_token_position":
                pos = want(v, int)
            elif k in ("latency", "allow_trace"):
                self.ignored(key, v)
            else:
                self.unknown(key, v)
        if ex is None:
            return None
        if (rt is not None or threshold is not None) and not ex.service:
            self.error(tok, "Detected response directive on non-service")
            return None
        ex.accounts = accounts
        ex.account_token_position = pos
        if rt is not None:
            ex.response_type = rt
        if threshold is not None:
            ex.response_threshold = threshold
        return ex

    def import_(self, tok: Token) -> ImportConfig | None:
        if type(tok.value) is not dict:
            self.error(tok, f"Import Items should be a map with type entry, got {go_type(tok.value)}")
            return None
        im: ImportConfig | None = None
        to = prefix = ""
        share = False
        for key, v in tok.value.items():
            k = key.lower()
            if k in ("stream", "service"):
                if im is not None:
                    self.error(v, f"Detected {k} but already saw a {'service' if im.service else 'stream'}")
                    continue
                if type(v.value) is not dict:
                    self.error(v, f"{k.capitalize()} entry should be an account map, got {go_type(v.value)}")
                    continue
                account = subject = ""
                for ak, av in v.value.items():
                    if ak.lower() == "account":
                        account = want(av, str)
                    elif ak.lower() == "subject":
                        subject = want(av, str)
                    else:
                        self.unknown(ak, av)
                if not account or not subject:
                    self.error(v, "Expect an account name and a subject")
                    continue
                im = ImportConfig(account, subject, service=(k == "service"))
            elif k == "to":
                to = want(v, str)
            elif k == "prefix":
                prefix = want(v, str)
            elif k == "share":
                share = want(v, bool)
            elif k == "allow_trace":
                self.ignored(key, v)
            else:
                self.unknown(key, v)
        if im is None:
            return None
        if to and prefix and not im.service:
            self.error(tok, "Stream import can not have a 'prefix' and a 'to' property")
            return None
        im.to, im.prefix, im.share = to, prefix, share
        return im

    # -- authorization

    def auth_block(self, tok: Token) -> AuthBlock:
        auth = AuthBlock()
        for key, t in want(tok, dict).items():
            k = key.lower()
            if k in ("user", "username"):
                auth.user = want(t, str)
            elif k in ("pass", "password"):
                auth.password = want(t, str)
            elif k == "token":
                auth.token = want(t, str)
            elif k == "timeout":
                auth.timeout = self.auth_timeout(key, t)
            elif k == "users":
                try:
                    auth.users = self.users(t)
                except Bad as e:
                    self.errors.append(str(e))
            elif k in ("default_permission", "default_permissions", "permissions"):
                auth.default_permissions = self.permissions(t)
            elif k in ("auth_callout", "auth_hook"):
                auth.unsupported = "auth callout is not supported"
            elif k == "proxy_required":
                if want(t, bool):
                    auth.unsupported = "proxy_required is not supported"
            else:
                self.unknown(key, t)
        if auth.default_permissions is not None:
            # nats-server's applyDefaultPermissions: for users without their own.
            for u in auth.users or ():
                if u.permissions is None:
                    u.permissions = auth.default_permissions
        return auth

    def users(self, tok: Token) -> list[User]:
        """nats-server's parseUsers: user/password entries and nkey entries."""
        from . import nkeys_util

        if type(tok.value) is not list:
            raise Bad(f"{tok.source}: Expected users field to be an array, got {go_map(tok.value)}")
        out = []
        for t in tok.value:
            if type(t.value) is not dict:
                self.error(t, f"Expected user entry to be a map/struct, got {go_value(t.value)}")
                continue
            u = User()
            last = t
            for key, v in t.value.items():
                last = v
                k = key.lower()
                if k == "nkey":
                    u.nkey = want(v, str)
                elif k in ("user", "username"):
                    u.user = want(v, str)
                elif k in ("pass", "password"):
                    u.password = want(v, str)
                elif k in ("permission", "permissions", "authorization"):
                    u.permissions = self.permissions(v)
                elif k in ("allowed_connection_types", "connection_types", "clients"):
                    u.allowed_connection_types = self.connection_types(v)
                elif k == "proxy_required":
                    if want(v, bool):
                        self.error(v, "proxy_required is not supported")
                else:
                    self.unknown(key, v)
            if not u.nkey and not u.user:
                raise Bad(f"{last.source}: User entry requires a user")
            if u.nkey:
                if not nkeys_util.is_valid_user_key(u.nkey):
                    raise Bad(f"{last.source}: Not a valid public nkey for a user")
                if u.user or u.password:
                    raise Bad(f"{last.source}: Nkey users do not take usernames or passwords")
            out.append(u)
        return out

    def connection_types(self, tok: Token) -> set[str]:
        from .auth import CONNECTION_TYPES

        v = tok.value
        if type(v) is str:
            names = [v]
        elif type(v) is list:
            names = []
            for t in v:
                if type(t.value) is str:
                    names.append(t.value)
                else:
                    self.error(t, f"error parsing allowed connection types: unsupported type in array {go_type(t.value)}")
        else:
            raise Bad(f"{tok.source}: error parsing allowed connection types: unsupported type {go_type(v)}")
        unknown = [n.upper() for n in names if n.upper() not in CONNECTION_TYPES]
        if unknown:
            self.error(tok, "invalid connection types [" + " ".join(go_quote(n) for n in unknown) + "]")
        return {n.upper() for n in names if n.upper() in CONNECTION_TYPES}

    def permissions(self, tok: Token) -> Permissions:
        """nats-server's parseUserPermissions."""
        if type(tok.value) is not dict:
            raise Bad(f"{tok.source}: Expected permissions to be a map/struct, got {go_value(tok.value)}")
        p = Permissions()
        for key, v in tok.value.items():
            k = key.lower()
            if k in ("publish", "pub", "import"):
                p.publish_allow, p.publish_deny = self.perm_lists(v)
            elif k in ("subscribe", "sub", "export"):
                p.subscribe_allow, p.subscribe_deny = self.perm_lists(v)
            elif k in ("allow_responses", "publish_allow_responses"):
                if type(v.value) is bool:
                    p.response = ResponsePermission() if v.value else None
                else:
                    p.response = self.allow_responses(v)
            else:
                self.unknown_in(v, f"Unknown field {go_quote(key)} parsing permissions")
        if p.response is not None and p.publish_allow is None:
            p.publish_allow = []  # responses only, unless publishing was allowed too
        return p

    def allow_responses(self, tok: Token) -> ResponsePermission | None:
        if type(tok.value) is not dict:
            self.error(tok, "error parsing response permissions, expected a boolean or a map")
            return None
        rp = ResponsePermission()
        for key, v in tok.value.items():
            k = key.lower()
            if k in ("max", "max_msgs", "max_messages", "max_responses"):
                n = want(v, int)
                if n != 0:  # 0 keeps the default; negative is no limit
                    rp.max_msgs = n
            elif k in ("expires", "expiration", "ttl"):
                if type(v.value) is not str:
                    self.error(v, "error parsing expires, not a duration string")
                    return None
                try:
                    ttl = go_parse_duration(v.value)
                except ValueError as e:
                    self.error(v, f"error parsing expires: {e}")
                    return None
                if ttl != 0:
                    rp.expires = ttl
            else:
                self.unknown_in(v, f"Unknown field {go_quote(key)} parsing permissions")
        return rp

    def unknown_in(self, tok: Token, reason: str) -> None:
        if not tok.used:
            self.error(tok, reason)

    def perm_lists(self, tok: Token) -> tuple[list[str] | None, list[str] | None]:
        """`"a"`, `["a", "b"]` (allow) or `{allow: ..., deny: ...}`."""
        v = tok.value
        if isinstance(v, dict):
            allow = deny = None
            for key, t in v.items():
                k = key.lower()
                if k == "allow":
                    allow = self.subject_list(t, t.source)
                elif k == "deny":
                    deny = self.subject_list(t, t.source)
                else:
                    self.unknown_in(
                        t,
                        f"Unknown field name {go_quote(key)} parsing subject permissions, only "
                        "'allow' or 'deny' are permitted",
                    )
            return allow, deny
        # nats-server reports problems in this form without a position.
        return self.subject_list(tok, ""), None

    def subject_list(self, tok: Token, where: str) -> list[str] | None:
        """nats-server's parsePermSubjects: a subject or an array of subjects, each a valid
        subject or `subject queue`."""
        from .protocol.subjects import is_valid_subject

        at = f"{where}: " if where else ""
        v = tok.value
        if type(v) is str:
            subjects = [v]
        elif type(v) is list:
            subjects = []
            for t in v:
                if type(t.value) is not str:
                    self.errors.append(f"{t.source}: Subject in permissions array cannot be cast to string")
                    return None
                subjects.append(t.value)
        else:
            self.errors.append(
                f"{at}Expected subject permissions to be a subject, or array of subjects, got {go_type(v)}"
            )
            return None
        for s in subjects:
            if not is_valid_subject(s.encode()):
                parts = s.split()
                if len(parts) != 2:
                    self.errors.append(f"{at}subject {go_quote(s)} is not a valid subject")
                    return None
                if not is_valid_subject(parts[0].encode()):
                    self.errors.append(f"{at}subject {go_quote(parts[0])} is not a valid subject")
                    return None
        return subjects

    def auth_timeout(self, key: str, tok: Token) -> float:
        v = tok.value
        if type(v) in (int, float):
            seconds = float(v)
        elif type(v) is str:
            try:
                seconds = go_parse_duration(v)
            except ValueError as e:
                raise Bad(
                    f"{tok.source}: error parsing authorization config, 'timeout' {e}"
                ) from None
        else:
            raise Bad(f"{tok.source}: error parsing authorization config, 'timeout' wrong type")
        if seconds > 60:
            self.invalid_use(
                tok, key,
                f"timeout of {go_value(v)} ({seconds:f} seconds) is high, consider keeping it "
                "under 60 seconds. possibly caused by unquoted duration; use '1m' instead of 1m, "
                "for example",
            )  # fmt: skip
        return seconds

    def authorization(self, tok: Token) -> None:
        auth = self.auth_block(tok)
        o = self.opts
        if (auth.user or auth.password) and auth.token:
            self.error(tok, "Cannot have a user/pass and token")
            return
        if auth.unsupported:
            self.error(tok, auth.unsupported)
            return
        if auth.users is not None:
            if auth.user:
                self.error(tok, "Can not have a single user/pass and a users array")
                return
            if auth.token:
                self.error(tok, "Can not have a token and a users array")
                return
        # A single user's permissions apply to nobody: nats-server ignores them.
        o.username, o.password, o.authorization = auth.user, auth.password, auth.token
        if auth.timeout:
            o.auth_timeout = auth.timeout
        seen = {u.nkey or u.user for u in o.users}
        for u in auth.users or ():
            name = u.nkey or u.user
            if name in seen:
                self.error(tok, f"Duplicate {'nkey' if u.nkey else 'user'} {go_quote(name)} detected")
                return
            seen.add(name)
        o.users = o.users + list(auth.users or ())

    # -- tls

    def tls(self, tok: Token, *, client: bool) -> TLSOptions | None:
        """nats-server's parseTLS (errors at the field) then GenTLSConfig (errors at the
        block): the options, or None after recording the error."""
        from .tlsctx import TLSConfigError, check_options, route_client_context, server_context

        t = TLSOptions()
        for key, v in want(tok, dict).items():
            k = key.lower()
            try:
                if not self.tls_key(t, k, key, v, client):
                    return None
            except Bad as e:
                self.errors.append(str(e))
                return None
        if t.cert_file and not t.key_file:
            self.error(tok, "missing 'key_file' in TLS configuration")
            return None
        try:
            check_options(t)
        except TLSConfigError as e:
            self.error(tok, str(e))
            return None
        try:
            server_context(t, route=not client)
            if not client:
                route_client_context(t)
        except TLSConfigError as e:
            self.error(tok, str(e))
            return None
        return t

    def tls_key(self, t: TLSOptions, k: str, key: str, v: Token, client: bool) -> bool:
        bad = "error parsing tls config, "
        files = {"cert_file": "cert_file", "key_file": "key_file", "ca_file": "ca_file"}
        bools = ("insecure", "verify", "verify_and_map", "verify_cert_and_check_known_urls",
                 "allow_insecure_cipher_suites")  # fmt: skip
        if k in files:
            if type(v.value) is not str:
                self.error(v, f"{bad}expected '{k}' to be filename")
                return False
            setattr(t, files[k], v.value)
        elif k in bools:
            if type(v.value) is not bool:
                self.error(v, f"{bad}expected '{k}' to be a boolean")
                return False
            on = v.value
            if k == "insecure":
                t.insecure = on
            elif k == "verify":
                t.verify = on
            elif k == "verify_and_map":
                t.verify = t.verify or on
                t.map = on
            elif k == "verify_cert_and_check_known_urls":
                if on and client:
                    self.error(v, "verify_cert_and_check_known_urls not supported in this context")
                    return False
                t.verify = t.verify or on
                t.check_known_urls = on
            else:
                t.allow_insecure_ciphers = on
        elif k in ("cipher_suites", "curve_preferences"):
            items = want(v, list)
            if not items:
                self.error(v, f"{bad}'{k}' cannot be empty")
                return False
            names = [str(want(i, str)) for i in items]
            from .tlsctx import CURVES, INSECURE_CIPHERS, SECURE_CIPHERS

            for i, n in zip(items, names, strict=True):
                if k == "cipher_suites" and n not in SECURE_CIPHERS and n not in INSECURE_CIPHERS:
                    self.error(i, f"unrecognized cipher {n}")
                    return False
                if k == "curve_preferences" and n not in CURVES:
                    self.error(i, f"unrecognized curve preference {n}")
                    return False
            if k == "cipher_suites":
                t.ciphers = names
            else:
                t.curve_preferences = names
        elif k == "timeout":
            val = v.value
            if type(val) in (int, float):
                t.timeout = float(val)
            elif type(val) is str:
                try:
                    t.timeout = go_parse_duration(val)
                except ValueError as e:
                    self.error(v, f"{bad}'timeout' {e}")
                    return False
            else:
                self.error(v, f"{bad}'timeout' wrong type")
                return False
        elif k == "connection_rate_limit":
            if type(v.value) is not int:
                self.error(v, f"{bad}'connection_rate_limit' wrong type")
                return False
            t.rate_limit = v.value
        elif k == "pinned_certs":
            if type(v.value) is not list:
                self.error(v, f"{bad}expected 'pinned_certs' to be a list of hex-encoded sha256 of DER "
                              "encoded SubjectPublicKeyInfo")  # fmt: skip
                return False
            if v.value:
                pins = set()
                for i in v.value:
                    pin = str(want(i, str)).lower()
                    if not re.fullmatch(r"[a-f0-9]{64}", pin):
                        self.error(i, f"{bad}'pinned_certs' key {pin} does not look like hex-encoded sha256 "
                                      "of DER encoded SubjectPublicKeyInfo")  # fmt: skip
                        return False
                    pins.add(pin)
                t.pinned_certs = pins
        elif k in ("handshake_first", "first", "immediate"):
            val = v.value
            if type(val) is bool:
                t.handshake_first = val
            elif type(val) is str:
                low = val.lower()
                if low in ("true", "on"):
                    t.handshake_first = True
                elif low in ("false", "off"):
                    t.handshake_first = False
                elif low in ("auto", "auto_fallback"):
                    t.handshake_first, t.handshake_first_fallback = True, 0.05
                else:
                    try:
                        t.handshake_first_fallback = go_parse_duration(val)
                    except ValueError:
                        self.error(v, f'field {go_quote(key)}\'s value {go_quote(val)} is invalid')
                        return False
                    t.handshake_first = True
            else:
                self.error(v, f"field {go_quote(key)} should be a boolean or a string, got {go_type(val)}")
                return False
        elif k == "min_version":
            val = v.value
            if type(val) is not str:
                self.error(v, f"error parsing tls config: 'min_version' wrong type: {go_value(val)}")
                return False
            if val not in ("1.0", "1.1", "1.2", "1.3"):
                self.error(v, f"error parsing tls config: unknown version: {val}")
                return False
            if val in ("1.0", "1.1"):
                self.error(v, f"error parsing tls config: unsupported TLS version: TLS {val}")
                return False
            t.min_version = val
        elif k in ("cert_store", "cert_match_by", "cert_match", "ca_certs_match", "cert_match_skip_invalid"):
            self.error(v, f"{bad}'{k}': certificate stores are Windows only and not supported")
            return False
        elif k in ("ocsp_peer", "certs", "certificates"):
            self.error(v, f"{bad}'{k}' is not supported by pynats-server")
            return False
        else:
            self.error(v, f"{bad}unknown field {go_quote(key)}")
            return False
        return True

    # -- cluster

    def cluster(self, tok: Token) -> None:
        if type(tok.value) is not dict:
            self.error(tok, f"Expected map to define cluster, got {go_type(tok.value)}")
            return
        for key, t in tok.value.items():
            self.guarded(self.cluster_key, key, t)
        c = self.opts.cluster
        if c.port and not c.host:
            c.host = const.DEFAULT_HOST

    def cluster_key(self, key: str, tok: Token) -> None:
        c = self.opts.cluster
        k = key.lower()
        if k == "name":
            if " " in want(tok, str):
                self.error(tok, "cluster name cannot contain spaces")
            else:
                c.name = tok.value
        elif k == "listen":
            c.host, c.port = listen(tok)
        elif k == "port":
            c.port = want(tok, int)
        elif k in ("host", "net"):
            c.host = want(tok, str)
        elif k in ("advertise", "cluster_advertise"):
            c.advertise = want(tok, str)
        elif k == "no_advertise":
            c.no_advertise = want(tok, bool)
        elif k == "connect_retries":
            c.connect_retries = want(tok, int)
        elif k == "ping_max":
            c.ping_max = want(tok, int)
        elif k == "ping_interval":
            c.ping_interval = self.duration(k, tok)
            if c.ping_interval > const.ROUTE_MAX_PING_INTERVAL:
                max_ping = _go_duration(const.ROUTE_MAX_PING_INTERVAL)
                self.warnings.append(
                    f"{tok.source}: Cluster 'ping_interval' will reset to {max_ping} "
                    "which is the max for routes"
                )
        elif k == "authorization":
            self.cluster_authorization(tok)
        elif k == "routes":
            self.routes(tok)
        elif k == "tls":
            tls = self.tls(tok, client=False)
            if tls is not None:
                c.tls = tls
        elif k == "permissions":
            c.permissions = self.permissions(tok)
        elif k == "pool_size":
            if want(tok, int) != -1:
                self.warnings.append(
                    f"{tok.source}: cluster pool_size is not supported by pynats-server and is "
                    "ignored (routes are not pooled, as with pool_size: -1)"
                )
        elif k == "compression":
            if tok.value not in (False, "off", "disabled"):
                self.warnings.append(
                    f"{tok.source}: cluster compression is not supported by pynats-server and "
                    "is ignored (routes are not compressed)"
                )
        elif k in _CLUSTER_IGNORED:
            self.ignored(f"cluster.{key}", tok)
        else:
            self.unknown(key, tok)

    def cluster_authorization(self, tok: Token) -> None:
        auth = self.auth_block(tok)
        raw = {k.lower() for k in tok.value}
        if "users" in raw:
            self.error(tok, "Cluster authorization does not allow multiple users")
        elif auth.token:
            self.error(tok, "Cluster authorization does not support tokens")
        elif raw & {"auth_callout", "auth_hook"}:
            self.error(tok, "Cluster authorization does not support callouts")
        elif auth.unsupported:
            self.error(tok, f"cluster {auth.unsupported}")
        else:
            c = self.opts.cluster
            c.user, c.password = auth.user, auth.password
            if auth.timeout:
                c.auth_timeout = auth.timeout

    def routes(self, tok: Token) -> None:
        from .optcheck import UsageError, parse_url

        seen: set[str] = set()
        routes = []
        for t in want(tok, list):
            url = want(t, str)
            if url in seen:
                self.invalid_use(t, url, "Duplicate route entry detected")
                continue
            seen.add(url)
            try:
                r = parse_url(url, "route")
            except UsageError as e:
                self.error(t, str(e))
                continue
            r.port = r.port or const.DEFAULT_CLUSTER_PORT
            routes.append(r)
        self.opts.cluster.routes = routes
