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
from .connection import Connection
from .core import ServerCore
from .protocol import wire
from .protocol.parser import LEAF, Parser, ProtocolError, parse_size, split_args
from .protocol.subjects import is_valid_subject
from .sublist import Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .options import LeafNodeOptions, LeafURL, RemoteLeaf


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
    def auth_timeout(self) -> float: ...
    def info(self, c: LeafConnection, *, first: bool = False, connect_info: bool = False) -> dict[str, Any]: ...
    def authorize(self, co: dict[str, Any], c: LeafConnection) -> Account | None: ...
    def send_initial_interest(self, c: LeafConnection) -> None: ...
    def remote_sub_changed(self, c: LeafConnection, acc: Account, sub: Subscription, delta: int) -> None: ...

LDS_PREFIX = b"$LDS."
E_WRONG_PORT = "attempted to connect to wrong port"
E_CLIENT_ON_LEAF_PORT = "attempted to connect to leaf node port"
E_SAME_CLUSTER = "remote leafnode has same cluster name"
CONNECT_PROCESS_TIMEOUT = 2.0  # nats-server connectProcessTimeout


class LeafConnection(Connection[ServerCore]):
    kind_name = "Leafnode"
    log_id_prefix = "lid"
    is_leaf = True
    echo = False  # a message from the leaf never goes back to it
    perm_filter = None
    no_responders = False

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
        # Subjects this connection must not carry (nats-server's leaf permissions from a
        # remote's deny_exports/deny_imports and the peer's CONNECT deny_pub): messages we
        # do not send, and interest we do not send (so messages we do not get).
        self.deny_out: list[bytes] = []
        self.deny_in: list[bytes] = []
        if remote is not None:
            self.deny_out = [x.encode() for x in remote.opts.deny_exports]
            self.deny_in = [x.encode() for x in remote.opts.deny_imports]

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
        srv = self.server
        n = self.parser.in_msgs
        srv.reading = True
        try:
            self.parser.feed(data)
        except ProtocolError as e:
            if e.err is not None:
                if e.err == wire.E_UNKNOWN_OP:
                    self.error(f"Leafnode parser ERROR, {e.detail}")
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
        acc = self.leafs.authorize(co, self)
        if acc is None:
            user = str(co.get("user") or "")
            self.error(f'authentication error - User "{user}"' if user else "authentication error")
            self._fail(wire.E_AUTH_VIOLATION, "Authentication Failure")
        assert acc is not None
        self.account = acc
        self.headers = bool(co.get("headers")) and not self.server.opts.no_header_support
        self.remote_server = str(co.get("name") or "")
        self.remote_id = str(co.get("server_id") or "")
        self.remote_account = str(co.get("remote_account") or "")
        self.remote_cluster = cluster
        self.version = str(co.get("version") or "")
        if co.get("is_hub"):
            self.is_spoke = True
        deny = co.get("deny_pub")
        if isinstance(deny, list):
            # What the leaf may not receive (its deny_imports): never sent to it.
            self.deny_out = [str(x).encode() for x in deny]
        self.leafs.register(self)
        # Our INFO with the bound account (nats-server sendPermsAndAccountInfo), then our interest.
        self.enqueue(wire.info(self.leafs.info(self, connect_info=True)))
        self.leafs.send_initial_interest(self)
        self.set_first_ping_timer(const.FIRST_ROUTE_PING_INTERVAL)

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
        if info.get("remote_account"):
            self.remote_account = str(info["remote_account"])
        if first:
            self._info_on_connect = bool(info.get("info_on_connect"))
            if self._start_tls(bool(info.get("tls_required"))):
                return  # CONNECT once the handshake is done (leaftls.py)
            self._connected_as_leaf()
        if info.get("connect_info"):
            self._finish_connect()

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
            self._finish_connect()

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

    def _finish_connect(self) -> None:
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
        if self.deny_in and denied(self.deny_in, subject):
            self.debug(f'Not permitted to receive "{subject.decode(errors="replace")}" from the leafnode')
            return
        from .leafdelivery import deliver_leaf_msg

        deliver_leaf_msg(self, acc, subject, reply, queues, szb, hdr, hdb, msg)

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
        if self.deny_out and denied(self.deny_out, subject):
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
        if self.remote_server:
            self.notice(f"Leafnode connection closed: {reason} - Remote: {self.remote_server}")
        else:
            self.notice(f"Leafnode connection closed: {reason}")
        self.leafs.closed(self)


def denied(patterns: list[bytes], subject: bytes) -> bool:
    """Whether a literal subject (or every subject a wildcard one covers) is denied."""
    from .auth import _subset_match

    return any(_subset_match(subject, p) for p in patterns)


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
