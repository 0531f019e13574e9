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
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
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
from pynats_server.jetstream.store.filestore import KIND_MSG, MSGS_DIR

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
        self.few = 16
        self.compact = 4096

    def teardown(self) -> None:
        if self.store is not None:
            self.store.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def open(self, cfg: StoreConfig) -> StreamStore:
        s: FileStore | MemStore
        if self.file:
            s = FileStore(FileStoreConfig(self.dir, block_size=self.block_size), cfg)
        else:
            s = MemStore(cfg)
        s._few_subjects = self.few
        s._compact_min = self.compact
        return s

    @initialize(
        max_msgs=st.sampled_from([-1, -1, 1, 3, 8, 20]),
        max_bytes=st.sampled_from([-1, -1, 150, 600, 2000]),
        maxp=st.sampled_from([-1, -1, 1, 2, 4]),
        discard=st.sampled_from([DiscardPolicy.OLD, DiscardPolicy.OLD, DiscardPolicy.NEW]),
        per_subject=st.booleans(),
        max_age=st.sampled_from([0, 0, 2 * NS, 5 * NS]),
        ttl=st.booleans(),
        block_size=st.sampled_from([160, 400, 2000, 1 << 20]),
        few=st.sampled_from([0, 16]),
        compact=st.sampled_from([0, 4096]),
    )
    def init(
        self,
        max_msgs,
        max_bytes,
        maxp,
        discard,
        per_subject,
        max_age,
        ttl,
        block_size,
        few,
        compact,
    ):
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
        # 0: searches by subject always walk the sequences; 16: per subject when few.
        self.few = few
        # 0: the index goes sparse (compacted) as soon as dead positions outnumber live ones.
        self.compact = compact
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

    @rule(subj=st.sampled_from(SUBJECTS), size=st.sampled_from([0, 1, 16, 120]))
    def store_fast(self, subj, size):
        """The ingest shortcut stores exactly what store_msg would, or declines."""
        assert self.store and self.model
        payload = bytes([len(self.model.msgs) % 251]) * size
        r = self.store.store_fast(subj, payload)
        if r is None:
            return
        seq, ts = r
        # It stamps the real time: the simulated clock moves on from there.
        assert self.model.store(subj, b"", payload, ts, 0) == seq
        self.now = max(self.now, ts)

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

    @rule(n=st.sampled_from([1, 2, 5, 100]))
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
        had_blocks = bool(os.listdir(os.path.join(self.dir, MSGS_DIR)))
        self.store = self.open(self.model.cfg)
        after = self.store.state()
        assert after == before, (before, after)
        assert isinstance(self.store, FileStore)
        assert not self.store.recovery_notes
        # A clean stop leaves an index snapshot that the next open uses.
        assert self.store.recovered_from_snapshot == had_blocks

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
    max_examples=80,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestMemStoreStateful = StoreMachine.TestCase
TestMemStoreStateful.settings = _SM_SETTINGS
TestFileStoreStateful = FileStoreMachine.TestCase
TestFileStoreStateful.settings = _SM_SETTINGS


# ---------------------------------------------------------------------------------------------
# Mirrors of nats-server's memstore_test.go / filestore_test.go (both stores unless named).


def test_basics(make):  # TestMemStoreBasics, TestFileStoreBasics
    s = make()
    now = time.time_ns()
    seq, ts = s.store_msg(b"foo", b"", b"Hello World")
    assert seq == 1 and now <= ts <= time.time_ns()
    st_ = s.state()
    assert st_.msgs == 1 and st_.bytes == msg_size(s, b"foo", b"", b"Hello World")
    sm = s.load_msg(1)
    assert (sm.subject, sm.msg, sm.hdr, sm.seq, sm.ts) == (b"foo", b"Hello World", b"", 1, ts)
    with pytest.raises(ErrStoreEOF):
        s.load_msg(2)
    with pytest.raises(ErrStoreMsgNotFound):
        s.load_msg(0)


def test_msg_headers_and_size(make):  # TestMemStoreMsgHeaders, TestFileStoreMsgHeaders
    s = make()
    hdr = b"NATS/1.0\r\nname:derek\r\n\r\n"
    s.store_msg(b"foo", hdr, b"Hello World")
    sm = s.load_msg(1)
    assert (sm.hdr, sm.msg) == (hdr, b"Hello World")
    if make.kind == "mem":
        assert s.state().bytes == 3 + len(hdr) + 11 + 16
    else:
        assert s.state().bytes == 22 + 3 + 4 + len(hdr) + 11 + 8
    assert s.erase_msg(1)
    assert s.state().msgs == 0


def test_msg_limit(make):  # TestMemStoreMsgLimit, TestFileStoreMsgLimit
    s = make(max_msgs=10)
    for _ in range(10):
        s.store_msg(b"foo", b"", b"Hello World")
    assert s.state().msgs == 10
    s.store_msg(b"foo", b"", b"Hello World")
    st_ = s.state()
    assert (st_.msgs, st_.first_seq, st_.last_seq) == (10, 2, 11)
    with pytest.raises(ErrStoreMsgNotFound):
        s.load_msg(1)


def test_bytes_limit(make):  # TestMemStoreBytesLimit, TestFileStoreBytesLimit
    msg = bytes(512)
    probe = make()
    size = msg_size(probe, b"foo", b"", msg)
    s = make(max_bytes=size * 1024)
    for _ in range(1024):
        s.store_msg(b"foo", b"", msg)
    assert (s.state().msgs, s.state().bytes) == (1024, size * 1024)
    for _ in range(10):
        s.store_msg(b"foo", b"", msg)
    st_ = s.state()
    assert (st_.msgs, st_.bytes, st_.first_seq, st_.last_seq) == (1024, size * 1024, 11, 1034)


def test_bytes_limit_discard_new(make):  # TestMemStoreBytesLimitWithDiscardNew (issue 4771)
    probe = make()
    size = msg_size(probe, b"tiny", b"", bytes(7))
    s = make(max_bytes=100, discard=DiscardPolicy.NEW)
    fits = 100 // size
    for i in range(10):
        if i < fits:
            s.store_msg(b"tiny", b"", bytes(7))
        else:
            with pytest.raises(ErrMaxBytes, match="maximum bytes exceeded"):
                s.store_msg(b"tiny", b"", bytes(7))
    assert (s.state().msgs, s.state().bytes) == (fits, size * fits)


def test_discard_new_limits(make):
    s = make(max_msgs=2, discard=DiscardPolicy.NEW)
    s.store_msg(b"a", b"", b"1")
    s.store_msg(b"a", b"", b"2")
    with pytest.raises(ErrMaxMsgs, match="maximum messages exceeded"):
        s.store_msg(b"a", b"", b"3")
    # Replicas store what the leader accepted: no discard-new check there.
    s.store_raw_msg(b"a", b"", b"3", 3, time.time_ns())
    assert s.state().msgs == 3
    with pytest.raises(ErrSequenceMismatch):
        s.store_raw_msg(b"a", b"", b"x", 9, time.time_ns())


def test_discard_new_per_subject(make):
    s = make(max_msgs_per_subject=1, discard=DiscardPolicy.NEW, discard_new_per_subject=True)
    s.store_msg(b"kv.a", b"", b"1")
    with pytest.raises(ErrMaxMsgsPerSubject, match="maximum messages per subject exceeded"):
        s.store_msg(b"kv.a", b"", b"2")
    # A rollup goes through: it replaces the subject's message.
    s.store_msg(b"kv.a", ROLLUP_HDR, b"3")
    assert s.subjects_state(b">") == {b"kv.a": SimpleState(1, 2, 2)}
    # Without discard_new_per_subject the subject limit replaces, even at max_msgs.
    t = make(max_msgs_per_subject=1, max_msgs=1, discard=DiscardPolicy.NEW)
    t.store_msg(b"kv.a", b"", b"1")
    t.store_msg(b"kv.a", b"", b"2")
    with pytest.raises(ErrMaxMsgs):
        t.store_msg(b"kv.b", b"", b"3")
    assert t.state().msgs == 1 and t.load_msg(2).msg == b"2"


