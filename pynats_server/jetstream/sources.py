"""Mirrors and sources within one server: a stream that copies another stream of its account.

nats-server copies through an internal push consumer on the origin; on one server this reads
the origin's store directly, with the same outcome:

* a **mirror** keeps the origin's sequences and timestamps (gaps where the origin deleted or
  filtered out messages are skipped sequences), accepts no publishes of its own and resumes
  after its last sequence; `filter_subject` / `subject_transforms` select and rename;
* a **source** stores the origin's messages as new messages of its own (its limits, its
  sequence), each with a `Nats-Stream-Source: <stream> <seq> <filter> <dest> <subject>`
  header; after a restart it resumes after the last sequence it holds from that source
  (found from those headers, nats-server's startingSequenceForSources).

A source starts at `opt_start_seq`, at the first message at or after `opt_start_time`, or at
the origin's first message. An origin that does not exist (yet) is picked up when it is
created; one that is deleted leaves its sources waiting. Copying runs from the event loop in
slices (after every origin store, and in the background while catching up). External
(cross-account or cross-domain) origins are refused at create time (stream_api).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import headers as H
from .store import StoreError
from .stream_config import source_iname
from .transform import StreamTransform, TransformError, new_transform

if TYPE_CHECKING:
    from .ports import SourcingStreamPort

_SLICE = 512  # messages copied per event-loop turn while catching up


class _Source:
    """One origin being copied (nats-server's sourceInfo)."""

    def __init__(self, owner: Sourcing, cfg: dict[str, Any], mirror: bool) -> None:
        self.owner = owner
        self.cfg = cfg
        self.mirror = mirror
        self.name: str = cfg["name"]
        self.iname = source_iname(cfg)
        self.filter: str = cfg.get("filter_subject") or ""
        self.transforms: list[tuple[str, StreamTransform | None]] = []
        for t in cfg.get("subject_transforms") or []:
            try:
                tr = new_transform(t.get("src") or "", t.get("dest") or "")
            except TransformError:
                tr = None
            self.transforms.append((t.get("src") or "", tr))
        self.sseq = 0  # last origin sequence copied
        self.lag = 0  # origin messages left to copy, as of the last copy
        self.last_active = 0.0  # when the last message was copied (0: none yet)
        self.origin: SourcingStreamPort | None = None
        self.scheduled = False

    # -- which origin messages ----------------------------------------------------------

    def filters(self) -> list[bytes]:
        if self.transforms:
            return [(src or ">").encode(errors="surrogateescape") for src, _ in self.transforms]
        return [(self.filter or ">").encode(errors="surrogateescape")]

    def subject_for(self, subject: str) -> str:
        for _, tr in self.transforms:
            if tr is None:
                continue
            t = tr.match(subject)
            if t is not None:
                return t
        return subject

    def start_seq(self) -> int:
        """Where copying starts when nothing was copied yet."""
        cfg = self.cfg
        if cfg.get("opt_start_seq"):
            return int(cfg["opt_start_seq"])
        if cfg.get("opt_start_time") and self.origin is not None:
            return max(self.origin.store.get_seq_from_time(H.parse_time_ns(cfg["opt_start_time"])), 1)
        return 1

    # -- copying ------------------------------------------------------------------------

    def attach(self, origin: SourcingStreamPort) -> None:
        self.origin = origin
        origin.taps.append(self)
        # nats-server creates a consumer on the origin with an API request: it counts.
        jsa = self.owner.stream.jsa
        jsa.api_total += 1
        jsa.js.api_total += 1
        if self.sseq == 0:
            start = self.start_seq()
            self.sseq = max(start - 1, 0)
        self.notify()

    def detach(self) -> None:
        if self.origin is not None:
            try:
                self.origin.taps.remove(self)
            except ValueError:
                pass
            self.origin = None

    def notify(self) -> None:
        """The origin stored something: copy it soon (once per event-loop turn)."""
        if self.scheduled or self.owner.stopped:
            return
        self.scheduled = True
        self.owner.stream.server.loop.call_soon(self.pump)

    def pump(self) -> None:
        self.scheduled = False
        origin = self.origin
        stream = self.owner.stream
        if origin is None or origin.closed or stream.closed or self.owner.stopped:
            return
        store = origin.store
        filters = self.filters()
        multi = len(filters) > 1
        for _ in range(_SLICE):
            start = self.sseq + 1
            try:
                if multi:
                    sm, _ = store.load_next_msg_multi(filters, start)
                else:
                    f = filters[0]
                    sm, _ = store.load_next_msg(f, b"*" in f or b">" in f, start)
            except StoreError:
                if self.last_active:
                    self.lag = 0
                return  # nothing more now: the origin's next store notifies again
            self.last_active = time.time()
            subject = self.subject_for(sm.subject.decode(errors="surrogateescape"))
            if self.mirror:
                stream.store_mirrored(subject.encode(errors="surrogateescape"), sm.hdr, sm.msg, sm.seq, sm.ts)
            else:
                hdr = sm.hdr
                if hdr:
                    hdr = _strip(hdr)
                hdr = H.append(hdr, H.STREAM_SOURCE, self.header(sm.seq, sm.subject))
                stream.process(subject.encode(errors="surrogateescape"), None, hdr, sm.msg, sourced=True)
            self.sseq = sm.seq
        self.lag = self.pending()
        self.notify()  # more to catch up: continue on the next turn

    def header(self, seq: int, orig: bytes) -> bytes:
        """genSourceHeader: `<stream> <seq> <filter> <dest> <original subject>`."""
        parts = self.iname.split(" ")
        while len(parts) < 3:
            parts.append(">")
        return f"{parts[0]} {seq} {parts[1]} {parts[2]} ".encode() + orig

    def pending(self) -> int:
        origin = self.origin
        if origin is None:
            return 0
        try:
            if len(self.filters()) > 1:
                n, _ = origin.store.num_pending_multi(self.sseq + 1, self.filters(), False)
            else:
                n, _ = origin.store.num_pending(self.sseq + 1, self.filters()[0], False)
        except StoreError:
            return 0
        return n

    def info_json(self) -> dict[str, Any]:
        """StreamSourceInfo."""
        out: dict[str, Any] = {"name": self.name, "lag": self.lag}
        out["active"] = int((time.time() - self.last_active) * 1e9) if self.last_active else -1
        if self.filter and not self.mirror:  # a mirror's info does not show its filter
            out["filter_subject"] = self.filter
        if self.transforms:
            out["subject_transforms"] = [
                {"src": src, "dest": tr.dest if tr is not None else ""} for src, tr in self.transforms
            ]
        return out


def _strip(hdr: bytes) -> bytes:
    """A sourced message loses the source header of an earlier hop and its Nats-Expected-* and
    Nats-Batch-* headers (nothing to check them against here)."""
    lines = hdr.split(b"\r\n")
    kept = [ln for ln in lines[1:] if ln and not ln.startswith((b"Nats-Stream-Source:", b"Nats-Expected-", b"Nats-Batch-"))]
    if not kept:
        return b""
    return lines[0] + b"\r\n" + b"\r\n".join(kept) + b"\r\n\r\n"


class Sourcing:
    """The mirror or the sources of one stream."""

    def __init__(self, stream: SourcingStreamPort) -> None:
        self.stream = stream
        self.stopped = False
        self.mirror: _Source | None = None
        self.sources: dict[str, _Source] = {}

    def empty(self) -> bool:
        return self.mirror is None and not self.sources

    def start(self) -> None:
        cfg = self.stream.config
        if cfg["mirror"] is not None:
            self.mirror = _Source(self, cfg["mirror"], True)
            self.mirror.sseq = self.stream.lseq
        for src in cfg["sources"] or []:
            s = _Source(self, src, False)
            self.sources[s.iname] = s
        self._resume_sources(list(self.sources.values()))
        self.connect()

    def _resume_sources(self, todo: list[_Source]) -> None:
        """startingSequenceForSources: the last origin sequence of each source held."""
        store = self.stream.store
        want: dict[str, _Source | None] = {s.iname: s for s in todo}
        if not want or store.fast_state().msgs == 0:
            return
        by_name: dict[str, list[_Source]] = {}
        for s in todo:
            by_name.setdefault(s.name, []).append(s)
        last = store.fast_state().last_seq
        while want and last > 0:
            try:
                sm, seq = store.load_prev_msg(b">", True, last)
            except StoreError:
                break
            last = seq - 1
            ss = H.get(sm.hdr, H.STREAM_SOURCE) if sm.hdr else None
            if ss is None:
                continue
            fields = ss.decode(errors="surrogateescape").split(" ")
            if len(fields) >= 4:
                iname = " ".join((fields[0], fields[2], fields[3]))
                found = want.pop(iname, None)
                if found is not None and fields[1].isdigit():
                    found.sseq = int(fields[1])
            elif len(fields) == 2 and fields[1].isdigit():
                for s in by_name.get(fields[0], []):
                    if want.pop(s.iname, None) is not None:
                        s.sseq = int(fields[1])

    def connect(self) -> None:
        """Attach every source whose origin exists (and is not attached yet)."""
        streams = self.stream.jsa.streams
        for s in self._all():
            if s.origin is None:
                origin = streams.get(s.name)
                if origin is not None and origin is not self.stream and not origin.closed:
                    s.attach(origin)

    def _all(self) -> list[_Source]:
        return ([self.mirror] if self.mirror is not None else []) + list(self.sources.values())

    def origin_gone(self, origin: SourcingStreamPort) -> None:
        for s in self._all():
            if s.origin is origin:
                s.detach()

    def stop(self) -> None:
        self.stopped = True
        for s in self._all():
            s.detach()

    def update(self, old: dict[str, Any]) -> None:
        """A new configuration: a mirror removed (promoted to a normal stream), sources added
        or removed."""
        cfg = self.stream.config
        if cfg["mirror"] is None and self.mirror is not None:
            self.mirror.detach()
            self.mirror = None
        new = {source_iname(src): src for src in cfg["sources"] or []}
        for iname in [i for i in self.sources if i not in new]:
            self.sources.pop(iname).detach()
        added = []
        for iname, src in new.items():
            if iname not in self.sources:
                s = _Source(self, src, False)
                self.sources[iname] = s
                added.append(s)
        self._resume_sources(added)
        self.connect()

    def info_json(self) -> dict[str, Any]:
        if self.mirror is not None:
            return {"mirror": self.mirror.info_json()}
        if self.sources:
            return {"sources": [s.info_json() for s in self.sources.values()]}
        return {}
