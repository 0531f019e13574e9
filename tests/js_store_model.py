"""A deliberately simple model of a JetStream stream store (a dict of messages), used by
tests/test_js_store.py to check MemStore and FileStore under random operations.

It follows nats-server's store semantics as the stores document them: discard-new checks,
then the per-subject limit, then max_msgs and max_bytes with discard old; first = last + 1
when empty; purge_ex keeps the newest ``keep`` matching messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pynats_server.jetstream.store import (
    DiscardPolicy,
    ErrMaxBytes,
    ErrMaxMsgs,
    ErrMaxMsgsPerSubject,
    SimpleState,
    StoreConfig,
)
from pynats_server.jetstream.store.base import HDR_ROLLUP, header_value
from pynats_server.protocol.subjects import match_literal

NS = 1_000_000_000


def matches(subject: bytes, filt: bytes) -> bool:
    return not filt or filt == b">" or match_literal(subject, filt)


@dataclass
class MMsg:
    subject: bytes
    hdr: bytes
    msg: bytes
    ts: int
    ttl: int


@dataclass
class Model:
    cfg: StoreConfig
    mem: bool
    msgs: dict[int, MMsg] = field(default_factory=dict)
    first: int = 0
    last: int = 0

    def size(self, m: MMsg) -> int:
        s, h, b = len(m.subject), len(m.hdr), len(m.msg)
        if self.mem:
            return s + h + b + 16
        return 22 + s + b + 8 if not h else 22 + s + 4 + h + b + 8

    @property
    def nbytes(self) -> int:
        return sum(self.size(m) for m in self.msgs.values())

    def seqs(self) -> list[int]:
        return sorted(self.msgs)

    def _fix_first(self) -> None:
        self.first = min(self.msgs) if self.msgs else self.last + 1

    def remove(self, seq: int) -> bool:
        if seq not in self.msgs:
            return False
        del self.msgs[seq]
        if seq == self.first:
            self._fix_first()
        return True

    def count(self, subject: bytes) -> int:
        return sum(1 for m in self.msgs.values() if m.subject == subject)

    def store(self, subject: bytes, hdr: bytes, msg: bytes, ts: int, ttl: int) -> int:
        cfg = self.cfg
        maxp = cfg.max_msgs_per_subject
        new = MMsg(subject, hdr, msg, ts, ttl)
        if cfg.discard == DiscardPolicy.NEW:
            asl = maxp > 0 and self.count(subject) >= maxp
            if asl and cfg.discard_new_per_subject and not header_value(hdr, HDR_ROLLUP):
                raise ErrMaxMsgsPerSubject()
            if 0 < cfg.max_msgs <= len(self.msgs) and not asl:
                raise ErrMaxMsgs()
            if cfg.max_bytes > 0 and self.nbytes + self.size(new) > cfg.max_bytes:
                if not asl:
                    raise ErrMaxBytes()
                oldest = min(s for s, m in self.msgs.items() if m.subject == subject)
                if self.size(self.msgs[oldest]) < self.size(new):
                    raise ErrMaxBytes()
        seq = self.last + 1
        if not self.msgs:
            self.first = seq
        self.msgs[seq] = new
        self.last = seq
        if maxp > 0:
            while self.count(subject) > maxp:
                self.remove(min(s for s, m in self.msgs.items() if m.subject == subject))
        self.enforce()
        return seq

    def enforce(self) -> None:
        cfg = self.cfg
        if cfg.discard != DiscardPolicy.OLD:
            return
        if cfg.max_msgs > 0:
            while len(self.msgs) > cfg.max_msgs:
                self.remove(self.first)
        if cfg.max_bytes > 0:
            while self.msgs and self.nbytes > cfg.max_bytes:
                self.remove(self.first)

    def update_config(self, cfg: StoreConfig) -> None:
        old = self.cfg
        self.cfg = replace(cfg)
        self.enforce()
        maxp = cfg.max_msgs_per_subject
        if maxp > 0 and (old.max_msgs_per_subject <= 0 or maxp < old.max_msgs_per_subject):
            for subj in {m.subject for m in self.msgs.values()}:
                while self.count(subj) > maxp:
                    self.remove(min(s for s, m in self.msgs.items() if m.subject == subj))

    def skip(self) -> int:
        self.last += 1
        if not self.msgs:
            self.first = self.last + 1
        return self.last

    def purge(self) -> int:
        n = len(self.msgs)
        self.msgs.clear()
        self.first = self.last + 1
        return n

    def compact(self, seq: int) -> int:
        if seq == 0:
            return self.purge()
        if seq > self.last:
            n = len(self.msgs)
            self.msgs.clear()
            self.first, self.last = seq, seq - 1
            return n
        if self.first > seq:
            return 0
        gone = [s for s in self.msgs if s < seq]
        for s in gone:
            del self.msgs[s]
        self._fix_first()
        return len(gone)

    def purge_ex(self, subject: bytes, seq: int, keep: int) -> int:
        if not subject or subject == b">":
            if keep == 0 and seq == 0:
                return self.purge()
            if seq > 1:
                return self.compact(seq)
        match = [s for s in self.seqs() if matches(self.msgs[s].subject, subject)]
        if not match:
            return 0
        maxp = len(match)
        if keep > 0:
            if keep >= len(match):
                return 0
            maxp = len(match) - keep
        if seq > 1:
            match = [s for s in match if s < seq]
        for s in match[:maxp]:
            self.remove(s)
        return min(maxp, len(match))

    def truncate(self, seq: int) -> None:
        if seq == 0:
            self.msgs.clear()
            self.first = self.last = 0
            return
        for s in [s for s in self.msgs if s > seq]:
            del self.msgs[s]
        self.last = seq
        if not self.msgs:
            self.first = seq + 1

    def expire(self, now: int) -> int:
        n = 0
        if self.cfg.max_age > 0:
            for s in self.seqs():
                m = self.msgs[s]
                if m.ts > now - self.cfg.max_age:
                    break
                if m.ttl < 0:
                    continue
                self.remove(s)
                n += 1
        if self.cfg.allow_msg_ttl:
            for s in self.seqs():
                m = self.msgs[s]
                if m.ttl > 0 and m.ts + m.ttl * NS <= now:
                    self.remove(s)
                    n += 1
        return n

    # ------------------------------------------------------------------ queries

    def deleted(self) -> list[int]:
        if self.last <= self.first:
            return []
        return [s for s in range(self.first, self.last + 1) if s not in self.msgs]

    def filtered(self, sseq: int, filt: bytes, last_per_subject: bool = False) -> SimpleState:
        if sseq < self.first:
            sseq = self.first
        if sseq > self.last:
            return SimpleState()
        seqs = [s for s in self.seqs() if s >= sseq and matches(self.msgs[s].subject, filt)]
        if last_per_subject:
            lasts: dict[bytes, int] = {}
            for s in seqs:
                lasts[self.msgs[s].subject] = s
            seqs = sorted(lasts.values())
        if not seqs:
            return SimpleState()
        return SimpleState(len(seqs), seqs[0], seqs[-1])

    def subjects(self, filt: bytes) -> dict[bytes, SimpleState]:
        out: dict[bytes, SimpleState] = {}
        for s in self.seqs():
            subj = self.msgs[s].subject
            if not matches(subj, filt):
                continue
            st = out.setdefault(subj, SimpleState(0, s, s))
            st.msgs += 1
            st.last = s
        return out

    def next_seq(self, filt: bytes, start: int) -> int:
        for s in self.seqs():
            if s >= start and matches(self.msgs[s].subject, filt):
                return s
        return 0

    def prev_seq(self, filt: bytes, start: int) -> int:
        for s in reversed(self.seqs()):
            if s <= start and matches(self.msgs[s].subject, filt):
                return s
        return 0

    def multi_last(self, filters: list[bytes], max_seq: int) -> list[int]:
        if not self.msgs:
            return []
        if max_seq == 0:
            max_seq = self.last
        lasts: dict[bytes, int] = {}
        for s in self.seqs():
            m = self.msgs[s]
            if s <= max_seq and any(matches(m.subject, f) for f in filters):
                lasts[m.subject] = s
        return sorted(lasts.values())
