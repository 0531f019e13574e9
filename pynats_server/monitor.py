"""Monitoring: /varz, /connz, /routez, /subsz, /healthz and friends.

`Monitoring` computes the data; the HTTP listener (`-m PORT`, `Monitor`) and the system
account's requests (sysacc.py: `$SYS.REQ.SERVER.PING.VARZ` ...) both serve it, so the two
always agree. The JSON keeps nats-server's key names, order and types, so tools and harnesses
that poll nats-server read ours the same way.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import const
from .gotime import go_duration, go_float, go_time, uptime
from .protocol.subjects import is_valid_literal_subject, match_literal, subjects_collide

if TYPE_CHECKING:
    from .accounts import Account
    from .client import ClientConnection
    from .core import ServerCore
    from .sublist import Sublist

def _peer_certs(c: Any) -> list[dict[str, str]]:
    """/connz?auth=1 tls_peer_certs: the leaf, and the rest of the chain where this Python's
    ssl can show what the peer sent (3.13+)."""
    from .certs import cert_sha256, spki_sha256, subject_of

    ders = c.peer_chain_der()
    return [{"subject": subject_of(d), "spki_sha256": spki_sha256(d), "cert_sha256": cert_sha256(d)} for d in ders]


def _cert_not_after(path: str) -> str:
    from .certs import first_cert_der, not_after

    der = first_cert_der(path)
    return go_time(not_after(der)) if der else "0001-01-01T00:00:00Z"


def _rss() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0



class MonitorError(ValueError):
    """A request nats-server refuses; the text is nats-server's."""


# -- options: what the HTTP query strings and the system requests' JSON bodies carry --------


@dataclass
class ConnzOptions:
    sort: str = ""
    auth: bool = False  # include the user (and account) of each connection
    subscriptions: bool = False
    subscriptions_detail: bool = False
    offset: int = 0
    limit: int = 0
    cid: int = 0
    state: int = 0  # 0 open, 1 closed, 2 all (nats-server's ConnState)
    user: str = ""
    acc: str = ""
    filter_subject: str = ""
    mqtt_client: str = ""


@dataclass
class SubszOptions:
    offset: int = 0
    limit: int = 0
    subscriptions: bool = False
    account: str = ""
    test: str = ""


@dataclass
class RoutezOptions:
    subscriptions: bool = False
    subscriptions_detail: bool = False


@dataclass
class AccountStatzOptions:
    accounts: list[str] | None = None
    include_unused: bool = False


OPEN, CLOSED, ALL = 0, 1, 2
_STATES = {"": OPEN, "open": OPEN, "closed": CLOSED, "any": ALL, "all": ALL}
DEFAULT_LIST_SIZE = 1024
# Sort keys (nats-server's SortOpt): the raw value and whether it sorts descending.
_SORTS = {
    "": ("cid", False), "cid": ("cid", False), "start": ("cid", False), "subs": ("subs", True),
    "pending": ("pending", True), "msgs_to": ("out_msgs", True), "msgs_from": ("in_msgs", True),
    "bytes_to": ("out_bytes", True), "bytes_from": ("in_bytes", True), "last": ("last", True),
    "idle": ("idle", True), "uptime": ("uptime", False), "stop": ("stop", True),
    "reason": ("reason", False), "rtt": ("rtt", True),
}  # fmt: skip


def _zero() -> dict[str, int]:
    return {"msgs": 0, "bytes": 0}


class ClosedConn:
    """What /connz?state=closed keeps of a closed client (nats-server's closedClient)."""

    __slots__ = ("info", "account", "user", "subs", "sort")

    def __init__(self, info: dict[str, Any], account: str, user: str, subs: list[dict[str, Any]],
                 sort: dict[str, Any]) -> None:
        self.info = info
        self.account = account
        self.user = user
        self.subs = subs
        self.sort = sort


