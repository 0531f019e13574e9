"""Leaf nodes: the listener (we are a hub), the remotes we dial (we are a leaf), which
account a leaf is bound to, and which interest goes to which leaf.

Interest (nats-server initLeafNodeSmapAndSendSubs, updateLeafNodes, updateSmap): each leaf
connection keeps a count per key (`subject` or `subject queue`) of what it was told, so it
gets one LS+ when a key first appears and one LS- when it goes; a queue key is sent again
with its new total (the weight) on every change. A hub tells a leaf about every subscription
of the bound account: local ones, the routes' and other leafs'. A leaf tells its hub only
about its own clients' and the leafs that connected to it (never what its routes or its
other hubs sent), plus the account's `$LDS.<id>` subject: a leaf that hears its own `$LDS`
subject back is in a loop, and says so ("Loop detected ...") and waits 30 s before dialling
again.

Reconnects (nats-server connectToRemoteLeafNode): a remote's URLs (shuffled unless
no_randomize, plus those the hub advertises in `leafnode_urls`) are tried in turn, the next
one after each failure, `reconnect` (1 s) plus up to as much jitter apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import acceptor, const, ids, netutil, tlsctx
from .gotime import go_duration, go_float
from .leafnode import LDS_PREFIX, LeafConnection
from .leafperms import info_permissions
from .options import LeafNodeOptions, LeafURL, RemoteLeaf, parse_leaf_url
from .protocol import wire

if TYPE_CHECKING:
    from .accounts import Account
    from .auth import Verdict
    from .core import ServerCore
    from .sublist import Subscription


_CONNECT_ERROR_REPORTS = 3600


class RemoteState:
    """A remote leafnode entry and where its dialler is."""

    def __init__(self, leafs: LeafNodes, opts: RemoteLeaf) -> None:
        self.leafs = leafs
        self.opts = opts
        self.urls: list[LeafURL] = list(opts.urls)
        if not opts.no_randomize:
            random.shuffle(self.urls)
        self.cur: LeafURL | None = None
        self.connect_delay = 0.0
        self.conn: LeafConnection | None = None
        self.task: asyncio.Task[None] | None = None
        self.gone: asyncio.Event = asyncio.Event()
        # user/password of the configured URLs, for URLs learned from the hub (bare host:port)
        self.user = next((u.user for u in opts.urls if u.user), None)
        self.password = next((u.password for u in opts.urls if u.user), None)

    def pick_next_url(self) -> LeafURL:
        """The next URL to try: the current one, if first, moves to the end."""
        if self.cur is not None and len(self.urls) > 1 and _same(self.cur, self.urls[0]):
            self.urls.append(self.urls.pop(0))
        self.cur = self.urls[0]
        return self.cur

    def learn_urls(self, hostports: list[str]) -> None:
        """The hub's leafnode_urls: the most up to date list of where to reconnect, then
        the configured ones (nats-server doUpdateLNURLs)."""
        learned: list[LeafURL] = []
        for hp in hostports:
            try:
                u = parse_leaf_url(f"nats-leaf://{hp}")
            except ValueError:
                continue
            if any(_same(u, c) for c in self.opts.urls):
                continue
            learned.append(u)
        self.urls = learned + list(self.opts.urls)

    def credentials_of(self, url: LeafURL | None) -> tuple[str | None, str | None]:
        if url is not None and url.user:
            return url.user, url.password
        return self.user, self.password


def _same(a: LeafURL, b: LeafURL) -> bool:
    return a.host == b.host and a.port == b.port


class LeafNodes:
    def __init__(self, server: ServerCore) -> None:
        self.server = server
        self.log = server.log
        self.opts: LeafNodeOptions = server.opts.leafnode
        self.host = self.opts.host or const.DEFAULT_HOST
        self.port = 0
        self.running = False
        self._listener: acceptor.Listener | None = None
        self.conns: set[LeafConnection] = set()  # every leaf connection, registered or not
        self.leafs: dict[int, LeafConnection] = {}  # registered, by connection id
        self.by_account: dict[bytes, list[LeafConnection]] = {}
        self._lds: dict[bytes, bytes] = {}
        self.remotes: list[RemoteState] = []
        self._info_ip = ""
        self.tls_server_context: Any = None  # leafnodes { tls {} } (tlsctx)
        self._route_urls: dict[str, list[str]] = {}  # leafnode_urls of our routes' servers
        self.closed_in_msgs = 0
        self.closed_in_bytes = 0
        self.closed_out_msgs = 0
        self.closed_out_bytes = 0

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if not self.opts.listening:
            return
        srv = self.server
        port = 0 if self.opts.port == const.RANDOM_PORT else self.opts.port
        factory: Callable[[], LeafConnection] = lambda: LeafConnection(self)  # noqa: E731
        if self.opts.tls is not None:
            from .leaftls import TLSLeafConnection

            self.tls_server_context = tlsctx.server_context(self.opts.tls)
            factory = lambda: TLSLeafConnection(self)  # noqa: E731
        self._listener = acceptor.Listener(srv.loop, acceptor.bind(self.host or None, port, 100), factory,
                                           srv.log, "Leafnode")
        self.port = self._listener.sockets[0].getsockname()[1]
        self.log.notice(f"Listening for leafnode connections on {netutil.join_host_port(self.host, self.port)}")
        host, port = self._advertised()
        self._info_ip = netutil.join_host_port(host, port)
        if self.opts.advertise:
            self.log.notice(f"Advertise address for leafnode is set to {self._info_ip}")

    async def serve(self) -> None:
        pass  # accepting since start()

    def ready(self) -> None:
        self.solicit()

    def stop_accepting(self) -> None:
        pass  # as nats-server: lame duck mode closes the client and websocket ports only

    def closed_totals(self) -> tuple[int, int, int, int]:
        return self.closed_in_msgs, self.closed_in_bytes, self.closed_out_msgs, self.closed_out_bytes

    def solicit(self) -> None:
        self.running = True
        for r in self.opts.remotes:
            st = RemoteState(self, r)
            self.remotes.append(st)
            if not r.disabled and r.urls:
                st.task = asyncio.ensure_future(self._keep_connected(st))

    async def shutdown(self) -> None:
        self.running = False
        if self._listener is not None:
            self._listener.close()
            self.log.debug("Leafnode accept loop exiting..")
        for st in self.remotes:
            if st.task is not None:
                st.task.cancel()
        for c in list(self.conns):
            c.close_connection("Server Shutdown")
        self.server.flush_dirty()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.wait_closed(), 1.0)
        tasks = [st.task for st in self.remotes if st.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def track(self, c: LeafConnection) -> None:
        self.conns.add(c)

    def connections(self) -> list[LeafConnection]:
        return list(self.conns)

    @property
    def listen_url(self) -> str:
        h = "127.0.0.1" if netutil.is_unspecified(self.host) else self.host
        return f"nats-leaf://{netutil.join_host_port(h, self.port)}"

    # -- soliciting -------------------------------------------------------------------

    async def _keep_connected(self, st: RemoteState) -> None:
        """Dial the remote's URLs in turn until one takes, wait for that connection to
        end, wait `reconnect`, and again (nats-server connectToRemoteLeafNode)."""
        srv = self.server
        log = self.log
        reconnect = self.opts.reconnect or 1.0
        first = True
        while self.running and not srv.shutting_down:
            if st.connect_delay > 0:
                await asyncio.sleep(st.connect_delay)
                st.connect_delay = 0.0
            attempts = 0
            conn: LeafConnection | None = None
            st.gone = asyncio.Event()  # before dialling: a connection may end at once
            while self.running and conn is None:
                url = st.pick_next_url()
                hp = url.host_port
                log.debug(f'Trying to connect as leafnode to remote server on "{hp}"')
                try:
                    _, conn = await asyncio.wait_for(
                        srv.loop.create_connection(self._factory(st, url), url.host, url.port),
                        const.DEFAULT_ROUTE_DIAL,
                    )
                except (OSError, asyncio.TimeoutError) as e:
                    from .dialer import dial_error_text

                    attempts += 1
                    text = (f'Error trying to connect as leafnode to remote server "{hp}" '
                            f"(attempt {attempts}): {dial_error_text(e, hp)}")
                    # nats-server reports the first failure and every hour's worth after it
                    # (connect_error_reports); a reconnect's every failure.
                    if not first or attempts == 1 or attempts % _CONNECT_ERROR_REPORTS == 0:
                        log.error(text)
                    else:
                        log.debug(text)
                    await asyncio.sleep(reconnect + random.random() * reconnect)
            if conn is None:
                return
            st.conn = conn
            if not conn.closed:
                await st.gone.wait()
            st.conn = None
            first = False
            if not self.running:
                return
            await asyncio.sleep(reconnect)

    def _factory(self, st: RemoteState, url: LeafURL) -> Callable[[], LeafConnection]:
        # A solicited connection can always do TLS: the hub's INFO may ask for it.
        from .leaftls import TLSLeafConnection

        return lambda: TLSLeafConnection(self, st, url)

    def delay_reconnect(self, c: LeafConnection, const_delay: float) -> float:
        if c.remote is not None:
            c.remote.connect_delay = const_delay
        return const_delay

    def account_for_remote(self, st: RemoteState) -> Account | None:
        name = st.opts.account or const.GLOBAL_ACCOUNT
        return self.server.accounts.get(name)

    def connect_fields(self, c: LeafConnection) -> dict[str, Any] | None:
        """The CONNECT a leaf sends its hub (nats-server leafConnectInfo)."""
        srv = self.server
        st = c.remote
        assert st is not None
        acc = c.account
        co: dict[str, Any] = {"version": const.NATS_VERSION}
        if st.opts.credentials:
            from . import nkeys_util
            from .jwt import parse_decorated_jwt, parse_decorated_seed

            try:
                with open(st.opts.credentials, encoding="utf-8") as f:
                    contents = f.read()
                token = parse_decorated_jwt(contents)
                seed = parse_decorated_seed(contents)
                kp = nkeys_util._nkeys().from_seed(seed.encode())
                import base64

                co["jwt"] = token
                co["sig"] = base64.urlsafe_b64encode(kp.sign(c.nonce)).decode().rstrip("=")
            except Exception as e:  # a missing or malformed file: logged, then retried
                c.error(f"Error reading LeafNode Remote Credentials file {st.opts.credentials!r}: {e}")
                return None
        elif st.opts.nkey:
            import base64

            from . import nkeys_util

            try:
                kp = nkeys_util._nkeys().from_seed(st.opts.nkey.encode())
            except Exception:
                c.error("Remote nkey has malformed seed")
                return None
            co["nkey"] = kp.public_key.decode()
            co["sig"] = base64.urlsafe_b64encode(kp.sign(c.nonce)).decode().rstrip("=")
        user, password = st.credentials_of(c.url)
        if user:
            co["user"] = user
            if password:
                co["pass"] = password
            else:
                co["auth_token"] = user
        co["server_id"] = srv.id
        co["name"] = srv.name
        if st.opts.hub:
            co["is_hub"] = True
        if srv.cluster_name():
            co["cluster"] = srv.cluster_name()
        if c.headers or not srv.opts.no_header_support:
            co["headers"] = not srv.opts.no_header_support
        if st.opts.deny_imports:
            co["deny_pub"] = list(st.opts.deny_imports)
        if acc is not None:
            co["remote_account"] = acc.name
        co["protocol"] = 1
        return _connect_order(co)

    # -- accepting --------------------------------------------------------------------

    def _advertised(self) -> tuple[str, int]:
        if self.opts.advertise:
            return netutil.split_host_port(self.opts.advertise, self.port)
        host = self.host
        if netutil.is_unspecified(host):
            ips = netutil.non_local_ips()
            host = ips[0] if ips else host
        return host, self.port

    def new_nonce(self) -> bytes:
        return ids.nonce().encode()

    def auth_timeout(self) -> float:
        if self.opts.auth_timeout:
            return self.opts.auth_timeout
        return self.server.opts.client_auth_timeout()

    def own_url(self) -> str:
        """Our leafnode `host:port` as advertised to leafs and routes ("" when not)."""
        return "" if self.opts.no_advertise else self._info_ip

    def leafnode_urls(self) -> list[str]:
        """Ours, then those of our cluster's other servers (from their route INFOs)."""
        own = self.own_url()
        out = [own] if own else []
        for urls in self._route_urls.values():
            out.extend(u for u in urls if u not in out)
        return out

    def route_urls(self, rid: str, urls: list[str]) -> None:
        """A route registered (its leafnode_urls) or went (none): tell our leafs when the
        list changes, as nats-server's async leafnode INFO does."""
        before = self.leafnode_urls()
        if urls:
            self._route_urls[rid] = urls
        else:
            self._route_urls.pop(rid, None)
        if self.leafnode_urls() != before:
            for c in list(self.leafs.values()):
                if not c.did_solicit:
                    c.enqueue(wire.info(self.info(c)))
            self.server.schedule_flush()

    def info(self, c: LeafConnection, *, first: bool = False, connect_info: bool = False) -> dict[str, Any]:
        """The INFO a hub sends a leaf (nats-server's leafNodeInfo)."""
        srv = self.server
        host, port = self._advertised()
        fields: dict[str, Any] = {
            "server_id": srv.id,
            "server_name": srv.name,
            "version": const.NATS_VERSION,
            "proto": 1,
            "go": srv.info_base.get("go", "python"),
            "host": host,
            "port": port,
            "headers": not srv.opts.no_header_support,
            "auth_required": True,
            "tls_required": self.opts.tls is not None,
            "tls_verify": self.opts.tls is not None and self.opts.tls.verify,
            "max_payload": srv.opts.max_payload,
            "jetstream": srv.opts.jetstream is not None,
            "ip": self._info_ip,
            "client_id": c.cid,
            "cluster": srv.cluster_name(),
            "api_lvl": 4,
            "info_on_connect": True,
            "leafnode_urls": self.leafnode_urls(),
        }
        if first:
            fields["nonce"] = c.nonce.decode()
        if connect_info:
            fields["connect_info"] = True
            acc = c.account
            if acc is not None:
                fields["remote_account"] = acc.name
                fields["acc_is_sys"] = acc is srv.system_account
            # The user's permissions, for the leaf to keep to (it sends only what it may).
            fields.update(info_permissions(c.user_perms))
        out = {k: v for k, v in _info_order(fields).items() if k in _INFO_ALWAYS or v}
        out["leafnode_urls"] = fields["leafnode_urls"]  # always there: it tells a leaf port from others
        return out

    def authorize(self, co: dict[str, Any], c: LeafConnection, *, remote: bool = True) -> Verdict:
        """Decide a leaf's CONNECT (nats-server isLeafNodeAuthorized): `account` is the
        account it binds to, `user` the user whose permissions apply (none for the
        leafnodes authorization's own users and nkey, which take no permissions)."""
        from .auth import Identity, Verdict, is_bcrypt, same_text
        from .nkeys_util import check_nonce_sig

        o = self.opts
        srv = self.server
        ident = Identity(str(co.get("nkey") or ""), str(co.get("user") or ""), str(co.get("auth_token") or ""))
        password = str(co.get("pass") or "")

        def secret(configured: str, account: str) -> Verdict:
            v = Verdict(True, ident, account=self._bind(account))
            if is_bcrypt(configured):
                v.bcrypt = (configured, password)  # checked off the event loop
            else:
                v.ok = same_text(configured, password)
            return v

        # A leafnodes authorization {} decides alone: its user, nkey or users.
        if o.user:
            if ident.user != o.user:
                return Verdict(False, ident)
            return secret(o.password, o.account)
        if o.nkey:
            if ident.nkey != o.nkey:
                return Verdict(False, ident)
            why = check_nonce_sig(o.nkey, str(co.get("sig") or ""), c.nonce)
            if why:
                return Verdict(False, ident, debug=why)
            return Verdict(True, ident, account=self._bind(o.account))
        if o.users:
            for u in o.users:
                if u.user == ident.user:
                    return secret(u.password, u.account)
            return Verdict(False, ident)
        # Else the client users decide (a JWT in operator mode), as LEAFNODE connections;
        # the user's account is the leaf's, its permissions the leaf's.
        if srv.operator is not None:
            return srv.operator.safe_check(c, co, remote=remote, conn_type="LEAFNODE", kind="Leafnode")
        if not srv.auth.required:
            return Verdict(True, ident, account=self._bind(o.account))
        v = srv.auth.check(co, c.nonce, "LEAFNODE")
        if v.ok:
            v.account = self._bind(v.user.account if v.user is not None else "")
        return v

    def _bind(self, name: str) -> Account | None:
        return self.server.accounts.get(name or const.GLOBAL_ACCOUNT)

    def account_leafs(self, acc: Account) -> int:
        """The leaf connections bound to `acc`."""
        return len(self.by_account.get(acc.name_b, ()))

    # -- registry ---------------------------------------------------------------------

    def register(self, c: LeafConnection) -> None:
        acc = c.account
        assert acc is not None
        c.registered = True
        if c.jwt_claims is None:  # a JWT leaf's were applied as it authenticated
            c.apply_limits()  # the server's max_subscriptions and the account's limits
        self.leafs[c.cid] = c
        self.by_account.setdefault(acc.name_b, []).append(c)
        srv = self.server
        # nats-server's lines when JetStream is not extended over the leaf (pynats-server never does)
        if acc is srv.system_account:
            name = f"{c.remote_server}/{c.remote_cluster}" if c.remote_cluster else c.remote_server
            c.notice(f"System account connected from {name}")
            c.notice("JetStream not extended, domains differ")
        else:
            c.notice('JetStream using domains: local "", remote ""')
        if c.remote is not None:
            c.remote.connect_delay = 0.0

    def closed(self, c: LeafConnection) -> None:
        self.conns.discard(c)
        self.closed_in_msgs += c.in_msgs
        self.closed_in_bytes += c.in_bytes
        self.closed_out_msgs += c.out_msgs
        self.closed_out_bytes += c.out_bytes
        c.drop_remote_interest()
        if c.registered:
            c.registered = False
            self.leafs.pop(c.cid, None)
            acc = c.account
            if acc is not None:
                lst = self.by_account.get(acc.name_b)
                if lst is not None and c in lst:
                    lst.remove(c)
                    if not lst:
                        del self.by_account[acc.name_b]
        st = c.remote
        if st is not None and (st.conn is c or st.conn is None):
            st.gone.set()  # the dialler waits on it (set up before dialling)

    def lds(self, acc: Account) -> bytes:
        """The account's loop detection subject, `$LDS.<id>`, made on first use."""
        s = self._lds.get(acc.name_b)
        if s is None:
            s = self._lds[acc.name_b] = LDS_PREFIX + ids.nuid().encode()
        return s

    # -- interest ---------------------------------------------------------------------

    def send_initial_interest(self, c: LeafConnection) -> None:
        """Everything the peer should hear about, as LS+ (nats-server initLeafNodeSmapAndSendSubs)."""
        acc = c.account
        assert acc is not None
        smap: dict[bytes, int] = {}
        rc = c.remote_cluster
        for sub in acc.sublist.all():
            if sub.closed or sub.client is c:
                continue
            if not self._relevant(c, sub, initial=True):
                continue
            if getattr(sub.client, "is_leaf", False) and rc and sub.client.remote_cluster == rc:
                continue
            key = sub.subject if sub.queue is None else sub.subject + b" " + sub.queue
            n = sub.qw if (sub.queue is not None and sub.is_route and sub.qw > 0) else 1
            smap[key] = smap.get(key, 0) + n
        lds = self.lds(acc)
        smap[lds] = smap.get(lds, 0) + 1
        c.smap = smap
        # A hub tells its leafs of the account's service imports whatever their permissions
        # (nats-server's initLeafNodeSmapAndSendSubs); a spoke checks them.
        free = set() if c.is_spoke else {si.from_.encode() for si in acc.service_imports.values()}
        buf = []
        for k, n in smap.items():
            if k in free or not _held_back(c, k):
                buf.append(_ls_line(k, n))
            elif c.log.debug_enabled:
                subj = k.split(b" ", 1)[0].decode(errors="replace")
                c.debug(f'Not permitted to subscribe to "{subj}" on behalf of {acc.trace_label()}')
        if buf:
            if c.log.trace_enabled:
                for line in buf:
                    c.trace(f"->> [{line[:-2].decode(errors='replace')}]")
            c.enqueue(b"".join(buf))

    def _relevant(self, c: LeafConnection, sub: Subscription, *, initial: bool = False) -> bool:
        """Whether `sub` is interest to tell leaf `c` about (nats-server updateSmap): a spoke
        tells its hub only about local subscriptions and those of leafs it is the hub of."""
        if not c.is_spoke:
            return True
        if not sub.is_route:
            return True
        d = sub.client
        return bool(getattr(d, "is_leaf", False) and not d.is_spoke)

    def interest(self, acc: Account, sub: Subscription, delta: int) -> None:
        """A subscription of `acc` came, went, or changed weight: update the leafs."""
        leafs = self.by_account.get(acc.name_b)
        if not leafs:
            return
        subject = sub.subject
        is_lds = subject.startswith(LDS_PREFIX)
        src = sub.client
        origin = src.remote_cluster if getattr(src, "is_leaf", False) else ""
        for ln in leafs:
            if ln is src or ln.smap is None:
                continue
            different = origin != ln.remote_cluster
            if not ((is_lds and different) or not origin or different):
                continue
            if not is_lds and not self._relevant(ln, sub):
                continue
            self._update_smap(ln, sub, delta)

    def _update_smap(self, ln: LeafConnection, sub: Subscription, delta: int) -> None:
        smap = ln.smap
        assert smap is not None
        key = sub.subject if sub.queue is None else sub.subject + b" " + sub.queue
        n = smap.get(key)
        if delta < 0 and n is None:
            return
        n = n or 0
        update = sub.queue is not None or (n <= 0 < n + delta) or (n > 0 >= n + delta)
        n += delta
        if n > 0:
            smap[key] = n
        else:
            smap.pop(key, None)
        if update and not _held_back(ln, key):
            line = _ls_line(key, n)
            if ln.log.trace_enabled:
                ln.trace(f"->> [{line[:-2].decode(errors='replace')}]")
            ln.enqueue(line)

    def remote_sub_changed(self, c: LeafConnection, acc: Account, sub: Subscription, delta: int) -> None:
        """A leaf's LS+/LS- (or its close): routes hear of it unless `c` is our hub, and the
        other leafs of the account as their role says."""
        srv = self.server
        if not c.is_spoke and srv.cluster is not None:
            srv.cluster.local_interest(acc.name_b, sub, delta)
        self.interest(acc, sub, delta)

    # -- monitoring -------------------------------------------------------------------

    def varz(self) -> dict[str, Any]:
        o = self.opts
        out: dict[str, Any] = {}
        if o.listening:  # nats-server fills the timeouts in only for a listener
            out["host"] = o.host
            out["port"] = self.port
            out["auth_timeout"] = go_float(self.auth_timeout())
            tls_timeout = o.tls.handshake_timeout if o.tls is not None else const.TLS_TIMEOUT
            out["tls_timeout"] = go_float(tls_timeout)
        if o.tls is not None:
            out["tls_required"] = True
            if o.tls.verify:
                out["tls_verify"] = True
        remotes = []
        for r in o.remotes:
            e: dict[str, Any] = {"local_account": r.account or const.GLOBAL_ACCOUNT}
            if r.tls is not None:
                e["tls_timeout"] = go_float(r.tls.handshake_timeout)
            e["urls"] = [u.host_port for u in r.urls]
            if r.deny_imports or r.deny_exports:
                deny: dict[str, Any] = {}
                if r.deny_exports:
                    deny["exports"] = list(r.deny_exports)
                if r.deny_imports:
                    deny["imports"] = list(r.deny_imports)
                e["deny"] = deny
            remotes.append(e)
        if remotes:
            out["remotes"] = remotes
        return out

    def leafz(self, *, subs: bool = False, account: str = "") -> list[dict[str, Any]]:
        out = []
        for c in sorted(self.leafs.values(), key=lambda x: x.cid):
            acc = c.account.name if c.account is not None else ""
            if account and acc != account:
                continue
            e: dict[str, Any] = {
                "id": c.cid,
                "name": c.remote_server,
                "is_spoke": c.is_spoke,
                "account": acc,
                "ip": c.host,
                "port": c.port,
                "rtt": go_duration(c.rtt),
                "in_msgs": c.in_msgs,
                "out_msgs": c.out_msgs,
                "in_bytes": c.in_bytes,
                "out_bytes": c.out_bytes,
                "subscriptions": len(c.rsubs),
            }
            if subs and c.rsubs:
                e["subscriptions_list"] = [k.decode(errors="replace") for k in c.rsubs]
            e["compression"] = "not supported"  # no compression here (nats-server's name for that)
            out.append(e)
        return out


