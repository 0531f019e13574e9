"""A consumer of a stream: what it has delivered, what waits for an ack, and delivery itself.

The state and its rules are nats-server's (consumer.go): the next stream sequence to look at
(`sseq`), the next consumer sequence (`dseq`), the ack floors, the messages delivered and not
acked (`pending`: stream seq -> [consumer seq, delivery time ns]), redelivery counts (`rdc`)
and the queue of messages to redeliver (`rdq`). Pull consumers keep the requests waiting for
messages (`waiting`); push consumers deliver to their deliver_subject while someone
subscribes to it (the account's subscription index tells them when that changes).

Delivery runs in `_run`, scheduled with `signal()` (nats-server's goroutine woken by a
channel): new messages, new pull requests, acks that free room, interest, timers. It
delivers what it can, a chunk at a time, then works out when it must run again (pull request
expiries and heartbeats). Acks, pull requests and flow control answers come in on internal
subscriptions in the stream's account and are handled where they arrive.

Timers: the ack wait check (`_ptmr`, over all pending), push idle heartbeats, pull request
expiry/heartbeats, the inactivity delete timer, the end of a pause, and (file stores) the
state flush, about ten times a second at most as nats-server's consumer file store.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..gotime import go_duration
from ..ids import nuid
from ..protocol import wire
from ..protocol.subjects import is_subset_match, match_literal
from . import outbound
from .consumer_config import (
    DELETE_WAIT_DEFAULT,
    ConsumerConfig,
    dynamic_metadata,
    format_time,
    parse_go_duration,
    parse_next_request,
)
from .store import (
    AckPolicy,
    ConsumerMemStore,
    ConsumerState,
    ConsumerStoreConfig,
    ErrStoreEOF,
    ErrStoreMsgNotFound,
    Pending,
    SequencePair,
    StorageType,
    StoreError,
)
from .store.base import header_value
from .versioning import required_level_error

if TYPE_CHECKING:
    from .ports import ConsumerStreamPort

META_FILE = "meta.inf"
CHUNK = 2048  # deliveries per run before yielding to the loop
FC_MAX_PENDING = 32 * 1024 * 1024  # JsFlowControlMaxPending
ACK_WAIT_DELAY = 1_000_000  # ns added to ack wait timers (bursts in one check)
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ZERO_TIME = "0001-01-01T00:00:00Z"

ADV_PRE = "$JS.EVENT.ADVISORY.CONSUMER."
_MAX_ACK_PENDING = "max ack pending"

# Acks (the body of a message to the ack reply subject).
_ACK = b"+ACK"
_OK = b"+OK"
_NAK = b"-NAK"
_WPI = b"+WPI"
_NXT = b"+NXT"
_TERM = b"+TERM"


def _ack_policy(name: str) -> AckPolicy:
    return {"none": AckPolicy.NONE, "all": AckPolicy.ALL, "explicit": AckPolicy.EXPLICIT,
            "flow_control": AckPolicy.FLOW_CONTROL}[name]  # fmt: skip


def store_config(cfg: ConsumerConfig) -> ConsumerStoreConfig:
    return ConsumerStoreConfig(ack_policy=_ack_policy(cfg.ack_policy), max_deliver=cfg.max_deliver)


def create_name() -> str:
    """An ephemeral's name: 8 characters of nats-server's base-62 digits (getHash(nuid))."""
    import hashlib

    h = hashlib.sha256(nuid().encode()).digest()
    return "".join(_DIGITS[b % 62] for b in h[:8])


def ack_reply_info(subject: bytes) -> tuple[int, int, int]:
    """(stream seq, consumer seq, delivery count) of `$JS.ACK.<s>.<c>.<dc>.<sseq>.<dseq>.<ts>.<n>`
    (also the 11+ token v2 form); zeros when the subject is not one."""
    t = subject.split(b".")
    n = len(t)
    if (n != 9 and n < 11) or t[0] != b"$JS" or t[1] != b"ACK":
        return 0, 0, 0
    off = 2 if n == 9 else 4
    return _num(t[off + 3]), _num(t[off + 4]), _num(t[off + 2])


def _num(b: bytes) -> int:
    # parseAckReplyNum: -1 (as uint64, huge) for a non-number; 0 is what callers test.
    return int(b) if b.isdigit() else 0


class WaitingRequest:
    """A pull request waiting for messages (waitingRequest)."""

    __slots__ = ("reply", "n", "d", "b", "expires", "received", "hb", "hbt", "no_wait", "group")

    def __init__(self, reply: bytes, n: int, b: int, expires: float, hb: float, no_wait: bool,
                 group: dict[str, Any] | None) -> None:
        now = time.monotonic()
        self.reply = reply
        self.n = n  # messages still wanted
        self.d = 0  # messages delivered
        self.b = b  # max bytes left (0: no limit)
        self.expires = expires  # monotonic deadline, 0: none
        self.received = now
        self.hb = hb  # heartbeat interval (s), 0: none
        self.hbt = now + hb if hb else 0.0
        self.no_wait = no_wait
        self.group = group


class WaitQueue:
    """The waiting requests, in order (waitQueue); one with more to get goes to the back."""

    def __init__(self, max_waiting: int) -> None:
        self.max = max_waiting
        self.q: deque[WaitingRequest] = deque()
        self.last = time.monotonic()

    def __len__(self) -> int:
        return len(self.q)

    def is_full(self) -> bool:
        return len(self.q) == self.max

    def add(self, wr: WaitingRequest) -> bool:
        if self.is_full():
            return False
        self.q.append(wr)
        self.last = wr.received
        return True

    def peek(self) -> WaitingRequest | None:
        return self.q[0] if self.q else None

    def pop(self) -> WaitingRequest:
        q = self.q
        wr = q[0]
        wr.d += 1
        wr.n -= 1
        if wr.n > 0 and len(q) > 1:
            q.popleft()
            q.append(wr)
        elif wr.n <= 0:
            q.popleft()
        return wr

    def cycle(self) -> None:
        if self.q:
            self.q.append(self.q.popleft())

    def remove_current(self) -> None:
        self.q.popleft()


class Consumer:
    """One consumer of a stream."""

    def __init__(self, stream: ConsumerStreamPort, cfg: ConsumerConfig, name: str, created_ns: int) -> None:
        self.stream = stream
        self.js = stream.js
        self.server = stream.js.server
        self.loop = self.server.loop
        self.account = stream.account
        self.cfg = cfg
        self.name = name
        self.created = created_ns
        self.closed = False
        self.is_pull = not cfg.deliver_subject
        self.retention = stream.config.get("retention", "limits")
        self.ack_policy = cfg.ack_policy
        # Delivery state (nats-server's names).
        self.sseq = 1
        self.dseq = 1
        self.adflr = 0
        self.asflr = 0
        self.pending: dict[int, list[int]] = {}
        self.rdc: dict[int, int] = {}
        self.rdq: deque[int] = deque()
        self.rdqi: set[int] = set()
        self.npc = 0  # messages left to deliver (num pending)
        self.npf = 0  # num pending is valid through this stream sequence
        self.lss: list[int] | None = None  # deliver last_per_subject: the sequences to send
        self.lss_resume = 0
        # What nats-server's consumer store holds (info reports it, and it is what is
        # persisted): delivered and ack floor as the store's own rules move them.
        self.st_dcons = 0
        self.st_dstream = 0
        self.st_afc = 0
        self.st_afs = 0
        self.maxdc = max(cfg.max_deliver, 0)
        self.maxp = cfg.max_ack_pending
        self.ldt = 0  # last delivery (ns), last ack (ns)
        self.lat = 0
        self.waiting = WaitQueue(cfg.max_waiting) if self.is_pull else None
        self.lwqic = 0.0
        # Push.
        self.dsubj = cfg.deliver_subject.encode()
        self.active = self.is_pull
        self.pbytes = 0
        self.maxpb = 0
        self.pblimit = 0
        self.fcid = b""
        self.fcsz = 0
        # Subjects.
        pre = f"{stream.name}.{name}"
        self.ack_pre = f"$JS.ACK.{pre}.".encode()
        self.fc_pre = f"$JS.FC.{pre}.".encode()
        self.next_subj = f"$JS.API.CONSUMER.MSG.NEXT.{pre}".encode()
        self._set_filters()
        self.dthresh = 0.0
        # Loop glue.
        self._kicked = False
        self._subs: list[Any] = []
        self._ptmr: Any = None
        self._ptmr_end = 0.0
        self._wtmr: Any = None  # pull request expiry / heartbeat
        self._hbtmr: Any = None  # push idle heartbeat
        self._hb_last = 0.0
        self._dtmr: Any = None
        self._dtmr_end = 0.0
        self._uptmr: Any = None
        self._flush_handle: Any = None
        self._flush_every = 0.1
        self._watching = False
        self._replay_lts = 0
        self._replay_ready = 0  # a message whose replay delay was already waited for
        self._last_err = ""
        # The store (delivery state on disk for file streams).
        self.store: Any = None
        self.persist = False

    # -- filters ------------------------------------------------------------------------

    def _set_filters(self) -> None:
        fl = self.cfg.filters()
        self.filters = [f.encode() for f in fl]
        self.filter: bytes = self.filters[0] if len(self.filters) == 1 else b""
        self.filter_wc = bool(self.filter) and (b"*" in self.filter or b">" in self.filter)
        self._match_cache: dict[bytes, bool] = {}

    def matches(self, subject: bytes) -> bool:
        """isFilteredMatch: does a message subject belong to this consumer?"""
        fl = self.filters
        if not fl:
            return True
        m = self._match_cache.get(subject)
        if m is None:
            m = any(subject == f or match_literal(subject, f) for f in fl)
            if len(self._match_cache) > 4096:
                self._match_cache.clear()
            self._match_cache[subject] = m
        return m

    def is_filtered(self) -> bool:
        """isFiltered: filters that are not exactly the stream's subjects."""
        if not self.filters:
            return False
        subjects = self.stream.config.get("subjects") or []
        return set(self.cfg.filters()) != set(subjects) or len(subjects) != len(self.filters)

    # -- lifecycle ----------------------------------------------------------------------

    def open_store(self, recovering: bool) -> None:
        """The consumer store: the stream's (files for a file stream), memory for mem_storage."""
        st = self.stream.store
        scfg = store_config(self.cfg)
        if self.cfg.mem_storage or st.type == StorageType.MEMORY:
            self.store = ConsumerMemStore(st, scfg)
            st.add_consumer(self.store)
        else:
            self.store = st.consumer_store(self.name, scfg, self.created)
            self.persist = True
            if not recovering or not os.path.exists(self.meta_path()):
                self.write_meta()
        if self.store.has_state():
            self._apply_state(self.store.state())
        else:
            self.select_starting_seq()

    def meta_path(self) -> str:
        return os.path.join(self.stream.dir, "obs", self.name, META_FILE)

    def write_meta(self) -> None:
        """`obs/<name>/meta.inf`: the config and creation time (restored at start)."""
        if not self.persist:
            return
        path = self.meta_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        meta = {"stream_name": self.stream.name, "name": self.name, "created": self.created,
                "config": self.cfg.to_json()}  # fmt: skip
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.replace(tmp, path)

    def start(self) -> None:
        """setLeader(true): subscriptions, timers, delivery."""
        client = self.stream.client
        assert client is not None
        if self.ack_policy not in ("none", "flow_control"):
            self._subs.append(client.subscribe(self.ack_pre + b"*.*.*.*.*", self._on_ack))
        self._subs.append(client.subscribe(self.next_subj, self._on_next_request))
        if self.cfg.flow_control:
            self.pblimit = FC_MAX_PENDING
            self.maxpb = max(FC_MAX_PENDING // 16, 1)
            self._subs.append(client.subscribe(self.fc_pre + b"*", self._on_flow_control))
        self.update_inactive_threshold()
        if not self.is_pull:
            self.account.sublist.watch(self.dsubj, self._interest_changed)
            self._watching = True
            self.active = self._has_interest()
        self.stream_num_pending()
        if self.dthresh > 0 and (self.is_pull or not self.active):
            self._set_dtmr(self.dthresh)
        self.update_pause_state()
        if self.cfg.idle_heartbeat and not self.is_pull:
            self._hb_last = time.monotonic()
            self._hbtmr = self.loop.call_later(self.cfg.idle_heartbeat / 1e9, self._on_hb_timer)
        if self.pending:
            # Restored pending: check them soon (0.5-1.5 s), or at ack wait if shorter.
            delay = 500_000_000 + random.randrange(1_000_000_000)
            if self.cfg.ack_wait < delay:
                delay = self.ack_wait(0)
            self.reset_ptmr(delay)
        self.signal()

    def update_inactive_threshold(self) -> None:
        cfg = self.cfg
        jitter = 0.1 + random.random() * 0.9
        if not cfg.is_durable and cfg.inactive_threshold <= 0:
            self.dthresh = DELETE_WAIT_DEFAULT / 1e9 + jitter
            cfg.inactive_threshold = DELETE_WAIT_DEFAULT
        elif cfg.inactive_threshold > 0:
            self.dthresh = cfg.inactive_threshold / 1e9 + (jitter if self.is_pull else 0.0)
        else:
            self.dthresh = 0.0

    def _teardown(self) -> None:
        self.closed = True
        client = self.stream.client
        for sub in self._subs:
            if client is not None:
                client.remove_sub(sub)
        self._subs.clear()
        if self._watching:
            self.account.sublist.unwatch(self.dsubj, self._interest_changed)
            self._watching = False
        for h in (self._ptmr, self._wtmr, self._hbtmr, self._dtmr, self._uptmr):
            if h is not None:
                h.cancel()
        self._ptmr = self._wtmr = self._hbtmr = self._dtmr = self._uptmr = None

    def stop(self) -> None:
        """Server shutdown (or the stream stops): the state is written, the files stay."""
        if self.closed:
            return
        self._teardown()
        self._write_state()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.store is not None:
            self.store.stop()
        self.stream.remove_consumer(self)

    def delete(self, advisory: bool = True) -> None:
        """CONSUMER.DELETE (or inactivity, or the stream's deletion): waiting pulls get
        `409 Consumer Deleted`, the state goes."""
        if self.closed:
            return
        if advisory:
            self._advisory("DELETED", self._action_event("delete"))
        if self.waiting is not None:
            for wr in list(self.waiting.q):
                self._send_status(wr.reply, outbound.status(409, "Consumer Deleted"))
            self.waiting.q.clear()
        self._teardown()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.store is not None:
            self.store.delete()
        self.stream.remove_consumer(self)
        if self.retention == "interest" and not self.stream.closed:
            self._cleanup_no_interest()
        self.server.schedule_flush()

    # -- interest (push) ----------------------------------------------------------------

    def _has_interest(self) -> bool:
        """Interest as nats-server's sublist notifications see it: a subscription on exactly
        the deliver subject (with the deliver group as its queue, when there is one); a
        wildcard subscription that happens to match does not make the consumer active."""
        r = self.account.sublist.match(self.dsubj)
        if not r:
            return False
        subject = self.dsubj
        group = self.cfg.deliver_group.encode()
        if group:
            for q, members in r.qsubs:
                if q == group and any(m.subject == subject for m in members):
                    return True
            return False
        return any(sub.subject == subject for sub in r.psubs)

    def _interest_changed(self) -> None:
        # Told from inside the subscription index: look at it once the change is done.
        self.loop.call_soon(self._check_interest)

    def _check_interest(self) -> None:
        if self.closed:
            return
        interest = self._has_interest()
        if interest != self.active or (not interest and self._dtmr is None and self.dthresh > 0):
            self.update_delivery_interest(interest)

    def update_delivery_interest(self, interest: bool) -> None:
        if self.closed or self.is_pull:
            return
        if interest and not self.active:
            self.signal()
        self.active = interest
        if self._dtmr is not None and self.dthresh > 0 and not interest:
            return
        self._clear_dtmr()
        if not interest and self.dthresh > 0:
            self._set_dtmr(self.dthresh)

    # -- inactivity ---------------------------------------------------------------------

    def _set_dtmr(self, delay: float) -> None:
        self._clear_dtmr()
        self._dtmr_end = time.monotonic() + delay
        self._dtmr = self.loop.call_later(delay, self._delete_not_active)

    def _clear_dtmr(self) -> None:
        if self._dtmr is not None:
            self._dtmr.cancel()
            self._dtmr = None

    def _delete_not_active(self) -> None:
        self._dtmr = None
        if self.closed:
            return
        if not self.is_pull:
            if self.active:
                return
        else:
            assert self.waiting is not None
            elapsed = time.monotonic() - self.waiting.last
            if elapsed < self.dthresh:
                self._set_dtmr(self.dthresh - elapsed)
                return
            self.process_waiting(True)
            if len(self.waiting):
                self._set_dtmr(self.dthresh)
                return
            # Messages out for processing: wait until the last could be acked, then the
            # threshold again.
            now = time.time_ns()
            delay = 0
            bo = self.cfg.backoff
            for seq, p in self.pending.items():
                if not bo:
                    aw = self.ack_wait(0)
                else:
                    aw = self.ack_wait(bo[min(max(self.rdc.get(seq, 0), 0), len(bo) - 1)])
                ts = p[1] + aw + int(self.dthresh * 1e9)
                if ts > now:
                    delay = max(delay, ts - now)
            if delay > 0:
                self._set_dtmr(delay / 1e9)
                return
        self.delete()

    def suppress_deletion(self) -> None:
        """Ack activity keeps a consumer with an inactive threshold alive."""
        if self.closed:
            return
        if not self.is_pull:
            if self._dtmr is not None:
                self._set_dtmr(self.dthresh)
        else:
            assert self.waiting is not None
            self.waiting.last = time.monotonic()
            if self._dtmr is not None:
                self._set_dtmr(self.dthresh)

    # -- pause --------------------------------------------------------------------------

    def is_paused(self) -> bool:
        p = self.cfg.paused_until_ns()
        return bool(p) and time.time_ns() < p

    def update_pause_state(self) -> None:
        if self._uptmr is not None:
            self._uptmr.cancel()
            self._uptmr = None
        p = self.cfg.paused_until_ns()
        now = time.time_ns()
        if not p or p <= now:
            return
        self._uptmr = self.loop.call_later(min((p - now) / 1e9, 86400 * 365), self._unpause)

    def _unpause(self) -> None:
        self._uptmr = None
        if self.closed:
            return
        if self.is_paused():  # a very long pause: the timer is capped
            self.update_pause_state()
            return
        self._pause_advisory()
        self.signal()

    # -- signals from the stream --------------------------------------------------------

    def signal(self) -> None:
        """Wake the delivery loop (signalNewMessages)."""
        if not self._kicked and not self.closed:
            self._kicked = True
            self.loop.call_soon(self._run)

    def new_message(self, seq: int, subject: bytes | None = None) -> None:
        """A message was stored (processStreamSignal)."""
        if self.closed:
            return
        if self.filters:
            if subject is None:
                try:
                    subject = self.stream.store.subject_for_seq(seq)
                except StoreError:
                    return
            if not self.matches(subject):
                return
        if seq > self.npf:
            self.npc += 1
        if seq < self.sseq:
            return
        if self.is_pull:
            if self.waiting.q:  # type: ignore[union-attr]
                self.signal()
        elif self.active:
            self.signal()

    def dec_stream_pending(self, seq: int, subject: bytes) -> None:
        """A message left the stream (limits, removal): it is no longer to be delivered, and
        no longer pending if it was (processTerm with nats-server's reason)."""
        if self.closed:
            return
        if seq >= self.sseq and self.matches(subject):
            self.npc -= 1
        p = self.pending.get(seq)
        if p is not None:
            dc = self.delivery_count(seq)
            self.loop.call_soon(self.process_term, seq, p[0], dc, "Unacknowledged message was deleted", None)

    def purge(self, sseq: int, slseq: int, is_wider: bool = False) -> None:
        """The stream was purged: `sseq` is its new first sequence (0: all gone, `slseq` the
        last sequence before the purge)."""
        if self.closed:
            return
        if sseq == 0 and not is_wider:
            sseq = slseq + 1
        if self.sseq < sseq:
            self.sseq = sseq
        if self.asflr < sseq:
            self.asflr = sseq - 1
            store = self.stream.store
            for seq in list(self.pending):
                p = self.pending[seq]
                gone = seq <= self.asflr
                if not gone and is_wider:
                    try:
                        store.load_msg(seq)
                    except (ErrStoreMsgNotFound, ErrStoreEOF):
                        gone = True
                if gone:
                    if p[0] > self.adflr:
                        self.adflr = p[0]
                        if self.adflr > self.dseq:
                            self.dseq = self.adflr
                    del self.pending[seq]
                    self.rdc.pop(seq, None)
        if not self.pending:
            self.rdc = {}
            self.adflr, self.asflr = self.dseq - 1, self.sseq - 1
        if self.rdq:
            keep = [s for s in self.rdq if s >= self.sseq]
            self.rdq = deque(keep)
            self.rdqi = set(keep)
        self.stream_num_pending()
        self._store_write()

    # -- starting sequence --------------------------------------------------------------

    def select_starting_seq(self) -> None:
        store = self.stream.store
        st = store.fast_state()
        cfg = self.cfg
        if cfg.opt_start_seq == 0:
            dp = cfg.deliver_policy
            if dp == "all":
                self.sseq = st.first_seq
            elif dp == "last":
                if not self.filters:
                    self.sseq = st.last_seq
                else:
                    self.sseq = 0
                    for f in self.filters:
                        ss = store.filtered_state(1, f)
                        if ss.last > self.sseq:
                            self.sseq = ss.last
            elif dp == "last_per_subject":
                if self.stream.config.get("max_msgs_per_subject") == 1:
                    self.sseq = st.first_seq
                else:
                    seqs = store.multi_last_seqs(self.filters or [b">"], 0, 0)
                    self.lss = list(seqs) if seqs else None
                    self.lss_resume = st.last_seq
                    self.sseq = seqs[0] if seqs else st.last_seq
            elif cfg.opt_start_time is not None:
                self.sseq = store.get_seq_from_time(cfg.opt_start_time.ns)
                if self.filters:
                    nseq = st.last_seq
                    for f in self.filters:
                        ss = store.filtered_state(st.first_seq, f)
                        if ss.first >= self.sseq and ss.first < nseq:
                            nseq = ss.first
                    if self.sseq < nseq < st.last_seq:
                        self.sseq = nseq
            else:
                self.sseq = st.last_seq + 1
        else:
            self.sseq = cfg.opt_start_seq
        if st.first_seq == 0 and (cfg.direct or cfg.opt_start_seq == 0):
            self.sseq = 1
        elif self.sseq > st.last_seq and (cfg.direct or cfg.opt_start_seq == 0):
            self.sseq = st.last_seq + 1
        elif self.sseq < st.first_seq:
            self.sseq = st.first_seq
        self.dseq = 1
        self.adflr = 0
        self.asflr = self.sseq - 1
        if self.sseq > 0:
            # SetStarting: what the store reports as delivered until something is.
            self.st_dstream = self.st_afs = self.sseq - 1
            self.store.set_starting(self.sseq - 1)
            self._changed()

    def _apply_state(self, st: ConsumerState) -> None:
        self.sseq = st.delivered.stream + 1
        self.dseq = st.delivered.consumer + 1
        self.adflr = st.ack_floor.consumer
        self.asflr = st.ack_floor.stream
        self.st_dcons = st.delivered.consumer
        self.st_dstream = st.delivered.stream
        self.st_afc = st.ack_floor.consumer
        self.st_afs = st.ack_floor.stream
        self.pending = {s: [p.sequence, p.timestamp] for s, p in st.pending.items()}
        self.rdc = dict(st.redelivered)
        stale = [s for s in self.rdc if s <= self.asflr]
        for seq in stale:
            del self.rdc[seq]
        if stale:
            self._store_write()

    # -- num pending --------------------------------------------------------------------

    def stream_num_pending(self) -> int:
        store = self.stream.store
        lps = self.cfg.deliver_policy == "last_per_subject"
        try:
            if len(self.filters) > 1:
                npc, npf = store.num_pending_multi(self.sseq, self.filters, lps)
            else:
                npc, npf = store.num_pending(self.sseq, self.filter, lps)
        except StoreError:
            npc, npf = 0, 0
        self.npc, self.npf = npc, npf
        return self.num_pending()

    def num_pending(self) -> int:
        return self.npc if self.npc > 0 else 0

    def check_num_pending(self) -> int:
        st = self.stream.store.fast_state()
        npc = self.num_pending()
        if self.sseq > st.last_seq:
            self.npc = 0
        elif npc > 0:
            self.npc = min(npc, st.msgs, st.last_seq - self.sseq + 1)
        return self.num_pending()

    # -- delivery -----------------------------------------------------------------------

    def ack_wait(self, nxt: int) -> int:
        return (nxt if nxt > 0 else self.cfg.ack_wait) + ACK_WAIT_DELAY

    def delivery_count(self, seq: int) -> int:
        dc = self.rdc.get(seq, 0)
        return dc if dc >= 1 else 1

    def _get_next_msg(self) -> tuple[Any, int]:
        """getNextMsg: (message, delivery count); (None, 0) with `_last_err` set otherwise."""
        store = self.stream.store
        rdq = self.rdq
        while rdq:
            seq = rdq.popleft()
            self.rdqi.discard(seq)
            rdc = self.rdc
            rdc[seq] = rdc.get(seq, 0) + 1
            dc = rdc[seq] + 1
            if self.maxdc and dc > self.maxdc:
                if dc == self.maxdc + 1:
                    self._notify_delivery_exceeded(seq, dc - 1)
                p = self.pending.pop(seq, None)
                if p is not None:
                    self._changed()
                continue
            try:
                return store.load_msg(seq), dc
            except ErrStoreMsgNotFound:
                rdc[seq] -= 1
                p = self.pending.get(seq)
                if p is not None:
                    self._process_ack(seq, p[0], dc - 1, None, term_reason="Unacknowledged message was deleted")
                continue
            except StoreError:
                rdc[seq] -= 1
                self._last_err = "eof"
                return None, 0
        if self.maxp > 0 and len(self.pending) >= self.maxp:
            self._last_err = _MAX_ACK_PENDING
            return None, 0
        if self.lss is not None:
            seqs = self.lss
            seq = seqs.pop(0)
            if not seqs:
                self.sseq = self.lss_resume
                self.lss = None
            else:
                self.sseq = seq
            self.sseq += 1
            try:
                return store.load_msg(seq), 1
            except StoreError:
                self._last_err = "eof"
                return None, 0
        try:
            if len(self.filters) > 1:
                sm, seq = store.load_next_msg_multi(self.filters, self.sseq)
            else:
                sm, seq = store.load_next_msg(self.filter, self.filter_wc, self.sseq)
        except ErrStoreEOF:
            last = store.fast_state().last_seq
            if last >= self.sseq:
                self.sseq = last + 1
            if self.sseq > last and self.npc != 0:
                self.npc, self.npf = 0, last
            self._last_err = "eof"
            return None, 0
        except StoreError:
            self._last_err = "eof"
            return None, 0
        if seq >= self.sseq:
            self.sseq = seq + 1
        return sm, 1

    def _run(self) -> None:
        """loopAndGatherMsgs: deliver what can be delivered now, then arrange to run again.

        Most messages go through `_fast_batch` (the usual case: the next message of the stream
        to one plain subscriber); anything else takes `_step`, nats-server's loop body."""
        self._kicked = False
        if self.closed:
            return
        self._last_err = ""
        n = 0
        more = False
        if not self.is_paused():
            while True:
                if n >= CHUNK:
                    more = True
                    break
                k, stop = self._fast_batch(CHUNK - n)
                n += k
                if stop:
                    break
                if k:
                    continue
                if not self._step():
                    break
                n += 1
        if n and self.cfg.idle_heartbeat:
            self._hb_last = time.monotonic()
        if more:
            self.server.flush_dirty()
            self.signal()
            return
        # waitForMsgs
        if self.is_pull:
            self._arm_wait_timer(self.process_waiting(self._last_err != _MAX_ACK_PENDING))
        self.server.schedule_flush()

    def _fast_target(self, dsubj: bytes) -> Any:
        """The one plain local subscriber of `dsubj` when delivery needs nothing else (no
        queue group, permissions, auto-unsubscribe, import), else None."""
        sl = self.account.sublist
        r = sl.cache.get(dsubj)
        if r is None:
            r = sl.match(dsubj)
        if len(r.psubs) != 1 or r.qsubs or r.routes:
            return None
        sub = r.psubs[0]
        d = sub.client
        if sub.closed or sub.max or d.internal or d.closed or d.perm_filter is not None:
            return None
        return sub

    def _fast_batch(self, limit: int) -> tuple[int, bool]:
        """Deliver up to `limit` new messages to one plain subscriber: (how many, stop). Returns
        (0, False) when the next message needs `_step` (redeliveries, checks on the request,
        flow control, queue groups...)."""
        if self.rdq or self.lss is not None or self.cfg.replay_policy != "instant":
            return 0, False
        wr = None
        q: Any = None
        if self.is_pull:
            q = self.waiting.q  # type: ignore[union-attr]
            if not q:
                return 0, True
            wr = q[0]
            if wr.b or (wr.group and self.cfg.priority_policy != "none"):
                return 0, False
            if wr.expires and time.monotonic() >= wr.expires:
                return 0, False
            dsubj = wr.reply
        else:
            if not self.active or (self.maxpb > 0 and self.pbytes > self.maxpb):
                return 0, True
            dsubj = self.dsubj
        sub = self._fast_target(dsubj)
        if sub is None:
            return 0, False
        d = sub.client
        out = d.out
        sid = sub.sid
        d_headers = d.headers
        dirty = self.server.dirty
        store = self.stream.store
        filters = self.filters
        flt, wc = self.filter, self.filter_wc
        pending = self.pending
        track = self.ack_policy != "none"
        retention_acks = not track and self.retention != "limits"
        headers_only = self.cfg.headers_only
        ack_pre = self.ack_pre
        maxp = self.maxp
        fc = self.maxpb > 0  # flow control: count what is outstanding
        now_ns = time.time_ns()
        sseq, dseq, npc = self.sseq, self.dseq, self.npc
        k = 0
        stop = False
        last_seq = 0
        while k < limit:
            if maxp > 0 and len(pending) >= maxp:
                self._last_err = _MAX_ACK_PENDING
                stop = True
                break
            try:
                if not filters:
                    try:
                        sm = store.load_msg(sseq)
                        seq = sseq
                    except ErrStoreMsgNotFound:
                        sm, seq = store.load_next_msg(b"", False, sseq)
                elif len(filters) == 1:
                    sm, seq = store.load_next_msg(flt, wc, sseq)
                else:
                    sm, seq = store.load_next_msg_multi(filters, sseq)
            except ErrStoreEOF:
                last = store.fast_state().last_seq
                if last >= sseq:
                    sseq = last + 1
                if sseq > last and npc != 0:
                    npc, self.npf = 0, last
                self._last_err = "eof"
                stop = True
                break
            if seq >= sseq:
                sseq = seq + 1
            npc -= 1
            npend = npc if npc > 0 else 0
            payload = sm.msg
            hdr = sm.hdr
            if headers_only:
                hdr, payload = _headers_only(hdr, payload), b""
            if fc:
                reply = b"%s1.%d.%d.%d.%d" % (ack_pre, seq, dseq, sm.ts, npend)
                if hdr and d_headers:
                    hl = len(hdr)
                    line = b"HMSG %s %s %s %d %d\r\n" % (sm.subject, sid, reply, hl, hl + len(payload))
                    body = hdr + payload + b"\r\n"
                else:
                    line = b"MSG %s %s %s %d\r\n" % (sm.subject, sid, reply, len(payload))
                    body = payload + b"\r\n"
            elif hdr and d_headers:
                hl = len(hdr)
                line = b"HMSG %s %s %s1.%d.%d.%d.%d %d %d\r\n" % (
                    sm.subject, sid, ack_pre, seq, dseq, sm.ts, npend, hl, hl + len(payload))  # fmt: skip
                body = hdr + payload + b"\r\n"
            else:
                line = b"MSG %s %s %s1.%d.%d.%d.%d %d\r\n" % (
                    sm.subject, sid, ack_pre, seq, dseq, sm.ts, npend, len(payload))  # fmt: skip
                body = payload + b"\r\n"
            if not out:
                dirty.append(d)
            out.append(line)
            out.append(b"")
            out.append(body)
            sub.nm += 1
            if track:
                p = pending.get(seq)
                if p is not None:
                    p[1] = now_ns
                else:
                    pending[seq] = [dseq, now_ns]
            else:
                self.adflr, self.asflr = dseq, seq
                self.st_afc, self.st_afs = dseq, seq
            last_seq = seq
            dseq += 1
            k += 1
            if fc:
                psz = len(dsubj) + len(reply) + len(hdr) + len(payload)
                self.pbytes += psz
                if self._need_flow_control(psz):
                    self.sseq, self.dseq, self.npc = sseq, dseq, npc
                    self._send_flow_control()
                if self.pbytes > self.maxpb:
                    self.sseq, self.dseq, self.npc = sseq, dseq, npc
                    stop = True
                    if retention_acks:
                        self.stream.ack_msg(None, seq)
                    break
            if retention_acks:
                self.sseq, self.dseq, self.npc = sseq, dseq, npc
                self.stream.ack_msg(None, seq)
            if wr is not None:
                wr.d += 1
                wr.n -= 1
                if wr.n <= 0:
                    q.popleft()
                    break
                if wr.hb:
                    wr.hbt = time.monotonic() + wr.hb
                if len(q) > 1:
                    q.popleft()
                    q.append(wr)
                    break
        self.sseq, self.dseq, self.npc = sseq, dseq, npc
        if k:
            self.st_dcons = dseq - 1
            if last_seq > self.st_dstream:
                self.st_dstream = last_seq
            self.ldt = now_ns
            if track:
                bo = self.cfg.backoff
                min_delay = self.ack_wait(bo[0]) if bo else self.cfg.ack_wait + ACK_WAIT_DELAY
                if self._ptmr is None or self._ptmr_end > time.monotonic() + min_delay / 1e9:
                    self.reset_ptmr(min_delay)
            if wr is not None and self.dthresh > 0:
                self.waiting.last = time.monotonic()  # type: ignore[union-attr]
            if self.persist:
                self._changed()
        return k, stop

    def _step(self) -> bool:
        """One message the general way (nats-server's loop body); False: stop for now."""
        is_pull = self.is_pull
        if not is_pull:
            if not self.active or (self.maxpb > 0 and self.pbytes > self.maxpb):
                return False
        elif not self.waiting.q:  # type: ignore[union-attr]
            return False
        sm, dc = self._get_next_msg()
        if sm is None:
            return False
        seq = sm.seq
        if dc == 1:
            self.npc -= 1
        npend = self.npc if self.npc > 0 else 0
        reply = b"%s%d.%d.%d.%d.%d" % (self.ack_pre, dc, seq, self.dseq, sm.ts, npend)
        hdr, payload = sm.hdr, sm.msg
        if self.cfg.headers_only:
            hdr, payload = _headers_only(hdr, payload), b""
        sz = len(sm.subject) + len(reply) + len(hdr) + len(payload)
        wr = None
        if not is_pull:
            dsubj = self.dsubj
        else:
            wr = self._next_waiting(sz)
            if wr is None:
                self._put_back(seq, dc)
                return False
            dsubj = wr.reply
            if wr.n > 0 and wr.hb:
                wr.hbt = time.monotonic() + wr.hb
        if self.cfg.replay_policy == "original":
            lts = self._replay_lts
            if lts and self._replay_ready != seq and sm.ts - lts > 1_000_000:
                # Keep the original timing: this one goes out later.
                if wr is not None:
                    wr.n += 1
                    wr.d -= 1
                    if wr not in self.waiting.q:  # type: ignore[union-attr]
                        self.waiting.q.appendleft(wr)  # type: ignore[union-attr]
                self._put_back(seq, dc)
                self._replay_ready = seq
                self.loop.call_later((sm.ts - lts) / 1e9, self.signal)
                return False
            self._replay_lts = sm.ts
        self._deliver(dsubj, reply, sm, hdr, payload, dc, self.ack_policy == "none", self.stream.client,
                      self.account, time.time_ns())  # fmt: skip
        if wr is not None and wr.n <= 0 and wr.b > 0:
            self._send_status(dsubj, outbound.status(409, "Batch Completed", ("Nats-Pending-Messages", wr.n),
                                                     ("Nats-Pending-Bytes", wr.b)))  # fmt: skip
        return True

    def _put_back(self, seq: int, dc: int) -> None:
        if dc == 1 and seq == self.sseq - 1:
            self.sseq -= 1
            self.npc += 1
        elif seq not in self.rdqi:
            self.rdc[seq] = self.rdc.get(seq, 0) - 1
            self.rdq.append(seq)
            self.rdqi.add(seq)

    def _deliver(self, dsubj: bytes, reply: bytes, sm: Any, hdr: bytes, payload: bytes, dc: int, ack_none: bool,
                 client: Any, acc: Any, now_ns: int) -> None:
        """deliverMsg."""
        dseq = self.dseq
        self.dseq = dseq + 1
        seq = sm.seq
        if self.maxpb > 0:
            self.pbytes += len(dsubj) + len(reply) + len(hdr) + len(payload)
        # What the store records as delivered.
        if dseq > self.adflr:
            if dseq > self.st_dcons:
                self.st_dcons = dseq
            if seq > self.st_dstream:
                self.st_dstream = seq
        self.ldt = now_ns
        if ack_none:
            self.adflr = dseq
            self.asflr = seq
            if dseq > self.st_afc:
                self.st_afc = dseq
            if seq > self.st_afs:
                self.st_afs = seq
        else:
            self._track_pending(seq, dseq, now_ns)
        if not outbound.deliver(client, acc, dsubj, sm.subject, reply, hdr, payload):
            self._did_not_deliver(seq, dsubj)
        if self.maxpb > 0 and self._need_flow_control(len(dsubj) + len(reply) + len(hdr) + len(payload)):
            self._send_flow_control()
        if self.is_pull and self.dthresh > 0:
            self.waiting.last = time.monotonic()  # type: ignore[union-attr]
        if ack_none and self.retention != "limits":
            self.stream.ack_msg(None, seq)
        if self.persist and self._flush_handle is None:
            self._changed()

    def _track_pending(self, sseq: int, dseq: int, now: int) -> None:
        p = self.pending.get(sseq)
        if p is not None:
            p[1] = now
        else:
            self.pending[sseq] = [dseq, now]
        bo = self.cfg.backoff
        if bo:
            min_delay = self.ack_wait(bo[min(max(self.rdc.get(sseq, 0), 0), len(bo) - 1)])
        else:
            min_delay = self.cfg.ack_wait + ACK_WAIT_DELAY
        if self._ptmr is None or self._ptmr_end > time.monotonic() + min_delay / 1e9:
            self.reset_ptmr(min_delay)

    def _did_not_deliver(self, seq: int, dsubj: bytes) -> None:
        self.rdc[seq] = self.rdc.get(seq, 0) - 1
        if not self.is_pull:
            self.active = False
            self.loop.call_soon(self._check_interest)
        elif self.pending:
            self.process_waiting(False)
            for wr in self.waiting.q:  # type: ignore[union-attr]
                if wr.reply == dsubj:
                    wr.n += 1
                    wr.d -= 1
                    break
            if seq in self.pending and seq not in self.rdqi:
                self.rdq.append(seq)
                self.rdqi.add(seq)
                if len(self.waiting):  # type: ignore[arg-type]
                    self.signal()

    def _send_status(self, subject: bytes, hdr: bytes, reply: bytes | None = None) -> None:
        self.stream.publish(subject, reply, hdr, b"")

    # -- pull requests ------------------------------------------------------------------

    def _on_next_request(self, sub: Any, origin: Any, acc: Any, subject: bytes, reply: bytes | None, hdr: int,
                         msg: Any) -> bool:
        if not reply:
            return True
        if self.is_pull is False:
            self._send_status(reply, outbound.status(409, "Consumer is push based"))
            return True
        body = bytes(msg[max(hdr, 0):-2])
        if hdr > 0 and required_level_error(bytes(msg[:hdr])):
            self._send_status(reply, outbound.status(412, "Required Api Level"))
            return True
        self.process_next_request(reply, body)
        return True

    def process_next_request(self, reply: bytes, body: bytes) -> None:
        """processNextMsgRequest."""
        if self.closed:
            return
        if not self.is_pull or self.waiting is None:
            self._send_status(reply, outbound.status(409, "Consumer is push based"))
            return
        try:
            req = parse_next_request(body)
        except ValueError as e:
            self._send_status(reply, outbound.status(400, f"Bad Request - {e}"))
            return
        cfg = self.cfg
        if cfg.max_batch > 0 and req.batch > cfg.max_batch:
            self._send_status(reply, outbound.status(409, f"Exceeded MaxRequestBatch of {cfg.max_batch}"))
            return
        if req.expires and cfg.max_expires > 0 and req.expires > cfg.max_expires:
            text = f"Exceeded MaxRequestExpires of {go_duration(cfg.max_expires / 1e9)}"
            self._send_status(reply, outbound.status(409, text))
            return
        if req.max_bytes > 0 and cfg.max_bytes > 0 and req.max_bytes > cfg.max_bytes:
            self._send_status(reply, outbound.status(409, f"Exceeded MaxRequestMaxBytes of {cfg.max_bytes}"))
            return
        g = req.group
        if g is not None:
            if (g.get("min_pending") or g.get("min_ack_pending")) and cfg.priority_policy != "overflow":
                self._send_status(reply, outbound.status(400, "Bad Request - Not a Overflow Priority consumer"))
            if g.get("id") and cfg.priority_policy != "pinned_client":
                self._send_status(reply, outbound.status(400, "Bad Request - Not a Pinned Client Priority consumer"))
            pr = g.get("priority") or 0
            if not isinstance(pr, int) or pr < 0 or pr > 9:
                self._send_status(reply, outbound.status(400, "Bad Request - Priority must be between 0 and 9"))
                return
            if cfg.priority_policy != "none":
                if not g.get("group"):
                    self._send_status(reply, outbound.status(400, "Bad Request - Priority Group missing"))
                    return
                if g["group"] not in (cfg.priority_groups or ()):
                    self._send_status(reply, outbound.status(400, "Bad Request - Invalid Priority Group"))
                    return
        wq = self.waiting
        now = time.monotonic()
        if wq.is_full() and now - self.lwqic > 1.0:
            self.process_waiting(False)
        if req.no_wait:
            msgs_pending = self.num_pending() + len(self.rdq)
            if msgs_pending == 0 and not req.expires:
                wq.last = now
                self._send_status(reply, outbound.status(404, "No Messages"))
                return
            if msgs_pending > 0:
                brp = self.process_waiting(False)[2]
                if msgs_pending < brp:
                    wq.last = now
                    self._send_status(reply, outbound.status(408, "Requests Pending"))
                    return
        expires = now + req.expires / 1e9 if req.expires else 0.0
        wr = WaitingRequest(reply, req.batch, req.max_bytes, expires, req.heartbeat / 1e9, req.no_wait, g)
        if not wq.add(wr):
            if not req.heartbeat:
                self._send_status(reply, outbound.status(409, "Exceeded MaxWaiting"))
            return
        self.signal()

    def _next_waiting(self, sz: int) -> WaitingRequest | None:
        """nextWaiting: the request that gets the next message (one of `sz` bytes)."""
        wq = self.waiting
        assert wq is not None
        q = wq.q
        sl = self.account.sublist
        now = 0.0
        while q:
            wr = q[0]
            if wr.b > 0:
                if sz <= wr.b:
                    wr.b -= sz
                    if wr.b == 0:
                        wr.n = 1
                else:
                    self._send_status(wr.reply, outbound.status(
                        409, "Message Size Exceeds MaxBytes",
                        ("Nats-Pending-Messages", wr.n), ("Nats-Pending-Bytes", wr.b)))  # fmt: skip
                    q.popleft()
                    continue
            if wr.expires:
                if not now:
                    now = time.monotonic()
                expired = now >= wr.expires
            else:
                expired = False
            if not expired:
                if self.cfg.priority_policy == "overflow" and wr.group:
                    mp, map_ = wr.group.get("min_pending") or 0, wr.group.get("min_ack_pending") or 0
                    if (mp > 0 or map_ > 0) and not (
                        (mp > 0 and mp <= self.npc + 1) or (map_ > 0 and map_ <= len(self.pending))
                    ):
                        wq.cycle()
                        continue
                r = sl.cache.get(wr.reply)
                if r is None:
                    r = sl.match(wr.reply)
                if r:
                    return wq.pop()
                # Interest gone: the request is dropped (no status, nobody to get it).
                q.popleft()
                continue
            self._send_status(wr.reply, outbound.status(408, "Request Timeout", ("Nats-Pending-Messages", wr.n),
                                                        ("Nats-Pending-Bytes", wr.b)))  # fmt: skip
            q.popleft()
        return None

    def process_waiting(self, eos: bool) -> tuple[int, int, int, float]:
        """processWaiting: expire requests (and, at the end of the stream, finish no_wait
        ones), drop those nobody listens to, send due heartbeats. Returns (expired, waiting,
        messages still wanted, the next deadline or 0)."""
        wq = self.waiting
        if wq is None or not wq.q:
            return 0, 0, 0, 0.0
        now = time.monotonic()
        self.lwqic = now
        sl = self.account.sublist
        expired = brp = 0
        fexp = 0.0
        keep: deque[WaitingRequest] = deque()
        for wr in wq.q:
            exp = bool(wr.expires) and now > wr.expires
            if (eos and wr.no_wait) or exp:
                if exp:
                    self._send_status(wr.reply, outbound.status(408, "Request Timeout", ("Nats-Pending-Messages", wr.n),
                                                                ("Nats-Pending-Bytes", wr.b)))  # fmt: skip
                    expired += 1
                    continue
                if not wr.expires or wr.d > 0:
                    self._send_status(wr.reply, outbound.status(404, "No Messages"))
                    expired += 1
                    continue
            if not sl.match(wr.reply):
                expired += 1
                continue
            brp += wr.n
            if wr.hbt:
                if now >= wr.hbt:
                    self._send_idle_heartbeat(wr.reply)
                    wr.hbt = now + wr.hb
                if not fexp or wr.hbt < fexp:
                    fexp = wr.hbt
            if wr.expires and (not fexp or wr.expires < fexp):
                fexp = wr.expires
            keep.append(wr)
        wq.q = keep
        return expired, len(keep), brp, fexp

    def _arm_wait_timer(self, res: tuple[int, int, int, float]) -> None:
        fexp = res[3]
        if self._wtmr is not None:
            self._wtmr.cancel()
            self._wtmr = None
        if fexp:
            delay = max(fexp - time.monotonic(), 0.001)
            self._wtmr = self.loop.call_later(delay, self._on_wait_timer)

    def _on_wait_timer(self) -> None:
        self._wtmr = None
        if self.closed:
            return
        self._arm_wait_timer(self.process_waiting(True))
        self.server.schedule_flush()

    # -- heartbeats and flow control (push) ---------------------------------------------

    def _send_idle_heartbeat(self, subject: bytes) -> None:
        hdr = b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: %d\r\nNats-Last-Stream: %d\r\n" % (
            self.dseq - 1, self.sseq - 1)  # fmt: skip
        if self.fcid:
            hdr += b"Nats-Consumer-Stalled: " + self.fcid + b"\r\n"
        self._send_status(subject, hdr + b"\r\n")

    def _on_hb_timer(self) -> None:
        self._hbtmr = None
        if self.closed:
            return
        hb = self.cfg.idle_heartbeat / 1e9
        now = time.monotonic()
        left = self._hb_last + hb - now
        if left > 0.0005:
            self._hbtmr = self.loop.call_later(left, self._on_hb_timer)
            return
        if self.active:
            self._send_idle_heartbeat(self.dsubj)
            self.server.schedule_flush()
        self._hb_last = now
        self._hbtmr = self.loop.call_later(hb, self._on_hb_timer)

    def _need_flow_control(self, sz: int) -> bool:
        if not self.fcid and self.pbytes > self.maxpb // 2:
            return True
        if not self.fcid and self.ack_policy == "flow_control" and self.maxp > 0 and len(self.pending) >= self.maxp:
            return True
        if self.fcid and self.pbytes - self.fcsz >= self.maxpb:
            self.fcsz += sz
        return False

    def _send_flow_control(self) -> None:
        if self.is_pull:
            return
        rn = random.getrandbits(62)
        tok = ""
        for _ in range(4):
            tok += _DIGITS[rn % 62]
            rn //= 62
        reply = self.fc_pre + tok.encode()
        self.fcsz, self.fcid = self.pbytes, reply
        self._send_status(self.dsubj, b"NATS/1.0 100 FlowControl Request\r\n\r\n", reply)

    def _on_flow_control(self, sub: Any, origin: Any, acc: Any, subject: bytes, reply: bytes | None, hdr: int,
                         msg: Any) -> bool:
        if self.closed or subject != self.fcid:
            return True
        if self.maxpb < self.pblimit:
            self.maxpb = min(self.maxpb * 2, self.pblimit)
        self.pbytes = max(self.pbytes - self.fcsz, 0)
        self.fcid, self.fcsz = b"", 0
        self.signal()
        if self.ack_policy == "flow_control" and hdr > 0:
            block = bytes(msg[:hdr])
            ld = _hdr_int(block, b"Nats-Last-Consumer")
            ls = _hdr_int(block, b"Nats-Last-Stream")
            if ls > 0:
                self._process_ack(ls, max(ld, 0), 1, None, sample=False)
        return True

    # -- acks ---------------------------------------------------------------------------

    def _on_ack(self, sub: Any, origin: Any, acc: Any, subject: bytes, reply: bytes | None, hdr: int,
                msg: Any) -> bool:
        if self.closed:
            return True
        if self.cfg.inactive_threshold > 0:
            self.suppress_deletion()
        body = bytes(msg[max(hdr, 0):-2])
        self.process_ack(subject, reply, body)
        return True

    def process_ack(self, subject: bytes, reply: bytes | None, body: bytes) -> None:
        """processAck: +ACK (or empty, +OK), +NXT, -NAK [delay], +WPI, +TERM [reason]."""
        sseq, dseq, dc = ack_reply_info(subject)
        skip_reply = sseq == 0
        if not body or body == _ACK or body == _OK:
            if not self._process_ack(sseq, dseq, dc, reply):
                skip_reply = True
        elif body.startswith(_NXT):
            self._process_ack(sseq, dseq, dc, None)
            if reply:
                self.process_next_request(reply, body[len(_NXT):])
            skip_reply = True
        elif body.startswith(_NAK):
            self._process_nak(sseq, dseq, dc, body)
        elif body == _WPI:
            self._progress(sseq)
        elif body.startswith(_TERM):
            reason = body[len(_TERM):].strip().decode(errors="replace")
            if not self.process_term(sseq, dseq, dc, reason, reply):
                skip_reply = True
        if reply and not skip_reply:
            self.stream.publish(reply, None, b"", b"")

    def process_term(self, sseq: int, dseq: int, dc: int, reason: str, reply: bytes | None) -> bool:
        return self._process_ack(sseq, dseq, dc, reply, sample=False, term_reason=reason)

    def _process_ack(self, sseq: int, dseq: int, dc: int, reply: bytes | None, *, sample: bool = True,
                     term_reason: str | None = None) -> bool:
        """processAckMsg: True when the caller answers the ack's reply."""
        if self.closed:
            return False
        if sseq >= self.sseq and not self.cfg.flow_control:
            return False
        ack_in_place = self.retention != "limits"
        sgap = floor = 0
        need_signal = False
        pending = self.pending
        policy = self.ack_policy
        p = pending.get(sseq)
        if policy == "explicit":
            if p is not None:
                if self.maxp > 0 and len(pending) >= self.maxp:
                    need_signal = True
                del pending[sseq]
                dseq = p[0]
                if not pending:
                    self.adflr = self.dseq - 1
                    self.asflr = self.sseq - 1
                elif dseq == self.adflr + 1:
                    self.adflr, self.asflr = dseq, sseq
                    for ss in range(sseq + 1, self.sseq):
                        q = pending.get(ss)
                        if q is not None:
                            if q[0] > 0:
                                self.adflr, self.asflr = q[0] - 1, ss - 1
                            break
            self.rdc.pop(sseq, None)
            if sseq in self.rdqi:
                self.rdqi.discard(sseq)
                self.rdq.remove(sseq)
        elif policy in ("all", "flow_control"):
            if dseq <= self.adflr or sseq <= self.asflr:
                if term_reason is not None:
                    self._term_advisory(sseq, dseq, dc, term_reason)
                return True
            if self.maxp > 0 and len(pending) >= self.maxp:
                need_signal = True
            sgap = sseq - self.asflr
            floor = sseq
            self.adflr, self.asflr = dseq, sseq
            if sgap > len(pending):
                gone = [s for s in pending if s <= sseq]
            else:
                gone = [s for s in range(sseq, sseq - sgap, -1) if s in pending]
            for s in gone:
                del pending[s]
                self.rdc.pop(s, None)
                if s in self.rdqi:
                    self.rdqi.discard(s)
                    self.rdq.remove(s)
                if s < floor:
                    floor = s
        else:
            if term_reason is not None:
                self._term_advisory(sseq, dseq, dc, term_reason)
            return ack_in_place
        self._store_acks(dseq, sseq, p, policy)
        self.lat = time.time_ns()
        self._changed()
        if reply and not ack_in_place:
            self.stream.publish(reply, None, b"", b"")
        if term_reason is not None:
            self._term_advisory(sseq, dseq, dc, term_reason)
        if ack_in_place:
            if sgap > 1:
                for seq in range(sseq, floor - 1, -1):
                    self.stream.ack_msg(self, seq)
            else:
                self.stream.ack_msg(self, sseq)
        if need_signal:
            self.signal()
        return ack_in_place

    def _store_acks(self, dseq: int, sseq: int, p: list[int] | None, policy: str) -> None:
        """The consumer store's UpdateAcks (its floors are what info reports): `p` was the
        pending entry of `sseq` before the ack."""
        if dseq <= self.st_afc or p is None:
            return
        if policy != "explicit":
            self.st_afc, self.st_afs = dseq, sseq
            return
        if dseq > p[0] > 0:
            dseq = p[0]
        pending = self.pending
        if not pending:
            self.st_afc, self.st_afs = self.st_dcons, self.st_dstream
        elif dseq == self.st_afc + 1:
            self.st_afc, self.st_afs = dseq, sseq
            if self.st_dcons > dseq:
                for ss in range(sseq + 1, self.st_dstream + 1):
                    q = pending.get(ss)
                    if q is not None:
                        if q[0] > 0:
                            self.st_afc, self.st_afs = q[0] - 1, ss - 1
                        break

    def _store_write(self) -> None:
        """writeStoreState: the consumer's own view replaces the store's."""
        self.st_dcons, self.st_dstream = self.dseq - 1, self.sseq - 1
        self.st_afc, self.st_afs = self.adflr, self.asflr
        self._changed()

    def _process_nak(self, sseq: int, dseq: int, dc: int, body: bytes) -> None:
        if dseq <= self.adflr or dseq > self.dseq:
            return
        if sseq not in self.pending:
            return
        self._advisory(f"MSG_NAKED.{self.stream.name}.{self.name}", {
            "type": "io.nats.jetstream.advisory.v1.nak", **self._event_head(),
            "stream": self.stream.name, "consumer": self.name, "consumer_seq": dseq, "stream_seq": sseq,
            "deliveries": dc})  # fmt: skip
        arg = body[len(_NAK):].strip()
        if arg:
            delay: int | None
            try:
                if arg[:1] == b"{":
                    v = json.loads(arg)
                    delay = int(v.get("delay", 0) or 0) if isinstance(v, dict) else 0
                else:
                    delay = parse_go_duration(arg.decode())
            except (ValueError, TypeError, UnicodeDecodeError):
                delay = None
                self.server.log.warn(f"JetStream consumer '{self.account.name} > {self.stream.name} > {self.name}' "
                                     f"bad NAK delay value: {json.dumps(arg.decode(errors='replace'))}")  # fmt: skip
            if delay is not None:
                if sseq in self.rdqi:
                    self.rdqi.discard(sseq)
                    self.rdq.remove(sseq)
                p = self.pending.get(sseq)
                if p is not None:
                    p[1] = time.time_ns() - self.cfg.ack_wait + delay
                    self._changed()
                    if self._ptmr is not None:
                        self.reset_ptmr(10_000_000)
                return
        if sseq not in self.rdqi:
            self.rdq.append(sseq)
            self.rdqi.add(sseq)
        self.signal()

    def _progress(self, seq: int) -> None:
        p = self.pending.get(seq)
        if p is not None:
            p[1] = time.time_ns()
            self.ldt = p[1]
            self._changed()

    # -- ack wait -----------------------------------------------------------------------

    def reset_ptmr(self, delay_ns: int) -> None:
        if self._ptmr is not None:
            self._ptmr.cancel()
        d = delay_ns / 1e9
        self._ptmr_end = time.monotonic() + d
        self._ptmr = self.loop.call_later(d, self._check_pending)

    def _stop_ptmr(self) -> None:
        if self._ptmr is not None:
            self._ptmr.cancel()
            self._ptmr = None

    def _check_pending(self) -> None:
        """checkPending: messages not acked within ack_wait (or their backoff) go to the
        redelivery queue; at max_deliver they stop (an advisory says so)."""
        self._ptmr = None
        ttl = self.cfg.ack_wait
        if self.closed or ttl == 0:
            return
        fseq = self.stream.store.fast_state().first_seq
        now = time.time_ns()
        bo = self.cfg.backoff
        nxt = bo[-1] if bo else self.ack_wait(0)
        expired: list[int] = []
        changed = False
        pending = self.pending
        rdc = self.rdc
        for seq in list(pending):
            p = pending[seq]
            if seq < fseq or seq <= self.asflr:
                del pending[seq]
                rdc.pop(seq, None)
                if seq in self.rdqi:
                    self.rdqi.discard(seq)
                    self.rdq.remove(seq)
                changed = True
                if seq > self.asflr:
                    self.asflr = seq
                if p[0] > self.adflr:
                    self.adflr = p[0]
                continue
            elapsed = now - p[1]
            deadline = ttl
            if bo:
                dc = max(rdc.get(seq, 0), 0)
                nbi = dc + 1
                if dc + 1 >= len(bo):
                    dc = len(bo) - 1
                    nbi = dc
                deadline = bo[dc]
                if bo[nbi] < nxt:
                    nxt = bo[nbi]
            if elapsed >= deadline:
                if seq not in self.rdqi and not self._has_max_deliveries(seq):
                    expired.append(seq)
            elif deadline - elapsed < nxt:
                nxt = deadline - elapsed
        if expired:
            expired.sort()
            self.rdq.extend(expired)
            self.rdqi.update(expired)
            off = now - pending[expired[0]][1]
            for seq in expired:
                q = pending.get(seq)
                if q is not None:
                    q[1] += off
            self.signal()
        if pending:
            self.reset_ptmr(nxt)
        else:
            self.rdq.clear()
            self.rdqi.clear()
            self.adflr, self.asflr = self.dseq - 1, self.sseq - 1
        if changed:
            self._store_write()
        elif expired:
            self._changed()

    def _has_max_deliveries(self, seq: int) -> bool:
        if not self.maxdc:
            return False
        dc = self.delivery_count(seq)
        if dc >= self.maxdc:
            if dc == self.maxdc:
                self._notify_delivery_exceeded(seq, dc)
            if self.maxp > 0 and len(self.pending) >= self.maxp:
                self.signal()
            self.pending.pop(seq, None)
            self.rdc[seq] = dc
            self._changed()
            return True
        return False

    # -- retention ----------------------------------------------------------------------

    def is_filtered_match(self, subject: str | bytes) -> bool:
        """isFilteredMatch (the stream asks on interest streams before storing)."""
        return self.matches(subject.encode(errors="surrogateescape") if isinstance(subject, str) else subject)

    def is_equal_or_subset_match(self, subject: str) -> bool:
        """isEqualOrSubsetMatch: a purge filter is one of our filters or inside one."""
        for f in self.cfg.filters():
            if subject == f or is_subset_match(subject, f):
                return True
        return False

    def need_ack(self, sseq: int, subject: str | bytes | None) -> bool:
        """needAck: does this consumer still need message `sseq` (interest retention)?"""
        if isinstance(subject, str):
            subject = subject.encode(errors="surrogateescape")
        if self.is_filtered():
            if subject is None:
                try:
                    subject = self.stream.store.subject_for_seq(sseq)
                except StoreError:
                    return False
            if not self.matches(subject):
                return False
        need = False
        if self.ack_policy in ("none", "all", "flow_control"):
            need = sseq > self.asflr
        elif sseq > self.asflr:
            need = True if sseq >= self.sseq else sseq in self.pending
        if not need:
            need = sseq in self.rdc
        return need

    def _cleanup_no_interest(self) -> None:
        """cleanupNoInterestMessages: after this consumer went, messages nobody else needs go
        (the stream's cleanup_no_interest, from our ack floor on)."""
        self.stream.cleanup_no_interest(self.asflr)

    # -- persistence --------------------------------------------------------------------

    def _changed(self) -> None:
        if self.persist and self._flush_handle is None and not self.closed:
            self._flush_handle = self.loop.call_later(self._flush_every, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self.closed:
            return
        t0 = time.perf_counter()
        self._write_state()
        # Keep the cost of writing a large pending map to about a twentieth of the time.
        self._flush_every = max(0.1, (time.perf_counter() - t0) * 20)

    def _write_state(self) -> None:
        if not self.persist or self.store is None:
            return
        if self.st_dcons or self.st_dstream:
            delivered = SequencePair(self.st_dcons, self.st_dstream)
        else:
            delivered = SequencePair(self.dseq - 1, self.sseq - 1)
        st = ConsumerState(
            delivered,
            SequencePair(self.st_afc, self.st_afs),
            {s: Pending(p[0], p[1]) for s, p in self.pending.items()},
            dict(self.rdc),
        )
        try:
            self.store.force_update(st)
            self.store.flush()
        except (StoreError, OSError) as e:
            self.server.log.warn(f"Consumer '{self.account.name} > {self.stream.name} > {self.name}' "
                                 f"error on write store state: {e}")  # fmt: skip

    # -- info ---------------------------------------------------------------------------

    def info(self, *, dynamic: bool = True) -> dict[str, Any]:
        """ConsumerInfo as nats-server answers it (`dynamic`: metadata with the server's
        version and level, as in CREATE/INFO answers; LIST has the stored metadata)."""
        np = self.check_num_pending()
        has_state = self.st_dcons != 0 or self.st_dstream != 0
        if has_state:
            dcons, dstream = self.st_dcons, self.st_dstream
        else:
            dcons, dstream = max(self.dseq, 1) - 1, max(self.sseq, 1) - 1
        delivered: dict[str, Any] = {"consumer_seq": dcons, "stream_seq": dstream}
        if self.ldt:
            delivered["last_active"] = format_time(self.ldt)
        ack_floor: dict[str, Any] = {"consumer_seq": self.st_afc, "stream_seq": self.st_afs}
        if self.lat:
            ack_floor["last_active"] = format_time(self.lat)
        cfg = self.cfg.to_json(dynamic_metadata(self.cfg) if dynamic else None)
        num_waiting = 0
        if self.is_pull:
            num_waiting = self.process_waiting(False)[1]
        out: dict[str, Any] = {
            "stream_name": self.stream.name,
            "name": self.name,
            "created": format_time(self.created),
            "config": cfg,
            "delivered": delivered,
            "ack_floor": ack_floor,
            "num_ack_pending": len(self.pending),
            "num_redelivered": 0 if self.cfg.max_deliver == 1 else len(self.rdc),
            "num_waiting": num_waiting,
            "num_pending": np,
        }
        if not self.is_pull and self.active:
            out["push_bound"] = True
        p = self.cfg.paused_until_ns()
        now = time.time_ns()
        if p and now < p:
            out["paused"] = True
            out["pause_remaining"] = p - now
        out["ts"] = format_time(now)
        if self.cfg.priority_groups:
            # Only the first group is tracked (as nats-server 2.14); no pinning here yet.
            out["priority_groups"] = [{"group": self.cfg.priority_groups[0], "pinned_ts": _ZERO_TIME}]
        return out

    def info_json(self) -> dict[str, Any]:
        """The info /jsz lists (its stored metadata, as CONSUMER.LIST)."""
        return self.info(dynamic=False)

    # -- config updates -----------------------------------------------------------------

    def update_config(self, new: ConsumerConfig) -> None:
        """updateConfig (the checks are the caller's: consumer_config.check_update)."""
        old = self.cfg
        if new.pause_until is not None:
            new.pause_until = new.pause_until.utc()
        if self.store is not None:
            self.store.update_config(store_config(new))
        if new.max_ack_pending != old.max_ack_pending:
            self.maxp = new.max_ack_pending
            self.signal()
        if new.ack_wait != old.ack_wait and self._ptmr is not None:
            self.reset_ptmr(100_000_000)
        if new.max_deliver != old.max_deliver:
            self.maxdc = max(new.max_deliver, 0)
        threshold_changed = new.inactive_threshold != old.inactive_threshold
        pause_changed = old.paused_until_ns() != new.paused_until_ns()
        filters_changed = set(new.filters()) != set(old.filters()) or len(new.filters()) != len(old.filters())
        deliver_changed = new.deliver_subject != old.deliver_subject
        self.cfg = new
        if deliver_changed and not self.is_pull:
            self._update_deliver_subject(new.deliver_subject)
        if threshold_changed:
            self.update_inactive_threshold()
            self._clear_dtmr()
            if self.dthresh > 0:
                self._set_dtmr(self.dthresh)
        if pause_changed:
            self.update_pause_state()
            self._pause_advisory()
            self.signal()
        if filters_changed:
            self._set_filters()
            if self.retention == "interest":
                self._cleanup_no_interest()
            self.stream_num_pending()
        self.write_meta()

    def _update_deliver_subject(self, subject: str) -> None:
        if self.pending:
            self._force_expire_pending()
        if self._watching:
            self.account.sublist.unwatch(self.dsubj, self._interest_changed)
        self.dsubj = subject.encode()
        self.account.sublist.watch(self.dsubj, self._interest_changed)
        self._watching = True
        self.loop.call_soon(self._check_interest)

    def _force_expire_pending(self) -> None:
        expired = sorted(s for s in self.pending if s not in self.rdqi and not self._has_max_deliveries(s))
        if expired:
            self.rdq.extend(expired)
            self.rdqi.update(expired)
            off = time.time_ns() - self.pending[expired[0]][1]
            for s in expired:
                p = self.pending.get(s)
                if p is not None:
                    p[1] += off
            self.reset_ptmr(self.ack_wait(0))
        self.signal()

    # -- advisories ---------------------------------------------------------------------

    def _event_head(self) -> dict[str, Any]:
        return {"id": nuid(), "timestamp": format_time(time.time_ns())}

    def _action_event(self, action: str) -> dict[str, Any]:
        return {"type": "io.nats.jetstream.advisory.v1.consumer_action", **self._event_head(),
                "stream": self.stream.name, "consumer": self.name, "action": action}  # fmt: skip

    def _advisory(self, kind: str, body: dict[str, Any]) -> None:
        """Published in the account only when someone listens (as nats-server)."""
        if "." not in kind:
            kind = f"{kind}.{self.stream.name}.{self.name}"
        subject = (ADV_PRE + kind).encode()
        if not self.account.sublist.match(subject):
            return
        domain = self.js.opts.domain
        if domain:
            body["domain"] = domain
        self.stream.publish(subject, None, b"", wire.go_json(body))
        self.server.schedule_flush()

    def created_advisory(self) -> None:
        self._advisory("CREATED", self._action_event("create"))

    def _pause_advisory(self) -> None:
        body: dict[str, Any] = {"type": "io.nats.jetstream.advisory.v1.consumer_pause", **self._event_head(),
                                "stream": self.stream.name, "consumer": self.name, "paused": False}  # fmt: skip
        p = self.cfg.pause_until
        if p is not None:
            body["paused"] = time.time_ns() < p.ns
            body["pause_until"] = p.text()
        self._advisory("PAUSE", body)

    def _notify_delivery_exceeded(self, seq: int, dc: int) -> None:
        self._advisory(f"MAX_DELIVERIES.{self.stream.name}.{self.name}", {
            "type": "io.nats.jetstream.advisory.v1.max_deliver", **self._event_head(),
            "stream": self.stream.name, "consumer": self.name, "stream_seq": seq, "deliveries": dc})  # fmt: skip

    def _term_advisory(self, sseq: int, dseq: int, dc: int, reason: str) -> None:
        body: dict[str, Any] = {"type": "io.nats.jetstream.advisory.v1.terminated", **self._event_head(),
                                "stream": self.stream.name, "consumer": self.name, "consumer_seq": dseq,
                                "stream_seq": sseq, "deliveries": dc}  # fmt: skip
        if reason:
            body["reason"] = reason
        self._advisory(f"MSG_TERMINATED.{self.stream.name}.{self.name}", body)


def _headers_only(hdr: bytes, payload: bytes) -> bytes:
    """convertToHeadersOnly: the payload's size as Nats-Msg-Size, no payload."""
    base = hdr[:-2] if hdr else b"NATS/1.0\r\n"
    return base + b"Nats-Msg-Size: %d\r\n\r\n" % len(payload)


def _hdr_int(block: bytes, key: bytes) -> int:
    v = header_value(block, key)
    try:
        return int(v) if v else 0
    except ValueError:
        return 0
