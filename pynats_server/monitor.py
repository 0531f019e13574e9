"""HTTP monitoring (`-m PORT`): /varz, /connz, /routez, /subsz, /healthz and friends.

The JSON keeps nats-server's key names, order and types, so
tools and harnesses that poll nats-server read ours the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from . import const, netutil

if TYPE_CHECKING:
    from .client import ClientConnection
    from .server import Server

_MAX_REQUEST = 16 * 1024


def go_time(t: float) -> str:
    """RFC 3339 with nanoseconds, UTC, trailing zeros trimmed (Go's time.RFC3339Nano)."""
    d = dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)
    frac = f"{d.microsecond:06d}".rstrip("0")
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _frac(n: int, unit: int) -> str:
    whole, rem = divmod(n, unit)
    if not rem:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rem:0{digits}d}".rstrip("0")


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String(): 0s, 387µs, 1.5ms, 2.5s, 1m30s, 1h2m3s."""
    ns = int(round(seconds * 1e9))
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_frac(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_frac(ns, 1_000_000)}ms"
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    out = sign
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    return out + _frac(rem, 1_000_000_000) + "s"


def uptime(seconds: float) -> str:
    """nats-server's myUptime: 5s, 1m5s, 1h1m5s, 2d1h1m5s, 1y2d1h1m5s."""
    s = int(seconds)
    mins, hrs = s // 60, s // 3600
    days = hrs // 24
    yrs = days // 365
    if yrs:
        return f"{yrs}y{days % 365}d{hrs % 24}h{mins % 60}m{s % 60}s"
    if days:
        return f"{days}d{hrs % 24}h{mins % 60}m{s % 60}s"
    if hrs:
        return f"{hrs}h{mins % 60}m{s % 60}s"
    if mins:
        return f"{mins}m{s % 60}s"
    return f"{s}s"


def go_float(v: float) -> float | int:
    """A float64 as Go's encoding/json writes it: whole numbers without `.0` (2, not 2.0)."""
    return int(v) if float(v).is_integer() else v


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


