"""A leaf node connection: asyncio glue for the leaf protocol, in both roles.

Accepting (we are the hub): INFO with a nonce at once, then the leaf's CONNECT binds the
connection to an account (leafnodes authorization, else the client users, else $G), and we
answer with an INFO carrying `connect_info` and the bound account, then our interest (LS+).
Soliciting (we are the leaf, leafnodes.py dials): the hub's INFO, our CONNECT, then (a hub
that says `info_on_connect`) its second INFO, then our interest. The protocol after that is
the same both ways: `LS+ subject [queue weight]`, `LS- subject [queue]`, `LMSG subject
[reply | + reply queues | | queues] size` and `HMSG subject [...] hdr size` (no account:
the connection's is meant), PING/PONG.

The peer's interest goes into the account's index as route-like subscriptions
(`is_route`), so a match names the connection once, however many of its subscriptions
match, and a queue member counts by its weight. Which messages go where is in
leafdelivery.py; which interest goes to which leaf is in leafnodes.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any, Protocol

from . import const
from .auth import Identity, _go_q, _has_wildcard
from .connection import Connection
from .core import ServerCore
from .jwt_client import JWTClient
from .leafperms import JS_DENY_PREFIXES, LeafPermissions, js_deny_prefixes
from .protocol import wire
from .protocol.parser import LEAF, Hold, Parser, ProtocolError, parse_size, split_args
from .protocol.subjects import is_valid_subject
from .sublist import Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .auth import Verdict
    from .options import LeafNodeOptions, LeafURL, Permissions, RemoteLeaf


class LeafRemote(Protocol):
    """A remote this server dials as a leaf (leafnodes.RemoteState), as its connection sees it."""

    opts: RemoteLeaf
    conn: LeafConnection | None
    connect_delay: float
    gone: asyncio.Event

    def learn_urls(self, hostports: list[str]) -> None: ...
    def credentials_of(self, url: LeafURL | None) -> tuple[str | None, str | None]: ...


class LeafManager(Protocol):
    """What a leaf connection uses of the server's leaf nodes (leafnodes.LeafNodes)."""

    server: ServerCore
    opts: LeafNodeOptions
    tls_server_context: Any

    def track(self, c: LeafConnection) -> None: ...
    def closed(self, c: LeafConnection) -> None: ...
    def register(self, c: LeafConnection) -> None: ...
    def delay_reconnect(self, c: LeafConnection, const_delay: float) -> float: ...
    def account_for_remote(self, st: Any) -> Account | None: ...
    def connect_fields(self, c: LeafConnection) -> dict[str, Any] | None: ...
    def new_nonce(self) -> bytes: ...
    def lds(self, acc: Account) -> bytes: ...
    def account_leafs(self, acc: Account) -> int: ...
    def auth_timeout(self) -> float: ...
    def info(self, c: LeafConnection, *, first: bool = False, connect_info: bool = False) -> dict[str, Any]: ...
    def authorize(self, co: dict[str, Any], c: LeafConnection, *, remote: bool = True) -> Verdict: ...
    def send_initial_interest(self, c: LeafConnection) -> None: ...
    def remote_sub_changed(self, c: LeafConnection, acc: Account, sub: Subscription, delta: int) -> None: ...

LDS_PREFIX = b"$LDS."
E_WRONG_PORT = "attempted to connect to wrong port"
E_CLIENT_ON_LEAF_PORT = "attempted to connect to leaf node port"
E_SAME_CLUSTER = "remote leafnode has same cluster name"
CONNECT_PROCESS_TIMEOUT = 2.0  # nats-server connectProcessTimeout


