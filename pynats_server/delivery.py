"""Delivering one published message: match, write MSG frames, pick queue members, route.

This is the hot path (DESIGN.md "A message's path"). Frames go into each destination's
`out` list as (control line start, its end, payload) triples; the server flushes every destination once per
read, and counts messages and bytes then, from the triples (see Connection.enqueue). Nothing here awaits or copies the
payload.

Most messages take the planned path: for a subject whose matches have no queue group and
no auto-unsubscribe limit, the list of (destination, its out list, `MSG subject sid ` or
`RMSG <account> subject `, subscription) is computed once and kept with the cached match result,
so a delivery is three list appends. Anything else takes the general path.

Rules (nats-server client.go processMsgResults):
- plain subscribers get every message; a client with echo off never gets its own;
- each queue group gets it once: a member is picked at random among local members and route
  members (a route repeated by its weight); a route pick adds the group to that route's RMSG;
- each route gets at most one RMSG per message, covering its plain interest and the groups
  picked for it; a message that came over a route is never sent to another route (one hop)
  and reaches local queue members only for groups named in its RMSG.
- everything happens inside one account (the publisher's, or the one an import leads to):
  routes get `RMSG <account> ...`; an internal subscriber (internal.py: imports, the system
  account's handlers) gets a callback, which may publish again in another account.
"""

from __future__ import annotations

from itertools import compress
from random import randbytes, random
from typing import Any

from .leafdelivery import deliver_leaf_msg, to_hub_leafs
from .protocol import wire
from .subdeliver import to_sub
from .sublist import SublistResult


class _RouteTally:
    """Stands in for a subscription in a plan entry for a route (its `nm` is never read)."""

    __slots__ = ("nm",)

    def __init__(self) -> None:
        self.nm = 0


_ROUTE_TALLY = _RouteTally()


def build_plan(r: SublistResult, subject: bytes, acc: bytes = b"$G", *, local_only: bool = False) -> Any:
    """(d, d.out, line prefix, sub) for each destination, or False for the general path.

    For messages from clients it also sets `r.qplan`: per queue group, its members as plan
    entries (one is picked at random per message); a group with a member on a route takes
    the general path, which weighs routes. `local_only` is the plan for a message that came
    over a route without queue names: local plain subscribers only. Internal subscribers
    (callbacks) always take the general path."""
    plan: list[tuple[Any, Any, bytes, Any]] = []
    for sub in r.psubs:
        # A client whose deliveries need a check (permissions: a deny filter, replies to
        # record) takes the general path: the check is never paid by anyone else.
        if sub.max or sub.closed or sub.client.internal or sub.client.perm_filter is not None:
            return False
        prefix = sub.prefix or sub.msg_prefix(subject)
        plan.append((sub.client, sub.client.out, prefix, sub))
    if local_only:
        # A routed message also goes to the leafs we are the hub of (leafdelivery.py).
        for route in r.routes:
            if route.is_leaf and not route.is_spoke:
                if route.perms is not None or subject.startswith(route.js_deny):
                    return False  # what a leaf may not get: send_msg checks it
                plan.append((route, route.out, b"LMSG " + subject + b" ", _ROUTE_TALLY))
        return plan
    for route in r.routes:
        if route.is_leaf:
            if route.perms is not None or subject.startswith(route.js_deny):
                return False
            plan.append((route, route.out, b"LMSG " + subject + b" ", _ROUTE_TALLY))
        else:
            plan.append((route, route.out, b"RMSG " + acc + b" " + subject + b" ", _ROUTE_TALLY))
    qplan = []
    for _, members in r.qsubs:
        group = []
        for sub in members:
            if sub.is_route or sub.max or sub.closed or sub.client.internal or sub.client.perm_filter is not None:
                return False
            group.append((sub.client, sub.client.out, sub.prefix or sub.msg_prefix(subject), sub))
        qplan.append(group)
    r.qplan = qplan
    return plan


CRLF = b"\r\n"


