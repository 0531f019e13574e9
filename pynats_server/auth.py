"""Users and permissions (nats-server auth.go, client.go canSubscribe / pubAllowed).

Sans-IO: who may connect, and what a connected user may publish and subscribe to.
"""

from __future__ import annotations

import hmac
from typing import Any

from .options import Options, Permissions, User
from .sublist import InvalidSubject, Sublist, Subscription


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def authenticate(opts: Options, co: dict[str, Any]) -> User | bool:
    """The user a CONNECT authenticates as (True when no users are configured), or False."""
    if opts.users:
        name = co.get("user")
        for u in opts.users:
            if isinstance(name, str) and _same(u.user, name) and _same(u.password, str(co.get("pass") or "")):
                return u
        return False
    if opts.authorization:
        tok = co.get("auth_token")
        return isinstance(tok, str) and _same(tok, opts.authorization)
    if opts.username:
        return co.get("user") == opts.username and co.get("pass") == opts.password
    return True


def _sublist(entries: list[str] | None) -> Sublist | None:
    if entries is None:
        return None
    sl = Sublist()
    for e in entries:
        parts = e.split()
        subject = parts[0].encode() if parts else b""
        queue = parts[1].encode() if len(parts) > 1 else None
        try:
            sl.insert(Subscription(None, subject, queue))
        except InvalidSubject:
            continue
    return sl


class ClientPermissions:
    """A connected user's permissions, with the publish decisions cached per subject."""

    def __init__(self, p: Permissions) -> None:
        self.pub_allow = _sublist(p.publish_allow)
        self.pub_deny = _sublist(p.publish_deny)
        self.sub_allow = _sublist(p.subscribe_allow)
        self.sub_deny = _sublist(p.subscribe_deny)
        self._pub_cache: dict[bytes, bool] = {}

    def can_publish(self, subject: bytes) -> bool:
        ok = self._pub_cache.get(subject)
        if ok is None:
            ok = True
            if self.pub_allow is not None:
                r = self.pub_allow.match(subject)
                ok = bool(r.psubs or r.qsubs)
            if ok and self.pub_deny is not None:
                r = self.pub_deny.match(subject)
                ok = not (r.psubs or r.qsubs)
            if len(self._pub_cache) > 1024:
                self._pub_cache.clear()
            self._pub_cache[subject] = ok
        return ok

    def can_subscribe(self, subject: bytes, queue: bytes | None) -> bool:
        allowed = True
        if self.sub_allow is not None:
            r = self.sub_allow.match(subject)
            allowed = bool(r.psubs)
            if queue is not None and r.qsubs:
                allowed = _queue_listed(queue, r.qsubs)
        if allowed and self.sub_deny is not None:
            r = self.sub_deny.match(subject)
            allowed = not r.psubs
            if allowed and queue is not None and r.qsubs:
                allowed = not _queue_listed(queue, r.qsubs)
        return allowed


def _queue_listed(queue: bytes, groups: list[tuple[bytes, list[Subscription]]]) -> bool:
    from .protocol.subjects import match_literal

    for name, _ in groups:
        if name == queue or (b"*" in name or b">" in name) and match_literal(queue, name):
            return True
    return False
