"""Internal clients: the server's own subscribers inside an account.

An account's imports and the system account's request handlers subscribe like clients do, so
their interest goes through the same subscription index and, where it should, to the routes.
What differs is delivery: a message for an internal subscription is handed to a Python
callback instead of being written to a socket. Delivery plans never include them (see
delivery.build_plan), so the planned path of ordinary subjects is unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .sublist import Sublist, Subscription

if TYPE_CHECKING:
    from .log import Logger

# cb(sub, origin connection, account (accounts.Account), subject, reply, header length
# (-1: none), message including its headers and the trailing CRLF) -> whether the message
# was delivered on.
Callback = Callable[[Subscription, Any, Any, bytes, "bytes | None", int, Any], bool]


class SubjectSpace(Protocol):
    """What an internal client uses of its account (accounts.Account)."""

    name: str
    sublist: Sublist


class InternalHost(Protocol):
    """What an internal client uses of the server (core.ServerCore is the whole)."""

    log: Logger

    def next_cid(self) -> int: ...
    def local_interest(self, acc: Any, sub: Subscription, delta: int) -> None: ...


class InternalClient:
    """The subscriber behind internal subscriptions of one account."""

    internal = True
    closed = False
    echo = True
    headers = True
    no_responders = False
    perm_filter = None  # internal subscribers have no permissions to check

    def __init__(self, server: InternalHost, account: SubjectSpace, kind: str = "Account") -> None:
        self.server = server
        self.log = server.log
        self.account = account
        self.kind_name = kind
        self.cid = server.next_cid()
        self.subs: dict[bytes, Subscription] = {}
        self._callbacks: dict[bytes, tuple[Callback, bool]] = {}
        self._next_sid = 0
        self.user = ""
        self.name = ""
        self.lang = ""
        self.version = ""
        self.rtt = 0.0
        self.host = ""

    def subscribe(self, subject: bytes, cb: Callback, *, forward: bool = True,
                  queue: bytes | None = None) -> Subscription:
        """Add an internal subscription; `forward`: tell the routes about it; `queue`: a
        queue group (one member of the group gets each message)."""
        self._next_sid += 1
        sid = str(self._next_sid).encode()
        sub = Subscription(self, subject, queue, sid)
        self.account.sublist.insert(sub)
        self.subs[sid] = sub
        self._callbacks[sid] = (cb, forward)
        if forward:
            self.server.local_interest(self.account, sub, 1)
        return sub

    def remove_sub(self, sub: Subscription) -> None:
        if sub.closed:
            return
        sub.closed = True
        self.subs.pop(sub.sid, None)
        entry = self._callbacks.pop(sub.sid, None)
        self.account.sublist.remove(sub)
        if entry is not None and entry[1]:
            self.server.local_interest(self.account, sub, -1)

    def forwards(self, sub: Subscription) -> bool:
        """Whether the routes are told about this subscription."""
        entry = self._callbacks.get(sub.sid)
        return entry is not None and entry[1]

    def deliver(self, sub: Subscription, origin: Any, acc: Any, subject: bytes, reply: bytes | None,
                hdr: int, msg: Any) -> bool:
        entry = self._callbacks.get(sub.sid)
        if entry is None:
            return False
        return entry[0](sub, origin, acc, subject, reply, hdr, msg)

    def close(self) -> None:
        for sub in list(self.subs.values()):
            self.remove_sub(sub)

    def debug(self, text: str) -> None:
        if self.log.debug_enabled:
            self.log.debug(text)
