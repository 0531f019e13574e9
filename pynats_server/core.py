"""The server as its parts see it: `ServerCore`, what connection kinds and services use of
the server (server.Server is the one implementation).

Connection kinds (client.py, cluster.py, leafnodes.py, wsconn.py ...) and services
(monitor.py, sysacc.py, operator.py, jetstream/ ...) are handed the server and type it as
`ServerCore`, so none of them imports server.py: imports run one way, from the command line
and embedding down through server.py to the kinds and services, then to this interface, the
accounts and the connection base, and below them the options and the sans-IO protocol
(docs/DESIGN.md, "Layers"). Lower modules that need less declare less: the connection base
asks for a `connection.ConnHost`, an account for an `accounts.AccountHost`.

What sits above this layer (the listeners of each kind, the services, the connections
themselves) is typed `Any` here, and typed where it is used.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .accounts import Account, AccountHost
from .connection import ConnHost

if TYPE_CHECKING:
    from .auth import Authenticator
    from .log import Logger
    from .options import Options
    from .sublist import Sublist, Subscription


class ConnectionKind(Protocol):
    """A kind of connection beside the TCP clients (routes, leaf nodes, websocket clients):
    its listener and its connections, as the server drives and counts them. The server
    registers each configured kind in `kinds`, in the order nats-server starts them."""

    async def start(self) -> None: ...  # bind the port and log it
    async def serve(self) -> None: ...  # accept (once the server's INFO is built)
    def ready(self) -> None: ...  # the server is ready: connect out (routes, remotes)
    def stop_accepting(self) -> None: ...  # lame duck mode
    async def shutdown(self) -> None: ...
    def connections(self) -> list[Any]: ...  # its own (websocket clients are in `clients`)
    def closed_totals(self) -> tuple[int, int, int, int]: ...  # in/out msgs/bytes of closed ones


class SystemEvents(Protocol):
    """What connections tell the system account (sysacc.SystemServices)."""

    def client_connected(self, c: Any) -> None: ...
    def client_closed(self, c: Any) -> None: ...
    def setup_imports(self, acc: Account) -> None: ...


class ServerCore(ConnHost, AccountHost, Protocol):
    """The server's state and the operations its parts share."""

    opts: Options
    log: Logger
    loop: asyncio.AbstractEventLoop
    id: str
    name: str
    xkey: Any
    host: str
    port: int
    start_time: float

    # accounts
    accounts: dict[str, Account]
    accounts_b: dict[bytes, Account]
    global_account: Account
    system_account: Account | None
    sublist: Sublist
    auth: Authenticator

    # connections (client.ClientConnection) and what is kept of those that closed
    clients: dict[int, Any]
    closed_clients: deque[Any]
    total_connections: int

    # the kinds and services beside the clients (None when not configured)
    cluster: Any  # cluster.Cluster
    leafnodes: Any  # leafnodes.LeafNodes
    websocket: Any  # wsconn.WebsocketListener
    monitor: Any  # monitor_http.Monitor
    jetstream: Any  # jetstream.engine.JetStream
    operator: Any  # operator.OperatorMode
    monitoring: Any  # monitor.Monitoring
    sysacc: Any  # sysacc.SystemServices (a SystemEvents)
    tls_context: Any

    # flushing: connections with output queued during a read are flushed after it
    dirty: list[Any]
    reading: bool
    throttled: bool

    # counters of /varz
    slow_consumers: int
    slow_by_kind: dict[str, int]
    stale_connections: int
    stale_by_kind: dict[str, int]
    stalls: int

    # lifecycle and configuration reload
    running: bool
    shutting_down: bool
    lame_duck: bool
    config_time: float
    config_digest: str
    reload_source: Callable[[], Options] | None
    reloading: Any
    info_base: dict[str, Any]

    def next_cid(self) -> int: ...
    def register_account(self, acc: Account) -> Account: ...
    def lookup_account(self, name: str) -> Account | None: ...
    def route_account(self, name: bytes, route: Any, *, fetch: bool = False) -> Account | None: ...
    def cluster_name(self) -> str: ...
    def client_connect_urls(self) -> list[str]: ...
    def add_client(self, c: Any) -> bool: ...
    def remove_client(self, c: Any) -> None: ...
    def client_info(self, c: Any, *, ldm: bool = False, first: bool = False,
                    tls_first: bool = False) -> dict[str, Any]: ...
    def send_async_info_to_clients(self, *, ldm: bool = False, client_type: str = "") -> None: ...
    def tls_mapped_user(self, c: Any, co: dict[str, Any]) -> str | None: ...
    def local_interest(self, acc: Account, sub: Subscription, delta: int) -> None: ...
    def mark_dirty(self, c: Any) -> None: ...
    def schedule_flush(self) -> None: ...
    def flush_dirty(self) -> None: ...
    def totals(self) -> tuple[int, int, int, int]: ...
    def build_info(self) -> None: ...
    def write_ports_file(self) -> None: ...
    def remove_ports_file(self) -> None: ...
    def load_tls(self) -> None: ...