def test_age_limit(make):  # TestMemStoreAgeLimit, TestFileStoreAgeLimit (a given clock)
    max_age = 10_000_000
    s = make(max_age=max_age)
    for _ in range(100):
        s.store_msg(b"foo", b"", b"Hello World")
    assert s.state().msgs == 100
    due = s.next_expiry()
    assert due is not None and due == s.state().first_ts + max_age
    res = s.expire(time.time_ns() + max_age + 1)
    assert res.removed == 100 and res.next_due is None
    st_ = s.state()
    assert (st_.msgs, st_.bytes, st_.first_seq) == (0, 0, 101)
    assert s.next_expiry() is None
    # Again: the store still expires.
    for _ in range(100):
        s.store_msg(b"foo", b"", b"Hello World")
    s.expire(time.time_ns() + max_age + 1)
    assert s.state().msgs == 0


def test_age_limit_partial_and_never(make):
    s = make(max_age=5 * NS, allow_msg_ttl=True)
    t0 = 1_000 * NS
    s.store_raw_msg(b"a", b"", b"1", 0, t0)
    s.store_raw_msg(b"b", b"", b"2", 0, t0 + NS, ttl=-1)  # Nats-TTL: never
    s.store_raw_msg(b"c", b"", b"3", 0, t0 + 2 * NS)
    s.store_raw_msg(b"d", b"", b"4", 0, t0 + 9 * NS)
    res = s.expire(t0 + 8 * NS)
    assert res.removed == 2 and res.next_due == t0 + 14 * NS
    assert [s.load_next_msg(b">", True, q)[1] for q in (0, 3)] == [2, 4]
    assert s.next_expiry() == t0 + 14 * NS


def test_timestamps(make):  # TestMemStoreTimeStamps
    s = make()
    for _ in range(10):
        s.store_msg(b"foo", b"", b"Hello World")
    tss = [s.load_msg(q).ts for q in range(1, 11)]
    assert tss == sorted(tss)


def test_purge(make):  # TestMemStorePurge
    s = make()
    for _ in range(10):
        s.store_msg(b"foo", b"", b"Hello World")
    assert s.purge() == 10
    st_ = s.state()
    assert (st_.msgs, st_.first_seq, st_.last_seq, st_.num_deleted) == (0, 11, 10, 0)
    assert s.store_msg(b"foo", b"", b"x")[0] == 11


def test_compact(make):  # TestMemStoreCompact, TestFileStoreCompactLastPlusOne
    s = make(block_size=300)
    for _ in range(10):
        s.store_msg(b"foo", b"", b"Hello World")
    assert s.compact(6) == 5
    st_ = s.state()
    assert (st_.msgs, st_.first_seq) == (5, 6)
    assert s.compact(100) == 5
    st_ = s.state()
    assert (st_.msgs, st_.first_seq, st_.last_seq) == (0, 100, 99)
    assert s.store_msg(b"foo", b"", b"x")[0] == 100
    assert s.compact(101) == 1 and s.state().first_seq == 101


def test_stream_state_deleted(make):  # TestMemStoreStreamStateDeleted
    s = make()
    for i in range(1, 11):
        s.store_msg(b"foo", b"", b"[%08d] Hello World!" % i)
    assert s.state().deleted is None
    expected = []
    for seq in range(2, 10, 2):
        s.remove_msg(seq)
        expected.append(seq)
    assert s.state().deleted == expected
    s.remove_msg(1)
    s.remove_msg(3)
    st_ = s.state()
    assert st_.deleted == expected[2:] and st_.first_seq == 5
    s.purge()
    assert s.state().deleted is None


def test_stream_truncate(make):  # TestMemStoreStreamTruncate, TestFileStoreStreamTruncate
    s = make(block_size=500)
    for i in range(1, 101):
        s.store_msg(b"foo" if i < 50 else b"bar", b"", b"ok")
    s.truncate(50)
    assert s.state().msgs == 50
    for seq in (10, 20, 30, 40):
        s.remove_msg(seq)
    s.truncate(25)
    st_ = s.state()
    assert (st_.msgs, st_.num_subjects, st_.deleted, st_.last_seq) == (23, 1, [10, 20], 25)
    assert s.store_msg(b"foo", b"", b"new")[0] == 26


def test_stream_truncate_reset(make):  # TestMemStoreStreamTruncateReset
    s = make(block_size=2000)
    for _ in range(1000):
        s.store_msg(b"foo", b"", b"Hello World")
    s.truncate(0)
    st_ = s.state()
    assert (st_.msgs, st_.bytes, st_.first_seq, st_.last_seq, st_.num_subjects) == (0, 0, 0, 0, 0)
    for _ in range(1000):
        s.store_msg(b"foo", b"", b"Hello World")
    st_ = s.state()
    size = msg_size(s, b"foo", b"", b"Hello World")
    assert (st_.msgs, st_.bytes, st_.first_seq, st_.last_seq) == (1000, 1000 * size, 1, 1000)


def test_purge_ex_with_subject(make):  # TestMemStorePurgeExWithSubject
    s = make()
    for _ in range(100):
        s.store_msg(b"foo", b"", b"")
    assert s.purge_ex(b"foo", 1, 0) == 100
    assert s.state().msgs == 0


def test_purge_ex_keep(make):  # TestFileStorePurgeExKeepOneBug, TestFileStoreKeepWithDeletedMsgsBug
    s = make()
    s.store_msg(b"A", b"", b"META")
    s.store_msg(b"B", b"", b"x" * 64)
    s.store_msg(b"A", b"", b"META")
    s.store_msg(b"B", b"", b"x" * 64)
    assert s.filtered_state(1, b"A").msgs == 2
    assert s.purge_ex(b"A", 0, 1) == 1
    assert s.filtered_state(1, b"A") == SimpleState(1, 3, 3)
    t = make()
    for i in range(5):
        t.store_msg(b"A", b"", b"%d" % i)
    t.remove_msg(2)
    t.remove_msg(4)
    # Keep means keep that many messages, whatever holes there are.
    assert t.purge_ex(b">", 0, 2) == 1
    assert t.state().msgs == 2 and t.state().first_seq == 3


def test_purge_ex_with_deleted_msgs(make):  # TestMemStorePurgeExWithDeletedMsgs
    s = make()
    for _ in range(10):
        s.store_msg(b"foo", b"", b"abc")
    s.remove_msg(2)
    s.remove_msg(9)
    assert s.purge_ex(b"", 9, 0) == 7
    st_ = s.fast_state()
    assert (st_.first_seq, st_.last_seq, st_.msgs) == (10, 10, 1)


def test_update_max_msgs_per_subject(make):  # TestMemStoreUpdateMaxMsgsPerSubject
    s = make(max_msgs_per_subject=10)
    cfg = StoreConfig(storage=s.type, max_msgs_per_subject=50)
    s.update_config(cfg)
    for _ in range(22):
        s.store_msg(b"foo", b"", b"")
    assert s.subjects_state(b"foo")[b"foo"].msgs == 22
    s.update_config(replace(cfg, max_msgs_per_subject=10))
    assert s.subjects_state(b"foo")[b"foo"] == SimpleState(10, 13, 22)


