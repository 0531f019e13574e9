"""Encoders for what the server writes, and the exact -ERR texts nats-server sends."""

from __future__ import annotations

import json
from typing import Any

CRLF = b"\r\n"
PING = b"PING\r\n"
PONG = b"PONG\r\n"
OK = b"+OK\r\n"

# -ERR texts, as nats-server sends them.
E_UNKNOWN_OP = "Unknown Protocol Operation"
E_AUTH_VIOLATION = "Authorization Violation"
E_AUTH_TIMEOUT = "Authentication Timeout"
E_MAX_PAYLOAD = "Maximum Payload Violation"
E_MAX_CONTROL_LINE = "maximum control line exceeded"
E_MAX_CONNECTIONS = "maximum connections exceeded"
E_MAX_SUBSCRIPTIONS = "maximum subscriptions exceeded"
E_BAD_CLIENT_PROTOCOL = "invalid client protocol"
E_NO_RESPONDERS_NEEDS_HEADERS = "no responders requires headers support"
E_INVALID_SUBJECT = "Invalid Subject"
E_INVALID_PUB_SUBJECT = "Invalid Publish Subject"
E_STALE_CONNECTION = "Stale Connection"
E_ROUTE_PORT = "attempted to connect to route port"
E_INVALID_SUBSCRIPTION = "Invalid Subscription"


def err(text: str) -> bytes:
    return b"-ERR '" + text.encode() + b"'\r\n"


def permissions_violation_pub(subject: bytes) -> str:
    return f'Permissions Violation for Publish to "{subject.decode(errors="replace")}"'


def cluster_name_mismatch(theirs: str, ours: str) -> str:
    return f'Rejecting connection, cluster name "{theirs}" does not match "{ours}"'


