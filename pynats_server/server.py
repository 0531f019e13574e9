"""The server: lifecycle, listeners, the client registry, INFO, flushing, shutdown."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from . import acceptor, const, ids, netutil
from .accounts import Account, build_accounts
from .auth import Authenticator, plaintext_passwords, validate
from .client import ClientConnection
from .conf import config_file_digest
from .connection import Connection
from .core import ConnectionKind
from .log import Logger
from .log import from_options as log_from_options
from .monitor import ClosedConn, Monitoring
from .optcheck import check_jetstream_options
from .options import Options
from .protocol import wire
from .sublist import Subscription
from .sysacc import SystemServices

MAX_CLOSED_CLIENTS = const.DEFAULT_MAX_CLOSED_CLIENTS

K = TypeVar("K", bound=ConnectionKind)


class MonitorError(ValueError):
    """Monitoring cannot start (nats-server: "Can't start monitoring: ...", fatal)."""


class Server:
    """A NATS server in this process.

    Embedded use::

        async with Server() as srv:          # 127.0.0.1, a random port, no log output
            nc = await nats.connect(srv.client_url)

    `Server(Options(...))` takes nats-server's defaults (0.0.0.0:4222) instead; keyword
    arguments override single options: `Server(port=4333, debug=True)`.
    """

    def __init__(self, opts: Options | None = None, *, logger: Logger | None = None, **overrides: Any) -> None:
        if opts is None:
            opts = Options(host="127.0.0.1", port=const.RANDOM_PORT, no_log=True)
        if overrides:
            opts = replace(opts, **overrides)
        self.opts = opts
        self.auth = Authenticator(opts)
        self.log = logger or log_from_options(opts)
        self.id = ids.server_id()
        self.name = opts.server_name or self.id
        self.xkey = ids.curve_key()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        # Accounts by name (and by name as bytes, as routes carry them); `$G` holds the
        # clients of a server without accounts, `$SYS` is the system account.
        self.accounts: dict[str, Account] = {}
        self.accounts_b: dict[bytes, Account] = {}
        self.global_account = self.register_account(Account(const.GLOBAL_ACCOUNT))
        self.system_account: Account | None = None
        for acc in build_accounts(opts):
            self.register_account(acc)
        sys_name = opts.system_account or ("" if opts.no_system_account else const.SYSTEM_ACCOUNT)
        # JWT operator mode (operator.py): accounts come from the resolver, by public key.
        self.operator: Any = None  # operator.OperatorMode (imported only when used)
        if opts.operators or opts.trusted_keys:
            from .operator import OperatorMode

            self.operator = OperatorMode.create(self)
            sys_name = self.operator.system_account_name() or sys_name
        if sys_name:
            found = self.accounts.get(sys_name)
            if found is None and self.operator is not None and sys_name != const.SYSTEM_ACCOUNT:
                found = self.operator.system_account(sys_name)
            if found is None and sys_name != const.SYSTEM_ACCOUNT:
                raise ValueError("error resolving system account: account missing")
            self.system_account = found or self.register_account(Account(sys_name))
            self.system_account.is_system = True
        if opts.jetstream is not None:
            check_jetstream_options(opts)
        self.jetstream: Any = None  # jetstream.engine.JetStream, when opts.jetstream
        self.sublist = self.global_account.sublist  # the global account's index
        self.clients: dict[int, ClientConnection] = {}
        self.closed_clients: collections.deque[ClosedConn] = collections.deque(
            maxlen=opts.max_closed_clients if opts.max_closed_clients > 0 else MAX_CLOSED_CLIENTS
        )
        self.dirty: list[Connection] = []
        self.reading = False
        self.throttled = False  # a route is backed up: publishers are paused
        self._flush_scheduled = False
        self._cid = const.FIRST_CLIENT_ID - 1
        self._listener: acceptor.Listener | None = None
        self.port = 0
        self.host = opts.host
        self.start_time = time.time()
        self.total_connections = 0
        self.slow_consumers = 0
        # nats-server's other counters of /varz: stale connections (by kind of connection)
        # and publishers stalled while a route was backed up.
        self.stale_connections = 0
        self.slow_by_kind = {"clients": 0, "routes": 0, "gateways": 0, "leafs": 0}
        self.stale_by_kind = {"clients": 0, "routes": 0, "gateways": 0, "leafs": 0}
        self.stalls = 0
        # Totals of connections that have gone, so /varz counters do not go backwards.
        self.closed_in_msgs = 0
        self.closed_in_bytes = 0
        self.closed_out_msgs = 0
        self.closed_out_bytes = 0
        self.running = False
        self.shutting_down = False
        self.lame_duck = False
        self._shutdown_done: asyncio.Event | None = None
        self.monitoring = Monitoring(self)  # the data of /varz, /connz ... and of $SYS requests
        self.monitor: Any = None  # the HTTP listener (-m)
        # The kinds of connection beside TCP clients that the options ask for, in start
        # order (core.ConnectionKind), and each by name for the code that needs that kind.
        self.kinds: list[ConnectionKind] = []
        self.websocket: Any = None  # wsconn.WebsocketListener, with `websocket { port }`
        self.cluster: Any = None  # cluster.Cluster, with a cluster port or routes
        self.leafnodes: Any = None  # leafnodes.LeafNodes, with a `leafnodes {}` block
        self.info_base: dict[str, Any] = {}
        self._client_urls: list[str] = []
        # Built from opts.tls by tlsctx.server_context (again on a reload).
        self.tls_context: Any = None
        # The system account's requests and events (sysacc.py); none without a system account.
        self.sysacc: SystemServices | None = SystemServices(self) if self.system_account is not None else None
        # Configuration reload (reload.py): when the options were last loaded (/varz
        # config_load_time), the digest of the file they came from (config_digest), and what
        # gives fresh options for `reload()` with none (the CLI: the file, then its flags).
        self.config_time = time.time()
        self.config_digest = ""
        self.reload_source: Callable[[], Options] | None = None
        self.reloading: Any = None  # the reload in progress (an asyncio.Lock), see reload.py

    @classmethod
    def from_config(cls, path: str, *, logger: Logger | None = None, **overrides: Any) -> Server:
        """A server from a nats-server configuration file. Keyword options override the
        file (`Server.from_config("nats.conf", port=-1)`), also when `reload()` reads the
        file again, as command-line flags do. Raises cli.UsageError with nats-server's text."""
        from .config import apply_config_file
        from .optcheck import validate

        def load() -> Options:
            opts = Options(config_file=path)
            apply_config_file(opts, path)
            opts = replace(opts, **overrides)
            validate(opts)
            return opts

        srv = cls(load(), logger=logger)
        srv.reload_source = load
        return srv

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listeners and start serving; returns when the server is ready."""
        from .websocket_config import validate as validate_websocket

        problem = validate(self.opts) or validate_websocket(self.opts)
        if problem:
            raise ValueError(problem)
        self.loop = asyncio.get_running_loop()
        self._shutdown_done = asyncio.Event()
        opts = self.opts
        log = self.log
        log.notice("Starting pynats-server")
        log.notice(f"  Version:  {const.__version__} (nats-server {const.NATS_VERSION} protocol)")
        log.debug(f"  Python:   {sys.version.split()[0]} ({type(self.loop).__module__.split('.')[0]} loop)")
        if self.cluster_name():
            log.notice(f"  Cluster:  {self.cluster_name()}")
        log.notice(f"  Name:     {self.name}")
        log.notice(f"  ID:       {self.id}")
        if plaintext_passwords(opts):
            log.warn("Plaintext passwords detected, use nkeys or bcrypt")
        if opts.config_file:
            self.config_digest = config_file_digest(opts.config_file)
            digest = f"({self.config_digest})" if self.config_digest else ""
            log.notice(f"Using configuration file: {opts.config_file} {digest}")
        if self.operator is not None:
            self.operator.startup_log()
        if opts.max_payload > const.MAX_PAYLOAD_MAX_SIZE:
            log.warn(
                "Maximum payloads over 8.00 MB are generally discouraged and could lead to poor performance"
            )
        if self.operator is not None:
            self.operator.check_preloads()
        self.load_tls()
        if opts.pid_file:
            with open(opts.pid_file, "w", encoding="ascii") as f:
                f.write(str(os.getpid()))
        self._start_accounts()
        if opts.jetstream is not None:
            from .jetstream.engine import JetStream

            self.jetstream = JetStream(self, opts.jetstream)
            self.jetstream.start()
        elif opts.cluster.port != 0:
            # Clients here reach the JetStream of the cluster's other servers (mixed mode).
            from .jetstream.proxy import proxy_accounts

            proxy_accounts(self)
        if opts.http_port or opts.https_port:
            from .monitor_http import Monitor

            self.monitor = Monitor(self)
            await self.monitor.start()
        # Kinds bind before the client port, as nats-server logs them (the cluster after).
        if opts.websocket.port:
            from .wsconn import WebsocketListener

            self.websocket = await self._add_kind(WebsocketListener(self))
        if opts.leafnode.enabled:
            from .leafnodes import LeafNodes

            self.leafnodes = await self._add_kind(LeafNodes(self))
        port = 0 if opts.port == const.RANDOM_PORT else opts.port
        # Accepted here, not by loop.create_server: see acceptor.py (out of descriptors).
        self._listener = acceptor.Listener(self.loop, acceptor.bind(opts.host or None, port, 1024),
                                           self._new_client, self.log)
        sock = self._listener.sockets[0]
        self.port = sock.getsockname()[1]
        self._client_urls = netutil.connect_urls(opts.client_advertise, opts.host, self.port)
        self.build_info()
        for kind in self.kinds:
            await kind.serve()
        log.notice(f"Listening for client connections on {netutil.join_host_port(opts.host, self.port)}")
        if opts.tls is not None:
            log.notice("TLS required for client connections")
            if opts.tls.handshake_first and not opts.tls.handshake_first_fallback:
                log.warn('Clients that are not using "TLS Handshake First" option will fail to connect')
        if netutil.is_unspecified(opts.host):
            log.debug(f'Get non local IPs for "{opts.host}"')
            for url in self._client_urls:
                log.debug(f"  ip={url.rsplit(':', 1)[0].strip('[]')}")
        if opts.cluster.enabled or opts.cluster.routes:
            from .cluster import Cluster

            self.cluster = await self._add_kind(Cluster(self))
            self.build_info()
        if self.sysacc is not None:
            self.sysacc.start()
        if self.operator is not None:
            self.operator.start()  # the resolver's system account handlers and timers
        self.running = True
        self.write_ports_file()
        log.notice("Server is ready")
        for kind in sorted(self.kinds, key=lambda k: k is not self.cluster):
            kind.ready()  # routes first, then leaf remotes

    async def _add_kind(self, kind: K) -> K:
        self.kinds.append(kind)
        await kind.start()
        return kind

    def _new_client(self) -> ClientConnection:
        """A connection the listener accepted: TLS or not as configured now (a reload may
        turn TLS on or off for the connections that follow)."""
        if self.opts.tls is None:
            return ClientConnection(self)
        from .tlsconn import TLSClientConnection

        return TLSClientConnection(self)

    async def reload(self, opts: Options | None = None) -> None:
        """Apply a configuration change, as nats-server's Reload and ReloadOptions do.

        With no options, fresh ones come from `reload_source` (the CLI sets one that reads
        the configuration file again and applies the command-line flags over it), or else
        from `opts.config_file` alone. Raises reload.ReloadError (its text is what nats-server
        logs after "Failed to reload server configuration: ") and then changes nothing."""
        from .reload import reload

        await reload(self, opts)

    async def reload_logged(self, opts: Options | None = None) -> bool:
        """`reload()` for SIGHUP: a refusal is logged, as nats-server logs it."""
        from .reload import ReloadError

        try:
            await self.reload(opts)
        except ReloadError as e:
            self.log.error(f"Failed to reload server configuration: {e}")
            return False
        return True

    async def shutdown(self) -> None:
        """Close the listeners and every connection; idempotent."""
        if self.shutting_down:
            if self._shutdown_done is not None:
                await self._shutdown_done.wait()
            return
        self.shutting_down = True
        self.running = False
        self.log.notice("Initiating Shutdown...")
        if self.jetstream is not None:
            self.jetstream.shutdown()
        if self.sysacc is not None:
            self.sysacc.shutdown_event()
            self.sysacc.stop()
        if self.operator is not None:
            self.operator.close()
        if self._listener is not None:
            self._listener.close()
        for kind in self.kinds:
            await kind.shutdown()
        for c in list(self.clients.values()):
            c.close_connection("Server Shutdown")
        self.flush_dirty()
        if self._listener is not None:
            self.log.debug("Client accept loop exiting..")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.wait_closed(), 2.0)
        if self.monitor is not None:
            await self.monitor.stop()
        self.remove_ports_file()  # the pid file stays, as nats-server leaves it
        self.log.notice("Server Exiting..")
        if self._shutdown_done is not None:
            self._shutdown_done.set()

    async def wait_for_shutdown(self) -> None:
        assert self._shutdown_done is not None
        await self._shutdown_done.wait()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    def load_tls(self) -> None:
        """(Re)build the SSLContexts from the options; tlsctx.TLSConfigError if refused."""
        from . import tlsctx

        opts = self.opts
        self.tls_context = tlsctx.server_context(opts.tls) if opts.tls is not None else None
        if opts.https_port and opts.http_port:
            raise MonitorError(
                f"can't specify both HTTP ({opts.http_port}) and HTTPs ({opts.https_port}) ports"
            )
        if opts.https_port and opts.tls is None:
            raise MonitorError("TLS cert and key required for HTTPS")

    # -- addresses --------------------------------------------------------------------

    @property
    def addr(self) -> tuple[str, int]:
        host = self.opts.host
        if netutil.is_unspecified(host) or not host:
            host = "127.0.0.1"
        return host, self.port

    @property
    def client_url(self) -> str:
        host, port = self.addr
        return f"nats://{netutil.join_host_port(host, port)}"

    @property
    def websocket_url(self) -> str | None:
        """`ws://host:port` (`wss://` with TLS) of the websocket port, if there is one."""
        if self.websocket is None:
            return None
        host = self.websocket.host
        return self.websocket.url("127.0.0.1" if netutil.is_unspecified(host) else host)

    @property
    def monitor_url(self) -> str | None:
        return self.monitor.url if self.monitor is not None else None

    @property
    def cluster_url(self) -> str | None:
        return self.cluster.listen_url if self.cluster is not None else None

    @property
    def leafnode_url(self) -> str | None:
        """Where leaf nodes connect (`nats-leaf://host:port`), when we listen for them."""
        ln = self.leafnodes
        return ln.listen_url if ln is not None and ln.port else None

    def client_connect_urls(self) -> list[str]:
        """This server's own client URLs (`host:port`), as gossiped to peers and clients."""
        return list(self._client_urls)

    def cluster_name(self) -> str:
        return self.cluster.name if self.cluster is not None else ""

    # -- accounts ---------------------------------------------------------------------

    def register_account(self, acc: Account) -> Account:
        self.accounts[acc.name] = acc
        self.accounts_b[acc.name_b] = acc
        return acc

    def lookup_account(self, name: str) -> Account | None:
        return self.accounts.get(name)

    def route_account(self, name: bytes, route: Any, *, fetch: bool = False) -> Account | None:
        """An account a route names that is not registered here: in operator mode it may
        be resolved (operator.py); otherwise None (the caller logs and ignores)."""
        if self.operator is None:
            return None
        return self.operator.route_account(name.decode(errors="replace"), route, fetch=fetch)

    def _start_accounts(self) -> None:
        for acc in list(self.accounts.values()):
            acc.start(self)

    # -- INFO -------------------------------------------------------------------------

    def build_info(self) -> None:
        opts = self.opts
        host, port = opts.host, self.port
        if opts.client_advertise:
            host, port = netutil.split_host_port(opts.client_advertise, self.port)
        self.info_base = {
            "server_id": self.id,
            "server_name": self.name,
            "version": const.NATS_VERSION,
            "proto": 1,
            "go": f"pynats-server {const.__version__} python{sys.version.split()[0]}",
            "host": host,
            "port": port,
            "headers": not opts.no_header_support,
            "auth_required": self.auth.required,
            "tls_required": opts.tls is not None and not opts.allow_non_tls,
            "tls_verify": opts.tls is not None and opts.tls.verify,
            "tls_available": opts.tls is not None and opts.allow_non_tls,
            "max_payload": opts.max_payload,
            "api_lvl": 4,
            "jetstream": opts.jetstream is not None,
            "xkey": self.xkey,
        }

    def client_info(self, c: ClientConnection, *, ldm: bool = False, first: bool = False,
                    tls_first: bool = False) -> dict[str, Any]:
        """The INFO fields for client `c`, in nats-server's order. The `first` INFO (on
        connect) carries the nonce, and says no auth is required when no_auth_user is set;
        the INFO that follows a handshake_first handshake says tls_required, even with
        allow_non_tls."""
        fields = dict(self.info_base)
        if tls_first:
            fields["tls_required"] = True
        fields["client_id"] = c.cid
        fields["client_ip"] = c.host
        if first:
            if c.nonce:
                fields["nonce"] = c.nonce.decode()
            if self.auth.no_auth_user:
                fields["auth_required"] = False
        if self.cluster is not None:
            fields["cluster"] = self.cluster.name
            fields["connect_urls"] = self.cluster.client_connect_urls()
        if c.client_type == "websocket" and self.websocket is not None:
            self.websocket.info(c, fields)
        fields["ldm"] = ldm
        return wire.info_fields(fields)

    def send_async_info_to_clients(self, *, ldm: bool = False, client_type: str = "") -> None:
        """Tell protocol-1 clients the cluster changed (connect_urls, lame duck); only those
        of `client_type` ("nats", "websocket") when given."""
        if self.shutting_down:
            return
        for c in list(self.clients.values()):
            if client_type and c.client_type != client_type:
                continue
            if c.protocol >= const.CLIENT_PROTO_INFO and c.first_pong_sent and not c.closed:
                c.send_async_info(wire.info(self.client_info(c, ldm=ldm)))
        self.flush_dirty()

    # -- lame duck mode ---------------------------------------------------------------

    async def lame_duck_mode(self) -> None:
        """Stop accepting clients, tell routes and clients, then close clients one by one
        over lame_duck_duration (after lame_duck_grace_period), then shut down."""
        if self.shutting_down or self.lame_duck or self._listener is None:
            return
        self.log.notice("Entering lame duck mode, stop accepting new clients")
        self.lame_duck = True
        if self.sysacc is not None:
            self.sysacc.shutdown_event(lame_duck=True)
        self._listener.close()
        for kind in self.kinds:
            kind.stop_accepting()
        opts = self.opts
        grace = abs(opts.lame_duck_grace_period)
        if not self.clients:
            await self.shutdown()
            return
        clients = list(self.clients.values())
        dur = max(opts.lame_duck_duration - grace, 1.0)
        gap = min(dur / len(clients), 1.0)
        if self.cluster is not None:
            self.cluster.send_info_to_routes()
        self.send_async_info_to_clients(ldm=True)
        if await self._sleep_unless_shutdown(grace):
            return
        self.log.notice("Closing existing clients")
        for i, c in enumerate(clients):
            if c.closed:
                continue  # it already moved (clients act on the ldm INFO): no need to wait
            c.close_connection("Server Shutdown")
            self.flush_dirty()
            if i == len(clients) - 1:
                break
            if await self._sleep_unless_shutdown(random.uniform(gap / 2, gap)):
                return
        await self.shutdown()

    async def _sleep_unless_shutdown(self, delay: float) -> bool:
        """Sleep; True when a shutdown started meanwhile."""
        assert self._shutdown_done is not None
        end = self.loop.time() + delay
        while not self.shutting_down:
            left = end - self.loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, 0.05))
        return True

    # -- clients ----------------------------------------------------------------------

    def next_cid(self) -> int:
        self._cid += 1
        return self._cid

    def add_client(self, c: ClientConnection) -> bool:
        self.total_connections += 1
        if self.shutting_down or self.lame_duck:
            return False
        mc = self.opts.max_connections
        if mc < 0 or (mc > 0 and len(self.clients) >= mc):
            return False
        self.clients[c.cid] = c
        c.account.nclients += 1
        return True

    def remove_client(self, c: ClientConnection) -> None:
        if self.clients.pop(c.cid, None) is None:
            return
        c.account.nclients -= 1
        self.closed_in_msgs += c.in_msgs
        self.closed_in_bytes += c.in_bytes
        self.closed_out_msgs += c.out_msgs
        self.closed_out_bytes += c.out_bytes
        self.closed_clients.append(self.monitoring.closed_conn(c))
        if self.sysacc is not None:
            self.sysacc.client_closed(c)

    def tls_mapped_user(self, c: ClientConnection, co: dict[str, Any]) -> str | None:
        """verify_and_map: the user named by the client's certificate, as nats-server's
        processClientOrLeafAuthentication (its password, if it has one, is then checked
        as usual)."""
        from . import certs

        der = c.peer_cert_der() if hasattr(c, "peer_cert_der") else None
        if not der:
            c.debug("User required in cert, no TLS connection state")
            return None
        users = {u.user: u for u in self.opts.users if not u.nkey}
        name = certs.map_certificate(der, c.peer_cert(), certs.find_by_name_or_dn(list(users)), c.debug)  # type: ignore[attr-defined]
        if name is not None and co.get("user"):
            self.log.warn(f"User {certs._goq(str(co['user']))} found in connect proto, but user required from cert")
        return name

    def local_interest(self, acc: Account, sub: Subscription, delta: int) -> None:
        """A local subscription in `acc` came or went: tell the routes and the leaf nodes."""
        if self.cluster is not None:
            self.cluster.local_interest(acc.name_b, sub, delta)
        if self.leafnodes is not None:
            self.leafnodes.interest(acc, sub, delta)

    # -- flushing ---------------------------------------------------------------------

    def mark_dirty(self, c: Connection) -> None:
        self.dirty.append(c)
        if not self.reading and not self._flush_scheduled and self.loop is not None:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_soon)

    def schedule_flush(self) -> None:
        """Flush what was queued outside a read (timers, closes) once this callback is done."""
        if self.dirty and not self.reading and not self._flush_scheduled and self.loop is not None:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        self.flush_dirty()

    def flush_dirty(self) -> None:
        d = self.dirty
        if d:
            i = 0
            while i < len(d):
                d[i].flush()
                i += 1
            d.clear()

    # -- stats ------------------------------------------------------------------------

    def totals(self) -> tuple[int, int, int, int]:
        im, ib, om, ob = self.closed_in_msgs, self.closed_in_bytes, self.closed_out_msgs, self.closed_out_bytes
        conns: list[Connection[Any]] = list(self.clients.values())
        for kind in self.kinds:
            conns.extend(kind.connections())
            kim, kib, kom, kob = kind.closed_totals()
            im, ib, om, ob = im + kim, ib + kib, om + kom, ob + kob
        for c in conns:
            im += c.in_msgs
            ib += c.in_bytes
            om += c.out_msgs
            ob += c.out_bytes
        return im, ib, om, ob

    # -- ports file -------------------------------------------------------------------

    def ports(self) -> dict[str, list[str]]:
        opts = self.opts
        nats = "tls" if opts.tls is not None and not opts.allow_non_tls else "nats"
        p: dict[str, list[str]] = {"nats": netutil.listen_urls(nats, opts.host, self.port)}
        if self.monitor is not None:
            scheme = "https" if opts.https_port else "http"
            p["monitoring"] = netutil.listen_urls(scheme, self.monitor.host, self.monitor.port)
        if self.cluster is not None and self.cluster.port:
            scheme = "tls" if opts.cluster.tls is not None else "nats"
            p["cluster"] = netutil.listen_urls(scheme, self.cluster.host, self.cluster.port)
        if self.websocket is not None:
            scheme = "wss" if self.websocket.tls else "ws"
            p["websocket"] = netutil.listen_urls(scheme, self.websocket.host, self.websocket.port)
        return p

    def _ports_file_path(self) -> str:
        d = self.opts.ports_file_dir
        if not d:
            return ""
        exe = os.path.basename(sys.argv[0]) or "pynats-server"
        return os.path.join(d, f"{exe}_{os.getpid()}.ports")

    def write_ports_file(self) -> None:
        path = self._ports_file_path()
        if path:
            try:
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(self.ports(), f, separators=(",", ":"))
            except OSError as e:
                self.log.error(f"Error writing ports file ({path}): {e}")

    def remove_ports_file(self) -> None:
        path = self._ports_file_path()
        if path:
            try:
                os.remove(path)
            except OSError as e:
                self.log.error(f"Error cleaning up ports file {path}: {e}")
