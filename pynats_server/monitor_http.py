"""The monitoring port (`-m`, `-ms`): HTTP/1.1 on the server's event loop.

Requests are parsed by h11 (a small, sans-IO HTTP/1.1 library: bytes in, events out, like
our own protocol parser), so this module only routes paths and guards the loop:

- a request head must arrive within HEADER_TIMEOUT and fit in MAX_HEAD bytes, a body is
  read and dropped up to MAX_BODY, an idle keep-alive connection goes after IDLE_TIMEOUT;
- a client that does not read its responses stops being read (pause_reading while the
  transport's buffer is over its high-water mark), so pipelined requests cannot pile up
  answers in memory;
- malformed requests get nats-server's (Go net/http's) `400 Bad Request` and a close.

The paths, query parameters, status codes, JSONP (`?callback=`), the CORS header and
`http_base_path` are nats-server's (monitor.go and server.go startMonitoring). The data
comes from `Monitoring` (monitor.py); `/metrics`, `/cluster` and `/clusterz` are
pynats-server's own (metrics.py, clusterview.py, web/).
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import h11

from . import const, netutil
from .monitor import (
    _STATES,
    AccountStatzOptions,
    ConnzOptions,
    MonitorError,
    Monitoring,
    RoutezOptions,
    SubszOptions,
)

if TYPE_CHECKING:
    from .core import ServerCore

HEADER_TIMEOUT = 5.0  # nats-server's ReadHeaderTimeout
IDLE_TIMEOUT = 120.0  # a keep-alive connection with no request in progress
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
_REASONS = {200: b"OK", 307: b"Temporary Redirect", 400: b"Bad Request", 404: b"Not Found",
            413: b"Request Entity Too Large", 431: b"Request Header Fields Too Large",
            500: b"Internal Server Error", 503: b"Service Unavailable"}  # fmt: skip
# The static files of the cluster page (pynats_server/web), by the name they are served as.
_WEB_TYPES = {".html": HTML, ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
              ".svg": "image/svg+xml"}  # fmt: skip


@dataclass
class Reply:
    status: int
    body: bytes
    ctype: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)


Result = Reply | Awaitable[Reply]


def not_found() -> Reply:
    return Reply(404, b"404 page not found\n", TEXT, [("X-Content-Type-Options", "nosniff")])


def bad_request(text: str) -> Reply:
    return Reply(400, text.encode(), TEXT)


def go_clean_path(p: str) -> str:
    """Go's ServeMux cleanPath: path.Clean, keeping a trailing slash."""
    if not p:
        return "/"
    if p[0] != "/":
        p = "/" + p
    np = posixpath.normpath(p)
    if np.startswith("//"):
        np = "/" + np.lstrip("/")
    if p.endswith("/") and np != "/":
        np += "/"
    return np


def base_path(p: str) -> str:
    """nats-server's normalizeBasePath."""
    if not p:
        return "/"
    if p[0] != "/":
        p = "/" + p
    np = posixpath.normpath(p)
    return "/" + np.lstrip("/") if np.startswith("//") else np


# -- query strings, decoded as nats-server's handlers decode them ---------------------------


class Query:
    """A request's query parameters: the first value of each, as Go's Values.Get."""

    def __init__(self, query: str) -> None:
        self.values: dict[str, str] = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            self.values.setdefault(k, v)

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    def boolean(self, key: str) -> bool:
        v = self.get(key)
        if v == "":
            return False
        if v in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if v in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        raise MonitorError(f"Error decoding boolean for '{key}': strconv.ParseBool: parsing {_goq(v)}: invalid syntax")

    def integer(self, key: str) -> int:
        v = self.get(key)
        if v == "":
            return 0
        n = _go_int(v)
        if n is None:
            raise MonitorError(f"Error decoding int for '{key}': strconv.Atoi: parsing {_goq(v)}: invalid syntax")
        if not -(1 << 63) <= n < 1 << 63:
            raise MonitorError(f"Error decoding int for '{key}': strconv.Atoi: parsing {_goq(v)}: value out of range")
        return n

    def uint64(self, key: str) -> int:
        v = self.get(key)
        if v == "":
            return 0
        n = _go_int(v, signed=False)
        if n is None:
            raise MonitorError(f"Error decoding uint64 for '{key}': strconv.ParseUint: parsing {_goq(v)}: invalid syntax")
        if n >= 1 << 64:
            raise MonitorError(f"Error decoding uint64 for '{key}': strconv.ParseUint: parsing {_goq(v)}: value out of range")
        return n

    def subs(self) -> tuple[bool, bool]:
        """(subs, detail): `subs=detail`, or a boolean (decodeSubs)."""
        if self.get("subs").lower() == "detail":
            return False, True
        return self.boolean("subs"), False