class Monitoring:
    """The monitoring data of one server, computed on demand."""

    def __init__(self, server: ServerCore) -> None:
        self.server = server
        self.req_stats: dict[str, int] = {}  # HTTP requests per path (/varz http_req_stats)
        self._cpu_mark = (time.monotonic(), os.times())
        # Message totals of the clients that have gone, per account (account statz).
        self._closed_acc: dict[str, list[int]] = {}

    # -- /varz ------------------------------------------------------------------------

    def _cpu(self) -> float:
        now, t = time.monotonic(), os.times()
        then, t0 = self._cpu_mark
        self._cpu_mark = (now, t)
        wall = now - then
        if wall <= 0:
            return 0.0
        used = (t.user - t0.user) + (t.system - t0.system)
        return round(100.0 * used / wall, 2)

    def usage(self) -> tuple[int, int, float]:
        """(resident memory, cores, cpu percent since the last call)."""
        return _rss(), os.cpu_count() or 1, go_float(self._cpu())

    def varz(self) -> dict[str, Any]:
        srv = self.server
        opts = srv.opts
        http = srv.monitor
        now = time.time()
        im, ib, om, ob = srv.totals()
        cluster: dict[str, Any] = {}
        if srv.cluster is not None:
            cluster = srv.cluster.varz()
        routes = len(srv.cluster.routes) if srv.cluster is not None else 0
        mem, cores, cpu = self.usage()
        v: dict[str, Any] = {
            "server_id": srv.id,
            "server_name": srv.name,
            "version": const.NATS_VERSION,
            "proto": 1,
            "git_commit": "",
            "go": srv.info_base.get("go", ""),
            "host": opts.host,
            "port": srv.port,
        }
        if srv.auth.required:
            v["auth_required"] = True
        if opts.tls is not None and not opts.allow_non_tls:
            v["tls_required"] = True
        if opts.tls is not None and opts.tls.verify:
            v["tls_verify"] = True
        urls = srv.cluster.client_connect_urls() if srv.cluster is not None else []
        if urls:
            v["connect_urls"] = urls
        v.update({
            "max_connections": opts.max_connections,
            "ping_interval": int(opts.ping_interval * 1e9),
            "ping_max": opts.ping_max,
            "http_host": http.host if http is not None else opts.http_host,
            "http_port": (http.port if http.scheme == "http" else 0) if http is not None else opts.http_port,
            "http_base_path": opts.http_base_path,
            "https_port": opts.https_port,  # as configured (-1 stays -1), as nats-server shows it
            "auth_timeout": go_float(opts.client_auth_timeout()),
            "max_control_line": opts.max_control_line,
            "max_payload": opts.max_payload,
            "max_pending": opts.max_pending,
            "cluster": cluster,
            "gateway": {},
            "leaf": srv.leafnodes.varz() if srv.leafnodes is not None else {},
            "mqtt": {},
            "websocket": self._websocket_varz(),
            "jetstream": srv.jetstream.varz() if srv.jetstream is not None else {},
            "tls_timeout": go_float(opts.tls_timeout),
            "write_deadline": int(opts.write_deadline * 1e9),
            "start": go_time(srv.start_time),
            "now": go_time(now),
            "uptime": uptime(now - srv.start_time),
            "mem": mem,
            "cores": cores,
            "gomaxprocs": cores,
            "cpu": cpu,
            "connections": len(srv.clients),
            "total_connections": srv.total_connections,
            "routes": routes,
            "remotes": routes,
            "leafnodes": len(srv.leafnodes.leafs) if srv.leafnodes is not None else 0,
            "in_msgs": im,
            "out_msgs": om,
            "in_bytes": ib,
            "out_bytes": ob,
            "slow_consumers": srv.slow_consumers,
            "stale_connections": srv.stale_connections,
            "stalled_clients": srv.stalls,
            "subscriptions": self.num_subscriptions(),
            "http_req_stats": dict(self.req_stats),
            "config_load_time": go_time(srv.config_time),
            "config_digest": srv.config_digest,
            "feature_flags": {},
            **_trusted_operators(opts),
            "system_account": srv.system_account.name if srv.system_account is not None else "",
            "slow_consumer_stats": dict(srv.slow_by_kind),
            "stale_connection_stats": dict(srv.stale_by_kind),
        })  # fmt: skip
        if opts.tls is not None and opts.tls.cert_file:
            v["tls_cert_not_after"] = _cert_not_after(opts.tls.cert_file)
        return v

    def _websocket_varz(self) -> dict[str, Any]:
        from .websocket_config import varz

        srv = self.server
        wo = srv.opts.websocket
        v = varz(wo, srv.websocket.port if srv.websocket is not None else wo.port)
        if v and wo.tls is not None and wo.tls.cert_file:
            v["tls_cert_not_after"] = _cert_not_after(wo.tls.cert_file)
        return v

    def num_subscriptions(self) -> int:
        """Every account's subscriptions: clients', routes' and the server's own (internal)."""
        return sum(a.sublist.count for a in self.server.accounts.values())

    # -- /connz -----------------------------------------------------------------------

    def conn_info(self, c: ClientConnection, *, closed: bool = False, auth: bool = False,
                  subs: bool = False, detail: bool = False) -> dict[str, Any]:
        now = c.stop_time if closed and c.stop_time else time.time()
        pending = 0
        if not closed and c.transport is not None:
            pending = c.transport.get_write_buffer_size()
        info: dict[str, Any] = {
            "cid": c.cid,
            "kind": "Client",
            "type": c.client_type,
            "ip": c.host,
            "port": c.port,
            "start": go_time(c.start),
            "last_activity": go_time(c.last_activity),
        }
        if closed:
            info["stop"] = go_time(now)
            info["reason"] = c.close_reason
        info.update(
            {
                "rtt": go_duration(c.rtt),
                "uptime": uptime(now - c.start),
                "idle": uptime(now - c.last_activity),
                "pending_bytes": pending,
                "in_msgs": c.in_msgs,
                "out_msgs": c.out_msgs,
                "in_bytes": c.in_bytes,
                "out_bytes": c.out_bytes,
            }
        )
        if c.stalls:
            info["stalls"] = c.stalls
        info["subscriptions"] = c.closed_subs if closed else len(c.subs)
        for k, v in (("name", c.name), ("lang", c.lang), ("version", c.version)):
            if v:
                info[k] = v
        tls = c.tls_state() if hasattr(c, "tls_state") else None
        if tls is not None:
            info["tls_version"], info["tls_cipher_suite"] = tls
            if auth:
                peers = _peer_certs(c)
                if peers:
                    info["tls_peer_certs"] = peers
            if getattr(c, "tls_first", False):
                info["tls_first"] = True
        if auth:
            _auth_fields(info, c.ident.raw, c.account.name)
        if c.subs:
            if detail:
                # /connz leaves the account out of each detail (nats-server newClientSubDetail).
                info["subscriptions_list_detail"] = [self._sub_detail(s, c.cid) for s in c.subs.values()]
            elif subs:
                info["subscriptions_list"] = [s.subject.decode(errors="replace") for s in c.subs.values()]
        if auth:
            uc = c.jwt_claims  # operator mode: the user's JWT (a bearer token's is not shown)
            if uc is not None:
                if not uc.bearer_token:
                    info["jwt"] = c.co.get("jwt", "")
                info["issuer_key"] = c.jwt_signing_key or c.account.name
            info["name_tag"] = c.account.name_tag or c.account.name
            if uc is not None and uc.nats.get("tags"):
                info["tags"] = list(uc.nats["tags"])
        return info

    def closed_conn(self, c: ClientConnection) -> ClosedConn:
        """Keep what /connz shows of a client that just closed (its subscriptions still listed)."""
        acc = c.account.name
        tot = self._closed_acc.get(acc)
        if tot is None:
            tot = self._closed_acc[acc] = [0, 0, 0, 0]
        tot[0] += c.in_msgs
        tot[1] += c.in_bytes
        tot[2] += c.out_msgs
        tot[3] += c.out_bytes
        subs = [self._sub_detail(s, c.cid) for s in (c.closed_sub_list or c.subs.values())]
        return ClosedConn(self.conn_info(c, closed=True), acc, c.ident.raw, subs, _sort_values(c, closed=True))

    def _sub_detail(self, s: Any, cid: int, account: str = "") -> dict[str, Any]:
        d: dict[str, Any] = {}
        if account:
            d["account"] = account
            d["account_tag"] = account
        d["subject"] = s.subject.decode(errors="replace")
        if s.queue:
            d["qgroup"] = s.queue.decode(errors="replace")
        d["sid"] = s.sid.decode(errors="replace")
        d["msgs"] = s.nm
        if s.max:
            d["max"] = s.max
        d["cid"] = cid
        return d

    def connz(self, o: ConnzOptions | None = None) -> dict[str, Any]:
        """nats-server's Connz: raises MonitorError with its text for options it refuses."""
        srv = self.server
        o = o or ConnzOptions()
        if o.sort not in _SORTS:
            raise MonitorError(f"invalid sorting option: {o.sort}")
        if o.sort == "stop" and o.state != CLOSED:
            raise MonitorError("sort by stop only valid on closed connections")
        if o.sort == "reason" and o.state != CLOSED:
            raise MonitorError("sort by reason only valid on closed connections")
        offset = max(o.offset, 0)
        limit = o.limit if o.limit > 0 else DEFAULT_LIST_SIZE
        if o.cid > 0:
            limit = 1
        filt = ""
        if o.filter_subject and o.filter_subject != ">":
            if not o.acc:
                raise MonitorError("filter by subject only valid with account filtering")
            filt = o.filter_subject
        now = time.time()
        out: dict[str, Any] = {"server_id": srv.id, "now": go_time(now), "num_connections": 0, "total": 0,
                               "offset": offset, "limit": limit, "connections": []}
        if o.acc and o.acc not in srv.accounts:
            # nats-server answers before it fills in its id, with no list at all.
            out["server_id"] = ""
            out["connections"] = None
            return out
        rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
        # nats-server's total counts the connections of the account asked for (or all), open
        # and/or closed: the user, MQTT client, subject and cid filters thin the list only.
        total = 0
        if o.state in (OPEN, ALL):
            for c in srv.clients.values():
                if o.acc and c.account.name != o.acc:
                    continue
                total += 1
                if o.cid and c.cid != o.cid:
                    continue
                if o.mqtt_client:
                    continue  # no MQTT clients here: none has that client id
                if o.user and c.ident.raw != o.user:
                    continue
                if filt and not any(subjects_collide(filt.encode(), s.subject) for s in c.subs.values()):
                    continue
                info = self.conn_info(c, auth=o.auth, subs=o.subscriptions, detail=o.subscriptions_detail)
                rows.append((info, _sort_values(c)))
        open_hit = bool(o.cid and rows)  # the cid asked for is open: no closed one is shown
        if o.state in (CLOSED, ALL):
            for cc in srv.closed_clients:
                if o.acc and cc.account != o.acc:
                    continue
                total += 1
                if o.cid and (open_hit or cc.info["cid"] != o.cid):
                    continue
                if o.user and cc.user != o.user or o.mqtt_client:
                    continue
                info = cc.info
                if cc.subs and (o.subscriptions or o.subscriptions_detail) or o.auth:
                    info = dict(info)
                    if o.auth:
                        _auth_fields(info, cc.user, cc.account)
                    if cc.subs and o.subscriptions_detail:
                        info["subscriptions_list_detail"] = cc.subs
                    elif cc.subs and o.subscriptions:
                        info["subscriptions_list"] = [d["subject"] for d in cc.subs]
                    if o.auth and cc.account != const.GLOBAL_ACCOUNT:
                        info["name_tag"] = cc.account
                sort = dict(cc.sort)
                sort["idle"] = now - sort["last"]
                rows.append((info, sort))
        key, desc = _SORTS[o.sort]
        if key == "uptime":
            rows.sort(key=lambda r: (r[1]["stop"] or now) - r[1]["start"])
        else:
            rows.sort(key=lambda r: r[1][key], reverse=desc)
        page = [info for info, _ in rows[offset : offset + limit]]
        out["num_connections"] = len(page)
        out["total"] = total
        out["connections"] = page
        return out

    # -- /routez ----------------------------------------------------------------------

    def routez(self, o: RoutezOptions | None = None) -> dict[str, Any]:
        srv = self.server
        o = o or RoutezOptions()
        subs = "detail" if o.subscriptions_detail else "1" if o.subscriptions else ""
        routes = srv.cluster.routez(subs) if srv.cluster is not None else []
        return {
            "server_id": srv.id,
            "server_name": srv.name,
            "now": go_time(time.time()),
            "num_routes": len(routes),
            "routes": routes,
        }

    # -- /subsz -----------------------------------------------------------------------

    def subsz(self, o: SubszOptions | None = None) -> dict[str, Any]:
        srv = self.server
        o = o or SubszOptions()
        offset = max(o.offset, 0)
        limit = o.limit if o.limit > 0 else DEFAULT_LIST_SIZE
        if o.test and not is_valid_literal_subject(o.test.encode()):
            raise MonitorError(f"invalid test subject, must be valid publish subject: {o.test}")
        accounts = [a for a in srv.accounts.values() if not o.account or a.name == o.account]
        out: dict[str, Any] = {"server_id": srv.id, "now": go_time(time.time())}
        out.update(self.sublist_stats([a.sublist for a in accounts]))
        out["total"] = 0
        out["offset"] = offset
        out["limit"] = limit
        if o.subscriptions:
            test = o.test.encode()
            local = [
                self._sub_detail(s, getattr(s.client, "cid", 0), a.name)
                for a in accounts
                for s in a.sublist.all()
                if not s.is_route and (not test or match_literal(test, s.subject))
            ]
            out["total"] = len(local)
            page = local[offset : offset + limit]
            if page:
                out["subscriptions_list"] = page
        return out

    def sublist_stats(self, sls: list[Sublist]) -> dict[str, Any]:
        """nats-server's SublistStats, summed over `sls`."""
        im = self.server.totals()[0]
        misses = sum(sl.misses for sl in sls)
        matches = max(im, misses)
        fanouts = [len(r.psubs) + len(r.qsubs) for sl in sls for r in sl.cache.values()]
        return {
            "num_subscriptions": sum(sl.count for sl in sls),
            "num_cache": sum(len(sl.cache) for sl in sls),
            "num_inserts": sum(sl.inserts for sl in sls),
            "num_removes": sum(sl.removes for sl in sls),
            "num_matches": matches,
            "cache_hit_rate": go_float((matches - misses) / matches if matches else 0.0),
            "max_fanout": max(fanouts, default=0),
            "avg_fanout": go_float(sum(fanouts) / len(fanouts) if fanouts else 0.0),
        }

    # -- /healthz, /gatewayz, /leafz, /jsz ----------------------------------------------

    def healthz(self, o: dict[str, Any] | None = None) -> dict[str, Any]:
        """nats-server's healthz, with `status_code` (the system request shows it, HTTP sends
        it as the status). `o` holds HealthzOptions by their JSON names (js-enabled-only,
        js-server-only, details, account, stream, consumer ...)."""
        o = o or {}
        details = bool(o.get("details"))
        errors: list[dict[str, Any]] = []

        def fail(code: int, kind: str, text: str, status: str = "error", **where: str) -> dict[str, Any]:
            if details:
                errors.append({"type": kind, **{k: v for k, v in where.items() if v}, "error": text})
                return {"status": "error", "status_code": code, "errors": errors}
            return {"status": status, "status_code": code, "error": text}

        if not o.get("account") and o.get("stream"):
            return fail(400, "BAD_REQUEST", '"account" must not be empty when checking stream health')
        if not o.get("stream") and o.get("consumer"):
            return fail(400, "BAD_REQUEST", '"stream" must not be empty when checking consumer health')
        if not self.server.running:
            return fail(500, "CONNECTION", "server is not running")
        ok: dict[str, Any] = {"status": "ok", "status_code": 200}
        if o.get("js-server-only") or self.server.opts.jetstream is None:
            return ok
        js = self.server.jetstream
        if js is None:
            return fail(503, "JETSTREAM", "JetStream not enabled", "unavailable")
        if o.get("js-enabled-only") or o.get("js-enabled"):
            return ok
        check = getattr(js, "healthz", None)  # the JetStream layer's own checks, when it has them
        if check is not None:
            problem = check(o.get("account", ""), o.get("stream", ""), o.get("consumer", ""))
            if problem is not None:
                code, kind, text, where = problem
                return fail(code, kind, text, "unavailable", **where)
        return ok

    def gatewayz(self) -> dict[str, Any]:
        srv = self.server
        return {"server_id": srv.id, "now": go_time(time.time()), "outbound_gateways": {}, "inbound_gateways": {}}

    def _account_leafs(self, acc: Any) -> int:
        """The leaf node connections bound to `acc`."""
        ln = self.server.leafnodes
        return len(ln.by_account.get(acc.name_b, ())) if ln is not None else 0

    def leafz(self, *, subs: bool = False, account: str = "") -> dict[str, Any]:
        """nats-server's Leafz: one entry per registered leaf node connection."""
        srv = self.server
        leafs = srv.leafnodes.leafz(subs=subs, account=account) if srv.leafnodes is not None else []
        return {"server_id": srv.id, "now": go_time(time.time()), "leafnodes": len(leafs), "leafs": leafs}

    def jsz(self, opts: dict[str, Any] | None = None) -> dict[str, Any]:
        """JSInfo (JSzOptions keys in `opts`); with JetStream off, nats-server's disabled form."""
        from .jetstream.jsz import jsz

        return jsz(self.server.jetstream, self.server.id, opts or {})

    def jsz_account(self, account: str, opts: dict[str, Any] | None = None) -> dict[str, Any]:
        """JszAccount: the AccountDetail of one account."""
        js = self.server.jetstream
        if js is None:
            raise MonitorError("jetstream not enabled")
        if account not in self.server.accounts:
            raise MonitorError(f'account "{account}" not found')
        jsa = js.accounts.get(account)
        if jsa is None:
            raise MonitorError(f'account "{account}" not jetstream enabled')
        from .jetstream.jsz import account_detail

        o = opts or {}
        consumer = bool(o.get("consumer"))
        return account_detail(js, jsa, streams=bool(o.get("streams")) or consumer, consumers=consumer,
                              config=bool(o.get("config")))  # fmt: skip

    # -- /accountz, /accstatz -------------------------------------------------------------

    def accountz(self, account: str = "") -> dict[str, Any]:
        srv = self.server
        out: dict[str, Any] = {"server_id": srv.id, "now": go_time(time.time())}
        if srv.system_account is not None:
            out["system_account"] = srv.system_account.name
        if not account:
            out["accounts"] = list(srv.accounts)
        else:
            out["account_detail"] = self.account_info(account)
        return out

    def account_info(self, name: str) -> dict[str, Any]:
        """nats-server's AccountInfo of a configured account (no JWTs here)."""
        srv = self.server
        acc = srv.accounts.get(name)
        if acc is None:
            raise MonitorError(f"Account {name} does not exist")
        info: dict[str, Any] = {"account_name": name, "update_time": go_time(srv.start_time)}
        if acc is srv.system_account:
            info["is_system"] = True
        js = srv.jetstream
        info.update({"expired": False, "complete": True,
                     "jetstream_enabled": js is not None and name in js.accounts,
                     "leafnode_connections": self._account_leafs(acc), "client_connections": acc.nclients,
                     "subscriptions": acc.sublist.count})  # fmt: skip
        exports: list[dict[str, Any]] = []
        for subject, se in acc.service_exports.items():
            e: dict[str, Any] = {"subject": subject, "type": "service"}
            if se.response_type != "Singleton":
                e["response_type"] = _RESPONSE_TYPES.get(se.response_type, se.response_type)
            else:
                e["response_type"] = "Singleton"
            if se.approved:
                e["approved_accounts"] = sorted(se.approved)
            exports.append(e)
        for subject, ea in acc.stream_exports.items():
            e = {"subject": subject, "type": "stream"}
            if ea.approved:
                e["approved_accounts"] = sorted(ea.approved)
            exports.append(e)
        if exports:
            info["exports"] = exports
        imports: list[dict[str, Any]] = []
        for im in acc.stream_imports:
            imports.append({"subject": im.from_, "account": im.acc.name, "local_subject": im.to,
                            "type": "stream", "invalid": False, "share": False, "tracking": False})
        for si in acc.service_imports.values():
            imports.append({"subject": si.to, "account": si.acc.name, "to": si.from_, "local_subject": si.from_,
                            "type": "service", "invalid": False, "share": si.share, "tracking": False})
        if imports:
            info["imports"] = imports
        info["name_tag"] = name
        info["sublist_stats"] = self.sublist_stats([acc.sublist])
        return info

    def account_stat(self, acc: Account) -> dict[str, Any]:
        """nats-server's AccountStat: connections, subscriptions and message totals."""
        im = ib = om = ob = 0
        for c in self.server.clients.values():
            if c.account is acc:
                im += c.in_msgs
                ib += c.in_bytes
                om += c.out_msgs
                ob += c.out_bytes
        tot = self._closed_acc.get(acc.name)
        if tot is not None:
            im, ib, om, ob = im + tot[0], ib + tot[1], om + tot[2], ob + tot[3]
        return {
            "acc": acc.name,
            "name": acc.name,
            "conns": acc.nclients,
            "leafnodes": self._account_leafs(acc),
            "total_conns": acc.nclients + self._account_leafs(acc),
            "num_subscriptions": acc.sublist.count,
            "sent": {"msgs": om, "bytes": ob, "gateways": _zero(), "routes": _zero(), "leafs": _zero()},
            "received": {"msgs": im, "bytes": ib, "gateways": _zero(), "routes": _zero(), "leafs": _zero()},
            "slow_consumers": 0,
        }

    def account_statz(self, o: AccountStatzOptions | None = None) -> dict[str, Any]:
        srv = self.server
        o = o or AccountStatzOptions()
        if o.accounts:
            accounts = [srv.accounts[n] for n in o.accounts if n in srv.accounts]
        else:
            accounts = list(srv.accounts.values())
        return {
            "server_id": srv.id,
            "now": go_time(time.time()),
            "account_statz": [self.account_stat(a) for a in accounts if o.include_unused or a.nclients],
        }


