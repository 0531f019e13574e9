"""Messages a consumer sends: a stored message to a delivery subject under its own subject.

nats-server routes a consumer's delivery on the delivery subject (a pull request's reply
inbox, a push consumer's deliver_subject) but writes the message's original subject in the
MSG line (`MSG foo 1 $JS.ACK... 2` to a subscriber of `_INBOX.x`). The subscription's cached
`MSG <subject> <sid> ` prefix is for the routed subject, so the line is written here.
Internal subscribers (imports) get the message on the delivery subject. Each queue group gets
it once. JetStream runs on one server, so routes are not involved.
"""

from __future__ import annotations

from random import random
from typing import Any

from ..subdeliver import auto_unsub


def _write(dirty: list[Any], sub: Any, subject: bytes, reply: bytes | None, hdr: bytes, payload: bytes) -> bool:
    d = sub.client
    pf = d.perm_filter
    if pf is not None and pf.denies_delivery(subject):
        return False
    sub.nm += 1
    if sub.max and not auto_unsub(sub):
        return False
    out = d.out
    if not out:
        dirty.append(d)
    if hdr and d.headers:
        hl = len(hdr)
        if reply:
            out.append(b"HMSG %s %s %s %d %d\r\n" % (subject, sub.sid, reply, hl, hl + len(payload)))
        else:
            out.append(b"HMSG %s %s %d %d\r\n" % (subject, sub.sid, hl, hl + len(payload)))
        out.append(b"")
        out.append(hdr + payload + b"\r\n")
    else:
        if reply:
            out.append(b"MSG %s %s %s %d\r\n" % (subject, sub.sid, reply, len(payload)))
        else:
            out.append(b"MSG %s %s %d\r\n" % (subject, sub.sid, len(payload)))
        out.append(b"")
        out.append(payload + b"\r\n")
    if pf is not None and reply:
        pf.track_reply(reply)
    return True


def _internal(sub: Any, origin: Any, acc: Any, dsubj: bytes, reply: bytes | None, hdr: bytes, payload: bytes) -> bool:
    msg = hdr + payload + b"\r\n"
    return bool(sub.client.deliver(sub, origin, acc, dsubj, reply, len(hdr) if hdr else -1, msg))


def deliver(origin: Any, acc: Any, dsubj: bytes, subject: bytes, reply: bytes | None, hdr: bytes,
            payload: bytes) -> bool:
    """Deliver to the subscribers of `dsubj` in `acc`, showing `subject`; False if nobody got it."""
    sl = acc.sublist
    r = sl.cache.get(dsubj)
    if r is None:
        r = sl.match(dsubj)
    dirty = origin.server.dirty
    delivered = False
    for sub in r.psubs:
        if sub.closed:
            continue
        if sub.client.internal:
            if _internal(sub, origin, acc, dsubj, reply, hdr, payload):
                delivered = True
        elif _write(dirty, sub, subject, reply, hdr, payload):
            delivered = True
    for _, members in r.qsubs:
        n = len(members)
        start = int(random() * n)
        for i in range(n):
            sub = members[(start + i) % n]
            if sub.is_route or sub.closed or sub.client.closed:
                continue
            if sub.client.internal:
                if _internal(sub, origin, acc, dsubj, reply, hdr, payload):
                    delivered = True
                    break
            elif _write(dirty, sub, subject, reply, hdr, payload):
                delivered = True
                break
    return delivered


def status(code: int, text: str, *headers: tuple[str, Any]) -> bytes:
    """A header-only status message: `NATS/1.0 408 Request Timeout\\r\\nK: V\\r\\n\\r\\n`."""
    head = f"NATS/1.0 {code} {text}\r\n" if text else f"NATS/1.0 {code}\r\n"
    return (head + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()