def deliver_run(dirty: list[Any], plan: Any, qplan: Any, tail: bytes, payloads: list[bytes], size: int,
                skip: Any = None) -> bool:
    """A run of messages with one control line (the parser's _bulk: same subject, reply
    and size), on a plan: each destination gets all its frames as one chunk, built once
    per line prefix (`MSG subject sid `, `RMSG account subject `), and counts them at its
    next flush. Each queue group's members get the run split among them at random, each
    message to one member (uniform, as a pick per message). `tail` is `[reply ]size\r\n`;
    `payloads` are without their CRLF; `skip` is a publisher with echo off (its own
    subscriptions get nothing). False, with nothing done, for a plan the run leaves to the
    one-by-one path: one that reaches a stream import's subscription (its subject mapped),
    a queue group over 256 members or with a member on `skip`."""
    for entry in plan:
        if getattr(entry[3], "origin", None) is not None:  # accounts.ShadowSubscription
            return False
    for group in qplan:
        if len(group) > 256:
            return False
        for entry in group:
            if entry[0] is skip or getattr(entry[3], "origin", None) is not None:
                return False
    n = len(payloads)
    nb = n * size
    blocks: dict[bytes, bytes] = {}
    for d, out, prefix, sub in plan:
        if d is skip:
            continue
        block = blocks.get(prefix)
        if block is None:
            line = prefix + tail
            block = blocks[prefix] = line + (CRLF + line).join(payloads) + CRLF
        if not out:
            dirty.append(d)
        out.append(block)
        out.append(b"")
        out.append(b"")
        d.run_msgs += n
        d.run_bytes += nb
        sub.nm += n
    for group in qplan:
        g = len(group)
        picks = _picks(n, g)
        for m in range(g):
            chosen = list(compress(payloads, picks.translate(_member_mask(m)))) if g > 1 else payloads
            k = len(chosen)
            if not k:
                continue
            d, out, prefix, sub = group[m]
            line = prefix + tail
            if not out:
                dirty.append(d)
            out.append(line + (CRLF + line).join(chosen) + CRLF)
            out.append(b"")
            out.append(b"")
            d.run_msgs += k
            d.run_bytes += k * size
            sub.nm += k
    return True


# Per queue member index m: a translate table turning a pick byte into 1 where it is m.
_MASKS: dict[int, bytes] = {}


def _member_mask(m: int) -> bytes:
    t = _MASKS.get(m)
    if t is None:
        t = _MASKS[m] = bytes(int(v == m) for v in range(256))
    return t


# Per group size g (2..256): the bytes a uniform pick rejects, and the table to v % g.
_PICKS: dict[int, tuple[bytes, bytes]] = {}


def _picks(n: int, g: int) -> bytes:
    """n member indexes in 0..g-1, uniform and independent: random bytes (from the same
    generator as random()), those at or over the largest multiple of g dropped, the rest
    taken modulo g. One byte per pick: g is at most 256 (larger groups: general path)."""
    if g == 1:
        return b""
    t = _PICKS.get(g)
    if t is None:
        lim = 256 - 256 % g
        t = _PICKS[g] = (bytes(range(lim, 256)), bytes(v % g for v in range(256)))
    reject, mod = t
    picks = randbytes(n)
    if reject:
        picks = picks.translate(None, reject)
        while len(picks) < n:
            picks += randbytes(n).translate(None, reject)
        picks = picks[:n]
    return picks.translate(mod)


def _sizes(hdr: int, msg: Any) -> tuple[bytes, bytes]:
    """The size fields of a message made inside the server (an import added a header)."""
    return str(len(msg) - 2).encode(), (str(hdr).encode() if hdr >= 0 else b"")


