"""JWT operator mode: accounts from signed JWTs, users authenticated by their user JWTs
(nats-server auth.go processClientOrLeafAuthentication, accounts.go UpdateAccountClaims,
server.go account lookups).

In operator mode the server trusts operator keys (from the operator JWTs or `trusted`).
An account is known by its public key; its JWT, signed by a trusted operator key, comes from
the resolver and says what the account exports and imports, its limits, signing keys and
revoked users. A client connects with a user JWT (signed by the account or one of its
signing keys) and proves it holds the user's key by signing the INFO nonce (unless the JWT
is a bearer token).

Accounts are built on first use (a client's CONNECT, an import naming them) and registered
under their public key like any other account: routes carry that name. A new JWT for a
known account (a claims update) is applied to the live account in place: exports, imports,
limits, revocations; clients that lose their right to be connected are closed.

The decisions follow nats-server's order, with its log lines; they are written for one
asyncio loop (no locking).
"""

from __future__ import annotations

import ipaddress
import re
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import jwt, nkeys_util, operator_config
from .accounts import Account, AccountError
from .auth import Identity, Verdict
from .options import Permissions, ResponsePermission, User
from .protocol.subjects import is_valid_subject
from .resolver import DirResolver, MemResolver, ResolverError, make_resolver

if TYPE_CHECKING:
    from .core import ServerCore

CONNECTION_TYPES = ("STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS", "IN_PROCESS")
UPDATE_TOO_SOON = 1.0  # an expired account is fetched again at most this often
_MUSTACHE = re.compile(r"{{2}([^}]+)}{2}")
_MAX_TEMPLATE_EXPANSIONS = 4096


class LookupError_(Exception):
    """An account could not be resolved; the text is nats-server's error."""


class FetchNeeded(Exception):
    """The directory resolver lacks the account: the other servers must be asked first
    (asynchronously; nats-server blocks the connection meanwhile, pynats-server holds it)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class AccountState:
    """Operator mode's knowledge of one JWT account (Account.jwt)."""

    def __init__(self, claims: jwt.AccountClaims | None, token: str) -> None:
        self.claims = claims
        self.token = token  # the JWT the account was last built from ("" for a bootstrap)
        self.issuer = claims.iss if claims is not None else ""
        # Who may sign its users: its own key (unless the operator is strict) and its
        # signing keys, a scoped key mapping to its scope.
        self.signing_keys: dict[str, dict[str, Any] | None] = {}
        self.revoked_users: dict[str, int] | None = None
        self.disallow_bearer = False
        self.expired = False
        self.timer: Any = None
        self.updated = 0.0  # monotonic time of the last update
        self.incomplete = False
        self.default_permissions: Permissions | None = None

    def activation_ok(self, exporter: Account, importer: str, claim: Any, ea: Any) -> bool:
        """nats-server's checkActivation: the import claim carries a valid activation token
        issued by the exporter (or one of its signing keys) for this importer."""
        if not claim or not claim.get("token"):
            return False
        vr = jwt.ValidationResults()
        jwt.validate_import(claim, importer, vr)
        if vr.is_blocking(True):
            return False
        try:
            act = jwt.decode_activation(claim["token"])
        except jwt.JWTError:
            return False
        ia = act.issuer_account
        if ia:
            if ia != exporter.name:
                if exporter.server is not None:
                    exporter.server.log.error(
                        f'Invalid issuer account "{ia}" in activation claim (subject: "{act.import_subject}" - '
                        f'type: "{act.import_type}") for account "{exporter.name}"'
                    )
                return False
            if act.iss not in self.signing_keys:
                return False
        if act.validate().is_blocking(True):
            return False
        if act.exp and act.exp <= int(time.time()):
            return False
        return not jwt.is_revoked(ea.revoked, act.sub, act.iat)


def build_permissions(p: dict[str, Any] | None) -> Permissions | None:
    """nats-server's buildPermissionsFromJwt: None when the claims set none."""
    if not p:
        return None
    out: Permissions | None = None
    pub, sub, resp = p.get("pub") or {}, p.get("sub") or {}, p.get("resp")
    if pub.get("allow") or pub.get("deny"):
        out = Permissions(publish_allow=list(pub.get("allow") or []), publish_deny=list(pub.get("deny") or []) or None)
        if not pub.get("allow"):
            out.publish_allow = None
    if sub.get("allow") or sub.get("deny"):
        out = out or Permissions()
        out.subscribe_allow = list(sub.get("allow") or []) or None
        out.subscribe_deny = list(sub.get("deny") or []) or None
    if resp is not None:
        out = out or Permissions()
        out.response = ResponsePermission(resp.get("max", 0), resp.get("ttl", 0) / 1e9)
        if out.publish_allow is None:
            out.publish_allow = []
    return out


