"""A client connection: asyncio glue around the parser, CONNECT and auth, SUB/UNSUB, PUB.

Message delivery itself (matching, queue picks, routes) lives in delivery.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from random import random
from typing import Any

from . import const
from .auth import (
    RESERVED_REPLY_PREFIXES,
    RESERVED_SUBJECT_PREFIXES,
    Authenticator,
    ClientPermissions,
    Identity,
    Verdict,
    bcrypt_matches,
    reserved_reply,
    reserved_subject,
)
from .connection import Connection
from .core import ServerCore
from .delivery import build_plan, deliver_client_msg, deliver_run, no_responders
from .gotime import go_duration
from .jwt_client import JWTClient
from .protocol import wire
from .protocol.connect import ConnectError, parse_connect, redact_connect
from .protocol.parser import CLIENT, Hold, Parser, ProtocolError
from .sublist import InvalidSubject, Subscription


class ClientConnection(JWTClient, Connection[ServerCore]):
    kind_name = "Client"
    log_id_prefix = "cid"
    client_type = "nats"  # /connz type: "websocket" for wsconn.WSClientConnection

    def __init__(self, server: ServerCore) -> None:
        super().__init__(server)
        opts = server.opts
        self.cid = server.next_cid()
        self.parser = Parser(self, CLIENT, opts.max_control_line, opts.max_payload)
        self.subs: dict[bytes, Subscription] = {}
        # CONNECT options; these are nats-server's defaults when CONNECT omits them (or
        # when a client never sends CONNECT, which is allowed without auth).
        self.verbose = True
        self.pedantic = True
        self.echo = True
        self.headers = False
        self.no_responders = False
        self.protocol = const.CLIENT_PROTO_ZERO
        self.name = ""
        self.lang = ""
        self.version = ""
        self.user = ""
        # The CONNECT options so far: each CONNECT is decoded onto them, as nats-server does.
        self.co: dict[str, Any] = {"verbose": True, "pedantic": True, "echo": True}
        self.ident = Identity()  # who the client authenticated as (logs, /connz)
        self.nonce = b""  # the INFO nonce an nkey user signs
        self._auth_pending = False  # a bcrypt check runs; the rest of the input waits
        self.connect_received = False
        self.first_pong_sent = False
        self._auth_handle: asyncio.TimerHandle | None = None
        self._wdl_handle: asyncio.TimerHandle | None = None  # the write deadline (pause_writing)
        self._ncs = ""  # the `"v1.2:python:name" - "$G/user:bob"` part of log lines
        self._sub_ops = 0
        self.closed_subs = 0
        self.closed_sub_list: list[Any] = []  # the subscriptions it had when it closed
        self.account = server.global_account
        self._acc_b = self.account.name_b
        self._cache_get = self.account.sublist.cache.get
        self._match_miss = self.account.sublist._match_miss
        # Shadow subscriptions of a subscription, in the accounts we import streams from.
        self.shadows: dict[Subscription, list[tuple[Any, Subscription]]] = {}
        self._dirty = server.dirty
        self.perms: ClientPermissions | None = None  # the authenticated user's, if any
        # The same object when deliveries to this client need a check (a subscribe deny
        # filter, replies to record): its subscriptions then take the general path.
        self.perm_filter: ClientPermissions | None = None
        self.parser.pedantic = True
        self.msubs = opts.max_subscriptions or -1

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._accepted(transport)
        self.enqueue(wire.info(self.server.client_info(self, first=True)))
        if not self._register():
            return
        self.flush()
        self._start_timers()

    def _accepted(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport subclasses
        peer = transport.get_extra_info("peername") or ("", 0)
        self.host, self.port = str(peer[0]), int(peer[1])
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._set_label(self.cid)
        self.debug("Client connection created")
        if self.authenticator().nonce_required:
            self.nonce = base64.urlsafe_b64encode(os.urandom(11)).rstrip(b"=")

    def _register(self) -> bool:
        """Count the client in; False (and closed) over max_connections or in shutdown."""
        if self.server.add_client(self):
            return True
        self.error(wire.E_MAX_CONNECTIONS)
        self.send_err(wire.E_MAX_CONNECTIONS)
        self.close_connection("Maximum Connections Exceeded")
        return False

    def _start_timers(self) -> None:
        """The auth and ping timers (for TLS clients: once the handshake is done)."""
        srv = self.server
        if self.authenticator().required:
            self.parser.await_connect = True
            self._auth_handle = srv.loop.call_later(srv.opts.client_auth_timeout(), self._auth_timeout)
        self.set_ping_timer(self.ping_interval())

    def data_received(self, data: bytes) -> None:
        if self._auth_pending:
            self.parser.hold_more(data)
            return
        if len(data) >= const.FULL_READ:
            self.yield_reads()
        self._process(self.parser.feed, data)

    def reads_held(self) -> bool:
        if self._auth_pending:
            return True
        cl = self.server.cluster
        return cl is not None and self in cl._throttled

    def _process(self, fn: Any, *args: Any) -> None:
        srv = self.server
        n_msgs = self.parser.in_msgs
        n_subs = self._sub_ops
        srv.reading = True
        try:
            fn(*args)
        except ProtocolError as e:
            self._protocol_error(e)
        finally:
            srv.reading = False
        if self.parser.in_msgs != n_msgs or self._sub_ops != n_subs:
            self._last_in = time.monotonic()
            self.last_activity = time.time()
        srv.flush_dirty()
        # Hold back only clients that publish: one that just PINGs or subscribes must still
        # be read (or it would go stale behind a stalled route).
        if srv.throttled and self.parser.in_msgs != n_msgs and srv.cluster is not None:
            srv.cluster.throttle(self)

    def _protocol_error(self, e: ProtocolError) -> None:
        if e.err is not None:
            if e.err == wire.E_MAX_PAYLOAD:
                self.error(e.detail)
            elif e.err == wire.E_UNKNOWN_OP:
                self.error(f"Client parser ERROR, {e.detail}")
            elif e.err == wire.E_AUTH_VIOLATION:
                self.error(_AUTH_ERROR)  # an op before CONNECT
            elif e.err == wire.E_MAX_CONTROL_LINE:
                self.error(e.err)  # nats-server's sendErrAndErr
            self.send_err(e.err)
        elif e.detail:
            self.error(e.detail)
        self.close_connection(e.reason)

    # -- handler: connection management -----------------------------------------------

    def on_connect(self, arg: bytes) -> None:
        if self.log.trace_enabled:
            self.trace(f"<<- [CONNECT {redact_connect(arg)}]")
        if self._auth_handle is not None:
            self._auth_handle.cancel()
            self._auth_handle = None
        srv = self.server
        self._last_in = time.monotonic()
        # The CONNECT round trip is nats-server's first RTT estimate.
        self.rtt = max(time.time() - self.start, 1e-9)
        self.set_first_ping_timer(const.FIRST_CLIENT_PING_INTERVAL)
        try:
            co = parse_connect(arg, self.co)
        except ConnectError as e:
            raise ProtocolError(None, "Protocol Violation", str(e)) from None
        except ValueError as e:
            raise ProtocolError(None, "Protocol Violation", f"bad CONNECT: {e}") from None
        first = not self.connect_received
        self.connect_received = True
        self.verbose = co["verbose"]
        self.pedantic = co["pedantic"]
        self.echo = co["echo"]
        self.headers = bool(co.get("headers")) and not srv.opts.no_header_support
        self.no_responders = bool(co.get("no_responders"))
        self.name = co.get("name", "")
        self.lang = co.get("lang", "")
        self.version = co.get("version", "")
        self.parser.pedantic = self.pedantic
        self.parser.headers = self.headers
        if not first:
            # A second CONNECT re-authenticates, as 2.14 does.
            self._drop_all_subs()
        verdict = self.authenticate(co)
        if verdict.bcrypt is not None:
            self._check_bcrypt(verdict, first)
        if verdict.fetch:
            self.jwt_fetch(verdict, first)  # raises Hold
        if not self._finish_connect(verdict, first):
            raise _Closed()

    def authenticate(self, co: dict[str, Any]) -> Verdict:
        """Decide CONNECT options `co` under the server's authorization now (at CONNECT,
        and again for every client when a configuration reload changes it)."""
        srv = self.server
        if srv.operator is not None:
            # JWT users (operator.py)
            return srv.operator.safe_check(self, co, conn_type=self.authenticator().conn_type)
        tls = srv.opts.tls
        if tls is not None and tls.map and srv.auth.users:
            # verify_and_map: the client certificate names the user.
            name = srv.tls_mapped_user(self, co)
            return Verdict(False, Identity()) if name is None else srv.auth.check({**co, "user": name}, self.nonce)
        return self.authenticator().check(co, self.nonce)

    def authenticator(self) -> Authenticator:
        """The server's users and secrets as this kind of client sees them (a websocket
        block can have an authorization of its own)."""
        return self.server.auth

    def _check_bcrypt(self, verdict: Verdict, first: bool) -> None:
        """Run the bcrypt check in a thread (tens to hundreds of ms) and hold the rest of
        this client's input until it is done, so that its ops keep their order."""
        assert verdict.bcrypt is not None
        self._auth_pending = True
        if self.transport is not None:
            self.transport.pause_reading()
        fut = self.server.loop.run_in_executor(None, bcrypt_matches, *verdict.bcrypt)
        fut.add_done_callback(lambda f: self._bcrypt_done(f, verdict, first))
        raise Hold()

    def _bcrypt_done(self, fut: asyncio.Future[bool], verdict: Verdict, first: bool) -> None:
        self._auth_pending = False
        if self.closed:
            return
        try:
            ok = bool(fut.result())
        except Exception:
            ok = False
        verdict.ok = ok
        verdict.bcrypt = None
        if not self._finish_connect(verdict, first):
            self.server.flush_dirty()
            return
        if self.transport is not None:
            self.transport.resume_reading()
        self._process(self.parser.resume)

    def _finish_connect(self, v: Verdict, first: bool) -> bool:
        """The rest of CONNECT once authentication is decided; False when it closed."""
        co = self.co
        if v.debug_before:
            self.debug(v.debug_before)
        if v.error:
            self.error(v.error)
        if v.debug and v.jwt is None:
            self.debug(v.debug)
        if not v.ok:
            self._auth_violation(v.ident)
            return False
        acc = self._user_account(v.user)
        if v.jwt is not None and not self.jwt_register(v):
            return False
        if acc is None or co.get("account") or co.get("new_account"):
            self._auth_violation(v.ident)
            return False
        self.ident = v.ident
        self.user = v.ident.user
        self._set_perms(v.user, acc)
        self.bind_account(acc)
        self.parser.await_connect = False
        self._ncs_acc = acc.trace_label()
        if v.jwt is not None:
            self.jwt_connected(v)
        sysacc = self.server.sysacc
        if sysacc is not None:
            sysacc.client_connected(self)  # $SYS.ACCOUNT.<acc>.CONNECT, if anyone listens
        if first:
            self._ncs = _client_ncs(self.version, self.lang, self.name, self._ncs_acc, v.ident.label())
        proto = co.get("protocol", 0)
        if not 0 <= proto <= 1:
            self.send_err(wire.E_BAD_CLIENT_PROTOCOL)
            self.close_connection("Bad Client Protocol Version")
            return False
        self.protocol = proto
        if self.no_responders and not self.headers:
            self.send_err(wire.E_NO_RESPONDERS_NEEDS_HEADERS)
            self.close_connection("No Responders Requires Headers")
            return False
        if self.verbose:
            self.send_proto(wire.OK)
        self._choose_pub_handler()
        return True

    def _auth_violation(self, ident: Identity) -> None:
        if ident.raw:
            self.error(f"{_AUTH_ERROR} - {ident.describe()}")
        else:
            self.error(_AUTH_ERROR)
        self.send_err(wire.E_AUTH_VIOLATION)
        self.close_connection("Authentication Failure")

    def on_op_before_connect(self) -> bool:
        """An op other than CONNECT came first while auth is required: nats-server lets
        it through as the no_auth_user, if that is a users-list user (no password check)."""
        u = self.authenticator().no_auth_entry()
        if u is None:
            return False
        if self._auth_handle is not None:
            self._auth_handle.cancel()
            self._auth_handle = None
        self.connect_received = True
        self.parser.await_connect = False
        acc = self._user_account(u)
        if acc is None:
            return False
        self.ident = Identity(user=u.user)
        self.user = u.user
        self.co["user"] = u.user
        self._set_perms(u, acc)
        self.bind_account(acc)
        if self.server.sysacc is not None:
            self.server.sysacc.client_connected(self)
        self._choose_pub_handler()
        return True

    def _user_account(self, u: Any) -> Any:
        """The account a user belongs to (None: it names one that does not exist)."""
        srv = self.server
        if u is None or not u.account:
            return srv.global_account
        return srv.accounts.get(u.account)

    def _set_perms(self, u: Any, acc: Any) -> None:
        perms = u.permissions if u is not None else None
        if perms is None and u is not None:
            perms = acc.default_permissions
        self.perms = ClientPermissions(perms) if perms is not None else None
        self.perm_filter = self.perms if self.perms is not None and self.perms.filters_delivery else None

    def _choose_pub_handler(self) -> None:
        """The planned path unless the connection needs per-message extras (verbose +OK,
        permissions, echo off, tracing)."""
        fast = not self.verbose and self.perms is None and not self.log.trace_enabled
        if fast and self.echo:
            self.parser.set_pub_handler(self._pub_fast, type(self)._pub_run)
        elif fast:
            # Echo off: runs taken whole skip the client's own subscriptions (_pub_run).
            self.parser.set_pub_handler(self.on_pub, type(self)._pub_run)
        else:
            self.parser.set_pub_handler(self.on_pub)

    def bind_account(self, acc: Any) -> None:
        """The client belongs to `acc` from now on (set when it authenticates)."""
        if acc is self.account:
            return
        self._drop_all_subs()
        self.account.nclients -= 1
        self.account = acc
        acc.nclients += 1
        self._acc_b = acc.name_b
        self._cache_get = acc.sublist.cache.get
        self._match_miss = acc.sublist._match_miss

    def log_prefix(self) -> str:
        if self._ncs:
            return f"{self._label} - {self._ncs}"
        return self._label

    def on_info(self, arg: bytes) -> None:
        # Clients may send INFO; it is ignored, but it must be JSON.
        try:
            json.loads(arg)
        except ValueError:
            raise ProtocolError(None, "Protocol Violation", "bad INFO") from None

    def on_err(self, arg: bytes) -> None:
        self.error(f"Client Error {arg.decode(errors='replace')}")
        self.close_connection("Parse Error")
        raise _Closed()

    def on_ping(self) -> None:
        if self.log.trace_enabled:
            self.trace("<<- [PING]")
        self.send_proto(wire.PONG)
        self._last_in = time.monotonic()
        if self.connect_received and not self.first_pong_sent:
            self.first_pong_sent = True
            if self.protocol >= const.CLIENT_PROTO_INFO:
                fields = self.server.client_info(self)
                fields["max_payload"] = self.parser.max_payload
                fields["connect_info"] = True
                fields["remote_account"] = self.account.name
                fields["acc_is_sys"] = self.account.is_system
                self.send_proto(wire.info(wire.info_fields(fields)))

    def on_pong(self) -> None:
        if self.log.trace_enabled:
            self.trace("<<- [PONG]")
        self.got_pong()

    def send_async_info(self, data: bytes) -> None:
        """An INFO nats-server sends unprompted (cluster changes, lame duck mode)."""
        if self.protocol >= const.CLIENT_PROTO_INFO and self.first_pong_sent and not self.closed:
            self.send_proto(data)

    def _should_skip_ping(self) -> bool:
        # Clients that sent data or a PING within the interval are not pinged.
        delta = time.monotonic() - self._last_in
        if self.rtt and delta < self.ping_interval():
            self.debug(f"Delaying PING due to remote client data or ping {round(delta)}s ago")
            return True
        return False

    def _auth_timeout(self) -> None:
        self._auth_handle = None
        if self.closed:
            return
        self.debug(wire.E_AUTH_TIMEOUT)
        self.send_err(wire.E_AUTH_TIMEOUT)
        self.close_connection("Authentication Timeout")

    # -- handler: interest ------------------------------------------------------------

    def on_sub(self, subject: bytes, queue: bytes | None, sid: bytes) -> None:
        if self.log.trace_enabled:
            q = b" " + queue if queue else b""
            self.trace(f"<<- [SUB {(subject + q + b' ' + sid).decode(errors='replace')}]")
        self._sub_ops += 1
        srv = self.server
        if queue == _SYS_GROUP or (self.perms is not None and not self._sub_allowed(subject, queue)):
            self._sub_violation(subject, queue, sid)
            return
        if self.msubs != -1 and len(self.subs) >= self.msubs:
            self.max_subs_exceeded()
            return
        if sid in self.subs:
            # A duplicate sid is ignored; the first subscription stays.
            if self.verbose:
                self.send_proto(wire.OK)
            return
        sub = Subscription(self, subject, queue, sid)
        acc = self.account
        try:
            acc.sublist.insert(sub)
        except InvalidSubject:
            self.send_err(wire.E_INVALID_SUBJECT)
            return
        self.subs[sid] = sub
        if self.verbose:
            self.send_proto(wire.OK)
        srv.local_interest(acc, sub, 1)
        if acc.stream_imports:
            self._add_shadows(sub)

    def _add_shadows(self, sub: Subscription) -> None:
        """Stream imports: the subscription also listens in the exporting accounts."""
        shadows = self.account.shadow_subscriptions(sub)
        if not shadows:
            return
        srv = self.server
        for exporter, shadow in shadows:
            self.debug(
                f'Creating import subscription on "{shadow.subject.decode(errors="replace")}" '
                f'from account "{exporter.name}"'
            )
            try:
                exporter.sublist.insert(shadow)
            except InvalidSubject:
                continue
            srv.local_interest(exporter, shadow, 1)
            self.shadows.setdefault(sub, []).append((exporter, shadow))

    def _sub_allowed(self, subject: bytes, queue: bytes | None) -> bool:
        perms = self.perms
        assert perms is not None
        ok = perms.can_subscribe(subject, queue)
        if perms.filters_delivery and self.perm_filter is None:
            # The deny filter was just loaded: from now on every delivery to this client
            # is checked. Plans already built hold none of its wildcard subscriptions that
            # overlap a denied subject (those are added after this point).
            self.perm_filter = perms
        return ok

    def _sub_violation(self, subject: bytes, queue: bytes | None, sid: bytes) -> None:
        s = _q(subject)
        sd = sid.decode(errors="replace")
        if queue is not None:
            self.send_err(f"Permissions Violation for Subscription to {s} using queue {_q(queue)}")
            self.error(f"Subscription Violation - Subject {s}, Queue: {_q(queue)}, SID {sd}")
        else:
            self.send_err(f"Permissions Violation for Subscription to {s}")
            self.error(f"Subscription Violation - Subject {s}, SID {sd}")

    def on_unsub(self, sid: bytes, max_msgs: int) -> None:
        if self.log.trace_enabled:
            m = f" {max_msgs}" if max_msgs >= 0 else ""
            self.trace(f"<<- [UNSUB {sid.decode(errors='replace')}{m}]")
        self._sub_ops += 1
        sub = self.subs.get(sid)
        unsub = False
        if sub is not None:
            if max_msgs > 0 and max_msgs > sub.nm:
                sub.max = max_msgs
                self.account.sublist.invalidate(sub.subject)  # plans assume no limit
                for exporter, shadow in self.shadows.get(sub, ()):
                    shadow.max = max_msgs
                    exporter.sublist.invalidate(shadow.subject)
            else:
                sub.max = 0
                unsub = True
        if self.verbose:
            self.send_proto(wire.OK)
        if unsub and sub is not None:
            self.remove_sub(sub)

    def remove_sub(self, sub: Subscription) -> None:
        """Drop one subscription (UNSUB, or its auto-unsubscribe max was reached)."""
        origin = getattr(sub, "origin", None)
        if origin is not None:
            sub = origin  # a shadow reached its max: the subscription goes, shadows and all
        if sub.closed:
            return
        sub.closed = True
        if self.subs.get(sub.sid) is sub:
            del self.subs[sub.sid]
        srv = self.server
        acc = self.account
        acc.sublist.remove(sub)
        srv.local_interest(acc, sub, -1)
        if self.shadows:
            for exporter, shadow in self.shadows.pop(sub, ()):
                shadow.closed = True
                exporter.sublist.remove(shadow)
                srv.local_interest(exporter, shadow, -1)
        if self.log.trace_enabled:
            self.trace(f"<-> [DELSUB {sub.sid.decode(errors='replace')}]")

    def _drop_all_subs(self) -> None:
        for sub in list(self.subs.values()):
            self.remove_sub(sub)

    # -- handler: messages ------------------------------------------------------------

    def _pub_fast(self, subject: bytes, reply: bytes | None, szb: bytes, msg: Any) -> None:
        """PUB on the planned path (delivery.py): the hot path. The parser sends PUBs with
        a reserved reply subject to on_pub instead."""
        r = self._cache_get(subject)
        if r is None:
            # Reserved subjects are refused before they are matched, so never cached by us.
            if subject.startswith(RESERVED_SUBJECT_PREFIXES) and reserved_subject(subject):
                self._pub_violation(subject)
                return
            r = self._match_miss(subject)
        plan = r.plan
        if plan is None:
            plan = r.plan = build_plan(r, subject, self._acc_b)
        elif plan is False:
            deliver_client_msg(self, subject, reply, szb, -1, b"", msg)
            return
        qplan = r.qplan
        if plan or qplan:
            # RouteConnection.on_rmsg has the same loop for routed messages.
            tail = wire.msg_tail(reply, szb)
            dirty = self._dirty
            for d, out, prefix, sub in plan:
                if not out:
                    dirty.append(d)
                out.append(prefix)
                out.append(tail)
                out.append(msg)
                sub.nm += 1
            if qplan:
                for group in qplan:
                    d, out, prefix, sub = group[int(random() * len(group))]
                    if not out:
                        dirty.append(d)
                    out.append(prefix)
                    out.append(tail)
                    out.append(msg)
                    sub.nm += 1
        elif plan is False:
            deliver_client_msg(self, subject, reply, szb, -1, b"", msg)
        elif reply and self.no_responders:
            no_responders(self, subject, reply)

    def _pub_run(self, subject: bytes, reply: bytes | None, szb: bytes, size: int, payloads: list[bytes]) -> bool:
        """A run of PUBs with one control line (the parser's _bulk), on the planned path
        as a whole (delivery.deliver_run); False leaves them to _pub_fast one by one: a
        subject without a plan, a reserved one, what deliver_run declines (stream imports,
        queue groups over 256 members or with a member here when echo is off), nobody
        listening to a request that wants no_responders (or, with echo off, a request that
        wants it and has listeners). With echo off (on_pub takes single PUBs) the client's
        own subscriptions are skipped. (A traced connection never gets
        here: _choose_pub_handler gives it on_pub and no run handler.)"""
        if subject.startswith(RESERVED_SUBJECT_PREFIXES) and reserved_subject(subject):
            return False
        r = self._cache_get(subject)
        if r is None:
            r = self._match_miss(subject)
        plan = r.plan
        if plan is None:
            plan = r.plan = build_plan(r, subject, self._acc_b)
        if plan is False:
            return False
        qplan = r.qplan
        if plan or qplan:
            if self.echo:
                skip = None
            elif reply and self.no_responders:
                return False  # whether anyone else got it decides the status: one by one
            else:
                skip = self
            return deliver_run(self._dirty, plan, qplan, wire.msg_tail(reply, szb),
                               payloads, size, skip)
        # Nobody listens: counted (by the parser) and dropped, unless a request wants
        # its no-responders status.
        return not (reply and self.no_responders)

    def on_pub(self, subject: bytes, reply: bytes | None, szb: bytes, msg: Any) -> None:
        if self.log.trace_enabled:
            self._trace_pub(b"PUB", subject, reply, None, szb, msg)
        if self._pub_refused(subject, reply):
            return
        if self.verbose:
            self.send_proto(wire.OK)
        deliver_client_msg(self, subject, reply, szb, -1, b"", msg)

    def on_hpub(
        self, subject: bytes, reply: bytes | None, hdr: int, hdb: bytes, szb: bytes, msg: Any
    ) -> None:
        if self.log.trace_enabled:
            self._trace_pub(b"HPUB", subject, reply, hdb, szb, msg)
        if self._pub_refused(subject, reply):
            return
        if self.verbose:
            self.send_proto(wire.OK)
        if hdr == 0:
            # An empty header block: delivered as a plain MSG, as nats-server does.
            deliver_client_msg(self, subject, reply, szb, -1, b"", msg)
        else:
            deliver_client_msg(self, subject, reply, szb, hdr, hdb, msg)

    def _trace_pub(self, op: bytes, subject: bytes, reply: bytes | None, hdb: bytes | None, szb: bytes, msg: Any) -> None:
        parts = [op, subject] + ([reply] if reply else []) + ([hdb] if hdb is not None else []) + [szb]
        self.trace(f"<<- [{b' '.join(parts).decode(errors='replace')}]")
        self.trace_payload("<<-", msg)

    def _pub_refused(self, subject: bytes, reply: bytes | None) -> bool:
        """nats-server's checks before a client's message is delivered, in its order."""
        if subject.startswith(b"_GR_.") and len(subject) > 5:
            self._pub_violation(subject)
            return True
        perms = self.perms
        if perms is not None and perms.checks_publish and not perms.can_publish(subject):
            self._pub_violation(subject)
            return True
        if subject.startswith(b"$NRG."):
            self._pub_violation(subject)
            return True
        if reply and reply.startswith(RESERVED_REPLY_PREFIXES) and reserved_reply(reply):
            self._reply_violation(reply)
            return True
        return False

    def _pub_violation(self, subject: bytes) -> None:
        s = _q(subject)
        self.send_err(f"Permissions Violation for Publish to {s}")
        self.error(f"Publish Violation - Subject {s}")

    def _reply_violation(self, reply: bytes) -> None:
        r = _q(reply)
        self.send_err(f"Permissions Violation for Publish with Reply of {r}")
        self.error(f"Publish Violation - Reply {r}")

    # -- closing ----------------------------------------------------------------------

    def on_slow_consumer(self) -> None:
        srv = self.server
        srv.slow_consumers += 1
        srv.slow_by_kind["clients"] += 1
        self.notice(f"Slow Consumer Detected: MaxPending of {srv.opts.max_pending} Exceeded")
        self.close_connection("Slow Consumer (Pending Bytes)", abort=True)

    # A socket that takes no more data: the transport calls pause_writing when what it holds
    # passes its high-water mark (64 KiB) and resume_writing when that drained to the low
    # one. Not drained within write_deadline is nats-server's stalled write (its deadline
    # on a write to the socket): a slow consumer, closed.

    def pause_writing(self) -> None:
        wdl = self.server.opts.write_deadline
        if wdl > 0 and self._wdl_handle is None and not self.closed:
            self._wdl_handle = self.server.loop.call_later(wdl, self._write_deadline_exceeded)

    def resume_writing(self) -> None:
        if self._wdl_handle is not None:
            self._wdl_handle.cancel()
            self._wdl_handle = None

    def _write_deadline_exceeded(self) -> None:
        self._wdl_handle = None
        t = self.transport
        if self.closed or t is None:
            return
        srv = self.server
        if self.parser.await_connect:
            # Before CONNECT (auth pending) nats-server closes without counting it.
            self.close_connection("Slow Consumer (Write Deadline)", abort=True)
            return
        srv.slow_consumers += 1
        srv.slow_by_kind["clients"] += 1
        size = t.get_write_buffer_size()
        chunks = max(1, -(-size // _OUT_CHUNK))
        self.notice(
            f"Slow Consumer Detected: WriteDeadline of {go_duration(srv.opts.write_deadline)} exceeded "
            f"with {chunks} chunks of {size} total bytes."
        )
        self.close_connection("Slow Consumer (Write Deadline)", abort=True)

    def on_closed(self, reason: str) -> None:
        if self._auth_handle is not None:
            self._auth_handle.cancel()
            self._auth_handle = None
        self.resume_writing()  # the write deadline timer
        self.jwt_closed()
        self.debug(f"Client connection closed: {reason}")
        self.closed_subs = len(self.subs)  # /connz?state=closed shows what it had
        self.closed_sub_list = list(self.subs.values())
        self._drop_all_subs()
        self.server.remove_client(self)


class _Closed(ProtocolError):
    """Raised from a handler after it closed the connection itself, to stop parsing."""

    def __init__(self) -> None:
        super().__init__(None, "")


def _client_ncs(version: str, lang: str, name: str, account: str, auth_label: str) -> str:
    """`"v1.2:python:name" - "$G/user:bob"`: how nats-server 2.14 names a client in logs."""
    ncs = f"v{version}" if version else ""
    if lang:
        ncs = f"{ncs}:{lang}" if version else lang
    if name:
        ncs = f"{ncs}:{name}" if (version or lang) else name
    parts = [_q(ncs.encode())] if ncs else []
    if auth_label:
        parts.append(_q(f"{account}/{auth_label}".encode()))
    return " - ".join(parts)


def _q(b: bytes) -> str:
    """Go's %q of a subject or name (printable text as is; quotes, backslashes and
    control characters escaped)."""
    out = []
    for ch in b.decode(errors="replace"):
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_OUT_CHUNK = 64 * 1024  # how nats-server's outbound buffers are sized, for its chunk count
_AUTH_ERROR = "authentication error"  # nats-server's ErrAuthentication
_SYS_GROUP = b"_sys_"  # a queue name reserved for the system
