"""Small helpers: byte escaping for reports, first-difference excerpts, durations, free ports."""

from __future__ import annotations

import re

from pynats_server import netutil

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)?$")


def escape(data: bytes, limit: int | None = 240) -> str:
    """Render bytes readably: printable ASCII as is, CR/LF/TAB as \\r \\n \\t, others as \\xNN."""
    out: list[str] = []
    for b in data if limit is None else data[:limit]:
        if b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x09:
            out.append("\\t")
        elif b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    text = "".join(out)
    if limit is not None and len(data) > limit:
        text += f"...(+{len(data) - limit} bytes)"
    return text


def first_difference(expected: bytes, got: bytes) -> int:
    """Index of the first byte where the two differ (len of the shorter if one is a prefix)."""
    n = min(len(expected), len(got))
    for i in range(n):
        if expected[i] != got[i]:
            return i
    return n


def diff_excerpt(
    expected: bytes, got: bytes, context: int = 24, width: int = 120
) -> tuple[str, str, int]:
    """Escaped excerpts of expected and got starting a little before their first difference."""
    i = first_difference(expected, got)
    start = max(0, i - context)
    pre = "..." if start else ""
    return (
        pre + escape(expected[start:], width),
        pre + escape(got[start:], width),
        i,
    )


def parse_duration(text: str) -> float:
    """'250ms' -> 0.25, '2s' -> 2.0, '1.5' -> 1.5 (seconds)."""
    m = _DURATION_RE.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r} (use e.g. 250ms or 2s)")
    value = float(m.group(1))
    return value / 1000.0 if m.group(2) == "ms" else value


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (use only where -1 is not accepted)."""
    return netutil.free_port(host)
