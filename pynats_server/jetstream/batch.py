"""Atomic batch publish (`allow_atomic`, nats-server 2.12+): messages with `Nats-Batch-Id` and
`Nats-Batch-Sequence` 1, 2, ... are staged; the one with `Nats-Batch-Commit: 1` (or `eob`: end
of batch, itself not stored) stores them all, or none. Staged messages are answered with an
empty message, the commit with a PubAck that has `"batch"` and `"count"`.

No I/O here: `AtomicBatches` keeps the staged batches of one stream and `check_commit` is
nats-server's consistency check of a whole batch against the stream's state before anything
is stored (checkMsgHeadersPreClusteredProposal with its staged diff). The stream
(stream.py) does the rest: timers, answers, storing. Staged messages are kept in memory: a
batch is at most 1000 messages, and nats-server drops unfinished batches on restart anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors
from . import headers as H
from .errors import ApiError, api_error
from .reqjson import go_quote
from .schedule import check_publish
from .store.base import StoreError

# nats-server's defaults (streamDefaultMaxAtomicBatch*, streamDefaultMaxBatchTimeout).
MAX_BATCH_SIZE = 1000
MAX_INFLIGHT_PER_STREAM = 50
MAX_INFLIGHT_TOTAL = 1000
BATCH_TIMEOUT = 10.0  # seconds without a message before a batch is abandoned
MAX_BATCH_ID = 64

BATCH_SEQ = b"Nats-Batch-Sequence"
BATCH_COMMIT = b"Nats-Batch-Commit"


@dataclass
class AtomicBatch:
    msgs: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)  # subject, hdr, msg
    timer: Any = None  # the loop's abandon timer


def batch_seq(hdr: bytes) -> int | None:
    """Nats-Batch-Sequence (None when absent); not a number reads as 2^64-1, as in Go."""
    v = H.get(hdr, BATCH_SEQ)
    return None if v is None else H.parse_uint(v)


@dataclass
class _Diff:
    """What the batch so far would change (batchStagedDiff)."""

    msg_ids: set[bytes] = field(default_factory=set)
    inflight: dict[bytes, list[int]] = field(default_factory=dict)  # subject -> [ops, bytes]
    expected_per_subject: dict[bytes, int] = field(default_factory=dict)


def check_commit(stream: Any, msgs: list[tuple[bytes, bytes, bytes]]) -> ApiError | None:
    """The first reason the batch cannot be stored as a whole, or None."""
    cfg = stream.config
    diff = _Diff()
    clseq = stream.lseq
    store = stream.store
    for subject, hdr, msg in msgs:
        if stream._itr is not None:
            t = stream._itr.match(subject.decode(errors="surrogateescape"))
            if t is not None:
                subject = t.encode(errors="surrogateescape")
        if hdr and H.get(hdr, H.EXPECTED_LAST_MSG_ID) is not None:
            return api_error(errors.ATOMIC_PUBLISH_UNSUPPORTED_HEADER_BATCH, header="Nats-Expected-Last-Msg-Id")
        err = _check_one(stream, cfg, diff, clseq, subject, hdr, msg)
        if err is not None:
            return err
        ent = diff.inflight.setdefault(subject, [0, 0])
        ent[0] += 1
        ent[1] += store._msg_size(len(subject), len(hdr), len(msg))
        if cfg["discard"] == "new":
            err = _check_discard_new(stream, cfg, diff, subject, hdr)
            if err is not None:
                return err
        clseq += 1
    return None


def _check_one(stream: Any, cfg: dict[str, Any], diff: _Diff, clseq: int, subject: bytes, hdr: bytes,
               msg: bytes) -> ApiError | None:
    counter = stream._counter
    incr = None
    if hdr:
        if len(hdr) > 0xFFFF:
            return api_error(errors.STREAM_HEADER_EXCEEDS_MAXIMUM)
        iv = H.get(hdr, H.INCR)
        if iv is not None:
            incr = H.parse_incr(iv)
            if incr is None:
                return api_error(errors.MESSAGE_INCR_INVALID)
            if not counter:
                return api_error(errors.MESSAGE_INCR_DISABLED)
            if msg:
                return api_error(errors.MESSAGE_INCR_PAYLOAD)
            if any(H.get(hdr, k) is not None for k in (
                    H.ROLLUP, H.EXPECTED_STREAM, H.EXPECTED_LAST_MSG_ID, H.EXPECTED_LAST_SUBJ_SEQ_SUBJ,
                    H.EXPECTED_LAST_SEQ, H.EXPECTED_LAST_SUBJ_SEQ)):  # fmt: skip
                return api_error(errors.MESSAGE_INCR_INVALID)
        es = H.get(hdr, H.EXPECTED_STREAM)
        if es is not None and es.decode(errors="replace") != stream.name:
            return api_error(errors.STREAM_NOT_MATCH)
        try:
            ttl = H.message_ttl(hdr)
        except H.TTLError:
            return api_error(errors.MESSAGE_TTL_DISABLED if not stream._allow_ttl else errors.MESSAGE_TTL_INVALID)
        if ttl != 0 and not stream._allow_ttl:
            return api_error(errors.MESSAGE_TTL_DISABLED)
        msg_id = H.get(hdr, H.MSG_ID)
        if msg_id is not None:
            if msg_id in diff.msg_ids or stream.dedup.check(msg_id):
                return api_error(errors.ATOMIC_PUBLISH_CONTAINS_DUPLICATE_MESSAGE)
            diff.msg_ids.add(msg_id)
    if counter and incr is None:
        return api_error(errors.MESSAGE_INCR_MISSING)
    if not hdr:
        return None
    els = H.get(hdr, H.EXPECTED_LAST_SEQ)
    if els is not None:
        if H.parse_uint(els) != clseq:
            return api_error(errors.STREAM_WRONG_LAST_SEQUENCE, seq=clseq)
        if diff.inflight:
            return api_error(errors.STREAM_WRONG_LAST_SEQUENCE_CONSTANT)
    elss = H.get(hdr, H.EXPECTED_LAST_SUBJ_SEQ)
    if elss is not None:
        want = H.parse_uint(elss)
        seq_subj = H.get(hdr, H.EXPECTED_LAST_SUBJ_SEQ_SUBJ) or subject
        if seq_subj in diff.inflight:
            return api_error(errors.STREAM_WRONG_LAST_SEQUENCE_CONSTANT)
        if seq_subj in diff.expected_per_subject:
            have = diff.expected_per_subject[seq_subj]
            if have != want:
                return api_error(errors.STREAM_WRONG_LAST_SEQUENCE, seq=have)
        else:
            try:
                have = stream.store.load_last_msg(seq_subj).seq
            except StoreError:
                have = 0
            if have != want:
                return api_error(errors.STREAM_WRONG_LAST_SEQUENCE, seq=have)
            diff.expected_per_subject[seq_subj] = have
    elif H.get(hdr, H.EXPECTED_LAST_SUBJ_SEQ_SUBJ) is not None:
        return api_error(errors.STREAM_EXPECTED_LAST_SEQ_PER_SUBJECT_INVALID)
    if b"Nats-Schedule" in hdr:
        r = check_publish(cfg, subject, hdr)
        if isinstance(r, ApiError):
            return r
        hdr = r
    rollup = H.get(hdr, H.ROLLUP)
    if rollup is not None:
        if not stream._allow_rollup or cfg["deny_purge"]:
            return api_error(errors.STREAM_ROLLUP_FAILED_F, err="rollup not permitted")
        if rollup == b"sub":
            if subject in diff.inflight:
                return api_error(errors.STREAM_ROLLUP_FAILED_F, err="batch rollup sub invalid")
        elif rollup == b"all":
            if diff.inflight:
                return api_error(errors.STREAM_ROLLUP_FAILED_F, err="batch rollup all invalid")
        else:
            text = f"rollup value invalid: {go_quote(rollup.decode(errors='replace'))}"
            return api_error(errors.STREAM_ROLLUP_FAILED_F, err=text)
    return None


def _check_discard_new(stream: Any, cfg: dict[str, Any], diff: _Diff, subject: bytes, hdr: bytes) -> ApiError | None:
    max_msgs, max_bytes = cfg["max_msgs"], cfg["max_bytes"]
    if max_msgs > 0 or max_bytes > 0:
        st = stream.store.fast_state()
        msgs = st.msgs + sum(v[0] for v in diff.inflight.values())
        size = st.bytes + sum(v[1] for v in diff.inflight.values())
        if max_msgs > 0 and msgs > max_msgs:
            return api_error(errors.STREAM_STORE_FAILED_F, err="maximum messages exceeded")
        if max_bytes > 0 and size > max_bytes:
            return api_error(errors.STREAM_STORE_FAILED_F, err="maximum bytes exceeded")
    per = cfg["max_msgs_per_subject"]
    if cfg["discard_new_per_subject"] and per > 0 and H.get(hdr, H.ROLLUP) is None:
        total = stream.store.subjects_totals(subject).get(subject, 0) + diff.inflight[subject][0]
        if total > per:
            return api_error(errors.STREAM_STORE_FAILED_F, err="maximum messages per subject exceeded")
    return None