_RESPONSE_TYPES = {"Stream": "Streamed", "Streamed": "Streamed", "Chunked": "Chunked"}


def _trusted_operators(opts: Any) -> dict[str, Any]:
    """Operator mode: the operators' JWTs and their claims (as the JWTs hold them)."""
    if not opts.operators:
        return {}
    import base64

    claims = [json.loads(base64.urlsafe_b64decode(t.split(".")[1] + "==")) for t in opts.operators]
    return {"trusted_operators_jwt": list(opts.operators), "trusted_operators_claim": claims}


def _auth_fields(info: dict[str, Any], user: str, account: str) -> None:
    """ConnInfo's user fields, which nats-server adds only when asked (`auth`)."""
    if user:
        info["authorized_user"] = user
    if account != const.GLOBAL_ACCOUNT:
        info["account"] = account


def _sort_values(c: ClientConnection, *, closed: bool = False) -> dict[str, Any]:
    now = time.time()
    pending = 0
    if not closed and c.transport is not None:
        pending = c.transport.get_write_buffer_size()
    return {
        "cid": c.cid, "subs": c.closed_subs if closed else len(c.subs), "pending": pending,
        "out_msgs": c.out_msgs, "in_msgs": c.in_msgs, "out_bytes": c.out_bytes, "in_bytes": c.in_bytes,
        "last": c.last_activity, "idle": now - c.last_activity, "start": c.start,
        "stop": c.stop_time if closed else 0.0, "reason": c.close_reason if closed else "", "rtt": c.rtt,
    }  # fmt: skip
