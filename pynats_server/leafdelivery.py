"""Delivering a message that arrived over a leaf node connection (nats-server
processInboundLeafMsg / processMsgResults with a LEAF source).

Rules:
- local subscribers (clients, internal) get it;
- other leaf connections with interest get it, except one of the same remote cluster as the
  sender (cluster-wide no echo), and never the sender itself;
- routes get it when the sender is a leaf we are the hub of; a message from our own hub
  (a spoke connection) stays on this server and its leafs, as the hub has sent it to the
  rest of our cluster's servers through their own connections;
- queue groups: only those the LMSG names (the sender picked the group's member on its
  side); a local member is preferred, then a route's (not from a spoke), then another leaf's.
"""

from __future__ import annotations

from random import random
from typing import Any

from .subdeliver import to_sub


def deliver_leaf_msg(
    leaf: Any,
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
    srv = leaf.server
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
            if d.deliver(sub, leaf, acc, subject, reply, hdr, msg):
                delivered = True
        elif to_sub(dirty, sub, subject, reply, szb, hdr, hdb, msg, tail):
            delivered = True
    spoke = leaf.is_spoke
    rc = leaf.remote_cluster
    targets: dict[Any, list[bytes] | None] = {}
    for dest in r.routes:
        if dest is leaf or dest.closed:
            continue
        if dest.is_leaf:
            if rc and dest.remote_cluster == rc:
                continue
        elif spoke:
            continue
        targets[dest] = None
    if (queues or any_queue) and r.qsubs:
        for qname, members in r.qsubs:
            if not any_queue and qname not in queues:  # type: ignore[operator]
                continue
            n = len(members)
            start = int(random() * n)
            fallback = None
            done = False
            for i in range(n):
                sub = members[(start + i) % n]
                d = sub.client
                if sub.closed or d.closed or d is leaf:
                    continue
                if sub.is_route:
                    if d.is_leaf:
                        if fallback is None and not (rc and d.remote_cluster == rc):
                            fallback = d
                        continue
                    if spoke:
                        continue
                    q = targets.get(d)
                    if q is None:
                        targets[d] = [qname]
                    else:
                        q.append(qname)
                    done = True
                    break
                if d.internal:
                    if d.deliver(sub, leaf, acc, subject, reply, hdr, msg):
                        done = delivered = True
                        break
                    continue
                if to_sub(dirty, sub, subject, reply, szb, hdr, hdb, msg, tail):
                    done = delivered = True
                    break
            if not done and fallback is not None:
                q = targets.get(fallback)
                if q is None:
                    targets[fallback] = [qname]
                else:
                    q.append(qname)
    if targets:
        accb = acc.name_b
        for dest, qs in targets.items():
            dest.send_msg(accb, subject, reply, qs, szb, hdr, hdb, msg)
        delivered = True
    return delivered


def to_hub_leafs(route: Any, r: Any, subject: bytes, reply: bytes | None, queues: list[bytes] | None,
                 szb: bytes, hdr: int, hdb: bytes, msg: Any, acc: Any, picked: set[bytes]) -> bool:
    """A routed message, for the leafs we are the hub of (nats-server sends routed messages
    to those, and to no other leaf): their plain interest, and the named queue groups no
    local member took (`picked` holds those that one did)."""
    targets: dict[Any, list[bytes] | None] = {}
    for dest in r.routes:
        if dest.is_leaf and not dest.is_spoke and not dest.closed:
            targets[dest] = None
    if queues and r.qsubs:
        for qname, members in r.qsubs:
            if qname in picked or qname not in queues:
                continue
            cands = [s.client for s in members if s.is_route and s.client.is_leaf and not s.client.is_spoke
                     and not s.closed and not s.client.closed]
            if cands:
                d = cands[int(random() * len(cands))]
                q = targets.get(d)
                if q is None:
                    targets[d] = [qname]
                else:
                    q.append(qname)
    if not targets:
        return False
    accb = acc.name_b
    for dest, qs in targets.items():
        dest.send_msg(accb, subject, reply, qs, szb, hdr, hdb, msg)
    return True
