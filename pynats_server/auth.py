"""Who may connect, and what a connected client may do (nats-server auth.go, client.go).

Sans-IO. `Authenticator` decides a CONNECT the way nats-server's
processClientOrLeafAuthentication does for configured (non-JWT) auth: nkey users first,
then the users list, then a single token or user/password. `ClientPermissions` holds a
client's publish and subscribe rules, the replies it may answer (`allow_responses`) and the
delivery-time deny filter for wildcard subscriptions that overlap a subscribe deny list.

bcrypt: a configured password or token that looks like a bcrypt hash (`$2a$`, `$2b$`, `$2x$`,
`$2y$` and a two-digit cost) is only ever compared with bcrypt, never as text. A bcrypt check
takes tens to hundreds of milliseconds by design, so `Authenticator.check` leaves it to the
caller (`Verdict.bcrypt`), which runs it off the event loop.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

from . import nkeys_util
from .options import Options, Permissions, ResponsePermission, User
from .protocol.subjects import subjects_collide
from .sublist import InvalidSubject, Sublist, Subscription

# nats-server's isBcrypt: `$2`, one of a b x y, `$`, two digits, `$`.
_BCRYPT = re.compile(r"\$2[abxy]\$[0-9]{2}\$")
# Go's bcrypt reads at most this many bytes of a password; the rest is ignored.
_BCRYPT_MAX_PASSWORD = 72

# Connection types a user may be limited to (allowed_connection_types).
CONNECTION_TYPES = frozenset(
    ("STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS", "IN_PROCESS")
)

DEFAULT_RESPONSE_MAX_MSGS = 1
DEFAULT_RESPONSE_EXPIRES = 120.0  # 2 minutes
_REPLY_PRUNE_COUNT = 4096  # replies recorded between prunes of the replies map
_REPLY_PRUNE_TIME = 1.0
_DENY_CACHE_MAX = 256
_DENY_CACHE_PRUNE = 32
_PUB_CACHE_MAX = 1024


def is_bcrypt(secret: str) -> bool:
    """Does a configured password or token hold a bcrypt hash?"""
    return secret.startswith("$") and _BCRYPT.match(secret) is not None


def bcrypt_matches(hashed: str, given: str) -> bool:
    """bcrypt check of `given` against `hashed` (slow by design: run it off the event loop)."""
    import bcrypt

    # Go's bcrypt hashes only the first 72 bytes and a NUL; Python's refuses longer input.
    pw = given.encode("utf-8", "replace")[:_BCRYPT_MAX_PASSWORD]
    try:
        return bcrypt.checkpw(pw, hashed.encode("utf-8", "replace"))
    except ValueError:  # a malformed hash (bad cost, short salt, ...) matches nothing
        return False


def same_text(a: str, b: str) -> bool:
    """Constant-time comparison of two plain-text secrets."""
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def compare_passwords(server_secret: str, given: str) -> bool:
    """nats-server's comparePasswords: bcrypt for a hash, constant-time text otherwise."""
    if is_bcrypt(server_secret):
        return bcrypt_matches(server_secret, given)
    return same_text(server_secret, given)


@dataclass
class Identity:
    """The credentials of a CONNECT, after no_auth_user filled them in (nats-server's
    c.opts.Nkey / Username / Token): what log lines and /connz name the client by."""

    nkey: str = ""
    user: str = ""
    token: str = ""
    jwt: bool = False  # operator mode: the CONNECT carried a JWT
    pubkey: str = ""  # ... the user's public key, once the JWT is accepted

    @property
    def raw(self) -> str:
        """nats-server's getRawAuthUser (/connz authorized_user)."""
        if self.nkey:
            return self.nkey
        if self.user:
            return self.user
        if self.jwt:
            return self.pubkey
        return "[REDACTED]" if self.token else ""

    def describe(self) -> str:
        """nats-server's getAuthUser, as in `authentication error - User "bob"`."""
        if self.nkey:
            return f'Nkey "{_go_q(self.nkey)}"'
        if self.user:
            return f'User "{_go_q(self.user)}"'
        if self.jwt:
            return f'JWT User "{self.pubkey}"'
        return 'Token "[REDACTED]"' if self.token else 'User "N/A"'

    def label(self) -> str:
        """nats-server's getAuthUserLabel, the `$G/user:bob` part of log lines."""
        if self.nkey:
            return f"nkey:{self.nkey}"
        if self.user:
            return f"user:{self.user}"
        if self.jwt:
            return f"jwt:{self.pubkey}"
        return "token" if self.token else ""


