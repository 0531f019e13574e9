"""pynats-server: a pure-Python (asyncio) NATS server, wire-compatible with nats-server 2.x.

Embedding::

    import pynats_server

    async with pynats_server.Server() as srv:     # 127.0.0.1, random port
        print(srv.client_url)

    with pynats_server.ThreadedServer() as srv:   # for synchronous code
        print(srv.client_url)
"""

from __future__ import annotations

from .const import NATS_VERSION, __version__
from .options import ClusterOptions, Options, RouteURL, TLSOptions
from .server import Server
from .testing import ThreadedServer

__all__ = [
    "NATS_VERSION",
    "ClusterOptions",
    "Options",
    "RouteURL",
    "Server",
    "TLSOptions",
    "ThreadedServer",
    "__version__",
]