def _go_int(v: str, *, signed: bool = True) -> int | None:
    body = v[1:] if signed and v[:1] in "+-" else v
    if not body or not body.isascii() or not body.isdigit():
        return None
    return int(v)


def _goq(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


# -- one HTTP connection --------------------------------------------------------------------


class HTTPConnection(asyncio.Protocol):
    """One client of the monitoring port: requests answered in order."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.transport: Any = None
        self.request: h11.Request | None = None
        self.body = 0
        self.busy = False  # an answer is being worked out (an async endpoint)
        self.paused = False  # the client is not reading: neither are we
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Reply] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.monitor.conns.add(self)
        self._arm(HEADER_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.monitor.conns.discard(self)
        self._disarm()
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.transport is not None:
            self.transport.resume_reading()
            self._process()

    def data_received(self, data: bytes) -> None:
        if self.request is None and self._timeout == IDLE_TIMEOUT:
            self._arm(HEADER_TIMEOUT)  # a new request has begun: its head must come quickly
        self.h11.receive_data(data)
        self._process()

    def eof_received(self) -> bool:
        self.h11.receive_data(b"")
        self._process()
        return False

    # -- timers --

    _timeout = 0.0

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timeout = seconds
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timeout = 0.0

    def _expired(self) -> None:
        self._timer = None
        if self.transport is not None:
            self.transport.close()

    # -- requests --

    def _process(self) -> None:
        while self.transport is not None and not self.busy and not self.paused:
            try:
                ev = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                self._fail(e.error_status_hint)
                return
            if ev is h11.NEED_DATA or ev is h11.PAUSED:
                return
            if isinstance(ev, h11.Request):
                self.request = ev
                self.body = 0
                self._disarm()
            elif isinstance(ev, h11.Data):
                self.body += len(ev.data)
                if self.body > MAX_BODY:
                    self._fail(413)
                    return
            elif isinstance(ev, h11.EndOfMessage):
                self._answer()
            elif isinstance(ev, h11.ConnectionClosed):
                self.transport.close()
                return

    def _answer(self) -> None:
        req = self.request
        assert req is not None
        method = req.method.decode("latin-1")
        target = req.target.decode("latin-1")
        try:
            result = self.monitor.dispatch(method, target)
        except Exception as e:  # a bug in an endpoint must not close the port
            self.monitor.server.log.error(f"monitoring: {target}: {e!r}")
            result = Reply(500, b"Internal Server Error\n", TEXT)
        if isinstance(result, Reply):
            self._send(result)
            return
        self.busy = True
        self._task = asyncio.ensure_future(result)
        self._task.add_done_callback(self._async_done)

    def _async_done(self, task: asyncio.Task[Reply]) -> None:
        self._task = None
        self.busy = False
        if task.cancelled() or self.transport is None:
            return
        exc = task.exception()
        if exc is not None:
            self.monitor.server.log.error(f"monitoring: {exc!r}")
            self._send(Reply(500, b"Internal Server Error\n", TEXT))
        else:
            self._send(task.result())
        self._process()

    def _send(self, r: Reply) -> None:
        req = self.request
        assert req is not None and self.transport is not None
        headers = [("Content-Type", r.ctype), *r.headers,
                   ("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())),
                   ("Content-Length", str(len(r.body)))]  # fmt: skip
        headers.sort(key=lambda h: h[0])  # Go writes them sorted
        out = self.h11.send(h11.Response(status_code=r.status, headers=headers, reason=_REASONS.get(r.status, b"")))
        if req.method != b"HEAD" and r.body:
            out += self.h11.send(h11.Data(data=r.body))
        out += self.h11.send(h11.EndOfMessage())
        self.transport.write(out)
        self.request = None
        if self.h11.our_state is h11.MUST_CLOSE:
            self.transport.close()
            return
        try:
            self.h11.start_next_cycle()
        except h11.LocalProtocolError:
            # The client has not finished sending its request (a body we did not wait for).
            self.transport.close()
            return
        self._arm(IDLE_TIMEOUT)

    def _fail(self, status: int) -> None:
        """A request h11 (or our limits) refuse: Go's plain answer, then close."""
        reason = _REASONS.get(status, b"Bad Request")
        self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                             b"Connection: close\r\n\r\n%d %s" % (status, reason, status, reason))
        self.transport.close()


