"""Accounts: separate subject spaces, and what may cross between them (nats-server accounts.go).

Every client belongs to one account; an account has its own subscription index, so the same
subject in two accounts never meets. `$G` holds the clients of a server without accounts, and
`$SYS` is the system account. Routes carry the account name on every RS+/RS-/RMSG.

What crosses, and how (each the way nats-server does it, so a mixed cluster agrees):
- A stream export/import: when a client of the importing account subscribes to a subject the
  import covers, a *shadow* subscription goes into the exporting account's index, on the
  exporter's subject. It is an ordinary subscription there (routes learn of it with the
  exporter's account name), except that deliveries carry the importer's subject.
- A service export/import: the importing account has an internal subscription on the import
  subject (never sent to routes: the import is applied where the requester is). A request is
  published again in the exporting account, with its reply rewritten to a `_R_.<prefix>.<id>`
  subject and a `Nats-Request-Info` header; the exporting account's internal wildcard
  subscription on `_R_.<prefix>.>` (sent to routes, so responses come back from any node)
  maps the response back to the requester's reply subject.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any, Protocol

from .internal import InternalClient, InternalHost
from .protocol import wire
from .protocol.subjects import has_wildcard, is_subset_match, is_valid_subject
from .protocol.transform import SubjectTransform, TransformError
from .sublist import Sublist, Subscription

if TYPE_CHECKING:
    from .options import Options

# How long a response mapping lives without an answer (nats-server's default threshold).
DEFAULT_RESPONSE_THRESHOLD = 120.0
# Response types of service exports, as nats-server names them.
SINGLETON, STREAM, CHUNKED = "Singleton", "Stream", "Chunked"
# Chained service imports deeper than this are a loop.
_MAX_IMPORT_DEPTH = 8
_REPLY_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class AccountHost(InternalHost, Protocol):
    """What an account uses of the server (core.ServerCore is the whole)."""

    name: str

    def cluster_name(self) -> str: ...


class AccountError(ValueError):
    """An export or import nats-server would refuse; the text is nats-server's."""


class ExportAuth:
    """Who may import an export: everyone (`approved` None), the named accounts, or (JWT
    accounts, `token_req`) importers holding an activation token (`revoked`: tokens
    revoked, by importer key or `*`, with the time)."""

    __slots__ = ("approved", "account_pos", "token_req", "revoked")

    def __init__(self, approved: list[str] | None = None, account_pos: int = 0,
                 token_req: bool = False) -> None:
        self.approved = set(approved) if approved is not None else None
        self.account_pos = account_pos
        self.token_req = token_req
        self.revoked: dict[str, int] | None = None

    def allows(self, importer: str, subject: str) -> bool:
        if self.account_pos > 0:
            tokens = subject.split(".")
            return self.account_pos <= len(tokens) and tokens[self.account_pos - 1] == importer
        return self.approved is None or importer in self.approved


class ServiceExport(ExportAuth):
    __slots__ = ("response_type", "threshold")

    def __init__(self, approved: list[str] | None = None, response_type: str = SINGLETON,
                 threshold: float = DEFAULT_RESPONSE_THRESHOLD, account_pos: int = 0,
                 token_req: bool = False) -> None:
        super().__init__(approved, account_pos, token_req)
        self.response_type = response_type
        self.threshold = threshold


class _Import:
    """`from_` -> `to` with the account on the other side: a literal `to`, the same subject
    (`use_pub`, wildcards on both sides), or a transform of the wildcard tokens."""

    __slots__ = ("acc", "from_", "to", "tr", "use_pub", "claim")

    kind = ""

    def __init__(self, acc: Account, from_: str, to: str, wildcards: bool) -> None:
        self.acc = acc
        self.from_ = from_
        self.to = to
        self.claim: Any = None  # a JWT account's import claim (its activation token)
        self.tr: SubjectTransform | None = None
        self.use_pub = False
        if wildcards:
            if to == from_:
                self.use_pub = True
            else:
                try:
                    self.tr = SubjectTransform(from_, to)
                except TransformError as e:
                    raise AccountError(
                        f"failed to create mapping transform for {self.kind} import subject from "
                        f"{from_!r} to {to!r}: {e}"
                    ) from None

    def map(self, subject: bytes) -> bytes:
        """The subject on the other side for a message on `subject`."""
        if self.tr is not None:
            mapped = self.tr.transform(subject.decode())
            return mapped.encode() if mapped is not None else subject
        if self.use_pub:
            return subject
        return self.to.encode()