def deliver_msg(c: Any, acc: Any, subject: bytes, reply: bytes | None, hdr: int, msg: Any,
                szb: bytes | None = None, hdb: bytes = b"") -> bool:
    """A message published into account `acc` by `c` (a client, an internal client or, for
    a message an import carries on, a route), on the general path; True if it went anywhere."""
    if szb is None:
        szb, hdb = _sizes(hdr, msg)
    if c.kind_name == "Router":
        return deliver_routed_msg(c, acc, subject, reply, None, szb, hdr, hdb, msg, any_queue=True)
    if c.kind_name == "Leafnode":
        return deliver_leaf_msg(c, acc, subject, reply, None, szb, hdr, hdb, msg, any_queue=True)
    srv = c.server
    sublist = acc.sublist
    r = sublist.cache.get(subject)
    if r is None:
        r = sublist._match_miss(subject)
    dirty = srv.dirty
    delivered = False
    # An empty reply (the server's own messages) still takes its place in the control line,
    # as nats-server writes it: `MSG subject sid  size`.
    tail = reply + b" " + szb + b"\r\n" if reply is not None else szb + b"\r\n"
    for sub in r.psubs:
        d = sub.client
        if (d is c and not c.echo) or sub.closed:
            continue
        if d.internal:
            if d.deliver(sub, c, acc, subject, reply, hdr, msg):
                delivered = True
        elif to_sub(dirty, sub, subject, reply, szb, hdr, hdb, msg, tail):
            delivered = True
    rq: dict[Any, list[bytes]] | None = None
    for qname, members in r.qsubs:
        n = len(members)
        start = int(random() * n)
        for i in range(n):
            sub = members[(start + i) % n]
            if sub.is_route:
                if rq is None:
                    rq = {}
                rq.setdefault(sub.client, []).append(qname)
                break
            if (sub.client is c and not c.echo) or sub.closed or sub.client.closed:
                continue
            if sub.client.internal:
                if sub.client.deliver(sub, c, acc, subject, reply, hdr, msg):
                    delivered = True
                    break
                continue
            if to_sub(dirty, sub, subject, reply, szb, hdr, hdb, msg, tail):
                delivered = True
                break
    if r.routes or rq:
        accb = acc.name_b
        for route in r.routes:
            route.send_msg(accb, subject, reply, rq.pop(route, None) if rq else None, szb, hdr, hdb, msg)
        if rq:
            for route, queues in rq.items():
                route.send_msg(accb, subject, reply, queues, szb, hdr, hdb, msg)
        delivered = True
    return delivered


def deliver_client_msg(
    c: Any, subject: bytes, reply: bytes | None, szb: bytes, hdr: int, hdb: bytes, msg: Any
) -> None:
    """A message published by client `c` (hdr < 0: no headers), on the general path."""
    if not deliver_msg(c, c.account, subject, reply, hdr, msg, szb, hdb) and reply and c.no_responders:
        no_responders(c, subject, reply)


def no_responders(c: Any, subject: bytes, reply: bytes) -> None:
    """Tell a requester at once that nobody is listening (a 503 status message)."""
    for sub in c.account.sublist.match(reply).psubs:
        if sub.client is c:
            c.enqueue(wire.no_responders_hmsg(reply, sub.sid, subject))
            return


def deliver_routed_msg(
    route: Any,
    acc: Any,
    subject: bytes,
    reply: bytes | None,
    queues: list[bytes] | None,
    szb: bytes,
    hdr: int,
    hdb: bytes,
    msg: Any,
    *,
    any_queue: bool = False,
) -> bool:
    """A message that arrived over a route: local subscribers only (the one-hop rule).

    Queue groups get it when the RMSG names them, or (`any_queue`) when an import carries a
    routed message into another account, where no RMSG named its groups."""
    srv = route.server
    sublist = acc.sublist
    r = sublist.cache.get(subject)
    if r is None:
        r = sublist._match_miss(subject)
    dirty = srv.dirty
    delivered = False
    tail = reply + b" " + szb + b"\r\n" if reply else szb + b"\r\n"
    for sub in r.psubs:
        if sub.closed:
            continue
        d = sub.client
        if d.internal:
            if d.deliver(sub, route, acc, subject, reply, hdr, msg):
                delivered = True
        elif to_sub(dirty, sub, subject, reply, szb, hdr, hdb, msg, tail):
            delivered = True
    picked: set[bytes] | None = None
    if (queues or any_queue) and r.qsubs:
        for qname, members in r.qsubs:
            if not any_queue and qname not in queues:  # type: ignore[operator]
                continue
            local = [s for s in members if not s.is_route and not s.closed and not s.client.closed]
            n = len(local)
            start = int(random() * n)
            for i in range(n):  # the next member when one may not receive it
                if to_sub(dirty, local[(start + i) % n], subject, reply, szb, hdr, hdb, msg, tail):
                    delivered = True
                    if picked is None:
                        picked = set()
                    picked.add(qname)
                    break
    if (r.routes or (queues and r.qsubs)) and route.server.leafnodes is not None:
        if to_hub_leafs(route, r, subject, reply, queues, szb, hdr, hdb, msg, acc, picked or set()):
            delivered = True
    return delivered
