"""The file store's index snapshot, ``msgs/index.db``: a fast start after a clean stop.

``FileStore.stop()`` writes the whole in-memory index (the per-sequence arrays, the subject
table, TTLs and the blocks' bookkeeping) with, for every block, its size and a CRC-32 of its
whole content. At open the snapshot is used only if every block file is there with the same
size and checksum (reading the blocks through CRC-32 costs far less than parsing them);
otherwise, or if the snapshot is damaged, the blocks are replayed. The snapshot is removed
as soon as it is read, so it never describes files that changed after it was written.

Layout: ``magic, then a CRC-32 of the body, then the body``; the body is a run of sections,
each a little-endian u64 length and its bytes. Arrays are stored in the machine's native
layout (the header records byte order and item sizes; a mismatch means "replay").
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from array import array
from dataclasses import dataclass

INDEX_FILE = "index.db"
_MAGIC = b"PNJSIDX1"
_U64 = struct.Struct("<Q")
_STATE = struct.Struct("<QQqQQQ")  # first, last, last_ts, msgs, bytes, base
_BLOCK = struct.Struct("<QQQQQQI")  # index, size, first, last, live, live_bytes, crc


def _layout() -> bytes:
    a = [array(t).itemsize for t in ("I", "q", "Q")]
    return sys.byteorder.encode() + bytes(a)


@dataclass
class BlockInfo:
    index: int
    size: int
    first: int
    last: int
    live: int
    live_bytes: int
    crc: int
    tombs: list[int]


@dataclass
class IndexSnapshot:
    first: int
    last: int
    last_ts: int
    msgs: int
    nbytes: int
    base: int
    seqa: array[int] | None
    sid: array[int]
    ts: array[int]
    loc: array[int]
    hl: array[int]
    ml: array[int]
    names: list[bytes | None]
    ss_n: list[int]
    ss_f: list[int]
    ss_l: list[int]
    stale_f: set[int]
    stale_l: set[int]
    ttl: dict[int, int]
    blocks: list[BlockInfo]


def file_crc(path: str) -> tuple[int, int]:
    """(size, CRC-32) of a whole file."""
    crc = 0
    size = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return size, crc
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)


def encode(snap: IndexSnapshot) -> bytes:
    sections: list[bytes] = [_layout()]
    sections.append(
        _STATE.pack(snap.first, snap.last, snap.last_ts, snap.msgs, snap.nbytes, snap.base)
    )
    sections.append(b"D" if snap.seqa is None else b"S" + snap.seqa.tobytes())
    for a in (snap.sid, snap.ts, snap.loc, snap.hl, snap.ml):
        sections.append(a.tobytes())
    lens = array("I", [0xFFFFFFFF if n is None else len(n) for n in snap.names])
    sections.append(lens.tobytes())
    sections.append(b"".join(n for n in snap.names if n))
    for lst in (snap.ss_n, snap.ss_f, snap.ss_l):
        sections.append(array("Q", lst).tobytes())
    sections.append(array("I", sorted(snap.stale_f)).tobytes())
    sections.append(array("I", sorted(snap.stale_l)).tobytes())
    sections.append(array("Q", list(snap.ttl)).tobytes())
    sections.append(array("q", list(snap.ttl.values())).tobytes())
    blocks = bytearray()
    tombs = array("Q")
    for b in snap.blocks:
        blocks += _BLOCK.pack(b.index, b.size, b.first, b.last, b.live, b.live_bytes, b.crc)
        blocks += _U64.pack(len(b.tombs))
        tombs.extend(b.tombs)
    sections.append(bytes(blocks))
    sections.append(tombs.tobytes())
    body = b"".join(_U64.pack(len(s)) + s for s in sections)
    return _MAGIC + zlib.crc32(body).to_bytes(4, "little") + body


def decode(data: bytes) -> IndexSnapshot | None:
    """The snapshot, or None when the bytes are not a whole snapshot for this machine."""
    if len(data) < 12 or data[:8] != _MAGIC:
        return None
    body = memoryview(data)[12:]
    if zlib.crc32(body) != int.from_bytes(data[8:12], "little"):
        return None
    sections: list[memoryview] = []
    off = 0
    while off < len(body):
        (n,) = _U64.unpack_from(body, off)
        off += 8
        sections.append(body[off : off + n])
        off += n
    if len(sections) != 19 or sections[0] != _layout():
        return None
    first, last, last_ts, msgs, nbytes, base = _STATE.unpack(sections[1])
    seqa: array[int] | None = None
    if bytes(sections[2][:1]) == b"S":
        seqa = array("Q")
        seqa.frombytes(sections[2][1:])
    del sections[2]
    arrays = []
    for code, sec in zip(("I", "q", "Q", "I", "I"), sections[2:7], strict=True):
        a = array(code)
        a.frombytes(sec)
        arrays.append(a)
    lens = array("I")
    lens.frombytes(sections[7])
    names: list[bytes | None] = []
    p = 0
    blob = sections[8]
    for n in lens:
        if n == 0xFFFFFFFF:
            names.append(None)
        else:
            names.append(bytes(blob[p : p + n]))
            p += n
    stats = []
    for sec in sections[9:12]:
        a = array("Q")
        a.frombytes(sec)
        stats.append(a.tolist())
    stale = []
    for sec in sections[12:14]:
        a = array("I")
        a.frombytes(sec)
        stale.append(set(a))
    tseq = array("Q")
    tseq.frombytes(sections[14])
    tval = array("q")
    tval.frombytes(sections[15])
    blocks: list[BlockInfo] = []
    tombs = array("Q")
    tombs.frombytes(sections[17])
    raw = sections[16]
    p = 0
    t = 0
    while p < len(raw):
        index, size, bfirst, blast, live, live_bytes, crc = _BLOCK.unpack_from(raw, p)
        p += _BLOCK.size
        (nt,) = _U64.unpack_from(raw, p)
        p += 8
        blocks.append(
            BlockInfo(index, size, bfirst, blast, live, live_bytes, crc, tombs[t : t + nt].tolist())
        )
        t += nt
    sid, ts, loc, hl, ml = arrays
    if not (len(sid) == len(ts) == len(loc) == len(hl) == len(ml)):
        return None
    if seqa is not None and len(seqa) != len(sid):
        return None
    if not (len(names) == len(stats[0]) == len(stats[1]) == len(stats[2])):
        return None
    return IndexSnapshot(
        first,
        last,
        last_ts,
        msgs,
        nbytes,
        base,
        seqa,
        sid,
        ts,
        loc,
        hl,
        ml,
        names,
        stats[0],
        stats[1],
        stats[2],
        stale[0],
        stale[1],
        dict(zip(tseq, tval, strict=True)),
        blocks,
    )


def write(path: str, snap: IndexSnapshot) -> None:
    data = encode(snap)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