class StreamImport(_Import):
    """Messages on `from_` in `acc` reach this account on `to`."""

    __slots__ = ("rtr",)
    kind = "stream"

    def __init__(self, acc: Account, from_: str, to: str) -> None:
        super().__init__(acc, from_, to, has_wildcard(from_))
        self.rtr: SubjectTransform | None = None


class ShadowSubscription(Subscription):
    """A subscription of an importing client, placed in the exporting account's index."""

    __slots__ = ("origin", "imp")

    def __init__(self, origin: Subscription, subject: bytes, imp: StreamImport) -> None:
        super().__init__(origin.client, subject, origin.queue, origin.sid)
        self.origin = origin
        self.imp = imp
        self.max = origin.max

    def msg_prefix(self, subject: bytes) -> bytes:
        # The prefix names the importer's subject (cached by it: plans keep literal ones).
        return Subscription.msg_prefix(self, self.imp.map(subject))

    def deliver_subject(self, subject: bytes) -> bytes:
        return self.imp.map(subject)


class ServiceImport(_Import):
    """Requests on `from_` in this account go to `to` in `acc` (the exporter)."""

    __slots__ = ("export", "share", "sub")
    kind = "service"

    def __init__(self, acc: Account, from_: str, to: str, export: ServiceExport | None,
                 share: bool = False) -> None:
        super().__init__(acc, from_, to, has_wildcard(to))
        self.export = export
        self.share = share
        self.sub: Subscription | None = None  # the importer's internal subscription


class ResponseImport:
    """A pending reply: a response on `_R_...` in the exporter goes to `reply` in `dest`."""

    __slots__ = ("dest", "reply", "response_type", "expires")

    def __init__(self, dest: Account, reply: bytes, response_type: str, threshold: float) -> None:
        self.dest = dest
        self.reply = reply
        self.response_type = response_type
        self.expires = time.monotonic() + threshold


