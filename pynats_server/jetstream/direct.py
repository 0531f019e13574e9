"""Direct gets: `$JS.API.DIRECT.GET.<stream>` and `$JS.API.DIRECT.GET.<stream>.<subject>`.

A stream with `allow_direct` subscribes to both in its own account (queue group `_sys_`, so a
mirror with `mirror_direct` can share the origin's subjects) and answers with the stored
message itself: its own headers, then Nats-Stream, Nats-Subject, Nats-Sequence,
Nats-Time-Stamp (batches add Nats-Num-Pending and Nats-Last-Sequence, and end with a
`204 EOB` status). Problems are header-only statuses (404, 408, 413). As nats-server
(processDirectGetRequest, getDirectRequest, getDirectMulti).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import headers as H
from .store import ErrTooManyResults, StoreError
from .versioning import required_level_error

if TYPE_CHECKING:
    from .ports import DirectStreamPort

_EMPTY = b"NATS/1.0 408 Empty Request\r\n\r\n"
_MALFORMED = b"NATS/1.0 408 Malformed Request\r\n\r\n"
_BAD = b"NATS/1.0 408 Bad Request\r\n\r\n"
_NOT_FOUND = b"NATS/1.0 404 Message Not Found\r\n\r\n"
_NO_RESULTS = b"NATS/1.0 404 No Results\r\n\r\n"
_LEVEL = b"NATS/1.0 412 Required Api Level\r\n\r\n"
_MAX_MULTI = 1024
_DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # nats-server's MAX_PENDING_SIZE


def _send(s: DirectStreamPort, reply: bytes, hdr: bytes, payload: bytes = b"") -> None:
    s.publish(reply, None, hdr, payload)


def _parse(body: bytes) -> dict[str, Any] | None:
    """json.Unmarshal into JSApiMsgGetRequest, loosely (unknown fields ignored): None when
    it fails."""
    try:
        v = json.loads(body)
    except ValueError:
        return None
    if v is None:
        return {}
    if not isinstance(v, dict):
        return None
    types = {"seq": int, "batch": int, "max_bytes": int, "up_to_seq": int, "last_by_subj": str,
             "next_by_subj": str, "start_time": str, "up_to_time": str, "multi_last": list, "no_hdr": bool}  # fmt: skip
    out: dict[str, Any] = {}
    for k, v2 in v.items():
        t = types.get(k)
        if t is None or v2 is None:
            continue
        if t is int and (isinstance(v2, bool) or not isinstance(v2, int)):
            return None
        if t is not int and not isinstance(v2, t):
            return None
        if k in ("seq", "up_to_seq") and v2 < 0:
            return None
        out[k] = v2
    return out


def direct_get(s: DirectStreamPort, sub: Any, origin: Any, acc: Any, subject: bytes, reply: bytes | None,
               hdr: int, msg: Any) -> bool:
    if not reply:
        return True
    h = bytes(msg[:hdr]) if hdr > 0 else b""
    body = bytes(msg[max(hdr, 0):-2])
    if h and required_level_error(h):
        _send(s, reply, _LEVEL)
        return True
    if not body:
        _send(s, reply, _EMPTY)
        return True
    req = _parse(body)
    if req is None:
        _send(s, reply, _MALFORMED)
        return True
    seq = req.get("seq", 0)
    last_for = req.get("last_by_subj", "")
    next_for = req.get("next_by_subj", "")
    multi = req.get("multi_last") or []
    start = req.get("start_time")
    batch = req.get("batch", 0)
    if not seq and not last_for and not next_for and not multi and start is None:
        _send(s, reply, _EMPTY)
        return True
    if ((seq and last_for) or (seq and start is not None) or (start is not None and last_for)
            or (last_for and next_for) or (last_for and batch > 0) or (last_for and multi)
            or (next_for and multi) or (req.get("up_to_seq", 0) and req.get("up_to_time") is not None)):  # fmt: skip
        _send(s, reply, _BAD)
        return True
    get(s, req, reply)
    return True


def direct_get_last(s: DirectStreamPort, sub: Any, origin: Any, acc: Any, subject: bytes, reply: bytes | None,
                    hdr: int, msg: Any) -> bool:
    if not reply:
        return True
    h = bytes(msg[:hdr]) if hdr > 0 else b""
    body = bytes(msg[max(hdr, 0):-2])
    if h and required_level_error(h):
        _send(s, reply, _LEVEL)
        return True
    req: dict[str, Any] = {}
    if body:
        parsed = _parse(body)
        if parsed is None:
            _send(s, reply, _MALFORMED)
            return True
        req = parsed
    # The key: what follows the stream name (token 5 on).
    parts = subject.split(b".", 5)
    key = parts[5] if len(parts) > 5 else b""
    if not key:
        _send(s, reply, _BAD)
        return True
    if any(req.get(k) for k in ("last_by_subj", "next_by_subj", "multi_last", "seq", "batch", "start_time",
                                 "up_to_seq", "up_to_time")):  # fmt: skip
        _send(s, reply, _BAD)
        return True
    req["last_by_subj"] = key.decode(errors="surrogateescape")
    get(s, req, reply)
    return True


def _hdr(s: DirectStreamPort, sm: Any, extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    base = [(b"Nats-Stream", s.name.encode()), (b"Nats-Subject", sm.subject),
            (b"Nats-Sequence", str(sm.seq).encode()), (b"Nats-Time-Stamp", H.go_time_ns(sm.ts).encode())]  # fmt: skip
    if extra:
        base += extra
    lines = b"".join(k + b": " + v + b"\r\n" for k, v in base)
    if sm.hdr:
        return sm.hdr[:-2] + lines + b"\r\n"
    return b"NATS/1.0\r\n" + lines + b"\r\n"


def get(s: DirectStreamPort, req: dict[str, Any], reply: bytes) -> None:
    """getDirectRequest."""
    if req.get("multi_last"):
        _multi(s, req, reply)
        return
    store = s.store
    start = req.get("start_time")
    seq = store.get_seq_from_time(H.parse_time_ns(start)) if start is not None else req.get("seq", 0)
    next_for = (req.get("next_by_subj") or "").encode(errors="surrogateescape")
    last_for = (req.get("last_by_subj") or "").encode(errors="surrogateescape")
    wc = b"*" in next_for or b">" in next_for
    batch = req.get("batch", 0)
    is_batch = batch > 0
    np = lseq = valid = 0
    if not is_batch:
        batch = 1
    else:
        try:
            np, valid = store.num_pending(seq, next_for, False)
        except StoreError:
            return
    mb = req.get("max_bytes", 0) or _DEFAULT_MAX_BYTES
    sent_bytes = 0
    no_hdr = bool(req.get("no_hdr"))
    for i in range(batch):
        try:
            if seq > 0 and not next_for:
                if i == 0 and not is_batch:
                    sm = store.load_msg(seq)
                else:
                    sm, seq = store.load_next_msg(b">", True, seq)
                seq += 1
            elif next_for:
                sm, seq = store.load_next_msg(next_for, wc, seq)
                seq += 1
            else:
                sm = store.load_last_msg(last_for)
        except StoreError:
            if batch > 1 and i > 0:
                break
            _send(s, reply, _NOT_FOUND)
            return
        if no_hdr:
            h = b""
        elif is_batch:
            if np > 0:
                np -= 1
            h = _hdr(s, sm, [(b"Nats-Num-Pending", str(np).encode()), (b"Nats-Last-Sequence", str(lseq).encode())])
        else:
            h = _hdr(s, sm)
        lseq = sm.seq
        _send(s, reply, h, sm.msg)
        sent_bytes += len(sm.subject) + len(sm.hdr) + len(sm.msg)
        if sent_bytes >= mb:
            break
    if is_batch:
        if s.lseq > valid:
            try:
                np, _ = store.num_pending(seq, next_for, False)
            except StoreError:
                return
        _send(s, reply, b"NATS/1.0 204 EOB\r\nNats-Num-Pending: %d\r\nNats-Last-Sequence: %d\r\n\r\n" % (np, lseq))


def _multi(s: DirectStreamPort, req: dict[str, Any], reply: bytes) -> None:
    """getDirectMulti: the last message of each subject matching the filters, in stream order."""
    store = s.store
    mb = req.get("max_bytes", 0) or _DEFAULT_MAX_BYTES
    up_to = req.get("up_to_seq", 0)
    if req.get("up_to_time") is not None:
        up_to = store.get_seq_from_time(H.parse_time_ns(req["up_to_time"]))
        if up_to <= store.fast_state().first_seq:
            _send(s, reply, _NO_RESULTS)
            return
        up_to -= 1
    if up_to == 0:
        up_to = store.fast_state().last_seq
    filters = [f.encode(errors="surrogateescape") for f in req["multi_last"] if isinstance(f, str)]
    try:
        seqs = store.multi_last_seqs(filters, up_to, _MAX_MULTI)
    except ErrTooManyResults:
        _send(s, reply, b"NATS/1.0 413 Too Many Results\r\n\r\n")
        return
    except StoreError as e:
        _send(s, reply, b"NATS/1.0 500 %s\r\n\r\n" % str(e).encode())
        return
    if not seqs:
        _send(s, reply, _NO_RESULTS)
        return
    np = len(seqs)
    lseq = sent_bytes = sent = 0
    start = req.get("seq", 0)
    batch = req.get("batch", 0)
    for seq in seqs:
        if seq < start:
            if np > 0:
                np -= 1
            continue
        try:
            sm = store.load_msg(seq)
        except StoreError:
            _send(s, reply, _NOT_FOUND)
            return
        if np > 0:
            np -= 1
        h = _hdr(s, sm, [(b"Nats-Num-Pending", str(np).encode()), (b"Nats-Last-Sequence", str(lseq).encode())])
        lseq = sm.seq
        _send(s, reply, h, sm.msg)
        sent_bytes += len(sm.subject) + len(sm.hdr) + len(sm.msg)
        if sent_bytes >= mb:
            break
        sent += 1
        if batch > 0 and sent >= batch:
            break
    _send(s, reply, b"NATS/1.0 204 EOB\r\nNats-Num-Pending: %d\r\nNats-Last-Sequence: %d\r\n"
                    b"Nats-UpTo-Sequence: %d\r\n\r\n" % (np, lseq, up_to))  # fmt: skip
