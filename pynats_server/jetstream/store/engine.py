"""The in-memory index both stores share, and every stream-store operation on top of it.

Per position, five parallel arrays hold the subject id, timestamp, payload location and
header/payload lengths (28 bytes a message, no Python object per message); a subject id of 0
marks a position without a live message (removed, skipped). While dense, position i is
sequence ``base + i``. When removals leave more dead positions than live ones (a KV bucket
whose oldest key never changes keeps the front in place), the arrays are compacted to the
live positions (and those the payload layer still needs) and a sixth array, ``_seqa``, holds
each position's sequence (sparse: lookups by binary search). Sequences not in the arrays
are holes.

Subjects are interned: id -> name, and per subject (count, first, last). ``first``/``last`` may
be stale after removals (then they are a lower/upper bound) and are fixed on use, as
nats-server's firstNeedsUpdate/lastNeedsUpdate.

The payload lives elsewhere: a subclass implements the ``_p_*`` hooks (memory segments in
memstore.py, block files in filestore.py). Public mutating operations end with ``_end_op()``,
where the file store writes what the operation changed.
"""

from __future__ import annotations

import bisect
import heapq
import time
from abc import ABC, abstractmethod
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from itertools import compress

from ...protocol.subjects import match_literal
from .base import (
    HDR_ROLLUP,
    ConsumerStore,
    ConsumerStoreConfig,
    DiscardPolicy,
    ErrMaxBytes,
    ErrMaxMsgs,
    ErrMaxMsgsPerSubject,
    ErrMsgTooLarge,
    ErrSequenceMismatch,
    ErrStoreClosed,
    ErrStoreEOF,
    ErrStoreMsgNotFound,
    ErrTooManyResults,
    ExpireResult,
    SimpleState,
    StorageType,
    StorageUpdateHandler,
    StoreConfig,
    StoredMsg,
    StreamState,
    header_value,
    is_subject_delete_marker,
    subject_delete_marker_header,
)
from .seqscan import count_value, find_nonzero, find_value, rfind_nonzero, rfind_value

NOLOC = 0xFFFFFFFFFFFFFFFF
_NS = 1_000_000_000
# A subject delete marker proposed for a message is proposed again after this long.
_SDM_RETRY = 2 * _NS
# Wildcard filters matched against the subject table are cached (a consumer asks again and
# again); the cache is bounded.
_MATCH_CACHE_MAX = 128
# Up to this many matching subjects, next/prev searches run per subject (bytes search).
_FEW_SUBJECTS = 16


def _fast_ok(cfg: StoreConfig) -> bool:
    """No limit a store has to enforce or check (store_fast applies)."""
    return cfg.max_msgs <= 0 and cfg.max_bytes <= 0 and cfg.max_msgs_per_subject <= 0


def is_all(filter: bytes) -> bool:
    return not filter or filter == b">"


def _is_literal(filter: bytes) -> bool:
    if b"*" not in filter and b">" not in filter:
        return True
    return all(t != b"*" and t != b">" for t in filter.split(b"."))


class _Match:
    """A cached filter match: the subject ids whose name matches (ids of subjects since removed
    may stay in ``sids``; their count is 0), and the position reached in the id log."""

    __slots__ = ("sids", "pos", "epoch")

    def __init__(self, sids: set[int], pos: int, epoch: int) -> None:
        self.sids = sids
        self.pos = pos
        self.epoch = epoch


