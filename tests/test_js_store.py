"""JetStream storage (pynats_server/jetstream/store): memory and file stores.

- Stateful hypothesis tests run random operations on MemStore and FileStore and on a simple
  model (js_store_model.py) and compare everything after each step; the file store is also
  closed and reopened at random.
- Crash tests cut the last block at every byte of its last record; corruption tests flip
  bytes and check the error names the file.
- Tests named after nats-server's memstore_test.go / filestore_test.go mirror those cases.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zlib
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)
from js_store_model import NS, Model, matches

from pynats_server.jetstream.store import (
    AckPolicy,
    ConsumerState,
    ConsumerStoreConfig,
    DiscardPolicy,
    ErrBadConsumerState,
    ErrMaxBytes,
    ErrMaxMsgs,
    ErrMaxMsgsPerSubject,
    ErrNoAckPolicy,
    ErrSequenceMismatch,
    ErrStoreClosed,
    ErrStoreCorrupt,
    ErrStoreEOF,
    ErrStoreMsgNotFound,
    ErrStoreOldUpdate,
    ErrTooManyResults,
    FileStore,
    FileStoreConfig,
    MemStore,
    Pending,
    SequencePair,
    SimpleState,
    StorageType,
    StoreConfig,
    StoreError,
    StreamStore,
    file_store_msg_size,
    mem_store_msg_size,
)
from pynats_server.jetstream.store.base import header_value
from pynats_server.jetstream.store.consumer import (
    decode_consumer_state,
    encode_consumer_state,
)
from pynats_server.jetstream.store.filestore import HDR_SIZE, KIND_MSG, MSGS_DIR

SUBJECTS = [b"a", b"b", b"c.x", b"c.y", b"d.x.y", b"d.z.y"]
FILTERS = [b">", b"", b"a", b"c.*", b"*.x", b"c.>", b"d.*.y", b"zz", b"*.*.y"]
HDR = b"NATS/1.0\r\nK: v\r\n\r\n"
ROLLUP_HDR = b"NATS/1.0\r\nNats-Rollup: sub\r\n\r\n"


def mem(**kw: object) -> MemStore:
    return MemStore(StoreConfig(storage=StorageType.MEMORY, **kw))  # type: ignore[arg-type]


def fcfg_for(d: str, **kw: object) -> FileStoreConfig:
    return FileStoreConfig(store_dir=d, **kw)  # type: ignore[arg-type]


@pytest.fixture
def tmp_dir():
    d = tempfile.mkdtemp(prefix="jsstore-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def file_store(d: str, block_size: int = 0, **kw: object) -> FileStore:
    cfg = StoreConfig(storage=StorageType.FILE, **kw)  # type: ignore[arg-type]
    return FileStore(FileStoreConfig(store_dir=d, block_size=block_size), cfg)


# Both stores for the mirrored unit tests: a factory taking the StoreConfig keywords.
@pytest.fixture(params=["mem", "file"])
def make(request, tmp_dir):
    made: list[StreamStore] = []

    def factory(block_size: int = 0, **kw: object) -> StreamStore:
        if request.param == "mem":
            s: StreamStore = mem(**kw)
        else:
            s = file_store(os.path.join(tmp_dir, f"s{len(made)}"), block_size, **kw)
        made.append(s)
        return s

    factory.kind = request.param  # type: ignore[attr-defined]
    yield factory
    for s in made:
        s.stop()


def msg_size(store: StreamStore, subj: bytes, hdr: bytes, msg: bytes) -> int:
    if store.type == StorageType.MEMORY:
        return mem_store_msg_size(len(subj), len(hdr), len(msg))
    return file_store_msg_size(len(subj), len(hdr), len(msg))


# ---------------------------------------------------------------------------------------------
# Stateful: random operations against the model.


class StoreMachine(RuleBasedStateMachine):
    file = False

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="jsstore-sm-") if self.file else ""
        self.store: StreamStore | None = None
        self.model: Model | None = None
        self.now = 1_700_000_000 * NS
        self.block_size = 0

    def teardown(self) -> None:
        if self.store is not None:
            self.store.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def open(self, cfg: StoreConfig) -> StreamStore:
        if self.file:
            return FileStore(FileStoreConfig(self.dir, block_size=self.block_size), cfg)
        return MemStore(cfg)

    @initialize(
        max_msgs=st.sampled_from([-1, -1, 1, 3, 8, 20]),
        max_bytes=st.sampled_from([-1, -1, 150, 600, 2000]),
        maxp=st.sampled_from([-1, -1, 1, 2, 4]),
        discard=st.sampled_from([DiscardPolicy.OLD, DiscardPolicy.OLD, DiscardPolicy.NEW]),
        per_subject=st.booleans(),
        max_age=st.sampled_from([0, 0, 2 * NS, 5 * NS]),
        ttl=st.booleans(),
        block_size=st.sampled_from([160, 400, 2000, 1 << 20]),
    )
    def init(self, max_msgs, max_bytes, maxp, discard, per_subject, max_age, ttl, block_size):
        cfg = StoreConfig(
            storage=StorageType.FILE if self.file else StorageType.MEMORY,
            max_msgs=max_msgs,
            max_bytes=max_bytes,
            max_msgs_per_subject=maxp,
            discard=discard,
            discard_new_per_subject=per_subject,
            max_age=max_age,
            allow_msg_ttl=ttl,
        )
        self.block_size = block_size
        self.store = self.open(cfg)
        self.model = Model(cfg, mem=not self.file)

    # ---------------------------------------------------------------- mutations

    @rule(
        subj=st.sampled_from(SUBJECTS),
        hdr=st.sampled_from([b"", b"", HDR, ROLLUP_HDR]),
        size=st.sampled_from([0, 1, 5, 16, 40, 120]),
        ttl=st.sampled_from([0, 0, 0, -1, 1, 3]),
        dt=st.sampled_from([0, 1_000_000, NS // 2, 2 * NS]),
    )
    def store_msg(self, subj, hdr, size, ttl, dt):
        assert self.store and self.model
        self.now += dt
        payload = bytes([len(self.model.msgs) % 251]) * size
        try:
            want = self.model.store(subj, hdr, payload, self.now, ttl)
        except StoreError as e:
            with pytest.raises(type(e)):
                self.store.store_raw_msg(subj, hdr, payload, 0, self.now, ttl, True)
            return
        self.store.store_raw_msg(subj, hdr, payload, 0, self.now, ttl, True)
        assert self.store.fast_state().last_seq == want

    @rule(d=st.integers(-1, 3), data=st.data())
    def remove(self, d, data):
        assert self.store and self.model
        seq = data.draw(st.integers(max(0, self.model.first - 1), self.model.last + 1))
        assert self.store.remove_msg(seq) == self.model.remove(seq)

    @rule(data=st.data())
    def erase(self, data):
        assert self.store and self.model
        seq = data.draw(st.integers(max(0, self.model.first - 1), self.model.last + 1))
        assert self.store.erase_msg(seq) == self.model.remove(seq)

    @rule()
    def purge(self):
        assert self.store and self.model
        assert self.store.purge() == self.model.purge()

    @rule(
        filt=st.sampled_from(FILTERS),
        keep=st.sampled_from([0, 0, 1, 2, 5]),
        data=st.data(),
    )
    def purge_ex(self, filt, keep, data):
        assert self.store and self.model
        seq = data.draw(st.sampled_from([0, 0, 1, self.model.first + 1, self.model.last]))
        want = self.model.purge_ex(filt, seq, keep)
        assert self.store.purge_ex(filt, seq, keep) == want

    @rule(data=st.data())
    def compact(self, data):
        assert self.store and self.model
        seq = data.draw(st.integers(0, self.model.last + 3))
        assert self.store.compact(seq) == self.model.compact(seq)

    @rule(data=st.data())
    def truncate(self, data):
        assert self.store and self.model
        seq = data.draw(st.integers(0, self.model.last))
        self.store.truncate(seq)
        self.model.truncate(seq)

    @rule()
    def skip(self):
        assert self.store and self.model
        assert self.store.skip_msg(0) == self.model.skip()

    @rule(n=st.integers(1, 5))
    def skip_many(self, n):
        assert self.store and self.model
        self.store.skip_msgs(self.model.last + 1, n)
        for _ in range(n):
            self.model.skip()

    @rule(dt=st.sampled_from([0, NS, 3 * NS, 10 * NS]))
    def expire(self, dt):
        assert self.store and self.model
        self.now += dt
        res = self.store.expire(self.now)
        assert res.removed == self.model.expire(self.now)
        assert not res.markers
        nxt = self.store.next_expiry()
        if nxt is not None:
            assert nxt > self.now

    @rule(
        max_msgs=st.sampled_from([-1, 2, 10]),
        max_bytes=st.sampled_from([-1, 300, 3000]),
        maxp=st.sampled_from([-1, 1, 3]),
        ttl=st.booleans(),
    )
    def update_config(self, max_msgs, max_bytes, maxp, ttl):
        assert self.store and self.model
        cfg = replace(
            self.model.cfg,
            max_msgs=max_msgs,
            max_bytes=max_bytes,
            max_msgs_per_subject=maxp,
            allow_msg_ttl=ttl,
        )
        self.store.update_config(cfg)
        self.model.update_config(cfg)

    def reopen(self) -> None:
        """(FileStoreMachine) close and reopen: the state must come back the same."""
        assert self.store and self.model
        before = self.store.state()
        self.store.stop()
        with pytest.raises(ErrStoreClosed):
            self.store.load_msg(1)
        self.store = self.open(self.model.cfg)
        after = self.store.state()
        assert after == before, (before, after)
        assert not getattr(self.store, "recovery_notes", [])

    # ---------------------------------------------------------------- queries

    @rule(filt=st.sampled_from(FILTERS), data=st.data())
    def load_next(self, filt, data):
        assert self.store and self.model
        start = data.draw(st.integers(0, self.model.last + 1))
        want = self.model.next_seq(filt, max(start, self.model.first))
        if not want:
            with pytest.raises(ErrStoreEOF):
                self.store.load_next_msg(filt, b"*" in filt or b">" in filt, start)
        else:
            sm, seq = self.store.load_next_msg(filt, True, start)
            assert seq == want == sm.seq
        multi = [filt, b"a"]
        want = min(
            (s for s in (self.model.next_seq(f, max(start, self.model.first)) for f in multi) if s),
            default=0,
        )
        if want:
            assert self.store.load_next_msg_multi(multi, start)[1] == want
        else:
            with pytest.raises(ErrStoreEOF):
                self.store.load_next_msg_multi(multi, start)

    @rule(filt=st.sampled_from(FILTERS), data=st.data())
    def load_prev(self, filt, data):
        assert self.store and self.model
        start = data.draw(st.integers(0, self.model.last + 1))
        want = self.model.prev_seq(filt, start) if start >= self.model.first else 0
        if not want:
            with pytest.raises(ErrStoreEOF):
                self.store.load_prev_msg(filt, True, start)
        else:
            assert self.store.load_prev_msg(filt, True, start)[1] == want

    @rule(filt=st.sampled_from(FILTERS))
    def load_last(self, filt):
        assert self.store and self.model
        m = self.model
        if not filt or filt == b">":
            want = m.last if m.last in m.msgs else 0
        else:
            want = m.prev_seq(filt, m.last)
        if want:
            assert self.store.load_last_msg(filt).seq == want
        else:
            with pytest.raises(ErrStoreMsgNotFound):
                self.store.load_last_msg(filt)

    @rule(filt=st.sampled_from(FILTERS), lps=st.booleans(), data=st.data())
    def pending(self, filt, lps, data):
        assert self.store and self.model
        sseq = data.draw(st.integers(0, self.model.last + 1))
        want = self.model.filtered(sseq, filt, lps)
        total, through = self.store.num_pending(sseq, filt, lps)
        assert (total, through) == (want.msgs, self.model.last)
        assert self.store.num_pending_multi(sseq, [filt], lps)[0] == want.msgs
        if not lps:
            got = self.store.filtered_state(sseq, filt)
            m = self.model
            if (not filt or filt == b">") and max(sseq, m.first) <= m.first and m.msgs:
                # nats-server reports the stream's last sequence here, deleted or not.
                want = SimpleState(len(m.msgs), m.first, m.last)
            assert got == want

    @rule(filt=st.sampled_from(FILTERS))
    def subjects(self, filt):
        assert self.store and self.model
        want = self.model.subjects(filt)
        assert self.store.subjects_state(filt) == want
        assert self.store.subjects_totals(filt) == {k: v.msgs for k, v in want.items()}

    @rule(filts=st.lists(st.sampled_from(FILTERS), min_size=1, max_size=3), data=st.data())
    def multi_last(self, filts, data):
        assert self.store and self.model
        max_seq = data.draw(st.integers(0, self.model.last + 1))
        want = self.model.multi_last(filts, max_seq)
        assert self.store.multi_last_seqs(filts, max_seq, 0) == want
        if len(want) > 1:
            with pytest.raises(ErrTooManyResults):
                self.store.multi_last_seqs(filts, max_seq, len(want) - 1)
        if self.model.msgs:
            assert self.store.all_last_seqs() == self.model.multi_last([b">"], 0)

    @rule(data=st.data())
    def seq_from_time(self, data):
        assert self.store and self.model
        m = self.model
        seqs = m.seqs()
        ts = data.draw(st.sampled_from([0, self.now + 1] + [m.msgs[s].ts for s in seqs]))
        if not seqs:
            want = m.last + 1
        elif ts <= m.msgs[seqs[0]].ts:
            want = m.first
        elif ts == m.msgs[seqs[-1]].ts:
            want = seqs[-1]
        elif ts > m.msgs[seqs[-1]].ts:
            want = m.last + 1
        else:
            want = next(s for s in seqs if m.msgs[s].ts >= ts)
        assert self.store.get_seq_from_time(ts) == want

    # ---------------------------------------------------------------- the whole state

    @invariant()
    def same_state(self):
        if self.store is None or self.model is None:
            return
        m = self.model
        st_ = self.store.state()
        assert (st_.msgs, st_.first_seq, st_.last_seq) == (len(m.msgs), m.first, m.last)
        assert st_.bytes == m.nbytes
        assert st_.num_subjects == len({x.subject for x in m.msgs.values()})
        assert (st_.deleted or []) == m.deleted()
        assert st_.num_deleted == len(m.deleted())
        assert st_.first_ts == (m.msgs[m.first].ts if m.msgs else 0)
        for seq in range(max(0, m.first - 1), m.last + 2):
            if seq in m.msgs:
                sm = self.store.load_msg(seq)
                mm = m.msgs[seq]
                assert (sm.subject, sm.hdr, sm.msg, sm.seq, sm.ts) == (
                    mm.subject,
                    mm.hdr,
                    mm.msg,
                    seq,
                    mm.ts,
                )
                assert self.store.subject_for_seq(seq) == mm.subject
            else:
                with pytest.raises(ErrStoreEOF if seq > m.last else ErrStoreMsgNotFound):
                    self.store.load_msg(seq)


class FileStoreMachine(StoreMachine):
    file = True

    @rule()
    def restart(self):
        self.reopen()

    @invariant()
    def replays_the_same(self):
        """What is on disk replays to the live state (a kill -9 now loses nothing)."""
        if self.store is None or self.model is None:
            return
        copy = self.dir + "-copy"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.dir, copy)
        try:
            other = FileStore(FileStoreConfig(copy, block_size=self.block_size), self.model.cfg)
            try:
                assert other.state() == self.store.state()
            finally:
                other.stop()
        finally:
            shutil.rmtree(copy, ignore_errors=True)


_SM_SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestMemStoreStateful = StoreMachine.TestCase
TestMemStoreStateful.settings = _SM_SETTINGS
TestFileStoreStateful = FileStoreMachine.TestCase
TestFileStoreStateful.settings = _SM_SETTINGS
