"""The JetStream storage interface: value types, configuration, errors (nats-server store.go).

Conventions, shared by the memory and the file store:

- Subjects, headers and payloads are ``bytes`` (the protocol layer's type). A filter of ``b""``
  or ``b">"`` means every subject; other filters may hold ``*`` and ``>`` tokens.
- Sequences are ints >= 1; 0 means "none". Timestamps are ints in nanoseconds since the epoch
  (Go's ``UnixNano``); 0 is Go's zero time.
- A store is single-threaded (the server's event loop owns it) and never schedules anything:
  ``expire(now)`` does the age and TTL work when the caller's timer fires, and returns the next
  deadline.
- Errors are exceptions whose text is nats-server's (``str(ErrMaxMsgs())`` is
  ``"maximum messages exceeded"``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# ---------------------------------------------------------------------------------------------
# Errors (store.go's sentinel errors, as exception classes with the same text).


class StoreError(Exception):
    """Base of every store error; ``str(e)`` is nats-server's text."""

    text = "store error"

    def __init__(self, text: str | None = None) -> None:
        super().__init__(text if text is not None else self.text)


class ErrStoreClosed(StoreError):
    text = "store is closed"


class ErrStoreMsgNotFound(StoreError):
    text = "no message found"


class ErrStoreEOF(StoreError):
    text = "stream store EOF"


class ErrMaxMsgs(StoreError):
    text = "maximum messages exceeded"


class ErrMaxBytes(StoreError):
    text = "maximum bytes exceeded"


class ErrMaxMsgsPerSubject(StoreError):
    text = "maximum messages per subject exceeded"


class ErrMsgTooLarge(StoreError):
    text = "message too large"


class ErrStoreWrongType(StoreError):
    text = "wrong storage type"


class ErrNoAckPolicy(StoreError):
    text = "ack policy is none"


class ErrSequenceMismatch(StoreError):
    text = "expected sequence does not match store"


class ErrCorruptStreamState(StoreError):
    text = "stream state snapshot is corrupt"


class ErrTooManyResults(StoreError):
    text = "too many matching results for request"


class ErrStoreOldUpdate(StoreError):
    text = "old update ignored"


class ErrBadConsumerState(StoreError):
    """A consumer state update that fails nats-server's sanity checks (text given per case)."""

    text = "bad consumer state"


class ErrStoreCorrupt(StoreError):
    """A file of a stream (or consumer) directory cannot be read back: the stream should be
    skipped. ``directory`` and ``file`` name it; the text says where and why."""

    text = "corrupt store file"

    def __init__(self, directory: str, file: str, detail: str) -> None:
        self.directory = directory
        self.file = file
        self.detail = detail
        super().__init__(f"stream store {directory!r}: file {file!r}: {detail}")


class ErrStoreWrite(StoreError):
    """A write to disk failed (disk full, I/O error). The store refuses further writes:
    like nats-server's sticky write error, the stream must be restarted."""

    text = "store write failed"


# ---------------------------------------------------------------------------------------------
# Enums (values as nats-server's).


class StorageType(enum.IntEnum):
    FILE = 22
    MEMORY = 33


class DiscardPolicy(enum.IntEnum):
    OLD = 0
    NEW = 1


class RetentionPolicy(enum.IntEnum):
    LIMITS = 0
    INTEREST = 1
    WORKQUEUE = 2


class AckPolicy(enum.IntEnum):
    NONE = 0
    ALL = 1
    EXPLICIT = 2
    FLOW_CONTROL = 3


# ---------------------------------------------------------------------------------------------
# Value types.


@dataclass(slots=True)
class StoredMsg:
    """A message as stored (StoreMsg): ``hdr`` is b"" when the message has no headers."""

    subject: bytes
    hdr: bytes
    msg: bytes
    seq: int
    ts: int


@dataclass(slots=True)
class SimpleState:
    """Messages matching a filter: count and the first and last sequence (0 when none)."""

    msgs: int = 0
    first: int = 0
    last: int = 0


@dataclass(slots=True)
class LostStreamData:
    msgs: list[int] = field(default_factory=list)
    bytes: int = 0


