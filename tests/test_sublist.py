"""The subscription index (pynats_server/sublist.py) against a naive matcher as the oracle.

Hypothesis drives random inserts, removes, weight changes and matches (a stateful machine), so
the match cache is exercised under churn; a second run shrinks the cache limits so that the
prune and "drop it all" paths run too.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from pynats_server import sublist as sublist_mod
from pynats_server.protocol.subjects import (
    is_literal,
    is_valid_literal_subject,
    is_valid_subject,
    match_literal,
    subjects_collide,
)
from pynats_server.sublist import EMPTY_RESULT, InvalidSubject, Sublist, Subscription

# -- the oracle -----------------------------------------------------------------------------


def naive_match(literal: bytes, pattern: bytes) -> bool:
    """Token by token, written independently of the code under test."""
    lt = literal.split(b".")
    pt = pattern.split(b".")
    if any(t == b"" for t in lt):
        return False
    i = 0
    for i, p in enumerate(pt):
        if p == b">":
            return len(lt) > i
        if i >= len(lt):
            return False
        if p != b"*" and p != lt[i]:
            return False
    return len(lt) == len(pt)


def valid_sub_subject(subject: bytes) -> bool:
    toks = subject.split(b".")
    return all(toks) and all(t != b">" for t in toks[:-1])


def expected_result(subs: list[Subscription], subject: bytes) -> tuple[Counter[int], Counter[int], dict[bytes, Counter[int]]]:
    psubs: Counter[int] = Counter()
    routes: Counter[int] = Counter()
    queues: dict[bytes, Counter[int]] = {}
    route_seen = set()
    for s in subs:
        if not naive_match(subject, s.subject):
            continue
        if s.queue is None:
            if s.is_route:
                if id(s.client) not in route_seen:
                    route_seen.add(id(s.client))
                    routes[id(s.client)] += 1
            else:
                psubs[id(s)] += 1
        else:
            n = max(s.qw, 0) if s.is_route else 1
            if n:
                queues.setdefault(s.queue, Counter())[id(s)] += n
    return psubs, routes, queues


def actual_result(r: Any) -> tuple[Counter[int], Counter[int], dict[bytes, Counter[int]]]:
    psubs = Counter(id(s) for s in r.psubs)
    routes = Counter(id(c) for c in r.routes)
    queues: dict[bytes, Counter[int]] = {}
    for q, members in r.qsubs:
        assert q not in queues, f"group {q!r} listed twice"
        assert members, f"group {q!r} without members"
        queues[q] = Counter(id(s) for s in members)
    assert all(not s.is_route for s in r.psubs)
    return psubs, routes, queues


# -- strategies -----------------------------------------------------------------------------

TOKENS = [b"a", b"b", b"c", b"foo"]
pattern_token = st.sampled_from(TOKENS + [b"*", b"*", b">"])
literal_token = st.sampled_from(TOKENS + [b"d", b"b*r", b"x>"])
patterns = st.lists(pattern_token, min_size=1, max_size=4).map(b".".join).filter(lambda p: valid_sub_subject(p))
bad_patterns = st.sampled_from([b"a..b", b".a", b"a.", b"a.>.b", b">.>", b"", b"a.*.>.c", b"*..*"])
literals = st.one_of(
    st.lists(literal_token, min_size=1, max_size=5).map(b".".join),
    st.sampled_from([b"a..b", b".a", b"a."]),  # empty tokens match nothing
)
queues = st.none() | st.sampled_from([b"q1", b"q2", b"q.*"])


class Route:
    """Stands in for a route connection."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"<Route {self.n}>"


class Client:
    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"<Client {self.n}>"


CLIENTS = [Client(i) for i in range(3)]
ROUTES = [Route(i) for i in range(3)]