def go_json(obj: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, with <, > and & escaped."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if "<" in s or ">" in s or "&" in s:
        s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return s.encode()


def info(fields: dict[str, Any]) -> bytes:
    """`INFO {...} \\r\\n`: nats-server puts a space before the CRLF."""
    return b"INFO " + go_json(fields) + b" \r\n"


def msg_prefix(subject: bytes, sid: bytes) -> bytes:
    """The per subscriber part of a MSG control line, cached by the caller."""
    return b"MSG " + subject + b" " + sid + b" "


def msg_tail(reply: bytes | None, szb: bytes) -> bytes:
    """The per message part of a MSG control line: `[reply ]size\\r\\n`."""
    if reply is not None:
        return reply + b" " + szb + b"\r\n"
    return szb + b"\r\n"


def hmsg_line(subject: bytes, sid: bytes, reply: bytes | None, hdb: bytes, szb: bytes) -> bytes:
    if reply is not None:
        return b"HMSG %s %s %s %s %s\r\n" % (subject, sid, reply, hdb, szb)
    return b"HMSG %s %s %s %s\r\n" % (subject, sid, hdb, szb)


def no_responders_hmsg(reply: bytes, sid: bytes, subject: bytes) -> bytes:
    """The 503 status message nats-server 2.14 sends back when a request has no responders."""
    hdr = b"NATS/1.0 503\r\nNats-Subject: " + subject + b"\r\n\r\n"
    n = str(len(hdr)).encode()
    return b"HMSG %s %s %s %s\r\n%s\r\n" % (reply, sid, n, n, hdr)


def get_header(block: bytes, key: str) -> str:
    """The value of header `key` (case-insensitive) in a `NATS/1.0` header block, or ""."""
    k = key.lower().encode() + b":"
    for line in block.split(b"\r\n")[1:]:
        if line.lower().startswith(k):
            return line[len(k):].strip().decode(errors="replace")
    return ""


def set_header(hdr: int, msg: Any, key: bytes, value: bytes) -> tuple[int, bytes]:
    """A message with header `key` set to `value` (a header block is added when there is
    none): the new header length and message (payload and CRLF included)."""
    line = key + b": " + value + b"\r\n"
    if hdr < 0:
        block = b"NATS/1.0\r\n" + line + b"\r\n"
        return len(block), block + bytes(msg)
    head = bytes(msg[:hdr])
    lines = head[:-2].split(b"\r\n")  # status line, fields, then "" before the final CRLF
    prefix = key.lower() + b":"
    kept = [ln for ln in lines if ln and not ln.lower().startswith(prefix)]
    block = b"\r\n".join(kept) + b"\r\n" + line + b"\r\n"
    return len(block), block + bytes(msg[hdr:])


# Route protocol

def rs_plus(account: bytes, subject: bytes, queue: bytes | None = None, weight: int = 0) -> bytes:
    if queue:
        return b"RS+ %s %s %s %d\r\n" % (account, subject, queue, weight)
    return b"RS+ %s %s\r\n" % (account, subject)


def rs_minus(account: bytes, subject: bytes, queue: bytes | None = None) -> bytes:
    # Never a weight on RS-: nats-server closes the route on it.
    if queue:
        return b"RS- %s %s %s\r\n" % (account, subject, queue)
    return b"RS- %s %s\r\n" % (account, subject)


def rmsg_line(
    account: bytes,
    subject: bytes,
    reply: bytes | None,
    queues: list[bytes] | None,
    szb: bytes,
    hdb: bytes | None = None,
) -> bytes:
    """`RMSG acc subj [+ reply q.. | | q.. | reply] size` (or HMSG with the header size)."""
    parts = [b"HMSG" if hdb is not None else b"RMSG", account, subject]
    if queues:
        if reply:
            parts.append(b"+")
            parts.append(reply)
        else:
            parts.append(b"|")
        parts.extend(queues)
    elif reply:
        parts.append(reply)
    if hdb is not None:
        parts.append(hdb)
    parts.append(szb)
    return b" ".join(parts) + b"\r\n"


# The order of nats-server's Info struct fields, and those it omits when empty.
_INFO_ORDER = (
    "server_id", "server_name", "version", "proto", "git_commit", "go", "host", "port",
    "headers", "auth_required", "tls_required", "tls_verify", "tls_available", "max_payload",
    "jetstream", "ip", "client_id", "client_ip", "nonce", "cluster", "cluster_dynamic",
    "domain", "connect_urls", "ws_connect_urls", "ldm", "compression", "connect_info",
    "remote_account", "acc_is_sys", "api_lvl", "import", "export", "lnoc", "lnocu",
    "info_on_connect", "route_pool_size", "route_pool_idx", "route_account",
    "route_acc_add_reqid", "gossip_mode", "gateway", "gateway_urls", "gateway_url",
    "gateway_cmd", "gateway_cmd_payload", "gateway_nrp", "gateway_iom", "leafnode_urls",
    "xkey",
)
_INFO_ALWAYS = frozenset(
    ("server_id", "server_name", "version", "proto", "go", "host", "port", "headers", "max_payload")
)


def msg_trace(
    head: list[bytes], reply: bytes | None, queues: list[bytes] | None, hdb: bytes | None, szb: bytes
) -> str:
    """A routed message's line as nats-server traces it: `RMSG $G foo + reply q 2` (`head` is
    the op and the names before the subject's reply), `+ reply` or `|` whenever queues are
    given, even with no queue names after it."""
    parts = list(head)
    if queues is not None:
        parts += ([b"+", reply] if reply else [b"|"]) + list(queues)
    elif reply:
        parts.append(reply)
    if hdb is not None:
        parts.append(hdb)
    parts.append(szb)
    return bytes(b" ".join(parts)).decode(errors="replace")


def info_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` in nats-server's order, with empty omitempty fields left out."""
    out: dict[str, Any] = {}
    for k in _INFO_ORDER:
        if k in fields:
            v = fields[k]
            if k in _INFO_ALWAYS or v:
                out[k] = v
    return out
