"""What a client connection does in operator mode (a mixin of ClientConnection): limits from
its user and account JWTs, the end of its JWT's validity, and the closes an account update
may cause (nats-server client.go applyAccountLimits, setExpiration, authExpired ...).

Kept apart from client.py: nothing here runs for a server without operators, and nothing
touches the publish path (the payload limit is the parser's, the subscription limit is
checked per SUB).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .protocol import wire

if TYPE_CHECKING:
    from .auth import Verdict

E_TOO_MANY_ACCOUNT_CONNECTIONS = "maximum account active connections exceeded"
E_USER_EXPIRED = "User Authentication Expired"
E_ACCOUNT_EXPIRED = "Account Authentication Expired"
E_USER_REVOKED = "User Authentication Revoked"
MAX_SUB_REPORT_INTERVAL = 2.0  # nats-server logs "maximum subscriptions exceeded" this often


def _min_limit(v: int, limit: int) -> int:
    """nats-server's minLimit: the lower of two limits, -1 being none."""
    if v != -1:
        return limit if limit != -1 and limit < v else v
    return limit


class JWTClient:
    """Operator-mode state and actions of a client connection."""

    jwt_claims: Any = None  # the user's claims once its JWT was accepted
    jwt_signing_key = ""  # the account signing key that signed the user (scoped or not)
    _jwt_limits = (-1, -1)  # the user's (subs, payload)
    _expire_handle: Any = None
    msubs = -1  # subscriptions allowed (-1: no limit)
    _ncs_acc = ""  # the account's label once connected (nats-server's ncsAcc)

    if TYPE_CHECKING:  # provided by ClientConnection / Connection
        server: Any
        account: Any
        subs: dict[bytes, Any]
        shadows: dict[Any, list[tuple[Any, Any]]]
        parser: Any
        ident: Any
        closed: bool
        transport: Any
        co: dict[str, Any]
        _auth_pending: bool

        def debug(self, text: str) -> None: ...
        def error(self, text: str) -> None: ...
        def send_err(self, text: str) -> None: ...
        def close_connection(self, reason: str, *, abort: bool = False) -> None: ...
        def _add_shadows(self, sub: Any) -> None: ...
        def _auth_violation(self, ident: Any) -> None: ...
        def _finish_connect(self, v: Verdict, first: bool) -> bool: ...
        def _process(self, fn: Any, *args: Any) -> None: ...
        def authenticator(self) -> Any: ...

    # -- connecting

    def jwt_fetch(self, v: Verdict, first: bool) -> None:
        """The user's account must be fetched from other servers: hold the rest of the
        input until it is here (or not), then decide again."""
        from .protocol.parser import Hold

        self._auth_pending = True
        if self.transport is not None:
            self.transport.pause_reading()
        self.server.operator.fetch_async(v.fetch, lambda err: self._jwt_fetched(first))
        raise Hold()

    def _jwt_fetched(self, first: bool) -> None:
        self._auth_pending = False
        if self.closed:
            return
        v = self.server.operator.safe_check(self, self.co, remote=False, conn_type=self.authenticator().conn_type)
        if not self._finish_connect(v, first):
            self.server.flush_dirty()
            return
        if self.transport is not None:
            self.transport.resume_reading()
        self._process(self.parser.resume)

    def jwt_register(self, v: Verdict) -> bool:
        """The account's connection limit, checked before the client joins it
        (registerWithAccount); False when the client was closed for it."""
        acc = v.account
        if acc.max_conns != -1 and acc.nclients >= acc.max_conns:
            self.close_over_account_limit()
            # processConnect's error, logged again as the read ends.
            self.error(E_TOO_MANY_ACCOUNT_CONNECTIONS)
            return False
        return True

    def jwt_connected(self, v: Verdict) -> None:
        """The user JWT was accepted and the client bound to its account."""
        self.jwt_claims = v.jwt
        self.jwt_signing_key = v.jwt_signing_key
        self._jwt_limits = v.jwt_limits
        self.debug(v.debug)
        if self._expire_handle is not None:
            self._expire_handle.cancel()
            self._expire_handle = None
        if v.jwt_expires is not None:
            self._expire_handle = self.server.loop.call_later(v.jwt_expires, self._user_expired)
        self.apply_limits()

    def apply_limits(self) -> None:
        """applyAccountLimits: subscriptions and payload size from the user's JWT (or its
        scoped signing key's template), the account and the server, the lowest winning."""
        srv = self.server
        opts = srv.opts
        msubs, mpay = -1, -1
        if self.jwt_claims is not None:
            msubs, mpay = self._jwt_limits
            st = self.account.jwt
            scope = st.signing_keys.get(self.jwt_signing_key) if st is not None and self.jwt_signing_key else None
            if scope is not None:
                t = scope.get("template") or {}
                msubs, mpay = int(t.get("subs", -1)), int(t.get("payload", -1))
        acc = self.account
        mpay = _min_limit(mpay, acc.max_payload)
        msubs = _min_limit(msubs, acc.max_subs)
        server_pay = opts.max_payload or -1
        server_subs = opts.max_subscriptions or -1
        lowered = _min_limit(mpay, server_pay)
        if lowered != mpay and mpay != -1:
            self.error(f"Max Payload set to {opts.max_payload} from server overrides account or user config")
        mpay = lowered
        lowered = _min_limit(msubs, server_subs)
        if lowered != msubs and msubs != -1:
            self.error(f"Max Subscriptions set to {opts.max_subscriptions} from server overrides account or user config")
        self.msubs = lowered
        self.parser.max_payload = mpay if mpay != -1 else opts.max_payload
        if self.msubs != -1 and len(self.subs) >= self.msubs:
            # As nats-server: told at once, closed a moment later.
            loop = srv.loop
            loop.call_soon(self._subs_at_limit)

    def _subs_at_limit(self) -> None:
        if self.closed:
            return
        self.max_subs_exceeded()
        self.server.schedule_flush()
        self.server.loop.call_later(0.02, self._close_subs_exceeded)

    def _close_subs_exceeded(self) -> None:
        if not self.closed:
            self.close_connection("Maximum Subscriptions Exceeded")
            self.server.schedule_flush()

    def max_subs_exceeded(self) -> None:
        """maxSubsExceeded: logged at most every 2 s per account."""
        acc = self.account
        now = time.monotonic()
        last = getattr(acc, "_last_sub_limit_log", None)
        if last is None or now - last >= MAX_SUB_REPORT_INTERVAL:
            acc._last_sub_limit_log = now
            self.error(wire.E_MAX_SUBSCRIPTIONS)
        self.send_err(wire.E_MAX_SUBSCRIPTIONS)

    # -- closes

    def _rate_limited(self, level: str, statement: str) -> None:
        """sendErrAndDebug/sendErrAndErr's log line: `<statement> - Account:<acc> - <user>`
        once connected, each distinct statement once a minute."""
        text = f"{statement} - Account:{self._ncs_acc}" if self._ncs_acc else statement
        op = self.server.operator
        if op is not None and not op.rate_ok(text):
            return
        suffix = f" - {self.ident.label()}" if self._ncs_acc and self.ident.raw else ""
        getattr(self, level)(f"{text}{suffix}")

    def _rate_limited_debug(self, statement: str) -> None:
        self._rate_limited("debug", statement)

    def _user_expired(self) -> None:
        self._expire_handle = None
        if self.closed:
            return
        self.send_err(E_USER_EXPIRED)
        self._rate_limited_debug(E_USER_EXPIRED)
        self.close_connection("Authentication Expired")
        self.server.schedule_flush()

    def account_expired(self) -> None:
        if self.closed:
            return
        self.send_err(E_ACCOUNT_EXPIRED)
        self._rate_limited_debug(E_ACCOUNT_EXPIRED)
        self.close_connection("Authentication Expired")

    def revoked(self) -> None:
        if self.closed:
            return
        self.send_err(E_USER_REVOKED)
        self._rate_limited_debug(E_USER_REVOKED)
        self.close_connection("Credentials Revoked")

    def close_over_account_limit(self) -> None:
        """maxAccountConnExceeded."""
        self.send_err(E_TOO_MANY_ACCOUNT_CONNECTIONS)
        self._rate_limited("error", E_TOO_MANY_ACCOUNT_CONNECTIONS)
        self.close_connection("Maximum Account Connections Exceeded")

    def jwt_auth_violation(self) -> None:
        self._auth_violation(self.ident)

    def jwt_closed(self) -> None:
        if self._expire_handle is not None:
            self._expire_handle.cancel()
            self._expire_handle = None

    # -- account updates

    def refresh_shadows(self) -> None:
        """The account's stream imports changed: every subscription's shadows are made
        again (processSubsOnConfigReload)."""
        srv = self.server
        for sub, shadows in list(self.shadows.items()):
            for exporter, shadow in shadows:
                shadow.closed = True
                exporter.sublist.remove(shadow)
                srv.local_interest(exporter, shadow, -1)
            del self.shadows[sub]
        if self.account.stream_imports:
            for sub in list(self.subs.values()):
                self._add_shadows(sub)