class SublistMachine(RuleBasedStateMachine):
    subs = Bundle("subs")

    def __init__(self) -> None:
        super().__init__()
        self.sl = Sublist()
        self.active: list[Subscription] = []
        self.sid = itertools.count()

    @rule(target=subs, subject=patterns, queue=queues, client=st.sampled_from(CLIENTS))
    def insert_local(self, subject: bytes, queue: bytes | None, client: Client) -> Subscription:
        s = Subscription(client, subject, queue, str(next(self.sid)).encode())
        self.sl.insert(s)
        self.active.append(s)
        return s

    @rule(target=subs, subject=patterns, queue=queues, route=st.sampled_from(ROUTES), weight=st.integers(0, 3))
    def insert_route(self, subject: bytes, queue: bytes | None, route: Route, weight: int) -> Subscription:
        s = Subscription(route, subject, queue, is_route=True, weight=weight)
        self.sl.insert(s)
        self.active.append(s)
        return s

    @rule(subject=bad_patterns, queue=queues)
    def insert_invalid(self, subject: bytes, queue: bytes | None) -> None:
        s = Subscription(CLIENTS[0], subject, queue, b"bad")
        with pytest.raises(InvalidSubject):
            self.sl.insert(s)

    @rule(sub=consumes(subs))
    def remove(self, sub: Subscription) -> None:
        assert self.sl.remove(sub) is True
        self.active.remove(sub)
        # A second remove is a no-op.
        assert self.sl.remove(sub) is False

    @rule(sub=subs, weight=st.integers(0, 4))
    def change_weight(self, sub: Subscription, weight: int) -> None:
        if sub.is_route and sub in self.active:
            self.sl.update_weight(sub, weight)

    @rule(subject=literals)
    def match(self, subject: bytes) -> None:
        exp = expected_result(self.active, subject)
        r = self.sl.match(subject)
        assert actual_result(r) == exp, subject
        # Again: now from the cache.
        assert actual_result(self.sl.match(subject)) == exp
        assert bool(r) == any(exp[:2]) or bool(exp[2])
        assert self.sl.has_interest(subject) == bool(r)

    @rule(subject=patterns)
    def match_wildcard_as_literal(self, subject: bytes) -> None:
        """A published subject with `*` or `>` tokens is matched as a literal string."""
        exp = expected_result(self.active, subject)
        assert actual_result(self.sl.match(subject)) == exp

    @invariant()
    def counts(self) -> None:
        assert self.sl.count == len(self.active)
        assert Counter(id(s) for s in self.sl.all()) == Counter(id(s) for s in self.active)


SublistMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestSublist = SublistMachine.TestCase


class TinyCacheMachine(SublistMachine):
    def __init__(self) -> None:
        super().__init__()
        # Shrink the cache so prune and clear run all the time (restored in teardown).
        self._saved = (sublist_mod.CACHE_MAX, sublist_mod.CACHE_PRUNE, sublist_mod.CACHE_RESCAN_MAX)
        sublist_mod.CACHE_MAX, sublist_mod.CACHE_PRUNE, sublist_mod.CACHE_RESCAN_MAX = 6, 2, 3

    def teardown(self) -> None:
        sublist_mod.CACHE_MAX, sublist_mod.CACHE_PRUNE, sublist_mod.CACHE_RESCAN_MAX = self._saved


TinyCacheMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestSublistTinyCache = TinyCacheMachine.TestCase


# -- examples -------------------------------------------------------------------------------


def _sub(subject: bytes, queue: bytes | None = None, client: Any = None) -> Subscription:
    return Subscription(client or CLIENTS[0], subject, queue, b"1")


def test_wildcard_examples() -> None:
    sl = Sublist()
    subs = {p: _sub(p) for p in (b"foo.*", b"foo.>", b">", b"*.*", b"foo", b"foo.b*r", b"*")}
    for s in subs.values():
        sl.insert(s)

    def names(subject: bytes) -> set[bytes]:
        return {s.subject for s in sl.match(subject).psubs}

    assert names(b"foo.bar") == {b"foo.*", b"foo.>", b">", b"*.*"}
    assert names(b"foo") == {b"foo", b">", b"*"}
    assert names(b"foo.b*r") == {b"foo.*", b"foo.>", b">", b"*.*", b"foo.b*r"}
    assert names(b"foo.bar.baz") == {b"foo.>", b">"}
    assert sl.match(b"foo..bar") is EMPTY_RESULT


def test_routes_listed_once() -> None:
    sl = Sublist()
    r = ROUTES[0]
    for p in (b"foo", b"foo.*", b">"):
        sl.insert(Subscription(r, p, is_route=True))
    sl.insert(Subscription(ROUTES[1], b"foo", is_route=True))
    res = sl.match(b"foo")
    assert sorted(x.n for x in res.routes) == [0, 1]
    assert res.psubs == []


def test_queue_weights() -> None:
    sl = Sublist()
    local = _sub(b"foo", b"q")
    remote = Subscription(ROUTES[0], b"foo", b"q", is_route=True, weight=3)
    sl.insert(local)
    sl.insert(remote)
    (q, members), = sl.match(b"foo").qsubs
    assert q == b"q" and Counter(id(m) for m in members) == {id(local): 1, id(remote): 3}
    sl.update_weight(remote, 1)
    (q, members), = sl.match(b"foo").qsubs
    assert Counter(id(m) for m in members) == {id(local): 1, id(remote): 1}
    sl.update_weight(remote, 0)
    sl.remove(local)
    assert sl.match(b"foo").qsubs == []