# -- the listener and the routes ------------------------------------------------------------


class Monitor:
    """The HTTP listener; the data comes from the server's `Monitoring`."""

    def __init__(self, server: ServerCore) -> None:
        self.server = server
        self.data: Monitoring = server.monitoring
        opts = server.opts
        self.host = opts.http_host or opts.host
        self.port = 0
        self._srv: asyncio.AbstractServer | None = None
        self.scheme = "http"
        self.conns: set[HTTPConnection] = set()
        # HTTPS: the context for new handshakes; a configuration reload replaces it.
        self.tls_context: Any = None
        self.base = base_path(opts.http_base_path)
        self.routes: dict[str, tuple[str, Callable[[Query], Result]]] = {}
        for path, fn in self._endpoints().items():
            self.routes[posixpath.join(self.base, path.lstrip("/")) if path != "/" else self.base] = (path, fn)
        self._cluster: Any = None  # clusterview.ClusterView, made on first use

    @property
    def req_stats(self) -> dict[str, int]:
        return self.data.req_stats

    @property
    def url(self) -> str:
        h = "127.0.0.1" if netutil.is_unspecified(self.host) else self.host
        base = "" if self.base == "/" else self.base
        return f"{self.scheme}://{netutil.join_host_port(h, self.port)}{base}"

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
            lambda: HTTPConnection(self), host=self.host or None, port=port, reuse_address=True, ssl=ctx
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
            for c in list(self.conns):
                if c.transport is not None:
                    c.transport.close()
            try:
                await asyncio.wait_for(self._srv.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):
                pass

    # -- dispatch ---------------------------------------------------------------------

    def dispatch(self, method: str, target: str) -> Result:
        if target.startswith("/"):
            path, _, query = target.partition("?")
            path = unquote(path)
        else:  # "*" or an absolute form: Go's mux finds no handler
            return not_found()
        clean = go_clean_path(path)
        if clean != path:
            loc = clean + ("?" + query if query else "")
            body = f'<a href="{loc}">Temporary Redirect</a>.\n\n'.encode()
            return Reply(307, body, HTML, [("Location", loc)])
        found = self.routes.get(path)
        if found is None:
            return not_found()
        name, fn = found
        if name in _COUNTED:
            name = "/subsz" if name == "/subscriptionsz" else name
            self.req_stats[name] = self.req_stats.get(name, 0) + 1
        q = Query(query)
        try:
            return fn(q)
        except MonitorError as e:
            return bad_request(str(e))

    def json(self, q: Query, data: Any, status: int = 200, *, indent: bool = True) -> Reply:
        """A JSON answer, or JSONP when the request names a `callback` (handleResponse)."""
        body = json.dumps(data, indent=2 if indent else None, separators=None if indent else (",", ":"),
                          ensure_ascii=False).encode()
        callback = q.get("callback")
        if callback:
            return Reply(status, callback.encode() + b"(" + body + b")", "application/javascript")
        return Reply(status, body, JSON, [("Access-Control-Allow-Origin", "*")])

    def _endpoints(self) -> dict[str, Callable[[Query], Result]]:
        return {
            "/": self.index,
            "/varz": self.varz,
            "/connz": self.connz,
            "/routez": self.routez,
            "/gatewayz": self.gatewayz,
            "/leafz": self.leafz,
            "/subsz": self.subsz,
            "/subscriptionsz": self.subsz,
            "/accountz": self.accountz,
            "/accstatz": self.accstatz,
            "/jsz": self.jsz,
            "/healthz": self.healthz,
            "/raftz": self.raftz,
            "/ipqueuesz": self.ipqueuesz,
            # pynats-server's own
            "/metrics": self.metrics,
            "/cluster": self.cluster_page,
            "/cluster/app.js": lambda q: self._web("app.js"),
            "/cluster/style.css": lambda q: self._web("style.css"),
            "/clusterz": self.clusterz,
        }

    # -- nats-server's endpoints: query strings to options, as its handlers read them -----

    def index(self, q: Query) -> Reply:
        def link(label: str, p: str, cls: str = "") -> str:
            href = "." + posixpath.join(self.base, p.lstrip("/"))
            c = f" class={cls}" if cls else ""
            return f'\t<a href={href}{c}>{label}<span class="endpoint"> {p}</span></a>\n'

        links = [("General", "/varz"), ("JetStream", "/jsz"), ("Connections", "/connz"),
                 ("Accounts", "/accountz"), ("Account Stats", "/accstatz"), ("Subscriptions", "/subsz"),
                 ("Routes", "/routez"), ("LeafNodes", "/leafz"), ("Gateways", "/gatewayz"),
                 ("Raft Groups", "/raftz"), ("Health Probe", "/healthz"),
                 ("Metrics (Prometheus)", "/metrics"), ("Cluster (live page)", "/cluster")]  # fmt: skip
        body = "".join(link(label, p, "last" if p == "/cluster" else "") for label, p in links)
        html = (
            '<html lang="en">\n<head>\n<title>pynats-server</title>\n<style type="text/css">\n'
            "  body { font-family: ui-sans-serif,system-ui,sans-serif; font-size: 18px; margin-left: 32px }\n"
            "  a { display:block; margin-left: 7px; padding-bottom: 6px; color: rgb(72 72 92); text-decoration: none }\n"
            "  a:hover { font-weight: 600; color: rgb(59 50 202) }\n  a.last { padding-bottom: 16px }\n"
            "  .endpoint { font-size: 12px; color: #999; font-family: monospace; display: none }\n"
            "  a:hover .endpoint { display: inline }\n</style>\n</head>\n<body>\n"
            f"\t<h1>pynats-server</h1>\n\t<p>v{const.__version__} (nats-server {const.NATS_VERSION} protocol)</p>\n"
            f"{body}</body>\n</html>"
        )
        return Reply(200, html.encode(), HTML)

    def varz(self, q: Query) -> Reply:
        return self.json(q, self.data.varz())

    def connz(self, q: Query) -> Reply:
        sort = q.get("sort")
        auth = q.boolean("auth")
        subs, detail = q.subs()
        offset, limit, cid = q.integer("offset"), q.integer("limit"), q.uint64("cid")
        state = q.get("state").lower()
        if state not in _STATES or (state == "" and q.get("state")):
            raise MonitorError(f"Error decoding state for {q.get('state')}")
        o = ConnzOptions(sort=sort, auth=auth, subscriptions=subs, subscriptions_detail=detail, offset=offset,
                         limit=limit, cid=cid, state=_STATES[state], user=q.get("user"), acc=q.get("acc"),
                         mqtt_client=q.get("mqtt_client"))  # fmt: skip
        return self.json(q, self.data.connz(o))

    def routez(self, q: Query) -> Reply:
        subs, detail = q.subs()
        return self.json(q, self.data.routez(RoutezOptions(subscriptions=subs, subscriptions_detail=detail)))

    def subsz(self, q: Query) -> Reply:
        o = SubszOptions(subscriptions=q.boolean("subs"), offset=q.integer("offset"), limit=q.integer("limit"),
                         test=q.get("test"), account=q.get("acc"))  # fmt: skip
        return self.json(q, self.data.subsz(o))

    def healthz(self, q: Query) -> Reply:
        if q.boolean("js-enabled"):
            self.server.log.warn("Healthcheck: js-enabled deprecated, use js-enabled-only instead")
        o = {"js-enabled": q.boolean("js-enabled"), "js-enabled-only": q.boolean("js-enabled-only"),
             "js-server-only": q.boolean("js-server-only"), "js-meta-only": q.boolean("js-meta-only"),
             "details": q.boolean("details"), "account": q.get("account"), "stream": q.get("stream"),
             "consumer": q.get("consumer")}  # fmt: skip
        hs = self.data.healthz(o)
        code = hs.pop("status_code", 200)
        if hs.get("error"):
            self.server.log.warn(f"Healthcheck failed: {_goq(hs['error'])}")
        elif hs.get("errors"):
            self.server.log.warn(f"Healthcheck failed: {len(hs['errors'])} errors")
        return self.json(q, hs, code, indent=False)

    def gatewayz(self, q: Query) -> Reply:
        q.subs()
        q.boolean("accs")
        return self.json(q, self.data.gatewayz())

    def leafz(self, q: Query) -> Reply:
        subs = q.boolean("subs")
        return self.json(q, self.data.leafz(subs=subs, account=q.get("acc")))

    def accountz(self, q: Query) -> Reply:
        return self.json(q, self.data.accountz(q.get("acc")))

    def accstatz(self, q: Query) -> Reply:
        return self.json(q, self.data.account_statz(AccountStatzOptions(include_unused=q.boolean("unused"))))

    def jsz(self, q: Query) -> Reply:
        o: dict[str, Any] = {"account": q.get("acc")}
        for key, name in (("accounts", "accounts"), ("streams", "streams"), ("consumer", "consumers"),
                          ("direct_consumer", "direct-consumers"), ("config", "config"),
                          ("leader_only", "leader-only"), ("raft", "raft"),
                          ("stream_leader_only", "stream-leader-only")):  # fmt: skip
            o[key] = q.boolean(name)
        o["offset"], o["limit"] = q.integer("offset"), q.integer("limit")
        return self.json(q, self.data.jsz(o))

    def raftz(self, q: Query) -> Reply:
        return self.json(q, {})  # no Raft groups here

    def ipqueuesz(self, q: Query) -> Reply:
        q.boolean("all")
        return self.json(q, {})

    # -- pynats-server's own ----------------------------------------------------------

    def metrics(self, q: Query) -> Reply:
        from .metrics import CONTENT_TYPE, render

        return Reply(200, render(self.data).encode(), CONTENT_TYPE)

    def cluster_page(self, q: Query) -> Reply:
        return self._web("index.html")

    def _web(self, name: str) -> Reply:
        try:
            data = resources.files("pynats_server").joinpath("web", name).read_bytes()
        except OSError:
            return not_found()
        ext = name[name.rfind(".") :]
        return Reply(200, data, _WEB_TYPES.get(ext, "application/octet-stream"), [("Cache-Control", "no-cache")])

    def clusterz(self, q: Query) -> Awaitable[Reply]:
        from .clusterview import ClusterView

        if self._cluster is None:
            self._cluster = ClusterView(self.server)

        async def answer() -> Reply:
            return self.json(q, await self._cluster.snapshot())

        return answer()


# Requests counted in /varz http_req_stats: nats-server's paths (ours are not counted).
_COUNTED = {"/", "/varz", "/connz", "/routez", "/gatewayz", "/leafz", "/subsz", "/subscriptionsz", "/accountz", "/accstatz",
            "/jsz", "/healthz", "/raftz", "/ipqueuesz"}  # fmt: skip

