"""The system account's services and events (nats-server events.go).

Every server with a system account (`$SYS`, or `system_account: NAME`) answers requests
there, as nats-server does, so that `nats server list/info/ping` and monitoring tools work
against a pynats-server alone or in a cluster mixed with nats-server:

- `$SYS.REQ.SERVER.PING` (statsz), `$SYS.REQ.SERVER.PING.<KIND>` and
  `$SYS.REQ.SERVER.<id>.<KIND>` for VARZ, CONNZ, SUBSZ, ROUTEZ, HEALTHZ, STATSZ, IDZ, ACCOUNTZ,
  JSZ, LEAFZ, GATEWAYZ, RAFTZ, IPQUEUESZ, and `$SYS.REQ.SERVER.<id>.KICK|LDM`;
- `$SYS.REQ.ACCOUNT.<acc>.CONNZ|SUBSZ|INFO|STATZ|JSZ|LEAFZ|CONNS` and
  `$SYS.REQ.ACCOUNT.PING.STATZ`;
- `$SYS.REQ.USER.INFO`: who the requester is. Every other account imports it, with
  `$SYS.REQ.SERVER.PING.CONNZ`, `$SYS.REQ.ACCOUNT.PING.CONNZ` and `...PING.STATZ` (scoped
  to the importing account), through ordinary service imports (accounts.py).

Request subscriptions are sent to the routes (RS+ in the system account), so a PING from
any node reaches every server and each one answers. Answers use nats-server's envelope,
`{"server": {...}, "data": {...}}` or `{"server": ..., "error": {"code", "description"}}`,
and request bodies are decoded with Go's rules and error texts (protocol/gojson.py). The data comes
from monitor.Monitoring, the same code as the HTTP endpoints.

Events: `$SYS.ACCOUNT.<acc>.CONNECT|DISCONNECT`, `$SYS.ACCOUNT.<acc>.SERVER.CONNS` (and the
old `$SYS.SERVER.ACCOUNT.<acc>.CONNS`), `$SYS.SERVER.<id>.STATSZ` (every 10 s once warmed up,
from 250 ms doubling, as nats-server), `$SYS.SERVER.<id>.SHUTDOWN` and `LAMEDUCK`. Each is
built only when something listens (the system account's index says so), so a server nobody
watches pays a dictionary lookup per connect.

Requests are handled after the read that carried them (loop.call_soon), like nats-server's
internal receive queue: a handler never runs inside a delivery loop.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import const, ids
from .accounts import STREAM, AccountError
from .delivery import deliver_msg
from .gotime import go_time
from .internal import InternalClient
from .monitor import (
    CLOSED,
    AccountStatzOptions,
    ConnzOptions,
    MonitorError,
    RoutezOptions,
    SubszOptions,
)
from .protocol import gojson, wire
from .sublist import Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .core import ServerCore

# How often STATSZ goes out once warmed up, and the first gap (nats-server: 10 s, 250 ms).
STATSZ_INTERVAL = 10.0
STATSZ_FIRST = 0.25
# Broadcast STATSZ at most this often (nats-server's statszRateLimit).
STATSZ_RATE_LIMIT = 1.0
# A remote server not heard from for this long is forgotten (5 x 30 s, checked every 90 s).
ORPHAN_MAX = 150.0
ORPHAN_CHECK = 90.0

SERVER_KINDS = ("VARZ", "CONNZ", "SUBSZ", "ROUTEZ", "HEALTHZ", "STATSZ", "IDZ", "ACCOUNTZ", "JSZ",
                "LEAFZ", "GATEWAYZ", "RAFTZ", "IPQUEUESZ")  # fmt: skip
ACCOUNT_KINDS = ("SUBSZ", "CONNZ", "LEAFZ", "JSZ", "INFO", "STATZ", "CONNS")

CONNECT_TYPE = "io.nats.server.advisory.v1.client_connect"
DISCONNECT_TYPE = "io.nats.server.advisory.v1.client_disconnect"
ACCOUNT_CONNS_TYPE = "io.nats.server.advisory.v1.account_connections"

# Request body structs, as nats-server names them (errors quote these names).
_F = gojson.FILTER
_CONNZ = ("ConnzOptions", {
    "sort": "server.SortOpt", "auth": "bool", "subscriptions": "bool", "subscriptions_detail": "bool",
    "offset": "int", "limit": "int", "cid": "uint64", "mqtt_client": "string", "state": "server.ConnState",
    "user": "string", "acc": "string", "filter_subject": "string",
})  # fmt: skip
_SUBSZ = ("SubszOptions", {"offset": "int", "limit": "int", "subscriptions": "bool", "account": "string",
                           "test": "string"})
_ROUTEZ = ("RoutezOptions", {"subscriptions": "bool", "subscriptions_detail": "bool"})
_LEAFZ = ("LeafzOptions", {"subscriptions": "bool", "account": "string"})
_GATEWAYZ = ("GatewayzOptions", {"name": "string", "accounts": "bool", "account_name": "string",
                                 "subscriptions": "bool", "subscriptions_detail": "bool"})
_ACCOUNTZ = ("AccountzOptions", {"account": "string"})
_ACCSTATZ = ("AccountStatzOptions", {"accounts": "[]string", "include_unused": "bool"})
_JSZ = ("JSzOptions", {
    "account": "string", "accounts": "bool", "streams": "bool", "consumer": "bool", "direct_consumer": "bool",
    "config": "bool", "leader_only": "bool", "offset": "int", "limit": "int", "raft": "bool",
    "stream_leader_only": "bool",
})  # fmt: skip
_HEALTHZ = ("HealthzOptions", {
    "js-enabled": "bool", "js-enabled-only": "bool", "js-server-only": "bool", "js-meta-only": "bool",
    "account": "string", "stream": "string", "consumer": "string", "details": "bool",
})  # fmt: skip
_RAFTZ = ("RaftzOptions", {"account": "string", "group": "string"})
_IPQ = ("IpqueueszOptions", {"all": "bool", "filter": "string"})

STRUCTS: dict[str, gojson.Struct] = {
    "STATSZ": ("StatszEventOptions", [_F]),
    "VARZ": ("VarzEventOptions", [("VarzOptions", {}), _F]),
    "CONNZ": ("ConnzEventOptions", [_CONNZ, _F]),
    "SUBSZ": ("SubszEventOptions", [_SUBSZ, _F]),
    "ROUTEZ": ("RoutezEventOptions", [_ROUTEZ, _F]),
    "GATEWAYZ": ("GatewayzEventOptions", [_GATEWAYZ, _F]),
    "LEAFZ": ("LeafzEventOptions", [_LEAFZ, _F]),
    "ACCOUNTZ": ("AccountzEventOptions", [_ACCOUNTZ, _F]),
    "JSZ": ("JszEventOptions", [_JSZ, _F]),
    "HEALTHZ": ("HealthzEventOptions", [_HEALTHZ, _F]),
    "RAFTZ": ("RaftzEventOptions", [_F, _RAFTZ]),
    "IPQUEUESZ": ("IpqueueszEventOptions", [_F, _IPQ]),
    "INFO": ("AccInfoEventOptions", [_F]),
    "STATZ": ("AccountStatzEventOptions", [_ACCSTATZ, _F]),
    "KICK": ("EventFilterOptions", [("", _F[1])]),
}


class _Skip(Exception):
    """The request is not for this server (nats-server's errSkipZreq): no answer."""


def _split(hdr: int, msg: bytes) -> tuple[bytes, bytes]:
    """(header block, payload) of a message as delivered (payload + CRLF, header first)."""
    if hdr > 0:
        return msg[:hdr], msg[hdr:-2]
    return b"", msg[:-2]


_header = wire.get_header



class SystemServices:
    """The system account's internal subscriptions, request handlers and events."""

    def __init__(self, server: ServerCore) -> None:
        assert server.system_account is not None
        self.server = server
        self.account: Account = server.system_account
        self.data = server.monitoring
        self.client: InternalClient | None = None
        self.running = False
        self.seq = 0
        # Remote servers heard from (their STATSZ): id -> [last seq, when].
        self.servers: dict[str, list[Any]] = {}
        self._own: set[Subscription] = set()
        # Servers whose LAMEDUCK event we saw (the cluster page shows them so).
        self.lame_duck_servers: set[str] = set()
        # Our own requests to every server (gather): inbox token -> (answers, done, expected).
        self._inbox = ""
        self._gathering: dict[str, tuple[list[dict[str, Any]], asyncio.Event, int]] = {}
        self._queue: list[tuple[Callable[..., None], Any, bytes, bytes | None, bytes, bytes]] = []
        self._drain_scheduled = False
        self._timer: Any = None
        self._statsz_gap = STATSZ_FIRST
        self._last_statsz = 0.0
        self._last_orphan_check = time.monotonic()
        self.setup_imports()

    # -- exports and imports (addSystemAccountExports, registerSystemImports) -------------

    def setup_imports(self) -> None:
        sacc = self.account
        name = sacc.name
        for subject in ("$SYS.REQ.ACCOUNT.*.CONNZ", "$SYS.REQ.ACCOUNT.*.STATZ"):
            if subject not in sacc.service_exports:
                # The importer's name must be the 4th token: an account sees only its own.
                sacc.add_service_export(subject, response_type=STREAM, account_pos=4)
        if "$SYS.REQ.USER.*.INFO" not in sacc.service_exports:
            sacc.add_service_export("$SYS.REQ.USER.*.INFO")
            self._import(sacc, "$SYS.REQ.USER.INFO", f"$SYS.REQ.USER.{name}.INFO", share=True)
        for acc in self.server.accounts.values():
            if acc is not sacc:
                self._account_imports(acc)

    def _account_imports(self, acc: Account) -> None:
        connz = f"$SYS.REQ.ACCOUNT.{acc.name}.CONNZ"
        self._import(acc, "$SYS.REQ.ACCOUNT.PING.CONNZ", connz)
        self._import(acc, "$SYS.REQ.SERVER.PING.CONNZ", connz)
        self._import(acc, "$SYS.REQ.ACCOUNT.PING.STATZ", f"$SYS.REQ.ACCOUNT.{acc.name}.STATZ")
        self._import(acc, "$SYS.REQ.USER.INFO", f"$SYS.REQ.USER.{acc.name}.INFO", share=True)

    def account_added(self, acc: Account) -> None:
        """An account registered after startup, or whose claims changed (JWT accounts,
        operator.py): the system's exports, or this account's imports of them."""
        if acc is self.account:
            self.setup_imports()
        else:
            self._account_imports(acc)

    def _import(self, acc: Account, from_: str, to: str, *, share: bool = False) -> None:
        if from_ in acc.service_imports:
            return  # the configuration already imports this subject
        try:
            acc.add_service_import(self.account, from_, to, share=share)
        except AccountError as e:
            self.server.log.error(f"Error setting up system service import {from_} -> {to} for account: {e}")

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe (after the cluster is up, so routes learn of it) and start STATSZ."""
        srv = self.server
        self.client = InternalClient(srv, self.account, "System")
        self.running = True
        sub = self._sub
        remote = sub("$SYS.SERVER.*.STATSZ", self._remote_statsz)
        self._own.add(remote)
        sub("$SYS.SERVER.*.SHUTDOWN", self._remote_shutdown)
        sub("$SYS.SERVER.*.LAMEDUCK", self._remote_shutdown)
        sub("$SYS.REQ.SERVER.PING", self._statsz_req)
        for kind in SERVER_KINDS:
            h = self._statsz_req if kind == "STATSZ" else self._idz if kind == "IDZ" else self._server_req
            sub(f"$SYS.REQ.SERVER.{srv.id}.{kind}", h)
            sub(f"$SYS.REQ.SERVER.PING.{kind}", h)
        for kind in ACCOUNT_KINDS:
            sub(f"$SYS.REQ.ACCOUNT.*.{kind}", self._conns_req if kind == "CONNS" else self._account_req)
        # Only the requester's own server answers who the requester is: not sent to routes.
        sub("$SYS.REQ.USER.*.INFO", self._user_info, forward=False)
        sub("$SYS.REQ.ACCOUNT.PING.STATZ", self._account_ping_statz)
        sub(f"$SYS.REQ.SERVER.{srv.id}.KICK", self._kick)
        sub(f"$SYS.REQ.SERVER.{srv.id}.LDM", self._ldm)
        self._schedule_statsz()

    def stop(self) -> None:
        """No more events or answers (the server is going away; its subscriptions stay)."""
        self.running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.client = None
        self._queue.clear()

    def _sub(self, subject: str, handler: Callable[..., None], *, forward: bool = True) -> Subscription:
        assert self.client is not None

        def on_msg(sub: Subscription, origin: Any, acc: Account, subj: bytes, reply: bytes | None,
                   hdr: int, msg: Any) -> bool:
            # Copied: the read buffer is reused once this read is done.
            self._queue.append((handler, origin, subj, reply, *_split(hdr, bytes(msg))))
            if not self._drain_scheduled:
                self._drain_scheduled = True
                self.server.loop.call_soon(self._drain)
            return True

        return self.client.subscribe(subject.encode(), on_msg, forward=forward)

    def _drain(self) -> None:
        self._drain_scheduled = False
        queue, self._queue = self._queue, []
        for handler, origin, subject, reply, hdr, body in queue:
            if not self.running:
                break
            try:
                handler(origin, subject.decode(errors="replace"), reply, hdr, body)
            except Exception as e:  # a bad request never takes the server down
                self.server.log.error(f"Error handling system request on {subject.decode(errors='replace')}: {e!r}")
        self.server.flush_dirty()

    # -- sending ------------------------------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        """nats-server's ServerInfo, with the next sequence number."""
        srv = self.server
        self.seq += 1
        si: dict[str, Any] = {"name": srv.name, "host": srv.opts.host, "id": srv.id}
        cluster = srv.cluster_name()
        if cluster:
            si["cluster"] = cluster
        si["ver"] = const.NATS_VERSION
        # nats-server 2.14's feature flags and their defaults (feature_flags.go).
        si["feature_flags"] = {"js_ack_fc_v2": False, "js_raft_delete_range": False}
        si["jetstream"] = False
        si["flags"] = 0
        si["seq"] = self.seq
        si["time"] = go_time(time.time())
        return si

    def interest(self, subject: str) -> bool:
        """Whether anyone but ourselves listens on `subject` in the system account."""
        r = self.account.sublist.match(subject.encode())
        if r.routes or r.qsubs:
            return True
        return any(s not in self._own for s in r.psubs)

    def publish(self, subject: str | bytes, obj: Any, *, hdr: bytes = b"") -> None:
        """Publish `obj` as JSON in the system account (`hdr`: a header block, or none)."""
        if self.client is None:
            return
        subj = subject.encode() if isinstance(subject, str) else subject
        payload = obj if isinstance(obj, bytes) else wire.go_json(obj)
        if hdr:
            deliver_msg(self.client, self.account, subj, b"", len(hdr), hdr + payload + b"\r\n")
        else:
            deliver_msg(self.client, self.account, subj, b"", -1, payload + b"\r\n")

    def _respond(self, reply: bytes, data: Any = None, *, error: tuple[int, str] | None = None,
                 with_data: bool = True, req_hdr: bytes = b"") -> None:
        """A ServerAPIResponse: {"server": ..., "data": ...} or with an "error"."""
        resp: dict[str, Any] = {"server": self.server_info()}
        if with_data:
            resp["data"] = data
        if error is not None:
            resp["error"] = {"code": error[0], "description": error[1]}
        payload = wire.go_json(resp)
        hdr = b""
        if error is None and req_hdr:
            payload, encoding = _compress(_header(req_hdr, "Accept-Encoding"), payload)
            if encoding:
                hdr = b"NATS/1.0\r\nContent-Encoding: " + encoding.encode() + b"\r\n\r\n"
        self.publish(reply, payload, hdr=hdr)

    # -- requests: the z endpoints (zReq) ------------------------------------------------

    def _options(self, kind: str, reply: bytes, body: bytes) -> dict[str, Any] | None:
        """The request's options, or None when it is answered (an error) or filtered out."""
        if not body:
            return {}
        try:
            o = gojson.decode(body, STRUCTS[kind])
        except gojson.GoJSONError as e:
            self._respond(reply, error=(400, str(e)), with_data=False)
            return None
        if self._filtered(o):
            return None
        return o

    def _filtered(self, o: dict[str, Any]) -> bool:
        """True when the request's filter does not select this server (filterRequest)."""
        srv = self.server
        name, host, cluster = o.get("server_name", ""), o.get("host", ""), o.get("cluster", "")
        mine = (srv.name, srv.opts.host, srv.cluster_name())
        if o.get("exact_match"):
            if any(want and want != have for want, have in zip((name, host, cluster), mine, strict=True)):
                return True
        elif any(want and want not in have for want, have in zip((name, host, cluster), mine, strict=True)):
            return True
        if o.get("tags"):
            return True  # pynats-server has no server tags
        return bool(o.get("domain"))  # nor a JetStream domain

    def _z(self, kind: str, reply: bytes | None, hdr: bytes, body: bytes,
           fn: Callable[[dict[str, Any]], Any]) -> None:
        if not reply or not self.running:
            return
        o = self._options(kind, reply, body)
        if o is None:
            return
        try:
            data = fn(o)
        except _Skip:
            return
        except (MonitorError, ValueError) as e:
            self._respond(reply, None, error=(500, str(e)))
            return
        self._respond(reply, data, req_hdr=hdr)

    def _server_req(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        kind = subject.rsplit(".", 1)[1]
        self._z(kind, reply, hdr, body, lambda o: self._server_data(kind, o))

    def _server_data(self, kind: str, o: dict[str, Any]) -> Any:
        d = self.data
        if kind == "VARZ":
            return d.varz()
        if kind == "CONNZ":
            return d.connz(connz_options(o))
        if kind == "SUBSZ":
            return d.subsz(SubszOptions(offset=o.get("offset", 0), limit=o.get("limit", 0),
                                        subscriptions=o.get("subscriptions", False),
                                        account=o.get("account", ""), test=o.get("test", "")))
        if kind == "ROUTEZ":
            return d.routez(RoutezOptions(o.get("subscriptions", False), o.get("subscriptions_detail", False)))
        if kind == "HEALTHZ":
            return d.healthz(o)
        if kind == "ACCOUNTZ":
            return d.accountz(o.get("account", ""))
        if kind == "JSZ":
            return d.jsz(o)
        if kind == "LEAFZ":
            return d.leafz(subs=bool(o.get("subscriptions")), account=str(o.get("account") or ""))
        if kind == "GATEWAYZ":
            return d.gatewayz()
        if kind in ("RAFTZ", "IPQUEUESZ"):
            return {}  # no Raft groups, no internal queues
        raise _Skip()

    def _idz(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        """Static server identity; nats-server answers it bare, without an envelope."""
        if reply and self.running:
            srv = self.server
            self.publish(reply, {"name": srv.name, "host": srv.opts.host, "id": srv.id})

    # -- requests: per account -------------------------------------------------------------

    def _account_req(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        tokens = subject.split(".")
        if len(tokens) != 5:
            return
        acc, kind = tokens[3], tokens[4]
        self._z(kind, reply, hdr, body, lambda o: self._account_data(acc, kind, o))

    def _account_data(self, acc: str, kind: str, o: dict[str, Any]) -> Any:
        d = self.data
        if kind == "CONNZ":
            o["acc"] = acc
            return d.connz(connz_options(o))
        if kind == "SUBSZ":
            return d.subsz(SubszOptions(offset=o.get("offset", 0), limit=o.get("limit", 0), subscriptions=True,
                                        account=acc, test=o.get("test", "")))
        if kind == "LEAFZ":
            return d.leafz(subs=bool(o.get("subscriptions")), account=acc)
        if kind == "JSZ":
            return d.jsz_account(acc, o)
        if kind == "INFO":
            return d.account_info(acc)
        if kind == "STATZ":
            if acc == "PING":
                raise _Skip()  # $SYS.REQ.ACCOUNT.PING.STATZ has its own handler
            stz = d.account_statz(AccountStatzOptions([acc], o.get("include_unused", False)))
            if not stz["account_statz"]:
                raise _Skip()
            return stz
        raise _Skip()

    def _account_ping_statz(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes,
                            body: bytes) -> None:
        def statz(o: dict[str, Any]) -> Any:
            stz = self.data.account_statz(AccountStatzOptions(o.get("accounts"), o.get("include_unused", False)))
            if not stz["account_statz"]:
                raise _Skip()
            return stz

        self._z("STATZ", reply, hdr, body, statz)

    def _conns_req(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        """Another server asks how many connections an account has here (connsRequest)."""
        tokens = subject.split(".")
        if len(tokens) != 5 or not reply:
            return
        name = tokens[3]
        if body:
            try:
                m = json.loads(body)
            except ValueError:
                return
            if not isinstance(m, dict) or m.get("acc", name) != name:
                return
        acc = self.server.accounts.get(name)
        if acc is not None and acc.nclients > 0:
            self.publish(reply, self._account_conns(acc))

    # -- requests: user info, kick, lame duck ------------------------------------------------

    def _user_info(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        """The requester's user, account and permissions (userInfoReq)."""
        if not reply or not self.running:
            return
        ci: dict[str, Any] = {}
        raw = _header(hdr, "Nats-Request-Info") if hdr else ""
        if raw:
            try:
                ci = json.loads(raw)
            except ValueError:
                self._respond(reply, error=(400, ""), with_data=False)
                return
        if not ci and getattr(origin, "kind_name", "") == "Client":
            ci = {"user": origin.user, "acc": origin.account.name}
        acc = ci.get("acc", "")
        data: dict[str, Any] = {"user": ci.get("user", ""), "account": acc}
        if acc and acc in self.server.accounts:
            data["account_name"] = acc
        perms = public_permissions(self.server, origin)
        if perms is not None:
            data["permissions"] = perms
        self._respond(reply, data)

    def _kick(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        def kick(o: dict[str, Any]) -> Any:
            c = self.server.clients.get(cid)
            if c is None:
                raise MonitorError("no such client or leafnode id")
            c.close_connection("Kicked")
            return None

        found = _cid(body)
        if found is not None:
            cid = found
            self._z_nodata(reply, hdr, body, kick)

    def _ldm(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        def ldm(o: dict[str, Any]) -> Any:
            srv = self.server
            c = srv.clients.get(cid)
            if c is None:
                raise MonitorError("no such client id")
            if c.protocol < 1 or not c.first_pong_sent:
                raise MonitorError("client does not support Lame Duck Mode or is not ready to receive the notification")
            c.send_async_info(wire.info(srv.client_info(c, ldm=True)))
            return None

        found = _cid(body)
        if found is not None:
            cid = found
            self._z_nodata(reply, hdr, body, ldm)

    def _z_nodata(self, reply: bytes | None, hdr: bytes, body: bytes, fn: Callable[[dict[str, Any]], Any]) -> None:
        """An action (kick, ldm): nats-server answers `{"server": ...}` alone, or with an error.
        Without a reply subject nothing happens, as there (zReq returns first)."""
        if not self.running or not reply:
            return
        if self._options("KICK", reply, body) is None:
            return
        try:
            fn({})
        except MonitorError as e:
            self._respond(reply, error=(500, str(e)), with_data=False)
            return
        self._respond(reply, with_data=False)

    # -- STATSZ ---------------------------------------------------------------------------

    def _statsz_req(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        if not self.running:
            return
        broadcast = f"$SYS.SERVER.{self.server.id}.STATSZ"
        target = reply or broadcast.encode()
        if not reply:
            self._last_statsz = 0.0
        if body:
            try:
                o = gojson.decode(body, STRUCTS["STATSZ"])
            except gojson.GoJSONError as e:
                self._respond(target, error=(400, str(e)), with_data=False)
                return
            if self._filtered(o):
                return
        self.send_statsz(target)

    def statsz(self) -> dict[str, Any]:
        """nats-server's ServerStats."""
        srv = self.server
        mem, cores, cpu = self.data.usage()
        im, ib, om, ob = srv.totals()
        st: dict[str, Any] = {
            "start": go_time(srv.start_time), "mem": mem, "cores": cores, "cpu": cpu,
            "connections": len(srv.clients), "total_connections": srv.total_connections,
            "active_accounts": sum(1 for a in srv.accounts.values() if a.nclients),
            "subscriptions": self.data.num_subscriptions(),
            "sent": {"msgs": om, "bytes": ob}, "received": {"msgs": im, "bytes": ib},
            "slow_consumers": srv.slow_consumers,
        }  # fmt: skip
        if srv.slow_consumers:
            st["slow_consumer_stats"] = dict(srv.slow_by_kind)
        if srv.cluster is not None and srv.cluster.routes:
            routes = []
            for r in sorted(srv.cluster.routes.values(), key=lambda r: r.rid):
                rs: dict[str, Any] = {"rid": r.rid}
                if r.remote_name:
                    rs["name"] = r.remote_name
                rs["sent"] = {"msgs": r.out_msgs, "bytes": r.out_bytes}
                rs["received"] = {"msgs": r.in_msgs, "bytes": r.in_bytes}
                rs["pending"] = r.transport.get_write_buffer_size() if r.transport is not None else 0
                routes.append(rs)
            st["routes"] = routes
        st["active_servers"] = len(self.servers) + 1
        st["gomaxprocs"] = cores
        return st

    def send_statsz(self, subject: bytes | str) -> None:
        subj = subject.decode() if isinstance(subject, bytes) else subject
        if subj == f"$SYS.SERVER.{self.server.id}.STATSZ":
            now = time.monotonic()
            if now - self._last_statsz < min(STATSZ_RATE_LIMIT, self._statsz_gap):
                return
            self._last_statsz = now
        if not self.interest(subj):
            return
        self.publish(subj, {"server": self.server_info(), "statsz": self.statsz()})

    def _schedule_statsz(self) -> None:
        loop = self.server.loop
        if loop is not None and self.running:
            self._timer = loop.call_later(self._statsz_gap, self._statsz_tick)

    def _statsz_tick(self) -> None:
        self._timer = None
        if not self.running:
            return
        # Quick at first, then every STATSZ_INTERVAL: newcomers hear of us early.
        self._statsz_gap = min(self._statsz_gap * 2, STATSZ_INTERVAL)
        self.send_statsz(f"$SYS.SERVER.{self.server.id}.STATSZ")
        now = time.monotonic()
        if now - self._last_orphan_check >= ORPHAN_CHECK:
            self._last_orphan_check = now
            for sid in [s for s, (_, seen) in self.servers.items() if now - seen > ORPHAN_MAX]:
                self.server.log.debug(f'Detected orphan remote server: "{sid}"')
                del self.servers[sid]
        self.server.flush_dirty()
        self._schedule_statsz()

    def _remote_statsz(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        """Another server's STATSZ: track it (active_servers) and greet newcomers."""
        try:
            si = json.loads(body)["server"]
            sid, seq = str(si["id"]), int(si.get("seq", 0))
        except (ValueError, KeyError, TypeError):
            self.server.log.debug("Received bad server info for remote server update")
            return
        if sid == self.server.id or not self.running:
            return
        known = self.servers.get(sid)
        if known is None:
            self.servers[sid] = [seq, time.monotonic()]
            self.send_statsz(f"$SYS.SERVER.{self.server.id}.STATSZ")
        elif seq <= known[0]:
            self.server.log.error(f'Received out of order remote server update from: "{sid}"')
        else:
            known[0], known[1] = seq, time.monotonic()

    def _remote_shutdown(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        tokens = subject.split(".")
        if len(tokens) >= 4:
            self.servers.pop(tokens[2], None)
            if tokens[3] == "LAMEDUCK":
                self.lame_duck_servers.add(tokens[2])
            else:
                self.lame_duck_servers.discard(tokens[2])

    # -- our own requests to every server (the cluster page) -----------------------------

    async def gather(self, subject: str, *, timeout: float, expect: int = 0) -> list[dict[str, Any]]:
        """Publish a request (`$SYS.REQ.SERVER.PING.VARZ` ...) and collect the answers of
        every server, ours included, until `expect` have come or `timeout` passes."""
        if self.client is None or not self.running:
            return []
        if not self._inbox:
            # One wildcard inbox, sent to the routes like every system subscription: our
            # RS+ reaches a peer before the request does (same connection, in order).
            self._inbox = f"$SYS._INBOX.{ids.nuid()}"
            self._own.add(self._sub(f"{self._inbox}.*", self._gathered))
        token = ids.nuid()
        answers: list[dict[str, Any]] = []
        done = asyncio.Event()
        self._gathering[token] = (answers, done, expect)
        reply = f"{self._inbox}.{token}".encode()
        deliver_msg(self.client, self.account, subject.encode(), reply, -1, b"\r\n")
        self.server.flush_dirty()
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._gathering.pop(token, None)
        return answers

    def _gathered(self, origin: Any, subject: str, reply: bytes | None, hdr: bytes, body: bytes) -> None:
        found = self._gathering.get(subject.rsplit(".", 1)[-1])
        if found is None:
            return
        answers, done, expect = found
        try:
            m = json.loads(body)
        except ValueError:
            return
        if isinstance(m, dict):
            answers.append(m)
            if expect and len(answers) >= expect:
                done.set()

    def shutdown_event(self, *, lame_duck: bool = False) -> None:
        """`$SYS.SERVER.<id>.SHUTDOWN` (or LAMEDUCK): the body is our ServerInfo."""
        if self.client is None:
            return
        subject = f"$SYS.SERVER.{self.server.id}.{'LAMEDUCK' if lame_duck else 'SHUTDOWN'}"
        if self.interest(subject):
            self.publish(subject, self.server_info())
            self.server.flush_dirty()

    # -- connection events ------------------------------------------------------------------

    def client_connected(self, c: Any) -> None:
        if self.client is None:
            return
        acc = c.account
        subject = f"$SYS.ACCOUNT.{acc.name}.CONNECT"
        if self.interest(subject):
            self.publish(subject, {"type": CONNECT_TYPE, "id": ids.nuid(), "timestamp": go_time(time.time()),
                                   "server": self.server_info(), "client": client_info(c)})
        self._conns_update(acc)

    def client_closed(self, c: Any) -> None:
        if self.client is None:
            return
        acc = c.account
        if c.connect_received:
            self._conns_update(acc)  # before the DISCONNECT, in nats-server's order
        subject = f"$SYS.ACCOUNT.{acc.name}.DISCONNECT"
        if self.interest(subject):
            now = c.stop_time or time.time()
            self.publish(subject, {
                "type": DISCONNECT_TYPE, "id": ids.nuid(), "timestamp": go_time(now),
                "server": self.server_info(), "client": client_info(c, stop=now),
                "sent": {"msgs": c.in_msgs, "bytes": c.in_bytes},
                "received": {"msgs": c.out_msgs, "bytes": c.out_bytes},
                "reason": c.close_reason,
            })  # fmt: skip
        self.server.schedule_flush()

    def _conns_update(self, acc: Account) -> None:
        """How many connections the account has here, for the other servers (accConnsUpdate)."""
        if acc is self.server.global_account:
            return
        old, new = f"$SYS.SERVER.ACCOUNT.{acc.name}.CONNS", f"$SYS.ACCOUNT.{acc.name}.SERVER.CONNS"
        if not (self.interest(old) or self.interest(new)):
            return
        m = self._account_conns(acc)
        self.publish(old, m)
        m["server"] = self.server_info()
        self.publish(new, m)

    def _account_conns(self, acc: Account) -> dict[str, Any]:
        m: dict[str, Any] = {"type": ACCOUNT_CONNS_TYPE, "id": ids.nuid(), "timestamp": go_time(time.time()),
                             "server": self.server_info()}
        m.update(self.data.account_stat(acc))
        return m


def connz_options(o: dict[str, Any]) -> ConnzOptions:
    state = o.get("state", 0)
    return ConnzOptions(
        sort=o.get("sort", ""), auth=o.get("auth", False), subscriptions=o.get("subscriptions", False),
        subscriptions_detail=o.get("subscriptions_detail", False), offset=o.get("offset", 0),
        limit=o.get("limit", 0), cid=o.get("cid", 0), state=state if state in (0, CLOSED, 2) else 0,
        user=o.get("user", ""), acc=o.get("acc", ""), filter_subject=o.get("filter_subject", ""),
        mqtt_client=o.get("mqtt_client", ""),
    )  # fmt: skip


def client_info(c: Any, *, stop: float = 0.0) -> dict[str, Any]:
    """nats-server's ClientInfo of a client connection (empty fields left out)."""
    info: dict[str, Any] = {"start": go_time(c.start), "host": c.host, "id": c.cid, "acc": c.account.name,
                            "user": c.ident.raw, "name": c.name, "lang": c.lang, "ver": c.version}
    if stop:
        rtt = c.rtt
        info["rtt"] = int(rtt * 1e6) * 1000 if 1e-6 < rtt < 1e-3 else int(rtt * 1e9)
        info["stop"] = go_time(stop)
    if getattr(c, "server", None) is not None and c.server.operator is not None:
        # Operator mode: the CONNECT's JWT (as sent) and, once accepted, who signed the user.
        info["jwt"] = c.co.get("jwt", "")
        if c.jwt_claims is not None:
            info["issuer_key"] = c.jwt_signing_key or c.account.name
    info["name_tag"] = c.account.name_tag or c.account.name
    if getattr(c, "jwt_claims", None) is not None and c.jwt_claims.nats.get("tags"):
        info["tags"] = list(c.jwt_claims.nats["tags"])
    info["kind"] = "Client"
    info["client_type"] = "nats"
    return {k: v for k, v in info.items() if v}


def public_permissions(server: ServerCore, c: Any) -> dict[str, Any] | None:
    """The requester's permissions as nats-server shows them (publicPermissions)."""
    if getattr(c, "perms", None) is None:
        return None
    perms = None
    for u in server.opts.users:
        if u.user == c.user and (u.account or const.GLOBAL_ACCOUNT) == c.account.name:
            perms = u.permissions
            break
    if perms is None:
        perms = getattr(c.account, "default_permissions", None)
    if perms is None:
        return None

    def side(allow: list[str] | None, deny: list[str] | None) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if allow is not None:
            d["allow"] = [e.split()[0] for e in allow if e.split()]
        if deny is not None:
            d["deny"] = [e.split()[0] for e in deny if e.split()]
        return {k: v for k, v in d.items() if v}

    return {"publish": side(perms.publish_allow, perms.publish_deny),
            "subscribe": side(perms.subscribe_allow, perms.subscribe_deny)}


def _cid(body: bytes) -> int | None:
    """The `cid` of a kick or lame duck request; None (no answer, as nats-server) when unreadable."""
    try:
        m = json.loads(body)
    except ValueError:
        return None
    if not isinstance(m, dict):
        return None
    cid = m.get("cid", 0)
    return cid if isinstance(cid, int) and not isinstance(cid, bool) and cid >= 0 else None


def _compress(accept: str, payload: bytes) -> tuple[bytes, str]:
    """A response compressed as the request's Accept-Encoding asks (getAcceptEncoding)."""
    ae = accept.lower()
    if not ae:
        return payload, ""
    if "snappy" in ae or "s2" in ae:
        return payload, ""  # no snappy codec here: the answer goes uncompressed
    if "gzip" in ae:
        return gzip.compress(payload), "gzip"
    return payload, "identity"

