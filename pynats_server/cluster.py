"""The cluster: the route listener, dialling and retries, registration, duplicates, gossip,
interest propagation and the client URLs learned from peers (connect_urls).

Rules, and where they differ from nats-server on purpose:
- A connection is a route from the peer's CONNECT on, as in nats-server: its interest and
  messages count at once (route.py). It is registered (by the id in the INFO: sent our
  interest, gossiped, listed in /routez, checked for duplicates) when the peer's INFO
  arrives; a peer that never sends one gets no PINGs and is closed as stale after
  ping_max + 1 ping intervals, as nats-server 2.14 does. An INFO carrying our own server id is
  a route to ourselves: dropped silently (one debug line) and never dialled again. A URL
  whose addresses are our own route listener is recognised before dialling.
- Duplicates: of two connections between the same pair of servers, both sides keep the one
  solicited by the server with the smaller id (a rule both can compute), so they always
  agree. Between connections solicited by the same server, that server decides; the other
  side holds the extra one on standby until it knows which one survived. nats-server keeps
  "the existing one" instead, which can drop both (PRs 547, 3573, 8454, 8527); so with a
  nats-server peer we keep both connections until it closes the one it does not keep.
- A route to a live peer is always re-established: the dialler of a configured URL retries
  forever (1 s growing to 30 s); a gossip-learned route retries `connect_retries` times; and
  when a route the peer dialled drops, we dial the peer back as well.
- Gossip: when a route registers, the newcomer's INFO goes to the other routes and theirs
  to the newcomer; a server that hears of a peer it has no route to dials it. (nats-server
  gossips one way only, which can leave a mesh incomplete when servers join together.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import acceptor, const, ids, netutil
from .auth import ClientPermissions
from .dialer import Dialer, url_key
from .gotime import go_duration, go_float, go_time, uptime
from .options import Permissions, RouteURL
from .protocol import wire
from .route import RouteConnection, _Stop

if TYPE_CHECKING:
    from .core import ServerCore
    from .sublist import Subscription

# Connections from one peer held while it decides which of them it keeps.
_MAX_STANDBY = 2

# Connections closed on purpose: the dialler must not treat them as a lost peer.
_FINAL_OUTCOMES = frozenset(("self", "shutdown", "conflict", "wrong-port", "auth", "pinned", "dupname"))


class Cluster:
    def __init__(self, server: ServerCore) -> None:
        self.server = server
        self.log = server.log
        self.opts = server.opts.cluster
        self.name = self.opts.name or ids.nuid()
        self.dynamic = not self.opts.name
        self.host = self.opts.host or const.DEFAULT_HOST
        self.port = 0
        self.running = False
        self.routes: dict[str, RouteConnection] = {}
        self.standby: dict[str, list[RouteConnection]] = {}
        self.conns: set[RouteConnection] = set()
        self.dialers: dict[str, Dialer] = {}
        self.self_keys: set[str] = set()
        self._gone: dict[str, asyncio.Event] = {}
        self._listener: acceptor.Listener | None = None
        self.local_ips: set[str] = set()
        # Client URLs learned from peers, refcounted (two peers may advertise the same one).
        self._url_refs: dict[str, int] = {}
        self._urls_changed = False
        # The same for the peers' websocket ports (route INFO ws_connect_urls).
        self._ws_url_refs: dict[str, int] = {}
        self._ws_urls_changed = False
        # Local interest, counted, so routes get one RS+ per subject (weights for queues).
        # Keyed by (account, subject) and (account, subject, queue).
        self._plain: dict[tuple[bytes, bytes], int] = {}
        self._queues: dict[tuple[bytes, bytes, bytes], int] = {}
        perms = self.opts.permissions
        self._perms = ClientPermissions(perms) if perms is not None else None
        self.paused_routes: set[RouteConnection] = set()
        self._throttled: list[Any] = []
        self.closed_in_msgs = 0
        self.closed_in_bytes = 0
        self.closed_out_msgs = 0
        self.closed_out_bytes = 0
        # What routes received and did not act on, by kind (each also logged): route.py.
        self.ignored: Counter[str] = Counter()
        # cluster { tls {} }: routes we accept and routes we dial (tlsctx builds both).
        self.tls_server_context: Any = None
        self.tls_client_context: Any = None
        # The first host name among the configured routes: the name a certificate is
        # checked against when a route is dialled by IP address (nats-server's routeTLSName).
        self.tls_name = next((r.host for r in self.opts.routes if not netutil.is_ip(r.host)), "")
        if self.opts.tls is not None:
            from . import tlsctx

            self.tls_server_context = tlsctx.server_context(self.opts.tls, route=True)
            self.tls_client_context = tlsctx.route_client_context(self.opts.tls)

    def new_connection(self, url: RouteURL | None = None, explicit: bool = False) -> RouteConnection:
        """A route connection, with TLS when the cluster has it."""
        if self.tls_server_context is None:
            return RouteConnection(self, url=url, explicit=explicit)
        from .tlsconn import TLSRouteConnection

        name = ""
        if url is not None:
            name = self.tls_name if (netutil.is_ip(url.host) and self.tls_name) else url.host
        return TLSRouteConnection(self, url=url, explicit=explicit, server_name=name)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        srv = self.server
        log = self.log
        log.notice(f"Cluster name is {self.name}")
        if self.dynamic:
            log.warn("Cluster name was dynamically generated, consider setting one")
        port = self.opts.port
        port = 0 if port == const.RANDOM_PORT else port
        self._listener = acceptor.Listener(srv.loop, acceptor.bind(self.host or None, port, 100),
                                           self.new_connection, srv.log, "Route")
        socks = self._listener.sockets
        self.port = socks[0].getsockname()[1]
        for s in socks:
            self.local_ips.add(s.getsockname()[0])
        if netutil.is_unspecified(self.host):
            self.local_ips.update(("127.0.0.1", "::1", "0.0.0.0", "::"))
            self.local_ips.update(netutil.non_local_ips())
        self.running = True
        log.notice(f"Listening for route connections on {netutil.join_host_port(self.host, self.port)}")
        if self.opts.tls is not None and self.opts.tls.insecure:
            log.warn(
                "TLS certificate chain and hostname of solicited routes will not be verified. "
                "DO NOT USE IN PRODUCTION!"
            )

    async def serve(self) -> None:
        pass  # accepting since start()

    def ready(self) -> None:
        self.solicit_routes()

    def stop_accepting(self) -> None:
        pass  # routes keep connecting in lame duck mode; they are told by INFO (ldm)

    def closed_totals(self) -> tuple[int, int, int, int]:
        return self.closed_in_msgs, self.closed_in_bytes, self.closed_out_msgs, self.closed_out_bytes

    def solicit_routes(self) -> None:
        for url in self.opts.routes:
            key = url_key(url.host, url.port)
            if key in self.dialers:
                continue
            d = Dialer(self, url, explicit=True, retries=self.opts.connect_retries)
            self.dialers[key] = d
            d.start()

    async def shutdown(self) -> None:
        self.running = False
        if self._listener is not None:
            self._listener.close()
        for d in list(self.dialers.values()):
            if d.task is not None:
                d.task.cancel()
        for c in list(self.conns):
            c.outcome = c.outcome or "shutdown"
            c.close_connection("Server Shutdown")
        self.server.flush_dirty()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.wait_closed(), 1.0)
        tasks = [d.task for d in self.dialers.values() if d.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def listen_url(self) -> str:
        h = "127.0.0.1" if netutil.is_unspecified(self.host) else self.host
        return f"nats://{netutil.join_host_port(h, self.port)}"

    def connections(self) -> list[RouteConnection]:
        return list(self.conns)

    def track(self, conn: RouteConnection) -> None:
        self.conns.add(conn)

    # -- what we send -----------------------------------------------------------------

    def _advertised(self) -> tuple[str, int]:
        if self.opts.advertise:
            return netutil.split_host_port(self.opts.advertise, self.port)
        return self.host, self.port

    def can_import(self, subject: bytes) -> bool:
        """Do we want messages on `subject` from peers (send our interest in it)?"""
        return self._perms is None or self._perms.can_publish(subject)

    def can_export(self, subject: bytes) -> bool:
        """Do we send messages on `subject` to peers (accept their interest in it)?"""
        return self._perms is None or self._perms.can_subscribe(subject, None)

    def route_info(self, *, ldm: bool = False) -> dict[str, Any]:
        srv = self.server
        host, port = self._advertised()
        fields: dict[str, Any] = {
            "server_id": srv.id,
            "server_name": srv.name,
            "version": const.NATS_VERSION,
            "proto": const.ROUTE_PROTO,
            "go": srv.info_base.get("go", "python"),
            "host": host,
            "port": port,
            "headers": not srv.opts.no_header_support,
            "auth_required": bool(self.opts.user),
            "tls_required": self.opts.tls is not None,
            "tls_verify": self.opts.tls is not None,
            "max_payload": srv.opts.max_payload,
            "cluster": self.name,
            "cluster_dynamic": self.dynamic,
            "ldm": ldm or srv.lame_duck,
        }
        if self.opts.permissions is not None:
            fields["import"], fields["export"] = _route_perms_info(self.opts.permissions)
        if self.opts.advertise:
            fields["ip"] = f"nats-route://{netutil.join_host_port(host, port)}/"
        if not self.opts.no_advertise:
            fields["connect_urls"] = srv.client_connect_urls()
            if srv.websocket is not None:
                fields["ws_connect_urls"] = srv.websocket.connect_urls
        if srv.leafnodes is not None and srv.leafnodes.own_url():
            # Peers tell their leafs where else to connect (nats-server's leafnode_urls).
            fields["leafnode_urls"] = [srv.leafnodes.own_url()]
        return wire.info_fields(fields)

    def connect_fields(self, url: RouteURL | None) -> dict[str, Any]:
        co: dict[str, Any] = {
            "echo": True,
            "verbose": False,
            "pedantic": False,
            "tls_required": self.opts.tls is not None,
            "headers": not self.server.opts.no_header_support,
            "name": self.server.id,
            "cluster": self.name,
        }
        if self.dynamic:
            co["cluster_dynamic"] = True
        if url is not None and url.user:
            co["user"] = url.user
            co["pass"] = url.password or ""
        return co

    # -- handshake decisions -----------------------------------------------------------

    def check_auth(self, co: dict[str, Any], conn: RouteConnection | None = None) -> bool:
        from .auth import compare_passwords

        tls = self.opts.tls
        if tls is not None and (tls.map or tls.check_known_urls) and conn is not None:
            from . import certs

            der = conn.peer_cert_der() if hasattr(conn, "peer_cert_der") else None
            if not der:
                return False
            return certs.route_cert_allowed(
                der, conn.peer_cert(), check_known_urls=tls.check_known_urls,  # type: ignore[attr-defined]
                map_user=self.opts.user if tls.map else None,
                route_hosts=[r.host for r in self.opts.routes], debug=conn.debug,
            )
        if not self.opts.user:
            return True
        # A bcrypt hash is checked with bcrypt (inline: routes connect rarely).
        return co.get("user") == self.opts.user and compare_passwords(self.opts.password or "", str(co.get("pass") or ""))

    def accept_cluster_name(self, theirs: str, their_dynamic: bool, remote_id: str) -> bool:
        """Compare a peer's cluster name with ours; a generated name adopts the peer's.

        nats-server then closes every other route, so they re-form under the new name: in a
        cluster without a configured name, a node restarting with a new generated name makes
        the whole mesh flap. We keep the routes and tell their peers the new name in an INFO
        instead; peers with generated names adopt it by the same rule, so the cluster still
        converges on one name (the greatest, or the configured one).
        """
        if not theirs or theirs == self.name:
            return True
        if self.dynamic and (not their_dynamic or self.name < theirs):
            self.name = theirs
            if not their_dynamic:
                self.dynamic = False
            self.log.notice(f"Cluster name updated to {theirs}")
            data = wire.info(self.route_info())
            for rid, c in self.routes.items():
                if rid != remote_id:
                    c.enqueue(data)
            self.server.send_async_info_to_clients()
            return True
        return False

    def process_info(self, conn: RouteConnection, info: dict[str, Any]) -> None:
        sid = str(info.get("server_id", ""))
        if not conn.info_received:
            self._first_info(conn, info, sid)
            return
        theirs = str(info.get("cluster", ""))
        their_dynamic = bool(info.get("cluster_dynamic"))
        if theirs and theirs != self.name and not self.dynamic and not their_dynamic:
            # Two configured names that differ: nats-server closes the route, whenever the
            # INFO comes. (Generated names converge instead: accept_cluster_name.)
            conn.outcome = "conflict"
            conn.close_connection("Cluster Name Conflict")
            raise _stop()
        if sid and sid != conn.remote_id:
            self._gossip(info, sid)
            return
        if theirs and theirs != self.name:
            self.accept_cluster_name(theirs, their_dynamic, sid)
        changed = [k for k in _FIXED_AT_FIRST_INFO if k in info and info[k] != conn.remote_info.get(k)]
        if info.get("ldm") and "connect_urls" in changed:
            changed.remove("connect_urls")  # the lame duck mode handling below removes them
        if changed:
            # nats-server takes these from the first INFO only; so do we, and say so.
            conn.ignored("INFO changes", f'Ignoring changed {", ".join(changed)} in an INFO from route "{sid}"')
        if info.get("ldm") and not conn.lame_duck:
            # The peer is in lame duck mode: its clients are about to move; stop
            # advertising its URLs to ours.
            conn.lame_duck = True
            conn.debug(f'Remote route "{sid}" entered lame duck mode')
            if conn.urls_added:
                conn.urls_added = False
                self._remove_urls(conn.connect_urls)
                self._remove_urls(conn.ws_connect_urls, ws=True)

    def _first_info(self, conn: RouteConnection, info: dict[str, Any], sid: str) -> None:
        srv = self.server
        if info.get("route_account"):
            # A 2.14 pinned-account connection: never registered. The Go side sends its
            # own -ERR and closes; we close it later in case it does not.
            conn.outcome = "pinned"
            conn.withdraw_remote_interest()
            conn.debug(f'Ignoring dedicated route for account "{info.get("route_account")}"')
            srv.loop.call_later(10.0, conn.close_connection, "Route Removed")
            return
        if sid == srv.id:
            conn.outcome = "self"
            if conn.url is not None:
                self.self_keys.add(url_key(conn.url.host, conn.url.port))
                self.log.debug(f"Detected route to self, ignoring {conn.url.redacted}")
            conn.close_connection("Duplicate Route")
            raise _stop()
        theirs = str(info.get("cluster", ""))
        if theirs and theirs != self.name:
            if not self.accept_cluster_name(theirs, bool(info.get("cluster_dynamic")), sid):
                conn.outcome = "conflict"
                conn.close_connection("Cluster Name Conflict")
                raise _stop()
        name = str(info.get("server_name", ""))
        if not conn.did_solicit and name and name == srv.name:
            conn.error(f'Remote server has a duplicate name: "{name}"')
            conn.outcome = "dupname"
            conn.close_connection("Duplicate Server Name")
            raise _stop()
        conn.info_received = True
        conn.set_first_ping_timer(const.FIRST_ROUTE_PING_INTERVAL)
        conn.remote_id = sid
        conn.remote_name = name
        conn.headers = bool(info.get("headers")) and not srv.opts.no_header_support
        conn.connect_urls = [str(u) for u in info.get("connect_urls") or []]
        conn.ws_connect_urls = [str(u) for u in info.get("ws_connect_urls") or []]
        conn.lame_duck = bool(info.get("ldm"))
        if not info.get("ip"):
            info["ip"] = f"nats-route://{netutil.join_host_port(conn.host, int(info.get('port') or 0))}/"
        conn.remote_info = info
        self._add_route(conn)

    def _solicitor(self, c: RouteConnection) -> str:
        return self.server.id if c.did_solicit else c.remote_id

    def _add_route(self, conn: RouteConnection) -> None:
        rid = conn.remote_id
        cur = self.routes.get(rid)
        if cur is None:
            self._register(conn)
            return
        if not _runs_our_rule(conn.remote_info):
            # nats-server keeps the connection it registered first and closes the other as a
            # duplicate; only it knows which. Closing one here could close the one it keeps
            # (both gone, and again after each retry: a mixed cluster flapped every second on
            # a busy machine), so both stay until it closes one.
            self._hold_duplicate(conn)
            return
        sc, sn = self._solicitor(cur), self._solicitor(conn)
        if sc == sn:
            if conn.did_solicit:
                self._drop_duplicate(conn)
            else:
                # The peer dialled twice; it decides which one lives. Wait and see.
                self._hold_duplicate(conn)
        elif sn == min(self.server.id, rid):
            # Both sides keep the connection solicited by the smaller server id.
            self._unregister(cur, promote=False)
            self._register(conn)
            cur.debug(f'Detected duplicate remote route "{rid}"')
            cur.outcome = "duplicate"
            cur.retire("Duplicate Route")
        else:
            self._drop_duplicate(conn)

    def _hold_duplicate(self, conn: RouteConnection) -> None:
        rid = conn.remote_id
        if len(self.standby.get(rid, ())) >= _MAX_STANDBY:
            self._drop_duplicate(conn)
            return
        conn.debug(f'Holding duplicate remote route "{rid}" until the peer picks one')
        # Its interest (sent from its CONNECT on) leaves the indexes until it is promoted.
        conn.withdraw_remote_interest()
        self.standby.setdefault(rid, []).append(conn)

    def _drop_duplicate(self, conn: RouteConnection) -> None:
        conn.debug(f'Detected duplicate remote route "{conn.remote_id}"')
        conn.outcome = "duplicate"
        conn.close_connection("Duplicate Route")

    def _register(self, conn: RouteConnection) -> None:
        rid = conn.remote_id
        self.routes[rid] = conn
        conn.registered = True
        conn.registered_once = True
        conn.install_remote_interest()
        conn.debug(f'Registering remote route "{rid}"')
        if self.server.leafnodes is not None:
            self.server.leafnodes.route_urls(rid, [str(u) for u in conn.remote_info.get("leafnode_urls") or []])
        ev = self._gone.get(rid)
        if ev is not None and ev.is_set():
            self._gone[rid] = asyncio.Event()
        if (conn.connect_urls or conn.ws_connect_urls) and not conn.lame_duck and not self.opts.no_advertise:
            conn.urls_added = True
            self._add_urls(conn.connect_urls)
            self._add_urls(conn.ws_connect_urls, ws=True)
        # Our whole interest, then a PING, as nats-server does.
        ok = self.can_import
        buf = [wire.rs_plus(a, s) for a, s in self._plain if ok(s)]
        buf.extend(wire.rs_plus(a, s, q, n) for (a, s, q), n in self._queues.items() if ok(s))
        if buf:
            conn.enqueue(b"".join(buf))
        # Gossip both ways: the others hear of the newcomer, and the newcomer of the others.
        # nats-server only does the first, and not for routes it found by gossip, which can
        # leave a mesh incomplete when servers join at the same time; anyone told about a
        # peer it already has ignores it, and the duplicate rule settles double dials.
        if len(self.routes) > 1:
            data = self._gossip_info(conn.remote_info)
            for r in self.routes.values():
                if r is not conn:
                    r.enqueue(data)
                    if not r.lame_duck:
                        conn.enqueue(self._gossip_info(r.remote_info))

    def _unregister(self, conn: RouteConnection, *, promote: bool = True) -> None:
        rid = conn.remote_id
        if self.routes.get(rid) is conn:
            del self.routes[rid]
        conn.drop_remote_interest()
        conn.registered = False
        if self.server.leafnodes is not None and not self.server.shutting_down:
            self.server.leafnodes.route_urls(rid, [])
        if conn.urls_added:
            conn.urls_added = False
            self._remove_urls(conn.connect_urls)
            self._remove_urls(conn.ws_connect_urls, ws=True)
        if promote:
            waiting = self.standby.pop(rid, [])
            while waiting:
                c = waiting.pop(0)
                if not c.closed:
                    self._register(c)
                    if waiting:
                        self.standby[rid] = waiting
                    return
        ev = self._gone.get(rid)
        if ev is not None:
            ev.set()

    async def wait_route_gone(self, rid: str) -> None:
        ev = self._gone.get(rid)
        if ev is None or ev.is_set():
            ev = self._gone[rid] = asyncio.Event()
        if rid in self.routes:
            await ev.wait()

    def route_closed(self, conn: RouteConnection, reason: str) -> None:
        self.conns.discard(conn)
        # A route closed while backed up (stale: its peer stopped reading) never resumes
        # writing: let the publishers held back for it go now.
        self.route_paused(conn, False)
        self.closed_in_msgs += conn.in_msgs
        self.closed_in_bytes += conn.in_bytes
        self.closed_out_msgs += conn.out_msgs
        self.closed_out_bytes += conn.out_bytes
        rid = conn.remote_id
        waiting = self.standby.get(rid)
        if waiting and conn in waiting:
            waiting.remove(conn)
            if not waiting:
                del self.standby[rid]
        if not conn.registered:
            conn.drop_remote_interest()  # a connection never registered may have had some
            return
        self._unregister(conn)
        if (
            self.running
            and not conn.did_solicit
            and not conn.lame_duck
            and conn.outcome not in _FINAL_OUTCOMES
            and conn.outcome != "duplicate"
            and rid not in self.routes
        ):
            # The peer dialled this route; dial it back too, so a live peer is never lost.
            self._dial_back(conn)

    def _dial_back(self, conn: RouteConnection) -> None:
        url = self._url_from_info(conn.remote_info)
        if url is None:
            return
        self._start_implicit(url, conn.remote_id, retries=max(self.opts.connect_retries, 1))

    # -- gossip -----------------------------------------------------------------------

    def _gossip_info(self, info: dict[str, Any]) -> bytes:
        """A peer's INFO, forwarded to another peer.

        It carries our cluster name as it is now, not the one the peer had when it
        registered: nats-server checks the name on every INFO, gossip included, and
        closes the route on a mismatch, so a stale generated name made the route flap.
        """
        fwd = dict(info)
        fwd.pop("nonce", None)
        fwd["cluster"] = self.name
        if self.dynamic:
            fwd["cluster_dynamic"] = True
        else:
            fwd.pop("cluster_dynamic", None)
        return wire.info(wire.info_fields(fwd))

    def _gossip(self, info: dict[str, Any], sid: str) -> None:
        srv = self.server
        if sid == srv.id or sid in self.routes or sid in self.standby:
            return
        if info.get("route_account") or info.get("ldm"):
            return
        if self._configured(info):
            return
        url = self._url_from_info(info)
        if url is None:
            return
        if info.get("auth_required") and self.opts.user:
            url.user, url.password = self.opts.user, self.opts.password
        self._start_implicit(url, sid, retries=self.opts.connect_retries)

    def _start_implicit(self, url: RouteURL, sid: str, *, retries: int) -> None:
        key = url_key(url.host, url.port)
        if key in self.self_keys or key in self.dialers:
            return
        for d in self.dialers.values():
            if d.remote_id == sid:
                return
        d = Dialer(self, url, explicit=False, retries=retries)
        d.remote_id = sid
        self.dialers[key] = d
        d.start()

    def dialer_done(self, d: Dialer) -> None:
        if self.dialers.get(d.key) is d and not d.explicit:
            del self.dialers[d.key]

    @staticmethod
    def _url_from_info(info: dict[str, Any]) -> RouteURL | None:
        ip = info.get("ip")
        try:
            if ip:
                u = urlsplit(str(ip))
                if u.hostname and u.port:
                    return RouteURL(u.hostname, u.port)
            host, port = info.get("host"), int(info.get("port") or 0)
            if host and port and not netutil.is_unspecified(str(host)):
                return RouteURL(str(host), port)
        except ValueError:
            pass
        return None

    def _configured(self, info: dict[str, Any]) -> bool:
        port = int(info.get("port") or 0)
        keys = {url_key(str(info.get("host", "")), port)}
        u = self._url_from_info(info)
        if u is not None:
            keys.add(url_key(u.host, port))
        return any(url_key(r.host, r.port) in keys for r in self.opts.routes)

    def is_configured(self, rid: str) -> bool:
        return any(d.explicit and d.remote_id == rid for d in self.dialers.values())

    # -- interest ---------------------------------------------------------------------

    def local_interest(self, acc: bytes, sub: Subscription, delta: int) -> None:
        subject, queue = sub.subject, sub.queue
        if self._perms is not None and not self.can_import(subject):
            return
        if queue is None:
            key = (acc, subject)
            old = self._plain.get(key, 0)
            n = old + delta
            if n <= 0:
                self._plain.pop(key, None)
                if old > 0:
                    self._broadcast(wire.rs_minus(acc, subject))
            else:
                self._plain[key] = n
                if old == 0:
                    self._broadcast(wire.rs_plus(acc, subject))
        else:
            qkey = (acc, subject, queue)
            old = self._queues.get(qkey, 0)
            n = old + delta
            if n <= 0:
                self._queues.pop(qkey, None)
                if old > 0:
                    self._broadcast(wire.rs_minus(acc, subject, queue))
            else:
                self._queues[qkey] = n
                self._broadcast(wire.rs_plus(acc, subject, queue, n))

    def _broadcast(self, data: bytes) -> None:
        """An interest change (RS+/RS-) to every route, traced as nats-server traces it."""
        trace = self.server.log.trace_enabled
        for r in self.routes.values():
            if trace:
                r.trace(f"->> [{data[:-2].decode(errors='replace')}]")
            r.enqueue(data)

    def send_info_to_routes(self) -> None:
        data = wire.info(self.route_info())
        for r in self.routes.values():
            r.enqueue(data)
        self.server.flush_dirty()

    # -- connect_urls -----------------------------------------------------------------

    def _add_urls(self, urls: list[str], *, ws: bool = False) -> None:
        refs = self._ws_url_refs if ws else self._url_refs
        changed = False
        for u in urls:
            n = refs.get(u, 0)
            refs[u] = n + 1
            if n == 0:
                changed = True
        if changed:
            self._urls_did_change(ws)

    def _remove_urls(self, urls: list[str], *, ws: bool = False) -> None:
        refs = self._ws_url_refs if ws else self._url_refs
        changed = False
        for u in urls:
            n = refs.get(u, 0)
            if n <= 1:
                if refs.pop(u, None) is not None:
                    changed = True
            else:
                refs[u] = n - 1
        if changed:
            self._urls_did_change(ws)

    def _urls_did_change(self, ws: bool) -> None:
        # As nats-server: only the clients whose list changed (TCP or websocket) are told.
        if ws:
            self._ws_urls_changed = True
        else:
            self._urls_changed = True
        self.server.send_async_info_to_clients(client_type="websocket" if ws else "nats")

    def client_connect_urls(self) -> list[str]:
        """What clients are told in INFO connect_urls: ours first, then the peers'."""
        if not self._urls_changed:
            return []
        own = [] if self.server.lame_duck else self.server.client_connect_urls()
        return own + [u for u in self._url_refs if u not in own]

    def ws_connect_urls(self) -> list[str]:
        """What websocket clients are told in INFO connect_urls: our websocket port's URLs,
        then the peers' (none until a peer with a websocket port joined)."""
        ws = self.server.websocket
        if not self._ws_urls_changed:
            return []
        own = [] if self.server.lame_duck or ws is None else list(ws.connect_urls)
        return own + [u for u in self._ws_url_refs if u not in own]

    # -- flow control -----------------------------------------------------------------

    def route_paused(self, conn: RouteConnection, paused: bool) -> None:
        if paused:
            self.paused_routes.add(conn)
            self.server.throttled = True
        else:
            self.paused_routes.discard(conn)
            if not self.paused_routes:
                self.server.throttled = False
                throttled, self._throttled = self._throttled, []
                for c in throttled:
                    if not c.closed and c.transport is not None:
                        c.transport.resume_reading()

    def throttle(self, client: Any) -> None:
        """A client published while a route is backed up: stop reading it for now."""
        if client.transport is not None and client not in self._throttled:
            client.transport.pause_reading()
            self._throttled.append(client)
            self.server.stalls += 1  # /varz stalled_clients
            client.stalls += 1

    # -- monitoring -------------------------------------------------------------------

    def varz(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "addr": self.host,
            "cluster_port": self.port,
            "auth_timeout": go_float(self.opts.route_auth_timeout()),
        }
        if self.opts.routes:
            out["urls"] = [netutil.join_host_port(r.host, r.port) for r in self.opts.routes]
        out["tls_timeout"] = go_float(self.opts.tls_timeout)
        if self.opts.tls is not None:
            out["tls_required"] = out["tls_verify"] = True
        out["pool_size"] = -1  # one connection per peer: what nats-server calls pooling disabled
        return out

    def routez(self, subs: str) -> list[dict[str, Any]]:
        now = time.time()
        out = []
        for c in sorted(self.routes.values(), key=lambda r: r.rid):
            pending = c.transport.get_write_buffer_size() if c.transport is not None else 0
            r: dict[str, Any] = {
                "rid": c.rid,
                "remote_id": c.remote_id,
                "remote_name": c.remote_name,
                "did_solicit": c.did_solicit,
                "is_configured": c.explicit or self.is_configured(c.remote_id),
                "ip": c.host,
                "port": c.port,
                "start": go_time(c.start),
                "last_activity": go_time(c.last_activity),
                "rtt": go_duration(c.rtt),
                "uptime": uptime(now - c.start),
                "idle": uptime(now - c.last_activity),
                "pending_size": pending,
                "in_msgs": c.in_msgs,
                "out_msgs": c.out_msgs,
                "in_bytes": c.in_bytes,
                "out_bytes": c.out_bytes,
                "subscriptions": len(c.rsubs),
            }
            if subs in ("1", "true", "detail"):
                r["subscriptions_list"] = [
                    (s.subject + (b" " + s.queue if s.queue else b"")).decode(errors="replace")
                    for s in c.rsubs.values()
                ]
            r["compression"] = "not supported"
            out.append(r)
        return out




def _route_perms_info(p: Permissions) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The `import` and `export` objects of a route INFO (nats-server SubjectPermission)."""

    def side(allow: list[str] | None, deny: list[str] | None) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        if allow:
            out["allow"] = allow
        if deny:
            out["deny"] = deny
        return out

    return side(p.publish_allow, p.publish_deny), side(p.subscribe_allow, p.subscribe_deny)


# INFO fields nats-server reads from a route's first INFO only (a later INFO changing them is
# ignored; a changed cluster name closes the route).
_FIXED_AT_FIRST_INFO = ("server_name", "headers", "connect_urls", "host", "port", "max_payload", "proto", "version")


def _runs_our_rule(info: dict[str, Any]) -> bool:
    """Whether the peer is a pynats-server, which resolves duplicates by the same rule."""
    return str(info.get("go", "")).startswith("pynats-server")


def _stop() -> Exception:
    return _Stop()
