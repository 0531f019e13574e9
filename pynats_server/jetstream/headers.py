"""The JetStream headers of published and stored messages (nats-server's names and parsing).

Header lookups follow nats-server's sliceHeader: case-sensitive key at the start of a line,
then ':', spaces skipped; an empty value counts as absent. Sans-IO, on bytes. The RFC 3339
times these headers (and the API's answers and requests) carry are written and read here too.
"""

from __future__ import annotations

import re

from .store.base import header_value

MSG_ID = b"Nats-Msg-Id"
EXPECTED_STREAM = b"Nats-Expected-Stream"
EXPECTED_LAST_SEQ = b"Nats-Expected-Last-Sequence"
EXPECTED_LAST_SUBJ_SEQ = b"Nats-Expected-Last-Subject-Sequence"
EXPECTED_LAST_SUBJ_SEQ_SUBJ = b"Nats-Expected-Last-Subject-Sequence-Subject"
EXPECTED_LAST_MSG_ID = b"Nats-Expected-Last-Msg-Id"
ROLLUP = b"Nats-Rollup"
TTL = b"Nats-TTL"
INCR = b"Nats-Incr"
COUNTER_SOURCES = b"Nats-Counter-Sources"
BATCH_ID = b"Nats-Batch-Id"
SCHEDULE = b"Nats-Schedule"
SCHEDULE_NEXT = b"Nats-Schedule-Next"
SCHEDULER = b"Nats-Scheduler"
STREAM_SOURCE = b"Nats-Stream-Source"
REQUEST_INFO = b"Nats-Request-Info"
REQUIRED_API_LEVEL = b"Nats-Required-Api-Level"
TRACE_DEST = b"Nats-Trace-Dest"


def get(hdr: bytes, key: bytes) -> bytes | None:
    """The value of `key`, None when absent or empty."""
    if not hdr:
        return None
    v = header_value(hdr, key)
    return v if v else None


def parse_uint(v: bytes) -> int:
    """nats-server's parseInt64 read as a uint64: digits only, else 2^64-1 (its -1)."""
    if v and v.isdigit():
        return int(v)
    return (1 << 64) - 1


def remove(hdr: bytes, key: bytes) -> bytes:
    """removeHeaderIfPresent: the block without the `key` line (b"" if nothing else is left)."""
    if not hdr:
        return hdr
    k = b"\r\n" + key + b":"
    i = hdr.find(k)
    if i < 0:
        return hdr
    end = hdr.find(b"\r\n", i + len(k))
    out = hdr[:i] + (hdr[end:] if end >= 0 else b"\r\n")
    if out == b"NATS/1.0\r\n\r\n":
        return b""
    return out


def set_value(hdr: bytes, key: bytes, value: bytes) -> bytes:
    """setHeader: the first `key` line gets `value`, or the line is added."""
    if hdr:
        k = b"\r\n" + key + b":"
        i = hdr.find(k)
        if i >= 0:
            end = hdr.find(b"\r\n", i + len(k))
            return hdr[:i] + k + b" " + value + hdr[end:]
    return append(hdr, key, value)


def parse_incr(v: bytes) -> int | None:
    """big.Int SetString(v, 10): an optional sign and digits."""
    if re.fullmatch(rb"[+-]?[0-9]+", v):
        return int(v)
    return None


def append(hdr: bytes, key: bytes, value: bytes) -> bytes:
    """genHeader: `key: value` added before the closing CRLF (a block made if there is none)."""
    if not hdr:
        return b"NATS/1.0\r\n" + key + b": " + value + b"\r\n\r\n"
    return hdr[:-2] + key + b": " + value + b"\r\n\r\n"


_DUR_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}  # fmt: skip


def parse_go_duration(s: str) -> int | None:
    """time.ParseDuration in ns, or None when Go would refuse it."""
    orig = s
    neg = False
    if s[:1] in ("-", "+"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DUR_RE.match(s, pos)
        if m is None or m.end() == pos:
            return None
        num, unit = m.group(1), m.group(2)
        if num in ("", ".") or unit not in _UNITS:
            return None
        total += float(num) * _UNITS[unit]
        pos = m.end()
    del orig
    ns = int(total)
    return -ns if neg else ns


class TTLError(ValueError):
    pass


def message_ttl(hdr: bytes) -> int:
    """getMessageTTL: seconds (> 0), 0 when absent, -1 for "never"; TTLError when invalid."""
    v = get(hdr, TTL)
    if v is None:
        return 0
    text = v.decode("utf-8", errors="replace")
    if text.lower() == "never":
        return -1
    d = parse_go_duration(text)
    if d is not None:
        if d < 1_000_000_000:
            raise TTLError(text)
        return d // 1_000_000_000
    if v.isdigit():
        return int(v)
    raise TTLError(text)


def ttl_or_zero(hdr: bytes) -> int:
    try:
        return message_ttl(hdr)
    except TTLError:
        return 0


def go_time_ns(ns: int) -> str:
    """time.Unix(0, ns).UTC().Format(time.RFC3339Nano)."""
    import datetime as dt

    secs, frac = divmod(ns, 1_000_000_000)
    d = dt.datetime.fromtimestamp(secs, tz=dt.timezone.utc)
    f = f"{frac:09d}".rstrip("0")
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{f}" if f else "") + "Z"


def parse_time_ns(text: str) -> int:
    """An RFC 3339 time of a request or a configuration (start times) in ns since the epoch:
    go_time_ns read back."""
    import datetime as dt

    main, _, frac = text.partition(".")
    tz = ""
    if frac:
        digits = ""
        for i, ch in enumerate(frac):
            if not ch.isdigit():
                tz = frac[i:]
                break
            digits += ch
    else:
        digits = ""
        if main.endswith("Z"):
            main, tz = main[:-1], "Z"
        elif len(main) > 19:
            main, tz = main[:19], main[19:]
    if tz == "Z":
        tz = "+00:00"
    d = dt.datetime.fromisoformat(main + tz)
    ns = int(d.timestamp()) * 1_000_000_000
    return ns + int((digits + "000000000")[:9]) if digits else ns
