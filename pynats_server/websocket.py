"""WebSocket clients, sans-IO: the upgrade's checks and answers, frames in, frames out.

A WebSocket client is an ordinary client whose bytes travel in binary frames: the NATS
bytes that come out of its frames go to the same parser as a TCP client's, and what the
server writes to it is framed at flush time (one frame per flush, as nats-server frames
its writes). The frame codec and permessage-deflate are the `websockets` library's
sans-IO layer (docs/DESIGN.md says why this one); the HTTP request is read by h11, as on
the monitoring port. The rules and the words of the answers are nats-server's
(websocket.go): which header is checked in which order, the status of each refusal, the
close status for each reason a connection closes, the texts of the protocol errors.

wsconn.py is the asyncio glue.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import PayloadTooBig
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side
from websockets.utils import accept_key

from . import netutil
from .options import WebsocketOptions

# Close status codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TLS_HANDSHAKE = 1015

MAX_CONTROL_PAYLOAD = 125
BROWSER_FRAME_SIZE = 4096  # nats-server cuts what it sends to browsers into frames of this size
COMPRESS_THRESHOLD = 64  # a flush this small (or smaller) goes out uncompressed
MAX_HEAD = 1 << 20  # Go's http.DefaultMaxHeaderBytes

_PMC_RESPONSE = b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed",
                500: "Internal Server Error"}  # fmt: skip

# The close status nats-server sends for each reason a client connection closes.
_CLOSE_STATUS = {
    "Client Closed": CLOSE_NORMAL,
    "Authentication Timeout": CLOSE_POLICY_VIOLATION,
    "Authentication Failure": CLOSE_POLICY_VIOLATION,
    "Slow Consumer (Pending Bytes)": CLOSE_POLICY_VIOLATION,
    "Slow Consumer (Write Deadline)": CLOSE_POLICY_VIOLATION,
    "Maximum Account Connections Exceeded": CLOSE_POLICY_VIOLATION,
    "Maximum Connections Exceeded": CLOSE_POLICY_VIOLATION,
    "Maximum Control Line Exceeded": CLOSE_POLICY_VIOLATION,
    "Maximum Subscriptions Exceeded": CLOSE_POLICY_VIOLATION,
    "Missing Account": CLOSE_POLICY_VIOLATION,
    "Authentication Expired": CLOSE_POLICY_VIOLATION,
    "Credentials Revoked": CLOSE_POLICY_VIOLATION,
    "TLS Handshake Failure": CLOSE_TLS_HANDSHAKE,
    "Parse Error": CLOSE_PROTOCOL_ERROR,
    "Protocol Violation": CLOSE_PROTOCOL_ERROR,
    "Bad Client Protocol Version": CLOSE_PROTOCOL_ERROR,
    "Maximum Message Payload Exceeded": CLOSE_TOO_BIG,
    "Write Error": CLOSE_GOING_AWAY,
    "Read Error": CLOSE_GOING_AWAY,
    "Stale Connection": CLOSE_GOING_AWAY,
    "Server Shutdown": CLOSE_GOING_AWAY,
}

# websockets' words for a bad frame -> nats-server's (what its close frame says).
_GO_WORDS = {
    "incorrect masking": "mask bit missing",
    "control frame too long": f"control frame length bigger than maximum allowed of {MAX_CONTROL_PAYLOAD} bytes",
    "fragmented control frame": "control frame does not have final bit set",
    "expected a continuation frame": "new message started before final frame for previous message was received",
    "unexpected continuation frame": "invalid continuation frame",
    "RSV1 bit set in continuation frame": "invalid continuation frame",
    "close frame too short": "close frame payload cannot be 1 byte",
}


def split_origin(scheme_https: bool, hostport: str) -> tuple[str, str]:
    """nats-server's wsGetHostAndPort: (lower-case host, port), the scheme's port when none;
    ValueError when the host:port does not split."""
    if hostport.startswith("[") or hostport.count(":") == 1:
        host, port = netutil.go_split_host_port(hostport)
    elif ":" not in hostport:
        host, port = hostport, ("443" if scheme_https else "80")
    else:
        raise ValueError(f"address {hostport}: too many colons in address")
    return host.lower(), port


def close_status(reason: str) -> int:
    return _CLOSE_STATUS.get(reason, CLOSE_INTERNAL_ERROR)


def close_payload(status: int, body: str) -> bytes:
    """A close frame's payload: the status, then the text (cut to fit, ending in "...")."""
    raw = body.encode()
    if len(raw) > MAX_CONTROL_PAYLOAD - 2:
        raw = raw[: MAX_CONTROL_PAYLOAD - 5] + b"..."
    return status.to_bytes(2, "big") + raw