@dataclass(slots=True)
class StreamState:
    """StreamState: ``first_ts``/``last_ts`` are ns (0 is Go's zero time). ``deleted`` is filled
    by ``state()`` only (``fast_state()`` leaves it None)."""

    msgs: int = 0
    bytes: int = 0
    first_seq: int = 0
    first_ts: int = 0
    last_seq: int = 0
    last_ts: int = 0
    num_subjects: int = 0
    num_deleted: int = 0
    deleted: list[int] | None = None
    lost: LostStreamData | None = None
    consumer_count: int = 0


@dataclass(slots=True)
class ExpireResult:
    """What ``expire(now)`` did and wants.

    - ``removed``: how many messages it removed (each also went to the storage-update callback).
    - ``markers``: subject delete markers the stream must now store as ordinary messages
      (subject, header block); each carries ``Nats-Rollup: sub``, so storing it purges the
      subject's expired message. The store proposes a marker again after 2 s if it was not
      stored.
    - ``next_due``: when to call ``expire`` again (ns since the epoch), None when nothing is
      due (a later store will say so via ``next_expiry()``).
    """

    removed: int = 0
    markers: list[tuple[bytes, bytes]] = field(default_factory=list)
    next_due: int | None = None


@dataclass(slots=True)
class StoreConfig:
    """The stream settings the store acts on (a subset of StreamConfig).

    Durations are ns; a limit of 0 or below means unlimited. ``max_msgs_per_subject`` counts
    messages per literal subject. ``subject_delete_marker_ttl`` is in ns (whole seconds are
    used, as nats-server does). ``first_seq`` is the stream's initial first sequence.
    """

    name: str = ""
    storage: StorageType = StorageType.MEMORY
    max_msgs: int = -1
    max_bytes: int = -1
    max_age: int = 0
    max_msgs_per_subject: int = -1
    max_msg_size: int = -1
    discard: DiscardPolicy = DiscardPolicy.OLD
    discard_new_per_subject: bool = False
    allow_msg_ttl: bool = False
    subject_delete_marker_ttl: int = 0
    first_seq: int = 0
    retention: RetentionPolicy = RetentionPolicy.LIMITS


# Storage-update callback: (msgs delta, bytes delta, seq, subject). seq and subject are set when
# a single message was removed (the stream decrements its consumers' pending counts then), 0 and
# b"" for bulk changes (purge, compact, truncate).
StorageUpdateHandler = Callable[[int, int, int, bytes], None]


# ---------------------------------------------------------------------------------------------
# Sizes as nats-server accounts them (StreamState.bytes, max_bytes).


def mem_store_msg_size(slen: int, hlen: int, mlen: int) -> int:
    """memStoreMsgSize: subject + headers + payload + 16 (sequence and timestamp)."""
    return slen + hlen + mlen + 16


def file_store_msg_size(slen: int, hlen: int, mlen: int) -> int:
    """fileStoreMsgSize: nats-server's record length (22-byte header, 8-byte hash, and a
    4-byte header length when there are headers), whatever our own record format is."""
    if hlen == 0:
        return 22 + slen + mlen + 8
    return 22 + slen + 4 + hlen + mlen + 8


# ---------------------------------------------------------------------------------------------
# Headers (client.go's sliceHeader rules: case-sensitive key after a CRLF, then ':').

HDR_ROLLUP = b"Nats-Rollup"
HDR_TTL = b"Nats-TTL"
HDR_MARKER_REASON = b"Nats-Marker-Reason"
HDR_KV_OPERATION = b"KV-Operation"


def header_value(hdr: bytes, key: bytes) -> bytes | None:
    """The value of header ``key`` in a NATS/1.0 header block, or None."""
    if not hdr:
        return None
    n = len(hdr)
    klen = len(key)
    off = 0
    while True:
        i = hdr.find(key, off)
        if i < 2:
            return None
        if i >= n - 1 or hdr[i - 2 : i] != b"\r\n":
            off = i + klen
            continue
        j = i + klen
        if j >= n:
            return None
        if hdr[j] != 0x3A:  # ':'
            off = j
            continue
        j += 1
        while j < n and hdr[j] == 0x20:
            j += 1
        end = hdr.find(b"\r\n", j)
        return hdr[j : n if end < 0 else end]


