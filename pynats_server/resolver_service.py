"""The account resolver's system-account side (nats-server accounts.go DirAccResolver.Start,
CacheDirAccResolver.Start, events.go accountClaimUpdate): requests that store, look up,
list and delete account JWTs, the synchronisation of full resolvers across a cluster, and
fetching a JWT this server lacks from the others. asyncio glue around resolver.py and
operator.py; the handlers subscribe with an InternalClient of the system account.

Subjects (the account key is the `*`):
- `$SYS.REQ.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE` and the older
  `$SYS.ACCOUNT.*.CLAIMS.UPDATE`: a new account JWT. A directory resolver stores it (a
  cache only when it has the account) and the live account follows; a memory resolver
  only updates a loaded account. Every server with the subscription answers, so a request
  sent on one server of a cluster reaches and updates all of them.
- `$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP` (full resolvers): the stored JWT, or an empty reply.
- `$SYS.REQ.CLAIMS.LIST`, `$SYS.REQ.CLAIMS.DELETE` (a request signed by the operator).
- `$SYS.REQ.CLAIMS.PACK` (full resolvers): every `interval`, each server sends the hash of
  its store; a server whose store differs answers with its JWTs, which the asker merges
  (newer wins), so full resolvers converge even when an update missed one of them.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from . import jwt, nkeys_util
from .internal import InternalClient
from .protocol import wire
from .resolver import DirResolver, ResolverError

if TYPE_CHECKING:
    from .accounts import Account
    from .core import ServerCore
    from .log import Logger
    from .resolver import MemResolver
    from .sublist import Subscription


class ResolverOwner(Protocol):
    """What the resolver's services use of operator mode (operator.OperatorMode)."""

    server: ServerCore
    log: Logger
    operators: list[jwt.OperatorClaims]
    resolver: MemResolver | DirResolver | None

    def update_with_jwt(self, acc: Account, token: str) -> None: ...
    def account_removed(self, name: str) -> None: ...

CLAIMS_UPDATE = "$SYS.REQ.CLAIMS.UPDATE"
UPDATE_OLD = "$SYS.ACCOUNT.{}.CLAIMS.UPDATE"
UPDATE_NEW = "$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE"
LOOKUP = "$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP"
PACK = "$SYS.REQ.CLAIMS.PACK"
LIST = "$SYS.REQ.CLAIMS.LIST"
DELETE = "$SYS.REQ.CLAIMS.DELETE"
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _server_hash(name: str) -> str:
    """nats-server's getHash: 8 characters naming a server in inbox subjects."""
    return base64.urlsafe_b64encode(hashlib.sha256(name.encode()).digest()).decode()[:8]


def _split(hdr: int, msg: bytes) -> tuple[bytes, bytes]:
    """(header block, payload) of a delivered message (payload with its CRLF)."""
    if hdr > 0:
        return msg[:hdr], msg[hdr:-2]
    return b"", msg[:-2]


class _Fetch:
    __slots__ = ("name", "expected", "waiters", "timer", "done")

    def __init__(self, name: str, expected: int) -> None:
        self.name = name
        self.expected = expected
        self.waiters: list[Callable[[str, str], None]] = []
        self.timer: Any = None
        self.done = False