def control_frame(opcode: Opcode, payload: bytes) -> bytes:
    return Frame(opcode, payload).serialize(mask=False)


def close_frame(status: int, body: str) -> bytes:
    return control_frame(Opcode.CLOSE, close_payload(status, body))


def max_message_size(max_payload: int) -> int:
    """nats-server's wsMaxMessageSize: 8 max payloads, at most 64 MiB."""
    return min((max_payload if max_payload > 0 else 1 << 20) * 8, 64 << 20)


# -- the upgrade --------------------------------------------------------------------------


@dataclass
class Upgrade:
    """What an accepted upgrade decided for the connection."""

    key: str
    compress: bool = False
    no_masking: bool = False
    browser: bool = False
    no_compressed_fragments: bool = False  # Safari: compressed messages in one frame
    client_ip: str = ""  # X-Forwarded-For, when it is an IP address
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class Refusal:
    status: int
    reason: str  # nats-server's words, logged as "<addr> - websocket handshake error: <reason>"


class Origins:
    """The same_origin / allowed_origins rules (nats-server's checkOrigin)."""

    def __init__(self, wo: WebsocketOptions) -> None:
        self.same = wo.same_origin
        self.allowed: dict[str, list[tuple[str, str]]] = {}
        for ao in wo.allowed_origins:
            u = urlsplit(ao)
            try:
                host, port = split_origin(u.scheme == "https", u.netloc)
            except ValueError:
                continue  # refused by websocket_config.validate
            self.allowed.setdefault(host, []).append((u.scheme, port))

    def check(self, origin: str, request_host: str, tls: bool) -> str:
        """"" when allowed, else why not (nats-server's words)."""
        if not self.same and not self.allowed or not origin:
            return ""
        if not origin.startswith("/") and ":" not in origin:
            return f'parse "{origin}": invalid URI for request'
        u = urlsplit(origin)
        try:
            oh, op = split_origin(u.scheme == "https", u.netloc)
        except ValueError as e:
            return str(e)
        if self.same:
            try:
                rh, rp = split_origin(tls, request_host)
            except ValueError as e:
                return str(e)
            if oh != rh or op != rp or u.scheme.lower() != ("https" if tls else "http"):
                return "not same origin"
        if self.allowed and not any(s == u.scheme and p == op for s, p in self.allowed.get(oh, ())):
            return "not in the allowed list"
        return ""


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in headers if k == name]