def is_subject_delete_marker(hdr: bytes) -> bool:
    """A subject delete marker (Nats-Marker-Reason) or a KV purge marker."""
    if not hdr:
        return False
    return bool(header_value(hdr, HDR_MARKER_REASON)) or (
        header_value(hdr, HDR_KV_OPERATION) == b"PURGE"
    )


def go_duration_seconds(seconds: int) -> str:
    """Go's time.Duration String() for a whole number of seconds: 1s, 1m0s, 1h0m0s."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{sign}{h}h{m}m{sec}s"
    if m:
        return f"{sign}{m}m{sec}s"
    return f"{sign}{sec}s"


def subject_delete_marker_header(ttl_seconds: int) -> bytes:
    """The header block of a MaxAge subject delete marker (filestore.go handleRemovalOrSdm)."""
    return (
        b"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: "
        + go_duration_seconds(ttl_seconds).encode()
        + b"\r\nNats-Rollup: sub\r\n\r\n"
    )


def dyn_block_size(retention: RetentionPolicy, max_bytes: int) -> int:
    """The file store's default block size for a stream (filestore.go dynBlkSize)."""
    if max_bytes > 0:
        blk = max_bytes // 4 + 1
        if blk % 100:
            blk += 100 - blk % 100
        if blk <= FILE_STORE_MIN_BLK_SIZE:
            return FILE_STORE_MIN_BLK_SIZE
        if blk >= FILE_STORE_MAX_BLK_SIZE:
            return FILE_STORE_MAX_BLK_SIZE
        return DEFAULT_MEDIUM_BLOCK_SIZE
    if retention == RetentionPolicy.LIMITS:
        return DEFAULT_LARGE_BLOCK_SIZE
    return DEFAULT_MEDIUM_BLOCK_SIZE


DEFAULT_LARGE_BLOCK_SIZE = 8 * 1024 * 1024
DEFAULT_MEDIUM_BLOCK_SIZE = 4 * 1024 * 1024
FILE_STORE_MIN_BLK_SIZE = 32 * 1000
FILE_STORE_MAX_BLK_SIZE = DEFAULT_LARGE_BLOCK_SIZE


# ---------------------------------------------------------------------------------------------
# Consumer state (store.go ConsumerState).


@dataclass(slots=True)
class SequencePair:
    consumer: int = 0
    stream: int = 0


@dataclass(slots=True)
class Pending:
    """A delivered, unacknowledged message: its first consumer sequence and last delivery time."""

    sequence: int
    timestamp: int


@dataclass(slots=True)
class ConsumerState:
    """Delivered and ack floor pairs; ``pending`` maps stream seq -> Pending (ack explicit/all),
    ``redelivered`` maps stream seq -> redelivery count (deliveries - 1)."""

    delivered: SequencePair = field(default_factory=SequencePair)
    ack_floor: SequencePair = field(default_factory=SequencePair)
    pending: dict[int, Pending] = field(default_factory=dict)
    redelivered: dict[int, int] = field(default_factory=dict)

    def copy(self) -> ConsumerState:
        return ConsumerState(
            SequencePair(self.delivered.consumer, self.delivered.stream),
            SequencePair(self.ack_floor.consumer, self.ack_floor.stream),
            {k: Pending(p.sequence, p.timestamp) for k, p in self.pending.items()},
            dict(self.redelivered),
        )


@dataclass(slots=True)
class ConsumerStoreConfig:
    """What the consumer store acts on (a subset of ConsumerConfig)."""

    ack_policy: AckPolicy = AckPolicy.EXPLICIT
    max_deliver: int = -1


# ---------------------------------------------------------------------------------------------
# The interfaces.


class ConsumerStore(Protocol):
    """Delivery and ack state of one consumer (store.go ConsumerStore)."""

    def set_starting(self, sseq: int) -> None: ...
    def update_starting(self, sseq: int) -> None: ...
    def reset(self, sseq: int) -> None: ...
    def has_state(self) -> bool: ...
    def update_delivered(self, dseq: int, sseq: int, dc: int, ts: int) -> None: ...
    def update_acks(self, dseq: int, sseq: int) -> None: ...
    def update_config(self, cfg: ConsumerStoreConfig) -> None: ...
    def update(self, state: ConsumerState) -> None: ...
    def force_update(self, state: ConsumerState) -> None: ...
    def state(self) -> ConsumerState: ...
    def borrow_state(self) -> ConsumerState: ...
    def encoded_state(self) -> bytes: ...
    def flush(self) -> None: ...
    def stop(self) -> None: ...
    def delete(self) -> None: ...
    def stream_delete(self) -> None: ...

    @property
    def type(self) -> StorageType: ...