class Account:
    def __init__(self, name: str) -> None:
        self.name = name
        self.name_b = name.encode()
        self.sublist = Sublist()
        # Bound once: a route's RMSG looks its account up and then the match cache.
        self.cache_get = self.sublist.cache.get
        self.server: AccountHost | None = None
        self.is_system = False
        self.stream_exports: dict[str, ExportAuth] = {}
        self.service_exports: dict[str, ServiceExport] = {}
        self.stream_imports: list[StreamImport] = []
        self.service_imports: dict[str, ServiceImport] = {}
        self.responses: dict[bytes, ResponseImport] = {}
        self._resp_prefix = b""
        self.internal: InternalClient | None = None
        self.default_permissions: Any = None
        self.nclients = 0
        self.jetstream: Any = None  # jetstream.jsaccount.JsAccount when the account has JetStream
        # Limits (JWT accounts; -1: none): connections, leaf connections, subscriptions
        # and payload size.
        self.max_conns = -1
        self.max_leafs = -1
        self.max_subs = -1
        self.max_payload = -1
        # JWT accounts: the claims' name (log lines show `<key>/<name>`) and the operator
        # mode's state of the account (operator.AccountState).
        self.name_tag = ""
        self.jwt: Any = None

    def trace_label(self) -> str:
        """nats-server's traceLabel: `name` or `name/name tag`."""
        return f"{self.name}/{self.name_tag}" if self.name_tag else self.name

    def __repr__(self) -> str:
        return f"<Account {self.name}>"

    # -- exports ------------------------------------------------------------------------

    def add_stream_export(self, subject: str, accounts: list[str] | None = None, account_pos: int = 0,
                          token_req: bool = False) -> None:
        if not is_valid_subject(subject.encode()):
            raise AccountError("invalid subject")
        self.stream_exports[subject] = ExportAuth(accounts, account_pos, token_req)

    def add_service_export(self, subject: str, accounts: list[str] | None = None, *,
                           response_type: str = SINGLETON,
                           threshold: float = DEFAULT_RESPONSE_THRESHOLD, account_pos: int = 0,
                           token_req: bool = False) -> None:
        if not is_valid_subject(subject.encode()):
            raise AccountError("invalid subject")
        self.service_exports[subject] = ServiceExport(accounts, response_type, threshold, account_pos, token_req)

    def _export_allows(self, ea: ExportAuth, importer: str, subject: str, claim: Any) -> bool:
        if ea.token_req and not ea.account_pos:
            # A private JWT export: the importer's claim must carry a valid activation token.
            return self.jwt is not None and self.jwt.activation_ok(self, importer, claim, ea)
        return ea.allows(importer, subject)

    def stream_export_allows(self, importer: str, subject: str, claim: Any = None) -> bool:
        if not self.stream_exports or not is_valid_subject(subject.encode()):
            return False
        ea = self.stream_exports.get(subject)
        if ea is not None:
            return self._export_allows(ea, importer, subject, claim)
        return any(
            is_subset_match(subject, s) and self._export_allows(ea, importer, subject, claim)
            for s, ea in self.stream_exports.items()
        )

    def service_export_for(self, importer: str, subject: str, claim: Any = None) -> ServiceExport | None:
        se = self.service_exports.get(subject)
        if se is not None:
            return se if self._export_allows(se, importer, subject, claim) else None
        for s, se in self.service_exports.items():
            if is_subset_match(subject, s) and self._export_allows(se, importer, subject, claim):
                return se
        return None

    # -- imports ------------------------------------------------------------------------

    def add_stream_import(self, exporter: Account, from_: str, *, prefix: str = "", to: str = "",
                          claim: Any = None) -> None:
        if not exporter.stream_export_allows(self.name, from_, claim):
            raise AccountError("stream import not authorized")
        if prefix:
            if has_wildcard(prefix):
                raise AccountError("stream import prefix can not contain wildcard tokens")
            if not prefix.endswith("."):
                prefix += "."
            to = prefix + from_
        to = to or from_
        if any(im.acc is exporter and im.from_ == from_ for im in self.stream_imports):
            raise AccountError("stream import already exists")
        im = StreamImport(exporter, from_, to)
        im.claim = claim
        self.stream_imports.append(im)

    def add_service_import(self, exporter: Account, from_: str, to: str = "", *, share: bool = False,
                           claim: Any = None) -> None:
        """Requests on `from_` here go to `to` in `exporter`."""
        to = to or from_
        se = exporter.service_export_for(self.name, to, claim)
        if se is None:
            raise AccountError("service import not authorized")
        dup = self.service_imports.get(from_)
        if dup is not None:
            raise AccountError(
                f"duplicate service import subject {from_!r}, previously used in import for "
                f"account {dup.acc.name!r}, subject {dup.to!r}"
            )
        si = ServiceImport(exporter, from_, to, se, share)
        si.claim = claim
        self.service_imports[from_] = si
        if self.internal is not None:
            self._subscribe_service_import(si)

    def remove_service_import(self, from_: str) -> None:
        si = self.service_imports.pop(from_, None)
        if si is not None and si.sub is not None and self.internal is not None:
            self.internal.remove_sub(si.sub)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, server: AccountHost) -> None:
        """The account is registered with a server: its internal subscriptions start."""
        self.server = server
        if self.service_imports and self.internal is None:
            self.internal_client()
            for si in self.service_imports.values():
                self._subscribe_service_import(si)

    def internal_client(self) -> InternalClient:
        if self.internal is None:
            assert self.server is not None
            self.internal = InternalClient(self.server, self, "System" if self.is_system else "Account")
        return self.internal

    def _subscribe_service_import(self, si: ServiceImport) -> None:
        def on_request(sub: Subscription, origin: Any, acc: Account, subject: bytes,
                       reply: bytes | None, hdr: int, msg: Any) -> bool:
            return self._process_service_import(si, origin, subject, reply, hdr, msg)

        si.sub = self.internal_client().subscribe(si.from_.encode(), on_request, forward=False)

    # -- shadow subscriptions (stream imports) --------------------------------------------

    def shadow_subscriptions(self, sub: Subscription) -> list[tuple[Account, ShadowSubscription]]:
        """The shadow subscriptions a new subscription in this account needs (addShadowSubscriptions)."""
        out: list[tuple[Account, ShadowSubscription]] = []
        subj = sub.subject.decode()
        tokens = subj.split(".")
        has_wc = "*" in tokens or tokens[-1] == ">"
        for im in self.stream_imports:
            if subj == im.to:
                out.append((im.acc, ShadowSubscription(sub, im.from_.encode(), im)))
                continue
            if is_subset_match(subj, im.to):
                # The subscription is narrower than the import: map it back to the exporter.
                out.append((im.acc, ShadowSubscription(sub, _reverse_subject(im, subj).encode(), im)))
            elif has_wc:
                if is_subset_match(im.to, subj):
                    out.append((im.acc, ShadowSubscription(sub, im.from_.encode(), im)))
                else:
                    overlap = _overlap(tokens, im.to.split("."))
                    if overlap is not None:
                        out.append((im.acc, ShadowSubscription(sub, _reverse_subject(im, overlap).encode(), im)))
        return out

    # -- service imports ----------------------------------------------------------------

    def _process_service_import(self, si: ServiceImport, origin: Any, subject: bytes,
                                reply: bytes | None, hdr: int, msg: Any) -> bool:
        """A request on an imported service: publish it again in the exporting account."""
        if origin.kind_name == "Router":
            return False  # applied where the requester is, never for routed copies
        global _depth
        if _depth >= _MAX_IMPORT_DEPTH:
            return False
        exporter = si.acc
        if si.to == "$JS.API.>" and subject.startswith(_JS_LOCAL_API) and exporter.is_system:
            # Direct gets and pull requests are answered in the requester's own account (the
            # stream's and the consumer's subscriptions): the JetStream import skips them.
            return False
        to = si.map(subject)
        nrr: bytes | None = None
        if reply:
            se = si.export
            rt = se.response_type if se is not None else SINGLETON
            threshold = se.threshold if se is not None else DEFAULT_RESPONSE_THRESHOLD
            nrr = exporter.new_response(self, reply, rt, threshold)
        info: dict[str, Any] = {"acc": self.name, "rtt": int(getattr(origin, "rtt", 0.0) * 1e9)}
        if si.share:
            info = client_info(origin, self.name)
        hdr, msg = wire.set_header(hdr, msg, b"Nats-Request-Info", wire.go_json(info))
        from .delivery import deliver_msg

        _depth += 1
        try:
            return deliver_msg(origin, exporter, to, nrr, hdr, msg)
        finally:
            _depth -= 1

    def new_response(self, dest: Account, reply: bytes, response_type: str, threshold: float) -> bytes:
        """A `_R_` reply subject in this (the exporting) account mapping back to `reply` in `dest`."""
        if not self._resp_prefix:
            rid = "".join(random.choice(_REPLY_DIGITS) for _ in range(6))
            self._resp_prefix = f"_R_.{rid}.".encode()
            self.internal_client().subscribe(self._resp_prefix + b">", self._on_response, forward=True)
        self._prune_responses()
        nrr = self._resp_prefix + "".join(random.choice(_REPLY_DIGITS) for _ in range(6)).encode()
        self.responses[nrr] = ResponseImport(dest, reply, response_type, threshold)
        return nrr

    def _on_response(self, sub: Subscription, origin: Any, acc: Account, subject: bytes,
                     reply: bytes | None, hdr: int, msg: Any) -> bool:
        ri = self.responses.get(subject)
        if ri is None:
            return False
        if ri.response_type == SINGLETON:
            del self.responses[subject]
        from .delivery import deliver_msg

        # An empty reply is dropped on the way back, as nats-server's service import does.
        return deliver_msg(origin, ri.dest, ri.reply, reply or None, hdr, msg)

    def _prune_responses(self) -> None:
        if not self.responses:
            return
        now = time.monotonic()
        expired = [k for k, ri in self.responses.items() if ri.expires <= now]
        for k in expired:
            del self.responses[k]