def _first(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for k, v in headers:
        if k == name:
            return v.decode("latin-1")
    return ""


def _has_token(headers: list[tuple[bytes, bytes]], name: bytes, token: str) -> bool:
    """nats-server's wsHeaderContains: a comma-separated value equal to `token` (any case)."""
    return any(t.strip(" \t").lower() == token for v in _values(headers, name) for t in v.split(","))


def _pmc_offered(headers: list[tuple[bytes, bytes]]) -> bool:
    for v in _values(headers, b"sec-websocket-extensions"):
        for ext in v.split(","):
            for p in ext.split(";"):
                if p.strip(" \t").lower() == "permessage-deflate":
                    return True
    return False


def _cookies(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in _values(headers, b"cookie"):
        for part in v.split(";"):
            name, eq, val = part.strip().partition("=")
            if eq and name:
                out.setdefault(name, val.strip('"'))
    return out


def check_upgrade(method: bytes, headers: list[tuple[bytes, bytes]], *, origins: Origins,
                  compression: bool, tls: bool) -> Upgrade | Refusal:
    """nats-server's wsUpgrade checks, in its order (RFC 6455 section 4.2.1). `headers` are
    h11's: lower-case names."""
    if method != b"GET":
        return Refusal(405, "request method must be GET")
    host = _first(headers, b"host")
    if not host:
        return Refusal(400, "'Host' missing in request")
    if not _has_token(headers, b"upgrade", "websocket"):
        return Refusal(400, "invalid value for header 'Upgrade'")
    if not _has_token(headers, b"connection", "upgrade"):
        return Refusal(400, "invalid value for header 'Connection'")
    key = _first(headers, b"sec-websocket-key")
    if not key:
        return Refusal(400, "key missing")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError(key)
    except (binascii.Error, ValueError):
        return Refusal(400, "invalid websocket key")
    if not _has_token(headers, b"sec-websocket-version", "13"):
        return Refusal(400, "invalid version")
    origin = _first(headers, b"origin") or _first(headers, b"sec-websocket-origin")
    why = origins.check(origin, host, tls)
    if why:
        return Refusal(403, f"origin not allowed: {why}")
    up = Upgrade(key=key, compress=compression and _pmc_offered(headers))
    up.no_masking = _first(headers, b"nats-no-masking") == "true"
    forwarded = _values(headers, b"x-forwarded-for")
    if forwarded:
        try:
            ipaddress.ip_address(forwarded[0])
            up.client_ip = forwarded[0]
        except ValueError:
            pass
    ua = _first(headers, b"user-agent")
    if ua.startswith("Mozilla/"):
        up.browser = True
        up.no_compressed_fragments = up.compress and "Version/" in ua and "Safari/" in ua
    up.cookies = _cookies(headers)
    return up


def switching_protocols(up: Upgrade, extra_headers: dict[str, str]) -> bytes:
    """The 101 answer, byte for byte as nats-server writes it."""
    out = [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Accept: ", accept_key(up.key).encode(), b"\r\n"]  # fmt: skip
    if up.compress:
        out.append(_PMC_RESPONSE)
    if up.no_masking:
        out.append(b"Nats-No-Masking: true\r\n")
    for k, v in extra_headers.items():
        out.append(f"{k}: {v}\r\n".encode())
    out.append(b"\r\n")
    return b"".join(out)


def http_error(status: int, http_version: bytes = b"1.1") -> bytes:
    """Go's http.Error answer to a refused upgrade (with nats-server's version header)."""
    text = _STATUS_TEXT.get(status, "Bad Request")
    body = f"{text}\n".encode()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    return (f"HTTP/{http_version.decode()} {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\nDate: {date}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip


def malformed_request(status: int) -> bytes:
    """Go's net/http answer to a request it cannot read (then it closes)."""
    text = {431: "Request Header Fields Too Large"}.get(status, "Bad Request")
    return (f"HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\n\r\n{status} {text}").encode()


# -- frames -------------------------------------------------------------------------------


def _deflate() -> PerMessageDeflate:
    # No context takeover either way (what the 101 answer says), Go's BestSpeed level.
    return PerMessageDeflate(True, True, 15, 15, {"level": 1})


class FrameReader:
    """Client frames in, NATS bytes out. `feed` returns the payloads of the data frames
    (text frames too: nats-server reads them as binary ones); control frames are answered
    in `replies` (a pong for a ping, the close echo); `closed` is set once the client sent
    a close frame, `error` (nats-server's words) when a frame broke the rules: `replies` is
    then the protocol error close frame saying so (nats-server then logs "read error: <error>"
    and drops the connection as a Read Error)."""

    def __init__(self, up: Upgrade, max_payload: int) -> None:
        self.compress = up.compress
        self.proto = Protocol(Side.SERVER, max_size=max_message_size(max_payload))
        if up.compress:
            self.proto.extensions = [_deflate()]
        self.masked = not up.no_masking
        self.closed = False
        self.error = ""

    def feed(self, data: bytes) -> tuple[list[Any], bytes]:
        p = self.proto
        if not self.masked:
            data = _mask_for_websockets(data, self)
        p.receive_data(data)
        payloads: list[Any] = []
        for f in p.events_received():
            if not isinstance(f, Frame):
                continue
            op = f.opcode
            if op is Opcode.BINARY or op is Opcode.TEXT or op is Opcode.CONT:
                if f.data:
                    payloads.append(f.data)
            elif op is Opcode.CLOSE:
                self.closed = True
        replies = b"".join(p.data_to_send())
        exc = p.parser_exc
        if exc is not None and not self.closed and not self.error:
            if isinstance(exc, UnicodeDecodeError):
                # A close frame whose text is not UTF-8: nats-server answers 1007 and the
                # connection ends as closed by the client.
                self.closed = True
                return payloads, close_frame(CLOSE_INVALID_DATA, "invalid utf8 body in close frame")
            if isinstance(exc, PayloadTooBig):
                self.error, replies = "maximum payload exceeded", b""
            else:
                # nats-server queues this close frame, then closes the connection as a Read
                # Error without flushing: whether the frame gets out first is a race there
                # (both happen against 2.14). pynats-server always sends it.
                self.error = self._go_error(exc)
                replies = close_frame(CLOSE_PROTOCOL_ERROR, self.error)
        return payloads, replies

    def _go_error(self, exc: Exception) -> str:
        text = str(exc)
        if text == "reserved bits must be 0":
            text = ("RSV2 and RSV3 must be clear" if self.compress
                    else "compressed frame received without negotiated permessage-deflate")  # fmt: skip
        elif text == "invalid status code":
            text = f"invalid close status code {_close_code(exc)}".rstrip()
        elif text == "invalid opcode":
            text = f"unknown opcode {str(exc.__cause__).split(' ')[0]}"
        else:
            text = _GO_WORDS.get(text, text)
        return text


def _close_code(exc: Exception) -> str:
    """The refused code of a close frame: websockets' Close.check raised, on the Close."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    code = getattr(tb.tb_frame.f_locals.get("self"), "code", "") if tb is not None else ""
    return str(code)


def _mask_for_websockets(data: bytes, r: FrameReader) -> bytes:
    """Nats-No-Masking clients send unmasked frames; websockets' server side wants masks.
    Such clients are rare (nats-server's own leafnodes and tests), so rather than a second
    codec, each unmasked frame header gets a zero mask (XOR with zero changes nothing)."""
    buf = getattr(r, "_unmasked", b"") + data
    out = []
    pos = 0
    n = len(buf)
    while True:
        if pos + 2 > n:
            break
        b1 = buf[pos + 1]
        ln = b1 & 0x7F
        hl = 2 + (2 if ln == 126 else 8 if ln == 127 else 0)
        if pos + hl > n:
            break
        if ln == 126:
            ln = int.from_bytes(buf[pos + 2 : pos + 4], "big")
        elif ln == 127:
            ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
        if b1 & 0x80:
            # Masked anyway: hand the rest over as it is.
            out.append(buf[pos:])
            pos = n
            break
        if pos + hl + ln > n:
            break
        out.append(bytes([buf[pos], b1 | 0x80]) + buf[pos + 2 : pos + hl] + b"\0\0\0\0" + buf[pos + hl : pos + hl + ln])
        pos += hl + ln
    r._unmasked = buf[pos:]  # type: ignore[attr-defined]
    return b"".join(out)


class FrameWriter:
    """NATS bytes out as server frames, as nats-server's wsCollapsePtoNB makes them: all
    that a flush writes in one binary frame; compressed (permessage-deflate, a fresh
    context each time) when negotiated and over COMPRESS_THRESHOLD bytes; for browsers, in
    frames of at most BROWSER_FRAME_SIZE bytes (uncompressed data as separate messages,
    compressed data as the fragments of one message, but for Safari)."""

    def __init__(self, up: Upgrade) -> None:
        self.deflate = _deflate() if up.compress else None
        self.browser = up.browser
        self.fragment_compressed = up.browser and not up.no_compressed_fragments

    def frames(self, data: Any) -> bytes:
        n = len(data)
        if self.deflate is not None and n > COMPRESS_THRESHOLD:
            comp = self.deflate.encode(Frame(Opcode.BINARY, data)).data
            if self.fragment_compressed and len(comp) > BROWSER_FRAME_SIZE:
                return _fragments(comp)
            return _with_rsv1(Frame(Opcode.BINARY, comp).serialize(mask=False))
        if self.browser and n > BROWSER_FRAME_SIZE:
            mv = memoryview(data)
            return b"".join(
                Frame(Opcode.BINARY, mv[i : i + BROWSER_FRAME_SIZE]).serialize(mask=False)
                for i in range(0, n, BROWSER_FRAME_SIZE)
            )
        if n < 126:
            return bytes((0x82, n)) + data
        return Frame(Opcode.BINARY, data).serialize(mask=False)


def _with_rsv1(frame: bytes) -> bytes:
    """The frame marked compressed (RSV1: permessage-deflate's bit on a message's first frame)."""
    return bytes((frame[0] | 0x40,)) + frame[1:]


def _fragments(comp: Any) -> bytes:
    """One compressed message in fragments of BROWSER_FRAME_SIZE (RSV1 on the first only)."""
    mv = memoryview(comp)
    size = BROWSER_FRAME_SIZE
    last = (len(comp) - 1) // size * size
    out = []
    for i in range(0, len(comp), size):
        f = Frame(Opcode.BINARY if i == 0 else Opcode.CONT, mv[i : i + size], fin=i == last).serialize(mask=False)
        out.append(_with_rsv1(f) if i == 0 else f)
    return b"".join(out)

