"""Message schedules (`allow_msg_schedules`, nats-server 2.12+): a message with
`Nats-Schedule: <pattern>` and `Nats-Schedule-Target: <subject>` is stored on its own subject
(rolled up per subject) and, when due, produces a copy on the target subject with
`Nats-Scheduler: <schedule subject>` and `Nats-Schedule-Next: <next time>` (or `purge` for a
one-off schedule, which removes the schedule message). Patterns: `@at <RFC 3339 time>`,
`@every <Go duration>` (>= 1 s), `@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly` and
six-field cron (`sec min hour day-of-month month day-of-week`, with `Nats-Schedule-Time-Zone`).
Optional headers: `Nats-Schedule-TTL` (the produced message's TTL), `Nats-Schedule-Rollup: sub`,
`Nats-Schedule-Source` (produce the last message of that subject instead).

No I/O here: parsing, the publish-time checks, the due schedules and the produced message.
The stream (stream.py) keeps a `Scheduling`, a timer, and stores what fires.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from . import errors
from . import headers as H
from .errors import ApiError, api_error
from .store.base import header_value
from .stream_config import collide, is_literal, is_valid_subject

SCHEDULE_TZ = b"Nats-Schedule-Time-Zone"
SCHEDULE_TTL = b"Nats-Schedule-TTL"
SCHEDULE_ROLLUP = b"Nats-Schedule-Rollup"
SCHEDULE_TARGET = b"Nats-Schedule-Target"
SCHEDULE_SOURCE = b"Nats-Schedule-Source"
MIN_FIRE_DELAY = 0.25  # nats-server does not run its scheduler more often than this

_UTC = dt.timezone.utc
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z")
_PREDEFINED = {
    "@yearly": "0 0 0 1 1 *", "@annually": "0 0 0 1 1 *", "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0", "@daily": "0 0 0 * * *", "@midnight": "0 0 0 * * *", "@hourly": "0 0 * * * *",
}  # fmt: skip
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                        "nov", "dec"), 1)}  # fmt: skip
_DOW = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (min, max, names) of the six cron fields.
_BOUNDS: list[tuple[int, int, dict[str, int] | None]] = [
    (0, 59, None), (0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 6, _DOW)]
_STAR = 1 << 63


# -- patterns ------------------------------------------------------------------------------


def parse_rfc3339(text: str) -> dt.datetime | None:
    """time.Parse(time.RFC3339, ...) (fractional seconds allowed, as Go's parser does)."""
    if not _RFC3339.match(text):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def to_ns(t: dt.datetime) -> int:
    """An aware datetime as ns since the epoch (exact to the microsecond)."""
    delta = t - dt.datetime(1970, 1, 1, tzinfo=_UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=_UTC) + dt.timedelta(microseconds=ns // 1_000)


def format_rfc3339(t: dt.datetime) -> str:
    """time.Format(time.RFC3339): seconds, `Z` for UTC, else the offset."""
    t = t.replace(microsecond=0)
    off = t.utcoffset()
    if off is None or off == dt.timedelta(0):
        return t.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    s = t.isoformat()
    return s


def load_location(hdr: bytes) -> tuple[Any, ApiError | None]:
    """Nats-Schedule-Time-Zone: (None, None) when absent; an error when empty or unknown."""
    if not hdr or b"\r\n" + SCHEDULE_TZ + b":" not in hdr:
        return None, None
    tz = header_value(hdr, SCHEDULE_TZ)
    if not tz:
        return None, api_error(errors.MESSAGE_SCHEDULES_TIME_ZONE_INVALID)
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(tz.decode()), None
    except Exception:  # unknown zone, bad name, no tz database
        return None, api_error(errors.MESSAGE_SCHEDULES_TIME_ZONE_INVALID)


def _round_second(ns: int) -> int:
    """time.Round(time.Second): halves away from zero (times here are positive)."""
    return (ns + 500_000_000) // 1_000_000_000 * 1_000_000_000


def parse_schedule(pattern: str, loc: Any, ts: int, now: int | None = None) -> tuple[dt.datetime | None, bool, bool]:
    """parseMsgSchedule: (the time to fire, repeating, valid). ts, now: ns since the epoch."""
    if not pattern:
        return None, False, True
    if now is None:
        now = time.time_ns()
    if pattern.startswith("@at "):
        if loc is not None:
            return None, False, False
        t = parse_rfc3339(pattern[4:])
        return t, False, t is not None
    if pattern.startswith("@every "):
        if loc is not None:
            return None, False, False
        d = H.parse_go_duration(pattern[7:])
        if d is None or d < 1_000_000_000:
            return None, False, False
        nxt = _round_second(ts) + d
        if nxt < now:
            nxt = _round_second(now) + d
        return from_ns(nxt), True, True
    pattern = _PREDEFINED.get(pattern, pattern)
    t = parse_cron(pattern, loc, ts)
    if t is None:
        return None, False, False
    if to_ns(t) < now:
        t = parse_cron(pattern, loc, _round_second(now))
        if t is None:
            return None, False, False
    return t, True, True


def _field(text: str, lo: int, hi: int, names: dict[str, int] | None) -> int | None:
    bits = 0
    for expr in (e for e in text.split(",") if e):
        rs = expr.split("/")
        lh = rs[0].split("-")
        extra = 0
        try:
            if lh[0] in ("*", "?"):
                start, end, extra = lo, hi, _STAR
            else:
                start = _num(lh[0], names)
                if len(lh) == 1:
                    end = start
                elif len(lh) == 2:
                    end = _num(lh[1], names)
                else:
                    return None
            if len(rs) == 1:
                step = 1
            elif len(rs) == 2:
                step = _num(rs[1], None)
                if len(lh) == 1:
                    end = hi
                if step > 1:
                    extra = 0
            else:
                return None
        except ValueError:
            return None
        if start < lo or end > hi or start > end or step == 0:
            return None
        for i in range(start, end + 1, step):
            bits |= 1 << i
        bits |= extra
    return bits


def _num(text: str, names: dict[str, int] | None) -> int:
    if names is not None and text.lower() in names:
        return names[text.lower()]
    n = int(text)  # ValueError as Go's Atoi fails
    if n < 0 or not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(text)
    return n


def parse_cron(pattern: str, loc: Any, ts: int) -> dt.datetime | None:
    """The first time after ts that matches the six-field pattern (nats-server's parseCron:
    month, day, hour, minute, second searched in turn, at most 5 years ahead)."""
    fields = pattern.split()
    if len(fields) != 6:
        return None
    bits = []
    for f, (lo, hi, names) in zip(fields, _BOUNDS, strict=True):
        b = _field(f, lo, hi, names)
        if b is None:
            return None
        bits.append(b)
    sec, minute, hour, dom, month, dow = bits
    tz = loc or _UTC
    # Wall-clock arithmetic in the zone, on naive times.
    nxt = dt.datetime.fromtimestamp(ts // 1_000_000_000, tz=tz).replace(tzinfo=None) + dt.timedelta(seconds=1)
    limit = nxt.year + 5
    truncated = False

    def day_ok(t: dt.datetime) -> bool:
        dm = bool(1 << t.day & dom)
        wm = bool(1 << ((t.weekday() + 1) % 7) & dow)
        if dom & _STAR or dow & _STAR:
            return dm and wm
        return dm or wm

    while True:
        if nxt.year > limit:
            return None
        wrapped = False
        while not 1 << nxt.month & month:
            if not truncated:
                truncated = True
                nxt = nxt.replace(day=1, hour=0, minute=0, second=0)
            y, m = (nxt.year + 1, 1) if nxt.month == 12 else (nxt.year, nxt.month + 1)
            nxt = nxt.replace(year=y, month=m)
            if nxt.month == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not day_ok(nxt):
            if not truncated:
                truncated = True
                nxt = nxt.replace(hour=0, minute=0, second=0)
            nxt += dt.timedelta(days=1)
            if nxt.day == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not 1 << nxt.hour & hour:
            if not truncated:
                truncated = True
                nxt = nxt.replace(minute=0, second=0)
            nxt += dt.timedelta(hours=1)
            if nxt.hour == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while not 1 << nxt.minute & minute:
            if not truncated:
                truncated = True
                nxt = nxt.replace(second=0)
            nxt += dt.timedelta(minutes=1)
            if nxt.minute == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while not 1 << nxt.second & sec:
            truncated = True
            nxt += dt.timedelta(seconds=1)
            if nxt.second == 0:
                wrapped = True
                break
        if wrapped:
            continue
        return nxt.replace(tzinfo=tz)


def next_schedule(hdr: bytes, ts: int) -> tuple[dt.datetime | None, ApiError | None]:
    """nextMessageSchedule: when a message's schedule fires (None: it has none)."""
    if not hdr:
        return None, None
    loc, err = load_location(hdr)
    if err is not None:
        return None, err
    val = H.get(hdr, H.SCHEDULE)
    t, _, ok = parse_schedule(val.decode(errors="replace") if val else "", loc, ts)
    if not ok:
        return None, api_error(errors.MESSAGE_SCHEDULES_PATTERN_INVALID)
    return t, None


# -- publish-time checks -------------------------------------------------------------------


def _valid_publish_subject(s: str) -> bool:
    return bool(s) and is_valid_subject(s) and is_literal(s)


def _schedule_ttl_ok(hdr: bytes) -> tuple[bytes, bool]:
    v = H.get(hdr, SCHEDULE_TTL)
    if v is None:
        return b"", True
    try:
        H.message_ttl(b"NATS/1.0\r\nNats-TTL: " + v + b"\r\n\r\n")
    except H.TTLError:
        return b"", False
    return v, True


def check_publish(cfg: dict[str, Any], subject: bytes, hdr: bytes) -> bytes | ApiError:
    """The schedule headers of a published (not sourced) message: the headers to store (a
    schedule gets `Nats-Rollup: sub`), or the error to answer."""
    allow = cfg["allow_msg_schedules"]
    subj = subject.decode(errors="surrogateescape")
    when, err = next_schedule(hdr, time.time_ns())
    if err is not None:
        return err if allow else api_error(errors.MESSAGE_SCHEDULES_DISABLED)
    if when is not None:
        if not allow:
            return api_error(errors.MESSAGE_SCHEDULES_DISABLED)
        ttl, ok = _schedule_ttl_ok(hdr)
        if not ok:
            return api_error(errors.MESSAGE_SCHEDULES_TTL_INVALID)
        srollup = H.get(hdr, SCHEDULE_ROLLUP)
        if srollup is not None and srollup != b"sub":
            return api_error(errors.MESSAGE_SCHEDULES_ROLLUP_INVALID)
        if ttl and not cfg["allow_msg_ttl"]:
            return api_error(errors.MESSAGE_TTL_DISABLED)
        target = (H.get(hdr, SCHEDULE_TARGET) or b"").decode(errors="surrogateescape")
        if not _valid_publish_subject(target) or target == subj:
            return api_error(errors.MESSAGE_SCHEDULES_TARGET_INVALID)
        source = (H.get(hdr, SCHEDULE_SOURCE) or b"").decode(errors="surrogateescape")
        if source and (source == target or source == subj or not _valid_publish_subject(source)):
            return api_error(errors.MESSAGE_SCHEDULES_SOURCE_INVALID)
        subjects = cfg["subjects"] or []
        if not any(collide(s, target) for s in subjects):
            return api_error(errors.MESSAGE_SCHEDULES_TARGET_INVALID)
        if source and not any(collide(s, source) for s in subjects):
            return api_error(errors.MESSAGE_SCHEDULES_SOURCE_INVALID)
        rollup = H.get(hdr, H.ROLLUP)
        if rollup is None:
            hdr = H.append(hdr, H.ROLLUP, b"sub")
        elif rollup != b"sub":
            return api_error(errors.MESSAGE_SCHEDULES_ROLLUP_INVALID)
    nxt = H.get(hdr, H.SCHEDULE_NEXT)
    if nxt is not None:
        if nxt != b"purge":
            return api_error(errors.MESSAGE_SCHEDULES_SCHEDULER_INVALID)
        sched = (H.get(hdr, H.SCHEDULER) or b"").decode(errors="surrogateescape")
        if not sched or sched == subj or not _valid_publish_subject(sched):
            return api_error(errors.MESSAGE_SCHEDULES_SCHEDULER_INVALID)
        if not allow:
            return api_error(errors.MESSAGE_SCHEDULES_DISABLED)
    elif H.get(hdr, H.SCHEDULER) is not None:
        return api_error(errors.MESSAGE_SCHEDULES_SCHEDULER_INVALID)
    return hdr


# -- the schedules of a stream ---------------------------------------------------------------


class Scheduling:
    """Pending schedules by subject: (sequence of the schedule message, when it fires in ns)."""

    def __init__(self) -> None:
        self.schedules: dict[bytes, tuple[int, int]] = {}
        self.inflight: set[bytes] = set()

    def add(self, seq: int, subj: bytes, ts: int) -> None:
        self.schedules[subj] = (seq, ts)
        self.inflight.discard(subj)

    def update(self, subj: bytes, ts: int) -> None:
        if subj in self.schedules:
            self.schedules[subj] = (self.schedules[subj][0], ts)
            self.inflight.discard(subj)

    def remove_subject(self, subj: bytes) -> None:
        self.schedules.pop(subj, None)
        self.inflight.discard(subj)

    def next_deadline(self) -> int | None:
        due = [ts for s, (_, ts) in self.schedules.items() if s not in self.inflight]
        return min(due) if due else None

    def due(self, now: int) -> list[tuple[int, bytes, int]]:
        """(seq, subject, fire time) of the schedules due at `now`, by sequence."""
        out = [(seq, s, ts) for s, (seq, ts) in self.schedules.items() if ts <= now and s not in self.inflight]
        return sorted(out)


def _remove_prefix(hdr: bytes, prefix: bytes) -> bytes:
    """removeHeaderIfPrefixPresent: every header line whose key starts with `prefix` goes."""
    if not hdr:
        return hdr
    lines = hdr.split(b"\r\n")
    kept = [ln for i, ln in enumerate(lines) if i == 0 or not ln.startswith(prefix)]
    return b"\r\n".join(kept)


def produce(sched_subj: bytes, sched_hdr: bytes, body_hdr: bytes, body: bytes, fire_ts: int,
            now: int) -> tuple[bytes, bytes, bytes] | None:
    """The message a due schedule produces: (target, headers, body), None when the schedule
    message is not valid (any more). `body_hdr`/`body`: the schedule message's own, or the
    last message of its Nats-Schedule-Source."""
    pat = H.get(sched_hdr, H.SCHEDULE)
    if pat is None:
        return None
    loc, err = load_location(sched_hdr)
    if err is not None:
        return None
    nxt, repeat, ok = parse_schedule(pat.decode(errors="replace"), loc, fire_ts, now)
    if not ok:
        return None
    ttl, ok = _schedule_ttl_ok(sched_hdr)
    if not ok:
        return None
    target = H.get(sched_hdr, SCHEDULE_TARGET)
    if target is None:
        return None
    rollup = H.get(sched_hdr, SCHEDULE_ROLLUP)
    hdr = body_hdr
    for p in (b"Nats-Schedule", b"Nats-Expected-"):
        hdr = _remove_prefix(hdr, p)
    for k in (H.MSG_ID, H.TTL, H.ROLLUP):
        hdr = H.remove(hdr, k)
    if hdr == b"NATS/1.0\r\n\r\n":
        hdr = b""
    hdr = H.append(hdr, H.SCHEDULER, sched_subj)
    if not repeat or nxt is None:
        hdr = H.append(hdr, H.SCHEDULE_NEXT, b"purge")
    else:
        hdr = H.append(hdr, H.SCHEDULE_NEXT, format_rfc3339(nxt).encode())
    if ttl:
        hdr = H.append(hdr, H.TTL, ttl)
    if rollup is not None:
        hdr = H.append(hdr, H.ROLLUP, rollup)
    return target, hdr, body