def test_update_config_limits_apply_at_once(make):
    s = make()
    for i in range(20):
        s.store_msg(b"s.%d" % (i % 4), b"", b"x" * 10)
    s.update_config(StoreConfig(storage=s.type, max_msgs=15))
    assert s.state().msgs == 15 and s.state().first_seq == 6
    size = msg_size(s, b"s.0", b"", b"x" * 10)
    s.update_config(StoreConfig(storage=s.type, max_bytes=size * 5))
    assert s.state().msgs == 5 and s.state().first_seq == 16


def test_compact_multi_block_subject_info(make):  # TestMemStoreStreamCompactMultiBlockSubjectInfo
    s = make(block_size=2000)
    for i in range(1000):
        s.store_msg(b"foo.%d" % i, b"", b"Hello World")
    assert s.compact(501) == 500
    assert s.state().num_subjects == 500


def test_subjects_totals(make):  # TestMemStoreSubjectsTotals
    import random

    rnd = random.Random(1)
    s = make()
    fmap: dict[int, int] = {}
    bmap: dict[int, int] = {}
    for _ in range(2000):
        ft, m = ("foo", fmap) if rnd.randrange(2) == 0 else ("bar", bmap)
        dt = rnd.randrange(100)
        m[dt] = m.get(dt, 0) + 1
        s.store_msg(f"{ft}.{dt}".encode(), b"", b"Hello World")
    for dt, total in fmap.items():
        subj = f"foo.{dt}".encode()
        assert s.subjects_totals(subj) == {subj: total}
    st_ = s.subjects_totals(b"foo.*")
    assert len(st_) == len(fmap) and sum(st_.values()) == sum(fmap.values())
    st_ = s.subjects_totals(b"bar.*")
    assert len(st_) == len(bmap) and sum(st_.values()) == sum(bmap.values())
    assert len(s.subjects_totals(b"*.*")) == len(fmap) + len(bmap)


def test_num_pending(make):  # TestMemStoreNumPending (5k messages instead of 50k)
    import random

    rnd = random.Random(2)
    toks = ["foo", "bar", "baz"]
    s = make(block_size=8000)
    for _ in range(5000):
        s.store_msg(".".join(rnd.choice(toks) for _ in range(4)).encode(), b"", b"Hello World")
    for seq in rnd.sample(range(1, 5001), 300):
        s.remove_msg(seq)
    last = s.state().last_seq
    subjects: dict[int, bytes] = {}
    for q in range(1, last + 1):
        try:
            subjects[q] = s.load_msg(q).subject
        except ErrStoreMsgNotFound:
            pass

    def sanity(sseq: int, filt: bytes, last_only: bool) -> SimpleState:
        seqs = []
        seen = set()
        rng = range(last, max(sseq, 1) - 1, -1) if last_only else range(max(sseq, 1), last + 1)
        for q in rng:
            subj = subjects.get(q)
            if subj is None:
                continue
            if matches(subj, filt) and not (last_only and subj in seen):
                seen.add(subj)
                seqs.append(q)
        if not seqs:
            return SimpleState()
        return SimpleState(len(seqs), min(seqs), max(seqs))

    for filt in [b"foo.>", b"*.bar.>", b"foo.bar.*.baz", b"*.foo.bar.*", b"foo.foo.bar.baz"]:
        for start in [0, 1, 2, 200, 444, 555, 2222, 3456, 4999]:
            want = sanity(start, filt, False)
            assert s.num_pending(start, filt, False) == (want.msgs, last)
            assert s.filtered_state(start, filt) == want
            assert s.num_pending(start, filt, True)[0] == sanity(start, filt, True).msgs


def test_num_pending_bug(make):  # TestMemStoreNumPendingBug
    s = make()
    for subj in [b"foo.foo", b"foo.bar", b"foo.baz", b"foo.zzz"]:
        s.store_msg(b"foo.aaa", b"", b"")
        s.store_msg(subj, b"", b"")
        s.store_msg(subj, b"", b"")
    assert s.num_pending(4, b"foo.*", False)[0] == 9


def test_num_pending_multi(make):  # TestMemStoreNumPendingMulti (smaller)
    import random

    rnd = random.Random(3)
    subjects = [b"ev.%d" % i for i in range(500)]
    s = make()
    for _ in range(5000):
        s.store_msg(rnd.choice(subjects), b"", b"ZZZ")
    filters = rnd.sample(subjects, 250)
    start = 1234
    want = sum(1 for q in range(start, 5001) if s.load_msg(q).subject in set(filters))
    assert s.num_pending_multi(start, filters, False)[0] == want
    sm, seq = s.load_next_msg_multi(filters, start)
    assert sm.subject in set(filters) and all(
        s.load_msg(q).subject not in set(filters) for q in range(start, seq)
    )


def test_initial_first_seq(make):  # TestMemStoreInitialFirstSeq, TestFileStoreInitialFirstSeq
    s = make(first_seq=1000)
    assert s.store_msg(b"A", b"", b"OK")[0] == 1000
    assert s.store_msg(b"B", b"", b"OK")[0] == 1001
    st_ = s.fast_state()
    assert (st_.msgs, st_.first_seq, st_.last_seq) == (2, 1000, 1001)


def test_get_seq_from_time_with_last_deleted(make):  # TestMemStoreGetSeqFromTimeWithLastDeleted
    s = make()
    base = 10_000 * NS
    for i in range(1, 1001):
        s.store_raw_msg(b"A", b"", b"OK", 0, base + i * 1000 + (10**8 if i > 500 else 0))
    start = base + 500 * 1000 + 5 * 10**7
    for seq in range(900, 1001):
        s.remove_msg(seq)
    assert s.get_seq_from_time(start) == 501
    assert s.get_seq_from_time(0) == 1
    assert s.get_seq_from_time(base + 10**9) == 1001


def test_skip_msgs(make):  # TestMemStoreSkipMsgs, TestFileStoreSkipMsgs
    s = make()
    with pytest.raises(ErrSequenceMismatch):
        s.skip_msgs(10, 100)
    s.skip_msgs(1, 100)
    st_ = s.state()
    assert (st_.first_seq, st_.last_seq) == (101, 100)
    s.skip_msgs(101, 100_000)
    st_ = s.state()
    assert (st_.first_seq, st_.last_seq) == (100_101, 100_100)
    t = make()
    t.store_msg(b"foo", b"", b"")
    t.skip_msgs(2, 10)
    st_ = t.state()
    assert (st_.first_seq, st_.last_seq, st_.msgs, st_.num_deleted) == (1, 11, 1, 10)
    assert st_.deleted is not None and len(st_.deleted) == 10
    st_ = t.fast_state()
    assert (st_.first_seq, st_.last_seq, st_.msgs, st_.num_deleted) == (1, 11, 1, 10)
    assert t.skip_msg() == 12 and t.store_msg(b"foo", b"", b"")[0] == 13


def test_multi_last_seqs(make):  # TestMemStoreMultiLastSeqs
    s = make(block_size=1000)
    for _ in range(33):
        for sub in (b"foo.foo", b"foo.bar", b"foo.baz"):
            s.store_msg(sub, b"", b"abc")
    for _ in range(33):
        for sub in (b"bar.foo", b"bar.bar", b"bar.baz"):
            s.store_msg(sub, b"", b"abc")
    assert s.multi_last_seqs([b"foo.*"], 3, -1) == [1, 2, 3]
    assert s.multi_last_seqs([b"foo.*"], 0, -1) == [97, 98, 99]
    assert s.multi_last_seqs([b"bar.*"], 0, -1) == [196, 197, 198]
    assert s.multi_last_seqs([b"bar.*"], 99, -1) == []
    assert s.multi_last_seqs([b"foo.foo", b"foo.bar", b"foo.baz"], 3, -1) == [1, 2, 3]
    assert s.multi_last_seqs([b"foo.foo", b"foo.bar", b"foo.baz"], 0, -1) == [97, 98, 99]
    assert s.multi_last_seqs([b"bar.foo", b"bar.bar", b"bar.baz"], 99, -1) == []
    assert s.multi_last_seqs([b"foo.foo"], 3, -1) == [1]
    assert s.multi_last_seqs([b"foo.*", b"foo.bar"], 3, -1) == [1, 2, 3]
    assert s.multi_last_seqs([b"bar.>", b"bar.bar", b"bar.baz"], 0, -1) == [196, 197, 198]
    assert s.multi_last_seqs([b">"], 0, -1) == [97, 98, 99, 196, 197, 198]
    assert s.multi_last_seqs([b">"], 99, -1) == [97, 98, 99]