_depth = 0
_JS_LOCAL_API = (b"$JS.API.DIRECT.GET.", b"$JS.API.CONSUMER.MSG.NEXT.")


def client_info(c: Any, account: str) -> dict[str, Any]:
    """The `Nats-Request-Info` of a shared service import (nats-server's ClientInfo)."""
    srv = getattr(c, "server", None)
    info: dict[str, Any] = {
        "start": getattr(c, "start_iso", None),
        "host": getattr(c, "host", ""),
        "id": getattr(c, "cid", 0),
        "acc": account,
        "user": getattr(c, "user", ""),
        "name": getattr(c, "name", ""),
        "lang": getattr(c, "lang", ""),
        "ver": getattr(c, "version", ""),
        "rtt": int(getattr(c, "rtt", 0.0) * 1e9),
        # nats-server's JetStream places a stream in the requester's cluster by default.
        "server": srv.name if srv is not None else "",
        "cluster": srv.cluster_name() if srv is not None else "",
        "kind": "Client",
        "client_type": "nats",
    }
    return {k: v for k, v in info.items() if v}


def _reverse_subject(im: StreamImport, subject: str) -> str:
    """The exporter's subject for an importer's (narrower) subject."""
    if im.tr is not None:
        if im.rtr is None:
            im.rtr = im.tr.reverse()
        mapped = im.rtr.transform(subject)
        return mapped if mapped is not None else im.from_
    if im.use_pub:
        return subject
    return im.from_