def _go_strs(items: list[str] | None) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    return "[" + " ".join(_q(s) for s in items or ()) + "]"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_time(t: float) -> str:
    """Go's time.Unix(t, 0) printed with %v, in local time (`2026-11-30 19:03:25 +0000 UTC`)."""
    lt = time.localtime(t)
    return time.strftime("%Y-%m-%d %H:%M:%S %z ", lt) + (lt.tm_zone or "")


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


_QUIET: Any = _Quiet()


class OperatorMode:
    """The trusted keys, the resolver, and account lookups of a server in operator mode."""

    def __init__(self, server: ServerCore) -> None:
        opts = server.opts
        self.server = server
        self.log = server.log
        self.operators = operator_config.operator_claims(opts)
        self.trusted, self.strict_keys = operator_config.trusted_keys(opts)
        r = opts.resolver
        self.resolver: MemResolver | DirResolver | None = None
        if r is not None:
            self.resolver = make_resolver(
                r.kind, r.dir, allow_delete=r.allow_delete, hard_delete=r.hard_delete, limit=r.limit,
                ttl=r.ttl, interval=r.interval, timeout=r.timeout,
            )  # fmt: skip
            for k, v in opts.resolver_preload.items():
                try:
                    self.resolver.store(k, v)
                except ResolverError:
                    pass
        self.pinned: set[str] | None = None
        if opts.resolver_pinned_accounts:
            self.pinned = set(opts.resolver_pinned_accounts)
            sys_name = operator_config.system_account(opts)
            if sys_name:
                self.pinned.add(sys_name)
        self._building: dict[str, Account] = {}
        self.incomplete_exporters: set[str] = set()
        self.service: Any = None  # resolver_service.ResolverService, once started
        self._rate_logged: dict[str, float] = {}
        self._fetch_errors: dict[str, str] = {}  # the last remote fetch's error, by account

    @classmethod
    def create(cls, server: ServerCore) -> OperatorMode:
        """Operator mode for a server; ValueError with nats-server's text when its options
        would not start nats-server."""
        problem = operator_config.validate(server.opts)
        if problem:
            raise ValueError(problem)
        return cls(server)

    def system_account_name(self) -> str:
        return operator_config.system_account(self.server.opts)

    # -- startup ----------------------------------------------------------------------

    def startup_log(self) -> None:
        """The lines nats-server logs about its operators when it starts."""
        log = self.log
        if self.operators:
            log.notice("Trusted Operators")
        for op in self.operators:
            log.notice(f"  System  : {_q(op.aud)}")
            log.notice(f"  Operator: {_q(op.name)}")
            log.notice(f"  Issued  : {go_time(op.iat)}")
            log.notice("  Expires : Never" if not op.exp else f"  Expires : {go_time(op.exp)}")
        if self.operators and not operator_config.system_account(self.server.opts):
            log.warn("Trusted Operators should utilize a System Account")
        res = self.resolver
        if isinstance(res, DirResolver):
            what = "all" if res.kind == "FULL" else "some"
            log.notice(f"Managing {what} jwt in exclusive directory {res.dir.directory}")

    def start(self) -> None:
        """Once the server (and its cluster) is up: the resolver's system account handlers."""
        if self.server.system_account is None:
            return
        from .resolver_service import ResolverService

        self.service = ResolverService(self)
        self.service.start()

    def check_preloads(self) -> None:
        """nats-server's checkResolvePreloads: warn about preloaded accounts that will not
        validate (expired ...)."""
        for k, v in self.server.opts.resolver_preload.items():
            try:
                claims = jwt.decode_account(v)
            except jwt.JWTError:
                self.log.error(f"Preloaded account [{k}] not valid")
                continue
            vr = claims.validate()
            if vr.is_blocking(True):
                self.log.warn(f"Account [{k}] has validation issues:")
                for i in vr.issues:
                    self.log.warn(f"  - {i.description}")

    def system_account(self, name: str) -> Account:
        """The system account at startup: resolved, or (a directory resolver that does not
        have it yet) a bootstrapping account until its JWT arrives. ValueError with
        nats-server's text when it cannot be had."""
        log, self.log = self.log, _QUIET  # nats-server logs nothing of this (not set up yet)
        try:
            return self.lookup(name, quiet=True)
        except LookupError_ as e:
            if isinstance(self.resolver, DirResolver) and len(self.operators) == 1:
                acc = Account(name)
                st = AccountState(None, "")
                st.issuer = self.operators[0].iss
                st.signing_keys = {name: None}
                acc.jwt = st
                self.server.register_account(acc)
                return acc
            raise ValueError(f"error resolving system account: {e}") from None
        finally:
            self.log = log

    # -- lookups (lookupAccount, fetchAccount) ------------------------------------------------

    def is_trusted(self, issuer: str) -> bool:
        return issuer in self.trusted

    def lookup(self, name: str, *, quiet: bool = False, remote: bool = True) -> Account:
        """The account named `name` (a public key), fetched and built if need be; raises
        LookupError_ with nats-server's error text."""
        srv = self.server
        acc = srv.accounts.get(name) or self._building.get(name)
        if acc is not None:
            st = acc.jwt
            if st is not None and st.expired:
                self.log.debug(f"Requested account [{name}] has expired")
                if self.resolver is None:
                    raise LookupError_("account expired")
                try:
                    self.update_from_resolver(acc, remote=remote)
                except LookupError_:
                    raise LookupError_("account expired") from None
                if acc.jwt.expired:
                    raise LookupError_("account expired")
            return acc
        if self.resolver is None:
            raise LookupError_("account missing")
        token = self.fetch_raw(name, quiet=quiet, remote=remote)
        claims = self.verify_account(token)
        if claims.sub != name:
            raise LookupError_("account validation failed")
        return self.build(claims, token)

    def fetch_raw(self, name: str, *, quiet: bool = False, remote: bool = True) -> str:
        """fetchRawAccountClaims: the JWT from the resolver, with nats-server's log lines."""
        assert self.resolver is not None
        if not nkeys_util.is_valid_public_key(name, nkeys_util.PREFIX_ACCOUNT):
            err = "will only fetch valid account keys"
            if not quiet:
                self.log.debug(f"Account [{name}] fetch took 0s")
                self.log.warn(f"Account fetch failed: {err}")
            raise LookupError_(err)
        start = time.perf_counter()
        try:
            token = self.resolver.fetch(name)
            err = ""
        except ResolverError as e:
            token, err = "", str(e)
            if isinstance(self.resolver, DirResolver) and self.service is not None and self.service.running:
                if remote:
                    raise FetchNeeded(name) from None
                if name in self._fetch_errors:
                    # The remote fetch just failed (and was logged): that is the error.
                    raise LookupError_(self._fetch_errors.pop(name)) from None
        if not quiet:
            self.log.debug(f"Account [{name}] fetch took {_go_dur(time.perf_counter() - start)}")
            if err:
                self.log.warn(f"Account fetch failed: {err}")
        if err:
            raise LookupError_(err)
        return token

    def fetch_async(self, name: str, done: Any) -> None:
        """Ask the other servers for an account's JWT (stored when it comes); `done(err)`
        with "" once it is here, after nats-server's log lines for the fetch."""
        start = time.perf_counter()

        def finished(token: str, err: str) -> None:
            took = time.perf_counter() - start
            line = f"Account [{name}] fetch took {_go_dur(took)}"
            self.log.warn(line) if took > 1.0 else self.log.debug(line)
            if err:
                self.log.warn(f"Account fetch failed: {err}")
                self._fetch_errors[name] = err
            done(err)

        self.service.fetch(name, finished)

    def verify_account(self, token: str) -> jwt.AccountClaims:
        """verifyAccountClaims: decoded, signed by a trusted key, valid now."""
        try:
            claims = jwt.decode_account(token)
        except jwt.JWTError as e:
            raise LookupError_(str(e)) from None
        if not self.is_trusted(claims.iss):
            raise LookupError_("account validation failed")
        if claims.validate().is_blocking(True):
            raise LookupError_("account validation failed")
        return claims

    def build(self, claims: jwt.AccountClaims, token: str) -> Account:
        """buildInternalAccount + registration: a new account from its claims."""
        srv = self.server
        acc = Account(claims.sub)
        acc.jwt = AccountState(claims, token)
        # Known while it is built, so that imports that lead back to it find it.
        self._building[claims.sub] = acc
        try:
            self.update_claims(acc, claims, new=True)
        finally:
            self._building.pop(claims.sub, None)
        existing = srv.accounts.get(claims.sub)
        if existing is not None:
            self.update_with_jwt(existing, token)
            return existing
        srv.register_account(acc)
        if srv.loop is not None:
            acc.start(srv)
        sysacc = getattr(srv, "sysacc", None)  # none while the server is being set up
        if sysacc is not None and not acc.is_system:
            sysacc.account_added(acc)
        return acc

    def route_account(self, name: str, route: Any, *, fetch: bool = False) -> Account | None:
        """An account a route names before any client here used it (processRemoteSub /
        routed messages): with a memory resolver it is looked up; with a directory
        resolver an RS+ gets an expired placeholder (interest is kept; the first client
        makes it fetch the real claims), a message only what is stored here."""
        static = not isinstance(self.resolver, DirResolver)
        if static or fetch:
            try:
                return self.lookup(name, remote=False)
            except (LookupError_, FetchNeeded):
                return None
        acc = Account(name)
        st = AccountState(None, "")
        st.expired = True
        st.incomplete = True
        acc.jwt = st
        self.server.register_account(acc)
        if self.server.loop is not None:
            acc.start(self.server)
        return acc

    def update_from_resolver(self, acc: Account, *, remote: bool = True) -> None:
        """updateAccount: fetch the account's JWT again and apply it."""
        st = acc.jwt
        if not st.incomplete and time.monotonic() - st.updated < UPDATE_TOO_SOON:
            self.log.debug(f"Requested account update for [{acc.name}] ignored, too soon")
            raise LookupError_("account resolver update too soon")
        self.update_with_jwt(acc, self.fetch_raw(acc.name, remote=remote))

    def update_with_jwt(self, acc: Account, token: str) -> None:
        """updateAccountWithClaimJWT: apply a (new) JWT to a live account."""
        st = acc.jwt
        if st is None:
            return
        if st.token and st.token == token and not st.incomplete:
            self.log.debug(f"Requested account update for [{acc.name}], same claims detected")
            return
        claims = self.verify_account(token)
        st.issuer = claims.iss
        if claims.sub != acc.name:
            raise LookupError_("account validation failed")
        self.update_claims(acc, claims)
        st.token = token
        st.claims = claims

    # -- applying claims (UpdateAccountClaims) ---------------------------------------------

    def update_claims(self, acc: Account, claims: jwt.AccountClaims, *, new: bool = False) -> None:
        srv = self.server
        log = self.log
        st: AccountState = acc.jwt
        log.debug(f"Updating account claims: {acc.name}/{claims.name}")
        self._check_expiration(acc, claims)
        acc.name_tag = claims.name
        tl = acc.trace_label()
        old_stream_exports = dict(acc.stream_exports)
        old_service_exports = dict(acc.service_exports)
        old_signing = dict(st.signing_keys)
        acc.stream_exports = {}
        acc.service_exports = {}
        old_stream_imports = acc.stream_imports
        acc.stream_imports = []
        for from_ in list(acc.service_imports):
            acc.remove_service_import(from_)
        # Accounts signed by a strict operator's signing key: users must be signed by one of
        # the account's signing keys, not the account's own key.
        strict = st.issuer in self.strict_keys
        keys: dict[str, dict[str, Any] | None] = dict(claims.signing_keys)
        if not strict:
            keys[acc.name] = None
        st.signing_keys = keys
        altered = {k for k, v in keys.items() if k in old_signing and old_signing[k] != v}
        signers_changed = set(keys) != set(old_signing) or bool(altered)
        for e in claims.exports:
            subj = e.get("subject", "")
            revoked = e.get("revocations") or None
            if e.get("type") == 1:
                log.debug(f'Adding stream export "{subj}" for {tl}')
                try:
                    acc.add_stream_export(subj, [] if e.get("token_req") else None,
                                          e.get("account_token_position", 0), bool(e.get("token_req")))
                    acc.stream_exports[subj].revoked = revoked
                except AccountError as err:
                    log.debug(f"Error adding stream export to account [{tl}]: {err}")
            elif e.get("type") == 2:
                log.debug(f'Adding service export "{subj}" for {tl}')
                rt = {"Stream": "Stream", "Chunked": "Chunked"}.get(e.get("response_type", ""), "Singleton")
                threshold = e.get("response_threshold", 0) / 1e9
                try:
                    acc.add_service_export(
                        subj, [] if e.get("token_req") else None, response_type=rt,
                        account_pos=e.get("account_token_position", 0), token_req=bool(e.get("token_req")),
                        **({"threshold": threshold} if threshold > 0 else {}),
                    )  # fmt: skip
                    acc.service_exports[subj].revoked = revoked
                except AccountError as err:
                    log.debug(f"Error adding service export to account [{tl}]: {err}")
        incomplete = []
        for i in claims.imports:
            try:
                exporter = self.lookup(i.get("account", ""))
            except FetchNeeded as need:
                # Imported from an account this server has yet to fetch: incomplete until
                # it arrives (nats-server waits for it here).
                self._fetch_exporter(need.name)
                log.error(f"Can't locate account [{need.name}] for import of "
                          f"[{i.get('subject', '')}] {jwt.type_name(i.get('type', 0))} (err=fetching jwt)")
                incomplete.append(i)
                continue
            except LookupError_ as err:
                log.error(f"Can't locate account [{i.get('account', '')}] for import of "
                          f"[{i.get('subject', '')}] {jwt.type_name(i.get('type', 0))} (err={err})")
                incomplete.append(i)
                continue
            frm, to = i.get("subject", ""), i.get("to", "")
            if i.get("type") == 1:
                if i.get("local_subject"):
                    to = i["local_subject"]
                log.debug(f'Adding stream import {exporter.trace_label()}:"{frm}" for {tl}:"{to}"')
                try:
                    if i.get("local_subject"):
                        acc.add_stream_import(exporter, frm, to=to, claim=i)
                    else:
                        acc.add_stream_import(exporter, frm, prefix=to, claim=i)
                except AccountError as err:
                    log.debug(f"Error adding stream import to account [{tl}]: {_import_error(err)}")
                    incomplete.append(i)
            elif i.get("type") == 2:
                if i.get("local_subject"):
                    frm, to = i["local_subject"], i.get("subject", "")
                log.debug(f'Adding service import {exporter.trace_label()}:"{frm}" for {tl}:"{to}"')
                try:
                    if not is_valid_subject(frm.encode()) or (to and not is_valid_subject(to.encode())):
                        raise AccountError("invalid subject")
                    acc.add_service_import(exporter, frm, to, share=bool(i.get("share")), claim=i)
                except AccountError as err:
                    log.debug(f"Error adding service import to account [{tl}]: {_import_error(err)}")
                    incomplete.append(i)
        # Not there yet while the server is being made (its accounts come first).
        sysacc = getattr(srv, "sysacc", None)
        if sysacc is not None and (acc.is_system or not new):
            sysacc.account_added(acc)  # the system's exports, or its imports of them
        st.incomplete = bool(incomplete)
        for i in incomplete:
            self.incomplete_exporters.add(i.get("account", ""))
        lim = claims.limits
        acc.max_subs = _clamp(lim.get("subs", 0))
        acc.max_payload = _clamp(lim.get("payload", 0))
        acc.max_conns = _clamp(lim.get("conn", 0))
        acc.max_leafs = _clamp(lim.get("leaf", 0))
        st.disallow_bearer = bool(lim.get("disallow_bearer"))
        st.revoked_users = dict(claims.revocations) if claims.revocations else None
        st.default_permissions = build_permissions(claims.nats.get("default_permissions"))
        acc.default_permissions = st.default_permissions
        st.updated = time.monotonic()
        if not new:
            self._live_update(acc, claims, old_stream_exports, old_service_exports, old_stream_imports,
                              signers_changed, altered)
        if acc.name in self.incomplete_exporters:
            self._refresh_incomplete(acc)

    def _fetch_exporter(self, name: str) -> None:
        def done(err: str) -> None:
            if err:
                return
            try:
                self.lookup(name, remote=False)
            except (LookupError_, FetchNeeded):
                pass

        self.fetch_async(name, done)

    def _live_update(self, acc: Account, claims: jwt.AccountClaims, old_stream_exports: dict[str, Any],
                     old_service_exports: dict[str, Any], old_stream_imports: list[Any],
                     signers_changed: bool, altered: set[str]) -> None:
        st: AccountState = acc.jwt
        # A live account: its clients, and the accounts importing from it, follow.
        exports_changed = (_export_keys(old_stream_exports) != _export_keys(acc.stream_exports)
                           or _export_keys(old_service_exports) != _export_keys(acc.service_exports))
        self._refresh_importers(acc, exports_changed or signers_changed)
        clients = sorted(self._clients(acc), key=lambda c: c.start)
        if _stream_import_keys(old_stream_imports) != _stream_import_keys(acc.stream_imports):
            for c in clients:
                c.refresh_shadows()
        count = 0
        for c in clients:
            if c.closed:
                continue
            if acc.max_conns != -1 and count >= acc.max_conns:
                c.close_over_account_limit()
                continue
            count += 1
            c.apply_limits()
            uc = c.jwt_claims
            if uc is not None and (claims.revocations or st.disallow_bearer):
                if uc.bearer_token and st.disallow_bearer:
                    c.debug("Bearer User JWT not allowed")
                    c.jwt_auth_violation()
                    continue
                if claims.is_claim_revoked(uc):
                    c.revoked()
                    continue
        if signers_changed:
            for c in clients:
                sk = c.jwt_signing_key
                if c.closed or not sk:
                    continue
                if sk in altered or sk not in st.signing_keys:
                    c.close_connection("Authentication Failure")

    def _refresh_incomplete(self, acc: Account) -> None:
        """Accounts whose imports from `acc` failed (it was missing) are built again."""
        if acc.name in self.incomplete_exporters:
            self.incomplete_exporters.discard(acc.name)
            for other in list(self.server.accounts.values()):
                ost = other.jwt
                if other is acc or ost is None or not ost.incomplete or not ost.token:
                    continue
                try:
                    oclaims = self.verify_account(ost.token)
                except LookupError_:
                    continue
                self.update_claims(other, oclaims)
                if acc.name in self.incomplete_exporters:
                    self.incomplete_exporters.discard(acc.name)
                    self.log.error(f"Account {other.trace_label()} has issues importing account {acc.name}")

    def _refresh_importers(self, exporter: Account, changed: bool) -> None:
        """The exporter's exports (or signing keys) changed: the accounts whose claims import
        from it are applied again, keeping only the imports still authorized and taking
        back any that now are."""
        if not changed:
            return
        for acc in list(self.server.accounts.values()):
            st = acc.jwt
            if acc is exporter or st is None or st.claims is None:
                continue
            if any(i.get("account") == exporter.name for i in st.claims.imports):
                self.update_claims(acc, st.claims)

    def _clients(self, acc: Account) -> list[Any]:
        """The account's connections: clients, and leafs (nats-server's account clients)."""
        out = [c for c in self.server.clients.values() if c.account is acc and not c.closed]
        leafs = self.server.leafnodes
        if leafs is not None:
            out += [c for c in leafs.by_account.get(acc.name_b, ()) if not c.closed]
        return out

    def _check_expiration(self, acc: Account, claims: jwt.AccountClaims) -> None:
        st: AccountState = acc.jwt
        if st.timer is not None:
            st.timer.cancel()
            st.timer = None
        if not claims.exp:
            st.expired = False
            return
        now = int(time.time())
        if claims.exp <= now:
            st.expired = True
            return
        st.expired = False
        loop = self.server.loop
        if loop is not None:
            st.timer = loop.call_later(claims.exp - now, self._account_expired, acc)

    def _account_expired(self, acc: Account) -> None:
        """expiredTimeout: the account's JWT expired; its clients go."""
        st: AccountState = acc.jwt
        st.timer = None
        st.expired = True
        for c in self._clients(acc):
            c.account_expired()
        self.server.schedule_flush()

    def account_removed(self, name: str) -> None:
        """removeCb: a deleted account: no more connections, current clients go."""
        acc = self.server.accounts.get(name)
        if acc is None or acc.jwt is None:
            return
        self.log.debug(f"Disable account {name} due to remove")
        acc.max_subs = acc.max_payload = acc.max_conns = acc.max_leafs = 0
        acc.jwt.updated = time.monotonic()
        self._account_expired(acc)
        for frm in list(acc.service_imports):
            acc.remove_service_import(frm)
        if acc.jwt.timer is not None:
            acc.jwt.timer.cancel()
            acc.jwt.timer = None

    # -- authentication ---------------------------------------------------------------------

    def safe_check(self, c: Any, co: dict[str, Any], *, remote: bool = True, conn_type: str = "STANDARD",
                   kind: str = "Client") -> Verdict:
        """`check`, and a refusal (never a crash) if anything unforeseen goes wrong."""
        try:
            return self.check(c, co, remote=remote, conn_type=conn_type, kind=kind)
        except Exception as e:  # a bug must not take the server down: refuse this one
            self.log.error(f"Error checking a user JWT: {e!r}")
            return Verdict(False, Identity(jwt=bool(co.get("jwt"))))

    def check(self, c: Any, co: dict[str, Any], *, remote: bool = True, conn_type: str = "STANDARD",
              kind: str = "Client") -> Verdict:
        """processClientOrLeafAuthentication's JWT branch for a client's (or, with
        conn_type LEAFNODE and kind Leafnode, a leaf's) CONNECT."""
        ident = Identity(str(co.get("nkey") or ""), str(co.get("user") or ""), str(co.get("auth_token") or ""))
        token = str(co.get("jwt") or "")
        ident.jwt = bool(token)
        uc: jwt.UserClaims | None
        try:
            uc = jwt.decode_user(token)
        except jwt.JWTError:
            uc = None
        if uc is None:
            return Verdict(False, ident, debug="Authentication requires a user JWT")
        vr = uc.validate()
        if vr.is_blocking(True):
            return Verdict(False, ident, debug=f"User JWT no longer valid: {vr.go_repr()}")
        issuer = uc.issuer_account or uc.iss
        if self.pinned is not None and issuer not in self.pinned:
            return Verdict(False, ident, debug=f"Account {issuer} not listed as operator pinned account")
        try:
            acc = self.lookup(issuer, remote=remote)
        except FetchNeeded as need:
            v = Verdict(False, ident)
            v.fetch = need.name  # the client waits for the other servers' answer
            return v
        except LookupError_ as e:
            return Verdict(False, ident, debug=f"Account JWT lookup error: {e}")
        st: AccountState = acc.jwt
        if st is None or not self.is_trusted(st.issuer):
            return Verdict(False, ident, debug="Account JWT not signed by trusted operator")
        if uc.iss not in st.signing_keys:
            return Verdict(False, ident, debug="User JWT issuer is not known")
        nats = uc.nats
        scope = st.signing_keys[uc.iss]
        if scope is not None:
            if uc.iss != scope.get("key"):
                return Verdict(False, ident, debug="User JWT is not valid: issuer not the scoped signer")
            if not uc.has_empty_permissions():
                return Verdict(False, ident, debug="User JWT is not valid: scoped users require no permissions or limits set")
            try:
                nats = apply_template(dict(scope.get("template") or {}), uc, acc)
            except ValueError:
                return Verdict(False, ident, debug="User JWT generated invalid permissions")
        if st.expired:
            return Verdict(False, ident, debug="Account JWT has expired")
        bearer = bool(nats.get("bearer_token"))
        if bearer and st.disallow_bearer:
            return Verdict(False, ident, debug="Account does not allow bearer tokens")
        debug = ""
        cts = [str(t).upper() for t in nats.get("allowed_connection_types") or ()]
        allowed = [t for t in cts if t in CONNECTION_TYPES]
        unknown = [t for t in cts if t not in CONNECTION_TYPES]
        if unknown:
            debug = f"invalid connection types {_go_strs(unknown)}"
            if not allowed:
                return Verdict(False, ident, debug=debug)
        if allowed and conn_type not in allowed:
            v = Verdict(False, ident, debug="Connection type not allowed")
            v.debug_before = debug
            return v
        if not bearer:
            why = nkeys_util.check_nonce_sig(uc.sub, str(co.get("sig") or ""), c.nonce)
            if why:
                return Verdict(False, ident, debug=why)
        if jwt.is_revoked(st.revoked_users, uc.sub, uc.iat):
            return Verdict(False, ident, debug="User authentication revoked")
        if not validate_src(nats.get("src"), c.host):
            return Verdict(False, ident, error=f"Bad src Ip {c.host}")
        ok, valid_for = validate_times(nats.get("times"), nats.get("times_location") or "")
        if not ok:
            return Verdict(False, ident, error="Outside connect times")
        perms = build_permissions(nats)
        user = User(nkey=uc.sub, permissions=perms, account=acc.name)
        ident.pubkey = uc.sub
        v = Verdict(True, ident, user)
        v.account = acc
        v.jwt = uc
        v.jwt_limits = (_clamp(nats.get("subs", 0)), _clamp(nats.get("payload", 0)))
        v.jwt_signing_key = uc.iss if uc.issuer_account else ""
        v.jwt_expires = _expires_in(uc.exp, valid_for)
        v.debug_before = debug
        v.debug = (
            f"Authenticated JWT: {kind} {_q(uc.sub)} (claim-name: {_q(uc.name)}, claim-tags: "
            f"{_go_strs(nats.get('tags'))}) signed with {_q(uc.iss)} by Account {_q(issuer)} "
            f"(claim-name: {_q(acc.name_tag)}, claim-tags: {_go_strs(st.claims.nats.get('tags') if st.claims else None)}) "
            f"signed with {_q(st.issuer)} has mappings false accused 0x{id(acc):x}"
        )
        return v

    def rate_ok(self, text: str) -> bool:
        """nats-server's rate-limited logging: a statement once, until forgotten (a minute)."""
        now = time.monotonic()
        last = self._rate_logged.get(text)
        if last is not None and now - last < 60.0:
            return False
        if len(self._rate_logged) > 1000:
            self._rate_logged = {k: t for k, t in self._rate_logged.items() if now - t < 60.0}
        self._rate_logged[text] = now
        return True

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()
        for acc in self.server.accounts.values():
            st = acc.jwt
            if st is not None and st.timer is not None:
                st.timer.cancel()
                st.timer = None
        if self.resolver is not None:
            self.resolver.close()