def test_multi_last_seqs_max_allowed(make):  # TestMemStoreMultiLastSeqsMaxAllowed
    s = make()
    for i in range(1, 101):
        s.store_msg(b"foo.%d" % i, b"", b"abc")
    with pytest.raises(ErrTooManyResults, match="too many matching results for request"):
        s.multi_last_seqs([b"foo.*"], 0, 10)


def test_multi_last_seqs_stale_last(make):  # TestMemStoreMultiLastSeqsDoesNotUseStaleLastValue
    s = make()
    for subj in [b"foo", b"bar", b"foo", b" baz", b"foo", b"foo", b"bar", b"foo", b"bar", b"baz"]:
        s.store_msg(subj, b"", b"")
    assert s.multi_last_seqs([b"foo", b"bar"], 0, 0) == [8, 9]
    assert s.remove_msg(8)
    assert s.multi_last_seqs([b"foo", b"bar"], 0, 0) == [6, 9]


def test_delete_all_first_sequence_check(make):  # TestMemStoreDeleteAllFirstSequenceCheck
    s = make()
    for _ in range(10):
        s.store_msg(b"foo", b"", b"abc")
    for seq in range(1, 11):
        s.remove_msg(seq)
    st_ = s.fast_state()
    assert (st_.first_seq, st_.last_seq, st_.msgs) == (11, 10, 0)


def test_message_ttl(make):  # TestMemStoreMessageTTL, TestFileStoreMessageTTL (a given clock)
    s = make(allow_msg_ttl=True)
    t0 = 5_000 * NS
    for i in range(10):
        s.store_raw_msg(b"test", b"", b"", 0, t0 + i, ttl=1)
    st_ = s.fast_state()
    assert (st_.first_seq, st_.last_seq, st_.msgs) == (1, 10, 10)
    assert s.next_expiry() == t0 + NS
    assert s.expire(t0 + NS).removed == 1
    res = s.expire(t0 + 2 * NS)
    assert res.removed == 9 and res.next_due is None
    st_ = s.fast_state()
    assert (st_.first_seq, st_.last_seq, st_.msgs) == (11, 10, 0)


def test_update_config_ttl_state(make):  # TestMemStoreUpdateConfigTTLState
    s = make()
    t0 = 7_000 * NS
    s.store_raw_msg(b"t", b"", b"", 0, t0, ttl=2)
    assert s.expire(t0 + 3 * NS).removed == 0  # TTLs off: kept
    s.update_config(StoreConfig(storage=s.type, allow_msg_ttl=True))
    assert s.next_expiry() == t0 + 2 * NS
    assert s.expire(t0 + 3 * NS).removed == 1


def test_subject_delete_markers(make):  # TestMemStoreSubjectDeleteMarkers
    s = make(max_age=NS, allow_msg_ttl=True, subject_delete_marker_ttl=NS)
    t0 = 9_000 * NS
    for i in range(3):
        s.store_raw_msg(b"test", b"", b"", 0, t0 + i)
    res = s.expire(t0 + NS + NS // 2)
    # The two older ones go; the last one of the subject waits for its marker.
    assert res.removed == 2 and len(res.markers) == 1
    subj, hdr = res.markers[0]
    assert subj == b"test"
    assert header_value(hdr, b"Nats-Marker-Reason") == b"MaxAge"
    assert header_value(hdr, b"Nats-TTL") == b"1s"
    assert header_value(hdr, b"Nats-Rollup") == b"sub"
    assert res.next_due is not None
    # Not proposed again within 2 s; again after.
    assert s.expire(t0 + 2 * NS).markers == []
    assert len(s.expire(t0 + 4 * NS).markers) == 1
    # The stream stores the marker (its rollup purges the subject's older messages).
    s.store_raw_msg(b"test", hdr, b"", 0, t0 + 4 * NS, ttl=1)
    s.purge_ex(b"test", 4, 0)
    st_ = s.state()
    assert (st_.msgs, st_.first_seq) == (1, 4)
    # The marker itself expires by its TTL and is removed without a new marker.
    res = s.expire(t0 + 6 * NS)
    assert res.removed == 1 and res.markers == [] and s.state().msgs == 0


def test_subject_delete_marker_for_ttl(make):
    s = make(allow_msg_ttl=True, subject_delete_marker_ttl=5 * NS)
    t0 = 11_000 * NS
    s.store_raw_msg(b"a", b"", b"1", 0, t0, ttl=2)
    s.store_raw_msg(b"a", b"", b"2", 0, t0 + NS, ttl=10)
    s.store_raw_msg(b"b", b"", b"3", 0, t0, ttl=1)
    res = s.expire(t0 + 3 * NS)
    # a's first message is not its last: removed; b's only one gets a marker (TTL 5s).
    assert res.removed == 1 and [m[0] for m in res.markers] == [b"b"]
    assert header_value(res.markers[0][1], b"Nats-TTL") == b"5s"
    assert res.next_due == t0 + 5 * NS
    # The stream did not store the marker: proposed again 2 s later, not before.
    assert s.expire(t0 + 4 * NS).markers == []
    assert [m[0] for m in s.expire(t0 + 5 * NS).markers] == [b"b"]


def test_all_last_seqs(make):  # TestMemStoreAllLastSeqs
    import random

    rnd = random.Random(4)
    subjs = [b"foo.foo", b"foo.bar", b"foo.baz", b"bar.foo", b"bar.bar", b"bar.baz"]
    s = make(max_msgs_per_subject=50)
    for _ in range(5000):
        s.store_msg(rnd.choice(subjs), b"", b"abc")
    expected = sorted(s.load_last_msg(sub).seq for sub in subjs)
    assert s.all_last_seqs() == expected


def test_subject_for_seq(make):  # TestMemStoreSubjectForSeq
    s = make()
    assert s.store_msg(b"foo.bar", b"", b"")[0] == 1
    with pytest.raises(ErrStoreMsgNotFound):
        s.subject_for_seq(0)
    assert s.subject_for_seq(1) == b"foo.bar"
    with pytest.raises(ErrStoreMsgNotFound):
        s.subject_for_seq(2)


def test_next_wildcard_and_literal_match(make):  # TestMemStoreNextWildcardMatch/LiteralMatch
    s = make()

    def store_n(subj: bytes, n: int) -> None:
        for _ in range(n):
            s.store_msg(subj, b"", b"msg")

    store_n(b"foo.bar.a", 1)  # 1
    store_n(b"foo.baz.bar", 10)  # 2-11
    store_n(b"foo.bar.b", 1)  # 12
    store_n(b"foo.baz.bar", 10)  # 13-22
    store_n(b"foo.baz.bar.no.match", 10)  # 23-32

    def nxt(filt: bytes, start: int) -> int:
        try:
            return s.load_next_msg(filt, True, start)[1]
        except ErrStoreEOF:
            return 0

    assert [nxt(b"foo.bar.*", q) for q in (0, 1, 2, 12, 13)] == [1, 1, 12, 12, 0]
    assert [nxt(b"foo.baz.*", q) for q in (1, 11, 12, 22, 23)] == [2, 11, 13, 22, 0]
    assert [nxt(b"foo.nope.*", 1), nxt(b"foo.>", 1), nxt(b"foo.>", 30)] == [0, 1, 30]
    assert [nxt(b"foo.bar.a", q) for q in (0, 2)] == [1, 0]
    assert [nxt(b"foo.baz.bar", q) for q in (1, 11, 22, 23)] == [2, 11, 22, 0]
    assert nxt(b"foo.nope", 1) == 0
    assert s.load_prev_msg(b"foo.bar.*", True, 11)[1] == 1
    assert s.load_last_msg(b"foo.bar.*").seq == 12
    assert s.load_last_msg(b"foo.*.bar").seq == 22


def test_load_last_all_when_last_deleted(make):
    s = make()
    s.store_msg(b"a", b"", b"1")
    s.store_msg(b"b", b"", b"2")
    s.remove_msg(2)
    # As nats-server: "last message" is the one at the last sequence.
    with pytest.raises(ErrStoreMsgNotFound):
        s.load_last_msg(b">")
    assert s.load_last_msg(b"a").seq == 1


def test_storage_update_callback(make):
    s = make(max_msgs=2)
    got: list[tuple[int, int, int, bytes]] = []
    s.register_storage_updates(lambda m, b, q, subj: got.append((m, b, q, subj)))
    size = msg_size(s, b"a", b"", b"x")
    for _ in range(3):
        s.store_msg(b"a", b"", b"x")
    assert got == [(1, size, 1, b"a"), (1, size, 2, b"a"), (-1, -size, 1, b"a"), (1, size, 3, b"a")]
    got.clear()
    s.purge()
    assert got == [(-2, -2 * size, 0, b"")]


def test_closed_store(make):
    s = make()
    s.store_msg(b"a", b"", b"1")
    s.stop()
    with pytest.raises(ErrStoreClosed, match="store is closed"):
        s.store_msg(b"a", b"", b"1")
    with pytest.raises(ErrStoreClosed):
        s.load_msg(1)
    s.stop()


def test_memstore_memory_is_reclaimed(monkeypatch):
    # KV-like: every subject updated, history 1; memory stays proportional to what is live.
    from pynats_server.jetstream.store import memstore

    monkeypatch.setattr(memstore, "SEGMENT_SIZE", 1 << 16)
    s = mem(max_msgs_per_subject=1)
    for i in range(10_000):
        s.store_msg(b"kv.%d" % (i % 100), b"", b"v" * 64)
    assert s.state().msgs == 100
    assert s.memory_usage() < 4 * (1 << 16)
    assert [s.load_last_msg(b"kv.%d" % k).seq for k in (0, 99)] == [9901, 10000]
    s.purge()
    assert s.memory_usage() < 4096


# ---------------------------------------------------------------------------------------------
# File store: persistence, crashes, corruption.


def all_msgs(s: StreamStore) -> list[tuple[int, bytes, bytes, bytes, int]]:
    st_ = s.state()
    out = []
    for q in range(st_.first_seq, st_.last_seq + 1):
        try:
            m = s.load_msg(q)
        except ErrStoreMsgNotFound:
            continue
        out.append((m.seq, m.subject, m.hdr, m.msg, m.ts))
    return out


def blocks(d: str) -> list[str]:
    names = [n for n in os.listdir(os.path.join(d, MSGS_DIR)) if n.endswith(".blk")]
    return [os.path.join(d, MSGS_DIR, n) for n in sorted(names, key=lambda n: int(n[:-4]))]


def test_file_write_and_restore(tmp_dir):  # TestFileStoreBasicWriteMsgsAndRestore
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, block_size=1000)
    for i in range(1, 101):
        s.store_msg(b"foo.%d" % (i % 7), HDR if i % 3 == 0 else b"", b"[%08d] Hello World!" % i)
    want, st0 = all_msgs(s), s.state()
    s.stop()
    s = file_store(d, block_size=1000)
    assert s.state() == st0 and all_msgs(s) == want
    assert len(blocks(d)) > 5
    assert s.purge() == 100
    s.stop()
    s = file_store(d, block_size=1000)
    st_ = s.state()
    assert (st_.msgs, st_.first_seq, st_.last_seq) == (0, 101, 100)
    assert len(blocks(d)) == 1
    assert s.store_msg(b"foo", b"", b"x")[0] == 101
    s.stop()


