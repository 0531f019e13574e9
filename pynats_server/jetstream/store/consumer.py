"""Consumer state stores (nats-server consumerMemStore / consumerFileStore semantics).

The state machine (delivered, ack floor, pending, redelivered) is nats-server's. The file
variant keeps ``<stream dir>/obs/<name>/o.dat``: nats-server's binary consumer state encoding
(version 2) followed by a CRC-32, replaced atomically (write a temporary file, rename). Updates
mark the state dirty; ``flush()`` writes it (the caller runs it on a timer and before acking
whatever must survive a crash), ``stop()`` flushes.
"""

from __future__ import annotations

import os
import shutil
import time
import zlib
from typing import Protocol

from .base import (
    AckPolicy,
    ConsumerState,
    ConsumerStore,
    ConsumerStoreConfig,
    ErrBadConsumerState,
    ErrNoAckPolicy,
    ErrStoreClosed,
    ErrStoreCorrupt,
    ErrStoreMsgNotFound,
    ErrStoreOldUpdate,
    Pending,
    SequencePair,
    StorageType,
)

_MAGIC = 22
_VERSION = 2
_M64 = (1 << 64) - 1
STATE_FILE = "o.dat"


class _Owner(Protocol):
    def remove_consumer(self, o: ConsumerStore) -> None: ...


# ---------------------------------------------------------------------------------------------
# nats-server's consumer state encoding (store.go encodeConsumerState / decodeConsumerState).


def _uvarint(out: bytearray, v: int) -> None:
    v &= _M64
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _varint(out: bytearray, v: int) -> None:
    _uvarint(out, (v << 1) ^ (v >> 63) if v < 0 else v << 1)


def encode_consumer_state(state: ConsumerState, now: float | None = None) -> bytes:
    """Version 2: floors and delivered, then pending (timestamps in seconds relative to now
    rounded to the second) and redelivered counts, all as varints relative to the floors."""
    out = bytearray((_MAGIC, _VERSION))
    asflr = state.ack_floor.stream
    adflr = state.ack_floor.consumer
    for v in (adflr, asflr, state.delivered.consumer, state.delivered.stream):
        _uvarint(out, v)
    _uvarint(out, len(state.pending))
    if state.pending:
        mints = round(time.time() if now is None else now)
        _varint(out, mints)
        for sseq, p in state.pending.items():
            _uvarint(out, sseq - asflr)
            _uvarint(out, p.sequence - adflr)
            # Go's integer division truncates toward zero.
            secs = abs(p.timestamp) // 1_000_000_000
            if p.timestamp < 0:
                secs = -secs
            _varint(out, mints - secs)
    _uvarint(out, len(state.redelivered))
    for sseq, n in state.redelivered.items():
        _uvarint(out, sseq - asflr)
        _uvarint(out, n)
    return bytes(out)


class _Reader:
    __slots__ = ("buf", "i")

    def __init__(self, buf: bytes, i: int) -> None:
        self.buf = buf
        self.i = i

    def uvarint(self) -> int:
        buf = self.buf
        v = 0
        shift = 0
        while True:
            if self.i >= len(buf) or shift > 63:
                raise ValueError("truncated varint")
            b = buf[self.i]
            self.i += 1
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return v & _M64
            shift += 7

    def varint(self) -> int:
        u = self.uvarint()
        return (u >> 1) ^ -(u & 1)


def decode_consumer_state(buf: bytes) -> ConsumerState:
    """Decode versions 1 and 2; ValueError when the bytes are not a consumer state."""
    if len(buf) < 2 or buf[0] != _MAGIC or buf[1] not in (1, 2):
        raise ValueError("bad consumer state header")
    version = buf[1]
    r = _Reader(buf, 2)
    st = ConsumerState()
    st.ack_floor.consumer = r.uvarint()
    st.ack_floor.stream = r.uvarint()
    st.delivered.consumer = r.uvarint()
    st.delivered.stream = r.uvarint()
    if version == 1:
        if st.ack_floor.consumer > 1:
            st.delivered.consumer += st.ack_floor.consumer - 1
        if st.ack_floor.stream > 1:
            st.delivered.stream += st.ack_floor.stream - 1
    if st.ack_floor.stream >> 63 or st.delivered.stream >> 63:
        raise ValueError("corrupt consumer state")
    npend = r.uvarint()
    if npend:
        mints = r.varint()
        for _ in range(npend):
            sseq = r.uvarint()
            dseq = r.uvarint() if version == 2 else 0
            ts = r.varint()
            sseq = (sseq + st.ack_floor.stream) & _M64
            if sseq == 0:
                raise ValueError("corrupt consumer state")
            if version == 2:
                dseq = (dseq + st.ack_floor.consumer) & _M64
            ts = (ts + mints) * 1_000_000_000 if version == 1 else (mints - ts) * 1_000_000_000
            st.pending[sseq] = Pending(dseq, ts)
    nred = r.uvarint()
    for _ in range(nred):
        seq = r.uvarint()
        n = r.uvarint()
        if seq > 0 and n > 0:
            st.redelivered[(seq + st.ack_floor.stream) & _M64] = n
    return st