def test_cache_updated_on_insert_and_remove() -> None:
    sl = Sublist()
    assert not sl.match(b"a.b")
    s1 = _sub(b"a.*")
    sl.insert(s1)
    assert sl.match(b"a.b").psubs == [s1]
    s2 = _sub(b"a.b")
    sl.insert(s2)
    assert set(map(id, sl.match(b"a.b").psubs)) == {id(s1), id(s2)}
    sl.remove(s1)
    assert sl.match(b"a.b").psubs == [s2]
    sl.remove(s2)
    assert not sl.match(b"a.b")
    assert sl.count == 0


def test_remove_prunes_nodes() -> None:
    sl = Sublist()
    s = _sub(b"a.b.c.>")
    sl.insert(s)
    assert sl.remove(s)
    assert sl._root.is_empty()


def test_remove_unknown() -> None:
    sl = Sublist()
    sl.insert(_sub(b"a.b"))
    assert sl.remove(_sub(b"a.b")) is False  # another object
    assert sl.remove(_sub(b"a.c")) is False
    assert sl.remove(_sub(b"a.b.c")) is False
    assert sl.remove(_sub(b"a.b", b"q")) is False
    assert sl.count == 1


def test_cache_is_bounded() -> None:
    sl = Sublist()
    sl.insert(_sub(b">"))
    for i in range(sublist_mod.CACHE_MAX + 10):
        sl.match(b"s.%d" % i)
    assert len(sl.cache) <= sublist_mod.CACHE_MAX


def test_msg_prefix() -> None:
    lit = _sub(b"foo.bar")
    assert lit.prefix is None  # made on first delivery
    assert lit.msg_prefix(b"foo.bar") == b"MSG foo.bar 1 " and lit.prefix == b"MSG foo.bar 1 "
    w = Subscription(CLIENTS[0], b"foo.*", None, b"22")
    assert w.prefix is None
    assert w.msg_prefix(b"foo.x") == b"MSG foo.x 22 "
    assert w.msg_prefix(b"foo.x") == b"MSG foo.x 22 "


# -- subject rules (protocol/subjects.py) ---------------------------------------------------

SMALL_PATTERNS = [b".".join(t) for n in (1, 2, 3) for t in itertools.product([b"a", b"b", b"*", b">"], repeat=n)]
SMALL_LITERALS = [b".".join(t) for n in (1, 2, 3, 4) for t in itertools.product([b"a", b"b", b"z"], repeat=n)]


def test_match_literal_against_oracle() -> None:
    for p in SMALL_PATTERNS:
        for lit in SMALL_LITERALS:
            assert match_literal(lit, p) == naive_match(lit, p), (lit, p)


def test_subjects_collide_against_brute_force() -> None:
    valid = [p for p in SMALL_PATTERNS if valid_sub_subject(p)]
    for a in valid:
        for b in valid:
            brute = any(naive_match(lit, a) and naive_match(lit, b) for lit in SMALL_LITERALS)
            assert subjects_collide(a, b) == brute, (a, b)


@pytest.mark.parametrize(
    ("subject", "valid"),
    [(b"foo", True), (b"foo.bar", True), (b"foo.*", True), (b"foo.>", True), (b">", True), (b"*", True),
     (b"foo.b*r", True), (b"foo..bar", False), (b".foo", False), (b"foo.", False), (b"foo.>.bar", False),
     (b"", False), (b"foo bar", False), (b"foo\tbar", False), (b"a.\r", False), (b"q>", True)],
)  # fmt: skip
def test_is_valid_subject(subject: bytes, valid: bool) -> None:
    assert is_valid_subject(subject) is valid


@pytest.mark.parametrize(
    ("subject", "valid"),
    [(b"foo", True), (b"foo.bar", True), (b"foo.b*r", True), (b"foo.*", False), (b"foo.>", False),
     (b"*", False), (b">", False), (b"foo..bar", False), (b".foo", False), (b"foo.", False)],
)  # fmt: skip
def test_is_valid_literal_subject(subject: bytes, valid: bool) -> None:
    assert is_valid_literal_subject(subject) is valid


@pytest.mark.parametrize(
    ("subject", "literal"),
    [(b"foo", True), (b"foo.b*r", True), (b"x>", True), (b"foo.*", False), (b"foo.>", False), (b"*", False)],
)
def test_is_literal(subject: bytes, literal: bool) -> None:
    assert is_literal(subject) is literal