def test_file_reload_keeps_last_sequence(tmp_dir):  # TestFileStoreReloadAndLoseLastSequence
    d = os.path.join(tmp_dir, "s")
    s = file_store(d)
    for _ in range(22):
        s.skip_msg()
    for _ in range(5):
        s.stop()
        s = file_store(d)
        st_ = s.fast_state()
        assert (st_.first_seq, st_.last_seq) == (23, 22)
    # Removing the last messages does not roll the last sequence back either.
    for _ in range(3):
        s.store_msg(b"foo", b"", b"x")
    s.remove_msg(25)
    s.remove_msg(24)
    s.stop()
    s = file_store(d)
    st_ = s.state()
    assert (st_.msgs, st_.first_seq, st_.last_seq) == (1, 23, 25)
    s.stop()


def test_file_removes_survive_restart(tmp_dir):
    # TestFileStoreRemovePartialRecovery, TestFileStoreRemoveOutOfOrderRecovery,
    # TestFileStoreTombstonesNoFirstSeqRollback
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, block_size=600)
    for i in range(100):
        s.store_msg(b"foo", b"", b"msg %d" % i)
    for q in range(1, 51):
        s.remove_msg(q)
    for q in range(52, 100, 2):
        s.remove_msg(q)
    st0, want = s.state(), all_msgs(s)
    s.stop()
    s = file_store(d, block_size=600)
    assert s.state() == st0 and all_msgs(s) == want and st0.first_seq == 51
    s.stop()


def test_file_dead_blocks_go_and_their_removals_stay(tmp_dir):
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, block_size=400)
    for i in range(40):
        s.store_msg(b"foo", b"", b"%020d" % i)
    nblocks = len(blocks(d))
    # Interior removals in the first blocks: their DELs land in the last block.
    for q in (2, 3, 5, 7):
        s.remove_msg(q)
    for i in range(40):
        s.store_msg(b"bar", b"", b"%020d" % i)
    # The block holding those DELs dies as a whole: the DELs must move on, not vanish.
    for q in range(30, 81):
        s.remove_msg(q)
    assert len(blocks(d)) < nblocks + 5
    st0, want = s.state(), all_msgs(s)
    s.stop()
    s = file_store(d, block_size=400)
    assert s.state() == st0 and all_msgs(s) == want
    assert [m[0] for m in want[:4]] == [1, 4, 6, 8]
    # Everything gone: one (small) block stays, holding the sequence state.
    s.purge()
    assert len(blocks(d)) == 1 and s.disk_usage() < 100
    s.stop()


def test_file_compaction_reclaims_space(tmp_dir):
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, block_size=4000, max_msgs_per_subject=1)
    for i in range(2000):
        s.store_msg(b"kv.%d" % (i % 20), b"", b"v" * 40)
    assert s.state().msgs == 20
    # Old blocks are deleted or rewritten: far less than 2000 records' worth stays on disk.
    assert s.disk_usage() < 4 * 4000
    st0, want = s.state(), all_msgs(s)
    s.stop()
    s = file_store(d, block_size=4000, max_msgs_per_subject=1)
    assert s.state() == st0 and all_msgs(s) == want
    s.stop()