def _go_q(s: str) -> str:
    """The inside of Go's %q for ordinary text (quotes and backslashes escaped)."""
    return s.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class Verdict:
    """The outcome of `Authenticator.check`."""

    ok: bool
    ident: Identity
    user: User | None = None  # the users-list or nkey entry; its permissions apply
    debug: str = ""  # the debug line nats-server logs for this failure, if any
    # (bcrypt hash, given secret): `ok` holds only once this check is done (and true).
    bcrypt: tuple[str, str] | None = None
    error: str = ""  # an error line nats-server logs for this failure (operator mode)
    debug_before: str = ""  # a debug line logged before `debug` (operator mode)
    # Operator mode (operator.py): the user's account, claims, limits (subs, payload), the
    # scoped signing key that signed it, and seconds until it must go (None: never).
    account: Any = None
    jwt: Any = None
    jwt_limits: tuple[int, int] = (-1, -1)
    jwt_signing_key: str = ""
    jwt_expires: float | None = None
    fetch: str = ""  # the account to fetch from other servers before deciding


def _conn_type_allowed(u: User, conn_type: str = "STANDARD") -> bool:
    return not u.allowed_connection_types or conn_type in u.allowed_connection_types


class Authenticator:
    """The configured users, nkeys and secrets (nats-server configureAuthorization)."""

    # The connection type users' allowed_connection_types are checked against: one
    # Authenticator per kind of listener (wsconn.websocket_authenticator for WEBSOCKET).
    conn_type = "STANDARD"

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.users: dict[str, User] = {}
        self.nkeys: dict[str, User] = {}
        for u in opts.users:
            if u.nkey:
                self.nkeys[u.nkey] = u
            else:
                self.users[u.user] = u
        # Operator mode (JWT users): always required, with a nonce to sign.
        jwt_mode = bool(opts.operators or opts.trusted_keys)
        self.required = bool(self.users or self.nkeys or opts.username or opts.authorization or jwt_mode)
        self.nonce_required = bool(self.nkeys) or jwt_mode
        self.no_auth_user = opts.no_auth_user if self.required else ""

    def no_auth_entry(self) -> User | None:
        """The users-list entry a client becomes when its first op is not CONNECT."""
        return self.users.get(self.no_auth_user) if self.no_auth_user else None

    def check(self, co: dict[str, Any], nonce: bytes, conn_type: str = "") -> Verdict:
        """Decide a (parsed) CONNECT; `nonce` is what the INFO sent to this client held.
        `conn_type`: the kind of connection for users' allowed_connection_types (default:
        this authenticator's; LEAFNODE for a leaf that authenticates as a user)."""
        conn_type = conn_type or self.conn_type
        ident = Identity(str(co.get("nkey") or ""), str(co.get("user") or ""), str(co.get("auth_token") or ""))
        if not self.required:
            return Verdict(True, ident)
        password = str(co.get("pass") or "")
        no_auth = self.no_auth_user
        nk: User | None = None
        user: User | None = None
        if self.nkeys:
            if no_auth and not (ident.user or password or ident.token or ident.nkey) and no_auth in self.nkeys:
                ident.nkey = no_auth
            if ident.nkey:
                nk = self.nkeys.get(ident.nkey)
                if nk is None or not _conn_type_allowed(nk, conn_type):
                    return Verdict(False, ident)
        if self.users and nk is None:
            if no_auth and not (ident.user or password or ident.token):
                u = self.users.get(no_auth)
                if u is not None:
                    # As nats-server: the client is given that user's name and password,
                    # which are then checked as usual (a bcrypt hash never matches itself).
                    ident.user, password = u.user, u.password
            if ident.user:
                user = self.users.get(ident.user)
                if user is None or not _conn_type_allowed(user, conn_type):
                    return Verdict(False, ident)
        if nk is not None:
            if nk.nkey != no_auth:
                why = nkeys_util.check_nonce_sig(nk.nkey, str(co.get("sig") or ""), nonce)
                if why:
                    return Verdict(False, ident, debug=why)
            return Verdict(True, ident, nk)
        if user is not None:
            return self._secret(ident, user.password, password, user)
        opts = self.opts
        if opts.authorization:
            return self._secret(ident, opts.authorization, ident.token, None)
        if opts.username:
            if opts.username != ident.user:
                return Verdict(False, ident)
            return self._secret(ident, opts.password or "", password, None)
        return Verdict(False, ident)

    @staticmethod
    def _secret(ident: Identity, configured: str, given: str, user: User | None) -> Verdict:
        if is_bcrypt(configured):
            return Verdict(True, ident, user, bcrypt=(configured, given))
        return Verdict(same_text(configured, given), ident, user)


