"""One message to one subscription on the general path (delivery.py's plans do the common
case without it): permissions on delivery, UNSUB max limits, the frame with or without the
message's headers. Shared by client, route and leaf delivery (delivery.py, leafdelivery.py)
and JetStream's deliveries (jetstream/outbound.py)."""

from __future__ import annotations

from typing import Any

from .protocol import wire


def frame_for(sub: Any, d: Any, subject: bytes, reply: bytes | None, szb: bytes, hdr: int, hdb: bytes, msg: Any) -> tuple[bytes, Any]:
    """The control line and body for a message with headers (the slower path)."""
    if d.headers:
        return wire.hmsg_line(sub.deliver_subject(subject), sub.sid, reply, hdb, szb), msg
    # A subscriber that did not ask for headers gets the message without them.
    size = len(msg) - 2 - hdr
    prefix = sub.prefix or sub.msg_prefix(subject)
    return prefix + wire.msg_tail(reply, str(size).encode()), msg[hdr:]


def auto_unsub(sub: Any) -> bool:
    """Count a delivery against an UNSUB max; False when the message must not go out."""
    if sub.nm > sub.max:
        sub.client.remove_sub(sub)
        return False
    if sub.nm == sub.max:
        if sub.client.log.debug_enabled:
            sub.client.debug(
                f"Auto-unsubscribe limit of {sub.max} reached for sid '{sub.sid.decode(errors='replace')}'"
            )
        sub.client.remove_sub(sub)
    return True


def to_sub(dirty: list[Any], sub: Any, subject: bytes, reply: bytes | None, szb: bytes, hdr: int, hdb: bytes,
            msg: Any, tail: bytes) -> bool:
    """One delivery on the general path; False when the subscriber's permissions or the
    subscription's limit stopped it."""
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
    if hdr < 0:
        out.append(sub.prefix or sub.msg_prefix(subject))
        out.append(tail)
        out.append(msg)
    else:
        line, body = frame_for(sub, d, subject, reply, szb, hdr, hdb, msg)
        out.append(line)
        out.append(b"")
        out.append(body)
    if pf is not None and reply:
        pf.track_reply(reply)
    return True
