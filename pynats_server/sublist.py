"""The subscription index: a token trie with a match cache (nats-server sublist.go).

Sans-IO. Subjects are bytes. A match result separates what delivery needs: local plain
subscriptions, the routes with plain interest (each route once), and the queue groups with
their members (a route member repeated by its weight, so a uniform pick across the list
weights routes as nats-server does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from .protocol.subjects import is_literal, match_literal

CACHE_MAX = 4096
CACHE_PRUNE = 1024
# A wildcard insert or remove rescans the cache when it is this small, else drops it all.
CACHE_RESCAN_MAX = 256


class Subscription:
    """One subscription: a client's SUB, or the interest a route told us about (RS+)."""

    __slots__ = (
        "client",
        "subject",
        "queue",
        "sid",
        "max",
        "nm",
        "qw",
        "is_route",
        "closed",
        "prefix",
        "pcache",
        "literal",
    )

    def __init__(
        self,
        client: Any,
        subject: bytes,
        queue: bytes | None = None,
        sid: bytes = b"",
        *,
        is_route: bool = False,
        weight: int = 1,
    ) -> None:
        self.client = client
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.max = 0  # auto-unsubscribe after this many messages (0: never)
        self.nm = 0  # messages delivered
        self.qw = weight  # queue weight of a route subscription
        self.is_route = is_route
        self.closed = False
        # `MSG <subject> <sid> `, made on first delivery (most memory goes to idle subs):
        # once for a literal subject, per delivered subject for a wildcard one.
        self.prefix: bytes | None = None
        self.pcache: dict[bytes, bytes] | None = None
        self.literal = is_literal(subject)

    def msg_prefix(self, subject: bytes) -> bytes:
        """`MSG <subject> <sid> ` for this subscription and a delivered subject."""
        if self.literal:
            p = self.prefix = b"MSG " + subject + b" " + self.sid + b" "
            return p
        pc = self.pcache
        if pc is None:
            pc = self.pcache = {}
        cached = pc.get(subject)
        if cached is None:
            if len(pc) >= 256:
                pc.clear()
            cached = pc[subject] = b"MSG " + subject + b" " + self.sid + b" "
        return cached

    def deliver_subject(self, subject: bytes) -> bytes:
        """The subject the subscriber sees (an import's shadow subscription maps it)."""
        return subject

    def __repr__(self) -> str:
        q = f" {self.queue!r}" if self.queue else ""
        return f"<Subscription {self.subject!r}{q} sid={self.sid!r}>"


class SublistResult:
    """What matched a subject, laid out for delivery."""

    __slots__ = ("psubs", "routes", "qsubs", "plan", "qplan", "lplan")

    def __init__(
        self,
        psubs: list[Subscription],
        routes: list[Any],
        qsubs: list[tuple[bytes, list[Subscription]]],
    ) -> None:
        self.psubs = psubs  # local plain subscriptions
        self.routes = routes  # route connections with plain interest, each once
        self.qsubs = qsubs  # (queue name, members) per group
        # Delivery plans, built on first use by delivery.py (False: this result needs the
        # general path; a list: precomputed destinations).
        self.plan: Any = None  # for messages from clients: local subscribers and routes
        self.qplan: Any = None  # and one member list per queue group (local members only)
        self.lplan: Any = None  # for messages from routes: local subscribers only

    def __bool__(self) -> bool:
        return bool(self.psubs or self.routes or self.qsubs)


EMPTY_RESULT = SublistResult([], [], [])


# A node keeps its plain subscriptions as the subscription itself when there is one (most
# subjects have a single subscriber), a list while there are few, a dict (O(1) removal)
# when there are many.
_LIST_MAX = 16


class _Node:
    __slots__ = ("next", "psubs", "qsubs")

    def __init__(self) -> None:
        self.next: _Level | None = None
        self.psubs: Any = None  # None, a Subscription, or a list or dict of them
        self.qsubs: dict[bytes, dict[Subscription, None]] | None = None

    def add_psub(self, sub: Subscription) -> None:
        ps = self.psubs
        if ps is None:
            self.psubs = sub
        elif isinstance(ps, Subscription):
            self.psubs = [ps, sub]
        elif type(ps) is list:
            if len(ps) < _LIST_MAX:
                ps.append(sub)
            else:
                d = dict.fromkeys(ps)
                d[sub] = None
                self.psubs = d
        else:
            ps[sub] = None

    def remove_psub(self, sub: Subscription) -> bool:
        ps = self.psubs
        if ps is None:
            return False
        if isinstance(ps, Subscription):
            if ps is not sub:
                return False
            self.psubs = None
            return True
        if type(ps) is list:
            for i, s in enumerate(ps):
                if s is sub:
                    del ps[i]
                    break
            else:
                return False
        elif ps.pop(sub, 0) is not None:
            return False
        if not ps:
            self.psubs = None
        return True

    def is_empty(self) -> bool:
        return not self.psubs and not self.qsubs and (self.next is None or self.next.is_empty())


