"""TLS on client and route connections: OpenSSL (ssl.SSLObject) over memory BIOs.

The socket's bytes go into the SSLObject's incoming BIO and the plaintext it gives back
into the usual data_received, so the parser never knows; what the connection writes goes
through `TLSTransport.write`, which encrypts the joined output of a flush in one call. A
memory BIO rather than loop.start_tls, because nats-server's orders need bytes the loop
would not give back: INFO in plaintext then the handshake, the handshake before INFO, and
peeking at the first bytes to tell a TLS client from a plaintext one (allow_non_tls). The
same code runs under uvloop and asyncio (DESIGN.md, "TLS").

Plaintext connections are untouched: these are subclasses, chosen when the listener accepts.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import TYPE_CHECKING, Any

from . import certs, netutil
from .client import ClientConnection
from .protocol import wire
from .route import RouteConnection
from .tlsctx import cipher_suite_name, go_handshake_error, looks_like_tls, tls_version_name
from .wrapped import WrappedTransport

if TYPE_CHECKING:
    from .core import ServerCore
    from .options import RouteURL, TLSOptions
    from .route import RouteMesh

_READ = 1 << 18

# Connection states.
_WAIT_FIRST = 0  # handshake_first with a fallback delay: the client has not spoken yet
_PEEK = 1  # allow_non_tls: waiting for the first bytes to tell TLS from plaintext
_HANDSHAKE = 2
_OPEN = 3  # TLS established
_PLAIN = 4  # allow_non_tls, and the client speaks plaintext


class TLSTransport(WrappedTransport):
    """What a connection writes to: encrypts, then writes to the socket's transport."""

    def __init__(self, raw: Any, obj: ssl.SSLObject, outgoing: ssl.MemoryBIO) -> None:
        super().__init__(raw)
        self.obj = obj
        self.outgoing = outgoing
        self.established = False

    def write(self, data: bytes) -> None:
        try:
            self.obj.write(data)
        except (ssl.SSLError, ValueError):
            # A TLS session that failed (the peer's fatal alert): the connection is lost;
            # the flush of everyone else goes on.
            self.raw.abort()
            return
        self.raw.write(self.outgoing.read())

    def send_pending(self) -> None:
        if self.outgoing.pending:
            self.raw.write(self.outgoing.read())

    def close(self) -> None:
        if self.established:
            # close_notify, as Go's tls.Conn.Close sends it.
            try:
                self.obj.unwrap()
            except (ssl.SSLError, ValueError):
                pass
            self.send_pending()
        self.raw.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self.obj
        return self.raw.get_extra_info(name, default)


