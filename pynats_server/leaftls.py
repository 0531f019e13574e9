"""TLS on leaf node connections (`leafnodes { tls {} }`, a remote's `tls {}`, `tls://` URLs).

As nats-server does for leafs, the accepting side sends its INFO in plaintext and then
expects the handshake (like a client connection); the soliciting side reads that INFO and,
when the hub requires TLS or the remote is configured for it, starts the handshake and sends
its CONNECT over TLS. The TLS machinery is tlsconn.py's.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from . import tlsctx
from .leafnode import LeafConnection, LeafManager, LeafRemote
from .protocol.parser import ProtocolError
from .tlsconn import _HANDSHAKE, _OPEN, _TLSMixin

if TYPE_CHECKING:
    from .options import LeafURL, TLSOptions

_PLAIN = -1  # soliciting side, before the hub's INFO


class TLSLeafConnection(_TLSMixin, LeafConnection):
    _tls_kind = "leafnode"

    def __init__(self, leafs: LeafManager, remote: LeafRemote | None = None, url: LeafURL | None = None) -> None:
        super().__init__(leafs, remote, url)
        self._state = _PLAIN if remote is not None else _HANDSHAKE

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        LeafConnection.connection_made(self, transport)
        if not self.did_solicit and not self.closed:
            o = self.leafs.opts.tls
            assert o is not None
            self.debug("Starting TLS leafnode server handshake")
            self._begin_handshake(self.leafs.tls_server_context, o.handshake_timeout)

    def _tls_options(self) -> TLSOptions | None:
        if self.remote is not None:
            return self.remote.opts.tls
        return self.leafs.opts.tls

    def _start_tls(self, required: bool) -> bool:
        st = self.remote
        assert st is not None
        if not (required or st.opts.tls is not None or st.opts.tls_required):
            return False
        ctx = client_context(st.opts.tls)
        url = self.url
        self.debug("Starting TLS leafnode client handshake")
        timeout = st.opts.tls.handshake_timeout if st.opts.tls is not None else 2.0
        self._begin_handshake(ctx, timeout, server_hostname=url.host if url is not None else None)
        return True

    def data_received(self, data: bytes) -> None:
        if self._state == _OPEN:
            self._tls_read(data)
        elif self._state == _PLAIN:
            LeafConnection.data_received(self, data)
        else:
            self._step_handshake(data)

    def _plain_received(self, data: bytes) -> None:
        LeafConnection.data_received(self, data)

    def _established(self) -> None:
        self._tls_log_complete()
        if self.did_solicit and not self.closed:
            try:
                self._connected_as_leaf()
            except ProtocolError:
                pass  # it closed the connection itself
            self.server.flush_dirty()

    def connection_lost(self, exc: Exception | None) -> None:
        self._tls_lost()
        super().connection_lost(exc)

    def on_closed(self, reason: str) -> None:
        if self._tls_timer is not None:
            self._tls_timer.cancel()
            self._tls_timer = None
        super().on_closed(reason)


def client_context(tls: TLSOptions | None) -> ssl.SSLContext:
    """A remote's context: its tls {} block, or the system's roots for `tls://` alone."""
    if tls is not None:
        return tlsctx.route_client_context(tls)
    ctx: Any = ssl.create_default_context()
    return ctx  # type: ignore[no-any-return]