class ResolverService:
    """The resolver's internal subscriptions and timers on one server."""

    def __init__(self, op: ResolverOwner) -> None:
        self.op = op
        self.server = op.server
        self.log = op.log
        self.client: InternalClient | None = None
        self._queue: list[tuple[Callable[..., None], str, bytes | None, bytes, bytes]] = []
        self._drain_scheduled = False
        self._timers: list[Any] = []
        self._fetches: dict[str, _Fetch] = {}  # reply subject -> pending fetch
        self._by_name: dict[str, _Fetch] = {}
        self.inbox = ""
        self.running = False

    # -- lifecycle

    def start(self) -> None:
        srv = self.server
        sacc = srv.system_account
        if sacc is None:
            return
        self.client = InternalClient(srv, sacc, "System")
        self.client.echo = False  # as nats-server's system client: its own requests are not for it
        self.running = True
        self.inbox = f"$SYS._INBOX.{_server_hash(srv.name)}"
        self._sub(f"{self.inbox}.*", self._inbox_reply, raw=True)
        res = self.op.resolver
        if not isinstance(res, DirResolver):
            # A memory resolver (or none): updates go to loaded accounts only.
            for s in (UPDATE_OLD, UPDATE_NEW):
                self._sub(s.format("*"), self._account_claim_update)
            return
        store = res.dir
        store.changed = self._changed
        store.deleted = self.op.account_removed
        store.operator_keys = self._operator_keys()[1]
        full = res.kind == "FULL"
        for s in (UPDATE_OLD, UPDATE_NEW):
            self._sub(s.format("*"), self._dir_update)
        self._sub(CLAIMS_UPDATE, self._dir_claims_update, strip_headers=True)
        if full:
            self._sub(LOOKUP.format("*"), self._lookup)
            self._sub(PACK, self._pack_request)
            self._every(res.interval, self._send_pack)
        self._sub(LIST, self._list)
        self._sub(DELETE, self._delete, strip_headers=True)
        self._every(store.expire_interval(), self._expire)
        sys_name = srv.system_account.name if srv.system_account is not None else ""
        st = srv.system_account.jwt if srv.system_account is not None else None
        if st is not None and not st.token and len(self.op.operators) == 1:
            self.log.notice("Using bootstrapping system account")
            self._every(1.0, lambda: self._bootstrap(sys_name))

    def stop(self) -> None:
        self.running = False
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        for f in list(self._by_name.values()):
            if f.timer is not None:
                f.timer.cancel()
        self._fetches.clear()
        self._by_name.clear()

    def _every(self, interval: float, fn: Callable[[], None]) -> None:
        loop = self.server.loop

        def tick() -> None:
            if not self.running:
                return
            try:
                fn()
            except Exception as e:  # a timer's failure never takes the server down
                self.log.error(f"DirResolver - {e!r}")
            self.server.flush_dirty()
            self._timers.append(loop.call_later(interval, tick))
            if len(self._timers) > 16:
                self._timers = [t for t in self._timers if not t.cancelled()][-8:]

        self._timers.append(loop.call_later(interval, tick))

    def _sub(self, subject: str, handler: Callable[..., None], *, strip_headers: bool = False,
             raw: bool = False) -> Subscription:
        assert self.client is not None

        def on_msg(sub: Subscription, origin: Any, acc: Account, subj: bytes, reply: bytes | None,
                   hdr: int, msg: Any) -> bool:
            data = bytes(msg)
            hdrs, body = _split(hdr, data)
            payload = body if strip_headers or raw else (hdrs + body)
            if raw:
                # Inbox replies are taken at once (a waiting fetch), in order.
                handler(subj.decode(errors="replace"), reply, hdrs, payload)
                return True
            self._queue.append((handler, subj.decode(errors="replace"), reply, hdrs, payload))
            if not self._drain_scheduled:
                self._drain_scheduled = True
                self.server.loop.call_soon(self._drain)
            return True

        return self.client.subscribe(subject.encode(), on_msg)

    def _drain(self) -> None:
        self._drain_scheduled = False
        queue, self._queue = self._queue, []
        for handler, subject, reply, hdrs, body in queue:
            if not self.running:
                break
            try:
                handler(subject, reply, hdrs, body)
            except Exception as e:  # a bad request never takes the server down
                self.log.error(f"Error handling resolver request on {subject}: {e!r}")
        self.server.flush_dirty()

    # -- sending

    def publish(self, subject: str | bytes, payload: bytes, reply: str | None = None) -> None:
        if self.client is None:
            return
        from .delivery import deliver_msg

        subj = subject.encode() if isinstance(subject, str) else subject
        # Without a reply the field stays empty (`MSG subject sid  size`), as nats-server writes it.
        deliver_msg(self.client, self.client.account, subj, reply.encode() if reply else b"", -1, payload + b"\r\n")
        self.server.schedule_flush()

    def _server_info(self) -> dict[str, Any]:
        sysacc = self.server.sysacc
        if sysacc is not None:
            return sysacc.server_info()
        srv = self.server
        return {"name": srv.name, "host": srv.opts.host, "id": srv.id}

    def respond_update(self, reply: bytes | None, acc: str, message: str, err: str | None = None) -> None:
        """respondToUpdate: the log line, and the answer if a reply subject was given."""
        if err is None:
            self.log.debug(f"{message} - {acc}" if acc else message)
        else:
            self.log.error(f"{message} - {acc} - {err}" if acc else f"{message} - {err}")
        if not reply:
            return
        resp: dict[str, Any] = {"server": self._server_info()}
        if err is None:
            data: dict[str, Any] = {}
            if acc:
                data["account"] = acc
            data["code"] = 200
            data["message"] = message
            resp["data"] = data
        else:
            e: dict[str, Any] = {}
            if acc:
                e["account"] = acc
            e["code"] = 500
            e["description"] = f"{message} - {err}"
            resp["error"] = e
        self.publish(reply, wire.go_json(resp))

    # -- memory resolver: updates of loaded accounts (accountClaimUpdate)

    def _account_claim_update(self, subject: str, reply: bytes | None, hdrs: bytes, body: bytes) -> None:
        pub = _account_of(subject)
        if pub is None:
            self.log.debug(f'Received account claims update on bad subject "{subject}"')
            return
        text = body.decode("utf-8", "surrogateescape")
        if not body:
            self.respond_update(reply, pub, "jwt update error", "request body is empty")
            return
        try:
            claims = jwt.decode_account(text)
        except jwt.JWTError as e:
            self.respond_update(reply, pub, "jwt update resulted in error", str(e))
            return
        if claims.sub != pub:
            self.respond_update(reply, pub, "jwt update resulted in error", "subject does not match jwt content")
            return
        acc = self.server.accounts.get(pub)
        if acc is None:
            self.respond_update(reply, pub, "jwt update skipped")
            return
        try:
            self.op.update_with_jwt(acc, text)
        except Exception as e:  # LookupError_: the verification's text
            self.respond_update(reply, pub, "jwt update resulted in error", str(e))
            return
        self.respond_update(reply, pub, "jwt updated")

    # -- directory resolvers

    def _operator_keys(self) -> tuple[str, set[str], bool]:
        """getOperatorKeys: the first operator, the keys that may sign, strictness."""
        ops = self.op.operators
        if not ops:
            return "", set(), False
        op = ops[0]
        keys = set(op.signing_keys)
        if not op.strict_signing_key_usage:
            keys.add(op.sub)
        return op.sub, keys, op.strict_signing_key_usage

    def _changed(self, pub: str) -> None:
        """The store has a new JWT for `pub`: a loaded account follows it."""
        res = self.op.resolver
        acc = self.server.accounts.get(pub)
        if acc is None or not isinstance(res, DirResolver):
            return
        try:
            token = res.dir.load(pub)
        except (OSError, ResolverError) as e:
            self.log.error(f"DirResolver - Update got error on load: {e}")
            return
        try:
            self.op.update_with_jwt(acc, token)
        except Exception as e:  # LookupError_
            if res.kind == "FULL":
                self.log.error(f'DirResolver - Update for account "{pub}" resulted in error {e}')
            else:
                self.log.error(f"DirResolver - Update resulted in error {e}")

    def _validate(self, claims: jwt.AccountClaims) -> str | None:
        """claimValidate: blocking problems (time checks aside)."""
        vr = claims.validate()
        if vr.is_blocking(False):
            return "validation errors: [" + " ".join(vr.errors()) + "]"
        return None

    def _dir_update(self, subject: str, reply: bytes | None, hdrs: bytes, body: bytes) -> None:
        res = self.op.resolver
        assert isinstance(res, DirResolver)
        cache = res.kind == "CACHE"
        pub = _account_of(subject)
        if pub is None:
            what = "jwt update cache skipped" if cache else "jwt update skipped"
            self.log.debug(f'DirResolver - {what} due to bad subject "{subject}"')
            return
        op, _, strict = self._operator_keys()
        text = body.decode("utf-8", "surrogateescape")
        err_msg = "jwt update cache resulted in error" if cache else "jwt update resulted in error"
        try:
            claims = jwt.decode_account(text)
        except jwt.JWTError as e:
            self.respond_update(reply, pub if cache else "n/a", err_msg, str(e))
            return
        if cache:
            if claims.sub != pub:
                self.respond_update(reply, pub, err_msg, "subject does not match jwt content")
            elif claims.iss == op and strict:
                self.respond_update(reply, pub, err_msg, "operator requires issuer to be a signing key")
            elif pub not in self.server.accounts:
                self.respond_update(reply, pub, "jwt update cache skipped")
            elif (problem := self._validate(claims)) is not None:
                self.respond_update(reply, claims.sub, "jwt update cache validation failed", problem)
            else:
                self._save(reply, pub, text, err_msg, "jwt updated cache")
            return
        if (problem := self._validate(claims)) is not None:
            self.respond_update(reply, claims.sub, "jwt validation failed", problem)
        elif claims.sub != pub:
            self.respond_update(reply, pub, err_msg, "subject does not match jwt content")
        elif claims.iss == op and strict:
            self.respond_update(reply, pub, err_msg, "operator requires issuer to be a signing key")
        else:
            self._save(reply, pub, text, err_msg, "jwt updated")

    def _dir_claims_update(self, subject: str, reply: bytes | None, hdrs: bytes, body: bytes) -> None:
        res = self.op.resolver
        assert isinstance(res, DirResolver)
        cache = res.kind == "CACHE"
        op, _, strict = self._operator_keys()
        text = body.decode("utf-8", "surrogateescape")
        err_msg = "jwt update cache resulted in error" if cache else "jwt update resulted in error"
        try:
            claims = jwt.decode_account(text)
        except jwt.JWTError as e:
            self.respond_update(reply, "n/a", err_msg, str(e))
            return
        if claims.iss == op and strict:
            self.respond_update(reply, claims.sub, err_msg, "operator requires issuer to be a signing key")
        elif cache and claims.sub not in self.server.accounts:
            self.respond_update(reply, claims.sub, "jwt update cache skipped")
        elif (problem := self._validate(claims)) is not None:
            what = "jwt update cache validation failed" if cache else "jwt validation failed"
            self.respond_update(reply, claims.sub, what, problem)
        else:
            self._save(reply, claims.sub, text, err_msg, "jwt updated cache" if cache else "jwt updated")

    def _save(self, reply: bytes | None, pub: str, text: str, err_msg: str, ok_msg: str) -> None:
        res = self.op.resolver
        assert isinstance(res, DirResolver)
        try:
            res.dir.save(pub, text)
        except (OSError, ResolverError) as e:
            self.respond_update(reply, pub, err_msg, str(e))
            return
        self.respond_update(reply, pub, ok_msg)

    def _lookup(self, subject: str, reply: bytes | None, hdrs: bytes, body: bytes) -> None:
        if not reply:
            return
        toks = subject.split(".")
        if len(toks) != 6:
            return
        name = toks[3]
        res = self.op.resolver
        assert isinstance(res, DirResolver)
        try:
            token = res.dir.load(name)
        except FileNotFoundError:
            self.log.debug(f'DirResolver - Could not find account "{name}"')
            self.publish(reply, b"")
            return
        except (OSError, ResolverError) as e:
            self.log.error(f'DirResolver - Error looking up account "{name}": {e}')
            return
        self.publish(reply, token.encode("utf-8", "surrogateescape"))

    def _list(self, subject: str, reply: bytes | None, hdrs: bytes, body: bytes) -> None:
        if not reply:
            return
        res = self.op.resolver
        assert isinstance(res, DirResolver)
        ids = res.dir.list_accounts()
        self.log.debug(f"list request responded with {len(ids)} account ids")
        self.publish(reply, wire.go_json({"data": ids, "server": self._server_info()}))

    def _delete(self, subject: str, reply: bytes | None, hdrs: bytes, body: bytes) -> None:
        res = self.op.resolver
        assert isinstance(res, DirResolver)
        store = res.dir
        srv = self.server
        sys_name = srv.system_account.name if srv.system_account is not None else ""
        subj = ""
        err = ""
        ids: list[str] = []
        try:
            gk = jwt.decode_generic(body.decode("utf-8", "surrogateescape"))
        except jwt.JWTError:
            gk = None
        if gk is not None:
            subj = gk.sub
            data = gk.nats
            if store.delete_type == "none":
                err = "delete must be enabled in server config"
            elif subj != gk.iss:
                err = "not self signed"
            elif gk.iss not in store.operator_keys:
                err = "not trusted"
            elif "accounts" not in data or not isinstance(data["accounts"], list):
                err = "malformed request"
            else:
                for a in data["accounts"]:
                    if not isinstance(a, str) or not nkeys_util.is_valid_public_key(a, nkeys_util.PREFIX_ACCOUNT):
                        err = "malformed request"
                        break
                    if a == sys_name:
                        err = "not allowed to delete system account"
                        break
                    ids.append(a)
        if gk is None or err:
            # nats-server reports an undecodable request with the decode error.
            if gk is None:
                try:
                    jwt.decode_generic(body.decode("utf-8", "surrogateescape"))
                except jwt.JWTError as e:
                    err = str(e)
            self.respond_update(reply, "", f"delete accounts request by {subj} failed", err)
            return
        errs = []
        passed = 0
        for a in ids:
            try:
                store.delete(a)
                passed += 1
            except (OSError, ResolverError) as e:
                errs.append(str(e))
        if not errs:
            self.respond_update(reply, "", f"deleted {passed} accounts")
        else:
            self.respond_update(reply, "", f"deleted {passed} accounts, failed for {len(errs)}", "\n".join(errs))

    # -- full resolvers: packs

    def _send_pack(self) -> None:
        res = self.op.resolver
        assert isinstance(res, DirResolver)
        h = res.dir.hash()
        self.log.debug(f"DirResolver - Checking store state: {h.hex()}")
        self.publish(PACK, h, reply=f"{self.inbox}.PACK")

    def _pack_request(self, subject: str, reply: bytes | None, hdrs: bytes, body: bytes) -> None:
        if not reply or reply.decode(errors="replace") == f"{self.inbox}.PACK":
            return  # our own request
        res = self.op.resolver
        assert isinstance(res, DirResolver)
        ours = res.dir.hash()
        if body == ours:
            self.publish(reply, b"")
            self.log.debug(f"DirResolver - Pack request matches hash {ours.hex()}")
            return
        for msg in res.dir.pack(1):
            self.publish(reply, msg.encode("utf-8", "surrogateescape"))
        self.log.debug(f"DirResolver - Pack request hash {body.hex()} - finished responding with hash {ours.hex()}")
        self.publish(reply, b"")

    def _pack_response(self, subject: str, reply: bytes | None, hdrs: bytes, body: bytes) -> None:
        res = self.op.resolver
        assert isinstance(res, DirResolver)
        before = res.dir.hash()
        if not body:
            self.log.debug(f"DirResolver - Merging finished and resulting in: {before.hex()}")
            return
        try:
            res.dir.merge(body.decode("utf-8", "surrogateescape"))
        except (OSError, ResolverError) as e:
            self.log.error(f"DirResolver - Merging resulted in error: {e}")
            return
        self.log.debug(f"DirResolver - Merging succeeded and changed {before.hex()} to {res.dir.hash().hex()}")

    def _expire(self) -> None:
        res = self.op.resolver
        if isinstance(res, DirResolver):
            res.dir.expire()

    # -- fetching from other servers (Server.fetch)

    def fetch(self, name: str, done: Callable[[str, str], None]) -> None:
        """Ask the cluster for account `name`'s JWT: `done(jwt, "")` once one arrived (it is
        stored), or `done("", error)` with nats-server's error."""
        res = self.op.resolver
        if not self.running or not isinstance(res, DirResolver):
            done("", "eventing shut down")
            return
        f = self._by_name.get(name)
        if f is None:
            sysacc = self.server.sysacc
            expected = len(sysacc.servers) if sysacc is not None else 0
            f = _Fetch(name, expected)
            reply = f"{self.inbox}.{''.join(random.choice(_DIGITS) for _ in range(8))}"
            self._fetches[reply] = f
            self._by_name[name] = f
            f.timer = self.server.loop.call_later(res.timeout, self._fetch_timeout, reply)
            f.waiters.append(done)
            self.publish(LOOKUP.format(name), b"", reply=reply)
            return
        f.waiters.append(done)

    def _finish_fetch(self, reply: str, token: str, err: str) -> None:
        f = self._fetches.pop(reply, None)
        if f is None or f.done:
            return
        f.done = True
        self._by_name.pop(f.name, None)
        if f.timer is not None:
            f.timer.cancel()
        if token:
            res = self.op.resolver
            assert isinstance(res, DirResolver)
            try:
                res.store(f.name, token)
            except (OSError, ResolverError) as e:
                token, err = "", str(e)
        for w in f.waiters:
            w(token, err)
        self.server.flush_dirty()

    def _fetch_timeout(self, reply: str) -> None:
        self._finish_fetch(reply, "", "fetching jwt timed out")

    def _inbox_reply(self, subject: str, reply: bytes | None, hdrs: bytes, body: bytes) -> None:
        if subject == f"{self.inbox}.PACK":
            self._queue.append((self._pack_response, subject, reply, hdrs, body))
            if not self._drain_scheduled:
                self._drain_scheduled = True
                self.server.loop.call_soon(self._drain)
            return
        f = self._fetches.get(subject)
        if f is None:
            return
        f.expected -= 1
        if not body and f.expected > 0:
            return  # an empty answer: wait for the other servers
        token = body.decode("utf-8", "surrogateescape")
        # Answered after this delivery, not inside it.
        self.server.loop.call_soon(self._finish_fetch, subject, token, "" if token else "account jwt not found")

    def _bootstrap(self, name: str) -> None:
        """Fetch the real system account JWT until it arrives (bootstrapping system account)."""
        acc = self.server.system_account
        if acc is None or acc.jwt is None or acc.jwt.token:
            return

        def got(token: str, err: str) -> None:
            if not token or acc.jwt.token:
                return
            try:
                self.op.update_with_jwt(acc, token)
            except Exception:  # noqa: BLE001 - try again next second
                return
            self.log.notice("System account fetched and updated")

        try:
            token = self.op.resolver.fetch(name)  # type: ignore[union-attr]
        except ResolverError:
            self.fetch(name, got)
            return
        got(token, "")


def _account_of(subject: str) -> str | None:
    toks = subject.split(".")
    if len(toks) == 6:
        return toks[3]
    if len(toks) == 5:
        return toks[2]
    return None
