"""Subject and queue rules (nats-server sublist.go), on bytes."""

from __future__ import annotations

_WS = b" \t\n\r\f"


def is_valid_subject(subject: bytes) -> bool:
    """A subscription subject: no empty token, `>` only as the last token, no whitespace."""
    if not subject:
        return False
    tokens = subject.split(b".")
    last = len(tokens) - 1
    for i, t in enumerate(tokens):
        if not t:
            return False
        if len(t) == 1:
            if t == b">" and i != last:
                return False
            if t in _WS:
                return False
        elif any(c in t for c in (b" ", b"\t", b"\n", b"\r", b"\f")):
            return False
    return True


def is_valid_literal_subject(subject: bytes) -> bool:
    """A publish subject under pedantic mode: no empty token and no wildcard token."""
    for t in subject.split(b"."):
        if not t or t == b"*" or t == b">":
            return False
    return True


def is_literal(subject: bytes) -> bool:
    """True when no token is a wildcard (`*` and `>` count only as whole tokens)."""
    if b"*" not in subject and b">" not in subject:
        return True
    for t in subject.split(b"."):
        if t == b"*" or t == b">":
            return False
    return True


def match_literal(literal: bytes, pattern: bytes) -> bool:
    """Does the literal subject `literal` match the subscription subject `pattern`?"""
    lt = literal.split(b".")
    pt = pattern.split(b".")
    n = len(lt)
    for i, p in enumerate(pt):
        if p == b">":
            return n > i
        if i >= n:
            return False
        if p != b"*" and p != lt[i]:
            return False
    return n == len(pt)


def subjects_collide(a: bytes, b: bytes) -> bool:
    """Could some literal subject match both `a` and `b`?"""
    ta = a.split(b".")
    tb = b.split(b".")
    for i in range(min(len(ta), len(tb))):
        x, y = ta[i], tb[i]
        if x == b">" or y == b">":
            return True
        if x != y and x != b"*" and y != b"*":
            return False
    return len(ta) == len(tb)


def is_subset_match(subject: str, test: str) -> bool:
    """Is every subject matched by `subject` also matched by `test`? (isSubsetMatch)"""
    tokens = subject.split(".")
    ttokens = test.split(".")
    for i, t2 in enumerate(ttokens):
        if i >= len(tokens) or not t2:
            return False
        if t2 == ">":
            return True
        t1 = tokens[i]
        if not t1 or t1 == ">":
            return False
        if t1 == "*":
            if t2 != "*":
                return False
            continue
        if t2 != "*" and t1 != t2:
            return False
    return len(tokens) == len(ttokens)


def has_wildcard(subject: str) -> bool:
    return any(t in ("*", ">") for t in subject.split("."))
