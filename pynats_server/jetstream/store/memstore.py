"""Memory storage for a stream (nats-server memstore.go semantics).

The index is the shared one (engine.py: 28 bytes of arrays per message). Headers and payload
are appended to 1 MiB ``bytearray`` segments; a location is ``segment << 32 | offset``. A
segment whose messages are all gone is dropped; one that is mostly dead (live bytes under a
quarter, not the segment being written) is rewritten with its live messages only, so memory
stays proportional to what is stored whatever the delete pattern (KV updates, TTLs).
"""

from __future__ import annotations

import os
from time import time_ns

from .base import (
    ConsumerStore,
    ConsumerStoreConfig,
    ErrStoreClosed,
    StorageType,
    StoreConfig,
)
from .consumer import ConsumerMemStore
from .engine import NOLOC, IndexedStore

SEGMENT_SIZE = 1 << 20
# A segment smaller than this is not worth rewriting.
_COMPACT_MIN = 64 * 1024


class MemStore(IndexedStore):
    """A stream's messages in memory."""

    storage_type = StorageType.MEMORY

    def __init__(self, cfg: StoreConfig) -> None:
        if cfg.storage != StorageType.MEMORY:
            raise ValueError("memStore requires memory storage type in config")
        super().__init__(cfg)
        self._segs: dict[int, bytearray] = {}
        self._seg_live: dict[int, int] = {}
        self._seg_lo: dict[int, int] = {}
        self._seg_hi: dict[int, int] = {}
        self._cur = -1
        self._next_seg = 0
        if cfg.first_seq > 0:
            self._purge(cfg.first_seq)

    def _msg_size(self, slen: int, hlen: int, mlen: int) -> int:
        # base.mem_store_msg_size, inline: this runs for every store and removal.
        return slen + hlen + mlen + 16

    # ------------------------------------------------------------------ payload hooks

    def _new_segment(self, seq: int) -> bytearray:
        g = self._next_seg
        self._next_seg += 1
        seg = bytearray()
        self._segs[g] = seg
        self._seg_live[g] = 0
        self._seg_lo[g] = seq
        self._seg_hi[g] = seq
        self._cur = g
        return seg

    def _p_write(
        self, seq: int, ts: int, subj: bytes, sid: int, hdr: bytes, msg: bytes, ttl: int
    ) -> int:
        n = len(hdr) + len(msg)
        if n == 0:
            return NOLOC
        seg = self._segs.get(self._cur)
        if seg is None or (seg and len(seg) + n > SEGMENT_SIZE):
            seg = self._new_segment(seq)
        g = self._cur
        off = len(seg)
        if hdr:
            seg += hdr
        seg += msg
        self._seg_live[g] += n
        self._seg_hi[g] = seq
        return g << 32 | off

    def store_fast(self, subject: bytes, msg: bytes) -> tuple[int, int] | None:
        """store_msg for a message without headers or TTL when no limit applies."""
        sid = self._fast_seq(subject)
        ml = len(msg)
        if not sid or not ml:
            return None
        seg = self._segs.get(self._cur)
        if seg is None or (seg and len(seg) + ml > SEGMENT_SIZE):
            return None
        ts = time_ns()
        seq = self._last + 1
        g = self._cur
        off = len(seg)
        seg += msg
        self._seg_live[g] += ml
        self._seg_hi[g] = seq
        size = len(subject) + ml + 16
        self._index_add_fast(seq, ts, sid, g << 32 | off, ml, size)
        scb = self._scb
        if scb is not None:
            scb(1, size, seq, subject)
        return seq, ts

    def _p_read(self, i: int) -> tuple[bytes, bytes]:
        hl = self._hl[i]
        ml = self._ml[i]
        if hl + ml == 0:
            return b"", b""
        loc = self._loc[i]
        seg = self._segs[loc >> 32]
        off = loc & 0xFFFFFFFF
        if hl:
            return bytes(seg[off : off + hl]), bytes(seg[off + hl : off + hl + ml])
        return b"", bytes(seg[off : off + ml])

    def _p_removed(self, seq: int, i: int, slen: int) -> None:
        n = self._hl[i] + self._ml[i]
        if n == 0:
            return
        g = self._loc[i] >> 32
        # Nothing to keep for a removed message: the index may drop its position.
        self._loc[i] = NOLOC
        live = self._seg_live[g] - n
        self._seg_live[g] = live
        if g == self._cur:
            return
        if live == 0:
            del self._segs[g], self._seg_live[g], self._seg_lo[g], self._seg_hi[g]
            return
        seg = self._segs[g]
        if live * 4 < len(seg) and len(seg) >= _COMPACT_MIN:
            self._compact_segment(g, seg)

    def _compact_segment(self, g: int, seg: bytearray) -> None:
        """Rewrite segment ``g`` with its live messages only (their offsets change)."""
        sida, loca, hla, mla = self._sid, self._loc, self._hl, self._ml
        lo = self._pos_ge(max(self._seg_lo[g], self._first))
        hi = self._pos_end(self._seg_hi[g])
        new = bytearray()
        top = g << 32
        for i in range(lo, hi):
            if sida[i]:
                loc = loca[i]
                if loc >> 32 == g:
                    off = loc & 0xFFFFFFFF
                    n = hla[i] + mla[i]
                    loca[i] = top | len(new)
                    new += seg[off : off + n]
        self._segs[g] = new

    def _p_erase(self, seq: int, i: int) -> None:
        n = self._hl[i] + self._ml[i]
        if n:
            loc = self._loc[i]
            off = loc & 0xFFFFFFFF
            self._segs[loc >> 32][off : off + n] = os.urandom(n)

    def _p_reset(self) -> None:
        self._segs.clear()
        self._seg_live.clear()
        self._seg_lo.clear()
        self._seg_hi.clear()
        self._cur = -1

    def _p_truncated(self, seq: int) -> None:
        pass

    def memory_usage(self) -> int:
        """Bytes held by the index arrays and the segments (not the subject table)."""
        arrays = (self._sid, self._ts, self._loc, self._hl, self._ml)
        total = sum(a.buffer_info()[1] * a.itemsize for a in arrays)
        return total + sum(len(s) for s in self._segs.values())

    # ------------------------------------------------------------------ lifecycle

    def consumer_store(
        self, name: str, cfg: ConsumerStoreConfig, created: int = 0
    ) -> ConsumerStore:
        if self._closed:
            raise ErrStoreClosed()
        if not name:
            raise ValueError("bad consumer config")
        o = ConsumerMemStore(self, cfg)
        self.add_consumer(o)
        return o

    def stop(self) -> None:
        if self._closed:
            return
        self._clear_all(self._last + 1)
        self._p_reset()
        self._closed = True

    def delete(self) -> None:
        self.stop()