def _import_error(err: AccountError) -> str:
    text = str(err)
    return {"stream import not authorized": "stream import not authorized",
            "service import not authorized": "service import not authorized"}.get(text, text)


def _export_keys(d: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {(k, e.token_req, frozenset(e.approved or ()), e.account_pos,
             tuple(sorted((e.revoked or {}).items()))) for k, e in d.items()}


def _stream_import_keys(imports: list[Any]) -> set[tuple[str, str, str]]:
    return {(im.acc.name, im.from_, im.to) for im in imports}


def _clamp(v: int) -> int:
    """clampInt64ToInt32."""
    return max(min(int(v), (1 << 31) - 1), -(1 << 31))


def _go_dur(seconds: float) -> str:
    """Go's Duration.String for small durations (`2.433µs`, `1.2ms`)."""
    ns = seconds * 1e9
    if ns < 1000:
        return f"{int(ns)}ns"
    if ns < 1e6:
        return f"{ns / 1e3:.3f}".rstrip("0").rstrip(".") + "µs"
    if ns < 1e9:
        return f"{ns / 1e6:.6f}".rstrip("0").rstrip(".") + "ms"
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _expires_in(exp: int, valid_for: float) -> float | None:
    """setExpiration: seconds until the client must go (None: never)."""
    if not exp:
        return valid_for or None
    left = max(exp - int(time.time()), 0)
    if valid_for and valid_for < left:
        return valid_for
    return float(left)


def validate_src(src: list[str] | None, host: str) -> bool:
    """validateSrc: the client's address is in one of the user's CIDRs (if it has any)."""
    if not src:
        return True
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    for cidr in src:
        try:
            if ip in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            return False
    return False


def validate_times(times: list[dict[str, str]] | None, location: str, now: datetime | None = None) -> tuple[bool, float]:
    """validateTimes: is now within one of the user's daily windows, and for how long
    (seconds; the longest remaining window)."""
    if not times:
        return True, 0.0
    tz: Any = None
    if location:
        try:
            tz = jwt._zone(location)
        except Exception:  # noqa: BLE001 - any failure to load the zone
            return False, 0.0
    cur = now or datetime.now().astimezone()
    if tz is not None:
        cur = cur.astimezone(tz)
    ok, valid_for = False, 0.0
    for tr in times:
        s = jwt.parse_clock(tr.get("start") or "")
        e = jwt.parse_clock(tr.get("end") or "")
        if s is None or e is None:
            return False, 0.0
        start = cur.replace(hour=s[0], minute=s[1], second=s[2], microsecond=0)
        end = cur.replace(hour=e[0], minute=e[1], second=e[2], microsecond=0)
        in_range, left = _time_range(start, end, cur)
        if in_range and (not ok or left > valid_for):
            ok, valid_for = True, left
    return ok, valid_for


def _time_range(start: datetime, end: datetime, now: datetime) -> tuple[bool, float]:
    if start < now < end:
        return True, (end - now).total_seconds()
    if start > end:
        if end > now:
            return True, (end - now).total_seconds()
        end = end + timedelta(days=1)
        if start < now < end:
            return True, (end - now).total_seconds()
    return False, 0.0


def apply_template(template: dict[str, Any], uc: jwt.UserClaims, acc: Account) -> dict[str, Any]:
    """processUserPermissionsTemplate: a scoped signing key's template, with `{{name()}}`,
    `{{subject()}}`, `{{account-name()}}`, `{{account-subject()}}`, `{{tag(x)}}` and
    `{{account-tag(x)}}` filled in from the user's and account's claims. ValueError when it
    generates an invalid subject where that is an error."""
    out = dict(template)
    user_tags = uc.nats.get("tags") or []
    st = acc.jwt
    acc_tags = (st.claims.nats.get("tags") if st is not None and st.claims is not None else None) or []

    def values(op: str) -> tuple[list[str], bool]:
        low = op.lower()
        if low == "name()":
            return [uc.name], False
        if low == "subject()":
            return [uc.sub], False
        if low == "account-name()":
            return [acc.name_tag], False
        if low == "account-subject()":
            return [uc.issuer_account], False
        for prefix, tags in (("tag(", user_tags), ("account-tag(", acc_tags)):
            if low.startswith(prefix) and op.endswith(")"):
                key = op[len(prefix):-1].lower() + ":"
                return [t[len(key):] for t in tags if t.startswith(key)], True
        raise ValueError(f"template operation {op!r} is not defined")

    def expand(items: list[str] | None, fail_on_bad: bool) -> list[str] | None:
        if not items or not any(_MUSTACHE.search(i) for i in items):
            return items
        emitted: list[str] = []
        for item in items:
            toks = _MUSTACHE.findall(item)
            full = [m.group(0) for m in _MUSTACHE.finditer(item)]
            vals = []
            for t in toks:
                v, is_tag = values(t.strip())
                if is_tag and not v:
                    if fail_on_bad:
                        raise ValueError("generated invalid subject")
                    v = [" "]
                vals.append(v)
            combos: list[list[str]] = [[]]
            for v in vals:
                combos = [c + [x] for c in combos for x in v]
                if len(combos) > _MAX_TEMPLATE_EXPANSIONS:
                    raise ValueError("too many permission template expansions")
            for combo in combos:
                subj = item
                for src, val in zip(full, combo, strict=True):
                    subj = subj.replace(src, val)
                if is_valid_subject(subj.split(" ")[0].encode()):
                    emitted.append(subj)
                elif fail_on_bad:
                    raise ValueError("generated invalid subject")
        return emitted

    for key in ("sub", "pub"):
        p = dict(out.get(key) or {})
        had_allow = bool(p.get("allow"))
        p["allow"] = expand(p.get("allow"), False)
        p["deny"] = expand(p.get("deny"), True)
        if had_allow and not p["allow"]:
            p["deny"] = list(p.get("deny") or []) + [">"]
        out[key] = p
    return out
