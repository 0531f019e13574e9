"""Incremental parser for the client and route protocols (nats-server parser.go).

Sans-IO: `Parser.feed(data)` takes whatever bytes a read produced and calls the handler's
`on_*` methods for each complete operation, in order. A payload is handed on with its
trailing CRLF, ready to be written to subscribers: a memoryview of the read buffer from 512
bytes up (no copy), a bytes slice below that (a view costs more than copying so few bytes),
and in the split run for reads of small PUBs, the piece `bytes.split` made plus CRLF (copies
made in C, cheaper than slicing in Python; see Parser._split_run).

Protocol errors raise `ProtocolError`: the connection must then close, after sending
`-ERR '<err>'` when `err` is set. Operations parsed before the error have been dispatched,
as nats-server does.

Rules kept from nats-server:
- op names are case-insensitive; a bad op byte fails at once, without waiting for `\\n`;
- PUB, HPUB, SUB, UNSUB, -ERR and the route ops need a space or TAB after the name;
  CONNECT and INFO do not; after PING, PONG and +OK everything up to `\\n` is ignored;
- a line ends at `\\n`; if the argument holds a `\\r`, its last byte is dropped;
- the argument (not the op name) is limited to max_control_line bytes;
- a payload must be followed by exactly `\\r\\n`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..const import MAX_CONTROL_LINE_SIZE, MAX_PAYLOAD_SIZE
from . import wire

CLIENT = 0
ROUTER = 1
LEAF = 2  # leaf node connections: LS+/LS-/LMSG/HMSG without an account (leafnode.py)

# Operation codes.
OP_PUB = 1
OP_HPUB = 2
OP_SUB = 3
OP_UNSUB = 4
OP_PING = 5
OP_PONG = 6
OP_CONNECT = 7
OP_INFO = 8
OP_OK = 9
OP_ERR = 10
OP_RSUB = 11
OP_RUNSUB = 12
OP_RMSG = 13
OP_HMSG = 14
OP_LSUB = 15
OP_LUNSUB = 16
OP_LMSG = 17
OP_ASUB = 18
OP_AUNSUB = 19

# (upper-case name, code, what may follow the name)
#   "space": at least one space or TAB, then the argument
#   "json":  optional spaces or TABs, then the argument
#   "skip":  anything up to the newline is ignored
_CLIENT_OPS: tuple[tuple[bytes, int, str], ...] = (
    (b"PUB", OP_PUB, "space"),
    (b"HPUB", OP_HPUB, "space"),
    (b"SUB", OP_SUB, "space"),
    (b"UNSUB", OP_UNSUB, "space"),
    (b"PING", OP_PING, "skip"),
    (b"PONG", OP_PONG, "skip"),
    (b"CONNECT", OP_CONNECT, "json"),
    (b"INFO", OP_INFO, "json"),
    (b"+OK", OP_OK, "skip"),
    (b"-ERR", OP_ERR, "space"),
)
_ROUTE_OPS: tuple[tuple[bytes, int, str], ...] = (
    (b"RMSG", OP_RMSG, "space"),
    (b"HMSG", OP_HMSG, "space"),
    (b"RS+", OP_RSUB, "space"),
    (b"RS-", OP_RUNSUB, "space"),
    (b"LS+", OP_LSUB, "space"),
    (b"LS-", OP_LUNSUB, "space"),
    (b"LMSG", OP_LMSG, "space"),
    (b"A+", OP_ASUB, "space"),
    (b"A-", OP_AUNSUB, "space"),
    (b"PING", OP_PING, "skip"),
    (b"PONG", OP_PONG, "skip"),
    (b"CONNECT", OP_CONNECT, "json"),
    (b"INFO", OP_INFO, "json"),
    (b"+OK", OP_OK, "skip"),
    (b"-ERR", OP_ERR, "space"),
)

_LEAF_OPS: tuple[tuple[bytes, int, str], ...] = (
    (b"LMSG", OP_LMSG, "space"),
    (b"HMSG", OP_HMSG, "space"),
    (b"LS+", OP_LSUB, "space"),
    (b"LS-", OP_LUNSUB, "space"),
    (b"PING", OP_PING, "skip"),
    (b"PONG", OP_PONG, "skip"),
    (b"CONNECT", OP_CONNECT, "json"),
    (b"INFO", OP_INFO, "json"),
    (b"+OK", OP_OK, "skip"),
    (b"-ERR", OP_ERR, "space"),
)

_START = 0
_PAYLOAD = 1
_SKIP = 2  # inside a PING/PONG/+OK line, waiting for its newline

# The usual PUB line, for the fast path: tokens without whitespace, single spaces, a size
# of 1 to 9 digits (nats-server's parseSize), CRLF.
# A reply subject with a prefix nats-server reserves (`_R_.`, `$JS.ACK.`, `_GR_.` and more)
# is not taken here: such PUBs go the general way, to the handler's on_pub, which refuses
# them. So the fast handler needs no check of its own.
_OK_REPLY = rb"(?!_R_\.|\$JS\.ACK\.[^ \t\r\n]|_GR_\.[^ \t\r\n])"
_PUB_LINE = re.compile(rb"PUB ([^ \t\r\n]+) (?:" + _OK_REPLY + rb"([^ \t\r\n]+) )?([0-9]{1,9})\r\n")
_CRLF_PUB_LINE = re.compile(rb"\r\nPUB ([^ \t\r\n]+) (?:" + _OK_REPLY + rb"([^ \t\r\n]+) )?([0-9]{1,9})\r\n")
_RMSG_LINE = re.compile(rb"RMSG ([^ \t\r\n]+) ([^ \t\r\n]+) (?:([^ \t\r\n]+) )?([0-9]{1,9})\r\n")

# Size tokens seen, parsed (a dict lookup costs a third of int()); bounded.
_SIZES: dict[bytes, int] = {}


def _size_of(szb: bytes) -> int:
    size = int(szb)
    if len(_SIZES) >= 8192:
        _SIZES.clear()
    _SIZES[szb] = size
    return size


# Payloads at least this long are handed on as memoryview slices instead of copies.
_VIEW_MIN = 512

# A split run copies payloads (in C); one this large ends the run, and the regex loop
# passes it on as a view of the read instead.
_RUN_MAX = 16384
# Reads averaging fewer bytes per PUB than this take the split run (judged on their
# first _SAMPLE bytes: counting PUBs in all of a large read costs a tenth of the run).
_RUN_AVG = 320
_SAMPLE = 8192

# The split run (Parser._split_run): size tokens known to be valid and within a max_payload,
# one table per max_payload; subjects known to be plain tokens. Both shared and bounded.
_OK_SIZES: dict[int, dict[bytes, int]] = {}
_PLAIN: set[bytes] = set()
_PLAIN_TOKEN = re.compile(rb"[^ \t\r\n]{1,1024}")
# A reply the split run leaves to the general path: one that may be reserved (see _OK_REPLY;
# a bare prefix also goes, and is sorted out there) or that holds whitespace. A few C calls
# (`int in bytes`, startswith) cost less than a regex with alternatives.
_RESERVED_REPLY_PREFIXES = (b"_R_.", b"$JS.ACK.", b"_GR_.")
CRLF = b"\r\n"


def _plain_token(tok: bytes) -> bool:
    """A subject or account without whitespace, up to 1 KiB: remembered (bounded)."""
    if not _PLAIN_TOKEN.fullmatch(tok):
        return False
    if len(_PLAIN) >= 16384:
        _PLAIN.clear()
    _PLAIN.add(tok)
    return True


def _ok_size(table: dict[bytes, int], szb: bytes, max_payload: int) -> int | None:
    """The size, if valid, within max_payload and small enough for a split run."""
    size = parse_size(szb)
    if size < 0 or size > max_payload or size >= _RUN_MAX:
        return None
    if len(table) >= 8192:
        table.clear()
    table[szb] = size
    return size


# A run of at least this many identical PUB (RMSG) lines is handed on in one call (_bulk).
_BULK_MIN = 4
# Between runs, pairs go one by one; every this many a run is looked for again.
_LOOK_EVERY = 16


def _run_end(pieces: list[bytes], i: int, last: int, x: bytes) -> int:
    """The index after the run of pairs from pieces[i] whose line is `x` (pairs start
    before `last`). Compares windows that double in size (list.count, in C), then halves
    the window with the first other line: the cost follows the run's length, not the
    read's, so a read of many short runs costs no more than its pairs."""
    p = i
    w = 8
    while p < last:
        seg = pieces[p : min(last, p + 2 * w) : 2]
        ns = len(seg)
        c = seg.count(x)
        if c == ns:
            p += 2 * ns
            w <<= 1
            continue
        if seg[:c].count(x) == c:
            return p + 2 * c  # the usual case: no x after the first other line
        lo, hi = 0, ns  # seg[:lo] are all x; seg[lo:hi] holds another line
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if seg[lo:mid].count(x) == mid - lo:
                lo = mid
            else:
                hi = mid
        return p + 2 * lo
    return p