def plaintext_passwords(opts: Options) -> bool:
    """nats-server warns at startup ("Plaintext passwords detected") when this is true."""
    if opts.password and not is_bcrypt(opts.password):
        return True
    return any(not u.nkey and not is_bcrypt(u.password) for u in opts.users)


def validate(opts: Options) -> str:
    """What nats-server refuses to start with in the auth options ("" when fine)."""
    if opts.operators or opts.trusted_keys:
        from .operator_config import validate as validate_operators

        problem = validate_operators(opts)
        if problem:
            return problem
    for u in opts.users:
        bad = sorted(t for t in u.allowed_connection_types if t.upper() not in CONNECTION_TYPES)
        if bad:
            return f"unknown connection type {_go_quote(bad[0])}"
    name = opts.no_auth_user
    if not name:
        return ""
    if not opts.users:
        return f'no_auth_user: "{name}" present, but users/nkeys are not defined'
    if any((u.nkey or u.user) == name for u in opts.users):
        return ""
    return (
        f'no_auth_user: "{name}" not present as user or nkey in authorization block or '
        "account configuration"
    )


def _go_quote(s: str) -> str:
    return '"' + _go_q(s) + '"'


# -- permissions ---------------------------------------------------------------------------


def _sublist(entries: list[str]) -> Sublist:
    sl = Sublist()
    for e in entries:
        parts = e.split()
        if not parts or len(parts) > 2:
            continue
        try:
            sl.insert(Subscription(None, parts[0].encode(), parts[1].encode() if len(parts) == 2 else None))
        except InvalidSubject:
            continue
    return sl


def _subset_match(subject: bytes, pattern: bytes) -> bool:
    """nats-server's subjectIsSubsetMatch: is every subject `subject` matches also matched
    by `pattern`? (`subject` may hold wildcards; a queue name is matched this way.)"""
    st = subject.split(b".")
    pt = pattern.split(b".")
    for i, p in enumerate(pt):
        if i >= len(st) or not p:
            return False
        if p == b">":
            return True
        s = st[i]
        if not s or s == b">":
            return False
        if s == b"*":
            if p != b"*":
                return False
            continue
        if p != b"*" and s != p:
            return False
    return len(st) == len(pt)


def _queue_listed(queue: bytes, groups: list[tuple[bytes, list[Subscription]]]) -> bool:
    """nats-server's queueMatches: the queue is one of the listed ones (a listed name with
    wildcards covers the queue names it matches)."""
    for name, _ in groups:
        if queue == name or ((b"*" in name or b">" in name) and _subset_match(queue, name)):
            return True
    return False


def _has_wildcard(subject: bytes) -> bool:
    if b"*" not in subject and b">" not in subject:
        return False
    return any(t == b"*" or t == b">" for t in subject.split(b"."))