class _TLSMixin:
    """The handshake state machine shared by clients and routes. The host class is a
    Connection; `_tls_kind` is "" for clients and "route" for routes (it names the log
    lines as nats-server does)."""

    _tls_kind = ""
    _state = _HANDSHAKE
    _tls: TLSTransport | None = None
    _incoming: ssl.MemoryBIO | None = None
    _tls_timer: asyncio.TimerHandle | None = None
    _head = b""  # the first record header, until it is known to be TLS
    _seen_bytes = False
    tls_first = False  # the handshake came before INFO (/connz tls_first)

    # provided by the host class
    server: ServerCore
    transport: Any
    closed: bool
    close_reason: str

    def _begin_handshake(self, ctx: ssl.SSLContext, timeout: float, *, server_hostname: str | None = None,
                         pre: bytes = b"") -> None:
        c: Any = self
        raw = c.transport
        self._incoming = ssl.MemoryBIO()
        outgoing = ssl.MemoryBIO()
        server_side = server_hostname is None
        obj = ctx.wrap_bio(self._incoming, outgoing, server_side=server_side, server_hostname=server_hostname)
        self._tls = TLSTransport(raw, obj, outgoing)
        c.transport = self._tls
        self._state = _HANDSHAKE
        self._tls_timer = c.server.loop.call_later(timeout, self._tls_timeout)
        self._handshake_start = time.monotonic()
        if not server_side:
            self._step_handshake(b"")
        elif pre:
            self._step_handshake(pre)

    def _step_handshake(self, data: bytes) -> None:
        tls = self._tls
        inc = self._incoming
        assert tls is not None and inc is not None
        if data:
            self._seen_bytes = True
            if tls.obj.server_side and self._head is not None:
                # Go looks at the first record header before anything else.
                self._head += data
                if len(self._head) < 5:
                    return
                head, self._head = self._head, None  # type: ignore[assignment]
                if not looks_like_tls(head):
                    self._handshake_failed("tls: first record does not look like a TLS handshake")
                    return
                data = head
            inc.write(data)
        try:
            tls.obj.do_handshake()
        except ssl.SSLWantReadError:
            tls.send_pending()
            return
        except (ssl.SSLError, ValueError) as e:
            tls.send_pending()  # the alert OpenSSL wrote, if any
            self._handshake_failed(go_handshake_error(e, server=tls.obj.server_side))
            return
        tls.send_pending()
        self._tls_done()

    def _tls_done(self) -> None:
        c: Any = self
        tls = self._tls
        assert tls is not None
        if self._tls_timer is not None:
            self._tls_timer.cancel()
            self._tls_timer = None
        opts = self._tls_options()
        # A reload may have turned TLS off during this handshake: no pins then.
        pinned = opts.pinned_certs if opts is not None else None
        if pinned is not None:
            der = tls.obj.getpeercert(binary_form=True)
            if not der:
                c.debug("Failed pinned cert test as client did not provide a certificate")
                self._handshake_failed("certificate not pinned")
                return
            key = certs.spki_sha256(der)
            if key not in pinned:
                c.debug(f"Failed pinned cert test for key id: {key}")
                self._handshake_failed("certificate not pinned")
                return
        tls.established = True
        self._state = _OPEN
        self._established()
        if not c.closed and self._incoming is not None and self._incoming.pending:
            self._tls_read(b"")

    def _tls_log_complete(self) -> None:
        c: Any = self
        tls = self._tls
        assert tls is not None
        c.debug("TLS handshake complete")
        cipher = tls.obj.cipher()
        name = cipher_suite_name(cipher[0]) if cipher else ""
        c.debug(f"TLS version {tls_version_name(tls.obj.version())}, cipher suite {name}")

    def _handshake_failed(self, text: str) -> None:
        c: Any = self
        if c.closed:
            return
        if self._tls_kind:
            c.error(f"TLS {self._tls_kind} handshake error: {text}")
        else:
            c.error(f"TLS handshake error: {text}")
        if self._tls is not None:
            self._tls.send_pending()
        c.close_connection("TLS Handshake Failure")

    def _tls_timeout(self) -> None:
        """nats-server's read deadline and its timer fire together: the read fails with an
        i/o timeout, the timer logs the timeout and an -ERR that the peer never sees (it
        would have to go through TLS)."""
        c: Any = self
        self._tls_timer = None
        if c.closed or self._state != _HANDSHAKE:
            return
        raw = self._tls.raw if self._tls is not None else c.transport
        local = raw.get_extra_info("sockname") or ("", 0)
        addr = f"{netutil.join_host_port(str(local[0]), int(local[1]))}->{netutil.join_host_port(c.host, c.port)}"
        if self._tls_kind:
            c.error(f"TLS {self._tls_kind} handshake error: read tcp {addr}: i/o timeout")
        else:
            c.error(f"TLS handshake error: read tcp {addr}: i/o timeout")
        c.error("TLS handshake timeout")
        if c.log.trace_enabled:
            c.trace("->> [-ERR Secure Connection - TLS Required]")
        c.close_connection("TLS Handshake Failure")

    def _tls_read(self, data: bytes) -> None:
        """Decrypt what arrived; the plaintext goes to the host's data_received."""
        c: Any = self
        tls = self._tls
        inc = self._incoming
        assert tls is not None and inc is not None
        if data:
            inc.write(data)
        read = tls.obj.read
        chunks = []
        eof = False
        try:
            while True:
                chunk = read(_READ)
                if not chunk:
                    eof = True
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            eof = True
        except ssl.SSLError as e:
            tls.send_pending()
            c.debug(f"TLS read error: {go_handshake_error(e)}")
            c.close_connection("Read Error")
            return
        tls.send_pending()  # key updates, session tickets
        if chunks:
            self._plain_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if eof and not c.closed:
            c.close_connection("Client Closed")

    def _tls_lost(self) -> None:
        """The peer went away: during the handshake that is a handshake error."""
        c: Any = self
        if self._tls_timer is not None:
            self._tls_timer.cancel()
            self._tls_timer = None
        if self._state == _HANDSHAKE and not c.closed:
            partial = self._seen_bytes and (self._head is None or bool(self._head))
            text = "unexpected EOF" if partial else "EOF"
            if self._tls_kind:
                c.error(f"TLS {self._tls_kind} handshake error: {text}")
            else:
                c.error(f"TLS handshake error: {text}")
            c.close_reason = "TLS Handshake Failure"

    # -- hooks of the host class

    def _tls_options(self) -> TLSOptions | None:
        raise NotImplementedError

    def _established(self) -> None:
        raise NotImplementedError

    def _plain_received(self, data: bytes) -> None:
        raise NotImplementedError

    def tls_state(self) -> tuple[str, str] | None:
        """(version, cipher suite) once established, as /connz shows them."""
        if self._state != _OPEN or self._tls is None:
            return None
        cipher = self._tls.obj.cipher()
        return tls_version_name(self._tls.obj.version()), cipher_suite_name(cipher[0]) if cipher else ""

    def peer_cert_der(self) -> bytes | None:
        if self._state != _OPEN or self._tls is None:
            return None
        return self._tls.obj.getpeercert(binary_form=True)

    def peer_chain_der(self) -> list[bytes]:
        """The certificates the peer sent, leaf first (only the leaf before Python 3.13)."""
        if self._state != _OPEN or self._tls is None:
            return []
        obj: Any = self._tls.obj
        chain = getattr(obj, "get_unverified_chain", None)
        if chain is not None:
            try:
                certs_ = chain() or []
                der_encoding = ssl._ssl.ENCODING_DER  # type: ignore[attr-defined]
                return [c.public_bytes(der_encoding) if hasattr(c, "public_bytes") else c for c in certs_]
            except (ssl.SSLError, ValueError, AttributeError):
                pass
        der = obj.getpeercert(binary_form=True)
        return [der] if der else []

    def peer_cert(self) -> dict[str, Any]:
        """The verified peer certificate as ssl decodes it (empty when not verified)."""
        if self._state != _OPEN or self._tls is None:
            return {}
        return self._tls.obj.getpeercert() or {}