class ProtocolError(Exception):
    """The connection must be closed. `err` is the -ERR text to send first, if any."""

    def __init__(self, err: str | None, reason: str, detail: str = "") -> None:
        super().__init__(detail or err or reason)
        self.err = err
        self.reason = reason
        self.detail = detail


class Hold(Exception):  # noqa: N818  (a signal, not an error)
    """Raised by a handler to stop parsing after the op it is handling (a CONNECT whose
    bcrypt check runs elsewhere). The rest of the read is kept; resume() parses it."""


def unknown_op(detail: str = "") -> ProtocolError:
    return ProtocolError(wire.E_UNKNOWN_OP, "Protocol Violation", detail)


def parse_size(d: bytes) -> int:
    """nats-server's parseSize: 1 to 9 ASCII digits, else -1."""
    if 0 < len(d) < 10 and d.isdigit():
        return int(d)
    return -1


def split_pub_args(arg: bytes) -> list[bytes]:
    """PUB and HPUB split their arguments on spaces and TABs only."""
    if b"\t" in arg:
        arg = arg.replace(b"\t", b" ")
    parts = arg.split(b" ")
    if b"" in parts:
        parts = [p for p in parts if p]
    return parts


def split_args(arg: bytes) -> list[bytes]:
    """SUB, UNSUB and the route ops split on spaces, TABs, CR and LF."""
    for c in (b"\t", b"\r", b"\n"):
        if c in arg:
            arg = arg.replace(c, b" ")
    parts = arg.split(b" ")
    if b"" in parts:
        parts = [p for p in parts if p]
    return parts


