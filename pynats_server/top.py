"""`pynats top`: a terminal view of a server's connections, like nats-top.

It polls the monitoring port (`/varz`, `/connz`), works out message and byte rates between
two polls, and shows the server's totals and its connections sorted by rate (or another
column). Any server with a monitoring port will do: pynats-server or nats-server.

    pynats top -m http://127.0.0.1:8222            keys: q quit, o next sort, O previous,
    pynats top --once --sort bytes                        p pause, + / - refresh interval

The screen is drawn with curses (the standard library): no dependency. `snapshot()` and
`render()` are plain functions (dicts in, lines out), so the view is tested without a
terminal; the curses loop only draws their lines and reads keys.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8222"
# Sort keys: the column name shown, and how to read it from a connection row.
SORTS = ("msgs/s", "bytes/s", "cid", "subs", "pending", "msgs_to", "msgs_from", "bytes_to", "bytes_from",
         "idle", "uptime")  # fmt: skip
_FIELD = {"cid": "cid", "subs": "subscriptions", "pending": "pending_bytes", "msgs_to": "out_msgs",
          "msgs_from": "in_msgs", "bytes_to": "out_bytes", "bytes_from": "in_bytes"}  # fmt: skip


class FetchError(Exception):
    pass


def fetch(url: str, path: str, timeout: float = 3.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=timeout) as r:
            data = json.load(r)
    except (OSError, ValueError) as e:
        raise FetchError(f"{url}{path}: {e}") from None
    if not isinstance(data, dict):
        raise FetchError(f"{url}{path}: not a JSON object")
    return data


def human(n: float, unit: str = "") -> str:
    """1234 -> 1.2K, as nats-top shows counts."""
    for suffix in ("", "K", "M", "G", "T"):
        if abs(n) < 1000 or suffix == "T":
            text = f"{n:.0f}" if suffix == "" and float(n).is_integer() else f"{n:.1f}"
            return f"{text}{suffix}{unit}"
        n /= 1000
    return f"{n}{unit}"  # pragma: no cover


def go_seconds(d: str) -> float:
    """nats-server's uptime/idle strings (1d2h3m4s) in seconds."""
    total, num = 0.0, ""
    units = {"y": 365 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
    for ch in d:
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in units and num:
            total += float(num) * units[ch]
            num = ""
    return total


@dataclass
class Poll:
    """One poll of the server: its /varz, its connections by cid, and when."""

    at: float
    varz: dict[str, Any]
    conns: dict[int, dict[str, Any]] = field(default_factory=dict)


def poll(url: str, limit: int = 1024) -> Poll:
    varz = fetch(url, "/varz")
    connz = fetch(url, f"/connz?limit={limit}")
    return Poll(time.monotonic(), varz, {int(c["cid"]): c for c in connz.get("connections") or []})


def _rate(cur: float, old: float, dt: float) -> float:
    return max(cur - old, 0) / dt if dt > 0 else 0.0


def snapshot(prev: Poll | None, cur: Poll, sort: str = "msgs/s") -> dict[str, Any]:
    """What the screen shows: server totals and rates, and the connections sorted."""
    v = cur.varz
    dt = cur.at - prev.at if prev is not None else 0.0
    pv = prev.varz if prev is not None else v
    rows = []
    for cid, c in cur.conns.items():
        old = prev.conns.get(cid) if prev is not None else None
        r = dict(c)
        if old is not None and dt > 0:
            r["msgs_rate"] = _rate(c["in_msgs"] + c["out_msgs"], old["in_msgs"] + old["out_msgs"], dt)
            r["bytes_rate"] = _rate(c["in_bytes"] + c["out_bytes"], old["in_bytes"] + old["out_bytes"], dt)
        else:
            r["msgs_rate"] = r["bytes_rate"] = 0.0
        rows.append(r)

    def key(r: dict[str, Any]) -> Any:
        if sort == "msgs/s":
            return r["msgs_rate"]
        if sort == "bytes/s":
            return r["bytes_rate"]
        if sort in ("idle", "uptime"):
            return go_seconds(r.get(sort, ""))
        return r.get(_FIELD[sort], 0)

    rows.sort(key=lambda r: (key(r), -r["cid"]), reverse=sort != "cid")
    return {
        "server": v.get("server_name", ""), "id": v.get("server_id", ""), "version": v.get("version", ""),
        "go": v.get("go", ""), "uptime": v.get("uptime", ""), "cpu": v.get("cpu", 0), "mem": v.get("mem", 0),
        "slow_consumers": v.get("slow_consumers", 0), "connections": v.get("connections", 0),
        "subscriptions": v.get("subscriptions", 0), "routes": v.get("routes", 0),
        "in_msgs": v.get("in_msgs", 0), "out_msgs": v.get("out_msgs", 0),
        "in_bytes": v.get("in_bytes", 0), "out_bytes": v.get("out_bytes", 0),
        "in_msgs_rate": _rate(v.get("in_msgs", 0), pv.get("in_msgs", 0), dt),
        "out_msgs_rate": _rate(v.get("out_msgs", 0), pv.get("out_msgs", 0), dt),
        "in_bytes_rate": _rate(v.get("in_bytes", 0), pv.get("in_bytes", 0), dt),
        "out_bytes_rate": _rate(v.get("out_bytes", 0), pv.get("out_bytes", 0), dt),
        "sort": sort, "rows": rows,
    }  # fmt: skip


COLUMNS = [("CID", 6, lambda r: str(r["cid"])), ("NAME", 18, lambda r: r.get("name", "")),
           ("SUBS", 6, lambda r: str(r.get("subscriptions", 0))),
           ("PENDING", 8, lambda r: human(r.get("pending_bytes", 0))),
           ("MSGS_TO", 8, lambda r: human(r.get("out_msgs", 0))),
           ("MSGS_FROM", 9, lambda r: human(r.get("in_msgs", 0))),
           ("BYTES_TO", 9, lambda r: human(r.get("out_bytes", 0))),
           ("BYTES_FROM", 10, lambda r: human(r.get("in_bytes", 0))),
           ("MSGS/S", 8, lambda r: human(r["msgs_rate"])), ("BYTES/S", 8, lambda r: human(r["bytes_rate"])),
           ("LANG", 7, lambda r: r.get("lang", "")), ("VERSION", 8, lambda r: r.get("version", "")),
           ("UPTIME", 9, lambda r: r.get("uptime", "")), ("IDLE", 8, lambda r: r.get("idle", ""))]  # fmt: skip


def render(s: dict[str, Any], *, width: int = 132, height: int = 40, status: str = "") -> list[str]:
    """The screen as lines (at most `height`, each at most `width` characters)."""
    lines = [
        f"NATS server version {s['version']} (uptime: {s['uptime']}) {s['go']}".rstrip(),
        f"Server: {s['server']}  ID: {s['id']}",
        f"  Load: CPU: {s['cpu']:.1f}%  Memory: {human(s['mem'], 'B')}  Slow Consumers: {s['slow_consumers']}",
        f"  In:   Msgs: {human(s['in_msgs'])}  Bytes: {human(s['in_bytes'], 'B')}  "
        f"Msgs/Sec: {human(s['in_msgs_rate'])}  Bytes/Sec: {human(s['in_bytes_rate'], 'B')}",
        f"  Out:  Msgs: {human(s['out_msgs'])}  Bytes: {human(s['out_bytes'], 'B')}  "
        f"Msgs/Sec: {human(s['out_msgs_rate'])}  Bytes/Sec: {human(s['out_bytes_rate'], 'B')}",
        "",
        f"Connections: {s['connections']}  Subscriptions: {s['subscriptions']}  Routes: {s['routes']}  "
        f"Sorted by: {s['sort']}" + (f"  [{status}]" if status else ""),
        "  ".join(name.ljust(w) for name, w, _ in COLUMNS).rstrip(),
    ]
    for r in s["rows"][: max(height - len(lines), 0)]:
        cells = []
        for _, w, get in COLUMNS:
            text = str(get(r))
            cells.append((text if len(text) <= w else text[: w - 1] + "~").ljust(w))
        lines.append("  ".join(cells).rstrip())
    return [line[:width] for line in lines[:height]]


# -- the terminal ---------------------------------------------------------------------------

HELP = "q quit  o/O sort  p pause  +/- interval"


def run(url: str, *, sort: str = "msgs/s", interval: float = 1.0, limit: int = 1024) -> int:
    import curses

    def main(scr: Any) -> int:
        nonlocal sort, interval
        curses.curs_set(0)
        scr.timeout(100)
        prev: Poll | None = None
        cur: Poll | None = None
        paused = False
        error = ""
        next_poll = 0.0
        while True:
            now = time.monotonic()
            if not paused and now >= next_poll:
                try:
                    p = poll(url, limit)
                    prev, cur, error = cur, p, ""
                except FetchError as e:
                    error = str(e)
                next_poll = now + interval
            h, w = scr.getmaxyx()
            scr.erase()
            if cur is not None:
                status = "paused" if paused else f"every {interval:g}s; {HELP}"
                lines = render(snapshot(prev, cur, sort), width=w - 1, height=h - 1, status=status)
            else:
                lines = [f"pynats top: waiting for {url} ..."]
            if error:
                lines = [f"pynats top: {error}"[: w - 1], *lines[: h - 2]]
            for y, line in enumerate(lines[: h - 1]):
                attr = curses.A_REVERSE if line.startswith("CID ") else curses.A_NORMAL
                scr.addstr(y, 0, line, attr)
            scr.refresh()
            ch = scr.getch()
            if ch in (ord("q"), ord("Q"), 27):
                return 0
            if ch == ord("o"):
                sort = SORTS[(SORTS.index(sort) + 1) % len(SORTS)]
            elif ch == ord("O"):
                sort = SORTS[(SORTS.index(sort) - 1) % len(SORTS)]
            elif ch == ord("p"):
                paused = not paused
            elif ch == ord("+"):
                interval = min(interval * 2, 60.0)
            elif ch == ord("-"):
                interval = max(interval / 2, 0.25)

    return int(curses.wrapper(main))


def once(url: str, *, sort: str = "msgs/s", interval: float = 1.0, limit: int = 1024, width: int = 160) -> str:
    """Two polls `interval` apart, printed once (for scripts and terminals without curses)."""
    first = poll(url, limit)
    time.sleep(interval)
    second = poll(url, limit)
    return "\n".join(render(snapshot(first, second, sort), width=width, height=10_000))
