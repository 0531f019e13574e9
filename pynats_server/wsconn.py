"""WebSocket clients: the listener, the HTTP upgrade, and the client connection (asyncio glue
around websocket.py).

The listener's connections start as `Handshake` protocols: h11 reads the HTTP request,
websocket.check_upgrade decides. A refused request gets nats-server's answer and the
connection stays open for the next request (HTTP/1.1 keep-alive), as Go's HTTP server
keeps it. An accepted one is answered `101 Switching Protocols` and the transport is
handed to a new `WSClientConnection` (so a refused upgrade uses no client id, as in
nats-server). With TLS (wss) a `TLSTerminator` comes first: the TLS handshake, then the
plaintext goes to those protocols; it answers plaintext on the port as Go's HTTPS server
does.

`WSClientConnection` is a ClientConnection whose input is unframed before the parser sees
it and whose transport is a `WSTransport`, which frames each flush. Plaintext TCP clients
do not pass through any of this.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import h11

from . import netutil
from .auth import Authenticator, Identity, Verdict
from .client import ClientConnection
from .protocol import wire
from .tlsconn import TLSTransport
from .tlsctx import go_handshake_error, looks_like_tls
from .websocket import (
    MAX_HEAD,
    FrameReader,
    FrameWriter,
    Origins,
    Refusal,
    Upgrade,
    check_upgrade,
    close_frame,
    close_status,
    http_error,
    malformed_request,
    switching_protocols,
)
from .wrapped import WrappedTransport

# A request line as Go's net/http accepts it: a token, the target, HTTP/x.y.
_REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ ]+ HTTP/[0-9]\.[0-9]")

# Parse errors nats-server answers before closing (an -ERR, then the close frame), with the
# words its read loop then logs.
_INLINE_ERRORS = {"Maximum Message Payload Exceeded": "maximum payload exceeded",
                  "Maximum Control Line Exceeded": "maximum control line exceeded",
                  "Authentication Failure": "authentication error"}  # fmt: skip
# Reasons nats-server closes a connection without flushing what is queued.
_UNFLUSHED = frozenset(("Read Error", "Write Error"))

if TYPE_CHECKING:
    from .core import ServerCore
    from .options import WebsocketOptions


def websocket_authenticator(srv: ServerCore) -> Authenticator:
    """The users and secrets websocket clients are checked against: the server's, or the
    websocket block's own username/password, token and no_auth_user when it has any
    (nats-server's authOverride). Users' allowed_connection_types are matched to WEBSOCKET."""
    opts = srv.opts
    wo = opts.websocket
    if wo.auth_override:
        opts = replace(opts, username=wo.username or None, password=wo.password or None,
                       authorization=wo.token or None, no_auth_user=wo.no_auth_user)  # fmt: skip
    auth = Authenticator(opts)
    auth.conn_type = "WEBSOCKET"
    if wo.auth_override:
        auth.required = True
    else:
        # The users, nkeys and operator of the server are the server's: same decision.
        auth.required = srv.auth.required
    return auth


class WebsocketListener:
    """The `websocket {}` port."""

    def __init__(self, server: ServerCore) -> None:
        self.server = server
        self.opts: WebsocketOptions = server.opts.websocket
        self.origins = Origins(self.opts)
        self._auth = websocket_authenticator(server)
        self._auth_of = server.auth
        self.tls_context: ssl.SSLContext | None = None
        self.host = self.opts.host or "0.0.0.0"
        self.port = 0
        self.connect_urls: list[str] = []
        self._listener: asyncio.AbstractServer | None = None
        self.handshakes: set[Handshake] = set()

    @property
    def auth(self) -> Authenticator:
        """Rebuilt when a reload replaced the server's users and secrets."""
        if self._auth_of is not self.server.auth:
            self._auth = websocket_authenticator(self.server)
            self._auth_of = self.server.auth
        return self._auth

    @property
    def tls(self) -> bool:
        return self.tls_context is not None

    def load_tls(self) -> None:
        from .tlsctx import server_context

        t = self.opts.tls
        self.tls_context = server_context(t) if t is not None else None

    async def start(self) -> None:
        srv = self.server
        self.load_tls()
        port = 0 if self.opts.port == -1 else self.opts.port
        # Bound now (its line is logged before the client port's, as nats-server logs it),
        # accepting once the server's INFO is built: serve().
        self._listener = await srv.loop.create_server(
            self._accept, host=self.host, port=port, reuse_address=True, backlog=1024, start_serving=False
        )
        self.port = self._listener.sockets[0].getsockname()[1]
        self.connect_urls = netutil.connect_urls(self.opts.advertise, self.host, self.port)
        scheme = "wss" if self.tls else "ws"
        srv.log.notice(f"Listening for websocket clients on {scheme}://{self.host}:{self.port}")
        if not self.tls:
            srv.log.warn("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!")

    async def serve(self) -> None:
        if self._listener is not None:
            await self._listener.start_serving()

    def _accept(self) -> asyncio.Protocol:
        if self.tls_context is not None:
            return TLSTerminator(self, self.tls_context)
        return Handshake(self)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for h in list(self.handshakes):
            h.abandon()

    # Websocket clients are clients (server.clients); the listener is all this kind holds.

    def ready(self) -> None:
        pass

    def stop_accepting(self) -> None:
        self.close()

    async def shutdown(self) -> None:
        self.close()

    def connections(self) -> list[Any]:
        return []

    def closed_totals(self) -> tuple[int, int, int, int]:
        return 0, 0, 0, 0

    async def wait_closed(self) -> None:
        if self._listener is not None:
            await self._listener.wait_closed()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{'wss' if self.tls else 'ws'}://{netutil.join_host_port(host, self.port)}"

    def info(self, c: ClientConnection, fields: dict[str, Any]) -> None:
        """A websocket client's INFO (nats-server's generateClientInfoJSON for them): the
        websocket port, its TLS, the block's authorization override, and the websocket
        URLs of the cluster as connect_urls."""
        fields["host"], fields["port"] = self.host, self.port
        fields["tls_required"] = fields["tls_available"] = self.tls
        fields["auth_required"] = self.server.auth.required or self.opts.auth_override
        cluster = self.server.cluster
        urls = cluster.ws_connect_urls() if cluster is not None else []
        if urls:
            fields["connect_urls"] = urls
        else:
            fields.pop("connect_urls", None)


class Handshake(asyncio.Protocol):
    """A connection on the websocket port until its upgrade is accepted."""

    def __init__(self, listener: WebsocketListener) -> None:
        self.listener = listener
        self.transport: Any = None
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.request: h11.Request | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = netutil.join_host_port(str(peer[0]), int(peer[1]))
        self.listener.handshakes.add(self)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        t = self.listener.opts.handshake_timeout
        if t > 0:
            # Go's ReadTimeout: the request must be read in time, or the connection goes
            # (without an answer).
            self._timer = asyncio.get_running_loop().call_later(t, self.abandon)

    def abandon(self) -> None:
        self._done()
        if self.transport is not None:
            self.transport.close()

    def _done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.listener.handshakes.discard(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()
        self.transport = None

    def eof_received(self) -> bool:
        return False

    def data_received(self, data: bytes) -> None:
        if self.request is None and not self._first_line_ok(data):
            self.transport.write(malformed_request(400))
            self.abandon()
            return
        self.h11.receive_data(data)
        while self.transport is not None:
            try:
                ev = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                self.transport.write(malformed_request(e.error_status_hint))
                self.abandon()
                return
            if ev is h11.NEED_DATA or ev is h11.PAUSED:
                return
            if isinstance(ev, h11.Request):
                self.request = ev
            elif isinstance(ev, h11.EndOfMessage):
                self._answer()
            elif isinstance(ev, h11.ConnectionClosed):
                self.abandon()
                return

    _head = b""

    def _first_line_ok(self, data: bytes) -> bool:
        """Go reads the request line before the headers and refuses a bad one at once
        (h11 would wait for the end of the head)."""
        if self._head is None:
            return True
        head = self._head + data
        end = head.find(b"\n")
        if end < 0:
            self._head = head[:MAX_HEAD]
            return True
        self._head = None  # type: ignore[assignment]
        return _REQUEST_LINE.fullmatch(head[:end].rstrip(b"\r")) is not None

    def _answer(self) -> None:
        req = self.request
        assert req is not None
        lst = self.listener
        srv = lst.server
        result = check_upgrade(req.method, list(req.headers), origins=lst.origins,
                               compression=lst.opts.compression, tls=lst.tls)  # fmt: skip
        leftover, _ = self.h11.trailing_data
        if isinstance(result, Refusal):
            srv.log.error(f"{self.peer} - websocket handshake error: {result.reason}")
            self.transport.write(http_error(result.status, req.http_version))
            connection = [v.lower() for k, v in req.headers if k == b"connection"]
            if req.http_version == b"1.0" or b"close" in connection:
                self.abandon()
                return
            # Keep-alive: the next request starts afresh.
            self.request = None
            self._head = b""
            self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
            self._arm()
            if leftover:
                self.data_received(leftover)
            return
        if leftover:
            srv.log.error(f"{self.peer} - websocket handshake error: client sent data before handshake is complete")
            self.abandon()
            return
        self._done()
        if srv.shutting_down or srv.lame_duck:
            self.transport.close()
            return
        self.transport.write(switching_protocols(result, lst.opts.headers))
        c = WSClientConnection(srv, result)
        t = self.transport
        self.transport = None
        t.set_protocol(c)
        c.connection_made(t)


# What Go's HTTP server takes for a plaintext HTTP request on its TLS port.
_HTTP_STARTS = (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO")
_HTTP_ON_TLS = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"


class TLSTerminator(asyncio.Protocol):
    """wss: TLS over memory BIOs (tlsconn.py's TLSTransport) in front of the connection's
    protocol (a Handshake, then the WSClientConnection it hands over to), so that the port
    answers as Go's HTTPS server does: a plaintext HTTP request gets its `400` and other
    plaintext is refused at the first record, each logged as a TLS handshake error."""

    def __init__(self, listener: WebsocketListener, ctx: ssl.SSLContext) -> None:
        self.listener = listener
        self.ctx = ctx
        self.raw: Any = None
        self.inner: Any = None  # the protocol the plaintext goes to
        self.tls: _WrappedTLS | None = None
        self.incoming = ssl.MemoryBIO()
        self.head = b""
        self.peer = ""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = netutil.join_host_port(str(peer[0]), int(peer[1]))
        wo = self.listener.opts
        timeout = wo.handshake_timeout or (wo.tls.handshake_timeout if wo.tls is not None else 0)
        if timeout > 0:
            self._timer = asyncio.get_running_loop().call_later(timeout, self._timeout)

    def _timeout(self) -> None:
        self._timer = None
        if self.inner is None and self.raw is not None:
            self._failed("read tcp: i/o timeout")

    def _failed(self, why: str) -> None:
        self.listener.server.log.error(f"websocket: TLS handshake error from {self.peer}: {why}")
        if self.tls is not None:
            self.tls.send_pending()
        self.raw.close()

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self._decrypt(data)
            return
        if self.tls is None:
            self.head += data
            if len(self.head) < 5:
                return
            head, self.head = self.head, b""
            if not looks_like_tls(head[:5]):
                if head[:5] in _HTTP_STARTS:
                    self.raw.write(_HTTP_ON_TLS)
                    self._failed("client sent an HTTP request to an HTTPS server")
                else:
                    self._failed("tls: first record does not look like a TLS handshake")
                return
            outgoing = ssl.MemoryBIO()
            obj = self.ctx.wrap_bio(self.incoming, outgoing, server_side=True)
            self.tls = _WrappedTLS(self.raw, obj, outgoing, self)
            data = head
        self.incoming.write(data)
        tls = self.tls
        try:
            tls.obj.do_handshake()
        except ssl.SSLWantReadError:
            tls.send_pending()
            return
        except (ssl.SSLError, ValueError) as e:
            self._failed(go_handshake_error(e, server=True))
            return
        tls.send_pending()
        tls.established = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.inner = Handshake(self.listener)
        self.inner.connection_made(tls)
        if self.incoming.pending:
            self._decrypt(b"")

    def _decrypt(self, data: bytes) -> None:
        tls = self.tls
        assert tls is not None
        if data:
            self.incoming.write(data)
        chunks = []
        eof = False
        try:
            while True:
                chunk = tls.obj.read(1 << 18)
                if not chunk:
                    eof = True
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            eof = True
        except ssl.SSLError:
            eof = True
        tls.send_pending()
        if chunks and self.inner is not None:
            self.inner.data_received(b"".join(chunks))
        if eof and not self.raw.is_closing():
            self.raw.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.inner is not None:
            self.inner.connection_lost(exc)


class _WrappedTLS(TLSTransport):
    """The TLS transport a wss connection's protocols see; `set_protocol` (the upgrade's
    hand-over) changes who gets the plaintext."""

    def __init__(self, raw: Any, obj: ssl.SSLObject, outgoing: ssl.MemoryBIO, term: TLSTerminator) -> None:
        super().__init__(raw, obj, outgoing)
        self.term = term

    def set_protocol(self, protocol: Any) -> None:
        self.term.inner = protocol

    def get_protocol(self) -> Any:
        return self.term.inner


class WSTransport(WrappedTransport):
    """What a websocket client writes to: each write (a flush) goes out framed."""

    def __init__(self, raw: Any, writer: FrameWriter) -> None:
        super().__init__(raw)
        self.frames = writer.frames

    def write(self, data: Any) -> None:
        self.raw.write(self.frames(data))


class WSClientConnection(ClientConnection):
    """A client on the websocket port: NATS protocol inside WebSocket frames."""

    log_id_prefix = "wid"
    client_type = "websocket"

    def __init__(self, server: ServerCore, up: Upgrade) -> None:
        super().__init__(server)
        self.up = up
        self.ws_reader = FrameReader(up, server.opts.max_payload)
        self.ws_writer = FrameWriter(up)
        self.ws_close_sent = False
        self.raw: Any = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._accepted(transport)
        self.raw = transport
        self.transport = WSTransport(transport, self.ws_writer)  # type: ignore[assignment]
        self.enqueue(wire.info(self.server.client_info(self, first=True)))
        if not self._register():
            return
        self.flush()
        self._start_timers()

    def data_received(self, data: bytes) -> None:
        r = self.ws_reader
        payloads, replies = r.feed(data)
        if replies and not self.ws_close_sent:
            self.ws_close_sent = r.closed or bool(r.error)
            self.raw.write(replies)
        if payloads and not self.closed:
            ClientConnection.data_received(self, payloads[0] if len(payloads) == 1 else b"".join(payloads))
        if self.closed:
            return
        if r.error:
            self.error(f"read error: {r.error}")
            self.close_connection("Read Error")
        elif r.closed:
            self.close_connection("Client Closed")

    def eof_received(self) -> bool:
        return False

    # -- ClientConnection hooks

    def _set_label(self, ident: int) -> None:
        ip = self.up.client_ip
        if ip:
            ip = f"[{ip}]" if ":" in ip else ip
            self._label = f"{ip}/{netutil.join_host_port(self.host, self.port)} - wid:{ident}"
        else:
            self._label = f"{netutil.join_host_port(self.host, self.port)} - wid:{ident}"

    def authenticator(self) -> Authenticator:
        ws = self.server.websocket
        return ws.auth if ws is not None else self.server.auth

    def authenticate(self, co: dict[str, Any]) -> Verdict:
        # Credentials missing from CONNECT come from the upgrade's cookies, if named.
        srv = self.server
        wo = srv.opts.websocket
        cookies = self.up.cookies
        if cookies:
            co = dict(co)
            for opt, name in (("jwt", wo.jwt_cookie), ("user", wo.user_cookie),
                              ("pass", wo.pass_cookie), ("auth_token", wo.token_cookie)):  # fmt: skip
                if name and not co.get(opt) and name in cookies:
                    co[opt] = cookies[name]
        if srv.operator is not None:
            return super().authenticate(co)
        auth = self.authenticator()
        if wo.tls is not None and wo.tls.map and auth.users:
            # The block's verify_and_map (never the server's tls {}): the certificate names the user.
            mapped = srv.tls_mapped_user(self, co)
            if mapped is None:
                return Verdict(False, Identity())
            return auth.check({**co, "user": mapped}, self.nonce)
        return auth.check(co, self.nonce)

    def _start_timers(self) -> None:
        srv = self.server
        if self.authenticator().required:
            self.parser.await_connect = True
            timeout = srv.opts.websocket.auth_timeout or srv.opts.client_auth_timeout()
            self._auth_handle = srv.loop.call_later(timeout, self._auth_timeout)
        self.set_ping_timer(self.ping_interval())

    def ping_interval(self) -> float:
        return self.server.opts.websocket.ping_interval or self.server.opts.ping_interval

    def _ssl_object(self) -> Any:
        return self.raw.get_extra_info("ssl_object") if self.raw is not None else None

    def peer_cert_der(self) -> bytes | None:
        obj = self._ssl_object()
        return obj.getpeercert(binary_form=True) if obj is not None else None

    def peer_chain_der(self) -> list[bytes]:
        der = self.peer_cert_der()
        return [der] if der else []

    def peer_cert(self) -> dict[str, Any]:
        obj = self._ssl_object()
        return (obj.getpeercert() or {}) if obj is not None else {}

    def tls_state(self) -> tuple[str, str] | None:
        from .tlsctx import cipher_suite_name, tls_version_name

        obj = self.raw.get_extra_info("ssl_object") if self.raw is not None else None
        if obj is None:
            return None
        cipher = obj.cipher()
        return tls_version_name(obj.version()), cipher_suite_name(cipher[0]) if cipher else ""

    def _protocol_error(self, e: Any) -> None:
        """nats-server closes a websocket client at once for the parse errors it does not
        answer inline (everything but a too large payload or control line and an op before
        CONNECT): logged as a read error, nothing more sent, not even the -ERR."""
        if self.closed or e.reason in _INLINE_ERRORS:
            super()._protocol_error(e)
            # nats-server's read loop logs the parser's error too.
            why = _INLINE_ERRORS.get(self.close_reason)
            if why:
                self.error(f"read error: {why}")
            return
        detail = e.detail or e.reason
        if e.err == wire.E_UNKNOWN_OP:
            detail = f"Client parser ERROR, {detail}"
        self.error(f"read error: {detail}")
        self.close_connection("Read Error")

    def close_connection(self, reason: str, *, abort: bool = False) -> None:
        if reason in _UNFLUSHED and not self.closed:
            # nats-server does not flush on these: what is queued is dropped, no close frame.
            self.out.clear()
            self.ws_close_sent = True
        if not self.closed and not self.ws_close_sent and not abort and self.raw is not None:
            # What is queued goes first, then the close frame (its status from the reason).
            self.flush()
            self.ws_close_sent = True
            if not self.raw.is_closing():
                self.raw.write(close_frame(close_status(reason), reason))
        super().close_connection(reason, abort=abort)