class ClientPermissions:
    """A connected user's permissions (nats-server's client perms, replies and mperms)."""

    def __init__(self, p: Permissions) -> None:
        resp = p.response
        if resp is not None:
            # nats-server's validateResponsePermissions: defaults for 0, and publishing
            # is then limited to the allow list (empty when none was given) and replies.
            resp = ResponsePermission(
                resp.max_msgs or DEFAULT_RESPONSE_MAX_MSGS, resp.expires or DEFAULT_RESPONSE_EXPIRES
            )
        pub_allow = p.publish_allow
        if resp is not None and pub_allow is None:
            pub_allow = []
        # An empty publish allow list allows nothing; empty deny and subscribe lists are no lists.
        self.pub_allow = _sublist(pub_allow) if pub_allow is not None else None
        self.pub_deny = _sublist(p.publish_deny) if p.publish_deny else None
        self.sub_allow = _sublist(p.subscribe_allow) if p.subscribe_allow else None
        self.sub_deny = _sublist(p.subscribe_deny) if p.subscribe_deny else None
        self._darray = list(p.subscribe_deny or ())
        self.checks_publish = self.pub_allow is not None or self.pub_deny is not None
        self.resp = resp
        # reply subject -> [time received, responses sent]
        self.replies: dict[bytes, list[Any]] | None = {} if resp is not None else None
        self._replies_since_prune = 0
        self._last_prune = time.monotonic()
        self._pub_cache: dict[bytes, bool] = {}
        # The delivery-time deny filter: loaded when a wildcard subscription could match a
        # denied subject (nats-server's mperms), then consulted for every delivery.
        self.deny_filter: Sublist | None = None
        self._deny_cache: dict[bytes, bool] = {}

    @property
    def filters_delivery(self) -> bool:
        """Deliveries to this client need a check (a deny filter, or replies to record)."""
        return self.deny_filter is not None or self.replies is not None

    # -- publish

    def _static_pub(self, subject: bytes) -> bool:
        ok = True
        if self.pub_allow is not None:
            r = self.pub_allow.match(subject)
            ok = bool(r.psubs or r.qsubs)
        if ok and self.pub_deny is not None:
            r = self.pub_deny.match(subject)
            ok = not (r.psubs or r.qsubs)
        return ok

    def can_publish(self, subject: bytes) -> bool:
        """nats-server's pubAllowedFullCheck: the lists, then the replies this client may send."""
        ok = self._pub_cache.get(subject)
        if ok is not None:
            return ok
        ok = self._static_pub(subject)
        if not ok and self.replies is not None:
            return self._response_allowed(subject)  # not cached: it changes with each use
        if len(self._pub_cache) >= _PUB_CACHE_MAX:
            self._pub_cache.clear()
        self._pub_cache[subject] = ok
        return ok

    def _response_allowed(self, subject: bytes) -> bool:
        assert self.replies is not None and self.resp is not None
        r = self.replies.get(subject)
        if r is None:
            return False
        r[1] += 1
        resp = self.resp
        if resp.max_msgs > 0 and r[1] > resp.max_msgs:
            del self.replies[subject]
            return False
        if resp.expires > 0 and time.monotonic() - r[0] > resp.expires:
            del self.replies[subject]
            return False
        return True

    def track_reply(self, reply: bytes) -> None:
        """A message with this reply subject was delivered to the client: it may answer."""
        if self.replies is None or self.can_publish(reply):
            return
        now = time.monotonic()
        self.replies[reply] = [now, 0]
        self._replies_since_prune += 1
        if self._replies_since_prune > _REPLY_PRUNE_COUNT or now - self._last_prune > _REPLY_PRUNE_TIME:
            self._prune_replies(now)

    def _prune_replies(self, now: float) -> None:
        assert self.replies is not None and self.resp is not None
        mm, ttl = self.resp.max_msgs, self.resp.expires
        for k in [k for k, (t, n) in self.replies.items() if (mm > 0 and n >= mm) or (ttl > 0 and now - t > ttl)]:
            del self.replies[k]
        self._replies_since_prune = 0
        self._last_prune = now

    # -- subscribe

    def can_subscribe(self, subject: bytes, queue: bytes | None) -> bool:
        """nats-server's canSubscribe. A wildcard subject that may match a denied subject
        is allowed, and loads the delivery-time deny filter."""
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
            if allowed and self.deny_filter is None and _has_wildcard(subject):
                if any(subjects_collide(d.encode(), subject) for d in self._darray):
                    self.deny_filter = _sublist(self._darray)
        return allowed

    def denies_delivery(self, subject: bytes) -> bool:
        """nats-server's checkDenySub: must a message on `subject` be withheld?"""
        if self.deny_filter is None:
            return False
        cache = self._deny_cache
        denied = cache.get(subject)
        if denied is None:
            r = self.deny_filter.match(subject)
            denied = cache[subject] = bool(r.psubs)
            if len(cache) > _DENY_CACHE_MAX:
                for k in list(cache)[:_DENY_CACHE_PRUNE]:
                    del cache[k]
        return denied


# Subjects and replies nats-server refuses from every client (client.go
# processInboundClientMsg): gateway-routed replies, and service-import / JetStream ack /
# gateway reply prefixes as reply subjects.
RESERVED_REPLY_PREFIXES = (b"_R_.", b"$JS.ACK.", b"_GR_.")
RESERVED_SUBJECT_PREFIXES = (b"_GR_.", b"$NRG.")


def reserved_reply(reply: bytes) -> bool:
    """A reply subject clients may not use (given it starts with a reserved prefix)."""
    if reply.startswith(b"_R_."):
        return True
    if reply.startswith(b"$JS.ACK."):
        return len(reply) > 8
    return reply.startswith(b"_GR_.") and len(reply) > 5


def reserved_subject(subject: bytes) -> bool:
    """A publish subject clients outside the system account may not use."""
    return (subject.startswith(b"_GR_.") and len(subject) > 5) or subject.startswith(b"$NRG.")
