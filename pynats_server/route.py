"""A route connection: asyncio glue for the route protocol (CONNECT/INFO, RS+/RS-, RMSG/HMSG).

Membership decisions (registering, duplicates, gossip, reconnects) belong to cluster.py;
this module turns bytes into calls on the cluster and keeps the remote interest this
route told us about.

As in nats-server, a connection is a route from its CONNECT on: the interest it sends goes
into the account indexes at once and its messages are delivered, before (or without) an
INFO. Only a connection held as a duplicate (cluster.py) has its interest withdrawn. An op
that is received and not acted on says so at debug level and is counted (Cluster.ignored).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from . import const
from .connection import Connection
from .core import ServerCore
from .delivery import build_plan, deliver_routed_msg, deliver_run
from .options import RouteURL
from .protocol import wire
from .protocol.parser import ROUTER, Parser, ProtocolError, parse_size, split_args
from .protocol.subjects import is_valid_subject
from .sublist import Subscription

if TYPE_CHECKING:
    from .options import ClusterOptions


class RouteMesh(Protocol):
    """What a route uses of the cluster it belongs to (cluster.Cluster)."""

    server: ServerCore
    opts: ClusterOptions
    name: str
    ignored: Counter[str]
    tls_client_context: Any
    tls_server_context: Any

    def track(self, conn: RouteConnection) -> None: ...
    def can_export(self, subject: bytes) -> bool: ...
    def route_info(self, *, ldm: bool = False) -> dict[str, Any]: ...
    def connect_fields(self, url: RouteURL | None) -> dict[str, Any]: ...
    def check_auth(self, co: dict[str, Any], conn: RouteConnection | None = None) -> bool: ...
    def accept_cluster_name(self, theirs: str, their_dynamic: bool, remote_id: str) -> bool: ...
    def process_info(self, conn: RouteConnection, info: dict[str, Any]) -> None: ...
    def route_closed(self, conn: RouteConnection, reason: str) -> None: ...
    def route_paused(self, conn: RouteConnection, paused: bool) -> None: ...


class RouteConnection(Connection[ServerCore]):
    kind_name = "Router"
    log_id_prefix = "rid"

    def __init__(
        self,
        cluster: RouteMesh,
        *,
        url: RouteURL | None = None,
        explicit: bool = False,
    ) -> None:
        super().__init__(cluster.server)
        self.cluster = cluster
        self.rid = cluster.server.next_cid()
        self.did_solicit = url is not None
        self.url = url  # the URL we dialled (solicited routes)
        self.explicit = explicit  # dialled because it is configured (-routes)
        self.parser = Parser(self, ROUTER, self.server.opts.max_control_line)
        self.parser.await_connect = not self.did_solicit
        self.remote_id = ""
        self.remote_name = ""
        self.remote_info: dict[str, Any] = {}
        self.connect_opts: dict[str, Any] | None = None  # the peer's CONNECT
        self.headers = False
        self.registered = False
        self.registered_once = False
        # Whether the peer's interest (rsubs) is in the account indexes: from the CONNECT
        # on, except while the connection is held as a duplicate or is a pinned-account one.
        self.live = True
        self.info_received = False
        self.lame_duck = False
        self.connect_urls: list[str] = []
        self.ws_connect_urls: list[str] = []  # the peer's websocket port (ws_connect_urls)
        self.urls_added = False  # our client-URL refcounts include this route's URLs
        # How this connection ended, for the dialler: "self", "duplicate", "conflict", ...
        self.outcome = ""
        # Interest the peer told us about, by (account, subject, queue).
        self.rsubs: dict[tuple[bytes, bytes, bytes | None], Subscription] = {}
        self.done: asyncio.Future[None] = cluster.server.loop.create_future()
        self._accounts = cluster.server.accounts_b
        self._last_acc_name = b""
        self._last_acc: Any = None
        self._dirty = cluster.server.dirty
        # Leaf nodes hear of the interest routes bring (leafnodes.py), when there are any.
        self._leafs = cluster.server.leafnodes
        self._auth_handle: asyncio.TimerHandle | None = None
        self._retired: Any = None  # the transport of a retired route (see retire())
        self._retire_handle: asyncio.TimerHandle | None = None
        if self.log.trace_enabled:
            self.parser.set_rmsg_handler(self._traced_rmsg)

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._accepted(transport)
        self._start()

    def _accepted(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport subclasses
        peer = transport.get_extra_info("peername") or ("", 0)
        self.host, self.port = str(peer[0]), int(peer[1])
        self._set_label(self.rid)

    def _start(self) -> None:
        """CONNECT (when we dialled), INFO, timers: for TLS routes, after the handshake."""
        cl = self.cluster
        if self.did_solicit:
            self.debug("Route connect msg sent")
            self.enqueue(b"CONNECT " + wire.go_json(cl.connect_fields(self.url)) + b"\r\n")
        elif cl.opts.user:
            self._auth_handle = self.server.loop.call_later(cl.opts.route_auth_timeout(), self._auth_timeout)
        # The accepting side must send INFO at once: 2.14 solicitors wait for it.
        self.enqueue(wire.info(cl.route_info()))
        self.flush()
        self._watch_for_stale()
        self.notice("Route connection created")
        cl.track(self)

    def data_received(self, data: bytes) -> None:
        srv = self.server
        if len(data) >= const.FULL_READ:
            self.yield_reads()
        n = self.parser.in_msgs
        srv.reading = True
        try:
            self.parser.feed(data)
        except ProtocolError as e:
            if e.err is not None:
                if e.err == wire.E_UNKNOWN_OP:
                    self.error(f"Router parser ERROR, {e.detail}")
                elif e.err == wire.E_MAX_CONTROL_LINE:
                    self.error(e.err)
                self.send_err(e.err)
            elif e.detail:
                self.error(e.detail)
            self.close_connection(e.reason or "Protocol Violation")
        finally:
            srv.reading = False
        if self.parser.in_msgs != n:
            self.last_activity = time.time()
        srv.flush_dirty()

    def pause_writing(self) -> None:
        self.cluster.route_paused(self, True)

    def resume_writing(self) -> None:
        self.cluster.route_paused(self, False)

    # -- handshake ----------------------------------------------------------------------

    def on_connect(self, arg: bytes) -> None:
        if self.log.trace_enabled:
            self.trace(f"<<- [CONNECT {arg.decode(errors='replace')}]")
        if self._auth_handle is not None:
            self._auth_handle.cancel()
            self._auth_handle = None
        try:
            co = json.loads(arg)
            if not isinstance(co, dict):
                raise ValueError
        except ValueError:
            raise ProtocolError(None, "Protocol Violation", "bad route CONNECT") from None
        self.parser.await_connect = False
        self.connect_opts = co  # checked again when a reload changes the cluster's authorization
        if co.get("lang"):
            self.error(wire.E_ROUTE_PORT)
            self.send_err(wire.E_ROUTE_PORT)
            self._close("Incorrect Port", "wrong-port")
            return
        if co.get("gateway"):
            text = f'Rejecting connection from gateway "{co["gateway"]}" on the Route port'
            self.error(text)
            self.send_err(text)
            self._close("Wrong Gateway", "wrong-port")
            return
        cl = self.cluster
        if not cl.check_auth(co, self):
            self.error(wire.E_AUTH_VIOLATION)
            self.send_err(wire.E_AUTH_VIOLATION)
            self._close("Authentication Failure", "auth")
            return
        theirs = str(co.get("cluster", ""))
        if not cl.accept_cluster_name(theirs, bool(co.get("cluster_dynamic")), str(co.get("name", ""))):
            text = wire.cluster_name_mismatch(theirs, cl.name)
            self.error(text)
            self.send_err(text)
            self._close("Cluster Name Conflict", "conflict")
            return
        self.remote_id = str(co.get("name", ""))
        self.headers = bool(co.get("headers")) and not self.server.opts.no_header_support

    def on_info(self, arg: bytes) -> None:
        try:
            info = json.loads(arg)
            if not isinstance(info, dict):
                raise ValueError
        except ValueError:
            raise ProtocolError(None, "Protocol Violation", "bad route INFO") from None
        if self.log.trace_enabled:
            self.trace(f"<<- [INFO {arg.decode(errors='replace')}]")
        self.cluster.process_info(self, info)

    def on_err(self, arg: bytes) -> None:
        self.error(f"Route Error {arg.decode(errors='replace')}")
        self._close("Parse Error", "error")

    def on_ping(self) -> None:
        if self.log.trace_enabled:
            self.trace("<<- [PING]")
        self.send_proto(wire.PONG)

    def on_pong(self) -> None:
        if self.log.trace_enabled:
            self.trace("<<- [PONG]")
        self.got_pong()

    def on_ok(self) -> None:
        self.ignored("+OK", "Ignoring +OK on a route")

    def on_account_sub(self, plus: bool, arg: bytes) -> None:
        op = "A+" if plus else "A-"
        text = arg.decode(errors="replace")
        if self.log.trace_enabled:
            self.trace(f"<<- [{op} {text}]")
        # nats-server acts on A+/A- only on gateway connections.
        self.ignored(op, f"Ignoring {op} {text}: account interest is for gateways")

    def ignored(self, what: str, text: str, *, error: bool = False) -> None:
        """Something received and not acted on: one log line and a count."""
        self.cluster.ignored[what] += 1
        if error:
            self.error(text)
        elif self.log.debug_enabled:
            self.debug(text)

    # -- keep-alive before the INFO -------------------------------------------------------

    def _watch_for_stale(self) -> None:
        """Until the peer's INFO: no PINGs, and a close as stale after ping_max + 1 intervals.

        nats-server 2.14 does this (its routes negotiate compression in the INFOs, and it
        pings only after that), so a peer that sends CONNECT and never an INFO is closed;
        2.9 pings it and keeps it while it answers. The first INFO starts the usual PINGs
        (cluster.py)."""
        d = self.ping_interval() * (self.server.opts.ping_max + 1)
        self.clear_ping_timer()
        if d > 0:
            self._ping_handle = self.server.loop.call_later(d, self._stale_before_info)

    def _stale_before_info(self) -> None:
        self._ping_handle = None
        if self.closed:
            return
        self.debug("Stale Client Connection - Closing")
        self.send_err(wire.E_STALE_CONNECTION)
        self.close_connection("Stale Connection")

    def _auth_timeout(self) -> None:
        self._auth_handle = None
        if not self.closed:
            self.send_err(wire.E_AUTH_TIMEOUT)
            self._close("Authentication Timeout", "auth")

    def _close(self, reason: str, outcome: str) -> None:
        self.outcome = self.outcome or outcome
        self.close_connection(reason)
        raise _Stop()

    # -- interest ---------------------------------------------------------------------

    def on_rs_plus(self, arg: bytes, leaf: bool) -> None:
        args = split_args(arg)
        if leaf and args:
            args = args[1:]  # LS+ carries the origin cluster first
        if len(args) == 2:
            account, subject = args
            queue: bytes | None = None
            weight = 1
        elif len(args) == 4:
            account, subject, queue, wb = args
            weight = parse_size(wb)
        else:
            raise ProtocolError(None, "Protocol Violation", f"processRemoteSub Parse Error: {arg!r}")
        if self.log.trace_enabled:
            self.trace(f"<<- [RS+ {arg.decode(errors='replace')}]")
        acc = self._accounts.get(account)
        if acc is None:
            acc = self.server.route_account(account, self)  # operator mode: resolved, or a placeholder
        if acc is None:
            # An account we do not have: logged (at error level) and ignored, as nats-server does.
            self.ignored(
                "RS+ unknown account",
                f'Unknown account "{account.decode(errors="replace")}" for remote subject "{subject.decode(errors="replace")}"',
                error=True,
            )
            return
        if not self.cluster.can_export(subject):
            self.debug(f'Can not export "{subject.decode(errors="replace")}", ignoring remote subscription request')
            return
        key = (account, subject, queue)
        sl = acc.sublist
        old = self.rsubs.get(key)
        if old is not None:
            if queue is not None:
                if self.live:
                    delta = weight - old.qw
                    sl.update_weight(old, weight)
                    if delta and self._leafs is not None:
                        self._leafs.interest(acc, old, delta)
                else:
                    old.qw = weight
            else:
                self.ignored("RS+ duplicate", f"Ignoring duplicate RS+ {arg.decode(errors='replace')}")
            return
        if not is_valid_subject(subject):
            self.error(f"Could not insert subscription: invalid subject {subject!r}")
            self.send_err(wire.E_INVALID_SUBSCRIPTION)
            return
        sub = Subscription(self, subject, queue, is_route=True, weight=weight)
        if self.live:
            sl.insert(sub)
            if self._leafs is not None:
                self._leafs.interest(acc, sub, weight if queue is not None else 1)
        self.rsubs[key] = sub

    def on_rs_minus(self, arg: bytes, leaf: bool) -> None:
        args = split_args(arg)
        if leaf and args:
            args = args[1:]
        if len(args) == 2:
            account, subject = args
            queue: bytes | None = None
        elif len(args) == 3:
            account, subject, queue = args
        else:
            raise ProtocolError(None, "Protocol Violation", f"processRemoteUnsub parse error: {arg!r}")
        if self.log.trace_enabled:
            self.trace(f"<<- [RS- {arg.decode(errors='replace')}]")
        acc = self._accounts.get(account)
        if acc is None:
            self.ignored(
                "RS- unknown account",
                f'Unknown account "{account.decode(errors="replace")}" for subject "{subject.decode(errors="replace")}"',
            )
            return
        sub = self.rsubs.pop((account, subject, queue), None)
        if sub is None:
            self.ignored("RS- unknown", f"Ignoring RS- {arg.decode(errors='replace')}: no such remote interest")
            return
        sub.closed = True
        if self.live:
            acc.sublist.remove(sub)
            if self._leafs is not None:
                self._leafs.interest(acc, sub, -_weight(sub))

    def install_remote_interest(self) -> None:
        """What the peer told us goes (back) into the indexes (a held duplicate was promoted)."""
        if self.live:
            return
        self.live = True
        accounts = self._accounts
        leafs = self._leafs
        for (account, _, _), sub in self.rsubs.items():
            acc = accounts.get(account)
            if acc is not None:
                acc.sublist.insert(sub)
                if leafs is not None:
                    leafs.interest(acc, sub, _weight(sub))

    def withdraw_remote_interest(self) -> None:
        """Out of the indexes, kept in rsubs: a duplicate on hold must not get messages."""
        if not self.live:
            return
        self.live = False
        accounts = self._accounts
        leafs = self._leafs
        for (account, _, _), sub in self.rsubs.items():
            acc = accounts.get(account)
            if acc is not None:
                acc.sublist.remove(sub)
                if leafs is not None:
                    leafs.interest(acc, sub, -_weight(sub))

    def drop_remote_interest(self) -> None:
        accounts = self._accounts
        leafs = self._leafs
        for (account, _, _), sub in self.rsubs.items():
            sub.closed = True
            acc = accounts.get(account)
            if self.live and acc is not None:
                acc.sublist.remove(sub)
                if leafs is not None:
                    leafs.interest(acc, sub, -_weight(sub))
        self.rsubs.clear()
        self.live = False

    # -- messages -----------------------------------------------------------------------

    def on_rmsg(
        self, account: bytes, subject: bytes, reply: bytes | None, queues: list[bytes] | None, szb: bytes, msg: Any
    ) -> None:
        # Most reads carry one account: comparing with the last one is cheaper than hashing.
        if account == self._last_acc_name:
            acc = self._last_acc
        else:
            acc = self._last_acc = self._accounts.get(account)
            self._last_acc_name = account
        if acc is None:
            acc = self._last_acc = self.server.route_account(account, self, fetch=True)
            if acc is None:
                self._dropped(account, subject)
                return
        if queues is None:
            r = acc.cache_get(subject)
            if r is None:
                r = acc.sublist._match_miss(subject)
            plan = r.lplan
            if plan is None:
                plan = r.lplan = build_plan(r, subject, local_only=True)
            if plan is not False:
                # The same loop as ClientConnection._pub_fast, inlined: a call per message costs.
                tail = wire.msg_tail(reply, szb)
                dirty = self._dirty
                for d, out, prefix, sub in plan:
                    if not out:
                        dirty.append(d)
                    out.append(prefix)
                    out.append(tail)
                    out.append(msg)
                    sub.nm += 1
                return
        deliver_routed_msg(self, acc, subject, reply, queues, szb, -1, b"", msg)

    def on_rmsg_run(
        self, account: bytes, subject: bytes, reply: bytes | None, szb: bytes, size: int, payloads: list[bytes]
    ) -> bool:
        """A run of RMSGs with one control line (the parser's _bulk), on the local plan as
        a whole (delivery.deliver_run); False leaves them to on_rmsg one by one."""
        if self.log.trace_enabled:
            return False
        if account == self._last_acc_name:
            acc = self._last_acc
        else:
            acc = self._accounts.get(account)
        if acc is None:
            return False
        r = acc.cache_get(subject)
        if r is None:
            r = acc.sublist._match_miss(subject)
        plan = r.lplan
        if plan is None:
            plan = r.lplan = build_plan(r, subject, local_only=True)
        if plan is False:
            return False
        return deliver_run(self._dirty, plan, (), wire.msg_tail(reply, szb),
                           payloads, size)

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
            self._trace_routed(b"HMSG", account, subject, reply, queues, hdb, szb, msg)
        acc = self._accounts.get(account) or self.server.route_account(account, self, fetch=True)
        if acc is None:
            self._dropped(account, subject)
        else:
            if hdr == 0:
                deliver_routed_msg(self, acc, subject, reply, queues, szb, -1, b"", msg)
            else:
                deliver_routed_msg(self, acc, subject, reply, queues, szb, hdr, hdb, msg)

    def _dropped(self, account: bytes, subject: bytes) -> None:
        self.ignored(
            "RMSG unknown account",
            f'Unknown account "{account.decode(errors="replace")}" for routed message on '
            f'subject: "{subject.decode(errors="replace")}"',
        )

    def _traced_rmsg(
        self, account: bytes, subject: bytes, reply: bytes | None, queues: list[bytes] | None, szb: bytes, msg: Any
    ) -> None:
        """on_rmsg when tracing (the parser is given this one instead, see __init__)."""
        self._trace_routed(b"RMSG", account, subject, reply, queues, None, szb, msg)
        self.on_rmsg(account, subject, reply, queues, szb, msg)

    def _trace_routed(
        self,
        op: bytes,
        account: bytes,
        subject: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        hdb: bytes | None,
        szb: bytes,
        msg: Any,
    ) -> None:
        """`<<- [RMSG $G foo + reply q 2]` and its payload, as nats-server traces them."""
        self.trace(f"<<- [{wire.msg_trace([op, account, subject], reply, queues, hdb, szb)}]")
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
        """One RMSG (or HMSG) to the peer, covering its plain interest and `queues`."""
        if self.closed:
            return
        out = self.out
        if not out:
            self.server.dirty.append(self)
        if hdr < 0:
            out.append(wire.rmsg_line(account, subject, reply, queues, szb))
            out.append(b"")
            out.append(msg)
        elif self.headers:
            out.append(wire.rmsg_line(account, subject, reply, queues, szb, hdb))
            out.append(b"")
            out.append(msg)
        else:
            # A peer without header support gets the message without its headers.
            size = str(len(msg) - 2 - hdr).encode()
            out.append(wire.rmsg_line(account, subject, reply, queues, size))
            out.append(b"")
            out.append(msg[hdr:])

    def max_pending(self) -> int:
        # Routes are throttled, never cut off as slow consumers (nats-server PR 1233).
        return 1 << 62

    def on_slow_consumer(self) -> None:  # pragma: no cover - max_pending is unbounded
        pass

    def ping_interval(self) -> float:
        o = self.server.opts
        d = o.cluster.ping_interval or o.ping_interval
        return min(d, const.ROUTE_MAX_PING_INTERVAL)

    def ping_max(self) -> int:
        o = self.server.opts
        return o.cluster.ping_max or o.ping_max

    # -- closing ----------------------------------------------------------------------

    def retire(self, reason: str) -> None:
        """Close a route that a duplicate replaced without losing what the peer already
        sent on it: send what is queued and our FIN, then keep reading (its messages go to
        local subscribers; the peer stops writing to it once it switches too) until the
        peer's FIN, or RETIRE_GRACE seconds. Closing it at once dropped the messages in
        flight, which a stall or a slow peer makes many."""
        t = self.transport
        if self.closed or t is None or not t.can_write_eof():
            self.close_connection(reason)
            return
        self.close_reason = reason
        self.flush()
        self.clear_ping_timer()
        try:
            t.write_eof()
        except (OSError, RuntimeError):
            self.close_connection(reason)
            return
        # Without a transport, whatever is queued from now on (a PONG) is dropped.
        self._retired = t
        self.transport = None
        self._retire_handle = self.server.loop.call_later(const.ROUTE_RETIRE_GRACE, self._retire_timeout)
        self.debug("Route retired: reading until the peer closes it")

    def _retire_timeout(self) -> None:
        self._retire_handle = None
        self.close_connection(self.close_reason or "Duplicate Route", abort=True)

    def eof_received(self) -> bool | None:
        return None  # close: the peer finished (a retired route ends here)

    def close_connection(self, reason: str, *, abort: bool = False) -> None:
        if self._retired is not None and self.transport is None:
            self.transport, self._retired = self._retired, None  # type: ignore[assignment]
            self.out.clear()
        super().close_connection(reason, abort=abort)

    def on_closed(self, reason: str) -> None:
        if self._retire_handle is not None:
            self._retire_handle.cancel()
            self._retire_handle = None
        if self._auth_handle is not None:
            self._auth_handle.cancel()
            self._auth_handle = None
        if self.remote_name:
            self.notice(f"Router connection closed: {reason} - Remote: {self.remote_name}")
        else:
            self.notice(f"Router connection closed: {reason}")
        self.cluster.route_closed(self, reason)
        if not self.done.done():
            self.done.set_result(None)


def _weight(sub: Subscription) -> int:
    return sub.qw if sub.queue is not None else 1


class _Stop(ProtocolError):
    """Raised from a handler that closed the route itself, to stop parsing."""

    def __init__(self) -> None:
        super().__init__(None, "")