class IndexedStore(ABC):
    """The StreamStore operations over the shared index (not thread-safe: one owner)."""

    storage_type: StorageType = StorageType.MEMORY
    # Above this many matching subjects, next/prev walk the sequences (tests lower it).
    _few_subjects = _FEW_SUBJECTS
    # Dead positions tolerated before the arrays are compacted (tests lower it).
    _compact_min = 4096

    def __init__(self, cfg: StoreConfig) -> None:
        self._cfg = replace(cfg)
        self._fast_ok = _fast_ok(cfg)
        self._closed = False
        self._scb: StorageUpdateHandler | None = None
        self._consumers = 0
        # When set, removals do not report one by one (bulk operations report a total).
        self._quiet = False
        self._quiet_msgs = 0
        self._quiet_bytes = 0
        self._reset_index()
        self._ttl: dict[int, int] = {}
        self._ttl_heap: list[tuple[int, int]] = []
        self._sdm_pending: dict[int, tuple[bool, int]] = {}
        self._sdm_totals: dict[int, int] = {}

    # ------------------------------------------------------------------ index primitives

    def _reset_index(self) -> None:
        self._first = 0
        self._last = 0
        self._last_ts = 0
        self._msgs = 0
        self._bytes = 0
        self._base = 0
        self._seqa: array[int] | None = None
        self._kept_dead = 0
        self._sid = array("I")
        self._ts = array("q")
        self._loc = array("Q")
        self._hl = array("I")
        self._ml = array("I")
        self._sids: dict[bytes, int] = {}
        self._names: list[bytes | None] = [None]
        self._ss_n: list[int] = [0]
        self._ss_f: list[int] = [0]
        self._ss_l: list[int] = [0]
        self._stale_f: set[int] = set()
        self._stale_l: set[int] = set()
        self._free: list[int] = []
        self._sid_log: list[int] = []
        self._sid_epoch = getattr(self, "_sid_epoch", 0) + 1
        self._matches: dict[bytes, _Match] = {}

    def _clear_arrays(self, base: int) -> None:
        self._base = base
        self._seqa = None
        self._kept_dead = 0
        del self._sid[:]
        del self._ts[:]
        del self._loc[:]
        del self._hl[:]
        del self._ml[:]

    @abstractmethod
    def _msg_size(self, slen: int, hlen: int, mlen: int) -> int:
        """The accounted size of a message (nats-server's formula for this storage type)."""

    def _intern(self, subj: bytes) -> int:
        sid = self._sids.get(subj)
        if sid is not None:
            return sid
        subj = bytes(subj)
        if self._free:
            sid = self._free.pop()
            self._names[sid] = subj
            self._ss_n[sid] = 0
        else:
            sid = len(self._names)
            self._names.append(subj)
            self._ss_n.append(0)
            self._ss_f.append(0)
            self._ss_l.append(0)
        self._sids[subj] = sid
        log = self._sid_log
        log.append(sid)
        if len(log) > 1024 + 2 * len(self._sids):
            # Cached matches re-match from scratch rather than replay a long log.
            log.clear()
            self._sid_epoch += 1
        return sid

    def _index_add(self, seq: int, ts: int, sid: int, loc: int, hl: int, ml: int, ttl: int) -> int:
        """Index a new message (seq > last). Returns its accounted size."""
        sida = self._sid
        if self._msgs == 0:
            self._first = seq
            if sida:
                self._clear_arrays(seq)
            else:
                self._base = seq
        sa = self._seqa
        if sa is not None:
            sa.append(seq)
        else:
            n = len(sida)
            gap = seq - self._base - n
            if gap > 64:
                # A long run of skipped sequences: go sparse rather than store holes.
                self._seqa = sa = array("Q", range(self._base, self._base + n))
                sa.append(seq)
            elif gap > 0:
                # Skipped sequences: holes; timestamps stay ordered for get_seq_from_time.
                sida.frombytes(bytes(4 * gap))
                self._ts.frombytes(array("q", [ts]).tobytes() * gap)
                self._loc.frombytes(b"\xff" * (8 * gap))
                self._hl.frombytes(bytes(4 * gap))
                self._ml.frombytes(bytes(4 * gap))
        sida.append(sid)
        self._ts.append(ts)
        self._loc.append(loc)
        self._hl.append(hl)
        self._ml.append(ml)
        size = self._msg_size(len(self._names[sid] or b""), hl, ml)
        self._msgs += 1
        self._bytes += size
        self._last = seq
        self._last_ts = ts
        ss_n = self._ss_n
        cnt = ss_n[sid] + 1
        ss_n[sid] = cnt
        self._ss_l[sid] = seq
        if self._stale_l:
            self._stale_l.discard(sid)
        if cnt == 1:
            self._ss_f[sid] = seq
            if self._stale_f:
                self._stale_f.discard(sid)
        if ttl:
            self._ttl[seq] = ttl
        return size

    def _index_add_fast(self, seq: int, ts: int, sid: int, loc: int, ml: int, size: int) -> None:
        """_index_add for store_fast: a message without headers or TTL, dense arrays, the
        stream not empty, the subject already known."""
        self._sid.append(sid)
        self._ts.append(ts)
        self._loc.append(loc)
        self._hl.append(0)
        self._ml.append(ml)
        self._msgs += 1
        self._bytes += size
        self._last = seq
        self._last_ts = ts
        ss_n = self._ss_n
        cnt = ss_n[sid] + 1
        ss_n[sid] = cnt
        self._ss_l[sid] = seq
        if self._stale_l:
            self._stale_l.discard(sid)
        if cnt == 1:
            self._ss_f[sid] = seq
            if self._stale_f:
                self._stale_f.discard(sid)

    def _fast_seq(self, subj: bytes) -> int:
        """The sid for store_fast, or 0 when only the general path can store the next message
        (limits to apply, empty or sparse index, a skipped sequence, a new subject)."""
        if not self._fast_ok or not self._msgs or self._seqa is not None or self._closed:
            return 0
        if self._base + len(self._sid) != self._last + 1:
            return 0
        return self._sids.get(subj, 0)

    def _remove(self, seq: int, secure: bool = False) -> bool:
        """Remove the live message at ``seq``. Reports it (storage-update callback) unless a
        bulk operation is running."""
        sida = self._sid
        if self._seqa is None:
            i = seq - self._base
            if i < 0 or i >= len(sida):
                return False
        else:
            i = self._pos(seq)
            if i < 0:
                return False
        sid = sida[i]
        if not sid:
            return False
        hl = self._hl[i]
        ml = self._ml[i]
        name = self._names[sid] or b""
        size = self._msg_size(len(name), hl, ml)
        if secure:
            self._p_erase(seq, i)
        sida[i] = 0
        self._msgs -= 1
        self._bytes -= size
        # Per subject.
        cnt = self._ss_n[sid] - 1
        self._ss_n[sid] = cnt
        if cnt == 0:
            del self._sids[name]
            self._names[sid] = None
            self._free.append(sid)
            self._stale_f.discard(sid)
            self._stale_l.discard(sid)
        else:
            f_ok = sid not in self._stale_f
            l_ok = sid not in self._stale_l
            if f_ok and seq == self._ss_f[sid]:
                self._ss_f[sid] = seq + 1
                self._stale_f.add(sid)
                f_ok = False
            if l_ok and seq == self._ss_l[sid]:
                self._ss_l[sid] = seq - 1
                self._stale_l.add(sid)
                l_ok = False
            if cnt == 1:
                if l_ok:
                    self._ss_f[sid] = self._ss_l[sid]
                    self._stale_f.discard(sid)
                elif f_ok:
                    self._ss_l[sid] = self._ss_f[sid]
                    self._stale_l.discard(sid)
        self._p_removed(seq, i, len(name))
        if self._ttl:
            self._ttl.pop(seq, None)
        if self._sdm_pending and self._sdm_pending.pop(seq, None) is not None:
            left = self._sdm_totals.get(sid, 0) - 1
            if left > 0:
                self._sdm_totals[sid] = left
            else:
                self._sdm_totals.pop(sid, None)
        if seq == self._first:
            self._advance_first(i)
        else:
            # Compact when dead positions outnumber live ones (and twice those kept last time,
            # so that positions the file store still needs do not make it run every time).
            dead = len(sida) - self._msgs
            if dead > self._compact_min and dead > self._msgs + 2 * self._kept_dead:
                self._compact_index()
        if self._quiet:
            self._quiet_msgs += 1
            self._quiet_bytes += size
        elif self._scb is not None:
            self._scb(-1, -size, seq, name)
        return True

    def _advance_first(self, i: int) -> None:
        """``first`` (at position ``i``) was removed: the next live sequence (or last + 1)
        becomes first."""
        if self._msgs == 0:
            self._first = self._last + 1
            return
        sida = self._sid
        n = len(sida)
        j = i + 1
        if j >= n or not sida[j]:  # usually the next one is there (discard old)
            j = find_nonzero(sida, j, n)
            if j < 0:
                self._first = self._last + 1
                return
        sa = self._seqa
        self._first = self._base + j if sa is None else sa[j]
        if j > 4096 and j * 2 > n:
            self._trim_front(j)

    def _trim_front(self, k: int) -> None:
        del self._sid[:k]
        del self._ts[:k]
        del self._loc[:k]
        del self._hl[:k]
        del self._ml[:k]
        if self._seqa is None:
            self._base += k
        else:
            del self._seqa[:k]
            self._kept_dead = max(0, self._kept_dead - k)

    def _keep_positions(self, n: int) -> None:
        """Keep the first ``n`` positions only."""
        for a in (self._sid, self._ts, self._loc, self._hl, self._ml):
            del a[n:]
        if self._seqa is not None:
            del self._seqa[n:]

    # Positions. Dense: position = seq - base. Sparse: _seqa[position] = seq.

    def _pos(self, seq: int) -> int:
        """The position of ``seq``, or -1."""
        sa = self._seqa
        if sa is None:
            i = seq - self._base
            return i if 0 <= i < len(self._sid) else -1
        i = bisect.bisect_left(sa, seq)
        return i if i < len(sa) and sa[i] == seq else -1

    def _pos_ge(self, seq: int) -> int:
        """The first position whose sequence is >= ``seq`` (len when none)."""
        sa = self._seqa
        if sa is None:
            i = seq - self._base
            return 0 if i < 0 else min(i, len(self._sid))
        return bisect.bisect_left(sa, seq)

    def _pos_end(self, seq: int) -> int:
        """One past the last position whose sequence is <= ``seq``."""
        sa = self._seqa
        if sa is None:
            i = seq - self._base + 1
            return 0 if i < 0 else min(i, len(self._sid))
        return bisect.bisect_right(sa, seq)

    def _seq_at(self, i: int) -> int:
        sa = self._seqa
        return self._base + i if sa is None else sa[i]

    def _compact_index(self) -> None:
        """Keep the live positions and those whose payload is still stored (loc set): the
        file store needs the latter until their block is rewritten or deleted."""
        sida, loca = self._sid, self._loc
        lo = self._pos_ge(self._first)
        keep = [bool(v) or loc != NOLOC for v, loc in zip(sida[lo:], loca[lo:], strict=True)]
        seqs: Iterable[int] = (
            self._seqa[lo:]
            if self._seqa is not None
            else range(self._base + lo, self._base + len(sida))
        )
        self._seqa = array("Q", compress(seqs, keep))
        self._sid = array("I", compress(sida[lo:], keep))
        self._ts = array("q", compress(self._ts[lo:], keep))
        self._loc = array("Q", compress(loca[lo:], keep))
        self._hl = array("I", compress(self._hl[lo:], keep))
        self._ml = array("I", compress(self._ml[lo:], keep))
        self._kept_dead = len(self._sid) - self._msgs

    # ------------------------------------------------------------------ per-subject state

    def _fix_first(self, sid: int) -> int:
        if sid in self._stale_f:
            lo = max(self._ss_f[sid], self._first)
            hi = self._ss_l[sid] if sid not in self._stale_l else self._last
            j = find_value(self._sid, sid, self._pos_ge(lo), self._pos_end(hi))
            if j >= 0:
                self._ss_f[sid] = self._seq_at(j)
            self._stale_f.discard(sid)
            if self._ss_n[sid] == 1:
                self._ss_l[sid] = self._ss_f[sid]
                self._stale_l.discard(sid)
        return self._ss_f[sid]

    def _fix_last(self, sid: int) -> int:
        if sid in self._stale_l:
            lo = self._fix_first(sid)
            hi = min(self._ss_l[sid], self._last)
            j = rfind_value(self._sid, sid, self._pos_ge(lo), self._pos_end(hi))
            if j >= 0:
                self._ss_l[sid] = self._seq_at(j)
            self._stale_l.discard(sid)
        return self._ss_l[sid]

    def _match_set(self, filter: bytes) -> set[int]:
        """Subject ids matching a filter that is not "all". The set is the cache's own (do
        not change it) and may hold ids of subjects since removed (their count is 0)."""
        m = self._matches.get(filter)
        if m is not None and m.epoch == self._sid_epoch and m.pos == len(self._sid_log):
            return m.sids  # the usual case: a consumer asking again
        if m is None and _is_literal(filter):
            sid = self._sids.get(filter)
            return {sid} if sid is not None else set()
        names = self._names
        if m is None or m.epoch != self._sid_epoch:
            sids = {s for n, s in self._sids.items() if match_literal(n, filter)}
            if len(self._matches) >= _MATCH_CACHE_MAX:
                self._matches.clear()
            self._matches[filter] = m = _Match(sids, len(self._sid_log), self._sid_epoch)
        elif m.pos < len(self._sid_log):
            for s in self._sid_log[m.pos :]:
                n = names[s]
                if n is not None and match_literal(n, filter):
                    m.sids.add(s)
                else:
                    m.sids.discard(s)
            m.pos = len(self._sid_log)
        return m.sids

    def _matching(self, filter: bytes) -> list[int]:
        """Live subject ids matching a filter that is not "all"."""
        cnt = self._ss_n
        return [s for s in self._match_set(filter) if cnt[s] > 0]

    def _matching_multi(self, filters: Iterable[bytes]) -> set[int] | None:
        """Subject ids matching any filter (maybe with dead ids); None when one is "all"."""
        out: set[int] = set()
        for f in filters:
            if is_all(f):
                return None
            out |= self._match_set(f)
        return out

    # ------------------------------------------------------------------ payload hooks

    @abstractmethod
    def _p_write(
        self, seq: int, ts: int, subj: bytes, sid: int, hdr: bytes, msg: bytes, ttl: int
    ) -> int:
        """Store a message's payload; returns its location for the ``_loc`` array."""

    @abstractmethod
    def _p_read(self, i: int) -> tuple[bytes, bytes]:
        """(headers, payload) of the message at array index ``i``."""

    @abstractmethod
    def _p_removed(self, seq: int, i: int, slen: int) -> None:
        """The message at index ``i`` (subject length ``slen``) was removed: its subject id
        is already 0, the other arrays and its TTL entry are still there."""

    @abstractmethod
    def _p_erase(self, seq: int, i: int) -> None:
        """Overwrite the payload of the message at index ``i`` (before it is removed)."""

    @abstractmethod
    def _p_reset(self) -> None:
        """Every message is gone (purge, reset): drop all payload storage."""

    @abstractmethod
    def _p_truncated(self, seq: int) -> None:
        """Messages after ``seq`` were removed by truncate: drop their payload storage."""

    def _p_marker(self) -> None:  # noqa: B027 - a no-op unless overridden
        """The sequence state (first, last, last_ts) changed without a message (skip...)."""

    def _end_op(self) -> None:  # noqa: B027 - a no-op unless overridden
        """End of a public mutating operation."""

    def _check_open(self) -> None:
        if self._closed:
            raise ErrStoreClosed()

    def _check_writable(self) -> None:
        if self._closed:
            raise ErrStoreClosed()

    # ------------------------------------------------------------------ storing

    @property
    def type(self) -> StorageType:
        return self.storage_type

    def register_storage_updates(self, cb: StorageUpdateHandler | None) -> None:
        self._scb = cb

    def store_msg(self, subject: bytes, hdr: bytes, msg: bytes, ttl: int = 0) -> tuple[int, int]:
        self._check_writable()
        ts = time.time_ns()
        try:
            seq, size = self._store(subject, hdr, msg, self._last + 1, ts, ttl, True)
        finally:
            self._end_op()
        if self._scb is not None:
            self._scb(1, size, seq, subject)
        return seq, ts

    def store_fast(self, subject: bytes, msg: bytes) -> tuple[int, int] | None:
        """store_msg for the common case (no headers, no TTL, nothing to enforce), or None
        when the general path must be taken: the caller then calls store_msg."""
        return None

    def store_raw_msg(
        self,
        subject: bytes,
        hdr: bytes,
        msg: bytes,
        seq: int,
        ts: int,
        ttl: int = 0,
        discard_new_check: bool = False,
    ) -> None:
        self._check_writable()
        try:
            seq, size = self._store(subject, hdr, msg, seq, ts, ttl, discard_new_check)
        finally:
            self._end_op()
        if self._scb is not None:
            self._scb(1, size, seq, subject)

    def _store(
        self,
        subj: bytes,
        hdr: bytes,
        msg: bytes,
        seq: int,
        ts: int,
        ttl: int,
        discard_new_check: bool,
    ) -> tuple[int, int]:
        cfg = self._cfg
        hl = len(hdr)
        ml = len(msg)
        if 0 < cfg.max_msg_size < hl + ml or len(subj) > 0xFFFF:
            raise ErrMsgTooLarge()
        sid = self._sids.get(subj)
        maxp = cfg.max_msgs_per_subject
        if discard_new_check and cfg.discard == DiscardPolicy.NEW:
            asl = maxp > 0 and sid is not None and self._ss_n[sid] >= maxp
            if asl and cfg.discard_new_per_subject and not header_value(hdr, HDR_ROLLUP):
                raise ErrMaxMsgsPerSubject()
            if 0 < cfg.max_msgs <= self._msgs and not asl:
                raise ErrMaxMsgs()
            if cfg.max_bytes > 0:
                size = self._msg_size(len(subj), hl, ml)
                if self._bytes + size > cfg.max_bytes:
                    if not asl or sid is None:
                        raise ErrMaxBytes()
                    # At the subject limit the subject's oldest message goes: enough room?
                    i = self._pos(self._fix_first(sid))
                    if self._msg_size(len(subj), self._hl[i], self._ml[i]) < size:
                        raise ErrMaxBytes()
        if seq != self._last + 1:
            if seq > 0:
                raise ErrSequenceMismatch()
            seq = self._last + 1
        if sid is None:
            sid = self._intern(subj)
        loc = self._p_write(seq, ts, subj, sid, hdr, msg, ttl)
        size = self._index_add(seq, ts, sid, loc, hl, ml, ttl)
        if maxp > 0 and self._ss_n[sid] > maxp:
            self._enforce_per_subject(sid, maxp)
        if cfg.discard == DiscardPolicy.OLD:
            if 0 < cfg.max_msgs < self._msgs:
                self._enforce_msgs()
            if 0 < cfg.max_bytes < self._bytes:
                self._enforce_bytes()
        if ttl > 0 and cfg.allow_msg_ttl and self._ttl.get(seq):
            heapq.heappush(self._ttl_heap, (ts + ttl * _NS, seq))
        return seq, size

    def _enforce_per_subject(self, sid: int, maxp: int) -> None:
        cnt = self._ss_n
        while cnt[sid] > maxp:
            if not self._remove(self._fix_first(sid)):
                break

    def _enforce_msgs(self) -> None:
        lim = self._cfg.max_msgs
        if self._cfg.discard != DiscardPolicy.OLD or lim <= 0:
            return
        while self._msgs > lim:
            self._remove(self._first)

    def _enforce_bytes(self) -> None:
        lim = self._cfg.max_bytes
        if self._cfg.discard != DiscardPolicy.OLD or lim <= 0:
            return
        while self._bytes > lim and self._msgs:
            self._remove(self._first)

    def skip_msg(self, seq: int = 0) -> int:
        self._check_writable()
        if seq != self._last + 1:
            if seq > 0:
                raise ErrSequenceMismatch()
            seq = self._last + 1
        self._last = seq
        self._last_ts = time.time_ns()
        if self._msgs == 0:
            self._first = seq + 1
        self._p_marker()
        self._end_op()
        return seq

    def skip_msgs(self, seq: int, num: int) -> None:
        self._check_writable()
        if seq != self._last + 1:
            if seq > 0:
                raise ErrSequenceMismatch()
            seq = self._last + 1
        lseq = seq + num - 1
        self._last = lseq
        self._last_ts = time.time_ns()
        if self._msgs == 0:
            self._first = lseq + 1
        self._p_marker()
        self._end_op()

    def flush(self) -> None:  # noqa: B027 - a no-op unless overridden
        """Write what is buffered (FlushAllPending); a no-op for memory."""

    def sync(self) -> None:  # noqa: B027 - a no-op unless overridden
        """Make written data durable (fsync); a no-op for memory."""

    # ------------------------------------------------------------------ loading

    def _msg_at(self, i: int, seq: int) -> StoredMsg:
        hdr, msg = self._p_read(i)
        name = self._names[self._sid[i]]
        return StoredMsg(name or b"", hdr, msg, seq, self._ts[i])

    def load_msg(self, seq: int) -> StoredMsg:
        self._check_open()
        if self._seqa is None:
            i = seq - self._base
            if 0 <= i < len(self._sid) and self._sid[i]:
                return self._msg_at(i, seq)
        else:
            i = self._pos(seq)
            if i >= 0 and self._sid[i]:
                return self._msg_at(i, seq)
        if seq > self._last:
            raise ErrStoreEOF()
        raise ErrStoreMsgNotFound()

    def _next_seq(self, sids: Collection[int] | None, start: int) -> int:
        """The first live sequence >= start whose subject id is in ``sids`` (None: any)."""
        i = self._next_pos(sids, start)
        return self._seq_at(i) if i >= 0 else 0

    def _next_pos(self, sids: Collection[int] | None, start: int) -> int:
        sida = self._sid
        lo = self._pos_ge(start)
        hi = len(sida)
        if lo < hi:
            # A consumer walking a stream: the next position usually matches.
            v = sida[lo]
            if v and (sids is None or v in sids):
                return lo
        if sids is None:
            return find_nonzero(sida, lo, hi)
        if len(sids) > self._few_subjects:
            # Many subjects: walk the positions (the next match is usually close).
            want = sids if isinstance(sids, (set, frozenset)) else set(sids)
            step = 256
            while lo < hi:
                e = min(hi, lo + step)
                for k, v in enumerate(sida[lo:e]):
                    if v in want:
                        return lo + k
                lo = e
                step = min(step * 4, 1 << 16)
            return -1
        cnt = self._ss_n
        cand = []
        for s in sids:
            if cnt[s] > 0:
                lseq = self._fix_last(s)
                if lseq >= start:
                    cand.append((max(start, self._fix_first(s)), lseq, s))
        if not cand:
            return -1
        cand.sort()
        best = hi
        for lo_seq, hi_seq, s in cand:
            p = self._pos_ge(lo_seq)
            if p >= best:
                break
            j = find_value(sida, s, p, min(self._pos_end(hi_seq), best))
            if j >= 0:
                best = j
        return best if best < hi else -1

    def _prev_seq(self, sids: Collection[int] | None, start: int) -> int:
        """The last live sequence <= start whose subject id is in ``sids`` (None: any)."""
        i = self._prev_pos(sids, start)
        return self._seq_at(i) if i >= 0 else 0

    def _prev_pos(self, sids: Collection[int] | None, start: int) -> int:
        sida = self._sid
        lo = self._pos_ge(self._first)
        hi = self._pos_end(start)
        if sids is None:
            return rfind_nonzero(sida, lo, hi)
        if len(sids) > self._few_subjects:
            want = sids if isinstance(sids, (set, frozenset)) else set(sids)
            step = 256
            while hi > lo:
                s0 = max(lo, hi - step)
                chunk = sida[s0:hi]
                for k in range(len(chunk) - 1, -1, -1):
                    if chunk[k] in want:
                        return s0 + k
                hi = s0
                step = min(step * 4, 1 << 16)
            return -1
        cnt = self._ss_n
        cand = []
        for s in sids:
            if cnt[s] > 0:
                fseq = self._fix_first(s)
                if fseq <= start:
                    cand.append((min(start, self._fix_last(s)), fseq, s))
        if not cand:
            return -1
        cand.sort(reverse=True)
        best = -1
        for hi_seq, lo_seq, s in cand:
            e = self._pos_end(hi_seq)
            if e <= best + 1:
                break
            j = rfind_value(sida, s, max(self._pos_ge(lo_seq), best + 1), e)
            if j >= 0:
                best = j
        return best

    def _filter_sids(self, filter: bytes) -> set[int] | None:
        return None if is_all(filter) else self._match_set(filter)

    def load_next_msg(self, filter: bytes, wc: bool, start: int) -> tuple[StoredMsg, int]:
        """The first message matching ``filter`` at or after ``start``: (msg, its seq).
        Raises ErrStoreEOF when there is none (``wc`` is accepted for nats-server's
        signature; the filter itself says whether it has wildcards)."""
        self._check_open()
        if start < self._first:
            start = self._first
        if start > self._last or self._msgs == 0:
            raise ErrStoreEOF()
        i = self._next_pos(self._filter_sids(filter), start)
        if i < 0:
            raise ErrStoreEOF()
        seq = self._seq_at(i)
        return self._msg_at(i, seq), seq

    def load_next_msg_multi(self, filters: Sequence[bytes], start: int) -> tuple[StoredMsg, int]:
        self._check_open()
        if start < self._first:
            start = self._first
        if start > self._last or self._msgs == 0:
            raise ErrStoreEOF()
        i = self._next_pos(self._matching_multi(filters), start)
        if i < 0:
            raise ErrStoreEOF()
        seq = self._seq_at(i)
        return self._msg_at(i, seq), seq

    def load_prev_msg(self, filter: bytes, wc: bool, start: int) -> tuple[StoredMsg, int]:
        """The last message matching ``filter`` at or before ``start``; ErrStoreEOF if none."""
        self._check_open()
        if self._msgs == 0 or start < self._first:
            raise ErrStoreEOF()
        if start > self._last:
            start = self._last
        i = self._prev_pos(self._filter_sids(filter), start)
        if i < 0:
            raise ErrStoreEOF()
        seq = self._seq_at(i)
        return self._msg_at(i, seq), seq

    def load_prev_msg_multi(self, filters: Sequence[bytes], start: int) -> tuple[StoredMsg, int]:
        self._check_open()
        if self._msgs == 0 or start < self._first:
            raise ErrStoreEOF()
        if start > self._last:
            start = self._last
        i = self._prev_pos(self._matching_multi(filters), start)
        if i < 0:
            raise ErrStoreEOF()
        seq = self._seq_at(i)
        return self._msg_at(i, seq), seq

    def load_last_msg(self, subject: bytes) -> StoredMsg:
        """The last message on ``subject`` (a filter: the last of all matching subjects).
        For "all" this is the message at the stream's last sequence, as nats-server: not
        found when that one was deleted."""
        self._check_open()
        if is_all(subject):
            seq = self._last
        else:
            seq = 0
            for s in self._matching(subject):
                seq = max(seq, self._fix_last(s))
        i = self._pos(seq) if seq else -1
        if i >= 0 and self._sid[i]:
            return self._msg_at(i, seq)
        raise ErrStoreMsgNotFound()

    def subject_for_seq(self, seq: int) -> bytes:
        self._check_open()
        i = self._pos(seq) if seq >= self._first else -1
        if i >= 0:
            sid = self._sid[i]
            if sid:
                return self._names[sid] or b""
        raise ErrStoreMsgNotFound()

    def get_seq_from_time(self, ts: int) -> int:
        """The first sequence whose message is at or after ``ts`` (ns); last + 1 if none."""
        if self._msgs == 0:
            return self._last + 1
        fi = self._pos(self._first)
        tsa = self._ts
        if ts <= tsa[fi]:
            return self._first
        li = rfind_nonzero(self._sid, fi, len(self._sid))
        lts = tsa[li]
        if ts == lts:
            return self._seq_at(li)
        if ts > lts:
            return self._last + 1
        j = bisect.bisect_left(tsa, ts, fi, li + 1)
        k = find_nonzero(self._sid, j, li + 1)
        return self._seq_at(k) if k >= 0 else self._last + 1

    # ------------------------------------------------------------------ state

    def fast_state(self) -> StreamState:
        """State without the list of deleted sequences."""
        st = StreamState(
            msgs=self._msgs,
            bytes=self._bytes,
            first_seq=self._first,
            first_ts=self._ts[self._pos(self._first)] if self._msgs else 0,
            last_seq=self._last,
            last_ts=self._last_ts,
            num_subjects=len(self._sids),
            consumer_count=self._consumers,
        )
        if self._last > self._first:
            st.num_deleted = max(0, self._last - self._first + 1 - self._msgs)
        return st

    def state(self, deleted: bool = True) -> StreamState:
        st = self.fast_state()
        if deleted and st.num_deleted:
            st.deleted = self._deleted_seqs()
        return st

    def _deleted_seqs(self) -> list[int]:
        """Every sequence in [first, last] without a message."""
        out: list[int] = []
        sida = self._sid
        if self._seqa is None:
            base = self._base
            lo = max(self._first - base, 0)
            hi = min(self._last - base + 1, len(sida))
            while lo < hi:
                e = min(hi, lo + (1 << 15))
                chunk = sida[lo:e]
                if chunk.count(0):
                    out.extend(lo + k + base for k, v in enumerate(chunk) if not v)
                lo = e
            out.extend(range(max(self._first, base + len(sida)), self._last + 1))
            return out
        prev = self._first - 1  # the last sequence known to be live (or before first)
        lo = self._pos_ge(self._first)
        hi = len(sida)
        step = 1 << 15
        seq_at = self._seq_at
        while lo < hi:
            e = min(hi, lo + step)
            for k, v in enumerate(sida[lo:e]):
                if v:
                    seq = seq_at(lo + k)
                    if seq > prev + 1:
                        out.extend(range(prev + 1, seq))
                    prev = seq
            lo = e
        out.extend(range(prev + 1, self._last + 1))
        return out

    def filtered_state(self, seq: int, subject: bytes) -> SimpleState:
        self._check_open()
        return self._filtered(seq, None if is_all(subject) else self._matching(subject), False)

    def _filtered(self, sseq: int, sids: list[int] | None, last_per_subject: bool) -> SimpleState:
        first = self._first
        last = self._last
        if sseq < first:
            sseq = first
        if sseq > last:
            return SimpleState()
        sida = self._sid
        if sids is None:
            if sseq <= first:
                total = len(self._sids) if last_per_subject else self._msgs
                return SimpleState(total, first, last)
            if last_per_subject:
                sids = [s for s in self._sids.values()]
            else:
                lo = self._pos_ge(sseq)
                hi = len(sida)
                n = hi - lo - count_value(sida, 0, lo, hi)
                if n <= 0:
                    return SimpleState()
                f = self._seq_at(find_nonzero(sida, lo, hi))
                lst = self._seq_at(rfind_nonzero(sida, lo, hi))
                return SimpleState(n, f, lst)
        ss = SimpleState()
        partial: list[int] = []
        for s in sids:
            sf = self._fix_first(s)
            sl = self._fix_last(s)
            if sl < sseq:
                continue
            if last_per_subject:
                ss.msgs += 1
                if ss.first == 0 or sl < ss.first:
                    ss.first = sl
            elif sseq <= sf:
                ss.msgs += self._ss_n[s]
                if ss.first == 0 or sf < ss.first:
                    ss.first = sf
            else:
                partial.append(s)
            if sl > ss.last:
                ss.last = sl
        if partial:
            lo = self._pos_ge(sseq)
            if len(partial) <= 8:
                for s in partial:
                    hi = self._pos_end(self._ss_l[s])
                    ss.msgs += count_value(sida, s, lo, hi)
                    f = self._seq_at(find_value(sida, s, lo, hi))
                    if ss.first == 0 or f < ss.first:
                        ss.first = f
            else:
                hi = self._pos_end(max(self._ss_l[s] for s in partial))
                counts = Counter(sida[lo:hi])
                want = set(partial)
                ss.msgs += sum(counts[s] for s in want)
                f = self._next_seq(partial, sseq)
                if f and (ss.first == 0 or f < ss.first):
                    ss.first = f
        return ss

    def num_pending(self, sseq: int, filter: bytes, last_per_subject: bool) -> tuple[int, int]:
        """Messages matching ``filter`` from ``sseq`` on (one per subject when
        ``last_per_subject``): (total, valid through = last sequence)."""
        self._check_open()
        sids = None if is_all(filter) else self._matching(filter)
        return self._filtered(sseq, sids, last_per_subject).msgs, self._last

    def num_pending_multi(
        self, sseq: int, filters: Sequence[bytes], last_per_subject: bool
    ) -> tuple[int, int]:
        self._check_open()
        msids = self._matching_multi(filters)
        cnt = self._ss_n
        sids = None if msids is None else [s for s in msids if cnt[s] > 0]
        return self._filtered(sseq, sids, last_per_subject).msgs, self._last

    def subjects_state(self, filter: bytes) -> dict[bytes, SimpleState]:
        self._check_open()
        sids = list(self._sids.values()) if is_all(filter) else self._matching(filter)
        names = self._names
        out: dict[bytes, SimpleState] = {}
        for s in sids:
            name = names[s]
            if name is not None:
                out[name] = SimpleState(self._ss_n[s], self._fix_first(s), self._fix_last(s))
        return out

    def subjects_totals(self, filter: bytes) -> dict[bytes, int]:
        self._check_open()
        if is_all(filter):
            return {n: self._ss_n[s] for n, s in self._sids.items()}
        names = self._names
        return {names[s] or b"": self._ss_n[s] for s in self._matching(filter)}

    def all_last_seqs(self) -> list[int]:
        self._check_open()
        if self._msgs == 0:
            return []
        return sorted(self._fix_last(s) for s in self._sids.values())

    def multi_last_seqs(
        self, filters: Sequence[bytes], max_seq: int, max_allowed: int
    ) -> list[int]:
        """The last sequence of every subject matching a filter, at or below ``max_seq``
        (0: the last sequence), sorted; ErrTooManyResults past ``max_allowed`` (> 0)."""
        self._check_open()
        if self._msgs == 0:
            return []
        if max_seq == 0:
            max_seq = self._last
        seen: set[int] = set()
        for f in filters:
            sids = list(self._sids.values()) if is_all(f) else self._matching(f)
            for s in sids:
                lseq = self._fix_last(s)
                if lseq <= max_seq:
                    seen.add(lseq)
                elif self._ss_n[s] > 1:
                    fseq = self._fix_first(s)
                    if fseq <= max_seq:
                        j = rfind_value(self._sid, s, self._pos_ge(fseq), self._pos_end(max_seq))
                        if j >= 0:
                            seen.add(self._seq_at(j))
            if max_allowed > 0 and len(seen) > max_allowed:
                raise ErrTooManyResults()
        return sorted(seen)

    # ------------------------------------------------------------------ removing

    def remove_msg(self, seq: int) -> bool:
        self._check_writable()
        try:
            return self._remove(seq)
        finally:
            self._end_op()

    def erase_msg(self, seq: int) -> bool:
        """Remove the message and destroy its bytes (memory: overwritten with random bytes;
        file: its block is rewritten without it)."""
        self._check_writable()
        try:
            return self._remove(seq, secure=True)
        finally:
            self._end_op()

    def _bulk_begin(self) -> None:
        self._quiet = True
        self._quiet_msgs = 0
        self._quiet_bytes = 0

    def _bulk_end(self) -> tuple[int, int]:
        self._quiet = False
        return self._quiet_msgs, self._quiet_bytes

    def _report_bulk(self, msgs: int, nbytes: int, seq: int = 0, subj: bytes = b"") -> None:
        if self._scb is not None and msgs:
            self._scb(-msgs, -nbytes, seq, subj)

    def purge(self) -> int:
        """Remove every message; the next message gets last + 1. Returns how many went."""
        self._check_writable()
        try:
            return self._purge(0)
        finally:
            self._end_op()

    def _purge(self, fseq: int) -> int:
        purged = self._msgs
        nbytes = self._bytes
        first = self._last + 1
        if fseq > first:
            first = fseq
            self._last = fseq - 1
        self._clear_all(first)
        self._p_reset()
        self._report_bulk(purged, nbytes)
        return purged

    def _clear_all(self, first: int) -> None:
        last, last_ts = self._last, self._last_ts
        self._reset_index()
        self._first = first
        self._last = last
        self._last_ts = last_ts
        self._base = first
        self._ttl.clear()
        self._ttl_heap.clear()
        self._sdm_pending.clear()
        self._sdm_totals.clear()

    def purge_ex(self, subject: bytes, seq: int, keep: int) -> int:
        """Purge by subject filter, below ``seq`` (when > 1) and/or keeping the newest
        ``keep`` matching messages. Returns how many went."""
        self._check_writable()
        try:
            if is_all(subject):
                if keep == 0 and seq == 0:
                    return self._purge(0)
                if seq > 1:
                    return self._compact(seq)
            return self._purge_ex(subject, seq, keep)
        finally:
            self._end_op()

    def _purge_ex(self, subject: bytes, seq: int, keep: int) -> int:
        sids = None if is_all(subject) else self._matching(subject)
        ss = self._filtered(1, sids, False)
        if ss.msgs == 0:
            return 0
        maxp = ss.msgs
        if keep > 0:
            if keep >= ss.msgs:
                return 0
            maxp = ss.msgs - keep
        upper = seq - 1 if seq > 1 else ss.last
        todo = self._collect(sids, ss.first, upper, maxp)
        purged = 0
        self._bulk_begin()
        try:
            for s in todo:
                if self._remove(s):
                    purged += 1
        finally:
            msgs, nbytes = self._bulk_end()
        if msgs == 1:
            self._report_bulk(msgs, nbytes, todo[0], subject)
        else:
            self._report_bulk(msgs, nbytes)
        return purged

    def _collect(self, sids: list[int] | None, lo: int, hi: int, limit: int) -> list[int]:
        """Up to ``limit`` live sequences in [lo, hi] whose subject id is in ``sids``."""
        sida = self._sid
        seq_at = self._seq_at
        out: list[int] = []
        i = self._pos_ge(max(lo, self._first))
        end = self._pos_end(min(hi, self._last))
        if sids is None or len(sids) == 1:
            while len(out) < limit:
                j = (
                    find_nonzero(sida, i, end)
                    if sids is None
                    else find_value(sida, sids[0], i, end)
                )
                if j < 0:
                    break
                out.append(seq_at(j))
                i = j + 1
            return out
        want = set(sids)
        while i < end and len(out) < limit:
            e = min(end, i + 4096)
            for k, v in enumerate(sida[i:e]):
                if v in want:
                    out.append(seq_at(i + k))
                    if len(out) >= limit:
                        break
            i = e
        return out

    def compact(self, seq: int) -> int:
        """Remove every message below ``seq``; past the end, the next message gets ``seq``."""
        self._check_writable()
        try:
            return self._compact(seq)
        finally:
            self._end_op()

    def _compact(self, seq: int) -> int:
        if seq == 0:
            return self._purge(0)
        if seq > self._last:
            return self._purge(seq)
        if self._first > seq:
            return 0
        self._bulk_begin()
        try:
            while self._msgs and self._first < seq:
                self._remove(self._first)
        finally:
            msgs, nbytes = self._bulk_end()
        self._report_bulk(msgs, nbytes)
        return msgs

    def truncate(self, seq: int) -> None:
        """Remove every message after ``seq``, which becomes the last sequence (0: reset the
        stream to empty, first and last 0)."""
        self._check_writable()
        try:
            self._truncate(seq)
        finally:
            self._end_op()

    def _truncate(self, seq: int) -> None:
        if seq == 0:
            msgs, nbytes = self._msgs, self._bytes
            self._clear_all(0)
            self._last = 0
            self._last_ts = time.time_ns()
            self._p_reset()
            self._report_bulk(msgs, nbytes)
            return
        i = self._pos(seq)
        last_ts = self._last_ts
        if i >= 0 and self._sid[i]:
            last_ts = self._ts[i]
        self._bulk_begin()
        try:
            cur = self._last
            while self._msgs and cur > seq:
                s = self._prev_seq(None, cur)
                if s <= seq:
                    break
                self._remove(s)
                cur = s - 1
        finally:
            msgs, nbytes = self._bulk_end()
        self._last = seq
        self._last_ts = last_ts
        if self._msgs == 0:
            self._first = seq + 1
        keep = self._pos_end(seq)
        if keep < len(self._sid):
            self._keep_positions(keep)
        self._p_truncated(seq)
        self._report_bulk(msgs, nbytes)

    # ------------------------------------------------------------------ config and expiry

    def update_config(self, cfg: StoreConfig) -> None:
        """Apply new limits at once (discard old, per subject) and the TTL setting."""
        self._check_writable()
        old = self._cfg
        self._cfg = replace(cfg)
        self._fast_ok = _fast_ok(cfg)
        try:
            if cfg.allow_msg_ttl and not old.allow_msg_ttl:
                self._rebuild_ttl_heap()
            elif not cfg.allow_msg_ttl:
                self._ttl_heap.clear()
            maxp = cfg.max_msgs_per_subject
            old_maxp = old.max_msgs_per_subject
            self._enforce_all(maxp > 0 and (old_maxp <= 0 or maxp < old_maxp))
        finally:
            self._end_op()

    def _enforce_all(self, per_subject: bool) -> None:
        """Apply max_msgs and max_bytes (discard old) and, if asked, the per-subject limit."""
        self._enforce_msgs()
        self._enforce_bytes()
        maxp = self._cfg.max_msgs_per_subject
        if per_subject and maxp > 0:
            for sid in [s for s in self._sids.values() if self._ss_n[s] > maxp]:
                self._enforce_per_subject(sid, maxp)

    def _rebuild_ttl_heap(self) -> None:
        heap = []
        tsa = self._ts
        for seq, ttl in self._ttl.items():
            if ttl > 0:
                heap.append((tsa[self._pos(seq)] + ttl * _NS, seq))
        heapq.heapify(heap)
        self._ttl_heap = heap

    def next_expiry(self) -> int | None:
        """When ``expire`` has work next (ns), or None: call after storing to arm a timer."""
        due: int | None = None
        if self._cfg.max_age > 0 and self._msgs:
            # The first message that may expire (those with a TTL of "never" do not).
            i = self._pos(self._first)
            ttls = self._ttl
            while i >= 0 and ttls and ttls.get(self._seq_at(i), 0) < 0:
                i = find_nonzero(self._sid, i + 1, len(self._sid))
            if i >= 0:
                due = self._ts[i] + self._cfg.max_age
        if self._ttl_heap:
            t = self._ttl_heap[0][0]
            if due is None or t < due:
                due = t
        return due

    def expire(self, now: int | None = None) -> ExpireResult:
        """Remove messages past max_age or their TTL (filestore.go expireMsgs). With subject
        delete markers on, the last message of a subject is not removed: a marker is returned
        for the stream to store (its rollup removes the message)."""
        self._check_writable()
        if now is None:
            now = time.time_ns()
        res = ExpireResult()
        cfg = self._cfg
        sdm_ttl = cfg.subject_delete_marker_ttl // _NS
        try:
            next_due: int | None = None
            max_age = cfg.max_age
            if max_age > 0 and self._msgs:
                min_age = now - max_age
                seq = self._first
                while seq:
                    i = self._pos(seq)
                    ts = self._ts[i]
                    if ts > min_age:
                        next_due = ts + max_age
                        break
                    if self._ttl.get(seq, 0) >= 0:
                        self._expire_one(seq, now, sdm_ttl, res)
                    # Removals may compact or trim the arrays: find the position again.
                    j = find_nonzero(self._sid, self._pos_ge(seq + 1), len(self._sid))
                    seq = self._seq_at(j) if j >= 0 else 0
            heap = self._ttl_heap
            if heap and cfg.allow_msg_ttl:
                due = []
                while heap and heap[0][0] <= now:
                    exp, seq = heapq.heappop(heap)
                    # Entries of removed messages are stale; a retry (after a marker was
                    # proposed) comes later than the message's own expiry.
                    ttl = self._ttl.get(seq)
                    if ttl and self._ts[self._pos(seq)] + ttl * _NS <= exp:
                        due.append(seq)
                for seq in sorted(due):
                    if not self._expire_one(seq, now, sdm_ttl, res):
                        heapq.heappush(heap, (now + _SDM_RETRY, seq))
                if heap and (next_due is None or heap[0][0] < next_due):
                    next_due = heap[0][0]
            if self._sdm_pending:
                retry = min(ts for _, ts in self._sdm_pending.values()) + _SDM_RETRY
                if next_due is None or retry < next_due:
                    next_due = retry
            res.next_due = next_due
        finally:
            self._end_op()
        return res

    def _expire_one(self, seq: int, now: int, sdm_ttl: int, res: ExpireResult) -> bool:
        """Expire one message: removed (True) or left for a marker (False)."""
        i = self._pos(seq)
        if i < 0 or not self._sid[i]:
            return True
        if sdm_ttl <= 0:
            if self._remove(seq):
                res.removed += 1
            return True
        sid = self._sid[i]
        last, ok = self._sdm_should(seq, sid, now)
        if not ok:
            return False
        if last:
            hdr, _ = self._p_read(i)
            if not is_subject_delete_marker(hdr):
                res.markers.append((self._names[sid] or b"", subject_delete_marker_header(sdm_ttl)))
                return False
        if self._remove(seq):
            res.removed += 1
        return True

    def _sdm_should(self, seq: int, sid: int, now: int) -> tuple[bool, bool]:
        """(is the last message of its subject, act now) as filestore.go shouldProcessSdm."""
        p = self._sdm_pending.get(seq)
        if p is not None:
            last, ts = p
            if now - ts < _SDM_RETRY:
                return last, False
            if last and self._ss_n[sid] - self._sdm_totals.get(sid, 0) > 0:
                last = False
            self._sdm_pending[seq] = (last, now)
            return last, True
        msgs = self._ss_n[sid]
        if msgs == 0:
            return False, True
        last = msgs - self._sdm_totals.get(sid, 0) == 1
        self._sdm_pending[seq] = (last, now)
        self._sdm_totals[sid] = self._sdm_totals.get(sid, 0) + 1
        return last, True

    # ------------------------------------------------------------------ consumers, lifecycle

    @abstractmethod
    def consumer_store(
        self, name: str, cfg: ConsumerStoreConfig, created: int = 0
    ) -> ConsumerStore: ...

    def add_consumer(self, o: ConsumerStore) -> None:
        self._consumers += 1

    def remove_consumer(self, o: ConsumerStore) -> None:
        if self._consumers > 0:
            self._consumers -= 1

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def delete(self) -> None: ...