def _overlap(tokens: list[str], im_tokens: list[str]) -> str | None:
    """A subscription with wildcards that only partly overlaps an import's subject: the
    subject both cover, made as specific as the import (addShadowSubscriptions)."""
    tokens = list(tokens)
    for i, t in enumerate(tokens):
        if i >= len(im_tokens):
            break
        if t == "*" and im_tokens[i] != ">":
            tokens[i] = im_tokens[i]
    if tokens[-1] == ">" and len(im_tokens) >= len(tokens):
        last = len(tokens) - 1
        tokens[last] = im_tokens[last]
        tokens.extend(im_tokens[len(tokens):])
    subject = ".".join(tokens)
    return subject if is_subset_match(subject, ".".join(im_tokens)) else None


def build_accounts(opts: Options) -> list[Account]:
    """The configured accounts, with their exports and imports (nats-server parseAccounts:
    exports first, so that imports can be checked against them). Raises AccountError with
    nats-server's message for the first problem."""
    accounts = {ac.name: Account(ac.name) for ac in opts.accounts}
    for ac in opts.accounts:
        acc = accounts[ac.name]
        acc.default_permissions = ac.default_permissions
        for ex in ac.exports:
            kind = "service" if ex.service else "stream"
            for name in ex.accounts or ():
                if name not in accounts:
                    raise AccountError(f'"{name}" account not defined for {kind} export')
            try:
                if ex.service:
                    acc.add_service_export(
                        ex.subject, ex.accounts, response_type=ex.response_type,
                        threshold=ex.response_threshold or DEFAULT_RESPONSE_THRESHOLD,
                        account_pos=ex.account_token_position,
                    )
                else:
                    acc.add_stream_export(ex.subject, ex.accounts, ex.account_token_position)
            except AccountError as e:
                raise AccountError(f'Error adding {kind} export "{ex.subject}": {e}') from None
    for ac in opts.accounts:
        acc = accounts[ac.name]
        for im in ac.imports:
            kind = "service" if im.service else "stream"
            exporter = accounts.get(im.account)
            if exporter is None:
                raise AccountError(f'"{im.account}" account not defined for {kind} import')
            try:
                if im.service:
                    acc.add_service_import(exporter, im.to or im.subject, im.subject, share=im.share)
                else:
                    acc.add_stream_import(exporter, im.subject, prefix=im.prefix, to=im.to)
            except AccountError as e:
                raise AccountError(f'Error adding {kind} import "{im.subject}": {e}') from None
    return list(accounts.values())
