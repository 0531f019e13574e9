"""Configuration reload: which options a running server may change, and how each change is
announced and applied (nats-server reload.go, 2.14).

`OPTIONS` is the one list of every option and its kind, in the order of nats-server's Options
struct (which is the order of its "Reloaded: ..." lines and decides which refusal is
reported first):
- `reload`: may change; the change is announced with nats-server's notice and applied by the
  entry's `apply` function (many need nothing more than the new options: they are read when
  used, e.g. the ping interval at the next ping);
- `refuse`: a change refuses the whole reload with nats-server's text,
  `config reload not supported for <Field>: old=<old>, new=<new>`;
- `ignore`: never compared (embedding-only settings such as `no_log`, kept as they are);
- `always`: announced on every reload, as nats-server announces `users` and `accounts`
  (its comparison of those always differs), which is also why every reload re-checks every
  client's authorization.
A future option (JetStream, leaf nodes, ...) is one more entry.

`diff()` is sans-IO: old and new options in, the changes (or a ReloadError) out. `reload()`
is the glue: it gets fresh options, checks them, diffs, then swaps them in and applies each
change, then re-checks clients (reload_auth.py) and logs "Reloaded server configuration".
Nothing is applied when anything is refused or fails to load.
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import const, netutil
from .options import ClusterOptions, Options, TLSOptions

if TYPE_CHECKING:
    from .core import ServerCore


class ReloadError(Exception):
    """A reload refused or failed; the text is what nats-server logs after
    "Failed to reload server configuration: "."""


# What a change sets off besides its own apply function (nats-server's IsLoggingChange,
# IsTraceLevelChange, IsAuthChange, IsTLSChange, IsClusterPermsChange).
LOGGING = "logging"
TRACE = "trace"
AUTH = "auth"
TLS = "tls"
CLUSTER_PERMS = "cluster_perms"


@dataclass
class Change:
    field: str  # nats-server's Options field name
    notice: str  # the "Reloaded: ..." line ("" for none)
    old: Any = None
    new: Any = None
    effects: frozenset[str] = frozenset()
    apply: Callable[[ServerCore, Change, ReloadContext], None] | None = None
    data: Any = None  # what a custom diff found (the routes added and removed, ...)


@dataclass
class DiffContext:
    """What the comparison needs from the running server: the ports it actually listens on
    (nats-server compares against those, and a new -1 means "the one we have")."""

    port: int = 0
    cluster_port: int = 0  # 0: no cluster listener


@dataclass
class ReloadContext:
    """State shared by the apply functions of one reload."""

    old: Options
    new: Options
    changes: list[Change]
    digest: str = ""
    tls_context: Any = None  # built before anything is applied: a bad file refuses the reload
    cluster_tls: tuple[Any, Any] | None = None
    monitor_tls: Any = None
    accounts: list[Any] = field(default_factory=list)
    effects: set[str] = field(default_factory=set)


# -- Go's %v of option values -----------------------------------------------------------------


def go_v(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    return str(v)


def go_dur(seconds: float) -> str:
    from .gotime import go_duration

    return go_duration(seconds)


def _refusal(name: str, old: str, new: str) -> ReloadError:
    return ReloadError(f"config reload not supported for {name}: old={old}, new={new}")


def go_parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """nats-server's parseHostPort; ValueError with Go's text."""
    if not text:
        raise ValueError("no hostport specified")
    hp = text
    if ":" not in hp.replace("[", "").replace("]", "") or (hp.startswith("[") and hp.endswith("]")):
        hp = f"{hp}:{default_port}"  # Go retries a missing port with the default one
    if hp.startswith("["):
        end = hp.find("]")
        if end < 0:
            raise ValueError(f"address {hp}: missing ']' in address")
        host, rest = hp[1:end], hp[end + 1 :]
        if not rest.startswith(":"):
            raise ValueError(f"address {hp}: missing port in address")
        port_text = rest[1:]
    else:
        host, _, port_text = hp.rpartition(":")
        if ":" in host:
            raise ValueError(f"address {hp}: too many colons in address")
    try:
        port = int(port_text.strip())
    except ValueError:
        raise ValueError(f'strconv.Atoi: parsing "{port_text.strip()}": invalid syntax') from None
    if port in (0, -1):
        port = default_port
    return host.strip(), port


# -- what a TLS block turns into -------------------------------------------------------------


def _file_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def tls_config_changed(old: TLSOptions | None, new: TLSOptions | None) -> bool:
    """Would nats-server see a different tls.Config? The certificates themselves count (a
    certificate renewed under the same file name is a change), and a CA pool always differs
    (Go's comparison of two CertPools is never equal), so a block with a ca_file is reloaded
    every time, as nats-server announces it every time."""
    if old is None or new is None:
        return (old is None) != (new is None)
    if old.ca_file or new.ca_file:
        return True

    def key(t: TLSOptions) -> tuple[Any, ...]:
        return (t.cert_file, t.key_file, t.verify, t.insecure, t.ciphers, t.curve_preferences,
                t.allow_insecure_ciphers, t.min_version,
                _file_bytes(t.cert_file) if t.cert_file else b"",
                _file_bytes(t.key_file) if t.key_file else b"")  # fmt: skip

    return key(old) != key(new)


def _tls_attr(o: Options, name: str, default: Any) -> Any:
    return getattr(o.tls, name) if o.tls is not None else default


# -- the comparison ---------------------------------------------------------------------------

ApplyFn = Callable[["ServerCore", Change, ReloadContext], None]
DiffFn = Callable[[Options, Options, DiffContext], "Change | None"]


@dataclass(frozen=True)
class Spec:
    """One option: nats-server's field name, how to read ours, and what a change does."""

    field: str
    kind: str  # "reload", "refuse", "ignore", "always", or "custom" (diff decides)
    get: Callable[[Options], Any] = lambda o: None
    notice: Callable[[Any], str] | None = None  # reload/always: the notice for the new value
    effects: frozenset[str] = frozenset()
    apply: ApplyFn | None = None
    fmt: Callable[[Any], str] = go_v  # refuse: Go's %v of the values
    diff: DiffFn | None = None  # custom


def diff(old: Options, new: Options, ctx: DiffContext) -> list[Change]:
    """The changes from `old` to `new`, in nats-server's order; ReloadError for the first
    option that may not change (nothing is applied then)."""
    changes: list[Change] = []
    for spec in OPTIONS:
        if spec.kind == "ignore":
            continue
        if spec.kind == "custom":
            assert spec.diff is not None
            ch = spec.diff(old, new, ctx)
            if ch is not None:
                changes.append(ch)
            continue
        a, b = spec.get(old), spec.get(new)
        if spec.kind != "always" and a == b:
            continue
        if spec.kind == "refuse":
            raise _refusal(spec.field, spec.fmt(a), spec.fmt(b))
        notice = spec.notice(b) if spec.notice is not None else ""
        changes.append(Change(spec.field, notice, a, b, spec.effects, spec.apply))
    return changes


# Custom comparisons: options whose rules are more than "equal or not".


def _websocket_diff(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    """nats-server refuses any change to the websocket block but for its TLS certificates
    (port -1 means the port in use)."""
    from dataclasses import replace

    from .websocket_config import go_struct

    a, b = replace(old.websocket, tls=None), replace(new.websocket, tls=None)
    if b.port == -1:
        b.port = a.port
    if a != b:
        raise ReloadError(f"config reload not supported for Websocket: old={go_struct(a)}, new={go_struct(b)}")
    return None


def _diff_port(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    # -1 (random) and 0 mean the port already listened on.
    if new.port in (const.RANDOM_PORT, 0) or new.port == ctx.port:
        return None
    raise _refusal("Port", str(ctx.port), str(new.port))


def _diff_client_advertise(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    if old.client_advertise == new.client_advertise:
        return None
    if new.client_advertise:
        try:
            go_parse_host_port(new.client_advertise, 0)
        except ValueError as e:
            raise ReloadError(f"invalid ClientAdvertise value of {new.client_advertise}, err={e}") from None
    # nats-server says "Reload:" here, not "Reloaded:".
    # The INFO's host and port follow (Server.build_info); as in nats-server, the URLs
    # gossiped to routes and clients (connect_urls) stay those of the start.
    return Change("ClientAdvertise", f"Reload: client_advertise = {new.client_advertise}",
                  old.client_advertise, new.client_advertise)


def _nkey_users(o: Options) -> list[tuple[Any, ...]]:
    return sorted((u.nkey, repr(u.permissions), u.account, sorted(u.allowed_connection_types))
                  for u in o.users if u.nkey)  # fmt: skip


def _diff_nkeys(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    a, b = _nkey_users(old), _nkey_users(new)
    # An nkey user bound to an account never compares equal in nats-server (its Account
    # holds live state), so those are announced on every reload.
    if a == b and not any(u[2] for u in a + b):
        return None
    return Change("Nkeys", "Reloaded: authorization nkey users", effects=frozenset({AUTH}))


def _diff_no_auth_user(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    a, b = old.no_auth_user, new.no_auth_user
    if a == b:
        return None
    # It may only go away together with the user it named.
    if a and not b and not any(not u.nkey and u.user == a for u in new.users):
        return None
    raise _refusal("NoAuthUser", a, b)


def _diff_system_account(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    a, b = old.system_account, new.system_account
    if a == b or (a == const.SYSTEM_ACCOUNT and not b):
        return None
    raise _refusal("SystemAccount", a, b)


def _cluster_key(c: ClusterOptions) -> tuple[Any, ...]:
    tls = c.tls
    return (c.name, c.advertise, c.no_advertise, c.connect_retries, c.user or "", c.password or "",
            float(c.route_auth_timeout()), c.tls_timeout, c.ping_interval, c.ping_max,
            repr(c.permissions), tls is not None and tls.map, tls is not None and tls.check_known_urls,
            tls.pinned_certs if tls is not None else None)  # fmt: skip


def _diff_cluster(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    a, b = old.cluster, new.cluster
    # nats-server's validateClusterOpts: the listener stays where it is.
    if a.host != b.host:
        raise ReloadError(f"config reload not supported for cluster host: old={a.host}, new={b.host}")
    old_port = ctx.cluster_port or a.port
    new_port = old_port if b.port == const.RANDOM_PORT else b.port
    if old_port != new_port:
        raise ReloadError(f"config reload not supported for cluster port: old={old_port}, new={new_port}")
    if b.advertise:
        try:
            go_parse_host_port(b.advertise, 0)
        except ValueError as e:
            raise ReloadError(f"invalid Cluster.Advertise value of {b.advertise}, err={e}") from None
    if _cluster_key(a) == _cluster_key(b) and not tls_config_changed(a.tls, b.tls):
        return None
    effects = {AUTH}  # nats-server re-checks accepted routes on any cluster change
    if repr(a.permissions) != repr(b.permissions):
        effects.add(CLUSTER_PERMS)
    return Change("Cluster", "Reloaded: cluster", a, b, frozenset(effects), _apply_cluster)


def _diff_leafnode(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    """Leaf node options are not reloaded here: any change refuses the reload (nats-server
    reloads some of them: remotes added or removed, TLS, compression)."""
    if old.leafnode != new.leafnode:
        raise ReloadError("config reload not supported for LeafNode: pynats-server does not reload leafnodes {}")
    return None


def _diff_routes(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    a, b = old.cluster.routes, new.cluster.routes
    remove = [r for r in a if r not in b]
    add = [r for r in b if r not in a]
    if not add and not remove:
        return None
    return Change("Routes", "Reloaded: cluster routes", apply=_apply_routes, data=(add, remove))


def _diff_tls(old: Options, new: Options, ctx: DiffContext) -> Change | None:
    if not tls_config_changed(old.tls, new.tls):
        return None
    state = "enabled" if new.tls is not None else "disabled"
    return Change("TLSConfig", f"Reloaded: tls = {state}", old.tls, new.tls, frozenset({TLS}), _apply_tls)


def _pid_notice(v: str) -> str:
    return f"Reloaded: pid_file = {v}" if v else ""  # nats-server says nothing when it goes


def _auth_timeout(o: Options) -> float:
    return float(o.client_auth_timeout())


# -- apply functions (run after the new options are in place; no awaiting) -------------------


def _apply_max_conn(srv: ServerCore, ch: Change, rc: ReloadContext) -> None:
    limit = max(0, ch.new)
    clients = [c for c in srv.clients.values() if not c.closed]
    extra = len(clients) - limit
    if extra > 0:
        # nats-server closes a random choice (map order); the newest connections go here.
        from .protocol import wire

        for c in sorted(clients, key=lambda c: c.cid, reverse=True)[:extra]:
            c.error(wire.E_MAX_CONNECTIONS)
            c.send_err(wire.E_MAX_CONNECTIONS)
            c.close_connection("Maximum Connections Exceeded")
        srv.flush_dirty()
        srv.log.notice(f"Closed {extra} connections to fall within max_connections")


def _apply_max_control_line(srv: ServerCore, ch: Change, rc: ReloadContext) -> None:
    for c in srv.clients.values():
        c.parser.max_control_line = ch.new


def _apply_max_payload(srv: ServerCore, ch: Change, rc: ReloadContext) -> None:
    for c in srv.clients.values():
        c.parser.max_payload = ch.new


def _apply_pid_file(srv: ServerCore, ch: Change, rc: ReloadContext) -> None:
    if not ch.new:
        return
    try:
        with open(ch.new, "w", encoding="ascii") as f:
            f.write(str(os.getpid()))
    except OSError as e:
        srv.log.error(f"Failed to write pidfile: {e}")


def _apply_ports_file_dir(srv: ServerCore, ch: Change, rc: ReloadContext) -> None:
    # The ports file moves: the old one goes, the new one is written.
    srv.opts = rc.old
    srv.remove_ports_file()
    srv.opts = rc.new
    srv.write_ports_file()


def _apply_tls(srv: ServerCore, ch: Change, rc: ReloadContext) -> None:
    # New handshakes use the new context; connections keep the session they have.
    srv.tls_context = rc.tls_context
    if rc.monitor_tls is not None and srv.monitor is not None:
        srv.monitor.tls_context = rc.monitor_tls  # HTTPS monitoring shows the new certificate


def _apply_cluster(srv: ServerCore, ch: Change, rc: ReloadContext) -> None:
    cl = srv.cluster
    new: ClusterOptions = ch.new
    if cl is None:
        if new.name:
            srv.log.notice(f"Cluster name updated to {new.name}")  # as nats-server, which has a name
        return
    if new.name and new.name != cl.name:
        cl.name = new.name
        cl.dynamic = False
        srv.log.notice(f"Cluster name updated to {new.name}")
    if rc.cluster_tls is not None:
        cl.tls_server_context, cl.tls_client_context = rc.cluster_tls


def _apply_cluster_warning(srv: ServerCore, rc: ReloadContext) -> None:
    tls = rc.new.cluster.tls
    if tls is not None and tls.insecure:
        srv.log.warn(
            "TLS certificate chain and hostname of solicited routes will not be verified. "
            "DO NOT USE IN PRODUCTION!"
        )


def _apply_routes(srv: ServerCore, ch: Change, rc: ReloadContext) -> None:
    cl = srv.cluster
    if cl is None:
        return
    from .dialer import url_key

    add, remove = ch.data
    for url in remove:
        # A route no longer configured is not dialled again, and its connection goes.
        key = url_key(url.host, url.port)
        d = cl.dialers.get(key)
        if d is not None and d.explicit:
            del cl.dialers[key]
            if d.task is not None:
                d.task.cancel()
        for conn in list(cl.conns):
            if conn.did_solicit and conn.url == url:
                conn.outcome = "removed"
                conn.close_connection("Route Removed")
                srv.log.notice(f"Removed route {url.redacted}")
    srv.flush_dirty()
    if cl.tls_name == "":
        cl.tls_name = next((r.host for r in rc.new.cluster.routes if not netutil.is_ip(r.host)), "")
    if add:
        cl.solicit_routes()


_LOG = frozenset({LOGGING})
_LOG_TRACE = frozenset({LOGGING, TRACE})
_AUTH = frozenset({AUTH})

OPTIONS: list[Spec] = [
    Spec("ConfigFile", "refuse", lambda o: o.config_file),
    Spec("ServerName", "refuse", lambda o: o.server_name),
    Spec("Host", "refuse", lambda o: o.host),
    Spec("Port", "custom", diff=_diff_port),
    Spec("ClientAdvertise", "custom", diff=_diff_client_advertise),
    Spec("Trace", "reload", lambda o: o.trace, lambda v: f"Reloaded: trace = {go_v(v)}", _LOG_TRACE),
    Spec("Debug", "reload", lambda o: o.debug, lambda v: f"Reloaded: debug = {go_v(v)}", _LOG),
    Spec("TraceVerbose", "reload", lambda o: o.trace_verbose,
         lambda v: f"Reloaded: trace_verbose = {go_v(v)}", _LOG_TRACE),
    Spec("NoLog", "ignore"),
    Spec("NoHeaderSupport", "refuse", lambda o: o.no_header_support),
    Spec("Logtime", "reload", lambda o: o.logtime, lambda v: f"Reloaded: logtime = {go_v(v)}", _LOG),
    Spec("MaxConn", "reload", lambda o: o.max_connections,
         lambda v: f"Reloaded: max_connections = {v}", apply=_apply_max_conn),
    Spec("MaxSubs", "refuse", lambda o: o.max_subscriptions),
    Spec("Nkeys", "custom", diff=_diff_nkeys),
    Spec("Users", "always", notice=lambda v: "Reloaded: authorization users", effects=_AUTH),
    Spec("Accounts", "always", notice=lambda v: "Reloaded: accounts", effects=_AUTH),
    Spec("NoAuthUser", "custom", diff=_diff_no_auth_user),
    Spec("SystemAccount", "custom", diff=_diff_system_account),
    Spec("NoSystemAccount", "refuse", lambda o: o.no_system_account),
    Spec("Username", "reload", lambda o: o.username or "", lambda v: "Reloaded: authorization username", _AUTH),
    Spec("Password", "reload", lambda o: o.password or "", lambda v: "Reloaded: authorization password", _AUTH),
    Spec("Authorization", "reload", lambda o: o.authorization or "",
         lambda v: "Reloaded: authorization token", _AUTH),
    Spec("PingInterval", "reload", lambda o: o.ping_interval,
         lambda v: f"Reloaded: ping_interval = {go_dur(v)}"),
    Spec("MaxPingsOut", "reload", lambda o: o.ping_max, lambda v: f"Reloaded: ping_max = {v}"),
    Spec("HTTPHost", "refuse", lambda o: o.http_host),
    Spec("HTTPPort", "refuse", lambda o: o.http_port),
    Spec("HTTPSPort", "refuse", lambda o: o.https_port),
    Spec("AuthTimeout", "reload", _auth_timeout, lambda v: f"Reloaded: authorization timeout = {go_v(v)}"),
    Spec("MaxControlLine", "reload", lambda o: o.max_control_line,
         lambda v: f"Reloaded: max_control_line = {v}", apply=_apply_max_control_line),
    Spec("MaxPayload", "reload", lambda o: o.max_payload,
         lambda v: f"Reloaded: max_payload = {v}", apply=_apply_max_payload),
    Spec("MaxPending", "refuse", lambda o: o.max_pending),
    Spec("Cluster", "custom", diff=_diff_cluster),
    Spec("LeafNode", "custom", diff=_diff_leafnode),
    Spec("Websocket", "custom", diff=lambda old, new, ctx: _websocket_diff(old, new, ctx)),
    Spec("PidFile", "reload", lambda o: o.pid_file, _pid_notice, apply=_apply_pid_file),
    Spec("PortsFileDir", "reload", lambda o: o.ports_file_dir,
         lambda v: f"Reloaded: ports_file_dir = {v}", apply=_apply_ports_file_dir),
    Spec("LogFile", "reload", lambda o: o.log_file, lambda v: f"Reloaded: log_file = {v}", _LOG),
    Spec("LogtimeUTC", "reload", lambda o: o.logtime_utc, lambda v: f"Reloaded: logtime_utc = {go_v(v)}", _LOG),
    Spec("Syslog", "reload", lambda o: o.syslog, lambda v: f"Reloaded: syslog = {go_v(v)}", _LOG),
    Spec("RemoteSyslog", "reload", lambda o: o.remote_syslog, lambda v: f"Reloaded: remote_syslog = {v}", _LOG),
    Spec("LogSizeLimit", "refuse", lambda o: o.log_size_limit),
    Spec("LogMaxFiles", "refuse", lambda o: o.log_max_num),
    Spec("MaxTracedMsgLen", "reload", lambda o: o.max_traced_msg_len,
         lambda v: f"Reloaded: max_traced_msg_len = {v}"),
    Spec("HTTPBasePath", "refuse", lambda o: o.http_base_path),
    Spec("MaxClosedClients", "refuse", lambda o: o.max_closed_clients),
    Spec("Routes", "custom", diff=_diff_routes),
    Spec("TLSTimeout", "reload", lambda o: float(o.tls_timeout), lambda v: f"Reloaded: tls timeout = {go_v(v)}"),
    Spec("TLSMap", "refuse", lambda o: _tls_attr(o, "map", False)),
    Spec("TLSConfig", "custom", diff=_diff_tls),
    Spec("TLSPinnedCerts", "reload", lambda o: _tls_attr(o, "pinned_certs", None),
         lambda v: f"Reloaded: {len(v or ())} pinned_certs"),
    Spec("TLSRateLimit", "refuse", lambda o: _tls_attr(o, "rate_limit", 0)),
    Spec("TLSHandshakeFirst", "reload", lambda o: _tls_attr(o, "handshake_first", False),
         lambda v: f"Reloaded: Client TLS handshake first: {go_v(v)}"),
    Spec("TLSHandshakeFirstFallback", "reload", lambda o: _tls_attr(o, "handshake_first_fallback", 0.0),
         lambda v: f"Reloaded: Client TLS handshake first fallback delay: {go_dur(v)}"),
    Spec("AllowNonTLS", "refuse", lambda o: o.allow_non_tls),
    Spec("WriteDeadline", "reload", lambda o: o.write_deadline,
         lambda v: f"Reloaded: write_deadline = {go_dur(v)}"),
    Spec("LameDuckDuration", "refuse", lambda o: o.lame_duck_duration, fmt=go_dur),
    Spec("LameDuckGracePeriod", "refuse", lambda o: o.lame_duck_grace_period, fmt=go_dur),
    Spec("Loop", "ignore"),  # pynats-server's event loop choice: fixed once running
    # Operator mode and JetStream are set at start here (nats-server reloads some of them).
    Spec("TrustedOperators", "refuse", lambda o: tuple(o.operators)),
    Spec("TrustedKeys", "refuse", lambda o: tuple(o.trusted_keys)),
    Spec("AccountResolver", "refuse", lambda o: o.resolver),
    Spec("ResolverPreload", "refuse", lambda o: tuple(sorted(o.resolver_preload.items()))),
    Spec("ResolverPinnedAccounts", "refuse", lambda o: o.resolver_pinned_accounts),
    Spec("JetStream", "refuse", lambda o: o.jetstream is not None),
    Spec("JetStreamOptions", "refuse", lambda o: o.jetstream),
]


# -- the glue ---------------------------------------------------------------------------------


def _fresh_options(srv: ServerCore) -> tuple[Options, str]:
    """Options for a reload without any given: (options, the digest of their file)."""
    from .optcheck import UsageError

    if srv.reload_source is not None:
        try:
            opts = srv.reload_source()
        except (UsageError, ValueError) as e:
            raise ReloadError(str(e)) from None
    elif srv.opts.config_file:
        from .config import apply_config_file

        opts = Options(config_file=srv.opts.config_file)
        try:
            apply_config_file(opts, srv.opts.config_file)
        except (UsageError, ValueError) as e:
            raise ReloadError(str(e)) from None
    else:
        raise ReloadError("can only reload config when a file is provided using -c or --config")
    from .conf import config_file_digest

    return opts, config_file_digest(opts.config_file) if opts.config_file else ""


def prepare(srv: ServerCore, new: Options, digest: str = "") -> ReloadContext:
    """Check the new options and work out the changes; ReloadError if the reload cannot be
    done. Nothing of the running server changes here."""
    from . import tlsctx
    from .accounts import AccountError, build_accounts
    from .optcheck import UsageError, validate

    old = srv.opts
    # Settings a configuration file cannot hold stay as the server has them.
    new.no_log, new.loop = old.no_log, old.loop
    try:
        validate(new)
    except UsageError as e:
        raise ReloadError(str(e)) from None
    ctx = DiffContext(port=srv.port, cluster_port=srv.cluster.port if srv.cluster is not None else 0)
    changes = diff(old, new, ctx)
    # A random port asks for the one in use.
    if new.port in (const.RANDOM_PORT, 0):
        new.port = old.port
    if new.cluster.port == const.RANDOM_PORT:
        new.cluster.port = old.cluster.port
    rc = ReloadContext(old, new, changes, digest)
    try:
        rc.accounts = build_accounts(new)
    except AccountError as e:
        raise ReloadError(str(e)) from None
    fields = {ch.field for ch in changes}
    try:
        if "TLSConfig" in fields and new.tls is not None:
            rc.tls_context = tlsctx.server_context(new.tls)
            if new.https_port:
                rc.monitor_tls = tlsctx.server_context(new.tls, verify=False)
        elif new.tls is not None:
            rc.tls_context = srv.tls_context
        if "Cluster" in fields and srv.cluster is not None:
            t = new.cluster.tls
            rc.cluster_tls = (
                (tlsctx.server_context(t, route=True), tlsctx.route_client_context(t)) if t is not None else (None, None)
            )
    except tlsctx.TLSConfigError as e:
        raise ReloadError(str(e)) from None
    if new.https_port and new.tls is None:
        raise ReloadError("TLS cert and key required for HTTPS")  # as at start-up
    if srv.cluster is None and new.cluster.routes and "Routes" in fields:
        # Routes need the cluster machinery, which only starts with the server.
        raise _refusal("Routes", "[]", "[" + " ".join(str(r) for r in new.cluster.routes) + "]")
    for ch in changes:
        rc.effects.update(ch.effects)
    return rc


async def reload(srv: ServerCore, opts: Options | None = None) -> None:
    """nats-server's Reload (opts None) and ReloadOptions; see Server.reload."""
    if srv.reloading is None:
        srv.reloading = asyncio.Lock()
    async with srv.reloading:  # one at a time, as nats-server's reloadMu
        if not srv.running or srv.shutting_down:
            raise ReloadError("server is not running")
        if opts is None:
            new, digest = _fresh_options(srv)
        else:
            new, digest = copy.deepcopy(opts), ""
        rc = prepare(srv, new, digest)
        await _apply(srv, rc)


async def _apply(srv: ServerCore, rc: ReloadContext) -> None:
    from .reload_auth import recheck_pinned_certs, reload_authorization, reload_cluster_permissions

    log = srv.log
    old, new = rc.old, rc.new
    srv.opts = new
    if srv.cluster is not None:
        srv.cluster.opts = new.cluster
    for ch in rc.changes:
        # As in nats-server, each change is applied, then announced.
        if ch.apply is not None:
            ch.apply(srv, ch, rc)
        if ch.notice:
            log.notice(ch.notice)
        if ch.field == "Cluster":
            _apply_cluster_warning(srv, rc)
    if LOGGING in rc.effects:
        _configure_logger(srv, new)
    if TRACE in rc.effects:
        _reload_trace_level(srv)
    srv.build_info()
    if AUTH in rc.effects:
        await reload_authorization(srv, rc.new, rc.accounts)
    if CLUSTER_PERMS in rc.effects and srv.cluster is not None:
        reload_cluster_permissions(srv, old.cluster.permissions)
    srv.flush_dirty()
    log.notice(f"Reloaded server configuration {f'({rc.digest})' if rc.digest else ''}")
    recheck_pinned_certs(srv, old, new)
    srv.config_time = time.time()
    srv.config_digest = rc.digest


def _configure_logger(srv: ServerCore, o: Options) -> None:
    """nats-server's ConfigureLogger: the same logger object (every connection holds it)
    takes the new levels, time stamps and file."""
    configure = getattr(srv.log, "configure", None)
    if configure is not None:
        configure(debug=o.debug, trace=o.trace, logtime=o.logtime, path=o.log_file, utc=o.logtime_utc,
                  size_limit=o.log_size_limit, max_files=o.log_max_num)


def _reload_trace_level(srv: ServerCore) -> None:
    """Connections that chose a path by the trace level choose again (nats-server's
    reloadClientTraceLevel)."""
    for c in list(srv.clients.values()):
        if c.connect_received and not c.closed:
            c._choose_pub_handler()
    if srv.cluster is not None:
        trace = srv.log.trace_enabled
        for r in srv.cluster.connections():
            r.parser.set_rmsg_handler(r._traced_rmsg if trace else r.on_rmsg)
