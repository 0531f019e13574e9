"""Go's text forms of times, durations and floats, as nats-server writes them in monitoring
JSON, log lines and JetStream API replies (sans-IO formatting)."""

from __future__ import annotations

import datetime as dt
import functools
import math


def go_time(t: float) -> str:
    """RFC 3339 with nanoseconds, UTC, trailing zeros trimmed (Go's time.RFC3339Nano)."""
    sec = math.floor(t)
    us = round((t - sec) * 1e6)
    if us >= 1_000_000:
        sec, us = sec + 1, 0
    frac = f"{us:06d}".rstrip("0")
    return _go_second(sec) + (f".{frac}" if frac else "") + "Z"


@functools.lru_cache(maxsize=4096)
def _go_second(sec: int) -> str:
    # strftime is most of a /connz entry's cost; connections share a few distinct seconds.
    return dt.datetime.fromtimestamp(sec, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _frac(n: int, unit: int) -> str:
    whole, rem = divmod(n, unit)
    if not rem:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rem:0{digits}d}".rstrip("0")


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String(): 0s, 387µs, 1.5ms, 2.5s, 1m30s, 1h2m3s."""
    ns = int(round(seconds * 1e9))
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_frac(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_frac(ns, 1_000_000)}ms"
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    out = sign
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    return out + _frac(rem, 1_000_000_000) + "s"


def uptime(seconds: float) -> str:
    """nats-server's myUptime: 5s, 1m5s, 1h1m5s, 2d1h1m5s, 1y2d1h1m5s."""
    s = int(seconds)
    mins, hrs = s // 60, s // 3600
    days = hrs // 24
    yrs = days // 365
    if yrs:
        return f"{yrs}y{days % 365}d{hrs % 24}h{mins % 60}m{s % 60}s"
    if days:
        return f"{days}d{hrs % 24}h{mins % 60}m{s % 60}s"
    if hrs:
        return f"{hrs}h{mins % 60}m{s % 60}s"
    if mins:
        return f"{mins}m{s % 60}s"
    return f"{s}s"


def go_float(v: float) -> float | int:
    """A float64 as Go's encoding/json writes it: whole numbers without `.0` (2, not 2.0)."""
    return int(v) if float(v).is_integer() else v