class StreamStore(Protocol):
    """The message store of one stream (store.go StreamStore). See the module docstring for
    the conventions; ``memstore.MemStore`` and ``filestore.FileStore`` implement it."""

    @property
    def type(self) -> StorageType: ...

    def store_msg(self, subject: bytes, hdr: bytes, msg: bytes, ttl: int = 0) -> tuple[int, int]:
        """Store with the next sequence and the current time: returns (seq, ts). Applies the
        discard-new checks and then the limits (discard old, per subject). ``ttl`` is the
        parsed Nats-TTL in seconds (-1: never expires under max_age)."""
        ...

    def store_fast(self, subject: bytes, msg: bytes) -> tuple[int, int] | None:
        """store_msg(subject, b"", msg) when nothing but storing is needed (no headers, no
        limit to apply or check, a subject already stored): (seq, ts); None otherwise, and
        the caller uses store_msg. A shortcut for the stream's ingest path."""
        ...

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
        """Store with a given sequence (0: the next one) and timestamp (replicas, mirrors)."""
        ...

    def skip_msg(self, seq: int = 0) -> int: ...
    def skip_msgs(self, seq: int, num: int) -> None: ...
    def flush(self) -> None: ...
    def sync(self) -> None: ...
    def load_msg(self, seq: int) -> StoredMsg: ...
    def load_next_msg(self, filter: bytes, wc: bool, start: int) -> tuple[StoredMsg, int]: ...
    def load_next_msg_multi(
        self, filters: Sequence[bytes], start: int
    ) -> tuple[StoredMsg, int]: ...
    def load_last_msg(self, subject: bytes) -> StoredMsg: ...
    def load_prev_msg(self, filter: bytes, wc: bool, start: int) -> tuple[StoredMsg, int]: ...
    def load_prev_msg_multi(
        self, filters: Sequence[bytes], start: int
    ) -> tuple[StoredMsg, int]: ...
    def remove_msg(self, seq: int) -> bool: ...
    def erase_msg(self, seq: int) -> bool: ...
    def purge(self) -> int: ...
    def purge_ex(self, subject: bytes, seq: int, keep: int) -> int: ...
    def compact(self, seq: int) -> int: ...
    def truncate(self, seq: int) -> None: ...
    def get_seq_from_time(self, ts: int) -> int: ...
    def filtered_state(self, seq: int, subject: bytes) -> SimpleState: ...
    def subjects_state(self, filter: bytes) -> dict[bytes, SimpleState]: ...
    def subjects_totals(self, filter: bytes) -> dict[bytes, int]: ...
    def all_last_seqs(self) -> list[int]: ...
    def multi_last_seqs(
        self, filters: Sequence[bytes], max_seq: int, max_allowed: int
    ) -> list[int]: ...
    def subject_for_seq(self, seq: int) -> bytes: ...
    def num_pending(self, sseq: int, filter: bytes, last_per_subject: bool) -> tuple[int, int]: ...
    def num_pending_multi(
        self, sseq: int, filters: Sequence[bytes], last_per_subject: bool
    ) -> tuple[int, int]: ...
    def state(self, deleted: bool = True) -> StreamState: ...
    def fast_state(self) -> StreamState: ...
    def update_config(self, cfg: StoreConfig) -> None: ...
    def expire(self, now: int | None = None) -> ExpireResult: ...
    def next_expiry(self) -> int | None: ...
    def register_storage_updates(self, cb: StorageUpdateHandler | None) -> None: ...
    def consumer_store(
        self, name: str, cfg: ConsumerStoreConfig, created: int = 0
    ) -> ConsumerStore: ...
    def add_consumer(self, o: ConsumerStore) -> None: ...
    def remove_consumer(self, o: ConsumerStore) -> None: ...
    def delete(self) -> None: ...
    def stop(self) -> None: ...
