"""Delivering one published message: match, write MSG frames, pick queue members, route.

This is the hot path (DESIGN.md "A message's path"). Frames are appended to each
destination's `out` list; the server flushes every destination once per read. Nothing here
awaits or copies the payload.

Rules (nats-server client.go processMsgResults):
- plain subscribers get every message; a client with echo off never gets its own;
- each queue group gets it once: a member is picked at random among local members and route
  members (a route repeated by its weight); a route pick adds the group to that route's RMSG;
- each route gets at most one RMSG per message, covering its plain interest and the groups
  picked for it; a message that came over a route is never sent to another route (one hop)
  and reaches local queue members only for groups named in its RMSG.
"""

from __future__ import annotations

from random import random
from typing import Any

from .const import GLOBAL_ACCOUNT
from .protocol import wire

_GLOBAL = GLOBAL_ACCOUNT.encode()


def _frame_for(sub: Any, d: Any, subject: bytes, reply: bytes | None, szb: bytes, hdr: int, hdb: bytes, msg: Any) -> tuple[bytes, Any]:
    """The control line and body for a message with headers (the slower path)."""
    if d.headers:
        return wire.hmsg_line(subject, sub.sid, reply, hdb, szb), msg
    # A subscriber that did not ask for headers gets the message without them.
    size = len(msg) - 2 - hdr
    prefix = sub.prefix or sub.msg_prefix(subject)
    return prefix + wire.msg_tail(reply, str(size).encode()), msg[hdr:]


def _auto_unsub(sub: Any) -> bool:
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


def deliver_client_msg(
    c: Any, subject: bytes, reply: bytes | None, szb: bytes, hdr: int, hdb: bytes, msg: Any
) -> None:
    """A message published by client `c` (hdr < 0: no headers)."""
    srv = c.server
    sublist = srv.sublist
    r = sublist.cache.get(subject)
    if r is None:
        r = sublist._match_miss(subject)
    dirty = srv.dirty
    delivered = False
    size = len(msg) - 2
    if r.psubs:
        tail = reply + b" " + szb + b"\r\n" if reply else szb + b"\r\n"
        echo = c.echo
        for sub in r.psubs:
            d = sub.client
            if (d is c and not echo) or sub.closed:
                continue
            sub.nm += 1
            if sub.max and not _auto_unsub(sub):
                continue
            out = d.out
            if not out:
                dirty.append(d)
            if hdr < 0:
                out.append(sub.prefix or sub.msg_prefix(subject))
                out.append(tail)
                out.append(msg)
            else:
                line, body = _frame_for(sub, d, subject, reply, szb, hdr, hdb, msg)
                out.append(line)
                out.append(body)
            d.out_msgs += 1
            d.out_bytes += size
            delivered = True
    rq: dict[Any, list[bytes]] | None = None
    if r.qsubs:
        for qname, members in r.qsubs:
            n = len(members)
            start = int(random() * n)
            for i in range(n):
                sub = members[(start + i) % n]
                if sub.is_route:
                    if rq is None:
                        rq = {}
                    lst = rq.get(sub.client)
                    if lst is None:
                        rq[sub.client] = [qname]
                    else:
                        lst.append(qname)
                    break
                d = sub.client
                if (d is c and not c.echo) or sub.closed or d.closed:
                    continue
                sub.nm += 1
                if sub.max and not _auto_unsub(sub):
                    continue
                out = d.out
                if not out:
                    dirty.append(d)
                if hdr < 0:
                    out.append(sub.prefix or sub.msg_prefix(subject))
                    out.append(reply + b" " + szb + b"\r\n" if reply else szb + b"\r\n")
                    out.append(msg)
                else:
                    line, body = _frame_for(sub, d, subject, reply, szb, hdr, hdb, msg)
                    out.append(line)
                    out.append(body)
                d.out_msgs += 1
                d.out_bytes += size
                delivered = True
                break
    if r.routes or rq:
        for route in r.routes:
            queues = rq.pop(route, None) if rq else None
            route.send_msg(_GLOBAL, subject, reply, queues, szb, hdr, hdb, msg)
        if rq:
            for route, queues in rq.items():
                route.send_msg(_GLOBAL, subject, reply, queues, szb, hdr, hdb, msg)
        delivered = True
    if not delivered and reply and c.no_responders:
        _no_responders(c, subject, reply)


def _no_responders(c: Any, subject: bytes, reply: bytes) -> None:
    """Tell a requester at once that nobody is listening (a 503 status message)."""
    for sub in c.server.sublist.match(reply).psubs:
        if sub.client is c:
            c.enqueue(wire.no_responders_hmsg(reply, sub.sid, subject))
            return


def deliver_routed_msg(
    route: Any,
    subject: bytes,
    reply: bytes | None,
    queues: list[bytes] | None,
    szb: bytes,
    hdr: int,
    hdb: bytes,
    msg: Any,
) -> None:
    """A message that arrived over a route: local subscribers only (the one-hop rule)."""
    srv = route.server
    sublist = srv.sublist
    r = sublist.cache.get(subject)
    if r is None:
        r = sublist._match_miss(subject)
    dirty = srv.dirty
    size = len(msg) - 2
    if r.psubs:
        tail = reply + b" " + szb + b"\r\n" if reply else szb + b"\r\n"
        for sub in r.psubs:
            if sub.closed:
                continue
            d = sub.client
            sub.nm += 1
            if sub.max and not _auto_unsub(sub):
                continue
            out = d.out
            if not out:
                dirty.append(d)
            if hdr < 0:
                out.append(sub.prefix or sub.msg_prefix(subject))
                out.append(tail)
                out.append(msg)
            else:
                line, body = _frame_for(sub, d, subject, reply, szb, hdr, hdb, msg)
                out.append(line)
                out.append(body)
            d.out_msgs += 1
            d.out_bytes += size
    if queues and r.qsubs:
        for qname, members in r.qsubs:
            if qname not in queues:
                continue
            local = [s for s in members if not s.is_route and not s.closed and not s.client.closed]
            if not local:
                continue
            sub = local[int(random() * len(local))]
            d = sub.client
            sub.nm += 1
            if sub.max and not _auto_unsub(sub):
                continue
            out = d.out
            if not out:
                dirty.append(d)
            if hdr < 0:
                out.append(sub.prefix or sub.msg_prefix(subject))
                out.append(reply + b" " + szb + b"\r\n" if reply else szb + b"\r\n")
                out.append(msg)
            else:
                line, body = _frame_for(sub, d, subject, reply, szb, hdr, hdb, msg)
                out.append(line)
                out.append(body)
            d.out_msgs += 1
            d.out_bytes += size