def test_file_erase_removes_bytes_from_disk(tmp_dir):  # TestFileStoreEraseAndNoIndexRecovery
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, block_size=2000)
    for i in range(60):
        s.store_msg(b"foo", b"", b"secret-%04d" % i)
    assert s.erase_msg(7) and s.erase_msg(59)
    s.stop()
    data = b"".join(open(p, "rb").read() for p in blocks(d))
    assert b"secret-0006" not in data and b"secret-0058" not in data
    assert b"secret-0005" in data
    s = file_store(d, block_size=2000)
    st_ = s.state()
    assert st_.deleted == [7, 59] and st_.last_seq == 60
    s.stop()


def test_file_age_limit_recovery(tmp_dir):  # TestFileStoreAgeLimitRecovery
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, max_age=NS)
    t0 = 1_000 * NS
    for i in range(10):
        s.store_raw_msg(b"foo", b"", b"x", 0, t0 + i)
    s.stop()
    s = file_store(d, max_age=NS)
    assert s.next_expiry() == t0 + NS
    assert s.expire(t0 + 2 * NS).removed == 10
    s.stop()
    s = file_store(d, max_age=NS)
    st_ = s.state()
    assert (st_.msgs, st_.first_seq, st_.last_seq) == (0, 11, 10)
    s.stop()


def test_file_message_ttl_restart(tmp_dir):  # TestFileStoreMessageTTLRestart
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, allow_msg_ttl=True)
    t0 = 2_000 * NS
    s.store_raw_msg(b"test", b"", b"", 0, t0, ttl=1)
    s.store_raw_msg(b"test", b"", b"", 0, t0, ttl=5)
    s.stop()
    s = file_store(d, allow_msg_ttl=True)
    assert s.next_expiry() == t0 + NS
    assert s.expire(t0 + 2 * NS).removed == 1
    s.stop()
    s = file_store(d, allow_msg_ttl=True)
    assert s.state().msgs == 1 and s.next_expiry() == t0 + 5 * NS
    s.stop()


def test_file_buffered_writes(tmp_dir):
    d = os.path.join(tmp_dir, "s")
    s = FileStore(FileStoreConfig(d, write_through=False), StoreConfig(storage=StorageType.FILE))
    for i in range(5):
        s.store_msg(b"foo", b"", b"%d" % i)
    assert s.load_msg(3).msg == b"2"  # served from the write buffer

    def crash_copy() -> StreamStore:
        c = d + "-crash"
        shutil.rmtree(c, ignore_errors=True)
        shutil.copytree(d, c)
        return file_store(c)

    c = crash_copy()
    assert c.state().msgs == 0
    c.stop()
    s.flush()
    c = crash_copy()
    assert all_msgs(c) == all_msgs(s)
    c.stop()
    s.sync()
    s.stop()


def test_file_sync_always(tmp_dir):
    d = os.path.join(tmp_dir, "s")
    s = FileStore(FileStoreConfig(d, sync_always=True), StoreConfig(storage=StorageType.FILE))
    s.store_msg(b"foo", b"", b"x")
    s.remove_msg(1)
    s.sync()
    s.stop()
    assert file_store(d).state().first_seq == 2


def _last_record(s: FileStore, subj: bytes, msg: bytes) -> int:
    return 36 + len(subj) + len(msg) + 4


def test_file_crash_cut_last_record_at_every_offset(tmp_dir):
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, block_size=4096)
    for i in range(30):
        s.store_msg(b"foo.%d" % (i % 3), HDR if i % 2 else b"", b"payload %d" % i)
    s.remove_msg(5)
    before, want = s.state(), all_msgs(s)
    s.store_msg(b"foo.last", b"", b"the last one")
    s.stop()
    last = blocks(d)[-1]
    size = os.path.getsize(last)
    start = size - _last_record(s, b"foo.last", b"the last one")
    with open(last, "rb") as f:
        assert f.read()[start + 4] == KIND_MSG  # the last record is that message
    for cut in range(start, size):
        c = os.path.join(tmp_dir, f"cut{cut}")
        shutil.copytree(d, c)
        with open(blocks(c)[-1], "r+b") as f:
            f.truncate(cut)
        r = file_store(c, block_size=4096)
        assert r.state() == before, cut
        assert all_msgs(r) == want
        assert bool(r.recovery_notes) == (cut > start)
        # The store goes on from there, and the cut file is whole again.
        assert r.store_msg(b"foo.next", b"", b"x")[0] == before.last_seq + 1
        r.stop()
        r = file_store(c, block_size=4096)
        assert r.state().msgs == before.msgs + 1 and not r.recovery_notes
        r.stop()
        shutil.rmtree(c)


def test_file_crash_zero_filled_tail(tmp_dir):
    # After a power cut a file can end in zeros (its size reached the disk, its data not).
    d = os.path.join(tmp_dir, "s")
    s = file_store(d)
    for i in range(10):
        s.store_msg(b"foo", b"", b"%d" % i)
    before = s.state()
    s.stop()
    with open(blocks(d)[-1], "ab") as f:
        f.write(bytes(100))
    r = file_store(d)
    assert r.state() == before and r.recovery_notes
    r.stop()


def test_file_torn_batch_keeps_limits(tmp_dir):
    # A store that removes by per-subject limit writes MSG then DEL in one write(); cut
    # between the two, recovery still holds the limit.
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, max_msgs_per_subject=1)
    s.store_msg(b"a", b"", b"1")
    s.store_msg(b"k", b"", b"2")
    s.store_msg(b"k", b"", b"3")  # removes 2: an interior removal, a DEL record
    s.stop()
    last = blocks(d)[-1]
    size = os.path.getsize(last)
    with open(last, "r+b") as f:
        f.truncate(size - 28)  # drop the DEL record
    r = file_store(d, max_msgs_per_subject=1)
    st_ = r.state()
    assert (st_.msgs, st_.first_seq, st_.last_seq, st_.deleted) == (2, 1, 3, [2])
    r.stop()
    r = file_store(d, max_msgs_per_subject=1)
    assert r.state().deleted == [2] and not r.recovery_notes
    r.stop()


def flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def test_file_corrupt_block_is_a_clear_error(tmp_dir):  # TestFileStoreBitRot
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, block_size=500)
    for i in range(40):
        s.store_msg(b"foo", b"", b"msg %03d" % i)
    s.stop()
    first = blocks(d)[0]
    flip(first, 60)
    with pytest.raises(ErrStoreCorrupt) as ei:
        file_store(d, block_size=500)
    e = ei.value
    assert e.directory == d and e.file == first
    assert "checksum mismatch" in str(e) and first in str(e) and d in str(e)


def test_file_corrupt_last_block_drops_the_rest(tmp_dir):
    d = os.path.join(tmp_dir, "s")
    s = file_store(d)
    for i in range(10):
        s.store_msg(b"foo", b"", b"msg %03d" % i)
    s.stop()
    flip(blocks(d)[-1], 5 * 48 + 30)  # inside the 6th record (48 bytes each)
    r = file_store(d)
    st_ = r.state()
    assert (st_.msgs, st_.last_seq) == (5, 5) and r.recovery_notes
    r.stop()


def test_file_corrupt_read_is_an_error_not_data(tmp_dir):
    d = os.path.join(tmp_dir, "s")
    s = file_store(d, block_size=500)
    for i in range(40):
        s.store_msg(b"foo", b"", b"msg %03d" % i)
    flip(blocks(d)[0], 60)
    with pytest.raises(ErrStoreCorrupt):
        s.load_msg(2)
    s.stop()


def test_file_unreadable_block(tmp_dir):
    d = os.path.join(tmp_dir, "s")
    s = file_store(d)
    s.store_msg(b"foo", b"", b"x")
    s.stop()
    os.mkdir(os.path.join(d, MSGS_DIR, "7.blk"))
    with pytest.raises(ErrStoreCorrupt, match="7.blk"):
        file_store(d)