class _Level:
    __slots__ = ("nodes", "pwc", "fwc")

    def __init__(self) -> None:
        self.nodes: dict[bytes, _Node] = {}
        self.pwc: _Node | None = None
        self.fwc: _Node | None = None

    def is_empty(self) -> bool:
        return not self.nodes and self.pwc is None and self.fwc is None


class InvalidSubject(ValueError):
    pass


class Sublist:
    """Insert, remove and match subscriptions; cached matches stay correct under churn."""

    def __init__(self) -> None:
        self._root = _Level()
        self.cache: dict[bytes, SublistResult] = {}
        self.count = 0
        self.inserts = 0
        self.removes = 0
        self.misses = 0
        # Interest watchers (JetStream push consumers watch their deliver subject): literal
        # subject -> callbacks, told when a subscription that may match it comes or goes.
        self.watchers: dict[bytes, list[Callable[[], None]]] | None = None

    # -- changes ----------------------------------------------------------------------

    def insert(self, sub: Subscription) -> None:
        tokens = sub.subject.split(b".")
        last = len(tokens) - 1
        level = self._root
        node: _Node | None = None
        for i, t in enumerate(tokens):
            if not t:
                raise InvalidSubject(sub.subject)
            if t == b"*":
                node = level.pwc
                if node is None:
                    node = level.pwc = _Node()
            elif t == b">":
                if i != last:
                    raise InvalidSubject(sub.subject)
                node = level.fwc
                if node is None:
                    node = level.fwc = _Node()
            else:
                node = level.nodes.get(t)
                if node is None:
                    node = level.nodes[t] = _Node()
            if i < last:
                if node.next is None:
                    node.next = _Level()
                level = node.next
        assert node is not None
        if sub.queue is None:
            node.add_psub(sub)
        else:
            qs = node.qsubs
            if qs is None:
                qs = node.qsubs = {}
            group = qs.get(sub.queue)
            if group is None:
                group = qs[sub.queue] = {}
            group[sub] = None
        self.count += 1
        self.inserts += 1
        self._invalidate(sub.subject)
        if self.watchers:
            self._changed(sub.subject)

    def remove(self, sub: Subscription) -> bool:
        """Remove `sub`; False when it was not there."""
        tokens = sub.subject.split(b".")
        path: list[tuple[_Level, bytes, _Node]] = []
        level: _Level | None = self._root
        node: _Node | None = None
        for t in tokens:
            if level is None:
                return False
            if t == b"*":
                node = level.pwc
            elif t == b">":
                node = level.fwc
            else:
                node = level.nodes.get(t)
            if node is None:
                return False
            path.append((level, t, node))
            level = node.next
        assert node is not None
        if sub.queue is None:
            if not node.remove_psub(sub):
                return False
        else:
            qs = node.qsubs
            group = qs.get(sub.queue) if qs is not None else None
            if group is None or group.pop(sub, 0) is not None:
                return False
            if not group:
                assert qs is not None
                del qs[sub.queue]
                if not qs:
                    node.qsubs = None
        self.count -= 1
        self.removes += 1
        # Prune empty nodes bottom-up.
        for lvl, t, n in reversed(path):
            if not n.is_empty():
                break
            if t == b"*":
                lvl.pwc = None
            elif t == b">":
                lvl.fwc = None
            else:
                del lvl.nodes[t]
        self._invalidate(sub.subject)
        if self.watchers:
            self._changed(sub.subject)
        return True

    def watch(self, subject: bytes, cb: Callable[[], None]) -> None:
        """Call `cb` when a subscription on exactly the literal `subject` is added or removed
        (nats-server's interest notifications; the callback checks the interest itself)."""
        if self.watchers is None:
            self.watchers = {}
        self.watchers.setdefault(subject, []).append(cb)

    def unwatch(self, subject: bytes, cb: Callable[[], None]) -> None:
        w = self.watchers
        cbs = w.get(subject) if w else None
        if cbs and cb in cbs:
            cbs.remove(cb)
            if not cbs:
                del w[subject]  # type: ignore[union-attr]

    def _changed(self, subject: bytes) -> None:
        assert self.watchers is not None
        cbs = self.watchers.get(subject)
        if cbs:
            for cb in list(cbs):
                cb()

    def update_weight(self, sub: Subscription, weight: int) -> None:
        """A route's queue weight changed: cached results repeat members by weight."""
        if sub.qw != weight:
            sub.qw = weight
            self._invalidate(sub.subject)

    def invalidate(self, subject: bytes) -> None:
        """Drop cached matches for `subject` (a subscription changed in place)."""
        self._invalidate(subject)

    def _invalidate(self, subject: bytes) -> None:
        cache = self.cache
        if not cache:
            return
        if is_literal(subject):
            cache.pop(subject, None)
        elif len(cache) > CACHE_RESCAN_MAX:
            cache.clear()
        else:
            for k in [k for k in cache if match_literal(k, subject)]:
                del cache[k]

    # -- matching ---------------------------------------------------------------------

    def match(self, subject: bytes) -> SublistResult:
        r = self.cache.get(subject)
        if r is not None:
            return r
        return self._match_miss(subject)

    def _match_miss(self, subject: bytes) -> SublistResult:
        self.misses += 1
        tokens = subject.split(b".")
        if b"" in tokens:
            return EMPTY_RESULT
        psubs: list[Subscription] = []
        qgroups: dict[bytes, list[Subscription]] = {}
        _match_level(self._root, tokens, 0, psubs, qgroups)
        if not psubs and not qgroups:
            r = EMPTY_RESULT
        else:
            local = [s for s in psubs if not s.is_route]
            routes = list(dict.fromkeys(s.client for s in psubs if s.is_route))
            qsubs: list[tuple[bytes, list[Subscription]]] = []
            for q, members in qgroups.items():
                expanded: list[Subscription] = []
                for s in members:
                    if s.is_route:
                        expanded.extend([s] * max(s.qw, 0))
                    else:
                        expanded.append(s)
                if expanded:
                    qsubs.append((q, expanded))
            r = SublistResult(local, routes, qsubs)
        cache = self.cache
        if len(cache) >= CACHE_MAX:
            for k in list(islice(cache, CACHE_PRUNE)):
                del cache[k]
        cache[subject] = r
        return r

    def has_interest(self, subject: bytes) -> bool:
        return bool(self.match(subject))

    # -- inspection -------------------------------------------------------------------

    def all(self) -> Iterator[Subscription]:
        """Every subscription, in no particular order."""
        stack = [self._root]
        while stack:
            level = stack.pop()
            nodes = list(level.nodes.values())
            if level.pwc is not None:
                nodes.append(level.pwc)
            if level.fwc is not None:
                nodes.append(level.fwc)
            for n in nodes:
                ps = n.psubs
                if isinstance(ps, Subscription):
                    yield ps
                elif ps:
                    yield from ps
                if n.qsubs:
                    for group in n.qsubs.values():
                        yield from group
                if n.next is not None:
                    stack.append(n.next)


def _match_level(
    level: _Level | None,
    tokens: list[bytes],
    i: int,
    psubs: list[Subscription],
    qgroups: dict[bytes, list[Subscription]],
) -> None:
    n = len(tokens)
    node: _Node | None = None
    pwc: _Node | None = None
    while i < n:
        if level is None:
            return
        if level.fwc is not None:
            _add_node(level.fwc, psubs, qgroups)
        pwc = level.pwc
        if pwc is not None:
            _match_level(pwc.next, tokens, i + 1, psubs, qgroups)
        node = level.nodes.get(tokens[i])
        level = node.next if node is not None else None
        i += 1
    if node is not None:
        _add_node(node, psubs, qgroups)
    if pwc is not None:
        _add_node(pwc, psubs, qgroups)


def _add_node(node: _Node, psubs: list[Subscription], qgroups: dict[bytes, list[Subscription]]) -> None:
    ps = node.psubs
    if ps is not None:
        if isinstance(ps, Subscription):
            psubs.append(ps)
        else:
            psubs.extend(ps)
    if not node.qsubs:
        return
    for q, group in node.qsubs.items():
        if group:
            lst = qgroups.get(q)
            if lst is None:
                qgroups[q] = list(group)
            else:
                lst.extend(group)
