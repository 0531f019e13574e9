"""Helpers for the JetStream cases (no cases here).

A JetStream case is a *script*: ``async def script(js: Js)``. It runs on the target's own
JetStream server (``-js -sd <a fresh store dir>``), and, for every target other than the
reference (go214), also on a go214 server (once per run, shared by all other targets). What
the script ``record``s is compared with go214's recording of the same script:

* the key set and the value types of every recorded JSON answer (``schemas.json_signature``),
  with the keys 2.9 lacks (``go29_missing``) excused for the go29 profile;
* the values, after ``normalise`` (non-zero times, ack-subject timestamps, ``_nats.ver``...),
  on the keys both answers have; ``loose`` names paths whose values are not compared;
* (not for go29) the key order of every object and the exact JSON text (Go's escaping, the
  hand-written PubAck spacing); recorded frames byte for byte (sizes recomputed after the
  normalisation, 2.9's double space in internal-client control lines excused for go29).

The script itself also checks exact values it knows (error codes and texts, state counts):
those checks run on every target, go214 included, so a passing go214 run proves them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import itertools
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from ..conn import Conn, Mismatch
from ..context import CaseContext
from ..registry import pycase
from ..runner import REFERENCE
from ..schemas import flatten_signature, json_signature
from ..targets import ServerProcess
from ..util import diff_excerpt

JETSTREAM = "jetstream"  # the feature name of `requires` (runner option --skip-requires)

Script = Callable[["Js"], Awaitable[None]]


# ---------------------------------------------------------------------------- messages
@dataclasses.dataclass
class Msg:
    """A MSG or HMSG frame, parsed."""

    op: str
    subject: str
    sid: str
    reply: str
    header: bytes  # the raw header block (b"" for MSG)
    data: bytes
    frame: bytes

    @property
    def status(self) -> str:
        """The status code of a ``NATS/1.0 404 No Messages`` header line, or ""."""
        first = self.header.split(b"\r\n", 1)[0].decode("latin-1")
        parts = first.split(" ", 2)
        return parts[1] if len(parts) > 1 else ""

    @property
    def description(self) -> str:
        first = self.header.split(b"\r\n", 1)[0].decode("latin-1")
        parts = first.split(" ", 2)
        return parts[2] if len(parts) > 2 else ""

    @property
    def headers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for line in self.header.split(b"\r\n")[1:]:
            if not line:
                continue
            k, _, v = line.decode("latin-1").partition(":")
            out.setdefault(k, []).append(v.strip())
        return out

    def hdr(self, key: str) -> str | None:
        v = self.headers.get(key)
        return v[0] if v else None

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            raise Mismatch(
                f"the message on {self.subject} is not JSON", None, self.frame[:400]
            ) from None


def parse_msg(frame: bytes) -> Msg:
    head, _, rest = frame.partition(b"\r\n")
    parts = head.decode("latin-1").split(" ")
    op = parts[0]
    if op == "MSG" and len(parts) in (4, 5):
        reply = parts[3] if len(parts) == 5 else ""
        return Msg(op, parts[1], parts[2], reply, b"", rest[:-2], frame)
    if op == "HMSG" and len(parts) in (5, 6):
        reply = parts[3] if len(parts) == 6 else ""
        hlen = int(parts[-2])
        return Msg(op, parts[1], parts[2], reply, rest[:hlen], rest[hlen:-2], frame)
    raise Mismatch("expected a MSG/HMSG frame", b"MSG ...", frame)


def encode_headers(headers: dict[str, str] | list[tuple[str, str]] | None) -> bytes:
    items = headers.items() if isinstance(headers, dict) else (headers or [])
    return b"NATS/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in items) + b"\r\n"


def body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------- normalisation
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
_ZERO_TIME = "0001-01-01T00:00:00Z"
_ACK_TS_RE = re.compile(r"(\$JS\.ACK\.(?:[^.\s]+\.){5})\d{10,}(\.\d+)")
_FC_RE = re.compile(r"(\$JS\.FC\.[^.\s]+\.[^.\s]+\.)[0-9A-Za-z]{4}\b")
_VER_RE = re.compile(r'"_nats\.ver":"[^"]*"')
_TEXT_TIME_RE = re.compile(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"')
_HDR_TIME_RE = re.compile(r"(Nats-Time-Stamp: )[^\r]+")


def normalise_text(text: str, subst: dict[str, str] | None = None) -> str:
    """The same replacements as ``normalise``, on raw text (JSON bodies, frames, subjects)."""
    for a, b in (subst or {}).items():
        text = text.replace(a, b)
    text = _TEXT_TIME_RE.sub(lambda m: m.group(0) if m.group(1) == _ZERO_TIME else '"<time>"', text)
    text = _VER_RE.sub('"_nats.ver":"<version>"', text)
    text = _ACK_TS_RE.sub(r"\1<ts>\2", text)
    text = _FC_RE.sub(r"\1<rand>", text)
    return _HDR_TIME_RE.sub(r"\1<time>", text)


def normalise_frame(frame: bytes, subst: dict[str, str] | None = None) -> str:
    """A MSG/HMSG frame as text, normalised; the sizes in the control line are recomputed, so
    that a time stamp printed shorter (Go drops trailing zeros of nanoseconds) changes nothing."""
    head, _, rest = frame.partition(b"\r\n")
    parts = head.decode("latin-1").split(" ")
    if parts[0] == "HMSG" and len(parts) >= 5:
        hlen = int(parts[-2])
        hdr = normalise_text(rest[:hlen].decode("latin-1"), subst)
        data = normalise_text(rest[hlen:-2].decode("latin-1"), subst)
        parts[-2:] = [str(len(hdr)), str(len(hdr) + len(data))]
        ctl = normalise_text(" ".join(parts), subst)
        return f"{ctl}\r\n{hdr}{data}\r\n"
    return normalise_text(frame.decode("latin-1"), subst)


def normalise(value: Any, subst: dict[str, str] | None = None) -> Any:
    """Replace what differs per run: non-zero RFC 3339 times become "<time>", the timestamp
    token of ``$JS.ACK`` subjects "<ts>", ``_nats.ver`` "<version>"; strings in ``subst`` are
    replaced (ephemeral consumer names, the server's name)."""
    if isinstance(value, dict):
        return {
            k: "<version>" if k == "_nats.ver" and isinstance(v, str) else normalise(v, subst)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [normalise(v, subst) for v in value]
    if isinstance(value, str):
        if value != _ZERO_TIME and _TIME_RE.fullmatch(value):
            return "<time>"
        return normalise_text(value, subst)
    return value


def flatten_values(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b": leaf, "list[0].x": leaf}: every leaf with its path (lists keep their index)."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        if not value:
            out[prefix] = {}
        for k, v in value.items():
            out.update(flatten_values(v, f"{prefix}.{k}" if prefix else k))
    elif isinstance(value, list):
        if not value:
            out[prefix] = []
        for i, v in enumerate(value):
            out.update(flatten_values(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def key_orders(value: Any, prefix: str = "") -> dict[str, list[str]]:
    """The key order of every object in a JSON document, by path."""
    out: dict[str, list[str]] = {}
    if isinstance(value, dict):
        out[prefix] = list(value)
        for k, v in value.items():
            out.update(key_orders(v, f"{prefix}.{k}" if prefix else k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(key_orders(v, f"{prefix}[{i}]"))
    return out


def _strip_index(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


# Keys (flattened signature paths, "[]" for list items) that nats-server 2.14 sends and 2.9.10
# does not, in the answers of the JetStream API: fields added in 2.10-2.14. Matched with fnmatch.
GO29_MISSING = (
    "*config.metadata",
    "*config.metadata.*",
    "*config.allow_msg_ttl",
    "*config.subject_delete_marker_ttl",
    "*config.consumer_limits",
    "*config.compression",
    "*config.filter_subjects",
    "*config.pause_until",
    "*config.name",  # the legacy DURABLE.CREATE echo has no name in 2.9
    "ts",
    "*.ts",
    "cluster",
    "*.cluster",
    "cluster.leader",
    "*.cluster.leader",
    "api.level",
    "*.api.level",
    "*delivered.last_active",
    "*ack_floor.last_active",
    "paused",
    "pause_remaining",
)


# Values 2.9.10 gives differently, for every case: a new consumer's ack_floor.stream_seq is
# 0 in 2.9 and the first deliverable sequence - 1 in 2.14 (the ack cases check the values after
# acks on every target).
GO29_LOOSE = ("*ack_floor.stream_seq",)


@dataclasses.dataclass
class Entry:
    """One recorded observation."""

    label: str
    value: Any  # normalised JSON value, or normalised text
    raw: str | None = None  # the normalised JSON text as received (key order, escaping)
    new: bool = False  # a 2.10+ behaviour: not expected from go29 (which skips the step)


# ---------------------------------------------------------------------------- the client
Headers = dict[str, str] | list[tuple[str, str]] | None


class Js:
    """A raw client connection that speaks the JetStream API, and the script's recording."""

    def __init__(
        self, ctx: CaseContext, server: ServerProcess, conn: Conn, info: dict[str, Any]
    ) -> None:
        self.ctx = ctx
        self.server = server
        self.conn = conn
        self.info = info
        self.profile = server.target.profile
        self.name = server.target.name
        self.recording: list[Entry] = []
        # The server's name appears in cluster.leader and /jsz: it differs per server.
        self.subst: dict[str, str] = {str(info.get("server_name", "")): "<server>"}
        self._inbox = itertools.count(1)
        self._sid = itertools.count(2)  # sid 1 is the _INBOX.> subscription
        self.queues: dict[str, list[Msg]] = {}
        self._pongs = 0
        self._aliases = itertools.count(1)

    @property
    def go29(self) -> bool:
        """The target is nats-server 2.9 (it lacks the 2.10+ features)."""
        return self.profile == "go29"

    def alias(self, text: str, what: str = "name") -> str:
        """Normalise ``text`` (e.g. an ephemeral consumer's random name) from now on."""
        if text not in self.subst:
            self.subst[text] = f"<{what}{next(self._aliases)}>"
        return text

    # ------------------------------------------------------------------ reading
    async def _read(self, timeout: float) -> None:
        """Read one frame into the per-sid queues (PONGs are counted; -ERR fails the case)."""
        frame = await self.conn.read_frame(timeout)
        if frame == b"PONG\r\n":
            self._pongs += 1
            return
        if frame.startswith((b"-ERR", b"+OK")):
            raise Mismatch("the server sent a protocol error", None, frame, self.conn.name)
        if frame.startswith(b"INFO "):
            return
        m = parse_msg(frame)
        self.queues.setdefault(m.sid, []).append(m)

    async def next_msg(self, sid: str = "1", timeout: float | None = None) -> Msg:
        """The next message for subscription ``sid`` (others are queued for later)."""
        t = self.ctx.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        while True:
            q = self.queues.get(sid)
            if q:
                return q.pop(0)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Mismatch(f"[{self.name}] no message for sid {sid} within {t}s")
            try:
                await self._read(left)
            except Mismatch as exc:
                if "timed out" in exc.message:
                    raise Mismatch(f"[{self.name}] no message for sid {sid} within {t}s") from None
                raise

    async def next_any(self, sids: Iterable[str], timeout: float | None = None) -> Msg:
        """The next message for any of the subscriptions ``sids``."""
        sids = list(sids)
        t = self.ctx.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        while True:
            for sid in sids:
                if self.queues.get(sid):
                    return self.queues[sid].pop(0)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Mismatch(f"[{self.name}] no message for sids {sids} within {t}s")
            try:
                await self._read(left)
            except Mismatch as exc:
                if "timed out" not in exc.message:
                    raise

    async def flush(self) -> None:
        want = self._pongs + 1
        await self.conn.send(b"PING\r\n")
        deadline = time.monotonic() + self.ctx.timeout
        while self._pongs < want:
            await self._read(max(0.01, deadline - time.monotonic()))

    async def no_msg(self, sid: str = "1", quiet: float = 0.2) -> None:
        """Nothing arrives for ``sid`` within ``quiet`` seconds."""
        deadline = time.monotonic() + quiet
        while not self.queues.get(sid) and time.monotonic() < deadline:
            try:
                await self._read(max(0.01, deadline - time.monotonic()))
            except Mismatch as exc:
                if "timed out" not in exc.message:
                    raise
        if self.queues.get(sid):
            raise Mismatch(
                f"[{self.name}] unexpected message for sid {sid}",
                b"",
                self.queues[sid][0].frame[:300],
            )

    # ------------------------------------------------------------------ writing
    def inbox(self) -> str:
        return f"_INBOX.{next(self._inbox)}"

    async def sub(self, subject: str, queue: str = "") -> str:
        sid = str(next(self._sid))
        q = f" {queue}" if queue else ""
        await self.conn.send(f"SUB {subject}{q} {sid}\r\n".encode())
        await self.flush()
        return sid

    async def send(
        self, subject: str, body: Any = None, reply: str = "", headers: Headers = None
    ) -> None:
        data = body_bytes(body)
        r = f" {reply}" if reply else ""
        if headers is None:
            await self.conn.send(f"PUB {subject}{r} {len(data)}\r\n".encode() + data + b"\r\n")
        else:
            h = encode_headers(headers)
            await self.conn.send(
                f"HPUB {subject}{r} {len(h)} {len(h) + len(data)}\r\n".encode() + h + data + b"\r\n"
            )

    async def request(
        self, subject: str, body: Any = None, headers: Headers = None, timeout: float | None = None
    ) -> Msg:
        """Publish with a fresh reply inbox; return the first reply."""
        inbox = self.inbox()
        await self.send(subject, body, inbox, headers)
        m = await self.next_msg("1", timeout)
        if m.subject != inbox:
            raise Mismatch(
                f"[{self.name}] reply on {m.subject}, expected {inbox}", inbox, m.frame[:300]
            )
        return m

    async def api(
        self, suffix: str, body: Any = None, record: str | None = None, new: bool = False
    ) -> Any:
        """A ``$JS.API.<suffix>`` request; its JSON answer (recorded under ``record``)."""
        m = await self.request("$JS.API." + suffix, body)
        if m.header:
            raise Mismatch(f"[{self.name}] $JS.API.{suffix}: a header reply", None, m.frame[:300])
        if record:
            self.record_json(record, m, new)
        return m.json()

    async def pub(
        self,
        subject: str,
        body: Any = b"",
        headers: Headers = None,
        record: str | None = None,
        new: bool = False,
    ) -> Any:
        """Publish as a request; the JSON answer (PubAck or error), recorded under ``record``."""
        m = await self.request(subject, body, headers)
        if record:
            self.record_json(record, m, new)
        return m.json()

    async def pubs(self, items: Iterable[tuple[str, Any]], headers: Headers = None) -> None:
        """Publish several messages, each as a request; each PubAck must be a success."""
        for subject, body in items:
            ack = await self.pub(subject, body, headers)
            if not isinstance(ack, dict) or "error" in ack:
                raise Mismatch(f"[{self.name}] publish to {subject} failed", None, json.dumps(ack))

    async def pull(
        self, stream: str, consumer: str, body: Any, n: int, timeout: float | None = None
    ) -> list[Msg]:
        """A pull request (``$JS.API.CONSUMER.MSG.NEXT``) with its own inbox; the first n replies."""
        inbox = self.inbox()
        await self.send(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", body, inbox)
        out = []
        for _ in range(n):
            m = await self.next_msg("1", timeout)
            out.append(m)
        return out

    # ------------------------------------------------------------------ recording and checks
    def record(self, label: str, value: Any, new: bool = False) -> None:
        """Keep ``value`` (JSON, or bytes/str) to compare it with go214's recording.
        ``new``: a 2.10+ behaviour that the script does not exercise on go29."""
        if new and self.go29:
            return  # the reference's entry is dropped for go29 too
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            self.recording.append(Entry(label, normalise_text(value, self.subst), None, new))
        else:
            self.recording.append(Entry(label, normalise(value, self.subst), None, new))

    def record_json(self, label: str, m: Msg, new: bool = False) -> None:
        """A JSON reply: its value and its exact text (key order, Go's escaping) are compared."""
        if new and self.go29:
            return
        text = m.data.decode("utf-8", "replace")
        self.recording.append(
            Entry(label, normalise(m.json(), self.subst), normalise_text(text, self.subst), new)
        )

    def record_frame(self, label: str, m: Msg, new: bool = False) -> None:
        """A whole MSG/HMSG frame, byte for byte (after the normalisation of times and ids)."""
        if new and self.go29:
            return
        self.recording.append(Entry(label, normalise_frame(m.frame, self.subst), None, new))

    def check(self, cond: bool, what: str, expected: Any = None, got: Any = None) -> None:
        if not cond:
            self.ctx.fail(f"[{self.name}] {what}", expected, got)

    def eq(self, got: Any, want: Any, what: str) -> None:
        self.check(got == want, what, want, got)

    def error(
        self,
        obj: Any,
        code: int,
        err_code: int | None,
        description: str | None = None,
        what: str = "",
    ) -> None:
        """``obj`` carries ``{"error": {"code":..,"err_code":..,"description":..}}`` exactly."""
        err = obj.get("error") if isinstance(obj, dict) else None
        want: dict[str, Any] = {"code": code}
        if err_code is not None:
            want["err_code"] = err_code
        if description is not None:
            want["description"] = description
        self.check(
            isinstance(err, dict) and {k: err.get(k) for k in want} == want,
            f"{what or 'error'}: the error object",
            json.dumps(want),
            json.dumps(obj),
        )

    def ok(self, obj: Any, what: str = "") -> Any:
        self.check(
            isinstance(obj, dict) and "error" not in obj,
            f"{what or 'request'}: expected success",
            "no error",
            json.dumps(obj)[:400],
        )
        return obj

    def status(self, m: Msg, code: str, description: str, what: str = "") -> None:
        """A header-only status message: ``NATS/1.0 <code> <description>``, no payload."""
        self.check(
            m.status == code and m.description == description and m.data == b"",
            f"{what or 'status message'}",
            f"NATS/1.0 {code} {description}".rstrip(),
            m.frame[:300],
        )


# ---------------------------------------------------------------------------- comparison
def _matches(text: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(text, p if ":" in p else "*:" + p) for p in patterns)


def _go29_frame(text: str) -> str:
    """2.9's internal client writes messages without a reply with two spaces
    (``HMSG inbox 1  28 28``); 2.14 writes one. Compared after collapsing (checked explicitly
    by jetstream.pull.status_frames)."""
    head, sep, rest = text.partition("\r\n")
    return head.replace("  ", " ") + sep + rest


def compare_recordings(
    got: list[Entry],
    ref: list[Entry],
    profile: str,
    go29_missing: tuple[str, ...] = (),
    loose: tuple[str, ...] = (),
    go29_loose: tuple[str, ...] = (),
) -> list[str]:
    """Problems, comparing a target's recording with the reference's (empty when they agree).

    ``loose``/``go29_loose``: fnmatch patterns on "label:path" ("path" alone = any label)
    whose values are not compared.
    """
    go29 = profile == "go29"
    if go29:
        ref = [e for e in ref if not e.new]
    labels_got = [e.label for e in got]
    labels_ref = [e.label for e in ref]
    if labels_got != labels_ref:
        return [f"recorded {labels_got}, {REFERENCE} recorded {labels_ref}"]
    problems: list[str] = []
    missing_ok = tuple(f"*:{p}" for p in GO29_MISSING) + tuple(go29_missing) if go29 else ()
    value_loose = tuple(loose) + (GO29_LOOSE + tuple(go29_loose) if go29 else ())
    for g, r in zip(got, ref, strict=True):
        label = g.label
        if not isinstance(g.value, (dict, list)) and not isinstance(r.value, (dict, list)):
            gv, rv = g.value, r.value
            if go29 and isinstance(gv, str) and isinstance(rv, str):
                gv, rv = _go29_frame(gv), _go29_frame(rv)
            if gv != rv and not _matches(f"{label}:", value_loose):
                problems.append(f"{label}: {gv!r} ({REFERENCE}: {rv!r})")
            continue
        gs = flatten_signature(json_signature(g.value))
        rs = flatten_signature(json_signature(r.value))
        only_ref = {k for k in set(rs) - set(gs) if not _matches(f"{label}:{k}", missing_ok)}
        only_got = set(gs) - set(rs)
        types = sorted(
            f"{k}: {gs[k]} ({REFERENCE}: {rs[k]})" for k in set(gs) & set(rs) if gs[k] != rs[k]
        )
        if only_ref:
            problems.append(f"{label}: missing keys {sorted(only_ref)}")
        if only_got:
            problems.append(f"{label}: extra keys {sorted(only_got)}")
        if types:
            problems.append(f"{label}: types differ {types}")
        gv, rv = flatten_values(g.value), flatten_values(r.value)
        diffs, loose_hit = [], False
        for k in sorted(set(gv) & set(rv)):
            if gv[k] == rv[k]:
                continue
            if _matches(f"{label}:{_strip_index(k)}", value_loose):
                loose_hit = True
                continue
            diffs.append(f"{k}: {json.dumps(gv[k])} ({REFERENCE}: {json.dumps(rv[k])})")
        if diffs:
            problems.append(f"{label}: values differ: " + "; ".join(diffs[:12]))
        if go29:
            continue  # 2.9 has other keys and another key order: the key sets were compared
        go, ro = key_orders(g.value), key_orders(r.value)
        for p in sorted(set(go) & set(ro)):
            common = set(go[p]) & set(ro[p])
            a = [k for k in go[p] if k in common]
            b = [k for k in ro[p] if k in common]
            if a != b:
                problems.append(f"{label}: key order differs at {p or '.'}: {a} ({REFERENCE}: {b})")
                break
        if (
            not (diffs or only_ref or only_got or types or loose_hit)
            and not any(q.startswith(f"{label}: key order") for q in problems)
            and g.raw is not None
            and r.raw is not None
            and g.raw != r.raw
        ):
            e, gg, pos = diff_excerpt(r.raw.encode(), g.raw.encode())
            problems.append(
                f"{label}: the JSON text differs at byte {pos}: {gg} ({REFERENCE}: {e})"
            )
    return problems


# ---------------------------------------------------------------------------- running
async def start_js_server(
    ctx: CaseContext,
    target: str | None = None,
    *,
    config: str | None = None,
    http: bool = False,
    args: tuple[str, ...] = (),
) -> ServerProcess:
    """A private JetStream server with its own store directory."""
    return await ctx.start_server(target, args=args, config=config, http=http, jetstream=True)


async def js_client(ctx: CaseContext, server: ServerProcess, name: str = "js") -> Js:
    """A raw connection (headers on, no_responders on) subscribed to ``_INBOX.>`` as sid 1."""
    c = await ctx.client(server, name)
    info, _ = await c.expect_info()
    await c.send(
        b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,'
        b'"protocol":1}\r\nSUB _INBOX.> 1\r\nPING\r\n'
    )
    await c.expect_bytes(b"PONG\r\n")
    return Js(ctx, server, c, info)


@dataclasses.dataclass(frozen=True)
class CaseOptions:
    config: str | None = None
    http: bool = False
    go29_missing: tuple[str, ...] = ()
    loose: tuple[str, ...] = ()
    go29_loose: tuple[str, ...] = ()


async def _run_script(
    ctx: CaseContext, target: str | None, script: Script, opts: CaseOptions
) -> list[Entry]:
    server = await start_js_server(ctx, target, config=opts.config, http=opts.http)
    js = await js_client(ctx, server)
    try:
        await script(js)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        # The script read a field the answer does not have (or has with another type).
        last = js.recording[-1].label if js.recording else "(nothing recorded yet)"
        raise Mismatch(
            f"[{js.name}] an answer lacks what the case reads: {type(exc).__name__} {exc} "
            f"(after recording {last!r})"
        ) from None
    return js.recording


def _memo(ctx: CaseContext) -> dict[str, asyncio.Future[list[Entry]]]:
    return ctx.memo.setdefault("jetstream.reference", {})


async def _record_reference(
    ctx: CaseContext, target: str | None, script: Script, opts: CaseOptions
) -> list[Entry]:
    """Run the script and publish its recording as this run's reference for the case."""
    memo = _memo(ctx)
    fut: asyncio.Future[list[Entry]] = asyncio.get_running_loop().create_future()
    memo[ctx.case.name] = fut
    try:
        rec = await _run_script(ctx, target, script, opts)
    except BaseException as exc:
        fut.set_exception(exc)
        fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
        raise
    fut.set_result(rec)
    _dump(ctx, rec)
    return rec


def _dump(ctx: CaseContext, rec: list[Entry]) -> None:
    """With CONFORMANCE_JS_DUMP=DIR, write go214's recording of each case to DIR/<case>.json:
    what nats-server answered (normalised), for implementers to read."""
    where = os.environ.get("CONFORMANCE_JS_DUMP")
    if not where:
        return
    out = Path(where)
    out.mkdir(parents=True, exist_ok=True)
    doc = [{"label": e.label, "value": e.value, "new": e.new} for e in rec]
    (out / f"{ctx.case.name}.json").write_text(json.dumps(doc, indent=1) + "\n")


async def reference_recording(ctx: CaseContext, script: Script, opts: CaseOptions) -> list[Entry]:
    """go214's recording of this case: the one this run made already, or one made here."""
    fut = _memo(ctx).get(ctx.case.name)
    try:
        if fut is None:
            return await _record_reference(ctx, REFERENCE, script, opts)
        return await asyncio.shield(fut)
    except Mismatch as exc:
        raise Mismatch(f"the reference {REFERENCE} failed this case: {exc.message}") from None


def jscase(
    name: str,
    *,
    doc: str,
    targets: str | None = None,
    timeout: float = 2.0,
    config: str | None = None,
    http: bool = False,
    go29_missing: tuple[str, ...] = (),
    loose: tuple[str, ...] = (),
    go29_loose: tuple[str, ...] = (),
) -> Callable[[Script], Script]:
    """Register a JetStream script as the case ``name`` (it requires jetstream).

    ``go29_missing``: more keys 2.9 lacks (patterns on "label:path"); ``loose``/``go29_loose``:
    values not compared (patterns on "label:path", or "path" for every label).
    """
    opts = CaseOptions(config, http, go29_missing, loose, go29_loose)

    def deco(script: Script) -> Script:
        async def case(ctx: CaseContext) -> None:
            if ctx.target.name == REFERENCE:
                if ctx.case.name not in _memo(ctx):
                    await _record_reference(ctx, None, script, opts)
                else:
                    # Another target made the reference recording already; this row still
                    # runs the script (with all its checks) on its own server.
                    await _run_script(ctx, None, script, opts)
                return
            got = await _run_script(ctx, None, script, opts)
            ref = await reference_recording(ctx, script, opts)
            problems = compare_recordings(
                got, ref, ctx.target.profile, go29_missing, loose, go29_loose
            )
            if problems:
                ctx.fail(
                    f"differs from {REFERENCE} in {len(problems)} place(s):\n      "
                    + "\n      ".join(problems)
                )

        case.__name__ = script.__name__
        case.__doc__ = script.__doc__
        case.__wrapped__ = script  # type: ignore[attr-defined]  # the case's origin: the script
        pycase(name, doc=doc, targets=targets, timeout=timeout, requires=(JETSTREAM,))(case)
        return script

    return deco