class _HTTP(asyncio.Protocol):
    """One HTTP/1.1 connection: GET requests, answered in order."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No isinstance check: uvloop's transports do not subclass asyncio.Transport.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_REQUEST and self.transport is not None:
                    self.transport.close()
                return
            head = self.buf[:end].decode("latin-1")
            self.buf = self.buf[end + 4 :]
            lines = head.split("\r\n")
            parts = lines[0].split()
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            if len(parts) < 2 or self.transport is None:
                if self.transport is not None:
                    self.transport.close()
                return
            method, target = parts[0], parts[1]
            status, ctype, body = self.monitor.handle(method, target)
            keep = headers.get("connection", "").lower() != "close" and parts[-1] == "HTTP/1.1"
            hdrs = [
                f"HTTP/1.1 {status}",
                f"Content-Type: {ctype}",
                "Access-Control-Allow-Origin: *",
                f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}",
                f"Content-Length: {len(body)}",
            ]
            if not keep:
                hdrs.append("Connection: close")
            self.transport.write(("\r\n".join(hdrs) + "\r\n\r\n").encode() + (body if method != "HEAD" else b""))
            if not keep:
                self.transport.close()
                return


class Monitor:
    def __init__(self, server: Server) -> None:
        self.server = server
        opts = server.opts
        self.host = opts.http_host or opts.host
        self.port = 0
        self._srv: asyncio.AbstractServer | None = None
        self.req_stats: dict[str, int] = {}
        self.scheme = "http"
        self._cpu_mark = (time.monotonic(), os.times())
        # HTTPS: the context for new handshakes; a configuration reload replaces it.
        self.tls_context: Any = None

    @property
    def url(self) -> str:
        h = "127.0.0.1" if netutil.is_unspecified(self.host) else self.host
        return f"{self.scheme}://{netutil.join_host_port(h, self.port)}"

    async def start(self) -> None:
        srv = self.server
        opts = srv.opts
        secure = not opts.http_port and bool(opts.https_port)
        port = opts.https_port if secure else opts.http_port
        port = 0 if port == const.RANDOM_PORT else port
        ctx = None
        if secure:
            from .tlsctx import server_context

            assert opts.tls is not None
            # The client TLS certificate, without asking browsers for one (as nats-server).
            ctx = self.tls_context = server_context(opts.tls, verify=False)
            ctx.sni_callback = self._current_context
        self._srv = await srv.loop.create_server(
            lambda: _HTTP(self), host=self.host or None, port=port, reuse_address=True, ssl=ctx
        )
        self.port = self._srv.sockets[0].getsockname()[1]
        self.scheme = "https" if secure else "http"
        srv.log.notice(f"Starting {self.scheme} monitor on {netutil.join_host_port(self.host, self.port)}")

    def _current_context(self, sslobj: Any, name: str | None, ctx: Any) -> None:
        # Called in every handshake (SNI or not): switch to the latest certificate.
        if self.tls_context is not None and self.tls_context is not ctx:
            sslobj.context = self.tls_context

    async def stop(self) -> None:
        if self._srv is not None:
            self._srv.close()
            try:
                await asyncio.wait_for(self._srv.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):
                pass

    # -- dispatch ---------------------------------------------------------------------

    def handle(self, method: str, target: str) -> tuple[str, str, bytes]:
        u = urlsplit(target)
        path = u.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        routes = {
            "/": self.index,
            "/varz": self.varz,
            "/connz": self.connz,
            "/routez": self.routez,
            "/subsz": self.subsz,
            "/subscriptionsz": self.subsz,
            "/healthz": self.healthz,
            "/gatewayz": self.gatewayz,
            "/leafz": self.leafz,
            "/accountz": self.accountz,
            "/accstatz": self.accstatz,
            "/jsz": self.jsz,
        }
        fn = routes.get(path)
        if fn is None:
            return "404 Not Found", "text/plain; charset=utf-8", b"404 page not found\n"
        self.req_stats[path] = self.req_stats.get(path, 0) + 1
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain; charset=utf-8", b"Method Not Allowed\n"
        try:
            result = fn(q)
        except ValueError as e:
            return "400 Bad Request", "text/plain; charset=utf-8", f"{e}\n".encode()
        if isinstance(result, str):
            return "200 OK", "text/html; charset=utf-8", result.encode()
        status = "200 OK"
        if path == "/healthz" and result.get("status") != "ok":
            status = "503 Service Unavailable"
            return status, "application/json", json.dumps(result, separators=(",", ":")).encode()
        if path == "/healthz":
            return status, "application/json", json.dumps(result, separators=(",", ":")).encode()
        return status, "application/json", json.dumps(result, indent=2, ensure_ascii=False).encode()

    # -- endpoints --------------------------------------------------------------------

    def index(self, q: dict[str, str]) -> str:
        links = "".join(
            f'<a href="{p}">{p[1:]}</a><br/>\n'
            for p in ("/varz", "/connz", "/routez", "/gatewayz", "/leafz", "/subsz", "/accountz", "/healthz")
        )
        return f"<html><body><h1>pynats-server</h1>\n{links}</body></html>\n"

    def _cpu(self) -> float:
        now, t = time.monotonic(), os.times()
        then, t0 = self._cpu_mark
        self._cpu_mark = (now, t)
        wall = now - then
        if wall <= 0:
            return 0.0
        used = (t.user - t0.user) + (t.system - t0.system)
        return round(100.0 * used / wall, 2)

    def varz(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        opts = srv.opts
        now = time.time()
        im, ib, om, ob = srv.totals()
        cluster: dict[str, Any] = {}
        if srv.cluster is not None:
            cluster = srv.cluster.varz()
        routes = len(srv.cluster.routes) if srv.cluster is not None else 0
        v: dict[str, Any] = {
            "server_id": srv.id,
            "server_name": srv.name,
            "version": const.NATS_VERSION,
            "proto": 1,
            "git_commit": "",
            "go": srv._info_base.get("go", ""),
            "host": opts.host,
            "port": srv.port,
            "tls_required": opts.tls is not None and not opts.allow_non_tls,  # omitempty
            "tls_verify": opts.tls is not None and opts.tls.verify,  # omitempty
            "connect_urls": srv.cluster.client_connect_urls() if srv.cluster is not None else [],  # omitempty
            "max_connections": opts.max_connections,
            "ping_interval": int(opts.ping_interval * 1e9),
            "ping_max": opts.ping_max,
            "http_host": self.host,
            "http_port": self.port if self.scheme == "http" else 0,
            "http_base_path": "",
            "https_port": opts.https_port,  # as configured (-1 stays -1), as nats-server shows it
            "auth_timeout": go_float(opts.client_auth_timeout()),
            "max_control_line": opts.max_control_line,
            "max_payload": opts.max_payload,
            "max_pending": opts.max_pending,
            "cluster": cluster,
            "gateway": {},
            "leaf": {},
            "mqtt": {},
            "websocket": {},
            "jetstream": {},
            "tls_timeout": go_float(opts.tls_timeout),
            "write_deadline": int(opts.write_deadline * 1e9),
            "start": go_time(srv.start_time),
            "now": go_time(now),
            "uptime": uptime(now - srv.start_time),
            "mem": _rss(),
            "cores": os.cpu_count() or 1,
            "gomaxprocs": os.cpu_count() or 1,
            "cpu": go_float(self._cpu()),
            "connections": len(srv.clients),
            "total_connections": srv.total_connections,
            "routes": routes,
            "remotes": routes,
            "leafnodes": 0,
            "in_msgs": im,
            "out_msgs": om,
            "in_bytes": ib,
            "out_bytes": ob,
            "slow_consumers": srv.slow_consumers,
            "stale_connections": 0,
            "stalled_clients": 0,
            "subscriptions": sum(a.sublist.count for a in srv.accounts.values()),
            "http_req_stats": dict(self.req_stats),
            "config_load_time": go_time(srv.config_time),
            "config_digest": srv.config_digest,
            "feature_flags": {},
            "system_account": srv.system_account.name if srv.system_account is not None else "",
            "slow_consumer_stats": {"clients": srv.slow_consumers, "routes": 0, "gateways": 0, "leafs": 0},
            "stale_connection_stats": {"clients": 0, "routes": 0, "gateways": 0, "leafs": 0},
        }
        if opts.tls is not None and opts.tls.cert_file:
            v["tls_cert_not_after"] = _cert_not_after(opts.tls.cert_file)
        for k in ("tls_required", "tls_verify", "connect_urls"):
            if not v[k]:
                del v[k]
        return v

    def conn_info(
        self, c: ClientConnection, *, closed: bool = False, subs: str = "", auth: bool = False
    ) -> dict[str, Any]:
        now = c.stop_time if closed and c.stop_time else time.time()
        pending = 0
        if not closed and c.transport is not None:
            pending = c.transport.get_write_buffer_size()
        info: dict[str, Any] = {
            "cid": c.cid,
            "kind": "Client",
            "type": "nats",
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
                "subscriptions": c.closed_subs if closed else len(c.subs),
            }
        )
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
        if c.ident.raw:
            # nats-server's getRawAuthUser: the nkey, the user, or "[REDACTED]" for a token.
            info["authorized_user"] = c.ident.raw
        if subs in ("1", "true"):
            info["subscriptions_list"] = [s.subject.decode(errors="replace") for s in c.subs.values()]
        elif subs == "detail":
            # /connz leaves the account out of each detail (nats-server newClientSubDetail).
            info["subscriptions_list_detail"] = [
                self._sub_detail(s, c.cid) for s in c.subs.values()
            ]
        return info

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

    def connz(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        offset = int(q.get("offset", 0) or 0)
        limit = int(q.get("limit", 1024) or 1024)
        state = q.get("state", "open")
        subs = q.get("subs", "")
        conns: list[dict[str, Any]] = []
        if state in ("open", "all", "any"):
            auth = q.get("auth", "") in ("1", "true")
            conns.extend(self.conn_info(c, subs=subs, auth=auth) for c in srv.clients.values())
        if state in ("closed", "all", "any"):
            conns.extend(srv.closed_clients)
        if "cid" in q:
            cid = int(q["cid"])
            conns = [c for c in conns if c["cid"] == cid]
        if q.get("auth", "") not in ("1", "t", "T", "true", "TRUE", "True"):
            # Who a client authenticated as is shown only with auth=true, as in nats-server.
            conns = [{k: v for k, v in c.items() if k != "authorized_user"} for c in conns]
        sort = q.get("sort", "cid")
        keys = {
            "cid": ("cid", False),
            "start": ("start", False),
            "subs": ("subscriptions", True),
            "pending": ("pending_bytes", True),
            "msgs_to": ("out_msgs", True),
            "msgs_from": ("in_msgs", True),
            "bytes_to": ("out_bytes", True),
            "bytes_from": ("in_bytes", True),
            "last": ("last_activity", True),
            "idle": ("idle", True),
            "uptime": ("start", False),
            "stop": ("stop", True),
            "reason": ("reason", False),
            "rtt": ("rtt", True),
        }
        if sort not in keys:
            raise ValueError(f"Invalid sorting option: {sort}")
        key, rev = keys[sort]
        conns.sort(key=lambda c: (c.get(key) is None, c.get(key, 0)), reverse=rev)
        total = len(conns)
        page = conns[offset : offset + limit]
        return {
            "server_id": srv.id,
            "now": go_time(time.time()),
            "num_connections": len(page),
            "total": total,
            "offset": offset,
            "limit": limit,
            "connections": page,
        }

    def routez(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        routes = srv.cluster.routez(q.get("subs", "")) if srv.cluster is not None else []
        return {
            "server_id": srv.id,
            "server_name": srv.name,
            "now": go_time(time.time()),
            "num_routes": len(routes),
            "routes": routes,
        }

    def subsz(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        accounts = list(srv.accounts.values())
        if q.get("acc"):
            accounts = [a for a in accounts if a.name == q["acc"]]
        sls = [a.sublist for a in accounts]
        im = srv.totals()[0]
        misses = sum(sl.misses for sl in sls)
        matches = max(im, misses)
        local = [(a.name, s) for a in accounts for s in a.sublist.all() if not s.is_route]
        fanouts = [len(r.psubs) + len(r.qsubs) for sl in sls for r in sl.cache.values()]
        out: dict[str, Any] = {
            "server_id": srv.id,
            "now": go_time(time.time()),
            "num_subscriptions": sum(sl.count for sl in sls),
            "num_cache": sum(len(sl.cache) for sl in sls),
            "num_inserts": sum(sl.inserts for sl in sls),
            "num_removes": sum(sl.removes for sl in sls),
            "num_matches": matches,
            "cache_hit_rate": go_float((matches - misses) / matches if matches else 0.0),
            "max_fanout": max(fanouts, default=0),
            "avg_fanout": go_float(sum(fanouts) / len(fanouts) if fanouts else 0.0),
        }
        if q.get("subs") in ("1", "true", "detail"):
            test = q.get("test", "")
            if test:
                from .protocol.subjects import match_literal

                local = [(a, s) for a, s in local if match_literal(test.encode(), s.subject)]
            offset = int(q.get("offset", 0) or 0)
            limit = int(q.get("limit", 1024) or 1024)
            out["total"] = len(local)
            out["offset"] = offset
            out["limit"] = limit
            out["subscriptions_list"] = [
                self._sub_detail(s, getattr(s.client, "cid", 0), a) for a, s in local[offset : offset + limit]
            ]
        else:
            out["total"] = 0
            out["offset"] = 0
            out["limit"] = 0
        return out

    def healthz(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        if not srv.running:
            return {"status": "unavailable", "status_code": 503, "error": "server is not running"}
        return {"status": "ok"}

    def gatewayz(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        return {"server_id": srv.id, "now": go_time(time.time()), "outbound_gateways": {}, "inbound_gateways": {}}

    def leafz(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        return {"server_id": srv.id, "now": go_time(time.time()), "leafnodes": 0, "leafs": []}

    def accountz(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        return {
            "server_id": srv.id,
            "now": go_time(time.time()),
            "system_account": srv.system_account.name if srv.system_account is not None else "",
            "accounts": sorted(srv.accounts),
        }

    def accstatz(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        im, ib, om, ob = srv.totals()
        return {
            "server_id": srv.id,
            "now": go_time(time.time()),
            "account_statz": [
                {
                    "acc": const.GLOBAL_ACCOUNT,
                    "conns": len(srv.clients),
                    "leafnodes": 0,
                    "total_conns": len(srv.clients),
                    "num_subscriptions": srv.global_account.sublist.count,
                    "sent": {"msgs": om, "bytes": ob},
                    "received": {"msgs": im, "bytes": ib},
                    "slow_consumers": srv.slow_consumers,
                }
            ],
        }

    def jsz(self, q: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        return {"server_id": srv.id, "now": go_time(time.time()), "disabled": True}