# ---------------------------------------------------------------------------------------------
# The state machine.


def _check_state(state: ConsumerState) -> None:
    if state.ack_floor.consumer > state.delivered.consumer:
        raise ErrBadConsumerState("bad ack floor for consumer")
    if state.ack_floor.stream > state.delivered.stream:
        raise ErrBadConsumerState("bad ack floor for stream")
    for seq in state.pending:
        if seq <= state.ack_floor.stream or seq > state.delivered.stream:
            raise ErrBadConsumerState(f"bad pending entry, sequence [{seq}] out of range")


class _ConsumerBase:
    storage_type = StorageType.MEMORY

    def __init__(self, owner: _Owner, cfg: ConsumerStoreConfig) -> None:
        self._owner = owner
        self._cfg = cfg
        self._state = ConsumerState()
        self._closed = False

    def _changed(self) -> None:
        """The state changed (the file variant marks itself dirty)."""

    @property
    def type(self) -> StorageType:
        return self.storage_type

    def set_starting(self, sseq: int) -> None:
        self._state.delivered.stream = sseq
        self._state.ack_floor.stream = sseq
        self._changed()

    def update_starting(self, sseq: int) -> None:
        st = self._state
        if sseq > st.delivered.stream:
            st.delivered.stream = sseq
            if self._cfg.ack_policy == AckPolicy.NONE:
                st.ack_floor.stream = sseq
            self._changed()

    def reset(self, sseq: int) -> None:
        self._state = ConsumerState()
        self.set_starting(sseq)

    def has_state(self) -> bool:
        return self._state.delivered.consumer != 0 or self._state.delivered.stream != 0

    def update_delivered(self, dseq: int, sseq: int, dc: int, ts: int) -> None:
        """A message was delivered (``dc``-th delivery) at ``ts`` (ns)."""
        self._check()
        cfg = self._cfg
        st = self._state
        if dc != 1 and cfg.ack_policy == AckPolicy.NONE:
            raise ErrNoAckPolicy()
        if dseq <= st.ack_floor.consumer:
            return
        if cfg.ack_policy != AckPolicy.NONE:
            if sseq <= st.delivered.stream:
                p = st.pending.get(sseq)
                if p is not None:
                    # The first delivery's consumer sequence stays.
                    p.timestamp = ts
            else:
                st.pending[sseq] = Pending(dseq, ts)
            if dseq > st.delivered.consumer:
                st.delivered.consumer = dseq
            if sseq > st.delivered.stream:
                st.delivered.stream = sseq
            if dc > 1:
                if 0 < cfg.max_deliver < dc:
                    st.pending.pop(sseq, None)
                if st.redelivered.get(sseq, 0) < dc - 1:
                    st.redelivered[sseq] = dc - 1
        else:
            if dseq > st.delivered.consumer:
                st.delivered.consumer = dseq
                st.ack_floor.consumer = dseq
            if sseq > st.delivered.stream:
                st.delivered.stream = sseq
                st.ack_floor.stream = sseq
        self._changed()

    def update_acks(self, dseq: int, sseq: int) -> None:
        """An ack of (consumer seq, stream seq); ErrStoreMsgNotFound when not pending."""
        self._check()
        cfg = self._cfg
        st = self._state
        if cfg.ack_policy == AckPolicy.NONE:
            raise ErrNoAckPolicy()
        if dseq <= st.ack_floor.consumer:
            return
        if sseq not in st.pending:
            st.redelivered.pop(sseq, None)
            raise ErrStoreMsgNotFound()
        self._changed()
        if cfg.ack_policy in (AckPolicy.ALL, AckPolicy.FLOW_CONTROL):
            sgap = sseq - st.ack_floor.stream
            st.ack_floor.consumer = dseq
            st.ack_floor.stream = sseq
            if sgap > len(st.pending):
                for seq in [s for s in st.pending if s <= sseq]:
                    del st.pending[seq]
                    st.redelivered.pop(seq, None)
            else:
                seq = sseq
                while seq > sseq - sgap and st.pending:
                    st.pending.pop(seq, None)
                    st.redelivered.pop(seq, None)
                    seq -= 1
            return
        p = st.pending.pop(sseq, None)
        if p is not None and dseq > p.sequence > 0:
            dseq = p.sequence
        if not st.pending:
            st.ack_floor.consumer = st.delivered.consumer
            st.ack_floor.stream = st.delivered.stream
        elif dseq == st.ack_floor.consumer + 1:
            st.ack_floor.consumer = dseq
            st.ack_floor.stream = sseq
            if st.delivered.consumer > dseq:
                for ss in range(sseq + 1, st.delivered.stream + 1):
                    q = st.pending.get(ss)
                    if q is not None:
                        if q.sequence > 0:
                            st.ack_floor.consumer = q.sequence - 1
                            st.ack_floor.stream = ss - 1
                        break
        st.redelivered.pop(sseq, None)

    def update_config(self, cfg: ConsumerStoreConfig) -> None:
        self._cfg = cfg

    def update(self, state: ConsumerState) -> None:
        """Replace the state (replicated updates): refuses an update older than ours."""
        _check_state(state)
        st = self._state
        if (
            state.delivered.consumer < st.delivered.consumer
            or state.ack_floor.stream < st.ack_floor.stream
        ):
            raise ErrStoreOldUpdate()
        self._state = state.copy()
        self._changed()

    def force_update(self, state: ConsumerState) -> None:
        _check_state(state)
        self._state = state.copy()
        self._changed()

    def _check(self) -> None:
        if self._closed:
            raise ErrStoreClosed()

    def state(self) -> ConsumerState:
        """A copy of the state."""
        self._check()
        return self._state.copy()

    def borrow_state(self) -> ConsumerState:
        """The state itself (pending and redelivered not copied): do not keep or mutate it."""
        self._check()
        st = self._state
        return ConsumerState(
            SequencePair(st.delivered.consumer, st.delivered.stream),
            SequencePair(st.ack_floor.consumer, st.ack_floor.stream),
            st.pending,
            st.redelivered,
        )

    def encoded_state(self) -> bytes:
        self._check()
        return encode_consumer_state(self._state)

    def flush(self) -> None:
        """Persist the state if it changed (a no-op in memory)."""

    def stop(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._owner.remove_consumer(self)

    def delete(self) -> None:
        self.stop()

    def stream_delete(self) -> None:
        self.stop()


class ConsumerMemStore(_ConsumerBase):
    """A consumer's state in memory."""


class ConsumerFileStore(_ConsumerBase):
    """A consumer's state in ``directory/o.dat`` (created if missing, loaded if present)."""

    storage_type = StorageType.FILE

    def __init__(
        self,
        owner: _Owner,
        cfg: ConsumerStoreConfig,
        directory: str,
        stream_dir: str = "",
        sync: bool = False,
    ) -> None:
        super().__init__(owner, cfg)
        self._dir = directory
        self._stream_dir = stream_dir or os.path.dirname(os.path.dirname(directory))
        self._sync = sync
        self._dirty = False
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._load()

    def _path(self) -> str:
        return os.path.join(self._dir, STATE_FILE)

    def _load(self) -> None:
        path = self._path()
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        except OSError as e:
            raise ErrStoreCorrupt(self._stream_dir, path, f"unreadable: {e}") from e
        if len(data) < 6:
            raise ErrStoreCorrupt(self._stream_dir, path, "consumer state too short")
        body, crc = data[:-4], int.from_bytes(data[-4:], "little")
        if zlib.crc32(body) != crc:
            raise ErrStoreCorrupt(self._stream_dir, path, "consumer state checksum mismatch")
        try:
            self._state = decode_consumer_state(body)
        except ValueError as e:
            raise ErrStoreCorrupt(self._stream_dir, path, str(e)) from e

    def _changed(self) -> None:
        self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def flush(self) -> None:
        """Write the state atomically if it changed (fsync when created with ``sync``)."""
        if not self._dirty or self._closed:
            return
        body = encode_consumer_state(self._state)
        data = body + zlib.crc32(body).to_bytes(4, "little")
        path = self._path()
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if self._sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._dirty = False

    def delete(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner.remove_consumer(self)
        shutil.rmtree(self._dir, ignore_errors=True)

    def stream_delete(self) -> None:
        # The stream directory goes as a whole; nothing to write.
        if not self._closed:
            self._closed = True
            self._owner.remove_consumer(self)