def test_file_out_of_order_sequences(tmp_dir):  # TestFileStoreCorruptedNonOrderedSequences
    d = os.path.join(tmp_dir, "s")
    s = file_store(d)
    for i in range(3):
        s.store_msg(b"foo", b"", b"%d" % i)
    s.stop()
    b = blocks(d)[0]
    data = open(b, "rb").read()
    rl = len(data) // 3
    with open(os.path.join(d, MSGS_DIR, "1.blk"), "wb") as f:
        f.write(data)
    with open(os.path.join(d, MSGS_DIR, "2.blk"), "wb") as f:
        f.write(data[rl:])  # sequences 2 and 3 again
    with open(os.path.join(d, MSGS_DIR, "3.blk"), "wb") as f:
        f.write(b"")
    with pytest.raises(ErrStoreCorrupt, match="out of order"):
        file_store(d)


def test_file_write_failure_is_sticky(tmp_dir, monkeypatch):  # TestFileStoreWriteFailures
    import errno
    import types

    from pynats_server.jetstream.store import filestore

    d = os.path.join(tmp_dir, "s")
    s = file_store(d)
    for i in range(5):
        s.store_msg(b"foo", b"", b"%d" % i)
    real_write = os.write

    def short_then_enospc(fd: int, data: object) -> int:
        real_write(fd, bytes(memoryview(data))[:7])  # type: ignore[arg-type]
        raise OSError(errno.ENOSPC, "No space left on device")

    fake = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake.write = short_then_enospc
    monkeypatch.setattr(filestore, "os", fake)
    with pytest.raises(filestore.ErrStoreWrite, match="No space left"):
        s.store_msg(b"foo", b"", b"fails")
    monkeypatch.setattr(filestore, "os", os)
    with pytest.raises(filestore.ErrStoreWrite):
        s.store_msg(b"foo", b"", b"refused")
    s.stop()
    r = file_store(d)
    st_ = r.state()
    assert (st_.msgs, st_.last_seq) == (5, 5) and not r.recovery_notes
    r.stop()


# ---------------------------------------------------------------------------------------------
# Consumer stores.


@pytest.fixture(params=["mem", "file"])
def cstore(request, tmp_dir):
    if request.param == "mem":
        s: StreamStore = mem()
    else:
        s = file_store(os.path.join(tmp_dir, "s"))
    yield s
    s.stop()


def test_consumer_delivered_updates(cstore):  # TestFileStoreConsumerDeliveredUpdates
    o = cstore.consumer_store("o22", ConsumerStoreConfig(ack_policy=AckPolicy.NONE))
    assert cstore.state().consumer_count == 1
    for dseq, sseq in ((1, 100), (2, 110), (5, 130)):
        o.update_delivered(dseq, sseq, 1, time.time_ns())
        st_ = o.state()
        assert st_.delivered == SequencePair(dseq, sseq) == st_.ack_floor
        assert not st_.pending
    with pytest.raises(ErrNoAckPolicy, match="ack policy is none"):
        o.update_acks(1, 100)
    with pytest.raises(ErrNoAckPolicy):
        o.update_delivered(5, 130, 2, time.time_ns())
    o.stop()
    assert cstore.state().consumer_count == 0


