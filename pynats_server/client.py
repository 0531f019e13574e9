"""A client connection: asyncio glue around the parser, CONNECT and auth, SUB/UNSUB, PUB.

Message delivery itself (matching, queue picks, routes) lives in delivery.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from random import random
from typing import TYPE_CHECKING, Any

from . import const
from .connection import Connection, go_quote
from .delivery import build_plan, deliver_client_msg, no_responders
from .protocol import wire
from .protocol.parser import CLIENT, Parser, ProtocolError
from .sublist import InvalidSubject, Subscription

if TYPE_CHECKING:
    from .server import Server


class ClientConnection(Connection):
    kind_name = "Client"
    log_id_prefix = "cid"

    def __init__(self, server: Server) -> None:
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
        self.connect_received = False
        self.first_pong_sent = False
        self._auth_handle: asyncio.TimerHandle | None = None
        self._ncs = ""  # the "v1.2:python:name" part of log lines
        self._sub_ops = 0
        self.closed_subs = 0
        self.account = server.global_account
        self._acc_b = self.account.name_b
        self._cache_get = self.account.sublist.cache.get
        self._match_miss = self.account.sublist._match_miss
        # Shadow subscriptions of a subscription, in the accounts we import streams from.
        self.shadows: dict[Subscription, list[tuple[Any, Subscription]]] = {}
        self._dirty = server.dirty
        self.perms: Any = None  # auth.ClientPermissions of the authenticated user, if any
        self.parser.pedantic = True

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
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
        srv = self.server
        self.debug("Client connection created")
        self.enqueue(wire.info(srv.client_info(self)))
        if not srv.add_client(self):
            self.error(wire.E_MAX_CONNECTIONS)
            self.send_err(wire.E_MAX_CONNECTIONS)
            self.close_connection("Maximum Connections Exceeded")
            return
        self.flush()
        if srv.opts.auth_required:
            self.parser.await_connect = True
            self._auth_handle = srv.loop.call_later(srv.opts.auth_timeout, self._auth_timeout)
        self.set_ping_timer(self.ping_interval())

    def data_received(self, data: bytes) -> None:
        srv = self.server
        n_msgs = self.parser.in_msgs
        n_subs = self._sub_ops
        srv.reading = True
        try:
            self.parser.feed(data)
        except ProtocolError as e:
            self._protocol_error(e)
        finally:
            srv.reading = False
        if self.parser.in_msgs != n_msgs or self._sub_ops != n_subs:
            self._last_in = time.monotonic()
            self.last_activity = time.time()
        srv.flush_dirty()
        if srv.throttled and srv.cluster is not None:
            srv.cluster.throttle(self)

    def _protocol_error(self, e: ProtocolError) -> None:
        if e.err is not None:
            if e.err == wire.E_MAX_PAYLOAD:
                self.error(e.detail)
            elif e.err == wire.E_UNKNOWN_OP:
                self.error(f"Client parser ERROR, {e.detail}")
            self.send_err(e.err)
        elif e.detail:
            self.error(e.detail)
        self.close_connection(e.reason)

    # -- handler: connection management -----------------------------------------------

    def on_connect(self, arg: bytes) -> None:
        if self.log.trace_enabled:
            self.trace(f"<<- [CONNECT {_redact(arg)}]")
        if self._auth_handle is not None:
            self._auth_handle.cancel()
            self._auth_handle = None
        srv = self.server
        self._last_in = time.monotonic()
        # The CONNECT round trip is nats-server's first RTT estimate.
        self.rtt = max(time.time() - self.start, 1e-9)
        self.set_first_ping_timer(const.FIRST_CLIENT_PING_INTERVAL)
        try:
            co = parse_connect(arg)
        except ValueError as e:
            raise ProtocolError(None, "Protocol Violation", f"bad CONNECT: {e}") from None
        first = not self.connect_received
        self.connect_received = True
        self.verbose = bool(co.get("verbose", True))
        self.pedantic = bool(co.get("pedantic", True))
        self.echo = bool(co.get("echo", True))
        self.headers = bool(co.get("headers", False)) and not srv.opts.no_header_support
        self.no_responders = bool(co.get("no_responders", False))
        proto = co.get("protocol", 0)
        self.name = str(co.get("name") or "")
        self.lang = str(co.get("lang") or "")
        self.version = str(co.get("version") or "")
        self.parser.pedantic = self.pedantic
        self.parser.headers = self.headers
        if not first:
            # A second CONNECT re-authenticates from scratch, as 2.14 does.
            self._drop_all_subs()
        if not srv.check_auth(self, co):
            self.error(f"{wire.E_AUTH_VIOLATION}{_user_suffix(co)}")
            self.send_err(wire.E_AUTH_VIOLATION)
            self.close_connection("Authentication Failure")
            raise _Closed()
        if co.get("account") or co.get("new_account"):
            self.send_err(wire.E_AUTH_VIOLATION)
            self.close_connection("Authentication Failure")
            raise _Closed()
        self.user = str(co.get("user") or "")
        self.parser.await_connect = False
        if srv.sysacc is not None:
            srv.sysacc.client_connected(self)  # $SYS.ACCOUNT.<acc>.CONNECT, if anyone listens
        if first:
            self._ncs = _client_ncs(self.version, self.lang, self.name)
        if not 0 <= proto <= 1:
            self.send_err(wire.E_BAD_CLIENT_PROTOCOL)
            self.close_connection("Bad Client Protocol Version")
            raise _Closed()
        self.protocol = proto
        if self.no_responders and not self.headers:
            self.send_err(wire.E_NO_RESPONDERS_NEEDS_HEADERS)
            self.close_connection("No Responders Requires Headers")
            raise _Closed()
        if self.verbose:
            self.send_proto(wire.OK)
        self._choose_pub_handler()

    def _choose_pub_handler(self) -> None:
        """The planned path unless the connection needs per-message extras (verbose +OK,
        permissions, echo off, tracing)."""
        fast = not self.verbose and self.perms is None and self.echo and not self.log.trace_enabled
        self.parser.set_pub_handler(self._pub_fast if fast else self.on_pub)

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
            return f'{self._label} - "{self._ncs}"'
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
        max_subs = srv.opts.max_subscriptions
        if max_subs > 0 and len(self.subs) >= max_subs:
            self.error(wire.E_MAX_SUBSCRIPTIONS)
            self.send_err(wire.E_MAX_SUBSCRIPTIONS)
            return
        if sid in self.subs:
            # A duplicate sid is ignored; the first subscription stays.
            if self.verbose:
                self.send_proto(wire.OK)
            return
        if self.perms is not None and not self.perms.can_subscribe(subject, queue):
            s = subject.decode(errors="replace")
            text = f'Permissions Violation for Subscription to "{s}"'
            if queue is not None:
                text += f' using queue "{queue.decode(errors="replace")}"'
            self.error(f"Subscription Violation - {_user_label(self.user)}Subject \"{s}\"")
            self.send_err(text)
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
        """PUB on the planned path (delivery.py): the hot path."""
        r = self._cache_get(subject)
        if r is None:
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
            tail = reply + b" " + szb + b"\r\n" if reply else szb + b"\r\n"
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

    def on_pub(self, subject: bytes, reply: bytes | None, szb: bytes, msg: Any) -> None:
        if self.log.trace_enabled:
            self._trace_pub(b"PUB", subject, reply, None, szb, msg)
        if self.perms is not None and not self._pub_allowed(subject):
            return
        if self.verbose:
            self.send_proto(wire.OK)
        deliver_client_msg(self, subject, reply, szb, -1, b"", msg)

    def on_hpub(
        self, subject: bytes, reply: bytes | None, hdr: int, hdb: bytes, szb: bytes, msg: Any
    ) -> None:
        if self.log.trace_enabled:
            self._trace_pub(b"HPUB", subject, reply, hdb, szb, msg)
        if self.perms is not None and not self._pub_allowed(subject):
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
        self.trace(f"<<- MSG_PAYLOAD: [{go_quote(bytes(msg[:-2]))}]")

    def _pub_allowed(self, subject: bytes) -> bool:
        if self.perms.can_publish(subject):
            return True
        s = subject.decode(errors="replace")
        self.error(f"Publish Violation - {_user_label(self.user)}Subject \"{s}\"")
        self.send_err(wire.permissions_violation_pub(subject))
        return False

    # -- closing ----------------------------------------------------------------------

    def on_slow_consumer(self) -> None:
        srv = self.server
        srv.slow_consumers += 1
        self.notice(f"Slow Consumer Detected: MaxPending of {srv.opts.max_pending} Exceeded")
        self.close_connection("Slow Consumer (Pending Bytes)", abort=True)

    def on_closed(self, reason: str) -> None:
        if self._auth_handle is not None:
            self._auth_handle.cancel()
            self._auth_handle = None
        self.debug(f"Client connection closed: {reason}")
        self.closed_subs = len(self.subs)  # /connz?state=closed shows what it had
        self._drop_all_subs()
        self.server.remove_client(self)


_BOOL_FIELDS = ("verbose", "pedantic", "tls_required", "echo", "headers", "no_responders", "new_account")
_STR_FIELDS = ("auth_token", "user", "pass", "nkey", "sig", "jwt", "name", "lang", "version", "account")


def parse_connect(arg: bytes) -> dict[str, Any]:
    """CONNECT JSON with Go's unmarshalling rules: `null` is all defaults, a field of the
    wrong type is an error, a null field keeps its default, unknown fields are ignored."""
    co = json.loads(arg)
    if co is None:
        return {}
    if not isinstance(co, dict):
        raise ValueError("CONNECT is not an object")
    for k in _BOOL_FIELDS:
        v = co.get(k)
        if v is None:
            co.pop(k, None)
        elif type(v) is not bool:
            raise ValueError(f"{k} is not a bool")
    for k in _STR_FIELDS:
        v = co.get(k)
        if v is None:
            co.pop(k, None)
        elif type(v) is not str:
            raise ValueError(f"{k} is not a string")
    v = co.get("protocol")
    if v is None:
        co.pop("protocol", None)
    elif type(v) is not int:
        raise ValueError("protocol is not an integer")
    return co


class _Closed(ProtocolError):
    """Raised from a handler after it closed the connection itself, to stop parsing."""

    def __init__(self) -> None:
        super().__init__(None, "")


def _client_ncs(version: str, lang: str, name: str) -> str:
    ncs = f"v{version}" if version else ""
    if lang:
        ncs = f"{ncs}:{lang}" if version else lang
    if name:
        ncs = f"{ncs}:{name}" if (version or lang) else name
    return ncs


def _user_label(user: str) -> str:
    return f'User "{user}", ' if user else ""


def _user_suffix(co: dict[str, Any]) -> str:
    user = co.get("user")
    return f' - User "{user}"' if user else ""


def _redact(arg: bytes) -> str:
    text = arg.decode(errors="replace")
    try:
        co = json.loads(text)
    except ValueError:
        return text
    if isinstance(co, dict) and any(k in co for k in ("pass", "auth_token", "sig", "nkey")):
        for k in ("pass", "auth_token", "sig", "nkey"):
            if k in co:
                co[k] = "[REDACTED]"
        return json.dumps(co, separators=(",", ":"))
    return text
