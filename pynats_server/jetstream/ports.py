"""What the parts of a stream use of it, as typing.Protocols: consumer.py, sources.py and
direct.py name their stream through these, so that none of them imports stream.py (which
imports sources.py and direct.py, and owns the consumers). stream.Stream satisfies them
structurally; mypy checks it where a stream hands itself over. What the parts use of the
server's JetStream is jsaccount.JetStreamPort.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..accounts import Account
    from ..core import ServerCore
    from ..internal import InternalClient
    from .jsaccount import JetStreamPort, JsAccount
    from .store import StreamStore


class ConsumerStreamPort(Protocol):
    """What consumer.Consumer uses of its stream (the hooks of stream.py's "consumers" section)."""

    js: JetStreamPort
    account: Account
    name: str
    config: dict[str, Any]
    dir: str
    store: StreamStore
    client: InternalClient | None  # subscribes the consumer's acks and pull requests
    closed: bool

    def publish(self, subject: bytes, reply: bytes | None, hdr: bytes, payload: bytes) -> bool: ...

    def ack_msg(self, c: Any, seq: int) -> bool: ...

    def cleanup_no_interest(self, start: int = 0) -> None: ...

    def remove_consumer(self, c: Any) -> None: ...


class SourcingStreamPort(Protocol):
    """What sources.Sourcing uses of the stream that mirrors or sources (and, of its origins,
    `store`, `closed` and `taps`)."""

    jsa: JsAccount
    server: ServerCore
    config: dict[str, Any]
    store: StreamStore
    lseq: int
    closed: bool
    taps: list[Any]  # the sources copying this stream (sources._Source), told of stores

    def process(self, subject: bytes, reply: bytes | None, hdr: bytes, msg: bytes, *,
                sourced: bool = False, batch: bytes | None = None) -> int: ...

    def store_mirrored(self, subject: bytes, hdr: bytes, msg: bytes, seq: int, ts: int) -> None: ...


class DirectStreamPort(Protocol):
    """What direct get (direct.py) uses of the stream it answers for."""

    name: str
    store: StreamStore
    lseq: int

    def publish(self, subject: bytes, reply: bytes | None, hdr: bytes, payload: bytes) -> bool: ...