def test_consumer_delivered_and_ack_updates(cstore):  # TestFileStoreConsumerDeliveredAndAckUpdates
    cfg = ConsumerStoreConfig(ack_policy=AckPolicy.EXPLICIT)
    o = cstore.consumer_store("o22", cfg)
    pending = 0
    ts = (time.time_ns() // NS) * NS

    def delivered(dseq: int, sseq: int) -> None:
        nonlocal pending
        o.update_delivered(dseq, sseq, 1, ts)
        pending += 1
        st_ = o.state()
        assert st_.delivered == SequencePair(dseq, sseq) and len(st_.pending) == pending

    def ack(dseq: int, sseq: int, dflr: int, sflr: int) -> None:
        nonlocal pending
        o.update_acks(dseq, sseq)
        pending -= 1
        st_ = o.state()
        assert len(st_.pending) == pending and st_.ack_floor == SequencePair(dflr, sflr)

    for d_, s_ in ((1, 100), (2, 110), (3, 130), (4, 150), (5, 165)):
        delivered(d_, s_)
    for d_, s_ in ((3, 101), (1, 1)):
        with pytest.raises(ErrStoreMsgNotFound):
            o.update_acks(d_, s_)
    ack(1, 100, 1, 109)
    ack(3, 130, 1, 109)
    ack(2, 110, 3, 149)
    ack(5, 165, 3, 149)
    ack(4, 150, 5, 165)
    for d_, s_ in ((6, 170), (7, 171), (8, 172), (9, 173), (10, 200)):
        delivered(d_, s_)
    ack(7, 171, 5, 165)
    ack(8, 172, 5, 165)
    state = o.state()
    o.stop()
    o = cstore.consumer_store("o22", cfg)
    if cstore.type == StorageType.FILE:
        assert o.state() == state
    o.stop()


def test_consumer_ack_all_and_redelivery(cstore):
    o = cstore.consumer_store("c", ConsumerStoreConfig(ack_policy=AckPolicy.ALL, max_deliver=3))
    for i in range(1, 6):
        o.update_delivered(i, i * 10, 1, i)
    o.update_delivered(6, 20, 2, 99)  # redelivery of stream seq 20
    st_ = o.state()
    assert st_.pending[20] == Pending(2, 99) and st_.redelivered == {20: 1}
    o.update_delivered(7, 20, 4, 100)  # past max_deliver: no longer pending
    assert 20 not in o.state().pending and o.state().redelivered == {20: 3}
    o.update_acks(4, 40)
    st_ = o.state()
    assert st_.ack_floor == SequencePair(4, 40) and sorted(st_.pending) == [50]
    # As nats-server: ack all clears redelivery counts of pending messages only.
    assert st_.redelivered == {20: 3}
    o.stop()


def test_consumer_update_and_force_update(cstore):
    o = cstore.consumer_store("c", ConsumerStoreConfig())
    good = ConsumerState(SequencePair(10, 20), SequencePair(5, 15), {18: Pending(8, 1)}, {18: 2})
    o.update(good)
    assert o.state() == good and o.has_state()
    with pytest.raises(ErrStoreOldUpdate, match="old update ignored"):
        o.update(ConsumerState(SequencePair(9, 20), SequencePair(5, 15)))
    o.force_update(ConsumerState(SequencePair(9, 20), SequencePair(5, 15)))
    assert o.state().delivered == SequencePair(9, 20)
    with pytest.raises(ErrBadConsumerState, match="bad ack floor for consumer"):
        o.update(ConsumerState(SequencePair(1, 20), SequencePair(5, 15)))
    with pytest.raises(ErrBadConsumerState, match=r"bad pending entry, sequence \[30\]"):
        o.update(ConsumerState(SequencePair(10, 20), SequencePair(5, 15), {30: Pending(1, 1)}))
    o.reset(7)
    st_ = o.state()
    assert st_.delivered == SequencePair(0, 7) and st_.ack_floor == SequencePair(0, 7)
    o.delete()


def test_consumer_encode_decode():
    # TestFileStoreConsumerEncodeDecodeRedelivered
    st_ = ConsumerState(SequencePair(100, 100), SequencePair(50, 50), {}, {122: 3, 144: 8})
    assert decode_consumer_state(encode_consumer_state(st_)) == st_
    # TestFileStoreConsumerEncodeDecodePendingBelowStreamAckFloor
    now = (time.time_ns() // NS - 10) * NS
    st_ = ConsumerState(
        SequencePair(1192, 10185),
        SequencePair(1189, 10815),
        {
            10782: Pending(1190, now),
            10810: Pending(1191, now + NS),
            10815: Pending(1192, now + 2 * NS),
        },
    )
    assert decode_consumer_state(encode_consumer_state(st_)) == st_
    # nats-server's bytes for a small state (magic 22, version 2, varints).
    small = ConsumerState(SequencePair(3, 4), SequencePair(1, 2))
    assert encode_consumer_state(small) == bytes([22, 2, 1, 2, 3, 4, 0, 0])


def test_consumer_file_state_corrupt(tmp_dir):  # TestFileStoreBadConsumerState
    d = os.path.join(tmp_dir, "s")
    s = file_store(d)
    o = s.consumer_store("c", ConsumerStoreConfig())
    o.update_delivered(1, 1, 1, 1)
    o.flush()
    path = os.path.join(d, "obs", "c", "o.dat")
    assert os.path.exists(path)
    o.stop()
    assert s.consumer_names() == ["c"]
    flip(path, 3)
    with pytest.raises(ErrStoreCorrupt, match="o.dat"):
        s.consumer_store("c", ConsumerStoreConfig())
    s.stop()


# ---------------------------------------------------------------------------------------------
# Helpers.


def test_header_value():
    hdr = b"NATS/1.0\r\nNats-TTL:  5s\r\nX-Nats-TTL: no\r\nNats-Rollup: sub\r\n\r\n"
    assert header_value(hdr, b"Nats-TTL") == b"5s"
    assert header_value(hdr, b"Nats-Rollup") == b"sub"
    assert header_value(hdr, b"nats-ttl") is None  # keys are case-sensitive, as nats-server
    assert header_value(b"", b"A") is None
    assert header_value(b"NATS/1.0\r\nNats-TTLX: 1\r\n\r\n", b"Nats-TTL") is None


def test_import_has_no_side_effects():
    import subprocess
    import sys

    code = (
        "import threading, asyncio.events as e;"
        "import pynats_server.jetstream.store as s;"
        "assert threading.active_count() == 1;"
        "print(len(s.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_index_stays_small_when_the_front_stays(make):
    # KV-like: one key written once (it holds the first sequence), another updated again
    # and again. The index must not keep a position for every update ever made.
    s = make(max_msgs_per_subject=1, block_size=4000)
    s.store_msg(b"kv.old", b"", b"first")
    for i in range(10_000):
        s.store_msg(b"kv.hot", b"", b"v%d" % i)
    st_ = s.state(deleted=False)
    assert (st_.msgs, st_.first_seq, st_.last_seq, st_.num_deleted) == (2, 1, 10_001, 9_999)
    assert len(s._sid) < 5000  # type: ignore[attr-defined]
    assert s.load_msg(1).msg == b"first" and s.load_msg(10_001).msg == b"v9999"
    with pytest.raises(ErrStoreMsgNotFound):
        s.load_msg(10_000)
    assert s.load_next_msg(b"kv.*", True, 2)[1] == 10_001
    assert s.load_prev_msg(b">", True, 10_000)[1] == 1
    assert s.subjects_state(b">") == {
        b"kv.old": SimpleState(1, 1, 1),
        b"kv.hot": SimpleState(1, 10_001, 10_001),
    }
    assert s.get_seq_from_time(s.load_msg(10_001).ts) == 10_001
    assert len(s.state().deleted or []) == 9_999
    if make.kind == "file":
        d = s.directory  # type: ignore[attr-defined]
        before = s.state()
        s.stop()
        r = file_store(d, block_size=4000, max_msgs_per_subject=1)
        assert r.state() == before and len(r._sid) < 5000
        r.stop()
        os.unlink(os.path.join(d, MSGS_DIR, "index.db"))
        r = file_store(d, block_size=4000, max_msgs_per_subject=1)
        assert r.state() == before and not r.recovered_from_snapshot
        assert len(r._sid) < 5000
        r.stop()


# ---------------------------------------------------------------------------------------------
# store_fast: the stream's ingest shortcut leaves the same store as store_msg.

_FAST_OPS = ["fast", "fast", "fast", "msg", "msg_hdr", "remove_first", "remove_last", "purge",
             "purge_subject", "skip", "compact", "restart"]  # fmt: skip


def _comparable(s: StreamStore) -> tuple:
    st = s.state()
    msgs = []
    seq = st.first_seq
    while seq and seq <= st.last_seq:
        try:
            m, seq = s.load_next_msg(b">", True, seq)
        except (ErrStoreEOF, ErrStoreMsgNotFound):
            break
        msgs.append((m.seq, m.subject, m.hdr, m.msg))
        seq += 1
    return (st.msgs, st.bytes, st.first_seq, st.last_seq, st.num_subjects, st.num_deleted, tuple(msgs),
            tuple(sorted(s.subjects_totals(b">").items())))  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.sampled_from(_FAST_OPS), st.sampled_from(SUBJECTS[:3])), max_size=50),
       file=st.booleans())  # fmt: skip
def test_store_fast_matches_store_msg(ops, file):
    d = tempfile.mkdtemp(prefix="jsstore-fast-")
    try:
        def open_store(name: str) -> StreamStore:
            if file:
                return FileStore(FileStoreConfig(os.path.join(d, name), block_size=400),
                                 StoreConfig(storage=StorageType.FILE))  # fmt: skip
            return MemStore(StoreConfig(storage=StorageType.MEMORY))

        a, b = open_store("a"), open_store("b")
        for i, (op, subj) in enumerate(ops):
            payload = bytes([i % 251]) * (i % 7 * 10)
            if op == "fast":
                r = a.store_fast(subj, payload)
                if r is None:
                    a.store_msg(subj, b"", payload)
                b.store_msg(subj, b"", payload)
            elif op in ("msg", "msg_hdr"):
                hdr = b"NATS/1.0\r\nX: 1\r\n\r\n" if op == "msg_hdr" else b""
                a.store_msg(subj, hdr, payload)
                b.store_msg(subj, hdr, payload)
            elif op in ("remove_first", "remove_last"):
                st_ = b.fast_state()
                seq = st_.first_seq if op == "remove_first" else st_.last_seq
                assert a.remove_msg(seq) == b.remove_msg(seq)
            elif op == "purge":
                assert a.purge() == b.purge()
            elif op == "purge_subject":
                assert a.purge_ex(subj, 0, 1) == b.purge_ex(subj, 0, 1)
            elif op == "skip":
                a.skip_msg()
                b.skip_msg()
            elif op == "compact":
                seq = b.fast_state().last_seq
                assert a.compact(seq) == b.compact(seq)
            elif op == "restart" and file:
                a.flush()
                a.stop()
                a = open_store("a")
            assert _comparable(a) == _comparable(b), (i, op)
        if file:
            a.flush()
            other = FileStore(FileStoreConfig(os.path.join(d, "a"), block_size=400), StoreConfig(storage=StorageType.FILE))
            try:
                assert _comparable(other) == _comparable(a)  # what is on disk replays the same
            finally:
                other.stop()
        a.stop()
        b.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("file", [False, True])
def test_store_fast_takes_the_shortcut(file, tmp_path):
    s: StreamStore
    if file:
        s = FileStore(FileStoreConfig(str(tmp_path)), StoreConfig(storage=StorageType.FILE))
    else:
        s = MemStore(StoreConfig(storage=StorageType.MEMORY))
    assert s.store_fast(b"a", b"x") is None  # empty store: the general path
    s.store_msg(b"a", b"", b"x")
    assert s.store_fast(b"b", b"x") is None  # a new subject: the general path
    seq, _ = s.store_fast(b"a", b"y")
    assert seq == 2 and s.load_msg(2).msg == b"y"
    s.update_config(StoreConfig(storage=s.type, max_msgs=10))
    assert s.store_fast(b"a", b"z") is None  # a limit to apply: the general path
    s.stop()
