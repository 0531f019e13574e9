"""An account's JetStream (JsAccount): its limits, its streams, what they use; and what it and
its streams, consumers and the API use of the server's JetStream (JetStreamPort).

engine.JetStream owns the accounts; they and everything below name it only through
JetStreamPort (a typing.Protocol that engine.JetStream satisfies, checked by mypy where it
hands itself over), so that no module below engine.py imports it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .stream_config import AccountLimits, StreamEnv

if TYPE_CHECKING:
    from ..accounts import Account
    from ..core import ServerCore
    from ..options import JetStreamLimits, JetStreamOptions


class JetStreamPort(Protocol):
    """What of engine.JetStream its accounts, streams, consumers and the API use."""

    server: ServerCore
    opts: JetStreamOptions
    store_dir: str
    max_memory: int  # the server's limits
    max_storage: int
    mem_used: int  # what all streams use (a stream adds what it stores)
    store_used: int
    api_total: int  # API statistics
    api_errors: int
    atomic_inflight: int  # atomic batches being staged, all streams

    @property
    def accounts(self) -> Mapping[str, JsAccount]: ...

    def limits_exceeded(self, memory: bool) -> bool: ...

    def resources_exceeded_error(self, memory: bool) -> None: ...


class JsAccount:
    """An account's JetStream: its limits, its streams, what they use."""

    def __init__(self, js: JetStreamPort, account: Account, limits: JetStreamLimits) -> None:
        self.js = js
        self.account = account
        self.limits = limits
        self.streams: dict[str, Any] = {}  # name -> stream.Stream
        self.store_dir = os.path.join(js.store_dir, account.name)
        self.mem_used = 0
        self.store_used = 0
        self.api_total = 0
        self.api_errors = 0
        self.has_limits = limits.max_memory >= 0 or limits.max_storage >= 0

    def usage(self) -> tuple[int, int]:
        """(memory, storage) bytes used by the account's streams."""
        return self.mem_used, self.store_used

    def add_usage(self, memory: bool, delta: int) -> None:
        """A stream's store grew or shrank (its storage-update callback)."""
        if memory:
            self.mem_used += delta
            self.js.mem_used += delta
        else:
            self.store_used += delta
            self.js.store_used += delta

    def would_exceed(self, memory: bool, slen: int, hlen: int, mlen: int) -> bool:
        """wouldExceedLimits: storing a message of these sizes passes the account's limit."""
        lim = self.limits
        if memory:
            return lim.max_memory >= 0 and self.mem_used + slen + hlen + mlen + 16 > lim.max_memory
        size = 22 + slen + mlen + 8 + (4 + hlen if hlen else 0)
        return lim.max_storage >= 0 and self.store_used + size > lim.max_storage

    def reserved(self) -> tuple[int, int]:
        """(memory, storage) reserved by streams with max_bytes (reservedStorage)."""
        mem = sto = 0
        for s in self.streams.values():
            mb = s.config["max_bytes"]
            if mb > 0:
                if s.is_memory:
                    mem += mb
                else:
                    sto += mb
        return mem, sto

    def env(self) -> StreamEnv:
        """What the stream configuration checks need."""
        lim = self.limits
        js = self.js
        mem_res = sto_res = 0
        for a in js.accounts.values():
            m, s = a.reserved()
            mem_res += m
            sto_res += s
        return StreamEnv(
            streams={n: s.config for n, s in self.streams.items()},
            limits=AccountLimits(lim.max_memory, lim.max_storage, lim.max_streams, lim.max_consumers,
                                 lim.max_ack_pending, lim.memory_max_stream_bytes,
                                 lim.storage_max_stream_bytes, lim.max_bytes_required),
            mem_reserved=mem_res,
            store_reserved=sto_res,
            max_memory=js.max_memory,
            max_store=js.max_storage,
        )  # fmt: skip

    def num_consumers(self) -> int:
        """Consumers of the account's streams, with the internal ones of mirrors and sources
        (nats-server counts those in $JS.API.INFO, not in stream states)."""
        return sum(len(s.consumers) + len(s.taps) for s in self.streams.values())

    def limits_json(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "max_memory": lim.max_memory,
            "max_storage": lim.max_storage,
            "max_streams": lim.max_streams,
            "max_consumers": lim.max_consumers,
            "max_ack_pending": lim.max_ack_pending,
            "memory_max_stream_bytes": lim.memory_max_stream_bytes,
            "storage_max_stream_bytes": lim.storage_max_stream_bytes,
            "max_bytes_required": lim.max_bytes_required,
        }

    def stop(self) -> None:
        for s in list(self.streams.values()):
            s.stop()
