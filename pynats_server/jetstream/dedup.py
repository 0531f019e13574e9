"""Message de-duplication (Nats-Msg-Id) within a stream's duplicate window.

The ids seen within the window map to the sequence that stored them; entries leave when the
window has passed since their message's time (nats-server's ddmap/ddarr and its purge timer),
so the table holds at most the ids of one window. After a restart the table is rebuilt from
the stored messages of the last window (rebuildDedupe). Sans-IO: the stream owns the timer and
calls `purge(now)`.
"""

from __future__ import annotations

from collections import deque


class Dedup:
    __slots__ = ("window", "ids", "order")

    def __init__(self, window_ns: int) -> None:
        self.window = window_ns
        self.ids: dict[bytes, int] = {}  # msg id -> sequence
        self.order: deque[tuple[bytes, int, int]] = deque()  # (id, seq, ts) in store order

    def __len__(self) -> int:
        return len(self.ids)

    def check(self, msg_id: bytes) -> int:
        """The sequence that stored `msg_id` within the window, or 0."""
        return self.ids.get(msg_id, 0) if self.ids else 0

    def add(self, msg_id: bytes, seq: int, ts: int) -> bool:
        """Remember an id; True when the purge timer needs arming (the table was empty)."""
        if self.window <= 0:
            return False
        first = not self.order
        self.ids[msg_id] = seq
        self.order.append((msg_id, seq, ts))
        return first

    def purge(self, now: int) -> int | None:
        """Forget ids whose window has passed; the ns until the next purge, None if empty."""
        order = self.order
        window = self.window
        ids = self.ids
        while order:
            msg_id, seq, ts = order[0]
            if now - ts < window:
                # Never sooner than 50 ms, as nats-server.
                return max(window - (now - ts), 50_000_000)
            order.popleft()
            if ids.get(msg_id) == seq:
                del ids[msg_id]
        ids.clear()
        return None