class Parser:
    """Turns a connection's byte stream into calls on `handler`."""

    __slots__ = (
        "handler",
        "kind",
        "max_control_line",
        "max_payload",
        "headers",
        "_ops",
        "_state",
        "_pending",
        "_chunks",
        "_have",
        "_need",
        "_pa",
        "_on_pub",
        "_on_rmsg",
        "_on_ok",
        "_on_account_sub",
        "_after_line",
        "_fast",
        "_pedantic",
        "_await_connect",
        "in_msgs",
        "in_bytes",
        "_run_i",
        "_held",
        "_on_pub_run",
        "_on_rmsg_run",
        "_declined",
        "_declines",
        "_run_seg",
        "_run_stop",
        "_taken",
    )

    def __init__(
        self,
        handler: Any,
        kind: int = CLIENT,
        max_control_line: int = MAX_CONTROL_LINE_SIZE,
        max_payload: int = MAX_PAYLOAD_SIZE,
    ) -> None:
        self.handler = handler
        self.kind = kind
        self.max_control_line = max_control_line
        # Route traffic has no payload limit (nats-server checks it on clients only).
        self.max_payload = max_payload if kind == CLIENT else -1
        self._pedantic = False
        self._await_connect = False
        self._fast = True
        self.headers = kind == ROUTER
        self.in_msgs = 0  # messages and payload bytes received, counted here
        self.in_bytes = 0
        self._ops = _CLIENT_OPS if kind == CLIENT else _ROUTE_OPS if kind == ROUTER else _LEAF_OPS
        self._state = _START
        self._pending: bytes = b""
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0
        self._pa: tuple[Any, ...] = ()
        self._on_pub: Any = getattr(handler, "on_pub", None)
        self._on_rmsg: Any = getattr(handler, "on_rmsg", None)
        # Ops a route ignores; a handler that wants to say so (log, count) has these.
        self._on_ok = getattr(handler, "on_ok", None)
        self._on_account_sub = getattr(handler, "on_account_sub", None)
        self._after_line = 0
        self._run_i = 0
        self._held = b""
        # Whole runs of identical PUB (RMSG) lines go to these in one call (see _bulk):
        # functions of the handler's class, called with the handler (a bound method per
        # connection would cost memory on every idle one).
        self._on_pub_run: Any = None
        self._on_rmsg_run: Any = getattr(type(handler), "on_rmsg_run", None)
        self._declined = b""  # the line of the last run the handler declined
        self._declines = 0
        self._run_seg = 0
        self._run_stop = 0
        self._taken: list[tuple[int, int, int]] | tuple[()] = ()  # runs _bulk took in this split run

    # The fast paths skip the checks that pedantic mode and a pending CONNECT add.
    @property
    def pedantic(self) -> bool:
        return self._pedantic

    @pedantic.setter
    def pedantic(self, v: bool) -> None:
        self._pedantic = v
        self._fast = not (v or self._await_connect)

    @property
    def await_connect(self) -> bool:
        """While set, the first byte of every op must start CONNECT (auth is pending)."""
        return self._await_connect

    @await_connect.setter
    def await_connect(self, v: bool) -> None:
        self._await_connect = v
        self._fast = not (v or self._pedantic)

    def set_pub_handler(self, fn: Any, run: Any = None) -> None:
        """`fn` takes one PUB; `run`, if given, a whole run of them: a function of the
        handler's class, called with the handler first (see _bulk)."""
        self._on_pub = fn
        self._on_pub_run = run

    def set_rmsg_handler(self, fn: Any) -> None:
        self._on_rmsg = fn

    # -- entry point ------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._state == _PAYLOAD:
            data = self._continue_payload(data)
            if not data:
                return
        elif self._state == _SKIP:
            nl = data.find(b"\n")
            if nl < 0:
                return
            self._state = _START
            self._finish_skip()
            data = data[nl + 1 :]
        if self._pending:
            data = self._pending + data
            self._pending = b""
        try:
            self._parse(data)
        except Hold:
            # Every op is dispatched from a complete line: what follows it is kept.
            self._held = data[self._after_line :]

    def hold_more(self, data: bytes) -> None:
        """Bytes that arrived while on hold: parsed after the held ones."""
        self._held += data

    def resume(self) -> None:
        """Parse what was held back (the handler may hold again)."""
        held, self._held = self._held, b""
        if held:
            self.feed(held)

    # -- the main loop ----------------------------------------------------------------

    def _parse(self, buf: bytes) -> None:
        if self.kind == CLIENT:
            self._parse_client(buf)
        elif self.kind == ROUTER:
            self._parse_route(buf)
        else:
            self._parse_general(buf)

    def _parse_general(self, buf: bytes) -> None:
        """Leaf connections: every line the general way (no fast path)."""
        n = len(buf)
        pos = 0
        while pos < n:
            eol = buf.find(b"\n", pos)
            if eol < 0:
                self._partial(buf, pos, n)
                return
            self._slow_line(buf, pos, eol)
            pos = self._after_line
            if self._state == _PAYLOAD:
                pos = self._take_payload(buf, pos, n)

    def _parse_client(self, buf: bytes) -> None:
        """The client loop. The fast path takes `PUB subject [reply] size\r\n` in its usual
        spelling (single spaces) with one regex match, which for back-to-back PUBs also
        checks the CRLF that ends the previous payload; anything else, and every error,
        goes the general way, which applies nats-server's rules in full."""
        n = len(buf)
        pos = 0
        nm = nb = 0
        mv: memoryview | None = None
        on_pub = self._on_pub
        max_payload = self.max_payload
        fast = self._fast
        # The split run pays off for small messages; with larger ones the pieces it makes
        # cost more than a regex per line (copies over 512 bytes leave CPython's small-object
        # allocator), so it is taken when the read averages under _RUN_AVG bytes per PUB,
        # or when it starts with a run that can be taken whole (_bulk: no step per message).
        if (
            fast
            and buf.startswith(b"PUB ")
            and self.max_control_line >= 4096
            and (min(n, _SAMPLE) < _RUN_AVG * (buf.count(b"\nPUB ", 0, _SAMPLE) + 1)
                 or (self._on_pub_run is not None and self._run_ahead(buf)))
        ):
            pos = self._split_run(buf, self._pub_pairs)
            if self._state == _PAYLOAD:
                pos = self._take_payload(buf, pos, n)
            if pos >= n:
                return
            on_pub = self._on_pub
            fast = self._fast
        lim = self.max_control_line + 6  # the line's length with "PUB " and CRLF
        match = _PUB_LINE.match
        after = _CRLF_PUB_LINE.match
        sizes = _SIZES
        m = None
        try:
            while pos < n:
                if m is None and fast:
                    m = match(buf, pos)
                if m is not None:
                    start = m.end()
                    subject, reply, szb = m.groups()
                    size = sizes.get(szb)
                    if size is None:
                        size = _size_of(szb)
                    if size <= max_payload and start - pos <= lim:
                        stop = start + size + 2
                        if stop > n:
                            self._pa = (OP_PUB, subject, reply, szb)
                            self._begin_payload(buf, start, n, size)
                            return
                        # The payload's CRLF and the next PUB line, in one match.
                        m = after(buf, stop - 2)
                        if m is None and buf[stop - 2 : stop] != b"\r\n":
                            raise unknown_op("bad payload end")
                        if size < _VIEW_MIN:
                            on_pub(subject, reply, szb, buf[start:stop])
                        else:
                            if mv is None:
                                mv = memoryview(buf)
                            on_pub(subject, reply, szb, mv[start:stop])
                        nm += 1
                        nb += size
                        pos = stop
                        continue
                    m = None
                eol = buf.find(b"\n", pos)
                if eol < 0:
                    self._partial(buf, pos, n)
                    return
                self._slow_line(buf, pos, eol)
                pos = self._after_line
                if self._state == _PAYLOAD:
                    pos = self._take_payload(buf, pos, n)
                # CONNECT or a payload may have changed the handler, the fast flag or (a
                # JWT user's limit) the maximum payload.
                on_pub = self._on_pub
                fast = self._fast
                max_payload = self.max_payload
        finally:
            self.in_msgs += nm
            self.in_bytes += nb

    def _run_ahead(self, buf: bytes) -> bool:
        """Whether the read starts with two frames of one line (a run _bulk may take
        whole), its payloads small enough for the split run and the line not one the
        handler declined last time."""
        eol = buf.find(b"\r\n", 0, 4200)
        if eol < 0:
            return False
        line = buf[:eol]
        size = parse_size(line[line.rfind(b" ") + 1 :])
        if size < 0 or size >= _RUN_MAX or line == self._declined:
            return False
        return buf.startswith(line, eol + size + 4) and buf.startswith(b"\r\n", 2 * eol + size + 4)

    def _split_run(self, buf: bytes, pairs: Callable[[list[bytes], int, int], int]) -> int:
        """A read that starts with PUBs (or RMSGs): split it at every CRLF, once, and let
        `pairs` (_pub_pairs, _rmsg_pairs) take the pieces as (line, payload) pairs. Cheaper
        than a regex per line, because the splitting happens in C. A piece `pairs` does not
        take goes to the general path (_slow_line) as a line of the read; after an op
        without a payload (PING, SUB, ...) the run goes on, anything else ends it. Returns
        the position reached; the caller goes on from there."""
        pieces = buf.split(CRLF)
        last = len(pieces) - 2  # a payload piece must be followed by a CRLF
        i = seg = ki = kpos = 0  # pieces[ki] starts at buf[kpos]; pieces[seg:i] are pairs not yet counted
        self._taken = ()
        try:
            while True:
                self._run_seg = i
                try:
                    i = pairs(pieces, i, last)
                except BaseException:
                    i = self._run_i  # where the handler raised, the message it was given included
                    raise
                finally:
                    seg = self._run_seg  # a bulk run (_bulk) counted its own pairs
                if i >= last:
                    break
                self._run_counts(pieces, seg, i)
                seg = i
                kpos += self._span(pieces, ki, i)
                ki = i
                # The line ends at its first newline, which may be a bare one inside the piece.
                self._slow_line(buf, kpos, buf.find(b"\n", kpos))
                after = self._after_line
                if after != kpos + len(pieces[i]) + 2 or self._state != _START or not self._fast:
                    return after
                i = seg = ki = i + 1
                kpos = after
        finally:
            self._run_counts(pieces, seg, i)
        np = len(pieces)
        if np - i < i - ki and not self._taken:  # fewer pieces to add up from the end
            return len(buf) - sum(map(len, pieces[i:])) - 2 * (np - 1 - i)
        return kpos + self._span(pieces, ki, i)

    def _span(self, pieces: list[bytes], a: int, b: int) -> int:
        """The bytes pieces[a:b] cover in the read, each with the CRLF after it; the runs
        _bulk took in between are known by their length (no need to add them up)."""
        total = 0
        for r0, r1, nb in self._taken:
            total += sum(map(len, pieces[a:r0])) + 2 * (r0 - a) + nb
            a = r1
        self._taken = ()
        return total + sum(map(len, pieces[a:b])) + 2 * (b - a)

    def _run_counts(self, pieces: list[bytes], seg: int, i: int) -> None:
        """Count the messages of a run: pieces[seg:i] are (line, payload) pairs."""
        if i > seg:
            self.in_msgs += (i - seg) >> 1
            self.in_bytes += sum(map(len, pieces[seg + 1 : i : 2]))

    def _pub_pairs(self, pieces: list[bytes], i: int, last: int) -> int:
        """Take `PUB subject [reply] size` + payload pairs from pieces[i]; return where it stopped."""
        max_payload = self.max_payload
        sizes = _OK_SIZES.get(max_payload)
        if sizes is None:
            sizes = _OK_SIZES[max_payload] = {}
        plain = _PLAIN
        on_pub = self._on_pub
        run = self._on_pub_run
        stop = i if run is not None else last  # where to look for a run (Parser._run_at) next
        try:
            while i < last:
                if i >= stop:
                    i, stop = self._run_at(pieces, i, last, run, 3)
                    continue
                while i < stop:
                    toks = pieces[i].split(b" ")
                    if len(toks) == 3:
                        op, subject, szb = toks
                        reply = None
                    elif len(toks) == 4:
                        op, subject, reply, szb = toks
                        # Ints: `b"\t" in reply` makes CPython try the bytes as an int first.
                        if (not reply or len(reply) > 1024 or 9 in reply or 10 in reply or 13 in reply
                                or reply.startswith(_RESERVED_REPLY_PREFIXES)):
                            return i
                    else:
                        return i
                    if op != b"PUB":
                        return i
                    if subject not in plain and not _plain_token(subject):
                        return i
                    payload = pieces[i + 1]
                    size = sizes.get(szb)
                    if size != len(payload) and (size is not None or _ok_size(sizes, szb, max_payload) != len(payload)):
                        return i
                    i += 2
                    on_pub(subject, reply, szb, payload + CRLF)
        except BaseException:
            self._run_i = i
            raise
        return i

    def _rmsg_pairs(self, pieces: list[bytes], i: int, last: int) -> int:
        """Take `RMSG account subject [reply] size` + payload pairs (no queue lists, no
        payload limit) from pieces[i]; return where it stopped."""
        sizes = _OK_SIZES.get(-1)
        if sizes is None:
            sizes = _OK_SIZES[-1] = {}
        plain = _PLAIN
        on_rmsg = self._on_rmsg
        run = self._on_rmsg_run
        stop = i if run is not None else last  # where to look for a run (Parser._run_at) next
        try:
            while i < last:
                if i >= stop:
                    i, stop = self._run_at(pieces, i, last, run, 4)
                    continue
                while i < stop:
                    toks = pieces[i].split(b" ")
                    if len(toks) == 4:
                        op, account, subject, szb = toks
                        reply = None
                    elif len(toks) == 5:
                        op, account, subject, reply, szb = toks
                        if not reply or len(reply) > 1024 or 9 in reply or 10 in reply or 13 in reply:
                            return i
                    else:
                        return i
                    if op != b"RMSG":
                        return i
                    if subject not in plain and not _plain_token(subject):
                        return i
                    if account not in plain and not _plain_token(account):
                        return i
                    payload = pieces[i + 1]
                    size = sizes.get(szb)
                    if size != len(payload) and (size is not None or _ok_size(sizes, szb, _RUN_MAX) != len(payload)):
                        return i
                    i += 2
                    on_rmsg(account, subject, reply, None, szb, payload + CRLF)
        except BaseException:
            self._run_i = i
            raise
        return i

    def _run_at(self, pieces: list[bytes], i: int, last: int, run: Callable[..., bool], ntok: int) -> tuple[int, int]:
        """At pieces[i], between pairs: take a run whole if one starts here (_bulk).
        Returns where to go on from, and up to where the pairs go one by one before the
        next look: the end of a run not taken, or _LOOK_EVERY pairs on."""
        if i + 2 * _BULK_MIN <= last and pieces[i] == pieces[i + 2]:
            j = self._bulk(pieces, i, last, run, ntok)
            if j != i:
                return j, j
            return i, min(last, max(self._run_stop, i + 2 * _LOOK_EVERY))
        return i, min(last, i + 2 * _LOOK_EVERY)

    def _bulk(self, pieces: list[bytes], i: int, last: int, run: Callable[..., bool], ntok: int) -> int:
        """A run of pairs from pieces[i] whose lines are all the same, as one call:
        `run(subject, reply, szb, size, payloads)` for PUB (`ntok` 3) or
        `run(account, subject, reply, szb, size, payloads)` for RMSG (`ntok` 4), where
        `payloads` are the run's payload pieces (without CRLF). The handler returns False
        to decline (it then gets them one by one). Every check of _pub_pairs and
        _rmsg_pairs holds for the one line, and every payload has the line's size, which
        is what makes the pairs frames. Returns where the run ended (i: none taken)."""
        x = pieces[i]
        self._run_stop = i
        if x == self._declined:
            # Declined last time: try again only now and then (its subject's plan may
            # have changed), so a declined stream does not pay for the search every read.
            self._declines += 1
            if self._declines & 15:
                return i
        j = self._run_stop = _run_end(pieces, i, last, x)
        if j - i < 2 * _BULK_MIN:
            return i
        toks = x.split(b" ")
        nt = len(toks)
        reply = None
        if nt == ntok:
            szb = toks[-1]
        elif nt == ntok + 1:
            reply = toks[-2]
            szb = toks[-1]
            # (A CR inside the reply is kept by the general path too: no check for it.)
            if not reply or len(reply) > 1024 or 9 in reply or 10 in reply:
                return i
            if ntok == 3 and reply.startswith(_RESERVED_REPLY_PREFIXES):
                return i  # the client's on_pub refuses these, _pub_run does not check
        else:
            return i
        if toks[0] != (b"PUB" if ntok == 3 else b"RMSG"):
            return i
        for tok in toks[1:ntok - 1]:  # the subject, and a route's account
            if tok not in _PLAIN and not _plain_token(tok):
                return i
        max_payload = self.max_payload if ntok == 3 else -1
        sizes = _OK_SIZES.get(max_payload)
        if sizes is None:
            sizes = _OK_SIZES[max_payload] = {}
        size = sizes.get(szb)
        if size is None:
            size = _ok_size(sizes, szb, max_payload if ntok == 3 else _RUN_MAX)
            if size is None:
                return i
        payloads = pieces[i + 1 : j : 2]
        lens = list(map(len, payloads))
        if lens.count(size) != len(lens):
            # A payload of another size (one holding a CRLF, say): the run ends before it.
            k = 0
            while lens[k] == size:
                k += 1
            if k < _BULK_MIN:
                return i
            del payloads[k:]
        self._run_i = i
        if ntok == 3:
            ok = run(self.handler, toks[1], reply, szb, size, payloads)
        else:
            ok = run(self.handler, toks[1], toks[2], reply, szb, size, payloads)
        if not ok:
            self._declined = x
            self._declines = 0
            return i
        # Counted here: the pairs before the run too, and _split_run counts from its end.
        self._run_counts(pieces, self._run_seg, i)
        n = len(payloads)
        self.in_msgs += n
        self.in_bytes += n * size
        if self._taken:
            self._taken.append((i, i + 2 * n, n * (len(x) + size + 4)))  # type: ignore[union-attr]
        else:
            self._taken = [(i, i + 2 * n, n * (len(x) + size + 4))]
        i += 2 * n
        self._run_seg = i
        return i

    def _parse_route(self, buf: bytes) -> None:
        """The route loop, with a fast path for `RMSG account subject [reply] size\r\n`."""
        n = len(buf)
        pos = 0
        nm = nb = 0
        mv: memoryview | None = None
        on_rmsg = self._on_rmsg
        lim = self.max_control_line * 16 + 7
        match = _RMSG_LINE.match
        sizes = _SIZES
        if (self._fast and buf.startswith(b"RMSG ")
                and (min(n, _SAMPLE) < _RUN_AVG * (buf.count(b"\nRMSG ", 0, _SAMPLE) + 1)
                     or (self._on_rmsg_run is not None and self._run_ahead(buf)))):
            pos = self._split_run(buf, self._rmsg_pairs)
            if self._state == _PAYLOAD:
                pos = self._take_payload(buf, pos, n)
            if pos >= n:
                return
        try:
            while pos < n:
                if self._fast:
                    m = match(buf, pos)
                    if m is not None:
                        start = m.end()
                        account, subject, reply, szb = m.groups()
                        if reply != b"|" and reply != b"+" and start - pos <= lim:
                            size = sizes.get(szb)
                            if size is None:
                                size = _size_of(szb)
                            stop = start + size + 2
                            if stop > n:
                                self._pa = (OP_RMSG, account, subject, reply, None, szb, size)
                                self._begin_payload(buf, start, n, size)
                                return
                            if buf[stop - 2 : stop] != b"\r\n":
                                raise unknown_op("bad payload end")
                            if size < _VIEW_MIN:
                                on_rmsg(account, subject, reply, None, szb, buf[start:stop])
                            else:
                                if mv is None:
                                    mv = memoryview(buf)
                                on_rmsg(account, subject, reply, None, szb, mv[start:stop])
                            nm += 1
                            nb += size
                            pos = stop
                            continue
                eol = buf.find(b"\n", pos)
                if eol < 0:
                    self._partial(buf, pos, n)
                    return
                self._slow_line(buf, pos, eol)
                pos = self._after_line
                if self._state == _PAYLOAD:
                    pos = self._take_payload(buf, pos, n)
        finally:
            self.in_msgs += nm
            self.in_bytes += nb

    # -- payloads ---------------------------------------------------------------------

    def _take_payload(self, buf: bytes, start: int, n: int) -> int:
        """Deliver the pending op's payload if it is all in `buf`; return the next position."""
        size = self._need - 2
        stop = start + size
        if stop + 2 <= n:
            if buf[stop] != 13 or buf[stop + 1] != 10:
                raise unknown_op("bad payload end")
            self._state = _START
            msg = memoryview(buf)[start : stop + 2] if size >= _VIEW_MIN else buf[start : stop + 2]
            self._dispatch_msg(msg)
            return stop + 2
        self._begin_payload(buf, start, n, size)
        return n

    def _begin_payload(self, buf: bytes, start: int, n: int, size: int) -> None:
        self._state = _PAYLOAD
        self._need = size + 2
        rest = buf[start:n]
        self._chunks = [rest] if rest else []
        self._have = len(rest)
        # A short pending tail that already proves the payload end is wrong fails now.
        if self._have > size and buf[start + size] != 13:
            raise unknown_op("bad payload end")

    def _continue_payload(self, data: bytes) -> bytes:
        """Collect payload bytes across reads; returns what is left of `data` afterwards."""
        need = self._need - self._have
        if len(data) < need:
            # A CR that should end the payload and is not there fails now, as in
            # nats-server (MSG_END_R), without waiting for the next read.
            cr = self._need - 2 - self._have
            if 0 <= cr < len(data) and data[cr] != 13:
                raise unknown_op("bad payload end")
            self._chunks.append(data)
            self._have += len(data)
            return b""
        self._chunks.append(data[:need])
        msg = b"".join(self._chunks)
        self._chunks = []
        self._have = 0
        self._state = _START
        if msg[-2:] != b"\r\n":
            raise unknown_op("bad payload end")
        self._dispatch_msg(msg)
        return data[need:]

    def _dispatch_msg(self, msg: Any) -> None:
        pa = self._pa
        self._pa = ()
        op = pa[0]
        self.in_msgs += 1
        self.in_bytes += len(msg) - 2
        h = self.handler
        if op == OP_PUB:
            h.on_pub(pa[1], pa[2], pa[3], msg)
        elif op == OP_HPUB:
            h.on_hpub(pa[1], pa[2], pa[3], pa[4], pa[5], msg)
        elif op == OP_RMSG or op == OP_LMSG:
            self._on_rmsg(pa[1], pa[2], pa[3], pa[4], pa[5], msg)
        elif op == OP_HMSG:
            h.on_rhmsg(pa[1], pa[2], pa[3], pa[4], pa[5], pa[6], pa[7], msg)

    # -- the general path -------------------------------------------------------------

    def _op_at(self, buf: bytes, pos: int, end: int, complete: bool) -> tuple[int, str, int] | None:
        """Recognise the op at `pos`: (code, follow rule, index after the name).

        Returns None when `buf[pos:end]` is a proper prefix of an op name and more bytes may
        complete it (`complete` False). Raises for a byte no op can continue with.
        """
        first = buf[pos : pos + 1]
        if self._await_connect and first not in (b"C", b"c"):
            # nats-server lets a client with no_auth_user start without CONNECT.
            allow = getattr(self.handler, "on_op_before_connect", None)
            if allow is None or not allow():
                raise ProtocolError(wire.E_AUTH_VIOLATION, "Authentication Failure")
        head = buf[pos : min(end, pos + 8)].upper()
        lh = len(head)
        prefix_of_some = False
        for name, code, follow in self._ops:
            ln = len(name)
            if lh >= ln:
                if head.startswith(name):
                    return code, follow, pos + ln
            elif name.startswith(head):
                prefix_of_some = True
        if prefix_of_some and not complete:
            return None
        raise unknown_op(f"parser ERROR, proto={bytes(buf[pos:pos + 32])!r}")

    def _arg_bounds(self, buf: bytes, follow: str, i: int, eol: int) -> int:
        """Index where the argument starts, checking the byte after the op name."""
        if follow == "space":
            c = buf[i : i + 1]
            if c != b" " and c != b"\t":
                raise unknown_op("no space after op")
            i += 1
        while i < eol and buf[i] in (32, 9):
            i += 1
        return i

    def _slow_line(self, buf: bytes, pos: int, eol: int) -> None:
        """Parse the complete line buf[pos:eol] (eol is the index of its newline)."""
        found = self._op_at(buf, pos, eol, True)
        assert found is not None
        code, follow, i = found
        if follow == "skip":
            self._after_line = eol + 1
            self._dispatch_simple(code)
            return
        a = self._arg_bounds(buf, follow, i, eol)
        if a == eol:
            # The newline itself becomes the argument's first byte (nats-server's state
            # machine does this), so the argument runs to the next newline.
            nxt = buf.find(b"\n", eol + 1)
            if nxt < 0:
                self._check_partial_arg(buf, a, len(buf))
                self._pending = buf[pos:]
                self._after_line = len(buf)
                return
            eol = nxt
        arg = buf[a:eol]
        if b"\r" in arg[1:]:
            arg = arg[:-1]
        self._after_line = eol + 1
        limit = self.max_control_line if self.kind == CLIENT else self.max_control_line * 16
        if len(arg) > limit:
            raise ProtocolError(wire.E_MAX_CONTROL_LINE, "Maximum Control Line Exceeded")
        self._dispatch_arg(code, arg)

    def _check_partial_arg(self, buf: bytes, a: int, n: int) -> None:
        """The limit on an argument whose newline has not arrived yet (buf[a:n] so far).

        A trailing CR is not counted: it belongs to the CRLF, as in nats-server, so a
        4096-byte argument whose LF comes in the next read still passes."""
        limit = self.max_control_line if self.kind == CLIENT else self.max_control_line * 16
        length = n - a
        if length and buf[n - 1] == 13:
            length -= 1
        if length > limit:
            raise ProtocolError(wire.E_MAX_CONTROL_LINE, "Maximum Control Line Exceeded")

    def _partial(self, buf: bytes, pos: int, n: int) -> None:
        """No newline after `pos`: check what we can now, keep the rest for the next read."""
        found = self._op_at(buf, pos, n, False)
        if found is not None:
            code, follow, i = found
            if follow == "skip":
                # Everything up to the newline is ignored: no need to keep it.
                self._state = _SKIP
                self._pa = (code,)
                return
            if i < n:
                if follow == "space" and buf[i] not in (32, 9):
                    raise unknown_op("no space after op")
                a = i + (1 if follow == "space" else 0)
                while a < n and buf[a] in (32, 9):
                    a += 1
                self._check_partial_arg(buf, a, n)
        self._pending = buf[pos:] if pos else buf

    def _finish_skip(self) -> None:
        code = self._pa[0]
        self._pa = ()
        self._dispatch_simple(code)

    def _dispatch_simple(self, code: int) -> None:
        h = self.handler
        if code == OP_PING:
            h.on_ping()
        elif code == OP_PONG:
            h.on_pong()
        elif self._on_ok is not None:
            self._on_ok()  # +OK: nothing to do

    def _check_pedantic(self, subject: bytes) -> None:
        for t in subject.split(b"."):
            if not t or t == b"*" or t == b">":
                self.handler.send_err(wire.E_INVALID_PUB_SUBJECT)
                return

    def _dispatch_arg(self, code: int, arg: bytes) -> None:
        h = self.handler
        if code == OP_PUB:
            self._pub_args(arg)
        elif code == OP_HPUB:
            self._hpub_args(arg)
        elif code == OP_SUB:
            args = split_args(arg)
            if len(args) == 2:
                h.on_sub(args[0], None, args[1])
            elif len(args) == 3:
                h.on_sub(args[0], args[1], args[2])
            else:
                raise ProtocolError(None, "Protocol Violation", f"processSub Parse Error: {arg!r}")
        elif code == OP_UNSUB:
            args = split_args(arg)
            if len(args) == 1:
                h.on_unsub(args[0], -1)
            elif len(args) == 2:
                h.on_unsub(args[0], parse_size(args[1]))
            else:
                raise ProtocolError(None, "Protocol Violation", f"processUnsub Parse Error: {arg!r}")
        elif code == OP_CONNECT:
            h.on_connect(arg)
        elif code == OP_INFO:
            h.on_info(arg)
        elif code == OP_ERR:
            h.on_err(arg)
        elif code == OP_RSUB or code == OP_LSUB:
            h.on_rs_plus(arg, code == OP_LSUB)
        elif code == OP_RUNSUB or code == OP_LUNSUB:
            h.on_rs_minus(arg, code == OP_LUNSUB)
        elif code == OP_RMSG or code == OP_LMSG or code == OP_HMSG:
            self._pa = self._leaf_args(code, arg) if self.kind == LEAF else self._routed_args(code, arg)
            self._state = _PAYLOAD
            self._need = self._pa[-1] + 2
        elif code == OP_ASUB or code == OP_AUNSUB:
            # Gateway interest; never sent to a route that is not a gateway.
            if self._on_account_sub is not None:
                self._on_account_sub(code == OP_ASUB, arg)

    def _pub_args(self, arg: bytes) -> None:
        args = split_pub_args(arg)
        if len(args) == 2:
            subject, szb = args
            reply = None
        elif len(args) == 3:
            subject, reply, szb = args
        else:
            raise ProtocolError(None, "Protocol Violation", f"processPub Parse Error: {arg!r}")
        size = parse_size(szb)
        if size < 0:
            raise ProtocolError(None, "Protocol Violation", f"processPub Bad or Missing Size: {arg!r}")
        self._check_payload(size)
        if self.pedantic:
            self._check_pedantic(subject)
        self._pa = (OP_PUB, subject, reply, szb)
        self._state = _PAYLOAD
        self._need = size + 2

    def _hpub_args(self, arg: bytes) -> None:
        if not self.headers:
            raise ProtocolError(None, "Protocol Violation", "message headers not supported")
        args = split_pub_args(arg)
        if len(args) == 3:
            subject, hdb, szb = args
            reply = None
        elif len(args) == 4:
            subject, reply, hdb, szb = args
        else:
            raise ProtocolError(None, "Protocol Violation", f"processHeaderPub Parse Error: {arg!r}")
        hdr = parse_size(hdb)
        size = parse_size(szb)
        if hdr < 0 or size < 0 or hdr > size:
            raise ProtocolError(None, "Protocol Violation", f"processHeaderPub Bad Sizes: {arg!r}")
        self._check_payload(size)
        if self.pedantic:
            self._check_pedantic(subject)
        self._pa = (OP_HPUB, subject, reply, hdr, hdb, szb)
        self._state = _PAYLOAD
        self._need = size + 2

    def _check_payload(self, size: int) -> None:
        if 0 <= self.max_payload < size:
            raise ProtocolError(
                wire.E_MAX_PAYLOAD,
                "Maximum Message Payload Exceeded",
                f"maximum payload exceeded: {size} vs {self.max_payload}",
            )

    def _leaf_args(self, code: int, arg: bytes) -> tuple[Any, ...]:
        """LMSG/HMSG on a leaf connection (nats-server processLeafMsgArgs and
        processLeafHeaderMsgArgs): `subject [reply | + reply q.. | | q..] [hdr] size`, in
        the tuple _routed_args makes, with an empty account (the connection's is meant)."""
        args = split_args(arg)
        what = "processLeafHeaderMsgArgs" if code == OP_HMSG else "processLeafMsgArgs"
        hdr = -1
        hdb = b""
        nsize = 2 if code == OP_HMSG else 1
        if len(args) < nsize + 1:
            raise ProtocolError(None, "Protocol Violation", f"{what} Parse Error: {arg!r}")
        szb = args[-1]
        if code == OP_HMSG:
            hdb = args[-2]
            hdr = parse_size(hdb)
        body = args[:-nsize]
        reply: bytes | None = None
        queues: list[bytes] | None = None
        if len(body) == 2:
            reply = body[1]
        elif len(body) > 2:
            ind = body[1]
            if ind == b"+":
                reply = body[2]
                queues = body[3:]
            elif ind == b"|":
                queues = body[2:]
            else:
                raise ProtocolError(None, "Protocol Violation", f"{what} Bad or Missing Reply Indicator: {arg!r}")
        size = parse_size(szb)
        if size < 0 or (code == OP_HMSG and (hdr < 0 or hdr > size)):
            raise ProtocolError(None, "Protocol Violation", f"{what} Bad or Missing Size: {arg!r}")
        if 0 <= self.max_payload < size:  # the leaf's limit, set as it registers (-1 before)
            self._check_payload(size)
        if code == OP_HMSG:
            return (OP_HMSG, b"", body[0], reply, queues, hdr, hdb, szb, size)
        return (OP_LMSG, b"", body[0], reply, queues, szb, size)

    def _routed_args(self, code: int, arg: bytes) -> tuple[Any, ...]:
        """RMSG/HMSG/LMSG arguments: (code, account, subject, reply, queues, [hdr, hdb,] szb, size)."""
        args = split_args(arg)
        if code == OP_LMSG:
            # LMSG carries the origin cluster first; we never ask for it (no lnoc), drop it.
            args = args[1:]
        hdr = -1
        hdb = b""
        if code == OP_HMSG:
            if len(args) < 4:
                raise ProtocolError(None, "Protocol Violation", f"processRoutedHeaderMsgArgs Parse Error: {arg!r}")
            hdb = args[-2]
            hdr = parse_size(hdb)
            body = args[:-2]
        else:
            if len(args) < 3:
                raise ProtocolError(None, "Protocol Violation", f"processRoutedMsgArgs Parse Error: {arg!r}")
            body = args[:-1]
        szb = args[-1]
        lb = len(body)
        queues: list[bytes] | None = None
        reply: bytes | None = None
        if lb == 3:
            reply = body[2]
        elif lb > 3:
            ind = body[2]
            if ind == b"+":
                reply = body[3]
                queues = body[4:]
            elif ind == b"|":
                queues = body[3:]
            else:
                raise ProtocolError(None, "Protocol Violation", f"Bad or Missing Reply Indicator: {arg!r}")
        size = parse_size(szb)
        if size < 0 or (code == OP_HMSG and (hdr < 0 or hdr > size)):
            raise ProtocolError(None, "Protocol Violation", f"Bad or Missing Size: {arg!r}")
        if code == OP_HMSG:
            return (OP_HMSG, body[0], body[1], reply, queues, hdr, hdb, szb, size)
        return (code, body[0], body[1], reply, queues, szb, size)