class LeafConnection(JWTClient, Connection[ServerCore]):
    """A leaf node connection. In operator mode an accepted leaf is a JWT user like a
    client (JWTClient: its expiry, revocation, account limits)."""

    kind_name = "Leafnode"
    log_id_prefix = "lid"
    is_leaf = True
    echo = False  # a message from the leaf never goes back to it
    perm_filter = None
    no_responders = False
    # The JetStream API subjects a leaf connection never carries (leafperms.py), checked by
    # prefix when the connection has no other permissions.
    js_deny = JS_DENY_PREFIXES

    def __init__(self, leafs: LeafManager, remote: LeafRemote | None = None, url: LeafURL | None = None) -> None:
        srv = leafs.server
        super().__init__(srv)
        self.leafs = leafs
        self.cid = srv.next_cid()
        self.remote = remote  # our remotes {} entry, when we dialled
        self.url = url
        self.did_solicit = remote is not None
        self.is_spoke = remote is not None and not remote.opts.hub
        self.parser = Parser(self, LEAF, srv.opts.max_control_line)
        self.parser.await_connect = remote is None
        self.account: Account | None = None
        if remote is not None:
            self.account = leafs.account_for_remote(remote)
        self.headers = False
        self.nonce = b""
        self.remote_server = ""
        self.remote_id = ""
        self.remote_cluster = ""
        self.remote_account = ""
        self.registered = False
        self.info_received = False
        self.connect_sent = False
        self.user = ""
        self.name = ""
        self.lang = ""
        self.version = ""
        # What we told the peer (LS+ counts by key: `subject` or `subject queue`).
        self.smap: dict[bytes, int] | None = None
        # What the peer told us: its LS+ keys (without the weight) and their subscriptions.
        self.rsubs: dict[bytes, Subscription] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._info_on_connect = False
        # What this connection may carry (leafperms.py): an accepted leaf's user permissions
        # and CONNECT deny_pub; a remote's deny_exports/deny_imports and the hub's INFO
        # export/import. None: anything (the delivery path checks nothing).
        self.perms: LeafPermissions | None = None
        self.user_perms: Permissions | None = None  # an accepted leaf's user's, for its INFO
        if remote is not None:
            system = self._system_account()
            self.js_deny = js_deny_prefixes(system)
            self.perms = LeafPermissions.for_spoke(None, remote.opts.deny_exports, remote.opts.deny_imports,
                                                   system=system)
            if self.perms is not None:
                self.perms.hub = not self.is_spoke
        self.ident = Identity()
        self.co: dict[str, Any] = {}
        self._auth_pending = False  # a bcrypt check or an account fetch runs; input waits

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        self.host, self.port = str(peer[0]), int(peer[1])
        self._set_label(self.cid)
        leafs = self.leafs
        leafs.track(self)
        if self.did_solicit:
            assert self.remote is not None
            acc = self.account.name if self.account is not None else ""
            self.notice(f"Leafnode connection created for account: {acc} ")
            self._timer = self.server.loop.call_later(self.remote.opts.first_info_timeout, self._no_info)
        else:
            self.notice("Leafnode connection created ")
            self.nonce = leafs.new_nonce()
            self.enqueue(wire.info(leafs.info(self, first=True)))
            self.flush()
            self._timer = self.server.loop.call_later(leafs.auth_timeout(), self._auth_timeout)

    def data_received(self, data: bytes) -> None:
        if self._auth_pending:
            self.parser.hold_more(data)
            return
        self._process(self.parser.feed, data)

    def _process(self, fn: Any, *args: Any) -> None:
        srv = self.server
        n = self.parser.in_msgs
        srv.reading = True
        try:
            fn(*args)
        except ProtocolError as e:
            if e.err is not None:
                if e.err == wire.E_UNKNOWN_OP:
                    self.error(f"Leafnode parser ERROR, {e.detail}")
                elif e.err == wire.E_MAX_PAYLOAD:
                    self.error(e.detail)
                self.send_err(e.err)
            elif e.detail:
                self.error(e.detail)
            self.close_connection(e.reason or "Protocol Violation")
        finally:
            srv.reading = False
        if self.parser.in_msgs != n:
            self.last_activity = time.time()
        srv.flush_dirty()

    # -- timers -----------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _no_info(self) -> None:
        self._timer = None
        if not self.closed and not self.info_received:
            self.debug("Leafnode did not receive the INFO protocol in time")
            self.close_connection("Read Error")

    def _auth_timeout(self) -> None:
        self._timer = None
        if not self.closed and not self.registered:
            self.send_err(wire.E_AUTH_TIMEOUT)
            self.close_connection("Authentication Timeout")

    def _stale_connect(self) -> None:
        self._timer = None
        if not self.closed and not self.registered:
            self.debug("Stale Leaf Node Connection - Closing")
            self.send_err("Stale Leaf Node Connection - Closing")
            self.close_connection("Stale Connection")

    # -- handshake: the accepting side --------------------------------------------------

    def on_connect(self, arg: bytes) -> None:
        if self.log.trace_enabled:
            self.trace(f"<<- [CONNECT {_redact(arg)}]")
        if self.did_solicit or self.registered:
            self.ignored("CONNECT", "Ignoring CONNECT on a solicited leafnode connection")
            return
        try:
            co = json.loads(arg)
            if not isinstance(co, dict):
                raise ValueError
        except ValueError:
            raise ProtocolError(None, "Protocol Violation", "bad leafnode CONNECT") from None
        self.parser.await_connect = False
        self._cancel_timer()
        if co.get("lang"):
            self._fail(E_CLIENT_ON_LEAF_PORT, "Wrong Port", log=True)
        cluster = str(co.get("cluster") or "")
        if " " in cluster:
            self._fail("cluster name cannot contain spaces", "Protocol Violation", log=True)
        my_cluster = self.server.cluster_name()
        if my_cluster and cluster == my_cluster:
            self._fail(E_SAME_CLUSTER, "Cluster Names Identical", log=True)
        if co.get("gateway"):
            text = f'Rejecting connection from gateway "{co["gateway"]}" on the leafnode port'
            self.error(text)
            self._fail(text, "Wrong Gateway")
        self.co = co
        v = self.leafs.authorize(co, self)
        if v.bcrypt is not None:
            self._check_bcrypt(v)  # raises Hold
        if v.fetch:
            self.jwt_fetch(v, True)  # raises Hold
        if not self._authorized(v):
            raise _Stop()

    def _authorized(self, v: Verdict) -> bool:
        """The rest of the CONNECT once authentication is decided; False when refused."""
        co = self.co
        if v.debug_before:
            self.debug(v.debug_before)
        if v.error:
            self.error(v.error)
        if v.debug and v.jwt is None:
            self.debug(v.debug)
        acc = v.account if v.ok else None
        if acc is None:
            self._auth_violation(v.ident)
            return False
        if v.jwt is not None and not self.jwt_register(v):
            return False
        self.ident = v.ident
        self.account = acc
        self._ncs_acc = acc.trace_label()
        user = v.user
        perms = user.permissions if user is not None else None
        if perms is None and user is not None:
            perms = acc.default_permissions
        self.user_perms = perms
        self.headers = bool(co.get("headers")) and not self.server.opts.no_header_support
        self.remote_server = str(co.get("name") or "")
        self.remote_id = str(co.get("server_id") or "")
        self.remote_account = str(co.get("remote_account") or "")
        self.remote_cluster = str(co.get("cluster") or "")
        self.version = str(co.get("version") or "")
        if co.get("is_hub"):
            self.is_spoke = True
        deny = co.get("deny_pub")
        # What the leaf may not receive (its deny_imports) joins what its user may not.
        deny_pub = [str(x) for x in deny] if isinstance(deny, list) else []
        system = self._system_account()
        self.js_deny = js_deny_prefixes(system)
        self.perms = LeafPermissions.for_hub(perms, deny_pub, system=system)
        if self.perms is not None:
            self.perms.hub = not self.is_spoke
        if v.jwt is not None:
            self.jwt_connected(v)
        self.leafs.register(self)
        # Our INFO with the bound account and the permissions (nats-server
        # sendPermsAndAccountInfo), then our interest.
        self.enqueue(wire.info(self.leafs.info(self, connect_info=True)))
        self.leafs.send_initial_interest(self)
        self.set_first_ping_timer(const.FIRST_ROUTE_PING_INTERVAL)
        return True

    def _system_account(self) -> bool:
        return self.account is not None and self.account is self.server.system_account

    def _auth_violation(self, ident: Identity) -> None:
        """nats-server authViolation."""
        self.error(f"authentication error - {ident.describe()}" if ident.raw else "authentication error")
        self.send_err(wire.E_AUTH_VIOLATION)
        self.close_connection("Authentication Failure")

    # A bcrypt check (tens of ms) or an account fetch from other servers runs off the
    # parser: the rest of the input waits, then is parsed as if it had just arrived.

    def _hold_for_auth(self) -> None:
        self._auth_pending = True
        if self.transport is not None:
            self.transport.pause_reading()

    def _auth_decided(self, v: Verdict) -> None:
        self._auth_pending = False
        if self.closed:
            return
        if not self._authorized(v):
            self.server.flush_dirty()
            return
        if self.transport is not None:
            self.transport.resume_reading()
        self._process(self.parser.resume)

    def _check_bcrypt(self, v: Verdict) -> None:
        from .auth import bcrypt_matches

        assert v.bcrypt is not None
        self._hold_for_auth()
        fut = self.server.loop.run_in_executor(None, bcrypt_matches, *v.bcrypt)

        def done(f: asyncio.Future[bool]) -> None:
            try:
                v.ok = bool(f.result())
            except Exception:
                v.ok = False
            v.bcrypt = None
            self._auth_decided(v)

        fut.add_done_callback(done)
        raise Hold()

    def jwt_fetch(self, v: Verdict, first: bool) -> None:
        self._hold_for_auth()
        self.server.operator.fetch_async(v.fetch, lambda err: self._jwt_fetched(first))
        raise Hold()

    def _jwt_fetched(self, first: bool) -> None:
        if self.closed:
            self._auth_pending = False
            return
        self._auth_decided(self.leafs.authorize(self.co, self, remote=False))

    # -- operator mode (JWTClient), as a leaf has it

    @property
    def subs(self) -> dict[bytes, Subscription]:  # type: ignore[override]
        """What counts against the subscription limit: the peer's interest."""
        return self.rsubs

    def jwt_register(self, v: Verdict) -> bool:
        """The account's leaf node limit (registerWithAccount's MaxTotalLeafNodesReached)."""
        acc = v.account
        if acc.max_leafs != -1 and self.leafs.account_leafs(acc) >= acc.max_leafs:
            self.close_over_account_limit()
            return False
        return True

    def refresh_shadows(self) -> None:
        pass  # a leaf's interest has no shadow subscriptions here

    def _fail(self, text: str, reason: str, *, log: bool = False) -> None:
        if log:
            self.error(text)
        self.send_err(text)
        self.close_connection(reason)
        raise _Stop()

    # -- handshake: the soliciting side -------------------------------------------------

    def on_info(self, arg: bytes) -> None:
        try:
            info = json.loads(arg)
            if not isinstance(info, dict):
                raise ValueError
        except ValueError:
            raise ProtocolError(None, "Protocol Violation", "bad leafnode INFO") from None
        if self.log.trace_enabled:
            self.trace(f"<<- [INFO {arg.decode(errors='replace')}]")
        if not self.did_solicit:
            return  # the accepting side has nothing to learn from an INFO (no compression here)
        remote = self.remote
        assert remote is not None
        first = not self.info_received
        if first:
            if not info.get("client_id") or info.get("leafnode_urls") is None:
                self.error(E_WRONG_PORT)
                self.close_connection("Wrong Port")
                raise _Stop()
            cluster = str(info.get("cluster") or "")
            if " " in cluster:
                self._fail("cluster name cannot contain spaces", "Protocol Violation", log=True)
            self.info_received = True
            self._cancel_timer()
            self.nonce = str(info.get("nonce") or "").encode()
            self.headers = bool(info.get("headers")) and not self.server.opts.no_header_support
            self.remote_id = str(info.get("server_id") or "")
            self.remote_server = str(info.get("server_name") or "") or self.remote_id
            self.remote_cluster = cluster
            self.version = str(info.get("version") or "")
        urls = info.get("leafnode_urls")
        if isinstance(urls, list) and urls:
            remote.learn_urls([str(u) for u in urls])
        if info.get("import") is not None or info.get("export") is not None:
            # The hub tells us what our user may do: we keep to it (nats-server trusts
            # these only on a connection it dialled).
            perms = LeafPermissions.for_spoke(info, remote.opts.deny_exports, remote.opts.deny_imports,
                                              system=self._system_account())
            if perms is not None:
                perms.hub = not self.is_spoke
            self.perms = perms
            if self.account is not None and self.rsubs:
                # Planned deliveries (delivery.build_plan) that go to us must now check them.
                self.account.sublist.cache.clear()
        if info.get("remote_account"):
            self.remote_account = str(info["remote_account"])
        if first:
            self._info_on_connect = bool(info.get("info_on_connect"))
            if self._start_tls(bool(info.get("tls_required"))):
                return  # CONNECT once the handshake is done (leaftls.py)
            self._connected_as_leaf()
        if info.get("connect_info"):
            self._finish_solicited()

    def _start_tls(self, required: bool) -> bool:
        """A TLS handshake after the hub's INFO: only on TLS-capable connections."""
        if required:
            self.error("TLS required by the hub but this connection cannot do TLS")
            self.close_connection("TLS Handshake Failure")
            raise _Stop()
        return False

    def _connected_as_leaf(self) -> None:
        """After the hub's first INFO (and the TLS handshake, if any): our CONNECT."""
        self._send_connect()
        if not self._info_on_connect:
            self._finish_solicited()

    def _send_connect(self) -> None:
        co = self.leafs.connect_fields(self)
        if co is None:
            self.close_connection("Authentication Failure")
            raise _Stop()
        self.enqueue(b"CONNECT " + wire.go_json(co) + b"\r\n")
        self.flush()
        self.connect_sent = True
        self.debug("Remote leafnode connect msg sent")
        self._timer = self.server.loop.call_later(CONNECT_PROCESS_TIMEOUT, self._stale_connect)

    def _finish_solicited(self) -> None:
        if self.registered or self.closed:
            return
        self._cancel_timer()
        if self.account is None:
            self._fail(wire.E_AUTH_VIOLATION, "Protocol Violation")
        self.leafs.register(self)
        self.leafs.send_initial_interest(self)
        self.set_first_ping_timer(const.FIRST_ROUTE_PING_INTERVAL)

    # -- other ops ----------------------------------------------------------------------

    def on_err(self, arg: bytes) -> None:
        text = arg.decode(errors="replace")
        self.error(f"Leafnode Error {text}")
        if "remote leafnode has same cluster name" in text:
            delay = self.leafs.delay_reconnect(self, const_delay=30.0)
            self.error(f"Leafnode connection dropped with same cluster name error. Delaying attempt to reconnect for {_go_dur(delay)}")
        elif "Loop detected" in text:
            self._loop_detected(send_err=False)
        # nats-server does not close on a leaf -ERR: the peer closes.

    def on_ping(self) -> None:
        if self.log.trace_enabled:
            self.trace("<<- [PING]")
        self.send_proto(wire.PONG)

    def on_pong(self) -> None:
        if self.log.trace_enabled:
            self.trace("<<- [PONG]")
        self.got_pong()

    def on_ok(self) -> None:
        pass

    def ignored(self, what: str, text: str) -> None:
        if self.log.debug_enabled:
            self.debug(text)

    def _loop_detected(self, *, send_err: bool) -> None:
        acc = self.account.name if self.account is not None else ""
        delay = self.leafs.delay_reconnect(self, const_delay=30.0)
        text = f'Loop detected for leafnode account="{acc}". Delaying attempt to reconnect for {_go_dur(delay)}'
        if send_err:
            self.send_err(text)
        self.error(text)
        self.close_connection("Protocol Violation")

    # -- interest from the peer ---------------------------------------------------------

    def on_rs_plus(self, arg: bytes, leaf: bool) -> None:
        if self.log.trace_enabled:
            self.trace(f"<<- [LS+ {arg.decode(errors='replace')}]")
        args = split_args(arg)
        if len(args) == 1:
            subject, queue, weight = args[0], None, 1
            key = subject
        elif len(args) == 3:
            subject, queue = args[0], args[1]
            weight = max(parse_size(args[2]), 1)
            key = subject + b" " + queue
        else:
            raise ProtocolError(None, "Protocol Violation", f"processLeafSub Parse Error: '{arg.decode(errors='replace')}'")
        acc = self.account
        if acc is None:  # before the CONNECT bound one (nats-server's check)
            self._fail(wire.E_AUTH_VIOLATION, "Protocol Violation")
        assert acc is not None
        if subject.startswith(LDS_PREFIX) and subject == self.leafs.lds(acc):
            self._loop_detected(send_err=True)
            raise _Stop()
        perms = self.perms
        if perms is not None:
            refused = not perms.accepts_interest(subject)
        else:
            refused = subject.startswith(self.js_deny) and not _has_wildcard(subject)
        if refused:
            self._perm_violation("Subscription", subject)
            if self.log.debug_enabled:
                self.debug(f'Permissions Violation for Subscription to "{_go_q(subject.decode(errors="replace"))}"')
            if self.closed:
                raise _Stop()
            return
        if self.msubs != -1 and len(self.rsubs) >= self.msubs:
            self.max_subs_exceeded()
            return
        old = self.rsubs.get(key)
        if old is not None:
            if queue is not None and old.qw != weight:
                delta = weight - old.qw
                acc.sublist.update_weight(old, weight)
                self.leafs.remote_sub_changed(self, acc, old, delta)
            return
        if not is_valid_subject(subject):
            self.error(f"Could not insert subscription: invalid subject {subject!r}")
            self.send_err(wire.E_INVALID_SUBSCRIPTION)
            return
        sub = Subscription(self, subject, queue, key, is_route=True, weight=weight)
        acc.sublist.insert(sub)
        self.rsubs[key] = sub
        self.leafs.remote_sub_changed(self, acc, sub, weight if queue is not None else 1)

    def on_rs_minus(self, arg: bytes, leaf: bool) -> None:
        if self.log.trace_enabled:
            self.trace(f"<<- [LS- {arg.decode(errors='replace')}]")
        acc = self.account
        if acc is None:  # before the CONNECT bound one (nats-server's check)
            self._fail(wire.E_AUTH_VIOLATION, "Protocol Violation")
        assert acc is not None
        key = b" ".join(split_args(arg))
        sub = self.rsubs.pop(key, None)
        if sub is None:
            return
        sub.closed = True
        acc.sublist.remove(sub)
        self.leafs.remote_sub_changed(self, acc, sub, -(sub.qw if sub.queue is not None else 1))

    def drop_remote_interest(self) -> None:
        acc = self.account
        subs, self.rsubs = self.rsubs, {}
        if acc is None:
            return
        for sub in subs.values():
            sub.closed = True
            acc.sublist.remove(sub)
            self.leafs.remote_sub_changed(self, acc, sub, -(sub.qw if sub.queue is not None else 1))

    # -- messages -----------------------------------------------------------------------

    def on_rmsg(
        self, account: bytes, subject: bytes, reply: bytes | None, queues: list[bytes] | None, szb: bytes, msg: Any
    ) -> None:
        if self.log.trace_enabled:
            self._trace_in(b"LMSG", subject, reply, queues, None, szb, msg)
        self._inbound(subject, reply, queues, szb, -1, b"", msg)

    def on_rhmsg(
        self,
        account: bytes,
        subject: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        hdr: int,
        hdb: bytes,
        szb: bytes,
        msg: Any,
    ) -> None:
        if self.log.trace_enabled:
            self._trace_in(b"HMSG", subject, reply, queues, hdb, szb, msg)
        self._inbound(subject, reply, queues, szb, hdr, hdb, msg)

    def _inbound(
        self, subject: bytes, reply: bytes | None, queues: list[bytes] | None, szb: bytes, hdr: int, hdb: bytes, msg: Any
    ) -> None:
        acc = self.account
        if acc is None:
            return
        perms = self.perms
        if perms is not None:
            if not perms.inbound_ok(subject):
                self._perm_violation("Publish", subject)
                if self.closed:
                    raise _Stop()
                return
        elif self.is_spoke and subject.startswith(self.js_deny):
            return  # a leaf does not take its hub's JetStream API traffic
        from .leafdelivery import deliver_leaf_msg

        deliver_leaf_msg(self, acc, subject, reply, queues, szb, hdr, hdb, msg)

    def _perm_violation(self, action: str, subject: bytes) -> None:
        """nats-server leafPermViolation: a hub tells the leaf, logs and closes (a leaf that
        dialled a hub with `hub: true` waits 30 s before dialling again); a spoke only drops
        what it was not allowed (the hub told it its permissions)."""
        if self.is_spoke:
            return
        if self.did_solicit:
            self.leafs.delay_reconnect(self, const_delay=30.0)
        subj = _go_q(subject.decode(errors="replace"))
        self.send_err(f'Permissions Violation for {action} to "{subj}"')
        self.error(f'{action} Violation on "{subj}" - Check other side configuration')
        self.close_connection("Protocol Violation")

    def _trace_in(
        self, op: bytes, subject: bytes, reply: bytes | None, queues: list[bytes] | None,
        hdb: bytes | None, szb: bytes, msg: Any,
    ) -> None:
        self.trace(f"<<- [{wire.msg_trace([op, subject], reply, queues, hdb, szb)}]")
        self.trace_payload("<<-", msg)

    def send_msg(
        self,
        account: bytes,
        subject: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        szb: bytes,
        hdr: int,
        hdb: bytes,
        msg: Any,
    ) -> None:
        """One LMSG (or HMSG) to the peer, covering its plain interest and `queues`."""
        if self.closed or not self.registered:
            return
        perms = self.perms
        if perms is not None:
            if not perms.may_send(subject):
                if self.log.debug_enabled:
                    self.debug(f'Not permitted to deliver to "{_go_q(subject.decode(errors="replace"))}"')
                return
            if reply and perms.replies is not None:
                perms.track_reply(reply)
        elif subject.startswith(self.js_deny):
            if self.log.debug_enabled:
                self.debug(f'Not permitted to deliver to "{_go_q(subject.decode(errors="replace"))}"')
            return
        out = self.out
        if not out:
            self.server.dirty.append(self)
        if hdr < 0:
            out.append(leaf_msg_line(b"LMSG ", subject, reply, queues, None, szb))
            out.append(b"")
            out.append(msg)
        elif self.headers:
            out.append(leaf_msg_line(b"HMSG ", subject, reply, queues, hdb, szb))
            out.append(b"")
            out.append(msg)
        else:
            size = str(len(msg) - 2 - hdr).encode()
            out.append(leaf_msg_line(b"LMSG ", subject, reply, queues, None, size))
            out.append(b"")
            out.append(msg[hdr:])

    # -- keep-alive, limits -------------------------------------------------------------

    def max_pending(self) -> int:
        return 1 << 62  # as routes: throttled by the transport, never cut off

    def on_slow_consumer(self) -> None:  # pragma: no cover - max_pending is unbounded
        pass

    # -- closing ----------------------------------------------------------------------

    def on_closed(self, reason: str) -> None:
        self._cancel_timer()
        self.jwt_closed()
        if self.remote_server:
            self.notice(f"Leafnode connection closed: {reason} - Remote: {self.remote_server}")
        else:
            self.notice(f"Leafnode connection closed: {reason}")
        self.leafs.closed(self)


def leaf_msg_line(
    op: bytes, subject: bytes, reply: bytes | None, queues: list[bytes] | None, hdb: bytes | None, szb: bytes
) -> bytes:
    """`LMSG subject [reply | + reply q.. | | q..] size` (HMSG: `hdr size`), CRLF included."""
    parts = [subject]
    if queues:
        if reply:
            parts += [b"+", reply]
        else:
            parts.append(b"|")
        parts.extend(queues)
    elif reply:
        parts.append(reply)
    if hdb is not None:
        parts.append(hdb)
    parts.append(szb)
    return op + b" ".join(parts) + b"\r\n"


def _redact(arg: bytes) -> str:
    """A CONNECT for the trace, without its password (nats-server removeSecretsFromTrace)."""
    import re

    text = arg.decode(errors="replace")
    return re.sub(r'("(?:pass|auth_token|sig)"\s*:\s*")[^"]*(")', r"\1[REDACTED]\2", text)


def _go_dur(seconds: float) -> str:
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


class _Stop(ProtocolError):
    """Raised from a handler that closed the connection itself, to stop parsing."""

    def __init__(self) -> None:
        super().__init__(None, "")
