"""File storage for a stream: an append-only log of checksummed records in block files.

Layout of a stream directory (docs/DESIGN.md, "JetStream storage", has the whole story)::

    msgs/<n>.blk     blocks, n = 1, 2, ...; only the highest is written to
    obs/<name>/o.dat consumer state (consumer.py)

Every record is ``rec_len u32, kind u8, flags u8, subj_len u16, seq u64, ts i64`` then a
kind-specific body, then a CRC-32 of everything before it::

    MSG   (1)  hdr_len u32, floor u64, [ttl i64 if flags & 1], subject, headers, payload
    DEL   (2)  seq is the removed message
    SEQS  (3)  seq is the first sequence, ts the last timestamp, then last u64

Replaying the blocks in order rebuilds the stream: MSG adds a message and removes everything
below its ``floor`` (the stream's first sequence once the store was done, so the usual
discard-old store is one record); DEL removes one message; SEQS sets first and last exactly
(purge, compact, truncate, skips). A record that fails its checksum or runs past the end of
the last block is a torn write: it and what follows are cut off. Anywhere else it is
corruption, reported as ErrStoreCorrupt naming the file.

Space comes back by deleting blocks whose messages are all gone and by rewriting (temporary
file, then rename) blocks that are mostly dead. Before either, the removals those blocks hold
for other blocks (DEL records still needed) and the current SEQS are appended to the last
block and written, so a crash at any point replays to the same state.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from dataclasses import dataclass
from time import time_ns

from . import snapshot
from .base import (
    ConsumerStore,
    ConsumerStoreConfig,
    ErrStoreClosed,
    ErrStoreCorrupt,
    ErrStoreWrite,
    StorageType,
    StoreConfig,
    dyn_block_size,
)
from .consumer import ConsumerFileStore
from .engine import NOLOC, IndexedStore

MSGS_DIR = "msgs"
CONSUMERS_DIR = "obs"
_BLK_RE = re.compile(r"^(\d+)\.blk$")

_HDR = struct.Struct("<IBBHQq")  # rec_len, kind, flags, subj_len, seq, ts
_MSGX = struct.Struct("<IQ")  # hdr_len, floor
_MSG_HDR = struct.Struct("<IBBHQqIQ")  # _HDR then _MSGX
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_U32 = struct.Struct("<I")
_SEQ = struct.Struct("<Q")  # a record's sequence, at offset 8 of _HDR

KIND_MSG = 1
KIND_DEL = 2
KIND_SEQS = 3
FLAG_TTL = 1
HDR_SIZE = _HDR.size  # 24
MSG_HDR_SIZE = HDR_SIZE + _MSGX.size  # 36
DEL_SIZE = HDR_SIZE + 4  # 28
SEQS_SIZE = HDR_SIZE + 8 + 4  # 36
MIN_RECORD = DEL_SIZE
_M32 = 0xFFFFFFFF
# Read file descriptors kept open for blocks other than the one being written.
_FD_CACHE = 8
_READ_AHEAD = 64 * 1024  # bytes read at once when reads go through a block in order


@dataclass(slots=True)
class FileStoreConfig:
    """Where and how a file store writes.

    - ``block_size``: maximum block file size (0: nats-server's default for the stream).
    - ``write_through``: write at the end of every operation (the default). False: keep
      writes in memory until ``flush()`` (call it before acknowledging); a crash then loses
      the unflushed tail, never consistency.
    - ``sync_always``: fsync after every write. Otherwise data is durable against a process
      kill once written (the OS has it) and against power loss after ``sync()``, which the
      caller runs every ``sync_interval`` seconds (nats-server: 2 minutes).
    """

    store_dir: str
    block_size: int = 0
    write_through: bool = True
    sync_always: bool = False
    sync_interval: float = 120.0


def _del_record(seq: int) -> bytes:
    rec = _HDR.pack(DEL_SIZE, KIND_DEL, 0, 0, seq, 0)
    return rec + _U32.pack(zlib.crc32(rec))


def _seqs_record(first: int, last: int, last_ts: int) -> bytes:
    rec = _HDR.pack(SEQS_SIZE, KIND_SEQS, 0, 0, first, last_ts) + _U64.pack(last)
    return rec + _U32.pack(zlib.crc32(rec))


class _Block:
    """A block file: its message range, live count and bytes, and the DEL targets it holds."""

    __slots__ = ("index", "path", "size", "first", "last", "live", "live_bytes", "tombs")

    def __init__(self, index: int, path: str) -> None:
        self.index = index
        self.path = path
        self.size = 0
        self.first = 0
        self.last = 0
        self.live = 0
        self.live_bytes = 0
        self.tombs: list[int] = []


class FileStore(IndexedStore):
    """A stream's messages in block files under ``fcfg.store_dir`` (opened or created)."""

    storage_type = StorageType.FILE

    def __init__(self, fcfg: FileStoreConfig, cfg: StoreConfig) -> None:
        if cfg.storage != StorageType.FILE:
            raise ValueError("fileStore requires file storage type in config")
        super().__init__(cfg)
        self._fcfg = fcfg
        self._dir = fcfg.store_dir
        self._mdir = os.path.join(self._dir, MSGS_DIR)
        self._block_size = fcfg.block_size or dyn_block_size(cfg.retention, cfg.max_bytes)
        self._blocks: list[_Block] = []
        self._bmap: dict[int, _Block] = {}
        self._lmb: _Block | None = None
        self._wfd = -1
        self._flushed = 0
        self._pending = bytearray()
        self._fds: dict[int, int] = {}
        self._rcache: tuple[int, int, bytes] | None = None  # read-ahead: (block, offset, bytes)
        self._rnext: tuple[int, int] = (-1, -1)  # where the last read ended
        self._werr: ErrStoreWrite | None = None
        self._unsynced = False
        self._replaying = False
        # What the current operation changed, written by _end_op().
        self._op_msg = -1
        self._op_removed: list[int] = []
        self._op_touched: set[int] = set()
        self._op_erased: set[int] = set()
        self._op_marker = False
        self._op_reset = False
        self._op_truncated = -1
        self._op_first0 = 0
        # What recovery found and cut off (torn tail of the last block), for the caller's log.
        self.recovery_notes: list[str] = []
        # Whether the index came from index.db (a clean stop) rather than a replay.
        self.recovered_from_snapshot = False
        try:
            os.makedirs(self._mdir, mode=0o700, exist_ok=True)
            os.makedirs(os.path.join(self._dir, CONSUMERS_DIR), mode=0o700, exist_ok=True)
        except OSError as e:
            raise ErrStoreCorrupt(self._dir, self._dir, f"cannot create directory: {e}") from e
        try:
            self._recover()
        except BaseException:
            self._close_fds()
            raise
        self._op_first0 = self._first
        if cfg.first_seq > 0 and not self._blocks:
            self._purge(cfg.first_seq)
            self._end_op()
        elif self._blocks:
            # A torn multi-record write (a message and the removal its limit caused) can
            # leave a limit exceeded: apply the limits again (removals are written).
            self._enforce_all(True)
            self._end_op()

    def _msg_size(self, slen: int, hlen: int, mlen: int) -> int:
        # base.file_store_msg_size, inline: this runs for every store and removal.
        if hlen == 0:
            return 30 + slen + mlen
        return 34 + slen + hlen + mlen

    # ------------------------------------------------------------------ recovery

    def _corrupt(self, path: str, detail: str) -> ErrStoreCorrupt:
        return ErrStoreCorrupt(self._dir, path, detail)

    def _recover(self) -> None:
        try:
            names = os.listdir(self._mdir)
        except OSError as e:
            raise self._corrupt(self._mdir, f"unreadable: {e}") from e
        indexes = []
        for name in names:
            m = _BLK_RE.match(name)
            if m:
                indexes.append(int(m.group(1)))
            elif name.endswith(".tmp"):
                # A rewrite that did not reach its rename: the block itself is intact.
                try:
                    os.unlink(os.path.join(self._mdir, name))
                except OSError:
                    pass
        indexes.sort()
        if not self._load_snapshot(indexes):
            self._replaying = True
            self._quiet = True
            try:
                for n, index in enumerate(indexes):
                    self._replay_block(index, n == len(indexes) - 1)
            finally:
                self._replaying = False
                self._quiet = False
        if self._blocks:
            lmb = self._blocks[-1]
            self._lmb = lmb
            try:
                self._wfd = os.open(lmb.path, os.O_RDWR)
            except OSError as e:
                raise self._corrupt(lmb.path, f"cannot open for writing: {e}") from e
            os.lseek(self._wfd, 0, os.SEEK_END)
            self._flushed = lmb.size
            # Blocks left with nothing live (a crash before their deletion) go now.
            self._op_touched.update(b.index for b in self._blocks)
            try:
                self._maintain()
            finally:
                self._op_touched.clear()
        if self._cfg.allow_msg_ttl:
            self._rebuild_ttl_heap()

    def _load_snapshot(self, indexes: list[int]) -> bool:
        """Take the index from index.db if it matches the blocks exactly (snapshot.py)."""
        path = os.path.join(self._mdir, snapshot.INDEX_FILE)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return False
        try:
            os.unlink(path)
        except OSError:
            return False
        snap = snapshot.decode(data)
        if snap is None or [b.index for b in snap.blocks] != indexes:
            return False
        for b in snap.blocks:
            try:
                if snapshot.file_crc(os.path.join(self._mdir, f"{b.index}.blk")) != (
                    b.size,
                    b.crc,
                ):
                    return False
            except OSError:
                return False
        self._first, self._last, self._last_ts = snap.first, snap.last, snap.last_ts
        self._msgs, self._bytes, self._base = snap.msgs, snap.nbytes, snap.base
        self._seqa = snap.seqa
        self._kept_dead = len(snap.sid) - snap.msgs
        self._sid, self._ts, self._loc, self._hl, self._ml = (
            snap.sid,
            snap.ts,
            snap.loc,
            snap.hl,
            snap.ml,
        )
        self._names = snap.names
        self._sids = {n: i for i, n in enumerate(snap.names) if n is not None}
        self._free = [i for i, n in enumerate(snap.names) if n is None and i > 0]
        self._ss_n, self._ss_f, self._ss_l = snap.ss_n, snap.ss_f, snap.ss_l
        self._stale_f, self._stale_l = snap.stale_f, snap.stale_l
        self._ttl = snap.ttl
        for b in snap.blocks:
            blk = _Block(b.index, os.path.join(self._mdir, f"{b.index}.blk"))
            blk.size, blk.first, blk.last = b.size, b.first, b.last
            blk.live, blk.live_bytes, blk.tombs = b.live, b.live_bytes, b.tombs
            self._blocks.append(blk)
            self._bmap[b.index] = blk
        self.recovered_from_snapshot = True
        return True

    def _write_snapshot(self) -> None:
        blocks = []
        for blk in self._blocks:
            size, crc = snapshot.file_crc(blk.path)
            blocks.append(
                snapshot.BlockInfo(
                    blk.index, size, blk.first, blk.last, blk.live, blk.live_bytes, crc, blk.tombs
                )
            )
        snap = snapshot.IndexSnapshot(
            self._first,
            self._last,
            self._last_ts,
            self._msgs,
            self._bytes,
            self._base,
            self._seqa,
            self._sid,
            self._ts,
            self._loc,
            self._hl,
            self._ml,
            self._names,
            self._ss_n,
            self._ss_f,
            self._ss_l,
            self._stale_f,
            self._stale_l,
            self._ttl,
            blocks,
        )
        snapshot.write(os.path.join(self._mdir, snapshot.INDEX_FILE), snap)

    def _replay_block(self, index: int, is_last: bool) -> None:
        path = os.path.join(self._mdir, f"{index}.blk")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise self._corrupt(path, f"unreadable: {e}") from e
        blk = _Block(index, path)
        self._blocks.append(blk)
        self._bmap[index] = blk
        n = len(data)
        off = 0
        hdr_unpack = _HDR.unpack_from
        msgx_unpack = _MSGX.unpack_from
        u32_unpack = _U32.unpack_from
        crc32 = zlib.crc32
        top = index << 32
        # Messages are added a run at a time: floors only grow, so the run's highest floor
        # applies to all of it, and messages below it need not be indexed at all.
        run: list[tuple[int, int, bytes, int, int, int, int, int]] = []
        run_floor = 0
        last_seen = self._last
        with memoryview(data) as mv:
            while off < n:
                bad = ""
                if n - off < MIN_RECORD:
                    bad = "short record header"
                else:
                    rl, kind, flags, slen, seq, ts = hdr_unpack(data, off)
                    if rl < MIN_RECORD or rl > n - off:
                        bad = f"bad record length {rl}"
                    elif crc32(mv[off : off + rl - 4]) != u32_unpack(data, off + rl - 4)[0]:
                        bad = "checksum mismatch"
                if bad:
                    if not is_last:
                        raise self._corrupt(path, f"{bad} at offset {off}")
                    self._cut_tail(path, off, n, bad)
                    break
                if kind == KIND_MSG:
                    hl, floor = msgx_unpack(data, off + HDR_SIZE)
                    p = off + MSG_HDR_SIZE
                    ttl = 0
                    if flags & FLAG_TTL:
                        ttl = _I64.unpack_from(data, p)[0]
                        p += 8
                    ml = rl - (p - off) - slen - hl - 4
                    if ml < 0:
                        raise self._corrupt(path, f"bad message lengths at offset {off}")
                    if seq <= last_seen:
                        raise self._corrupt(
                            path, f"sequence {seq} out of order (last {last_seen}) at offset {off}"
                        )
                    last_seen = seq
                    run.append((seq, ts, data[p : p + slen], top | off, hl, ml, ttl, rl))
                    if floor > run_floor:
                        run_floor = floor
                    off += rl
                    continue
                if run:
                    self._replay_run(run, run_floor, blk)
                    run = []
                    run_floor = 0
                if kind == KIND_DEL:
                    blk.tombs.append(seq)
                    self._remove(seq)
                elif kind == KIND_SEQS:
                    last = _U64.unpack_from(data, off + HDR_SIZE)[0]
                    self._replay_seqs(seq, last, ts)
                    last_seen = self._last
                else:
                    if not is_last:
                        raise self._corrupt(path, f"unknown record kind {kind} at offset {off}")
                    self._cut_tail(path, off, n, f"unknown record kind {kind}")
                    break
                off += rl
        if run:
            self._replay_run(run, run_floor, blk)
        blk.size = off

    def _replay_run(
        self,
        run: list[tuple[int, int, bytes, int, int, int, int, int]],
        floor: int,
        blk: _Block,
    ) -> None:
        if floor > self._first:
            self._replay_floor(floor)
        sids = self._sids
        add = self._index_add
        live = 0
        live_bytes = 0
        for seq, ts, subj, loc, hl, ml, ttl, rl in run:
            if seq < floor:
                continue
            sid = sids.get(subj)
            if sid is None:
                sid = self._intern(subj)
            add(seq, ts, sid, loc, hl, ml, ttl)
            live += 1
            live_bytes += rl
        seq, ts = run[-1][0], run[-1][1]
        self._last = seq
        self._last_ts = ts
        if self._msgs == 0:
            self._first = max(floor, self._first, seq + 1)
        if blk.first == 0:
            blk.first = run[0][0]
        blk.last = seq
        blk.live += live
        blk.live_bytes += live_bytes

    def _cut_tail(self, path: str, off: int, n: int, why: str) -> None:
        try:
            with open(path, "r+b") as f:
                f.truncate(off)
        except OSError as e:
            raise self._corrupt(path, f"cannot cut torn tail: {e}") from e
        self.recovery_notes.append(
            f"{path}: dropped {n - off} bytes at offset {off} ({why}): an unfinished write"
        )

    def _replay_floor(self, floor: int) -> None:
        while self._msgs and self._first < floor:
            self._remove(self._first)
        if self._msgs == 0 and floor > self._first:
            self._first = floor

    def _replay_seqs(self, first: int, last: int, last_ts: int) -> None:
        if last < self._last:
            while self._msgs:
                s = self._prev_seq(None, self._last)
                if s <= last:
                    break
                self._remove(s)
            keep = self._pos_end(last)
            if keep < len(self._sid):
                self._keep_positions(keep)
        self._replay_floor(first)
        self._last = last
        self._last_ts = last_ts
        if self._msgs == 0:
            self._first = first
            self._clear_arrays(first)

    # ------------------------------------------------------------------ blocks and I/O

    def _check_writable(self) -> None:
        if self._closed:
            raise ErrStoreClosed()
        if self._werr is not None:
            raise self._werr

    def _new_block(self) -> _Block:
        """Start the next block file (writing out what is pending for the current one)."""
        self._flush()
        index = self._blocks[-1].index + 1 if self._blocks else 1
        path = os.path.join(self._mdir, f"{index}.blk")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as e:
            raise self._write_failed(e) from e
        if self._wfd >= 0:
            os.close(self._wfd)
        self._wfd = fd
        self._flushed = 0
        blk = _Block(index, path)
        self._blocks.append(blk)
        self._bmap[index] = blk
        self._lmb = blk
        return blk

    def _room(self, n: int) -> _Block:
        """The block to append ``n`` bytes to."""
        lmb = self._lmb
        if lmb is None or (lmb.size and lmb.size + n > self._block_size):
            lmb = self._new_block()
        return lmb

    def _append(self, rec: bytes) -> tuple[_Block, int]:
        lmb = self._room(len(rec))
        off = lmb.size
        self._pending += rec
        lmb.size += len(rec)
        return lmb, off

    def _write_failed(self, e: OSError) -> ErrStoreWrite:
        err = ErrStoreWrite(f"write to {self._dir!r} failed: {e}")
        self._werr = err
        return err

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        if self._werr is not None:
            raise self._werr
        fd = self._wfd
        try:
            done = os.write(fd, pending)
            if done < len(pending):
                with memoryview(pending) as mv:
                    while done < len(mv):
                        done += os.write(fd, mv[done:])
        except OSError as e:
            # Cut back to the last whole write so the file ends on a record boundary.
            try:
                os.ftruncate(fd, self._flushed)
                os.lseek(fd, self._flushed, os.SEEK_SET)
            except OSError:
                pass
            raise self._write_failed(e) from e
        self._flushed += len(pending)
        pending.clear()
        self._unsynced = True
        if self._fcfg.sync_always:
            self._fsync()

    def _fsync(self) -> None:
        if self._wfd >= 0 and self._unsynced:
            try:
                os.fsync(self._wfd)
            except OSError as e:
                raise self._write_failed(e) from e
            self._unsynced = False

    def _read_fd(self, index: int) -> int:
        if self._lmb is not None and index == self._lmb.index:
            return self._wfd
        fd = self._fds.get(index)
        if fd is None:
            if len(self._fds) >= _FD_CACHE:
                old = next(iter(self._fds))
                os.close(self._fds.pop(old))
            fd = os.open(self._bmap[index].path, os.O_RDONLY)
            self._fds[index] = fd
        return fd

    def _drop_fd(self, index: int) -> None:
        self._rcache = None
        fd = self._fds.pop(index, None)
        if fd is not None:
            os.close(fd)

    def _close_fds(self) -> None:
        self._rcache = None
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._wfd >= 0:
            os.close(self._wfd)
            self._wfd = -1

    def _read_record(self, blk: int, off: int, rl: int) -> bytes:
        lmb = self._lmb
        if lmb is not None and blk == lmb.index and off >= self._flushed:
            p = off - self._flushed
            return bytes(self._pending[p : p + rl])
        # Read-ahead for a consumer walking the stream: a read that starts where the last
        # one ended takes the next _READ_AHEAD bytes, and the records after it come from
        # them (blocks only change by being rewritten or removed, which drops the window).
        rc = self._rcache
        if rc is not None and rc[0] == blk:
            start = off - rc[1]
            if 0 <= start and start + rl <= len(rc[2]):
                self._rnext = (blk, off + rl)
                return rc[2][start : start + rl]
        ahead = self._rnext == (blk, off)
        try:
            rec = os.pread(self._read_fd(blk), _READ_AHEAD if ahead and rl < _READ_AHEAD else rl, off)
        except OSError as e:
            raise self._corrupt(self._bmap[blk].path, f"read failed: {e}") from e
        self._rnext = (blk, off + rl)
        if len(rec) > rl:
            self._rcache = (blk, off, rec)
            return rec[:rl]
        if len(rec) != rl:
            raise self._corrupt(self._bmap[blk].path, f"short read at offset {off}")
        return rec

    # ------------------------------------------------------------------ payload hooks

    def _p_write(
        self, seq: int, ts: int, subj: bytes, sid: int, hdr: bytes, msg: bytes, ttl: int
    ) -> int:
        slen = len(subj)
        hl = len(hdr)
        body = MSG_HDR_SIZE + (8 if ttl else 0)
        rl = body + slen + hl + len(msg) + 4
        lmb = self._room(rl)
        off = lmb.size
        pending = self._pending
        self._op_msg = len(pending)
        # The floor (bytes 28..36) and the checksum are filled in by _end_op().
        pending += _MSG_HDR.pack(rl, KIND_MSG, FLAG_TTL if ttl else 0, slen, seq, ts, hl, 0)
        if ttl:
            pending += _I64.pack(ttl)
        pending += subj
        if hl:
            pending += hdr
        pending += msg
        pending += b"\0\0\0\0"
        lmb.size += rl
        if lmb.first == 0:
            lmb.first = seq
        lmb.last = seq
        lmb.live += 1
        lmb.live_bytes += rl
        return lmb.index << 32 | off

    def store_fast(self, subject: bytes, msg: bytes) -> tuple[int, int] | None:
        """store_msg and its write, in one go, for a message without headers or TTL when no
        limit applies (engine._fast_seq): the same record and index as the general path."""
        sid = self._fast_seq(subject)
        if not sid or self._werr is not None:
            return None
        slen = len(subject)
        ml = len(msg)
        rl = MSG_HDR_SIZE + slen + ml + 4
        lmb = self._lmb
        if lmb is None or lmb.size + rl > self._block_size or not lmb.size:
            return None
        ts = time_ns()
        seq = self._last + 1
        first = self._first
        pending = self._pending
        # The floor is the first sequence, which storing this message does not move.
        rec = _MSG_HDR.pack(rl, KIND_MSG, 0, slen, seq, ts, 0, first) + subject + msg
        pending += rec
        pending += _U32.pack(zlib.crc32(rec))
        off = lmb.size
        lmb.size = off + rl
        if lmb.first == 0:
            lmb.first = seq
        lmb.last = seq
        lmb.live += 1
        lmb.live_bytes += rl
        size = 30 + slen + ml  # _msg_size without headers
        self._index_add_fast(seq, ts, sid, lmb.index << 32 | off, ml, size)
        self._op_first0 = first
        if self._fcfg.write_through or len(pending) >= self._block_size:
            self._flush()
        scb = self._scb
        if scb is not None:
            scb(1, size, seq, subject)
        return seq, ts

    def _p_read(self, i: int) -> tuple[bytes, bytes]:
        loc = self._loc[i]
        blk = loc >> 32
        off = loc & _M32
        sa = self._seqa
        seq = self._base + i if sa is None else sa[i]
        name = self._names[self._sid[i]]
        slen = len(name) if name else 0
        hl = self._hl[i]
        body = MSG_HDR_SIZE + 8 if seq in self._ttl else MSG_HDR_SIZE
        rl = body + slen + hl + self._ml[i] + 4
        # A consumer walking the stream reads from the read-ahead window (_read_record's
        # first case, inline: this runs once per message delivered).
        rc = self._rcache
        if rc is not None and rc[0] == blk and 0 <= off - rc[1] and off - rc[1] + rl <= len(rc[2]):
            start = off - rc[1]
            self._rnext = (blk, off + rl)
            rec = rc[2][start : start + rl]
        else:
            rec = self._read_record(blk, off, rl)
        if zlib.crc32(rec[:-4]) != _U32.unpack_from(rec, rl - 4)[0] or _SEQ.unpack_from(rec, 8)[0] != seq:
            raise self._corrupt(self._bmap[blk].path, f"bad record for {seq} at offset {off}")
        p = body + slen
        return (rec[p : p + hl] if hl else b""), rec[p + hl : rl - 4]

    def _p_removed(self, seq: int, i: int, slen: int) -> None:
        loc = self._loc[i]
        blk = self._bmap.get(loc >> 32)
        if blk is not None:
            blk.live -= 1
            blk.live_bytes -= (
                MSG_HDR_SIZE + (8 if seq in self._ttl else 0) + slen + self._hl[i] + self._ml[i] + 4
            )
            self._op_touched.add(blk.index)
        if not self._replaying:
            self._op_removed.append(seq)

    def _p_erase(self, seq: int, i: int) -> None:
        # The block is rewritten without the record at the end of the operation.
        self._op_erased.add(self._loc[i] >> 32)

    def _p_reset(self) -> None:
        self._op_reset = True

    def _p_truncated(self, seq: int) -> None:
        self._op_truncated = seq

    def _p_marker(self) -> None:
        self._op_marker = True

    # ------------------------------------------------------------------ end of an operation

    def _end_op(self) -> None:
        if self._closed or self._replaying:
            return
        if (
            not self._op_removed
            and not self._op_marker
            and not self._op_touched
            and not self._op_erased
            and not self._op_reset
            and self._op_truncated < 0
            and self._op_msg >= 0
        ):
            # The common case, a store and nothing else: patch the floor, write.
            p = self._op_msg
            self._op_msg = -1
            first = self._first
            self._op_first0 = first
            pending = self._pending
            rl = _U32.unpack_from(pending, p)[0]
            _U64.pack_into(pending, p + HDR_SIZE + 4, first)
            with memoryview(pending) as mv:
                crc = zlib.crc32(mv[p : p + rl - 4])
            _U32.pack_into(pending, p + rl - 4, crc)
            if self._fcfg.write_through or len(pending) >= self._block_size:
                self._flush()
            return
        try:
            if self._op_reset or self._op_truncated >= 0:
                self._end_rebase()
            else:
                self._end_normal()
        finally:
            self._op_msg = -1
            self._op_removed.clear()
            self._op_touched.clear()
            self._op_erased.clear()
            self._op_marker = False
            self._op_reset = False
            self._op_truncated = -1
            self._op_first0 = self._first

    def _end_normal(self) -> None:
        first = self._first
        had_msg = self._op_msg >= 0
        if had_msg:
            p = self._op_msg
            pending = self._pending
            rl = _U32.unpack_from(pending, p)[0]
            _U64.pack_into(pending, p + HDR_SIZE + 4, first)
            with memoryview(pending) as mv:
                crc = zlib.crc32(mv[p : p + rl - 4])
            _U32.pack_into(pending, p + rl - 4, crc)
        for seq in self._op_removed:
            # Removals below the first sequence are covered by the floor.
            if seq >= first:
                blk, _ = self._append(_del_record(seq))
                blk.tombs.append(seq)
        if self._op_marker or (first != self._op_first0 and not had_msg):
            self._append(_seqs_record(first, self._last, self._last_ts))
        if self._fcfg.write_through or len(self._pending) >= self._block_size:
            self._flush()
        if self._op_touched or self._op_erased:
            self._maintain()

    def _end_rebase(self) -> None:
        """Purge, reset or truncate: a new block starts with the new sequence state, then
        the old blocks go (all of them for a purge, those past the cut for a truncate)."""
        old = list(self._blocks)
        self._new_block()
        self._append(_seqs_record(self._first, self._last, self._last_ts))
        cut = self._op_truncated
        if cut < 0:
            self._flush()
            for blk in old:
                self._unlink(blk)
            return
        dead: list[_Block] = []
        rewrite: list[_Block] = []
        for blk in old:
            blk.tombs = [t for t in blk.tombs if t <= cut]
            if blk.live == 0:
                dead.append(blk)
            elif blk.last > cut:
                rewrite.append(blk)
        for blk in dead:
            for t in blk.tombs:
                if self._tomb_needed(t, blk.index):
                    b, _ = self._append(_del_record(t))
                    b.tombs.append(t)
        self._flush()
        for blk in dead:
            self._remove_block(blk)
        for blk in rewrite:
            self._rewrite(blk)

    def _tomb_needed(self, t: int, holder: int) -> bool:
        if t < self._first or t > self._last:
            return False
        i = self._pos(t)
        if i < 0 or self._sid[i]:
            return False
        loc = self._loc[i]
        if loc == NOLOC:
            return False
        b = loc >> 32
        return b != holder and b in self._bmap

    def _head_fifo(self, blk: _Block) -> bool:
        """Is this the stream's first block with only a dead prefix (it will die whole)?"""
        start = max(blk.first, self._first)
        return blk.live == blk.last - start + 1

    def _maintain(self) -> None:
        """Delete blocks with nothing live, rewrite mostly-dead ones (and erased ones)."""
        lmb = self._lmb
        dead: list[_Block] = []
        rewrite: list[_Block] = []
        for index in sorted(self._op_touched | self._op_erased):
            blk = self._bmap.get(index)
            if blk is None:
                continue
            if blk.live == 0 and blk is not lmb:
                dead.append(blk)
            elif index in self._op_erased:
                rewrite.append(blk)
            elif blk is not lmb:
                waste = blk.size - blk.live_bytes
                if (
                    waste * 2 > blk.size
                    and waste >= min(self._block_size // 4, 1 << 20)
                    and not self._head_fifo(blk)
                ):
                    rewrite.append(blk)
        if not dead and not rewrite:
            return
        # First make the removals these blocks hold for others, and the sequence state,
        # durable at the end of the log.
        for blk in dead:
            for t in blk.tombs:
                if self._tomb_needed(t, blk.index):
                    b, _ = self._append(_del_record(t))
                    b.tombs.append(t)
        self._append(_seqs_record(self._first, self._last, self._last_ts))
        self._flush()
        for blk in dead:
            self._remove_block(blk)
        for blk in rewrite:
            self._rewrite(blk)

    def _forget_locs(self, blk: _Block) -> None:
        """The block's dead records are gone from disk: their tombs are no longer needed."""
        lo = self._pos_ge(blk.first)
        hi = self._pos_end(blk.last)
        loca = self._loc
        sida = self._sid
        index = blk.index
        for i in range(lo, hi):
            if not sida[i] and loca[i] >> 32 == index and loca[i] != NOLOC:
                loca[i] = NOLOC

    def _remove_block(self, blk: _Block) -> None:
        self._forget_locs(blk)
        self._unlink(blk)

    def _unlink(self, blk: _Block) -> None:
        self._drop_fd(blk.index)
        self._blocks.remove(blk)
        del self._bmap[blk.index]
        try:
            os.unlink(blk.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise self._write_failed(e) from e

    def _rewrite(self, blk: _Block) -> None:
        """Rewrite a block with its live messages and still-needed DELs only."""
        is_lmb = blk is self._lmb
        if is_lmb:
            self._flush()
        fd = self._read_fd(blk.index)
        try:
            data = os.pread(fd, blk.size, 0)
        except OSError as e:
            raise self._corrupt(blk.path, f"read failed: {e}") from e
        sida = self._sid
        loca = self._loc
        top = blk.index << 32
        new = bytearray()
        live_bytes = 0
        first = last = 0
        lo = self._pos_ge(max(blk.first, self._first))
        hi = self._pos_end(blk.last)
        for i in range(lo, hi):
            loc = loca[i]
            if loc >> 32 != blk.index or loc == NOLOC:
                continue
            if not sida[i]:
                loca[i] = NOLOC
                continue
            off = loc & _M32
            rl = _U32.unpack_from(data, off)[0]
            loca[i] = top | len(new)
            new += data[off : off + rl]
            live_bytes += rl
            if not first:
                first = self._seq_at(i)
            last = self._seq_at(i)
        tombs = [t for t in blk.tombs if self._tomb_needed(t, blk.index)]
        for t in tombs:
            new += _del_record(t)
        if is_lmb:
            new += _seqs_record(self._first, self._last, self._last_ts)
        tmp = blk.path + ".tmp"
        try:
            wfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with memoryview(new) as mv:
                    done = 0
                    while done < len(mv):
                        done += os.write(wfd, mv[done:])
                if self._fcfg.sync_always:
                    os.fsync(wfd)
            finally:
                os.close(wfd)
            self._drop_fd(blk.index)
            if is_lmb:
                os.close(self._wfd)
                self._wfd = -1
            os.replace(tmp, blk.path)
            if is_lmb:
                self._wfd = os.open(blk.path, os.O_RDWR)
                os.lseek(self._wfd, 0, os.SEEK_END)
                self._flushed = len(new)
        except OSError as e:
            raise self._write_failed(e) from e
        blk.size = len(new)
        blk.live_bytes = live_bytes
        blk.tombs = tombs
        if first:
            blk.first, blk.last = first, last

    # ------------------------------------------------------------------ public extras

    def flush(self) -> None:
        """Write buffered records (only buffered with ``write_through=False``)."""
        if self._closed:
            return
        self._flush()

    def sync(self) -> None:
        """Write and fsync what was written so far (call every ``sync_interval``)."""
        if self._closed:
            return
        self._flush()
        self._fsync()

    @property
    def directory(self) -> str:
        return self._dir

    def consumer_names(self) -> list[str]:
        """Consumers with a state directory (to restore them at start)."""
        try:
            return sorted(os.listdir(os.path.join(self._dir, CONSUMERS_DIR)))
        except OSError:
            return []

    def block_count(self) -> int:
        return len(self._blocks)

    def disk_usage(self) -> int:
        return sum(b.size for b in self._blocks)

    # ------------------------------------------------------------------ lifecycle

    def consumer_store(
        self, name: str, cfg: ConsumerStoreConfig, created: int = 0
    ) -> ConsumerStore:
        if self._closed:
            raise ErrStoreClosed()
        if not name or "/" in name or name in (".", ".."):
            raise ValueError("bad consumer config")
        directory = os.path.join(self._dir, CONSUMERS_DIR, name)
        o = ConsumerFileStore(self, cfg, directory, self._dir, self._fcfg.sync_always)
        self.add_consumer(o)
        return o

    def stop(self) -> None:
        """Write and fsync what is pending, save the index snapshot, close the files."""
        self._stop(True)

    def _stop(self, snap: bool) -> None:
        if self._closed:
            return
        try:
            if self._werr is None:
                self._flush()
                self._fsync()
                if snap and self._blocks:
                    try:
                        self._write_snapshot()
                    except OSError:
                        pass  # only a faster start is lost
        finally:
            self._close_fds()
            self._closed = True

    def delete(self) -> None:
        """Stop and remove the stream directory."""
        try:
            self._stop(False)
        except ErrStoreWrite:
            pass
        shutil.rmtree(self._dir, ignore_errors=True)