def _held_back(c: LeafConnection, key: bytes) -> bool:
    """Interest not to send: subjects the connection's permissions keep from the peer
    (a hub's leaf user may not publish them; a leaf may not import them; the JetStream
    API on every leaf connection)."""
    perms = c.perms
    if perms is None:
        return key.startswith(c.js_deny)
    return not perms.may_tell(key.split(b" ", 1)[0])


def _ls_line(key: bytes, n: int) -> bytes:
    if n > 0:
        if b" " in key:
            return b"LS+ " + key + b" " + str(n).encode() + b"\r\n"
        return b"LS+ " + key + b"\r\n"
    return b"LS- " + key + b"\r\n"


_INFO_ALWAYS = frozenset(("server_id", "server_name", "version", "proto", "go", "host", "port", "headers",
                          "max_payload", "import", "export"))  # fmt: skip
_INFO_KEYS = ("server_id", "server_name", "version", "proto", "go", "host", "port", "headers",
              "auth_required", "tls_required", "tls_verify", "max_payload", "jetstream", "ip", "client_id",
              "nonce", "cluster", "connect_info", "remote_account", "acc_is_sys", "api_lvl", "import", "export",
              "info_on_connect", "leafnode_urls")  # fmt: skip


def _info_order(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: fields[k] for k in _INFO_KEYS if k in fields}


_CONNECT_KEYS = ("version", "nkey", "jwt", "sig", "user", "pass", "auth_token", "server_id", "domain", "name",
                 "is_hub", "cluster", "headers", "jetstream", "deny_pub", "isolate", "compress_mode",
                 "gateway", "remote_account", "protocol")  # fmt: skip


def _connect_order(co: dict[str, Any]) -> dict[str, Any]:
    return {k: co[k] for k in _CONNECT_KEYS if k in co and co[k] not in (None, "", False, [])}