class TLSClientConnection(_TLSMixin, ClientConnection):
    """A client on a listener with TLS configured (tls {} or --tls)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._accepted(transport)
        srv = self.server
        opts = srv.opts
        tls = opts.tls
        assert tls is not None
        fallback = tls.handshake_first_fallback if tls.handshake_first else 0.0
        if tls.handshake_first:
            self.tls_first = True
        else:
            self.enqueue(wire.info(srv.client_info(self, first=True)))
        if not self._register():
            return
        self.flush()
        if fallback > 0:
            self._state = _WAIT_FIRST
            self._tls_timer = srv.loop.call_later(fallback, self._no_tls_first)
        elif not self.tls_first and opts.allow_non_tls:
            self._peek_start()
        else:
            self._start_client_handshake(b"")

    def _tls_options(self) -> TLSOptions | None:
        return self.server.opts.tls

    def _start_client_handshake(self, pre: bytes) -> None:
        self.debug("Starting TLS client connection handshake")
        srv = self.server
        self._begin_handshake(srv.tls_context, srv.opts.tls_timeout, pre=pre)

    def _no_tls_first(self) -> None:
        """handshake_first with a fallback: the client said nothing, so it waits for INFO."""
        self._tls_timer = None
        if self.closed:
            return
        self.tls_first = False
        self.enqueue(wire.info(self.server.client_info(self, first=True)))
        self.flush()
        if self.server.opts.allow_non_tls:
            self._peek_start()
        else:
            self._start_client_handshake(b"")

    def _peek_start(self) -> None:
        # nats-server reads 6 bytes (or waits the TLS timeout) to see what the client speaks.
        self._state = _PEEK
        self._peeked = b""
        self._tls_timer = self.server.loop.call_later(self.server.opts.tls_timeout, self._peek_done)

    def _peek_done(self) -> None:
        self._tls_timer = None
        if self.closed or self._state != _PEEK:
            return
        pre, self._peeked = self._peeked, b""
        if pre[:1] == b"\x16":
            self._start_client_handshake(pre)
            return
        self._state = _PLAIN
        self._start_timers()
        if pre:
            ClientConnection.data_received(self, pre)

    def data_received(self, data: bytes) -> None:
        st = self._state
        if st == _OPEN:
            self._tls_read(data)
        elif st == _PLAIN:
            ClientConnection.data_received(self, data)
        elif st == _HANDSHAKE:
            self._step_handshake(data)
        elif st == _WAIT_FIRST:
            if self._tls_timer is not None:
                self._tls_timer.cancel()
                self._tls_timer = None
            self._start_client_handshake(data)
        elif st == _PEEK:
            self._peeked += data
            if len(self._peeked) >= 6:
                if self._tls_timer is not None:
                    self._tls_timer.cancel()
                self._peek_done()

    def _plain_received(self, data: bytes) -> None:
        ClientConnection.data_received(self, data)

    def _established(self) -> None:
        if self.tls_first:
            self.enqueue(wire.info(self.server.client_info(self, first=True, tls_first=True)))
            self.flush()
        self._start_timers()
        self._tls_log_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._tls_lost()
        super().connection_lost(exc)

    def on_closed(self, reason: str) -> None:
        if self._tls_timer is not None:
            self._tls_timer.cancel()
            self._tls_timer = None
        super().on_closed(reason)


class TLSRouteConnection(_TLSMixin, RouteConnection):
    """A route with `cluster { tls {} }`: the handshake comes first, in both directions."""

    _tls_kind = "route"

    def __init__(self, cluster: RouteMesh, *, url: RouteURL | None = None, explicit: bool = False,
                 server_name: str = "") -> None:
        super().__init__(cluster, url=url, explicit=explicit)
        self._server_name = server_name

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._accepted(transport)
        cl = self.cluster
        cl.track(self)
        timeout = cl.opts.tls_timeout
        if self.did_solicit:
            self.debug("Starting TLS route client handshake")
            self._begin_handshake(cl.tls_client_context, timeout, server_hostname=self._server_name)
        else:
            self.debug("Starting TLS route server handshake")
            self._begin_handshake(cl.tls_server_context, timeout)

    def _tls_options(self) -> TLSOptions | None:
        return self.cluster.opts.tls

    def data_received(self, data: bytes) -> None:
        if self._state == _OPEN:
            self._tls_read(data)
        else:
            self._step_handshake(data)

    def _plain_received(self, data: bytes) -> None:
        RouteConnection.data_received(self, data)

    def _established(self) -> None:
        self._tls_log_complete()
        self._start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._tls_lost()
        super().connection_lost(exc)

    def on_closed(self, reason: str) -> None:
        if self._tls_timer is not None:
            self._tls_timer.cancel()
            self._tls_timer = None
        super().on_closed(reason)
