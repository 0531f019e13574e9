"""A stream: its configuration, its store, the subscriptions that feed it, its consumers.

Messages come in through an internal subscription on the stream's subjects in its account
(sent to routes like any interest), go through nats-server's checks (processJetStreamMsg:
sealed, Nats-Expected-*, de-duplication, roll-ups, TTLs, sizes, limits), are stored, and the
publisher's reply gets the PubAck. File streams buffer their writes and send the PubAcks of
a whole read at once, after one write to disk (`flush`, run with the server's flush of dirty
connections): an acknowledged message is always in the operating system's hands.

Consumers (consumer.py, another module) plug in through the hooks in the "consumers"
section below (register_consumer, signal_consumers, ack_msg, ...).

Layout on disk (file streams and the configuration of memory ones alike):
`<account dir>/streams/<name>/meta.inf` (the configuration and creation time, JSON) and the
store's own files beside it (store/filestore.py).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

from ..delivery import deliver_msg
from ..gotime import go_time
from ..internal import InternalClient
from ..protocol import wire
from . import errors
from . import headers as H
from . import schedule as sched
from .batch import (
    BATCH_COMMIT,
    BATCH_TIMEOUT,
    MAX_BATCH_ID,
    MAX_BATCH_SIZE,
    MAX_INFLIGHT_PER_STREAM,
    MAX_INFLIGHT_TOTAL,
    AtomicBatch,
    batch_seq,
    check_commit,
)
from .dedup import Dedup
from .direct import direct_get, direct_get_last
from .errors import ApiError, api_error
from .reqjson import go_quote
from .schedule import Scheduling
from .sources import Sourcing
from .store import (
    DiscardPolicy,
    ErrMaxBytes,
    ErrMaxMsgs,
    ErrMaxMsgsPerSubject,
    ErrMsgTooLarge,
    ErrStoreClosed,
    ErrStoreEOF,
    ErrStoreMsgNotFound,
    FileStore,
    FileStoreConfig,
    MemStore,
    RetentionPolicy,
    StorageType,
    StoreConfig,
    StoreError,
    StreamStore,
)
from .stream_config import full, to_json
from .transform import StreamTransform, TransformError, new_transform
from .versioning import required_level_error

if TYPE_CHECKING:
    from .jsaccount import JsAccount

META_FILE = "meta.inf"
_ZERO_TIME = "0001-01-01T00:00:00Z"
_MAX_HDR = 65535
_LIMIT_ERRORS = (ErrMaxMsgs, ErrMaxBytes, ErrMaxMsgsPerSubject, ErrMsgTooLarge, ErrStoreClosed)


def store_config(cfg: dict[str, Any]) -> StoreConfig:
    return StoreConfig(
        name=cfg["name"],
        storage=StorageType.MEMORY if cfg["storage"] == "memory" else StorageType.FILE,
        max_msgs=cfg["max_msgs"],
        max_bytes=cfg["max_bytes"],
        max_age=cfg["max_age"],
        max_msgs_per_subject=cfg["max_msgs_per_subject"],
        max_msg_size=cfg["max_msg_size"],
        discard=DiscardPolicy.NEW if cfg["discard"] == "new" else DiscardPolicy.OLD,
        discard_new_per_subject=bool(cfg.get("discard_new_per_subject")),
        allow_msg_ttl=bool(cfg.get("allow_msg_ttl")),
        subject_delete_marker_ttl=int(cfg.get("subject_delete_marker_ttl") or 0),
        first_seq=int(cfg.get("first_seq") or 0),
        retention={"limits": RetentionPolicy.LIMITS, "interest": RetentionPolicy.INTEREST,
                   "workqueue": RetentionPolicy.WORKQUEUE}[cfg["retention"]],  # fmt: skip
    )


class Stream:
    """One stream of an account."""

    def __init__(self, jsa: JsAccount, cfg: dict[str, Any], created: float, *, recovered: bool = False) -> None:
        self.jsa = jsa
        self.js = jsa.js
        self.account = jsa.account
        self.server = self.js.server
        self.config = full(cfg)
        self.name: str = self.config["name"]
        self.created = created
        self.dir = os.path.join(jsa.store_dir, "streams", self.name)
        self.consumers: dict[str, Any] = {}  # name -> consumer.Consumer
        self.client: InternalClient | None = None
        self.closed = False
        self.lseq = 0
        self.lmsgid = b""
        self._subs: dict[str, Any] = {}  # subject -> internal subscription
        self._direct_subs: list[Any] = []
        self._mirror_direct_subs: list[Any] = []
        self._expiry: Any = None  # the loop timer of the next age/TTL expiry
        self._dd_timer: Any = None
        self._acks: list[tuple[bytes, bytes]] = []  # deferred PubAcks (file streams)
        self._dirty = False
        self._signal: list[int] = []  # sequences stored while acks were deferred
        self.sources: Sourcing | None = None  # when the stream mirrors or sources
        self.taps: list[Any] = []  # streams copying this one (sources._Source): told of stores
        self.batches: dict[bytes, AtomicBatch] = {}  # atomic batches being staged, by id
        self._scheduling: Scheduling | None = None  # message schedules (allow_msg_schedules)
        self._sched_timer: Any = None
        scfg = store_config(self.config)
        self.is_memory = scfg.storage == StorageType.MEMORY
        os.makedirs(self.dir, exist_ok=True)
        self.store: StreamStore
        if self.is_memory:
            self.store = MemStore(scfg)
        else:
            opts = self.js.opts
            self.store = FileStore(
                FileStoreConfig(store_dir=self.dir, sync_always=opts.sync_always,
                                sync_interval=opts.sync_interval, write_through=False),
                scfg,
            )  # fmt: skip
        if not recovered:
            self.write_meta()
        st = self.store.fast_state()
        self.lseq = st.last_seq
        self._used = st.bytes
        jsa.add_usage(self.is_memory, st.bytes)
        self.store.register_storage_updates(self._storage_update)
        self.dedup = Dedup(self.config["duplicate_window"])
        self._apply_config()
        self.rebuild_dedup()
        if self._scheduling is not None:
            self._recover_schedules()

    # -- configuration ------------------------------------------------------------------

    def _apply_config(self) -> None:
        """Derived settings the ingest path reads (one attribute each)."""
        cfg = self.config
        self._sealed = cfg["sealed"]
        self._no_ack = cfg["no_ack"]
        self._max_msg_size = cfg["max_msg_size"]
        self._interest = cfg["retention"] == "interest"
        self._retention = cfg["retention"]
        self._allow_ttl = cfg["allow_msg_ttl"]
        self._allow_rollup = cfg["allow_rollup_hdrs"] and not cfg["deny_purge"]
        self._sdm_ttl = (cfg["subject_delete_marker_ttl"] or 0) // 1_000_000_000
        self._is_mirror = cfg["mirror"] is not None
        self._counter = cfg["allow_msg_counter"]
        self._fast = not (cfg["sealed"] or cfg["subject_transform"] or cfg["republish"] or self._counter
                          or cfg["retention"] == "interest" or self.jsa.has_limits
                          or cfg["allow_msg_schedules"])  # fmt: skip
        if cfg["allow_msg_schedules"] and self._scheduling is None:
            self._scheduling = Scheduling()
        self._timed = bool(cfg["max_age"] or cfg["allow_msg_ttl"])
        st = cfg["subject_transform"]
        self._itr: StreamTransform | None = None
        if st is not None:
            try:
                self._itr = new_transform(st.get("src") or "", st.get("dest") or "")
            except TransformError:
                self._itr = None
        rp = cfg["republish"]
        self._tr: StreamTransform | None = None
        self._tr_hdrs_only = False
        if rp is not None:
            try:
                self._tr = new_transform(rp.get("src") or ">", rp.get("dest") or ">")
            except TransformError:
                self._tr = None
            self._tr_hdrs_only = bool(rp.get("headers_only"))
        self._ack_prefix = b'{"stream":' + json.dumps(self.name).encode() + b',"seq":'
        if self.js.opts.domain:
            self._ack_prefix = (b'{"stream":' + json.dumps(self.name).encode() + b',"domain":'
                                + json.dumps(self.js.opts.domain).encode() + b',"seq":')  # fmt: skip
        self.dedup.window = cfg["duplicate_window"]

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the stream's subjects (the account's interest reaches routes), the
        direct get subjects, and start mirroring/sourcing."""
        self.client = InternalClient(self.server, self.account, "JetStream")
        for subject in self.config["subjects"] or ():
            self._subscribe(subject)
        self._schedule_timer()
        if self.config["allow_direct"]:
            self._subscribe_direct()
        if self.config["mirror_direct"] and self.config["mirror"] is not None:
            self._subscribe_mirror_direct()
        if self.config["mirror"] is not None or self.config["sources"]:
            self.sources = Sourcing(self)
            self.sources.start()
        # Streams of the account waiting for this one as their origin.
        for other in list(self.jsa.streams.values()):
            if other is not self and other.sources is not None:
                other.sources.connect()
        self.schedule_expiry()

    def _subscribe(self, subject: str) -> None:
        assert self.client is not None
        self._subs[subject] = self.client.subscribe(subject.encode(), self._on_msg, forward=True)

    def _subscribe_direct(self) -> None:
        assert self.client is not None
        if self._direct_subs:
            return
        pfx = f"$JS.API.DIRECT.GET.{self.name}".encode()
        self._direct_subs = [
            self.client.subscribe(pfx, lambda *a: direct_get(self, *a), forward=True, queue=b"_sys_"),
            self.client.subscribe(pfx + b".>", lambda *a: direct_get_last(self, *a), forward=True, queue=b"_sys_"),
        ]

    def _subscribe_mirror_direct(self) -> None:
        assert self.client is not None
        if self._mirror_direct_subs or self.config["mirror"] is None:
            return
        pfx = f"$JS.API.DIRECT.GET.{self.config['mirror']['name']}".encode()
        self._mirror_direct_subs = [
            self.client.subscribe(pfx, lambda *a: direct_get(self, *a), forward=True, queue=b"_sys_"),
            self.client.subscribe(pfx + b".>", lambda *a: direct_get_last(self, *a), forward=True, queue=b"_sys_"),
        ]

    def _unsubscribe(self, subs: list[Any]) -> None:
        if self.client is not None:
            for s in subs:
                self.client.remove_sub(s)
        subs.clear()

    def stop(self) -> None:
        """Stop serving (server shutdown): the store is closed, the files stay."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        if self.sources is not None:
            self.sources.stop()
        for c in list(self.consumers.values()):
            c.stop()
        for tap in list(self.taps):
            tap.owner.origin_gone(self)
        if self.client is not None:
            self.client.close()
        for bid in list(self.batches):
            self._drop_batch(bid)
        for t in (self._expiry, self._dd_timer, self._sched_timer):
            if t is not None:
                t.cancel()
        self._expiry = self._dd_timer = self._sched_timer = None
        self.store.stop()

    def delete(self) -> None:
        """STREAM.DELETE: consumers, messages and files go."""
        for c in list(self.consumers.values()):
            c.delete()
        self.stop()
        self.store.delete()
        self.jsa.add_usage(self.is_memory, -self._used)
        self._used = 0
        shutil.rmtree(self.dir, ignore_errors=True)
        self.jsa.streams.pop(self.name, None)

    def write_meta(self) -> None:
        meta = {"config": self.config, "created": self.created}
        path = os.path.join(self.dir, META_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.replace(tmp, path)

    def _storage_update(self, md: int, bd: int, seq: int, subj: bytes) -> None:
        # JsAccount.add_usage, inline: this runs for every message stored or removed.
        self._used += bd
        jsa = self.jsa
        if self.is_memory:
            jsa.mem_used += bd
            jsa.js.mem_used += bd
        else:
            jsa.store_used += bd
            jsa.js.store_used += bd
        if md < 0 and self.consumers:
            self._consumers_removed(md, seq, subj)

    def _consumers_removed(self, md: int, seq: int, subj: bytes) -> None:
        """storeUpdates: a removed message is no longer to deliver nor pending for consumers
        (`c.dec_stream_pending`); after a bulk removal they count again (`c.stream_num_pending`)."""
        if md == -1 and seq > 0 and subj:
            for c in list(self.consumers.values()):
                c.dec_stream_pending(seq, subj)
        else:
            for c in list(self.consumers.values()):
                c.stream_num_pending()

    # -- updates ------------------------------------------------------------------------

    def update(self, cfg: dict[str, Any]) -> None:
        """Apply a checked new configuration (updateWithAdvisory): subjects, direct get,
        transforms, limits (applied to the store at once), sources."""
        old = self.config
        self.config = cfg
        if self.client is not None and not self.closed:
            new_subjects = cfg["subjects"] or []
            for s in new_subjects:
                if s not in self._subs:
                    self._subscribe(s)
            for s in [s for s in self._subs if s not in new_subjects]:
                self.client.remove_sub(self._subs.pop(s))
            if cfg["allow_direct"] != old["allow_direct"]:
                if cfg["allow_direct"]:
                    self._subscribe_direct()
                else:
                    self._unsubscribe(self._direct_subs)
            if cfg["mirror_direct"] != old["mirror_direct"]:
                if cfg["mirror_direct"]:
                    self._subscribe_mirror_direct()
                else:
                    self._unsubscribe(self._mirror_direct_subs)
        self._apply_config()
        if cfg["duplicate_window"] != old["duplicate_window"] and self._dd_timer is not None:
            self._dd_timer.cancel()
            self._dd_timer = self.server.loop.call_later(0.000001, self._purge_msg_ids)
        self.store.update_config(store_config(cfg))
        self.mark_dirty()
        if self.sources is not None or cfg["mirror"] is not None or cfg["sources"]:
            if self.sources is None:
                self.sources = Sourcing(self)
            self.sources.update(old)
            if self.sources.empty():
                self.sources.stop()
                self.sources = None
        self.write_meta()
        self.schedule_expiry()

    # -- expiry (max_age, per-message TTL, subject delete markers) ----------------------

    def schedule_expiry(self) -> None:
        if self.closed:
            return
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deadline = self.store.next_expiry()
        if deadline is None:
            return
        delay = max((deadline - time.time_ns()) / 1e9, 0.0)
        self._expiry = self.server.loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        if self.closed:
            return
        res = self.store.expire(time.time_ns())
        for subj, hdr in res.markers:
            # A subject delete marker is stored like a sourced message: its roll-up removes
            # the expired message of its subject.
            self.process(subj, None, hdr, b"", sourced=True)
        self.mark_dirty()
        self.schedule_expiry()

    # -- de-duplication -----------------------------------------------------------------

    def rebuild_dedup(self) -> None:
        """rebuildDedupe: the ids of the messages stored within the duplicate window."""
        window = self.config["duplicate_window"]
        if window <= 0:
            return
        store = self.store
        seq = store.get_seq_from_time(time.time_ns() - window)
        if seq == 0:
            return
        last = store.fast_state().last_seq
        while seq and seq <= last:
            try:
                sm, nseq = store.load_next_msg(b">", True, seq)
            except (ErrStoreMsgNotFound, ErrStoreEOF, StoreError):
                break
            mid = H.get(sm.hdr, H.MSG_ID) if sm.hdr else None
            if mid:
                self._store_msg_id(mid, sm.seq, sm.ts)
            if sm.seq == last:
                self.lmsgid = mid or b""
            seq = nseq + 1

    def _store_msg_id(self, msg_id: bytes, seq: int, ts: int) -> None:
        if self.dedup.add(msg_id, seq, ts) and self._dd_timer is None and self.server.loop is not None:
            self._dd_timer = self.server.loop.call_later(self.dedup.window / 1e9, self._purge_msg_ids)

    def _purge_msg_ids(self) -> None:
        self._dd_timer = None
        if self.closed:
            return
        nxt = self.dedup.purge(time.time_ns())
        if nxt is not None:
            self._dd_timer = self.server.loop.call_later(nxt / 1e9, self._purge_msg_ids)

    # -- messages in --------------------------------------------------------------------

    def _on_msg(self, sub: Any, origin: Any, acc: Any, subject: bytes, reply: bytes | None,
                hdr: int, msg: Any) -> bool:
        try:
            if hdr > 0:
                self.process(subject, reply, bytes(msg[:hdr]), bytes(msg[hdr:-2]))
                return True
            payload = bytes(msg[:-2])
            if self._fast:
                # The common message (no headers, a stream without transforms, counters, interest
                # retention or account limits): nothing to check but its size and the server's
                # limit, and the store takes it in one call when no limit applies there either.
                js = self.js
                mms = self._max_msg_size
                if ((mms < 0 or len(payload) <= mms)
                        and (js.mem_used <= js.max_memory if self.is_memory else js.store_used <= js.max_storage)):  # fmt: skip
                    r = self.store.store_fast(subject, payload)
                    if r is not None:
                        seq = r[0]
                        self.lseq = seq
                        self.lmsgid = b""
                        if self.is_memory:
                            if reply and not self._no_ack:
                                self._send_ack(reply, self._ack_prefix + b"%d}" % seq)
                            if self.consumers:
                                self.signal_consumers(seq)
                            for tap in self.taps:
                                tap.notify()
                        else:
                            if reply and not self._no_ack:
                                self._acks.append((reply, self._ack_prefix + b"%d}" % seq))
                            if self.consumers or self.taps:
                                self._signal.append(seq)
                            if not self._dirty:
                                self.mark_dirty()
                        if self._timed and self._expiry is None:
                            self.schedule_expiry()
                        return True
            self.process(subject, reply, b"", payload)
            return True
        except Exception as e:  # a bug: the message is lost, the publisher's read goes on
            self.server.log.error(f"JetStream failed to process a message on stream "
                                  f"'{self.account.name} > {self.name}': {e!r}")  # fmt: skip
            return True

    def _error(self, reply: bytes | None, e: ApiError) -> int:
        if reply and not self._no_ack:
            body = {"error": e.json(), "stream": self.name, "seq": 0}
            self._respond(reply, wire.go_json(body))
        return 0

    def process(self, subject: bytes, reply: bytes | None, hdr: bytes, msg: bytes, *,
                sourced: bool = False, batch: bytes | None = None) -> int:
        """Check and store one message, answer its PubAck; the sequence (0 when refused).
        `sourced`: a message from a source or mirror, or the stream's own marker (stored
        as it is, without the publisher checks). `batch`: the message of a committing atomic
        batch (checked as a whole already); its PubAck names the batch and its size."""
        if self.closed:
            return 0
        if not sourced and batch is None and hdr and H.get(hdr, H.BATCH_ID) is not None:
            return self._atomic_batch_msg(subject, reply, hdr, msg)
        if self._itr is not None:
            t = self._itr.match(subject.decode(errors="surrogateescape"))
            if t is not None:
                subject = t.encode(errors="surrogateescape")
        if not sourced and reply and reply.endswith(b".$FI"):
            return self._error(reply, api_error(errors.BATCH_PUBLISH_DISABLED))
        if self._sealed:
            return self._error(reply, api_error(errors.STREAM_SEALED))
        msg_id = b""
        rollup = b""
        if hdr:
            hdr = H.remove(hdr, H.REQUEST_INFO)
        if hdr:
            r = self._check_headers(subject, hdr, msg, sourced)
            if r is not None:
                if isinstance(r, ApiError):
                    return self._error(reply, r)
                return r
            if not sourced and b"Nats-Schedule" in hdr:  # Nats-Schedule*, Nats-Scheduler
                r3 = sched.check_publish(self.config, subject, hdr)
                if isinstance(r3, ApiError):
                    return self._error(reply, r3)
                hdr = r3
            msg_id = H.get(hdr, H.MSG_ID) or b""
            if msg_id and not self._is_mirror:
                dup = self.dedup.check(msg_id)
                if dup:
                    if reply and not self._no_ack:
                        self._respond(reply, self._ack_prefix + str(dup).encode() + b',"duplicate": true}')
                    return 0
            elmid = H.get(hdr, H.EXPECTED_LAST_MSG_ID)
            if elmid is not None and elmid != self.lmsgid:
                return self._error(reply, api_error(errors.STREAM_WRONG_LAST_MSG_ID,
                                                    id=self.lmsgid.decode(errors="replace")))  # fmt: skip
            rv = H.get(hdr, H.ROLLUP)
            if rv is not None:
                rollup = rv.lower()
                if not self._allow_rollup and not sourced:
                    return self._error(reply, api_error(errors.STREAM_ROLLUP_FAILED_F, err="rollup not permitted"))
                if rollup not in (b"sub", b"all"):
                    text = f"rollup value invalid: {go_quote(rollup.decode(errors='replace'))}"
                    return self._error(reply, api_error(errors.STREAM_ROLLUP_FAILED_F, err=text))
        ack_tail = b"}"
        if batch is not None:
            ack_tail = b',"batch":' + go_quote(batch.decode(errors="replace")).encode() + b',"count":%d}' % (
                batch_seq(hdr) or 0)
        if self._counter:
            incr = H.get(hdr, H.INCR) if hdr else None
            if incr is None:
                return self._error(reply, api_error(errors.MESSAGE_INCR_MISSING))
            r2 = self._count(subject, hdr, msg, H.parse_incr(incr) or 0)
            if isinstance(r2, ApiError):
                return self._error(reply, r2)
            hdr, msg = r2
            if batch is None:
                ack_tail = b',"val":' + json.dumps(json.loads(msg)["val"]).encode() + b"}"
        mms = self._max_msg_size
        if mms >= 0 and (len(hdr) > mms or len(msg) > mms - len(hdr)):
            return self._error(reply, api_error(errors.STREAM_MESSAGE_EXCEEDS_MAXIMUM))
        if len(hdr) > _MAX_HDR:
            return self._error(reply, api_error(errors.STREAM_HEADER_EXCEEDS_MAXIMUM))
        js = self.js
        if js.limits_exceeded(self.is_memory):
            js.resources_exceeded_error(self.is_memory)
            return self._error(reply, api_error(errors.INSUFFICIENT_RESOURCES))
        store = self.store
        if self._interest and not self.has_consumer_interest(subject):
            # Interest retention without interest: the sequence is used, nothing stored.
            self.lseq = store.skip_msg(0)
            self.lmsgid = msg_id
            if msg_id:
                self._store_msg_id(msg_id, self.lseq, time.time_ns())
            if self._allow_rollup and rollup:
                self._rollup(subject, rollup, 0)
            if reply and not self._no_ack:
                self._respond(reply, self._ack_prefix + str(self.lseq).encode() + ack_tail)
            self.mark_dirty()
            return self.lseq
        tsubj: str | None = None
        tlseq = 0
        if self._tr is not None:
            tsubj = self._tr.match(subject.decode(errors="surrogateescape"))
            if tsubj is not None:
                try:
                    tlseq = store.load_last_msg(subject).seq
                except StoreError:
                    tlseq = 0
        jsa = self.jsa
        if jsa.has_limits and jsa.would_exceed(self.is_memory, len(subject), len(hdr), len(msg)):
            self.server.log.warn(
                f'JetStream {"memory" if self.is_memory else "file"} resource limits exceeded for account: '
                f'"{self.account.name}"'
            )
            return self._error(reply, api_error(errors.ACCOUNT_RESOURCES_EXCEEDED))
        ttl = 0
        if hdr:
            try:
                ttl = H.message_ttl(hdr)
            except H.TTLError:
                return self._error(reply, api_error(errors.MESSAGE_TTL_INVALID))
            if ttl > 0 and self._sdm_ttl > 0 and self.config["max_msgs_per_subject"] != 1 and ttl < self._sdm_ttl:
                ttl = self._sdm_ttl
                hdr = H.append(H.remove(hdr, H.TTL), H.TTL, str(ttl).encode())
        try:
            seq, ts = store.store_msg(subject, hdr, msg, ttl)
        except _LIMIT_ERRORS as e:
            if isinstance(e, ErrStoreClosed):
                return 0
            return self._error(reply, api_error(errors.STREAM_STORE_FAILED_F, err=str(e)))
        except StoreError as e:
            self.server.log.error(f"JetStream failed to store a msg on stream '{self.account.name} > {self.name}': {e}")
            return 0
        self.lseq = seq
        self.lmsgid = msg_id
        if msg_id:
            self._store_msg_id(msg_id, seq, ts)
        if rollup and self._allow_rollup:
            self._rollup(subject, rollup, 1)
        if tsubj is not None:
            self._republish(tsubj, subject, hdr, msg, seq, ts, tlseq)
        if self._scheduling is not None:
            self._schedules_stored(subject, hdr, seq, ts)
        elif hdr and H.get(hdr, H.SCHEDULE_NEXT) == b"purge":
            scheduler = H.get(hdr, H.SCHEDULER)
            if scheduler is not None:
                self.purge(scheduler.decode(errors="surrogateescape"))
        if reply and not self._no_ack:
            self._respond(reply, self._ack_prefix + str(seq).encode() + ack_tail)
        self._stored(seq)
        return seq

    # -- message schedules (schedule.py) --------------------------------------------------

    def _schedules_stored(self, subject: bytes, hdr: bytes, seq: int, ts: int) -> None:
        """After a store (the store's hook in nats-server): a schedule message is added; any
        other message on its subject replaces it; a produced message moves its schedule on,
        or purges it."""
        sc = self._scheduling
        assert sc is not None
        when, err = sched.next_schedule(hdr, ts) if hdr else (None, None)
        if err is None and when is not None:
            sc.add(seq, subject, sched.to_ns(when))
        elif not hdr or H.get(hdr, H.SCHEDULER) is None:
            sc.remove_subject(subject)
        nxt = H.get(hdr, H.SCHEDULE_NEXT) if hdr else None
        scheduler = H.get(hdr, H.SCHEDULER) if nxt is not None else None
        if nxt is not None and scheduler is not None:
            if nxt == b"purge":
                sc.remove_subject(scheduler)
                self.purge(scheduler.decode(errors="surrogateescape"))
            else:
                t = sched.parse_rfc3339(nxt.decode(errors="replace"))
                if t is not None:
                    sc.update(scheduler, sched.to_ns(t))
        self._schedule_timer()

    def _schedule_timer(self) -> None:
        sc = self._scheduling
        if self._sched_timer is not None:
            self._sched_timer.cancel()
            self._sched_timer = None
        if sc is None or self.closed:
            return
        deadline = sc.next_deadline()
        if deadline is None:
            return
        delay = max((deadline - time.time_ns()) / 1e9, sched.MIN_FIRE_DELAY)
        self._sched_timer = self.server.loop.call_later(delay, self._run_schedules)

    def _run_schedules(self) -> None:
        """Store what the due schedules produce (runMsgScheduling)."""
        self._sched_timer = None
        sc = self._scheduling
        if sc is None or self.closed:
            return
        now = time.time_ns()
        out = []
        for seq, subj, ts in sc.due(now):
            try:
                sm = self.store.load_msg(seq)
            except StoreError:
                sc.remove_subject(subj)
                continue
            body_hdr, body = sm.hdr, sm.msg
            src = H.get(sm.hdr, sched.SCHEDULE_SOURCE)
            if src is not None:
                try:
                    last = self.store.load_last_msg(src)
                    body_hdr, body = last.hdr, last.msg
                except StoreError:
                    pass
            p = sched.produce(subj, sm.hdr, body_hdr, body, ts, now)
            if p is None:
                sc.remove_subject(subj)
                continue
            sc.inflight.add(subj)
            out.append(p)
        for target, hdr, msg in out:
            self.process(target, None, hdr, msg, sourced=True)
        self._schedule_timer()

    def _recover_schedules(self) -> None:
        """The schedules of the stored messages (recoverMsgSchedulingState)."""
        sc = self._scheduling
        assert sc is not None
        seq = 0
        while True:
            try:
                sm, seq = self.store.load_next_msg(b">", True, seq + 1)
            except StoreError:
                break
            if sm.hdr:
                when, err = sched.next_schedule(sm.hdr, sm.ts)
                if err is None and when is not None:
                    sc.add(seq, sm.subject, sched.to_ns(when))

    # -- atomic batch publish (batch.py) -------------------------------------------------

    def _atomic_batch_msg(self, subject: bytes, reply: bytes | None, hdr: bytes, msg: bytes) -> int:
        """A message with Nats-Batch-Id (processJetStreamAtomicBatchMsg): staged, or the commit."""
        if self._sealed:
            return self._error(reply, api_error(errors.STREAM_SEALED))
        js = self.js
        if js.limits_exceeded(self.is_memory):
            js.resources_exceeded_error(self.is_memory)
            return self._error(reply, api_error(errors.INSUFFICIENT_RESOURCES))
        jsa = self.jsa
        if jsa.has_limits and jsa.would_exceed(self.is_memory, len(subject), len(hdr), len(msg)):
            return self._error(reply, api_error(errors.ACCOUNT_RESOURCES_EXCEEDED))
        mms = self._max_msg_size
        if mms >= 0 and (len(hdr) > mms or len(msg) > mms - len(hdr)):
            return self._error(reply, api_error(errors.STREAM_MESSAGE_EXCEEDS_MAXIMUM))
        if not self.config["allow_atomic"]:
            return self._error(reply, api_error(errors.ATOMIC_PUBLISH_DISABLED))
        bid = H.get(hdr, H.BATCH_ID) or b""
        if len(bid) > MAX_BATCH_ID:
            return self._error(reply, api_error(errors.ATOMIC_PUBLISH_INVALID_BATCH_ID))
        seq = batch_seq(hdr)
        if seq is None:
            return self._error(reply, api_error(errors.ATOMIC_PUBLISH_MISSING_SEQ))
        b = self.batches.get(bid)
        if b is None:
            if seq != 1:
                if seq > MAX_BATCH_SIZE:
                    return self._error(reply, api_error(errors.ATOMIC_PUBLISH_TOO_LARGE_BATCH, size=MAX_BATCH_SIZE))
                return self._error(reply, api_error(errors.ATOMIC_PUBLISH_INCOMPLETE_BATCH))
            if len(self.batches) + 1 > MAX_INFLIGHT_PER_STREAM or js.atomic_inflight + 1 > MAX_INFLIGHT_TOTAL:
                return self._error(reply, api_error(errors.ATOMIC_PUBLISH_TOO_MANY_INFLIGHT))
            b = self.batches[bid] = AtomicBatch()
            js.atomic_inflight += 1
        commit = eob = False
        c = H.get(hdr, BATCH_COMMIT)
        if c is not None:
            eob = c == b"eob"
            if not eob and c != b"1":
                self._drop_batch(bid)
                return self._error(reply, api_error(errors.ATOMIC_PUBLISH_INVALID_BATCH_COMMIT))
            commit = True
        if H.get(hdr, H.REQUIRED_API_LEVEL) is not None:
            if required_level_error(hdr):
                self._drop_batch(bid)
                return self._error(reply, api_error(errors.REQUIRED_API_LEVEL))
            hdr = H.remove(hdr, H.REQUIRED_API_LEVEL)
        if b.timer is not None:
            b.timer.cancel()
        b.timer = self.server.loop.call_later(BATCH_TIMEOUT, self._drop_batch, bid)
        if len(b.msgs) + 1 != seq or (seq == 1 and eob):
            self._drop_batch(bid)
            return self._error(reply, api_error(errors.ATOMIC_PUBLISH_INCOMPLETE_BATCH))
        if seq > MAX_BATCH_SIZE:
            self._drop_batch(bid)
            return self._error(reply, api_error(errors.ATOMIC_PUBLISH_TOO_LARGE_BATCH, size=MAX_BATCH_SIZE))
        b.msgs.append((subject, hdr, msg))
        if not commit:
            # An empty answer: the message is staged.
            if reply and not self._no_ack:
                self._respond(reply, b"")
            return 0
        msgs = b.msgs[:-1] if eob else b.msgs
        self._drop_batch(bid)
        err = check_commit(self, msgs)
        if err is not None:
            return self._error(reply, err)
        if eob:  # the last stored message carries the commit, as if it had been sent with it
            s, h, m = msgs[-1]
            msgs[-1] = (s, H.append(h, BATCH_COMMIT, b"1"), m)
        last = 0
        for i, (s, h, m) in enumerate(msgs):
            last = self.process(s, reply if i == len(msgs) - 1 else None, h, m, batch=bid)
        return last

    def _drop_batch(self, bid: bytes) -> None:
        b = self.batches.pop(bid, None)
        if b is not None:
            if b.timer is not None:
                b.timer.cancel()
            self.js.atomic_inflight -= 1

    def _count(self, subject: bytes, hdr: bytes, msg: bytes, incr: int) -> tuple[bytes, bytes] | ApiError:
        """A counter stream's message: the subject's new total ({"val":"N"}); a sourced one
        updates Nats-Counter-Sources and counts the difference to its source's last value."""
        total = 0
        sources: dict[str, dict[str, str]] = {}
        try:
            last = self.store.load_last_msg(subject)
        except StoreError:
            last = None
        if last is not None:
            try:
                total = int(json.loads(last.msg)["val"])
                cs = H.get(last.hdr, H.COUNTER_SOURCES) if last.hdr else None
                if cs is not None:
                    sources = json.loads(cs)
            except (ValueError, KeyError, TypeError):
                return api_error(errors.MESSAGE_COUNTER_BROKEN)
        src = H.get(hdr, H.STREAM_SOURCE)
        if src is not None:
            fields = src.decode(errors="surrogateescape").split(" ")
            orig_stream = fields[0]
            orig_subj = fields[4] if len(fields) >= 5 else subject.decode(errors="surrogateescape")
            try:
                sourced = int(json.loads(msg)["val"])
            except (ValueError, KeyError, TypeError):
                return api_error(errors.MESSAGE_COUNTER_BROKEN)
            per = sources.setdefault(orig_stream, {})
            prev = int(per.get(orig_subj, "0") or 0)
            per[orig_subj] = str(sourced)
            incr = sourced - prev
            hdr = H.set_value(hdr, H.INCR, str(incr).encode())
        total += incr
        msg = b'{"val":' + json.dumps(str(total)).encode() + b"}"
        if sources:
            text = json.dumps({k: dict(sorted(v.items())) for k, v in sorted(sources.items())}, separators=(",", ":"))
            hdr = H.set_value(hdr, H.COUNTER_SOURCES, text.encode())
        if len(hdr) + len(msg) > self.server.opts.max_payload:
            return api_error(errors.STREAM_MESSAGE_EXCEEDS_MAXIMUM)
        return hdr, msg

    def _stored(self, seq: int) -> None:
        """After a store: consumers and copying streams are told (file streams: once written)."""
        if self.is_memory:
            if self.consumers:
                self.signal_consumers(seq)
            for tap in self.taps:
                tap.notify()
        else:
            self._signal.append(seq)
            if not self._dirty:
                self.mark_dirty()
        if self._timed and self._expiry is None:
            self.schedule_expiry()

    def store_mirrored(self, subject: bytes, hdr: bytes, msg: bytes, seq: int, ts: int) -> None:
        """A mirrored message: stored with the origin's sequence and time (processJetStreamMsg
        with a last sequence); what the origin does not have (any more) is skipped."""
        if self.closed or seq <= self.lseq:
            return
        store = self.store
        st = store.fast_state()
        try:
            if st.msgs == 0 and st.last_seq == 0:
                store.compact(seq)
            elif seq > self.lseq + 1:
                store.skip_msgs(self.lseq + 1, seq - self.lseq - 1)
            ttl = H.ttl_or_zero(hdr) if hdr and self._allow_ttl else 0
            store.store_raw_msg(subject, hdr, msg, seq, ts, ttl)
        except StoreError as e:
            self.server.log.warn(
                f"Error processing inbound mirror message for '{self.account.name}' > '{self.name}': {e}"
            )
            return
        self.lseq = seq
        if hdr and self._allow_rollup:
            rv = H.get(hdr, H.ROLLUP)
            if rv is not None:
                self._rollup(subject, rv.lower(), 1)
        self._stored(seq)

    def _check_headers(self, subject: bytes, hdr: bytes, msg: bytes, sourced: bool) -> ApiError | int | None:
        """The checks of headers before de-duplication: an ApiError to answer, or None."""
        incr = H.get(hdr, H.INCR)
        if incr is not None:
            if H.parse_incr(incr) is None:
                return api_error(errors.MESSAGE_INCR_INVALID)
            if not sourced:
                if not self._counter:
                    return api_error(errors.MESSAGE_INCR_DISABLED)
                if msg:
                    return api_error(errors.MESSAGE_INCR_PAYLOAD)
                if any(H.get(hdr, k) is not None for k in (
                        H.ROLLUP, H.EXPECTED_STREAM, H.EXPECTED_LAST_MSG_ID, H.EXPECTED_LAST_SUBJ_SEQ_SUBJ,
                        H.EXPECTED_LAST_SEQ, H.EXPECTED_LAST_SUBJ_SEQ)):  # fmt: skip
                    return api_error(errors.MESSAGE_INCR_INVALID)
        es = H.get(hdr, H.EXPECTED_STREAM)
        if es is not None and es.decode(errors="replace") != self.name:
            return api_error(errors.STREAM_NOT_MATCH)
        if not sourced and not self._allow_ttl and H.ttl_or_zero(hdr) != 0:
            return api_error(errors.MESSAGE_TTL_DISABLED)
        elss = H.get(hdr, H.EXPECTED_LAST_SUBJ_SEQ)
        if elss is not None:
            want = H.parse_uint(elss)
            seq_subj = H.get(hdr, H.EXPECTED_LAST_SUBJ_SEQ_SUBJ) or subject
            try:
                fseq = self.store.load_last_msg(seq_subj).seq
                ok = fseq == want
            except StoreError:
                fseq = 0
                ok = want == 0
            if not ok:
                return api_error(errors.STREAM_WRONG_LAST_SEQUENCE, seq=fseq)
        elif H.get(hdr, H.EXPECTED_LAST_SUBJ_SEQ_SUBJ) is not None:
            return api_error(errors.STREAM_EXPECTED_LAST_SEQ_PER_SUBJECT_INVALID)
        els = H.get(hdr, H.EXPECTED_LAST_SEQ)
        if els is not None and H.parse_uint(els) != self.lseq:
            return api_error(errors.STREAM_WRONG_LAST_SEQUENCE, seq=self.lseq)
        return None

    def _rollup(self, subject: bytes, rollup: bytes, keep: int) -> None:
        if rollup == b"sub":
            self.purge(subject.decode(errors="surrogateescape"), 0, keep)
        elif rollup == b"all":
            self.purge("", 0, keep)

    def _republish(self, tsubj: str, subject: bytes, hdr: bytes, msg: bytes, seq: int, ts: int,
                   tlseq: int) -> None:
        """RePublish: the stored message to its transformed subject with stream headers."""
        extra = (b"Nats-Stream: " + self.name.encode() + b"\r\nNats-Subject: " + subject
                 + b"\r\nNats-Sequence: " + str(seq).encode() + b"\r\nNats-Time-Stamp: "
                 + H.go_time_ns(ts).encode() + b"\r\nNats-Last-Sequence: " + str(tlseq).encode() + b"\r\n")  # fmt: skip
        if self._tr_hdrs_only:
            extra += b"Nats-Msg-Size: " + str(len(msg)).encode() + b"\r\n"
            body = b""
        else:
            body = msg
        if hdr:
            h = hdr[:-2] + extra + b"\r\n"
        else:
            h = b"NATS/1.0\r\n" + extra + b"\r\n"
        self.publish(tsubj.encode(), None, h, body)

    def _send_ack(self, reply: bytes, body: bytes) -> None:
        """Publish a PubAck (or another answer without headers) to `reply`. The usual case,
        one plain client subscription and nothing else, is written to it directly (what
        deliver_msg would do, without its general checks); anything else goes through
        deliver_msg."""
        acc = self.account
        sl = acc.sublist
        r = sl.cache.get(reply)
        if r is None:
            r = sl._match_miss(reply)
        psubs = r.psubs
        if len(psubs) == 1 and not r.qsubs and not r.routes:
            sub = psubs[0]
            d = sub.client
            if not (d.internal or sub.closed or sub.max or d.perm_filter is not None):
                out = d.out
                if not out:
                    self.server.dirty.append(d)
                sub.nm += 1
                out.append(sub.prefix or sub.msg_prefix(reply))
                out.append(b"%d\r\n" % len(body))
                out.append(body + b"\r\n")
                return
        if self.client is not None:
            deliver_msg(self.client, acc, reply, None, -1, body + b"\r\n")

    def _respond(self, reply: bytes, body: bytes) -> None:
        if self.is_memory:
            self._send_ack(reply, body)
        else:
            self._acks.append((reply, body))
            if not self._dirty:
                self.mark_dirty()

    def mark_dirty(self) -> None:
        """Have `flush` run with the server's next flush (file streams write then)."""
        if not self._dirty and not self.closed:
            self._dirty = True
            self.server.mark_dirty(self)  # type: ignore[arg-type]

    def flush(self) -> None:
        """Write what the store buffered, then send the PubAcks waiting for it and tell the
        consumers (called from the server's flush of dirty connections)."""
        self._dirty = False
        if self.closed:
            return
        try:
            self.store.flush()
        except StoreError as e:
            self.server.log.error(f"JetStream failed to write stream '{self.account.name} > {self.name}': {e}")
            self._acks.clear()
            self._signal.clear()
            return
        acks = self._acks
        if acks:
            self._acks = []
            send = self._send_ack
            for reply, body in acks:
                send(reply, body)
        sig = self._signal
        if sig:
            self._signal = []
            if self.consumers:
                for seq in sig:
                    self.signal_consumers(seq)
            for tap in self.taps:
                tap.notify()

    # -- purge and delete ---------------------------------------------------------------

    def purge(self, subject: str = "", seq: int = 0, keep: int = 0) -> int:
        """PurgeEx (or Purge): how many messages went; consumers are told (mset.purge)."""
        store = self.store
        if subject or seq or keep:
            n = store.purge_ex(subject.encode(errors="surrogateescape"), seq, keep)
        else:
            n = store.purge()
        st = store.fast_state()
        fseq, lseq = st.first_seq, st.last_seq
        if lseq > self.lseq:
            self.lseq = lseq
        if subject:
            fseq = store.filtered_state(fseq, subject.encode(errors="surrogateescape")).first
        for c in list(self.consumers.values()):
            self._purge_consumer(c, subject, fseq, st.first_seq, lseq)
        self.mark_dirty()
        return n

    @staticmethod
    def _purge_consumer(c: Any, subject: str, fseq: int, first: int, lseq: int) -> None:
        fn = getattr(c, "purge", None)
        if fn is None:
            return
        if not subject or getattr(c, "is_equal_or_subset_match", lambda s: True)(subject):
            fn(fseq, lseq, False)
        elif getattr(c, "is_filtered_match", lambda s: False)(subject):
            fn(first, lseq, True)

    def remove_msg(self, seq: int, *, erase: bool = False) -> bool:
        """MSG.DELETE: raises StoreError (ErrStoreEOF past the end)."""
        if not self.is_memory:
            # The file store's answers for sequences outside its blocks (filestore.removeMsg).
            st = self.store.fast_state()
            if seq > st.last_seq:
                raise ErrStoreEOF()
            if seq == 0 or seq < st.first_seq:
                raise ErrStoreMsgNotFound()
        removed = self.store.erase_msg(seq) if erase else self.store.remove_msg(seq)
        self.mark_dirty()
        return removed

    # -- consumers ----------------------------------------------------------------------
    #
    # What the consumer side calls (consumer.py):
    #
    # - register_consumer(c) / remove_consumer(c): `c.name` is the key.
    # - signal_consumers(seq) calls `c.new_message(seq)` on every consumer after a message is
    #   stored (for file streams once the write is done, right after the PubAcks).
    # - ack_msg(c, seq): the consumer acknowledged `seq` (its own state already updated). On
    #   interest and workqueue streams the message is removed once no consumer still needs
    #   it, asking each consumer `c.need_ack(seq, subject) -> bool` (nats-server's
    #   o.needAck). Returns whether the message was removed.
    # - has_consumer_interest(subject): on interest streams a message that no consumer's
    #   filter matches is not stored (its sequence is skipped); each consumer is asked
    #   `c.is_filtered_match(subject: str) -> bool` (absent: interested in everything).
    # - cleanup_no_interest(start): after a consumer left an interest/workqueue stream:
    #   messages from `start` on that no remaining consumer needs are removed (all of them
    #   when no consumer remains).
    # - purge() calls `c.purge(start_seq, last_seq, is_wider)` with nats-server's choice: for
    #   a purge of everything, or of a filter that the consumer's own filters are equal to or
    #   a subset of (`c.is_equal_or_subset_match(subject)`), start is the filter's new first
    #   sequence; for a filter that only overlaps (`c.is_filtered_match(subject)`), the
    #   stream's first sequence and is_wider=True.
    # - publish(subject, reply, hdr, payload) publishes into the stream's account
    #   (deliveries, statuses, ack replies).

    def register_consumer(self, c: Any) -> None:
        self.consumers[c.name] = c

    def remove_consumer(self, c: Any) -> None:
        name = c.name
        if self.consumers.get(name) is c:
            del self.consumers[name]

    def signal_consumers(self, seq: int) -> None:
        """A message was stored: consumers that wait for one get to deliver it."""
        for c in list(self.consumers.values()):
            c.new_message(seq)

    def has_consumer_interest(self, subject: bytes) -> bool:
        if not self.consumers:
            return False
        s = subject.decode(errors="surrogateescape")
        for c in self.consumers.values():
            fn = getattr(c, "is_filtered_match", None)
            if fn is None or fn(s):
                return True
        return False

    def _no_interest(self, seq: int, subject: str) -> bool:
        for c in self.consumers.values():
            fn = getattr(c, "need_ack", None)
            if fn is None or fn(seq, subject):
                return False
        return True

    def ack_msg(self, c: Any, seq: int) -> bool:
        """A consumer acked `seq`: remove it when no consumer needs it (not for limits)."""
        if seq == 0 or self.closed or self._retention == "limits":
            return False
        st = self.store.fast_state()
        if seq > st.last_seq or seq < st.first_seq:
            return False
        try:
            subject = self.store.subject_for_seq(seq).decode(errors="surrogateescape")
        except StoreError:
            return False
        if not self._no_interest(seq, subject):
            return False
        try:
            removed = self.store.remove_msg(seq)
        except StoreError:
            return False
        self.mark_dirty()
        return removed

    def cleanup_no_interest(self, start: int = 0) -> None:
        """After a consumer of an interest/workqueue stream went: remove what nobody needs."""
        if self._retention == "limits" or self.closed:
            return
        if not self.consumers:
            self.store.purge()
            self.lseq = max(self.lseq, self.store.fast_state().last_seq)
            self.mark_dirty()
            return
        st = self.store.fast_state()
        seq = max(start, st.first_seq)
        while seq and seq <= st.last_seq:
            try:
                sm, nseq = self.store.load_next_msg(b">", True, seq)
            except StoreError:
                break
            if self._no_interest(sm.seq, sm.subject.decode(errors="surrogateescape")):
                self.store.remove_msg(sm.seq)
            seq = nseq + 1
        self.mark_dirty()

    def publish(self, subject: bytes, reply: bytes | None, hdr: bytes, payload: bytes) -> bool:
        """Publish into the stream's account (PubAcks, consumer deliveries, statuses)."""
        if self.client is None:
            return False
        if hdr:
            return deliver_msg(self.client, self.account, subject, reply, len(hdr), hdr + payload + b"\r\n")
        return deliver_msg(self.client, self.account, subject, reply, -1, payload + b"\r\n")

    # -- answers ------------------------------------------------------------------------

    def used_bytes(self) -> int:
        return self._used

    def config_json(self, *, dynamic: bool = True) -> dict[str, Any]:
        """The configuration as nats-server answers it (`dynamic`: with the server's level
        and version in the metadata, as create/update/info answers have)."""
        return to_json(self.config, dynamic=dynamic)

    def state_json(self, *, details: bool = False, subjects: dict[str, int] | None = None) -> dict[str, Any]:
        st = self.store.state(deleted=details)
        out: dict[str, Any] = {
            "messages": st.msgs,
            "bytes": st.bytes,
            "first_seq": st.first_seq,
            "first_ts": H.go_time_ns(st.first_ts) if st.first_ts else _ZERO_TIME,
            "last_seq": st.last_seq,
            "last_ts": H.go_time_ns(st.last_ts) if st.last_ts else _ZERO_TIME,
        }
        if st.num_subjects:
            out["num_subjects"] = st.num_subjects
        if subjects:
            out["subjects"] = subjects
        if st.num_deleted:
            out["num_deleted"] = st.num_deleted
        if details and st.deleted:
            out["deleted"] = st.deleted
        if st.lost is not None and (st.lost.msgs or st.lost.bytes):
            out["lost"] = {"msgs": st.lost.msgs, "bytes": st.lost.bytes}
        out["consumer_count"] = len(self.consumers)
        return out

    def created_json(self) -> str:
        return H.go_time_ns(int(self.created * 1e9))

    def info_json(self, *, cluster: bool = True, dynamic: bool = True, details: bool = False,
                  subjects: dict[str, int] | None = None, domain: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "config": self.config_json(dynamic=dynamic),
            "created": self.created_json(),
            "state": self.state_json(details=details, subjects=subjects),
        }
        if domain and self.js.opts.domain:
            out["domain"] = self.js.opts.domain
        if cluster:
            out["cluster"] = {"leader": self.server.name}
        if self.sources is not None:
            out.update(self.sources.info_json())
        out["ts"] = go_time(time.time())
        return out
